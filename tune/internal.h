/* internal.h — what the tune/ files share and do not export. */
#ifndef KILN_TUNE_INTERNAL_H
#define KILN_TUNE_INTERNAL_H

#include <stdint.h>

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
