#!/bin/sh
# Installs kiln's dependencies (Debian 12, as root), builds it, and runs the
# demo on every target this machine can run. Safe to run again.
set -eu
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
apt() { apt-get -o DPkg::Lock::Timeout=1200 "$@"; }
if [ "$(id -u)" = 0 ]; then
	apt update -qq
	apt install -y -qq --no-install-recommends \
		build-essential pkg-config meson ninja-build \
		llvm-19-dev lld-19 libffi-dev check libsubunit-dev \
		libopenblas-dev libdnnl-dev libonnx-dev libonnx-testdata protobuf-c-compiler libprotobuf-c-dev libxxhash-dev libcjson-dev libwebsockets-dev libxgboost-dev valgrind \
		pocl-opencl-icd ocl-icd-opencl-dev opencl-headers clinfo \
		libegl-dev libgles-dev libegl-mesa0 libgl1-mesa-dri libgbm1 \
		clang-19 libclang-rt-19-dev emscripten nodejs chromium \
		python3-torch python3-torchvision >/dev/null
	# Debian's nodejs comes without npm (NodeSource's includes it)
	command -v npm >/dev/null || apt install -y -qq --no-install-recommends npm >/dev/null
else
	echo "setup.sh: not root, skipping apt (dependencies must already be installed)" >&2
fi
# the JavaScript side's packages (package.json): Dawn for node (webgpu),
# playwright-core to drive Debian's chromium (it never downloads a browser), and
# onnxruntime-node, the reference for whole models (its CPU provider is in the
# package; ONNXRUNTIME_NODE_INSTALL=skip stops its install script fetching GPU ones)
ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund --loglevel=error >/dev/null
[ -d build ] || meson setup build >/dev/null
ninja -C build

demo=$(mktemp -d)
trap 'rm -rf "$demo"' EXIT
echo
echo "== demo, target llvm (this CPU): declare, schedule, build, run, time, export matmul"
build/examples/matmul "$demo/matmul.so" 512 | tail -n 3
echo "== a program linking only libkiln_runtime calls the exported library"
build/examples/call_matmul "$demo/matmul.so" 512
echo "== ResNet-18's first 3x3 convolution, checked against the oracle"
build/kiln run conv2d --shape 1,64,56,56,64,3,3 --attr pad=1
build/kiln bench conv2d --shape 1,64,56,56,64,3,3 --attr pad=1
echo "== target opencl: the same operators on the OpenCL device here"
build/kiln devices
build/kiln run matmul --shape 256,256,256 --target opencl
build/kiln run conv2d --shape 1,64,28,28,64,3,3 --attr pad=1 --target opencl
build/kiln bench matmul --shape 256,256,256 --target opencl
echo "== target webgl: GLSL ES 3.00 fragment shaders on the native GLES device (EGL)"
build/kiln run matmul --shape 256,256,256 --target webgl
build/kiln run softmax --shape 64,1000 --target webgl
echo "== target webgpu: the WGSL of a small kernel"
build/kiln lower relu --shape 1000 --target webgpu | sed -n '/webgpu source/,$p'
echo "== the web: a bundle of matmul for webgpu, webgl and wasm, run by the JS API in node and in"
echo "   headless Chromium (serve it to a browser with: build/kiln serve $demo/matmul-web)"
build/kiln build matmul --shape 256,256,256 --target web -o "$demo/matmul-web/"
node scripts/web_demo.mjs "$demo/matmul-web" 2>&1 | grep -v '^Warning: maxDynamic'

