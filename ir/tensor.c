/*
 * tensor.c — placeholders and compute ops: the tensor-expression graph.
 */
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "mutate.h"

static const char *axis_names[KILN_MAX_DIMS] = {"i", "j", "l", "m", "n", "o", "p", "q"};

/*
 * A tensor's name and shape as they enter: a name, at most KILN_MAX_DIMS
 * positive extents, and an element count whose product neither overflows nor
 * passes KILN_MAX_ARRAY_BYTES (no runtime array could hold more, and index
 * arithmetic on larger extents would overflow 64 bits).
 */
static int check_shape(kiln_ctx *ctx, const char *name, int ndim, const int64_t *shape)
{
	if (!name)
		return ir_error(ctx, "a tensor needs a name (got NULL)");
	if (ndim < 0 || ndim > KILN_MAX_DIMS)
		return ir_error(ctx, "tensor '%s': %d dimensions (at most %d)", name, ndim, KILN_MAX_DIMS);
	if (ndim > 0 && !shape)
		return ir_error(ctx, "tensor '%s': %d dimensions but no shape (NULL)", name, ndim);
	int64_t n = 1;
	for (int d = 0; d < ndim; d++) {
		if (shape[d] <= 0)
			return ir_error(ctx, "tensor '%s': dimension %d has extent %lld; extents must be positive", name, d,
			                (long long)shape[d]);
		if (__builtin_mul_overflow(n, shape[d], &n) || n > KILN_MAX_ARRAY_BYTES)
			return ir_error(ctx, "tensor '%s': more than %lld elements (extent %lld of dimension %d); the limit is "
			                "KILN_MAX_ARRAY_BYTES", name, (long long)KILN_MAX_ARRAY_BYTES, (long long)shape[d], d);
	}
	return 0;
}

/* Element types a tensor can have: bool, int/uint of 8-64 bits, float of 16-64 bits, one lane. */
static bool scalar_type(kiln_dtype t)
{
	if (t.lanes != 1)
		return false;
	if (t.code == KILN_BOOL)
		return t.bits == 1 || t.bits == 8;
	if (t.code == KILN_INT || t.code == KILN_UINT)
		return t.bits == 8 || t.bits == 16 || t.bits == 32 || t.bits == 64;
	return t.code == KILN_FLOAT && (t.bits == 16 || t.bits == 32 || t.bits == 64);
}

static ir_tensor *new_tensor(kiln_ctx *ctx, const char *name, ir_type t, int ndim, const int64_t *shape, ir_op *op,
                             int vi)
{
	ir_tensor *x = ir_alloc(ctx, sizeof *x);
	x->name = ir_strdup(ctx, name);
	x->type = t;
	x->ndim = ndim;
	if (ndim > 0)
		memcpy(x->shape, shape, sizeof(int64_t) * ndim);
	x->ctx = ctx;
	x->op = op;
	x->value_index = vi;
	return x;
}

kiln_tensor *kiln_placeholder(kiln_ctx *ctx, const char *name, int ndim, const int64_t *shape, kiln_dtype t)
{
	if (check_shape(ctx, name, ndim, shape))
		return NULL;
	int64_t bytes = 1;
	for (int d = 0; d < ndim; d++)
		bytes *= shape[d]; /* check_shape bounded the product */
	if (scalar_type(t) && (__builtin_mul_overflow(bytes, (int64_t)(t.bits + 7) / 8, &bytes) || bytes > KILN_MAX_ARRAY_BYTES))
		return ir_error(ctx, "placeholder '%s': more than %lld bytes (KILN_MAX_ARRAY_BYTES)", name,
		                (long long)KILN_MAX_ARRAY_BYTES), NULL;
	if (!scalar_type(t))
		return ir_error(ctx, "placeholder '%s': element type must be a scalar number (bool, int/uint 8-64 bits, "
		                "float 16-64 bits), got code %u with %u bits and %u lanes", name, t.code, t.bits, t.lanes), NULL;
	ir_op *op = ir_alloc(ctx, sizeof *op);
	op->kind = IR_OP_PLACEHOLDER;
	op->name = ir_strdup(ctx, name);
	op->nout = 1;
	op->outs = ir_alloc(ctx, sizeof(ir_tensor *));
	op->outs[0] = new_tensor(ctx, name, t, ndim, shape, op, 0);
	return op->outs[0];
}

