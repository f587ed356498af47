/*
 * bench.h — the measuring loop the benchmarks share: kiln and its peer are
 * sampled alternately (so drift hits both alike), each sample long enough
 * to time well, and the medians compared.
 */
#ifndef KILN_BENCH_H
#define KILN_BENCH_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef void (*bench_fn)(void *arg);

/*
 * KILN_BENCH_SMOKE=1: tiny sizes and one sample per side, so CI runs every
 * benchmark once on whatever host it gets (a crash, a wrong result or an
 * instruction the host lacks fails the run); its timings mean nothing.
 */
static inline int bench_smoke(void)
{
	const char *v = getenv("KILN_BENCH_SMOKE");
	return v && *v && v[0] != '0';
}

/*
 * Compares kiln's whole output with the peer's: |k - p| <= atol + rtol |p|
 * for every element (fp32 sums of `terms` products in different orders
 * differ by about terms x eps). Exits 1 on the first mismatch: a benchmark
 * whose kernel is wrong has measured nothing.
 */
static inline void bench_check(const char *what, const float *kiln, const float *peer, long n, int terms)
{
	double atol = 1e-5 * (terms > 1 ? terms : 1), rtol = 1e-4;
	for (long i = 0; i < n; i++) {
		double d = fabs((double)kiln[i] - peer[i]);
		if (!(d <= atol + rtol * fabs(peer[i]))) {
			fprintf(stderr, "%s: kiln and the peer differ at element %ld of %ld: %.9g vs %.9g\n", what, i, n, kiln[i],
			        peer[i]);
			exit(1);
		}
	}
}

static inline double bench_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

/* Calls per sample so that one sample lasts about target_ms. */
static inline int bench_calibrate(bench_fn f, void *arg, double target_ms)
{
	for (int i = 0; i < 3; i++) /* warm-up: caches, pages, thread pools */
		f(arg);
	int n = 1;
	for (;;) {
		double t0 = bench_now_ms();
		for (int i = 0; i < n; i++)
			f(arg);
		double dt = bench_now_ms() - t0;
		if (dt >= target_ms || n >= (1 << 20))
			return n;
		n = dt > 0 && target_ms / dt < 10 ? (int)(n * target_ms / dt) + 1 : n * 10;
	}
}

static inline int bench_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static inline double bench_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, bench_cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * Median milliseconds per call of a and of b. Samples come in blocks, a's
 * then b's, twice over, each block after its own warm-up: libraries with
 * thread pools (OpenBLAS's spin ~0.1 s after a call) would otherwise steal
 * the other's cores if calls alternated one by one.
 */
static inline void bench_pair(bench_fn a, void *aarg, bench_fn b, void *barg, int repeat, double *a_ms, double *b_ms)
{
	double *sa = malloc(sizeof(double) * repeat * 2), *sb = malloc(sizeof(double) * repeat * 2);
	int ka = 0, kb = 0;
	for (int round = 0; round < 2; round++)
		for (int which = 0; which < 2; which++) {
			bench_fn f = which ? b : a;
			void *arg = which ? barg : aarg;
			int n = bench_calibrate(f, arg, bench_smoke() ? 1 : 150); /* also the block's warm-up */
			for (int r = 0; r < (repeat + 1) / 2; r++) {
				double t0 = bench_now_ms();
				for (int i = 0; i < n; i++)
					f(arg);
				double ms = (bench_now_ms() - t0) / n;
				if (which)
					sb[kb++] = ms;
				else
					sa[ka++] = ms;
			}
		}
	*a_ms = bench_median(sa, ka);
	*b_ms = bench_median(sb, kb);
	free(sa);
	free(sb);
}

#endif
