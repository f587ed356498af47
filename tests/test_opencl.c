/*
 * test_opencl.c — the OpenCL target on whatever device the runtime picks
 * (PoCL in CI): every operator against the oracle under the default GPU
 * schedule and a second, hand-written one; the printed OpenCL C of a small
 * kernel pinned and executed; the device schedule errors. OpenCL state is
 * created inside each test only (PoCL hangs in a child forked after it).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/ops.h"
#include "runtime/rt.h"
#include "schedule/schedule.h"
#include "testutil.h"

static kiln_schedule *default_schedule(kiln_ctx *ctx, kiln_tensor *out) { return kiln_schedule_gpu(ctx, 1, &out); }

START_TEST(op_default) { tu_run_op(kiln_op_at(_i), default_schedule, "opencl", "default"); }
END_TEST

START_TEST(op_grid2d) { tu_run_op(kiln_op_at(_i), tu_grid2d_schedule, "opencl", "2-D grid"); }
END_TEST

/* Shapes large enough for the tiled matmul schedule (shared memory, barriers), uneven ones included. */
#define RUN(name, attrs, ...) TU_RUN("opencl", default_schedule, name, attrs, __VA_ARGS__)

START_TEST(tiled_shapes)
{
	RUN("matmul", "", 128, 128, 64);
	RUN("matmul", "", 2048, 2048, 8); /* 8x8 per thread: virtual threads, A's panel k-major */
	RUN("matmul", "trans_a=1,trans_b=1", 100, 70, 37);
	RUN("batch_matmul", "", 2, 64, 96, 20);
	RUN("dense", "", 64, 80, 30);
	RUN("conv2d", "pad=1", 1, 8, 10, 10, 64, 3, 3);
	/* GEMM-form convolutions: weights and im2col columns staged, the reduction split (4 and 2 parts) */
	RUN("conv2d", "pad=1", 1, 64, 7, 7, 64, 3, 3);
	RUN("conv2d", "pad=1", 1, 32, 14, 14, 64, 3, 3);
	RUN("matmul", "", 64, 96, 1024); /* split-K: 8 parts of 128 */
	RUN("depthwise_conv2d", "stride=3,pad=2", 1, 9, 20, 22, 5, 5); /* its padding and phases inlined */
}
END_TEST

/* What the GEMM template makes of a deep convolution on few outputs: both operands staged in shared
 * memory (a tight window of the weights' (c, r, s) and of the im2col panels) and the reduction split into
 * partial sums over blockIdx.z (a test that fails if either silently stops happening) */
START_TEST(conv_gemm_staged_split)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_op_inst o;
	ck_assert_int_eq(kiln_op_declare(ctx, kiln_op_find("conv2d"), 7, (int64_t[]){1, 64, 7, 7, 64, 3, 3}, "pad=1", &o), 0);
	char *src = tu_device_text(ctx, kiln_schedule_for(ctx, "opencl", 1, o.args + o.nin), o.nargs, o.args, "opencl");
	/* k panels of 8 over (c, r, s): 2 channels x 3 x 3 of 64 filters, doubled; 2 panels of 32 columns x 8, doubled */
	ck_assert_msg(strstr(src, "W_shared[2304]") && strstr(src, "conv2d_cols_shared[1024]"), "%s", src);
	ck_assert_msg(strstr(src, "conv2d_gemm_rf") && strstr(src, "get_group_id(2)"), "%s", src);
	free(src);
	kiln_ctx_free(ctx);
}
END_TEST

/* A GEMM convolution with its activation: the padding is computed inside the
 * im2col and the NCHW view inside the activation, not each a kernel (and a
 * launch) of its own: 4 kernels (im2col, partial products, their sum,
 * activation) where there were 6; and the result still the oracle's */
