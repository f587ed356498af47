/*
 * op_nn.c — convolutions, matrix products, pooling, normalizations and
 * reductions: ONNX's semantics mapped onto the operator library (ops/),
 * with 1-D forms built as 2-D ones over views of the same elements.
 */
#include <math.h>
#include <string.h>

#include "ops/ops.h"
#include "optable.h"

/* ---- windows: kernel, strides, dilations, pads, auto_pad ---- */

typedef struct {
	int nsp;                       /* spatial dims: 1 or 2 */
	int64_t in[2], k[2], stride[2], dil[2], pad[4]; /* pad: begin h, begin w, end h, end w */
} window;

/* Reads the window attributes for nsp spatial dims of extents in[]; ksz from the weight (or NULL: kernel_shape). */
static int read_window(gr_build *b, int nsp, const int64_t *in, const int64_t *ksz, window *w, bool transposed)
{
	memset(w, 0, sizeof *w);
	w->nsp = nsp;
	int n;
	const int64_t *ks = gr_attr_ints(b->n, "kernel_shape", &n);
	if (!ksz && n != nsp)
		return gr_node_error(b, "kernel_shape must have %d values", nsp);
	if (ksz && n >= 0 && (n != nsp || memcmp(ks, ksz, sizeof(int64_t) * nsp)))
		return gr_node_error(b, "kernel_shape does not match the weight's spatial extents");
	const int64_t *st = gr_attr_ints(b->n, "strides", &n);
	if (n >= 0 && n != nsp)
		return gr_node_error(b, "strides must have %d values", nsp);
	int nd;
	const int64_t *dl = gr_attr_ints(b->n, "dilations", &nd);
	if (nd >= 0 && nd != nsp)
		return gr_node_error(b, "dilations must have %d values", nsp);
	int np;
	const int64_t *pd = gr_attr_ints(b->n, "pads", &np);
	if (np >= 0 && np != 2 * nsp)
		return gr_node_error(b, "pads must have %d values", 2 * nsp);
	for (int i = 0; i < nsp; i++) {
		w->in[i] = in[i];
		w->k[i] = ksz ? ksz[i] : ks[i];
		w->stride[i] = n >= 0 ? st[i] : 1;
		w->dil[i] = nd >= 0 ? dl[i] : 1;
		w->pad[i] = np >= 0 ? pd[i] : 0;
		w->pad[2 + i] = np >= 0 ? pd[nsp + i] : 0;
		const int64_t big = (int64_t)1 << 20; /* extents stop at 2^40: every window product stays inside int64 */
		if (w->k[i] < 1 || w->stride[i] < 1 || w->dil[i] < 1 || w->pad[i] < 0 || w->pad[2 + i] < 0 || w->k[i] > big ||
		    w->stride[i] > big || w->dil[i] > big || w->pad[i] > big || w->pad[2 + i] > big)
			return gr_node_error(b, "kernel, strides and dilations must be positive and pads not negative (and all "
			                     "below 2^20)");
	}
	const char *ap = gr_attr_str(b->n, "auto_pad", "NOTSET");
	if (!strcmp(ap, "VALID")) {
		memset(w->pad, 0, sizeof w->pad);
	} else if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
		if (transposed)
			return 0; /* ConvTranspose derives its pads from the output size */
		for (int i = 0; i < nsp; i++) {
			int64_t out = (in[i] + w->stride[i] - 1) / w->stride[i];
			int64_t total = (out - 1) * w->stride[i] + (w->k[i] - 1) * w->dil[i] + 1 - in[i];
			total = total < 0 ? 0 : total;
			int64_t small = total / 2;
			w->pad[i] = !strcmp(ap, "SAME_UPPER") ? small : total - small;
			w->pad[2 + i] = total - w->pad[i];
		}
	} else if (strcmp(ap, "NOTSET")) {
		return gr_node_error(b, "auto_pad='%s' (NOTSET, SAME_UPPER, SAME_LOWER or VALID)", ap);
	}
	return 0;
}

/* The 2-D form of a window (a 1-D one gets a unit height). */
static void window_2d(const window *w, int64_t *k, int64_t *stride, int64_t *dil, int64_t *pad)
{
	if (w->nsp == 2) {
		memcpy(k, w->k, 16), memcpy(stride, w->stride, 16), memcpy(dil, w->dil, 16), memcpy(pad, w->pad, 32);
		return;
	}
	k[0] = 1, k[1] = w->k[0];
	stride[0] = 1, stride[1] = w->stride[0];
	dil[0] = 1, dil[1] = w->dil[0];
	pad[0] = 0, pad[1] = w->pad[0], pad[2] = 0, pad[3] = w->pad[2];
}

/* A 3-D input [n, c, w] seen as [n, c, 1, w]; 4-D stays. -1 for other ranks. */
static int spatial_rank(gr_build *b, int k, const char *what)
{
	int r = kiln_tensor_ndim(b->in[k]);
	if (r != 3 && r != 4)
		return gr_node_error(b, "%s: a %d-D input is not supported (only 1-D and 2-D forms: 3-D or 4-D inputs)",
		                     what, r);
	if (kiln_tensor_dtype(b->in[k]).code != KILN_FLOAT)
		return gr_node_error(b, "%s of non-float tensors is not supported", what);
	return r - 2;
}

static kiln_tensor *as_4d(gr_build *b, int k)
{
	const int64_t *s = kiln_tensor_shape(b->in[k]);
	if (kiln_tensor_ndim(b->in[k]) == 4)
		return b->in[k];
	return gr_view_input(b, k, 4, (int64_t[]){s[0], s[1], 1, s[2]});
}

/* The logical output of a 2-D op run on a 1-D input: drop the unit height. */
static int finish_spatial(gr_build *b, kiln_tensor *t, int nsp)
{
	if (!t)
		return -1;
	if (nsp == 2) {
		b->out[0] = t;
		return 0;
	}
	const int64_t *s = kiln_tensor_shape(t);
	gr_set_view(b, 0, t, 3, (int64_t[]){s[0], s[1], s[3]});
	return 0;
}

