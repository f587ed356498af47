/*
 * test_webgl.c — the GLSL ES 3.00 (WebGL2) target on the native GLES
 * device (EGL surfaceless, Mesa llvmpipe in CI): every operator against the
 * oracle under the default schedule and a hand-written one; the GLSL of a
 * small kernel pinned and executed; the errors of the fragment model.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/ops.h"
#include "schedule/schedule.h"
#include "testutil.h"

/* Producers inlined; the fragment index split into blocks by an exact divisor. */
static kiln_schedule *blocked_schedule(kiln_ctx *ctx, kiln_tensor *out)
{
	kiln_schedule *s = kiln_schedule_create(ctx, 1, &out);
	kiln_stage *o = kiln_stage_of(s, out);
	for (int i = 0; i < s->nstage; i++)
		if (s->stages[i] != o && s->stages[i]->op->nreduce == 0)
			kiln_compute_inline(s->stages[i]);
	for (int i = 0; i < s->nstage; i++) {
		kiln_stage *p = s->stages[i];
		if (p->attach == ATTACH_INLINE)
			continue;
		kiln_iter *f = kiln_stage_axis(p, 0);
		int64_t total = p->outs[0]->shape[0];
		for (int d = 1; d < p->op->naxis; d++) {
			total *= p->outs[0]->shape[d];
			if (kiln_fuse(p, f, kiln_stage_axis(p, d), &f))
				return NULL;
		}
		int64_t b = 1;
		for (int64_t c = 2; c <= 64; c++)
			if (total % c == 0)
				b = c;
		kiln_iter *bo, *bi;
		if (kiln_split(p, f, b, &bo, &bi) || kiln_bind(p, bo, KILN_BLOCK_X) || kiln_bind(p, bi, KILN_THREAD_X))
			return NULL;
	}
	return s;
}

static kiln_schedule *default_schedule(kiln_ctx *ctx, kiln_tensor *out) { return kiln_schedule_webgl(ctx, 1, &out); }

START_TEST(op_default) { tu_run_op(kiln_op_at(_i), default_schedule, "webgl", "default"); }
END_TEST

START_TEST(op_blocked) { tu_run_op(kiln_op_at(_i), blocked_schedule, "webgl", "blocked"); }
END_TEST

START_TEST(source_text)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_tensor *X = kiln_placeholder(ctx, "X", 1, (int64_t[]){10}, KILN_F32);
	kiln_tensor *Y = kiln_op_unary(ctx, KILN_UN_RELU, X, 0, 0);
	kiln_schedule *s = kiln_schedule_webgl(ctx, 1, &Y);
	kiln_func *f = kiln_lower(s, "relu", 2, (kiln_tensor *[]){X, Y}, NULL);
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	ck_assert_int_eq(kiln_device_source(ctx, 1, &f, "webgl", m), 0);
	fclose(m);
	const char *main_fn = strstr(text, "void main()");
	ck_assert_ptr_nonnull(main_fn);
	ck_assert_str_eq(main_fn, "void main()\n"
	                          "{\n"
	                          "  int kiln_id = int(gl_FragCoord.y) * 10 + int(gl_FragCoord.x);\n"
	                          "  if (kiln_id >= 10) discard;\n"
	                          "  int blockIdx_x = kiln_id / 1;\n"
	                          "  float kiln_out = 0.0;\n"
	                          "  kiln_out = max(kiln_t0(blockIdx_x), 0.0f);\n"
	                          "  kiln_frag = vec4(kiln_out, 0.0, 0.0, 1.0);\n"
	                          "}\n");
	ck_assert_ptr_nonnull(strstr(text, "float kiln_t0(int i) { return texelFetch(t0, ivec2(i % 10, i / 10), 0).r; }"));
	free(text);
	ck_assert_double_ge(tu_check_target(ctx, s, 2, (kiln_tensor *[]){X, Y}, 9, "webgl"), 0);
	kiln_ctx_free(ctx);
}
END_TEST

