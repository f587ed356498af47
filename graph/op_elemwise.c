/*
 * op_elemwise.c — the elementwise operators: one expression per output
 * element from the input elements. Fusion (fuse.c) chains these after a
 * producer; alone, each becomes a broadcasting compute (gr_elemwise_build).
 */
#include <math.h>
#include <string.h>

#include "optable.h"

static kiln_expr *c_of(gr_build *b, kiln_expr *like, double v) { return kiln_const(b->ctx, like->type, v); }

static bool is_float(const kiln_expr *e) { return e && e->type.code == KILN_FLOAT; }

/* ONNX's integer division truncates; kiln_div floors: step back toward zero when signs differ. */
static kiln_expr *int_div(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b)
{
	kiln_expr *zero = kiln_const(ctx, a->type, 0);
	kiln_expr *q = kiln_div(ctx, a, b);
	kiln_expr *inexact = kiln_ne(ctx, kiln_mod(ctx, a, b), zero);
	kiln_expr *signs = kiln_ne(ctx, kiln_lt(ctx, a, zero), kiln_lt(ctx, b, zero));
	return kiln_select(ctx, kiln_and(ctx, inexact, signs), kiln_add(ctx, q, kiln_const(ctx, a->type, 1)), q);
}

static kiln_expr *x_add(gr_build *b, kiln_expr *const *a) { return kiln_add(b->ctx, a[0], a[1]); }
static kiln_expr *x_sub(gr_build *b, kiln_expr *const *a) { return kiln_sub(b->ctx, a[0], a[1]); }
static kiln_expr *x_mul(gr_build *b, kiln_expr *const *a) { return kiln_mul(b->ctx, a[0], a[1]); }
static kiln_expr *x_div(gr_build *b, kiln_expr *const *a)
{
	return is_float(a[0]) ? kiln_div(b->ctx, a[0], a[1]) : int_div(b->ctx, a[0], a[1]);
}
static kiln_expr *x_pow(gr_build *b, kiln_expr *const *a)
{
	kiln_expr *e = a[1]->type.code == a[0]->type.code && a[1]->type.bits == a[0]->type.bits ? a[1]
	             : kiln_cast(b->ctx, a[0]->type, a[1]);
	if (!is_float(a[0]))
		return gr_node_error(b, "Pow of integers is not supported"), NULL;
	/* small constant exponents as products: exact, faster, and defined for a
	 * negative base on every target (GLSL's pow is not; LayerNorm arrives as Pow(x - mean, 2)) */
	double y;
	gr_value *ev = gr_input(b, 1);
	if (ev && ev->data && gr_numel(ev) == 1 && !gr_const_scalar(b, 1, 0, &y)) {
		if (y == 1)
			return a[0];
		if (y == 2)
			return kiln_mul(b->ctx, a[0], a[0]);
		if (y == 3)
			return kiln_mul(b->ctx, kiln_mul(b->ctx, a[0], a[0]), a[0]);
		if (y == 0.5)
			return kiln_call(b->ctx, KILN_SQRT, a[0], NULL);
	}
	return kiln_call(b->ctx, KILN_POW, a[0], e);
}

static kiln_expr *need_f(gr_build *b, kiln_expr *x)
{
	if (x && !is_float(x))
		return gr_node_error(b, "needs a float input"), NULL;
	return x;
}

#define CALL1(fn, intr)                                                                                            \
	static kiln_expr *fn(gr_build *b, kiln_expr *const *a) { return kiln_call(b->ctx, intr, need_f(b, a[0]), NULL); }
CALL1(x_sqrt, KILN_SQRT)
CALL1(x_exp, KILN_EXP)
CALL1(x_log, KILN_LOG)
CALL1(x_erf, KILN_ERF)
CALL1(x_tanh, KILN_TANH)
CALL1(x_sigmoid, KILN_SIGMOID)
CALL1(x_floor, KILN_FLOOR)
CALL1(x_ceil, KILN_CEIL)

