#!/bin/sh
# benchmarks/run.sh NAME [REPEAT] — builds if needed and runs one benchmark.
# Prints one JSON line per case: bench, case, target, threads, kiln_ms,
# peer, peer_ms, ratio (peer_ms / kiln_ms: > 1 means kiln is faster), gflops.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
name=${1:?usage: benchmarks/run.sh NAME [REPEAT]  (matmul_cpu, conv2d_cpu, models_cpu, models_web, models_gpu, matmul_gpu, conv2d_gpu, gles_probe, matmul_web, conv2d_web, rpc, tune_cpu, tune_web, tune_gpu, smoke)}
build=${KILN_BUILD:-$here/build}
[ -d "$build" ] || meson setup "$build" "$here" >/dev/null
# OpenBLAS 0.3.21 misdetects these CPUs and falls back to slow kernels, and the
# machines may preset a core type this CPU cannot run (SkylakeX on an AVX2-only
# CPU dies with SIGILL): pick its kernels from what /proc/cpuinfo says, unless told.
if [ -n "${KILN_OPENBLAS_CORETYPE:-}" ]; then
	export OPENBLAS_CORETYPE=$KILN_OPENBLAS_CORETYPE
elif grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
	export OPENBLAS_CORETYPE=SkylakeX
elif grep -qw avx2 /proc/cpuinfo 2>/dev/null; then
	export OPENBLAS_CORETYPE=Haswell
else
	unset OPENBLAS_CORETYPE