/* Is there a reduction anywhere below the top of e? */
static bool nested_reduce(const ir_expr *e, bool top)
{
	if (!e)
		return false;
	switch (e->kind) {
	case IR_REDUCE:
		return !top || nested_reduce(e->red.src, false) || nested_reduce(e->red.cond, false);
	case IR_SELECT:
	case IR_IF_THEN_ELSE:
		return nested_reduce(e->sel.cond, false) || nested_reduce(e->sel.t, false) || nested_reduce(e->sel.f, false);
	case IR_CALL:
		return nested_reduce(e->call.a, false) || nested_reduce(e->call.b, false);
	case IR_READ:
		for (int d = 0; d < e->read.t->ndim; d++)
			if (nested_reduce(e->read.idx[d], false))
				return true;
		return false;
	case IR_NOT:
	case IR_CAST:
		return nested_reduce(e->bin.a, false);
	case IR_LET:
		return nested_reduce(e->let.value, false) || nested_reduce(e->let.body, false);
	default:
		if (ir_is_binary(e->kind))
			return nested_reduce(e->bin.a, false) || nested_reduce(e->bin.b, false);
		return false;
	}
}

ir_op *ir_compute_op(kiln_ctx *ctx, const char *name, int naxis, ir_iter **axis, int nout, ir_expr **body,
                     const char *const *out_names)
{
	for (int i = 0; i < nout; i++) {
		if (!body[i])
			return NULL;
		if (body[i]->type.lanes != 1 || body[i]->type.code == KILN_HANDLE)
			return ir_error(ctx, "compute '%s': body must be a scalar number", name), NULL;
		if (nested_reduce(body[i], true))
			return ir_error(ctx, "compute '%s': a reduction may only be the whole body, not part of it "
			                     "(declare it as a separate compute)", name), NULL;
		bool red = body[i]->kind == IR_REDUCE, red0 = body[0]->kind == IR_REDUCE;
		if (red != red0 || (red && (body[i]->red.naxis != body[0]->red.naxis ||
		                            memcmp(body[i]->red.axis, body[0]->red.axis,
		                                   sizeof(ir_iter *) * body[0]->red.naxis))))
			return ir_error(ctx, "compute '%s': all outputs must reduce over the same axes or none", name), NULL;
	}
	ir_op *op = ir_alloc(ctx, sizeof *op);
	op->kind = IR_OP_COMPUTE;
	op->name = ir_strdup(ctx, name);
	op->naxis = naxis;
	op->axis = axis;
	if (body[0]->kind == IR_REDUCE) {
		op->nreduce = body[0]->red.naxis;
		op->reduce = body[0]->red.axis;
	}
	op->nout = nout;
	op->body = ir_alloc(ctx, sizeof(ir_expr *) * nout);
	memcpy(op->body, body, sizeof(ir_expr *) * nout);
	op->outs = ir_alloc(ctx, sizeof(ir_tensor *) * nout);
	int64_t shape[KILN_MAX_DIMS];
	for (int d = 0; d < naxis; d++)
		shape[d] = axis[d]->extent;
	for (int i = 0; i < nout; i++)
		op->outs[i] = new_tensor(ctx, out_names ? out_names[i] : nout == 1 ? name : ir_fmt(ctx, "%s.v%d", name, i),
		                         body[i]->type, naxis, shape, op, i);
	return op;
}

