/*
 * schedule_gpu.c — default schedules for GPU-style targets.
 *
 * Every stage runs as its own kernel, one thread per output element in
 * blocks of 64 threads; reductions loop inside the thread. Matmul-shaped
 * stages get a tiled schedule with shared-memory panels (schedule_matmul_gpu).
 */
#include <stdlib.h>
#include <string.h>

#include "ir/mutate.h"
#include "ir/simplify.h"
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

/* The tensors an expression reads (at most 8). */
static int reads_of(const ir_expr *e, ir_tensor **out)
{
	ir_tensor **ts = NULL;
	int n = 0, cap = 0;
	ir_expr_tensors(e, &ts, &n, &cap);
	int m = n < 8 ? n : 8;
	memcpy(out, ts, sizeof(ir_tensor *) * m);
	free(ts);
	return m;
}

typedef struct {
	const ir_tensor *t;
	bool found;
	kiln_ctx *ctx;
} divmod_search;

static bool has_divmod(const ir_expr *e, void *user)
{
	if (e->kind == IR_DIV || e->kind == IR_MOD)
		*(bool *)user = true;
	return true;
}

static bool find_divmod_read(const ir_expr *e, void *user)
{
	divmod_search *d = user;
	if (e->kind == IR_READ && e->read.t == d->t)
		for (int i = 0; i < e->read.t->ndim; i++) /* simplified: a pack's (j/32)*32 + j%32 is j */
			ir_visit_expr(ir_simplify_expr(d->ctx, NULL, e->read.idx[i]), has_divmod, &d->found);
	return !d->found;
}

/* Does body read t at an index computed with division or modulo? */
static bool read_divides(kiln_ctx *ctx, const ir_expr *body, const ir_tensor *t)
{
	divmod_search d = {t, false, ctx};
	ir_visit_expr(body, find_divmod_read, &d);
	return d.found;
}

typedef struct {
	const ir_tensor *t;
	int dim;
	const ir_expr *idx;
} index_search;

static bool find_index(const ir_expr *e, void *user)
{
	index_search *d = user;
	if (!d->idx && e->kind == IR_READ && e->read.t == d->t && d->dim < e->read.t->ndim)
		d->idx = e->read.idx[d->dim];
	return !d->idx;
}

/* The index of dimension dim in body's first read of t (NULL: none). */
static const ir_expr *read_index(const ir_expr *body, const ir_tensor *t, int dim)
{
	index_search d = {t, dim, NULL};
	ir_visit_expr(body, find_index, &d);
	return d.idx;
}

/* Does body read t with var in its innermost index (A[i, k] for k)? */
static bool innermost_index_uses(const ir_expr *body, const ir_tensor *t, const ir_expr *var)
{
	const ir_expr *idx = t->ndim ? read_index(body, t, t->ndim - 1) : NULL;
	return idx && ir_expr_uses_var(idx, var);
}

static bool find_divmod(const ir_expr *e, void *user)
{
	if (e->kind == IR_DIV || e->kind == IR_MOD)
		*(bool *)user = true;
	return !*(bool *)user;
}

/* t's innermost index in body goes through a division or remainder (a view of a tiled layout) */
static bool innermost_index_divmod(const ir_expr *body, const ir_tensor *t)
{
	const ir_expr *idx = t->ndim ? read_index(body, t, t->ndim - 1) : NULL;
	bool found = false;
	if (idx)
		ir_visit_expr(idx, find_divmod, &found);
	return found;
}

/* A block of threads x threads copies a shared stage cooperatively. */
static int cooperative_fetch(sch_stage *st, int threads)
{
	kiln_iter *f = st->op->axis[0];
	for (int d = 1; d < st->op->naxis; d++)
		if (kiln_fuse(st, f, st->op->axis[d], &f))
			return -1;
	kiln_iter *o, *i, *ty, *tx;
	return kiln_split(st, f, (int64_t)threads * threads, &o, &i) || kiln_split(st, i, threads, &ty, &tx) ||
	       kiln_bind(st, ty, KILN_THREAD_Y) || kiln_bind(st, tx, KILN_THREAD_X);
}

/* Inlines the pack stages of a matmul-shaped stage that only change layout;
 * *gather: whether an operand is an im2col pack (read through div/mod). */
static int inline_layout_packs(sch_schedule *s, sch_stage *c, bool *gather)
{
	ir_tensor *rd[8];
	int nr = reads_of(c->op->body[0], rd);
	*gather = false;
	for (int r = 0; r < nr; r++) {
		sch_stage *p = sch_stage_of(s, rd[r]);
		if (p && op_is(p, TAG_PACK) && p->op->attr[1])
			*gather = true;
		else if (p && op_is(p, TAG_PACK) && kiln_compute_inline(p))
			return -1;
	}
	return 0;
}

/* The extent of a matmul-shaped op's panel of operand x along its
 * dimension d, as bound inference will find it: its index over one block
 * (k over a panel, rows and columns over the block's) from an aligned origin,
 * at most the dimension (x/32 over 64 columns: 2 panels). */
static int64_t panel_extent(kiln_ctx *ctx, const ir_op *op, const ir_tensor *x, int d, int64_t kslice, int64_t rows,
                            int64_t cols)
{
	const ir_expr *idx = read_index(op->body[0], x, d);
	if (!idx)
		return 1;
	const ir_expr *vars[3] = {op->reduce[0]->var, op->axis[op->naxis - 2]->var, op->axis[op->naxis - 1]->var};
	const int64_t lo[3] = {0, 0, 0}, hi[3] = {kslice - 1, rows - 1, cols - 1};
	sch_free fr = {3, vars, lo, hi};
	sch_ival iv = sch_bound(ctx, ir_simplify_expr(ctx, NULL, (ir_expr *)idx), &fr);
	return iv.lo && iv.span >= 0 && iv.span < x->shape[d] ? iv.span + 1 : x->shape[d];
}

typedef struct {
	int rows, vec4s, kslice, threads;
	bool interleave;
	int stages;  /* 2: shared panels double-buffered */
	bool pad;    /* panel rows one float4 longer */
} gpu_tile;

/* Is operand x's shared panel stored k-major? With 8 rows per thread, A's
 * panel k-major puts a thread's 8 rows at one k in adjacent words, loaded as
 * two float4s (the device compiler merges them) instead of 8 scalar loads
 * (measured 23.8 -> 28.5 TFLOP/s at 4096^3 on an H200). */
static bool k_major(kiln_ctx *ctx, const ir_op *op, const ir_tensor *x, const gpu_tile *g)
{
	return g->rows >= 8 && x->ndim >= 2 && innermost_index_uses(op->body[0], x, op->reduce[0]->var) &&
	       !read_divides(ctx, op->body[0], x);
}

/*
 * Operand x's shared panel under g, in elements (rows a float4 longer when
 * padded); 0 when it is not staged: an operand read through div/mod (a
 * convolution's weights and im2col columns in the GEMM form) is staged when
 * its panel is at most twice the k panel by the block's wider side (x/32
 * over a block's columns covers two 32-column panels; a weight's (c, r, s)
 * over a k panel of 8, a slice of two channels), else read from global memory.
 */
