/*
 * test_webgpu.c — the webgpu target (WGSL), run in node on Dawn (npm
 * `webgpu`, tests/webgpu_call.mjs): every operator against the oracle under
 * the default GPU schedule, the 2-D grid one and the one for emulated
 * adapters (webgpu-cpu, with its register tiles checked); the printed WGSL of small
 * kernels pinned and executed; a grid over 65535 workgroups (folded); what
 * WGSL cannot hold refused with a message; the native runtime's refusal.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/ops.h"
#include "schedule/schedule.h"
#include "testutil.h"

static kiln_schedule *default_schedule(kiln_ctx *ctx, kiln_tensor *out)
{
	return kiln_schedule_for(ctx, "webgpu", 1, &out);
}

START_TEST(op_default) { tu_run_op(kiln_op_at(_i), default_schedule, "webgpu", "default"); }
END_TEST

START_TEST(op_grid2d) { tu_run_op(kiln_op_at(_i), tu_grid2d_schedule, "webgpu", "2-D grid"); }
END_TEST

static kiln_schedule *emulated_schedule(kiln_ctx *ctx, kiln_tensor *out)
{
	return kiln_schedule_for(ctx, "webgpu-cpu", 1, &out);
}

START_TEST(op_emulated) { tu_run_op(kiln_op_at(_i), emulated_schedule, "webgpu", "webgpu-cpu"); }
END_TEST

static char *source_of(kiln_ctx *ctx, kiln_func *f)
{
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	int rc = kiln_device_source(ctx, 1, &f, "webgpu", m);
	fclose(m);
	ck_assert_msg(rc == 0, "%s", kiln_error(ctx));
	return text;
}

/* The WGSL of a small kernel, pinned; then run. */
START_TEST(source_text)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_tensor *X = kiln_placeholder(ctx, "X", 1, (int64_t[]){100}, KILN_F32);
	kiln_tensor *Y = kiln_op_unary(ctx, KILN_UN_RELU, X, 0, 0);
	kiln_schedule *s = kiln_schedule_for(ctx, "webgpu", 1, &Y);
	kiln_func *f = kiln_lower(s, "relu", 2, (kiln_tensor *[]){X, Y}, NULL);
	char *text = source_of(ctx, f);
	ck_assert_str_eq(text,
	                 "//@kernel relu_kernel0\n"
	                 "@group(0) @binding(0) var<storage, read> X: array<f32>;\n"
	                 "@group(0) @binding(1) var<storage, read_write> relu: array<f32>;\n"
	                 "\n"
	                 "@compute @workgroup_size(64, 1, 1)\n"
	                 "fn relu_kernel0(@builtin(workgroup_id) kiln_wid: vec3<u32>, @builtin(local_invocation_id) kiln_lid: vec3<u32>)\n"
	                 "{\n"
	                 "  let blockIdx_x: i32 = i32(kiln_wid.x);\n"
	                 "  let threadIdx_x: i32 = i32(kiln_lid.x);\n"
	                 "  relu[(min((blockIdx_x * 64), 36) + threadIdx_x)] = max(X[(min((blockIdx_x * 64), 36) + threadIdx_x)], 0.0f);\n"
	                 "}\n");
	free(text);
	ck_assert_double_ge(tu_check_target(ctx, s, 2, (kiln_tensor *[]){X, Y}, 9, "webgpu"), 0);
	kiln_ctx_free(ctx);
}
END_TEST

/* f16 tensors: the module enables f16 (tests/test_webgpu_device.mjs runs such a
 * kernel where the adapter has shader-f16, and checks the refusal where not). */
START_TEST(f16_source)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_tensor *A = kiln_placeholder(ctx, "A", 1, (int64_t[]){64}, KILN_F16);
	kiln_tensor *B = kiln_placeholder(ctx, "B", 1, (int64_t[]){64}, KILN_F16);
	kiln_tensor *C = kiln_op_binary(ctx, KILN_BIN_ADD, A, B);
	kiln_func *f = kiln_lower(kiln_schedule_for(ctx, "webgpu", 1, &C), "add", 3, (kiln_tensor *[]){A, B, C}, NULL);
	char *text = source_of(ctx, f);
	const char *want = "//@kernel add_kernel0\nenable f16;\n@group(0) @binding(0) var<storage, read> A: array<f16>;\n";
	ck_assert_msg(!strncmp(text, want, strlen(want)), "%s", text);
	free(text);
	kiln_ctx_free(ctx);
}
END_TEST

