/*
 * feature.c — what the cost model sees of a candidate: numbers read off
 * its lowered function (after unrolling and vectorizing, what code
 * generation gets), as AutoTVM's iteration-variable features.
 *
 * The statements that do the work are the stores of the innermost loop
 * body that runs the most (a matmul's FMAs, not its packing or its
 * copy-out). For that loop nest, innermost loop first, each loop gives its
 * extent and annotation, and each buffer the stores touch its stride along
 * the loop (from the affine coefficient of the loop variable in the index),
 * the bytes it touches inside the loop and how often each is reused there:
 * which is what decides whether a configuration is cache- and
 * register-friendly. Whole-function totals follow.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "kiln/tune.h"

#define LEVELS 6  /* loops described, innermost first */
#define SLOTS 3   /* buffers described: the store's, then the first two others read */
#define MAX_DEPTH 32
#define MAX_ACC 16
#define PER_LEVEL (1 + 5 + 3 * SLOTS)
#define GLOBALS (KILN_TUNE_FEATURES - LEVELS * PER_LEVEL)

typedef struct {
	const ir_expr *var;
	int64_t extent;
	ir_for_kind kind;
} loop;

typedef struct {
	const ir_buffer *buf;
	const ir_expr *index;
	int lanes;
	bool store;
} access;

/* The loop nest of one innermost body and what its stores touch. */
typedef struct {
	const ir_stmt *key; /* the innermost loop (NULL: none) */
	int depth;
	loop loops[MAX_DEPTH];
	int nacc;
	access acc[MAX_ACC];
	int nstore, nload, bcast_loads, lanes;
	double iters, flops, bytes;
} group;

typedef struct {
	int depth;
	loop stack[MAX_DEPTH];
	group cur, best;
	double flops, loaded, stored, local_elems, par_extent;
	int npar, nloops, nifs, nstores, max_lanes;
	int64_t largest_global;
} walker;

static double log2p(double x) { return log2(1 + (x > 0 ? x : 0)); }

/* The coefficient of var in an index (0: independent); nonlinear uses count as 1. */
static int64_t coef(const ir_expr *e, const ir_expr *var, bool *nonlinear)
{
	if (!e)
		return 0;
	switch (e->kind) {
	case IR_VAR:
		return e == var || (e->var.id == var->var.id && e->var.name == var->var.name);
	case IR_ADD:
		return coef(e->bin.a, var, nonlinear) + coef(e->bin.b, var, nonlinear);
	case IR_SUB:
		return coef(e->bin.a, var, nonlinear) - coef(e->bin.b, var, nonlinear);
	case IR_MUL: {
		int64_t c;
		if (ir_is_const_int(e->bin.b, &c))
			return c * coef(e->bin.a, var, nonlinear);
		if (ir_is_const_int(e->bin.a, &c))
			return c * coef(e->bin.b, var, nonlinear);
		break;
	}
	case IR_DIV: {
		int64_t c, a = coef(e->bin.a, var, nonlinear);
		if (ir_is_const_int(e->bin.b, &c) && c > 0)
			return a / c ? a / c : (a != 0);
		break;
	}
	case IR_RAMP:
		return coef(e->ramp.base, var, nonlinear);
	case IR_BROADCAST:
		return coef(e->bcast.value, var, nonlinear);
	case IR_CAST:
		return coef(e->bin.a, var, nonlinear);
	case IR_INT_IMM:
	case IR_FLOAT_IMM:
		return 0;
	default:
		break;
	}
	/* min, max, mod, selects: depends on var if any part does (a load or let inside an index counts as
	 * independent: gathers are rare in the templates' hot loops) */
	bool any = false;
	if (ir_is_binary(e->kind))
		any = coef(e->bin.a, var, nonlinear) || coef(e->bin.b, var, nonlinear);
	else if (ir_is_select(e->kind))
		any = coef(e->sel.cond, var, nonlinear) || coef(e->sel.t, var, nonlinear) || coef(e->sel.f, var, nonlinear);
	if (any)
		*nonlinear = true;
	return any;
}

static void add_access(group *g, const ir_buffer *buf, const ir_expr *index, int lanes, bool store)
{
	for (int i = 0; i < g->nacc; i++)
		if (g->acc[i].buf == buf && g->acc[i].store == store)
			return;
	if (g->nacc < MAX_ACC)
		g->acc[g->nacc++] = (access){buf, index, lanes, store};
}

