#include "data/shuffle.h"

namespace pajama {

uint64_t mix_seed(std::initializer_list<uint64_t> parts) {
  uint64_t h = 0;
  for (uint64_t v : parts) h = splitmix64(h ^ v);
  return h;
}

}  // namespace pajama
