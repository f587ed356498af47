/*
 * schedule.c — stages and the schedule primitives. Each primitive checks
 * its arguments first and leaves the schedule untouched on misuse.
 */
#include <stdlib.h>
#include <string.h>

#include "ir/mutate.h"
#include "schedule.h"

#define GROW(ptr, n, cap, ctx)                                                                                      \
	do {                                                                                                             \
		if ((n) == (cap)) {                                                                                          \
			int nc_ = (cap) ? (cap) * 2 : 8;                                                                         \
			void *np_ = ir_alloc((ctx), sizeof(*(ptr)) * nc_);                                                       \
			if (n)                                                                                                   \
				memcpy(np_, (ptr), sizeof(*(ptr)) * (n));                                                            \
			(ptr) = np_;                                                                                             \
			(cap) = nc_;                                                                                             \
		}                                                                                                            \
	} while (0)

static const char *iname(const ir_iter *it) { return it->var->var.name; }

static sch_stage *new_stage(sch_schedule *s, ir_op *op, int nout, ir_tensor **outs)
{
	kiln_ctx *ctx = s->ctx;
	sch_stage *st = ir_alloc(ctx, sizeof *st);
	st->s = s;
	st->op = op;
	st->nout = nout;
	st->outs = ir_alloc(ctx, sizeof(ir_tensor *) * nout);
	memcpy(st->outs, outs, sizeof(ir_tensor *) * nout);
	st->nroot = op->naxis + op->nreduce;
	st->root = ir_alloc(ctx, sizeof(ir_iter *) * (st->nroot ? st->nroot : 1));
	for (int i = 0; i < op->naxis; i++)
		st->root[i] = op->axis[i];
	for (int i = 0; i < op->nreduce; i++)
		st->root[op->naxis + i] = op->reduce[i];
	for (int i = 0; i < st->nroot; i++) {
		GROW(st->leaf, st->nleaf, st->leafcap, ctx);
		st->leaf[st->nleaf++] = st->root[i];
	}
	return st;
}

static int find_stage_index(sch_schedule *s, sch_stage *st)
{
	for (int i = 0; i < s->nstage; i++)
		if (s->stages[i] == st)
			return i;
	return -1;
}

static void insert_stage(sch_schedule *s, int at, sch_stage *st)
{
	GROW(s->stages, s->nstage, s->stagecap, s->ctx);
	memmove(s->stages + at + 1, s->stages + at, sizeof(sch_stage *) * (s->nstage - at));
	s->stages[at] = st;
	s->nstage++;
}

/* Post-order walk so that producers come before consumers. */
static void collect(sch_schedule *s, ir_op *op)
{
	if (op->kind != IR_OP_COMPUTE)
		return;
	for (int i = 0; i < s->nstage; i++)
		if (s->stages[i]->op == op)
			return;
	ir_tensor **ts = NULL;
	int n = 0, cap = 0;
	for (int i = 0; i < op->nout; i++)
		ir_expr_tensors(op->body[i], &ts, &n, &cap);
	for (int i = 0; i < n; i++)
		collect(s, ts[i]->op);
	free(ts);
	insert_stage(s, s->nstage, new_stage(s, op, op->nout, op->outs));
}

kiln_schedule *kiln_schedule_create(kiln_ctx *ctx, int nout, kiln_tensor *const *outs)
{
	if (nout < 1)
		return ir_error(ctx, "schedule: no output tensors"), NULL;
	sch_schedule *s = ir_alloc(ctx, sizeof *s);
	s->ctx = ctx;
	s->nout = nout;
	s->outs = ir_alloc(ctx, sizeof(ir_tensor *) * nout);
	for (int i = 0; i < nout; i++) {
		if (!outs[i])
			return ir_error(ctx, "schedule: output %d is NULL", i), NULL;
		if (outs[i]->op->kind != IR_OP_COMPUTE)
			return ir_error(ctx, "schedule: output '%s' is a placeholder, not a compute", outs[i]->name), NULL;
		s->outs[i] = outs[i];
		collect(s, outs[i]->op);
	}
	for (int i = 0; i < nout; i++)
		sch_stage_of(s, outs[i])->is_output = true;
	return s;
}

sch_stage *sch_stage_of(sch_schedule *s, const ir_tensor *t)
{
	for (int i = 0; i < s->nstage; i++)
		for (int k = 0; k < s->stages[i]->nout; k++)
			if (s->stages[i]->outs[k] == t)
				return s->stages[i];
	return NULL;
}

kiln_stage *kiln_stage_of(kiln_schedule *s, kiln_tensor *t)
{
	if (!t)
		return NULL;
	sch_stage *st = sch_stage_of(s, t);
	if (!st)
		ir_error(s->ctx, "schedule: tensor '%s' has no stage here (a placeholder, or not part of this schedule)",
		         t->name);
	return st;
}

kiln_iter *kiln_stage_axis(kiln_stage *st, int i)
{
	if (!st)
		return NULL;
	if (i < 0 || i >= st->op->naxis)
		return ir_error(st->s->ctx, "stage '%s' has %d axes; asked for axis %d", st->op->name, st->op->naxis, i), NULL;
	return st->op->axis[i];
}

