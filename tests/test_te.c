/*
 * test_te.c — the researcher's path: operators kiln does not ship, written
 * with if_then_else and conditional reads, rfactor on uneven splits, named
 * axes, compute_at in either order, default schedules for any compute, and
 * the text language (frontends/te). Every kernel runs on every target and
 * is checked against the oracle and a plain C loop written here.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/build.h"
#include "kiln/parse.h"
#include "kiln/schedule.h"
#include "kiln/te.h"
#include "testutil.h"

static const char *targets[] = {"llvm", "wasm", "opencl", "webgl", "webgpu"};
#define NTARGETS (int)(sizeof targets / sizeof *targets)

/* ---- plain C references ---- */

/* Y[i] = X[i-1] + 2 X[i] + X[i+1], zero outside X. */
static int ref_stencil(int nin, const kiln_array *const *ins, const kiln_array *out, double *want, void *user)
{
	(void)nin, (void)user;
	const float *x = ins[0]->data;
	int64_t n = out->shape[0];
	for (int64_t i = 0; i < n; i++)
		want[i] = (i > 0 ? x[i - 1] : 0.0) + 2.0 * x[i] + (i < n - 1 ? x[i + 1] : 0.0);
	return 0;
}

/* Y[i] = X[i-1] with the first element repeated (the clamped-index form). */
static int ref_shift(int nin, const kiln_array *const *ins, const kiln_array *out, double *want, void *user)
{
	(void)nin, (void)user;
	const float *x = ins[0]->data;
	for (int64_t i = 0; i < out->shape[0]; i++)
		want[i] = x[i > 0 ? i - 1 : 0];
	return 0;
}

/* C[i] = sum_k A[i, k] */
static int ref_rowsum(int nin, const kiln_array *const *ins, const kiln_array *out, double *want, void *user)
{
	(void)nin, (void)user;
	const float *a = ins[0]->data;
	int64_t m = out->shape[0], k = ins[0]->shape[1];
	for (int64_t i = 0; i < m; i++) {
		double s = 0;
		for (int64_t j = 0; j < k; j++)
			s += a[i * k + j];
		want[i] = s;
	}
	return 0;
}

/* C[b, i, j] = sum_k A[b, i, k] B[b, k, j] */
static int ref_einsum(int nin, const kiln_array *const *ins, const kiln_array *out, double *want, void *user)
{
	(void)nin, (void)user;
	const float *a = ins[0]->data, *b = ins[1]->data;
	int64_t nb = out->shape[0], m = out->shape[1], n = out->shape[2], k = ins[0]->shape[2];
	for (int64_t z = 0; z < nb; z++)
		for (int64_t i = 0; i < m; i++)
			for (int64_t j = 0; j < n; j++) {
				double s = 0;
				for (int64_t l = 0; l < k; l++)
					s += (double)a[(z * m + i) * k + l] * b[(z * k + l) * n + j];
				want[(z * m + i) * n + j] = s;
			}
	return 0;
}

/* Y[i] = sum_j x sigmoid(x), x = X[i, j] */
static int ref_swish_rowsum(int nin, const kiln_array *const *ins, const kiln_array *out, double *want, void *user)
{
	(void)nin, (void)user;
	const float *x = ins[0]->data;
	int64_t m = out->shape[0], k = ins[0]->shape[1];
	for (int64_t i = 0; i < m; i++) {
		double s = 0;
		for (int64_t j = 0; j < k; j++) {
			double v = x[i * k + j];
			s += v / (1 + exp(-v));
		}
		want[i] = s;
	}
	return 0;
}

/* ---- if_then_else and reads under conditions ---- */

typedef struct {
	kiln_tensor *X;
	int form;
} stencil_args;

static kiln_expr *i64(kiln_ctx *ctx, int64_t v) { return kiln_const(ctx, KILN_I64, (double)v); }

