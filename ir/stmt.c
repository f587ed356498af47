/*
 * stmt.c — one checking constructor per statement node, and buffers.
 */
#include <string.h>

#include "ir.h"

static ir_stmt *new_stmt(kiln_ctx *ctx, int kind)
{
	ir_stmt *s = ir_alloc(ctx, sizeof *s);
	s->kind = (uint8_t)kind;
	return s;
}

ir_stmt *ir_for(kiln_ctx *ctx, ir_expr *var, ir_expr *min, ir_expr *extent, ir_for_kind kind, kiln_thread thread,
                ir_stmt *body)
{
	ir_assert(var && var->kind == IR_VAR && min && extent && ir_is_int(min->type) && ir_is_int(extent->type));
	if (!body)
		return NULL;
	ir_stmt *s = new_stmt(ctx, IR_FOR);
	s->loop.var = var;
	s->loop.min = min;
	s->loop.extent = extent;
	s->loop.kind = kind;
	s->loop.thread = thread;
	s->loop.body = body;
	return s;
}

ir_stmt *ir_store(kiln_ctx *ctx, ir_buffer *buf, ir_expr *index, ir_expr *value)
{
	ir_assert(buf && index && value && ir_is_int(index->type));
	ir_assert(ir_type_eq(ir_elem(value->type), buf->elem) && value->type.lanes == index->type.lanes);
	ir_stmt *s = new_stmt(ctx, IR_STORE);
	s->store.buf = buf;
	s->store.index = index;
	s->store.value = value;
	return s;
}

ir_stmt *ir_provide(kiln_ctx *ctx, ir_tensor *t, ir_expr *const *idx, ir_expr *value)
{
	if (!value)
		return NULL;
	ir_stmt *s = new_stmt(ctx, IR_PROVIDE);
	s->provide.t = t;
	s->provide.idx = ir_alloc(ctx, sizeof(ir_expr *) * (t->ndim ? t->ndim : 1));
	memcpy(s->provide.idx, idx, sizeof(ir_expr *) * t->ndim);
	s->provide.value = value;
	return s;
}

ir_stmt *ir_realize(kiln_ctx *ctx, ir_tensor *t, ir_expr *const *min, const int64_t *extent, kiln_scope scope,
                    ir_stmt *body)
{
	if (!body)
		return NULL;
	ir_stmt *s = new_stmt(ctx, IR_REALIZE);
	int n = t->ndim ? t->ndim : 1;
	s->realize.t = t;
	s->realize.min = ir_alloc(ctx, sizeof(ir_expr *) * n);
	s->realize.extent = ir_alloc(ctx, sizeof(int64_t) * n);
	memcpy(s->realize.min, min, sizeof(ir_expr *) * t->ndim);
	memcpy(s->realize.extent, extent, sizeof(int64_t) * t->ndim);
	s->realize.scope = scope;
	s->realize.body = body;
	return s;
}

ir_stmt *ir_allocate(kiln_ctx *ctx, ir_buffer *buf, ir_stmt *body)
{
	if (!body)
		return NULL;
	ir_stmt *s = new_stmt(ctx, IR_ALLOCATE);
	s->alloc.buf = buf;
	s->alloc.body = body;
	return s;
}

ir_stmt *ir_if(kiln_ctx *ctx, ir_expr *cond, ir_stmt *then, ir_stmt *els)
{
	if (!cond || !then)
		return NULL;
	ir_assert(ir_is_bool(cond->type) && cond->type.lanes == 1);
	ir_stmt *s = new_stmt(ctx, IR_IF);
	s->ifs.cond = cond;
	s->ifs.then = then;
	s->ifs.els = els;
	return s;
}

ir_stmt *ir_seq(kiln_ctx *ctx, int n, ir_stmt *const *items)
{
	int m = 0;
	for (int i = 0; i < n; i++)
		if (items[i])
			m += items[i]->kind == IR_SEQ ? items[i]->seq.n : 1;
	if (m == 0)
		return NULL;
	ir_stmt **v = ir_alloc(ctx, sizeof *v * m);
	int k = 0;
	for (int i = 0; i < n; i++) {
		if (!items[i])
			continue;
		if (items[i]->kind == IR_SEQ)
			for (int j = 0; j < items[i]->seq.n; j++)
				v[k++] = items[i]->seq.s[j];
		else
			v[k++] = items[i];
	}
	if (m == 1)
		return v[0];
	ir_stmt *s = new_stmt(ctx, IR_SEQ);
	s->seq.n = m;
	s->seq.s = v;
	return s;
}

ir_stmt *ir_seq2(kiln_ctx *ctx, ir_stmt *a, ir_stmt *b) { return ir_seq(ctx, 2, (ir_stmt *[]){a, b}); }

ir_stmt *ir_let_stmt(kiln_ctx *ctx, ir_expr *var, ir_expr *value, ir_stmt *body)
{
	if (!value || !body)
		return NULL;
	ir_assert(var->kind == IR_VAR && ir_type_eq(var->type, value->type));
	ir_stmt *s = new_stmt(ctx, IR_LET_STMT);
	s->let.var = var;
	s->let.value = value;
	s->let.body = body;
	return s;
}

ir_stmt *ir_barrier(kiln_ctx *ctx, kiln_scope scope)
{
	ir_stmt *s = new_stmt(ctx, IR_BARRIER);
	s->barrier.scope = scope;
	return s;
}

ir_stmt *ir_eval(kiln_ctx *ctx, ir_expr *e)
{
	ir_stmt *s = new_stmt(ctx, IR_EVAL);
	s->eval.e = e;
	return s;
}

ir_buffer *ir_buffer_new(kiln_ctx *ctx, const char *name, ir_type elem, int ndim, const int64_t *shape,
                         kiln_scope scope)
{
	ir_buffer *b = ir_alloc(ctx, sizeof *b);
	b->name = ir_strdup(ctx, name);
	b->elem = elem;
	b->ndim = ndim;
	b->size = 1;
	for (int d = 0; d < ndim; d++) {
		b->shape[d] = shape[d];
		b->size *= shape[d];
	}
	b->scope = scope;
	b->data = ir_var(ctx, name, IR_HANDLE);
	return b;
}
