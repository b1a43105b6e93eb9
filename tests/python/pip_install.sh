#!/usr/bin/env bash
# tests/python/pip_install.sh SRC BUILD PYTHON: `pip install --no-build-isolation` of a copy
# of SRC/python (so the source tree stays clean) into a venv of PYTHON made with
# --system-site-packages, against BUILD's libtrack.a, with no network; then the
# installed module imports (from the venv, not the build tree) and logs a point offline.
set -euo pipefail
src=$1 build=$2 python=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$src/python" "$tmp/python"
rm -rf "$tmp/python/build" "$tmp/python/"*.egg-info
"$python" -m venv --system-site-packages "$tmp/venv"
TRACK_BUILD_DIR=$build TRACK_INCLUDE_DIR=$src/client/include \
  "$tmp/venv/bin/pip" install -q --no-build-isolation --no-index "$tmp/python"
cd "$tmp"
env -u PYTHONPATH TRACK_SERVER="ipc://$tmp/nobody.sock" TRACK_NO_AUTOSTART=1 \
  XDG_STATE_HOME="$tmp/state" "$tmp/venv/bin/python" - "$tmp/venv" <<'PY'
import sys, track
assert track.__file__.startswith(sys.argv[1]), track.__file__
with track.start_run(experiment="pip") as run:   # no trackd: spooled
    track.log_metric("x", 1.0)
try:
    track.get_run(run.id)   # reads need trackd
    raise AssertionError("a read answered without trackd")
except track.Unavailable as e:
    assert e.code == "UNAVAILABLE"
print("pip install: ok", track.__version__, run.id)
PY