static ir_iter **make_axes(kiln_ctx *ctx, int ndim, const int64_t *shape, const char *const *names, ir_expr **vars)
{
	ir_iter **axis = ir_alloc(ctx, sizeof(ir_iter *) * (ndim ? ndim : 1));
	for (int d = 0; d < ndim; d++) {
		axis[d] = ir_iter_new(ctx, names && names[d] ? names[d] : axis_names[d], 0, shape[d], false);
		vars[d] = axis[d]->var;
	}
	return axis;
}

typedef struct {
	int n;
	const ir_expr *var[256]; /* distinct variables (a body has a handful: its axes and reduce axes) */
} var_set;

static bool collect_vars(const ir_expr *e, void *user)
{
	var_set *vs = user;
	if (e->kind != IR_VAR)
		return true;
	for (int i = 0; i < vs->n; i++)
		if (vs->var[i] == e)
			return true;
	if (vs->n < 256)
		vs->var[vs->n++] = e;
	return true;
}

/* Whether a variable other than self is called name (in the body or among the axes). */
static bool name_used(const var_set *vs, int ndim, ir_iter *const *axis, const ir_expr *self, const char *name)
{
	for (int i = 0; i < vs->n; i++)
		if (vs->var[i] != self && !strcmp(vs->var[i]->var.name, name))
			return true;
	for (int d = 0; d < ndim; d++)
		if (axis[d]->var != self && !strcmp(axis[d]->var->var.name, name))
			return true;
	return false;
}

/*
 * Default axis names (i, j, l, ...) must not repeat a name the body uses for
 * something else (a reduce axis the user called j): the printed IR would
 * show two loops called j. A clashing default gets a numbered name instead
 * (j1, j2, ...); names the user gave are kept as given.
 */
static void rename_defaults(kiln_ctx *ctx, int ndim, ir_iter **axis, const char *const *names, int nout,
                            ir_expr *const *body)
{
	var_set vs = {0};
	for (int k = 0; k < nout; k++)
		if (body[k])
			ir_visit_expr(body[k], collect_vars, &vs);
	for (int d = 0; d < ndim; d++) {
		ir_expr *v = axis[d]->var;
		if ((names && names[d]) || !name_used(&vs, ndim, axis, v, v->var.name))
			continue;
		for (int k = 1;; k++) {
			const char *cand = ir_fmt(ctx, "%s%d", axis_names[d], k);
			if (!name_used(&vs, ndim, axis, v, cand)) {
				v->var.name = cand; /* the variable is still private to this compute */
				break;
			}
		}
	}
}

/* The body being checked, and the first reduce axis it uses outside a reduction over it. */
typedef struct {
	const ir_expr *body;
	const char *bad;
} reduce_scope;

static bool reduce_var_visit(const ir_expr *e, void *user)
{
	reduce_scope *c = user;
	if (e->kind != IR_VAR || !e->var.iter || !e->var.iter->reduce)
		return true;
	for (int a = 0; c->body->kind == IR_REDUCE && a < c->body->red.naxis; a++)
		if (c->body->red.axis[a] == e->var.iter)
			return true;
	c->bad = e->var.name;
	return false;
}

/* A user's bodies may use a reduce axis only inside the reduction over it (the
 * whole body): said here, not at build time as "variable not in scope". */
static int check_reduce_vars(kiln_ctx *ctx, const char *name, int nout, ir_expr *const *body)
{
	for (int i = 0; i < nout; i++) {
		reduce_scope c = {body[i], NULL};
		if (body[i])
			ir_visit_expr(body[i], reduce_var_visit, &c);
		if (c.bad)
			return ir_error(ctx, "compute '%s': reduce axis '%s' is used outside a reduction over it", name, c.bad);
	}
	return 0;
}

kiln_tensor *kiln_compute(kiln_ctx *ctx, const char *name, int ndim, const int64_t *shape, kiln_compute_fn fn,
                          void *user)
{
	return kiln_compute_named(ctx, name, ndim, shape, NULL, fn, user);
}

