/*
 * schedule_cpu.c — the default CPU schedules, chosen per stage by the tag
 * its operator left on it.
 *
 * The compute-heavy ones share one shape (as TVM's x86 dense and conv):
 * the output is tiled into rb x vb blocks, the reduction runs in a `local`
 * stage computed at the block, with its reduce loops outermost, the rb rows
 * unrolled and the vb columns one vector, so the block's accumulators stay
 * in registers; the output copy is vectorized and its outer loops fused and
 * parallel. Elementwise stages fuse their outer axes (parallel) and vectorize
 * 16 lanes of the innermost one.
 */
#include <string.h>

#include "ops.h"

/*
 * What the schedules size from the target (include/kiln/target.h): f32
 * lanes of one vector register, and how many registers a block of
 * accumulators may take (the rest hold the operands being broadcast and
 * loaded). AVX-512: 16 lanes, 28; AVX2: 8 lanes, 12; wasm: 4 lanes, 8 (V8
 * keeps the rest).
 */
typedef struct {
	int vec;
	int acc;
	/* a tuner's configuration (kiln_cpu_config; 0: sized from the target, the operator's own order) */
	int rows, vecs, unroll, tile, order;
} cpu_desc;

/* Elementwise loops: 16 lanes (LLVM splits them into registers), or one register if wider. */
static int ew_lanes(const cpu_desc *c) { return c->vec > 16 ? c->vec : 16; }

static sch_stage *only_consumer(sch_schedule *s, sch_stage *p)
{
	sch_stage *found = NULL;
	for (int i = 0; i < s->nstage; i++) {
		sch_stage *c = s->stages[i];
		if (c == p)
			continue;
		for (int k = 0; k < p->nout; k++)
			if (sch_reads(c, p->outs[k])) {
				if (found && found != c)
					return NULL;
				found = c;
			}
	}
	return found;
}

/* Fuses the leaves [from, to] (adjacent) into one; returns it. */
static kiln_iter *fuse_range(sch_stage *st, int from, int to)
{
	kiln_iter *f = st->leaf[from];
	for (int i = from + 1; i <= to; i++) {
		kiln_iter *next = st->leaf[from + 1];
		if (kiln_fuse(st, f, next, &f))
			return NULL;
	}
	return f;
}

static int schedule_injective(const cpu_desc *c, sch_stage *st)
{
	int n = st->op->naxis;
	if (n == 0 || st->nrel)
		return 0;
	kiln_iter *last = st->op->axis[n - 1];
	bool vec = last->extent >= ew_lanes(c);
	if (vec) {
		kiln_iter *o, *i;
		kiln_split(st, last, ew_lanes(c), &o, &i);
		kiln_vectorize(st, i);
	}
	/* everything but the innermost loop becomes one parallel loop */
	int outer = st->nleaf >= 2 ? st->nleaf - 2 : 0;
	kiln_iter *par = fuse_range(st, 0, outer);
	return par ? kiln_parallel(st, par) : -1;
}

/*
 * The shared tiled-reduction schedule. out: the (pure) output stage; red:
 * the reduction, already local. row: the output axis whose rb rows are
 * unrolled (-1 for none); the last output axis gives the vector of vb lanes.
 * cols_first puts the column blocks outside the row blocks (matmul: a panel
 * of packed B stays in cache while the rows stream by); a configuration's
 * order overrides it, its tile groups the inner block loop outside the
 * outer one, and its unroll unrolls the innermost reduction loop. npar > 0
 * keeps the parallel loop to the first npar loops (0: every loop outside
 * the register block).
 */