kiln_iter *kiln_stage_reduce_axis(kiln_stage *st, int i)
{
	if (!st)
		return NULL;
	if (i < 0 || i >= st->op->nreduce)
		return ir_error(st->s->ctx, "stage '%s' has %d reduction axes; asked for %d", st->op->name, st->op->nreduce,
		                i), NULL;
	return st->op->reduce[i];
}

int kiln_stage_leaves(kiln_stage *st, kiln_iter ***leaves)
{
	*leaves = st->leaf;
	return st->nleaf;
}

/* Position of it among the stage's leaves, or an error naming the misuse. */
static int leaf_index(sch_stage *st, ir_iter *it, const char *prim)
{
	if (!it)
		return ir_error(st->s->ctx, "%s: axis is NULL", prim);
	for (int i = 0; i < st->nleaf; i++)
		if (st->leaf[i] == it)
			return i;
	for (int i = 0; i < st->nrel; i++)
		if (st->rel[i].parent == it || (st->rel[i].kind == REL_FUSE && (st->rel[i].outer == it || st->rel[i].inner == it)))
			return ir_error(st->s->ctx, "%s: axis '%s' of stage '%s' was already split or fused; use its parts",
			                prim, iname(it), st->op->name);
	for (int i = 0; i < st->s->nstage; i++) {
		sch_stage *o = st->s->stages[i];
		for (int k = 0; k < o->nleaf; k++)
			if (o->leaf[k] == it)
				return ir_error(st->s->ctx, "%s: axis '%s' belongs to stage '%s', not to stage '%s'", prim,
				                iname(it), o->op->name, st->op->name);
	}
	return ir_error(st->s->ctx, "%s: axis '%s' is not an axis of stage '%s'", prim, iname(it), st->op->name);
}

static int check_stage(sch_stage *st, const char *prim)
{
	if (!st)
		return -1;
	if (st->attach == ATTACH_INLINE)
		return ir_error(st->s->ctx, "%s: stage '%s' is inlined and has no loops", prim, st->op->name);
	return 0;
}

static int do_split(kiln_stage *st, kiln_iter *it, int64_t factor, bool nparts, kiln_iter **outer, kiln_iter **inner)
{
	const char *prim = nparts ? "split_nparts" : "split";
	if (check_stage(st, prim))
		return -1;
	kiln_ctx *ctx = st->s->ctx;
	int pos = leaf_index(st, it, prim);
	if (pos < 0)
		return -1;
	if (factor <= 0)
		return ir_error(ctx, "%s: %s %lld of axis '%s' must be positive", prim, nparts ? "nparts" : "factor",
		                (long long)factor, iname(it));
	/* nominal extents, from the full domain, for heuristics and users; lowering
	 * derives the real ones from each stage's inferred region (never larger).
	 * A factor past the extent is clamped to it: one tile, the same loop nest,
	 * without a 2^40-iteration guarded loop or an overflowing (e + factor - 1). */
	int64_t e = it->extent;
	if (e > 0 && factor > e)
		factor = e;
	int64_t other = (e + factor - 1) / factor;
	ir_iter *o = ir_iter_new(ctx, ir_fmt(ctx, "%s.outer", iname(it)), 0, nparts ? factor : other, it->reduce);
	ir_iter *i = ir_iter_new(ctx, ir_fmt(ctx, "%s.inner", iname(it)), 0, nparts ? other : factor, it->reduce);
	GROW(st->rel, st->nrel, st->relcap, ctx);
	st->rel[st->nrel++] = (sch_rel){REL_SPLIT, it, o, i, NULL, factor, nparts};
	GROW(st->leaf, st->nleaf, st->leafcap, ctx);
	memmove(st->leaf + pos + 2, st->leaf + pos + 1, sizeof(ir_iter *) * (st->nleaf - pos - 1));
	st->leaf[pos] = o;
	st->leaf[pos + 1] = i;
	st->nleaf++;
	if (outer)
		*outer = o;
	if (inner)
		*inner = i;
	return 0;
}

int kiln_split(kiln_stage *st, kiln_iter *it, int64_t factor, kiln_iter **outer, kiln_iter **inner)
{
	return do_split(st, it, factor, false, outer, inner);
}

int kiln_split_nparts(kiln_stage *st, kiln_iter *it, int64_t nparts, kiln_iter **outer, kiln_iter **inner)
{
	return do_split(st, it, nparts, true, outer, inner);
}