/* Reserved words as tensor names, -inf as a literal, integer floor division:
 * the names are renamed, the infinity comes from bits at run time. */
START_TEST(names_and_infinity)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_tensor *X = kiln_placeholder(ctx, "var", 2, (int64_t[]){6, 40}, KILN_F32);
	kiln_tensor *loop = kiln_placeholder(ctx, "loop", 2, (int64_t[]){6, 40}, KILN_F32);
	kiln_tensor *sum = kiln_op_binary(ctx, KILN_BIN_ADD, X, loop);
	kiln_tensor *Y = kiln_op_softmax(ctx, sum, -1);
	ck_assert_msg(Y != NULL, "%s", kiln_error(ctx));
	kiln_schedule *s = kiln_schedule_for(ctx, "webgpu", 1, &Y);
	kiln_func *f = kiln_lower(s, "fn", 3, (kiln_tensor *[]){X, loop, Y}, NULL);
	char *text = source_of(ctx, f);
	ck_assert_msg(strstr(text, "var<storage, read> v_var: array<f32>;") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "var<storage, read> v_loop: array<f32>;") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "kiln_f32_bits(0xff800000u)") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "fn kiln_f32_bits(b: u32) -> f32") != NULL, "%s", text);
	free(text);
	ck_assert_double_ge(tu_check_target(ctx, s, 3, (kiln_tensor *[]){X, loop, Y}, 3, "webgpu"), 0);
	kiln_ctx_free(ctx);
}
END_TEST

/* 3 million elements in blocks of 32 threads: 93750 workgroups, more than one
 * dispatch dimension holds, so the kernel unfolds a 2-D dispatch. */
START_TEST(folded_grid)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_tensor *X = kiln_placeholder(ctx, "X", 1, (int64_t[]){3000000}, KILN_F32);
	kiln_tensor *Y = kiln_op_unary(ctx, KILN_UN_TANH, X, 0, 0);
	kiln_schedule *s = tu_grid2d_schedule(ctx, Y);
	kiln_func *f = kiln_lower(s, "fn", 2, (kiln_tensor *[]){X, Y}, NULL);
	char *text = source_of(ctx, f);
	ck_assert_msg(strstr(text, "if (kiln_flat >= 93750u) {") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "let blockIdx_x: i32 = i32(kiln_flat % 93750u);") != NULL, "%s", text);
	free(text);
	ck_assert_double_ge(tu_check_target(ctx, s, 2, (kiln_tensor *[]){X, Y}, 5, "webgpu"), 0);
	kiln_ctx_free(ctx);
}
END_TEST

/* The schedule for emulated adapters at shapes that take its register tiles
 * (a matmul, a direct convolution 36 wide) and one that falls back (34 wide):
 * tiles indexed by constants are vec4 variables; all run against the oracle. */
START_TEST(emulated_tiles)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_tensor *A = kiln_placeholder(ctx, "A", 2, (int64_t[]){64, 40}, KILN_F32);
	kiln_tensor *B = kiln_placeholder(ctx, "B", 2, (int64_t[]){40, 96}, KILN_F32);
	kiln_tensor *C = kiln_op_matmul(ctx, A, B, false, false);
	kiln_schedule *s = emulated_schedule(ctx, C);
	char *text = source_of(ctx, kiln_lower(s, "mm", 3, (kiln_tensor *[]){A, B, C}, NULL));
	ck_assert_msg(strstr(text, "var matmul_local_3: vec4<f32>;") && !strstr(text, "var<workgroup>"), "%s", text);
	free(text);
	ck_assert_double_ge(tu_check_target(ctx, s, 3, (kiln_tensor *[]){A, B, C}, 11, "webgpu"), 0);
	for (int64_t w = 36; w >= 34; w -= 2) {
		kiln_tensor *X = kiln_placeholder(ctx, "X", 4, (int64_t[]){1, 8, 10, w}, KILN_F32);
		kiln_tensor *W = kiln_placeholder(ctx, "W", 4, (int64_t[]){8, 8, 3, 3}, KILN_F32);
		kiln_conv2d_attrs at = {.stride = {1, 1}, .pad = {1, 1, 1, 1}, .dilation = {1, 1}, .groups = 1};
		kiln_tensor *Y = kiln_op_conv2d(ctx, X, W, &at);
		kiln_schedule *sc = emulated_schedule(ctx, Y);
		text = source_of(ctx, kiln_lower(sc, "conv", 3, (kiln_tensor *[]){X, W, Y}, NULL));
		ck_assert_msg((strstr(text, "var conv2d_local_0: vec4<f32>;") != NULL) == (w == 36), "%s", text);
		free(text);
		ck_assert_double_ge(tu_check_target(ctx, sc, 3, (kiln_tensor *[]){X, W, Y}, 12, "webgpu"), 0);
	}
	kiln_ctx_free(ctx);
}
END_TEST

