/*
 * op_shape.c — operators that move elements without arithmetic (reshapes,
 * transposes, slices, gathers, concatenation, padding, resizing) and the
 * sources whose values the graph knows while it builds (Shape, Constant,
 * ConstantOfShape).
 */
#include <math.h>
#include <string.h>

#include "ops/ops.h"
#include "optable.h"

static int64_t numel(const int64_t *s, int n)
{
	int64_t p = 1;
	for (int i = 0; i < n; i++)
		p *= s[i];
	return p;
}

static kiln_expr *copy_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	kiln_tensor *X = user;
	return kiln_read_n(ctx, X, kiln_tensor_ndim(X), idx);
}

/* The output is input 0's elements in another shape: the kernel copies a view. */
static int reshape_to(gr_build *b, int ndim, const int64_t *shape)
{
	if (ndim > KILN_MAX_DIMS)
		return gr_node_error(b, "the result has %d dimensions (at most %d)", ndim, KILN_MAX_DIMS);
	if (numel(shape, ndim) != numel(kiln_tensor_shape(b->in[0]), kiln_tensor_ndim(b->in[0])))
		return gr_node_error(b, "cannot reshape %lld elements into %lld", (long long)numel(kiln_tensor_shape(b->in[0]),
		                     kiln_tensor_ndim(b->in[0])), (long long)numel(shape, ndim));
	kiln_tensor *X = gr_view_input(b, 0, ndim, shape);
	b->out[0] = op_tag(kiln_compute(b->ctx, b->n->op, ndim, shape, copy_body, X), TAG_INJECTIVE);
	return b->out[0] ? 0 : -1;
}

static int reshape_build(gr_build *b)
{
	int64_t want[KILN_MAX_DIMS + 1], shape[KILN_MAX_DIMS];
	int n;
	if (gr_const_ints(b, 1, want, KILN_MAX_DIMS, &n))
		return -1;
	if (n < 0)
		return gr_node_error(b, "the shape input is missing");
	int rank = kiln_tensor_ndim(b->in[0]);
	const int64_t *xs = kiln_tensor_shape(b->in[0]);
	bool allowzero = gr_attr_int(b->n, "allowzero", 0) != 0;
	int infer = -1;
	int64_t known = 1;
	for (int i = 0; i < n; i++) {
		int64_t v = want[i];
		if (v == 0 && !allowzero) {
			if (i >= rank)
				return gr_node_error(b, "shape entry %d is 0 (copy) but the input has only %d dimensions", i, rank);
			v = xs[i];
		}
		if (v == -1) {
			if (infer >= 0)
				return gr_node_error(b, "the shape has more than one -1");
			infer = i;
			v = 1;
		} else if (v < 0) {
			return gr_node_error(b, "shape entry %d is %lld", i, (long long)v);
		}
		shape[i] = v;
		if (__builtin_mul_overflow(known, v, &known))
			return gr_node_error(b, "the shape overflows");
	}
	if (infer >= 0) {
		int64_t total = numel(xs, rank);
		if (known == 0 || total % known)
			return gr_node_error(b, "cannot infer the -1 entry: %lld elements do not divide into %lld",
			                     (long long)total, (long long)known);
		shape[infer] = total / known;
	}
	return reshape_to(b, n, shape);
}

static int flatten_build(gr_build *b)
{
	int rank = kiln_tensor_ndim(b->in[0]);
	const int64_t *xs = kiln_tensor_shape(b->in[0]);
	int64_t axis = gr_attr_int(b->n, "axis", 1);
	if (axis < -rank || axis > rank)
		return gr_node_error(b, "axis %lld is outside [%d, %d]", (long long)axis, -rank, rank);
	if (axis < 0)
		axis += rank;
	return reshape_to(b, 2, (int64_t[]){numel(xs, (int)axis), numel(xs + axis, rank - (int)axis)});
}

/* Squeeze / Unsqueeze: axes from the attribute (before opset 13) or constant input 1. */
static int read_axes(gr_build *b, int64_t *axes, int *n)
{
	const int64_t *a = gr_attr_ints(b->n, "axes", n);
	if (*n > KILN_MAX_DIMS)
		return gr_node_error(b, "too many axes");
	if (*n >= 0) {
		memcpy(axes, a, sizeof(int64_t) * *n);
		return 0;
	}
	return gr_const_ints(b, 1, axes, KILN_MAX_DIMS, n);
}

