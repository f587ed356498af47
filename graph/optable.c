/*
 * optable.c — finding an operator, and the helpers every table shares:
 * errors that name the node, constant inputs, broadcasting, index maps.
 */
#include <stdarg.h>
#include <string.h>

#include "ops/ops.h"
#include "optable.h"

const gr_opdef *gr_op_find(const char *name)
{
	const gr_opdef *tables[] = {gr_ops_elemwise, gr_ops_nn, gr_ops_shape};
	for (size_t t = 0; t < sizeof tables / sizeof *tables; t++)
		for (const gr_opdef *d = tables[t]; d->name; d++)
			if (!strcmp(d->name, name))
				return d;
	return NULL;
}

int gr_node_error(gr_build *b, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return ir_error(b->ctx, "%s: %s: %s", b->g->what, gr_node_label(b->g, b->n), msg);
}

kiln_expr *gr_i64(kiln_ctx *ctx, int64_t v) { return kiln_const(ctx, KILN_I64, (double)v); }

gr_value *gr_input(gr_build *b, int k)
{
	return k < b->n->nin && b->n->in[k] >= 0 ? &b->g->values[b->n->in[k]] : NULL;
}

int gr_const_ints(gr_build *b, int k, int64_t *out, int max, int *count)
{
	gr_value *v = gr_input(b, k);
	*count = -1;
	if (!v)
		return 0;
	if (!v->data)
		return gr_node_error(b, "input %d ('%s') must be a constant: shapes that depend on run-time data are not supported",
		                     k, v->name);
	if (v->dtype.code != KILN_INT || (v->dtype.bits != 64 && v->dtype.bits != 32) || v->ndim > 1)
		return gr_node_error(b, "input %d ('%s') must be a 0-D or 1-D int32 or int64 tensor", k, v->name);
	int64_t n = gr_numel(v);
	if (n > max)
		return gr_node_error(b, "input %d ('%s') has %lld values (at most %d)", k, v->name, (long long)n, max);
	for (int64_t i = 0; i < n; i++)
		out[i] = v->dtype.bits == 64 ? ((int64_t *)v->data)[i] : ((int32_t *)v->data)[i];
	*count = (int)n;
	return 0;
}

int gr_const_scalar(gr_build *b, int k, double dflt, double *out)
{
	gr_value *v = gr_input(b, k);
	*out = dflt;
	if (!v)
		return 0;
	if (!v->data)
		return gr_node_error(b, "input %d ('%s') must be a constant", k, v->name);
	if (gr_numel(v) != 1)
		return gr_node_error(b, "input %d ('%s') must hold one value", k, v->name);
	const void *p = v->data;
	switch (v->dtype.code) {
	case KILN_FLOAT:
		if (v->dtype.bits == 32)
			*out = *(const float *)p;
		else if (v->dtype.bits == 64)
			*out = *(const double *)p;
		else
			return gr_node_error(b, "input %d ('%s'): float%d constants are not read", k, v->name, v->dtype.bits);
		return 0;
	case KILN_INT:
		*out = v->dtype.bits == 64 ? (double)*(const int64_t *)p : v->dtype.bits == 32 ? *(const int32_t *)p
		     : v->dtype.bits == 16 ? *(const int16_t *)p : *(const int8_t *)p;
		return 0;
	case KILN_UINT:
		*out = v->dtype.bits == 64 ? (double)*(const uint64_t *)p : v->dtype.bits == 32 ? *(const uint32_t *)p
		     : v->dtype.bits == 16 ? *(const uint16_t *)p : *(const uint8_t *)p;
		return 0;
	case KILN_BOOL:
		*out = *(const uint8_t *)p != 0;
		return 0;
	}
	return gr_node_error(b, "input %d ('%s') has an unreadable type", k, v->name);
}

int gr_broadcast(gr_build *b, int na, const int64_t *a, int nb, const int64_t *bs, int *nout, int64_t *out)
{
	int n = na > nb ? na : nb;
	for (int d = 0; d < n; d++) {
		int64_t x = d - (n - na) >= 0 ? a[d - (n - na)] : 1;
		int64_t y = d - (n - nb) >= 0 ? bs[d - (n - nb)] : 1;
		if (x != y && x != 1 && y != 1)
			return gr_node_error(b, "shapes do not broadcast: extent %lld against %lld in dimension %d of %d",
			                     (long long)x, (long long)y, d, n);
		out[d] = x == 1 ? y : x;
	}
	*nout = n;
	return 0;
}

