# Helpers shared by every module's CMakeLists.

set(PAJAMA_WARNINGS -Wall -Wextra -Wshadow)

find_program(PAJAMA_CCACHE ccache)
if(PAJAMA_CCACHE)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${PAJAMA_CCACHE})
endif()
# lld links the LibTorch-heavy executables several times faster than bfd.
find_program(PAJAMA_LLD ld.lld)
if(PAJAMA_LLD)
  add_link_options(-fuse-ld=lld)
endif()

# The torch wheel's libtorch_cpu.so exports its own copy of std::filesystem (e.g.
# std::filesystem::remove_all); when it precedes libstdc++ in the executable's NEEDED
# list, the dynamic linker binds those calls to it and they crash. Naming libstdc++
# first, for every target, makes them resolve to libstdc++. This is the one fix for the
# clash: code and tests call std::filesystem (remove_all included) freely, no workarounds.
add_link_options(-Wl,--no-as-needed -lstdc++)

if(PAJAMA_SANITIZE)
  list(JOIN PAJAMA_SANITIZE "," _pajama_san)
  add_compile_options(-fsanitize=${_pajama_san} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${_pajama_san})
endif()

# One precompiled LibTorch header (core/torch_pch.h) for the whole build: parsing
# torch/torch.h dominates compile time, so it is compiled once, by this object library,
# and every target that uses LibTorch reuses it (pajama_use_torch_pch). Reuse needs the
# same flags: the compile options here are those of every consumer (the project's
# warnings, LibTorch's definitions); -Winvalid-pch makes a rejected PCH a warning.
add_library(pajama_torch_pch OBJECT ${PROJECT_SOURCE_DIR}/core/torch_pch.cpp)
target_link_libraries(pajama_torch_pch PUBLIC ${TORCH_LIBRARIES})
target_compile_options(pajama_torch_pch PRIVATE ${PAJAMA_WARNINGS})
target_precompile_headers(pajama_torch_pch PRIVATE ${PROJECT_SOURCE_DIR}/core/torch_pch.h)

function(pajama_use_torch_pch target)
  target_precompile_headers(${target} REUSE_FROM pajama_torch_pch)
endfunction()

# pajama_include_view(TARGET PUBLIC|PRIVATE): the current source directory's module as
# the target's include path, and nothing else (see pajama_library).
function(pajama_include_view target scope)
  file(RELATIVE_PATH _module ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR})
  set(_view ${PROJECT_BINARY_DIR}/include_views/${_module})
  file(MAKE_DIRECTORY ${_view})
  file(CREATE_LINK ${CMAKE_CURRENT_SOURCE_DIR} ${_view}/${_module} SYMBOLIC)
  target_include_directories(${target} ${scope} ${_view})
endfunction()

# pajama_library(NAME SOURCES... [TORCH]): a module library (the current source directory,
# e.g. model/) with the project's warnings. TORCH adds LibTorch and the shared
# precompiled torch header.
# Headers are included by module path ("model/llama.h"), but a module's include path
# holds only its own directory: <build>/include_views/<module>/<module> is a link to the
# sources, and a library exposes that view alone. So a module sees the headers of itself
# and of what it links (core, and for trainer/ model, data, parallel), and including
# another module's header fails to compile: the dependency graph is enforced by the build.
function(pajama_library name)
  cmake_parse_arguments(ARG "TORCH" "" "SOURCES" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  pajama_include_view(${name} PUBLIC)
  target_compile_options(${name} PRIVATE ${PAJAMA_WARNINGS})
  if(ARG_TORCH)
    target_link_libraries(${name} PUBLIC ${TORCH_LIBRARIES})
    pajama_use_torch_pch(${name})
  endif()
endfunction()

# pajama_test(NAME SOURCES... LIBS... LABEL kind [NP n] [PART suffix FILTER gtest_filter]):
# one GoogleTest executable, registered as a CTest test of exactly one kind, so the
# labels partition the suite:
#   unit      fast, one process, no executable, Python or mpiexec started (ctest -L unit: < 1 min)
#   fuzz      the readers' mutation fuzzing (forks a child per case)
#   mpi       runs under mpiexec or initialises MPI
#   parity    against an independent reference (transformers, SentencePiece's Python package)
#   e2e       drives the pajama executable
#   multinode two hosts in network namespaces (root)
#   gpu       needs a CUDA device; fails without one under PAJAMA_REQUIRE_GPU=1, else skips; not in CI
# With NP, the test runs under mpiexec with n ranks and fails (never skips) if MPI cannot start.
# A binary whose cases are of several kinds is registered once per kind: PART names the
# test NAME_PART and FILTER picks its cases (--gtest_filter), the parts together covering
# every case (a part with a negative filter takes the rest).
function(pajama_test name)
  cmake_parse_arguments(ARG "" "NP;TIMEOUT;LABEL;PART;FILTER" "SOURCES;LIBS;ARGS" ${ARGN})
  set(_kinds unit fuzz mpi parity e2e multinode gpu)
  if(NOT ARG_LABEL IN_LIST _kinds)
    message(FATAL_ERROR "pajama_test(${name}): LABEL must be one of ${_kinds}, got '${ARG_LABEL}'")
  endif()
  if(NOT TARGET ${name})
    add_executable(${name} ${ARG_SOURCES})
    target_link_libraries(${name} PRIVATE ${ARG_LIBS} pajama_test_support GTest::gtest)
    target_compile_options(${name} PRIVATE ${PAJAMA_WARNINGS})
    # Targets that use LibTorch reuse its precompiled header; the others do not see it.
    get_target_property(_libs ${name} LINK_LIBRARIES)
    set(_torch OFF)
    foreach(_lib IN LISTS _libs)
      if(_lib MATCHES "^pajama_(model|parallel|trainer)$" OR _lib IN_LIST TORCH_LIBRARIES)
        set(_torch ON)
      endif()
    endforeach()
    if(_torch)
      pajama_use_torch_pch(${name})
    endif()
  endif()
  set(test_name ${name})
  if(ARG_PART)
    set(test_name ${name}_${ARG_PART})
  endif()
  if(ARG_FILTER)
    list(APPEND ARG_ARGS --gtest_filter=${ARG_FILTER})
  endif()
  if(ARG_NP)
    set(test_name ${test_name}_np${ARG_NP})
    add_test(NAME ${test_name}
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${ARG_NP} --oversubscribe
                     --allow-run-as-root --bind-to none $<TARGET_FILE:${name}> ${ARG_ARGS})
  else()
    add_test(NAME ${test_name} COMMAND ${name} ${ARG_ARGS})
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 900)
  endif()
  if(ARG_NP)
    # Multi-rank tests oversubscribe the cores already; run them alone.
    set_tests_properties(${test_name} PROPERTIES RUN_SERIAL TRUE)
  endif()
  set_tests_properties(${test_name} PROPERTIES LABELS ${ARG_LABEL} TIMEOUT ${ARG_TIMEOUT}
    ENVIRONMENT "PAJAMA_SOURCE_DIR=${PROJECT_SOURCE_DIR};PAJAMA_BINARY_DIR=${PROJECT_BINARY_DIR};PAJAMA_EXE=$<TARGET_FILE:pajama>;PAJAMA_PYTHON=${PAJAMA_PYTHON};OMP_NUM_THREADS=1")
endfunction()
