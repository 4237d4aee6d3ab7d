# reel_library(NAME SOURCES ... DEPS ...): one library target per source folder.
# Headers are included as "folder/file.hpp" from the repository root.
function(reel_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  target_compile_options(${name} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra>)
endfunction()

# Precompiled ATen header shared by a target's sources: the heaviest include, compiled once.
function(reel_precompile name)
  target_precompile_headers(${name} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:<ATen/ATen.h$<ANGLE-R>>)
endfunction()
