/*
 * anneal.c — simulated annealing over a configuration space, scored by the
 * cost model: how the "xgb" search picks its next batch (as AutoTVM's
 * SimulatedAnnealingOptimizer).
 *
 * Walkers start at random configurations and step to a neighbour (one knob
 * changed to another value the space has); a worse neighbour is accepted
 * with probability exp(delta / temperature), the temperature cooling
 * linearly to zero, so early steps explore and late ones climb. Each
 * configuration is scored once (the model is asked in batches of the
 * walkers' proposals), and the best unmeasured ones met are the answer.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/tune.h"
#include "tune/internal.h"

#define WALKERS 64
#define STEPS 120
#define PATIENCE 40 /* steps without a change in the best set before stopping */

/* A configuration that differs from space[i] in one knob, chosen at random; i if none does. */
static int neighbour(const kiln_cpu_config *space, int n, int i, uint64_t *rng, int *cand)
{
	for (int tries = 0; tries < 5; tries++) {
		int k = (int)(tune_next(rng) % TUNE_KNOBS), nc = 0;
		for (int j = 0; j < n; j++) {
			bool same = true;
			for (int o = 0; o < TUNE_KNOBS && same; o++)
				same = o == k ? tune_knob(&space[j], o) != tune_knob(&space[i], o)
				               : tune_knob(&space[j], o) == tune_knob(&space[i], o);
			if (same)
				cand[nc++] = j;
		}
		if (nc)
			return cand[tune_next(rng) % (uint64_t)nc];
	}
	return i;
}

/* Inserts (s, i) into the best list (sorted, at most want); true if it changed. */
static bool keep(float *bs, int *bi, int *nb, int want, float s, int i)
{
	if (*nb == want && s <= bs[want - 1])
		return false;
	int at = *nb < want ? (*nb)++ : want - 1;
	while (at > 0 && bs[at - 1] < s) {
		bs[at] = bs[at - 1];
		bi[at] = bi[at - 1];
		at--;
	}
	bs[at] = s;
	bi[at] = i;
	return true;
}

int kiln_tune_anneal(const kiln_cpu_config *space, int n, kiln_tune_score_fn score, void *user,
                     const unsigned char *skip, int want, uint64_t seed, int *out)
{
	if (n <= 0 || want <= 0)
		return 0;
	float *cache = malloc(sizeof(float) * (size_t)n), *bs = malloc(sizeof(float) * (size_t)want), cur_s[WALKERS];
	unsigned char *known = calloc((size_t)n, 1);
	int *cand = malloc(sizeof(int) * (size_t)n), *bi = malloc(sizeof(int) * (size_t)want), cur[WALKERS],
	    prop[WALKERS], ask[WALKERS], nb = 0, rc = 0;
	if (!cache || !bs || !known || !cand || !bi) {
		rc = -1;
		goto done;
	}
	uint64_t rng = seed;
	int nw = n < WALKERS ? n : WALKERS;
	for (int w = 0; w < nw; w++)
		prop[w] = (int)(tune_next(&rng) % (uint64_t)n);
	int calm = 0;
	for (int step = 0; step <= STEPS && calm < PATIENCE; step++) {
		/* score the proposals not yet scored, as one batch */
		int na = 0;
		for (int w = 0; w < nw; w++)
			if (!known[prop[w]]) {
				known[prop[w]] = 2; /* asked */
				ask[na++] = prop[w];
			}
		float got[WALKERS];
		if (na && score(user, ask, na, got)) {
			rc = -1;
			goto done;
		}
		bool changed = false;
		for (int a = 0; a < na; a++) {
			cache[ask[a]] = got[a];
			known[ask[a]] = 1;
			if (!skip || !skip[ask[a]])
				changed |= keep(bs, bi, &nb, want, got[a], ask[a]);
		}
		calm = changed ? 0 : calm + 1;
		double temp = 1.0 - (double)step / STEPS;
		for (int w = 0; w < nw; w++) {
			float s = cache[prop[w]];
			if (step == 0 || s >= cur_s[w] || (temp > 0 && tune_uniform(&rng) < exp((s - cur_s[w]) / temp))) {
				cur[w] = prop[w];
				cur_s[w] = s;
			}
		}
		for (int w = 0; w < nw; w++)
			prop[w] = neighbour(space, n, cur[w], &rng, cand);
	}
	memcpy(out, bi, sizeof(int) * (size_t)nb);
	rc = nb;
done:
	free(cache), free(bs), free(known), free(cand), free(bi);
	return rc;
}
