/*
 * elementwise.c — injective operators: elementwise math with numpy
 * broadcasting, and the data movers (transpose, reshape, pad, concat).
 * Every one is a single compute tagged injective; reads that a select
 * discards are clamped into bounds so no target ever reads past a tensor.
 */
#include <math.h>
#include <string.h>

#include "ops.h"

static kiln_expr *i64c(kiln_ctx *ctx, int64_t v) { return kiln_const(ctx, KILN_I64, (double)v); }

typedef struct {
	kiln_binop op;
	kiln_tensor *A, *B;
	int ndim;
} bin_args;

/* The index of t for output index idx under numpy broadcasting. */
static kiln_expr *bcast_read(kiln_ctx *ctx, kiln_tensor *t, int ndim, kiln_expr *const *idx)
{
	kiln_expr *ix[KILN_MAX_DIMS];
	int off = ndim - t->ndim;
	for (int d = 0; d < t->ndim; d++)
		ix[d] = t->shape[d] == 1 ? i64c(ctx, 0) : idx[d + off];
	return kiln_read(ctx, t, ix);
}

static kiln_expr *binary_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	bin_args *b = user;
	kiln_expr *x = bcast_read(ctx, b->A, b->ndim, idx), *y = bcast_read(ctx, b->B, b->ndim, idx);
	switch (b->op) {
	case KILN_BIN_ADD: return kiln_add(ctx, x, y);
	case KILN_BIN_SUB: return kiln_sub(ctx, x, y);
	case KILN_BIN_MUL: return kiln_mul(ctx, x, y);
	case KILN_BIN_DIV: return kiln_div(ctx, x, y);
	case KILN_BIN_MAX: return kiln_max(ctx, x, y);
	case KILN_BIN_MIN: return kiln_min(ctx, x, y);
	case KILN_BIN_POW: return kiln_call(ctx, KILN_POW, x, y);
	}
	return NULL;
}

kiln_tensor *kiln_op_binary(kiln_ctx *ctx, kiln_binop op, kiln_tensor *A, kiln_tensor *B)
{
	static const char *names[] = {"add", "sub", "mul", "div", "maximum", "minimum", "pow"};
	if (!A || !B)
		return NULL;
	if ((unsigned)op > KILN_BIN_POW)
		return ir_error(ctx, "binary: unknown operator %d", (int)op), NULL;
	const char *name = names[op];
	char x[16], y[16];
	if (!ir_type_eq(A->type, B->type))
		return ir_error(ctx, "%s: '%s' is %s but '%s' is %s", name, A->name, kiln_dtype_str(A->type, x), B->name,
		                kiln_dtype_str(B->type, y)), NULL;
	int nd = A->ndim > B->ndim ? A->ndim : B->ndim;
	int64_t shape[KILN_MAX_DIMS];
	for (int d = 0; d < nd; d++) {
		int da = d - (nd - A->ndim), db = d - (nd - B->ndim);
		int64_t a = da >= 0 ? A->shape[da] : 1, b = db >= 0 ? B->shape[db] : 1;
		if (a != b && a != 1 && b != 1)
			return ir_error(ctx, "%s: shapes do not broadcast: dimension %d is %lld in '%s' and %lld in '%s'", name,
			                d, (long long)a, A->name, (long long)b, B->name), NULL;
		shape[d] = a > b ? a : b;
	}
	bin_args *b = ir_alloc(ctx, sizeof *b);
	*b = (bin_args){op, A, B, nd};
	return op_tag(kiln_compute(ctx, name, nd, shape, binary_body, b), TAG_INJECTIVE);
}

typedef struct {
	kiln_unop op;
	kiln_tensor *X;
	double p0, p1;
} un_args;

static kiln_expr *unary_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	un_args *u = user;
	kiln_dtype t = u->X->type;
	kiln_expr *x = kiln_read(ctx, u->X, idx);
	switch (u->op) {
	case KILN_UN_RELU: return kiln_max(ctx, x, kiln_const(ctx, t, 0));
	case KILN_UN_CLIP: return kiln_min(ctx, kiln_max(ctx, x, kiln_const(ctx, t, u->p0)), kiln_const(ctx, t, u->p1));
	case KILN_UN_SIGMOID: return kiln_call(ctx, KILN_SIGMOID, x, NULL);
	case KILN_UN_TANH: return kiln_call(ctx, KILN_TANH, x, NULL);
	case KILN_UN_GELU: {
		kiln_expr *e = kiln_call(ctx, KILN_ERF, kiln_mul(ctx, x, kiln_const(ctx, t, M_SQRT1_2)), NULL);
		return kiln_mul(ctx, kiln_mul(ctx, x, kiln_const(ctx, t, 0.5)), kiln_add(ctx, e, kiln_const(ctx, t, 1)));
	}
	case KILN_UN_EXP: return kiln_call(ctx, KILN_EXP, x, NULL);
	case KILN_UN_LOG: return kiln_call(ctx, KILN_LOG, x, NULL);
	case KILN_UN_SQRT: return kiln_call(ctx, KILN_SQRT, x, NULL);
	case KILN_UN_ABS: return kiln_call(ctx, KILN_ABS, x, NULL);
	case KILN_UN_NEG: return kiln_sub(ctx, kiln_const(ctx, t, 0), x);
	case KILN_UN_LEAKY_RELU:
		return kiln_select(ctx, kiln_gt(ctx, x, kiln_const(ctx, t, 0)), x, kiln_mul(ctx, x, kiln_const(ctx, t, u->p0)));
	}
	return NULL;
}