static int schedule_tiled(const cpu_desc *c, sch_stage *out, sch_stage *red, int row, int64_t rb, int64_t vb,
                          bool cols_first, int npar)
{
	kiln_ctx *ctx = out->op->outs[0]->ctx;
	int n = out->op->naxis;
	kiln_iter *last = out->op->axis[n - 1], *lo, *li, *ro = NULL, *ri = NULL;
	if (c->order && row >= 0)
		cols_first = c->order == 1;
	/* knobs this stage has no loop for would only repeat another configuration under a new name: refused */
	if (row < 0 && (c->tile > 1 || c->order == 2))
		return ir_error(ctx, "schedule: '%s' has no row blocks to tile or to put outside the columns (tile %d, order %d)",
		                out->op->name, c->tile, c->order);
	if (!red->op->nreduce && c->unroll > 1)
		return ir_error(ctx, "schedule: '%s' has no reduction to unroll", out->op->name);
	if (kiln_split(out, last, vb, &lo, &li))
		return -1;
	if (row >= 0 && kiln_split(out, out->op->axis[row], rb, &ro, &ri))
		return -1;
	/* order: other axes in place (row.outer at the row's place), then col.outer, row.inner, col.inner */
	kiln_iter *order[KILN_MAX_DIMS + 3];
	int k = 0;
	for (int d = 0; d < n - 1; d++)
		if (d != row || cols_first)
			order[k++] = d == row ? ro : out->op->axis[d];
	if (row >= 0 && !cols_first)
		order[k++] = ro; /* row blocks inside the other axes: a thread's input rows stay in cache */
	if (cols_first && row >= 0) {
		/* swap row.outer and col.outer */
		for (int d = 0; d < k; d++)
			if (order[d] == ro)
				order[d] = lo;
		order[k++] = ro;
	} else {
		order[k++] = lo;
	}
	if (c->tile > 1 && row >= 0) {
		/* tile of the inner block loop's blocks, their groups just outside the outer block loop */
		kiln_iter *inner = cols_first ? ro : lo, *outer = cols_first ? lo : ro, *go, *gi;
		if (inner->extent % c->tile)
			return ir_error(ctx, "schedule: a tile of %d blocks does not divide the %lld blocks of '%s'", c->tile,
			                (long long)inner->extent, inner->var->var.name);
		if (kiln_split(out, inner, c->tile, &go, &gi))
			return -1;
		int at = 0;
		while (order[at] != outer)
			at++;
		memmove(order + at + 1, order + at, sizeof *order * (size_t)(k - at));
		order[at] = go;
		k++;
		for (int d = at + 1; d < k; d++)
			if (order[d] == inner)
				order[d] = gi;
	}
	if (ri)
		order[k++] = ri;
	order[k++] = li;
	if (kiln_reorder(out, k, order))
		return -1;
	kiln_iter *attach = order[k - (ri ? 3 : 2)];
	/* parallel: every loop outside the attach point, fused */
	int apos = 0;
	for (int i = 0; i < out->nleaf; i++)
		if (out->leaf[i] == attach)
			apos = i;
	if (npar > 0 && npar < apos)
		apos = npar;
	kiln_iter *par = apos > 0 ? fuse_range(out, 0, apos - 1) : NULL;
	if (par)
		kiln_parallel(out, par);
	kiln_vectorize(out, li);
	if (kiln_compute_at(red, out, attach))
		return -1;
	/* the reduction: reduce loops outside, rows unrolled, columns one vector */
	kiln_iter *rorder[KILN_MAX_DIMS * 2 + 1];
	int m = 0;
	for (int d = 0; d < red->op->naxis - 1; d++)
		if (d != row)
			rorder[m++] = red->op->axis[d];
	for (int r = 0; r < red->op->nreduce; r++)
		rorder[m++] = red->op->reduce[r];
	if (c->unroll > 1 && red->op->nreduce) {
		kiln_iter *r = red->op->reduce[red->op->nreduce - 1], *uo, *ui;
		if (r->extent % c->unroll)
			return ir_error(ctx, "schedule: unrolling by %d does not divide the %lld steps of reduction '%s'",
			                c->unroll, (long long)r->extent, r->var->var.name);
		if (kiln_split(red, r, c->unroll, &uo, &ui) || kiln_unroll(red, ui))
			return -1;
		rorder[m - 1] = uo;
		rorder[m++] = ui;
	}
	if (row >= 0)
		rorder[m++] = red->op->axis[row];
	rorder[m++] = red->op->axis[n - 1];
	if (kiln_reorder(red, m, rorder))
		return -1;
	if (row >= 0)
		kiln_unroll(red, red->op->axis[row]);
	kiln_iter *col = red->op->axis[n - 1];
	if (vb > c->vec && vb % c->vec == 0) {
		kiln_iter *co, *ci;
		kiln_split(red, col, c->vec, &co, &ci);
		kiln_unroll(red, co);
		kiln_vectorize(red, ci);
	} else {
		kiln_vectorize(red, col);
	}
	return 0;
}

/* st's only reader when that is an elementwise output of st's shape not yet scheduled (an epilogue), else NULL. */
static sch_stage *epilogue_of(sch_schedule *s, sch_stage *st)
{
	sch_stage *c = only_consumer(s, st);
	return !st->is_output && c && c->is_output && op_is(c, TAG_INJECTIVE) && c->op->naxis == st->op->naxis &&
	               !memcmp(c->outs[0]->shape, st->outs[0]->shape, sizeof(int64_t) * st->op->naxis) && !c->nrel
	           ? c
	           : NULL;
}

/* The stage that will hold the reduction's block: an epilogue consumer, or a cache. */
static int local_pair(sch_schedule *s, sch_stage *st, sch_stage **out, sch_stage **red)
{
	sch_stage *c = epilogue_of(s, st);
	if (c) {
		*out = c;
		*red = st;
		return kiln_set_scope(st, KILN_SCOPE_LOCAL);
	}
	if (st->attach != ATTACH_ROOT || st->nrel)
		return 1; /* already placed by hand */
	kiln_tensor *l = kiln_cache_write(s, st->outs[0], KILN_SCOPE_LOCAL);
	if (!l)
		return -1;
	*out = st;
	*red = sch_stage_of(s, l);
	return 0;
}

/*
 * The columns of one register block: the whole row when it fits a vector,
 * else the largest divisor of the row up to 16 lanes (no shifted tiles), or
 * 16 with a shifted last tile when the row has no good divisor. Wider
 * blocks of odd widths (28 lanes) made LLVM spill the accumulators.
 */