/* ---- Conv ---- */

static kiln_expr *bias_epilogue(gr_build *b, kiln_expr *const *idx, kiln_expr *acc)
{
	return kiln_add(b->ctx, acc, KILN_READ(b->ctx, b->in[2], idx[1]));
}

/* The spatial rank (1 or 2) of a convolution's input and weight, and its window; -1 after an error. */
static int conv_window(gr_build *b, window *w, bool transposed)
{
	int nsp = spatial_rank(b, 0, b->n->op);
	if (nsp < 0)
		return -1;
	if (kiln_tensor_ndim(b->in[1]) != nsp + 2)
		return gr_node_error(b, "the weight must be %d-D", nsp + 2);
	const int64_t *xs = kiln_tensor_shape(b->in[0]), *ws = kiln_tensor_shape(b->in[1]);
	return read_window(b, nsp, xs + 2, ws + 2, w, transposed) ? -1 : nsp;
}

/*
 * Input k of the node becomes a new constant, data (float32 of shape), named
 * after v (the constant it replaces) and suffix: its placeholder, or NULL.
 * v is not used after (adding a value may move the graph's values).
 */
static kiln_tensor *replace_weight(gr_build *b, int k, const gr_value *v, const char *suffix, int ndim,
                                   const int64_t *shape, float *data)
{
	int id = gr_add_const(b->g, ir_fmt(b->ctx, "%s.%s", v->name, suffix), KILN_F32, ndim, shape, data);
	if (id < 0)
		return NULL;
	b->in_value[k] = id + 1;
	b->in[k] = kiln_placeholder(b->ctx, ir_fmt(b->ctx, "v%d_%s", id, suffix), ndim, shape, KILN_F32);
	return b->in[k];
}

/*
 * Weight input 1 of a convolution as Winograd's U (kiln_winograd_weights),
 * when the target is a CPU (where the Winograd schedule lives), the weight
 * a float constant, and the layer one Winograd makes faster: 3x3, stride 1,
 * ungrouped, 16 or more output tiles (a partial last tile is cropped), and
 * channels enough that the GEMMs outweigh the transforms. Tiles of 4x4
 * where there are 16 of them (ResNet-18's 56x56, 28x28 and 14x14 layers,
 * one AVX-512 core: 2.5 -> 1.0, 2.6 -> 1.1 and 2.6 -> 1.3 ms), else of 2x2
 * (its 7x7 layers: 4 tiles of 4x4 would cover 64 outputs for 49). *m gets
 * the tile; NULL: the direct or GEMM form.
 */
static kiln_tensor *winograd_weight(gr_build *b, const kiln_conv2d_attrs *a, int64_t OH, int64_t OW, int *m)
{
	gr_value *v = gr_input(b, 1);
	const int64_t *ws = kiln_tensor_shape(b->in[1]);
	int64_t K = ws[0], C = ws[1];
	*m = (OH + 3) / 4 * ((OW + 3) / 4) >= 16 ? 4 : (OH + 1) / 2 * ((OW + 1) / 2) >= 16 ? 2 : 0;
	if (!b->prepack || !v || !v->data || v->dtype.code != KILN_FLOAT || v->dtype.bits != 32 || ws[2] != 3 ||
	    ws[3] != 3 || a->groups != 1 || a->stride[0] != 1 || a->stride[1] != 1 || a->dilation[0] != 1 ||
	    a->dilation[1] != 1 || !*m || C < 16 || K < 16 || gr_numel(v) != K * C * 9)
		return NULL;
	int64_t E = (*m + 2) * (*m + 2);
	float *u = ir_alloc(b->ctx, sizeof(float) * (size_t)(E * K * C));
	ir_assert(!kiln_winograd_weights(v->data, K, C, *m, u)); /* m is 2 or 4 here */
	return replace_weight(b, 1, v, "winograd", 3, (int64_t[]){E, K, C}, u);
}

/* Output extent of a window of k taps (dilated by d) over n inputs padded by p in all, at stride s. */
static int64_t conv_out(int64_t n, int64_t p, int64_t k, int64_t s, int64_t d) { return (n + p - ((k - 1) * d + 1)) / s + 1; }

/*
 * Weight input 1 of a convolution transposed to [c, r, s, k] for
 * kiln_op_conv2d_kpacked (output channels in vector lanes), when the target
 * is a CPU, the weight a float constant, the convolution ungrouped with a
 * row too short or too strided for vectors along it (the cases the GEMM form
 * takes on other targets), output channels enough to fill a vector and a
 * reduction deep enough to pay for the broadcasts (MobileNetV2's stem, 27
 * deep, was faster as a GEMM: 0.48 vs 0.57 ms; ResNet-18's, 147 deep, 3.4 ->
 * 2.5 ms; its 7x7 layers 2.8 -> 2.3 ms, on AVX-512).
 *
 * And where its reads keep up with its FMAs. Each step of the reduction
 * loads a line of weights (two vectors of channels) and a line of input for
 * a block of a few columns; the weight panel of a block of channels is read
 * again for every output row. Vectors of 16 lanes do 2-3x the FMAs per line
 * of AVX2's 8-lane block (16 channels x 4-5 columns), whose panel must stay
 * in the L1 to be fast: one AVX2 core (Zen 3), in the models, kpacked vs the
 * GEMM form: 147-deep stem 3.5 vs 5.6 ms, 128-deep 0.23 vs 0.28, 256-deep
 * 0.33 vs 0.33 and 0.30 vs 0.24, 512-deep 4.6 vs 2.8, 2304-deep 5.0 vs 2.3.
 */