int kiln_fuse(kiln_stage *st, kiln_iter *outer, kiln_iter *inner, kiln_iter **fused)
{
	if (check_stage(st, "fuse"))
		return -1;
	kiln_ctx *ctx = st->s->ctx;
	int po = leaf_index(st, outer, "fuse"), pi = po < 0 ? -1 : leaf_index(st, inner, "fuse");
	if (po < 0 || pi < 0)
		return -1;
	if (pi != po + 1)
		return ir_error(ctx, "fuse: '%s' and '%s' are not adjacent with '%s' outside (reorder them first)",
		                iname(outer), iname(inner), iname(outer));
	if (outer->reduce != inner->reduce)
		return ir_error(ctx, "fuse: cannot fuse a reduction axis with a data-parallel axis ('%s', '%s')",
		                iname(outer), iname(inner));
	ir_iter *f = ir_iter_new(ctx, ir_fmt(ctx, "%s.%s.fused", iname(outer), iname(inner)), 0,
	                         outer->extent * inner->extent, outer->reduce);
	GROW(st->rel, st->nrel, st->relcap, ctx);
	st->rel[st->nrel++] = (sch_rel){REL_FUSE, NULL, outer, inner, f, 0, false};
	st->leaf[po] = f;
	memmove(st->leaf + pi, st->leaf + pi + 1, sizeof(ir_iter *) * (st->nleaf - pi - 1));
	st->nleaf--;
	if (fused)
		*fused = f;
	return 0;
}

/* The given axes take, in the given order, the positions they held. */
int kiln_reorder(kiln_stage *st, int n, kiln_iter *const *order)
{
	if (check_stage(st, "reorder"))
		return -1;
	kiln_ctx *ctx = st->s->ctx;
	int pos[64];
	if (n < 1 || n > 64)
		return ir_error(ctx, "reorder: %d axes given", n);
	for (int i = 0; i < n; i++) {
		if ((pos[i] = leaf_index(st, order[i], "reorder")) < 0)
			return -1;
		for (int k = 0; k < i; k++)
			if (order[k] == order[i])
				return ir_error(ctx, "reorder: axis '%s' appears twice", iname(order[i]));
	}
	int sorted[64];
	memcpy(sorted, pos, sizeof(int) * n);
	for (int i = 1; i < n; i++)
		for (int k = i; k > 0 && sorted[k - 1] > sorted[k]; k--) {
			int t = sorted[k];
			sorted[k] = sorted[k - 1];
			sorted[k - 1] = t;
		}
	for (int i = 0; i < n; i++)
		st->leaf[sorted[i]] = order[i];
	return 0;
}

int kiln_tile(kiln_stage *st, kiln_iter *x, kiln_iter *y, int64_t fx, int64_t fy, kiln_iter **xo, kiln_iter **yo,
              kiln_iter **xi, kiln_iter **yi)
{
	ir_iter *a, *b, *c, *d;
	if (kiln_split(st, x, fx, &a, &b) || kiln_split(st, y, fy, &c, &d) ||
	    kiln_reorder(st, 4, (ir_iter *[]){a, c, b, d}))
		return -1;
	if (xo) *xo = a;
	if (yo) *yo = c;
	if (xi) *xi = b;
	if (yi) *yi = d;
	return 0;
}

static int annotate(kiln_stage *st, kiln_iter *it, ir_for_kind kind, kiln_thread thread, const char *prim)
{
	if (check_stage(st, prim))
		return -1;
	if (leaf_index(st, it, prim) < 0)
		return -1;
	kiln_ctx *ctx = st->s->ctx;
	if (kind == IR_FOR_PARALLEL && it->reduce)
		return ir_error(ctx, "parallel: '%s' is a reduction axis; parallel updates would race (use rfactor)",
		                iname(it));
	if (kind == IR_FOR_THREAD && it->reduce)
		return ir_error(ctx, "bind: '%s' is a reduction axis (use rfactor first)", iname(it));
	if (kind == IR_FOR_VECTORIZED && it->reduce)
		return ir_error(ctx, "vectorize: '%s' is a reduction axis; vectorize a data-parallel axis (or rfactor)",
		                iname(it));
	for (int i = 0; i < st->nann; i++)
		if (st->ann[i].iv == it) {
			st->ann[i].kind = kind;
			st->ann[i].thread = thread;
			return 0;
		}
	if (thread != KILN_THREAD_NONE)
		for (int i = 0; i < st->nann; i++)
			if (st->ann[i].thread == thread)
				return ir_error(ctx, "bind: stage '%s' already binds '%s' to the same thread index", st->op->name,
				                iname(st->ann[i].iv));
	GROW(st->ann, st->nann, st->anncap, ctx);
	st->ann[st->nann++] = (sch_ann){it, kind, thread};
	return 0;
}

int kiln_vectorize(kiln_stage *st, kiln_iter *it) { return annotate(st, it, IR_FOR_VECTORIZED, 0, "vectorize"); }
int kiln_unroll(kiln_stage *st, kiln_iter *it) { return annotate(st, it, IR_FOR_UNROLLED, 0, "unroll"); }
int kiln_parallel(kiln_stage *st, kiln_iter *it) { return annotate(st, it, IR_FOR_PARALLEL, 0, "parallel"); }

int kiln_bind(kiln_stage *st, kiln_iter *it, kiln_thread thread)
{
	if (st && (thread < KILN_BLOCK_X || thread > KILN_VTHREAD_Z))
		return ir_error(st->s->ctx, "bind: %d is not a thread index", (int)thread);
	return annotate(st, it, IR_FOR_THREAD, thread, "bind");
}

sch_ann sch_annotation(const sch_stage *st, const ir_iter *it)
{
	for (int i = 0; i < st->nann; i++)
		if (st->ann[i].iv == it)
			return st->ann[i];
	return (sch_ann){(ir_iter *)it, IR_FOR_SERIAL, KILN_THREAD_NONE};
}

