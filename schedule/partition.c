/*
 * partition.c — splits a loop where a shifted-inwards tile changes its
 * index arithmetic (Halide's loop partitioning, in its simplest form).
 *
 * A split that does not divide its extent starts tile v at min(v*c, K)
 * (schedule.c's shift-inwards). That is harmless for contiguous accesses,
 * but when the start reaches a division or modulo — a packed panel read as
 * P[j / 32, k, j % 32] — no iteration's index is known to stay inside one
 * panel, and every vector access becomes a gather. Here such a loop's body
 * becomes `if (v < T) body[v*c] else body[K]`: the first T iterations have
 * aligned tiles whose div/mod the simplifier folds; only the last tiles keep
 * the general form. The branch is the same for every iteration of a task,
 * so it also works for parallel loops, whose body is outlined whole.
 */
#include "ir/mutate.h"
#include "schedule.h"

/* Bodies are copied once per partition: at most this many partitions enclose any statement. */
#define MAX_DEPTH 2

/* min(v*c, K) or min(v, K), c > 0, K >= 0: the start of v's shifted tile */
static bool shift_min(const ir_expr *e, const ir_expr *var, int64_t *c, int64_t *k)
{
	if (e->kind != IR_MIN || !ir_is_const_int(e->bin.b, k) || *k < 0)
		return false;
	const ir_expr *a = e->bin.a;
	if (a == var) {
		*c = 1;
		return true;
	}
	return a->kind == IR_MUL && ((a->bin.a == var && ir_is_const_int(a->bin.b, c)) ||
	                             (a->bin.b == var && ir_is_const_int(a->bin.a, c))) && *c > 0;
}

typedef struct {
	const ir_expr *var;
	int64_t c, k;
	bool found;
} finder;

static bool find_in_operand(const ir_expr *e, void *user)
{
	finder *f = user;
	if (!f->found && shift_min(e, f->var, &f->c, &f->k))
		f->found = true;
	return !f->found;
}

/* a shifted tile start of var inside the dividend of a div or mod */
static bool find_div(const ir_expr *e, void *user)
{
	finder *f = user;
	if (f->found)
		return false;
	if (e->kind == IR_DIV || e->kind == IR_MOD) {
		ir_visit_expr(e->bin.a, find_in_operand, f);
		return !f->found;
	}
	return true;
}

typedef struct {
	ir_mutator m;
	const ir_expr *var;
	int64_t c, k;
	ir_expr *with;
} replacer;

static ir_expr *replace_min(ir_mutator *m, ir_expr *e)
{
	replacer *r = (replacer *)m;
	int64_t c, k;
	if (shift_min(e, r->var, &c, &k) && c == r->c && k == r->k)
		return r->with;
	return ir_mutate_expr_children(m, e);
}

static ir_stmt *specialize(kiln_ctx *ctx, ir_stmt *body, const finder *f, ir_expr *with)
{
	replacer r = {{ctx, replace_min, NULL, NULL}, f->var, f->c, f->k, with};
	return ir_mutate_stmt(&r.m, body);
}

typedef struct {
	ir_mutator m;
	int depth;
	bool changed;
} partitioner;

static ir_stmt *partition_stmt(ir_mutator *m, ir_stmt *s)
{
	partitioner *p = (partitioner *)m;
	kiln_ctx *ctx = m->ctx;
	int64_t lo, n;
	if (s->kind != IR_FOR || (s->loop.kind != IR_FOR_SERIAL && s->loop.kind != IR_FOR_PARALLEL) ||
	    p->depth >= MAX_DEPTH || !ir_is_const_int(s->loop.min, &lo) || lo != 0 ||
	    !ir_is_const_int(s->loop.extent, &n))
		return ir_mutate_stmt_children(m, s);
	finder f = {s->loop.var, 0, 0, false};
	ir_visit_stmt_exprs(s->loop.body, find_div, &f);
	if (!f.found)
		return ir_mutate_stmt_children(m, s);
	/* v*c <= K exactly for v <= K/c: every iteration when K/c >= n - 1 */
	int64_t kc = f.k / f.c;
	ir_expr *v = s->loop.var, *start = f.c == 1 ? v : ir_mul(ctx, v, ir_int(ctx, v->type, f.c));
	ir_stmt *body;
	p->changed = true;
	if (kc >= n - 1) {
		body = ir_mutate_stmt(m, specialize(ctx, s->loop.body, &f, start));
	} else {
		p->depth++; /* the body is copied: count it against MAX_DEPTH */
		ir_stmt *aligned = ir_mutate_stmt(m, specialize(ctx, s->loop.body, &f, start));
		ir_stmt *last = ir_mutate_stmt(m, specialize(ctx, s->loop.body, &f, ir_int(ctx, v->type, f.k)));
		p->depth--;
		body = ir_if(ctx, ir_lt(ctx, v, ir_int(ctx, v->type, kc + 1)), aligned, last);
	}
	return ir_for(ctx, v, s->loop.min, s->loop.extent, s->loop.kind, s->loop.thread, body);
}

ir_stmt *ir_partition_loops(kiln_ctx *ctx, ir_stmt *s, bool *changed)
{
	partitioner p = {{ctx, NULL, partition_stmt, NULL}, 0, false};
	ir_stmt *r = ir_mutate_stmt(&p.m, s);
	if (changed)
		*changed = p.changed;
	return ctx->nerr ? NULL : r;
}