static kiln_expr *stencil_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	stencil_args *a = user;
	kiln_expr *i = idx[0], *n1 = i64(ctx, kiln_tensor_shape(a->X)[0] - 1), *zero = kiln_float(ctx, 0);
	kiln_expr *left = KILN_READ(ctx, a->X, kiln_sub(ctx, i, i64(ctx, 1)));
	kiln_expr *right = KILN_READ(ctx, a->X, kiln_add(ctx, i, i64(ctx, 1)));
	kiln_expr *mid = kiln_mul(ctx, kiln_float(ctx, 2), KILN_READ(ctx, a->X, i));
	kiln_expr *(*choose)(kiln_ctx *, kiln_expr *, kiln_expr *, kiln_expr *) =
	    a->form == 0 ? kiln_select : kiln_if_then_else;
	left = choose(ctx, kiln_gt(ctx, i, i64(ctx, 0)), left, zero);
	right = choose(ctx, kiln_lt(ctx, i, n1), right, zero);
	return kiln_add(ctx, kiln_add(ctx, left, mid), right);
}

static kiln_expr *shift_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	stencil_args *a = user;
	kiln_expr *i = idx[0];
	return KILN_READ(ctx, a->X, kiln_select(ctx, kiln_gt(ctx, i, i64(ctx, 0)), kiln_sub(ctx, i, i64(ctx, 1)),
	                                         i64(ctx, 0)));
}

/* Both stencil forms of the issue, plain and vectorized, on every target. */
START_TEST(test_stencil_conditions)
{
	for (int t = 0; t < NTARGETS; t++)
		for (int form = 0; form < 3; form++) {
			kiln_ctx *ctx = kiln_ctx_new();
			int64_t n = 1001;
			stencil_args a = {kiln_placeholder(ctx, "X", 1, &n, KILN_F32), form == 2 ? 0 : form};
			kiln_tensor *Y = kiln_compute(ctx, "Y", 1, &n, form == 2 ? shift_body : stencil_body, &a);
			ck_assert_msg(Y, "%s", kiln_error(ctx));
			kiln_schedule *s = kiln_schedule_create(ctx, 1, &Y);
			kiln_stage *st = kiln_stage_of(s, Y);
			kiln_iter *o, *in;
			bool gpu = strcmp(targets[t], "llvm") && strcmp(targets[t], "wasm");
			ck_assert_int_eq(kiln_split(st, kiln_stage_axis(st, 0), gpu ? 7 : 8, &o, &in), 0);
			if (gpu) {
				kiln_bind(st, o, KILN_BLOCK_X);
				kiln_bind(st, in, KILN_THREAD_X);
			} else {
				kiln_vectorize(st, in);
			}
			double err = tu_check_with(ctx, s, 2, (kiln_tensor *[]){a.X, Y}, 11, targets[t],
			                           form == 2 ? ref_shift : ref_stencil, NULL);
			ck_assert_msg(err >= 0, "stencil form %d on %s: %s", form, targets[t], kiln_error(ctx));
			kiln_ctx_free(ctx);
		}
}
END_TEST

/* The side not taken is never evaluated: an integer division by zero there would trap on x86. */
typedef struct {
	kiln_tensor *X, *D;
} div_args;

static kiln_expr *safe_div_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	div_args *a = user;
	kiln_expr *d = KILN_READ(ctx, a->D, idx[0]);
	kiln_expr *q = kiln_div(ctx, KILN_READ(ctx, a->X, idx[0]), d);
	return kiln_if_then_else(ctx, kiln_ne(ctx, d, kiln_const(ctx, KILN_I32, 0)), q, kiln_const(ctx, KILN_I32, -1));
}

START_TEST(test_if_then_else_lazy)
{
	kiln_ctx *ctx = kiln_ctx_new();
	int64_t n = 64;
	div_args a = {kiln_placeholder(ctx, "X", 1, &n, KILN_I32), kiln_placeholder(ctx, "D", 1, &n, KILN_I32)};
	kiln_tensor *Y = kiln_compute(ctx, "Y", 1, &n, safe_div_body, &a);
	kiln_schedule *s = kiln_schedule_create(ctx, 1, &Y);
	kiln_func *f = kiln_lower(s, "fn", 3, (kiln_tensor *[]){a.X, a.D, Y}, NULL);
	ck_assert_msg(f, "%s", kiln_error(ctx));
	kiln_module *m = kiln_build(ctx, 1, &f, "llvm");
	ck_assert_msg(m, "%s", kiln_error(ctx));
	kiln_array *x = kiln_array_empty(1, &n, KILN_I32), *d = kiln_array_empty(1, &n, KILN_I32),
	           *y = kiln_array_empty(1, &n, KILN_I32);
	int32_t *xv = x->data, *dv = d->data, *yv = y->data;
	for (int i = 0; i < n; i++) {
		xv[i] = 7 * i - 100;
		dv[i] = i % 3 ? i % 5 - 2 : 0; /* zeros in a third of the lanes */
	}
	ck_assert_int_eq(kiln_module_call(m, "fn", (kiln_array *[]){x, d, y}, 3), 0);
	for (int i = 0; i < n; i++) {
		int32_t want = dv[i] ? (int32_t)floor((double)xv[i] / dv[i]) : -1;
		ck_assert_msg(yv[i] == want, "Y[%d] = %d, want %d", i, yv[i], want);
	}
	kiln_array_free(x);
	kiln_array_free(d);
	kiln_array_free(y);
	kiln_module_free(m);
	kiln_ctx_free(ctx);
}
END_TEST