fi
case $name in
smoke)
	# every benchmark once at tiny sizes (KILN_BENCH_SMOKE): each checks its
	# outputs against its peer and exits non-zero on a mismatch or a missing
	# peer, so a wrong kernel or an instruction this host lacks fails CI.
	# Not here: webgpu_node.mjs (TF.js needs a core WebGPU adapter, which
	# Dawn on Mesa lacks; it runs on the GPU machine).
	export KILN_BENCH_SMOKE=1
	for b in matmul_cpu conv2d_cpu matmul_gpu conv2d_gpu matmul_web conv2d_web rpc tune_cpu tune_web tune_gpu; do
		echo "-- $b"
		sh "$0" "$b" 1 || { echo "benchmarks/run.sh: $b failed" >&2; exit 1; }
	done
	echo "-- gles_probe --small"
	sh "$0" gles_probe --small >/dev/null
	echo "benchmarks: every smoke run passed its checks"
	exit 0 ;;
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
rpc)
	# RPC's costs (benchmarks/rpc_bench.c): straight to a native server, through
	# the proxy to a native server, and through the proxy into a headless Chromium
	# tab (wasm); goals: < 1 ms per request, >= 200 MB/s upload on loopback
	ninja -C "$build" benchmarks/rpc_bench kiln >/dev/null
	[ -d "$here/node_modules/playwright-core" ] || (cd "$here" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
	work=$(mktemp -d /tmp/kiln-rpc-bench-XXXXXX)
	pids=
	trap 'for p in $pids; do kill $p 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT
	await() { i=0; while ! grep -q "$2" "$1" 2>/dev/null; do i=$((i + 1)); [ $i -le 900 ] || { cat "$1" >&2; exit 1; }; sleep 0.1; done; }
	export KILN_RPC_KEY=bench-key XDG_RUNTIME_DIR="$work"
	"$build/kiln" rpc server --port 0 >"$work/server.log" 2>&1 & pids="$pids $!"
	"$build/kiln" rpc proxy --port 0 --web-port 0 >"$work/proxy.log" 2>&1 & pids="$pids $!"
	await "$work/server.log" "listening on port"
	await "$work/proxy.log" "devices: open"
	sport=$(sed -n 's/.*listening on port \([0-9]*\)/\1/p' "$work/server.log")
	pport=$(sed -n 's/.*native servers: 127.0.0.1:\([0-9]*\)$/\1/p' "$work/proxy.log")
	wport=$(sed -n 's|.*open http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$work/proxy.log")
	"$build/kiln" rpc server --key native-key --proxy "127.0.0.1:$pport" >"$work/at-proxy.log" 2>&1 & pids="$pids $!"
	NODE_PATH="$here/node_modules" node "$here/tests/rpc_tab.mjs" "$wport" tab-key >"$work/tab.log" 2>&1 & pids="$pids $!"
	await "$work/at-proxy.log" "registered"
	await "$work/tab.log" "tab registered"
	"$build/benchmarks/rpc_bench" "127.0.0.1:$sport" bench-key llvm native-server
	"$build/benchmarks/rpc_bench" "127.0.0.1:$pport" native-key llvm proxy-native-server
	"$build/benchmarks/rpc_bench" "127.0.0.1:$pport" tab-key wasm proxy-chromium-tab
	exit 0 ;;
models_cpu)
	# ResNet-18, MobileNetV2, SqueezeNet 1.1 and the transformer (exported by
	# scripts/export_models.py) on llvm, 1 and 2 threads, against onnxruntime-node
	# in the same run on the same input (outputs compared); KILN_MODELS_DIR keeps them
	ninja -C "$build" benchmarks/models >/dev/null
	[ -d "$here/node_modules/onnxruntime-node" ] ||
		(cd "$here" && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund --loglevel=error >/dev/null)
	dir=${KILN_MODELS_DIR:-$(mktemp -d /tmp/kiln-models-XXXXXX)}
	for m in resnet18 mobilenet_v2 squeezenet1_1 transformer; do
		[ -f "$dir/$m.onnx" ] || /usr/bin/python3 "$here/scripts/export_models.py" "$dir" "$m" >/dev/null 2>&1
	done
	for t in 1 2; do
		for m in resnet18 mobilenet_v2 squeezenet1_1 transformer; do
			"$build/benchmarks/models" "$dir/$m.onnx" --threads $t --bench "${2:-20}"
		done
	done
	[ -n "${KILN_MODELS_DIR:-}" ] || rm -rf "$dir"
	exit 0 ;;
models_web)
	# the four models as wasm bundles in node, one thread, against onnxruntime-web
	ninja -C "$build" >/dev/null
	[ -d "$here/benchmarks/web/node_modules" ] ||
		(cd "$here/benchmarks/web" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
	dir=${KILN_MODELS_DIR:-$(mktemp -d /tmp/kiln-models-XXXXXX)}
	for m in resnet18 mobilenet_v2 squeezenet1_1 transformer; do
		[ -f "$dir/$m.onnx" ] || /usr/bin/python3 "$here/scripts/export_models.py" "$dir" "$m" >/dev/null 2>&1
	done
	st=0
	node "$here/benchmarks/web/models_web.mjs" "$build/kiln" "$dir" "${2:-10}" || st=1
	[ -n "${KILN_MODELS_DIR:-}" ] || rm -rf "$dir"
	exit $st ;;
models_gpu)
	# the four models for opencl (KILN_OPENCL_PLATFORM picks the platform), run by
	# module_runner with libkiln_runtime alone, outputs compared with onnxruntime-node;
	# on the GPU machine (no LLVM, no node) carry KILN_MODELS_DIR's .kmod/.bin files
	# and run module_runner there beside benchmarks/torch_models.py (PyTorch eager)
	ninja -C "$build" benchmarks/module_runner >/dev/null
	dir=${KILN_MODELS_DIR:-$(mktemp -d /tmp/kiln-models-XXXXXX)}
	st=0
	for m in resnet18 mobilenet_v2 squeezenet1_1 transformer; do
		[ -f "$dir/$m.onnx" ] || /usr/bin/python3 "$here/scripts/export_models.py" "$dir" "$m" >/dev/null 2>&1
		shape=1,3,224,224
		[ $m = transformer ] && shape=1,128,256
		/usr/bin/python3 -c "import numpy as n; n.random.default_rng(1).uniform(-1,1,[$shape]).astype(n.float32).tofile('$dir/$m.in.bin')"
		node "$here/tests/ort_reference.mjs" "$dir/$m.onnx" "$dir/$m.in.bin" $shape "$dir/$m.out.bin" || st=1
		"$build/kiln" compile "$dir/$m.onnx" --target opencl -o "$dir/$m.opencl.kmod" >/dev/null || st=1
		"$build/benchmarks/module_runner" "$dir/$m.opencl.kmod" --model --input "$dir/$m.in.bin" \
			--expect "$dir/$m.out.bin" --case $m || st=1
	done
	[ -n "${KILN_MODELS_DIR:-}" ] || rm -rf "$dir"
	exit $st ;;