static int64_t vector_block(const cpu_desc *c, int64_t width)
{
	int64_t most = 2 * c->vec < 16 ? 2 * c->vec : 16;
	if (width <= most)
		return width;
	for (int64_t d = most; d >= most / 2; d--)
		if (width % d == 0)
			return d;
	return most;
}

/* Rows of a register block of vb columns: as many as the accumulators allow, at most 8. */
static int64_t block_rows(const cpu_desc *c, int64_t rows, int64_t vb)
{
	int64_t vecs = (vb + c->vec - 1) / c->vec, rb = c->acc / (vecs ? vecs : 1);
	rb = rb < 1 ? 1 : rb > 8 ? 8 : rb;
	return rows < rb ? rows : rb;
}

static int schedule_matmul(const cpu_desc *c, sch_schedule *s, sch_stage *st)
{
	sch_stage *out, *red;
	int rc = local_pair(s, st, &out, &red);
	if (rc)
		return rc < 0 ? -1 : 0;
	int n = out->op->naxis;
	int64_t M = out->outs[0]->shape[n - 2], nb = red->op->attr[0] ? red->op->attr[0] : c->vec;
	int64_t N = out->outs[0]->shape[n - 1];
	/* columns: a tuner's vectors, else two vectors within one packed panel (or the panel: below) */
	if (c->vecs) {
		int64_t want = (int64_t)c->vecs * c->vec;
		if (want > nb || nb % want)
			return ir_error(s->ctx, "schedule: %d vectors of %d lanes do not divide the packed panel of %lld columns",
			                c->vecs, c->vec, (long long)nb);
		nb = want;
	} else if (nb > 2 * c->vec && nb % (2 * c->vec) == 0 && !(c->vec >= 8 && M * (nb / c->vec) <= c->acc)) {
		/* two vectors; but on AVX2 a block of rows so few that the whole
		 * panel's accumulators fit (a matrix-vector product: a classifier at
		 * batch 1) takes the whole panel: it then streams the packed weights
		 * in order, a panel row a step, where two vectors read every other
		 * line and come back for the rest, with a chain of FMAs per vector.
		 * MobileNetV2's 1000x1280 classifier in runs, one AVX2 core: 0.68-0.77
		 * -> 0.44-0.58 ms (5 MB of weights from memory). (AVX-512's panel is
		 * two vectors already; wasm's not measured.) */
		nb = 2 * c->vec;
	}
	if (nb > N)
		nb = N;
	int64_t rb = c->rows ? (M < c->rows ? M : c->rows) : block_rows(c, M, nb);
	return schedule_tiled(c, out, red, n - 2, rb, nb, true, 0);
}

static int schedule_conv(const cpu_desc *c, sch_schedule *s, sch_stage *st)
{
	sch_stage *out, *red;
	int rc = local_pair(s, st, &out, &red);
	if (rc)
		return rc < 0 ? -1 : 0;
	int64_t K = out->outs[0]->shape[1], OW = out->outs[0]->shape[3];
	int64_t kb = K % 8 == 0 ? 8 : K % 4 == 0 ? 4 : K < 8 ? K : 1;
	/* two vectors per row block when the row has room: twice the FMAs per
	 * weight broadcast (the last block shifts inwards) */
	int64_t cols = OW >= 2 * c->vec ? 2 * c->vec : vector_block(c, OW);
	/* fewer output channels per block where the accumulators would not fit the registers */
	while (kb > 1 && kb % 2 == 0 && kb * ((cols + c->vec - 1) / c->vec) > c->acc)
		kb /= 2;
	if (c->vecs)
		cols = (int64_t)c->vecs * c->vec < OW ? (int64_t)c->vecs * c->vec : OW;
	if (c->rows)
		kb = c->rows < K ? c->rows : K;
	return schedule_tiled(c, out, red, kb > 1 ? 1 : -1, kb, cols, false, 0);
}

/*
 * Output columns of a register block, 1-14 and at most `most`: the whole row
 * when it fits, else the width from most down to half of it that computes
 * the fewest columns in all (the last block shifts inwards and recomputes
 * its overlap; ties: the wider). A row of 7 in blocks of 6 computed 12
 * columns (12 accumulators on AVX2 and wasm: ResNet-18's 7x7 layers ran
 * 70% over); blocks of 4 compute 8.
 */
static int64_t cols_block(int64_t most, int64_t ow)
{
	most = most < 1 ? 1 : most > 14 ? 14 : most;
	if (ow <= most)
		return ow;
	int64_t best = most;
	for (int64_t d = most; d >= (most + 1) / 2; d--)
		if ((ow + d - 1) / d * d < (ow + best - 1) / best * best)
			best = d;
	return best;
}

/*
 * Output channels in the vector lanes (conv2d_kpacked): a block of vb
 * channels x rb output columns accumulated in registers over (c, r, s), each
 * input element broadcast once per block and each weight vector loaded once
 * per step; a parallel task per (image, channel block, output row).
 */
