/*
 * vthread.c — virtual thread injection, after flattening.
 *
 * A loop bound to a virtual thread (KILN_VTHREAD_*) runs its iterations as
 * if they were more threads of the block: bound inference treats it like a
 * thread index (a shared stage covers every virtual thread, a local stage
 * only its own), so one real thread can own a strided set of outputs —
 * columns tx*4 and 64 + tx*4, say, which neighbouring threads read from
 * neighbouring shared-memory words — while each part keeps a small local
 * tile. TVM calls this a vthread.
 *
 * Here the loop disappears. Statements that use its variable are wrapped in
 * an unrolled loop over it, as deep in the nest as possible (so the copies
 * of one statement sit side by side and share their loads); statements that
 * do not (a shared-memory copy, which also carries the barriers) run once.
 * Local buffers allocated between the loop and the wrapped statements get
 * one copy per virtual thread.
 */
#include <stdlib.h>

#include "ir/mutate.h"
#include "schedule.h"

typedef struct {
	ir_buffer *from, *to;
	int64_t size;
} expansion;

typedef struct {
	kiln_ctx *ctx;
	ir_expr *var, *min, *extent;
	int nexp;
	expansion exp[64];
} injector;

static const expansion *expanded(const injector *v, const ir_buffer *b)
{
	for (int i = v->nexp - 1; i >= 0; i--)
		if (v->exp[i].from == b)
			return &v->exp[i];
	return NULL;
}

/* ---- does a statement use the virtual thread (its variable or its copies)? ---- */

typedef struct {
	ir_mutator m;
	const injector *v;
	bool uses;
} probe;

static ir_expr *probe_expr(ir_mutator *m, ir_expr *e)
{
	probe *p = (probe *)m;
	if (e == p->v->var || (e->kind == IR_LOAD && expanded(p->v, e->load.buf)))
		p->uses = true;
	return p->uses ? e : ir_mutate_expr_children(m, e);
}

static ir_stmt *probe_stmt(ir_mutator *m, ir_stmt *s)
{
	probe *p = (probe *)m;
	if (s->kind == IR_STORE && expanded(p->v, s->store.buf))
		p->uses = true;
	return p->uses ? s : ir_mutate_stmt_children(m, s);
}

static bool uses_vthread(const injector *v, ir_stmt *s)
{
	probe p = {{NULL, probe_expr, probe_stmt, NULL}, v, false};
	ir_mutate_stmt(&p.m, s);
	return p.uses;
}

/* ---- accesses of expanded buffers move to their virtual thread's copy ---- */

typedef struct {
	ir_mutator m;
	const injector *v;
} retarget;

static ir_expr *copy_index(const injector *v, const expansion *x, ir_expr *idx)
{
	kiln_ctx *ctx = v->ctx;
	ir_expr *part = ir_sub(ctx, v->var, v->min);
	return ir_add(ctx, ir_mul(ctx, part, ir_i64(ctx, x->size)), idx);
}

static ir_expr *retarget_expr(ir_mutator *m, ir_expr *e)
{
	retarget *r = (retarget *)m;
	ir_expr *c = ir_mutate_expr_children(m, e);
	const expansion *x = c->kind == IR_LOAD ? expanded(r->v, c->load.buf) : NULL;
	return x ? ir_load(m->ctx, x->to, copy_index(r->v, x, c->load.index)) : c;
}

static ir_stmt *retarget_stmt(ir_mutator *m, ir_stmt *s)
{
	retarget *r = (retarget *)m;
	ir_stmt *c = ir_mutate_stmt_children(m, s);
	const expansion *x = c && c->kind == IR_STORE ? expanded(r->v, c->store.buf) : NULL;
	return x ? ir_store(m->ctx, x->to, copy_index(r->v, x, c->store.index), c->store.value) : c;
}

/* for vt in [min, min + extent) unrolled: s, on vt's own copies */
static ir_stmt *wrap(injector *v, ir_stmt *s)
{
	retarget r = {{v->ctx, retarget_expr, retarget_stmt, NULL}, v};
	ir_stmt *body = ir_mutate_stmt(&r.m, s);
	return ir_for(v->ctx, v->var, v->min, v->extent, IR_FOR_UNROLLED, KILN_THREAD_NONE, body);
}

static ir_stmt *inject(injector *v, ir_stmt *s)
{
	kiln_ctx *ctx = v->ctx;
	if (!s || !uses_vthread(v, s))
		return s;
	switch (s->kind) {
	case IR_SEQ: {
		ir_stmt **parts = ir_alloc(ctx, sizeof(ir_stmt *) * s->seq.n);
		for (int i = 0; i < s->seq.n; i++)
			parts[i] = inject(v, s->seq.s[i]);
		return ir_seq(ctx, s->seq.n, parts);
	}
	case IR_FOR:
		/* a vectorized loop must stay innermost; a loop whose range depends on
		 * the virtual thread cannot be shared by all of them */
		if (s->loop.kind == IR_FOR_VECTORIZED || ir_expr_uses_var(s->loop.min, v->var) ||
		    ir_expr_uses_var(s->loop.extent, v->var))
			return wrap(v, s);
		return ir_for(ctx, s->loop.var, s->loop.min, s->loop.extent, s->loop.kind, s->loop.thread,
		              inject(v, s->loop.body));
	case IR_ALLOCATE: {
		ir_buffer *b = s->alloc.buf;
		if (b->scope == KILN_SCOPE_SHARED)
			return ir_allocate(ctx, b, inject(v, s->alloc.body));
		if (v->nexp == 64) {
			ir_error(ctx, "vthread: more than 64 buffers to copy per virtual thread");
			return s;
		}
		int64_t n = 1;
		ir_is_const_int(v->extent, &n);
		int64_t shape[1] = {b->size * n};
		ir_buffer *to = ir_buffer_new(ctx, b->name, b->elem, 1, shape, b->scope);
		to->tensor = b->tensor;
		v->exp[v->nexp++] = (expansion){b, to, b->size};
		ir_stmt *body = inject(v, s->alloc.body);
		v->nexp--;
		return ir_allocate(ctx, to, body);
	}
	case IR_IF:
		if (ir_expr_uses_var(s->ifs.cond, v->var))
			return wrap(v, s);
		return ir_if(ctx, s->ifs.cond, inject(v, s->ifs.then), inject(v, s->ifs.els));
	default:
		return wrap(v, s);
	}
}

static ir_stmt *vthread_stmt(ir_mutator *m, ir_stmt *s)
{
	if (s->kind != IR_FOR || s->loop.kind != IR_FOR_THREAD || s->loop.thread < KILN_VTHREAD_X)
		return ir_mutate_stmt_children(m, s);
	ir_stmt *body = ir_mutate_stmt(m, s->loop.body); /* inner virtual threads first */
	int64_t n;
	if (!ir_is_const_int(s->loop.extent, &n))
		return ir_error(m->ctx, "vthread: loop '%s' has a non-constant extent", s->loop.var->var.name), s;
	injector *v = malloc(sizeof *v);
	if (!v)
		return ir_error(m->ctx, "vthread: out of memory"), s;
	*v = (injector){m->ctx, s->loop.var, s->loop.min, s->loop.extent, 0, {{0}}};
	ir_stmt *r = inject(v, body);
	free(v);
	return r;
}

ir_stmt *ir_inject_vthread(kiln_ctx *ctx, ir_stmt *s)
{
	ir_mutator m = {ctx, NULL, vthread_stmt, NULL};
	ir_stmt *r = ir_mutate_stmt(&m, s);
	return ctx->nerr ? NULL : r;
}