kiln_tensor *kiln_op_unary(kiln_ctx *ctx, kiln_unop op, kiln_tensor *X, double p0, double p1)
{
	static const char *names[] = {"relu", "clip", "sigmoid", "tanh", "gelu", "exp", "log", "sqrt", "abs", "neg", "leaky_relu"};
	if (!X)
		return NULL;
	if ((unsigned)op > KILN_UN_LEAKY_RELU)
		return ir_error(ctx, "unary: unknown operator %d", (int)op), NULL;
	bool int_ok = op == KILN_UN_RELU || op == KILN_UN_CLIP || op == KILN_UN_ABS || op == KILN_UN_NEG;
	if (X->type.code != KILN_FLOAT && !int_ok)
		return ir_error(ctx, "%s: '%s' must be a float tensor", names[op], X->name), NULL;
	if (op == KILN_UN_CLIP && p0 > p1)
		return ir_error(ctx, "clip: min %g is greater than max %g", p0, p1), NULL;
	un_args *u = ir_alloc(ctx, sizeof *u);
	*u = (un_args){op, X, p0, p1};
	return op_tag(kiln_compute(ctx, names[op], X->ndim, X->shape, unary_body, u), TAG_INJECTIVE);
}

typedef struct {
	kiln_tensor *X;
	int perm[KILN_MAX_DIMS];
	int64_t shape[KILN_MAX_DIMS];
	int ndim;
	int64_t before[KILN_MAX_DIMS];
	double value;
	int n, axis;
	kiln_tensor *const *xs;
} move_args;

static kiln_expr *transpose_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	move_args *m = user;
	kiln_expr *ix[KILN_MAX_DIMS];
	for (int d = 0; d < m->X->ndim; d++)
		ix[m->perm[d]] = idx[d];
	return kiln_read(ctx, m->X, ix);
}

kiln_tensor *kiln_op_transpose(kiln_ctx *ctx, kiln_tensor *X, const int *perm)
{
	if (!X)
		return NULL;
	move_args *m = ir_alloc(ctx, sizeof *m);
	m->X = X;
	int64_t shape[KILN_MAX_DIMS];
	unsigned seen = 0;
	for (int d = 0; d < X->ndim; d++) {
		if (perm[d] < 0 || perm[d] >= X->ndim || (seen >> perm[d] & 1))
			return ir_error(ctx, "transpose: perm is not a permutation of 0..%d", X->ndim - 1), NULL;
		seen |= 1u << perm[d];
		m->perm[d] = perm[d];
		shape[d] = X->shape[perm[d]];
	}
	return op_tag(kiln_compute(ctx, "transpose", X->ndim, shape, transpose_body, m), TAG_INJECTIVE);
}

static kiln_expr *reshape_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	move_args *m = user;
	kiln_expr *flat = NULL;
	for (int d = 0; d < m->ndim; d++)
		flat = flat ? kiln_add(ctx, kiln_mul(ctx, flat, i64c(ctx, m->shape[d])), idx[d]) : idx[d];
	if (!flat)
		flat = i64c(ctx, 0);
	kiln_expr *ix[KILN_MAX_DIMS] = {0};
	for (int d = m->X->ndim - 1; d >= 0; d--) {
		ix[d] = d == 0 ? flat : kiln_mod(ctx, flat, i64c(ctx, m->X->shape[d]));
		if (d)
			flat = kiln_div(ctx, flat, i64c(ctx, m->X->shape[d]));
	}
	return kiln_read(ctx, m->X, ix);
}

kiln_tensor *kiln_op_reshape(kiln_ctx *ctx, kiln_tensor *X, int ndim, const int64_t *shape)
{
	if (!X)
		return NULL;
	int64_t a = 1, b = 1;
	for (int d = 0; d < X->ndim; d++)
		a *= X->shape[d];
	for (int d = 0; d < ndim; d++)
		b *= shape[d];
	if (ndim < 0 || ndim > KILN_MAX_DIMS || a != b)
		return ir_error(ctx, "reshape: '%s' has %lld elements, the new shape has %lld", X->name, (long long)a,
		                (long long)b), NULL;
	move_args *m = ir_alloc(ctx, sizeof *m);
	m->X = X;
	m->ndim = ndim;
	memcpy(m->shape, shape, sizeof(int64_t) * ndim);
	return op_tag(kiln_compute(ctx, "reshape", ndim, shape, reshape_body, m), TAG_INJECTIVE);
}