static int schedule_conv_klanes(const cpu_desc *c, sch_schedule *s, sch_stage *red)
{
	/* red: Yt[n, oh, ow, k]; out: what writes NCHW from it (the operator's output, or its epilogue with that inlined) */
	sch_stage *out = only_consumer(s, red), *cons;
	if (!out || !op_is(out, TAG_INJECTIVE) || out->op->naxis != 4 || red->attach != ATTACH_ROOT || red->nrel)
		return 0; /* placed by hand */
	if ((cons = epilogue_of(s, out))) {
		if (kiln_compute_inline(out))
			return -1;
		out = cons;
	}
	if (out->nrel)
		return 0; /* the output placed by hand */
	if (kiln_set_scope(red, KILN_SCOPE_LOCAL))
		return -1;
	const int64_t *sh = out->outs[0]->shape;
	int64_t K = sh[1], OW = sh[3], vb = 0, rb = 0;
	/* knobs this schedule has no loop for would only repeat another configuration: refused */
	if (c->tile > 1 || c->order || c->vecs > 2)
		return ir_error(s->ctx, "schedule: '%s' keeps output channels in 1 or 2 vectors and has no tiles or orders "
		                "to choose (tile %d, order %d, vectors %d)", out->op->name, c->tile, c->order, c->vecs);
	/* the block with the most accumulators (ties: more vectors, fewer broadcasts), 1 or 2 vectors of channels
	 * (4 vectors x 7 columns left no register for the broadcast and spilled: 2x slower) */
	for (int64_t vecs = 2; vecs >= 1; vecs--) {
		if (c->vecs && vecs != c->vecs)
			continue;
		int64_t w = vecs * c->vec < K ? vecs * c->vec : K, nv = (w + c->vec - 1) / c->vec;
		if (nv < vecs && vb)
			continue; /* fewer channels than these vectors: the narrower block is the same one */
		int64_t r = cols_block(c->acc / nv, OW);
		if (c->rows)
			r = c->rows < OW ? c->rows : OW;
		/* accumulators, counted by the share of their columns that are not recomputed */
		double score = (double)(r * nv) * (double)OW / (double)((OW + r - 1) / r * r);
		double best = vb ? (double)(rb * ((vb + c->vec - 1) / c->vec)) * (double)OW / (double)((OW + rb - 1) / rb * rb) : 0;
		if (!vb || score > best) {
			vb = w;
			rb = r;
		}
	}
	if (!red->op->nreduce && c->unroll > 1)
		return ir_error(s->ctx, "schedule: '%s' has no reduction to unroll", out->op->name);
	kiln_iter **ax = out->op->axis, *ko, *ki, *wo, *wi, *f, *par;
	if (kiln_split(out, ax[1], vb, &ko, &ki) || kiln_split(out, ax[3], rb, &wo, &wi) ||
	    kiln_reorder(out, 6, (kiln_iter *[]){ax[0], ko, ax[2], wo, ki, wi}) || kiln_fuse(out, ax[0], ko, &f) ||
	    kiln_fuse(out, f, ax[2], &par) || kiln_parallel(out, par) || kiln_unroll(out, ki) || kiln_vectorize(out, wi) ||
	    kiln_compute_at(red, out, wo))
		return -1;
	/* Yt's block: reduce loops outside, columns unrolled, channels one or two vectors */
	kiln_iter **ra = red->op->axis, **rr = red->op->reduce;
	kiln_iter *order[8] = {ra[0], ra[1], rr[0], rr[1], rr[2], ra[2], ra[3]};
	int n = 7;
	if (c->unroll > 1) {
		kiln_iter *uo, *ui;
		if (rr[2]->extent % c->unroll)
			return ir_error(s->ctx, "schedule: unrolling by %d does not divide the %lld steps of reduction '%s'",
			                c->unroll, (long long)rr[2]->extent, rr[2]->var->var.name);
		if (kiln_split(red, rr[2], c->unroll, &uo, &ui) || kiln_unroll(red, ui))
			return -1;
		order[4] = uo;
		memmove(order + 6, order + 5, sizeof *order * 2);
		order[5] = ui;
		n = 8;
	}
	if (kiln_reorder(red, n, order) || kiln_unroll(red, ra[2]))
		return -1;
	if (vb > c->vec && vb % c->vec == 0) {
		kiln_iter *co, *ci;
		if (kiln_split(red, ra[3], c->vec, &co, &ci) || kiln_unroll(red, co) || kiln_vectorize(red, ci))
			return -1;
	} else if (kiln_vectorize(red, ra[3])) {
		return -1;
	}
	out->note = ir_fmt(s->ctx, "default: output channels in vectors, %lld channels x %lld columns in registers",
	                   (long long)vb, (long long)rb);
	return 0;
}

/* The largest power of two up to both w and most: vectors along a row, the last one shifted inwards (14
 * lanes, a divisor of 56, made LLVM split every vector into 8 + 4 + 2) */
static int64_t pow2_lanes(int64_t w, int64_t most)
{
	int64_t l = 1;
	while (2 * l <= w && 2 * l <= most)
		l *= 2;
	return l;
}

