# Test helpers. Multi-rank tests run for real: mpirun starts N CPU ranks of one binary.
find_package(GTest REQUIRED)

# Environment for every mpirun a test starts: allowed as root (CI runs as root), more
# ranks than cores allowed (CI has 2 cores and tests run up to 4 ranks).
set(REEL_MPI_TEST_ENV
    "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1")

# The cores of this machine. A reel rank's intra-op threads share the machine with the
# other ranks on it (Runtime: cores / local ranks), so every MPI test's ranks hold every
# core whatever their count. Declared as such (PROCESSORS), CTest runs such a test beside
# nothing else: two side by side on 2 cores ran slower than one after the other (OpenMP
# threads spinning against each other: train_parity.np1 5.5 s alone, 26 s beside
# model.np1). On a many-core machine every MPI test then runs alone too, as its threads
# would have it.
cmake_host_system_information(RESULT REEL_TEST_CORES QUERY NUMBER_OF_LOGICAL_CORES)

# reel_add_mpi_test(NAME name TARGET exe RANKS 1 2 3 4 [ARGS ...] [TIMEOUT s] [GPU])
# Registers name.npN for each N: `mpirun -np N exe ARGS`. Ranks are not bound to cores
# (--bind-to none) so each rank's threads may use the whole machine; the test takes
# max(N, REEL_TEST_CORES) of CTest's processors. GPU: the entry is
# reported skipped only when every case in it skipped and none failed (the test main
# prints "[reel] every test case was skipped"); a failing case fails the entry.
function(reel_add_mpi_test)
  cmake_parse_arguments(ARG "GPU" "NAME;TARGET;TIMEOUT" "RANKS;ARGS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  foreach(n ${ARG_RANKS})
    set(test ${ARG_NAME}.np${n})
    set(processors ${n})
    if(processors LESS REEL_TEST_CORES)
      set(processors ${REEL_TEST_CORES})
    endif()
    add_test(NAME ${test}
             COMMAND ${MPIEXEC_EXECUTABLE} --oversubscribe --bind-to none ${MPIEXEC_NUMPROC_FLAG} ${n}
                     $<TARGET_FILE:${ARG_TARGET}> ${ARG_ARGS})
    set_tests_properties(${test} PROPERTIES ENVIRONMENT "${REEL_MPI_TEST_ENV}"
                         TIMEOUT ${ARG_TIMEOUT} PROCESSORS ${processors} LABELS "mpi")
    if(ARG_GPU)
      set_tests_properties(${test} PROPERTIES SKIP_REGULAR_EXPRESSION "\\[reel\\] every test case was skipped"
                           LABELS "mpi;gpu")
    endif()
  endforeach()
endfunction()

# reel_test_binary(name SOURCES ... DEPS ...): a GoogleTest binary whose main() starts
# reel's Runtime (MPI) first; see tests/support/mpi_main.cpp.
function(reel_test_binary name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES} ${PROJECT_SOURCE_DIR}/tests/support/mpi_main.cpp)
  reel_target(${name})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  reel_precompile(${name} HEADERS ATen/ATen.h gtest/gtest.h)
endfunction()