START_TEST(conv_gemm_launches)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_op_inst o;
	ck_assert_int_eq(kiln_op_declare(ctx, kiln_op_find("conv2d"), 7, (int64_t[]){1, 64, 7, 7, 64, 3, 3}, "pad=1", &o), 0);
	kiln_tensor *Y = kiln_op_unary(ctx, KILN_UN_RELU, o.args[o.nin], 0, 0);
	kiln_tensor *args[3] = {o.args[0], o.args[1], Y};
	kiln_schedule *s = kiln_schedule_for(ctx, "opencl", 1, &Y);
	char *src = tu_device_text(ctx, s, 3, args, "opencl");
	int n = 0;
	for (const char *p = src; (p = strstr(p, "__kernel")); p++)
		n++;
	ck_assert_msg(n == 4 && !strstr(src, "X_pad["), "%d kernels (want 4), a padding kernel: %s", n,
	              strstr(src, "X_pad[") ? "yes" : "no");
	free(src);
	ck_assert_double_ge(tu_check_target(ctx, s, 3, args, 9, "opencl"), 0);
	kiln_ctx_free(ctx);
}
END_TEST

static kiln_expr *transposed(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	return KILN_READ(ctx, (kiln_tensor *)user, idx[1], idx[0]);
}

/* ...but an elementwise stage that a matmul's layout pack reads stays a
 * kernel: the matmul template computes that pack inside the GEMM, where the
 * stage would be recomputed at every step of the reduction */
START_TEST(matmul_operand_kept)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_tensor *A = kiln_placeholder(ctx, "A", 2, (int64_t[]){64, 96}, KILN_F32);
	kiln_tensor *B = kiln_placeholder(ctx, "B", 2, (int64_t[]){128, 96}, KILN_F32);
	kiln_tensor *Bt = kiln_compute(ctx, "Bt", 2, (int64_t[]){96, 128}, transposed, B);
	kiln_tensor *C = kiln_op_matmul(ctx, A, Bt, 0, 0);
	kiln_tensor *args[3] = {A, B, C};
	kiln_schedule *s = kiln_schedule_for(ctx, "opencl", 1, &C);
	char *src = tu_device_text(ctx, s, 3, args, "opencl");
	ck_assert_msg(strstr(src, "__global float *restrict Bt") != NULL, "the transpose was inlined into the GEMM");
	free(src);
	ck_assert_double_ge(tu_check_target(ctx, s, 3, args, 9, "opencl"), 0);
	kiln_ctx_free(ctx);
}
END_TEST

/* The same kernel WGSL and GLSL refuse (test_webgpu) runs on OpenCL, whose
 * index math stays 64-bit where 32 bits cannot be proved enough. */
START_TEST(wide_index_math)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_tensor *X, *Y;
	kiln_schedule *s = tu_wide_index_op(ctx, &X, &Y);
	ck_assert_double_ge(tu_check_target(ctx, s, 2, (kiln_tensor *[]){X, Y}, 4, "opencl"), 0);
	kiln_ctx_free(ctx);
}
END_TEST

/* Check mode (KILN_CHECK_DEVICE, set by testutil) sees a kernel writing past
 * a device buffer: relu built for [100] is told its arrays are [90]. */
START_TEST(device_guard_catches_overrun)
{
	setenv("KILN_CHECK_DEVICE", "1", 1);
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_tensor *X = kiln_placeholder(ctx, "X", 1, (int64_t[]){100}, KILN_F32);
	kiln_tensor *Y = kiln_op_unary(ctx, KILN_UN_RELU, X, 0, 0);
	kiln_module *m = kiln_build_schedule(kiln_schedule_gpu(ctx, 1, &Y), "relu", 2, (kiln_tensor *[]){X, Y}, "opencl");
	ck_assert_msg(m != NULL, "%s", kiln_error(ctx));
	rt_function *f = rt_module_find(m, "relu");
	f->args[0].shape[0] = f->args[1].shape[0] = 90;
	kiln_array *x = kiln_array_empty(1, (int64_t[]){90}, KILN_F32), *y = kiln_array_empty(1, (int64_t[]){90}, KILN_F32);
	ck_assert_int_ne(kiln_module_call(m, "relu", (kiln_array *[]){x, y}, 2), 0);
	ck_assert_msg(strstr(kiln_rt_last_error(), "wrote past the end of argument 1") != NULL, "%s", kiln_rt_last_error());
	kiln_array_free(x);
	kiln_array_free(y);
	kiln_module_free(m);
	kiln_ctx_free(ctx);
}
END_TEST