static int schedule_spatial(const cpu_desc *c, sch_schedule *s, sch_stage *st)
{
	sch_stage *out, *red;
	int rc = local_pair(s, st, &out, &red);
	if (rc)
		return rc < 0 ? -1 : 0;
	const int64_t *sh = out->outs[0]->shape;
	int64_t w = sh[3], most = 2 * c->vec < 16 ? 2 * c->vec : 16;
	int64_t vb = c->vecs && (int64_t)c->vecs * c->vec < w ? c->vecs * c->vec : pow2_lanes(w, most);
	/* a few output rows per block: each weight broadcast once for all of them, and the input rows they
	 * share loaded once (MobileNetV2's 56x56 depthwise layer: 0.34 -> 0.21 ms with 4 rows) */
	int64_t nv = (vb + c->vec - 1) / c->vec, rb = c->acc / nv;
	rb = c->rows ? c->rows : rb < 1 ? 1 : rb > 4 ? 4 : rb;
	rb = rb < sh[2] ? rb : sh[2];
	/* enough channel planes to share among threads: one parallel task per plane, its padded input made inside it */
	bool planes = sh[0] * sh[1] >= 8;
	if (schedule_tiled(c, out, red, rb > 1 ? 2 : -1, rb, vb, false, planes ? 2 : 0))
		return -1;
	if (!planes)
		return 0;
	/*
	 * The padded input (or its column phases) one channel plane at a time,
	 * just before that plane's rows: written and read back while it is in
	 * cache. A root pad stage wrote the whole padded tensor to memory first
	 * (two thirds of a stride-2 pooling's time). From the last stage back, so
	 * that what only a stage placed here reads comes along: a strided
	 * depthwise layer's column phases, then the padded input they read, and
	 * any elementwise stage of the same planes before them (up to 7 stages).
	 */
	sch_stage *placed[8] = {red};
	int nplaced = 1;
	for (int i = s->nstage - 1; i >= 0 && nplaced < 8; i--) {
		sch_stage *p = s->stages[i];
		if (p == out || p->is_output || p->attach != ATTACH_ROOT || p->nrel || !op_is(p, TAG_INJECTIVE) ||
		    p->scope != KILN_SCOPE_GLOBAL || p->op->naxis < 4 || p->outs[0]->shape[0] != sh[0] ||
		    p->outs[0]->shape[1] != sh[1])
			continue;
		sch_stage *r = only_consumer(s, p); /* (last: it reads every stage's body) */
		bool feeds = false;
		for (int k = 0; k < nplaced; k++)
			feeds |= r == placed[k];
		if (!feeds)
			continue;
		placed[nplaced++] = p;
		kiln_iter *last = p->op->axis[p->op->naxis - 1], *o, *in;
		if (last->extent >= ew_lanes(c) && (kiln_split(p, last, ew_lanes(c), &o, &in) || kiln_vectorize(p, in)))
			return -1;
		if (kiln_compute_at(p, out, out->leaf[0]))
			return -1;
	}
	return 0;
}

static int schedule_pack(sch_stage *st)
{
	int n = st->op->naxis;
	kiln_iter *f = fuse_range(st, 0, n - 3);
	if (f)
		kiln_parallel(st, f);
	return kiln_vectorize(st, st->op->axis[n - 1]);
}

static int64_t lanes_dividing(const cpu_desc *c, int64_t k);
static sch_stage *lanes_rfactor(sch_schedule *s, sch_stage *st, int64_t w);

/* Row-wise ops: one parallel loop over rows; the row's statistics computed inside it. */
static int schedule_row(const cpu_desc *c, sch_schedule *s, sch_stage *out)
{
	int n = out->op->naxis, axis = (int)out->op->attr[0];
	if (axis != n - 1) {
		/* a middle axis: rows are not contiguous; parallelize the outer axis only */
		if (n > 1 && axis > 0)
			kiln_parallel(out, out->op->axis[0]);
		return 0;
	}
	kiln_iter *last = out->op->axis[n - 1];
	kiln_iter *row = n > 1 ? fuse_range(out, 0, n - 2) : NULL;
	if (last->extent >= ew_lanes(c)) {
		kiln_iter *o, *i;
		kiln_split(out, last, ew_lanes(c), &o, &i);
		kiln_vectorize(out, i);
	}
	if (!row)
		return 0;
	kiln_parallel(out, row);
	/* every row stage this output depends on is computed per row */
	for (int i = s->nstage - 1; i >= 0; i--) {
		sch_stage *p = s->stages[i];
		if (p == out || p->is_output || p->attach != ATTACH_ROOT)
			continue;
		bool row_stage = op_is(p, TAG_ROW_REDUCE) ||
		                 (op_is(p, TAG_INJECTIVE) && p->op->naxis == n && p->op->axis[n - 1]->extent == last->extent &&
		                  sch_reads(out, p->outs[0]));
		if (!row_stage)
			continue;
		if (op_is(p, TAG_INJECTIVE) && p->op->axis[n - 1]->extent >= ew_lanes(c)) {
			kiln_iter *o, *in;
			kiln_split(p, p->op->axis[n - 1], ew_lanes(c), &o, &in);
			kiln_vectorize(p, in);
		}
		/* a row's sum in vector lanes, then the lanes added: one serial sum was
		 * a chain of dependent adds (LayerNorm 128x256: 0.09 ms, its six
		 * unfused ONNX ops 0.03). The partial sums are computed per row too,
		 * beside the stages they read. */
		int64_t w = op_is(p, TAG_ROW_REDUCE) && p->op->nreduce == 1 && p->op->nout == 1
		                ? lanes_dividing(c, p->op->reduce[0]->extent)
		                : 0;
		sch_stage *rs = w ? lanes_rfactor(s, p, w) : NULL;
		if ((w && !rs) || (rs && kiln_compute_at(rs, out, row)))
			return -1;
		if (kiln_compute_at(p, out, row))
			return -1;
	}
	return 0;
}

