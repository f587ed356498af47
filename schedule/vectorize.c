/*
 * vectorize.c — turns a vectorized loop into vector code: the loop variable
 * becomes ramp(min, 1, lanes) and every expression it reaches widens (the
 * constructors broadcast scalar operands). A loop whose body cannot be
 * widened safely — a store whose index does not vary with the loop (a
 * reduction across lanes), a condition that varies across lanes, an
 * allocation, an already-vector body — stays a serial loop, which is
 * correct and which LLVM may still vectorize on its own.
 */
#include "ir/mutate.h"
#include "schedule.h"

#define MAX_LANES 64

typedef struct {
	ir_mutator m;
	ir_expr *var, *ramp;
	int lanes;
	bool fail;
} vec;

static ir_expr *widen(kiln_ctx *ctx, ir_expr *e, int lanes)
{
	return e->type.lanes == lanes ? e : ir_broadcast(ctx, e, lanes);
}

static ir_expr *vec_expr(ir_mutator *m, ir_expr *e)
{
	vec *v = (vec *)m;
	if (e == v->var)
		return v->ramp;
	if (e->kind == IR_IF_THEN_ELSE) {
		/* a branch per lane is not a vector: the loop stays serial */
		ir_expr *c = ir_mutate_expr(m, e->sel.cond);
		if (c->type.lanes != 1) {
			v->fail = true;
			return e;
		}
		ir_expr *t = ir_mutate_expr(m, e->sel.t), *f = ir_mutate_expr(m, e->sel.f);
		int n = t->type.lanes > f->type.lanes ? t->type.lanes : f->type.lanes;
		return ir_select_kind(m->ctx, IR_IF_THEN_ELSE, c, widen(m->ctx, t, n), widen(m->ctx, f, n));
	}
	if (e->kind == IR_LET) {
		ir_expr *val = ir_mutate_expr(m, e->let.value);
		if (val->type.lanes == 1)
			return ir_mutate_expr_children(m, e);
		ir_expr *nv = ir_var(m->ctx, e->let.var->var.name, val->type);
		ir_expr *body = ir_substitute(m->ctx, e->let.body, 1, &e->let.var, &nv);
		return ir_let(m->ctx, nv, val, ir_mutate_expr(m, body));
	}
	return ir_mutate_expr_children(m, e);
}

static ir_stmt *vec_stmt(ir_mutator *m, ir_stmt *s)
{
	vec *v = (vec *)m;
	kiln_ctx *ctx = m->ctx;
	switch (s->kind) {
	case IR_STORE: {
		ir_expr *idx = ir_mutate_expr(m, s->store.index), *val = ir_mutate_expr(m, s->store.value);
		if (idx->type.lanes == 1) {
			v->fail = true; /* every lane would write one place */
			return s;
		}
		return ir_store(ctx, s->store.buf, idx, widen(ctx, val, v->lanes));
	}
	case IR_FOR:
		if (ir_expr_uses_var(s->loop.min, v->var) || ir_expr_uses_var(s->loop.extent, v->var)) {
			v->fail = true;
			return s;
		}
		return ir_mutate_stmt_children(m, s);
	case IR_IF: {
		ir_expr *c = ir_mutate_expr(m, s->ifs.cond);
		if (c->type.lanes != 1) {
			v->fail = true;
			return s;
		}
		return ir_mutate_stmt_children(m, s);
	}
	case IR_LET_STMT: {
		ir_expr *val = ir_mutate_expr(m, s->let.value);
		if (val->type.lanes == 1)
			return ir_mutate_stmt_children(m, s);
		ir_expr *nv = ir_var(ctx, s->let.var->var.name, val->type);
		ir_stmt *body = ir_substitute_stmt(ctx, s->let.body, 1, &s->let.var, &nv);
		return ir_let_stmt(ctx, nv, val, ir_mutate_stmt(m, body));
	}
	case IR_ALLOCATE:
	case IR_BARRIER:
		v->fail = true;
		return s;
	default:
		return ir_mutate_stmt_children(m, s);
	}
}

static bool is_vector(const ir_expr *e, void *user)
{
	if (e->type.lanes > 1)
		*(bool *)user = true;
	return !*(bool *)user;
}

typedef struct {
	ir_mutator m;
} outer;

static ir_stmt *outer_stmt(ir_mutator *m, ir_stmt *s)
{
	kiln_ctx *ctx = m->ctx;
	if (s->kind != IR_FOR || s->loop.kind != IR_FOR_VECTORIZED)
		return ir_mutate_stmt_children(m, s);
	ir_stmt *body = ir_mutate_stmt(m, s->loop.body);
	if (!body)
		return NULL;
	int64_t n;
	const char *name = s->loop.var->var.name;
	if (!ir_is_const_int(s->loop.extent, &n))
		return ir_error(ctx, "vectorize: loop '%s' has a non-constant extent; split it by a constant first", name),
		       s;
	if (n > MAX_LANES)
		return ir_error(ctx, "vectorize: loop '%s' has extent %lld; vectorized loops take at most %d lanes "
		                     "(split it first)", name, (long long)n, MAX_LANES), s;
	bool already = false;
	ir_visit_stmt_exprs(body, is_vector, &already);
	if (n < 2 || already)
		return ir_for(ctx, s->loop.var, s->loop.min, s->loop.extent, IR_FOR_SERIAL, 0, body);
	vec v = {{ctx, vec_expr, vec_stmt, NULL}, s->loop.var, NULL, (int)n, false};
	v.ramp = ir_ramp(ctx, ir_cast(ctx, s->loop.var->type, s->loop.min), ir_int(ctx, s->loop.var->type, 1), (int)n);
	ir_stmt *r = ir_mutate_stmt(&v.m, body);
	if (v.fail || !r)
		return ir_for(ctx, s->loop.var, s->loop.min, s->loop.extent, IR_FOR_SERIAL, 0, body);
	return ir_simplify(ctx, NULL, r);
}

ir_stmt *ir_vectorize(kiln_ctx *ctx, ir_stmt *s)
{
	outer o = {{ctx, NULL, outer_stmt, NULL}};
	ir_stmt *r = ir_mutate_stmt(&o.m, s);
	return ctx->nerr ? NULL : r;
}
