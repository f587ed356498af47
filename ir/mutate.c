/*
 * mutate.c — the visitor/mutator helper. A pass overrides only the nodes it
 * changes and hands every other node to ir_mutate_*_children, which rebuilds
 * a node only when one of its children changed (so unchanged IR is shared).
 */
#include <string.h>

#include "mutate.h"

ir_expr *ir_mutate_expr(ir_mutator *m, ir_expr *e)
{
	if (!e)
		return NULL;
	return m->expr ? m->expr(m, e) : ir_mutate_expr_children(m, e);
}

ir_stmt *ir_mutate_stmt(ir_mutator *m, ir_stmt *s)
{
	if (!s)
		return NULL;
	return m->stmt ? m->stmt(m, s) : ir_mutate_stmt_children(m, s);
}

ir_expr *ir_mutate_expr_children(ir_mutator *m, ir_expr *e)
{
	kiln_ctx *ctx = m->ctx;
	switch (e->kind) {
	case IR_INT_IMM:
	case IR_FLOAT_IMM:
	case IR_VAR:
		return e;
	case IR_NOT: {
		ir_expr *a = ir_mutate_expr(m, e->bin.a);
		return a == e->bin.a ? e : ir_not(ctx, a);
	}
	case IR_CAST: {
		ir_expr *a = ir_mutate_expr(m, e->bin.a);
		return a == e->bin.a ? e : ir_cast(ctx, ir_elem(e->type), a);
	}
	case IR_SELECT:
	case IR_IF_THEN_ELSE: {
		ir_expr *c = ir_mutate_expr(m, e->sel.cond), *t = ir_mutate_expr(m, e->sel.t),
		        *f = ir_mutate_expr(m, e->sel.f);
		return c == e->sel.cond && t == e->sel.t && f == e->sel.f ? e : ir_select_kind(ctx, e->kind, c, t, f);
	}
	case IR_CALL: {
		ir_expr *a = ir_mutate_expr(m, e->call.a), *b = ir_mutate_expr(m, e->call.b);
		return a == e->call.a && b == e->call.b ? e : ir_call(ctx, e->call.op, a, b);
	}
	case IR_READ: {
		int n = e->read.t->ndim;
		ir_expr *idx[KILN_MAX_DIMS];
		bool changed = false;
		for (int d = 0; d < n; d++) {
			idx[d] = ir_mutate_expr(m, e->read.idx[d]);
			changed |= idx[d] != e->read.idx[d];
		}
		return changed ? ir_read(ctx, e->read.t, idx) : e;
	}
	case IR_LOAD: {
		ir_expr *i = ir_mutate_expr(m, e->load.index);
		return i == e->load.index ? e : ir_load(ctx, e->load.buf, i);
	}
	case IR_RAMP: {
		ir_expr *b = ir_mutate_expr(m, e->ramp.base), *s = ir_mutate_expr(m, e->ramp.stride);
		return b == e->ramp.base && s == e->ramp.stride ? e : ir_ramp(ctx, b, s, e->type.lanes);
	}
	case IR_BROADCAST: {
		ir_expr *v = ir_mutate_expr(m, e->bcast.value);
		return v == e->bcast.value ? e : ir_broadcast(ctx, v, e->type.lanes);
	}
	case IR_REDUCE: {
		ir_expr *s = ir_mutate_expr(m, e->red.src), *c = ir_mutate_expr(m, e->red.cond);
		return s == e->red.src && c == e->red.cond ? e : ir_reduce(ctx, e->red.op, s, e->red.naxis, e->red.axis, c);
	}
	case IR_LET: {
		ir_expr *v = ir_mutate_expr(m, e->let.value), *b = ir_mutate_expr(m, e->let.body);
		return v == e->let.value && b == e->let.body ? e : ir_let(ctx, e->let.var, v, b);
	}
	default: {
		ir_assert(ir_is_binary(e->kind));
		ir_expr *a = ir_mutate_expr(m, e->bin.a), *b = ir_mutate_expr(m, e->bin.b);
		return a == e->bin.a && b == e->bin.b ? e : ir_binary(ctx, e->kind, a, b);
	}
	}
}