static int schedule_global_pool(sch_stage *st)
{
	kiln_iter *f = fuse_range(st, 0, 1);
	return f ? kiln_parallel(st, f) : 0;
}

/* ---- Winograd (ops/nn.c): the transforms unrolled over their small-matrix indices ---- */

/*
 * V[e, c, r, t] = (B^T d B)[e]: one parallel task per (channel, tile row);
 * its 36 (or 16) cases unrolled over a vector of tiles, from B^T d (T) made at the
 * same point in registers. Each input element is loaded once per case of
 * T's row index, and LLVM keeps the rest in registers.
 */
static int schedule_wino_in(const cpu_desc *c, sch_schedule *s, sch_stage *v)
{
	if (v->attach != ATTACH_ROOT || v->nrel)
		return 0; /* placed by hand */
	kiln_iter *e = v->op->axis[0], *ch = v->op->axis[1], *r = v->op->axis[2], *t = v->op->axis[3];
	kiln_iter *to = NULL, *ti = t, *par, *order[5];
	int64_t lanes = pow2_lanes(t->extent, c->vec); /* one register: 14 lanes took 0.6 s to compile */
	if (t->extent > lanes && kiln_split(v, t, lanes, &to, &ti))
		return -1;
	int k = 0;
	order[k++] = ch;
	order[k++] = r;
	if (to)
		order[k++] = to;
	order[k++] = e;
	order[k++] = ti;
	if (kiln_reorder(v, k, order) || kiln_fuse(v, ch, r, &par) || kiln_parallel(v, par) || kiln_unroll(v, e) ||
	    kiln_vectorize(v, ti))
		return -1;
	v->note = ir_fmt(s->ctx, "default: Winograd input transform, %lld tiles per vector, %lld cases unrolled",
	                 (long long)lanes, (long long)e->extent);
	for (int i = 0; i < s->nstage; i++) {
		sch_stage *tt = s->stages[i];
		if (!op_is(tt, TAG_WINO_TILES) || !sch_reads(v, tt->outs[0]))
			continue;
		kiln_iter **ta = tt->op->axis; /* c, r, i, j, t */
		if (kiln_set_scope(tt, KILN_SCOPE_LOCAL) || kiln_unroll(tt, ta[2]) || kiln_unroll(tt, ta[3]) ||
		    kiln_vectorize(tt, ta[4]) || kiln_compute_at(tt, v, to ? to : par))
			return -1;
	}
	return 0;
}

/*
 * Y[n, k, h, w] = (A^T M A)[h%m, w%m] (m the output tile, 4 or 2): rows and
 * columns split by m and the in-tile loops unrolled (each of the m*m cases
 * folds to its own sum), a vector of tiles along the row. A same-shaped epilogue (bias,
 * activation, residual) takes Y inlined and this schedule.
 */
static int schedule_wino_out(const cpu_desc *c, sch_schedule *s, sch_stage *y)
{
	if (y->attach != ATTACH_ROOT || y->nrel)
		return 0; /* placed by hand */
	sch_stage *o = y, *cons = epilogue_of(s, y);
	if (cons) {
		if (kiln_compute_inline(y))
			return -1;
		o = cons;
	}
	int64_t m = y->op->attr[0]; /* the output tile (kiln_op_conv2d_winograd sets it) */
	ir_assert(m == 2 || m == 4);
	kiln_iter **ax = o->op->axis, *th, *i, *tw, *j, *two = NULL, *twi, *par, *order[7];
	if (kiln_split(o, ax[2], m, &th, &i) || kiln_split(o, ax[3], m, &tw, &j))
		return -1;
	int64_t lanes = pow2_lanes(tw->extent, c->vec);
	twi = tw;
	if (tw->extent > lanes && kiln_split(o, tw, lanes, &two, &twi))
		return -1;
	int k = 0;
	order[k++] = ax[0];
	order[k++] = ax[1];
	order[k++] = th;
	if (two)
		order[k++] = two;
	order[k++] = i;
	order[k++] = j;
	order[k++] = twi;
	if (kiln_reorder(o, k, order) || kiln_fuse(o, ax[0], ax[1], &par) || kiln_parallel(o, par) || kiln_unroll(o, i) ||
	    kiln_unroll(o, j) || kiln_vectorize(o, twi))
		return -1;
	o->note = ir_fmt(s->ctx, "default: Winograd output transform, %lld tiles per vector, %lld cases unrolled",
	                 (long long)lanes, (long long)(m * m));
	return 0;
}

