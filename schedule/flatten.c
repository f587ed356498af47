/*
 * flatten.c — storage flattening: realize becomes allocate, and the
 * multi-dimensional provide/read become store/load at a flat row-major
 * index relative to the realized region's first element, in the stage's
 * storage order, with the strides storage_align pads.
 */
#include <stdlib.h>

#include "ir/mutate.h"
#include "schedule.h"

typedef struct {
	ir_tensor *t;
	ir_buffer *buf;
	ir_expr **min; /* NULL: the region starts at 0 */
	int *order;    /* storage order, outermost first (NULL: row-major) */
	int64_t stride[KILN_MAX_DIMS]; /* per storage position, in elements */
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
		if (b->stride[p] != 1)
			i = ir_mul(ctx, i, ir_i64(ctx, b->stride[p]));
		flat = flat ? ir_add(ctx, flat, i) : i;
	}
	return flat ? flat : ir_i64(ctx, 0);
}

/* Row-major strides over the storage-order shape, each raised to the next
 * value storage_align asks for; the buffer's size then covers the padding. */
static int set_strides(flattener *fl, binding *b, const sch_stage *st)
{
	int n = b->buf->ndim;
	int64_t s = 1;
	for (int p = n - 1; p >= 0; p--) {
		int d = b->order ? b->order[p] : p;
		int64_t f = st ? st->align_factor[d] : 0, o = st ? st->align_offset[d] : 0;
		if (f && p == n - 1) {
			fl->err++;
			return ir_error(fl->m.ctx, "flatten: dimension %d of '%s' is aligned (storage_align) but innermost in "
			                           "storage (storage_order moved it there)", d, b->t->name);
		}
		if (f)
			s += ((o - s % f) % f + f) % f;
		b->stride[p] = s;
		if (__builtin_mul_overflow(s, b->buf->shape[p], &s)) {
			fl->err++;
			return ir_error(fl->m.ctx, "flatten: '%s' is too large to address", b->t->name);
		}
	}
	b->buf->size = s;
	return 0;
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
		buf->double_buffer = st && st->double_buffer;
		binding *b = &fl->b[fl->n++];
		*b = (binding){t, buf, s->realize.min, order, {0}};
		if (set_strides(fl, b, st)) {
			fl->n--;
			return s;
		}
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
		binding *b = &fl->b[fl->n++];
		*b = (binding){args[i], bufs[i], NULL, NULL, {0}};
		set_strides(fl, b, NULL);
	}
	ir_stmt *r = ir_mutate_stmt(&fl->m, s);
	int err = fl->err;
	free(fl);
	return err ? NULL : r;
}
