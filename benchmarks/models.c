/*
 * models.c — a whole ONNX model through kiln against onnxruntime-node, in
 * one run: the same random input (seed 1) through both, outputs compared,
 * and with --bench both timed (medians; the peer in the same run).
 *
 *   models MODEL.onnx [--target T] [--threads N] [--bench N [--rounds R]] [--tol X]
 *
 * Prints one JSON line: compile seconds, kernels, planned and unplanned
 * intermediate bytes, the largest difference relative to the output's
 * largest magnitude, and with --bench kiln's and onnxruntime's medians and
 * their ratio (> 1: kiln is faster). Exit 1 when the outputs differ by more
 * than --tol (default 1e-4) or anything fails; the tests run it that way.
 *
 * The timing alternates: --rounds R (default 3) rounds of onnxruntime's N
 * runs, then kiln's N. A shared VM's speed drifts by 20% over a minute;
 * timed one after the other, the two were not compared at the same speed.
 * Each side's time is the median of its round medians, and the speedup the
 * median of the rounds' ratios.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "kiln/model.h"
#include "kiln/onnx.h"

#ifndef KILN_SOURCE_DIR
#define KILN_SOURCE_DIR "."
#endif

static double now_s(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + tv.tv_usec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The median of n values (sorted in place). */
static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* the files the peer reads and writes, removed at exit whatever happens */
static char dir[] = "/tmp/kiln-models-XXXXXX", inb[64], outb[64];

static void remove_files(void)
{
	unlink(inb), unlink(outb), rmdir(dir);
}

/* Runs the onnxruntime-node reference (cmd); its median ms when it timed, 0 when not, -1 when it failed. */
static double run_peer(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	char line[512] = "";
	double ms = 0;
	while (p && fgets(line, sizeof line, p)) {
		char *k = strstr(line, "\"median_ms\":");
		if (k)
			ms = atof(k + 12);
	}
	return !p || pclose(p) ? -1 : ms;
}

static int fail(const char *what, const char *msg)
{
	fprintf(stderr, "models: %s: %s\n", what, msg);
	return 1;
}