static kiln_tensor *kpacked_weight(gr_build *b, const kiln_conv2d_attrs *a, int64_t OW)
{
	gr_value *v = gr_input(b, 1);
	const int64_t *ws = kiln_tensor_shape(b->in[1]);
	int64_t K = ws[0], C = ws[1], R = ws[2], S = ws[3];
	if (!b->prepack || !v || !v->data || v->dtype.code != KILN_FLOAT || v->dtype.bits != 32 || a->groups != 1 ||
	    !(OW < 32 || a->stride[1] > 1) || K < 16 || C * R * S < 64 || gr_numel(v) != K * C * R * S)
		return NULL;
	int64_t lanes = kiln_target_lanes(b->cpu), l1 = b->cpu->l1d_bytes ? b->cpu->l1d_bytes : 32768;
	int64_t panel = C * R * S * (2 * lanes < K ? 2 * lanes : K) * (int64_t)sizeof(float);
	if (lanes < 16 && panel >= l1 / 2)
		return NULL;
	float *d = ir_alloc(b->ctx, sizeof(float) * (size_t)(K * C * R * S));
	kiln_conv2d_pack_weights(v->data, K, C, R, S, d);
	return replace_weight(b, 1, v, "kpacked", 4, (int64_t[]){C, R, S, K}, d);
}

static int conv_build(gr_build *b)
{
	window w;
	int nsp = conv_window(b, &w, false);
	if (nsp < 0)
		return -1;
	const int64_t *xs = kiln_tensor_shape(b->in[0]), *ws = kiln_tensor_shape(b->in[1]);
	int64_t k[2], dil[2];
	kiln_conv2d_attrs a = {.groups = gr_attr_int(b->n, "group", 1)};
	window_2d(&w, k, a.stride, dil, a.pad);
	memcpy(a.dilation, dil, sizeof dil);
	int64_t C = xs[1], K = ws[0];
	if (b->in[2] && (kiln_tensor_ndim(b->in[2]) != 1 || kiln_tensor_shape(b->in[2])[0] != K))
		return gr_node_error(b, "the bias must have shape [%lld]", (long long)K);
	kiln_tensor *X = as_4d(b, 0), *W = as_4d(b, 1), *Y;
	int64_t OH = nsp == 2 ? xs[2] + a.pad[0] + a.pad[2] - 2 : 0, OW = nsp == 2 ? xs[3] + a.pad[1] + a.pad[3] - 2 : 0;
	int m = 0;
	kiln_tensor *U = nsp == 2 && X && W ? winograd_weight(b, &a, OH, OW, &m) : NULL, *Wt = NULL;
	int64_t ow = nsp == 2 ? conv_out(xs[3], a.pad[1] + a.pad[3], ws[3], a.stride[1], a.dilation[1]) : 0;
	if (U)
		Y = kiln_op_conv2d_winograd(b->ctx, X, U, &a, m, 1);
	else if (nsp == 2 && X && W && (Wt = kpacked_weight(b, &a, ow)))
		Y = kiln_op_conv2d_kpacked(b->ctx, X, Wt, &a, 1);
	else if (a.groups == C && K == C && ws[1] == 1 && a.groups > 1)
		Y = kiln_op_depthwise_conv2d(b->ctx, X, W, &a);
	else if (b->prepack && nsp == 2 && a.stride[1] > 1 && ow >= 32)
		/* a wide strided row the kpacked form did not take (too few output
		 * channels or too shallow a reduction: the 3-channel stems of
		 * MobileNetV2 and SqueezeNet): strided vector loads beat the GEMM
		 * form's im2col gathers (MobileNetV2's stem in the model, one AVX-512
		 * core: 0.46 -> 0.39 ms; SqueezeNet 8.65 -> 8.12 ms in all) */
		Y = kiln_op_conv2d_direct(b->ctx, X, W, &a);
	else
		Y = kiln_op_conv2d(b->ctx, X, W, &a);
	if (b->in[2])
		b->epilogue = bias_epilogue;
	return finish_spatial(b, Y, nsp);
}

/* ---- ConvTranspose: Y[n, k, o] = sum over c, r of X[n, c, i] W[c, k, r] where o = i*stride - pad + r*dil ---- */

typedef struct {
	kiln_tensor *X, *W;
	kiln_iter *c, *r, *s;
	int64_t stride[2], dil[2], pad[4], cpg, kpg, H, Wd;
} convt_args;

static kiln_expr *convt_tap(kiln_ctx *ctx, kiln_expr *o, kiln_expr *r, int64_t pad, int64_t dil, int64_t stride,
                            int64_t extent, kiln_expr **cond)
{
	kiln_expr *t = kiln_sub(ctx, kiln_add(ctx, o, gr_i64(ctx, pad)), kiln_mul(ctx, r, gr_i64(ctx, dil)));
	kiln_expr *i = kiln_div(ctx, t, gr_i64(ctx, stride));
	kiln_expr *ok = kiln_and(ctx, kiln_ge(ctx, t, gr_i64(ctx, 0)), kiln_lt(ctx, i, gr_i64(ctx, extent)));
	if (stride > 1)
		ok = kiln_and(ctx, ok, kiln_eq(ctx, kiln_mod(ctx, t, gr_i64(ctx, stride)), gr_i64(ctx, 0)));
	*cond = *cond ? kiln_and(ctx, *cond, ok) : ok;
	/* clamped so the read stays inside X whatever the condition says */
	return kiln_min(ctx, kiln_max(ctx, i, gr_i64(ctx, 0)), gr_i64(ctx, extent - 1));
}