/* Reads out of bounds under every condition are still refused. */
START_TEST(test_condition_not_enough)
{
	kiln_ctx *ctx = kiln_ctx_new();
	int64_t n = 100;
	kiln_tensor *X = kiln_placeholder(ctx, "X", 1, &n, KILN_F32);
	kiln_iter *i = kiln_axis(ctx, n, "i");
	kiln_expr *iv = kiln_iter_var(i);
	/* i > 0 keeps i - 1 in bounds but not i + 1 (which reaches 100 at i = 99) */
	kiln_expr *body = kiln_select(ctx, kiln_gt(ctx, iv, i64(ctx, 0)), KILN_READ(ctx, X, kiln_add(ctx, iv, i64(ctx, 1))),
	                              kiln_float(ctx, 0));
	kiln_tensor *Y = kiln_compute_expr(ctx, "Y", 1, &i, body);
	ck_assert_msg(Y, "%s", kiln_error(ctx));
	kiln_schedule *s = kiln_schedule_create(ctx, 1, &Y);
	ck_assert_ptr_null(kiln_lower(s, "fn", 2, (kiln_tensor *[]){X, Y}, NULL));
	ck_assert_msg(strstr(kiln_error(ctx), "reads X out of bounds: index 0 (i + 1) ranges over [2, 100]"), "%s",
	              kiln_error(ctx));
	kiln_ctx_free(ctx);
}
END_TEST

/* ---- rfactor on uneven splits ---- */

START_TEST(test_rfactor_uneven)
{
	for (int t = 0; t < NTARGETS; t++)
		for (int part = 0; part < 2; part++) {
			kiln_ctx *ctx = kiln_ctx_new();
			int64_t shape[2] = {7, 131};
			kiln_tensor *A = kiln_placeholder(ctx, "A", 2, shape, KILN_F32);
			kiln_iter *i = kiln_axis(ctx, 7, "i"), *k = kiln_reduce_axis(ctx, 131, "k");
			kiln_expr *body =
			    kiln_sum(ctx, KILN_READ(ctx, A, kiln_iter_var(i), kiln_iter_var(k)), 1, &k);
			kiln_tensor *C = kiln_compute_expr(ctx, "C", 1, &i, body);
			ck_assert_msg(C, "%s", kiln_error(ctx));
			kiln_schedule *s = kiln_schedule_create(ctx, 1, &C);
			kiln_stage *st = kiln_stage_of(s, C);
			kiln_iter *ko, *ki;
			ck_assert_int_eq(kiln_split(st, k, 8, &ko, &ki), 0);
			kiln_tensor *rf = kiln_rfactor(s, C, part ? ko : ki);
			ck_assert_msg(rf, "%s", kiln_error(ctx));
			bool gpu = strcmp(targets[t], "llvm") && strcmp(targets[t], "wasm");
			if (gpu) {
				kiln_stage *rs = kiln_stage_of(s, rf);
				/* (webgl: one fragment per element, in row-major order) */
				kiln_bind(rs, kiln_stage_axis(rs, 0), KILN_BLOCK_X);
				kiln_bind(rs, kiln_stage_axis(rs, 1), KILN_THREAD_X);
				kiln_bind(st, kiln_stage_axis(st, 0), KILN_BLOCK_X);
			}
			double err = tu_check_with(ctx, s, 2, (kiln_tensor *[]){A, C}, 5, targets[t], ref_rowsum, NULL);
			ck_assert_msg(err >= 0, "rfactor of %s on %s: %s", part ? "ko" : "ki", targets[t], kiln_error(ctx));
			kiln_ctx_free(ctx);
		}
}
END_TEST