static int squeeze_build(gr_build *b)
{
	int rank = kiln_tensor_ndim(b->in[0]), n;
	const int64_t *xs = kiln_tensor_shape(b->in[0]);
	int64_t axes[KILN_MAX_DIMS], shape[KILN_MAX_DIMS];
	bool drop[KILN_MAX_DIMS] = {0};
	if (read_axes(b, axes, &n))
		return -1;
	for (int i = 0; i < n; i++) {
		int a = gr_axis(b, axes[i], rank, "axis");
		if (a < 0)
			return -1;
		if (xs[a] != 1)
			return gr_node_error(b, "axis %d has extent %lld, not 1", a, (long long)xs[a]);
		drop[a] = true;
	}
	int on = 0;
	for (int d = 0; d < rank; d++)
		if (!(n < 0 ? xs[d] == 1 : drop[d]))
			shape[on++] = xs[d];
	return reshape_to(b, on, shape);
}

static int unsqueeze_build(gr_build *b)
{
	int rank = kiln_tensor_ndim(b->in[0]), n;
	const int64_t *xs = kiln_tensor_shape(b->in[0]);
	int64_t axes[KILN_MAX_DIMS], shape[KILN_MAX_DIMS];
	bool ins[KILN_MAX_DIMS] = {0};
	if (read_axes(b, axes, &n))
		return -1;
	if (n < 0)
		return gr_node_error(b, "no axes");
	int on = rank + n;
	if (on > KILN_MAX_DIMS)
		return gr_node_error(b, "the result has %d dimensions (at most %d)", on, KILN_MAX_DIMS);
	for (int i = 0; i < n; i++) {
		int a = gr_axis(b, axes[i], on, "axis");
		if (a < 0)
			return -1;
		if (ins[a])
			return gr_node_error(b, "axis %d appears twice", a);
		ins[a] = true;
	}
	for (int d = 0, k = 0; d < on; d++)
		shape[d] = ins[d] ? 1 : xs[k++];
	return reshape_to(b, on, shape);
}

static int transpose_build(gr_build *b)
{
	int rank = kiln_tensor_ndim(b->in[0]), n;
	const int64_t *p = gr_attr_ints(b->n, "perm", &n);
	int perm[KILN_MAX_DIMS];
	if (n >= 0 && n != rank)
		return gr_node_error(b, "perm has %d entries for a %d-D input", n, rank);
	for (int d = 0; d < rank; d++) {
		perm[d] = n >= 0 ? (int)p[d] : rank - 1 - d;
		if (n >= 0 && (p[d] < 0 || p[d] >= rank))
			return gr_node_error(b, "perm entry %lld is outside the %d dimensions", (long long)p[d], rank);
	}
	b->out[0] = kiln_op_transpose(b->ctx, b->in[0], perm);
	return b->out[0] ? 0 : -1;
}

static int concat_build(gr_build *b)
{
	int n = 0;
	kiln_tensor *xs[GR_MAX_IN];
	for (int k = 0; k < b->n->nin; k++)
		if (b->in[k] && numel(kiln_tensor_shape(b->in[k]), kiln_tensor_ndim(b->in[k])) > 0)
			xs[n++] = b->in[k];
	if (!n)
		return gr_node_error(b, "every input is empty");
	int axis = gr_axis(b, gr_attr_int(b->n, "axis", 0), kiln_tensor_ndim(xs[0]), "axis");
	if (axis < 0)
		return -1;
	b->out[0] = n == 1 ? op_tag(kiln_compute(b->ctx, "concat", kiln_tensor_ndim(xs[0]), kiln_tensor_shape(xs[0]),
	                                         copy_body, xs[0]), TAG_INJECTIVE)
	                   : kiln_op_concat(b->ctx, n, xs, axis);
	return b->out[0] ? 0 : -1;
}

/* ---- Slice and Split: each output reads the input at start + step * index along some axes ---- */

typedef struct {
	kiln_tensor *X;
	int64_t start[KILN_MAX_DIMS], step[KILN_MAX_DIMS];
} slice_args;

static kiln_expr *slice_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	slice_args *s = user;
	int rank = kiln_tensor_ndim(s->X);
	kiln_expr *ix[KILN_MAX_DIMS];
	for (int d = 0; d < rank; d++)
		ix[d] = s->start[d] == 0 && s->step[d] == 1 ? idx[d]
		      : kiln_add(ctx, gr_i64(ctx, s->start[d]), kiln_mul(ctx, idx[d], gr_i64(ctx, s->step[d])));
	return kiln_read_n(ctx, s->X, rank, ix);
}

static kiln_tensor *slice_of(gr_build *b, const char *name, slice_args *s, const int64_t *shape)
{
	return op_tag(kiln_compute(b->ctx, name, kiln_tensor_ndim(s->X), shape, slice_body, s), TAG_INJECTIVE);
}