int main(int argc, char **argv)
{
	static const char usage[] = "usage: models MODEL.onnx [--target T] [--threads N] [--bench N [--rounds R]] [--tol X]\n";
	const char *path = NULL, *target = "llvm";
	int threads = 1, bench = 0, rounds = 3;
	double tol = 1e-4;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--target") && i + 1 < argc)
			target = argv[++i];
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			threads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--bench") && i + 1 < argc)
			bench = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--tol") && i + 1 < argc)
			tol = atof(argv[++i]);
		else if (!path && argv[i][0] != '-')
			path = argv[i];
		else
			return fputs(usage, stderr), 2;
	}
	if (!path || threads < 1 || bench < 0 || rounds < 1 || rounds > 100)
		return fputs(usage, stderr), 2;
	kiln_set_num_threads(threads);
	kiln_ctx *ctx = kiln_ctx_new();
	double t0 = now_s();
	kiln_onnx_model *om = kiln_onnx_load(ctx, path);
	kiln_graph *g = om ? kiln_onnx_import(ctx, om, 0, NULL) : NULL;
	kiln_module *mod = g ? kiln_graph_compile(g, target, getenv("KILN_PRINT_GRAPH") ? stderr : NULL) : NULL;
	double compile_s = now_s() - t0;
	if (!mod)
		return fail(path, kiln_error(ctx));
	int nkernels = kiln_module_num_functions(mod);
	int64_t plain, planned = kiln_graph_planned_bytes(g, &plain);
	kiln_model *m = kiln_model_from_module(mod);
	if (!m)
		return fail(path, kiln_rt_last_error());
	const kiln_arg_info *in = kiln_model_input_info(m, 0);
	if (kiln_model_num_inputs(m) != 1 || in->dtype.code != KILN_FLOAT || in->dtype.bits != 32)
		return fail(path, "one float32 input expected");
	kiln_array *x = kiln_array_empty(in->ndim, in->shape, in->dtype);
	kiln_array_fill_random(x, 1, -1, 1);
	if (kiln_model_set_input(m, in->name, x) || kiln_model_run(m))
		return fail(path, kiln_rt_last_error());

	/* the peer on the same bytes */
	char shape[256] = "", cmd[2048];
	if (!mkdtemp(dir))
		return fail(path, "no temporary folder");
	atexit(remove_files);
	snprintf(inb, sizeof inb, "%s/in.bin", dir);
	snprintf(outb, sizeof outb, "%s/out.bin", dir);
	FILE *f = fopen(inb, "wb");
	fwrite(x->data, sizeof(float), (size_t)kiln_array_numel(x), f);
	fclose(f);
	for (int d = 0; d < in->ndim; d++)
		snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", d ? "," : "", (long long)in->shape[d]);
	snprintf(cmd, sizeof cmd, "BENCH=%d node %s/tests/ort_reference.mjs '%s' %s %s %s %d", bench,
	         KILN_SOURCE_DIR, path, inb, shape, outb, threads);
	if (!bench)
		snprintf(cmd, sizeof cmd, "node %s/tests/ort_reference.mjs '%s' %s %s %s %d", KILN_SOURCE_DIR, path, inb,
		         shape, outb, threads);
	double ort_ms[100];
	if ((ort_ms[0] = run_peer(cmd)) < 0)
		return fail(path, "onnxruntime-node failed (npm install with ONNXRUNTIME_NODE_INSTALL=skip)");
	const kiln_array *y = kiln_model_get_output(m, 0);
	int64_t n = kiln_array_numel(y);
	float *ref = malloc(sizeof(float) * (size_t)n);
	f = fopen(outb, "rb");
	size_t got = f ? fread(ref, sizeof(float), (size_t)n + 1, f) : 0;
	if (f)
		fclose(f);
	if (got != (size_t)n)
		return fail(path, "onnxruntime's output has another size");
	double scale = 0, maxdiff = 0;
	for (int64_t i = 0; i < n; i++)
		scale = fmax(scale, fabs(ref[i]));
	for (int64_t i = 0; i < n; i++) {
		double d = fabs((double)((float *)y->data)[i] - ref[i]);
		maxdiff = isnan(d) ? INFINITY : fmax(maxdiff, d);
	}
	double rel = scale > 0 ? maxdiff / scale : maxdiff;
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	printf("{\"model\": \"%s\", \"target\": \"%s\", \"threads\": %d, \"compile_s\": %.2f, \"kernels\": %d, "
	       "\"planned_bytes\": %lld, \"unplanned_bytes\": %lld, \"max_diff_rel\": %.3g",
	       name, target, threads, compile_s, nkernels, (long long)planned, (long long)plain, rel);
	if (bench) {
		double kiln_ms[100], ratio[100];
		for (int r = 0; r < rounds; r++) {
			if (r && (ort_ms[r] = run_peer(cmd)) < 0)
				return fail(path, "onnxruntime-node failed in a later round");
			if (ort_ms[r] <= 0)
				return fail(path, "onnxruntime-node printed no median_ms");
			kiln_timing t;
			if (kiln_model_time(m, &(kiln_time_opts){.warmup = 3, .repeat = bench}, &t))
				return fail(path, kiln_rt_last_error());
			kiln_ms[r] = t.median_ms;
			ratio[r] = ort_ms[r] / t.median_ms;
			kiln_timing_free(&t);
		}
		printf(", \"rounds\": %d, \"kiln_ms\": %.3f, \"onnxruntime_ms\": %.3f, \"speedup\": %.3f", rounds,
		       median(kiln_ms, rounds), median(ort_ms, rounds), median(ratio, rounds));
	}
	printf("}\n");
	free(ref);
	kiln_array_free(x);
	kiln_model_free(m);
	kiln_onnx_free(om);
	kiln_ctx_free(ctx);
	if (!(rel <= tol))
		return fprintf(stderr, "models: %s: kiln and onnxruntime differ by %.3g of the output's scale (tolerance %g)\n",
		               name, rel, tol), 1;
	return 0;
}