tune_cpu)
	# the tuner's search (include/kiln/tune.h): random search against the
	# model-guided one (xgb) on the same task, matmul 1024^3 and a ResNet-18 3x3
	# convolution, RANDOM and XGB trials (1000 and 300); goal: xgb reaches random's
	# best within its 300. Then kiln's matmul with the best of both logs against
	# OpenBLAS (matmul_cpu, KILN_TUNING_LOG). Logs and plots go to KILN_BENCH_OUT (.).
	ninja -C "$build" kiln benchmarks/matmul_cpu >/dev/null
	random=${2:-1000} xgb=${3:-300}
	out=${KILN_BENCH_OUT:-$PWD}
	mm=1024,1024,1024 conv=1,64,56,56,64,3,3
	if [ -n "${KILN_BENCH_SMOKE:-}" ]; then random=6 xgb=20 mm=64,64,64 conv=1,8,10,10,8,3,3 out=$(mktemp -d /tmp/kiln-tune-bench-XXXXXX); fi
	for task in "matmul_$mm matmul $mm" "resnet18_conv_$conv conv2d $conv pad=1"; do
		set -- $task
		label=$(echo "$1" | tr , x) op=$2 shape=$3 attrs=${4:-}
		for search in random xgb; do
			eval "trials=\$$search"
			log="$out/tune_cpu_$label.$search.jsonl"
			rm -f "$log"
			"$build/kiln" tune "$op" --shape "$shape" ${attrs:+--attr "$attrs"} --search $search --trials "$trials" \
				--log "$log" >/dev/null 2>"$out/tune_cpu.err" || { cat "$out/tune_cpu.err" >&2; exit 1; }
		done
		python3 "$here/benchmarks/tune_curves.py" "$op $shape${attrs:+ $attrs}" "$out/tune_cpu_$label.random.jsonl" \
			"$out/tune_cpu_$label.xgb.jsonl" "$out/tune_cpu_$label.svg"
	done
	rm -f "$out/tune_cpu.err"
	cat "$out"/tune_cpu_matmul_*.jsonl >"$out/tune_cpu_matmul.jsonl"
	KILN_TUNING_LOG="$out/tune_cpu_matmul.jsonl" "$build/benchmarks/matmul_cpu" ${KILN_BENCH_SMOKE:+1}
	[ -z "${KILN_BENCH_SMOKE:-}" ] || rm -rf "$out"
	exit 0 ;;
tune_web)
	# wasm tuned in node (kiln tune --target wasm: the node runner), then the
	# matmul_web cases built with that log against TF.js-wasm and
	# onnxruntime-web in the same run; goal: matmul 1024^3 >= 1.5x TF.js-wasm.
	# TRIALS (100) per task; the log goes to KILN_BENCH_OUT (.).
	ninja -C "$build" >/dev/null
	out=${KILN_BENCH_OUT:-$PWD} trials=${2:-100} mm=1024,1024,1024
	if [ -n "${KILN_BENCH_SMOKE:-}" ]; then trials=4 mm=67,67,67 out=$(mktemp -d /tmp/kiln-tune-bench-XXXXXX); fi
	log="$out/tune_web_matmul.jsonl"
	rm -f "$log"
	"$build/kiln" tune matmul --shape $mm --target wasm --trials "$trials" --log "$log" 2>"$out/tune_web.err" ||
		{ cat "$out/tune_web.err" >&2; exit 1; }
	rm -f "$out/tune_web.err"
	KILN_TUNING_LOG="$log" sh "$0" matmul_web ${KILN_BENCH_SMOKE:+1}
	[ -z "${KILN_BENCH_SMOKE:-}" ] || rm -rf "$out"
	exit 0 ;;
