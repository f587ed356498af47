/*
 * gpu_bench — matmul_gpu and conv2d_gpu: kiln's OpenCL and WebGL (GLES)
 * targets on whatever devices are present (PoCL and Mesa llvmpipe here),
 * with kiln's CPU target as the peer in the same run. kiln_ms is the
 * kernels' device time for OpenCL (events), wall time around the draws for
 * GLES; the CPU peer's is wall time per call.
 *
 *   gpu_bench matmul|conv2d [REPEAT]
 *
 * Exits 1 when a target's output differs from the CPU's anywhere.
 * KILN_BENCH_SMOKE=1: tiny uneven shapes, one sample (CI).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "kiln/build.h"
#include "kiln/opencl.h"
#include "kiln/ops.h"

static kiln_module *build(kiln_ctx *ctx, kiln_op_inst *o, const char *target)
{
	kiln_tensor *out = o->args[o->nargs - 1];
	kiln_module *m = kiln_build_schedule(kiln_schedule_for(ctx, target, 1, &out), "f", o->nargs, o->args, target);
	if (!m)
		fprintf(stderr, "%s: %s\n", target, kiln_error(ctx));
	return m;
}

static void run_case(const char *target, const char *bench, const char *op, int n, const int64_t *shape, const char *attrs,
                     int repeat)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_op_inst o;
	if (kiln_op_declare(ctx, kiln_op_find(op), n, shape, attrs, &o)) {
		fprintf(stderr, "%s\n", kiln_error(ctx));
		exit(1);
	}
	kiln_module *g = build(ctx, &o, target), *c = build(ctx, &o, "llvm");
	if (!g || !c)
		exit(1);
	kiln_array *a[8], *ref = NULL;
	for (int i = 0; i < o.nargs; i++) {
		a[i] = kiln_array_empty(kiln_tensor_ndim(o.args[i]), kiln_tensor_shape(o.args[i]), KILN_F32);
		kiln_array_fill_random(a[i], 7 + (uint64_t)i, -1, 1);
	}
	kiln_time_opts t = {.warmup = bench_smoke() ? 0 : 2, .repeat = repeat, .min_repeat_ms = bench_smoke() ? 0 : 50};
	kiln_timing tg, tc;
	if (kiln_module_time(g, "f", a, o.nargs, &t, &tg)) {
		fprintf(stderr, "%s: %s\n", target, kiln_rt_last_error());
		exit(1);
	}
	kiln_tensor *out = o.args[o.nargs - 1];
	ref = kiln_array_empty(kiln_tensor_ndim(out), kiln_tensor_shape(out), KILN_F32);
	kiln_array *saved = a[o.nargs - 1];
	memcpy(ref->data, saved->data, sizeof(float) * (size_t)kiln_array_numel(ref));
	if (kiln_module_time(c, "f", a, o.nargs, &t, &tc)) {
		fprintf(stderr, "llvm: %s\n", kiln_rt_last_error());
		exit(1);
	}
	double maxerr = 0;
	for (int64_t i = 0; i < kiln_array_numel(ref); i++)
		maxerr = fmax(maxerr, fabs(((float *)ref->data)[i] - ((float *)saved->data)[i]));
	/* ref holds the device's output, saved (the same array, run again) the CPU's */
	int64_t terms = !strcmp(op, "matmul") ? shape[2] : shape[1] * shape[5] * shape[6];
	bench_check(target, ref->data, saved->data, (long)kiln_array_numel(ref), (int)terms);
	char cs[128] = "";
	for (int i = 0; i < n; i++)
		snprintf(cs + strlen(cs), sizeof cs - strlen(cs), "%s%lld", i ? "x" : "", (long long)shape[i]);
	printf("{\"bench\": \"%s\", \"case\": \"%s %s\", \"target\": \"%s\", \"device\": \"%s\", \"threads\": %d, "
	       "\"kiln_ms\": %.4f, \"peer\": \"kiln-llvm (CPU)\", \"peer_ms\": %.4f, \"ratio\": %.3f, \"gflops\": %.2f, "
	       "\"max_abs_diff\": %.2g}\n",
	       bench, cs, attrs, target, strcmp(target, "webgl") ? kiln_opencl_device_name() : kiln_gles_device_name(),
	       kiln_get_num_threads(), tg.median_ms, tc.median_ms,
	       tc.median_ms / tg.median_ms, o.flops / tg.median_ms / 1e6, maxerr);
	fflush(stdout);
	kiln_timing_free(&tg);
	kiln_timing_free(&tc);
	for (int i = 0; i < o.nargs; i++)
		kiln_array_free(a[i]);
	kiln_array_free(ref);
	kiln_module_free(g);
	kiln_module_free(c);
	kiln_ctx_free(ctx);
}

int main(int argc, char **argv)
{
	const char *which = argc > 1 ? argv[1] : "matmul";
	int repeat = bench_smoke() ? 1 : argc > 2 ? atoi(argv[2]) : 5;
	static const char *targets[] = {"opencl", "webgl"};
	for (int t = 0; t < 2; t++) {
		const char *dev = t == 0 ? kiln_opencl_device_name() : kiln_gles_device_name();
		if (!dev) {
			printf("{\"bench\": \"%s_gpu\", \"target\": \"%s\", \"skipped\": \"%s\"}\n", which, targets[t],
			       kiln_rt_last_error());
			continue;
		}
		if (!strcmp(which, "matmul")) {
			int sizes[] = {256, 512, 1024};
			if (bench_smoke())
				sizes[0] = 97;
			for (int i = 0; i < (bench_smoke() ? 1 : 3); i++)
				run_case(targets[t], "matmul_gpu", "matmul", 3, (int64_t[]){sizes[i], sizes[i], sizes[i]}, "", repeat);
		} else {
			static const int layers[][2] = {{64, 56}, {128, 28}, {256, 14}, {512, 7}}, tiny[][2] = {{16, 9}};
			for (int l = 0; l < (bench_smoke() ? 1 : 4); l++) {
				int c = bench_smoke() ? tiny[l][0] : layers[l][0], h = bench_smoke() ? tiny[l][1] : layers[l][1];
				run_case(targets[t], "conv2d_gpu", "conv2d", 7, (int64_t[]){1, c, h, h, c, 3, 3}, "pad=1", repeat);
			}
		}
	}
	return 0;
}