/* U[e, k, c] from raw weights (the operator-level form): a task per output channel, the 36 (or 16) cases unrolled */
static int schedule_wino_weights(sch_stage *u)
{
	if (u->attach != ATTACH_ROOT || u->nrel)
		return 0; /* placed by hand */
	kiln_iter **ax = u->op->axis;
	if (kiln_reorder(u, 3, (kiln_iter *[]){ax[1], ax[2], ax[0]}) || kiln_parallel(u, ax[1]) || kiln_unroll(u, ax[0]))
		return -1;
	u->note = ir_fmt(u->s->ctx, "default: Winograd weight transform, %lld cases unrolled", (long long)ax[0]->extent);
	return 0;
}

/* ---- computes no operator declared (a user's: no tag) ---- */

/* The largest vector width up to one register dividing k with two vectors at least (0: none). */
static int64_t lanes_dividing(const cpu_desc *c, int64_t k)
{
	for (int64_t w = c->vec; w >= 4; w /= 2)
		if (k % w == 0 && k >= 2 * w)
			return w;
	return 0;
}

/* st's reduction split into w lanes and the lanes factored out; the partial sums' stage, vectorized. */
static sch_stage *lanes_rfactor(sch_schedule *s, sch_stage *st, int64_t w)
{
	kiln_iter *ko, *ki;
	if (kiln_split(st, st->op->reduce[0], w, &ko, &ki))
		return NULL;
	kiln_tensor *rf = kiln_rfactor(s, st->outs[0], ki);
	if (!rf)
		return NULL;
	sch_stage *rs = sch_stage_of(s, rf);
	kiln_iter *order[KILN_MAX_DIMS + 2];
	int k = 0;
	for (int d = 1; d < rs->op->naxis; d++)
		order[k++] = rs->op->axis[d];
	order[k++] = rs->op->reduce[0];
	order[k++] = rs->op->axis[0];
	return kiln_reorder(rs, k, order) || kiln_vectorize(rs, rs->op->axis[0]) ? NULL : rs;
}

/*
 * A reduction whose output has no vector axis (a row sum): the reduce axis
 * split into w lanes, the lanes factored out (rfactor) and summed as one
 * vector per output element, then added up.
 */
static int schedule_lanes(sch_schedule *s, sch_stage *st, int64_t w)
{
	sch_stage *rs = lanes_rfactor(s, st, w);
	if (!rs)
		return -1;
	int n = st->op->naxis;
	if (n == 0)
		return 0;
	if (kiln_compute_at(rs, st, st->op->axis[n - 1]))
		return -1;
	kiln_iter *par = fuse_range(st, 0, n - 1);
	return par ? kiln_parallel(st, par) : -1;
}

static int schedule_generic(const cpu_desc *c, sch_schedule *s, sch_stage *st)
{
	kiln_ctx *ctx = s->ctx;
	int n = st->op->naxis;
	if (st->attach != ATTACH_ROOT || st->nrel || st->nann || st->op->tag)
		return 0; /* scheduled by hand, or an operator's */
	if (st->op->nreduce == 0) {
		if (!st->is_output && op_readers_pure(s, st)) {
			st->note = "default: elementwise, inlined into its readers";
			return kiln_compute_inline(st);
		}
		st->note = ir_fmt(ctx, "default: elementwise, outer loops fused and parallel, %d-lane vectors", ew_lanes(c));
		return schedule_injective(c, st);
	}
	int64_t last = n ? st->op->axis[n - 1]->extent : 0;
	if (n >= 2 && last >= 4 && st->op->nout == 1) {
		sch_stage *out, *red;
		int rc = local_pair(s, st, &out, &red);
		if (rc)
			return rc < 0 ? -1 : 0;
		int64_t rows = out->outs[0]->shape[n - 2], vb = vector_block(c, last), rb = block_rows(c, rows, vb);
		rb = rb < 4 ? rb : 4;
		if (c->vecs)
			vb = (int64_t)c->vecs * c->vec < last ? c->vecs * c->vec : last;
		if (c->rows)
			rb = c->rows < rows ? c->rows : rows;
		out->note = ir_fmt(ctx, "default: generic reduction, %lldx%lld register tiles accumulated in '%s'",
		                   (long long)rb, (long long)vb, red->op->name);
		return schedule_tiled(c, out, red, n - 2, rb, vb, true, 0);
	}
	int64_t w = st->op->nreduce == 1 && st->op->nout == 1 ? lanes_dividing(c, st->op->reduce[0]->extent) : 0;
	if (w) {
		st->note = ir_fmt(ctx, "default: generic reduction, %lld lanes of partial results (rfactor) per element",
		                  (long long)w);
		return schedule_lanes(s, st, w);
	}
	st->note = "default: generic reduction, output loops fused and parallel";
	kiln_iter *par = n ? fuse_range(st, 0, n - 1) : NULL;
	return par ? kiln_parallel(st, par) : 0;
}

kiln_schedule *kiln_schedule_cpu(kiln_ctx *ctx, int nout, kiln_tensor *const *outs)
{
	kiln_target host;
	char err[256];
	if (kiln_target_parse("llvm", &host, err, sizeof err))
		return ir_error(ctx, "schedule: %s", err), NULL;
	return kiln_schedule_cpu_for(ctx, &host, nout, outs);
}