static int slice_build(gr_build *b)
{
	kiln_tensor *X = b->in[0];
	int rank = kiln_tensor_ndim(X);
	const int64_t *xs = kiln_tensor_shape(X);
	int64_t starts[KILN_MAX_DIMS], ends[KILN_MAX_DIMS], axes[KILN_MAX_DIMS], steps[KILN_MAX_DIMS];
	int ns, ne, na, nt;
	if (b->opset < 10) {
		const int64_t *p;
		if (!(p = gr_attr_ints(b->n, "starts", &ns)) || ns > KILN_MAX_DIMS)
			return gr_node_error(b, "starts is missing or too long");
		memcpy(starts, p, sizeof(int64_t) * ns);
		if (!(p = gr_attr_ints(b->n, "ends", &ne)) || ne > KILN_MAX_DIMS)
			return gr_node_error(b, "ends is missing or too long");
		memcpy(ends, p, sizeof(int64_t) * ne);
		if ((p = gr_attr_ints(b->n, "axes", &na)) && na <= KILN_MAX_DIMS)
			memcpy(axes, p, sizeof(int64_t) * na);
		nt = -1;
	} else if (gr_const_ints(b, 1, starts, KILN_MAX_DIMS, &ns) || gr_const_ints(b, 2, ends, KILN_MAX_DIMS, &ne) ||
	           gr_const_ints(b, 3, axes, KILN_MAX_DIMS, &na) || gr_const_ints(b, 4, steps, KILN_MAX_DIMS, &nt)) {
		return -1;
	}
	if (ns < 0 || ns != ne || (na >= 0 && na != ns) || (nt >= 0 && nt != ns) || na > KILN_MAX_DIMS)
		return gr_node_error(b, "starts, ends, axes and steps must have the same length");
	slice_args *s = ir_alloc(b->ctx, sizeof *s);
	s->X = X;
	int64_t shape[KILN_MAX_DIMS];
	bool seen[KILN_MAX_DIMS] = {0};
	for (int d = 0; d < rank; d++)
		s->step[d] = 1, shape[d] = xs[d];
	for (int i = 0; i < ns; i++) {
		int a = gr_axis(b, na >= 0 ? axes[i] : i, rank, "axis");
		if (a < 0)
			return -1;
		if (seen[a])
			return gr_node_error(b, "axis %d appears twice", a);
		seen[a] = true;
		int64_t step = nt >= 0 ? steps[i] : 1, dim = xs[a], st = starts[i], en = ends[i];
		if (step == 0)
			return gr_node_error(b, "a step is 0");
		/* ONNX: negative counts from the end, then clamp to [0, dim] (step > 0) or [-1, dim - 1] (step < 0) */
		st = st < 0 ? (st < -dim ? 0 : st + dim) : st;
		en = en < 0 ? (en < -dim ? -1 : en + dim) : en;
		if (step > 0) {
			st = st > dim ? dim : st;
			en = en > dim ? dim : en < 0 ? 0 : en;
			shape[a] = en > st ? (en - st - 1) / step + 1 : 0;
		} else {
			st = st > dim - 1 ? dim - 1 : st;
			en = en > dim - 1 ? dim - 1 : en;
			shape[a] = st > en ? (st - en - 1) / (step == INT64_MIN ? INT64_MAX : -step) + 1 : 0;
		}
		s->start[a] = st;
		s->step[a] = step;
	}
	if (numel(shape, rank) == 0)
		return gr_node_error(b, "the slice is empty (empty tensors are not supported)");
	b->out[0] = slice_of(b, "slice", s, shape);
	return b->out[0] ? 0 : -1;
}

static int split_build(gr_build *b)
{
	kiln_tensor *X = b->in[0];
	int rank = kiln_tensor_ndim(X), nout = b->n->nout, n;
	const int64_t *xs = kiln_tensor_shape(X);
	int axis = gr_axis(b, gr_attr_int(b->n, "axis", 0), rank, "axis");
	if (axis < 0)
		return -1;
	int64_t parts[GR_MAX_OUT];
	const int64_t *p = gr_attr_ints(b->n, "split", &n);
	if (n > GR_MAX_OUT)
		return gr_node_error(b, "too many parts");
	if (n >= 0)
		memcpy(parts, p, sizeof(int64_t) * n);
	else if (gr_const_ints(b, 1, parts, GR_MAX_OUT, &n))
		return -1;
	if (n < 0) {
		if (xs[axis] % nout)
			return gr_node_error(b, "extent %lld does not split into %d equal parts", (long long)xs[axis], nout);
		for (int k = 0; k < nout; k++)
			parts[k] = xs[axis] / nout;
		n = nout;
	}
	if (n != nout)
		return gr_node_error(b, "split has %d parts for %d outputs", n, nout);
	int64_t total = 0;
	for (int k = 0; k < n; k++) {
		if (parts[k] < 1)
			return gr_node_error(b, "part %d has extent %lld", k, (long long)parts[k]);
		total += parts[k];
	}
	if (total != xs[axis])
		return gr_node_error(b, "the parts add up to %lld, not %lld", (long long)total, (long long)xs[axis]);
	int64_t at = 0;
	for (int k = 0; k < nout; k++) {
		slice_args *s = ir_alloc(b->ctx, sizeof *s);
		s->X = X;
		int64_t shape[KILN_MAX_DIMS];
		for (int d = 0; d < rank; d++)
			s->step[d] = 1, shape[d] = xs[d];
		s->start[axis] = at;
		shape[axis] = parts[k];
		at += parts[k];
		if (!(b->out[k] = slice_of(b, ir_fmt(b->ctx, "split%d", k), s, shape)))
			return -1;
	}
	return 0;
}

