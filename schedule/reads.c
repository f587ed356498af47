/*
 * reads.c — reads against the tensors' extents, under the conditions that
 * guard them.
 *
 * Shapes are static, so most index ranges are known: a read provably outside
 * its tensor is refused when lowering starts (check_reads). The range of a
 * read inside a branch of if_then_else or select, or inside a reduction with
 * a filter, is taken under the condition that chooses it
 * (ir_env_assume): select(i > 0, X[i-1], 0) is in bounds, and so is the
 * guarded reduction rfactor makes of an uneven split. A select evaluates
 * both sides on every target, so one whose branch is in bounds only under
 * its condition becomes an if_then_else (lazy_selects), which evaluates only
 * the side it takes; selects whose reads are always in bounds stay selects
 * and keep vectorizing.
 */
#include "ir/mutate.h"
#include "schedule.h"

/* Pushes the constant ranges of an op's axes: the whole domain. */
static void push_axes(ir_env *env, const ir_op *op)
{
	for (int d = 0; d < op->naxis; d++)
		ir_env_push(env, op->axis[d]->var, 0, op->axis[d]->extent - 1);
	for (int r = 0; r < op->nreduce; r++)
		ir_env_push(env, op->reduce[r]->var, op->reduce[r]->min, op->reduce[r]->min + op->reduce[r]->extent - 1);
}

/* Whether index d of read e stays inside its tensor under env; r receives its range, overflow
 * whether computing it overflowed 64 bits (an index that large is out of bounds, not unknown). */
static bool index_in_bounds(kiln_ctx *ctx, ir_env *env, const ir_expr *e, int d, ir_range *r, bool *overflow)
{
	*r = ir_const_bounds_checked(env, ir_simplify_expr(ctx, env, e->read.idx[d]), overflow);
	return !*overflow && r->lo >= 0 && r->hi < e->read.t->shape[d];
}

/* ---- refusing reads that are provably out of bounds ---- */

typedef struct {
	kiln_ctx *ctx;
	ir_env *env;
	const char *stage;
	int err;
	const ir_expr *root;
} read_check;

static void check_expr(read_check *rc, const ir_expr *e);

/* Visits the direct children of rc->root with check_expr. */
static bool check_child(const ir_expr *e, void *user)
{
	read_check *rc = user;
	if (e == rc->root)
		return true;
	check_expr(rc, e);
	return false;
}

static void check_under(read_check *rc, const ir_expr *cond, bool truth, const ir_expr *e)
{
	int n = rc->env->n;
	ir_env_assume(rc->env, cond, truth);
	/* a side the condition never chooses (an empty range) reads nothing; a
	 * select evaluating it anyway becomes an if_then_else (lazy_selects) */
	bool reachable = true;
	for (int i = n; i < rc->env->n; i++)
		reachable &= rc->env->r[i].lo <= rc->env->r[i].hi;
	if (reachable)
		check_expr(rc, e);
	rc->env->n = n;
}

static void check_expr(read_check *rc, const ir_expr *e)
{
	if (!e || rc->err)
		return;
	switch (e->kind) {
	case IR_SELECT:
	case IR_IF_THEN_ELSE:
		check_expr(rc, e->sel.cond);
		check_under(rc, e->sel.cond, true, e->sel.t);
		check_under(rc, e->sel.cond, false, e->sel.f);
		return;
	case IR_REDUCE:
		check_expr(rc, e->red.cond);
		check_under(rc, e->red.cond, true, e->red.src);
		return;
	case IR_READ: {
		ir_tensor *t = e->read.t;
		for (int d = 0; d < t->ndim; d++) {
			ir_range r;
			bool overflow;
			index_in_bounds(rc->ctx, rc->env, e, d, &r, &overflow);
			/* an end beyond interval arithmetic (data-dependent) is left to the user */
			bool lo_bad = r.lo != INT64_MIN && r.lo < 0, hi_bad = r.hi != INT64_MAX && r.hi >= t->shape[d];
			if (overflow) {
				char *ix = ir_expr_to_str(rc->ctx, e->read.idx[d]);
				rc->err = ir_error(rc->ctx, "lower: '%s' reads %s out of bounds: index %d (%s) overflows 64-bit "
				                            "arithmetic", rc->stage, t->name, d, ix);
				return;
			}
			if (!lo_bad && !hi_bad)
				continue;
			char *ix = ir_expr_to_str(rc->ctx, e->read.idx[d]);
			rc->err = ir_error(rc->ctx, "lower: '%s' reads %s out of bounds: index %d (%s) ranges over [%lld, %lld] "
			                            "but '%s' has extent %lld there",
			                   rc->stage, t->name, d, ix, (long long)r.lo, (long long)r.hi, t->name,
			                   (long long)t->shape[d]);
			return;
		}
		break;
	}
	default:
		break;
	}
	read_check sub = *rc;
	sub.root = e;
	ir_visit_expr(e, check_child, &sub);
	rc->err = sub.err;
}

