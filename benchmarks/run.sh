#!/bin/sh
# benchmarks/run.sh NAME [REPEAT] — builds if needed and runs one benchmark.
# Prints one JSON line per case: bench, case, target, threads, kiln_ms,
# peer, peer_ms, ratio (peer_ms / kiln_ms: > 1 means kiln is faster), gflops.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
name=${1:?usage: benchmarks/run.sh NAME [REPEAT]  (matmul_cpu, conv2d_cpu, matmul_gpu, conv2d_gpu, gles_probe, matmul_web, conv2d_web)}
build=${KILN_BUILD:-$here/build}
[ -d "$build" ] || meson setup "$build" "$here" >/dev/null
case $name in
matmul_web | conv2d_web)
	# the peers (TF.js, onnxruntime-web, protobufjs) live in benchmarks/web,
	# apart from what CI installs; ONNX models are written from onnx.proto
	ninja -C "$build" >/dev/null
	[ -d "$here/benchmarks/web/node_modules" ] ||
		(cd "$here/benchmarks/web" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
	[ -d "$here/node_modules/playwright-core" ] || (cd "$here" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
	proto=${KILN_ONNX_PROTO:-/usr/include/onnx/onnx.proto}
	[ -f "$proto" ] || { echo "run.sh: $proto is missing: apt install libonnx-dev (onnxruntime-web's models are written from it)" >&2; exit 1; }
	KILN="$build/kiln" exec node "$here/benchmarks/web/web_bench.mjs" "${name%_web}" "${2:-5}" ;;
gles_probe)
	# fragment-shader ceilings; --small for software rasterizers (llvmpipe)
	ninja -C "$build" benchmarks/gles_probe >/dev/null
	exec "$build/benchmarks/gles_probe" ${2:+"$2"} ;;
matmul_gpu | conv2d_gpu)
	ninja -C "$build" benchmarks/gpu_bench >/dev/null
	exec "$build/benchmarks/gpu_bench" "${name%_gpu}" "${2:-5}" ;;
esac
ninja -C "$build" "benchmarks/$name" >/dev/null
# OpenBLAS 0.3.21 misdetects these CPUs and falls back to slow kernels; the
# machines may also preset another core type. Force SkylakeX unless told.
export OPENBLAS_CORETYPE=${KILN_OPENBLAS_CORETYPE:-SkylakeX}
exec "$build/benchmarks/$name" "${2:-9}"
