# Install rules: included by CMakeLists.txt once the imported targets exist. See
# docs/BUILDING.md ("Installing") and docs/ABI.md (SONAME and version rules).
#
#   cmake --install <build> [--prefix P]
#
# installs, under P (GNUInstallDirs: lib may be lib64 or lib/<multiarch> for some prefixes):
#
#   lib/libmsgrpriv.so.MAJOR.MINOR.PATCH          the shared library (SONAME libmsgrpriv.so.<abi>)
#   lib/libmsgrpriv.so.<abi> -> ...MAJOR.MINOR.PATCH   what the loader looks for
#   lib/libmsgrpriv.so -> libmsgrpriv.so.<abi>        what the linker looks for (-lmsgrpriv)
#   lib/libmsgrpriv.a                              the static library
#   include/msgrpriv.h, include/msgrpriv.hpp       the C header and the C++17 layer
#   lib/pkgconfig/msgrpriv.pc                      shared; `--static` adds what libmsgrpriv.a needs
#   lib/pkgconfig/msgrpriv-static.pc               links libmsgrpriv.a even beside the .so
#   lib/cmake/msgrpriv/msgrprivConfig.cmake        find_package(msgrpriv CONFIG):
#   lib/cmake/msgrpriv/msgrprivConfigVersion.cmake   msgrpriv::msgrpriv (shared), msgrpriv::static
#
# <abi> is MAJOR, or 0.MINOR before 1.0 (MSGRPRIV_ABI, the same rule as build.rs).
#
# Components: "runtime" (the shared library and its SONAME link) and "development" (the rest).
# The CMake package is relocatable (paths relative to its own directory); the pkg-config files
# hold the prefix given at install time (`cmake --install --prefix`, DESTDIR honoured).

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# What libmsgrpriv.a needs from the system, as `cargo rustc --crate-type staticlib --
# --print native-static-libs` lists them (Rust's std: unwinding, threads, clocks, dlsym).
if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
  set(MSGRPRIV_STATIC_SYSTEM_LIBS gcc_s util rt pthread m dl c)
elseif(APPLE)
  set(MSGRPRIV_STATIC_SYSTEM_LIBS System c m)
else()
  set(MSGRPRIV_STATIC_SYSTEM_LIBS pthread m c)
endif()
list(TRANSFORM MSGRPRIV_STATIC_SYSTEM_LIBS PREPEND "-l" OUTPUT_VARIABLE _msgr_pc_private_libs)
string(JOIN " " MSGRPRIV_PC_LIBS_PRIVATE ${_msgr_pc_private_libs})

# The file names of the shared library: the real file carries the full version.
if(APPLE)
  set(MSGRPRIV_SHARED_REAL "libmsgrpriv.${PROJECT_VERSION}.dylib")
else()
  set(MSGRPRIV_SHARED_REAL "libmsgrpriv.so.${PROJECT_VERSION}")
endif()

# ---- the libraries ----

set(_msgr_stage "${CMAKE_CURRENT_BINARY_DIR}/install-stage")
file(MAKE_DIRECTORY "${_msgr_stage}")
# The two symbolic links, made once here (they may dangle in the build tree) and installed as
# links: <soname> -> <real file>, <link name> -> <soname>.
file(CREATE_LINK "${MSGRPRIV_SHARED_REAL}" "${_msgr_stage}/${MSGRPRIV_SONAME}" SYMBOLIC)
file(CREATE_LINK "${MSGRPRIV_SONAME}" "${_msgr_stage}/${_msgr_link_name}" SYMBOLIC)

install(PROGRAMS "${_msgr_cargo_shared}"
  DESTINATION "${CMAKE_INSTALL_LIBDIR}"
  RENAME "${MSGRPRIV_SHARED_REAL}"
  COMPONENT runtime)
install(FILES "${_msgr_stage}/${MSGRPRIV_SONAME}"
  DESTINATION "${CMAKE_INSTALL_LIBDIR}"
  COMPONENT runtime)
install(FILES "${_msgr_stage}/${_msgr_link_name}" "${MSGRPRIV_STATIC_LIBRARY}"
  DESTINATION "${CMAKE_INSTALL_LIBDIR}"
  COMPONENT development)
install(FILES
    "${CMAKE_CURRENT_SOURCE_DIR}/include/msgrpriv.h"
    "${CMAKE_CURRENT_SOURCE_DIR}/include/msgrpriv.hpp"
  DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
  COMPONENT development)

# ---- pkg-config ----

# Written at install time, so that they name the prefix actually installed to.
foreach(_msgr_pc msgrpriv msgrpriv-static)
  install(CODE "
    set(prefix \"\${CMAKE_INSTALL_PREFIX}\")
    set(libdir \"${CMAKE_INSTALL_LIBDIR}\")
    set(includedir \"${CMAKE_INSTALL_INCLUDEDIR}\")
    foreach(d libdir includedir)
      if(NOT IS_ABSOLUTE \"\${\${d}}\")
        set(\${d} \"\\\${prefix}/\${\${d}}\")
      endif()
    endforeach()
    set(PROJECT_VERSION \"${PROJECT_VERSION}\")
    set(PROJECT_DESCRIPTION \"${PROJECT_DESCRIPTION}\")
    set(MSGRPRIV_PC_LIBS_PRIVATE \"${MSGRPRIV_PC_LIBS_PRIVATE}\")
    configure_file(\"${CMAKE_CURRENT_SOURCE_DIR}/cmake/${_msgr_pc}.pc.in\"
                   \"${_msgr_stage}/${_msgr_pc}.pc\" @ONLY)
    " COMPONENT development)
  install(FILES "${_msgr_stage}/${_msgr_pc}.pc"
    DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig"
    COMPONENT development)
endforeach()

# ---- CMake package ----

set(MSGRPRIV_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/msgrpriv" CACHE STRING
    "where the CMake package (msgrprivConfig.cmake) is installed, relative to the prefix")
mark_as_advanced(MSGRPRIV_INSTALL_CMAKEDIR)
configure_package_config_file(
  "${CMAKE_CURRENT_SOURCE_DIR}/cmake/msgrprivConfig.cmake.in"
  "${_msgr_stage}/msgrprivConfig.cmake"
  INSTALL_DESTINATION "${MSGRPRIV_INSTALL_CMAKEDIR}"
  PATH_VARS CMAKE_INSTALL_LIBDIR CMAKE_INSTALL_INCLUDEDIR)
# Compatible versions follow the SONAME (docs/ABI.md): same major from 1.0 on, same minor
# before.
if(PROJECT_VERSION_MAJOR GREATER 0)
  set(_msgr_compat SameMajorVersion)
else()
  set(_msgr_compat SameMinorVersion)
endif()
write_basic_package_version_file(
  "${_msgr_stage}/msgrprivConfigVersion.cmake"
  VERSION "${PROJECT_VERSION}"
  COMPATIBILITY ${_msgr_compat})
install(FILES
    "${_msgr_stage}/msgrprivConfig.cmake"
    "${_msgr_stage}/msgrprivConfigVersion.cmake"
  DESTINATION "${MSGRPRIV_INSTALL_CMAKEDIR}"
  COMPONENT development)
