/*
 * matmul.c — kiln end to end: declare C = A @ B, schedule it, print the
 * lowered IR, build it for this CPU, run it, time it, and export it as a
 * shared library that examples/call_matmul.c calls with plain C pointers.
 *
 *   ./matmul [out.so] [N]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "kiln/build.h"

typedef struct {
	kiln_tensor *A, *B;
	kiln_iter *k;
} operands;

/* C[i, j] = sum over k of A[i, k] * B[k, j] */
static kiln_expr *matmul_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	operands *op = user;
	kiln_expr *i = idx[0], *j = idx[1], *k = kiln_iter_var(op->k);
	return kiln_sum(ctx, kiln_mul(ctx, KILN_READ(ctx, op->A, i, k), KILN_READ(ctx, op->B, k, j)), 1, &op->k);
}

static int fail(kiln_ctx *ctx, const char *what)
{
	fprintf(stderr, "%s: %s\n", what, ctx ? kiln_error(ctx) : kiln_rt_last_error());
	return 1;
}

int main(int argc, char **argv)
{
	const char *out = argc > 1 ? argv[1] : "matmul.so";
	int64_t N = argc > 2 ? atoll(argv[2]) : 512;
	kiln_ctx *ctx = kiln_ctx_new();

	/* 1. declare */
	operands op;
	op.A = kiln_placeholder(ctx, "A", 2, (int64_t[]){N, N}, KILN_F32);
	op.B = kiln_placeholder(ctx, "B", 2, (int64_t[]){N, N}, KILN_F32);
	op.k = kiln_reduce_axis(ctx, N, "k");
	kiln_tensor *C = kiln_compute(ctx, "C", 2, (int64_t[]){N, N}, matmul_body, &op);
	if (!C)
		return fail(ctx, "declare");

	/* 2. schedule: 8x32 blocks of C accumulate in registers (a local cache),
	 * k runs outside the block, rows unrolled, columns one vector */
	kiln_schedule *s = kiln_schedule_create(ctx, 1, &C);
	kiln_tensor *CL = kiln_cache_write(s, C, KILN_SCOPE_LOCAL);
	kiln_stage *sc = kiln_stage_of(s, C), *sl = kiln_stage_of(s, CL);
	kiln_iter *io, *jo, *ii, *ji;
	kiln_tile(sc, kiln_stage_axis(sc, 0), kiln_stage_axis(sc, 1), 8, 32, &io, &jo, &ii, &ji);
	kiln_parallel(sc, io);
	kiln_vectorize(sc, ji);
	kiln_compute_at(sl, sc, jo);
	kiln_iter *li = kiln_stage_axis(sl, 0), *lj = kiln_stage_axis(sl, 1), *lk = kiln_stage_reduce_axis(sl, 0);
	kiln_reorder(sl, 3, (kiln_iter *[]){lk, li, lj});
	kiln_unroll(sl, li);
	kiln_vectorize(sl, lj);
	if (kiln_error(ctx)[0])
		return fail(ctx, "schedule");

	/* 3. lower and print the loop IR (pass a FILE as the last argument to see every pass) */
	kiln_func *f = kiln_lower(s, "matmul", 3, (kiln_tensor *[]){op.A, op.B, C}, NULL);
	if (!f)
		return fail(ctx, "lower");
	kiln_func_print(f, stdout);

	/* 4. build for this CPU (LLVM JIT) */
	kiln_module *m = kiln_build(ctx, 1, &f, "llvm");
	if (!m)
		return fail(ctx, "build");

	/* 5. run on random inputs and check one row against plain C */
	kiln_array *a = kiln_array_empty(2, (int64_t[]){N, N}, KILN_F32);
	kiln_array *b = kiln_array_empty(2, (int64_t[]){N, N}, KILN_F32);
	kiln_array *c = kiln_array_empty(2, (int64_t[]){N, N}, KILN_F32);
	kiln_array_fill_random(a, 1, -1, 1);
	kiln_array_fill_random(b, 2, -1, 1);
	kiln_array *args[] = {a, b, c};
	if (kiln_module_call(m, "matmul", args, 3))
		return fail(NULL, "call");
	const float *A = a->data, *B = b->data, *Cv = c->data;
	double maxerr = 0;
	for (int64_t j = 0; j < N; j++) {
		double ref = 0;
		for (int64_t k = 0; k < N; k++)
			ref += (double)A[(N / 2) * N + k] * B[k * N + j];
		maxerr = fmax(maxerr, fabs(ref - Cv[(N / 2) * N + j]));
	}
	printf("max error on row %lld: %.3g\n", (long long)(N / 2), maxerr);

	/* 6. time it: median of 10 samples, each at least 20 ms long */
	kiln_timing t;
	kiln_time_opts topts = {.warmup = 2, .repeat = 10, .min_repeat_ms = 20};
	if (kiln_module_time(m, "matmul", args, 3, &topts, &t))
		return fail(NULL, "time");
	printf("median %.3f ms, %.1f GFLOP/s on %d threads\n", t.median_ms, 2.0 * N * N * N / t.median_ms / 1e6,
	       kiln_get_num_threads());
	kiln_timing_free(&t);

	/* 7. export a shared library: int matmul(float *A, float *B, float *C) */
	if (kiln_export_library(ctx, m, out))
		return fail(ctx, "export");
	printf("exported %s\n", out);

	kiln_array_free(a);
	kiln_array_free(b);
	kiln_array_free(c);
	kiln_module_free(m);
	kiln_ctx_free(ctx);
	return maxerr < 1e-3 ? 0 : 1;
}