int sch_check_reads(sch_schedule *s)
{
	for (int i = 0; i < s->nstage; i++) {
		sch_stage *st = s->stages[i];
		ir_env env = {0};
		push_axes(&env, st->op);
		read_check rc = {s->ctx, &env, st->op->name, 0, NULL};
		for (int k = 0; k < st->op->nout && !rc.err; k++)
			check_expr(&rc, st->op->body[k]);
		ir_env_free(&env);
		if (rc.err)
			return -1;
	}
	return 0;
}

/* ---- selects that must not evaluate both sides ---- */

typedef struct {
	kiln_ctx *ctx;
	ir_env *env;
	bool safe;
} safety;

static bool safe_read(const ir_expr *e, void *user)
{
	safety *sf = user;
	if (e->kind == IR_READ)
		for (int d = 0; d < e->read.t->ndim && sf->safe; d++) {
			ir_range r;
			bool overflow;
			sf->safe = index_in_bounds(sf->ctx, sf->env, e, d, &r, &overflow);
		}
	if ((e->kind == IR_DIV || e->kind == IR_MOD) && ir_is_int(e->type)) {
		/* an integer division by zero traps (x86): only the side that cannot reach it may run eagerly */
		ir_range r = ir_const_bounds(sf->env, ir_simplify_expr(sf->ctx, sf->env, e->bin.b));
		sf->safe &= r.lo > 0 || r.hi < 0;
	}
	return sf->safe;
}

/* Whether every read in e is in bounds, and no integer division by zero, whatever the conditions inside e choose. */
static bool always_in_bounds(kiln_ctx *ctx, ir_env *env, const ir_expr *e)
{
	safety sf = {ctx, env, true};
	ir_visit_expr(e, safe_read, &sf);
	return sf.safe;
}

typedef struct {
	ir_mutator m;
	ir_env *env;
} lazy;

static ir_expr *lazy_under(lazy *lz, const ir_expr *cond, bool truth, ir_expr *e)
{
	int n = lz->env->n;
	ir_env_assume(lz->env, cond, truth);
	ir_expr *r = ir_mutate_expr(&lz->m, e);
	lz->env->n = n;
	return r;
}

static ir_expr *lazy_expr(ir_mutator *m, ir_expr *e)
{
	lazy *lz = (lazy *)m;
	kiln_ctx *ctx = m->ctx;
	switch (e->kind) {
	case IR_SELECT:
	case IR_IF_THEN_ELSE: {
		int kind = e->kind;
		if (kind == IR_SELECT && e->sel.cond->type.lanes == 1 &&
		    !(always_in_bounds(ctx, lz->env, e->sel.t) && always_in_bounds(ctx, lz->env, e->sel.f)))
			kind = IR_IF_THEN_ELSE;
		if (kind == IR_SELECT)
			return ir_mutate_expr_children(m, e);
		ir_expr *c = ir_mutate_expr(m, e->sel.cond);
		ir_expr *t = lazy_under(lz, e->sel.cond, true, e->sel.t), *f = lazy_under(lz, e->sel.cond, false, e->sel.f);
		return ir_select_kind(ctx, kind, c, t, f);
	}
	case IR_REDUCE: {
		/* the update runs under the filter (an if around it) */
		ir_expr *c = e->red.cond ? ir_mutate_expr(m, e->red.cond) : NULL;
		ir_expr *src = e->red.cond ? lazy_under(lz, e->red.cond, true, e->red.src) : ir_mutate_expr(m, e->red.src);
		return c == e->red.cond && src == e->red.src
		           ? e
		           : ir_reduce(ctx, e->red.op, src, e->red.naxis, e->red.axis, c);
	}
	default:
		return ir_mutate_expr_children(m, e);
	}
}

void sch_lazy_selects(sch_schedule *s)
{
	for (int i = 0; i < s->nstage; i++) {
		sch_stage *st = s->stages[i];
		if (st->attach == ATTACH_INLINE)
			continue;
		ir_env env = {0};
		push_axes(&env, st->op);
		lazy lz = {{s->ctx, lazy_expr, NULL, NULL}, &env};
		for (int k = 0; k < st->op->nout; k++)
			st->body[k] = ir_mutate_expr(&lz.m, st->body[k]);
		ir_env_free(&env);
	}
}
