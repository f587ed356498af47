#!/bin/sh
# benchmarks/run.sh NAME [REPEAT] — builds if needed and runs one benchmark.
# Prints one JSON line per case: bench, case, target, threads, kiln_ms,
# peer, peer_ms, ratio (peer_ms / kiln_ms: > 1 means kiln is faster), gflops.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
name=${1:?usage: benchmarks/run.sh NAME [REPEAT]  (matmul_cpu, conv2d_cpu, matmul_gpu, conv2d_gpu)}
build=${KILN_BUILD:-$here/build}
[ -d "$build" ] || meson setup "$build" "$here" >/dev/null
case $name in
matmul_gpu | conv2d_gpu)
	ninja -C "$build" benchmarks/gpu_bench >/dev/null
	exec "$build/benchmarks/gpu_bench" "${name%_gpu}" "${2:-5}" ;;
esac
ninja -C "$build" "benchmarks/$name" >/dev/null
# OpenBLAS 0.3.21 misdetects these CPUs and falls back to slow kernels; the
# machines may also preset another core type. Force SkylakeX unless told.
export OPENBLAS_CORETYPE=${KILN_OPENBLAS_CORETYPE:-SkylakeX}
exec "$build/benchmarks/$name" "${2:-9}"
