#!/bin/sh
# tests/models_test.sh MODELS_EXE — whole models against onnxruntime-node:
# ResNet-18, MobileNetV2, SqueezeNet 1.1 and the 2-layer transformer encoder,
# exported by scripts/export_models.py (Debian's torch, random weights, fixed
# seed), each compiled for llvm, opencl (PoCL) and webgl (EGL), run on the same
# random input as onnxruntime-node's CPU provider, outputs within 1e-4 of the
# output's scale (benchmarks/models does the comparing).
set -u
models=$1
src=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d /tmp/kiln-models-XXXXXX)
trap 'rm -rf "$dir"' EXIT
/usr/bin/python3 "$src/scripts/export_models.py" "$dir" >/dev/null 2>"$dir/export.log" || {
	cat "$dir/export.log" >&2
	echo "models: the export failed (apt install python3-torch python3-torchvision)" >&2
	exit 1
}
fails=0
for t in llvm opencl webgl; do
	for m in resnet18 mobilenet_v2 squeezenet1_1 transformer; do
		if "$models" "$dir/$m.onnx" --target $t --tol 1e-4; then :; else
			echo "FAIL: $m on $t" >&2
			fails=$((fails + 1))
		fi
	done
done
echo "models: $fails failed"
[ "$fails" = 0 ]