static int64_t panel_elems(kiln_ctx *ctx, const ir_op *op, const ir_tensor *x, const gpu_tile *g)
{
	int64_t rows = (int64_t)g->threads * g->rows, cols = (int64_t)g->threads * 4 * g->vec4s, n = 1;
	int nd = x->ndim, inner = k_major(ctx, op, x, g) ? nd - 2 : nd - 1;
	for (int d = 0; d < nd; d++) {
		int64_t e = panel_extent(ctx, op, x, d, g->kslice, rows, cols);
		n *= e + (g->pad && nd >= 2 && d == inner && e % 32 == 0 ? 4 : 0);
	}
	bool gathered = read_divides(ctx, op->body[0], x);
	return gathered && n > 2 * g->kslice * (rows > cols ? rows : cols) + (g->pad ? 4 * g->kslice : 0) ? 0 : n;
}

/* The shared memory g's panels take, twice when double-buffered. */
static int64_t panel_bytes(kiln_ctx *ctx, const ir_op *op, const gpu_tile *g)
{
	ir_tensor *rd[8];
	int nr = reads_of(op->body[0], rd);
	int64_t total = 0;
	for (int r = 0; r < nr; r++)
		total += panel_elems(ctx, op, rd[r], g) * (int64_t)kiln_dtype_bytes(rd[r]->type) * g->stages;
	return total;
}

/*
 * Matmul-shaped stages: blocks of 16x16 threads, each thread an 8x8 (or
 * 4x4) tile of outputs in registers with float4 columns, A and B staged
 * through double-buffered shared-memory panels along k. A pack stage that
 * only changes layout is inlined (B is staged directly); an im2col pack
 * stays a kernel of its own, and its panels are staged when tight.
 *
 * The template's knobs, read from a kiln_cpu_config (0: the default):
 * rows: output rows per thread; vecs: float4s of columns per thread;
 * unroll: depth of the k panel per step; tile: threads per side of the
 * block; order 2 deals a thread's columns out in float4s one block-width
 * apart (virtual threads), 1 keeps them together; stages 2 double-buffers
 * the panels, 1 keeps one copy; pad 1 pads panel rows of a whole number of
 * banks by a float4, 2 does not; split 1 keeps a deep reduction whole, N
 * splits it into N parts (split-K), 0 splits as the default does.
 */

/* split-K: reductions of at least twice SPLIT_K_DEPTH over fewer than SPLIT_K_BLOCKS blocks */
#define SPLIT_K_BLOCKS 256
#define SPLIT_K_DEPTH 128

