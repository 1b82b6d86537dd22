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
#   share/doc/msgrpriv/LICENSE, CHANGELOG.md       the licence (MIT), the release notes
#
# <abi> is MAJOR, or 0.MINOR before 1.0 (MSGRPRIV_ABI, the same rule as build.rs).
#
# The installed libraries carry no debug information: `strip -S` runs on both after the copy
# (MSGRPRIV_INSTALL_DEBUG_INFO=ON keeps it). `cmake --install --strip` also removes the shared
# library's symbol table (.symtab; the exported .dynsym stays), as CMake does for its own
# targets; the static library keeps its symbols, which linking needs.
#
# Components: "runtime" (the shared library, its SONAME link and the licence) and
# "development" (the rest).
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

# The shared library is the build tree's copy, the one the C tests ran against: cargo gave it
# its SONAME for this build (MSGRPRIV_SET_SONAME, see CMakeLists.txt), which a plain
# `cargo build` into the same target directory does not.
install(PROGRAMS "${MSGRPRIV_SHARED_LIBRARY}"
  DESTINATION "${CMAKE_INSTALL_LIBDIR}"
  RENAME "${MSGRPRIV_SHARED_REAL}"
  COMPONENT runtime)
install(FILES "${_msgr_stage}/${MSGRPRIV_SONAME}"
  DESTINATION "${CMAKE_INSTALL_LIBDIR}"
  COMPONENT runtime)
install(FILES "${_msgr_stage}/${_msgr_link_name}" "${MSGRPRIV_STATIC_LIBRARY}"
  DESTINATION "${CMAKE_INSTALL_LIBDIR}"
  COMPONENT development)

# ---- stripping ----

option(MSGRPRIV_INSTALL_DEBUG_INFO
       "install the libraries with their debug information (default: strip -S)" OFF)
mark_as_advanced(MSGRPRIV_INSTALL_DEBUG_INFO)
if(APPLE)
  set(_msgr_strip_all -x)   # what CMake passes for a shared library on macOS
else()
  set(_msgr_strip_all "")
endif()
# msgr_strip_installed(<file name> <component> <static>): strips the installed file at install
# time, under DESTDIR and whatever prefix `cmake --install --prefix` gives.
function(msgr_strip_installed name component static)
  if(NOT CMAKE_STRIP)
    message(WARNING "no strip tool (CMAKE_STRIP): the libraries are installed unstripped")
    return()
  endif()
  install(CODE "
    set(_msgr_dir \"${CMAKE_INSTALL_LIBDIR}\")
    if(NOT IS_ABSOLUTE \"\${_msgr_dir}\")
      set(_msgr_dir \"\${CMAKE_INSTALL_PREFIX}/\${_msgr_dir}\")
    endif()
    set(_msgr_file \"\$ENV{DESTDIR}\${_msgr_dir}/${name}\")
    set(_msgr_static ${static})
    set(_msgr_keep_debug ${MSGRPRIV_INSTALL_DEBUG_INFO})
    set(_msgr_strip ON)
    set(_msgr_args \"\")
    if(CMAKE_INSTALL_DO_STRIP AND NOT _msgr_static)
      set(_msgr_args \"${_msgr_strip_all}\")
    elseif(NOT _msgr_keep_debug)
      set(_msgr_args -S)
    else()
      set(_msgr_strip OFF)
    endif()
    if(_msgr_strip)
      message(STATUS \"Stripping: \${_msgr_file} (strip \${_msgr_args})\")
      execute_process(COMMAND \"${CMAKE_STRIP}\" \${_msgr_args} \"\${_msgr_file}\"
                      RESULT_VARIABLE _msgr_rc)
      if(NOT _msgr_rc EQUAL 0)
        message(FATAL_ERROR \"strip \${_msgr_args} \${_msgr_file}: \${_msgr_rc}\")
      endif()
    endif()
    " COMPONENT ${component})
endfunction()
msgr_strip_installed("${MSGRPRIV_SHARED_REAL}" runtime OFF)
msgr_strip_installed(libmsgrpriv.a development ON)

# ---- the licence and the release notes ----

install(FILES "${CMAKE_CURRENT_SOURCE_DIR}/LICENSE"
  DESTINATION "${CMAKE_INSTALL_DOCDIR}"
  COMPONENT runtime)
install(FILES "${CMAKE_CURRENT_SOURCE_DIR}/CHANGELOG.md"
  DESTINATION "${CMAKE_INSTALL_DOCDIR}"
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
