/* internal.h — what the tune/ files share and do not export. */
#ifndef KILN_TUNE_INTERNAL_H
#define KILN_TUNE_INTERNAL_H

#include <stdint.h>

#include "kiln/ops.h"

/* The knobs of kiln_cpu_config in their text order (--config, the log), with their largest values. */
#define TUNE_KNOBS 8
static const struct {
	const char *name;
	int top;
} tune_knob_info[TUNE_KNOBS] = {{"rows", 16}, {"vecs", 8}, {"unroll", 64}, {"tile", 1024},
                                 {"order", 2}, {"stages", 2}, {"pad", 2}, {"split", 64}};

static inline int tune_knob(const kiln_cpu_config *c, int k)
{
	const int v[TUNE_KNOBS] = {c->rows, c->vecs, c->unroll, c->tile, c->order, c->stages, c->pad, c->split};
	return v[k];
}

static inline kiln_cpu_config tune_config_of(const int *v)
{
	return (kiln_cpu_config){v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
}

/* Knobs a configuration writes out (--config, the log): the GPU ones only when set, so older tools read the rest. */
static inline int tune_knobs_used(const kiln_cpu_config *c) { return c->split ? 8 : c->stages || c->pad ? 7 : 5; }

/* splitmix64: seeded choices that are the same on every machine */
static inline uint64_t tune_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* uniform in [0, 1) */
static inline double tune_uniform(uint64_t *s) { return (double)(tune_next(s) >> 11) * 0x1.0p-53; }

#endif
