#!/bin/sh
# The whole test suite: the Check suites and the export test in a normal
# build, again under AddressSanitizer + UndefinedBehaviorSanitizer (leaks
# included), and the Check suites under valgrind. Prints Check's summaries.
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
for t in test_ir test_schedule test_runtime test_ops; do
	echo "-- valgrind $t"
	CK_FORK=no valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite \
		"build/tests/$t" || status=1
done
[ $status = 0 ] && echo "valgrind: clean"
exit $status