/* Shapes that take the GPU schedule's tiled forms (shared memory, barriers,
 * virtual threads; for convolutions the GEMM form's 16x16 workgroups), even
 * and uneven, against the oracle and the reference. */
static void run_tiled(const char *name, int n, const int64_t *shape, const char *attrs)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_op_inst o;
	ck_assert_msg(kiln_op_declare(ctx, kiln_op_find(name), n, shape, attrs, &o) == 0, "%s", kiln_error(ctx));
	char *text = source_of(ctx, kiln_lower(default_schedule(ctx, o.args[o.nargs - 1]), "fn", o.nargs, o.args, NULL));
	bool tiled = strstr(name, "conv") ? strstr(text, "@workgroup_size(16, 16, 1)") != NULL
	                                  : strstr(text, "var<workgroup>") && strstr(text, "workgroupBarrier()");
	if (!tiled)
		fprintf(stderr, "%s\n", text);
	ck_assert_msg(tiled, "%s %s: no shared-memory tiles in the WGSL (printed above)", name, attrs);
	free(text);
	kiln_ctx_free(ctx);
	tu_run_shape("webgpu", default_schedule, name, n, shape, attrs);
}

#define RUN_TILED(name, attrs, ...)                                                                                \
	run_tiled(name, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__}, attrs)

START_TEST(tiled_shapes)
{
	RUN_TILED("matmul", "", 128, 128, 64);
	RUN_TILED("matmul", "", 97, 130, 45); /* edges on both axes */
	RUN_TILED("matmul", "trans_a=1,trans_b=1", 100, 70, 37);
	RUN_TILED("batch_matmul", "", 2, 64, 96, 20);
	RUN_TILED("dense", "", 64, 80, 30);
	RUN_TILED("conv2d", "pad=1", 1, 8, 10, 10, 64, 3, 3);
	/* GEMM-form convolutions: weights and im2col columns staged, the reduction split (4 and 2 parts) */
	RUN_TILED("conv2d", "pad=1", 1, 64, 7, 7, 64, 3, 3);
	RUN_TILED("conv2d", "pad=1", 1, 32, 14, 14, 64, 3, 3);
	RUN_TILED("matmul", "", 64, 96, 1024); /* split-K: 8 parts of 128 */
}
END_TEST