/*
 * A vector select whose condition mixes a scalar (broadcast to the lanes) with
 * a vector comparison: OpenCL's select tests each lane's top bit, so a
 * broadcast bool must make true lanes -1 as comparisons do, not 1 (a padded
 * window read in place gave 0 for every in-bounds float4 on PoCL).
 */
static kiln_expr *masked_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	kiln_tensor *X = user;
	kiln_expr *c = kiln_and(ctx, kiln_eq(ctx, kiln_mod(ctx, idx[0], kiln_int(ctx, 2)), kiln_int(ctx, 0)),
	                        kiln_lt(ctx, idx[1], kiln_int(ctx, 13)));
	return kiln_select(ctx, c, KILN_READ(ctx, X, idx[0], idx[1]), kiln_float(ctx, -1.0));
}

/* the same condition as a number (1, not -1) and stored as bools (bytes of 1, not 0xff) */
static kiln_expr *mask_number_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	kiln_tensor *X = user;
	kiln_expr *c = kiln_and(ctx, kiln_eq(ctx, kiln_mod(ctx, idx[0], kiln_int(ctx, 2)), kiln_int(ctx, 0)),
	                        kiln_lt(ctx, idx[1], kiln_int(ctx, 13)));
	return kiln_add(ctx, kiln_cast(ctx, KILN_F32, c), KILN_READ(ctx, X, idx[0], idx[1]));
}

static kiln_expr *mask_bool_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	kiln_tensor *X = user;
	return kiln_and(ctx, kiln_eq(ctx, kiln_mod(ctx, idx[0], kiln_int(ctx, 2)), kiln_int(ctx, 0)),
	                kiln_lt(ctx, KILN_READ(ctx, X, idx[0], idx[1]), kiln_float(ctx, 0.0)));
}

START_TEST(vector_select_scalar_condition)
{
	kiln_expr *(*const bodies[])(kiln_ctx *, kiln_expr *const *, void *) = {masked_body, mask_number_body,
	                                                                          mask_bool_body};
	for (int b = 0; b < 3; b++) {
		kiln_ctx *ctx = kiln_ctx_new();
		kiln_tensor *X = kiln_placeholder(ctx, "X", 2, (int64_t[]){6, 16}, KILN_F32);
		kiln_tensor *Y = kiln_compute(ctx, "masked", 2, (int64_t[]){6, 16}, bodies[b], X);
		kiln_schedule *s = kiln_schedule_create(ctx, 1, &Y);
		kiln_stage *st = kiln_stage_of(s, Y);
		kiln_iter *jo, *ji;
		ck_assert_int_eq(kiln_split(st, kiln_stage_axis(st, 1), 4, &jo, &ji), 0);
		ck_assert_int_eq(kiln_bind(st, kiln_stage_axis(st, 0), KILN_BLOCK_X), 0);
		ck_assert_int_eq(kiln_bind(st, jo, KILN_THREAD_X), 0);
		ck_assert_int_eq(kiln_vectorize(st, ji), 0);
		ck_assert_msg(tu_check_target(ctx, s, 2, (kiln_tensor *[]){X, Y}, 5, "opencl") >= 0, "body %d", b);
		kiln_ctx_free(ctx);
	}
}
END_TEST

