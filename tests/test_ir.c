/*
 * test_ir.c — the IR core: constructors, printer, simplifier, oracle, and
 * a first matmul through the whole pipeline.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "ir/simplify.h"
#include "testutil.h"

static char buf[4096];
#define STR(e) kiln_expr_str((e), buf, sizeof buf)

START_TEST(type_errors)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_expr *x = kiln_var(ctx, "x", KILN_F32), *b = kiln_var(ctx, "b", KILN_BOOLT);
	ck_assert_ptr_null(kiln_add(ctx, x, b));
	ck_assert_msg(strstr(kiln_error(ctx), "arithmetic '+' on bool") || strstr(kiln_error(ctx), "type mismatch"),
	              "%s", kiln_error(ctx));
	kiln_clear_error(ctx);
	ck_assert_ptr_null(kiln_and(ctx, x, x));
	ck_assert_str_eq(kiln_error(ctx), "operands of '&&' must be bool");
	kiln_clear_error(ctx);
	ck_assert_ptr_null(kiln_call(ctx, KILN_EXP, kiln_int(ctx, 3), NULL));
	ck_assert_str_eq(kiln_error(ctx), "exp needs a float operand");
	/* NULL propagates without a second message */
	ck_assert_ptr_null(kiln_mul(ctx, NULL, x));
	ck_assert_str_eq(kiln_error(ctx), "exp needs a float operand");
	kiln_ctx_free(ctx);
}
END_TEST

START_TEST(printer)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_expr *i = kiln_var(ctx, "i", KILN_I64), *j = kiln_var(ctx, "j", KILN_I64);
	kiln_expr *e = kiln_mul(ctx, kiln_add(ctx, i, j), kiln_sub(ctx, i, kiln_sub(ctx, j, kiln_int(ctx, 1))));
	ck_assert_str_eq(STR(e), "(i + j)*(i - (j - 1))");
	kiln_expr *s = kiln_select(ctx, kiln_lt(ctx, i, j), kiln_float(ctx, 1.5), kiln_float(ctx, 0));
	ck_assert_str_eq(STR(s), "select(i < j, 1.5f, 0f)");
	ck_assert_str_eq(STR(kiln_call(ctx, KILN_TANH, kiln_cast(ctx, KILN_F32, i), NULL)), "tanh(float32(i))");
	kiln_ctx_free(ctx);
}
END_TEST

static const char *simp(kiln_ctx *ctx, ir_env *env, kiln_expr *e)
{
	return STR(ir_simplify_expr(ctx, env, e));
}