/* ---- Gather ---- */

typedef struct {
	kiln_tensor *X, *I;
	int axis;
} gather_args;

static kiln_expr *gather_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	gather_args *g = user;
	int rx = kiln_tensor_ndim(g->X), ri = kiln_tensor_ndim(g->I);
	int64_t dim = kiln_tensor_shape(g->X)[g->axis];
	kiln_expr *ix[KILN_MAX_DIMS];
	kiln_expr *i = kiln_read_n(ctx, g->I, ri, idx + g->axis);
	i = kiln_cast(ctx, KILN_I64, i);
	i = kiln_select(ctx, kiln_lt(ctx, i, gr_i64(ctx, 0)), kiln_add(ctx, i, gr_i64(ctx, dim)), i);
	/* out-of-range indices are undefined in ONNX: clamped, the read stays inside X */
	i = kiln_min(ctx, kiln_max(ctx, i, gr_i64(ctx, 0)), gr_i64(ctx, dim - 1));
	for (int d = 0; d < rx; d++)
		ix[d] = d < g->axis ? idx[d] : d == g->axis ? i : idx[d - 1 + ri];
	return kiln_read_n(ctx, g->X, rx, ix);
}

static int gather_build(gr_build *b)
{
	gather_args *g = ir_alloc(b->ctx, sizeof *g);
	g->X = b->in[0];
	g->I = b->in[1];
	int rx = kiln_tensor_ndim(g->X), ri = kiln_tensor_ndim(g->I);
	if (kiln_tensor_dtype(g->I).code != KILN_INT)
		return gr_node_error(b, "indices must be int32 or int64");
	if ((g->axis = gr_axis(b, gr_attr_int(b->n, "axis", 0), rx, "axis")) < 0)
		return -1;
	int on = rx - 1 + ri;
	if (on > KILN_MAX_DIMS)
		return gr_node_error(b, "the result has %d dimensions (at most %d)", on, KILN_MAX_DIMS);
	const int64_t *xs = kiln_tensor_shape(g->X), *is = kiln_tensor_shape(g->I);
	int64_t shape[KILN_MAX_DIMS];
	for (int d = 0; d < on; d++)
		shape[d] = d < g->axis ? xs[d] : d < g->axis + ri ? is[d - g->axis] : xs[d - ri + 1];
	if (ri == 0) {
		/* a scalar index: one slice of X */
		kiln_tensor *I1 = gr_view_input(b, 1, 1, (int64_t[]){1});
		g->I = I1;
		int64_t s1[KILN_MAX_DIMS + 1];
		memcpy(s1, shape, sizeof(int64_t) * g->axis);
		s1[g->axis] = 1;
		memcpy(s1 + g->axis + 1, shape + g->axis, sizeof(int64_t) * (on - g->axis));
		kiln_tensor *Y = op_tag(kiln_compute(b->ctx, "gather", on + 1, s1, gather_body, g), TAG_INJECTIVE);
		if (!Y)
			return -1;
		gr_set_view(b, 0, Y, on, shape);
		return 0;
	}
	b->out[0] = op_tag(kiln_compute(b->ctx, "gather", on, shape, gather_body, g), TAG_INJECTIVE);
	return b->out[0] ? 0 : -1;
}

/* ---- Expand ---- */

typedef struct {
	kiln_tensor *X;
	int ndim;
} expand_args;

static kiln_expr *expand_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	expand_args *e = user;
	return gr_bcast_read(ctx, e->X, e->ndim, idx);
}

static int expand_build(gr_build *b)
{
	int64_t want[KILN_MAX_DIMS], shape[KILN_MAX_DIMS];
	int n, on;
	if (gr_const_ints(b, 1, want, KILN_MAX_DIMS, &n))
		return -1;
	if (n < 0)
		return gr_node_error(b, "the shape input is missing");
	for (int i = 0; i < n; i++)
		if (want[i] < 0)
			return gr_node_error(b, "shape entry %d is %lld", i, (long long)want[i]);
	if (gr_broadcast(b, kiln_tensor_ndim(b->in[0]), kiln_tensor_shape(b->in[0]), n, want, &on, shape))
		return -1;
	expand_args *e = ir_alloc(b->ctx, sizeof *e);
	*e = (expand_args){b->in[0], on};
	b->out[0] = op_tag(kiln_compute(b->ctx, "expand", on, shape, expand_body, e), TAG_INJECTIVE);
	return b->out[0] ? 0 : -1;
}