START_TEST(errors)
{
	kiln_ctx *ctx = kiln_ctx_new();
	/* a shifted split makes a fragment write another fragment's element */
	kiln_tensor *X = kiln_placeholder(ctx, "X", 1, (int64_t[]){100}, KILN_F32);
	kiln_tensor *Y = kiln_op_unary(ctx, KILN_UN_RELU, X, 0, 0);
	kiln_schedule *s = kiln_schedule_gpu(ctx, 1, &Y);
	kiln_func *f = kiln_lower(s, "relu", 2, (kiln_tensor *[]){X, Y}, NULL);
	tu_expect_error(ctx, kiln_build(ctx, 1, &f, "webgl") == NULL, "runs 128 threads for 100 outputs; webgl runs one fragment per output element");
	kiln_clear_error(ctx);
	/* shared memory does not exist in WebGL2 */
	kiln_tensor *A = kiln_placeholder(ctx, "A", 2, (int64_t[]){128, 128}, KILN_F32);
	kiln_tensor *B = kiln_placeholder(ctx, "B", 2, (int64_t[]){128, 128}, KILN_F32);
	kiln_tensor *C = kiln_op_matmul(ctx, A, B, 0, 0);
	s = kiln_schedule_gpu(ctx, 1, &C);
	f = kiln_lower(s, "mm", 3, (kiln_tensor *[]){A, B, C}, NULL);
	tu_expect_error(ctx, kiln_build(ctx, 1, &f, "webgl") == NULL, "bytes of shared memory; the device allows 0");
	kiln_clear_error(ctx);
	/* integer tensors are refused clearly */
	kiln_tensor *I = kiln_placeholder(ctx, "I", 1, (int64_t[]){16}, KILN_I32);
	kiln_tensor *J = kiln_op_unary(ctx, KILN_UN_RELU, I, 0, 0);
	s = kiln_schedule_webgl(ctx, 1, &J);
	f = kiln_lower(s, "relu", 2, (kiln_tensor *[]){I, J}, NULL);
	tu_expect_error(ctx, kiln_build(ctx, 1, &f, "webgl") == NULL, "the webgl target stores float32 tensors only");
	kiln_ctx_free(ctx);
}
END_TEST

/* RGBA packing, a schedule choice: four elements per texel and per fragment. */
static kiln_schedule *packed_schedule(kiln_ctx *ctx, kiln_tensor *out) { return kiln_schedule_webgl_packed(ctx, 1, &out); }

#define PACKED(name, attrs, ...) TU_RUN("webgl", packed_schedule, name, attrs, __VA_ARGS__)

START_TEST(packed)
{
	PACKED("matmul", "", 32, 48, 20);
	PACKED("matmul", "trans_b=1", 12, 64, 33);
	PACKED("dense", "", 5, 40, 24);
	PACKED("conv2d", "pad=1", 1, 6, 12, 12, 16, 3, 3);
	PACKED("add", "bshape=5x32", 4, 5, 32);
	PACKED("relu", "", 3, 7, 40);
	PACKED("gelu", "", 3, 7, 40);
	PACKED("max_pool2d", "", 1, 3, 8, 16);
	PACKED("batch_norm", "", 2, 3, 5, 20);
	PACKED("pad", "", 2, 3, 9, 10);
	PACKED("concat", "n=2,axis=1", 2, 3, 16);
	/* the packed GLSL reads four aligned elements with one texel fetch */
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_tensor *X = kiln_placeholder(ctx, "X", 1, (int64_t[]){8}, KILN_F32);
	kiln_tensor *Y = kiln_op_unary(ctx, KILN_UN_RELU, X, 0, 0);
	kiln_func *f = kiln_lower(kiln_schedule_webgl_packed(ctx, 1, &Y), "relu", 2, (kiln_tensor *[]){X, Y}, NULL);
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	ck_assert_int_eq(kiln_device_source(ctx, 1, &f, "webgl", m), 0);
	fclose(m);
	ck_assert_ptr_nonnull(strstr(text, "//@kernel relu_kernel0 rgba\n"));
	ck_assert_ptr_nonnull(strstr(text, "  kiln_out = max(kiln_t0v((blockIdx_x * 4)), vec4(0.0f));\n"));
	free(text);
	/* not a multiple of 4: refused */
	kiln_tensor *Z = kiln_placeholder(ctx, "Z", 1, (int64_t[]){10}, KILN_F32);
	kiln_tensor *W = kiln_op_unary(ctx, KILN_UN_RELU, Z, 0, 0);
	tu_expect_error(ctx, kiln_schedule_webgl_packed(ctx, 1, &W) == NULL,
	                "webgl packing: the innermost extent of 'relu' is 10, not a multiple of 4");
	kiln_ctx_free(ctx);
}
END_TEST

