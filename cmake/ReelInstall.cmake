# What `cmake --install BUILD --prefix P` puts where (docs/install.md):
#   P/lib/libreel_*.a               the libraries
#   P/include/reel/<folder>/*.hpp   their headers, included as "reel/<folder>/x.hpp" (not
#                                   launch/'s: those are the executable's own)
#   P/bin/reel                      the executable; it finds its scripts in P/share/reel
#                                   (launch/install_paths.hpp), so the prefix can move
#   P/bin/reel-mpirun               mpirun with reel's defaults, running the reel beside it
#   P/share/reel/scripts/           the scripts reel runs (plot_run.py,
#                                   metrics_to_tensorboard.py) and convert_videos.py
#   P/share/reel/slurm/             train.sbatch, sweep.sbatch (they run P/bin/reel) and summary.sh
#   P/lib/cmake/reel/               the package: find_package(reel) gives reel::dist,
#                                   reel::model, ... with every dependency found again
#
# bin/, share/reel/ and include/ are fixed names: the executable looks for
# ../share/reel beside itself, and the libraries' install include folder is "include"
# (cmake/ReelTarget.cmake). The library folder follows GNUInstallDirs ("lib" here).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

get_property(REEL_EXPORTED_LIBRARIES GLOBAL PROPERTY REEL_EXPORTED_LIBRARIES)  # every reel_library but NO_EXPORT
set(REEL_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/reel)

install(TARGETS ${REEL_EXPORTED_LIBRARIES} EXPORT reelTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
foreach(folder IN LISTS REEL_HEADER_FOLDERS)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${folder}/ DESTINATION include/reel/${folder}
          FILES_MATCHING PATTERN "*.hpp")
endforeach()

install(TARGETS reel RUNTIME DESTINATION bin)
install(PROGRAMS ${PROJECT_SOURCE_DIR}/scripts/reel-mpirun DESTINATION bin)
install(PROGRAMS ${PROJECT_SOURCE_DIR}/scripts/plot_run.py ${PROJECT_SOURCE_DIR}/scripts/metrics_to_tensorboard.py
                 ${PROJECT_SOURCE_DIR}/scripts/convert_videos.py
        DESTINATION share/reel/scripts)
install(PROGRAMS ${PROJECT_SOURCE_DIR}/slurm/train.sbatch ${PROJECT_SOURCE_DIR}/slurm/sweep.sbatch
                 ${PROJECT_SOURCE_DIR}/slurm/summary.sh
        DESTINATION share/reel/slurm)
# sbatch runs a copy of a batch script from its spool folder, so an installed sbatch script
# cannot look beside itself: the installed copies are told where they are instead (their
# line `installed=""`; the source tree's copies keep it empty and look in the submit
# directory). The prefix is the one given at install time (cmake --install --prefix).
install(CODE [[
  set(reel_slurm "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}/share/reel/slurm")
  get_filename_component(reel_prefix "${CMAKE_INSTALL_PREFIX}" ABSOLUTE)
  string(REGEX REPLACE "([\\\"$`])" "\\\\\\1" reel_prefix "${reel_prefix}")  # inside "..." in bash
  foreach(script train.sbatch sweep.sbatch)
    file(READ "${reel_slurm}/${script}" text)
    string(REPLACE "\ninstalled=\"\"" "\ninstalled=\"${reel_prefix}\"" text "${text}")
    file(WRITE "${reel_slurm}/${script}" "${text}")
  endforeach()
]])

# The package. reelConfig.cmake finds each dependency where this build found it (the
# values recorded below), then reads reelTargets.cmake.
set(REEL_CONFIG_TORCH_DIR "${Torch_DIR}")
set(REEL_CONFIG_CUDA_COMPILER "")
set(REEL_CONFIG_CUDA_ROOT "")
set(REEL_CONFIG_NCCL_LIBRARY_DIR "")
if(REEL_HAVE_NCCL)
  get_filename_component(REEL_CONFIG_NCCL_LIBRARY_DIR "${NCCL_LIBRARY}" DIRECTORY)
endif()
if(REEL_HAVE_CUDA)
  set(REEL_CONFIG_CUDA_COMPILER "${CMAKE_CUDA_COMPILER}")
  get_filename_component(REEL_CONFIG_CUDA_ROOT "${CUDAToolkit_BIN_DIR}" DIRECTORY)
endif()
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/reelConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/package/reelConfig.cmake
                              INSTALL_DESTINATION ${REEL_INSTALL_CMAKEDIR})
# 0.x: a new minor version may change the API.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/package/reelConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/package/reelConfig.cmake ${PROJECT_BINARY_DIR}/package/reelConfigVersion.cmake
        DESTINATION ${REEL_INSTALL_CMAKEDIR})
install(EXPORT reelTargets NAMESPACE reel:: DESTINATION ${REEL_INSTALL_CMAKEDIR} FILE reelTargets.cmake)
