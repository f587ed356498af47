#!/bin/sh
# tests/model_export_test.sh KILN RUN_MODEL MODELS — a model exported as ONE
# shared library (code, plan and weights): run by a program that links only
# libkiln_runtime (examples/run_model.c), and called through its plain C entry
# point by a program that includes no kiln header (examples/model_run_plain.c,
# linked against the library). Both must print the same output, from a folder
# without the .onnx (the weights are in the library), and the library must match
# onnxruntime (benchmarks/models on the same .onnx).
set -eu
kiln=$1 run_model=$2 models=$3
src=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d /tmp/kiln-model-export-XXXXXX)
trap 'rm -rf "$dir"' EXIT
/usr/bin/python3 "$src/scripts/export_models.py" "$dir" mlp >/dev/null 2>&1 || {
	echo "model export: cannot export the test model (apt install python3-torch)" >&2
	exit 1
}
"$models" "$dir/mlp.onnx" >/dev/null
"$kiln" compile "$dir/mlp.onnx" -o "$dir/m.so" >/dev/null
mkdir "$dir/app"
mv "$dir/m.so" "$dir/app/libm.so"
rm "$dir/mlp.onnx"
a=$("$run_model" "$dir/app/libm.so" | sed 's/^[^:]*: //')
runtime_dir=$(dirname "$(ldd "$run_model" | awk '/libkiln_runtime/ {print $3}')")
# in the sanitizer build the runtime is instrumented: so must the program be
san=
if ldd "$run_model" | grep -q libasan; then san="-fsanitize=address,undefined"; fi
${CC:-cc} $san -o "$dir/app/plain" "$src/examples/model_run_plain.c" -L"$dir/app" -lm -Wl,-rpath,"$dir/app" \
	-Wl,-rpath,"$runtime_dir" "$dir/app/libm.so"
b=$("$dir/app/plain" 64 10 | sed 's/^[^:]*: //')
if [ "$a" != "$b" ]; then
	echo "run_model printed '$a', model_run_plain '$b'" >&2
	exit 1
fi
echo "model export: both programs print: $a"