static kiln_expr *x_abs(gr_build *b, kiln_expr *const *a)
{
	if (a[0]->type.code == KILN_UINT || a[0]->type.code == KILN_BOOL)
		return a[0];
	return is_float(a[0]) ? kiln_call(b->ctx, KILN_ABS, a[0], NULL)
	                      : kiln_max(b->ctx, a[0], kiln_sub(b->ctx, c_of(b, a[0], 0), a[0]));
}
static kiln_expr *x_neg(gr_build *b, kiln_expr *const *a) { return kiln_sub(b->ctx, c_of(b, a[0], 0), a[0]); }
static kiln_expr *x_reciprocal(gr_build *b, kiln_expr *const *a)
{
	return kiln_div(b->ctx, c_of(b, a[0], 1), need_f(b, a[0]));
}
static kiln_expr *x_relu(gr_build *b, kiln_expr *const *a) { return kiln_max(b->ctx, a[0], c_of(b, a[0], 0)); }
static kiln_expr *x_leaky_relu(gr_build *b, kiln_expr *const *a)
{
	double alpha = gr_attr_float(b->n, "alpha", 0.01);
	kiln_expr *x = need_f(b, a[0]);
	return kiln_select(b->ctx, kiln_lt(b->ctx, x, c_of(b, x, 0)), kiln_mul(b->ctx, x, c_of(b, x, alpha)), x);
}
static kiln_expr *x_elu(gr_build *b, kiln_expr *const *a)
{
	double alpha = gr_attr_float(b->n, "alpha", 1.0);
	kiln_expr *x = need_f(b, a[0]);
	kiln_expr *neg = kiln_mul(b->ctx, c_of(b, x, alpha),
	                          kiln_sub(b->ctx, kiln_call(b->ctx, KILN_EXP, x, NULL), c_of(b, x, 1)));
	return kiln_select(b->ctx, kiln_lt(b->ctx, x, c_of(b, x, 0)), neg, x);
}
static kiln_expr *x_softplus(gr_build *b, kiln_expr *const *a)
{
	kiln_expr *x = need_f(b, a[0]);
	/* log(1 + e^x) = max(x, 0) + log(1 + e^-|x|): no overflow for large x */
	kiln_expr *ax = kiln_call(b->ctx, KILN_ABS, x, NULL);
	kiln_expr *t = kiln_call(b->ctx, KILN_LOG,
	                         kiln_add(b->ctx, c_of(b, x, 1),
	                                  kiln_call(b->ctx, KILN_EXP, kiln_sub(b->ctx, c_of(b, x, 0), ax), NULL)), NULL);
	return kiln_add(b->ctx, kiln_max(b->ctx, x, c_of(b, x, 0)), t);
}

/* Clip: bounds from attributes (opset < 11) or inputs 1 and 2 (scalars, read like any input). */
static kiln_expr *x_clip(gr_build *b, kiln_expr *const *a)
{
	kiln_expr *x = a[0], *lo = a[1], *hi = a[2];
	if (b->opset < 11) {
		double l = gr_attr_float(b->n, "min", -INFINITY), h = gr_attr_float(b->n, "max", INFINITY);
		lo = isinf(l) ? NULL : c_of(b, x, l);
		hi = isinf(h) ? NULL : c_of(b, x, h);
	}
	/* ONNX: min(max(x, lo), hi), so lo > hi gives hi everywhere */
	if (lo)
		x = kiln_max(b->ctx, x, lo);
	if (hi)
		x = kiln_min(b->ctx, x, hi);
	return x;
}

static kiln_expr *hard_sigmoid(gr_build *b, kiln_expr *x, double alpha, double beta)
{
	kiln_expr *y = kiln_add(b->ctx, kiln_mul(b->ctx, x, c_of(b, x, alpha)), c_of(b, x, beta));
	return kiln_min(b->ctx, kiln_max(b->ctx, y, c_of(b, x, 0)), c_of(b, x, 1));
}
static kiln_expr *x_hard_sigmoid(gr_build *b, kiln_expr *const *a)
{
	kiln_expr *x = need_f(b, a[0]);
	return x ? hard_sigmoid(b, x, gr_attr_float(b->n, "alpha", 0.2), gr_attr_float(b->n, "beta", 0.5)) : NULL;
}
static kiln_expr *x_hard_swish(gr_build *b, kiln_expr *const *a)
{
	kiln_expr *x = need_f(b, a[0]);
	return x ? kiln_mul(b->ctx, x, hard_sigmoid(b, x, 1.0 / 6, 0.5)) : NULL;
}
static kiln_expr *x_gelu(gr_build *b, kiln_expr *const *a)
{
	kiln_expr *x = need_f(b, a[0]);
	if (!x)
		return NULL;
	const char *approx = gr_attr_str(b->n, "approximate", "none");
	kiln_expr *half = kiln_mul(b->ctx, x, c_of(b, x, 0.5));
	if (!strcmp(approx, "tanh")) {
		kiln_expr *x3 = kiln_mul(b->ctx, kiln_mul(b->ctx, x, x), x);
		kiln_expr *in = kiln_mul(b->ctx, c_of(b, x, sqrt(2 / M_PI)),
		                         kiln_add(b->ctx, x, kiln_mul(b->ctx, x3, c_of(b, x, 0.044715))));
		return kiln_mul(b->ctx, half, kiln_add(b->ctx, c_of(b, x, 1), kiln_call(b->ctx, KILN_TANH, in, NULL)));
	}
	if (strcmp(approx, "none"))
		return gr_node_error(b, "approximate='%s' (none or tanh)", approx), NULL;
	kiln_expr *e = kiln_call(b->ctx, KILN_ERF, kiln_mul(b->ctx, x, c_of(b, x, M_SQRT1_2)), NULL);
	return kiln_mul(b->ctx, half, kiln_add(b->ctx, e, c_of(b, x, 1)));
}

