/*
 * test_wasm.c — the wasm target, run in node (tests/wasm_call.js): every
 * operator against the oracle under the default schedule (the CPU's, at
 * 128-bit SIMD) and under a plain one (producers inlined, no vectors); each
 * kernel variant forced (the relaxed-simd one must use relaxed_madd); and
 * the native runtime's refusal to call a wasm module.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/ops.h"
#include "runtime/rt.h"
#include "schedule/schedule.h"
#include "testutil.h"

static kiln_schedule *default_schedule(kiln_ctx *ctx, kiln_tensor *out)
{
	return kiln_schedule_for(ctx, "wasm", 1, &out);
}

/* Element-wise producers inlined, every loop serial and scalar. */
static kiln_schedule *plain_schedule(kiln_ctx *ctx, kiln_tensor *out)
{
	kiln_schedule *s = kiln_schedule_create(ctx, 1, &out);
	kiln_stage *o = kiln_stage_of(s, out);
	for (int i = 0; s && i < s->nstage; i++)
		if (s->stages[i] != o && s->stages[i]->op->nreduce == 0)
			kiln_compute_inline(s->stages[i]);
	return s;
}

START_TEST(op_default) { tu_run_op(kiln_op_at(_i), default_schedule, "wasm", "default"); }
END_TEST

START_TEST(op_plain) { tu_run_op(kiln_op_at(_i), plain_schedule, "wasm", "plain"); }
END_TEST

/* The plain simd128 build also runs (an engine without relaxed-simd gets it). */
START_TEST(simd128_variant)
{
	setenv("KILN_WASM_VARIANT", "wasm-simd128", 1);
	tu_run_op(kiln_op_find("matmul"), default_schedule, "wasm", "default, simd128 build");
	tu_run_op(kiln_op_find("softmax"), default_schedule, "wasm", "default, simd128 build");
	unsetenv("KILN_WASM_VARIANT");
}
END_TEST

/* f32x4.relaxed_madd's encoding (0xfd, LEB128 261) occurrences in a binary. */
static int count_madd(const rt_blob *b)
{
	int n = 0;
	for (size_t i = 0; b && i + 3 <= b->size; i++)
		n += b->data[i] == 0xfd && b->data[i + 1] == 0x85 && b->data[i + 2] == 0x02;
	return n;
}

/* The relaxed build fuses the matmul's mul-adds (the simd128 one cannot), and
 * runs correctly where the engine takes it (tests/wasm_call.js enables
 * relaxed-simd in node 20). */
START_TEST(relaxed_variant)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_op_inst o;
	const kiln_op_info *mm = kiln_op_find("matmul");
	ck_assert_int_eq(kiln_op_declare(ctx, mm, kiln_op_example_rank(mm), mm->example, "", &o), 0);
	kiln_module *m = kiln_build_schedule(default_schedule(ctx, o.args[o.nargs - 1]), "mm", o.nargs, o.args, "wasm");
	ck_assert_msg(m != NULL, "%s", kiln_error(ctx));
	ck_assert_int_gt(count_madd(rt_module_blob(m, "wasm-relaxed")), 0);
	ck_assert_int_eq(count_madd(rt_module_blob(m, "wasm-simd128")), 0);
	kiln_module_free(m);
	kiln_ctx_free(ctx);
	setenv("KILN_WASM_VARIANT", "wasm-relaxed", 1);
	tu_run_op(kiln_op_find("matmul"), default_schedule, "wasm", "default, relaxed build");
	tu_run_op(kiln_op_find("conv2d"), default_schedule, "wasm", "default, relaxed build");
	unsetenv("KILN_WASM_VARIANT");
}
END_TEST

START_TEST(native_call_refused)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_op_inst o;
	const kiln_op_info *mm = kiln_op_find("matmul");
	ck_assert_int_eq(kiln_op_declare(ctx, mm, kiln_op_example_rank(mm), mm->example, "", &o), 0);
	kiln_tensor *out = o.args[o.nargs - 1];
	kiln_module *m = kiln_build_schedule(default_schedule(ctx, out), "mm", o.nargs, o.args, "wasm");
	ck_assert_msg(m != NULL, "%s", kiln_error(ctx));
	kiln_array *arr[8];
	for (int i = 0; i < o.nargs; i++)
		arr[i] = kiln_array_empty(kiln_tensor_ndim(o.args[i]), kiln_tensor_shape(o.args[i]), kiln_tensor_dtype(o.args[i]));
	ck_assert_int_ne(kiln_module_call(m, "mm", arr, o.nargs), 0);
	ck_assert_msg(strstr(kiln_rt_last_error(), "a wasm module runs in a JavaScript host") != NULL, "%s",
	              kiln_rt_last_error());
	for (int i = 0; i < o.nargs; i++)
		kiln_array_free(arr[i]);
	kiln_module_free(m);
	kiln_ctx_free(ctx);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("wasm");
	TCase *tc = tcase_create("wasm");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, op_default, 0, kiln_num_ops());
	tcase_add_test(tc, simd128_variant);
	tcase_add_test(tc, relaxed_variant);
	tcase_add_test(tc, native_call_refused);
	suite_add_tcase(s, tc);
	/* the second schedule of every operator: LLVM's time and node's, over C
	 * paths op_default mostly takes too, so not under valgrind
	 * (scripts/test.sh) */
	TCase *slow = tcase_create("wasm_plain");
	tcase_set_timeout(slow, 120);
	tcase_set_tags(slow, "slow");
	tcase_add_loop_test(slow, op_plain, 0, kiln_num_ops());
	suite_add_tcase(s, slow);
	int failed = tu_run_suite(s);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
