#!/bin/sh
# The example builds and exports matmul; a separate program that links only
# libkiln_runtime loads the library and calls it; another links the library
# itself at build time. Checks that neither program nor the runtime links LLVM.
set -eu
example=$1 caller=$2 runtime=$3
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
if ldd "$runtime" | grep -q -i llvm; then
	echo "libkiln_runtime links LLVM" >&2
	exit 1
fi

# linked, not loaded: the exported function is an ordinary C symbol
cat > "$dir/linked.c" <<'EOC'
#include <stdio.h>
int matmul(float *A, float *B, float *C);
int main(void)
{
	static float A[256 * 256], B[256 * 256], C[256 * 256];
	for (int i = 0; i < 256 * 256; i++) {
		A[i] = (float)(i % 7) - 3;
		B[i] = (float)(i % 5) - 2;
	}
	if (matmul(A, B, C) != 0)
		return 1;
	double want = 0;
	for (int k = 0; k < 256; k++)
		want += (double)A[3 * 256 + k] * B[k * 256 + 5];
	printf("linked call: C[3][5] = %g, expected %g\n", C[3 * 256 + 5], want);
	return C[3 * 256 + 5] == (float)want ? 0 : 1;
}
EOC
# in the sanitizer build the runtime is instrumented: so must the program be
san=
if ldd "$runtime" | grep -q libasan; then san="-fsanitize=address,undefined"; fi
# the exported library carries no RUNPATH into the build folder: a program
# finds libkiln_runtime where it finds its own libraries (here: its rpath)
if readelf -d "$dir/matmul.so" | grep -q -E 'RUNPATH|RPATH'; then
	echo "the exported library carries a RUNPATH:" >&2
	readelf -d "$dir/matmul.so" | grep -E 'RUNPATH|RPATH' >&2
	exit 1
fi
${CC:-cc} $san -o "$dir/linked" "$dir/linked.c" "$dir/matmul.so" -Wl,-rpath,"$dir" -Wl,-rpath,"$(dirname "$runtime")"
"$dir/linked"
# the runtime links no device library: OpenCL, EGL and GLES are opened when a
# device is first used, so a CPU deployment runs where they are missing
if readelf -d "$runtime" | grep NEEDED | grep -q -E 'OpenCL|EGL|GLES'; then
	echo "libkiln_runtime links a device library:" >&2
	readelf -d "$runtime" | grep NEEDED >&2
	exit 1
fi
echo "export test passed"