/* ---- dataflow questions ---- */

static bool reads_rec(const sch_schedule *s, const ir_expr *body, const ir_tensor *t, int depth)
{
	ir_tensor **ts = NULL;
	int n = 0, cap = 0;
	ir_expr_tensors(body, &ts, &n, &cap);
	bool found = false;
	for (int i = 0; i < n && !found; i++) {
		if (ts[i] == t) {
			found = true;
			break;
		}
		sch_stage *p = sch_stage_of((sch_schedule *)s, ts[i]);
		if (p && p->attach == ATTACH_INLINE && depth < 64)
			for (int k = 0; k < p->op->nout && !found; k++)
				found = reads_rec(s, p->op->body[k], t, depth + 1);
	}
	free(ts);
	return found;
}

bool sch_reads(const sch_stage *st, const ir_tensor *t)
{
	for (int k = 0; k < st->op->nout; k++)
		if (reads_rec(st->s, st->op->body[k], t, 0))
			return true;
	return false;
}

static bool reads_stage(const sch_stage *c, const sch_stage *q)
{
	for (int k = 0; k < q->nout; k++)
		if (sch_reads(c, q->outs[k]))
			return true;
	return false;
}

/* Does c read p's outputs, directly or through other stages? (a search over what c reads, each stage visited
 * once: trying every path made a pooling over an input with two readers take minutes) */
static bool depends_on(const sch_stage *c, const sch_stage *p)
{
	const sch_schedule *s = c->s;
	bool *seen = calloc((size_t)s->nstage, sizeof *seen);
	const sch_stage **todo = calloc((size_t)s->nstage + 1, sizeof *todo);
	if (!seen || !todo) {
		free(seen), free(todo);
		return true; /* the cautious answer: compute_at refuses */
	}
	int n = 0;
	bool found = false;
	todo[n++] = c;
	while (n && !found) {
		const sch_stage *x = todo[--n];
		if (reads_stage(x, p)) {
			found = true;
			break;
		}
		for (int i = 0; i < s->nstage; i++) {
			const sch_stage *q = s->stages[i];
			if (!seen[i] && q != x && q != p && reads_stage(x, q)) {
				seen[i] = true;
				todo[n++] = q;
			}
		}
	}
	free(seen), free(todo);
	return found;
}

int kiln_compute_at(kiln_stage *st, kiln_stage *parent, kiln_iter *it)
{
	if (!st || !parent)
		return -1;
	kiln_ctx *ctx = st->s->ctx;
	if (st == parent)
		return ir_error(ctx, "compute_at: stage '%s' cannot be computed inside itself", st->op->name);
	if (st->is_output)
		return ir_error(ctx, "compute_at: '%s' is an output of the schedule; outputs stay at the root",
		                st->op->name);
	if (check_stage(parent, "compute_at") || leaf_index(parent, it, "compute_at") < 0)
		return -1;
	if (!depends_on(parent, st))
		return ir_error(ctx, "compute_at: stage '%s' does not read '%s', so '%s' cannot be computed inside it",
		                parent->op->name, st->outs[0]->name, st->outs[0]->name);
	for (sch_stage *a = parent; a; a = a->attach == ATTACH_AT ? a->attach_stage : NULL)
		if (a == st)
			return ir_error(ctx, "compute_at: '%s' is already computed inside '%s'", parent->op->name, st->op->name);
	st->attach = ATTACH_AT;
	st->attach_stage = parent;
	st->attach_iv = it;
	return 0;
}

/* Reads of inlined stages become their bodies, with the axes set to the read's indices. */
typedef struct {
	ir_mutator m;
	sch_schedule *s;
	int depth;
} inliner;

static ir_expr *inline_expr(ir_mutator *m, ir_expr *e)
{
	inliner *in = (inliner *)m;
	ir_expr *r = ir_mutate_expr_children(m, e);
	if (r->kind != IR_READ)
		return r;
	sch_stage *p = sch_stage_of(in->s, r->read.t);
	if (!p || p->attach != ATTACH_INLINE || in->depth > 64)
		return r;
	ir_expr *vars[KILN_MAX_DIMS];
	for (int d = 0; d < p->op->naxis; d++)
		vars[d] = p->op->axis[d]->var;
	ir_expr *body = ir_substitute(m->ctx, p->op->body[r->read.t->value_index], p->op->naxis, vars, r->read.idx);
	in->depth++; /* the body may read inlined stages itself */
	body = ir_mutate_expr(m, body);
	in->depth--;
	return body;
}

ir_expr *sch_expand_inline(sch_schedule *s, ir_expr *e)
{
	inliner in = {{s->ctx, inline_expr, NULL, NULL}, s, 0};
	return ir_mutate_expr(&in.m, e);
}

/*
 * Inlining rewrites the readers' bodies at once (lowering expands what is
 * left, e.g. a cache stage made later), so that later primitives see what
 * the readers really read: cache_read of the tensor behind an inlined layout
 * change (matmul's packed B) then works.
 */