static kiln_expr *pad_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	move_args *m = user;
	kiln_expr *in = NULL, *ix[KILN_MAX_DIMS] = {0};
	for (int d = 0; d < m->X->ndim; d++) {
		if (!m->before[d] && m->shape[d] == m->X->shape[d]) {
			ix[d] = idx[d];
			continue;
		}
		kiln_expr *i = kiln_sub(ctx, idx[d], i64c(ctx, m->before[d]));
		kiln_expr *ok = kiln_and(ctx, kiln_ge(ctx, i, i64c(ctx, 0)), kiln_lt(ctx, i, i64c(ctx, m->X->shape[d])));
		in = in ? kiln_and(ctx, in, ok) : ok;
		ix[d] = kiln_max(ctx, kiln_min(ctx, i, i64c(ctx, m->X->shape[d] - 1)), i64c(ctx, 0));
	}
	kiln_expr *x = kiln_read(ctx, m->X, ix);
	return in ? kiln_select(ctx, in, x, kiln_const(ctx, m->X->type, m->value)) : x;
}

kiln_tensor *kiln_op_pad(kiln_ctx *ctx, kiln_tensor *X, const int64_t *before, const int64_t *after, double value)
{
	if (!X)
		return NULL;
	move_args *m = ir_alloc(ctx, sizeof *m);
	m->X = X;
	m->value = value;
	for (int d = 0; d < X->ndim; d++) {
		if (before[d] < 0 || after[d] < 0)
			return ir_error(ctx, "pad: negative padding on dimension %d", d), NULL;
		m->before[d] = before[d];
		m->shape[d] = X->shape[d] + before[d] + after[d];
	}
	return op_tag(kiln_compute(ctx, "pad", X->ndim, m->shape, pad_body, m), TAG_INJECTIVE);
}

static kiln_expr *concat_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	move_args *m = user;
	int64_t off[64];
	off[0] = 0;
	for (int i = 0; i < m->n; i++)
		off[i + 1] = off[i] + m->xs[i]->shape[m->axis];
	kiln_expr *r = NULL;
	for (int i = m->n - 1; i >= 0; i--) {
		kiln_expr *ix[KILN_MAX_DIMS];
		memcpy(ix, idx, sizeof(kiln_expr *) * m->xs[i]->ndim);
		kiln_expr *local = kiln_sub(ctx, idx[m->axis], i64c(ctx, off[i]));
		ix[m->axis] = kiln_max(ctx, kiln_min(ctx, local, i64c(ctx, m->xs[i]->shape[m->axis] - 1)), i64c(ctx, 0));
		kiln_expr *x = kiln_read(ctx, m->xs[i], ix);
		r = r ? kiln_select(ctx, kiln_lt(ctx, idx[m->axis], i64c(ctx, off[i + 1])), x, r) : x;
	}
	return r;
}

kiln_tensor *kiln_op_concat(kiln_ctx *ctx, int n, kiln_tensor *const *xs, int axis)
{
	if (n < 1 || n > 63)
		return ir_error(ctx, "concat: %d inputs (1 to 63)", n), NULL;
	for (int i = 0; i < n; i++)
		if (!xs[i])
			return NULL;
	int nd = xs[0]->ndim;
	if (axis < 0)
		axis += nd;
	if (axis < 0 || axis >= nd)
		return ir_error(ctx, "concat: axis out of range for %d-D inputs", nd), NULL;
	int64_t shape[KILN_MAX_DIMS];
	memcpy(shape, xs[0]->shape, sizeof(int64_t) * nd);
	shape[axis] = 0;
	for (int i = 0; i < n; i++) {
		char x[16], y[16];
		if (xs[i]->ndim != nd || !ir_type_eq(xs[i]->type, xs[0]->type))
			return ir_error(ctx, "concat: '%s' (%d-D %s) does not match '%s' (%d-D %s)", xs[i]->name, xs[i]->ndim,
			                kiln_dtype_str(xs[i]->type, x), xs[0]->name, nd, kiln_dtype_str(xs[0]->type, y)), NULL;
		for (int d = 0; d < nd; d++)
			if (d != axis && xs[i]->shape[d] != xs[0]->shape[d])
				return ir_error(ctx, "concat: '%s' has extent %lld on dimension %d, expected %lld", xs[i]->name,
				                (long long)xs[i]->shape[d], d, (long long)xs[0]->shape[d]), NULL;
		shape[axis] += xs[i]->shape[axis];
	}
	move_args *m = ir_alloc(ctx, sizeof *m);
	m->n = n;
	m->axis = axis;
	kiln_tensor **copy = ir_alloc(ctx, sizeof(kiln_tensor *) * n);
	memcpy(copy, xs, sizeof(kiln_tensor *) * n);
	m->xs = copy;
	return op_tag(kiln_compute(ctx, "concat", nd, shape, concat_body, m), TAG_INJECTIVE);
}