ir_stmt *ir_mutate_stmt_children(ir_mutator *m, ir_stmt *s)
{
	kiln_ctx *ctx = m->ctx;
	switch (s->kind) {
	case IR_FOR: {
		ir_expr *mn = ir_mutate_expr(m, s->loop.min), *ext = ir_mutate_expr(m, s->loop.extent);
		ir_stmt *b = ir_mutate_stmt(m, s->loop.body);
		if (!b)
			return NULL;
		if (mn == s->loop.min && ext == s->loop.extent && b == s->loop.body)
			return s;
		return ir_for(ctx, s->loop.var, mn, ext, s->loop.kind, s->loop.thread, b);
	}
	case IR_STORE: {
		ir_expr *i = ir_mutate_expr(m, s->store.index), *v = ir_mutate_expr(m, s->store.value);
		return i == s->store.index && v == s->store.value ? s : ir_store(ctx, s->store.buf, i, v);
	}
	case IR_PROVIDE: {
		int n = s->provide.t->ndim;
		ir_expr *idx[KILN_MAX_DIMS];
		bool changed = false;
		for (int d = 0; d < n; d++) {
			idx[d] = ir_mutate_expr(m, s->provide.idx[d]);
			changed |= idx[d] != s->provide.idx[d];
		}
		ir_expr *v = ir_mutate_expr(m, s->provide.value);
		return !changed && v == s->provide.value ? s : ir_provide(ctx, s->provide.t, idx, v);
	}
	case IR_REALIZE: {
		int n = s->realize.t->ndim;
		ir_expr *mn[KILN_MAX_DIMS];
		bool changed = false;
		for (int d = 0; d < n; d++) {
			mn[d] = ir_mutate_expr(m, s->realize.min[d]);
			changed |= mn[d] != s->realize.min[d];
		}
		ir_stmt *b = ir_mutate_stmt(m, s->realize.body);
		if (!b)
			return NULL;
		return !changed && b == s->realize.body
		           ? s
		           : ir_realize(ctx, s->realize.t, mn, s->realize.extent, s->realize.scope, b);
	}
	case IR_ALLOCATE: {
		ir_stmt *b = ir_mutate_stmt(m, s->alloc.body);
		if (!b)
			return NULL;
		return b == s->alloc.body ? s : ir_allocate(ctx, s->alloc.buf, b);
	}
	case IR_IF: {
		ir_expr *c = ir_mutate_expr(m, s->ifs.cond);
		ir_stmt *t = ir_mutate_stmt(m, s->ifs.then), *e = ir_mutate_stmt(m, s->ifs.els);
		if (!t && !e)
			return NULL;
		if (!t) /* keep the else branch under the negated condition */
			return ir_if(ctx, ir_not(ctx, c), e, NULL);
		return c == s->ifs.cond && t == s->ifs.then && e == s->ifs.els ? s : ir_if(ctx, c, t, e);
	}
	case IR_SEQ: {
		/* the copy is made on the first change only, so visitors (no ctx) never allocate */
		ir_stmt **v = NULL;
		for (int i = 0; i < s->seq.n; i++) {
			ir_stmt *r = ir_mutate_stmt(m, s->seq.s[i]);
			if (r != s->seq.s[i] && !v) {
				v = ir_alloc(ctx, sizeof *v * s->seq.n);
				memcpy(v, s->seq.s, sizeof *v * i);
			}
			if (v)
				v[i] = r;
		}
		return v ? ir_seq(ctx, s->seq.n, v) : s;
	}
	case IR_LET_STMT: {
		ir_expr *v = ir_mutate_expr(m, s->let.value);
		ir_stmt *b = ir_mutate_stmt(m, s->let.body);
		if (!b)
			return NULL;
		return v == s->let.value && b == s->let.body ? s : ir_let_stmt(ctx, s->let.var, v, b);
	}
	case IR_EVAL: {
		ir_expr *e = ir_mutate_expr(m, s->eval.e);
		return e == s->eval.e ? s : ir_eval(ctx, e);
	}
	default:
		return s;
	}
}

/* ---- substitution ---- */

