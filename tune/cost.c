/*
 * cost.c — the tuner's cost model: gradient-boosted trees through
 * XGBoost's C API, as AutoTVM's XGBoost model with its "rank" loss.
 *
 * Only the order of candidates matters to the search, so the objective is
 * pairwise ranking on throughput normalized by the best seen (a failed
 * trial is 0: slower than anything that ran). Trees are small and the data
 * is a few hundred rows, so the model is retrained from scratch after each
 * batch in tens of milliseconds, on one thread so it does not disturb the
 * measurements running beside it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <xgboost/c_api.h>

#include "kiln/tune.h"

#define ROUNDS 80

struct kiln_cost_model {
	BoosterHandle booster;
};

static int fail(const char *what, char *err, int errlen)
{
	snprintf(err, (size_t)errlen, "cost model: %s: %s", what, XGBGetLastError());
	return -1;
}

kiln_cost_model *kiln_cost_new(void) { return calloc(1, sizeof(kiln_cost_model)); }

void kiln_cost_free(kiln_cost_model *m)
{
	if (m && m->booster)
		XGBoosterFree(m->booster);
	free(m);
}

int kiln_cost_train(kiln_cost_model *m, const float *x, const float *y, int n, char *err, int errlen)
{
	if (n < 2) {
		snprintf(err, (size_t)errlen, "cost model: %d measured configurations are too few to rank", n);
		return -1;
	}
	float top = 0;
	for (int i = 0; i < n; i++)
		top = y[i] > top ? y[i] : top;
	float *label = malloc(sizeof(float) * (size_t)n);
	if (!label)
		return snprintf(err, (size_t)errlen, "cost model: out of memory"), -1;
	for (int i = 0; i < n; i++)
		label[i] = top > 0 && y[i] > 0 ? y[i] / top : 0;
	DMatrixHandle d = NULL;
	BoosterHandle b = NULL;
	int rc = 0;
	if (XGDMatrixCreateFromMat(x, (bst_ulong)n, KILN_TUNE_FEATURES, NAN, &d))
		rc = fail("the training matrix", err, errlen);
	else if (XGDMatrixSetFloatInfo(d, "label", label, (bst_ulong)n))
		rc = fail("the labels", err, errlen);
	else if (XGBoosterCreate(&d, 1, &b))
		rc = fail("a booster", err, errlen);
	/* AutoTVM's parameters for its rank loss, deterministic and single-threaded */
	static const char *const params[][2] = {
		{"objective", "rank:pairwise"}, {"max_depth", "6"}, {"eta", "0.3"}, {"gamma", "0.0001"},
		{"min_child_weight", "1"}, {"subsample", "1"}, {"nthread", "1"}, {"seed", "1"}, {"verbosity", "0"},
	};
	for (size_t i = 0; !rc && i < sizeof params / sizeof params[0]; i++)
		if (XGBoosterSetParam(b, params[i][0], params[i][1]))
			rc = fail(params[i][0], err, errlen);
	for (int it = 0; !rc && it < ROUNDS; it++)
		if (XGBoosterUpdateOneIter(b, it, d))
			rc = fail("training", err, errlen);
	XGDMatrixFree(d);
	free(label);
	if (rc) {
		if (b)
			XGBoosterFree(b);
		return -1;
	}
	if (m->booster)
		XGBoosterFree(m->booster);
	m->booster = b;
	return 0;
}

int kiln_cost_predict(kiln_cost_model *m, const float *x, int n, float *out, char *err, int errlen)
{
	if (!m->booster)
		return snprintf(err, (size_t)errlen, "cost model: not trained"), -1;
	DMatrixHandle d = NULL;
	bst_ulong len = 0;
	const float *pred = NULL;
	if (XGDMatrixCreateFromMat(x, (bst_ulong)n, KILN_TUNE_FEATURES, NAN, &d))
		return fail("the candidates' matrix", err, errlen);
	int rc = 0;
	if (XGBoosterPredict(m->booster, d, 0, 0, 0, &len, &pred))
		rc = fail("prediction", err, errlen);
	else if (len != (bst_ulong)n)
		rc = (snprintf(err, (size_t)errlen, "cost model: %llu predictions for %d rows", (unsigned long long)len, n), -1);
	for (int i = 0; !rc && i < n; i++)
		out[i] = pred[i];
	XGDMatrixFree(d);
	return rc;
}