static kiln_expr *x_equal(gr_build *b, kiln_expr *const *a) { return kiln_eq(b->ctx, a[0], a[1]); }
static kiln_expr *x_less(gr_build *b, kiln_expr *const *a) { return kiln_lt(b->ctx, a[0], a[1]); }
static kiln_expr *x_less_eq(gr_build *b, kiln_expr *const *a) { return kiln_le(b->ctx, a[0], a[1]); }
static kiln_expr *x_greater(gr_build *b, kiln_expr *const *a) { return kiln_gt(b->ctx, a[0], a[1]); }
static kiln_expr *x_greater_eq(gr_build *b, kiln_expr *const *a) { return kiln_ge(b->ctx, a[0], a[1]); }
static kiln_expr *x_not(gr_build *b, kiln_expr *const *a) { return kiln_not(b->ctx, a[0]); }
static kiln_expr *x_and(gr_build *b, kiln_expr *const *a) { return kiln_and(b->ctx, a[0], a[1]); }
static kiln_expr *x_or(gr_build *b, kiln_expr *const *a) { return kiln_or(b->ctx, a[0], a[1]); }
static kiln_expr *x_where(gr_build *b, kiln_expr *const *a) { return kiln_select(b->ctx, a[0], a[1], a[2]); }
/* BatchNormalization after simplify.c: x * scale + shift. */
static kiln_expr *x_scale_shift(gr_build *b, kiln_expr *const *a)
{
	return kiln_add(b->ctx, kiln_mul(b->ctx, a[0], a[1]), a[2]);
}
static kiln_expr *x_identity(gr_build *b, kiln_expr *const *a) { return a[0]; }

/* Variadic Min / Max / Sum / Mean over however many inputs. */
static kiln_expr *fold_inputs(gr_build *b, kiln_expr *const *a, kiln_expr *(*f)(kiln_ctx *, kiln_expr *, kiln_expr *))
{
	kiln_expr *r = a[0];
	for (int k = 1; k < b->n->nin; k++)
		if (a[k])
			r = f(b->ctx, r, a[k]);
	return r;
}
static kiln_expr *x_min(gr_build *b, kiln_expr *const *a) { return fold_inputs(b, a, kiln_min); }
static kiln_expr *x_max(gr_build *b, kiln_expr *const *a) { return fold_inputs(b, a, kiln_max); }
static kiln_expr *x_sum(gr_build *b, kiln_expr *const *a) { return fold_inputs(b, a, kiln_add); }
static kiln_expr *x_mean(gr_build *b, kiln_expr *const *a)
{
	kiln_expr *s = need_f(b, fold_inputs(b, a, kiln_add));
	int n = 0;
	for (int k = 0; k < b->n->nin; k++)
		n += a[k] != NULL;
	return s ? kiln_div(b->ctx, s, c_of(b, s, n)) : NULL;
}

/* ONNX TensorProto data types that Cast can produce. */
static int onnx_dtype(int64_t t, kiln_dtype *out)
{
	switch (t) {
	case 1: *out = KILN_F32; return 0;
	case 2: *out = KILN_U8; return 0;
	case 3: *out = KILN_I8; return 0;
	case 6: *out = KILN_I32; return 0;
	case 7: *out = KILN_I64; return 0;
	case 9: *out = KILN_BOOLT; return 0;
	case 11: *out = KILN_F64; return 0;
	}
	return -1;
}