kiln_tensor *kiln_compute_named(kiln_ctx *ctx, const char *name, int ndim, const int64_t *shape,
                                const char *const *names, kiln_compute_fn fn, void *user)
{
	if (check_shape(ctx, name, ndim, shape))
		return NULL;
	ir_expr *vars[KILN_MAX_DIMS];
	ir_iter **axis = make_axes(ctx, ndim, shape, names, vars);
	ir_expr *body = fn(ctx, vars, user);
	if (!body)
		return ctx->nerr ? NULL : (ir_error(ctx, "compute '%s': the body callback returned NULL", name), NULL);
	if (check_reduce_vars(ctx, name, 1, &body))
		return NULL;
	rename_defaults(ctx, ndim, axis, names, 1, &body);
	ir_op *op = ir_compute_op(ctx, name, ndim, axis, 1, &body, NULL);
	return op ? op->outs[0] : NULL;
}

int kiln_compute_multi(kiln_ctx *ctx, const char *name, int ndim, const int64_t *shape, int nout,
                       kiln_compute_multi_fn fn, void *user, kiln_tensor **outs)
{
	if (check_shape(ctx, name, ndim, shape))
		return -1;
	if (nout < 1 || nout > 16)
		return ir_error(ctx, "compute '%s': %d outputs (1 to 16)", name, nout);
	ir_expr *vars[KILN_MAX_DIMS];
	ir_iter **axis = make_axes(ctx, ndim, shape, NULL, vars);
	ir_expr **body = ir_alloc(ctx, sizeof(ir_expr *) * nout);
	if (fn(ctx, vars, body, user))
		return ctx->nerr ? -1 : ir_error(ctx, "compute '%s': the body callback failed", name);
	if (check_reduce_vars(ctx, name, nout, body))
		return -1;
	rename_defaults(ctx, ndim, axis, NULL, nout, body);
	ir_op *op = ir_compute_op(ctx, name, ndim, axis, nout, body, NULL);
	if (!op)
		return -1;
	for (int i = 0; i < nout; i++)
		outs[i] = op->outs[i];
	return 0;
}

typedef struct {
	int naxis;
	ir_iter *const *axes;
	const char *bad;
} axis_scope;

static bool axis_var_visit(const ir_expr *e, void *user)
{
	axis_scope *c = user;
	if (e->kind != IR_VAR || !e->var.iter || e->var.iter->reduce)
		return true;
	for (int a = 0; a < c->naxis; a++)
		if (c->axes[a] == e->var.iter)
			return true;
	c->bad = e->var.name;
	return false;
}

kiln_tensor *kiln_compute_expr(kiln_ctx *ctx, const char *name, int naxis, kiln_iter *const *axes, kiln_expr *body)
{
	if (!body)
		return NULL;
	if (naxis < 0 || naxis > KILN_MAX_DIMS || (naxis && !axes))
		return ir_error(ctx, "compute '%s': %d axes (0 to %d)", name ? name : "(NULL)", naxis, KILN_MAX_DIMS), NULL;
	int64_t shape[KILN_MAX_DIMS];
	for (int d = 0; d < naxis; d++) {
		if (!axes[d])
			return NULL;
		if (axes[d]->reduce)
			return ir_error(ctx, "compute '%s': '%s' is a reduce axis, not an output axis", name ? name : "(NULL)",
			                axes[d]->var->var.name), NULL;
		for (int e = 0; e < d; e++)
			if (axes[e] == axes[d] || !strcmp(axes[e]->var->var.name, axes[d]->var->var.name))
				return ir_error(ctx, "compute '%s': axis '%s' is given twice", name ? name : "(NULL)",
				                axes[d]->var->var.name), NULL;
		shape[d] = axes[d]->extent;
	}
	if (check_shape(ctx, name, naxis, shape) || check_reduce_vars(ctx, name, 1, &body))
		return NULL;
	axis_scope c = {naxis, axes, NULL};
	ir_visit_expr(body, axis_var_visit, &c);
	if (c.bad)
		return ir_error(ctx, "compute '%s': axis '%s' is not one of its output axes", name, c.bad), NULL;
	/* fresh axes per compute: an iterator belongs to one stage, and the caller's
	 * may be reused to declare the next compute */
	ir_expr *vars[KILN_MAX_DIMS], *olds[KILN_MAX_DIMS];
	const char *names[KILN_MAX_DIMS];
	for (int d = 0; d < naxis; d++) {
		names[d] = axes[d]->var->var.name;
		olds[d] = axes[d]->var;
	}
	ir_iter **axis = make_axes(ctx, naxis, shape, names, vars);
	body = ir_substitute(ctx, body, naxis, olds, vars);
	ir_op *op = ir_compute_op(ctx, name, naxis, axis, 1, &body, NULL);
	return op ? op->outs[0] : NULL;
}