static int schedule_matmul_gpu(sch_schedule *s, sch_stage *c, const kiln_cpu_config *cfg, const kiln_target *t)
{
	int n = c->op->naxis;
	int64_t M = c->outs[0]->shape[n - 2], N = c->outs[0]->shape[n - 1];
	if (M < 64 || N < 64 || c->attach != ATTACH_ROOT || c->nrel) {
		/* a configuration would only repeat the default here (a tuner's space leaves it out) */
		if (cfg && memcmp(cfg, &(kiln_cpu_config){0}, sizeof *cfg))
			return ir_error(s->ctx, "schedule: '%s' is one thread per output (fewer than 64 rows or columns, or "
			                "placed by hand): the template's tiles do not apply", c->op->name), -1;
		return one_thread_per_element(c);
	}
	/* Too few blocks to fill the device (a deep convolution as a GEMM: 512 x 49 outputs are 8
	 * blocks of 64x64, each looping over 4608 k): the default splits the reduction into parts,
	 * each part a slice of a batched GEMM (blockIdx.z) into partial sums that one more kernel
	 * adds (rfactor; split-K) */
	int64_t K = c->op->nreduce == 1 ? c->op->reduce[0]->extent : 0, blocks = ((M + 63) / 64) * ((N + 63) / 64);
	bool splits = n == 2 && blocks < SPLIT_K_BLOCKS && K >= 2 * SPLIT_K_DEPTH; /* where splitting is considered */
	int64_t parts = 1;
	if (splits) {
		parts = (SPLIT_K_BLOCKS + blocks - 1) / blocks;
		if (parts > K / SPLIT_K_DEPTH)
			parts = K / SPLIT_K_DEPTH;
		while (K % parts) /* whole parts: no guard in the panels */
			parts--;
	}
	/* the split knob; what would only repeat another configuration is refused (a tuner's space leaves it out) */
	int want = cfg ? cfg->split : 0;
	if (want == 1 && parts <= 1)
		return ir_error(s->ctx, "schedule: split 1: '%s' is not split anyway (give 0)", c->op->name), -1;
	if (want >= 2 && (!splits || K % want || want == parts))
		return ir_error(s->ctx, "schedule: split %d: '%s' %s", want, c->op->name,
		                !splits ? "has blocks enough or too short a reduction to split (2-D, fewer than 256 blocks, "
		                          "256 deep or more)"
		                : K % want ? "has a reduction the parts do not divide"
		                           : "is split into as many parts by default (give 0)"), -1;
	if (want)
		parts = want;
	if (parts > 1) {
		kiln_iter *ko, *ki;
		if (kiln_split_nparts(c, c->op->reduce[0], parts, &ko, &ki))
			return -1;
		kiln_tensor *rf = kiln_rfactor(s, c->outs[0], ko);
		if (!rf)
			return -1;
		sch_stage *rs = sch_stage_of(s, rf);
		c->note = ir_fmt(s->ctx, "%s: the reduction split into %lld parts ('%s' holds the partial sums)",
		                 want ? "split knob" : "default", (long long)parts, rs->op->name);
		/* the partial sums' batched GEMM takes the rest of the configuration */
		kiln_cpu_config rest = cfg ? *cfg : (kiln_cpu_config){0};
		rest.split = 0;
		return one_thread_per_element(c) || schedule_matmul_gpu(s, rs, cfg ? &rest : NULL, t) ? -1 : 0;
	}
	ir_tensor *rd[8];
	bool gather; /* an operand indexed through div/mod (convolution as GEMM) */
	if (inline_layout_packs(s, c, &gather))
		return -1;
	/* The default: 16x16 threads; each computes T x T outputs. 8x8 has four times
	 * the arithmetic per shared-memory load of 4x4, but needs enough blocks to fill
	 * the device: measured on an H200, 4x4 wins at 1024^2 outputs (12 vs 8
	 * TFLOP/s), 8x8 from 2048^2 (18-19 vs 14-15). With 8 columns per thread,
	 * thread tx takes columns tx*4 and 64 + tx*4 (two virtual threads of 4):
	 * neighbouring threads then read neighbouring float4s of B's shared panel
	 * instead of every other one, which halves its bank conflicts (18.7 -> 24.5
	 * TFLOP/s at 4096^3 on an H200). */
	int T = M * N >= 2048 * 2048 && !gather ? 8 : 4;
	gpu_tile g = {T, T / 4, 8, 16, T == 8, 1, false};
	/* Then double-buffered panels (8x8: 34.6 -> 46.6 TFLOP/s at 4096^3 with
	 * padded rows, 47.7 with k panels of 16; 4x4: 27.1 -> 30.2 at 2048^3), as
	 * far as the target's shared memory takes them (WebGPU's 16 KiB, the
	 * smallest of the targets when none is given) */
	int64_t shared = t && t->shared_bytes ? t->shared_bytes : 16 * 1024;
	const gpu_tile better[] = {{8, 2, 16, 16, true, 2, true}, {8, 2, 8, 16, true, 2, false}, {4, 1, 8, 16, false, 2, false}};
	for (size_t i = 0; i < sizeof better / sizeof *better; i++) /* (a configuration's 0 knobs take these too) */
		if (better[i].rows == T && panel_bytes(s->ctx, c->op, &better[i]) <= shared) {
			g = better[i];
			break;
		}
	if (cfg) {
		g = (gpu_tile){cfg->rows ? cfg->rows : g.rows, cfg->vecs ? cfg->vecs : g.vec4s,
		               cfg->unroll ? cfg->unroll : g.kslice, cfg->tile ? cfg->tile : g.threads,
		               cfg->order ? cfg->order == 2 : g.interleave, cfg->stages ? cfg->stages : g.stages,
		               cfg->pad ? cfg->pad == 1 : g.pad};
		if (g.rows > 16 || g.vec4s > 4 || g.kslice > 64 || g.threads < 2 || g.threads > 32)
			return ir_error(s->ctx, "schedule: a GPU matmul tile of %d rows x %d float4s per thread, %dx%d threads, "
			                "k panels of %d (rows 1-16, float4s 1-4, threads 2-32 a side, panels 1-64)",
			                g.rows, g.vec4s, g.threads, g.threads, g.kslice), -1;
	}
	/* a block larger than the output would leave threads without work (and thread grids that do not match):
	 * refused for a configuration; the default falls back to its 64x64 blocks (M and N are at least 64) */
	if (!cfg && (16 * g.rows > M || 16 * 4 * g.vec4s > N))
		g = better[2];
	/* (a default's panels are an estimate for operands indexed through several axes; the device pass checks
	 * what bound inference gives) */
	int64_t bytes = cfg && t && t->shared_bytes ? panel_bytes(s->ctx, c->op, &g) : 0;
	if (bytes && bytes > t->shared_bytes) /* (bytes: 0 without a configuration and a limit) */
		return ir_error(s->ctx, "schedule: shared panels of %lld bytes; %s blocks have %lld", (long long)bytes, t->name,
		                (long long)t->shared_bytes), -1;
	int64_t cols = 4 * g.vec4s, BR = (int64_t)g.threads * g.rows, BC = (int64_t)g.threads * cols;
	if (BR > M || BC > N)
		return ir_error(s->ctx, "schedule: a GPU matmul block of %lldx%lld outputs is larger than the %lldx%lld output",
		                (long long)BR, (long long)BC, (long long)M, (long long)N), -1;
	if (t && t->max_threads && g.threads * g.threads > t->max_threads)
		return ir_error(s->ctx, "schedule: %dx%d threads per block; %s blocks have at most %d", g.threads, g.threads,
		                t->name, t->max_threads), -1;
	bool deal = g.interleave && g.vec4s > 1;
	kiln_tensor *cl_t = kiln_cache_write(s, c->outs[0], KILN_SCOPE_LOCAL);
	if (!cl_t)
		return -1;
	sch_stage *cl = sch_stage_of(s, cl_t);
	kiln_iter *bi, *bj, *ii, *ji, *ty, *ti, *tx, *tj, *vj = NULL;
	if (kiln_tile(c, c->op->axis[n - 2], c->op->axis[n - 1], BR, BC, &bi, &bj, &ii, &ji) ||
	    kiln_split(c, ii, g.rows, &ty, &ti))
		return -1;
	if (deal ? kiln_split_nparts(c, ji, g.vec4s, &vj, &ji) || kiln_split(c, ji, 4, &tx, &tj)
	         : kiln_split(c, ji, cols, &tx, &tj))
		return -1;
	kiln_iter *order[8];
	int k = 0;
	if (n == 3)
		order[k++] = c->op->axis[0];
	order[k++] = bi;
	order[k++] = bj;
	if (vj)
		order[k++] = vj;
	kiln_iter *rest[] = {ty, tx, ti, tj};
	memcpy(order + k, rest, sizeof rest);
	k += 4;
	if (kiln_reorder(c, k, order) || kiln_bind(c, bi, KILN_BLOCK_Y) || kiln_bind(c, bj, KILN_BLOCK_X) ||
	    (vj && kiln_bind(c, vj, KILN_VTHREAD_X)) || kiln_bind(c, ty, KILN_THREAD_Y) || kiln_bind(c, tx, KILN_THREAD_X) ||
	    (n == 3 && kiln_bind(c, c->op->axis[0], KILN_BLOCK_Z)) || kiln_compute_at(cl, c, tx))
		return -1;
	kiln_iter *ko, *ki;
	if (kiln_split(cl, cl->op->reduce[0], g.kslice, &ko, &ki))
		return -1;
	kiln_iter *ro[8];
	k = 0;
	if (n == 3)
		ro[k++] = cl->op->axis[0];
	ro[k++] = ko;
	ro[k++] = ki;
	ro[k++] = cl->op->axis[n - 2];
	ro[k++] = cl->op->axis[n - 1];
	kiln_iter *jo, *jv;
	if (kiln_reorder(cl, k, ro) || kiln_unroll(cl, cl->op->axis[n - 2]) || (g.rows >= 8 && kiln_unroll(cl, ki)))
		return -1;
	/* float4 columns, unless the column index goes through div/mod (lane by lane) */
	if (gather ? kiln_unroll(cl, cl->op->axis[n - 1])
	           : kiln_split(cl, cl->op->axis[n - 1], 4, &jo, &jv) || kiln_unroll(cl, jo) || kiln_vectorize(cl, jv))
		return -1;
	/* both operands through shared memory, fetched by the whole block at each k
	 * slice, where their panels are tight (panel_elems) */
	int nr = reads_of(cl->op->body[0], rd);
	for (int r = 0; r < nr; r++) {
		if (!panel_elems(s->ctx, cl->op, rd[r], &g))
			continue;
		kiln_stage *rs = cl;
		kiln_tensor *sh = kiln_cache_read(s, rd[r], KILN_SCOPE_SHARED, 1, &rs);
		if (!sh || kiln_compute_at(sch_stage_of(s, sh), cl, ko) || cooperative_fetch(sch_stage_of(s, sh), g.threads))
			return -1;
		int nd = sh->ndim, perm[KILN_MAX_DIMS];
		for (int d = 0; d < nd; d++)
			perm[d] = d;
		if (k_major(s->ctx, cl->op, sh, &g)) {
			perm[nd - 2] = nd - 1;
			perm[nd - 1] = nd - 2;
			if (kiln_storage_order(sch_stage_of(s, sh), nd, perm))
				return -1;
		}
		/* Padding: rows of a whole number of banks put a column of the panel
		 * in one bank (the k-major A panel's copy stores 8 threads to one);
		 * one more float4 per such row spreads them and keeps float4 loads
		 * aligned (measured: shorter rows gained nothing padded). */
		if (g.pad && nd >= 2 && panel_extent(s->ctx, cl->op, sh, perm[nd - 1], g.kslice, BR, BC) % 32 == 0 &&
		    kiln_storage_align(sch_stage_of(s, sh), perm[nd - 2], 32, 4))
			return -1;
		if (g.stages == 2 && kiln_double_buffer(sch_stage_of(s, sh)))
			return -1;
	}
	return 0;
}

