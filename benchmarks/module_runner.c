/*
 * module_runner — runs and times a saved kiln module with only
 * libkiln_runtime (no LLVM): how kernels built here run on a GPU machine.
 *
 *   module_runner MODULE.kmod FN [--check-matmul] [--flops F] [--bench NAME --case C]
 *   module_runner MODEL.kmod --model [--input IN.bin] [--expect OUT.bin] [--case C]
 *
 * With --model the module is a whole model (kiln compile): its first input
 * is read raw from IN.bin (float32) or random, runs are timed (wall clock,
 * medians of 20 after 5 warm-ups), and the first output is compared with
 * OUT.bin (what onnxruntime gave on the same input) relative to its scale.
 * Inputs are random, shaped from the module's metadata; the median of the
 * device-timed samples is printed as one JSON line. --check-matmul compares
 * sampled outputs of C = A @ B with double-precision dot products.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/model.h"
#include "kiln/runtime.h"
#include "kiln/opencl.h"

static void *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	void *p = malloc(sz > 0 ? (size_t)sz : 1);
	*n = p && sz > 0 ? fread(p, 1, (size_t)sz, f) : 0;
	fclose(f);
	return p;
}

static int run_model(const char *path, const char *input, const char *expect, const char *cas)
{
	kiln_model *m = kiln_model_load(path);
	if (!m)
		return fprintf(stderr, "load: %s\n", kiln_rt_last_error()), 1;
	const kiln_arg_info *in = kiln_model_input_info(m, 0);
	kiln_array *x = kiln_array_empty(in->ndim, in->shape, in->dtype);
	size_t n = 0, bytes = (size_t)kiln_array_numel(x) * kiln_dtype_bytes(in->dtype);
	void *data = input ? slurp(input, &n) : NULL;
	if (input && n != bytes)
		return fprintf(stderr, "%s: %zu bytes, the input takes %zu\n", input, n, bytes), 1;
	if (data)
		memcpy(x->data, data, bytes);
	else
		kiln_array_fill_random(x, 1, -1, 1);
	free(data);
	if (kiln_model_set_input(m, in->name, x))
		return fprintf(stderr, "input: %s\n", kiln_rt_last_error()), 1;
	kiln_timing t;
	if (kiln_model_time(m, &(kiln_time_opts){.warmup = 5, .repeat = 20}, &t))
		return fprintf(stderr, "run: %s\n", kiln_rt_last_error()), 1;
	double rel = -1;
	const kiln_array *y = kiln_model_get_output(m, 0);
	if (expect) {
		size_t ne;
		float *ref = slurp(expect, &ne);
		int64_t k = kiln_array_numel(y);
		if (!ref || ne != (size_t)k * sizeof(float))
			return fprintf(stderr, "%s: not the output's size\n", expect), 1;
		double scale = 0, diff = 0;
		for (int64_t i = 0; i < k; i++) {
			scale = fmax(scale, fabs(ref[i]));
			double d = fabs(ref[i] - ((float *)y->data)[i]);
			diff = isnan(d) ? INFINITY : fmax(diff, d);
		}
		rel = scale > 0 ? diff / scale : diff;
		free(ref);
	}
	const char *target = kiln_model_target(m);
	const char *dev = !strcmp(target, "webgl") ? kiln_gles_device_name() : !strcmp(target, "opencl") ? kiln_opencl_device_name() : "cpu";
	printf("{\"bench\": \"model\", \"case\": \"%s\", \"device\": \"%s\", \"kiln_ms\": %.4f, \"min_ms\": %.4f, "
	       "\"samples\": %d, \"max_diff_rel\": %.3g}\n", cas, dev ? dev : "cpu", t.median_ms, t.min_ms, t.nsamples, rel);
	kiln_timing_free(&t);
	kiln_array_free(x);
	kiln_model_free(m);
	return rel > 1e-3 ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[2], "--model")) {
		const char *input = NULL, *expect = NULL, *cas = argv[1];
		for (int i = 3; i + 1 < argc; i += 2) {
			if (!strcmp(argv[i], "--input"))
				input = argv[i + 1];
			else if (!strcmp(argv[i], "--expect"))
				expect = argv[i + 1];
			else if (!strcmp(argv[i], "--case"))
				cas = argv[i + 1];
		}
		return run_model(argv[1], input, expect, cas);
	}
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