tune_gpu)
	# the GPU matmul template's grid (kiln_tune_space for opencl) at 2048^3 and
	# 4096^3, and the WebGL template's (webgl) at 1024^3 and 2048^3, for a GPU
	# machine without LLVM (the H200 lent to us): every configuration is built
	# here into a module, and KILN_BENCH_OUT (build-gpu) gets them with
	# module_runner, libkiln_runtime, libffi and the peers: cuBLAS for OpenCL,
	# gles_probe's hand-written 4x4-per-fragment matmul for WebGL. There,
	# `sh DIR/grid.sh` times each (checked against double-precision dot products)
	# and prints JSON lines and the best per target and size against the default
	# and the peer. (On a GPU machine with kiln built: kiln tune matmul --target opencl|webgl.)
	dir=${KILN_BENCH_OUT:-$here/build-gpu}
	[ -z "${KILN_BENCH_SMOKE:-}" ] || dir=$(mktemp -d /tmp/kiln-tune-gpu-XXXXXX)
	ninja -C "$build" kiln benchmarks/module_runner benchmarks/gles_probe >/dev/null
	rm -rf "$dir" && mkdir -p "$dir/k"
	cp "$build/benchmarks/module_runner" "$build/benchmarks/gles_probe" "$build/libkiln_runtime.so" \
		"$here/benchmarks/cublas_matmul.py" "$dir/"
	cp -L "$(ldd "$build/libkiln_runtime.so" | sed -n 's/.*libffi.so.8 => \([^ ]*\).*/\1/p')" "$dir/"
	# KILN_BENCH_TARGETS, KILN_BENCH_SIZES, KILN_BENCH_CONFIGS: fewer targets, other sizes, and a list of
	# configurations instead of the whole space (a second pass over the best of a first one, at more sizes)
	for tg in ${KILN_BENCH_TARGETS:-opencl webgl}; do
		dflt="2048 4096"
		[ "$tg" = webgl ] && dflt="1024 2048" # fragment shaders run on a few of the chip's units
		[ -z "${KILN_BENCH_SMOKE:-}" ] || dflt=128
		dflt=${KILN_BENCH_SIZES:-$dflt}
		for n in $dflt; do
			"$build/kiln" build matmul --shape $n,$n,$n --target $tg -o "$dir/k/${tg}_${n}_default.kmod" >/dev/null
			# the smoke run (PoCL, llvmpipe) builds every fifth (5 is prime to the two-valued knobs, so each value is met)
			for cfg in ${KILN_BENCH_CONFIGS:-$("$build/kiln" tune matmul --shape $n,$n,$n --target $tg --list-space |
				awk -v every=${KILN_BENCH_SMOKE:+5} 'NR % (every ? every : 1) == 0')}; do
				"$build/kiln" build matmul --shape $n,$n,$n --target $tg --config "$cfg" \
					-o "$dir/k/${tg}_${n}_$(echo "$cfg" | tr , _).kmod" >/dev/null
			done
		done
	done
	# the GPU template's window reductions on opencl (KILN_BENCH_WINDOWS: lines of OP SHAPE ATTRS): ResNet-18's
	# direct 56x56 convolution and MobileNetV2's depthwise ones; w/list holds each module's function, its
	# FLOPs and the layer as cudnn_conv.py takes it (N,C,H,W,K,R,S,stride,pad,groups)
	mkdir -p "$dir/w" && : >"$dir/w/list"
	case " ${KILN_BENCH_TARGETS:-opencl} " in *" opencl "*)
		printf '%s\n' "${KILN_BENCH_WINDOWS:-conv2d 1,64,56,56,64,3,3 pad=1
depthwise_conv2d 1,32,112,112,3,3 pad=1
depthwise_conv2d 1,144,56,56,3,3 pad=1
depthwise_conv2d 1,144,56,56,3,3 stride=2,pad=1
depthwise_conv2d 1,576,14,14,3,3 pad=1}" | while read -r op shape attrs; do
			case $op in conv2d | depthwise_conv2d) ;; *)
				echo "run.sh: KILN_BENCH_WINDOWS takes conv2d and depthwise_conv2d lines, not '$op'" >&2
				exit 1 ;;
			esac
			[ -n "${KILN_BENCH_SMOKE:-}" ] && { [ "$op" = conv2d ] && shape=1,4,6,36,8,3,3 || shape=1,4,10,32,3,3; }
			IFS=, read -r bn bc bh bw b4 b5 b6 <<EOF2