static kiln_expr *convt_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	convt_args *a = user;
	kiln_expr *g = kiln_div(ctx, idx[1], gr_i64(ctx, a->kpg));
	kiln_expr *c = kiln_add(ctx, kiln_mul(ctx, g, gr_i64(ctx, a->cpg)), kiln_iter_var(a->c));
	kiln_expr *kk = kiln_mod(ctx, idx[1], gr_i64(ctx, a->kpg));
	kiln_expr *cond = NULL;
	kiln_expr *ih = convt_tap(ctx, idx[2], kiln_iter_var(a->r), a->pad[0], a->dil[0], a->stride[0], a->H, &cond);
	kiln_expr *iw = convt_tap(ctx, idx[3], kiln_iter_var(a->s), a->pad[1], a->dil[1], a->stride[1], a->Wd, &cond);
	kiln_expr *v = kiln_mul(ctx, KILN_READ(ctx, a->X, idx[0], c, ih, iw),
	                        KILN_READ(ctx, a->W, c, kk, kiln_iter_var(a->r), kiln_iter_var(a->s)));
	v = kiln_select(ctx, cond, v, kiln_const(ctx, kiln_tensor_dtype(a->X), 0));
	return kiln_sum(ctx, v, 3, (kiln_iter *[]){a->c, a->r, a->s});
}

static int convt_build(gr_build *b)
{
	window w;
	int nsp = conv_window(b, &w, true);
	if (nsp < 0)
		return -1;
	const int64_t *xs = kiln_tensor_shape(b->in[0]), *ws = kiln_tensor_shape(b->in[1]);
	int64_t G = gr_attr_int(b->n, "group", 1), C = xs[1];
	if (G < 1 || C % G || ws[0] != C)
		return gr_node_error(b, "the weight's first extent must be the %lld input channels, in groups of %lld",
		                     (long long)C, (long long)G);
	int64_t K = ws[1] * G;
	int nop, nos;
	const int64_t *op = gr_attr_ints(b->n, "output_padding", &nop), *os = gr_attr_ints(b->n, "output_shape", &nos);
	if ((nop >= 0 && nop != nsp) || (nos >= 0 && nos != nsp))
		return gr_node_error(b, "output_padding and output_shape must have %d values", nsp);
	const char *ap = gr_attr_str(b->n, "auto_pad", "NOTSET");
	int64_t out[2];
	for (int i = 0; i < nsp; i++) {
		int64_t opad = nop >= 0 ? op[i] : 0, span = (w.k[i] - 1) * w.dil[i] + 1;
		if (opad < 0 || opad > ((int64_t)1 << 20) || (nos >= 0 && (os[i] < 1 || os[i] > ((int64_t)1 << 40))))
			return gr_node_error(b, "output_padding and output_shape must be non-negative (below 2^20 and 2^40)");
		int64_t full = w.stride[i] * (xs[2 + i] - 1) + opad + span;
		bool same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER");
		if (nos >= 0 || same) {
			int64_t want = nos >= 0 ? os[i] : xs[2 + i] * w.stride[i];
			int64_t total = full - want; /* negative: pads below zero extend the output (ONNX's reference) */
			bool upper = !strcmp(ap, "SAME_UPPER");
			int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2); /* floor, as ONNX's definition */
			w.pad[i] = upper ? half : total - half;
			w.pad[2 + i] = total - w.pad[i];
		}
		out[i] = full - w.pad[i] - w.pad[2 + i];
		if (out[i] < 1)
			return gr_node_error(b, "the padding leaves no output");
	}
	convt_args *a = ir_alloc(b->ctx, sizeof *a);
	int64_t k2[2], pad2[4];
	window_2d(&w, k2, a->stride, a->dil, pad2);
	a->pad[0] = pad2[0], a->pad[1] = pad2[1];
	a->X = as_4d(b, 0);
	a->W = as_4d(b, 1);
	a->cpg = C / G;
	a->kpg = K / G;
	a->H = kiln_tensor_shape(a->X)[2];
	a->Wd = kiln_tensor_shape(a->X)[3];
	a->c = kiln_reduce_axis(b->ctx, a->cpg, "rc");
	a->r = kiln_reduce_axis(b->ctx, k2[0], "r");
	a->s = kiln_reduce_axis(b->ctx, k2[1], "s");
	int64_t shape[4] = {xs[0], K, nsp == 2 ? out[0] : 1, nsp == 2 ? out[1] : out[0]};
	if (b->in[2] && (kiln_tensor_ndim(b->in[2]) != 1 || kiln_tensor_shape(b->in[2])[0] != K))
		return gr_node_error(b, "the bias must have shape [%lld]", (long long)K);
	if (b->in[2])
		b->epilogue = bias_epilogue;
	return finish_spatial(b, kiln_compute(b->ctx, "conv_transpose", 4, shape, convt_body, a), nsp);
}

/*
 * Input k (B of a matmul: [K, N], or [N, K] with trans_b) packed into the
 * panels the CPU matmul reads, when it is a float constant and the target
 * packs on the CPU: the packing leaves the run time. NULL: use B as it is.
 */
static kiln_tensor *packed_weight(gr_build *b, int k, int64_t K, int64_t N, int trans_b)
{
	gr_value *v = gr_input(b, k);
	if (!b->prepack || !v || !v->data || v->dtype.code != KILN_FLOAT || v->dtype.bits != 32 || gr_numel(v) != K * N)
		return NULL;
	int64_t nb = kiln_matmul_pack_width(N), shape[3] = {(N + nb - 1) / nb, K, nb};
	float *d = ir_alloc(b->ctx, sizeof(float) * (size_t)(shape[0] * K * nb));
	kiln_matmul_pack(v->data, K, N, trans_b, d);
	return replace_weight(b, k, v, "packed", 3, shape, d);
}

/* ---- Gemm: alpha op(A) op(B) + beta C ---- */

typedef struct {
	double alpha, beta;
	kiln_tensor *C;
} gemm_args;