kiln_schedule *kiln_schedule_cpu_for(kiln_ctx *ctx, const kiln_target *t, int nout, kiln_tensor *const *outs)
{
	return kiln_schedule_cpu_config(ctx, t, NULL, nout, outs);
}

kiln_schedule *kiln_schedule_cpu_config(kiln_ctx *ctx, const kiln_target *t, const kiln_cpu_config *cfg, int nout,
                                        kiln_tensor *const *outs)
{
	int lanes = t->vector_bits >= 128 ? t->vector_bits / 32 : 4;
	/* accumulators: the registers less a few for operands; V8 compiling wasm keeps more of its 16 for
	 * itself (a 6x2 matmul block ran at half the speed of 4x2: 2.7 vs 1.4 ms for 128x1024x256) */
	int acc = t->kind == KILN_WASM ? t->vector_regs / 2 : t->vector_regs > 8 ? t->vector_regs - 4 : 4;
	cpu_desc cd = {lanes, acc > 4 ? acc : 4, 0, 0, 0, 0, 0};
	if (cfg) {
		if (cfg->rows < 0 || cfg->rows > 16 || cfg->vecs < 0 || cfg->vecs > 8)
			return ir_error(ctx, "schedule: register block of %d rows x %d vectors (rows 1-16, vectors 1-8)",
			                cfg->rows, cfg->vecs), NULL;
		if (cfg->unroll < 0 || cfg->unroll > 64 || cfg->tile < 0 || cfg->tile > 1024 || cfg->order < 0 ||
		    cfg->order > 2)
			return ir_error(ctx, "schedule: unroll %d, tile %d, order %d (unroll 0-64, tile 0-1024, order 0-2)",
			                cfg->unroll, cfg->tile, cfg->order), NULL;
		if (cfg->stages || cfg->pad || cfg->split)
			return ir_error(ctx, "schedule: stages %d, pad %d, split %d: the CPU template has no shared-memory "
			                     "panels to double-buffer or pad, nor a split reduction (give 0)", cfg->stages,
			                cfg->pad, cfg->split), NULL;
		cd.rows = cfg->rows;
		cd.vecs = cfg->vecs;
		cd.unroll = cfg->unroll;
		cd.tile = cfg->tile;
		cd.order = cfg->order;
	}
	const cpu_desc *c = &cd;
	sch_schedule *s = kiln_schedule_create(ctx, nout, outs);
	if (!s)
		return NULL;
	int n = s->nstage;
	sch_stage **snap = ir_alloc(ctx, sizeof(sch_stage *) * n);
	memcpy(snap, s->stages, sizeof(sch_stage *) * n);
	/* reductions first: they claim their epilogues and row stages */
	for (int i = n - 1; i >= 0; i--) {
		sch_stage *st = snap[i];
		int rc = 0;
		if (op_is(st, TAG_MATMUL))
			rc = schedule_matmul(c, s, st);
		else if (op_is(st, TAG_CONV))
			rc = schedule_conv(c, s, st);
		else if (op_is(st, TAG_CONV_KLANES))
			rc = schedule_conv_klanes(c, s, st);
		else if (op_is(st, TAG_SPATIAL_REDUCE))
			rc = schedule_spatial(c, s, st);
		else if (op_is(st, TAG_ROW_OUTPUT))
			rc = schedule_row(c, s, st);
		else if (op_is(st, TAG_GLOBAL_POOL))
			rc = schedule_global_pool(st);
		else if (op_is(st, TAG_WINO_OUTPUT))
			rc = schedule_wino_out(c, s, st);
		else if (op_is(st, TAG_WINO_INPUT))
			rc = schedule_wino_in(c, s, st);
		else if (op_is(st, TAG_WINO_WEIGHTS))
			rc = schedule_wino_weights(st);
		else if (op_is(st, TAG_PACK))
			rc = schedule_pack(st);
		else if (!st->op->tag && st->op->nreduce)
			rc = schedule_generic(c, s, st);
		if (rc)
			return NULL;
	}
	for (int i = 0; i < n; i++)
		if (!snap[i]->op->tag && !snap[i]->op->nreduce && schedule_generic(c, s, snap[i]))
			return NULL;
	for (int i = 0; i < n; i++) {
		sch_stage *st = snap[i];
		if (!op_is(st, TAG_INJECTIVE) || st->attach != ATTACH_ROOT || st->nrel || st->scope != KILN_SCOPE_GLOBAL)
			continue;
		/* a GEMM convolution's NCHW view of its product (conv_as_gemm marks
		 * it), read by one elementwise stage (its bias and activation): read
		 * in place, not copied whole first; nothing else may be placed in it */
		sch_stage *r = only_consumer(s, st);
		bool inline_it = st->op->attr[1] == 1 && !st->is_output && !st->nann && r && !r->op->nreduce;
		for (int k = 0; k < s->nstage && inline_it; k++)
			inline_it = !(s->stages[k]->attach == ATTACH_AT && s->stages[k]->attach_stage == st);
		if (inline_it ? kiln_compute_inline(st) : schedule_injective(c, st))
			return NULL;
	}
	return s;
}
