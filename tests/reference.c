/*
 * reference.c — the registry's operators as plain loops over flat arrays, in
 * double precision, written from the definitions (ONNX operator pages,
 * numpy broadcasting), not from ops/. Shapes come from the arrays; each
 * operator first checks the output shape its definition implies.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"

typedef struct {
	const char *attrs;
	int nin;
	const kiln_array *const *in;
	const kiln_array *out;
	double *y;
	char *err;
	size_t errlen;
} ref_call;

static int fail(ref_call *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, c->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Element i of a compact array, as a double. */
static double at(const kiln_array *a, int64_t i)
{
	kiln_dtype t = a->dtype;
	if (t.code == KILN_FLOAT)
		return t.bits == 64 ? ((const double *)a->data)[i] : ((const float *)a->data)[i];
	if (t.bits == 64)
		return (double)((const int64_t *)a->data)[i];
	if (t.bits == 32)
		return ((const int32_t *)a->data)[i];
	return ((const int8_t *)a->data)[i];
}

static int64_t count(const kiln_array *a)
{
	int64_t n = 1;
	for (int d = 0; d < a->ndim; d++)
		n *= a->shape[d];
	return n;
}

/* The value of key in "k=v,k=v", or def. */
static double num(const char *attrs, const char *key, double def)
{
	size_t kl = strlen(key);
	for (const char *p = attrs; p && *p; p = strchr(p, ','), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, kl) && p[kl] == '=')
			return strtod(p + kl + 1, NULL);
	return def;
}

/* "2x0x1" as numbers; the count, 0 when absent. */
static int list(const char *attrs, const char *key, int64_t *out, int max)
{
	size_t kl = strlen(key);
	for (const char *p = attrs; p && *p; p = strchr(p, ','), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, kl) && p[kl] == '=') {
			int n = 0;
			char *e;
			for (const char *v = p + kl + 1; n < max; v = e + 1) {
				out[n++] = strtoll(v, &e, 10);
				if (*e != 'x')
					break;
			}
			return n;
		}
	return 0;
}

/* Checks out's shape against the n numbers in want. */
static int expect_shape(ref_call *c, int n, const int64_t *want)
{
	bool same = c->out->ndim == n;
	for (int d = 0; same && d < n; d++)
		same = c->out->shape[d] == want[d];
	if (same)
		return 0;
	char a[128] = "", b[128] = "";
	for (int d = 0, k = 0; d < n; d++)
		k += snprintf(a + k, sizeof a - (size_t)k, "%s%lld", d ? "x" : "", (long long)want[d]);
	for (int d = 0, k = 0; d < c->out->ndim; d++)
		k += snprintf(b + k, sizeof b - (size_t)k, "%s%lld", d ? "x" : "", (long long)c->out->shape[d]);
	return fail(c, "the output is %s; the definition gives %s", b, a);
}

/* C[i, j] = sum_k A'[i, k] B'[k, j] over `batch` matrices; A' = A^T when ta. */
static int gemm(ref_call *c, int batch)
{
	const kiln_array *A = c->in[0], *B = c->in[1];
	int ta = (int)num(c->attrs, "trans_a", 0), tb = (int)num(c->attrs, "trans_b", 0), o = batch ? 1 : 0;
	int64_t M = ta ? A->shape[o + 1] : A->shape[o], K = ta ? A->shape[o] : A->shape[o + 1];
	int64_t N = tb ? B->shape[o] : B->shape[o + 1], nb = batch ? A->shape[0] : 1;
	if ((tb ? B->shape[o + 1] : B->shape[o]) != K)
		return fail(c, "inner sizes differ");
	if (expect_shape(c, 2 + o, batch ? (int64_t[]){nb, M, N} : (int64_t[]){M, N}))
		return -1;
	for (int64_t b = 0; b < nb; b++)
		for (int64_t i = 0; i < M; i++)
			for (int64_t j = 0; j < N; j++) {
				double s = 0;
				for (int64_t k = 0; k < K; k++) {
					int64_t ai = ta ? k * M + i : i * K + k, bi = tb ? j * K + k : k * N + j;
					s += at(A, b * M * K + ai) * at(B, b * K * N + bi);
				}
				c->y[(b * M + i) * N + j] = s;
			}
	return 0;
}

static int matmul(ref_call *c) { return gemm(c, 0); }
static int batch_matmul(ref_call *c) { return gemm(c, 1); }