static kiln_expr *gemm_epilogue(gr_build *b, kiln_expr *const *idx, kiln_expr *acc)
{
	gemm_args *g = b->state;
	kiln_ctx *ctx = b->ctx;
	if (g->alpha != 1)
		acc = kiln_mul(ctx, acc, kiln_const(ctx, acc->type, g->alpha));
	if (!g->C)
		return acc;
	kiln_expr *c = gr_bcast_read(ctx, g->C, 2, idx);
	if (g->beta != 1)
		c = kiln_mul(ctx, c, kiln_const(ctx, acc->type, g->beta));
	return kiln_add(ctx, acc, c);
}

static int gemm_build(gr_build *b)
{
	if (kiln_tensor_ndim(b->in[0]) != 2 || kiln_tensor_ndim(b->in[1]) != 2)
		return gr_node_error(b, "A and B must be 2-D");
	gemm_args *g = ir_alloc(b->ctx, sizeof *g);
	g->alpha = gr_attr_float(b->n, "alpha", 1.0);
	g->beta = gr_attr_float(b->n, "beta", 1.0);
	g->C = g->beta != 0 ? b->in[2] : NULL;
	int ta = (int)gr_attr_int(b->n, "transA", 0), tb = (int)gr_attr_int(b->n, "transB", 0);
	const int64_t *bs = kiln_tensor_shape(b->in[1]), *as = kiln_tensor_shape(b->in[0]);
	int64_t K = tb ? bs[1] : bs[0], N = tb ? bs[0] : bs[1];
	kiln_tensor *Bp = (ta ? as[0] : as[1]) == K ? packed_weight(b, 1, K, N, tb) : NULL;
	kiln_tensor *Y = Bp ? kiln_op_matmul_prepacked(b->ctx, b->in[0], Bp, N, ta)
	                    : kiln_op_matmul(b->ctx, b->in[0], b->in[1], ta, tb);
	if (!Y)
		return -1;
	if (g->C) {
		int n;
		int64_t s[KILN_MAX_DIMS];
		if (kiln_tensor_ndim(g->C) > 2 ||
		    gr_broadcast(b, 2, kiln_tensor_shape(Y), kiln_tensor_ndim(g->C), kiln_tensor_shape(g->C), &n, s))
			return gr_node_error(b, "C must broadcast to the %lldx%lld result", (long long)kiln_tensor_shape(Y)[0],
			                     (long long)kiln_tensor_shape(Y)[1]);
		if (s[0] != kiln_tensor_shape(Y)[0] || s[1] != kiln_tensor_shape(Y)[1])
			return gr_node_error(b, "C is larger than the result");
	}
	if (g->alpha != 1 || g->C) {
		b->state = g;
		b->epilogue = gemm_epilogue;
	}
	b->out[0] = Y;
	return 0;
}

/* ---- MatMul: numpy's matmul, batched and broadcast ---- */

typedef struct {
	kiln_tensor *A, *B;
	kiln_iter *k;
	int nd;                /* output rank of the batched form */
	bool a1, b1;           /* 1-D operands */
} mm_generic;

static kiln_expr *mm_generic_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	mm_generic *m = user;
	int ra = kiln_tensor_ndim(m->A), rb = kiln_tensor_ndim(m->B), nd = m->nd;
	kiln_expr *k = kiln_iter_var(m->k), *ia[KILN_MAX_DIMS], *ib[KILN_MAX_DIMS];
	const int64_t *sa = kiln_tensor_shape(m->A), *sb = kiln_tensor_shape(m->B);
	/* batch dims right-aligned against the output's nd - 2 */
	for (int d = 0; d < ra - 2; d++)
		ia[d] = sa[d] == 1 ? gr_i64(ctx, 0) : idx[nd - 2 - (ra - 2) + d];
	for (int d = 0; d < rb - 2; d++)
		ib[d] = sb[d] == 1 ? gr_i64(ctx, 0) : idx[nd - 2 - (rb - 2) + d];
	ia[ra - 2] = idx[nd - 2], ia[ra - 1] = k;
	ib[rb - 2] = k, ib[rb - 1] = idx[nd - 1];
	return kiln_sum(ctx, kiln_mul(ctx, kiln_read_n(ctx, m->A, ra, ia), kiln_read_n(ctx, m->B, rb, ib)), 1, &m->k);
}

static int64_t prod(const int64_t *s, int n)
{
	int64_t p = 1;
	for (int i = 0; i < n; i++)
		p *= s[i];
	return p;
}

