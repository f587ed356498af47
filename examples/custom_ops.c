/*
 * custom_ops.c — three operators kiln does not ship, written with the C API
 * (the same three as the .kte files of examples/te in the text language): a batched
 * einsum with prime sizes, a fused swish + row sum, and a 1-D stencil with
 * zero boundaries. Each is declared from expressions over named axes (no
 * callback struct), gets the target's default schedule, runs on random
 * inputs and is compared with a plain C loop.
 *
 *   build/examples/custom_ops [llvm|opencl|webgl]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/build.h"
#include "kiln/ops.h"
#include "kiln/schedule.h"
#include "kiln/te.h"

#define V(it) kiln_iter_var(it)
#define I64(v) kiln_const(ctx, KILN_I64, (v))

/* C[b, i, j] = sum_k A[b, i, k] * B[b, k, j] */
static kiln_tensor *einsum(kiln_ctx *ctx, kiln_tensor **A, kiln_tensor **B)
{
	*A = kiln_placeholder(ctx, "A", 3, (int64_t[]){3, 17, 23}, KILN_F32);
	*B = kiln_placeholder(ctx, "B", 3, (int64_t[]){3, 23, 19}, KILN_F32);
	kiln_iter *b = kiln_axis(ctx, 3, "b"), *i = kiln_axis(ctx, 17, "i"), *j = kiln_axis(ctx, 19, "j");
	kiln_iter *k = kiln_reduce_axis(ctx, 23, "k");
	kiln_expr *prod = kiln_mul(ctx, KILN_READ(ctx, *A, V(b), V(i), V(k)), KILN_READ(ctx, *B, V(b), V(k), V(j)));
	return kiln_compute_expr(ctx, "C", 3, (kiln_iter *[]){b, i, j}, kiln_sum(ctx, prod, 1, &k));
}

/* Y[i] = sum_j X[i, j] * sigmoid(X[i, j]) */
static kiln_tensor *swish_rowsum(kiln_ctx *ctx, kiln_tensor **X)
{
	*X = kiln_placeholder(ctx, "X", 2, (int64_t[]){129, 1000}, KILN_F32);
	kiln_iter *i = kiln_axis(ctx, 129, "i"), *j = kiln_reduce_axis(ctx, 1000, "j");
	kiln_expr *x = KILN_READ(ctx, *X, V(i), V(j));
	kiln_expr *swish = kiln_mul(ctx, x, kiln_call(ctx, KILN_SIGMOID, x, NULL));
	return kiln_compute_expr(ctx, "Y", 1, &i, kiln_sum(ctx, swish, 1, &j));
}

/* Y[i] = X[i-1] + 2 X[i] + X[i+1], zero outside X: each neighbour read only where it exists */
static kiln_tensor *stencil(kiln_ctx *ctx, kiln_tensor **X)
{
	int64_t n = 1000001;
	*X = kiln_placeholder(ctx, "X", 1, &n, KILN_F32);
	kiln_iter *i = kiln_axis(ctx, n, "i");
	kiln_expr *zero = kiln_float(ctx, 0);
	kiln_expr *left = kiln_if_then_else(ctx, kiln_gt(ctx, V(i), I64(0)),
	                                    KILN_READ(ctx, *X, kiln_sub(ctx, V(i), I64(1))), zero);
	kiln_expr *right = kiln_select(ctx, kiln_lt(ctx, V(i), I64(n - 1)), KILN_READ(ctx, *X, kiln_add(ctx, V(i), I64(1))),
	                               zero);
	kiln_expr *mid = kiln_mul(ctx, kiln_float(ctx, 2), KILN_READ(ctx, *X, V(i)));
	return kiln_compute_expr(ctx, "Y", 1, &i, kiln_add(ctx, kiln_add(ctx, left, mid), right));
}

static void reference(int which, kiln_array *const *in, kiln_array *out, double *want)
{
	if (which == 0) {
		const float *a = in[0]->data, *b = in[1]->data;
		for (int z = 0; z < 3; z++)
			for (int i = 0; i < 17; i++)
				for (int j = 0; j < 19; j++) {
					double s = 0;
					for (int k = 0; k < 23; k++)
						s += (double)a[(z * 17 + i) * 23 + k] * b[(z * 23 + k) * 19 + j];
					want[(z * 17 + i) * 19 + j] = s;
				}
	} else if (which == 1) {
		const float *x = in[0]->data;
		for (int i = 0; i < 129; i++) {
			double s = 0;
			for (int j = 0; j < 1000; j++) {
				double v = x[i * 1000 + j];
				s += v / (1 + exp(-v));
			}
			want[i] = s;
		}
	} else {
		const float *x = in[0]->data;
		int64_t n = out->shape[0];
		for (int64_t i = 0; i < n; i++)
			want[i] = (i > 0 ? x[i - 1] : 0.0) + 2.0 * x[i] + (i < n - 1 ? x[i + 1] : 0.0);
	}
}

static int run(int which, const char *target)
{
	static const char *names[] = {"batched_einsum", "swish_rowsum", "stencil"};
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_tensor *in[2] = {0}, *out;
	int nin = which == 0 ? 2 : 1;
	out = which == 0 ? einsum(ctx, &in[0], &in[1]) : which == 1 ? swish_rowsum(ctx, &in[0]) : stencil(ctx, &in[0]);
	kiln_tensor *args[3] = {in[0], nin == 2 ? in[1] : out, out};
	kiln_schedule *s = out ? kiln_schedule_for(ctx, target, 1, &out) : NULL;
	kiln_module *m = s ? kiln_build_schedule(s, names[which], nin + 1, args, target) : NULL;
	if (!m) {
		fprintf(stderr, "%s: %s\n", names[which], kiln_error(ctx));
		kiln_ctx_free(ctx);
		return 1;
	}
	kiln_array *arr[3];
	for (int a = 0; a <= nin; a++) {
		arr[a] = kiln_array_empty(kiln_tensor_ndim(args[a]), kiln_tensor_shape(args[a]), KILN_F32);
		if (a < nin)
			kiln_array_fill_random(arr[a], 7 + (uint64_t)a, -1, 1);
	}
	/* the output starts as NaN: an element the kernel skips cannot pass */
	for (int64_t i = 0; i < kiln_array_numel(arr[nin]); i++)
		((float *)arr[nin]->data)[i] = NAN;
	int rc = kiln_module_call(m, names[which], arr, nin + 1);
	int64_t n = kiln_array_numel(arr[nin]);
	double *want = malloc(sizeof(double) * (size_t)n), worst = 0;
	reference(which, arr, arr[nin], want);
	const float *got = arr[nin]->data;
	for (int64_t i = 0; !rc && i < n; i++) {
		double e = fabs(got[i] - want[i]) / (1e-4 + 1e-4 * fabs(want[i]));
		worst = e > worst || isnan(e) ? (isnan(e) ? INFINITY : e) : worst;
	}
	printf("%-15s on %s: %lld outputs, %s\n", names[which], target, (long long)n,
	       rc ? kiln_rt_last_error() : worst <= 1 ? "match the C loop" : "DIFFER from the C loop");
	rc = rc || worst > 1;
	free(want);
	for (int a = 0; a <= nin; a++)
		kiln_array_free(arr[a]);
	kiln_module_free(m);
	kiln_ctx_free(ctx);
	return rc;
}

int main(int argc, char **argv)
{
	const char *target = argc > 1 ? argv[1] : "llvm";
	int rc = 0;
	for (int which = 0; which < 3; which++)
		rc |= run(which, target);
	return rc;
}
