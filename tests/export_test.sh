#!/bin/sh
# The example builds and exports matmul; a separate program that links only
# libkiln_runtime loads the library and calls it. Also checks that program
# never linked LLVM.
set -eu
example=$1 caller=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$example" "$dir/matmul.so" 256
"$caller" "$dir/matmul.so" 256
if ldd "$caller" | grep -q -i llvm; then
	echo "call_matmul links LLVM" >&2
	exit 1
fi
if ldd "$caller" | grep -q 'libkiln\.so'; then
	echo "call_matmul links the compiler library" >&2
	exit 1
fi
echo "export test passed"
