/*
 * flatten.c — storage flattening: realize becomes allocate, and the
 * multi-dimensional provide/read become store/load at a flat row-major
 * index relative to the realized region's first element, in the stage's
 * storage order.
 */
#include <stdlib.h>

#include "ir/mutate.h"
#include "schedule.h"

typedef struct {
	ir_tensor *t;
	ir_buffer *buf;
	ir_expr **min; /* NULL: the region starts at 0 */
	int *order;    /* storage order, outermost first (NULL: row-major) */
} binding;

typedef struct {
	ir_mutator m;
	sch_schedule *sch;
	int n;
	binding b[256];
	int err;
} flattener;

static binding *find(flattener *fl, const ir_tensor *t)
{
	for (int i = fl->n - 1; i >= 0; i--)
		if (fl->b[i].t == t)
			return &fl->b[i];
	return NULL;
}

static ir_expr *flat_index(kiln_ctx *ctx, const binding *b, ir_expr *const *idx)
{
	ir_expr *flat = NULL;
	for (int p = 0; p < b->buf->ndim; p++) {
		int d = b->order ? b->order[p] : p;
		ir_expr *i = ir_cast(ctx, IR_I64, idx[d]);
		if (b->min)
			i = ir_sub(ctx, i, b->min[d]);
		flat = flat ? ir_add(ctx, ir_mul(ctx, flat, ir_i64(ctx, b->buf->shape[p])), i) : i;
	}
	return flat ? flat : ir_i64(ctx, 0);
}

static binding *lookup_or_fail(flattener *fl, const ir_tensor *t)
{
	binding *b = find(fl, t);
	if (!b && !fl->err++)
		ir_error(fl->m.ctx, "flatten: '%s' is used where it is not stored (outside its compute_at region?)", t->name);
	return b;
}

static ir_expr *flatten_expr(ir_mutator *m, ir_expr *e)
{
	flattener *fl = (flattener *)m;
	if (e->kind != IR_READ)
		return ir_mutate_expr_children(m, e);
	ir_expr *r = ir_mutate_expr_children(m, e);
	binding *b = lookup_or_fail(fl, e->read.t);
	if (!b)
		return ir_int(m->ctx, e->type, 0);
	return ir_load(m->ctx, b->buf, flat_index(m->ctx, b, r->read.idx));
}

static ir_stmt *flatten_stmt(ir_mutator *m, ir_stmt *s)
{
	flattener *fl = (flattener *)m;
	kiln_ctx *ctx = m->ctx;
	if (s->kind == IR_REALIZE) {
		ir_tensor *t = s->realize.t;
		if (fl->n == 256) {
			ir_error(ctx, "flatten: more than 256 nested buffers");
			fl->err++;
			return s;
		}
		/* the buffer's shape lists the extents in storage order */
		sch_stage *st = sch_stage_of(fl->sch, t);
		int *order = st ? st->storage : NULL;
		int64_t shape[KILN_MAX_DIMS];
		for (int p = 0; p < t->ndim; p++)
			shape[p] = s->realize.extent[order ? order[p] : p];
		ir_buffer *buf = ir_buffer_new(ctx, t->name, t->type, t->ndim, shape, s->realize.scope);
		buf->tensor = t;
		fl->b[fl->n++] = (binding){t, buf, s->realize.min, order};
		ir_stmt *body = ir_mutate_stmt(m, s->realize.body);
		fl->n--;
		return ir_allocate(ctx, buf, body);
	}
	if (s->kind == IR_PROVIDE) {
		ir_stmt *r = ir_mutate_stmt_children(m, s);
		binding *b = lookup_or_fail(fl, s->provide.t);
		if (!b)
			return s;
		return ir_store(ctx, b->buf, flat_index(ctx, b, r->provide.idx), r->provide.value);
	}
	return ir_mutate_stmt_children(m, s);
}

ir_stmt *ir_flatten(sch_schedule *sch, ir_stmt *s, int nargs, ir_tensor *const *args, ir_buffer **bufs)
{
	kiln_ctx *ctx = sch->ctx;
	static flattener zero;
	flattener *fl = malloc(sizeof *fl);
	*fl = zero;
	fl->m = (ir_mutator){ctx, flatten_expr, flatten_stmt, NULL};
	fl->sch = sch;
	for (int i = 0; i < nargs && i < 256; i++) {
		bufs[i] = ir_buffer_new(ctx, args[i]->name, args[i]->type, args[i]->ndim, args[i]->shape, KILN_SCOPE_GLOBAL);
		bufs[i]->tensor = args[i];
		fl->b[fl->n++] = (binding){args[i], bufs[i], NULL, NULL};
	}
	ir_stmt *r = ir_mutate_stmt(&fl->m, s);
	int err = fl->err;
	free(fl);
	return err ? NULL : r;
}