/* Arithmetic of a stored value (per lane), its loads recorded in g; index arithmetic is not counted. */
static double value_ops(walker *w, group *g, const ir_expr *e, double iters, bool under_bcast)
{
	if (!e)
		return 0;
	int lanes = e->type.lanes > 0 ? e->type.lanes : 1;
	switch (e->kind) {
	case IR_LOAD: {
		int ll = e->load.index->type.lanes > 0 ? e->load.index->type.lanes : 1;
		add_access(g, e->load.buf, e->load.index, ll, false);
		g->nload++;
		g->bcast_loads += under_bcast;
		w->loaded += iters * ll * (e->load.buf->elem.bits / 8.0);
		return 0;
	}
	case IR_BROADCAST:
		return value_ops(w, g, e->bcast.value, iters, true);
	case IR_RAMP:
	case IR_VAR:
	case IR_INT_IMM:
	case IR_FLOAT_IMM:
		return 0;
	case IR_CALL:
		return lanes * 4 + value_ops(w, g, e->call.a, iters, false) + value_ops(w, g, e->call.b, iters, false);
	case IR_CAST:
	case IR_NOT:
		return value_ops(w, g, e->bin.a, iters, false);
	case IR_LET:
		return value_ops(w, g, e->let.value, iters, false) + value_ops(w, g, e->let.body, iters, false);
	default:
		break;
	}
	if (ir_is_select(e->kind))
		return lanes + value_ops(w, g, e->sel.cond, iters, false) + value_ops(w, g, e->sel.t, iters, false) +
		       value_ops(w, g, e->sel.f, iters, false);
	if (ir_is_binary(e->kind))
		return lanes + value_ops(w, g, e->bin.a, iters, false) + value_ops(w, g, e->bin.b, iters, false);
	return 0;
}

/* Keeps the group that does the most work. */
static void close_group(walker *w)
{
	group *g = &w->cur;
	if (g->nstore && g->flops + g->bytes > w->best.flops + w->best.bytes)
		w->best = *g;
	memset(g, 0, sizeof *g);
}

static void visit(walker *w, const ir_stmt *s)
{
	if (!s)
		return;
	switch (s->kind) {
	case IR_FOR: {
		int64_t ext = 1;
		ir_is_const_int(s->loop.extent, &ext);
		w->nloops++;
		if (s->loop.kind == IR_FOR_PARALLEL) {
			w->npar++;
			w->par_extent = (w->par_extent ? w->par_extent : 1) * (double)ext;
		}
		if (w->depth < MAX_DEPTH)
			w->stack[w->depth] = (loop){s->loop.var, ext, s->loop.kind};
		w->depth++;
		visit(w, s->loop.body);
		w->depth--;
		break;
	}
	case IR_STORE: {
		const ir_stmt *key = NULL;
		double iters = 1;
		int d = w->depth < MAX_DEPTH ? w->depth : MAX_DEPTH;
		for (int i = 0; i < d; i++)
			iters *= (double)w->stack[i].extent;
		/* the loop whose body this store is in: found by its variable, the stack's last */
		key = d ? (const ir_stmt *)w->stack[d - 1].var : NULL;
		if (w->cur.nstore && w->cur.key != key)
			close_group(w);
		group *g = &w->cur;
		if (!g->nstore) {
			g->key = key;
			g->depth = d;
			memcpy(g->loops, w->stack, sizeof(loop) * (size_t)d);
			g->iters = iters;
		}
		int lanes = s->store.index->type.lanes > 0 ? s->store.index->type.lanes : 1;
		double bytes = lanes * (s->store.buf->elem.bits / 8.0);
		add_access(g, s->store.buf, s->store.index, lanes, true);
		g->nstore++;
		g->lanes = lanes > g->lanes ? lanes : g->lanes;
		double before = w->loaded, ops = value_ops(w, g, s->store.value, iters, false) * iters;
		g->flops += ops;
		g->bytes += bytes * iters + (w->loaded - before);
		w->flops += ops;
		w->stored += bytes * iters;
		w->nstores++;
		w->max_lanes = lanes > w->max_lanes ? lanes : w->max_lanes;
		if (s->store.buf->scope == KILN_SCOPE_GLOBAL && s->store.buf->size > w->largest_global)
			w->largest_global = s->store.buf->size;
		break;
	}
	case IR_ALLOCATE:
		if (s->alloc.buf->scope == KILN_SCOPE_LOCAL)
			w->local_elems += (double)s->alloc.buf->size;
		visit(w, s->alloc.body);
		break;
	case IR_IF:
		w->nifs++;
		visit(w, s->ifs.then);
		visit(w, s->ifs.els);
		break;
	case IR_SEQ:
		for (int i = 0; i < s->seq.n; i++)
			visit(w, s->seq.s[i]);
		break;
	case IR_LET_STMT:
		visit(w, s->let.body);
		break;
	case IR_REALIZE:
		visit(w, s->realize.body);
		break;
	default:
		break;
	}
}