/* ---- compute_at before or after the split of its axis ---- */

typedef struct {
	kiln_tensor *A, *B;
} chain_args;

static kiln_expr *double_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	return kiln_mul(ctx, kiln_float(ctx, 2), KILN_READ(ctx, ((chain_args *)user)->A, idx[0], idx[1]));
}

static kiln_expr *plus_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	return kiln_add(ctx, kiln_float(ctx, 1), KILN_READ(ctx, ((chain_args *)user)->B, idx[0], idx[1]));
}

static int ref_chain(int nin, const kiln_array *const *ins, const kiln_array *out, double *want, void *user)
{
	(void)nin, (void)user;
	const float *a = ins[0]->data;
	for (int64_t i = 0; i < kiln_array_numel(out); i++)
		want[i] = 1.0 + 2.0 * a[i];
	return 0;
}

/* Lowers B computed at C's row loop, split (then fused) before or after the compute_at; the IR text. */
static char *chain_ir(int order, int fuse)
{
	kiln_ctx *ctx = kiln_ctx_new();
	int64_t shape[2] = {10, 12};
	chain_args a = {kiln_placeholder(ctx, "A", 2, shape, KILN_F32), NULL};
	a.B = kiln_compute(ctx, "B", 2, shape, double_body, &a);
	kiln_tensor *C = kiln_compute(ctx, "C", 2, shape, plus_body, &a);
	kiln_schedule *s = kiln_schedule_create(ctx, 1, &C);
	kiln_stage *b = kiln_stage_of(s, a.B), *c = kiln_stage_of(s, C);
	kiln_iter *i = kiln_stage_axis(c, 0), *j = kiln_stage_axis(c, 1), *io, *ii, *f = NULL;
	if (order == 0)
		ck_assert_int_eq(kiln_compute_at(b, c, i), 0);
	ck_assert_int_eq(kiln_split(c, i, 4, &io, &ii), 0);
	if (fuse)
		ck_assert_int_eq(kiln_fuse(c, ii, j, &f), 0);
	if (order == 1)
		ck_assert_int_eq(kiln_compute_at(b, c, fuse ? f : ii), 0);
	ck_assert_msg(tu_check_with(ctx, s, 2, (kiln_tensor *[]){a.A, C}, 3, "llvm", ref_chain, NULL) >= 0, "%s",
	              kiln_error(ctx));
	char *text = tu_lowered_text(ctx, s, 2, (kiln_tensor *[]){a.A, C});
	kiln_ctx_free(ctx);
	return text;
}

START_TEST(test_compute_at_either_order)
{
	for (int fuse = 0; fuse < 2; fuse++) {
		char *before = chain_ir(0, fuse), *after = chain_ir(1, fuse);
		ck_assert_msg(!strcmp(before, after), "compute_at before the split:\n%s\nafter it:\n%s", before, after);
		free(before);
		free(after);
	}
}
END_TEST

/* ---- names ---- */

typedef struct {
	kiln_tensor *A;
	kiln_iter *k;
} sum_args;

static kiln_expr *sum_j_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	sum_args *a = user;
	return kiln_sum(ctx, KILN_READ(ctx, a->A, idx[0], idx[1], kiln_iter_var(a->k)), 1, &a->k);
}

/* A reduce axis called j beside default axes i, j: the output's second axis
 * is renamed j1, and every loop of the lowered IR has a name of its own. */
