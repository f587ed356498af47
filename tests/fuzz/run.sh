#!/bin/sh
# tests/fuzz/run.sh [SECONDS] — builds the libFuzzer targets (clang-19,
# ASan + UBSan, coverage on all of kiln's code) in build-fuzz/ and runs each
# for SECONDS (default 60) from its committed seed corpus, in a scratch copy
# so the repository's corpus only changes when someone commits new seeds.
# Exits non-zero on any crash, leak, hang or sanitizer report.
set -eu
cd "$(dirname "$0")/../.."
secs=${1:-60}
build=${KILN_FUZZ_BUILD:-build-fuzz}
if [ ! -d "$build" ]; then
	CC=clang-19 meson setup "$build" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args="-fsanitize=fuzzer-no-link -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -fno-sanitize-recover=all" \
		-Dbuildtype=debugoptimized >/dev/null
fi
ninja -C "$build" tests/fuzz/fuzz_module tests/fuzz/fuzz_cli tests/fuzz/fuzz_onnx tests/fuzz/fuzz_npy tests/fuzz/fuzz_te tests/fuzz/fuzz_tunelog tests/fuzz/fuzz_rpc >/dev/null
work=$(mktemp -d /tmp/kiln-fuzz-XXXXXX)
trap 'rm -rf "$work"' EXIT
status=0
for t in module cli onnx npy te tunelog rpc; do
	mkdir -p "$work/$t"
	cp tests/fuzz/corpus/$t/* "$work/$t/"
	echo "-- fuzz_$t for ${secs}s"
	(cd "$work" && ASAN_OPTIONS=detect_leaks=1 "$OLDPWD/$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" \
		-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$work/$t" 2>"$work/$t.log") || {
		tail -40 "$work/$t.log"
		echo "fuzz_$t FAILED (its reproducer is crash-* / leak-* / timeout-* above)" >&2
		status=1
	}
	grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$work/$t.log" | tr '\n' ' '
	echo
done
exit $status
