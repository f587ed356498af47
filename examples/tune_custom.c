/*
 * tune_custom.c — tuning an operator kiln does not ship, from C, with the
 * tuner's ask/tell API (include/kiln/tune.h): a batched "A times B
 * transposed" (attention scores) C[b, i, j] = sum_k A[b, i, k] * B[b, j, k].
 *
 * The CPU template's space is filtered to the configurations this
 * operator's schedule takes; the "xgb" search proposes each trial, which is
 * built and timed in this process (a script's choice: kiln tune runs each
 * trial in a worker process instead); the first trial and every new best
 * are compared with a plain C loop. Every trial goes to a JSON-lines log
 * that `kiln bench --tuning-log` and kiln_tune_log_best read back.
 *
 *   build/examples/tune_custom [TRIALS] [LOG.jsonl]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kiln/build.h"
#include "kiln/ops.h"
#include "kiln/tune.h"

#define NB 4
#define NI 96
#define NJ 128
#define NK 64

#define V(it) kiln_iter_var(it)

/* The operator, declared into ctx: args = A, B, C. */
static void declare(kiln_ctx *ctx, kiln_tensor **args)
{
	args[0] = kiln_placeholder(ctx, "A", 3, (int64_t[]){NB, NI, NK}, KILN_F32);
	args[1] = kiln_placeholder(ctx, "B", 3, (int64_t[]){NB, NJ, NK}, KILN_F32);
	kiln_iter *b = kiln_axis(ctx, NB, "b"), *i = kiln_axis(ctx, NI, "i"), *j = kiln_axis(ctx, NJ, "j");
	kiln_iter *k = kiln_reduce_axis(ctx, NK, "k");
	kiln_expr *prod = kiln_mul(ctx, KILN_READ(ctx, args[0], V(b), V(i), V(k)), KILN_READ(ctx, args[1], V(b), V(j), V(k)));
	args[2] = kiln_compute_expr(ctx, "scores", 3, (kiln_iter *[]){b, i, j}, kiln_sum(ctx, prod, 1, &k));
}

typedef struct {
	const kiln_target *t;
	const kiln_cpu_config *space;
} features_user;

/* The search's features of space[i]: the configuration lowered in a context of its own. */
static int features(void *user, int i, float *out)
{
	features_user *fu = user;
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_tensor *args[3];
	declare(ctx, args);
	int rc = kiln_tune_config_features(ctx, fu->t, &fu->space[i], "scores", 3, args, 1, out);
	kiln_ctx_free(ctx);
	return rc;
}

/* Builds cfg, checks it against the plain loop if asked, and times it: GFLOP/s, or 0 (message printed). */
static double trial(const kiln_target *t, const kiln_cpu_config *cfg, kiln_array **a, const double *want, bool check,
                    kiln_tune_record *r)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_tensor *args[3];
	declare(ctx, args);
	kiln_module *m = kiln_build_schedule(kiln_schedule_cpu_config(ctx, t, cfg, 1, &args[2]), "scores", 3, args, "llvm");
	double gflops = 0;
	if (!m) {
		snprintf(r->error, sizeof r->error, "build: %s", kiln_error(ctx));
	} else if (check) {
		for (int64_t e = 0; e < (int64_t)NB * NI * NJ; e++) /* poisoned: a kernel that skips an element shows */
			((float *)a[2]->data)[e] = NAN;
		if (kiln_module_call(m, "scores", a, 3))
			snprintf(r->error, sizeof r->error, "run: %s", kiln_rt_last_error());
		for (int64_t e = 0; !r->error[0] && e < (int64_t)NB * NI * NJ; e++)
			if (!(fabs(((float *)a[2]->data)[e] - want[e]) <= 1e-4 * (1 + fabs(want[e]))))
				snprintf(r->error, sizeof r->error, "wrong result at %lld", (long long)e);
	}
	kiln_time_opts topt = {.warmup = 2, .repeat = 9, .min_repeat_ms = 5};
	kiln_timing tm = {0};
	if (m && !r->error[0]) {
		if (kiln_module_time(m, "scores", a, 3, &topt, &tm))
			snprintf(r->error, sizeof r->error, "time: %s", kiln_rt_last_error());
		else {
			r->median_ms = tm.median_ms;
			for (int s = 0; s < tm.nsamples && s < KILN_TUNE_MAX_SAMPLES; s++)
				r->samples_ms[r->nsamples++] = tm.samples_ms[s];
			gflops = r->gflops = 2.0 * NB * NI * NJ * NK / tm.median_ms / 1e6;
		}
	}
	kiln_timing_free(&tm);
	kiln_module_free(m);
	kiln_ctx_free(ctx);
	if (r->error[0])
		fprintf(stderr, "tune_custom: %s\n", r->error);
	return gflops;
}