/* ONNX Gemm with transB = 1: Y = X W^T + bias. */
static int dense(ref_call *c)
{
	const kiln_array *X = c->in[0], *W = c->in[1];
	int64_t M = X->shape[0], K = X->shape[1], N = W->shape[0];
	if (expect_shape(c, 2, (int64_t[]){M, N}))
		return -1;
	for (int64_t i = 0; i < M; i++)
		for (int64_t j = 0; j < N; j++) {
			double s = c->nin > 2 ? at(c->in[2], j) : 0;
			for (int64_t k = 0; k < K; k++)
				s += at(X, i * K + k) * at(W, j * K + k);
			c->y[i * N + j] = s;
		}
	return 0;
}

/*
 * ONNX Conv, NCHW x OIHW: y[n, m, oy, ox] = sum over the group's channels and
 * the window of x[n, g*C/G + ci, oy*s - p + r*d, ox*s - p + q*d] w[m, ci, r, q],
 * outside the input reading 0.
 */
static int conv(ref_call *c, int64_t groups)
{
	const kiln_array *X = c->in[0], *W = c->in[1];
	int64_t st = (int64_t)num(c->attrs, "stride", 1), p = (int64_t)num(c->attrs, "pad", 0);
	int64_t dl = (int64_t)num(c->attrs, "dilation", 1);
	int64_t N = X->shape[0], C = X->shape[1], H = X->shape[2], Wd = X->shape[3];
	int64_t M = W->shape[0], CG = W->shape[1], R = W->shape[2], S = W->shape[3];
	if (CG * groups != C || M % groups)
		return fail(c, "channels do not split into %lld groups", (long long)groups);
	int64_t OH = (H + 2 * p - dl * (R - 1) - 1) / st + 1, OW = (Wd + 2 * p - dl * (S - 1) - 1) / st + 1;
	if (expect_shape(c, 4, (int64_t[]){N, M, OH, OW}))
		return -1;
	int64_t per = M / groups;
	for (int64_t n = 0; n < N; n++)
		for (int64_t m = 0; m < M; m++)
			for (int64_t oy = 0; oy < OH; oy++)
				for (int64_t ox = 0; ox < OW; ox++) {
					double s = 0;
					int64_t g = m / per;
					for (int64_t ci = 0; ci < CG; ci++)
						for (int64_t r = 0; r < R; r++)
							for (int64_t q = 0; q < S; q++) {
								int64_t y = oy * st - p + r * dl, x = ox * st - p + q * dl;
								if (y < 0 || y >= H || x < 0 || x >= Wd)
									continue;
								s += at(X, ((n * C + g * CG + ci) * H + y) * Wd + x) *
								     at(W, ((m * CG + ci) * R + r) * S + q);
							}
					c->y[((n * M + m) * OH + oy) * OW + ox] = s;
				}
	return 0;
}

static int conv2d(ref_call *c) { return conv(c, (int64_t)num(c->attrs, "groups", 1)); }
static int depthwise_conv2d(ref_call *c) { return conv(c, c->in[0]->shape[1]); }
/* a plain convolution; its padding defaults to 1 */
static int conv2d_winograd(ref_call *c)
{
	ref_call p = *c;
	if (!strstr(c->attrs ? c->attrs : "", "pad="))
		p.attrs = "pad=1";
	return conv(&p, 1);
}

/*
 * ONNX MaxPool / AveragePool (floor mode): a window of k x k at stride s over
 * the input padded by p; padding never wins a max, and an average divides by
 * k*k (count_include_pad) or by the number of real input elements it covers.
 */
static int pool(ref_call *c, int is_max)
{
	const kiln_array *X = c->in[0];
	int64_t k = (int64_t)num(c->attrs, "kernel", 2), st = (int64_t)num(c->attrs, "stride", (double)k);
	int64_t p = (int64_t)num(c->attrs, "pad", 0);
	int incl = (int)num(c->attrs, "count_include_pad", 0);
	int64_t N = X->shape[0], C = X->shape[1], H = X->shape[2], Wd = X->shape[3];
	int64_t OH = (H + 2 * p - k) / st + 1, OW = (Wd + 2 * p - k) / st + 1;
	if (expect_shape(c, 4, (int64_t[]){N, C, OH, OW}))
		return -1;
	for (int64_t nc = 0; nc < N * C; nc++)
		for (int64_t oy = 0; oy < OH; oy++)
			for (int64_t ox = 0; ox < OW; ox++) {
				double best = -INFINITY, sum = 0;
				int64_t real = 0;
				for (int64_t r = 0; r < k; r++)
					for (int64_t q = 0; q < k; q++) {
						int64_t y = oy * st - p + r, x = ox * st - p + q;
						if (y < 0 || y >= H || x < 0 || x >= Wd)
							continue;
						double v = at(X, (nc * H + y) * Wd + x);
						best = v > best ? v : best;
						sum += v;
						real++;
					}
				c->y[(nc * OH + oy) * OW + ox] = is_max ? best : sum / (double)(incl ? k * k : real);
			}
	return 0;
}