/* ---- Pad ---- */

static int pad_build(gr_build *b)
{
	int rank = kiln_tensor_ndim(b->in[0]), n;
	int64_t pads[2 * KILN_MAX_DIMS];
	double value = 0;
	const char *mode = gr_attr_str(b->n, "mode", "constant");
	if (strcmp(mode, "constant"))
		return gr_node_error(b, "mode='%s' is not supported (constant only)", mode);
	if (b->opset < 11) {
		const int64_t *p = gr_attr_ints(b->n, "pads", &n);
		if (n > 2 * KILN_MAX_DIMS)
			return gr_node_error(b, "too many pads");
		if (n >= 0)
			memcpy(pads, p, sizeof(int64_t) * n);
		value = gr_attr_float(b->n, "value", 0);
	} else if (gr_const_ints(b, 1, pads, 2 * KILN_MAX_DIMS, &n) || gr_const_scalar(b, 2, 0, &value)) {
		return -1;
	}
	if (b->n->nin > 3 && b->n->in[3] >= 0)
		return gr_node_error(b, "the axes input is not supported");
	if (n != 2 * rank)
		return gr_node_error(b, "pads has %d entries for a %d-D input (expected %d)", n, rank, 2 * rank);
	for (int i = 0; i < n; i++)
		if (pads[i] < 0)
			return gr_node_error(b, "negative pads (cropping) are not supported");
	b->out[0] = kiln_op_pad(b->ctx, b->in[0], pads, pads + rank, value);
	return b->out[0] ? 0 : -1;
}

/* ---- Resize: nearest and (multi)linear ---- */

typedef struct {
	kiln_tensor *X;
	int rank;
	double scale[KILN_MAX_DIMS];   /* output / input */
	const char *coord, *nearest;
	bool linear;
	int nres, res[KILN_MAX_DIMS];  /* the resized dims */
	int64_t out[KILN_MAX_DIMS];
} resize_args;

/* The input coordinate of output index o along d, as a float expression. */
static kiln_expr *in_coord(kiln_ctx *ctx, const resize_args *r, int d, kiln_expr *o)
{
	kiln_dtype f = KILN_F32;
	kiln_expr *x = kiln_cast(ctx, f, o);
	double s = r->scale[d], in = (double)kiln_tensor_shape(r->X)[d], out = (double)r->out[d];
	if (!strcmp(r->coord, "asymmetric"))
		return kiln_div(ctx, x, kiln_const(ctx, f, s));
	if (!strcmp(r->coord, "align_corners"))
		return out == 1 ? kiln_const(ctx, f, 0) : kiln_mul(ctx, x, kiln_const(ctx, f, (in - 1) / (out - 1)));
	kiln_expr *h = kiln_sub(ctx, kiln_div(ctx, kiln_add(ctx, x, kiln_const(ctx, f, 0.5)), kiln_const(ctx, f, s)),
	                        kiln_const(ctx, f, 0.5));
	if (!strcmp(r->coord, "pytorch_half_pixel") && out == 1)
		return kiln_const(ctx, f, 0);
	if (!strcmp(r->coord, "tf_half_pixel_for_nearest"))
		return kiln_div(ctx, kiln_add(ctx, x, kiln_const(ctx, f, 0.5)), kiln_const(ctx, f, s));
	return h; /* half_pixel, pytorch_half_pixel */
}

static kiln_expr *clamp_i(kiln_ctx *ctx, kiln_expr *i, int64_t n)
{
	return kiln_min(ctx, kiln_max(ctx, i, gr_i64(ctx, 0)), gr_i64(ctx, n - 1));
}

