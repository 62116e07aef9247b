// The one translation unit that builds core/torch_pch.h's precompiled header; every
// LibTorch target reuses it (cmake/PajamaHelpers.cmake, pajama_use_torch_pch).