static void inline_into_readers(sch_stage *st)
{
	sch_schedule *s = st->s;
	for (int i = 0; i < s->nstage; i++) {
		sch_stage *c = s->stages[i];
		if (c == st)
			continue;
		bool reads = false;
		for (int k = 0; k < st->nout; k++)
			for (int b = 0; b < c->op->nout; b++)
				reads |= reads_rec(s, c->op->body[b], st->outs[k], 64);
		if (!reads)
			continue;
		ir_op *nop = ir_alloc(s->ctx, sizeof *nop);
		*nop = *c->op;
		nop->body = ir_alloc(s->ctx, sizeof(ir_expr *) * c->op->nout);
		for (int b = 0; b < c->op->nout; b++)
			nop->body[b] = sch_expand_inline(s, c->op->body[b]);
		if (nop->nreduce)
			nop->reduce = nop->body[0]->red.axis;
		c->op = nop;
	}
}

int kiln_compute_inline(kiln_stage *st)
{
	if (!st)
		return -1;
	kiln_ctx *ctx = st->s->ctx;
	if (st->is_output)
		return ir_error(ctx, "compute_inline: '%s' is an output of the schedule", st->op->name);
	if (st->op->nreduce)
		return ir_error(ctx, "compute_inline: '%s' is a reduction; only elementwise stages can be inlined",
		                st->op->name);
	if (st->nrel || st->nann)
		return ir_error(ctx, "compute_inline: stage '%s' has been split or annotated; its loops would be lost",
		                st->op->name);
	for (int i = 0; i < st->s->nstage; i++) {
		sch_stage *o = st->s->stages[i];
		if (o->attach == ATTACH_AT && o->attach_stage == st)
			return ir_error(ctx, "compute_inline: stage '%s' is computed inside '%s'", o->op->name, st->op->name);
	}
	st->attach = ATTACH_INLINE;
	inline_into_readers(st);
	return 0;
}

int kiln_compute_root(kiln_stage *st)
{
	if (!st)
		return -1;
	st->attach = ATTACH_ROOT;
	st->attach_stage = NULL;
	st->attach_iv = NULL;
	return 0;
}

int kiln_set_scope(kiln_stage *st, kiln_scope scope)
{
	if (!st)
		return -1;
	if (st->is_output && scope != KILN_SCOPE_GLOBAL)
		return ir_error(st->s->ctx, "set_scope: output '%s' must stay in global memory", st->op->name);
	st->scope = scope;
	return 0;
}

int kiln_storage_order(kiln_stage *st, int n, const int *dims)
{
	if (!st)
		return -1;
	kiln_ctx *ctx = st->s->ctx;
	int ndim = st->outs[0]->ndim;
	if (st->is_output)
		return ir_error(ctx, "storage_order: output '%s' keeps the caller's row-major layout", st->op->name);
	if (n != ndim || !dims)
		return ir_error(ctx, "storage_order: stage '%s' has %d dimensions but %d were given", st->op->name, ndim, n);
	bool seen[KILN_MAX_DIMS] = {false};
	for (int i = 0; i < n; i++) {
		if (dims[i] < 0 || dims[i] >= ndim || seen[dims[i]])
			return ir_error(ctx, "storage_order: dimension %d at position %d of stage '%s' is out of range or repeated "
			                     "(give a permutation of 0..%d)",
			                dims[i], i, st->op->name, ndim - 1);
		seen[dims[i]] = true;
	}
	st->storage = ir_alloc(ctx, sizeof(int) * n);
	memcpy(st->storage, dims, sizeof(int) * n);
	return 0;
}

int kiln_storage_align(kiln_stage *st, int dim, int64_t factor, int64_t offset)
{
	if (!st)
		return -1;
	kiln_ctx *ctx = st->s->ctx;
	int ndim = st->outs[0]->ndim;
	if (st->is_output)
		return ir_error(ctx, "storage_align: output '%s' keeps the caller's row-major layout", st->op->name);
	if (dim < 0 || dim >= ndim)
		return ir_error(ctx, "storage_align: stage '%s' has no dimension %d (it has %d)", st->op->name, dim, ndim);
	if (factor < 1 || factor > 4096 || offset < 0 || offset >= factor)
		return ir_error(ctx, "storage_align: factor %lld and offset %lld (want 1 <= factor <= 4096, 0 <= offset < factor)",
		                (long long)factor, (long long)offset);
	int innermost = st->storage ? st->storage[ndim - 1] : ndim - 1;
	if (dim == innermost)
		return ir_error(ctx, "storage_align: dimension %d of stage '%s' is innermost in storage (stride 1); align an "
		                     "outer one", dim, st->op->name);
	st->align_factor[dim] = factor;
	st->align_offset[dim] = offset;
	return 0;
}

int kiln_double_buffer(kiln_stage *st)
{
	if (!st)
		return -1;
	if (st->is_output)
		return ir_error(st->s->ctx, "double_buffer: output '%s' is not a shared-memory stage", st->op->name);
	st->double_buffer = true;
	return 0;
}

/* ---- stages that add stages ---- */