/* The OpenCL C of a small kernel, pinned; the same kernel runs in op tests. */
START_TEST(source_text)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_tensor *X = kiln_placeholder(ctx, "X", 1, (int64_t[]){100}, KILN_F32);
	kiln_tensor *Y = kiln_op_unary(ctx, KILN_UN_RELU, X, 0, 0);
	kiln_schedule *s = kiln_schedule_gpu(ctx, 1, &Y);
	kiln_func *f = kiln_lower(s, "relu", 2, (kiln_tensor *[]){X, Y}, NULL);
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	ck_assert_int_eq(kiln_device_source(ctx, 1, &f, "opencl", m), 0);
	fclose(m);
	const char *body = strstr(text, "__kernel");
	ck_assert_ptr_nonnull(body);
	ck_assert_str_eq(body,
	                 "__kernel void relu_kernel0(__global float *restrict X, __global float *restrict relu)\n"
	                 "{\n"
	                 "  const int blockIdx_x = get_group_id(0);\n"
	                 "  const int threadIdx_x = get_local_id(0);\n"
	                 "  relu[(min((blockIdx_x * 64), 36) + threadIdx_x)] = fmax(X[(min((blockIdx_x * 64), 36) + threadIdx_x)], 0.0f);\n"
	                 "}\n");
	free(text);
	ck_assert_double_ge(tu_check_target(ctx, s, 2, (kiln_tensor *[]){X, Y}, 9, "opencl"), 0);
	/* 64-bit integer data: loaded values have no known range, so the index
	 * math stays 64-bit too */
	kiln_tensor *L = kiln_placeholder(ctx, "L", 1, (int64_t[]){100}, KILN_I64);
	kiln_tensor *R = kiln_op_unary(ctx, KILN_UN_RELU, L, 0, 0);
	kiln_schedule *sl = kiln_schedule_gpu(ctx, 1, &R);
	kiln_func *fl = kiln_lower(sl, "relu64", 2, (kiln_tensor *[]){L, R}, NULL);
	m = open_memstream(&text, &len);
	ck_assert_int_eq(kiln_device_source(ctx, 1, &fl, "opencl", m), 0);
	fclose(m);
	ck_assert_ptr_nonnull(strstr(text, "const long blockIdx_x"));
	ck_assert_ptr_nonnull(strstr(text, "__global long *restrict L"));
	free(text);
	ck_assert_double_ge(tu_check_target(ctx, sl, 2, (kiln_tensor *[]){L, R}, 9, "opencl"), 0);
	kiln_ctx_free(ctx);
}
END_TEST

static kiln_expr *twice(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	return kiln_mul(ctx, KILN_READ(ctx, (kiln_tensor *)user, idx[0], idx[1]), kiln_float(ctx, 2));
}

