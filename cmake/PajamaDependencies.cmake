# Finds every third-party dependency once; a missing required one stops configuration
# with a message that says how to install it.

set(_pajama_hint "run scripts/setup.sh (it installs Debian packages and the torch wheel)")

# LibTorch's CMake package probes for a GPU unless TORCH_CUDA_ARCH_LIST is set; ninja may
# re-run CMake without the caller's environment, so the default lives here too.
if(NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(ENV{TORCH_CUDA_ARCH_LIST} "8.0;9.0")
endif()
find_package(Torch QUIET)
if(NOT Torch_FOUND)
  message(FATAL_ERROR "LibTorch not found. Pass -DCMAKE_PREFIX_PATH=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)') or ${_pajama_hint}")
endif()

# LibTorch from the PyPI wheel is a CUDA build; its CUDA libraries come with it.
set(PAJAMA_TORCH_HAS_CUDA OFF)
if(TARGET torch_cuda OR TORCH_CUDA_LIBRARIES)
  set(PAJAMA_TORCH_HAS_CUDA ON)
endif()
if(PAJAMA_CUDA STREQUAL "AUTO")
  set(PAJAMA_WITH_CUDA ${PAJAMA_TORCH_HAS_CUDA})
elseif(PAJAMA_CUDA)
  if(NOT PAJAMA_TORCH_HAS_CUDA)
    message(FATAL_ERROR "PAJAMA_CUDA=ON but this LibTorch has no CUDA; use a CUDA build of torch or PAJAMA_CUDA=OFF")
  endif()
  set(PAJAMA_WITH_CUDA ON)
else()
  set(PAJAMA_WITH_CUDA OFF)
endif()

if(PAJAMA_WITH_CUDA)
  find_package(CUDAToolkit REQUIRED)
  # The toolkit's or the system's NCCL, else the torch wheel's (nvidia/nccl beside torch/:
  # headers and only the versioned libnccl.so.2, as on a machine with just the wheel).
  get_filename_component(_pajama_wheel_nvidia "${Torch_DIR}/../../../../nvidia" ABSOLUTE)
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/local/include /usr/include
            ${_pajama_wheel_nvidia}/nccl/include)
  find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2
               HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/local/cuda/lib /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu
                     ${_pajama_wheel_nvidia}/nccl/lib)
  if(NOT NCCL_INCLUDE_DIR OR NOT NCCL_LIBRARY)
    message(FATAL_ERROR "NCCL not found (nccl.h / libnccl.so); install NCCL or configure with -DPAJAMA_CUDA=OFF")
  endif()
  add_library(pajama_nccl INTERFACE)
  target_include_directories(pajama_nccl INTERFACE ${NCCL_INCLUDE_DIR})
  target_link_libraries(pajama_nccl INTERFACE ${NCCL_LIBRARY} CUDA::cudart)
endif()

find_package(MPI REQUIRED COMPONENTS C)
find_package(yaml-cpp REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(ZLIB REQUIRED)
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)
find_package(OpenSSL REQUIRED COMPONENTS Crypto)
find_package(CLI11 CONFIG REQUIRED)
if(PAJAMA_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