/* A fresh compute op whose bodies read src's element at its own axes. */
/* A stage copying src; its axes take the names of like's (the op it replaces), else i, j, l, ... */
static ir_op *copy_op(kiln_ctx *ctx, const char *name, ir_tensor *src, const ir_op *like)
{
	ir_iter **axis = ir_alloc(ctx, sizeof(ir_iter *) * (src->ndim ? src->ndim : 1));
	ir_expr *idx[KILN_MAX_DIMS];
	static const char *n[KILN_MAX_DIMS] = {"i", "j", "l", "m", "n", "o", "p", "q"};
	for (int d = 0; d < src->ndim; d++) {
		const char *an = like && like->naxis == src->ndim ? iname(like->axis[d]) : n[d];
		axis[d] = ir_iter_new(ctx, an, 0, src->shape[d], false);
		idx[d] = axis[d]->var;
	}
	ir_expr *body = ir_read(ctx, src, idx);
	return ir_compute_op(ctx, name, src->ndim, axis, 1, &body, NULL);
}

static const char *scope_suffix(kiln_scope s) { return s == KILN_SCOPE_SHARED ? "shared" : s == KILN_SCOPE_LOCAL ? "local" : "global"; }

kiln_tensor *kiln_cache_read(kiln_schedule *s, kiln_tensor *t, kiln_scope scope, int nreaders,
                             kiln_stage *const *readers)
{
	kiln_ctx *ctx = s->ctx;
	if (!t)
		return NULL;
	if (nreaders < 1)
		return ir_error(ctx, "cache_read: no reader stages given for '%s'", t->name), NULL;
	for (int i = 0; i < nreaders; i++) {
		if (!readers[i])
			return NULL;
		bool direct = false;
		for (int k = 0; k < readers[i]->op->nout; k++)
			direct |= reads_rec(s, readers[i]->op->body[k], t, 64);
		if (!direct)
			return ir_error(ctx, "cache_read: stage '%s' does not read '%s'", readers[i]->op->name, t->name), NULL;
	}
	ir_op *op = copy_op(ctx, ir_fmt(ctx, "%s.%s", t->name, scope_suffix(scope)), t, t->op->kind == IR_OP_COMPUTE ? t->op : NULL);
	sch_stage *cs = new_stage(s, op, 1, op->outs);
	cs->scope = scope;
	/* readers now read the cache: rebuild their bodies over the same axes */
	int first = s->nstage;
	for (int i = 0; i < nreaders; i++) {
		sch_stage *r = readers[i];
		ir_expr **body = ir_alloc(ctx, sizeof(ir_expr *) * r->op->nout);
		for (int k = 0; k < r->op->nout; k++)
			body[k] = ir_replace_tensor(ctx, r->op->body[k], t, op->outs[0]);
		ir_op *nop = ir_alloc(ctx, sizeof *nop);
		*nop = *r->op;
		nop->body = body;
		if (nop->nreduce) { /* the reduce node carries the axes; the op mirrors it */
			nop->reduce = body[0]->red.axis;
		}
		r->op = nop;
		int idx = find_stage_index(s, r);
		first = idx < first ? idx : first;
	}
	sch_stage *producer = sch_stage_of(s, t);
	int at = producer ? find_stage_index(s, producer) + 1 : 0;
	insert_stage(s, at > first ? at : first, cs);
	return op->outs[0];
}

kiln_tensor *kiln_cache_write(kiln_schedule *s, kiln_tensor *t, kiln_scope scope)
{
	kiln_ctx *ctx = s->ctx;
	sch_stage *st = kiln_stage_of(s, t);
	if (!st)
		return NULL;
	if (st->op->nout != 1)
		return ir_error(ctx, "cache_write: '%s' has several outputs; cache_write takes a single-output stage",
		                t->name), NULL;
	if (st->nrel || st->nann || st->attach != ATTACH_ROOT)
		return ir_error(ctx, "cache_write: apply it to '%s' before any other primitive on its stage", t->name), NULL;
	/* the cache stage takes over the original computation (same axes, same body) */
	ir_op *orig = st->op;
	ir_op *lop = ir_alloc(ctx, sizeof *lop);
	*lop = *orig;
	lop->name = ir_fmt(ctx, "%s.%s", t->name, scope_suffix(scope));
	lop->outs = ir_alloc(ctx, sizeof(ir_tensor *));
	ir_tensor *lt = ir_alloc(ctx, sizeof *lt);
	*lt = *t;
	lt->name = lop->name;
	lt->op = lop;
	lt->value_index = 0;
	lop->outs[0] = lt;
	sch_stage *ls = new_stage(s, lop, 1, lop->outs);
	ls->scope = scope;
	/* t's own stage becomes a copy out of the cache */
	ir_op *cop = copy_op(ctx, t->name, lt, orig);
	sch_stage *fresh = new_stage(s, cop, 1, (ir_tensor *[]){t});
	st->op = fresh->op;
	st->nroot = fresh->nroot;
	st->root = fresh->root;
	st->nleaf = fresh->nleaf;
	st->leafcap = fresh->leafcap;
	st->leaf = fresh->leaf;
	insert_stage(s, find_stage_index(s, st), ls);
	return lt;
}