double kiln_tensor_work(const kiln_tensor *t)
{
	double w = 1;
	for (int d = 0; d < t->ndim; d++)
		w *= (double)t->shape[d];
	for (int r = 0; t->op->kind == IR_OP_COMPUTE && r < t->op->nreduce; r++)
		w *= (double)t->op->reduce[r]->extent;
	return w;
}

const char *kiln_tensor_name(const kiln_tensor *t) { return t->name; }
int kiln_tensor_ndim(const kiln_tensor *t) { return t->ndim; }
const int64_t *kiln_tensor_shape(const kiln_tensor *t) { return t->shape; }
kiln_dtype kiln_tensor_dtype(const kiln_tensor *t) { return t->type; }

static int add_tensor(ir_tensor *t, ir_tensor ***list, int *n, int *cap)
{
	for (int i = 0; i < *n; i++)
		if ((*list)[i] == t)
			return 0;
	if (*n == *cap) {
		int nc = *cap ? *cap * 2 : 8;
		ir_tensor **nl = realloc(*list, sizeof(ir_tensor *) * nc);
		if (!nl)
			return -1;
		*list = nl;
		*cap = nc;
	}
	(*list)[(*n)++] = t;
	return 0;
}

/* Collects the tensors e reads; the list is malloc'ed (caller frees). */
int ir_expr_tensors(const ir_expr *e, ir_tensor ***list, int *n, int *cap)
{
	if (!e)
		return 0;
	switch (e->kind) {
	case IR_READ:
		add_tensor(e->read.t, list, n, cap);
		for (int d = 0; d < e->read.t->ndim; d++)
			ir_expr_tensors(e->read.idx[d], list, n, cap);
		return 0;
	case IR_SELECT:
	case IR_IF_THEN_ELSE:
		ir_expr_tensors(e->sel.cond, list, n, cap);
		ir_expr_tensors(e->sel.t, list, n, cap);
		return ir_expr_tensors(e->sel.f, list, n, cap);
	case IR_CALL:
		ir_expr_tensors(e->call.a, list, n, cap);
		return ir_expr_tensors(e->call.b, list, n, cap);
	case IR_REDUCE:
		ir_expr_tensors(e->red.src, list, n, cap);
		return ir_expr_tensors(e->red.cond, list, n, cap);
	case IR_NOT:
	case IR_CAST:
		return ir_expr_tensors(e->bin.a, list, n, cap);
	case IR_LET:
		ir_expr_tensors(e->let.value, list, n, cap);
		return ir_expr_tensors(e->let.body, list, n, cap);
	case IR_RAMP:
	case IR_BROADCAST:
	case IR_LOAD:
		return 0;
	default:
		if (ir_is_binary(e->kind)) {
			ir_expr_tensors(e->bin.a, list, n, cap);
			return ir_expr_tensors(e->bin.b, list, n, cap);
		}
		return 0;
	}
}
int kiln_tensor_is_placeholder(const kiln_tensor *t) { return t->op->kind == IR_OP_PLACEHOLDER; }