/*
 * The operand of register tile cl indexed by its vector axis `cols` (a
 * matmul's B, a convolution's input row), read into registers once at `at`
 * instead of once per unrolled row: emulators do not merge repeated loads.
 */
static int cache_column_operand(sch_schedule *s, sch_stage *cl, kiln_iter *cols, kiln_iter *at)
{
	ir_tensor *rd[8];
	int nr = reads_of(cl->op->body[0], rd);
	for (int r = 0; r < nr; r++) {
		/* through div/mod (Winograd's tiles read as one row of columns) the block is no vector a kernel can hold */
		if (!innermost_index_uses(cl->op->body[0], rd[r], cols->var) || innermost_index_divmod(cl->op->body[0], rd[r]))
			continue;
		kiln_stage *rs = cl;
		kiln_tensor *bl = kiln_cache_read(s, rd[r], KILN_SCOPE_LOCAL, 1, &rs);
		if (!bl || kiln_compute_at(sch_stage_of(s, bl), cl, at))
			return -1;
		sch_stage *bs = sch_stage_of(s, bl);
		if (kiln_vectorize(bs, bs->op->axis[bs->op->naxis - 1]))
			return -1;
	}
	return 0;
}

/*
 * Matmul-shaped stages for a GPU emulated on a CPU (SwiftShader, lavapipe):
 * there a workgroup barrier is a switch between fibers and shared memory is
 * ordinary memory, so the tiles of schedule_matmul_gpu cost more than they
 * save. Each invocation computes 4 rows x 4 columns (one vector) straight
 * from global memory, k unrolled by 4; 64 invocations per workgroup along
 * the columns, which the emulator runs side by side in SIMD lanes.
 * Measured in Chromium 156 on SwiftShader, matmul 1024^3: 1.1-1.4 GFLOP/s
 * against 0.5-0.6 with the GPU schedule (TF.js webgpu: 0.2-0.3, same page).
 */
static int schedule_matmul_emulated(sch_schedule *s, sch_stage *c, const kiln_cpu_config *cfg, const kiln_target *t)
{
	(void)cfg; /* no knobs yet for CPU-emulated adapters */
	int n = c->op->naxis;
	int64_t M = c->outs[0]->shape[n - 2], N = c->outs[0]->shape[n - 1];
	if (M % 4 || N % 4 || c->attach != ATTACH_ROOT || c->nrel || c->op->nreduce != 1)
		return one_thread_per_element(c);
	bool gather;
	if (inline_layout_packs(s, c, &gather))
		return -1;
	kiln_tensor *cl_t = kiln_cache_write(s, c->outs[0], KILN_SCOPE_LOCAL);
	if (!cl_t)
		return -1;
	sch_stage *cl = sch_stage_of(s, cl_t);
	int64_t threads = N / 4 < 64 ? N / 4 : 64;
	kiln_iter *bi, *bj, *ii, *ji, *bjo, *tx;
	if (kiln_tile(c, c->op->axis[n - 2], c->op->axis[n - 1], 4, 4, &bi, &bj, &ii, &ji) ||
	    kiln_split(c, bj, threads, &bjo, &tx))
		return -1;
	kiln_iter *order[6];
	int k = 0;
	if (n == 3)
		order[k++] = c->op->axis[0];
	kiln_iter *rest[] = {bi, bjo, tx, ii, ji};
	memcpy(order + k, rest, sizeof rest);
	k += 5;
	/* the tile's copy-out unrolled too: with every index of the register tile a
	 * constant, WGSL keeps it in variables (see wgsl.c, vec4_layout) */
	if (kiln_reorder(c, k, order) || kiln_bind(c, bi, KILN_BLOCK_Y) || kiln_bind(c, bjo, KILN_BLOCK_X) ||
	    kiln_bind(c, tx, KILN_THREAD_X) || (n == 3 && kiln_bind(c, c->op->axis[0], KILN_BLOCK_Z)) ||
	    kiln_compute_at(cl, c, tx) || kiln_unroll(c, ii) || kiln_unroll(c, ji))
		return -1;
	kiln_iter *ko, *ki;
	if (kiln_split(cl, cl->op->reduce[0], 4, &ko, &ki))
		return -1;
	k = 0;
	if (n == 3)
		order[k++] = cl->op->axis[0];
	order[k++] = ko;
	order[k++] = ki;
	order[k++] = cl->op->axis[n - 2];
	order[k++] = cl->op->axis[n - 1];
	if (kiln_reorder(cl, k, order) || kiln_unroll(cl, ki) || kiln_unroll(cl, cl->op->axis[n - 2]))
		return -1;
	/* float4 columns, unless the column index goes through div/mod */
	if (gather)
		return kiln_unroll(cl, cl->op->axis[n - 1]);
	if (kiln_vectorize(cl, cl->op->axis[n - 1]))
		return -1;
	return cache_column_operand(s, cl, cl->op->axis[n - 1], ki);
}

/*
 * A direct convolution (n, k, oh, ow; reduce c, r, s) for an emulated GPU:
 * each invocation computes 4 output channels x 4 columns, the columns one
 * vector, 64 invocations per workgroup over the fused rest.
 */