static kiln_expr *x_cast(gr_build *b, kiln_expr *const *a)
{
	kiln_dtype t;
	int64_t to = gr_attr_int(b->n, "to", 0);
	if (onnx_dtype(to, &t))
		return gr_node_error(b, "cast to ONNX data type %lld is not supported (float, double, int8, uint8, int32, "
		                     "int64, bool)", (long long)to), NULL;
	kiln_expr *x = a[0];
	if (t.code == KILN_BOOL)
		return x->type.code == KILN_BOOL ? x : kiln_ne(b->ctx, x, c_of(b, x, 0));
	if (x->type.code == KILN_BOOL)
		return kiln_select(b->ctx, x, kiln_const(b->ctx, t, 1), kiln_const(b->ctx, t, 0));
	return kiln_cast(b->ctx, t, x); /* float -> int truncates toward zero, as ONNX's Cast */
}

static const char *const no_attrs[] = {NULL};
static const char *const alpha_attr[] = {"alpha", NULL};
static const char *const alpha_beta[] = {"alpha", "beta", NULL};
static const char *const clip_attrs[] = {"min", "max", NULL};
static const char *const gelu_attrs[] = {"approximate", NULL};
static const char *const cast_attrs[] = {"to", "saturate", NULL};

#define EW(nm, lo, hi, fn, at) {nm, GR_ELEMWISE, lo, hi, 1, 0, at, gr_elemwise_build, fn}
const gr_opdef gr_ops_elemwise[] = {
	EW("Add", 2, 2, x_add, no_attrs),
	EW("Sub", 2, 2, x_sub, no_attrs),
	EW("Mul", 2, 2, x_mul, no_attrs),
	EW("Div", 2, 2, x_div, no_attrs),
	EW("Pow", 2, 2, x_pow, no_attrs),
	EW("Sqrt", 1, 1, x_sqrt, no_attrs),
	EW("Exp", 1, 1, x_exp, no_attrs),
	EW("Log", 1, 1, x_log, no_attrs),
	EW("Erf", 1, 1, x_erf, no_attrs),
	EW("Tanh", 1, 1, x_tanh, no_attrs),
	EW("Sigmoid", 1, 1, x_sigmoid, no_attrs),
	EW("Floor", 1, 1, x_floor, no_attrs),
	EW("Ceil", 1, 1, x_ceil, no_attrs),
	EW("Abs", 1, 1, x_abs, no_attrs),
	EW("Neg", 1, 1, x_neg, no_attrs),
	EW("Reciprocal", 1, 1, x_reciprocal, no_attrs),
	EW("Relu", 1, 1, x_relu, no_attrs),
	EW("LeakyRelu", 1, 1, x_leaky_relu, alpha_attr),
	EW("Elu", 1, 1, x_elu, alpha_attr),
	EW("Softplus", 1, 1, x_softplus, no_attrs),
	{"Clip", GR_ELEMWISE, 1, 3, 1, 0, clip_attrs, gr_elemwise_build, x_clip},
	EW("HardSigmoid", 1, 1, x_hard_sigmoid, alpha_beta),
	EW("HardSwish", 1, 1, x_hard_swish, no_attrs),
	EW("Gelu", 1, 1, x_gelu, gelu_attrs),
	EW("Equal", 2, 2, x_equal, no_attrs),
	EW("Less", 2, 2, x_less, no_attrs),
	EW("LessOrEqual", 2, 2, x_less_eq, no_attrs),
	EW("Greater", 2, 2, x_greater, no_attrs),
	EW("GreaterOrEqual", 2, 2, x_greater_eq, no_attrs),
	EW("Not", 1, 1, x_not, no_attrs),
	EW("And", 2, 2, x_and, no_attrs),
	EW("Or", 2, 2, x_or, no_attrs),
	EW("Where", 3, 3, x_where, no_attrs),
	EW("Min", 1, GR_MAX_IN, x_min, no_attrs),
	EW("Max", 1, GR_MAX_IN, x_max, no_attrs),
	EW("Sum", 1, GR_MAX_IN, x_sum, no_attrs),
	EW("Mean", 1, GR_MAX_IN, x_mean, no_attrs),
	EW("Cast", 1, 1, x_cast, cast_attrs),
	EW("Identity", 1, 1, x_identity, no_attrs),
	EW("kiln.ScaleShift", 3, 3, x_scale_shift, no_attrs),
	{NULL},
};