kiln_tensor *kiln_rfactor(kiln_schedule *s, kiln_tensor *t, kiln_iter *it)
{
	kiln_ctx *ctx = s->ctx;
	sch_stage *st = kiln_stage_of(s, t);
	if (!st || check_stage(st, "rfactor") || leaf_index(st, it, "rfactor") < 0)
		return NULL;
	if (!it->reduce)
		return ir_error(ctx, "rfactor: '%s' is not a reduction axis", iname(it)), NULL;
	if (st->op->nout != 1)
		return ir_error(ctx, "rfactor: '%s' has several outputs", t->name), NULL;
	ir_expr *red = st->op->body[0];
	/* Find how it relates to a root reduce axis: itself, or one part of a split of it. */
	ir_iter *root = it, *other = NULL;
	sch_rel *rel = NULL;
	for (int i = 0; i < st->nrel; i++) {
		sch_rel *r = &st->rel[i];
		if (r->kind == REL_SPLIT && (r->outer == it || r->inner == it)) {
			rel = r;
			root = r->parent;
			other = r->outer == it ? r->inner : r->outer;
		} else if (r->kind == REL_FUSE && r->fused == it) {
			return ir_error(ctx, "rfactor: '%s' is fused; rfactor a split part of one root axis", iname(it)), NULL;
		}
	}
	bool is_root = false;
	for (int i = 0; i < red->red.naxis; i++)
		is_root |= red->red.axis[i] == root;
	if (!is_root || (rel && (rel->kind != REL_SPLIT || st->nrel > 1)))
		return ir_error(ctx, "rfactor: '%s' must be a root reduction axis or one part of a single split of one",
		                iname(it)), NULL;
	int64_t K = root->extent, f = 0, no = 0;
	if (rel) {
		f = rel->nparts ? (K + rel->factor - 1) / rel->factor : rel->factor; /* inner extent */
		no = (K + f - 1) / f;
	}
	/* rf[r, axes...] = reduce over the remaining reduce axes of the source */
	ir_iter *rax = ir_iter_new(ctx, ir_fmt(ctx, "%s.rf", iname(it)), 0, rel ? (it == rel->outer ? no : f) : K, false);
	int nax = st->op->naxis + 1;
	ir_iter **axis = ir_alloc(ctx, sizeof(ir_iter *) * nax);
	axis[0] = rax;
	/* axes of its own: computed at a loop of t, the partial sums would
	 * otherwise nest a loop over the very variable of the loop around them */
	ir_expr *tvars[KILN_MAX_DIMS + 1], *rvars[KILN_MAX_DIMS + 1];
	for (int d = 0; d < st->op->naxis; d++) {
		ir_iter *a = st->op->axis[d];
		axis[d + 1] = ir_iter_new(ctx, iname(a), a->min, a->extent, false);
		tvars[d] = a->var;
		rvars[d] = axis[d + 1]->var;
	}
	ir_iter *rest[KILN_MAX_DIMS + 2];
	int nrest = 0;
	ir_expr *kval;
	ir_iter *oth = NULL;
	if (rel) {
		oth = ir_iter_new(ctx, iname(other), 0, it == rel->outer ? f : no, true);
		ir_expr *o = it == rel->outer ? rax->var : oth->var, *in = it == rel->outer ? oth->var : rax->var;
		kval = ir_add(ctx, ir_mul(ctx, o, ir_i64(ctx, f)), in);
	} else {
		kval = rax->var;
	}
	for (int i = 0; i < red->red.naxis; i++)
		if (red->red.axis[i] == root) {
			if (oth)
				rest[nrest++] = oth;
		} else {
			rest[nrest++] = red->red.axis[i];
		}
	tvars[st->op->naxis] = root->var;
	rvars[st->op->naxis] = kval;
	ir_expr *src = ir_substitute(ctx, red->red.src, st->op->naxis + 1, tvars, rvars);
	ir_expr *cond = red->red.cond ? ir_substitute(ctx, red->red.cond, st->op->naxis + 1, tvars, rvars) : NULL;
	if (rel && K % f) {
		ir_expr *in_range = ir_lt(ctx, kval, ir_i64(ctx, K));
		cond = cond ? ir_binary(ctx, IR_AND, cond, in_range) : in_range;
	}
	ir_expr *rbody = nrest ? ir_reduce(ctx, red->red.op, src, nrest, rest, cond)
	                       : (cond ? ir_select(ctx, cond, src, ir_reduce_identity(ctx, red->red.op, src->type)) : src);
	ir_op *rop = ir_compute_op(ctx, ir_fmt(ctx, "%s.rf", t->name), nax, axis, 1, &rbody, NULL);
	if (!rop)
		return NULL;
	sch_stage *rs = new_stage(s, rop, 1, rop->outs);
	/* t now reduces the new leading axis */
	ir_iter *kr = ir_iter_new(ctx, ir_fmt(ctx, "%s.v", iname(it)), 0, rax->extent, true);
	ir_expr *idx[KILN_MAX_DIMS];
	idx[0] = kr->var;
	for (int d = 0; d < st->op->naxis; d++)
		idx[d + 1] = st->op->axis[d]->var;
	ir_expr *nbody = ir_reduce(ctx, red->red.op, ir_read(ctx, rop->outs[0], idx), 1, &kr, NULL);
	ir_op *nop = ir_compute_op(ctx, st->op->name, st->op->naxis, st->op->axis, 1, &nbody, (const char *[]){t->name});
	if (!nop)
		return NULL;
	nop->outs[0] = t;
	sch_stage *fresh = new_stage(s, nop, 1, (ir_tensor *[]){t});
	st->op = nop;
	st->nroot = fresh->nroot;
	st->root = fresh->root;
	st->nleaf = fresh->nleaf;
	st->leafcap = fresh->leafcap;
	st->leaf = fresh->leaf;
	st->nrel = 0;
	st->nann = 0;
	insert_stage(s, find_stage_index(s, st), rs);
	return rop->outs[0];
}