START_TEST(simplifier)
{
	kiln_ctx *ctx = kiln_ctx_new();
	ir_expr *i = ir_var(ctx, "i", IR_I64), *j = ir_var(ctx, "j", IR_I64);
	ir_env env = {0};
	ir_env_push(&env, i, 0, 15);
	ir_env_push(&env, j, 0, 511);
	/* constant folding and canonical sums */
	ck_assert_str_eq(simp(ctx, &env, ir_add(ctx, ir_i64(ctx, 2), ir_mul(ctx, ir_i64(ctx, 3), ir_i64(ctx, 4)))), "14");
	ck_assert_str_eq(simp(ctx, &env, ir_sub(ctx, ir_mul(ctx, ir_add(ctx, ir_mul(ctx, i, ir_i64(ctx, 16)), j), ir_i64(ctx, 512)),
	                                        ir_mul(ctx, i, ir_i64(ctx, 8192)))),
	                 "j*512");
	ck_assert_str_eq(simp(ctx, &env, ir_add(ctx, ir_add(ctx, i, j), ir_sub(ctx, i, ir_i64(ctx, 3)))), "i*2 + j - 3");
	/* division and modulo under known bounds */
	ck_assert_str_eq(simp(ctx, &env, ir_div(ctx, i, ir_i64(ctx, 16))), "0");
	ck_assert_str_eq(simp(ctx, &env, ir_mod(ctx, i, ir_i64(ctx, 16))), "i");
	ck_assert_str_eq(simp(ctx, &env, ir_div(ctx, ir_add(ctx, ir_mul(ctx, j, ir_i64(ctx, 16)), i), ir_i64(ctx, 16))), "j");
	ck_assert_str_eq(simp(ctx, &env, ir_mod(ctx, ir_add(ctx, ir_mul(ctx, j, ir_i64(ctx, 16)), i), ir_i64(ctx, 16))), "i");
	ck_assert_str_eq(simp(ctx, &env, ir_div(ctx, ir_div(ctx, j, ir_i64(ctx, 4)), ir_i64(ctx, 8))), "j/32");
	/* divisors whose product overflows stay apart (a fuzzer's chain: the product was undefined behaviour) */
	ir_expr *k = ir_var(ctx, "k", IR_I64);
	ck_assert_str_eq(simp(ctx, NULL, ir_div(ctx, ir_div(ctx, k, ir_i64(ctx, 10000100000000)), ir_i64(ctx, 3000000))),
	                 "k/10000100000000/3000000");
	ck_assert_str_eq(simp(ctx, NULL, ir_div(ctx, ir_i64(ctx, -7), ir_i64(ctx, 2))), "-4");
	ck_assert_str_eq(simp(ctx, NULL, ir_mod(ctx, ir_i64(ctx, -7), ir_i64(ctx, 2))), "1");
	/* a split index joined again is the index: (x/4)*4 + x%4, and nested */
	ir_expr *x = ir_var(ctx, "x", IR_I64), *c3 = ir_i64(ctx, 3), *c9 = ir_i64(ctx, 9);
	ck_assert_str_eq(simp(ctx, &env, ir_add(ctx, ir_mul(ctx, ir_div(ctx, x, ir_i64(ctx, 4)), ir_i64(ctx, 4)),
	                                        ir_mod(ctx, x, ir_i64(ctx, 4)))), "x");
	ir_expr *nested = ir_add(ctx, ir_mul(ctx, ir_add(ctx, ir_mul(ctx, ir_div(ctx, x, c9), c3), ir_mod(ctx, ir_div(ctx, x, c3), c3)), c3),
	                         ir_mod(ctx, x, c3));
	ck_assert_str_eq(simp(ctx, &env, nested), "x");
	ck_assert_str_eq(simp(ctx, &env, ir_add(ctx, ir_mul(ctx, ir_div(ctx, x, c3), c3), x)), "x/3*3 + x");
	/* guards that always hold fold away; others stay */
	ck_assert_str_eq(simp(ctx, &env, ir_lt(ctx, ir_add(ctx, ir_mul(ctx, i, ir_i64(ctx, 32)), j), ir_i64(ctx, 992))), "true");
	ck_assert_str_eq(simp(ctx, &env, ir_lt(ctx, ir_add(ctx, ir_mul(ctx, i, ir_i64(ctx, 32)), j), ir_i64(ctx, 500))),
	                 "i*32 + j < 500");
	ck_assert_str_eq(simp(ctx, &env, ir_binary(ctx, IR_MIN, i, ir_add(ctx, i, ir_i64(ctx, 1)))), "i");
	/* vector index arithmetic */
	ir_expr *r = ir_ramp(ctx, ir_i64(ctx, 0), ir_i64(ctx, 1), 16);
	ck_assert_str_eq(simp(ctx, &env, ir_add(ctx, ir_mul(ctx, i, ir_i64(ctx, 512)), r)), "ramp(i*512, 1, 16)");
	ck_assert_str_eq(simp(ctx, &env, ir_mul(ctx, r, ir_i64(ctx, 4))), "ramp(0, 4, 16)");
	ir_env_free(&env);
	kiln_ctx_free(ctx);
}
END_TEST

static kiln_expr *relu_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	kiln_tensor *A = user;
	return kiln_max(ctx, KILN_READ(ctx, A, idx[0], idx[1]), kiln_float(ctx, 0));
}

START_TEST(oracle_relu)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_tensor *A = kiln_placeholder(ctx, "A", 2, (int64_t[]){2, 3}, KILN_F32);
	kiln_tensor *B = kiln_compute(ctx, "B", 2, (int64_t[]){2, 3}, relu_body, A);
	float a[6] = {-1, 2, -3, 4, 0, 5}, b[6];
	kiln_array *ia = kiln_array_wrap(a, 2, (int64_t[]){2, 3}, KILN_F32);
	kiln_array *ob = kiln_array_wrap(b, 2, (int64_t[]){2, 3}, KILN_F32);
	ck_assert_int_eq(kiln_eval(ctx, B, 1, &A, &ia, ob), 0);
	float want[6] = {0, 2, 0, 4, 0, 5};
	for (int i = 0; i < 6; i++)
		ck_assert_float_eq(b[i], want[i]);
	kiln_array_free(ia);
	kiln_array_free(ob);
	kiln_ctx_free(ctx);
}
END_TEST

/* B[i] = sum over k of A[i, k] (user: {A, k}). */
static kiln_expr *rowsum_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	void **u = user;
	kiln_iter *k = u[1];
	return kiln_sum(ctx, KILN_READ(ctx, (kiln_tensor *)u[0], idx[0], kiln_iter_var(k)), 1, &k);
}