START_TEST(test_names_never_clash)
{
	kiln_ctx *ctx = kiln_ctx_new();
	int64_t shape[3] = {4, 5, 6};
	sum_args a = {kiln_placeholder(ctx, "A", 3, shape, KILN_F32), kiln_reduce_axis(ctx, 6, "j")};
	kiln_tensor *C = kiln_compute(ctx, "C", 2, shape, sum_j_body, &a);
	ck_assert_msg(C, "%s", kiln_error(ctx));
	kiln_schedule *s = kiln_schedule_create(ctx, 1, &C);
	kiln_stage *st = kiln_stage_of(s, C);
	ck_assert_str_eq(kiln_iter_name(kiln_stage_axis(st, 0)), "i");
	ck_assert_str_eq(kiln_iter_name(kiln_stage_axis(st, 1)), "j1");
	ck_assert_str_eq(kiln_iter_name(kiln_stage_reduce_axis(st, 0)), "j");
	char *text = tu_lowered_text(ctx, s, 2, (kiln_tensor *[]){a.A, C});
	ck_assert_msg(strstr(text, "for (j1, 0, 5)") && strstr(text, "for (j, 0, 6)") && strstr(text, "i*30 + j1*6 + j]"),
	              "%s", text);
	free(text);
	/* named axes keep their names */
	kiln_tensor *D = kiln_compute_named(ctx, "D", 2, shape, (const char *[]){"row", NULL}, sum_j_body, &a);
	ck_assert_str_eq(kiln_iter_name(kiln_stage_axis(kiln_stage_of(kiln_schedule_create(ctx, 1, &D), D), 0)), "row");
	/* rfactor's partial sums computed at the loop of the axis whose name they share: printed i.1 */
	kiln_iter *ko, *ki;
	s = kiln_schedule_create(ctx, 1, &C);
	st = kiln_stage_of(s, C);
	ck_assert_int_eq(kiln_split(st, kiln_stage_reduce_axis(st, 0), 2, &ko, &ki), 0);
	kiln_tensor *rf = kiln_rfactor(s, C, ki);
	ck_assert_int_eq(kiln_compute_at(kiln_stage_of(s, rf), st, kiln_stage_axis(st, 1)), 0);
	text = tu_lowered_text(ctx, s, 2, (kiln_tensor *[]){a.A, C});
	ck_assert_msg(!strstr(text, "i + i") && !strstr(text, "j1 + j1"), "%s", text);
	free(text);
	kiln_ctx_free(ctx);
}
END_TEST

/* ---- the examples in the text language, on every target ---- */

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f, "cannot open %s", path);
	static char buf[1 << 16];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	return buf;
}

static const struct {
	const char *file, *op;
	tu_ref_fn ref;
} examples[] = {
	{"batched_einsum.kte", "batched_einsum", ref_einsum},
	{"swish_rowsum.kte", "swish_rowsum", ref_swish_rowsum},
	{"stencil.kte", "stencil", ref_stencil},
};

START_TEST(test_kte_examples)
{
	int e = _i / NTARGETS, t = _i % NTARGETS;
	char path[1024];
	snprintf(path, sizeof path, "%s/../examples/te/%s", KILN_TESTS_DIR, examples[e].file);
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_program *p = kiln_parse(ctx, path, slurp(path));
	ck_assert_msg(p, "%s", kiln_error(ctx));
	kiln_tensor **args;
	int nin, nargs = kiln_program_args(p, examples[e].op, &nin, &args);
	ck_assert_int_gt(nargs, 0);
	const char *which;
	kiln_schedule *s = kiln_program_schedule(p, examples[e].op, targets[t], &which);
	ck_assert_msg(s, "%s on %s: %s", examples[e].op, targets[t], kiln_error(ctx));
	double err = tu_check_with(ctx, s, nargs, args, 21, targets[t], examples[e].ref, NULL);
	ck_assert_msg(err >= 0, "%s on %s (%s): %s", examples[e].file, targets[t], which, kiln_error(ctx));
	kiln_ctx_free(ctx);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("te");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_stencil_conditions);
	tcase_add_test(tc, test_if_then_else_lazy);
	tcase_add_test(tc, test_condition_not_enough);
	tcase_add_test(tc, test_rfactor_uneven);
	tcase_add_test(tc, test_compute_at_either_order);
	tcase_add_test(tc, test_names_never_clash);
	suite_add_tcase(s, tc);
	/* a million-element stencil: too slow under valgrind (scripts/test.sh skips "large") */
	TCase *large = tcase_create("examples");
	tcase_set_timeout(large, 600);
	tcase_set_tags(large, "large");
	tcase_add_loop_test(large, test_kte_examples, 0, (int)(sizeof examples / sizeof *examples) * NTARGETS);
	suite_add_tcase(s, large);
	return s;
}

int main(void) { return tu_run_suite(suite()) ? EXIT_FAILURE : EXIT_SUCCESS; }
