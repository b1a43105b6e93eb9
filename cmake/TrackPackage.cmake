# cmake/TrackPackage.cmake: what `cmake --install` puts beside the binaries
# and libraries (track.pc, the systemd units, the example config, the man
# pages, bash completion), the complete libtrack.a, and CPack's .deb
# (scripts/package builds it). Included from the root CMakeLists.txt after
# every target exists.

# libtrack.a as installed: track_static's objects and those of the
# protocol code it is built on (track_common, track_pb), which a static
# library does not carry by itself; a program links it with -ltrack alone
# (plus pkg-config --static's nanomsg, libsodium, libprotobuf-c).
add_library(track_archive STATIC $<TARGET_OBJECTS:track_static> $<TARGET_OBJECTS:track_common>
                                 $<TARGET_OBJECTS:track_pb>)
set_target_properties(track_archive PROPERTIES OUTPUT_NAME track ARCHIVE_OUTPUT_DIRECTORY
                                               ${CMAKE_BINARY_DIR}/package/lib LINKER_LANGUAGE C)
install(TARGETS track_archive ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})

# track.pc: prefix relative to the .pc file's own directory
file(RELATIVE_PATH TRACK_PC_UP /x/${CMAKE_INSTALL_LIBDIR}/pkgconfig /x)
string(REGEX REPLACE "/$" "" TRACK_PC_UP "${TRACK_PC_UP}")
# libcrypto when it runs the sealed envelope's AES-GCM (proto/CMakeLists.txt)
set(TRACK_PC_CRYPTO "")
set(TRACK_DEB_CRYPTO "")
if(TRACK_HAVE_OPENSSL)
  set(TRACK_PC_CRYPTO " libcrypto")
  set(TRACK_DEB_CRYPTO ", libssl3")
endif()
configure_file(${PROJECT_SOURCE_DIR}/packaging/track.pc.in ${CMAKE_BINARY_DIR}/package/track.pc
               @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/package/track.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# the units, with ExecStart= naming the installed trackd
set(TRACK_TRACKD ${CMAKE_INSTALL_FULL_BINDIR}/trackd)
file(READ ${PROJECT_SOURCE_DIR}/systemd/trackd.service unit)
string(REPLACE "/usr/local/bin/trackd" "${TRACK_TRACKD}" unit "${unit}")
file(CONFIGURE OUTPUT ${CMAKE_BINARY_DIR}/package/system/trackd.service CONTENT "${unit}" @ONLY)
file(READ ${PROJECT_SOURCE_DIR}/systemd/trackd-user.service unit)
string(REPLACE "%h/.local/bin/trackd" "${TRACK_TRACKD}" unit "${unit}")
file(CONFIGURE OUTPUT ${CMAKE_BINARY_DIR}/package/user/trackd.service CONTENT "${unit}" @ONLY)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             ${PROJECT_SOURCE_DIR}/systemd/trackd.service
             ${PROJECT_SOURCE_DIR}/systemd/trackd-user.service)
install(FILES ${CMAKE_BINARY_DIR}/package/system/trackd.service
        DESTINATION lib/systemd/system)
install(FILES ${CMAKE_BINARY_DIR}/package/user/trackd.service DESTINATION lib/systemd/user)

# the example config (the system unit reads /etc/trackd.conf: the .deb's
# postinst copies this there when it is missing), man pages, completion
install(FILES ${PROJECT_SOURCE_DIR}/systemd/trackd.conf DESTINATION ${CMAKE_INSTALL_DATADIR}/track)
install(FILES ${PROJECT_SOURCE_DIR}/docs/man/track.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${PROJECT_SOURCE_DIR}/docs/man/trackd.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/track.bash-completion
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME track)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})

# the .deb: `cpack -G DEB` in a build configured with CMAKE_INSTALL_PREFIX=/usr
# (scripts/package does all of it)
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME track)
set(CPACK_PACKAGE_VENDOR "track")
set(CPACK_PACKAGE_CONTACT "track maintainers <track@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "experiment tracker: trackd daemon, track CLI and libtrack")
string(CONCAT CPACK_PACKAGE_DESCRIPTION
       "track logs machine-learning experiments: trackd stores runs, params, metrics and\n"
       "tags in SQLite; the track command and the libtrack C library talk to it. The\n"
       "system service trackd.service is installed disabled (systemctl enable --now trackd).")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "libc6, libsqlite3-0, libnanomsg5, libprotobuf-c1, libsodium23${TRACK_DEB_CRYPTO}, libjansson4, libmicrohttpd12, zlib1g, adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/debian/postinst ${PROJECT_SOURCE_DIR}/packaging/debian/prerm
    ${PROJECT_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)

# the install, pkg-config, the .deb and the units, checked end to end
if(TRACK_TESTS)
  add_test(NAME package_install
           COMMAND ${PROJECT_SOURCE_DIR}/tests/package/check.sh ${PROJECT_SOURCE_DIR}
                   ${CMAKE_BINARY_DIR} ${TRACK_SANITIZE})
  set_tests_properties(package_install PROPERTIES TIMEOUT 900 RUN_SERIAL ON)
endif()