static kiln_expr *resize_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	resize_args *r = user;
	kiln_expr *ix[KILN_MAX_DIMS];
	const int64_t *xs = kiln_tensor_shape(r->X);
	kiln_dtype f = KILN_F32;
	for (int d = 0; d < r->rank; d++)
		ix[d] = idx[d];
	if (!r->linear) {
		for (int k = 0; k < r->nres; k++) {
			int d = r->res[k];
			kiln_expr *c = in_coord(ctx, r, d, idx[d]), *i;
			if (!strcmp(r->nearest, "floor"))
				i = kiln_call(ctx, KILN_FLOOR, c, NULL);
			else if (!strcmp(r->nearest, "ceil"))
				i = kiln_call(ctx, KILN_CEIL, c, NULL);
			else if (!strcmp(r->nearest, "round_prefer_ceil"))
				i = kiln_call(ctx, KILN_FLOOR, kiln_add(ctx, c, kiln_const(ctx, f, 0.5)), NULL);
			else /* round_prefer_floor: halves go down */
				i = kiln_call(ctx, KILN_CEIL, kiln_sub(ctx, c, kiln_const(ctx, f, 0.5)), NULL);
			ix[d] = clamp_i(ctx, kiln_cast(ctx, KILN_I64, i), xs[d]);
		}
		return kiln_read_n(ctx, r->X, r->rank, ix);
	}
	/* linear: 2^nres taps, each weighted by the product of its per-dim weights */
	kiln_expr *lo[KILN_MAX_DIMS], *hi[KILN_MAX_DIMS], *wl[KILN_MAX_DIMS], *wh[KILN_MAX_DIMS];
	for (int k = 0; k < r->nres; k++) {
		int d = r->res[k];
		kiln_expr *c = in_coord(ctx, r, d, idx[d]);
		c = kiln_min(ctx, kiln_max(ctx, c, kiln_const(ctx, f, 0)), kiln_const(ctx, f, (double)(xs[d] - 1)));
		kiln_expr *fl = kiln_call(ctx, KILN_FLOOR, c, NULL);
		kiln_expr *i0 = kiln_cast(ctx, KILN_I64, fl);
		lo[k] = clamp_i(ctx, i0, xs[d]);
		hi[k] = clamp_i(ctx, kiln_add(ctx, i0, gr_i64(ctx, 1)), xs[d]);
		wh[k] = kiln_sub(ctx, c, fl);
		wl[k] = kiln_sub(ctx, kiln_const(ctx, f, 1), wh[k]);
	}
	kiln_expr *sum = NULL;
	for (int m = 0; m < (1 << r->nres); m++) {
		kiln_expr *w = NULL;
		for (int k = 0; k < r->nres; k++) {
			bool up = m >> k & 1;
			ix[r->res[k]] = up ? hi[k] : lo[k];
			w = w ? kiln_mul(ctx, w, up ? wh[k] : wl[k]) : (up ? wh[k] : wl[k]);
		}
		kiln_expr *v = kiln_cast(ctx, f, kiln_read_n(ctx, r->X, r->rank, ix));
		v = kiln_mul(ctx, v, w);
		sum = sum ? kiln_add(ctx, sum, v) : v;
	}
	return kiln_cast(ctx, kiln_tensor_dtype(r->X), sum);
}

static int resize_build(gr_build *b)
{
	resize_args *r = ir_alloc(b->ctx, sizeof *r);
	r->X = b->in[0];
	r->rank = kiln_tensor_ndim(r->X);
	const int64_t *xs = kiln_tensor_shape(r->X);
	const char *mode = gr_attr_str(b->n, "mode", "nearest");
	r->linear = !strcmp(mode, "linear") || !strcmp(mode, "bilinear");
	if (!r->linear && strcmp(mode, "nearest"))
		return gr_node_error(b, "mode='%s' is not supported (nearest, linear)", mode);
	r->coord = gr_attr_str(b->n, "coordinate_transformation_mode", b->opset < 11 ? "asymmetric" : "half_pixel");
	r->nearest = gr_attr_str(b->n, "nearest_mode", b->opset < 11 ? "floor" : "round_prefer_floor");
	static const char *coords[] = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
	                               "tf_half_pixel_for_nearest"};
	bool ok = false;
	for (size_t i = 0; i < sizeof coords / sizeof *coords; i++)
		ok |= !strcmp(r->coord, coords[i]);
	if (!ok)
		return gr_node_error(b, "coordinate_transformation_mode='%s' is not supported", r->coord);
	if (gr_attr_int(b->n, "exclude_outside", 0))
		return gr_node_error(b, "exclude_outside=1 is not supported");
	/* scales (opset 10: input 1; later: input 2) or sizes (input 3) */
	int si = b->opset < 11 ? 1 : 2;
	gr_value *sv = gr_input(b, si), *zv = b->opset >= 11 ? gr_input(b, 3) : NULL;
	if (sv && gr_numel(sv) == 0)
		sv = NULL;
	if ((sv && zv) || (!sv && !zv))
		return gr_node_error(b, "exactly one of scales and sizes must be given");
	if (sv) {
		if (!sv->data || sv->dtype.code != KILN_FLOAT || sv->dtype.bits != 32 || gr_numel(sv) != r->rank)
			return gr_node_error(b, "scales must be a constant float tensor of %d values (scales computed at run time are not supported)", r->rank);
		for (int d = 0; d < r->rank; d++) {
			r->scale[d] = ((float *)sv->data)[d];
			if (!(r->scale[d] > 0))
				return gr_node_error(b, "scale %g is not positive", r->scale[d]);
			double o = floor((double)xs[d] * r->scale[d]);
			if (!(o < 1e12))
				return gr_node_error(b, "scale %g makes dimension %d too large", r->scale[d], d);
			r->out[d] = (int64_t)o;
		}
	} else {
		int n;
		if (gr_const_ints(b, 3, r->out, KILN_MAX_DIMS, &n))
			return -1;
		if (n != r->rank)
			return gr_node_error(b, "sizes must have %d values", r->rank);
		for (int d = 0; d < r->rank; d++)
			r->scale[d] = (double)r->out[d] / (double)xs[d];
	}
	for (int d = 0; d < r->rank; d++) {
		if (r->out[d] < 1)
			return gr_node_error(b, "the result would be empty along dimension %d", d);
		if (r->out[d] != xs[d] || r->scale[d] != 1)
			r->res[r->nres++] = d;
	}
	if (r->linear && r->nres > 3)
		return gr_node_error(b, "linear resizing of more than 3 dimensions is not supported");
	if (r->linear && kiln_tensor_dtype(r->X).code != KILN_FLOAT)
		return gr_node_error(b, "linear resizing needs a float input");
	b->out[0] = op_tag(kiln_compute(b->ctx, "resize", r->rank, r->out, resize_body, r), TAG_INJECTIVE);
	return b->out[0] ? 0 : -1;
}

