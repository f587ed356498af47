/*
 * search.c — the tuner's ask/tell loop (kiln_tuner): which configuration
 * of a space to measure next, told how each measured one did.
 *
 * "grid" and "random" visit the space in a fixed order. "xgb" measures a
 * first batch at random; after each batch it retrains the cost model on
 * every trial so far and fills the next batch with the configurations
 * simulated annealing finds best under the model, the last few of the
 * batch at random so the model keeps seeing the rest of the space (as
 * AutoTVM's XGBTuner with its epsilon-greedy plan). Features are asked of
 * the caller (kiln_tune_config_features lowers a configuration for them)
 * only for configurations the model is asked about, once each.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/build.h"
#include "kiln/tune.h"
#include "tune/internal.h"

#define BATCH 16 /* AutoTVM's plan size is 64; budgets here are a few hundred */
#define RANDOM 3 /* of each model-chosen batch */

struct kiln_tuner {
	const kiln_cpu_config *space;
	int n;
	bool xgb;
	uint64_t seed;
	int *order, next_in_order; /* the grid or random order; the xgb search's random picks come from it */
	unsigned char *used;       /* measured, or chosen for the batch in hand */
	float *feat;               /* each configuration's features, once asked */
	unsigned char *have;       /* 1: feat asked; 2: could not be computed (zeros) */
	float *xs, *ys;            /* measured trials, for training */
	int nmeasured;
	int ngiven; /* configurations next has given */
	int batch[BATCH], nbatch, pos;
	kiln_tune_feature_fn features;
	void *user;
	kiln_cost_model *model;
	char note[512];
};

kiln_tuner *kiln_tuner_new(const char *search, const kiln_cpu_config *space, int n, uint64_t seed,
                           kiln_tune_feature_fn features, void *user)
{
	if (n <= 0 || !search || (strcmp(search, "grid") && strcmp(search, "random") && strcmp(search, "xgb")) ||
	    (!strcmp(search, "xgb") && !features))
		return NULL;
	kiln_tuner *tu = calloc(1, sizeof *tu);
	if (!tu)
		return NULL;
	*tu = (kiln_tuner){.space = space, .n = n, .xgb = !strcmp(search, "xgb"), .seed = seed, .features = features,
	                   .user = user};
	tu->order = malloc(sizeof(int) * (size_t)n);
	tu->used = calloc((size_t)n, 1);
	if (tu->xgb) {
		tu->feat = malloc(sizeof(float) * KILN_TUNE_FEATURES * (size_t)n);
		tu->have = calloc((size_t)n, 1);
		tu->xs = malloc(sizeof(float) * KILN_TUNE_FEATURES * (size_t)n);
		tu->ys = malloc(sizeof(float) * (size_t)n);
		tu->model = kiln_cost_new();
	}
	if (!tu->order || !tu->used || (tu->xgb && (!tu->feat || !tu->have || !tu->xs || !tu->ys || !tu->model))) {
		kiln_tuner_free(tu);
		return NULL;
	}
	kiln_tune_order(strcmp(search, "grid") ? "random" : "grid", seed, n, tu->order);
	return tu;
}

void kiln_tuner_free(kiln_tuner *tu)
{
	if (!tu)
		return;
	free(tu->order), free(tu->used), free(tu->feat), free(tu->have), free(tu->xs), free(tu->ys);
	kiln_cost_free(tu->model);
	free(tu);
}

const char *kiln_tuner_note(const kiln_tuner *tu) { return tu->note; }

static const float *features_of(kiln_tuner *tu, int i)
{
	float *f = tu->feat + (size_t)i * KILN_TUNE_FEATURES;
	if (!tu->have[i]) {
		tu->have[i] = tu->features(tu->user, i, f) ? 2 : 1;
		if (tu->have[i] == 2)
			memset(f, 0, sizeof(float) * KILN_TUNE_FEATURES);
	}
	return f;
}

/* kiln_tune_anneal's scores: the model's predictions. */
static int score(void *user, const int *idx, int n, float *out)
{
	kiln_tuner *tu = user;
	float *x = malloc(sizeof(float) * KILN_TUNE_FEATURES * (size_t)n);
	if (!x)
		return -1;
	for (int k = 0; k < n; k++)
		memcpy(x + (size_t)k * KILN_TUNE_FEATURES, features_of(tu, idx[k]), sizeof(float) * KILN_TUNE_FEATURES);
	int rc = kiln_cost_predict(tu->model, x, n, out, tu->note, sizeof tu->note);
	free(x);
	return rc;
}

/* The next configuration of the fixed order not used yet; -1 when none is left. */
static int unused(kiln_tuner *tu)
{
	while (tu->next_in_order < tu->n && tu->used[tu->order[tu->next_in_order]])
		tu->next_in_order++;
	return tu->next_in_order < tu->n ? tu->order[tu->next_in_order] : -1;
}

int kiln_tuner_next(kiln_tuner *tu)
{
	if (!tu->xgb) {
		int i = unused(tu);
		if (i >= 0)
			tu->used[i] = 1, tu->ngiven++;
		return i;
	}
	if (tu->pos == tu->nbatch) {
		tu->nbatch = tu->pos = 0;
		/* once a batch is measured: the model's picks (none if it cannot be trained: the batch is random) */
		if (tu->nmeasured >= BATCH && !tu->note[0] &&
		    !kiln_cost_train(tu->model, tu->xs, tu->ys, tu->nmeasured, tu->note, sizeof tu->note)) {
			int got = kiln_tune_anneal(tu->space, tu->n, score, tu, tu->used, BATCH - RANDOM,
			                           tu->seed + (uint64_t)tu->nmeasured, tu->batch);
			tu->nbatch = got > 0 ? got : 0;
		}
		for (int k = 0; k < tu->nbatch; k++)
			tu->used[tu->batch[k]] = 1;
		for (int i; tu->nbatch < BATCH && (i = unused(tu)) >= 0;) {
			tu->used[i] = 1;
			tu->batch[tu->nbatch++] = i;
		}
	}
	if (tu->pos == tu->nbatch)
		return -1;
	tu->ngiven++;
	return tu->batch[tu->pos++];
}

int kiln_tuner_ready(const kiln_tuner *tu)
{
	if (!tu->xgb)
		return tu->n - tu->ngiven; /* all that are left */
	return tu->nbatch - tu->pos;
}

int kiln_tuner_update(kiln_tuner *tu, int i, double gflops)
{
	if (i < 0 || i >= tu->n)
		return -1;
	if (!tu->xgb || tu->nmeasured >= tu->n)
		return 0;
	memcpy(tu->xs + (size_t)tu->nmeasured * KILN_TUNE_FEATURES, features_of(tu, i), sizeof(float) * KILN_TUNE_FEATURES);
	tu->ys[tu->nmeasured++] = gflops > 0 ? (float)gflops : 0;
	return 0;
}

int kiln_tune_config_features(kiln_ctx *ctx, const kiln_target *t, const kiln_cpu_config *cfg, const char *name,
                              int nargs, kiln_tensor *const *args, int nout, float *out)
{
	kiln_schedule *s = kiln_schedule_template(ctx, t, cfg, nout, args + nargs - nout);
	kiln_func *fn = s ? kiln_lower(s, name, nargs, args, NULL) : NULL;
	return fn ? kiln_tune_features(fn, out) : -1;
}
