#!/usr/bin/env bash
# tests/web/npm_ci.sh DEST: installs web/'s npm packages with their dev
# dependencies (playwright-core, which drives Debian's Chromium: no browser is
# downloaded) into DEST/node_modules, pinned by web/package-lock.json; again
# only when the lock file changed. node_modules never enters the source tree.
set -euo pipefail
src="$(cd "$(dirname "$0")/../../web" && pwd)"
dest="$1"
mkdir -p "$dest"
if [ -d "$dest/node_modules/playwright-core" ] && cmp -s "$src/package-lock.json" "$dest/package-lock.json"; then
  exit 0
fi
command -v npm >/dev/null || { echo "npm_ci.sh: npm is not installed (scripts/setup installs it)" >&2; exit 1; }
cp "$src/package.json" "$src/package-lock.json" "$dest/"
cd "$dest"
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --ignore-scripts >npm-ci.log 2>&1 || {
  cat npm-ci.log >&2
  rm -f package-lock.json
  exit 1
}