static int max_pool2d(ref_call *c) { return pool(c, 1); }
static int avg_pool2d(ref_call *c) { return pool(c, 0); }

static int global_avg_pool2d(ref_call *c)
{
	const kiln_array *X = c->in[0];
	int64_t N = X->shape[0], C = X->shape[1], HW = X->shape[2] * X->shape[3];
	if (expect_shape(c, 4, (int64_t[]){N, C, 1, 1}))
		return -1;
	for (int64_t nc = 0; nc < N * C; nc++) {
		double s = 0;
		for (int64_t i = 0; i < HW; i++)
			s += at(X, nc * HW + i);
		c->y[nc] = s / (double)HW;
	}
	return 0;
}

/* Outer, axis and inner extents of a view of X around one axis. */
static void around(const kiln_array *X, int axis, int64_t *outer, int64_t *len, int64_t *inner)
{
	*outer = *inner = 1;
	for (int d = 0; d < axis; d++)
		*outer *= X->shape[d];
	for (int d = axis + 1; d < X->ndim; d++)
		*inner *= X->shape[d];
	*len = X->shape[axis];
}

/* softmax(x)_i = exp(x_i) / sum_j exp(x_j) along the axis. */
static int softmax(ref_call *c)
{
	const kiln_array *X = c->in[0];
	int axis = (int)num(c->attrs, "axis", -1);
	axis = axis < 0 ? axis + X->ndim : axis;
	if (axis < 0 || axis >= X->ndim || expect_shape(c, X->ndim, X->shape))
		return axis < 0 || axis >= X->ndim ? fail(c, "axis out of range") : -1;
	int64_t outer, len, inner;
	around(X, axis, &outer, &len, &inner);
	for (int64_t o = 0; o < outer; o++)
		for (int64_t i = 0; i < inner; i++) {
			double s = 0;
			for (int64_t j = 0; j < len; j++)
				s += exp(at(X, (o * len + j) * inner + i));
			for (int64_t j = 0; j < len; j++)
				c->y[(o * len + j) * inner + i] = exp(at(X, (o * len + j) * inner + i)) / s;
		}
	return 0;
}

/* ONNX LayerNormalization over the last axis: (x - mean) / sqrt(var + eps) * gamma + beta, var biased. */
static int layer_norm(ref_call *c)
{
	const kiln_array *X = c->in[0];
	double eps = num(c->attrs, "eps", 1e-5);
	if (expect_shape(c, X->ndim, X->shape))
		return -1;
	int64_t len = X->shape[X->ndim - 1], rows = count(X) / len;
	for (int64_t r = 0; r < rows; r++) {
		double mean = 0, var = 0;
		for (int64_t j = 0; j < len; j++)
			mean += at(X, r * len + j);
		mean /= (double)len;
		for (int64_t j = 0; j < len; j++)
			var += (at(X, r * len + j) - mean) * (at(X, r * len + j) - mean);
		var /= (double)len;
		for (int64_t j = 0; j < len; j++)
			c->y[r * len + j] = (at(X, r * len + j) - mean) / sqrt(var + eps) * at(c->in[1], j) + at(c->in[2], j);
	}
	return 0;
}

/* ONNX BatchNormalization (inference): inputs X, scale, bias, mean, var. */
static int batch_norm(ref_call *c)
{
	const kiln_array *X = c->in[0];
	double eps = num(c->attrs, "eps", 1e-5);
	if (expect_shape(c, X->ndim, X->shape))
		return -1;
	int64_t N = X->shape[0], C = X->shape[1], HW = count(X) / (N * C);
	for (int64_t n = 0; n < N; n++)
		for (int64_t ch = 0; ch < C; ch++)
			for (int64_t i = 0; i < HW; i++) {
				int64_t e = (n * C + ch) * HW + i;
				c->y[e] = (at(X, e) - at(c->in[3], ch)) / sqrt(at(c->in[4], ch) + eps) * at(c->in[1], ch) +
				          at(c->in[2], ch);
			}
	return 0;
}

