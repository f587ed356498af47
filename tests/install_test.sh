#!/bin/sh
# tests/install_test.sh BUILD_DIR — an installed kiln works on its own:
# `meson install --destdir` stages it, a marker is added to the installed
# kiln.mjs, and the staged kiln (found through its RUNPATH) runs an operator,
# writes a bundle from the installed web files (the marker must be in it,
# not the build tree's copy) that node then runs correctly.
set -eu
build=$(cd "$1" && pwd)
stage=$(mktemp -d /tmp/kiln-install-XXXXXX)
trap 'rm -rf "$stage"' EXIT
meson install -C "$build" --destdir "$stage" --no-rebuild >/dev/null
kiln=$(find "$stage" -path '*/bin/kiln' -type f)
web=$(find "$stage" -path '*/share/kiln/web' -type d)
[ -x "$kiln" ] && [ -d "$web" ] || { echo "install: no kiln or share/kiln/web under $stage" >&2; exit 1; }
echo "// the installed copy" >>"$web/kiln.mjs"
# meson test points LD_LIBRARY_PATH at the build tree: the staged kiln must use its own libraries
unset KILN_WEB_DIR LD_LIBRARY_PATH
"$kiln" run relu --shape 100
"$kiln" build relu --shape 100 --target wasm -o "$stage/bundle/" >/dev/null
grep -q "the installed copy" "$stage/bundle/kiln.mjs" || { echo "install: the bundle's kiln.mjs is not the installed one" >&2; exit 1; }
cat >"$stage/run.mjs" <<EOC
import { load } from '$stage/bundle/kiln.mjs';
const s = await load('$stage/bundle/', { backend: 'wasm' });
const x = s.array(Float32Array.from({ length: 100 }, (_, i) => i - 50), [100]), y = s.empty([100]);
await s.run('relu', [x, y]);
const r = await y.read();
if (r[10] !== 0 || r[60] !== 10) { console.error('install: the installed bundle computed', r[10], r[60]); process.exit(1); }
s.dispose();
EOC
node "$stage/run.mjs"
for h in build.h runtime.h ops.h; do
	[ -f "$(dirname "$web")/../../include/kiln/$h" ] || { echo "install: include/kiln/$h missing" >&2; exit 1; }
done
echo "install test passed"