static int schedule_conv_emulated(sch_schedule *s, sch_stage *c, const kiln_cpu_config *cfg, const kiln_target *t)
{
	(void)cfg;
	if (c->op->naxis != 4 || c->attach != ATTACH_ROOT || c->nrel || c->op->axis[1]->extent % 4 ||
	    c->op->axis[3]->extent % 4)
		return one_thread_per_element(c);
	kiln_tensor *cl_t = kiln_cache_write(s, c->outs[0], KILN_SCOPE_LOCAL);
	if (!cl_t)
		return -1;
	sch_stage *cl = sch_stage_of(s, cl_t);
	kiln_iter **ax = c->op->axis, *ko, *ki, *wo, *wi, *f, *bx, *tx;
	if (kiln_split(c, ax[1], 4, &ko, &ki) || kiln_split(c, ax[3], 4, &wo, &wi) ||
	    kiln_reorder(c, 6, (kiln_iter *[]){ax[0], ko, ax[2], wo, ki, wi}) || kiln_fuse(c, ax[0], ko, &f) ||
	    kiln_fuse(c, f, ax[2], &f) || kiln_fuse(c, f, wo, &f))
		return -1;
	int64_t threads = f->extent < 64 ? f->extent : 64;
	if (kiln_split(c, f, threads, &bx, &tx) || kiln_bind(c, bx, KILN_BLOCK_X) || kiln_bind(c, tx, KILN_THREAD_X) ||
	    kiln_compute_at(cl, c, tx) || kiln_unroll(c, ki) || kiln_unroll(c, wi))
		return -1;
	kiln_iter **la = cl->op->axis, **lr = cl->op->reduce;
	if (cl->op->nreduce != 3 ||
	    kiln_reorder(cl, 7, (kiln_iter *[]){la[0], la[2], lr[0], lr[1], lr[2], la[1], la[3]}) ||
	    kiln_unroll(cl, la[1]) || kiln_vectorize(cl, la[3]))
		return -1;
	return cache_column_operand(s, cl, la[3], lr[2]);
}

/*
 * The GPU template for window reductions: direct convolutions (n, k, oh, ow;
 * reduce c, r, s), and depthwise convolutions and pools (n, c, oh, ow;
 * reduce r, s). Each thread computes a register tile of rows x 4*vecs
 * outputs, the columns float4s along the row. Its rows are output channels
 * for a convolution (each input element is read once for all of them) and
 * output rows for the others (neighbouring windows share input rows). The
 * reduction runs outside the tile with a small window's taps unrolled; blocks of
 * tile x tile threads take the rest; a tile that does not divide the
 * output is shifted inwards at its end. The knobs that only the matmul
 * template reads must keep their first value (unroll 4, order, stages and
 * pad 1, split 0): any other would repeat a configuration under a new name.
 * Without a configuration: 2 rows x 1 float4, 8x8 threads, where it fits.
 */
static int schedule_window_gpu(sch_schedule *s, sch_stage *c, const kiln_cpu_config *cfg, const kiln_target *t)
{
	bool conv = op_is(c, TAG_CONV);
	int n = c->op->naxis, ra = conv ? 1 : 2; /* the tile's rows: output channels, or output rows */
	bool fits = n == 4 && c->op->nreduce == (conv ? 3 : 2) && c->op->nout == 1 && c->attach == ATTACH_ROOT && !c->nrel;
	static const kiln_cpu_config dflt = {2, 1, 4, 8, 1, 1, 1, 0};
	const char *by = cfg ? "template" : "default";
	if (!cfg) {
		/* The default: 2 rows x 4 columns per thread, 64 threads (the best or within 5% of it for the five
		 * layers measured on an H200; with the padding read in place, next to one thread per output and a
		 * padding kernel: ResNet-18's 64x56x56 layer 0.049 -> 0.021 ms, MobileNetV2's depthwise ones
		 * 0.009-0.016 -> 0.0036-0.0046 ms). Too small for it: one thread per output. */
		if (!fits || c->op->axis[ra]->extent < 2 || c->op->axis[3]->extent < 4)
			return 0; /* (left to the pass that makes every root stage one thread per output) */
		cfg = &dflt;
	}
	if (!fits)
		return ir_error(s->ctx, "schedule: '%s' is not a window reduction over an NCHW output the GPU template "
		                "tiles (or was placed by hand)", c->op->name), -1;
	if ((cfg->unroll && cfg->unroll != 4) || cfg->order > 1 || cfg->stages > 1 || cfg->pad > 1 || cfg->split)
		return ir_error(s->ctx, "schedule: '%s' takes rows, vecs and tile from the GPU template; unroll %d, order %d, "
		                "stages %d, pad %d and split %d are the matmul template's (give 4, 1, 1, 1, 0)",
		                c->op->name, cfg->unroll, cfg->order, cfg->stages, cfg->pad, cfg->split), -1;
	int rows = cfg->rows ? cfg->rows : 2, vec4s = cfg->vecs ? cfg->vecs : 1, side = cfg->tile ? cfg->tile : 8;
	int64_t cols = 4 * (int64_t)vec4s, RA = c->op->axis[ra]->extent, OW = c->op->axis[3]->extent;
	if (rows > 16 || vec4s > 4 || side < 2 || side > 32 || rows * cols > 64)
		return ir_error(s->ctx, "schedule: a GPU window tile of %d %s x %d float4s per thread, %dx%d threads (rows "
		                "1-16, float4s 1-4, at most 64 outputs per thread, threads 2-32 a side)", rows,
		                conv ? "channels" : "rows", vec4s, side, side), -1;
	/* a tile that does not divide the output shifts its last one inwards (it recomputes the overlap) */
	if (RA < rows || OW < cols)
		return ir_error(s->ctx, "schedule: a tile of %d %s x %lld columns is larger than '%s' (%lld %s, %lld columns)",
		                rows, conv ? "channels" : "rows", (long long)cols, c->op->name, (long long)RA,
		                conv ? "channels" : "rows", (long long)OW), -1;
	int64_t threads = (int64_t)side * side;
	if (t && t->max_threads && threads > t->max_threads)
		return ir_error(s->ctx, "schedule: %dx%d threads per block; %s blocks have at most %d", side, side, t->name,
		                t->max_threads), -1;
	kiln_tensor *cl_t = kiln_cache_write(s, c->outs[0], KILN_SCOPE_LOCAL);
	if (!cl_t)
		return -1;
	sch_stage *cl = sch_stage_of(s, cl_t);
	kiln_iter **ax = c->op->axis, *ro, *ri, *wo, *wi, *f, *bx, *tx;
	if (kiln_split(c, ax[ra], rows, &ro, &ri) || kiln_split(c, ax[3], cols, &wo, &wi))
		return -1;
	/* the row blocks in place of the tiled axis, the tile's rows and columns innermost */
	kiln_iter *order[6] = {ax[0], conv ? ro : ax[1], conv ? ax[2] : ro, wo, ri, wi};
	if (kiln_reorder(c, 6, order) || kiln_fuse(c, order[0], order[1], &f) || kiln_fuse(c, f, order[2], &f) ||
	    kiln_fuse(c, f, wo, &f))
		return -1;
	if (f->extent < threads)
		threads = f->extent;
	if (kiln_split(c, f, threads, &bx, &tx) || kiln_bind(c, bx, KILN_BLOCK_X) || kiln_bind(c, tx, KILN_THREAD_X) ||
	    kiln_compute_at(cl, c, tx) || kiln_unroll(c, ri) || kiln_unroll(c, wi))
		return -1;
	/* the local tile: the reduction outside (a small window's taps unrolled), rows unrolled, float4 columns */
	kiln_iter **la = cl->op->axis, **lr = cl->op->reduce, *lo, *lv;
	kiln_iter *lorder[7];
	int k = 0;
	lorder[k++] = la[0];
	lorder[k++] = la[conv ? 2 : 1];
	for (int r = 0; r < cl->op->nreduce; r++)
		lorder[k++] = lr[r];
	lorder[k++] = la[ra];
	lorder[k++] = la[3];
	/* the taps unrolled where the window is small (3x3, 5x5, 7x7 rows): a 13x13 pool's 169 taps x the tile
	 * would be thousands of statements */
	kiln_iter *tr = lr[cl->op->nreduce - 2], *ts = lr[cl->op->nreduce - 1];
	if (kiln_reorder(cl, k, lorder) || (ts->extent <= 7 && kiln_unroll(cl, ts)) ||
	    (tr->extent * ts->extent <= 25 && kiln_unroll(cl, tr)) || kiln_unroll(cl, la[ra]) ||
	    kiln_split(cl, la[3], 4, &lo, &lv) || kiln_unroll(cl, lo) || kiln_vectorize(cl, lv))
		return -1;
	c->note = ir_fmt(s->ctx, "%s: %d %s x %lld columns per thread (float4s), %lld threads per block", by, rows,
	                 conv ? "output channels" : "output rows", (long long)cols, (long long)threads);
	return 0;
}

