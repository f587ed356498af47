#!/bin/sh
# The whole test suite: the Check suites, the export and JS tests in a normal
# build; again under AddressSanitizer + UndefinedBehaviorSanitizer (leaks
# included); every Check suite under valgrind; the mutation test (the suite
# must catch wrong operators); the libFuzzer targets for 30 s each; every
# benchmark once in smoke mode (tiny sizes, outputs checked against the
# peers). Prints Check's summaries.
set -eu
cd "$(dirname "$0")/.."
[ -d build ] || meson setup build >/dev/null
[ -d build-asan ] || meson setup build-asan -Db_sanitize=address,undefined \
	-Dc_args=-fno-sanitize-recover=all -Dbuildtype=debug >/dev/null
ninja -C build
ninja -C build-asan

echo "== unit tests"
meson test -C build -v --print-errorlogs

echo "== unit tests under ASan + UBSan"
meson test -C build-asan -v --print-errorlogs

echo "== unit tests under valgrind"
status=0
# the suites that run wasm and WebGPU kernels do so in node child processes,
# which valgrind does not follow: it checks their C side (building, files);
# tests tagged "large" (millions of elements), "crash" (a kernel that
# crashes an RPC worker on purpose) and "slow" (more schedules or sweeps
# through C paths other tests take here, whose time is LLVM's, node's or
# Chromium's) run in the two builds above only.
# valgrind runs a program on one core, so the suites run two at a time
# (KILN_VALGRIND_JOBS), the slowest first; each one's output is printed
# whole when it ends, so that two suites' lines never interleave.
vglogs=$(mktemp -d)
trap 'rm -rf "$vglogs"' EXIT
suites="test_web test_tune test_webgpu test_opencl test_ops test_wasm test_te test_webgl test_graph test_schedule test_rpc test_runtime test_ir test_onnx"
for t in $suites; do
	[ -x "build/tests/$t" ] || { echo "valgrind: build/tests/$t is missing" >&2; status=1; }
done
# (flock: util-linux, in every Debian install)
printf '%s\n' $suites | VGLOGS=$vglogs xargs -P "${KILN_VALGRIND_JOBS:-2}" -n 1 sh -c '
	start=$(date +%s)
	CK_FORK=no CK_EXCLUDE_TAGS="large crash slow" valgrind -q --error-exitcode=9 --leak-check=full \
		--show-leak-kinds=definite --errors-for-leak-kinds=definite \
		--suppressions=tests/valgrind.supp "build/tests/$1" >"$VGLOGS/$1.log" 2>&1 || touch "$VGLOGS/$1.failed"
	{ echo "-- valgrind $1 ($(( $(date +%s) - start )) s)$([ -e "$VGLOGS/$1.failed" ] && echo ": FAILED")"
	  cat "$VGLOGS/$1.log"; } >"$VGLOGS/$1.out"
	flock "$VGLOGS" cat "$VGLOGS/$1.out"' sh || status=1
ls "$vglogs"/*.failed >/dev/null 2>&1 && status=1
[ $status = 0 ] && echo "valgrind: clean"

echo "== mutation test: wrong operators must fail the suite"
sh tests/mutation_test.sh || status=1

echo "== fuzz targets, 25 s each (libFuzzer, clang-19, ASan + UBSan)"
sh tests/fuzz/run.sh 25 || status=1

echo "== benchmarks, smoke mode (tiny sizes; each checks its outputs against its peer)"
KILN_BENCH_SMOKE=1 sh benchmarks/run.sh smoke || status=1
exit $status
