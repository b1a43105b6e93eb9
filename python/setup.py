"""Builds the C extension track._track for `pip install --no-build-isolation ./python`.

libtrack comes from, in this order:
  TRACK_BUILD_DIR=DIR   a CMake build tree of this repository: DIR/package/lib/libtrack.a
                        (the complete archive, linked into the module) and the header from
                        the source tree (client/include, beside this directory, or
                        $TRACK_INCLUDE_DIR);
  pkg-config track      an installed libtrack (`cmake --install`, the .deb): -ltrack.
The metadata is in pyproject.toml.
"""

import os
import shlex
import subprocess

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = ["src/module.c", "src/runs.c", "src/reads.c"]


def pkg_config(*args):
    try:
        out = subprocess.run(["pkg-config", *args], check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return shlex.split(out.stdout)


def libtrack_flags():
    build = os.environ.get("TRACK_BUILD_DIR")
    if build:
        archive = os.path.join(os.path.abspath(build), "package", "lib", "libtrack.a")
        header = os.environ.get("TRACK_INCLUDE_DIR") or os.path.join(HERE, os.pardir, "client",
                                                                     "include")
        if not os.path.exists(archive):
            raise SystemExit(f"track: {archive} is missing: build the tree first "
                             f"(cmake --build {build})")
        deps = ["nanomsg", "libsodium", "libprotobuf-c"]
        if pkg_config("--exists", "libcrypto") is not None:
            deps.append("libcrypto")
        libs = pkg_config("--libs", *deps)
        if libs is None:
            raise SystemExit(f"track: pkg-config does not find {' '.join(deps)}")
        return [f"-I{header}"], [archive, "-Wl,--exclude-libs,ALL", *libs, "-pthread", "-lm"]
    cflags = pkg_config("--cflags", "track")
    libs = pkg_config("--libs", "track")
    if cflags is None or libs is None:
        raise SystemExit("track: libtrack not found: install it (cmake --install BUILD, or the "
                         ".deb) so that `pkg-config track` finds it, or set TRACK_BUILD_DIR to "
                         "a built tree of the repository")
    rpath = [f"-Wl,-rpath,{a[2:]}" for a in libs if a.startswith("-L")]
    return cflags, libs + rpath


cflags, ldflags = libtrack_flags()
setup(ext_modules=[Extension("track._track", sources=SOURCES, depends=["src/module.h"],
                             extra_compile_args=["-std=gnu11", "-Wall", "-Wextra", *cflags],
                             extra_link_args=ldflags)])