static int matmul_build(gr_build *b)
{
	int ra = kiln_tensor_ndim(b->in[0]), rb = kiln_tensor_ndim(b->in[1]);
	if (ra < 1 || rb < 1)
		return gr_node_error(b, "operands must be at least 1-D");
	const int64_t *sa0 = kiln_tensor_shape(b->in[0]), *sb0 = kiln_tensor_shape(b->in[1]);
	bool a1 = ra == 1, b1 = rb == 1;
	kiln_tensor *A = a1 ? gr_view_input(b, 0, 2, (int64_t[]){1, sa0[0]}) : b->in[0];
	kiln_tensor *B = b1 ? gr_view_input(b, 1, 2, (int64_t[]){sb0[0], 1}) : b->in[1];
	ra = kiln_tensor_ndim(A), rb = kiln_tensor_ndim(B);
	const int64_t *sa = kiln_tensor_shape(A), *sb = kiln_tensor_shape(B);
	int64_t M = sa[ra - 2], K = sa[ra - 1], N = sb[rb - 1];
	if (sb[rb - 2] != K)
		return gr_node_error(b, "inner dimensions differ: %lld against %lld", (long long)K, (long long)sb[rb - 2]);
	int nbd;
	int64_t bshape[KILN_MAX_DIMS + 2];
	if (gr_broadcast(b, ra - 2, sa, rb - 2, sb, &nbd, bshape))
		return -1;
	/* the logical output: batch, then M and N unless an operand was 1-D */
	int64_t oshape[KILN_MAX_DIMS + 2];
	int on = nbd;
	memcpy(oshape, bshape, sizeof(int64_t) * nbd);
	if (!a1)
		oshape[on++] = M;
	if (!b1)
		oshape[on++] = N;
	if (on > KILN_MAX_DIMS)
		return gr_node_error(b, "the result has more than %d dimensions", KILN_MAX_DIMS);
	int64_t nba = prod(sa, ra - 2), nbb = prod(sb, rb - 2);
	bool fl = kiln_tensor_dtype(A).code == KILN_FLOAT;
	kiln_tensor *Y = NULL;
	if (fl && nbb == 1) {
		/* B has no batch: every batch row of A is one more row of one matmul */
		A = gr_view_input(b, 0, 2, (int64_t[]){nba * M, K});
		kiln_tensor *Bp = packed_weight(b, 1, K, N, 0);
		B = Bp ? NULL : gr_view_input(b, 1, 2, (int64_t[]){K, N});
		Y = Bp ? kiln_op_matmul_prepacked(b->ctx, A, Bp, N, 0) : kiln_op_matmul(b->ctx, A, B, 0, 0);
	} else if (fl && ra == rb && !memcmp(sa, sb, sizeof(int64_t) * (ra - 2))) {
		A = gr_view_input(b, 0, 3, (int64_t[]){nba, M, K});
		B = gr_view_input(b, 1, 3, (int64_t[]){nbb, K, N});
		Y = kiln_op_batch_matmul(b->ctx, A, B, 0, 0);
	} else {
		mm_generic *m = ir_alloc(b->ctx, sizeof *m);
		*m = (mm_generic){A, B, kiln_reduce_axis(b->ctx, K, "k"), nbd + 2, a1, b1};
		int64_t s[KILN_MAX_DIMS + 2];
		memcpy(s, bshape, sizeof(int64_t) * nbd);
		s[nbd] = M, s[nbd + 1] = N;
		if (nbd + 2 > KILN_MAX_DIMS)
			return gr_node_error(b, "the result has more than %d dimensions", KILN_MAX_DIMS);
		Y = kiln_compute(b->ctx, "matmul", nbd + 2, s, mm_generic_body, m);
	}
	if (!Y)
		return -1;
	if (kiln_tensor_ndim(Y) == on && !memcmp(kiln_tensor_shape(Y), oshape, sizeof(int64_t) * on))
		b->out[0] = Y;
	else
		gr_set_view(b, 0, Y, on, oshape);
	return 0;
}

/* ---- pooling ---- */

static int pool_build(gr_build *b, bool max)
{
	if (b->n->nout > 1 && b->n->out[1] >= 0)
		return gr_node_error(b, "the Indices output is not supported");
	int nsp = spatial_rank(b, 0, b->n->op);
	if (nsp < 0)
		return -1;
	const int64_t *xs = kiln_tensor_shape(b->in[0]);
	window w;
	if (read_window(b, nsp, xs + 2, NULL, &w, false))
		return -1;
	if (gr_attr_int(b->n, "storage_order", 0))
		return gr_node_error(b, "storage_order=1 is not supported");
	kiln_pool2d_attrs a = {0};
	int64_t dil[2];
	window_2d(&w, a.kernel, a.stride, dil, a.pad);
	if (dil[0] != 1 || dil[1] != 1)
		return gr_node_error(b, "dilations other than 1 are not supported");
	a.count_include_pad = (int)gr_attr_int(b->n, "count_include_pad", 0);
	if (gr_attr_int(b->n, "ceil_mode", 0)) {
		if (!max && a.count_include_pad)
			return gr_node_error(b, "ceil_mode with count_include_pad is not supported");
		/* the last partial window: more padding at the end, which max and an
		 * average that counts only real elements both ignore */
		int64_t in2[2] = {nsp == 1 ? 1 : xs[2], nsp == 1 ? xs[2] : xs[3]};
		for (int i = 0; i < 2; i++) {
			int64_t span = in2[i] + a.pad[i] + a.pad[2 + i] - a.kernel[i];
			if (span < 0)
				continue;
			int64_t out = (span + a.stride[i] - 1) / a.stride[i] + 1;
			if ((out - 1) * a.stride[i] >= in2[i] + a.pad[i])
				out--; /* a window may not start inside the end padding */
			int64_t extra = (out - 1) * a.stride[i] + a.kernel[i] - (in2[i] + a.pad[i] + a.pad[2 + i]);
			if (extra > 0)
				a.pad[2 + i] += extra;
		}
	}
	kiln_tensor *X = as_4d(b, 0);
	return finish_spatial(b, max ? kiln_op_max_pool2d(b->ctx, X, &a) : kiln_op_avg_pool2d(b->ctx, X, &a), nsp);
}

static int maxpool_build(gr_build *b) { return pool_build(b, true); }
static int avgpool_build(gr_build *b) { return pool_build(b, false); }

/* ---- reductions over chosen axes ---- */

typedef struct {
	kiln_tensor *X;
	int nred;
	kiln_iter *ax[KILN_MAX_DIMS];
	bool reduced[KILN_MAX_DIMS];
	bool keep;
	kiln_reduce_op op;
	kiln_tensor *sum;
	double count;
} red_args;

static kiln_expr *red_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	red_args *r = user;
	int rank = kiln_tensor_ndim(r->X), o = 0, k = 0;
	kiln_expr *ix[KILN_MAX_DIMS];
	for (int d = 0; d < rank; d++) {
		if (r->reduced[d]) {
			ix[d] = kiln_iter_var(r->ax[k++]);
			o += r->keep;
		} else {
			ix[d] = idx[o++];
		}
	}
	return kiln_reduce(ctx, r->op, kiln_read_n(ctx, r->X, rank, ix), r->nred, r->ax, NULL);
}