/* Schedules a device cannot run are refused with a message. */
START_TEST(device_errors)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_tensor *A = kiln_placeholder(ctx, "A", 2, (int64_t[]){64, 2048}, KILN_F32);
	kiln_tensor *B = kiln_compute(ctx, "B", 2, (int64_t[]){64, 2048}, twice, A);
	kiln_tensor *args[] = {A, B};
	/* nothing bound: the loop runs outside every kernel */
	kiln_schedule *s = kiln_schedule_create(ctx, 1, &B);
	kiln_func *f = kiln_lower(s, "f", 2, args, NULL);
	tu_expect_error(ctx, kiln_build(ctx, 1, &f, "opencl") == NULL,
	                "device: loop 'i' is not bound to a block or thread index and runs outside every kernel");
	kiln_clear_error(ctx);
	/* a block of 2048 threads */
	s = kiln_schedule_create(ctx, 1, &B);
	kiln_stage *st = kiln_stage_of(s, B);
	kiln_bind(st, kiln_stage_axis(st, 0), KILN_BLOCK_X);
	kiln_bind(st, kiln_stage_axis(st, 1), KILN_THREAD_X);
	f = kiln_lower(s, "f", 2, args, NULL);
	tu_expect_error(ctx, kiln_build(ctx, 1, &f, "opencl") == NULL,
	                "has 2048 threads per block (2048 x 1 x 1); the device allows 1024");
	kiln_clear_error(ctx);
	/* the same thread index bound twice in one stage */
	s = kiln_schedule_create(ctx, 1, &B);
	st = kiln_stage_of(s, B);
	kiln_bind(st, kiln_stage_axis(st, 0), KILN_THREAD_X);
	tu_expect_error(ctx, kiln_bind(st, kiln_stage_axis(st, 1), KILN_THREAD_X) < 0,
	                "bind: stage 'B' already binds 'i' to the same thread index");
	kiln_clear_error(ctx);
	/* shared memory over the limit: a 64x2048 float cache is 512 KiB */
	s = kiln_schedule_create(ctx, 1, &B);
	st = kiln_stage_of(s, B);
	kiln_tensor *AS = kiln_cache_read(s, A, KILN_SCOPE_SHARED, 1, &st);
	kiln_iter *o, *in;
	kiln_split(st, kiln_stage_axis(st, 1), 256, &o, &in);
	kiln_reorder(st, 3, (kiln_iter *[]){o, kiln_stage_axis(st, 0), in});
	kiln_bind(st, o, KILN_BLOCK_X);
	kiln_bind(st, kiln_stage_axis(st, 0), KILN_BLOCK_Y);
	kiln_bind(st, in, KILN_THREAD_X);
	kiln_compute_at(kiln_stage_of(s, AS), st, o);
	kiln_stage *as = kiln_stage_of(s, AS);
	kiln_iter *ao, *ai;
	kiln_split(as, kiln_stage_axis(as, 1), 256, &ao, &ai);
	kiln_bind(as, ai, KILN_THREAD_X);
	f = kiln_lower(s, "f", 2, args, NULL);
	ck_assert_msg(f != NULL, "%s", kiln_error(ctx));
	tu_expect_error(ctx, kiln_build(ctx, 1, &f, "opencl") == NULL, "bytes of shared memory; the device allows 49152");
	kiln_clear_error(ctx);
	/* extents of one thread index disagree inside a kernel */
	s = kiln_schedule_create(ctx, 1, &B);
	st = kiln_stage_of(s, B);
	AS = kiln_cache_read(s, A, KILN_SCOPE_SHARED, 1, &st);
	kiln_split(st, kiln_stage_axis(st, 1), 256, &o, &in);
	kiln_bind(st, kiln_stage_axis(st, 0), KILN_BLOCK_Y);
	kiln_bind(st, o, KILN_BLOCK_X);
	kiln_bind(st, in, KILN_THREAD_X);
	kiln_compute_at(kiln_stage_of(s, AS), st, o);
	as = kiln_stage_of(s, AS);
	kiln_split(as, kiln_stage_axis(as, 1), 128, &ao, &ai);
	kiln_bind(as, ai, KILN_THREAD_X);
	f = kiln_lower(s, "f", 2, args, NULL);
	ck_assert_msg(f != NULL, "%s", kiln_error(ctx));
	tu_expect_error(ctx, kiln_build(ctx, 1, &f, "opencl") == NULL,
	                "threadIdx.x is bound to loops of extents 128 and 256 in one kernel; they must match");
	kiln_ctx_free(ctx);
}
END_TEST

Suite *opencl_suite(void)
{
	Suite *s = suite_create("opencl");
	TCase *tc = tcase_create("ops");
	tcase_set_timeout(tc, 600);
	tcase_add_loop_test(tc, op_default, 0, kiln_num_ops());
	tcase_add_test(tc, source_text);
	tcase_add_test(tc, vector_select_scalar_condition);
	tcase_add_test(tc, device_errors);
	tcase_add_test(tc, device_guard_catches_overrun);
	tcase_add_test(tc, wide_index_math);
	tcase_add_test(tc, conv_gemm_staged_split);
	tcase_add_test(tc, conv_gemm_launches);
	tcase_add_test(tc, matmul_operand_kept);
	suite_add_tcase(s, tc);
	/* every operator under a second schedule (one thread per element on a
	 * 2-D grid): code generation and PoCL's compiler over C paths op_default
	 * mostly takes too, so not under valgrind (scripts/test.sh) */
	TCase *slow = tcase_create("ops_grid2d");
	tcase_set_timeout(slow, 600);
	tcase_set_tags(slow, "slow");
	tcase_add_loop_test(slow, op_grid2d, 0, kiln_num_ops());
	suite_add_tcase(s, slow);
	/* "large": millions of elements; test.sh skips them under valgrind
	 * (CK_EXCLUDE_TAGS), where they took most of ten minutes */
	TCase *large = tcase_create("tiled");
	tcase_set_tags(large, "large");
	tcase_set_timeout(large, 600);
	tcase_add_test(large, tiled_shapes);
	suite_add_tcase(s, large);
	return s;
}

int main(void)
{
	int failed = tu_run_suite(opencl_suite());
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