/*
 * A user's reduction (no operator tag) with few outputs and a long
 * reduction: one thread per output would leave the device idle, so the
 * reduction is split across SPLIT_PARTS threads per output (rfactor: a
 * kernel of partial results, then one adding them up). Returns the
 * partial results' stage, or NULL when the stage does not qualify.
 */
#define SPLIT_PARTS 64

static sch_stage *split_reduction(sch_schedule *s, sch_stage *st)
{
	if (st->op->tag || st->op->nreduce != 1 || st->op->nout != 1 || st->attach != ATTACH_ROOT || st->nrel || st->nann)
		return NULL;
	int64_t outs = 1;
	for (int d = 0; d < st->op->naxis; d++)
		outs *= st->outs[0]->shape[d];
	int64_t k = st->op->reduce[0]->extent;
	if (outs >= 4096 || k < 8 * SPLIT_PARTS)
		return NULL;
	kiln_iter *ko, *ki;
	if (kiln_split_nparts(st, st->op->reduce[0], SPLIT_PARTS, &ko, &ki))
		return NULL;
	kiln_tensor *rf = kiln_rfactor(s, st->outs[0], ko);
	if (!rf)
		return NULL;
	sch_stage *rs = sch_stage_of(s, rf);
	st->note = ir_fmt(s->ctx, "default: reduction split across %d threads per output ('%s' holds the partial results)",
	                  SPLIT_PARTS, rs->op->name);
	rs->note = "default: one thread per partial result";
	return rs;
}

/*
 * Whether an elementwise stage is computed where it is read rather than as a
 * kernel of its own (a launch and a pass over memory: a GEMM convolution's
 * padding read by its im2col and its NCHW view read by its activation took
 * ResNet-18 from 110 launches to 81). Only a stage of one tensor (a padding,
 * a view, an activation), so that its readers bind no more buffers than
 * before (WebGPU allows 8 per kernel by default), and read by elementwise
 * stages, im2col panels and (windows: on a real GPU) window reductions: not
 * by a matmul's layout pack, which the matmul template computes inside the
 * GEMM, once per step of its reduction. A window reduction reads its padding
 * in place, a select per tap: on an H200 the padding kernel was half of a
 * depthwise layer's time (0.0159 -> 0.0078 ms one thread per output).
 */
static bool gpu_inlinable(sch_schedule *s, sch_stage *st, bool windows)
{
	if (st->is_output || st->op->nreduce || st->op->nout != 1 || (st->op->tag && !op_is(st, TAG_INJECTIVE)) ||
	    st->attach != ATTACH_ROOT || st->nrel || st->nann)
		return false;
	bool any = false;
	for (int i = 0; i < s->nstage; i++) {
		sch_stage *c = s->stages[i];
		if (c == st || !sch_reads(c, st->outs[0]))
			continue;
		if (op_is(c, TAG_PACK) && !c->op->attr[1])
			return false;
		if (c->op->nreduce && !(windows && (op_is(c, TAG_CONV) || op_is(c, TAG_SPATIAL_REDUCE))))
			return false;
		any = true;
	}
	if (!any)
		return false;
	ir_tensor **ts = NULL;
	int n = 0, cap = 0;
	ir_expr_tensors(st->op->body[0], &ts, &n, &cap);
	bool one = n > 0;
	for (int i = 1; i < n; i++)
		one = one && ts[i] == ts[0];
	free(ts);
	return one;
}

/* t: the target whose launch limits a configuration must fit (NULL: none checked) */
typedef int (*stage_schedule)(sch_schedule *s, sch_stage *c, const kiln_cpu_config *cfg, const kiln_target *t);

/* Matmul-shaped stages by matmul, direct convolutions by conv (when given; with
 * window_too depthwise convolutions and pools too), every other root stage one
 * thread per element; cfg: a tuner's knobs for them. */
static kiln_schedule *schedule_kernels(kiln_ctx *ctx, int nout, kiln_tensor *const *outs, stage_schedule matmul,
                                       stage_schedule conv, bool window_too, const kiln_cpu_config *cfg,
                                       const kiln_target *t)
{
	sch_schedule *s = kiln_schedule_create(ctx, nout, outs);
	if (!s)
		return NULL;
	for (int i = 0; i < s->nstage; i++) {
		sch_stage *st = s->stages[i];
		if (gpu_inlinable(s, st, conv != schedule_conv_emulated)) {
			st->note = "default: elementwise of one tensor, computed where it is read";
			if (kiln_compute_inline(st))
				return NULL;
		}
	}
	int n = s->nstage, nmm = 0;
	sch_stage **snap = ir_alloc(ctx, sizeof(sch_stage *) * n);
	memcpy(snap, s->stages, sizeof(sch_stage *) * n);
	for (int i = n - 1; i >= 0; i--) {
		bool window = conv && (op_is(snap[i], TAG_CONV) || (window_too && op_is(snap[i], TAG_SPATIAL_REDUCE)));
		nmm += op_is(snap[i], TAG_MATMUL) || window;
		if ((op_is(snap[i], TAG_MATMUL) && matmul(s, snap[i], cfg, t)) || (window && conv(s, snap[i], cfg, t)))
			return NULL;
	}
	/* a configuration nothing takes would only repeat the default under another name (a tuner's space
	 * leaves it out): refused */
	if (cfg && !nmm)
		return ir_error(ctx, "schedule: the GPU template's configurations are for matrix products (GEMM-form "
		                "convolutions too) and window reductions (direct and depthwise convolutions, pools); '%s' "
		                "has none", outs[0]->name), NULL;
	for (int i = 0; i < n; i++) {
		sch_stage *rs = split_reduction(s, snap[i]);
		if (ctx->nerr || (rs && one_thread_per_element(rs)))
			return NULL;
	}
	for (int i = 0; i < n; i++) {
		if (snap[i]->attach != ATTACH_ROOT || snap[i]->nrel)
			continue;
		if (!snap[i]->op->tag && !snap[i]->note)
			snap[i]->note = "default: one thread per output element, blocks of up to 64";
		if (one_thread_per_element(snap[i]))
			return NULL;
	}
	return s;
}