$shape
EOF2
			st=$(echo "$attrs" | sed -n 's/.*stride=\([0-9]*\).*/\1/p') pd=$(echo "$attrs" | sed -n 's/.*pad=\([0-9]*\).*/\1/p')
			st=${st:-1} pd=${pd:-0}
			if [ "$op" = conv2d ]; then k=$b4 r=$b5 sw=$b6 g=1; else k=$bc r=$b4 sw=$b5 g=$bc; fi
			oh=$(((bh + 2 * pd - r) / st + 1)) ow=$(((bw + 2 * pd - sw) / st + 1))
			flops=$((2 * bn * k * oh * ow * bc / g * r * sw)) tag=$(echo "$op-$shape-$attrs" | tr ',=' '__')
			! grep -q "^${tag}_" "$dir/w/list" || continue # (the smoke run's shapes repeat)
			for cfg in default $("$build/kiln" tune $op --shape $shape --attr "$attrs" --target opencl --list-space |
				awk -v every=${KILN_BENCH_SMOKE:+5} 'NR % (every ? every : 1) == 0'); do
				"$build/kiln" build $op --shape $shape --attr "$attrs" --target opencl \
					$([ "$cfg" = default ] || echo --config "$cfg") -o "$dir/w/${tag}_$(echo "$cfg" | tr , _).kmod" >/dev/null
				echo "${tag}_$(echo "$cfg" | tr , _) $op $flops $bn,$bc,$bh,$bw,$k,$r,$sw,$st,$pd,$g" >>"$dir/w/list"
			done
		done
		cp "$here/benchmarks/cudnn_conv.py" "$dir/" ;;
	esac
	cat >"$dir/grid.sh" <<'GRID'
