# Headers are included as "reel/folder/file.hpp", in the source tree as in an installed
# one: the build tree's include folder holds reel/<folder>, a link to each source folder
# (one link per folder, not to the root, so that no path loops back into the build tree).
set(REEL_BUILD_INCLUDE ${PROJECT_BINARY_DIR}/include)
set(REEL_HEADER_FOLDERS checkpoint data dist lm model optim parallel plan train)
file(MAKE_DIRECTORY ${REEL_BUILD_INCLUDE}/reel)
foreach(folder IN LISTS REEL_HEADER_FOLDERS ITEMS launch)
  file(CREATE_LINK ${PROJECT_SOURCE_DIR}/${folder} ${REEL_BUILD_INCLUDE}/reel/${folder} SYMBOLIC)
endforeach()

# reel_target(NAME): how reel compiles each of its own targets (set per target, never for
# the whole tree: a project that adds reel with add_subdirectory keeps its own settings).
# Standard C++ without GNU extensions (-std=c++17, the standard itself comes from
# cxx_std_17, which every reel library requires of itself and of whoever links it; CUDA
# sources: reel_cuda_sources), position-independent code (the static libraries can go into
# a shared library of a consumer's).
function(reel_target name)
  target_compile_features(${name} PRIVATE cxx_std_17)
  set_target_properties(${name} PROPERTIES CXX_EXTENSIONS OFF POSITION_INDEPENDENT_CODE ON)
endfunction()

# reel_library(NAME SOURCES ... DEPS ... [NO_EXPORT]): one library target per source
# folder, C++17 for itself and for whoever links it. reel_<x> is also reel::<x>, the name
# it has in the installed package, so that a project using add_subdirectory and one using
# find_package(reel) write the same names. Every library is installed and exported
# (cmake/ReelInstall.cmake) unless NO_EXPORT (the executable's own).
function(reel_library name)
  cmake_parse_arguments(ARG "NO_EXPORT" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  if(NOT ARG_NO_EXPORT)
    set_property(GLOBAL APPEND PROPERTY REEL_EXPORTED_LIBRARIES ${name})
  endif()
  string(REGEX REPLACE "^reel_" "" short ${name})
  add_library(reel::${short} ALIAS ${name})
  set_target_properties(${name} PROPERTIES EXPORT_NAME ${short})
  target_include_directories(${name} PUBLIC $<BUILD_INTERFACE:${REEL_BUILD_INCLUDE}> $<INSTALL_INTERFACE:include>)
  target_compile_features(${name} PUBLIC cxx_std_17)
  reel_target(${name})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  target_compile_options(${name} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra>)
endfunction()

# reel_cuda_sources(NAME SOURCES ...): CUDA sources of a library, compiled as C++17 too
# (LibTorch's headers need it). The standard is the target's own, never required of
# whoever links it: a consumer compiles no CUDA because reel did.
function(reel_cuda_sources name)
  target_sources(${name} PRIVATE ${ARGN})
  set_target_properties(${name} PROPERTIES CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON CUDA_EXTENSIONS OFF)
endfunction()

# reel_precompile(NAME [HEADERS h ...]): NAME's sources start from precompiled headers
# (default <ATen/ATen.h>, the heaviest include). Each set of headers is compiled once per
# kind of target and shared by REUSE_FROM: a PCH per target was a third of a cold build's
# compile time (30 PCHs, 459 s of 1,389 s CPU on the 2-core CI machine). A PCH is valid
# only with the flags it was built with, and GCC refuses one built -fPIC in a -fPIE
# compile, so libraries and executables each have their own; the first target to ask for a
# set builds it.
function(reel_precompile name)
  cmake_parse_arguments(ARG "" "" "HEADERS" ${ARGN})
  if(NOT ARG_HEADERS)
    set(ARG_HEADERS ATen/ATen.h)
  endif()
  get_target_property(type ${name} TYPE)
  set(kind library)
  if(type STREQUAL "EXECUTABLE")
    set(kind executable)
  endif()
  string(MAKE_C_IDENTIFIER "REEL_PCH_${kind}_${ARG_HEADERS}" key)
  get_property(holder GLOBAL PROPERTY ${key})
  if(holder)
    target_precompile_headers(${name} REUSE_FROM ${holder})
    return()
  endif()
  set_property(GLOBAL PROPERTY ${key} ${name})
  foreach(header IN LISTS ARG_HEADERS)  # C++ only: a target's CUDA sources have none
    target_precompile_headers(${name} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:<${header}$<ANGLE-R>>)
  endforeach()
endfunction()