/* ---- sources: values the graph knows while it builds ---- */

static int shape_build(gr_build *b)
{
	gr_value *x = gr_input(b, 0);
	int rank = x->ndim;
	int64_t st = gr_attr_int(b->n, "start", 0), en = gr_attr_int(b->n, "end", rank);
	st = st < 0 ? st + rank : st;
	en = en < 0 ? en + rank : en;
	st = st < 0 ? 0 : st > rank ? rank : st;
	en = en < 0 ? 0 : en > rank ? rank : en;
	int n = en > st ? (int)(en - st) : 0;
	int64_t *d = ir_alloc(b->ctx, sizeof(int64_t) * (n ? n : 1));
	memcpy(d, x->shape + st, sizeof(int64_t) * n);
	b->src_dtype = KILN_I64;
	b->src_ndim = 1;
	b->src_shape[0] = n;
	b->src_data = d;
	return 0;
}

static int constant_build(gr_build *b)
{
	const gr_attr *a = b->n->nattr == 1 ? &b->n->attr[0] : NULL;
	if (!a)
		return gr_node_error(b, "needs exactly one value attribute");
	if (!strcmp(a->name, "value") && a->kind == GR_TENSOR && a->tensor >= 0) {
		gr_value *v = &b->g->values[a->tensor];
		b->src_dtype = v->dtype;
		b->src_ndim = v->ndim;
		memcpy(b->src_shape, v->shape, sizeof v->shape);
		b->src_data = v->data;
	} else if ((!strcmp(a->name, "value_float") && a->kind == GR_FLOAT) ||
	           (!strcmp(a->name, "value_floats") && a->kind == GR_FLOATS)) {
		int n = a->kind == GR_FLOAT ? 1 : a->n;
		float *d = ir_alloc(b->ctx, sizeof(float) * (n ? n : 1));
		for (int i = 0; i < n; i++)
			d[i] = (float)(a->kind == GR_FLOAT ? a->f : a->floats[i]);
		b->src_dtype = KILN_F32;
		b->src_ndim = a->kind == GR_FLOAT ? 0 : 1;
		b->src_shape[0] = n;
		b->src_data = d;
	} else if ((!strcmp(a->name, "value_int") && a->kind == GR_INT) ||
	           (!strcmp(a->name, "value_ints") && a->kind == GR_INTS)) {
		int n = a->kind == GR_INT ? 1 : a->n;
		int64_t *d = ir_alloc(b->ctx, sizeof(int64_t) * (n ? n : 1));
		for (int i = 0; i < n; i++)
			d[i] = a->kind == GR_INT ? a->i : a->ints[i];
		b->src_dtype = KILN_I64;
		b->src_ndim = a->kind == GR_INT ? 0 : 1;
		b->src_shape[0] = n;
		b->src_data = d;
	} else {
		return gr_node_error(b, "the '%s' attribute (of that type) is not supported (value: a tensor, "
		                     "value_float(s), value_int(s))", a->name);
	}
	return 0;
}