#!/bin/sh
# grid.sh (from benchmarks/run.sh tune_gpu): each module's matmul timed on this machine's GPU (OpenCL, GLES),
# then each window reduction's configurations against cuDNN
cd "$(dirname "$0")" && export LD_LIBRARY_PATH="$PWD${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
for f in k/*.kmod; do
	[ -e "$f" ] || continue
	b=${f#k/*_} n=${b%%_*}
	timeout 120 ./module_runner "$f" matmul --check-matmul --flops $((2 * n * n * n)) --bench tune_gpu --case "${f#k/}" ||
		echo "{\"bench\": \"tune_gpu\", \"case\": \"${f#k/}\", \"error\": \"failed\"}"
done >results.jsonl
while read -r name fn flops layer; do
	timeout 120 ./module_runner "w/$name.kmod" "$fn" --flops "$flops" --bench tune_gpu_window --case "$name" ||
		echo "{\"bench\": \"tune_gpu_window\", \"case\": \"$name\", \"error\": \"failed\"}"
done <w/list >windows.jsonl
[ -s w/list ] && python3 cudnn_conv.py $(cut -d' ' -f4 w/list | sort -u) >cudnn.jsonl 2>/dev/null || true
touch cudnn.jsonl
cat windows.jsonl cudnn.jsonl
sizes() { ls k | sed -n "s/^$1_\([0-9]*\)_default.kmod$/\1/p"; }
[ -z "$(sizes opencl)" ] || python3 cublas_matmul.py $(sizes opencl) >cublas.jsonl 2>/dev/null || true
[ -z "$(sizes webgl)" ] || ./gles_probe ${KILN_BENCH_SMOKE:+--small} >gles.jsonl 2>/dev/null || true
touch cublas.jsonl gles.jsonl
cat results.jsonl cublas.jsonl gles.jsonl
python3 - <<'PY'
import json
rows = [json.loads(l) for l in open("results.jsonl")]
peer = {("opencl", r["case"].split("x")[0]): (r["gflops"], "cublas") for r in map(json.loads, open("cublas.jsonl"))}
for r in map(json.loads, open("gles.jsonl")):
    if r.get("case", "").startswith("matmul ") and "gflops" in r:  # "matmul NxNxN, 4x4 per fragment"
        peer[("webgl", r["case"].split()[1].split("x")[0])] = (r["gflops"], "hand-written 4x4 per fragment")
for tg, n in sorted({tuple(r["case"].split("_")[:2]) for r in rows}, key=lambda k: (k[0], int(k[1]))):
    ok = [r for r in rows if r["case"].startswith(f"{tg}_{n}_") and "gflops" in r]
    if not ok:
        continue
    best = max(ok, key=lambda r: r["gflops"])
    dflt = next((r["gflops"] for r in ok if "default" in r["case"]), None)
    p, what = peer.get((tg, n), (None, None))
    print(json.dumps({"bench": "tune_gpu", "target": tg, "case": f"{n}x{n}x{n}", "configurations": len(ok),
                      "best": best["case"], "best_gflops": best["gflops"], "default_gflops": dflt, "peer": what,
                      "peer_gflops": p, "best_vs_peer": round(best["gflops"] / p, 3) if p else None}))
layers = {}
for line in open("w/list"):
    name, fn, flops, layer = line.split()
    layers.setdefault(layer, []).append(name)
wins = {r["case"]: r for r in map(json.loads, open("windows.jsonl")) if "kiln_ms" in r}
cudnn = {r["case"]: r["peer_ms"] for r in map(json.loads, open("cudnn.jsonl"))}
for layer, names in layers.items():
    ok = [wins[n] for n in names if n in wins]
    if not ok:
        continue
    best = min(ok, key=lambda r: r["kiln_ms"])
    dflt = next((r["kiln_ms"] for r in ok if r["case"].endswith("_default")), None)
    p = cudnn.get(layer)
    print(json.dumps({"bench": "tune_gpu_window", "layer": layer, "configurations": len(ok), "best": best["case"],
                      "best_ms": best["kiln_ms"], "default_ms": dflt, "peer": "cudnn", "peer_ms": p,
                      "peer_vs_best": round(p / best["kiln_ms"], 3) if p else None}))
PY
GRID
	echo "tune_gpu: $(($(ls "$dir/k" | wc -l) + $(wc -l <"$dir/w/list"))) modules in $dir; on the GPU machine: sh $dir/grid.sh"
	if [ -n "${KILN_BENCH_SMOKE:-}" ]; then
		# every configuration run here (PoCL, llvmpipe), the matmuls checked: a wrong one fails the smoke run
		KILN_BENCH_SMOKE=1 sh "$dir/grid.sh" >"$dir/smoke.log" 2>&1
		grep -q '"error"' "$dir/results.jsonl" "$dir/windows.jsonl" && { cat "$dir/smoke.log" >&2; exit 1; } # module_runner: off by > 1e-3
		[ "$(grep -c '"gflops"' "$dir/results.jsonl")" = "$(ls "$dir/k" | wc -l)" ] || { cat "$dir/smoke.log" >&2; exit 1; }
		# the window modules only run here (module_runner checks matmuls alone; test_tune checks these templates)
		[ -s "$dir/w/list" ] && [ "$(grep -c '"kiln_ms"' "$dir/windows.jsonl")" = "$(wc -l <"$dir/w/list")" ] ||
			{ cat "$dir/smoke.log" >&2; exit 1; }
		tail -2 "$dir/smoke.log"
		rm -rf "$dir"
	fi
	exit 0 ;;
gles_probe)
	# fragment-shader ceilings; --small for software rasterizers (llvmpipe)
	ninja -C "$build" benchmarks/gles_probe >/dev/null
	exec "$build/benchmarks/gles_probe" ${2:+"$2"} ;;
matmul_gpu | conv2d_gpu)
	ninja -C "$build" benchmarks/gpu_bench >/dev/null
	exec "$build/benchmarks/gpu_bench" "${name%_gpu}" "${2:-5}" ;;
esac
ninja -C "$build" "benchmarks/$name" >/dev/null
exec "$build/benchmarks/$name" "${2:-9}"