kiln_schedule *kiln_schedule_gpu(kiln_ctx *ctx, int nout, kiln_tensor *const *outs)
{
	return schedule_kernels(ctx, nout, outs, schedule_matmul_gpu, schedule_window_gpu, true, NULL, NULL);
}

static kiln_schedule *gpu_config_for(kiln_ctx *ctx, const kiln_target *t, const kiln_cpu_config *cfg, int nout,
                                     kiln_tensor *const *outs)
{
	if (cfg && (cfg->rows < 0 || cfg->vecs < 0 || cfg->unroll < 0 || cfg->tile < 0 || cfg->order < 0 || cfg->order > 2 ||
	            cfg->stages < 0 || cfg->stages > 2 || cfg->pad < 0 || cfg->pad > 2 || cfg->split < 0 || cfg->split > 64))
		return ir_error(ctx, "schedule: negative knobs, or order %d, stages %d, pad %d (each 0-2), split %d (0-64)",
		                cfg->order, cfg->stages, cfg->pad, cfg->split), NULL;
	return schedule_kernels(ctx, nout, outs, schedule_matmul_gpu, schedule_window_gpu, true, cfg, t);
}

kiln_schedule *kiln_schedule_gpu_config(kiln_ctx *ctx, const kiln_cpu_config *cfg, int nout, kiln_tensor *const *outs)
{
	return gpu_config_for(ctx, NULL, cfg, nout, outs);
}

kiln_schedule *kiln_schedule_gpu_emulated(kiln_ctx *ctx, int nout, kiln_tensor *const *outs)
{
	return schedule_kernels(ctx, nout, outs, schedule_matmul_emulated, schedule_conv_emulated, false, NULL, NULL);
}

/* The last of the fewest leading axes fa[0..m] whose product rows divides (block r: texels r * T/rows ..), or -1. */
static int webgl_lead_axes(kiln_iter *const *fa, int nf, int rows)
{
	int64_t lead = 1;
	for (int d = 0; d < nf; d++)
		if ((lead *= fa[d]->extent) % rows == 0)
			return d;
	return -1;
}

/*
 * Whether some read of e is the same for every value of vars but moves
 * along the reduction (red): a stream of texels blocks along vars would
 * share (a constant or a 0-d tensor is no such stream).
 */
typedef struct {
	ir_expr *const *vars, *const *red;
	int n, nred;
	bool shared;
} share_scan;

static bool find_shared(const ir_expr *e, void *user)
{
	share_scan *ss = user;
	if (e->kind != IR_READ)
		return true;
	bool uses = false, moves = false;
	for (int d = 0; d < e->read.t->ndim; d++) {
		for (int v = 0; v < ss->n; v++)
			uses = uses || ir_expr_uses_var(e->read.idx[d], ss->vars[v]);
		for (int v = 0; v < ss->nred; v++)
			moves = moves || ir_expr_uses_var(e->read.idx[d], ss->red[v]);
	}
	ss->shared = ss->shared || (!uses && moves);
	return true;
}

/*
 * The default's blocks per fragment (rows 0 asks for it): 4 (every WebGL2
 * device draws to 4 targets) where the blocks share a read, as a matmul's
 * rows share B and a convolution's output channels share its input, and
 * 1024 fragments remain; else 1 (a depthwise window or a pooling shares
 * nothing). On an H200 through EGL this took ResNet-18 from 158 to 98 ms,
 * SqueezeNet from 33.7 to 24.0 and MobileNetV2 from 30.4 to 22.3.
 */
static int webgl_default_rows(sch_stage *st, kiln_iter *const *fa, int nf)
{
	if (st->op->nreduce == 0 || st->op->nout != 1)
		return 1;
	int64_t texels = 1;
	for (int d = 0; d < nf; d++)
		texels *= fa[d]->extent;
	int m = webgl_lead_axes(fa, nf, 4);
	if (m < 0 || texels / 4 < 1024)
		return 1;
	ir_expr *vars[KILN_MAX_DIMS], *red[KILN_MAX_DIMS];
	int n = 0, nred = 0;
	for (int d = 0; d <= m && d < st->op->naxis; d++)
		if (st->op->axis[d]->extent > 1) /* (a batch of 1 is one value) */
			vars[n++] = st->op->axis[d]->var;
	for (int r = 0; r < st->op->nreduce && nred < KILN_MAX_DIMS; r++)
		red[nred++] = st->op->reduce[r]->var;
	share_scan ss = {vars, red, n, nred, false};
	ir_visit_expr(st->op->body[0], find_shared, &ss);
	if (!ss.shared)
		return 1;
	st->note = "default: 4 blocks of the output per fragment, a render target each (they share a read)";
	return 4;
}

/*
 * A root stage in WebGL2's fragment model. Its fused output axis is the
 * fragment index (no shifted split: a fragment writes only its own
 * elements), and reductions loop inside the fragment. Three knobs, a
 * template's (the default: lanes 1, unroll 1, rows 0 = webgl_default_rows):
 *   lanes 4   packs: four consecutive elements per RGBA texel, so each
 *             fragment computes four outputs (the innermost axis split by
 *             4, one vector) and reads aligned inputs four at a time;
 *   rows L    blocks: the leading axes split into L parts, and each fragment
 *             computes its element of every part, each into a render target
 *             of its own (the runtime gathers them into place): a matmul
 *             fragment reuses each texel of B for L rows;
 *   unroll u  the innermost reduction split by u and unrolled (or whole).
 * Rows and unrolling apply to stages with a reduction only.
 */