/* numpy broadcasting: shapes aligned at the right, 1 stretches. */
static int binary(ref_call *c, char op)
{
	const kiln_array *A = c->in[0], *B = c->in[1];
	int nd = A->ndim > B->ndim ? A->ndim : B->ndim;
	int64_t sh[KILN_MAX_DIMS], sa[KILN_MAX_DIMS], sb[KILN_MAX_DIMS];
	for (int d = 0; d < nd; d++) {
		int da = d - (nd - A->ndim), db = d - (nd - B->ndim);
		int64_t ea = da >= 0 ? A->shape[da] : 1, eb = db >= 0 ? B->shape[db] : 1;
		if (ea != eb && ea != 1 && eb != 1)
			return fail(c, "shapes do not broadcast");
		sh[d] = ea > eb ? ea : eb;
		sa[d] = ea;
		sb[d] = eb;
	}
	if (expect_shape(c, nd, sh))
		return -1;
	int64_t total = count(c->out), idx[KILN_MAX_DIMS];
	for (int64_t e = 0; e < total; e++) {
		int64_t rest = e, ia = 0, ib = 0;
		for (int d = nd - 1; d >= 0; d--) {
			idx[d] = rest % sh[d];
			rest /= sh[d];
		}
		for (int d = 0; d < nd; d++) {
			ia = ia * sa[d] + (sa[d] == 1 ? 0 : idx[d]);
			ib = ib * sb[d] + (sb[d] == 1 ? 0 : idx[d]);
		}
		double a = at(A, ia), b = at(B, ib);
		c->y[e] = op == '+' ? a + b : op == '-' ? a - b : op == '*' ? a * b : a / b;
	}
	return 0;
}

static int add(ref_call *c) { return binary(c, '+'); }
static int sub(ref_call *c) { return binary(c, '-'); }
static int mul(ref_call *c) { return binary(c, '*'); }
static int div_(ref_call *c) { return binary(c, '/'); }

static int unary(ref_call *c, double (*f)(double, const char *))
{
	const kiln_array *X = c->in[0];
	if (expect_shape(c, X->ndim, X->shape))
		return -1;
	for (int64_t i = 0; i < count(X); i++)
		c->y[i] = f(at(X, i), c->attrs);
	return 0;
}

static double f_relu(double x, const char *a) { return x > 0 ? x : 0; }
static double f_clip(double x, const char *a)
{
	double lo = num(a, "min", -0.5), hi = num(a, "max", 0.5);
	return x < lo ? lo : x > hi ? hi : x;
}
static double f_sigmoid(double x, const char *a) { return 1 / (1 + exp(-x)); }
static double f_tanh(double x, const char *a) { return tanh(x); }
/* The exact GELU (ONNX Gelu, approximate = "none"): x * Phi(x). */
static double f_gelu(double x, const char *a) { return 0.5 * x * (1 + erf(x / sqrt(2.0))); }
static double f_exp(double x, const char *a) { return exp(x); }

static int relu(ref_call *c) { return unary(c, f_relu); }
static int clip(ref_call *c) { return unary(c, f_clip); }
static int sigmoid(ref_call *c) { return unary(c, f_sigmoid); }
static int tanh_(ref_call *c) { return unary(c, f_tanh); }
static int gelu(ref_call *c) { return unary(c, f_gelu); }
static int exp_(ref_call *c) { return unary(c, f_exp); }

/* Y[i0, ..., in] = X[j] where j's axis perm[d] takes i_d; perm defaults to reversed. */
static int transpose(ref_call *c)
{
	const kiln_array *X = c->in[0];
	int n = X->ndim;
	int64_t perm[KILN_MAX_DIMS], sh[KILN_MAX_DIMS], xs[KILN_MAX_DIMS];
	if (!list(c->attrs, "perm", perm, KILN_MAX_DIMS))
		for (int d = 0; d < n; d++)
			perm[d] = n - 1 - d;
	for (int d = 0; d < n; d++)
		sh[d] = X->shape[perm[d]];
	if (expect_shape(c, n, sh))
		return -1;
	xs[n - 1] = 1;
	for (int d = n - 2; d >= 0; d--)
		xs[d] = xs[d + 1] * X->shape[d + 1];
	for (int64_t e = 0; e < count(X); e++) {
		int64_t rest = e, src = 0;
		for (int d = n - 1; d >= 0; d--) {
			src += (rest % sh[d]) * xs[perm[d]];
			rest /= sh[d];
		}
		c->y[e] = at(X, src);
	}
	return 0;
}