static kiln_expr *mean_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	red_args *r = user;
	kiln_expr *s = kiln_read_n(ctx, r->sum, kiln_tensor_ndim(r->sum), idx);
	return kiln_div(ctx, s, kiln_const(ctx, s->type, r->count));
}

static int reduce_build(gr_build *b, kiln_reduce_op op, bool mean)
{
	kiln_tensor *X = b->in[0];
	int rank = kiln_tensor_ndim(X), n;
	const int64_t *xs = kiln_tensor_shape(X);
	int64_t axes[KILN_MAX_DIMS];
	const int64_t *aa = gr_attr_ints(b->n, "axes", &n);
	if (n > KILN_MAX_DIMS)
		return gr_node_error(b, "too many axes");
	if (n >= 0)
		memcpy(axes, aa, sizeof(int64_t) * n);
	else if (gr_const_ints(b, 1, axes, KILN_MAX_DIMS, &n))
		return -1;
	red_args *r = ir_alloc(b->ctx, sizeof *r);
	r->X = X;
	r->op = op;
	r->keep = gr_attr_int(b->n, "keepdims", 1) != 0;
	if (n <= 0) {
		if (gr_attr_int(b->n, "noop_with_empty_axes", 0))
			return gr_node_error(b, "noop_with_empty_axes=1 with no axes is not supported");
		for (int d = 0; d < rank; d++)
			r->reduced[d] = true;
	}
	for (int i = 0; i < n; i++) {
		int a = gr_axis(b, axes[i], rank, "axis");
		if (a < 0)
			return -1;
		if (r->reduced[a])
			return gr_node_error(b, "axis %d appears twice", a);
		r->reduced[a] = true;
	}
	int64_t shape[KILN_MAX_DIMS];
	int on = 0;
	r->count = 1;
	for (int d = 0; d < rank; d++) {
		if (r->reduced[d]) {
			r->ax[r->nred++] = kiln_reduce_axis(b->ctx, xs[d], ir_fmt(b->ctx, "r%d", d));
			r->count *= (double)xs[d];
			if (r->keep)
				shape[on++] = 1;
		} else {
			shape[on++] = xs[d];
		}
	}
	if (mean && kiln_tensor_dtype(X).code != KILN_FLOAT)
		return gr_node_error(b, "ReduceMean needs a float input");
	kiln_tensor *t = kiln_compute(b->ctx, ir_fmt(b->ctx, "%s.red", b->n->op), on, shape, red_body, r);
	if (t && mean) {
		r->sum = t;
		t = op_tag(kiln_compute(b->ctx, b->n->op, on, shape, mean_body, r), TAG_INJECTIVE);
	}
	b->out[0] = t;
	return t ? 0 : -1;
}

static int reduce_sum(gr_build *b) { return reduce_build(b, KILN_SUM, false); }
static int reduce_mean(gr_build *b) { return reduce_build(b, KILN_SUM, true); }
static int reduce_max(gr_build *b) { return reduce_build(b, KILN_RMAX, false); }
static int reduce_min(gr_build *b) { return reduce_build(b, KILN_RMIN, false); }
static int reduce_prod(gr_build *b) { return reduce_build(b, KILN_PROD, false); }

static int global_avg_build(gr_build *b)
{
	int rank = kiln_tensor_ndim(b->in[0]);
	const int64_t *xs = kiln_tensor_shape(b->in[0]);
	if (rank < 3)
		return gr_node_error(b, "the input must be at least 3-D (N, C, spatial...)");
	int64_t oshape[KILN_MAX_DIMS];
	for (int d = 0; d < rank; d++)
		oshape[d] = d < 2 ? xs[d] : 1;
	kiln_tensor *X = rank == 4 ? b->in[0] : gr_view_input(b, 0, 4, (int64_t[]){xs[0], xs[1], 1, prod(xs + 2, rank - 2)});
	kiln_tensor *Y = kiln_op_global_avg_pool2d(b->ctx, X);
	if (!Y)
		return -1;
	if (rank == 4)
		b->out[0] = Y;
	else
		gr_set_view(b, 0, Y, rank, oshape);
	return 0;
}

static int global_max_build(gr_build *b)
{
	int rank = kiln_tensor_ndim(b->in[0]);
	if (rank < 3)
		return gr_node_error(b, "the input must be at least 3-D (N, C, spatial...)");
	red_args *r = ir_alloc(b->ctx, sizeof *r);
	const int64_t *xs = kiln_tensor_shape(b->in[0]);
	*r = (red_args){.X = b->in[0], .op = KILN_RMAX, .keep = true};
	int64_t shape[KILN_MAX_DIMS];
	for (int d = 0; d < rank; d++) {
		shape[d] = d < 2 ? xs[d] : 1;
		if (d >= 2) {
			r->reduced[d] = true;
			r->ax[r->nred++] = kiln_reduce_axis(b->ctx, xs[d], ir_fmt(b->ctx, "r%d", d));
		}
	}
	b->out[0] = kiln_compute(b->ctx, "global_max", rank, shape, red_body, r);
	return b->out[0] ? 0 : -1;
}

/* ---- softmax, layer and batch normalization ---- */

static int softmax_build(gr_build *b)
{
	int rank = kiln_tensor_ndim(b->in[0]);
	const int64_t *xs = kiln_tensor_shape(b->in[0]);
	int axis = gr_axis(b, gr_attr_int(b->n, "axis", b->opset < 13 ? 1 : -1), rank, "axis");
	if (axis < 0)
		return -1;
	if (b->opset >= 13) {
		b->out[0] = kiln_op_softmax(b->ctx, b->in[0], axis);
		return b->out[0] ? 0 : -1;
	}
	/* before opset 13: the input as a matrix [outer, inner], rows normalized */
	int64_t shape2[2] = {prod(xs, axis), prod(xs + axis, rank - axis)};
	int64_t logical[KILN_MAX_DIMS];
	memcpy(logical, xs, sizeof(int64_t) * rank);
	kiln_tensor *Y = kiln_op_softmax(b->ctx, gr_view_input(b, 0, 2, shape2), 1);
	if (!Y)
		return -1;
	gr_set_view(b, 0, Y, rank, logical);
	return 0;
}

