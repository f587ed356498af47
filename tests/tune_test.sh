#!/bin/sh
# tests/tune_test.sh KILN — kiln tune and --tuning-log: trials in worker
# processes survive a crashing and a hanging candidate, every log line is a
# JSON record, apply-best picks the fastest error-free record of the task
# (and says when there is none), and a tuned build still matches the oracle.
set -u
kiln=$1
dir=$(mktemp -d /tmp/kiln-tune-XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# a grid search whose first candidates crash and hang: in a build worker of four at once, and in a
# worker that builds and measures
KILN_MEASURE_FAULT=crash:1,1,1,1,1 "$kiln" tune matmul --shape 64,64,64 --trials 6 --search grid --repeat 3 \
	--build-jobs 4 --log "$dir/a.jsonl" >"$dir/out" 2>"$dir/err" || { cat "$dir/out" "$dir/err"; fail "tune stopped at a crash"; }
KILN_MEASURE_FAULT=hang:1,1,1,2,1 "$kiln" tune matmul --shape 64,64,64 --trials 3 --search grid --repeat 3 --timeout 3 \
	--build-jobs 1 \
	--log "$dir/a.jsonl" >>"$dir/out" 2>>"$dir/err" || { cat "$dir/out" "$dir/err"; fail "tune stopped at a hang"; }
# a build worker of three that hangs is stopped at the timeout; the two beside it, waited for after it, are not lost
KILN_MEASURE_FAULT=hang:1,1,1,1,1 "$kiln" tune matmul --shape 64,64,64 --trials 3 --search grid --repeat 3 --timeout 10 \
	--build-jobs 3 --log "$dir/h.jsonl" >>"$dir/out" 2>>"$dir/err" || { cat "$dir/out" "$dir/err"; fail "tune stopped at a hang in a build"; }
grep -q '"config":{"rows":1,"vecs":1,"unroll":1,"tile":1,"order":1}.*"error":"build: timeout: no result within 10 s"' "$dir/h.jsonl" ||
	{ cat "$dir/h.jsonl"; fail "no build timeout record"; }
[ "$(grep -c '"error":""' "$dir/h.jsonl")" -eq 2 ] || { cat "$dir/h.jsonl"; fail "a hanging build took its group with it"; }
# a worker measuring a saved module that crashes
KILN_MEASURE_FAULT=crash-measure:1,1,1,2,1 "$kiln" tune matmul --shape 64,64,64 --trials 3 --search grid --repeat 3 \
	--build-jobs 2 --log "$dir/h.jsonl" >>"$dir/out" 2>>"$dir/err" || { cat "$dir/out" "$dir/err"; fail "tune stopped at a crash in measuring"; }
grep -Eq '"config":\{"rows":1,"vecs":1,"unroll":1,"tile":2,"order":1\}.*"error":"the worker (died \(signal 11\)|printed no result)' "$dir/h.jsonl" ||
	{ cat "$dir/h.jsonl"; fail "no record of the measuring crash"; }
[ "$(wc -l <"$dir/a.jsonl")" -eq 9 ] || fail "expected 9 records, got $(wc -l <"$dir/a.jsonl")"
# (a plain build dies of SIGSEGV; under ASan the sanitizer reports it and exits)
grep -Eq '"config":\{"rows":1,"vecs":1,"unroll":1,"tile":1,"order":1\}.*"error":"build: the worker (died \(signal 11\)|printed no result)' "$dir/a.jsonl" ||
	fail "no crash record"
grep -q '"config":{"rows":1,"vecs":1,"unroll":1,"tile":2,"order":1}.*"error":"timeout: no result within 3 s"' "$dir/a.jsonl" || fail "no timeout record"
[ -s "$dir/a.jsonl.svg" ] && grep -q "<polyline" "$dir/a.jsonl.svg" || fail "no plot"
# every line is one JSON object with the fields a record has
python3 - "$dir/a.jsonl" <<'PY' || fail "a log line is not a record"
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    for k in ("op", "shape", "attrs", "target", "device", "config", "median_ms", "gflops", "samples_ms", "error", "version", "time"):
        assert k in r, k
    assert r["error"] or (r["median_ms"] > 0 and len(r["samples_ms"]) >= 1), r
PY

# candidates built three at a time, each measured from the module its build worker saved: the same
# configurations in the same order as one at a time, every one checked or timed, nothing left in TMPDIR
mkdir "$dir/tmp"
for j in 1 3; do
	TMPDIR="$dir/tmp" "$kiln" tune matmul --shape 48,40,24 --trials 7 --search grid --repeat 2 --build-jobs $j \
		--log "$dir/p$j.jsonl" >"$dir/out" 2>&1 || { cat "$dir/out"; fail "tune --build-jobs $j"; }
done
python3 - "$dir/p1.jsonl" "$dir/p3.jsonl" <<'PY' || fail "building three at a time changed the trials"
import json, sys
one, three = ([json.loads(l) for l in open(p)] for p in sys.argv[1:])
assert len(one) == len(three) == 7, (len(one), len(three))
assert [r["config"] for r in one] == [r["config"] for r in three]
assert all(not r["error"] and r["median_ms"] > 0 for r in one + three), [r["error"] for r in one + three]
PY
[ -z "$(ls -A "$dir/tmp")" ] || { ls -R "$dir/tmp"; fail "tune left files in TMPDIR"; }

# apply-best: the fastest record without error, of this task and this machine only
cat >"$dir/b.jsonl" <<'JL'
{"op":"matmul","shape":"64,64,64","attrs":"","target":"llvm","config":{"rows":3,"vecs":1},"median_ms":5.0,"gflops":1,"samples_ms":[5.0],"error":""}
not a record
{"op":"matmul","shape":"64,64,64","attrs":"","target":"llvm","config":{"rows":2,"vecs":2},"median_ms":1.0,"gflops":1,"samples_ms":[1.0],"error":""}
{"op":"matmul","shape":"64,64,64","attrs":"","target":"llvm","config":{"rows":4,"vecs":1},"median_ms":0.5,"gflops":1,"samples_ms":[],"error":"wrong result"}
{"op":"matmul","shape":"32,64,64","attrs":"","target":"llvm","config":{"rows":5,"vecs":1},"median_ms":0.1,"gflops":1,"samples_ms":[0.1],"error":""}
{"op":"matmul","shape":"64,64,64","attrs":"","target":"llvm","config":{"rows":99,"vecs":1},"median_ms":0.01,"gflops":1,"samples_ms":[0.01],"error":""}
{"op":"matmul","shape":"64,64,64","attrs":"","target":"llvm","device":"llvm -mcpu=another-machine","config":{"rows":1,"vecs":1},"median_ms":0.02,"gflops":1,"samples_ms":[0.02],"error":""}
JL
"$kiln" lower matmul --shape 64,64,64 --tuning-log "$dir/b.jsonl" 2>&1 | head -1 >"$dir/which"
grep -q "the CPU template, 2 rows x 2 vectors (best of $dir/b.jsonl: 1.0000 ms)" "$dir/which" || { cat "$dir/which"; fail "apply-best picked another record"; }
"$kiln" run matmul --shape 64,64,64 --tuning-log "$dir/b.jsonl" | grep -q "within tolerance" || fail "the tuned build does not match the oracle"
"$kiln" run matmul --shape 48,64,64 --tuning-log "$dir/b.jsonl" 2>"$dir/err" >/dev/null || fail "no record must fall back to the default"
grep -q "has no record for matmul 48,64,64 on llvm (this machine): the default schedule" "$dir/err" ||
	fail "the fallback is not said"
"$kiln" run matmul --shape 64,64,64 --tuning-log "$dir/missing.jsonl" 2>"$dir/err" && fail "a missing log must be an error"
grep -q "cannot open" "$dir/err" || fail "no message for a missing log"

# a user's operator tunes too
"$kiln" tune "$(dirname "$0")/../examples/te/batched_einsum.kte" --trials 3 --repeat 3 --log "$dir/c.jsonl" >/dev/null 2>&1 ||
	fail "tune of a .kte file"
# a whole model: every convolution and matrix product tuned, the tuned model checked against the default
model=/usr/share/libonnx-testdata/data/node/test_conv_with_strides_padding/model.onnx
"$kiln" tune "$model" --trials 3 --repeat 3 --log "$dir/m.jsonl" >"$dir/out" 2>"$dir/err" ||
	{ cat "$dir/out" "$dir/err"; fail "tune of a model"; }
grep -q "tuned outputs within .* of the default's" "$dir/out" || fail "the tuned model was not checked"
grep -q '"op":"graph Conv","shape":"","attrs":"Conv \[1,1,7,5\] \[1,1,3,3\]' "$dir/m.jsonl" || fail "no record of the conv task"
"$kiln" compile "$model" -o "$dir/m.kmod" --tuning-log "$dir/m.jsonl" |
	grep -Eq "tuned configurations for (1 of 1 .*\(0 kept|0 of 1 .*\(1 kept the default)" ||
	fail "compile did not apply the model's log"
"$kiln" run "$dir/m.kmod" >/dev/null || fail "the tuned model does not run"
grep -q '"config":{"rows":0,"vecs":0,"unroll":0,"tile":0,"order":0}' "$dir/m.jsonl" ||
	fail "no record of the default schedule (apply-best would take a slower trial over it)"
# compile's report in $dir/out: each of mlp64's two tasks took its record or kept the default
both_tasks_took() {
	applied=$(sed -n 's/.*tuned configurations for \([0-2]\) of 2 .*/\1/p' "$dir/out")
	kept=$(sed -n 's/.*(\([0-2]\) kept the default.*/\1/p' "$dir/out")
	[ -n "$applied" ] && [ -n "$kept" ] && [ $((applied + kept)) -eq 2 ] ||
		{ cat "$dir/out"; fail "compile did not apply $1 to both tasks"; }
}
# on OpenCL (PoCL here) a model of two 64-row matrix products (the exporter's mlp64, Debian's torch):
# the GPU template per task, records naming the device, applied by compile
/usr/bin/python3 "$(dirname "$0")/../scripts/export_models.py" "$dir" mlp64 >/dev/null 2>&1 || fail "export of mlp64"
"$kiln" tune "$dir/mlp64.onnx" --target opencl --trials 3 --repeat 3 --log "$dir/mo.jsonl" >"$dir/out" 2>"$dir/err" ||
	{ cat "$dir/out" "$dir/err"; fail "tune of a model on opencl"; }
grep -q "tuned outputs within .* of the default's" "$dir/out" || fail "the tuned opencl model was not checked"
[ "$(grep -c '"op":"graph Gemm",.*"target":"opencl","device":"opencl: .* on .*"error":""' "$dir/mo.jsonl")" -eq 6 ] ||
	{ cat "$dir/mo.jsonl"; fail "the opencl model's records (two tasks, three rounds)"; }
grep -q '"stages":[12],"pad":[12]' "$dir/mo.jsonl" || fail "no record of the GPU template's knobs"
"$kiln" compile "$dir/mlp64.onnx" --target opencl -o "$dir/mo.kmod" --tuning-log "$dir/mo.jsonl" >"$dir/out" ||
	fail "compile with the opencl model's log"
both_tasks_took "the opencl model's log"
"$kiln" run "$dir/mo.kmod" >/dev/null || fail "the tuned opencl model does not run"
"$kiln" tune "$model" --target webgpu --trials 2 --log "$dir/mo.jsonl" 2>&1 | grep -q "a model tunes on llvm, wasm, opencl and webgl" ||
	fail "a webgpu model tuning is not refused with the reason"
"$kiln" tune "$model" --rpc 127.0.0.1:1 --key k --trials 2 --log "$dir/mo.jsonl" 2>&1 |
	grep -q "no round measured the model (rpc: cannot connect" || fail "a model's tuning with no server does not say why"
# the same model as wasm, measured in node (the node runner; each kernel timed inside whole runs
# there, MODEL_STEPS): records of this machine's wasm, applied to a wasm build and a web bundle's wasm
"$kiln" tune "$dir/mlp64.onnx" --target wasm --trials 4 --repeat 3 --log "$dir/mw.jsonl" >"$dir/out" 2>"$dir/err" ||
	{ cat "$dir/out" "$dir/err"; fail "tune of a model on wasm"; }
grep -q "tuned outputs within .* of the default's" "$dir/out" || fail "the tuned wasm model was not checked"
[ "$(grep -c '"op":"graph Gemm",.*"target":"wasm","device":"wasm: 128-bit vectors",.*"error":""' "$dir/mw.jsonl")" -eq 8 ] ||
	{ cat "$dir/mw.jsonl"; fail "the wasm model's records (two tasks, four rounds)"; }
# the trials were timed, not copied: a task's four times are not all one number
for task in 'Gemm \[64,96\]' 'Gemm \[64,128\]'; do
	[ "$(grep "$task" "$dir/mw.jsonl" | sed -n 's/.*"median_ms":\([^,]*\),.*/\1/p' | sort -u | wc -l)" -ge 2 ] ||
		{ cat "$dir/mw.jsonl"; fail "the wasm model's trials of $task all took the same time"; }
done
"$kiln" compile "$dir/mlp64.onnx" --target wasm -o "$dir/mw.kmod" --tuning-log "$dir/mw.jsonl" >"$dir/out" ||
	fail "compile with the wasm model's log"
both_tasks_took "the wasm model's log"
"$kiln" compile "$dir/mlp64.onnx" --target web -o "$dir/mwb/" --tuning-log "$dir/mw.jsonl" >"$dir/out" ||
	fail "a web bundle with the wasm model's log"
grep -Eq "tuned configurations for [0-2] of 2 wasm kernels \([0-2] kept" "$dir/out" ||
	{ cat "$dir/out"; fail "the bundle's wasm module did not take the wasm records"; }
grep -q "of 2 webgpu kernels" "$dir/out" && fail "the bundle's webgpu module took CPU-template records"
"$kiln" compile "$dir/mlp64.onnx" --target web -o "$dir/mwb/" --tuning-log "$dir/missing.jsonl" 2>/dev/null &&
	fail "a missing log must fail a bundle's compile"
"$kiln" compile "$model" -o "$dir/m.kmod" --tuning-log "$dir/missing.jsonl" 2>/dev/null && fail "a missing log must fail compile"

# wasm measured in node on this machine (the node runner: a private proxy and web/rpc-node.mjs,
# stopped afterwards); its records are this machine's wasm and apply to a wasm build here
"$kiln" tune matmul --shape 64,64,64 --target wasm --trials 4 --repeat 3 --log "$dir/w.jsonl" >"$dir/out" 2>&1 ||
	{ cat "$dir/out"; fail "tune for wasm in node"; }
grep -q "measuring in node on this machine" "$dir/out" || fail "the node runner did not say where it measures"
[ "$(grep -c '"target":"wasm","device":"wasm: 128-bit vectors","config"' "$dir/w.jsonl")" -eq 4 ] ||
	{ cat "$dir/w.jsonl"; fail "the node runner's records"; }
grep -q '"error":"[^"]' "$dir/w.jsonl" && { cat "$dir/w.jsonl"; fail "a trial in node failed"; }
"$kiln" lower matmul --shape 64,64,64 --target wasm --tuning-log "$dir/w.jsonl" 2>&1 | head -1 | grep -q "best of" ||
	fail "the node runner's records do not apply to a wasm build"
for pid in $(sed -n 's/.*pid \([0-9]*\).*pid \([0-9]*\))$/\1 \2/p' "$dir/out"); do
	kill -0 "$pid" 2>/dev/null && fail "the node runner left process $pid running"
done

# the GPU matmul template as WGSL measured in node on Dawn (here an adapter that is a CPU underneath):
# each trial checked or timed there, the records apply to the webgpu module of a web bundle
"$kiln" tune matmul --shape 128,128,64 --target webgpu --trials 3 --repeat 2 --log "$dir/g.jsonl" >"$dir/out" 2>&1 ||
	{ cat "$dir/out"; fail "tune for webgpu in node"; }
[ "$(grep -c '"target":"webgpu",.*"stages":[12],"pad":[12]},' "$dir/g.jsonl")" -eq 3 ] ||
	{ cat "$dir/g.jsonl"; fail "the webgpu records"; }
grep -q '"error":"[^"]' "$dir/g.jsonl" && { cat "$dir/g.jsonl"; fail "a webgpu trial in node failed"; }
"$kiln" build matmul --shape 128,128,64 --target web --tuning-log "$dir/g.jsonl" -o "$dir/gb/" >"$dir/out" 2>&1 ||
	{ cat "$dir/out"; fail "a bundle with the webgpu records"; }
grep -q "no record for matmul 128,128,64 on webgpu " "$dir/out" && fail "the webgpu records did not apply to the bundle"
grep -q "no record for matmul 128,128,64 on wasm " "$dir/out" || fail "the bundle's wasm module took a GPU record"
# the WebGL template on this machine's GLES (Mesa's llvmpipe): blocks per fragment, packing, unrolling
"$kiln" tune matmul --shape 128,128,64 --target webgl --trials 4 --repeat 2 --log "$dir/gl.jsonl" >"$dir/out" 2>&1 ||
	{ cat "$dir/out"; fail "tune for webgl"; }
[ "$(grep -c '"target":"webgl","device":"[^"]*llvmpipe[^"]*",.*"error":""' "$dir/gl.jsonl")" -eq 4 ] ||
	{ cat "$dir/gl.jsonl"; fail "the webgl records"; }
"$kiln" lower matmul --shape 128,128,64 --target webgl --tuning-log "$dir/gl.jsonl" >"$dir/out" 2>&1 ||
	{ cat "$dir/out"; fail "lower with the webgl records"; }
grep -q "the WebGL template, .* per fragment .*(best of " "$dir/out" || { head -3 "$dir/out"; fail "webgl records not applied"; }
# a whole model's webgl kernels, each timed inside whole runs on the GLES device (glFinish after each)
"$kiln" tune "$dir/mlp64.onnx" --target webgl --trials 3 --repeat 3 --log "$dir/glm.jsonl" >"$dir/out" 2>&1 ||
	{ cat "$dir/out"; fail "model tune for webgl"; }
grep -q "tuned outputs within .* of the default's" "$dir/out" || { cat "$dir/out"; fail "the webgl model was not checked"; }
[ "$(grep -c '"op":"graph Gemm",.*"target":"webgl",.*"error":""' "$dir/glm.jsonl")" = 6 ] ||
	{ cat "$dir/glm.jsonl"; fail "the webgl model's records"; }
"$kiln" compile "$dir/mlp64.onnx" --target webgl -o "$dir/glm.kmod" --tuning-log "$dir/glm.jsonl" >"$dir/out" 2>&1 ||
	{ cat "$dir/out"; fail "compile with the webgl model records"; }
both_tasks_took "the webgl model's log"
"$kiln" run "$dir/glm.kmod" -o "$dir/glm.npy" >"$dir/out" 2>&1 || { cat "$dir/out"; fail "the tuned webgl model does not run"; }
# one configuration for every task: 2 blocks of RGBA texels (mlp64's products take it), and refusals
"$kiln" compile "$dir/mlp64.onnx" --target webgl -o "$dir/glc.kmod" --config 2,4,4 >"$dir/out" 2>&1 ||
	{ cat "$dir/out"; fail "compile --config on webgl"; }
"$kiln" run "$dir/glc.kmod" -o "$dir/glc.npy" >/dev/null 2>&1 || fail "the --config webgl model does not run"
/usr/bin/python3 -c "import numpy as n, sys; sys.exit(0 if n.allclose(n.load(sys.argv[1]), n.load(sys.argv[2]), rtol=1e-5, atol=1e-6) else 1)" \
	"$dir/glm.npy" "$dir/glc.npy" || fail "the --config webgl model differs from the tuned one"
"$kiln" compile "$dir/mlp64.onnx" --target webgl -o "$dir/glc.kmod" --config 2,4,4 --tuning-log "$dir/glm.jsonl" 2>&1 |
	grep -q "not both" || fail "compile took --config and --tuning-log together"
"$kiln" compile "$dir/mlp64.onnx" --target web -o "$dir/glb/" --config 2,4,4 2>&1 | grep -q "one target's model" ||
	fail "a bundle took --config"

# measured on a remote server: its records name it, and apply there, not here
KILN_RPC_KEY=tune-key "$kiln" rpc server --port 0 >"$dir/server" 2>&1 &
server=$!
i=0
until grep -q "listening on port" "$dir/server"; do i=$((i + 1)); [ $i -le 100 ] || fail "no rpc server"; sleep 0.1; done
port=$(sed -n 's/.*listening on port \([0-9]*\)/\1/p' "$dir/server")
KILN_RPC_KEY=tune-key "$kiln" tune matmul --shape 64,64,64 --trials 3 --repeat 3 --rpc "127.0.0.1:$port" \
	--log "$dir/r.jsonl" >"$dir/out" 2>&1 || { cat "$dir/out"; kill $server; fail "tune over rpc"; }
grep -q "; remote 127.0.0.1:$port\"" "$dir/r.jsonl" || { kill $server; fail "the records do not name the remote machine"; }
KILN_RPC_KEY=tune-key "$kiln" run matmul --shape 64,64,64 --rpc "127.0.0.1:$port" --tuning-log "$dir/r.jsonl" \
	>"$dir/out" 2>&1 || { cat "$dir/out"; kill $server; fail "run over rpc with the remote's records"; }
grep -q "has no record" "$dir/out" && { kill $server; fail "the remote's records did not apply there"; }
"$kiln" run matmul --shape 64,64,64 --tuning-log "$dir/r.jsonl" 2>&1 | grep -q "has no record" ||
	{ kill $server; fail "a remote machine's records applied here"; }
KILN_RPC_KEY=wrong-key "$kiln" tune matmul --shape 64,64,64 --trials 2 --rpc "127.0.0.1:$port" --log "$dir/w.jsonl" \
	>/dev/null 2>&1 && { kill $server; fail "tune with a wrong key succeeded"; }
grep -q '"error":"rpc: remote: wrong key' "$dir/w.jsonl" || { kill $server; cat "$dir/w.jsonl"; fail "the wrong key is not in the log"; }
kill $server

# bad values
"$kiln" tune matmul --shape 64,64,64 --log "$dir/d.jsonl" --search bogus 2>/dev/null; [ $? -eq 2 ] || fail "--search bogus"
"$kiln" run matmul --shape 64,64,64 --config 0,99 2>/dev/null && fail "--config 0,99 accepted"
"$kiln" tune matmul --shape 64,64,64 --log "$dir/d.jsonl" --target webgpu-cpu 2>/dev/null && fail "tune on an emulated GPU accepted"

# the GPU matmul template on OpenCL (PoCL here): records name the device and apply to opencl builds
"$kiln" tune matmul --shape 128,96,32 --target opencl --trials 3 --repeat 3 --log "$dir/g.jsonl" >"$dir/out" 2>&1 ||
	{ cat "$dir/out"; fail "tune on opencl"; }
[ "$(grep -c '"target":"opencl","device":"opencl: .* on .*"error":""' "$dir/g.jsonl")" -eq 3 ] ||
	{ cat "$dir/g.jsonl"; fail "the opencl records"; }
"$kiln" lower matmul --shape 128,96,32 --target opencl --tuning-log "$dir/g.jsonl" 2>&1 | head -1 |
	grep -q "the GPU template, .* float4s per thread, k panels of .* (best of" || fail "the opencl records do not apply"
"$kiln" run matmul --shape 128,96,32 --target opencl --tuning-log "$dir/g.jsonl" | grep -q "within tolerance" ||
	fail "the tuned opencl build does not match the oracle"
echo "tune: ok"
