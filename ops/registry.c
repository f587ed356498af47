/*
 * registry.c — every operator by name: how to declare it from a list of
 * numbers (--shape) and "key=value" attributes, and a small example shape
 * the tests run it on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* Finds key=value in "k=v,k=v"; copies the value (up to the next comma). */
static bool attr_str(const char *attrs, const char *key, char *out, size_t n)
{
	size_t kl = strlen(key);
	for (const char *p = attrs; p && *p;) {
		if (!strncmp(p, key, kl) && p[kl] == '=') {
			const char *v = p + kl + 1, *e = strchr(v, ',');
			size_t l = e ? (size_t)(e - v) : strlen(v);
			if (l >= n)
				l = n - 1;
			memcpy(out, v, l);
			out[l] = 0;
			return true;
		}
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return false;
}

static double attr_num(const char *attrs, const char *key, double def)
{
	char v[64];
	return attr_str(attrs, key, v, sizeof v) ? strtod(v, NULL) : def;
}

/* "2x0x1" -> numbers; returns the count. */
static int attr_list(const char *attrs, const char *key, int64_t *out, int max)
{
	char v[256];
	if (!attr_str(attrs, key, v, sizeof v))
		return 0;
	int n = 0;
	for (char *p = v; *p && n < max;) {
		out[n++] = strtoll(p, &p, 10);
		if (*p == 'x' || *p == ':')
			p++;
		else
			break;
	}
	return n;
}

static kiln_tensor *ph(kiln_ctx *ctx, const char *name, int ndim, const int64_t *shape)
{
	return kiln_placeholder(ctx, name, ndim, shape, KILN_F32);
}

static int finish(kiln_op_inst *o, int nin, kiln_tensor *const *ins, kiln_tensor *out, double flops)
{
	if (!out)
		return -1;
	o->nin = nin;
	o->nargs = nin + 1;
	memcpy(o->args, ins, sizeof(kiln_tensor *) * nin);
	o->args[nin] = out;
	o->flops = flops;
	return 0;
}

/* Elements of t, for the flop counts; 0 for a tensor that was refused (NULL). */
static double numel(const kiln_tensor *t)
{
	if (!t)
		return 0;
	double n = 1;
	for (int d = 0; d < t->ndim; d++)
		n *= (double)t->shape[d];
	return n;
}

static int d_matmul(kiln_ctx *ctx, int n, const int64_t *s, const char *a, kiln_op_inst *o)
{
	int ta = (int)attr_num(a, "trans_a", 0), tb = (int)attr_num(a, "trans_b", 0);
	kiln_tensor *A = ph(ctx, "A", 2, ta ? (int64_t[]){s[2], s[0]} : (int64_t[]){s[0], s[2]});
	kiln_tensor *B = ph(ctx, "B", 2, tb ? (int64_t[]){s[1], s[2]} : (int64_t[]){s[2], s[1]});
	return finish(o, 2, (kiln_tensor *[]){A, B}, kiln_op_matmul(ctx, A, B, ta, tb), 2.0 * s[0] * s[1] * s[2]);
}

static int d_batch_matmul(kiln_ctx *ctx, int n, const int64_t *s, const char *a, kiln_op_inst *o)
{
	int ta = (int)attr_num(a, "trans_a", 0), tb = (int)attr_num(a, "trans_b", 0);
	kiln_tensor *A = ph(ctx, "A", 3, ta ? (int64_t[]){s[0], s[3], s[1]} : (int64_t[]){s[0], s[1], s[3]});
	kiln_tensor *B = ph(ctx, "B", 3, tb ? (int64_t[]){s[0], s[2], s[3]} : (int64_t[]){s[0], s[3], s[2]});
	return finish(o, 2, (kiln_tensor *[]){A, B}, kiln_op_batch_matmul(ctx, A, B, ta, tb),
	              2.0 * s[0] * s[1] * s[2] * s[3]);
}

static int d_dense(kiln_ctx *ctx, int n, const int64_t *s, const char *a, kiln_op_inst *o)
{
	kiln_tensor *X = ph(ctx, "X", 2, (int64_t[]){s[0], s[2]}), *W = ph(ctx, "W", 2, (int64_t[]){s[1], s[2]});
	kiln_tensor *b = attr_num(a, "bias", 1) ? ph(ctx, "bias", 1, (int64_t[]){s[1]}) : NULL;
	return finish(o, b ? 3 : 2, (kiln_tensor *[]){X, W, b}, kiln_op_dense(ctx, X, W, b), 2.0 * s[0] * s[1] * s[2]);
}

static void conv_attrs(const char *a, kiln_conv2d_attrs *c)
{
	int64_t st = (int64_t)attr_num(a, "stride", 1), pad = (int64_t)attr_num(a, "pad", 0);
	int64_t dil = (int64_t)attr_num(a, "dilation", 1);
	*c = (kiln_conv2d_attrs){{st, st}, {pad, pad, pad, pad}, {dil, dil}, (int64_t)attr_num(a, "groups", 1)};
}

static int d_conv2d(kiln_ctx *ctx, int n, const int64_t *s, const char *a, kiln_op_inst *o)
{
	kiln_conv2d_attrs c;
	conv_attrs(a, &c);
	int64_t g = c.groups > 0 ? c.groups : 1;
	kiln_tensor *X = ph(ctx, "X", 4, s), *W = ph(ctx, "W", 4, (int64_t[]){s[4], s[1] / g, s[5], s[6]});
	kiln_tensor *Y = kiln_op_conv2d(ctx, X, W, &c);
	double fl = Y ? 2.0 * numel(Y) * (double)(s[1] / g) * s[5] * s[6] : 0;
	return finish(o, 2, (kiln_tensor *[]){X, W}, Y, fl);
}

static int d_kpacked(kiln_ctx *ctx, int n, const int64_t *s, const char *a, kiln_op_inst *o)
{
	kiln_conv2d_attrs c;
	conv_attrs(a, &c);
	kiln_tensor *X = ph(ctx, "X", 4, s), *W = ph(ctx, "W", 4, (int64_t[]){s[4], s[1], s[5], s[6]});
	kiln_tensor *Y = kiln_op_conv2d_kpacked(ctx, X, W, &c, 0);
	return finish(o, 2, (kiln_tensor *[]){X, W}, Y, Y ? 2.0 * numel(Y) * (double)s[1] * s[5] * s[6] : 0);
}

/* flops counted as the direct convolution's, so GFLOP/s compare with conv2d's */
static int d_winograd(kiln_ctx *ctx, int n, const int64_t *s, const char *a, kiln_op_inst *o)
{
	int64_t pad = (int64_t)attr_num(a, "pad", 1);
	kiln_conv2d_attrs c = {{1, 1}, {pad, pad, pad, pad}, {1, 1}, 1};
	kiln_tensor *X = ph(ctx, "X", 4, s), *W = ph(ctx, "W", 4, (int64_t[]){s[4], s[1], 3, 3});
	kiln_tensor *Y = kiln_op_conv2d_winograd(ctx, X, W, &c, (int)attr_num(a, "tile", 4), 0);
	return finish(o, 2, (kiln_tensor *[]){X, W}, Y, Y ? 2.0 * numel(Y) * (double)s[1] * 9 : 0);
}

static int d_depthwise(kiln_ctx *ctx, int n, const int64_t *s, const char *a, kiln_op_inst *o)
{
	kiln_conv2d_attrs c;
	conv_attrs(a, &c);
	kiln_tensor *X = ph(ctx, "X", 4, s), *W = ph(ctx, "W", 4, (int64_t[]){s[1], 1, s[4], s[5]});
	kiln_tensor *Y = kiln_op_depthwise_conv2d(ctx, X, W, &c);
	return finish(o, 2, (kiln_tensor *[]){X, W}, Y, Y ? 2.0 * numel(Y) * s[4] * s[5] : 0);
}

static void pool_attrs(const char *a, kiln_pool2d_attrs *p)
{
	int64_t k = (int64_t)attr_num(a, "kernel", 2), st = (int64_t)attr_num(a, "stride", (double)k);
	int64_t pad = (int64_t)attr_num(a, "pad", 0);
	*p = (kiln_pool2d_attrs){{k, k}, {st, st}, {pad, pad, pad, pad}, (int)attr_num(a, "count_include_pad", 0)};
}

static int d_maxpool(kiln_ctx *ctx, int n, const int64_t *s, const char *a, kiln_op_inst *o)
{
	kiln_pool2d_attrs p;
	pool_attrs(a, &p);
	kiln_tensor *X = ph(ctx, "X", 4, s), *Y = kiln_op_max_pool2d(ctx, X, &p);
	return finish(o, 1, &X, Y, Y ? numel(Y) * (double)(p.kernel[0] * p.kernel[1]) : 0);
}

static int d_avgpool(kiln_ctx *ctx, int n, const int64_t *s, const char *a, kiln_op_inst *o)
{
	kiln_pool2d_attrs p;
	pool_attrs(a, &p);
	kiln_tensor *X = ph(ctx, "X", 4, s), *Y = kiln_op_avg_pool2d(ctx, X, &p);
	return finish(o, 1, &X, Y, Y ? numel(Y) * (double)(p.kernel[0] * p.kernel[1]) : 0);
}

static int d_gap(kiln_ctx *ctx, int n, const int64_t *s, const char *a, kiln_op_inst *o)
{
	kiln_tensor *X = ph(ctx, "X", 4, s);
	return finish(o, 1, &X, kiln_op_global_avg_pool2d(ctx, X), numel(X));
}

static int d_softmax(kiln_ctx *ctx, int n, const int64_t *s, const char *a, kiln_op_inst *o)
{
	kiln_tensor *X = ph(ctx, "X", n, s);
	return finish(o, 1, &X, kiln_op_softmax(ctx, X, (int)attr_num(a, "axis", -1)), 5 * numel(X));
}

static int d_layer_norm(kiln_ctx *ctx, int n, const int64_t *s, const char *a, kiln_op_inst *o)
{
	kiln_tensor *X = ph(ctx, "X", n, s), *g = ph(ctx, "gamma", 1, &s[n - 1]), *b = ph(ctx, "beta", 1, &s[n - 1]);
	return finish(o, 3, (kiln_tensor *[]){X, g, b}, kiln_op_layer_norm(ctx, X, g, b, attr_num(a, "eps", 1e-5)),
	              8 * numel(X));
}

static int d_batch_norm(kiln_ctx *ctx, int n, const int64_t *s, const char *a, kiln_op_inst *o)
{
	kiln_tensor *X = ph(ctx, "X", 4, s);
	kiln_tensor *p[4];
	const char *names[4] = {"gamma", "beta", "mean", "var"};
	for (int i = 0; i < 4; i++)
		p[i] = ph(ctx, names[i], 1, &s[1]);
	kiln_tensor *Y = kiln_op_batch_norm(ctx, X, p[0], p[1], p[2], p[3], attr_num(a, "eps", 1e-5));
	return finish(o, 5, (kiln_tensor *[]){X, p[0], p[1], p[2], p[3]}, Y, 4 * numel(X));
}

static int binary(kiln_ctx *ctx, int n, const int64_t *s, const char *a, kiln_op_inst *o, kiln_binop op)
{
	int64_t bs[KILN_MAX_DIMS];
	int nb = attr_list(a, "bshape", bs, KILN_MAX_DIMS);
	kiln_tensor *A = ph(ctx, "A", n, s), *B = nb ? ph(ctx, "B", nb, bs) : ph(ctx, "B", n, s);
	kiln_tensor *C = kiln_op_binary(ctx, op, A, B);
	return finish(o, 2, (kiln_tensor *[]){A, B}, C, C ? numel(C) : 0);
}

static int d_add(kiln_ctx *c, int n, const int64_t *s, const char *a, kiln_op_inst *o) { return binary(c, n, s, a, o, KILN_BIN_ADD); }
static int d_sub(kiln_ctx *c, int n, const int64_t *s, const char *a, kiln_op_inst *o) { return binary(c, n, s, a, o, KILN_BIN_SUB); }
static int d_mul(kiln_ctx *c, int n, const int64_t *s, const char *a, kiln_op_inst *o) { return binary(c, n, s, a, o, KILN_BIN_MUL); }
static int d_div(kiln_ctx *c, int n, const int64_t *s, const char *a, kiln_op_inst *o) { return binary(c, n, s, a, o, KILN_BIN_DIV); }

static int unary(kiln_ctx *ctx, int n, const int64_t *s, const char *a, kiln_op_inst *o, kiln_unop op)
{
	kiln_tensor *X = ph(ctx, "X", n, s);
	double p0 = attr_num(a, op == KILN_UN_CLIP ? "min" : "alpha", op == KILN_UN_CLIP ? -0.5 : 0.01);
	double p1 = attr_num(a, "max", 0.5);
	return finish(o, 1, &X, kiln_op_unary(ctx, op, X, p0, p1), numel(X));
}

static int d_relu(kiln_ctx *c, int n, const int64_t *s, const char *a, kiln_op_inst *o) { return unary(c, n, s, a, o, KILN_UN_RELU); }
static int d_clip(kiln_ctx *c, int n, const int64_t *s, const char *a, kiln_op_inst *o) { return unary(c, n, s, a, o, KILN_UN_CLIP); }
static int d_sigmoid(kiln_ctx *c, int n, const int64_t *s, const char *a, kiln_op_inst *o) { return unary(c, n, s, a, o, KILN_UN_SIGMOID); }
static int d_tanh(kiln_ctx *c, int n, const int64_t *s, const char *a, kiln_op_inst *o) { return unary(c, n, s, a, o, KILN_UN_TANH); }
static int d_gelu(kiln_ctx *c, int n, const int64_t *s, const char *a, kiln_op_inst *o) { return unary(c, n, s, a, o, KILN_UN_GELU); }
static int d_exp(kiln_ctx *c, int n, const int64_t *s, const char *a, kiln_op_inst *o) { return unary(c, n, s, a, o, KILN_UN_EXP); }

static int d_transpose(kiln_ctx *ctx, int n, const int64_t *s, const char *a, kiln_op_inst *o)
{
	int64_t p[KILN_MAX_DIMS];
	int perm[KILN_MAX_DIMS];
	int np = attr_list(a, "perm", p, KILN_MAX_DIMS);
	for (int d = 0; d < n; d++)
		perm[d] = np == n ? (int)p[d] : n - 1 - d;
	if (np && np != n)
		return ir_error(ctx, "transpose: perm has %d entries for a %d-D tensor", np, n);
	kiln_tensor *X = ph(ctx, "X", n, s);
	return finish(o, 1, &X, kiln_op_transpose(ctx, X, perm), numel(X));
}

static int d_reshape(kiln_ctx *ctx, int n, const int64_t *s, const char *a, kiln_op_inst *o)
{
	int64_t to[KILN_MAX_DIMS];
	int nt = attr_list(a, "to", to, KILN_MAX_DIMS);
	kiln_tensor *X = ph(ctx, "X", n, s);
	if (!nt) { /* default: flatten all but the first axis */
		to[0] = s[0];
		to[1] = 1;
		for (int d = 1; d < n; d++)
			if (__builtin_mul_overflow(to[1], s[d], &to[1]))
				return ir_error(ctx, "reshape: the product of the shape overflows 64 bits");
		nt = n > 1 ? 2 : 1;
	}
	return finish(o, 1, &X, kiln_op_reshape(ctx, X, nt, to), numel(X));
}

static int d_pad(kiln_ctx *ctx, int n, const int64_t *s, const char *a, kiln_op_inst *o)
{
	int64_t before[KILN_MAX_DIMS] = {0}, after[KILN_MAX_DIMS] = {0};
	int64_t p = (int64_t)attr_num(a, "pad", 1);
	for (int d = 0; d < n; d++)
		before[d] = after[d] = d >= n - 2 ? p : 0;
	attr_list(a, "before", before, n);
	attr_list(a, "after", after, n);
	kiln_tensor *X = ph(ctx, "X", n, s);
	kiln_tensor *Y = kiln_op_pad(ctx, X, before, after, attr_num(a, "value", 0));
	return finish(o, 1, &X, Y, Y ? numel(Y) : 0);
}

static int d_concat(kiln_ctx *ctx, int n, const int64_t *s, const char *a, kiln_op_inst *o)
{
	int k = (int)attr_num(a, "n", 2), axis = (int)attr_num(a, "axis", 1 % (n ? n : 1));
	if (k < 1 || k > KILN_OP_MAX_ARGS - 1)
		return ir_error(ctx, "concat: n=%d inputs (1 to %d)", k, KILN_OP_MAX_ARGS - 1);
	kiln_tensor *xs[KILN_OP_MAX_ARGS];
	for (int i = 0; i < k; i++) {
		int64_t sh[KILN_MAX_DIMS];
		memcpy(sh, s, sizeof(int64_t) * n);
		if (axis >= 0 && axis < n && __builtin_add_overflow(sh[axis], (int64_t)i, &sh[axis]))
			return ir_error(ctx, "concat: extent %lld of axis %d overflows", (long long)s[axis], axis);
		xs[i] = ph(ctx, ir_fmt(ctx, "X%d", i), n, sh);
	}
	kiln_tensor *Y = kiln_op_concat(ctx, k, xs, axis);
	return finish(o, k, xs, Y, Y ? numel(Y) : 0);
}

#define EX(...) ((const int64_t[KILN_MAX_DIMS]){__VA_ARGS__})

/* Attribute specs. Sizes stay far below where index arithmetic could overflow. */
#define BIG 1048576.0
#define END {NULL, 0, 0, 0, 0}
static const kiln_attr_spec A_MATMUL[] = {{"trans_a", 0, 1, 1, 0}, {"trans_b", 0, 1, 1, 0}, END};
static const kiln_attr_spec A_DENSE[] = {{"bias", 0, 1, 1, 0}, END};
static const kiln_attr_spec A_CONV[] = {{"stride", 1, BIG, 1, 0}, {"pad", 0, BIG, 1, 0}, {"dilation", 1, BIG, 1, 0},
                                        {"groups", 1, BIG, 1, 0}, END};
static const kiln_attr_spec A_DWCONV[] = {{"stride", 1, BIG, 1, 0}, {"pad", 0, BIG, 1, 0}, {"dilation", 1, BIG, 1, 0}, END};
static const kiln_attr_spec A_WINOGRAD[] = {{"pad", 0, BIG, 1, 0}, {"tile", 2, 4, 1, 0}, END};
static const kiln_attr_spec A_POOL[] = {{"kernel", 1, BIG, 1, 0}, {"stride", 1, BIG, 1, 0}, {"pad", 0, BIG, 1, 0},
                                        {"count_include_pad", 0, 1, 1, 0}, END};
static const kiln_attr_spec A_NONE[] = {END};
static const kiln_attr_spec A_AXIS[] = {{"axis", -KILN_MAX_DIMS, KILN_MAX_DIMS - 1, 1, 0}, END};
static const kiln_attr_spec A_EPS[] = {{"eps", 0, 1e3, 0, 0}, END};
static const kiln_attr_spec A_BINARY[] = {{"bshape", 1, 1e12, 1, 1}, END};
static const kiln_attr_spec A_CLIP[] = {{"min", -1e30, 1e30, 0, 0}, {"max", -1e30, 1e30, 0, 0}, END};
static const kiln_attr_spec A_PERM[] = {{"perm", 0, KILN_MAX_DIMS - 1, 1, 1}, END};
static const kiln_attr_spec A_RESHAPE[] = {{"to", 1, 1e12, 1, 1}, END};
static const kiln_attr_spec A_PAD[] = {{"pad", 0, BIG, 1, 0}, {"before", 0, BIG, 1, 1}, {"after", 0, BIG, 1, 1},
                                       {"value", -1e30, 1e30, 0, 0}, END};
static const kiln_attr_spec A_CONCAT[] = {{"n", 1, KILN_OP_MAX_ARGS - 1, 1, 0}, {"axis", 0, KILN_MAX_DIMS - 1, 1, 0}, END};

static const kiln_op_info ops[] = {
	{"matmul", "C = A @ B (2-D), optional transposes", "M,N,K", 3, "trans_a=0,trans_b=0", EX(37, 45, 29), d_matmul, A_MATMUL},
	{"batch_matmul", "C[b] = A[b] @ B[b]", "B,M,N,K", 4, "trans_a=0,trans_b=0", EX(3, 17, 20, 9), d_batch_matmul, A_MATMUL},
	{"dense", "Y = X W^T + bias (W is [N, K])", "M,N,K", 3, "bias=1", EX(5, 40, 24), d_dense, A_DENSE},
	{"conv2d", "2-D convolution, NCHW x OIHW", "N,C,H,W,K,R,S", 7, "stride=1,pad=0,dilation=1,groups=1",
	 EX(1, 6, 11, 13, 16, 3, 3), d_conv2d, A_CONV},
	{"conv2d_kpacked", "2-D convolution, output channels in vector lanes (CPU)", "N,C,H,W,K,R,S", 7,
	 "stride=1,pad=0,dilation=1", EX(1, 6, 11, 13, 20, 3, 3), d_kpacked, A_DWCONV},
	{"conv2d_winograd", "3x3 convolution, stride 1, by Winograd F(tile x tile, 3x3), tile 4 or 2 (CPU)", "N,C,H,W,K", 5,
	 "pad=1,tile=4",
	 EX(1, 6, 12, 16, 8), d_winograd, A_WINOGRAD},
	{"depthwise_conv2d", "one 2-D filter per channel", "N,C,H,W,R,S", 6, "stride=1,pad=0,dilation=1",
	 EX(1, 5, 12, 19, 3, 3), d_depthwise, A_DWCONV},
	{"max_pool2d", "max over windows, NCHW", "N,C,H,W", 4, "kernel=2,stride=kernel,pad=0", EX(1, 3, 10, 21), d_maxpool, A_POOL},
	{"avg_pool2d", "average over windows, NCHW", "N,C,H,W", 4, "kernel=2,stride=kernel,pad=0,count_include_pad=0",
	 EX(1, 3, 10, 21), d_avgpool, A_POOL},
	{"global_avg_pool2d", "mean over H and W", "N,C,H,W", 4, "", EX(2, 5, 7, 9), d_gap, A_NONE},
	{"softmax", "stable softmax over an axis", "D0,D1,...", -1, "axis=-1", EX(6, 37), d_softmax, A_AXIS},
	{"layer_norm", "normalize the last axis, then scale and shift", "D0,D1,...", -1, "eps=1e-5", EX(5, 40), d_layer_norm, A_EPS},
	{"batch_norm", "inference batch norm over channels", "N,C,H,W", 4, "eps=1e-5", EX(2, 3, 5, 19), d_batch_norm, A_EPS},
	{"add", "A + B with numpy broadcasting", "D0,D1,...", -1, "bshape=AxB", EX(4, 5, 33), d_add, A_BINARY},
	{"sub", "A - B with numpy broadcasting", "D0,D1,...", -1, "bshape=AxB", EX(4, 5, 33), d_sub, A_BINARY},
	{"mul", "A * B with numpy broadcasting", "D0,D1,...", -1, "bshape=AxB", EX(4, 5, 33), d_mul, A_BINARY},
	{"div", "A / B with numpy broadcasting", "D0,D1,...", -1, "bshape=AxB", EX(4, 5, 33), d_div, A_BINARY},
	{"relu", "max(x, 0)", "D0,D1,...", -1, "", EX(3, 7, 41), d_relu, A_NONE},
	{"clip", "min(max(x, min), max)", "D0,D1,...", -1, "min=-0.5,max=0.5", EX(3, 7, 41), d_clip, A_CLIP},
	{"sigmoid", "1 / (1 + exp(-x))", "D0,D1,...", -1, "", EX(3, 7, 41), d_sigmoid, A_NONE},
	{"tanh", "hyperbolic tangent", "D0,D1,...", -1, "", EX(3, 7, 41), d_tanh, A_NONE},
	{"gelu", "x/2 (1 + erf(x / sqrt 2))", "D0,D1,...", -1, "", EX(3, 7, 41), d_gelu, A_NONE},
	{"exp", "e^x", "D0,D1,...", -1, "", EX(3, 7, 41), d_exp, A_NONE},
	{"transpose", "permute axes", "D0,D1,...", -1, "perm=reversed (e.g. 0x2x1)", EX(3, 7, 20), d_transpose, A_PERM},
	{"reshape", "same data, new shape", "D0,D1,...", -1, "to=AxB (default: flatten all but the first axis)",
	 EX(3, 7, 20), d_reshape, A_RESHAPE},
	{"pad", "constant padding", "D0,D1,...", -1, "pad=1 (last two axes), before=..., after=..., value=0",
	 EX(2, 3, 9, 10), d_pad, A_PAD},
	{"concat", "join n tensors along an axis", "D0,D1,...", -1, "n=2,axis=1", EX(2, 3, 17), d_concat, A_CONCAT},
};

int kiln_num_ops(void) { return (int)(sizeof ops / sizeof ops[0]); }
const kiln_op_info *kiln_op_at(int i) { return i >= 0 && i < kiln_num_ops() ? &ops[i] : NULL; }

int kiln_op_example_rank(const kiln_op_info *op)
{
	int n = 0;
	while (n < KILN_MAX_DIMS && op->example[n] > 0)
		n++;
	return n;
}

/* One number of an attribute: all of text [v, e) a number in the spec's range. */
static int check_number(kiln_ctx *ctx, const kiln_op_info *op, const kiln_attr_spec *sp, const char *v, size_t len)
{
	char buf[64], *end;
	if (len == 0 || len >= sizeof buf)
		return ir_error(ctx, "%s: attribute '%s' needs a value", op->name, sp->key);
	memcpy(buf, v, len);
	buf[len] = 0;
	double x = strtod(buf, &end);
	if (*end || end == buf || x != x)
		return ir_error(ctx, "%s: attribute %s='%s' is not a number", op->name, sp->key, buf);
	/* the range first: converting a huge or infinite double to an integer is undefined */
	if (x < sp->lo || x > sp->hi)
		return ir_error(ctx, "%s: attribute %s=%s is out of range (%.15g to %.15g)", op->name, sp->key, buf, sp->lo, sp->hi);
	if (sp->integer && x != (double)(long long)x)
		return ir_error(ctx, "%s: attribute %s=%s must be a whole number", op->name, sp->key, buf);
	return 0;
}

/* Every "key=value" of attrs against op's specs. */
static int check_attrs(kiln_ctx *ctx, const kiln_op_info *op, const char *attrs)
{
	for (const char *p = attrs; *p;) {
		const char *e = strchr(p, ','), *end = e ? e : p + strlen(p), *eq = memchr(p, '=', (size_t)(end - p));
		if (!eq)
			return ir_error(ctx, "%s: attribute '%.*s' has no '=' (write key=value; %s takes: %s)", op->name,
			                (int)(end - p), p, op->name, op->attr_help[0] ? op->attr_help : "none");
		const kiln_attr_spec *sp = op->attrs;
		while (sp && sp->key && (strlen(sp->key) != (size_t)(eq - p) || strncmp(sp->key, p, (size_t)(eq - p))))
			sp++;
		if (!sp || !sp->key)
			return ir_error(ctx, "%s: unknown attribute '%.*s' (%s takes: %s)", op->name, (int)(eq - p), p, op->name,
			                op->attr_help[0] ? op->attr_help : "none");
		const char *v = eq + 1;
		int count = 0;
		for (;;) {
			const char *x = sp->list ? memchr(v, 'x', (size_t)(end - v)) : NULL, *ve = x ? x : end;
			if (++count > KILN_MAX_DIMS)
				return ir_error(ctx, "%s: attribute '%s' lists more than %d numbers", op->name, sp->key, KILN_MAX_DIMS);
			if (check_number(ctx, op, sp, v, (size_t)(ve - v)))
				return -1;
			if (!x)
				break;
			v = x + 1;
		}
		p = e ? e + 1 : end;
	}
	return 0;
}

int kiln_op_declare(kiln_ctx *ctx, const kiln_op_info *op, int n, const int64_t *shape, const char *attrs,
                    kiln_op_inst *out)
{
	if (!op)
		return ir_error(ctx, "no such operator");
	if (op->nshape > 0 && n != op->nshape)
		return ir_error(ctx, "%s takes %d shape numbers (%s), got %d", op->name, op->nshape, op->shape_help, n);
	if (n < 1 || n > KILN_MAX_DIMS)
		return ir_error(ctx, "%s takes 1 to %d shape numbers, got %d", op->name, KILN_MAX_DIMS, n);
	for (int i = 0; i < n; i++)
		if (shape[i] <= 0)
			return ir_error(ctx, "%s: shape number %d is %lld; sizes must be positive", op->name, i,
			                (long long)shape[i]);
	if (check_attrs(ctx, op, attrs ? attrs : ""))
		return -1;
	memset(out, 0, sizeof *out);
	return op->declare(ctx, n, shape, attrs ? attrs : "", out);
}

const kiln_op_info *kiln_op_find(const char *name)
{
	for (int i = 0; i < kiln_num_ops(); i++)
		if (!strcmp(ops[i].name, name))
			return &ops[i];
	return NULL;
}