static int constant_of_shape_build(gr_build *b)
{
	int64_t shape[KILN_MAX_DIMS];
	int n;
	if (gr_const_ints(b, 0, shape, KILN_MAX_DIMS, &n))
		return -1;
	int64_t count = 1;
	for (int i = 0; i < n; i++)
		if (shape[i] < 0 || __builtin_mul_overflow(count, shape[i], &count) || count > ((int64_t)1 << 24))
			return gr_node_error(b, "shape entry %d (%lld) is negative or the tensor too large to fold", i,
			                     (long long)shape[i]);
	kiln_dtype t = KILN_F32;
	const void *fill = &(float){0};
	const gr_attr *a = gr_attr_find(b->n, "value");
	if (a) {
		if (a->kind != GR_TENSOR || gr_numel(&b->g->values[a->tensor]) != 1)
			return gr_node_error(b, "value must be a one-element tensor");
		t = b->g->values[a->tensor].dtype;
		fill = b->g->values[a->tensor].data;
	}
	size_t eb = kiln_dtype_bytes(t);
	uint8_t *d = ir_alloc(b->ctx, eb * (size_t)(count ? count : 1));
	for (int64_t i = 0; i < count; i++)
		memcpy(d + i * eb, fill, eb);
	b->src_dtype = t;
	b->src_ndim = n;
	memcpy(b->src_shape, shape, sizeof(int64_t) * n);
	b->src_data = d;
	return 0;
}

static int dropout_build(gr_build *b)
{
	if (b->n->nout > 1 && b->n->out[1] >= 0)
		return gr_node_error(b, "the mask output is not supported (inference only)");
	double training = 0;
	if (gr_input(b, 2) && (!gr_input(b, 2)->data || gr_const_scalar(b, 2, 0, &training) || training))
		return gr_node_error(b, "training mode is not supported (inference only)");
	return reshape_to(b, kiln_tensor_ndim(b->in[0]), kiln_tensor_shape(b->in[0]));
}

static const char *const none[] = {NULL};
static const char *const axis_attr[] = {"axis", NULL};
static const char *const allowzero[] = {"allowzero", NULL};
static const char *const axes_attr[] = {"axes", NULL};
static const char *const perm_attr[] = {"perm", NULL};
static const char *const split_attrs[] = {"axis", "split", NULL};
static const char *const slice_attrs[] = {"starts", "ends", "axes", NULL};
static const char *const pad_attrs[] = {"mode", "pads", "value", NULL};
static const char *const resize_attrs[] = {"mode", "coordinate_transformation_mode", "nearest_mode",
                                           "cubic_coeff_a", "exclude_outside", "extrapolation_value", NULL};
static const char *const shape_attrs[] = {"start", "end", NULL};
static const char *const const_attrs[] = {"value", "value_float", "value_floats", "value_int", "value_ints",
                                          "sparse_value", "value_string", "value_strings", NULL};
static const char *const value_attr[] = {"value", NULL};
static const char *const dropout_attrs[] = {"ratio", "seed", "is_test", NULL};

const gr_opdef gr_ops_shape[] = {
	{"Reshape", GR_OPAQUE, 2, 2, 1, 2u, allowzero, reshape_build, NULL, true},
	{"Flatten", GR_OPAQUE, 1, 1, 1, 0, axis_attr, flatten_build, NULL, true},
	{"Squeeze", GR_OPAQUE, 1, 2, 1, 2u, axes_attr, squeeze_build, NULL, true},
	{"Unsqueeze", GR_OPAQUE, 1, 2, 1, 2u, axes_attr, unsqueeze_build, NULL, true},
	{"Transpose", GR_OPAQUE, 1, 1, 1, 0, perm_attr, transpose_build, NULL, true},
	{"Concat", GR_OPAQUE, 1, GR_MAX_IN, 1, 0, axis_attr, concat_build, NULL},
	{"Split", GR_OPAQUE, 1, 2, GR_MAX_OUT, 2u, split_attrs, split_build, NULL},
	{"Slice", GR_OPAQUE, 1, 5, 1, 30u, slice_attrs, slice_build, NULL, true},
	{"Gather", GR_OPAQUE, 2, 2, 1, 0, axis_attr, gather_build, NULL},
	{"Expand", GR_OPAQUE, 2, 2, 1, 2u, none, expand_build, NULL, true},
	{"Pad", GR_OPAQUE, 1, 4, 1, 14u, pad_attrs, pad_build, NULL},
	{"Resize", GR_OPAQUE, 1, 4, 1, 14u, resize_attrs, resize_build, NULL},
	{"Upsample", GR_OPAQUE, 2, 2, 1, 2u, resize_attrs, resize_build, NULL},
	{"Dropout", GR_OPAQUE, 1, 3, 2, 6u, dropout_attrs, dropout_build, NULL},
	{"Shape", GR_SOURCE, 1, 1, 1, 0, shape_attrs, shape_build, NULL},
	{"Constant", GR_SOURCE, 0, 0, 1, 0, const_attrs, constant_build, NULL},
	{"ConstantOfShape", GR_SOURCE, 1, 1, 1, 1u, value_attr, constant_of_shape_build, NULL},
	{NULL},
};
