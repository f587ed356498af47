/*
 * module_runner — runs and times a saved kiln module with only
 * libkiln_runtime (no LLVM): how kernels built here run on a GPU machine.
 *
 *   module_runner MODULE.kmod FN [--check-matmul] [--flops F] [--bench NAME --case C]
 *
 * Inputs are random, shaped from the module's metadata; the median of the
 * device-timed samples is printed as one JSON line. --check-matmul compares
 * sampled outputs of C = A @ B with double-precision dot products.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/runtime.h"
#include "kiln/opencl.h"

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s MODULE FN [--check-matmul] [--flops F] [--bench NAME] [--case C]\n", argv[0]);
		return 2;
	}
	int check = 0;
	double flops = 0;
	const char *bench = "module", *cas = argv[2];
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--check-matmul"))
			check = 1;
		else if (!strcmp(argv[i], "--flops") && i + 1 < argc)
			flops = atof(argv[++i]);
		else if (!strcmp(argv[i], "--bench") && i + 1 < argc)
			bench = argv[++i];
		else if (!strcmp(argv[i], "--case") && i + 1 < argc)
			cas = argv[++i];
	}
	kiln_module *m = kiln_module_load(argv[1]);
	if (!m) {
		fprintf(stderr, "load: %s\n", kiln_rt_last_error());
		return 1;
	}
	const kiln_arg_info *info;
	int n = kiln_module_function_args(m, argv[2], &info);
	if (n < 0) {
		fprintf(stderr, "%s\n", kiln_rt_last_error());
		return 1;
	}
	kiln_array *args[64];
	for (int i = 0; i < n; i++) {
		args[i] = kiln_array_empty(info[i].ndim, info[i].shape, info[i].dtype);
		if (!info[i].is_output)
			kiln_array_fill_random(args[i], 17 + (uint64_t)i, -1, 1);
	}
	kiln_timing t;
	kiln_time_opts o = {.warmup = 2, .repeat = 7, .min_repeat_ms = 20};
	if (kiln_module_time(m, argv[2], args, n, &o, &t)) {
		fprintf(stderr, "run: %s\n", kiln_rt_last_error());
		return 1;
	}
	double maxerr = -1;
	if (check && n == 3) {
		int64_t M = info[0].shape[0], K = info[0].shape[1], N = info[1].shape[1];
		const float *A = args[0]->data, *B = args[1]->data, *C = args[2]->data;
		maxerr = 0;
		for (int s = 0; s < 64; s++) {
			int64_t i = (s * 7919) % M, j = (s * 104729) % N;
			double ref = 0;
			for (int64_t k = 0; k < K; k++)
				ref += (double)A[i * K + k] * B[k * N + j];
			maxerr = fmax(maxerr, fabs(ref - C[i * N + j]) / (1 + fabs(ref)));
		}
	}
	const char *target = kiln_module_target(m);
	const char *dev = !strcmp(target, "webgl") ? kiln_gles_device_name() : !strcmp(target, "opencl") ? kiln_opencl_device_name() : "cpu";
	printf("{\"bench\": \"%s\", \"case\": \"%s\", \"target\": \"%s\", \"device\": \"%s\", \"kiln_ms\": %.4f, "
	       "\"samples\": %d, \"gflops\": %.1f, \"max_rel_err\": %.2g}\n",
	       bench, cas, target, dev ? dev : "?", t.median_ms, t.nsamples, flops ? flops / t.median_ms / 1e6 : 0, maxerr);
	kiln_timing_free(&t);
	for (int i = 0; i < n; i++)
		kiln_array_free(args[i]);
	kiln_module_free(m);
	return maxerr > 1e-3 ? 1 : 0;
}
