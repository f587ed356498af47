#!/bin/sh
# tests/cli_test.sh KILN — the kiln tool refuses bad input with a message and
# exit status 1 or 2, never a crash, a clamp or a silent acceptance: one case
# per class of issue 14 (numbers, sizes, attributes, targets, outputs).
set -u
kiln=$1
dir=$(mktemp -d /tmp/kiln-cli-XXXXXX)
trap 'rm -rf "$dir"' EXIT
fails=0 passed=0
# expect STATUS NEEDLE ARGS...: the exit status and a piece of the message on stderr
expect() {
	want=$1 needle=$2
	shift 2
	out=$("$kiln" "$@" 2>&1 >/dev/null)
	got=$?
	if [ "$got" != "$want" ] || ! printf '%s' "$out" | grep -qF -- "$needle"; then
		echo "FAIL: kiln $* -> status $got (want $want), stderr: $out (want '$needle')"
		fails=$((fails + 1))
	else
		passed=$((passed + 1))
	fi
}
# sizes: overflow, past the limit, past what strtoll can hold
expect 1 "more than 1099511627776 bytes" run relu --shape 1099511627776
expect 1 "the limit is KILN_MAX_ARRAY_BYTES" run relu --shape 4294967296,4294967296
expect 1 "more than 1099511627776" lower matmul --shape 4611686018427387904,2,2
expect 1 "is not a list of positive integers" run relu --shape 99999999999999999999,4,4
expect 1 "is not a list of positive integers" run relu --shape 0,4
expect 1 "is not a list of positive integers" run relu --shape 4,,4
# numbers of options
expect 2 "--threads takes a whole number from 1 to 1024" bench relu --threads -1
expect 2 "--threads takes a whole number" bench relu --threads abc
expect 2 "--threads takes a whole number" bench relu --threads 100000
expect 2 "--repeat takes a whole number from 1" bench relu --repeat 0
expect 2 "--repeat takes a whole number" bench relu --repeat -5
expect 2 "--seed takes a whole number" run relu --seed abc
expect 2 "needs a value" run relu --shape
# the tuner's options and configurations
expect 2 "--search takes xgb, random or grid, not 'anneal'" tune matmul --search anneal --log "$dir/t.jsonl"
expect 2 "--min-repeat-ms takes a whole number from 0 to 60000" tune matmul --min-repeat-ms -1 --log "$dir/t.jsonl"
expect 2 "--cooldown-ms takes a whole number from 0 to 60000" tune matmul --cooldown-ms 99999999 --log "$dir/t.jsonl"
expect 1 "cannot append to $dir/no/such/t.jsonl" tune matmul --log "$dir/no/such/t.jsonl"
expect 1 "the WebGL one (webgl); not 'webgpu-cpu'" tune matmul --target webgpu-cpu --log "$dir/t.jsonl"
expect 1 "a model tunes on llvm, wasm, opencl and webgl" tune "$dir/m.onnx" --target webgpu --log "$dir/t.jsonl"
expect 1 "no round measured the model (rpc: cannot connect to 127.0.0.1:1" tune /usr/share/libonnx-testdata/data/node/test_conv_with_strides_padding/model.onnx --target opencl --rpc 127.0.0.1:1 --key k --trials 2 --log "$dir/t.jsonl"
expect 1 "--config takes ROWS,VECTORS[,UNROLL,TILE,ORDER[,STAGES,PAD[,SPLIT]]]" run matmul --config 4,2,3,1,9
expect 1 "--config takes ROWS,VECTORS[,UNROLL,TILE,ORDER[,STAGES,PAD[,SPLIT]]]" run matmul --config 4,2,3,1,1,1
expect 1 "the CPU template has no shared-memory panels to double-buffer or pad" run matmul --config 4,2,3,1,1,2,1
expect 1 "unrolling by 8 does not divide the 36 steps of reduction 'k'" run matmul --shape 48,64,36 --config 4,1,8,1,1
expect 1 "a tile of 5 blocks does not divide the 12 blocks" run matmul --shape 48,64,36 --config 4,1,1,5,1
# attributes
expect 1 "unknown attribute 'strde'" lower conv2d --attr strde=2
expect 1 "attribute stride='abc' is not a number" lower conv2d --attr stride=abc
expect 1 "has no '='" lower conv2d --attr stride
expect 1 "stride=0 is out of range" lower conv2d --attr stride=0
expect 1 "dilation=0 is out of range" lower conv2d --attr dilation=0
expect 1 "groups=0 is out of range" lower conv2d --attr groups=0
expect 1 "pad=4000000000 is out of range" lower conv2d --attr pad=4000000000
expect 1 "pad=1000000000000 is out of range" lower conv2d --attr pad=1000000000000
expect 1 "must be a whole number" lower conv2d --attr stride=1.5
expect 1 "lists more than 8 numbers" lower add --attr bshape=1x1x1x1x1x1x1x1x1
expect 1 "unknown attribute 'alpha'" lower relu --attr alpha=2
# targets and outputs
expect 1 "unknown target 'cuda'" lower relu --target cuda
expect 1 "has an empty name in its list" build relu --target wasm,,webgl -o "$dir/b/"
expect 1 "names wasm twice" build relu --target wasm,wasm -o "$dir/b/"
expect 1 "a bundle is a folder" build relu --target web -o "$dir/b.kmod"
expect 1 "cannot write '/nonexistent-dir/x.so'" build relu -o /nonexistent-dir/x.so
expect 1 "writes a shared library (name it .so" build relu -o "$dir/m.kmod"
expect 2 "unknown option" run relu --bogus 1
# ONNX models: a missing file, a file that is not a model
expect 2 "onnx needs a model file" onnx
expect 1 "cannot open '/nonexistent/m.onnx'" onnx /nonexistent/m.onnx
printf 'not a protobuf at all' >"$dir/bad.onnx"
expect 1 "not an ONNX model (the protobuf does not decode" onnx "$dir/bad.onnx"
[ -e "$dir/b.kmod" ] && { echo "FAIL: a refused bundle left $dir/b.kmod"; fails=$((fails + 1)); }
# and the happy paths still work
"$kiln" run relu --shape 100 >/dev/null 2>&1 || { echo "FAIL: kiln run relu --shape 100"; fails=$((fails + 1)); }
conv=/usr/share/libonnx-testdata/data/node/test_conv_with_strides_padding/model.onnx
"$kiln" onnx "$conv" | grep -q "nodes: 1 (Conv x1)" || { echo "FAIL: kiln onnx $conv"; fails=$((fails + 1)); }
# whole models: compile, run, bench; and what is refused
expect 2 "compile needs a model and -o FILE.kmod" compile "$conv"
expect 2 "is not NAME=N,N,... with positive extents" compile "$conv" -o "$dir/c.kmod" --input-shape x=0,3
expect 1 "a shape is given for 'nosuch', which is not an input" compile "$conv" -o "$dir/c.kmod" --input-shape nosuch=1,1,7,5
expect 1 "has extent 7 in dimension 2, the shape given 8" compile "$conv" -o "$dir/c.kmod" --input-shape x=1,1,8,5
expect 1 "not an ONNX model" compile "$dir/bad.onnx" -o "$dir/c.kmod"
expect 1 "opset 6 of the default domain" compile /usr/share/libonnx-testdata/data/pytorch-converted/test_Conv2d/model.onnx -o "$dir/c.kmod"
expect 1 "LogSoftmax (node 0): operator 'LogSoftmax' is not supported" compile /usr/share/libonnx-testdata/data/node/test_logsoftmax_example_1/model.onnx -o "$dir/c.kmod"
printf 'KILNMOD\001junk' >"$dir/bad.kmod"
expect 1 "unsupported container version" run "$dir/bad.kmod"
"$kiln" compile "$conv" -o "$dir/c.kmod" | grep -q "wrote $dir/c.kmod: 1 kernels for llvm" || { echo "FAIL: kiln compile $conv"; fails=$((fails + 1)); }
"$kiln" run "$dir/c.kmod" | grep -q "output 'y': float32 \[1,1,4,3\]" || { echo "FAIL: kiln run c.kmod"; fails=$((fails + 1)); }
"$kiln" bench "$dir/c.kmod" --repeat 3 | grep -q "median" || { echo "FAIL: kiln bench c.kmod"; fails=$((fails + 1)); }
# .npy inputs and outputs
printf 'not numpy' >"$dir/bad.npy"
expect 1 "not a .npy file" run "$dir/c.kmod" --input "$dir/bad.npy" --input "$dir/bad.npy"
expect 2 "the model has 2 inputs, 1 --input files were given" run "$dir/c.kmod" --input "$dir/bad.npy"
"$kiln" run "$dir/c.kmod" -o "$dir/y.npy" >/dev/null && [ -s "$dir/y.npy" ] || { echo "FAIL: kiln run -o y.npy"; fails=$((fails + 1)); }
expect 1 "another shape" run "$dir/c.kmod" --input "$dir/y.npy" --input "$dir/y.npy"
head -c 128 "$dir/y.npy" >"$dir/short.npy"
expect 1 "holds 0 bytes of data, its shape and dtype say 48" run "$dir/c.kmod" --input "$dir/short.npy" --input "$dir/short.npy"
head -c 300 "$dir/c.kmod" >"$dir/cut.kmod"
expect 1 "cut.kmod" run "$dir/cut.kmod"
# rpc: bad arguments, no key, nobody listening
expect 2 "usage: kiln rpc server" rpc
expect 2 "unknown command 'bogus'" rpc bogus
expect 2 "rpc needs a key" rpc server
expect 2 "--port takes a whole number from 0 to 65535" rpc server --key k --port 99999
expect 2 "needs --rpc HOST:PORT" rpc devices --key k
expect 2 "--devices takes a comma list of llvm, opencl, webgl, not 'llvm,cuda'" rpc server --key k --devices llvm,cuda
expect 2 "--devices takes a comma list of llvm, opencl, webgl, not 'llvm,'" rpc server --key k --devices llvm,
expect 2 "unknown option '--nope'" rpc proxy --nope 1
expect 1 "--rpc takes HOST:PORT, not 'nonsense'" run relu --rpc nonsense --key k
expect 1 "cannot connect to 127.0.0.1:1" rpc devices --rpc 127.0.0.1:1 --key k
expect 1 "a key is 1 to 256 bytes" run relu --rpc 127.0.0.1:1 --key "$(head -c 300 /dev/zero | tr '\0' k)"
"$kiln" compile "$conv" -o "$dir/m.so" >/dev/null || { echo "FAIL: compile m.so"; fails=$((fails + 1)); }
expect 1 "is a shared library; --rpc uploads model modules" run "$dir/m.so" --rpc 127.0.0.1:1 --key k
echo "cli: $passed passed, $fails failed"
[ "$fails" = 0 ]