/* A[i, r] with r a reduce axis but no reduction (user: {A, r}). */
static kiln_expr *stray_axis_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	void **u = user;
	return KILN_READ(ctx, (kiln_tensor *)u[0], idx[0], kiln_iter_var((kiln_iter *)u[1]));
}

/* A read with one index of a 2-D tensor. */
static kiln_expr *short_read_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	return KILN_READ(ctx, (kiln_tensor *)user, idx[0]);
}

/* The C API refuses what it cannot build, with a message, where the value enters. */
START_TEST(api_refusals)
{
	kiln_ctx *ctx = kiln_ctx_new();
	tu_expect_error(ctx, kiln_placeholder(ctx, NULL, 1, (int64_t[]){4}, KILN_F32) == NULL, "needs a name");
	kiln_clear_error(ctx);
	tu_expect_error(ctx, kiln_placeholder(ctx, "A", 2, NULL, KILN_F32) == NULL, "no shape (NULL)");
	kiln_clear_error(ctx);
	ck_assert_ptr_nonnull(kiln_placeholder(ctx, "s", 0, NULL, KILN_F32)); /* a scalar */
	tu_expect_error(ctx, kiln_placeholder(ctx, "A", 2, (int64_t[]){INT64_MAX / 2, 4}, KILN_F32) == NULL,
	                "KILN_MAX_ARRAY_BYTES");
	kiln_clear_error(ctx);
	tu_expect_error(ctx, kiln_placeholder(ctx, "A", 1, (int64_t[]){4}, (kiln_dtype){KILN_FLOAT, 13, 1}) == NULL,
	                "13 bits");
	kiln_clear_error(ctx);
	kiln_tensor *A = kiln_placeholder(ctx, "A", 2, (int64_t[]){3, 4}, KILN_F32);
	tu_expect_error(ctx, kiln_compute(ctx, "B", 1, (int64_t[]){3}, short_read_body, A) == NULL,
	                "read of 'A' with 1 indices; it has 2 dimensions");
	kiln_clear_error(ctx);
	/* a tensor of another context cannot be read (freeing that one first was a use after free) */
	kiln_ctx *other = kiln_ctx_new();
	kiln_tensor *O = kiln_placeholder(other, "O", 2, (int64_t[]){2, 3}, KILN_F32);
	tu_expect_error(ctx, kiln_compute(ctx, "B", 2, (int64_t[]){2, 3}, relu_body, O) == NULL,
	                "belongs to another context");
	kiln_clear_error(ctx);
	kiln_ctx_free(other);
	tu_expect_error(ctx, kiln_call(ctx, KILN_POW, kiln_float(ctx, 2), NULL) == NULL, "pow: missing operand");
	kiln_clear_error(ctx);
	/* the oracle checks its input arrays' shapes */
	kiln_tensor *B = kiln_compute(ctx, "B", 2, (int64_t[]){3, 4}, relu_body, A);
	kiln_array *small = kiln_array_empty(2, (int64_t[]){2, 4}, KILN_F32), *out = kiln_array_empty(2, (int64_t[]){3, 4}, KILN_F32);
	tu_expect_error(ctx, kiln_eval(ctx, B, 1, &A, &small, out) != 0, "does not have its shape and dtype");
	kiln_clear_error(ctx);
	/* a reduce axis outside any reduction over it is refused at declaration */
	kiln_iter *r = kiln_reduce_axis(ctx, 4, "r");
	tu_expect_error(ctx, kiln_compute(ctx, "Bad", 1, (int64_t[]){3}, stray_axis_body, (void *[]){A, r}) == NULL,
	                "compute 'Bad': reduce axis 'r' is used outside a reduction over it");
	kiln_clear_error(ctx);
	/* schedules: a vectorized reduce axis, a function name no C symbol can have */
	kiln_iter *k = kiln_reduce_axis(ctx, 4, "k");
	kiln_tensor *S = kiln_compute(ctx, "S", 1, (int64_t[]){3}, rowsum_body, (void *[]){A, k});
	kiln_schedule *sc = kiln_schedule_create(ctx, 1, &S);
	tu_expect_error(ctx, kiln_vectorize(kiln_stage_of(sc, S), k) != 0, "vectorize: 'k' is a reduction axis");
	kiln_clear_error(ctx);
	tu_expect_error(ctx, kiln_lower(sc, "my func!", 2, (kiln_tensor *[]){A, S}, NULL) == NULL,
	                "is not a C identifier");
	kiln_clear_error(ctx);
	/* a factor past the extent is clamped: one tile, and the kernel returns at once */
	kiln_schedule *st = kiln_schedule_create(ctx, 1, &B);
	kiln_stage *b = kiln_stage_of(st, B);
	kiln_iter *xo, *yo, *xi, *yi;
	ck_assert_int_eq(kiln_tile(b, kiln_stage_axis(b, 0), kiln_stage_axis(b, 1), 1LL << 40, INT64_MAX, &xo, &yo, &xi, &yi), 0);
	ck_assert_double_ge(tu_check(ctx, st, 2, (kiln_tensor *[]){A, B}, 3), 0);
	kiln_array_free(small);
	kiln_array_free(out);
	kiln_ctx_free(ctx);
}
END_TEST

