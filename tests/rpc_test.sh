#!/bin/sh
# tests/rpc_test.sh KILN TEST_RPC WEB_RUNTIME_DIR — RPC through the proxy, on
# loopback: starts `kiln rpc proxy`, a node server (web/rpc-node.mjs: wasm and
# Dawn) and a headless Chromium tab on the proxy's device page (wasm, WebGPU,
# WebGL2), then runs test_rpc's proxy cases against them (a native server at
# the proxy is started by test_rpc itself).
set -eu
kiln=$1
test_rpc=$2
webrt=$3
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/kiln-rpc-test-XXXXXX)
proxy= node= tab= server=
cleanup() {
	for p in $tab $node $proxy $server; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
fail() {
	echo "rpc_test: $*" >&2
	for f in "$work"/*.log; do echo "---- $f"; tail -20 "$f"; done >&2
	exit 1
}
# waits up to $3 tenths of a second for $2 in file $1
await() {
	i=0
	while ! grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -le "$3" ] || return 1
		sleep 0.1
	done
}
export XDG_RUNTIME_DIR="$work"
# under ASan the proxy checks for leaks when it exits (its status is checked at the end)
ASAN_OPTIONS=detect_leaks=1 "$kiln" rpc proxy --port 0 --web-port 0 --wait 3 --timeout 2 --max-message 64 \
	>"$work/proxy.log" 2>&1 &
proxy=$!
await "$work/proxy.log" "devices: open" 100 || fail "the proxy did not start"
port=$(sed -n 's/.*native servers: 127.0.0.1:\([0-9]*\)$/\1/p' "$work/proxy.log")
wport=$(sed -n 's|.*open http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$work/proxy.log")
KILN_WEB_RUNTIME_DIR="$webrt" node --experimental-websocket "$src/web/rpc-node.mjs" "ws://127.0.0.1:$wport/" node-key \
	>"$work/node.log" 2>&1 &
node=$!
NODE_PATH="$src/node_modules" node "$src/tests/rpc_tab.mjs" "$wport" tab-key >"$work/tab.log" 2>&1 &
tab=$!
await "$work/node.log" "registered" 600 || fail "the node server did not register"
await "$work/tab.log" "tab registered" 900 || fail "the Chromium tab did not register"
sed -n 's/^kiln rpc node: devices: /node server: /p' "$work/node.log"
grep "tab registered" "$work/tab.log"

# whole models: the same ONNX model compiled for each target, run there, against the local llvm run
"$kiln" rpc server --port 0 --key native-key >"$work/server.log" 2>&1 &
server=$!
await "$work/server.log" "listening on port" 100 || fail "the native server did not start"
sport=$(sed -n 's/.*listening on port \([0-9]*\)/\1/p' "$work/server.log")
model=/usr/share/libonnx-testdata/data/node/test_conv_with_strides_padding/model.onnx
for t in llvm opencl webgl wasm webgpu; do
	"$kiln" compile "$model" --target $t -o "$work/m_$t.kmod" >/dev/null || fail "compile for $t"
done
"$kiln" run "$work/m_llvm.kmod" -o "$work/ref.npy" >/dev/null || fail "the local run"
for case in "127.0.0.1:$sport native-key llvm opencl webgl" "127.0.0.1:$port node-key wasm webgpu" \
	"127.0.0.1:$port tab-key wasm webgpu webgl"; do
	set -- $case
	addr=$1 key=$2
	shift 2
	for t in "$@"; do
		"$kiln" run "$work/m_$t.kmod" --rpc "$addr" --key "$key" -o "$work/y_$t.npy" >"$work/model.log" 2>&1 ||
			fail "the model for $t on $key: $(cat "$work/model.log")"
		/usr/bin/python3 -c "import numpy as n, sys; a, b = n.load(sys.argv[1]), n.load(sys.argv[2]); sys.exit(0 if a.shape == b.shape and n.allclose(a, b, rtol=1e-4, atol=1e-5) else 1)" \
			"$work/ref.npy" "$work/y_$t.npy" || fail "the model's output for $t on $key differs from the local run"
		"$kiln" bench "$work/m_$t.kmod" --rpc "$addr" --key "$key" --repeat 3 >"$work/model.log" 2>&1 ||
			fail "bench of the model for $t on $key: $(cat "$work/model.log")"
		echo "model on $key, $t: $(cat "$work/model.log")"
	done
done
# a whole model tuned on the native server (llvm, opencl, webgl): each round's module built here and
# timed there inside whole runs; the records name the server and apply to a build for it
/usr/bin/python3 "$src/scripts/export_models.py" "$work" mlp64 >/dev/null 2>&1 || fail "export of mlp64"
for t in llvm opencl webgl; do
	"$kiln" tune "$work/mlp64.onnx" --target $t --trials 3 --repeat 3 --rpc "127.0.0.1:$sport" --key native-key \
		--log "$work/ntune_$t.jsonl" >"$work/tune.log" 2>&1 || fail "model tune for $t on the server: $(cat "$work/tune.log")"
	grep -q "tuned outputs within .* of the default's" "$work/tune.log" || fail "the server's tuned $t model was not checked"
	grep -q "apply it with: kiln compile .* --rpc 127.0.0.1:$sport" "$work/tune.log" || fail "the $t hint does not name the server"
	[ "$(grep -c '"op":"graph Gemm",.*"target":"'$t'",.*; remote 127.0.0.1:'"$sport"'",.*"error":""' "$work/ntune_$t.jsonl")" = 6 ] ||
		fail "model tune for $t on the server: $(cat "$work/ntune_$t.jsonl")"
	"$kiln" compile "$work/mlp64.onnx" --target $t -o "$work/nt.kmod" --tuning-log "$work/ntune_$t.jsonl" \
		--rpc "127.0.0.1:$sport" >"$work/tune.log" 2>&1 || fail "compile with the server's $t records: $(cat "$work/tune.log")"
	applied=$(sed -n 's/.*tuned configurations for \([0-2]\) of 2 .*/\1/p' "$work/tune.log")
	kept=$(sed -n 's/.*(\([0-2]\) kept the default.*/\1/p' "$work/tune.log")
	[ -n "$applied" ] && [ -n "$kept" ] && [ $((applied + kept)) -eq 2 ] ||
		fail "the server's $t records did not apply to a build for it: $(cat "$work/tune.log")"
	"$kiln" run "$work/nt.kmod" --rpc "127.0.0.1:$sport" --key native-key >"$work/tune.log" 2>&1 ||
		fail "the tuned $t model on the server: $(cat "$work/tune.log")"
done
kill $server

# tuning wasm kernels in the tab: each trial built here, measured there, the first and every best checked
"$kiln" tune matmul --shape 64,64,64 --target wasm --trials 3 --repeat 3 --rpc "127.0.0.1:$port" --key tab-key \
	--log "$work/tune.jsonl" >"$work/tune.log" 2>&1 || fail "tune in the tab: $(cat "$work/tune.log")"
[ "$(grep -c '"error":""' "$work/tune.jsonl")" = 3 ] || fail "tune in the tab: trials failed: $(cat "$work/tune.jsonl")"
grep -q "\"target\":\"wasm\".*; remote 127.0.0.1:$port" "$work/tune.jsonl" || fail "the tab's records do not name it"
"$kiln" run matmul --shape 64,64,64 --target wasm --rpc "127.0.0.1:$port" --key tab-key --tuning-log "$work/tune.jsonl" \
	>"$work/tune.log" 2>&1 || fail "run with the tab's tuning log: $(cat "$work/tune.log")"
grep -q "has no record" "$work/tune.log" && fail "the tab's records did not apply there"
# the WebGL template in the tab's WebGL2: 4 and 8 blocks per fragment, each a render target gathered into
# place by one more draw, checked here against the oracle; then tuned there (its records name the tab, and apply there)
for cfg in 4,4,4,1,1 8,1,2,1,1; do
	"$kiln" run matmul --shape 64,48,96 --target webgl --config $cfg --rpc "127.0.0.1:$port" --key tab-key \
		>"$work/gl.log" 2>&1 || fail "the WebGL template ($cfg) in the tab: $(cat "$work/gl.log")"
done
"$kiln" tune matmul --shape 64,64,64 --target webgl --trials 3 --repeat 3 --rpc "127.0.0.1:$port" --key tab-key \
	--log "$work/gltune.jsonl" >"$work/tune.log" 2>&1 || fail "webgl tune in the tab: $(cat "$work/tune.log")"
[ "$(grep -c '"target":"webgl",.*; remote 127.0.0.1:'"$port"'",.*"error":""' "$work/gltune.jsonl")" = 3 ] ||
	fail "webgl tune in the tab: $(cat "$work/gltune.jsonl")"
"$kiln" run matmul --shape 64,64,64 --target webgl --rpc "127.0.0.1:$port" --key tab-key --tuning-log \
	"$work/gltune.jsonl" >"$work/tune.log" 2>&1 || fail "webgl run with the tab's tuning log: $(cat "$work/tune.log")"
grep -q "has no record" "$work/tune.log" && fail "the tab's webgl records did not apply there"
# a whole model's wasm kernels tuned in the tab: each round's model built here, each kernel timed
# there inside whole runs (MODEL_STEPS), the tuned model checked against the default one there;
# the exporter's mlp64 (two 64-row matrix products, Debian's torch; exported above): the test's conv
# kernel runs below the tab's clock resolution once optimized
"$kiln" tune "$work/mlp64.onnx" --target wasm --trials 3 --repeat 3 --rpc "127.0.0.1:$port" --key tab-key \
	--log "$work/mtune.jsonl" >"$work/tune.log" 2>&1 || fail "model tune in the tab: $(cat "$work/tune.log")"
grep -q "tuned outputs within .* of the default's" "$work/tune.log" || fail "the tab's tuned model was not checked"
grep -q "apply it with: kiln compile .* --rpc 127.0.0.1:$port" "$work/tune.log" || fail "the hint does not name the tab"
[ "$(grep -c '"op":"graph Gemm",.*"target":"wasm",.*; remote 127.0.0.1:'"$port"'",.*"error":""' "$work/mtune.jsonl")" = 6 ] ||
	fail "model tune in the tab: $(cat "$work/mtune.jsonl")"
# its records apply to a build for the tab (compile --rpc), not to one for this machine
"$kiln" compile "$work/mlp64.onnx" --target wasm -o "$work/mt.kmod" --tuning-log "$work/mtune.jsonl" \
	--rpc "127.0.0.1:$port" >"$work/tune.log" 2>&1 || fail "compile with the tab's model records: $(cat "$work/tune.log")"
applied=$(sed -n 's/.*tuned configurations for \([0-2]\) of 2 .*/\1/p' "$work/tune.log")
kept=$(sed -n 's/.*(\([0-2]\) kept the default.*/\1/p' "$work/tune.log")
[ -n "$applied" ] && [ -n "$kept" ] && [ $((applied + kept)) -eq 2 ] ||
	fail "the tab's model records did not apply to a build for it: $(cat "$work/tune.log")"
"$kiln" compile "$work/mlp64.onnx" --target wasm -o "$work/mt.kmod" --tuning-log "$work/mtune.jsonl" >"$work/tune.log" 2>&1 ||
	fail "compile with the tab's model records, here"
grep -q "tuned configurations for 0 of 2 .*(0 kept" "$work/tune.log" ||
	fail "the tab's model records applied to a build for this machine: $(cat "$work/tune.log")"

KILN_TEST_PROXY=$port KILN_TEST_WEB_PORT=$wport KILN_TEST_NODE_KEY=node-key KILN_TEST_TAB_KEY=tab-key KILN_TEST_TAB_PID=$tab \
	CK_RUN_CASE="through the proxy" "$test_rpc" || fail "test_rpc through the proxy failed"
# the proxy ends cleanly on SIGTERM, every connection and parcel freed
kill -TERM "$proxy"
st=0
wait "$proxy" || st=$?
proxy=
[ "$st" = 0 ] || fail "the proxy exited with status $st on SIGTERM (a leak under ASan?)"