typedef struct {
	kiln_tensor *A;
	kiln_iter *k;
} two_args;

/* Two results of one iteration space: a row's sum and its sum of squares. */
static int stats(kiln_ctx *ctx, kiln_expr *const *idx, kiln_expr **bodies, void *user)
{
	two_args *t = user;
	kiln_expr *x = KILN_READ(ctx, t->A, idx[0], kiln_iter_var(t->k));
	bodies[0] = kiln_sum(ctx, x, 1, &t->k);
	bodies[1] = kiln_sum(ctx, kiln_mul(ctx, x, x), 1, &t->k);
	return 0;
}

/* Elementwise: min and max of a pair, in one pass. */
static int minmax(kiln_ctx *ctx, kiln_expr *const *idx, kiln_expr **bodies, void *user)
{
	two_args *t = user;
	kiln_expr *a = KILN_READ(ctx, t->A, idx[0], idx[1]), *b = kiln_mul(ctx, a, kiln_float(ctx, -0.5f));
	bodies[0] = kiln_min(ctx, a, b);
	bodies[1] = kiln_max(ctx, a, b);
	return 0;
}

/* Several outputs of one kernel go to multiple render targets. */
START_TEST(render_targets)
{
	kiln_ctx *ctx = kiln_ctx_new();
	two_args t = {kiln_placeholder(ctx, "A", 2, (int64_t[]){9, 40}, KILN_F32), kiln_reduce_axis(ctx, 40, "k")};
	kiln_tensor *o[2];
	ck_assert_int_eq(kiln_compute_multi(ctx, "stats", 1, (int64_t[]){9}, 2, stats, &t, o), 0);
	kiln_schedule *s = kiln_schedule_webgl(ctx, 2, o);
	ck_assert_double_ge(tu_check_target(ctx, s, 3, (kiln_tensor *[]){t.A, o[0], o[1]}, 4, "webgl"), 0);
	kiln_tensor *p[2];
	ck_assert_int_eq(kiln_compute_multi(ctx, "minmax", 2, (int64_t[]){9, 40}, 2, minmax, &t, p), 0);
	s = kiln_schedule_webgl_packed(ctx, 2, p);
	kiln_func *f = kiln_lower(s, "mm", 3, (kiln_tensor *[]){t.A, p[0], p[1]}, NULL);
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	ck_assert_int_eq(kiln_device_source(ctx, 1, &f, "webgl", m), 0);
	fclose(m);
	ck_assert_ptr_nonnull(strstr(text, "//@kernel mm_kernel0 rgba outputs=2\n"));
	ck_assert_ptr_nonnull(strstr(text, "layout(location = 1) out vec4 kiln_frag1;"));
	free(text);
	ck_assert_double_ge(tu_check_target(ctx, s, 3, (kiln_tensor *[]){t.A, p[0], p[1]}, 5, "webgl"), 0);
	kiln_ctx_free(ctx);
}
END_TEST

Suite *webgl_suite(void)
{
	Suite *s = suite_create("webgl");
	TCase *tc = tcase_create("ops");
	tcase_set_timeout(tc, 600);
	tcase_add_loop_test(tc, op_default, 0, kiln_num_ops());
	tcase_add_loop_test(tc, op_blocked, 0, kiln_num_ops());
	tcase_add_test(tc, source_text);
	tcase_add_test(tc, packed);
	tcase_add_test(tc, render_targets);
	tcase_add_test(tc, errors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	int failed = tu_run_suite(webgl_suite());
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