typedef struct {
	kiln_tensor *A, *B;
	kiln_iter *k;
} mm;

static kiln_expr *mm_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	mm *m = user;
	kiln_expr *k = kiln_iter_var(m->k);
	return kiln_sum(ctx, kiln_mul(ctx, KILN_READ(ctx, m->A, idx[0], k), KILN_READ(ctx, m->B, k, idx[1])), 1, &m->k);
}

START_TEST(matmul_pipeline)
{
	kiln_ctx *ctx = kiln_ctx_new();
	mm m;
	m.A = kiln_placeholder(ctx, "A", 2, (int64_t[]){37, 29}, KILN_F32);
	m.B = kiln_placeholder(ctx, "B", 2, (int64_t[]){29, 45}, KILN_F32);
	m.k = kiln_reduce_axis(ctx, 29, "k");
	kiln_tensor *C = kiln_compute(ctx, "C", 2, (int64_t[]){37, 45}, mm_body, &m);
	kiln_schedule *s = kiln_schedule_create(ctx, 1, &C);
	ck_assert_double_ge(tu_check(ctx, s, 3, (kiln_tensor *[]){m.A, m.B, C}, 1), 0);
	kiln_ctx_free(ctx);

	/* tiled, vectorized, parallel, unrolled: imperfect splits everywhere */
	ctx = kiln_ctx_new();
	m.A = kiln_placeholder(ctx, "A", 2, (int64_t[]){37, 29}, KILN_F32);
	m.B = kiln_placeholder(ctx, "B", 2, (int64_t[]){29, 45}, KILN_F32);
	m.k = kiln_reduce_axis(ctx, 29, "k");
	C = kiln_compute(ctx, "C", 2, (int64_t[]){37, 45}, mm_body, &m);
	s = kiln_schedule_create(ctx, 1, &C);
	kiln_stage *st = kiln_stage_of(s, C);
	kiln_iter *io, *jo, *ii, *ji, *ko, *ki;
	ck_assert_int_eq(kiln_tile(st, kiln_stage_axis(st, 0), kiln_stage_axis(st, 1), 8, 16, &io, &jo, &ii, &ji), 0);
	ck_assert_int_eq(kiln_split(st, m.k, 4, &ko, &ki), 0);
	ck_assert_int_eq(kiln_reorder(st, 6, (kiln_iter *[]){io, jo, ko, ii, ki, ji}), 0);
	ck_assert_int_eq(kiln_parallel(st, io), 0);
	ck_assert_int_eq(kiln_vectorize(st, ji), 0);
	ck_assert_int_eq(kiln_unroll(st, ki), 0);
	ck_assert_double_ge(tu_check(ctx, s, 3, (kiln_tensor *[]){m.A, m.B, C}, 2), 0);
	kiln_ctx_free(ctx);
}
END_TEST

/* ---- dtypes: every target must agree with the oracle on integer semantics too ---- */

typedef struct {
	kiln_tensor *A, *B;
	int which;
} dt;

