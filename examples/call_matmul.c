/*
 * call_matmul.c — a plain C program that uses a library exported by kiln.
 * It links only libkiln_runtime (never LLVM or the compiler) and calls the
 * kernel two ways: by its C signature after dlopen, and through the
 * runtime's checked call. Build a library first with examples/matmul.
 *
 *   ./call_matmul matmul.so [N]
 */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "kiln/runtime.h"

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s LIB.so [N]\n", argv[0]);
		return 2;
	}
	int64_t N = argc > 2 ? atoll(argv[2]) : 512;
	float *A = malloc(sizeof(float) * N * N), *B = malloc(sizeof(float) * N * N), *C = calloc((size_t)(N * N), sizeof(float));
	for (int64_t i = 0; i < N * N; i++) {
		A[i] = (float)((i * 7) % 13) / 13.0f - 0.5f;
		B[i] = (float)((i * 5) % 11) / 11.0f - 0.5f;
	}

	/* 1. by its C signature */
	void *dl = dlopen(argv[1], RTLD_NOW);
	if (!dl) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 1;
	}
	int (*matmul)(float *, float *, float *) = (int (*)(float *, float *, float *))dlsym(dl, "matmul");
	if (!matmul || matmul(A, B, C) != 0) {
		fprintf(stderr, "matmul symbol missing or call failed\n");
		return 1;
	}
	double maxerr = 0;
	for (int64_t i = 0; i < N; i += N / 8 ? N / 8 : 1)
		for (int64_t j = 0; j < N; j++) {
			double ref = 0;
			for (int64_t k = 0; k < N; k++)
				ref += (double)A[i * N + k] * B[k * N + j];
			maxerr = fmax(maxerr, fabs(ref - C[i * N + j]));
		}
	printf("dlopen + plain call: max error %.3g\n", maxerr);

	/* 2. through the runtime, which checks the arguments against the metadata */
	kiln_module *m = kiln_module_load(argv[1]);
	if (!m) {
		fprintf(stderr, "load: %s\n", kiln_rt_last_error());
		return 1;
	}
	const kiln_arg_info *info;
	int nargs = kiln_module_function_args(m, "matmul", &info);
	printf("module: %d function(s); matmul takes %d arguments:", kiln_module_num_functions(m), nargs);
	for (int i = 0; i < nargs; i++)
		printf(" %s[%lldx%lld]%s", info[i].name, (long long)info[i].shape[0], (long long)info[i].shape[1],
		       info[i].is_output ? " (out)" : "");
	printf("\n");
	kiln_array *a = kiln_array_wrap(A, 2, (int64_t[]){N, N}, (kiln_dtype){KILN_FLOAT, 32, 1});
	kiln_array *b = kiln_array_wrap(B, 2, (int64_t[]){N, N}, (kiln_dtype){KILN_FLOAT, 32, 1});
	kiln_array *c = kiln_array_wrap(C, 2, (int64_t[]){N, N}, (kiln_dtype){KILN_FLOAT, 32, 1});
	int rc = kiln_module_call(m, "matmul", (kiln_array *[]){a, b, c}, 3);
	printf("checked call: %s\n", rc ? kiln_rt_last_error() : "ok");
	/* a wrong shape is refused with a message, not a crash */
	kiln_array *small = kiln_array_wrap(A, 2, (int64_t[]){N, N - 1}, (kiln_dtype){KILN_FLOAT, 32, 1});
	int bad = kiln_module_call(m, "matmul", (kiln_array *[]){a, small, c}, 3);
	printf("wrong shape: %s\n", bad ? kiln_rt_last_error() : "ACCEPTED (bug)");
	kiln_array_free(a);
	kiln_array_free(b);
	kiln_array_free(c);
	kiln_array_free(small);
	kiln_module_free(m);
	dlclose(dl);
	free(A);
	free(B);
	free(C);
	return maxerr < 1e-3 && rc == 0 && bad != 0 ? 0 : 1;
}
