// Precompiled header for LibTorch-heavy targets: parsing torch/torch.h dominates
// compile time on small machines, so every torch target shares this list.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>