/* What WGSL or WebGPU cannot run is an error naming it, at build time. */
START_TEST(refusals)
{
	kiln_ctx *ctx = kiln_ctx_new();
	/* int8 and float64 tensors: storage buffers hold 32-bit elements (and f16) */
	kiln_tensor *B = kiln_placeholder(ctx, "bytes", 1, (int64_t[]){64}, KILN_I8);
	kiln_tensor *R = kiln_op_unary(ctx, KILN_UN_RELU, B, 0, 0);
	kiln_schedule *s = tu_grid2d_schedule(ctx, R);
	kiln_func *f = kiln_lower(s, "fn", 2, (kiln_tensor *[]){B, R}, NULL);
	ck_assert_msg(f != NULL, "%s", kiln_error(ctx));
	tu_expect_error(ctx, kiln_build(ctx, 1, &f, "webgpu") == NULL, "tensor 'bytes' has 8-bit elements");
	kiln_clear_error(ctx);
	kiln_tensor *D = kiln_placeholder(ctx, "wide", 1, (int64_t[]){64}, KILN_F64);
	R = kiln_op_unary(ctx, KILN_UN_RELU, D, 0, 0);
	s = tu_grid2d_schedule(ctx, R);
	f = kiln_lower(s, "fn", 2, (kiln_tensor *[]){D, R}, NULL);
	tu_expect_error(ctx, kiln_build(ctx, 1, &f, "webgpu") == NULL, "tensor 'wide' has 64-bit elements");
	/* a workgroup of 512 threads: over WebGPU's 256 */
	kiln_clear_error(ctx);
	kiln_tensor *X = kiln_placeholder(ctx, "X", 1, (int64_t[]){4096}, KILN_F32);
	R = kiln_op_unary(ctx, KILN_UN_RELU, X, 0, 0);
	s = kiln_schedule_create(ctx, 1, &R);
	kiln_stage *st = kiln_stage_of(s, R);
	kiln_iter *bo, *bi;
	ck_assert_int_eq(kiln_split(st, kiln_stage_axis(st, 0), 512, &bo, &bi), 0);
	ck_assert_int_eq(kiln_bind(st, bo, KILN_BLOCK_X) || kiln_bind(st, bi, KILN_THREAD_X), 0);
	f = kiln_lower(s, "fn", 2, (kiln_tensor *[]){X, R}, NULL);
	tu_expect_error(ctx, kiln_build(ctx, 1, &f, "webgpu") == NULL, "512 threads");
	/* an intermediate that overflows 32 bits though every index fits: refused by
	 * WGSL and GLSL ES (both 32-bit only), where it used to wrap silently */
	kiln_clear_error(ctx);
	kiln_tensor *WX, *WY;
	s = tu_wide_index_op(ctx, &WX, &WY);
	f = kiln_lower(s, "wide", 2, (kiln_tensor *[]){WX, WY}, NULL);
	ck_assert_msg(f != NULL, "%s", kiln_error(ctx));
	tu_expect_error(ctx, kiln_build(ctx, 1, &f, "webgpu") == NULL, "which webgpu cannot hold (it has 32-bit integers only)");
	kiln_clear_error(ctx);
	s = tu_wide_index_op(ctx, &WX, &WY);
	kiln_func *g = kiln_lower(s, "wide", 2, (kiln_tensor *[]){WX, WY}, NULL);
	tu_expect_error(ctx, kiln_build(ctx, 1, &g, "webgl") == NULL, "an index value ranges over [0, 2997000000]");
	kiln_ctx_free(ctx);
}
END_TEST

START_TEST(native_call_refused)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_tensor *X = kiln_placeholder(ctx, "X", 1, (int64_t[]){100}, KILN_F32);
	kiln_tensor *Y = kiln_op_unary(ctx, KILN_UN_RELU, X, 0, 0);
	kiln_module *m = kiln_build_schedule(kiln_schedule_for(ctx, "webgpu", 1, &Y), "relu", 2, (kiln_tensor *[]){X, Y},
	                                     "webgpu");
	ck_assert_msg(m != NULL, "%s", kiln_error(ctx));
	kiln_array *a = kiln_array_empty(1, (int64_t[]){100}, KILN_F32), *b = kiln_array_empty(1, (int64_t[]){100}, KILN_F32);
	ck_assert_int_ne(kiln_module_call(m, "relu", (kiln_array *[]){a, b}, 2), 0);
	ck_assert_msg(strstr(kiln_rt_last_error(), "a webgpu module runs in a JavaScript host") != NULL, "%s",
	              kiln_rt_last_error());
	kiln_array_free(a);
	kiln_array_free(b);
	kiln_module_free(m);
	kiln_ctx_free(ctx);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("webgpu");
	TCase *tc = tcase_create("webgpu");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, op_default, 0, kiln_num_ops());
	tcase_add_test(tc, emulated_tiles);
	tcase_add_test(tc, tiled_shapes);
	tcase_add_test(tc, source_text);
	tcase_add_test(tc, f16_source);
	tcase_add_test(tc, names_and_infinity);
	tcase_add_test(tc, folded_grid);
	tcase_add_test(tc, refusals);
	tcase_add_test(tc, native_call_refused);
	suite_add_tcase(s, tc);
	/* every operator again under two more schedules (a 2-D grid, emulated
	 * tiles): mostly node's and Dawn's time, so not under valgrind
	 * (scripts/test.sh; folded_grid and emulated_tiles take those schedules
	 * there) */
	TCase *slow = tcase_create("webgpu_more_schedules");
	tcase_set_timeout(slow, 120);
	tcase_set_tags(slow, "slow");
	tcase_add_loop_test(slow, op_grid2d, 0, kiln_num_ops());
	tcase_add_loop_test(slow, op_emulated, 0, kiln_num_ops());
	suite_add_tcase(s, slow);
	int failed = tu_run_suite(s);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