static kiln_expr *zero_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	return kiln_const(ctx, *(kiln_dtype *)user, 0);
}

static int layer_norm_build(gr_build *b)
{
	for (int k = 1; k < b->n->nout; k++)
		if (b->n->out[k] >= 0)
			return gr_node_error(b, "the Mean and InvStdDev outputs are not supported");
	int rank = kiln_tensor_ndim(b->in[0]);
	const int64_t *xs = kiln_tensor_shape(b->in[0]);
	int axis = gr_axis(b, gr_attr_int(b->n, "axis", -1), rank, "axis");
	if (axis < 0)
		return -1;
	int64_t inner = prod(xs + axis, rank - axis), outer = prod(xs, axis);
	for (int k = 1; k < 3; k++)
		if (b->in[k] && prod(kiln_tensor_shape(b->in[k]), kiln_tensor_ndim(b->in[k])) != inner)
			return gr_node_error(b, "input %d must hold the %lld normalized elements (no broadcasting)", k,
			                     (long long)inner);
	int64_t logical[KILN_MAX_DIMS];
	memcpy(logical, xs, sizeof(int64_t) * rank);
	kiln_tensor *X = gr_view_input(b, 0, 2, (int64_t[]){outer, inner});
	kiln_tensor *gamma = gr_view_input(b, 1, 1, &inner);
	kiln_tensor *beta = b->in[2] ? gr_view_input(b, 2, 1, &inner) : NULL;
	if (!beta) {
		kiln_dtype *t = ir_alloc(b->ctx, sizeof *t);
		*t = kiln_tensor_dtype(X);
		beta = op_tag(kiln_compute(b->ctx, "zero_bias", 1, &inner, zero_body, t), TAG_INJECTIVE);
	}
	kiln_tensor *Y = kiln_op_layer_norm(b->ctx, X, gamma, beta, gr_attr_float(b->n, "epsilon", 1e-5));
	if (!Y)
		return -1;
	gr_set_view(b, 0, Y, rank, logical);
	return 0;
}

static int batch_norm_build(gr_build *b)
{
	for (int k = 1; k < b->n->nout; k++)
		if (b->n->out[k] >= 0)
			return gr_node_error(b, "training outputs (running mean and variance) are not supported");
	if (gr_attr_int(b->n, "training_mode", 0))
		return gr_node_error(b, "training_mode=1 is not supported (inference only)");
	if (!gr_attr_int(b->n, "spatial", 1))
		return gr_node_error(b, "spatial=0 is not supported");
	b->out[0] = kiln_op_batch_norm(b->ctx, b->in[0], b->in[1], b->in[2], b->in[3], b->in[4],
	                               gr_attr_float(b->n, "epsilon", 1e-5));
	return b->out[0] ? 0 : -1;
}

static const char *const conv_attrs[] = {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides", NULL};
static const char *const convt_attrs[] = {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides",
                                          "output_padding", "output_shape", NULL};
static const char *const gemm_attrs[] = {"alpha", "beta", "transA", "transB", NULL};
static const char *const pool_attrs[] = {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads",
                                         "storage_order", "strides", "count_include_pad", NULL};
static const char *const reduce_attrs[] = {"axes", "keepdims", "noop_with_empty_axes", NULL};
static const char *const axis_attr[] = {"axis", NULL};
static const char *const ln_attrs[] = {"axis", "epsilon", "stash_type", NULL};
static const char *const bn_attrs[] = {"epsilon", "momentum", "spatial", "training_mode", NULL};
static const char *const none[] = {NULL};

const gr_opdef gr_ops_nn[] = {
	{"Conv", GR_ANCHOR, 2, 3, 1, 0, conv_attrs, conv_build, NULL},
	{"ConvTranspose", GR_ANCHOR, 2, 3, 1, 0, convt_attrs, convt_build, NULL},
	{"Gemm", GR_ANCHOR, 2, 3, 1, 0, gemm_attrs, gemm_build, NULL},
	{"MatMul", GR_ANCHOR, 2, 2, 1, 0, none, matmul_build, NULL},
	{"MaxPool", GR_OPAQUE, 1, 1, 2, 0, pool_attrs, maxpool_build, NULL},
	{"AveragePool", GR_OPAQUE, 1, 1, 1, 0, pool_attrs, avgpool_build, NULL},
	{"GlobalAveragePool", GR_OPAQUE, 1, 1, 1, 0, none, global_avg_build, NULL},
	{"GlobalMaxPool", GR_OPAQUE, 1, 1, 1, 0, none, global_max_build, NULL},
	{"ReduceSum", GR_OPAQUE, 1, 2, 1, 2u, reduce_attrs, reduce_sum, NULL},
	{"ReduceMean", GR_OPAQUE, 1, 2, 1, 2u, reduce_attrs, reduce_mean, NULL},
	{"ReduceMax", GR_OPAQUE, 1, 2, 1, 2u, reduce_attrs, reduce_max, NULL},
	{"ReduceMin", GR_OPAQUE, 1, 2, 1, 2u, reduce_attrs, reduce_min, NULL},
	{"ReduceProd", GR_OPAQUE, 1, 2, 1, 2u, reduce_attrs, reduce_prod, NULL},
	{"Softmax", GR_OPAQUE, 1, 1, 1, 0, axis_attr, softmax_build, NULL},
	{"LayerNormalization", GR_OPAQUE, 2, 3, 3, 0, ln_attrs, layer_norm_build, NULL},
	{"BatchNormalization", GR_OPAQUE, 5, 5, 5, 0, bn_attrs, batch_norm_build, NULL},
	{NULL},
};