typedef struct {
	ir_mutator m;
	int n;
	ir_expr *const *vars;
	ir_expr *const *values;
	ir_tensor *from, *to;
} subst;

static ir_expr *subst_expr(ir_mutator *m, ir_expr *e)
{
	subst *s = (subst *)m;
	if (e->kind == IR_VAR) {
		for (int i = 0; i < s->n; i++)
			if (s->vars[i] == e)
				return s->values[i];
		return e;
	}
	if (e->kind == IR_READ && e->read.t == s->from) {
		ir_expr *r = ir_mutate_expr_children(m, e);
		return ir_read(m->ctx, s->to, r->read.idx);
	}
	return ir_mutate_expr_children(m, e);
}

ir_expr *ir_substitute(kiln_ctx *ctx, ir_expr *e, int n, ir_expr *const *vars, ir_expr *const *values)
{
	subst s = {{ctx, subst_expr, NULL, NULL}, n, vars, values, NULL, NULL};
	return ir_mutate_expr(&s.m, e);
}

ir_stmt *ir_substitute_stmt(kiln_ctx *ctx, ir_stmt *st, int n, ir_expr *const *vars, ir_expr *const *values)
{
	subst s = {{ctx, subst_expr, NULL, NULL}, n, vars, values, NULL, NULL};
	return ir_mutate_stmt(&s.m, st);
}

ir_expr *ir_replace_tensor(kiln_ctx *ctx, ir_expr *e, ir_tensor *from, ir_tensor *to)
{
	subst s = {{ctx, subst_expr, NULL, NULL}, 0, NULL, NULL, from, to};
	return ir_mutate_expr(&s.m, e);
}

/* ---- visiting ---- */

typedef struct {
	ir_mutator m;
	bool (*fn)(const ir_expr *e, void *user);
	void *user;
} visitor;

static ir_expr *visit_expr(ir_mutator *m, ir_expr *e)
{
	visitor *v = (visitor *)m;
	if (v->fn(e, v->user))
		ir_mutate_expr_children(m, e);
	return e;
}

void ir_visit_expr(const ir_expr *e, bool (*fn)(const ir_expr *e, void *user), void *user)
{
	visitor v = {{NULL, visit_expr, NULL, NULL}, fn, user};
	ir_mutate_expr(&v.m, (ir_expr *)e);
}

void ir_visit_stmt_exprs(const ir_stmt *s, bool (*fn)(const ir_expr *e, void *user), void *user)
{
	visitor v = {{NULL, visit_expr, NULL, NULL}, fn, user};
	ir_mutate_stmt(&v.m, (ir_stmt *)s);
}

typedef struct {
	ir_mutator m;
	bool (*fn)(const ir_stmt *s, void *user);
	void *user;
} stmt_visitor;

static ir_expr *skip_expr(ir_mutator *m, ir_expr *e)
{
	(void)m;
	return e;
}

static ir_stmt *visit_stmt(ir_mutator *m, ir_stmt *s)
{
	stmt_visitor *v = (stmt_visitor *)m;
	if (v->fn(s, v->user))
		ir_mutate_stmt_children(m, s);
	return s;
}

void ir_visit_stmts(const ir_stmt *s, bool (*fn)(const ir_stmt *s, void *user), void *user)
{
	stmt_visitor v = {{NULL, skip_expr, visit_stmt, NULL}, fn, user};
	ir_mutate_stmt(&v.m, (ir_stmt *)s);
}

static bool uses_var_fn(const ir_expr *e, void *user)
{
	const ir_expr **target = user;
	if (e == target[0])
		target[1] = e;
	return target[1] == NULL;
}

bool ir_expr_uses_var(const ir_expr *e, const ir_expr *var)
{
	const ir_expr *t[2] = {var, NULL};
	ir_visit_expr(e, uses_var_fn, t);
	return t[1] != NULL;
}

bool ir_stmt_uses_var(const ir_stmt *s, const ir_expr *var)
{
	const ir_expr *t[2] = {var, NULL};
	ir_visit_stmt_exprs(s, uses_var_fn, t);
	return t[1] != NULL;
}