int kiln_tune_features(const struct ir_func *f, float *out)
{
	memset(out, 0, sizeof(float) * KILN_TUNE_FEATURES);
	walker *w = calloc(1, sizeof *w); /* ~20 KB: not on the stack */
	if (!w)
		return -1;
	visit(w, f->body);
	close_group(w);
	const group *g = &w->best;
	if (!g->nstore) {
		free(w);
		return -1;
	}
	/* the loops of the hottest nest, innermost first */
	for (int l = 0; l < LEVELS && l < g->depth; l++) {
		const loop *lp = &g->loops[g->depth - 1 - l];
		float *o = out + l * PER_LEVEL;
		o[0] = (float)log2p((double)lp->extent);
		o[1] = 1; /* present */
		o[2] = lp->kind == IR_FOR_SERIAL;
		o[3] = lp->kind == IR_FOR_PARALLEL;
		o[4] = lp->kind == IR_FOR_UNROLLED || lp->kind == IR_FOR_VECTORIZED;
		o[5] = lp->kind == IR_FOR_THREAD;
		/* buffer slots: the first store, then the first two other buffers read */
		const access *slot[SLOTS] = {0};
		int ns = 0;
		for (int i = 0; i < g->nacc && !ns; i++)
			if (g->acc[i].store)
				slot[ns++] = &g->acc[i];
		for (int i = 0; i < g->nacc && ns < SLOTS; i++)
			if (!g->acc[i].store && (!slot[0] || g->acc[i].buf != slot[0]->buf))
				slot[ns++] = &g->acc[i];
		for (int k = 0; k < ns; k++) {
			const access *a = slot[k];
			bool nl = false;
			double touched = a->lanes * (a->buf->elem.bits / 8.0), reuse = 1;
			/* inside this loop: every loop from the innermost out to it */
			for (int j = 0; j <= l; j++) {
				const loop *in = &g->loops[g->depth - 1 - j];
				if (coef(a->index, in->var, &nl))
					touched *= (double)in->extent;
				else
					reuse *= (double)in->extent;
			}
			int64_t c = coef(a->index, lp->var, &nl);
			o[6 + 3 * k] = (float)log2p((double)llabs(c));
			o[7 + 3 * k] = (float)log2p(touched);
			o[8 + 3 * k] = (float)log2p(reuse);
		}
	}
	float *gl = out + LEVELS * PER_LEVEL;
	double hot_bytes = g->bytes > 0 ? g->bytes : 1;
	const double v[GLOBALS] = {
		log2p(w->flops), log2p(w->loaded), log2p(w->stored), log2p(g->flops), g->flops / hot_bytes,
		w->max_lanes, g->nstore, g->nload, g->nacc, log2p(w->local_elems),
		w->local_elems / (w->max_lanes ? w->max_lanes : 1), g->depth, log2p(w->par_extent), w->npar,
		log2p(g->iters), w->flops > 0 ? g->flops / w->flops : 0, log2p(w->nloops), log2p(w->nifs),
		log2p((double)w->largest_global), log2p(w->nstores), g->depth ? log2p((double)g->loops[g->depth - 1].extent) : 0,
		g->nload ? (double)g->bcast_loads / g->nload : 0,
	};
	for (int i = 0; i < GLOBALS; i++)
		gl[i] = (float)v[i];
	free(w);
	return 0;
}