static int webgl_stage(kiln_ctx *ctx, sch_stage *st, int lanes, int rows, int unroll)
{
	int n = st->op->naxis;
	kiln_iter *fa[KILN_MAX_DIMS + 1] = {0}, *li = NULL, *ki = NULL, *rb = NULL;
	int nf = 0;
	for (int d = 0; d < n; d++)
		fa[nf++] = st->op->axis[d];
	if (lanes == 4) {
		kiln_iter *last = fa[--nf], *lo;
		if (last->extent % 4)
			return ir_error(ctx, "webgl packing: the innermost extent of '%s' is %lld, not a multiple of 4",
			                st->op->name, (long long)last->extent);
		if (kiln_split(st, last, 4, &lo, &li))
			return -1;
		fa[nf++] = lo;
	}
	if (st->op->nreduce == 0)
		rows = unroll = 1;
	if (rows == 0)
		rows = webgl_default_rows(st, fa, nf);
	if (rows > 1) {
		int m = webgl_lead_axes(fa, nf, rows);
		if (m < 0)
			return ir_error(ctx, "webgl rows %d: no leading axes of '%s' split into %d equal blocks", rows,
			                st->op->name, rows);
		if (st->op->nout * rows > 8)
			return ir_error(ctx, "webgl rows %d: '%s' writes %d outputs, %d render targets (8 at most)", rows,
			                st->op->name, st->op->nout, st->op->nout * rows);
		kiln_iter *g = fa[0];
		for (int d = 1; d <= m; d++)
			if (kiln_fuse(st, g, fa[d], &g))
				return -1;
		kiln_iter *gi;
		if (kiln_split_nparts(st, g, rows, &rb, &gi))
			return -1;
		fa[0] = gi;
		memmove(fa + 1, fa + m + 1, sizeof *fa * (size_t)(nf - m - 1));
		nf -= m;
	}
	kiln_iter *order[KILN_MAX_DIMS * 3 + 4] = {0};
	int k = 0;
	for (int d = 0; d < nf; d++)
		order[k++] = fa[d];
	for (int r = 0; r < st->op->nreduce; r++) {
		kiln_iter *ax = st->op->reduce[r];
		if (r == st->op->nreduce - 1 && unroll > 1) {
			if (ax->extent % unroll)
				return ir_error(ctx, "webgl unroll %d: the reduction of '%s' has %lld steps", unroll, st->op->name,
				                (long long)ax->extent);
			if (ax->extent == unroll) { /* the whole loop (a 3x3 window's columns) */
				ki = ax;
				order[k++] = ax;
				continue;
			}
			if (kiln_split(st, ax, unroll, &ax, &ki))
				return -1;
			order[k++] = ax;
			order[k++] = ki;
			continue;
		}
		order[k++] = ax;
	}
	if (rb)
		order[k++] = rb;
	if (li)
		order[k++] = li;
	if (kiln_reorder(st, k, order))
		return -1;
	kiln_iter *f = fa[0];
	for (int d = 1; d < nf; d++)
		if (kiln_fuse(st, f, fa[d], &f))
			return -1;
	return kiln_bind(st, f, KILN_BLOCK_X) || (ki && kiln_unroll(st, ki)) || (rb && kiln_unroll(st, rb)) ||
	       (li && kiln_vectorize(st, li));
}

/* Every stage in the fragment model under the knobs (see webgl_stage); packing inlines elementwise producers. */
static kiln_schedule *schedule_webgl(kiln_ctx *ctx, int nout, kiln_tensor *const *outs, int lanes, int rows,
                                     int unroll)
{
	sch_schedule *s = kiln_schedule_create(ctx, nout, outs);
	if (!s)
		return NULL;
	bool reduces = false;
	for (int i = 0; i < s->nstage; i++)
		reduces = reduces || s->stages[i]->op->nreduce > 0;
	if (!reduces && (rows > 1 || unroll > 1)) /* which would repeat rows 1, unroll 1 */
		return ir_error(ctx, "webgl rows %d, unroll %d: no stage of '%s' has a reduction", rows, unroll,
		                s->stages[s->nstage - 1]->op->name), NULL;
	if (lanes == 1)
		for (int i = s->nstage - 1; i >= 0; i--) {
			split_reduction(s, s->stages[i]);
			if (ctx->nerr)
				return NULL;
		}
	for (int i = 0; lanes == 4 && i < s->nstage; i++) {
		sch_stage *st = s->stages[i];
		if (!st->is_output && st->op->nreduce == 0 && kiln_compute_inline(st))
			return NULL;
	}
	for (int i = 0; i < s->nstage; i++) {
		sch_stage *st = s->stages[i];
		if (st->attach != ATTACH_ROOT || st->op->naxis == 0)
			continue;
		if (!st->op->tag && !st->note)
			st->note = "default: one fragment per output element";
		if (webgl_stage(ctx, st, lanes, rows, unroll))
			return NULL;
	}
	return s;
}

kiln_schedule *kiln_schedule_webgl(kiln_ctx *ctx, int nout, kiln_tensor *const *outs)
{
	return schedule_webgl(ctx, nout, outs, 1, 0, 1);
}

kiln_schedule *kiln_schedule_webgl_packed(kiln_ctx *ctx, int nout, kiln_tensor *const *outs)
{
	return schedule_webgl(ctx, nout, outs, 4, 1, 1);
}

kiln_schedule *kiln_schedule_webgl_config(kiln_ctx *ctx, const kiln_cpu_config *cfg, int nout,
                                          kiln_tensor *const *outs)
{
	/* rows 0: the default's choice (webgl_default_rows) */
	int rows = cfg ? cfg->rows : 0, lanes = cfg && cfg->vecs ? cfg->vecs : 1, unroll = cfg && cfg->unroll ? cfg->unroll : 1;
	if (rows < 0 || rows > 8 || (lanes != 1 && lanes != 4) || unroll < 1 || unroll > 64)
		return ir_error(ctx, "schedule: webgl takes rows 1-8 (blocks per fragment; 0: the default's choice), vecs 1 "
		                "or 4 (elements per texel) and unroll 1-64, not %d, %d, %d", cfg->rows, cfg->vecs, cfg->unroll),
		       NULL;
	return schedule_webgl(ctx, nout, outs, lanes, rows, unroll);
}

kiln_schedule *kiln_schedule_template(kiln_ctx *ctx, const kiln_target *t, const kiln_cpu_config *cfg, int nout,
                                      kiln_tensor *const *outs)
{
	switch (t->kind) {
	case KILN_LLVM:
	case KILN_WASM:
		return kiln_schedule_cpu_config(ctx, t, cfg, nout, outs);
	case KILN_OPENCL:
	case KILN_WEBGPU:
		if (!t->emulated)
			return gpu_config_for(ctx, t, cfg, nout, outs);
		break;
	case KILN_WEBGL:
		return kiln_schedule_webgl_config(ctx, cfg, nout, outs);
	}
	return ir_error(ctx, "schedule: '%s' has no template a configuration applies to (llvm, wasm, opencl, webgpu and "
	                "webgl have)", t->name), NULL;
}

kiln_schedule *kiln_schedule_for(kiln_ctx *ctx, const char *target, int nout, kiln_tensor *const *outs)
{
	kiln_target t;
	char err[256];
	if (kiln_target_parse(target, &t, err, sizeof err))
		return ir_error(ctx, "schedule: %s", err), NULL;
	switch (t.kind) {
	case KILN_LLVM:
	case KILN_WASM:
		/* wasm kernels are the CPU's loop nests at 128-bit SIMD (parallel loops run serially) */
		return kiln_schedule_cpu_for(ctx, &t, nout, outs);
	case KILN_OPENCL:
	case KILN_WEBGPU:
		/* WGSL runs the OpenCL schedule (same workgroups, shared panels and float4 loops),
		 * except on adapters that are a CPU underneath (a bundle's "webgpu-cpu" module) */
		return t.emulated ? kiln_schedule_gpu_emulated(ctx, nout, outs)
		                  : schedule_kernels(ctx, nout, outs, schedule_matmul_gpu, schedule_window_gpu, true, NULL, &t);
	case KILN_WEBGL:
		return kiln_schedule_webgl(ctx, nout, outs);
	}
	ir_internal_error(__FILE__, __LINE__, "a parsed target without a schedule");
}