kiln_expr *gr_bcast_read(kiln_ctx *ctx, kiln_tensor *t, int ndim, kiln_expr *const *idx)
{
	int r = kiln_tensor_ndim(t);
	const int64_t *s = kiln_tensor_shape(t);
	kiln_expr *ix[KILN_MAX_DIMS + 1];
	for (int d = 0; d < r; d++)
		ix[d] = s[d] == 1 ? gr_i64(ctx, 0) : idx[ndim - r + d];
	return kiln_read_n(ctx, t, r, ix);
}

typedef struct {
	gr_build *b;
	int nin;
	int ndim;
} ew_args;

static kiln_expr *ew_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	ew_args *e = user;
	kiln_expr *args[GR_MAX_IN] = {0};
	for (int k = 0; k < e->nin; k++)
		if (e->b->in[k])
			args[k] = gr_bcast_read(ctx, e->b->in[k], e->ndim, idx);
	return e->b->n->def->expr(e->b, args);
}

int gr_elemwise_build(gr_build *b)
{
	int ndim = 0;
	int64_t shape[KILN_MAX_DIMS] = {0};
	for (int k = 0; k < b->n->nin; k++) {
		if (!b->in[k])
			continue;
		int64_t s2[KILN_MAX_DIMS];
		int n2;
		if (gr_broadcast(b, ndim, shape, kiln_tensor_ndim(b->in[k]), kiln_tensor_shape(b->in[k]), &n2, s2))
			return -1;
		ndim = n2;
		memcpy(shape, s2, sizeof s2);
	}
	ew_args *e = ir_alloc(b->ctx, sizeof *e);
	*e = (ew_args){b, b->n->nin, ndim};
	b->out[0] = op_tag(kiln_compute(b->ctx, ir_fmt(b->ctx, "%s", b->n->op), ndim, shape, ew_body, e), TAG_INJECTIVE);
	return b->out[0] ? 0 : -1;
}

int gr_axis(gr_build *b, int64_t axis, int rank, const char *what)
{
	if (rank < 1 || axis < -rank || axis >= rank)
		return gr_node_error(b, "%s %lld is outside a %d-D tensor", what, (long long)axis, rank);
	return (int)(axis < 0 ? axis + rank : axis);
}

void gr_unflatten(kiln_ctx *ctx, kiln_expr *flat, int ndim, const int64_t *shape, kiln_expr **out)
{
	int64_t stride = 1;
	for (int d = ndim - 1; d >= 0; d--) {
		kiln_expr *q = stride == 1 ? flat : kiln_div(ctx, flat, gr_i64(ctx, stride));
		out[d] = d == 0 ? q : kiln_mod(ctx, q, gr_i64(ctx, shape[d]));
		stride *= shape[d];
	}
}

kiln_expr *gr_flatten(kiln_ctx *ctx, int ndim, const int64_t *shape, kiln_expr *const *idx)
{
	kiln_expr *f = gr_i64(ctx, 0);
	for (int d = 0; d < ndim; d++)
		f = kiln_add(ctx, kiln_mul(ctx, f, gr_i64(ctx, shape[d])), idx[d]);
	return f;
}

kiln_expr *gr_read_as(kiln_ctx *ctx, kiln_tensor *t, int ndim, const int64_t *shape, kiln_expr *const *idx)
{
	int r = kiln_tensor_ndim(t);
	const int64_t *s = kiln_tensor_shape(t);
	if (r == ndim && !memcmp(s, shape, sizeof(int64_t) * r))
		return kiln_read_n(ctx, t, r, idx);
	/* the same trailing extents keep their index; the leading ones go through a flat position */
	int keep = 0;
	while (keep < r && keep < ndim && s[r - 1 - keep] == shape[ndim - 1 - keep])
		keep++;
	kiln_expr *ix[KILN_MAX_DIMS];
	kiln_expr *flat = gr_flatten(ctx, ndim - keep, shape, idx);
	gr_unflatten(ctx, flat, r - keep, s, ix);
	for (int d = 0; d < keep; d++)
		ix[r - keep + d] = idx[ndim - keep + d];
	return kiln_read_n(ctx, t, r, ix);
}

kiln_tensor *gr_view_input(gr_build *b, int k, int ndim, const int64_t *shape)
{
	kiln_tensor *t = b->in[k];
	if (!t)
		return NULL;
	b->in[k] = kiln_placeholder(b->ctx, kiln_tensor_name(t), ndim, shape, kiln_tensor_dtype(t));
	return b->in[k];
}

void gr_set_view(gr_build *b, int k, kiln_tensor *t, int ndim, const int64_t *shape)
{
	b->out[k] = t;
	b->view[k] = true;
	b->view_ndim[k] = ndim;
	memcpy(b->view_shape[k], shape, sizeof(int64_t) * ndim);
}
