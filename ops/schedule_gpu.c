/*
 * schedule_gpu.c — default schedules for GPU-style targets.
 *
 * Every stage runs as its own kernel, one thread per output element in
 * blocks of 64 threads; reductions loop inside the thread. Matmul-shaped
 * stages get a tiled schedule with shared-memory panels (schedule_matmul_gpu).
 */
#include <string.h>

#include "ops.h"

#define THREADS 64

/* One thread per element of the stage's output, in blocks of THREADS. */
static int one_thread_per_element(sch_stage *st)
{
	int n = st->op->naxis;
	kiln_iter *f = n ? st->op->axis[0] : NULL;
	for (int d = 1; d < n && f; d++)
		if (kiln_fuse(st, f, st->op->axis[d], &f))
			return -1;
	if (!f)
		return 0;
	kiln_iter *bo, *bi;
	int64_t threads = f->extent < THREADS ? f->extent : THREADS;
	if (kiln_split(st, f, threads, &bo, &bi) || kiln_bind(st, bo, KILN_BLOCK_X) || kiln_bind(st, bi, KILN_THREAD_X))
		return -1;
	return 0;
}

kiln_schedule *kiln_schedule_gpu(kiln_ctx *ctx, int nout, kiln_tensor *const *outs)
{
	sch_schedule *s = kiln_schedule_create(ctx, nout, outs);
	if (!s)
		return NULL;
	int n = s->nstage;
	sch_stage **snap = ir_alloc(ctx, sizeof(sch_stage *) * n);
	memcpy(snap, s->stages, sizeof(sch_stage *) * n);
	for (int i = 0; i < n; i++)
		if (snap[i]->attach == ATTACH_ROOT && one_thread_per_element(snap[i]))
			return NULL;
	return s;
}

kiln_schedule *kiln_schedule_for(kiln_ctx *ctx, const char *target, int nout, kiln_tensor *const *outs)
{
	if (target && !strcmp(target, "llvm"))
		return kiln_schedule_cpu(ctx, nout, outs);
	if (target && !strcmp(target, "opencl"))
		return kiln_schedule_gpu(ctx, nout, outs);
	return ir_error(ctx, "schedule: no default schedule for target '%s' (llvm, opencl)", target ? target : "(null)"), NULL;
}