static kiln_expr *dtype_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	dt *d = user;
	kiln_expr *a = KILN_READ(ctx, d->A, idx[0]), *b = KILN_READ(ctx, d->B, idx[0]);
	kiln_dtype t = kiln_tensor_dtype(d->A);
	kiln_expr *pos = kiln_add(ctx, kiln_mul(ctx, b, b), kiln_const(ctx, t, 1)); /* never zero */
	switch (d->which) {
	case 0: /* f16 arithmetic */
		return kiln_add(ctx, a, kiln_mul(ctx, b, kiln_const(ctx, t, 2)));
	case 1: /* floor division and modulo, both signs */
		return kiln_add(ctx, kiln_mul(ctx, kiln_div(ctx, a, pos), kiln_const(ctx, t, 100)),
		                kiln_add(ctx, kiln_mod(ctx, a, kiln_sub(ctx, kiln_const(ctx, t, 0), pos)), kiln_mod(ctx, a, pos)));
	case 2: /* uint8 wraps around */
		return kiln_add(ctx, kiln_mul(ctx, a, b), kiln_const(ctx, t, 200));
	case 3: /* a bool result from comparisons and logic */
		return kiln_or(ctx, kiln_and(ctx, kiln_lt(ctx, a, b), kiln_ne(ctx, a, kiln_const(ctx, t, 0))),
		               kiln_ge(ctx, kiln_max(ctx, a, b), kiln_const(ctx, t, 7)));
	case 4: /* casts both ways, truncating toward zero */
		return kiln_add(ctx, kiln_cast(ctx, KILN_I32, kiln_mul(ctx, a, kiln_float(ctx, 7.5f))),
		                kiln_cast(ctx, KILN_I32, kiln_cast(ctx, KILN_F64, kiln_cast(ctx, KILN_I32, b))));
	default: /* int64 with min / max / select / abs */
		return kiln_select(ctx, kiln_gt(ctx, a, b), kiln_call(ctx, KILN_ABS, kiln_sub(ctx, a, b), NULL),
		                   kiln_min(ctx, a, kiln_mul(ctx, b, kiln_const(ctx, t, 3))));
	}
}

START_TEST(dtypes)
{
	static const kiln_dtype types[] = {KILN_F16, KILN_I32, KILN_U8, KILN_I32, KILN_F32, KILN_I64};
	kiln_ctx *ctx = kiln_ctx_new();
	dt d = {kiln_placeholder(ctx, "A", 1, (int64_t[]){77}, types[_i]), kiln_placeholder(ctx, "B", 1, (int64_t[]){77}, types[_i]), _i};
	kiln_tensor *C = kiln_compute(ctx, "C", 1, (int64_t[]){77}, dtype_body, &d);
	ck_assert_msg(C != NULL, "%s", kiln_error(ctx));
	/* vectorized, with the last tile shifted inwards */
	kiln_schedule *s = kiln_schedule_create(ctx, 1, &C);
	kiln_stage *st = kiln_stage_of(s, C);
	kiln_iter *o, *i;
	ck_assert_int_eq(kiln_split(st, kiln_stage_axis(st, 0), 16, &o, &i), 0);
	ck_assert_int_eq(kiln_vectorize(st, i), 0);
	ck_assert_msg(tu_check(ctx, s, 3, (kiln_tensor *[]){d.A, d.B, C}, 11 + _i) >= 0, "dtype case %d: %s", _i,
	              kiln_error(ctx));
	kiln_ctx_free(ctx);
}
END_TEST

/* ---- several outputs over one iteration space ---- */

static int stats_body(kiln_ctx *ctx, kiln_expr *const *idx, kiln_expr **bodies, void *user)
{
	mm *m = user;
	kiln_expr *x = KILN_READ(ctx, m->A, idx[0], kiln_iter_var(m->k));
	bodies[0] = kiln_sum(ctx, x, 1, &m->k);
	bodies[1] = kiln_sum(ctx, kiln_mul(ctx, x, x), 1, &m->k);
	return 0;
}

START_TEST(multi_output)
{
	kiln_ctx *ctx = kiln_ctx_new();
	mm m;
	m.A = kiln_placeholder(ctx, "A", 2, (int64_t[]){9, 40}, KILN_F32);
	m.k = kiln_reduce_axis(ctx, 40, "k");
	kiln_tensor *outs[2];
	ck_assert_int_eq(kiln_compute_multi(ctx, "stats", 1, (int64_t[]){9}, 2, stats_body, &m, outs), 0);
	ck_assert_str_eq(kiln_tensor_name(outs[0]), "stats.v0");
	kiln_schedule *s = kiln_schedule_create(ctx, 2, outs);
	kiln_stage *st = kiln_stage_of(s, outs[0]);
	ck_assert_ptr_eq(st, kiln_stage_of(s, outs[1])); /* one stage, one loop nest, two results */
	ck_assert_int_eq(kiln_parallel(st, kiln_stage_axis(st, 0)), 0);
	ck_assert_double_ge(tu_check(ctx, s, 3, (kiln_tensor *[]){m.A, outs[0], outs[1]}, 5), 0);
	kiln_ctx_free(ctx);
}
END_TEST

Suite *ir_suite(void)
{
	Suite *s = suite_create("ir");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, type_errors);
	tcase_add_test(tc, printer);
	tcase_add_test(tc, simplifier);
	tcase_add_test(tc, oracle_relu);
	tcase_add_test(tc, matmul_pipeline);
	tcase_add_loop_test(tc, dtypes, 0, 6);
	tcase_add_test(tc, multi_output);
	tcase_add_test(tc, api_refusals);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	int failed = tu_run_suite(ir_suite());
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
