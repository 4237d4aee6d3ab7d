# Every external dependency of reel is found here, and only here.
#
# LibTorch comes from PyPI's torch wheel in the project's virtual environment
# (scripts/setup.sh); its version is pinned in scripts/torch-version.txt.

# Inside another project (add_subdirectory), the imported targets found here (torch,
# MPI::MPI_CXX, ...) are global: the project's own targets link reel's, whose usage
# requirements name them, and an imported target is otherwise seen only in reel's folders.
if(NOT PROJECT_IS_TOP_LEVEL)
  set(CMAKE_FIND_PACKAGE_TARGETS_GLOBAL ON)
endif()

# --- CUDA (optional): decided before Torch, whose config looks for CUDA itself. ---
set(REEL_HAVE_CUDA OFF)
set(REEL_HAVE_NCCL OFF)
if(NOT REEL_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    enable_language(CUDA)
    # One runtime: CUDA::cudart is shared; the static default would link both.
    set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
    find_package(CUDAToolkit REQUIRED)
    set(REEL_HAVE_CUDA ON)
    # NCCL ships no CMake config: look beside the toolkit, then in the system paths.
    find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} $ENV{NCCL_HOME}/include)
    find_library(NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} $ENV{NCCL_HOME}/lib)
    if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
      set(REEL_HAVE_NCCL ON)
      add_library(reel_nccl INTERFACE IMPORTED GLOBAL)
      target_include_directories(reel_nccl INTERFACE ${NCCL_INCLUDE_DIR})
      target_link_libraries(reel_nccl INTERFACE ${NCCL_LIBRARY})
    elseif(REEL_CUDA STREQUAL "ON")
      message(FATAL_ERROR "REEL_CUDA=ON but NCCL was not found (set NCCL_HOME)")
    endif()
  elseif(REEL_CUDA STREQUAL "ON")
    message(FATAL_ERROR "REEL_CUDA=ON but no CUDA compiler was found")
  endif()
endif()

# --- LibTorch from the virtual environment. ---
if(NOT Torch_DIR)
  set(REEL_PYTHON "${PROJECT_SOURCE_DIR}/.venv/bin/python" CACHE FILEPATH "Python with torch")
  execute_process(COMMAND ${REEL_PYTHON} -c "import torch; print(torch.utils.cmake_prefix_path)"
                  OUTPUT_VARIABLE REEL_TORCH_PREFIX OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE REEL_TORCH_RESULT)
  if(NOT REEL_TORCH_RESULT EQUAL 0)
    message(FATAL_ERROR "Cannot import torch with ${REEL_PYTHON}: run scripts/setup.sh, or "
                        "pass -DREEL_PYTHON=/path/to/python or -DTorch_DIR=...")
  endif()
  list(APPEND CMAKE_PREFIX_PATH ${REEL_TORCH_PREFIX})
endif()
# The CUDA wheel's config looks for the CUDA toolkit (and fails without one); with
# REEL_CUDA off or no nvcc, tell it there is none so the CPU parts still build. The
# wheel's CUDA libraries still load at run time and report "no GPU".
# With CUDA, Torch's config derives nvcc -gencode flags from TORCH_CUDA_ARCH_LIST (and
# ignores CMAKE_CUDA_ARCHITECTURES): give it the same architectures, or it compiles every
# CUDA file for a dozen GPUs.
if(REEL_HAVE_CUDA AND NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(REEL_ARCH_LIST "")
  foreach(arch ${CMAKE_CUDA_ARCHITECTURES})
    string(REGEX REPLACE "^([0-9]+)([0-9])[a-z]?$" "\\1.\\2" dotted "${arch}")
    list(APPEND REEL_ARCH_LIST ${dotted})
  endforeach()
  set(TORCH_CUDA_ARCH_LIST "${REEL_ARCH_LIST}")
endif()
if(NOT REEL_HAVE_CUDA)
  set(CAFFE2_USE_CUDA OFF)
  set(USE_CUDA OFF)
endif()
find_package(Torch REQUIRED)
# libtorch.so exports its own copies of std::filesystem functions (remove_all, ...) that
# crash when called from our code (null call inside). The dynamic loader binds a symbol
# to the first library in the executable's NEEDED list that defines it, so libstdc++ is
# put before LibTorch on the link line.
set(REEL_TORCH_LIBS stdc++ ${TORCH_LIBRARIES})

# --- The rest, from Debian packages. ---
find_package(MPI REQUIRED COMPONENTS CXX)
find_package(HDF5 REQUIRED COMPONENTS C)
find_package(Boost REQUIRED COMPONENTS program_options)
find_package(spdlog REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(Threads REQUIRED)

# ccache when available: repeated builds (CI, the GPU machine) skip unchanged sources.
# Set for reel's own directories only, and not over a launcher the caller chose.
find_program(REEL_CCACHE ccache)
if(REEL_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${REEL_CCACHE})
endif()
if(REEL_CCACHE AND NOT CMAKE_CUDA_COMPILER_LAUNCHER)
  set(CMAKE_CUDA_COMPILER_LAUNCHER ${REEL_CCACHE})
endif()