/* ---- iteration structure ---- */

int64_t sch_extent(sch_stage *st, ir_iter *it, const int64_t *root_ext)
{
	for (int i = 0; i < st->nroot; i++)
		if (st->root[i] == it)
			return root_ext[i];
	for (int i = 0; i < st->nrel; i++) {
		sch_rel *r = &st->rel[i];
		if (r->kind == REL_SPLIT && (r->outer == it || r->inner == it)) {
			int64_t e = sch_extent(st, r->parent, root_ext);
			int64_t other = (e + r->factor - 1) / r->factor;
			if (r->nparts)
				return it == r->outer ? r->factor : other;
			return it == r->inner ? r->factor : other;
		}
		if (r->kind == REL_FUSE && r->fused == it)
			return sch_extent(st, r->outer, root_ext) * sch_extent(st, r->inner, root_ext);
	}
	ir_internal_error(__FILE__, __LINE__, "iterator not in stage");
}

typedef struct {
	ir_iter *iv;
	ir_expr *val;
} ival_pair;

static ir_expr *lookup(ival_pair *v, int n, ir_iter *it)
{
	for (int i = 0; i < n; i++)
		if (v[i].iv == it)
			return v[i].val;
	return NULL;
}

/*
 * Walks the relations backwards from leaf variables to root values. Where a
 * split does not divide its parent's extent, a pure stage shifts its last
 * tile inwards and a reduction stage gets a guard.
 */
int sch_make_nest(sch_stage *st, const int64_t *root_ext, sch_nest *out)
{
	kiln_ctx *ctx = st->s->ctx;
	int cap = st->nleaf + 3 * st->nrel + st->nroot;
	ival_pair *v = calloc(cap, sizeof *v);
	int n = 0;
	out->leaf_ext = ir_alloc(ctx, sizeof(int64_t) * (st->nleaf ? st->nleaf : 1));
	for (int i = 0; i < st->nleaf; i++) {
		v[n++] = (ival_pair){st->leaf[i], st->leaf[i]->var};
		out->leaf_ext[i] = sch_extent(st, st->leaf[i], root_ext);
	}
	out->guard = ir_alloc(ctx, sizeof(ir_expr *) * (st->nrel ? st->nrel : 1));
	bool pure = st->op->nreduce == 0;
	out->nguard = 0;
	for (int i = st->nrel - 1; i >= 0; i--) {
		sch_rel *r = &st->rel[i];
		if (r->kind == REL_SPLIT) {
			ir_expr *o = lookup(v, n, r->outer), *in = lookup(v, n, r->inner);
			ir_assert(o && in);
			int64_t e = sch_extent(st, r->parent, root_ext);
			int64_t ie = sch_extent(st, r->inner, root_ext), oe = sch_extent(st, r->outer, root_ext);
			ir_expr *start = ir_mul(ctx, o, ir_i64(ctx, ie));
			if (ie * oe != e && pure && e >= ie) {
				/* Halide's shift-inwards: the last tile moves back to end at e and
				 * recomputes a few elements, which is harmless for a pure stage and
				 * keeps the inner loop free of guards (so it stays vectorizable) */
				start = ir_binary(ctx, IR_MIN, start, ir_i64(ctx, e - ie));
			}
			ir_expr *pv = ir_add(ctx, start, in);
			v[n++] = (ival_pair){r->parent, pv};
			if (ie * oe != e && !(pure && e >= ie))
				out->guard[out->nguard++] = ir_lt(ctx, pv, ir_i64(ctx, e));
		} else {
			ir_expr *fv = lookup(v, n, r->fused);
			ir_assert(fv);
			int64_t ie = sch_extent(st, r->inner, root_ext);
			v[n++] = (ival_pair){r->outer, ir_div(ctx, fv, ir_i64(ctx, ie))};
			v[n++] = (ival_pair){r->inner, ir_mod(ctx, fv, ir_i64(ctx, ie))};
		}
	}
	out->root_val = ir_alloc(ctx, sizeof(ir_expr *) * (st->nroot ? st->nroot : 1));
	for (int i = 0; i < st->nroot; i++) {
		out->root_val[i] = lookup(v, n, st->root[i]);
		ir_assert(out->root_val[i]);
	}
	free(v);
	return 0;
}