int main(int argc, char **argv)
{
	int trials = argc > 1 ? atoi(argv[1]) : 48;
	const char *log = argc > 2 ? argv[2] : "tune_custom.jsonl";
	kiln_target t;
	char err[512], desc[512];
	if (trials < 1 || kiln_target_parse("llvm", &t, err, sizeof err)) {
		fprintf(stderr, "usage: tune_custom [TRIALS >= 1] [LOG.jsonl]%s%s\n", trials < 1 ? "" : ": ", trials < 1 ? "" : err);
		return 2;
	}
	kiln_target_describe(&t, desc, sizeof desc);
	/* the space this operator's schedule takes */
	kiln_cpu_config *space = malloc(sizeof *space * 4096);
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_tensor *args[3];
	declare(ctx, args);
	int n = space ? kiln_tune_space_taken(ctx, &t, 1, &args[2], space, 4096) : 0;
	kiln_ctx_free(ctx);
	/* inputs, and the answer from a plain loop */
	kiln_array *a[3] = {kiln_array_empty(3, (int64_t[]){NB, NI, NK}, KILN_F32),
	                    kiln_array_empty(3, (int64_t[]){NB, NJ, NK}, KILN_F32),
	                    kiln_array_empty(3, (int64_t[]){NB, NI, NJ}, KILN_F32)};
	kiln_array_fill_random(a[0], 1, -1, 1);
	kiln_array_fill_random(a[1], 2, -1, 1);
	double *want = malloc(sizeof(double) * NB * NI * NJ);
	const float *A = a[0]->data, *B = a[1]->data;
	for (int b = 0; b < NB; b++)
		for (int i = 0; i < NI; i++)
			for (int j = 0; j < NJ; j++) {
				double s = 0;
				for (int k = 0; k < NK; k++)
					s += (double)A[(b * NI + i) * NK + k] * B[(b * NJ + j) * NK + k];
				want[(b * NI + i) * NJ + j] = s;
			}
	features_user fu = {&t, space};
	kiln_tuner *tu = kiln_tuner_new("xgb", space, n, 1, features, &fu);
	if (!tu) {
		fprintf(stderr, "tune_custom: no tuner (%d configurations)\n", n);
		return 1;
	}
	printf("tuning scores[%d,%d,%d] = A[%d,%d,%d] x B^T on %s: %d trials of %d configurations\n", NB, NI, NJ, NB, NI,
	       NK, desc, trials, n);
	double best = 0;
	int best_i = -1, errors = 0;
	for (int k = 0, i; k < trials && (i = kiln_tuner_next(tu)) >= 0; k++) {
		kiln_tune_record r = {.task = {"tune_custom scores", "", "", "llvm"}, .cfg = space[i], .unix_time = (double)time(NULL)};
		snprintf(r.task.shape, sizeof r.task.shape, "%d,%d,%d,%d", NB, NI, NJ, NK);
		snprintf(r.device, sizeof r.device, "%.255s", desc);
		snprintf(r.version, sizeof r.version, "%s", "example");
		double g = trial(&t, &space[i], a, want, k == 0, &r);
		if (g > best && k > 0) { /* a new best is checked before it counts */
			kiln_tune_record again = r;
			again.nsamples = 0;
			if (!trial(&t, &space[i], a, want, true, &again))
				g = 0, snprintf(r.error, sizeof r.error, "%s", again.error);
		}
		kiln_tuner_update(tu, i, g);
		errors += g == 0;
		if (g > best)
			best = g, best_i = i;
		if (kiln_tune_log_append(log, &r, err, sizeof err)) {
			fprintf(stderr, "tune_custom: %s\n", err);
			return 1;
		}
		if ((k + 1) % 16 == 0 || k + 1 == trials)
			printf("  %3d trials: best %.1f GFLOP/s\n", k + 1, best);
	}
	if (kiln_tuner_note(tu)[0])
		printf("note: %s\n", kiln_tuner_note(tu));
	kiln_tuner_free(tu);
	int rc = best_i < 0;
	if (!rc) {
		char d[160], c[64];
		kiln_tune_config_describe(&space[best_i], d, sizeof d);
		kiln_tune_config_str(&space[best_i], c, sizeof c);
		printf("best: %s (%s), %.1f GFLOP/s, checked against the plain loop; %d errors; log %s\n", d, c, best, errors, log);
	}
	free(space);
	free(want);
	for (int i = 0; i < 3; i++)
		kiln_array_free(a[i]);
	return rc;
}