/* The same elements in the same row-major order; `to` defaults to [d0, rest]. */
static int reshape(ref_call *c)
{
	const kiln_array *X = c->in[0];
	int64_t to[KILN_MAX_DIMS];
	int n = list(c->attrs, "to", to, KILN_MAX_DIMS);
	if (!n) {
		to[0] = X->shape[0];
		to[1] = count(X) / X->shape[0];
		n = X->ndim > 1 ? 2 : 1;
	}
	if (expect_shape(c, n, to))
		return -1;
	for (int64_t e = 0; e < count(X); e++)
		c->y[e] = at(X, e);
	return 0;
}

/* ONNX Pad, constant mode: before/after per axis (default 1 on the last two), filled with value. */
static int pad(ref_call *c)
{
	const kiln_array *X = c->in[0];
	int n = X->ndim;
	int64_t before[KILN_MAX_DIMS], after[KILN_MAX_DIMS], sh[KILN_MAX_DIMS], p = (int64_t)num(c->attrs, "pad", 1);
	for (int d = 0; d < n; d++)
		before[d] = after[d] = d >= n - 2 ? p : 0;
	list(c->attrs, "before", before, n);
	list(c->attrs, "after", after, n);
	for (int d = 0; d < n; d++)
		sh[d] = before[d] + X->shape[d] + after[d];
	if (expect_shape(c, n, sh))
		return -1;
	double value = num(c->attrs, "value", 0);
	for (int64_t e = 0; e < count(c->out); e++) {
		int64_t rest = e, src = 0;
		bool inside = true;
		int64_t scale = 1;
		for (int d = n - 1; d >= 0; d--) {
			int64_t i = rest % sh[d] - before[d];
			rest /= sh[d];
			inside = inside && i >= 0 && i < X->shape[d];
			src += i * scale;
			scale *= X->shape[d];
		}
		c->y[e] = inside ? at(X, src) : value;
	}
	return 0;
}

/* The inputs one after another along the axis. */
static int concat(ref_call *c)
{
	int axis = (int)num(c->attrs, "axis", 1), n = c->in[0]->ndim;
	int64_t sh[KILN_MAX_DIMS], outer, len, inner;
	memcpy(sh, c->in[0]->shape, sizeof(int64_t) * n);
	for (int i = 1; i < c->nin; i++)
		sh[axis] += c->in[i]->shape[axis];
	if (expect_shape(c, n, sh))
		return -1;
	around(c->out, axis, &outer, &len, &inner);
	for (int64_t o = 0; o < outer; o++) {
		int64_t j = 0;
		for (int i = 0; i < c->nin; i++) {
			int64_t li = c->in[i]->shape[axis];
			for (int64_t a = 0; a < li; a++, j++)
				for (int64_t k = 0; k < inner; k++)
					c->y[(o * len + j) * inner + k] = at(c->in[i], (o * li + a) * inner + k);
		}
	}
	return 0;
}

static const struct {
	const char *name;
	int (*eval)(ref_call *c);
} table[] = {
	{"matmul", matmul},     {"batch_matmul", batch_matmul},       {"dense", dense},
	{"conv2d", conv2d},     {"conv2d_kpacked", conv2d}, {"conv2d_winograd", conv2d_winograd}, {"depthwise_conv2d", depthwise_conv2d}, {"max_pool2d", max_pool2d},
	{"avg_pool2d", avg_pool2d}, {"global_avg_pool2d", global_avg_pool2d}, {"softmax", softmax},
	{"layer_norm", layer_norm}, {"batch_norm", batch_norm},       {"add", add},
	{"sub", sub},           {"mul", mul},                         {"div", div_},
	{"relu", relu},         {"clip", clip},                       {"sigmoid", sigmoid},
	{"tanh", tanh_},        {"gelu", gelu},                       {"exp", exp_},
	{"transpose", transpose}, {"reshape", reshape},               {"pad", pad},
	{"concat", concat},
};

int ref_knows(const char *op)
{
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		if (!strcmp(table[i].name, op))
			return 1;
	return 0;
}

int ref_eval(const char *op, const char *attrs, int nin, const kiln_array *const *ins, const kiln_array *out,
             double *want, char *err, size_t errlen)
{
	ref_call c = {attrs ? attrs : "", nin, ins, out, want, err, errlen};
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		if (!strcmp(table[i].name, op))
			return table[i].eval(&c);
	return fail(&c, "the reference has no operator '%s'", op);
}
