/*
 * nn.c — the compute declarations of the neural-network operators.
 *
 * Each operator is one or a few computes built by a body callback. Where a
 * layout change makes the kernel fast on every target it is part of the
 * declaration (matmul packs B into panels of `nb` columns; convolution pads
 * its input once), because a schedule can reorder loops but not data.
 */
#include <math.h>
#include <string.h>

#include "ops.h"

kiln_tensor *op_tag(kiln_tensor *t, const char *tag)
{
	if (t)
		t->op->tag = tag;
	return t;
}

bool op_is(const sch_stage *st, const char *tag) { return st->op->tag && !strcmp(st->op->tag, tag); }

bool op_readers_pure(sch_schedule *s, sch_stage *p)
{
	bool any = false;
	for (int i = 0; i < s->nstage; i++) {
		sch_stage *c = s->stages[i];
		if (c != p && sch_reads(c, p->outs[0])) {
			if (c->op->nreduce)
				return false;
			any = true;
		}
	}
	return any;
}

kiln_expr *op_const(kiln_ctx *ctx, kiln_dtype t, double v) { return kiln_const(ctx, t, v); }

static int need_float(kiln_ctx *ctx, const char *op, kiln_tensor *t)
{
	if (t->type.code != KILN_FLOAT)
		return ir_error(ctx, "%s: '%s' must be a float tensor", op, t->name);
	return 0;
}

static int same_type(kiln_ctx *ctx, const char *op, kiln_tensor *a, kiln_tensor *b)
{
	char x[16], y[16];
	if (!ir_type_eq(a->type, b->type))
		return ir_error(ctx, "%s: '%s' is %s but '%s' is %s", op, a->name, kiln_dtype_str(a->type, x), b->name,
		                kiln_dtype_str(b->type, y));
	return 0;
}

/* ---- matmul family ---- */

typedef struct {
	kiln_tensor *A, *B, *Bp, *bias;
	kiln_iter *k;
	int ta, tb, batch;
	int64_t nb, N;
} mm_args;

/* Bp[(b,) jo, k, ji] = B[(b,) k, jo*nb + ji], zero past N: panels of nb contiguous columns. */
static kiln_expr *pack_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	mm_args *m = user;
	int o = m->batch;
	kiln_expr *j = kiln_add(ctx, kiln_mul(ctx, idx[o], kiln_const(ctx, KILN_I64, (double)m->nb)), idx[o + 2]);
	kiln_expr *k = idx[o + 1];
	kiln_expr *jc = kiln_min(ctx, j, kiln_const(ctx, KILN_I64, (double)(m->N - 1)));
	kiln_expr *v = m->batch ? (m->tb ? KILN_READ(ctx, m->B, idx[0], jc, k) : KILN_READ(ctx, m->B, idx[0], k, jc))
	                        : (m->tb ? KILN_READ(ctx, m->B, jc, k) : KILN_READ(ctx, m->B, k, jc));
	if (m->N % m->nb == 0)
		return v;
	return kiln_select(ctx, kiln_lt(ctx, j, kiln_const(ctx, KILN_I64, (double)m->N)), v, kiln_const(ctx, m->B->type, 0));
}

static kiln_expr *mm_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	mm_args *m = user;
	int o = m->batch;
	kiln_expr *k = kiln_iter_var(m->k), *i = idx[o], *j = idx[o + 1];
	kiln_expr *nb = kiln_const(ctx, KILN_I64, (double)m->nb);
	kiln_expr *a = m->batch ? (m->ta ? KILN_READ(ctx, m->A, idx[0], k, i) : KILN_READ(ctx, m->A, idx[0], i, k))
	                        : (m->ta ? KILN_READ(ctx, m->A, k, i) : KILN_READ(ctx, m->A, i, k));
	kiln_expr *b = m->batch ? KILN_READ(ctx, m->Bp, idx[0], kiln_div(ctx, j, nb), k, kiln_mod(ctx, j, nb))
	                        : KILN_READ(ctx, m->Bp, kiln_div(ctx, j, nb), k, kiln_mod(ctx, j, nb));
	return kiln_sum(ctx, kiln_mul(ctx, a, b), 1, &m->k);
}

static kiln_expr *bias_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	mm_args *m = user;
	return kiln_add(ctx, KILN_READ(ctx, m->A, idx[0], idx[1]), KILN_READ(ctx, m->bias, idx[1]));
}

static int64_t pick_nb(int64_t N)
{
	if (N % 32 == 0 || N > 32)
		return N % 32 == 0 || N % 16 != 0 ? 32 : 16;
	return N;
}

static kiln_tensor *matmul_common(kiln_ctx *ctx, const char *op, kiln_tensor *A, kiln_tensor *B, int ta, int tb,
                                  int batch)
{
	if (!A || !B)
		return NULL;
	int nd = batch ? 3 : 2;
	if (A->ndim != nd || B->ndim != nd)
		return ir_error(ctx, "%s: operands must be %d-D (got %d-D '%s' and %d-D '%s')", op, nd, A->ndim, A->name,
		                B->ndim, B->name), NULL;
	if (need_float(ctx, op, A) || same_type(ctx, op, A, B))
		return NULL;
	int o = batch;
	int64_t M = ta ? A->shape[o + 1] : A->shape[o], K = ta ? A->shape[o] : A->shape[o + 1];
	int64_t K2 = tb ? B->shape[o + 1] : B->shape[o], N = tb ? B->shape[o] : B->shape[o + 1];
	if (K != K2)
		return ir_error(ctx, "%s: inner dimensions differ: '%s' gives %lld, '%s' gives %lld", op, A->name,
		                (long long)K, B->name, (long long)K2), NULL;
	if (batch && A->shape[0] != B->shape[0])
		return ir_error(ctx, "%s: batch sizes differ (%lld vs %lld)", op, (long long)A->shape[0],
		                (long long)B->shape[0]), NULL;
	mm_args *m = ir_alloc(ctx, sizeof *m);
	*m = (mm_args){A, B, NULL, NULL, NULL, ta, tb, batch, pick_nb(N), N};
	int64_t np = (N + m->nb - 1) / m->nb;
	int64_t pshape[4] = {A->shape[0], np, K, m->nb};
	m->Bp = op_tag(kiln_compute(ctx, ir_fmt(ctx, "%s.packed", B->name), batch ? 4 : 3, batch ? pshape : pshape + 1,
	                            pack_body, m), TAG_PACK);
	m->k = kiln_reduce_axis(ctx, K, "k");
	int64_t cshape[3] = {A->shape[0], M, N};
	kiln_tensor *C = op_tag(kiln_compute(ctx, op, nd, batch ? cshape : cshape + 1, mm_body, m), TAG_MATMUL);
	if (C)
		C->op->attr[0] = m->nb;
	return C;
}

int64_t kiln_matmul_pack_width(int64_t N) { return pick_nb(N); }

void kiln_matmul_pack(const float *B, int64_t K, int64_t N, int trans_b, float *Bp)
{
	int64_t nb = pick_nb(N), np = (N + nb - 1) / nb;
	for (int64_t jo = 0; jo < np; jo++)
		for (int64_t k = 0; k < K; k++)
			for (int64_t ji = 0; ji < nb; ji++) {
				int64_t j = jo * nb + ji;
				Bp[(jo * K + k) * nb + ji] = j >= N ? 0 : trans_b ? B[j * K + k] : B[k * N + j];
			}
}

kiln_tensor *kiln_op_matmul_prepacked(kiln_ctx *ctx, kiln_tensor *A, kiln_tensor *Bp, int64_t N, int trans_a)
{
	if (!A || !Bp)
		return NULL;
	int64_t nb = pick_nb(N), np = N > 0 ? (N + nb - 1) / nb : 0;
	int64_t K = trans_a ? (A->ndim == 2 ? A->shape[0] : 0) : (A->ndim == 2 ? A->shape[1] : 0);
	if (A->ndim != 2 || Bp->ndim != 3 || Bp->shape[0] != np || Bp->shape[1] != K || Bp->shape[2] != nb)
		return ir_error(ctx, "matmul: a packed B for N = %lld must be [%lld, %lld, %lld] against a 2-D A",
		                (long long)N, (long long)np, (long long)K, (long long)nb), NULL;
	if (need_float(ctx, "matmul", A) || same_type(ctx, "matmul", A, Bp))
		return NULL;
	mm_args *m = ir_alloc(ctx, sizeof *m);
	*m = (mm_args){A, NULL, Bp, NULL, kiln_reduce_axis(ctx, K, "k"), trans_a, 0, 0, nb, N};
	kiln_tensor *C = op_tag(kiln_compute(ctx, "matmul", 2, (int64_t[]){trans_a ? A->shape[1] : A->shape[0], N},
	                                     mm_body, m), TAG_MATMUL);
	if (C)
		C->op->attr[0] = nb;
	return C;
}

kiln_tensor *kiln_op_matmul(kiln_ctx *ctx, kiln_tensor *A, kiln_tensor *B, int trans_a, int trans_b)
{
	return matmul_common(ctx, "matmul", A, B, trans_a, trans_b, 0);
}

kiln_tensor *kiln_op_batch_matmul(kiln_ctx *ctx, kiln_tensor *A, kiln_tensor *B, int trans_a, int trans_b)
{
	return matmul_common(ctx, "batch_matmul", A, B, trans_a, trans_b, 1);
}

kiln_tensor *kiln_op_dense(kiln_ctx *ctx, kiln_tensor *X, kiln_tensor *W, kiln_tensor *bias)
{
	kiln_tensor *mm = matmul_common(ctx, bias ? "dense.matmul" : "dense", X, W, 0, 1, 0);
	if (!mm || !bias)
		return mm;
	if (bias->ndim != 1 || bias->shape[0] != mm->shape[1] || same_type(ctx, "dense", X, bias))
		return ctx->nerr ? NULL
		                 : (ir_error(ctx, "dense: bias must have shape [%lld], got a %d-D tensor", (long long)mm->shape[1],
		                             bias->ndim), NULL);
	mm_args *m = ir_alloc(ctx, sizeof *m);
	m->A = mm;
	m->bias = bias;
	kiln_tensor *out = op_tag(kiln_compute(ctx, "dense", 2, mm->shape, bias_body, m), TAG_INJECTIVE);
	return out;
}

/* ---- convolution ---- */

/* Xp = X padded with `value`; out-of-range reads take the padding value. */
static kiln_expr *pad_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	conv_args *c = user;
	kiln_expr *h = kiln_sub(ctx, idx[2], kiln_const(ctx, KILN_I64, (double)c->pt));
	kiln_expr *w = kiln_sub(ctx, idx[3], kiln_const(ctx, KILN_I64, (double)c->pl));
	kiln_expr *zero = kiln_const(ctx, KILN_I64, 0);
	kiln_expr *in = kiln_and(ctx, kiln_and(ctx, kiln_ge(ctx, h, zero), kiln_lt(ctx, h, kiln_const(ctx, KILN_I64, (double)c->X->shape[2]))),
	                         kiln_and(ctx, kiln_ge(ctx, w, zero), kiln_lt(ctx, w, kiln_const(ctx, KILN_I64, (double)c->X->shape[3]))));
	/* clamp the indices so the read itself stays in bounds on every target */
	kiln_expr *hc = kiln_max(ctx, kiln_min(ctx, h, kiln_const(ctx, KILN_I64, (double)c->X->shape[2] - 1)), zero);
	kiln_expr *wc = kiln_max(ctx, kiln_min(ctx, w, kiln_const(ctx, KILN_I64, (double)c->X->shape[3] - 1)), zero);
	return kiln_select(ctx, in, KILN_READ(ctx, c->X, idx[0], idx[1], hc, wc), kiln_const(ctx, c->X->type, c->value));
}

kiln_tensor *op_pad_spatial(kiln_ctx *ctx, conv_args *c, const int64_t *pad)
{
	if (!pad[0] && !pad[1] && !pad[2] && !pad[3])
		return c->X;
	c->pt = pad[0];
	c->pl = pad[1];
	int64_t shape[4] = {c->X->shape[0], c->X->shape[1], c->X->shape[2] + pad[0] + pad[2], c->X->shape[3] + pad[1] + pad[3]};
	return op_tag(kiln_compute(ctx, ir_fmt(ctx, "%s.pad", c->X->name), 4, shape, pad_body, c), TAG_INJECTIVE);
}

static kiln_expr *in_h(kiln_ctx *ctx, conv_args *c, kiln_expr *oh, kiln_expr *r)
{
	return kiln_add(ctx, kiln_mul(ctx, oh, kiln_const(ctx, KILN_I64, (double)c->a.stride[0])),
	                kiln_mul(ctx, r, kiln_const(ctx, KILN_I64, (double)c->a.dilation[0])));
}

static kiln_expr *in_w(kiln_ctx *ctx, conv_args *c, kiln_expr *ow, kiln_expr *s)
{
	return kiln_add(ctx, kiln_mul(ctx, ow, kiln_const(ctx, KILN_I64, (double)c->a.stride[1])),
	                kiln_mul(ctx, s, kiln_const(ctx, KILN_I64, (double)c->a.dilation[1])));
}

static kiln_expr *conv_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	conv_args *c = user;
	kiln_expr *rc = kiln_iter_var(c->rc), *r = kiln_iter_var(c->r), *s = kiln_iter_var(c->s);
	kiln_expr *ch = rc;
	if (c->a.groups > 1)
		ch = kiln_add(ctx, kiln_mul(ctx, kiln_div(ctx, idx[1], kiln_const(ctx, KILN_I64, (double)c->kpg)),
		                            kiln_const(ctx, KILN_I64, (double)c->cpg)), rc);
	kiln_expr *x = KILN_READ(ctx, c->Xp, idx[0], ch, in_h(ctx, c, idx[2], r), in_w(ctx, c, idx[3], s));
	kiln_expr *w = KILN_READ(ctx, c->W, idx[1], rc, r, s);
	return kiln_sum(ctx, kiln_mul(ctx, x, w), 3, (kiln_iter *[]){c->rc, c->r, c->s});
}

/*
 * A strided depthwise convolution's padded input split into column phases:
 * Xs[n, c, h, p, q] = padded X[n, c, h, q*sw + p], so output column ow reads
 * phase (s*dw) % sw at q = ow + (s*dw) / sw: contiguous in ow, where the
 * plain padded input would make each vector gather every sw-th element
 * (MobileNetV2's stride-2 layers ran at a sixth of the stride-1 ones' rate).
 * The phases read a padded copy (c->Xpad, made a plane at a time like the
 * stride-1 layers' padding), so their strided reads need no bounds test:
 * padding inside this body made every vector a masked load, a clamp and a
 * select, and the phases took most of the layer's time.
 */
static kiln_expr *phase_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	conv_args *c = user;
	kiln_expr *w = kiln_add(ctx, kiln_mul(ctx, idx[4], kiln_const(ctx, KILN_I64, (double)c->a.stride[1])), idx[3]);
	return KILN_READ(ctx, c->Xpad, idx[0], idx[1], idx[2], w);
}

static kiln_expr *dw_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	conv_args *c = user;
	kiln_expr *r = kiln_iter_var(c->r), *s = kiln_iter_var(c->s);
	kiln_expr *x;
	if (c->Xp->ndim == 5) {
		kiln_expr *sd = kiln_mul(ctx, s, kiln_const(ctx, KILN_I64, (double)c->a.dilation[1]));
		kiln_expr *sw = kiln_const(ctx, KILN_I64, (double)c->a.stride[1]);
		x = KILN_READ(ctx, c->Xp, idx[0], idx[1], in_h(ctx, c, idx[2], r), kiln_mod(ctx, sd, sw),
		              kiln_add(ctx, idx[3], kiln_div(ctx, sd, sw)));
	} else {
		x = KILN_READ(ctx, c->Xp, idx[0], idx[1], in_h(ctx, c, idx[2], r), in_w(ctx, c, idx[3], s));
	}
	kiln_expr *w = KILN_READ(ctx, c->W, idx[1], kiln_const(ctx, KILN_I64, 0), r, s);
	return kiln_sum(ctx, kiln_mul(ctx, x, w), 2, (kiln_iter *[]){c->r, c->s});
}

static int check_window(kiln_ctx *ctx, const char *op, const kiln_tensor *X, int64_t R, int64_t S, const int64_t *stride,
                        const int64_t *pad, const int64_t *dil, int64_t *oh, int64_t *ow)
{
	for (int i = 0; i < 2; i++)
		if (stride[i] < 1 || dil[i] < 1)
			return ir_error(ctx, "%s: stride and dilation must be at least 1", op);
	for (int i = 0; i < 4; i++)
		if (pad[i] < 0)
			return ir_error(ctx, "%s: padding must not be negative", op);
	/* every size from here on overflow-checked: shapes and attributes come from users and files */
	int64_t eh, ew, hp, wp, n;
	if (__builtin_mul_overflow(R - 1, dil[0], &eh) || __builtin_mul_overflow(S - 1, dil[1], &ew) ||
	    __builtin_add_overflow(X->shape[2], pad[0], &hp) || __builtin_add_overflow(hp, pad[2], &hp) ||
	    __builtin_add_overflow(X->shape[3], pad[1], &wp) || __builtin_add_overflow(wp, pad[3], &wp) ||
	    hp > KILN_MAX_ARRAY_BYTES || wp > KILN_MAX_ARRAY_BYTES || eh >= KILN_MAX_ARRAY_BYTES || ew >= KILN_MAX_ARRAY_BYTES)
		return ir_error(ctx, "%s: the window (dilation %lldx%lld) or the padding (%lld, %lld, %lld, %lld) is too large",
		                op, (long long)dil[0], (long long)dil[1], (long long)pad[0], (long long)pad[1],
		                (long long)pad[2], (long long)pad[3]);
	eh++, ew++;
	if (eh > hp || ew > wp)
		return ir_error(ctx, "%s: the %lldx%lld window is larger than the padded %lldx%lld input", op, (long long)eh,
		                (long long)ew, (long long)hp, (long long)wp);
	*oh = (hp - eh) / stride[0] + 1;
	*ow = (wp - ew) / stride[1] + 1;
	/* the output's positions over the batch (its forms multiply them: a GEMM's columns) */
	if (__builtin_mul_overflow(X->shape[0], *oh, &n) || __builtin_mul_overflow(n, *ow, &n) || n > KILN_MAX_ARRAY_BYTES)
		return ir_error(ctx, "%s: %lld images of %lldx%lld outputs are more than %lld positions", op,
		                (long long)X->shape[0], (long long)*oh, (long long)*ow, (long long)KILN_MAX_ARRAY_BYTES);
	return 0;
}

static void norm_conv_attrs(kiln_conv2d_attrs *a)
{
	for (int i = 0; i < 2; i++) {
		if (!a->stride[i])
			a->stride[i] = 1;
		if (!a->dilation[i])
			a->dilation[i] = 1;
	}
	if (!a->groups)
		a->groups = 1;
}

/*
 * Small images as a GEMM: output positions q = (n, oh, ow) flattened become
 * the columns of a matmul whose B packs each position's receptive field
 * (im2col fused into the panel pack), so every vector lane does work even
 * when a row holds only 7 pixels.
 */
typedef struct {
	conv_args *c;
	kiln_tensor *Bp, *mm;
	kiln_iter *crs;   /* one reduce axis over (channel, r, s): the kernel is a plain matmul */
	int64_t nb, OH, OW, Q;
} gemm_conv;

/* (channel, r, s) of the flat reduce index */
static void split_crs(kiln_ctx *ctx, const gemm_conv *g, kiln_expr *crs, kiln_expr **out)
{
	int64_t R = g->c->W->shape[2], S = g->c->W->shape[3];
	out[0] = kiln_div(ctx, crs, kiln_const(ctx, KILN_I64, (double)(R * S)));
	out[1] = kiln_mod(ctx, kiln_div(ctx, crs, kiln_const(ctx, KILN_I64, (double)S)), kiln_const(ctx, KILN_I64, (double)R));
	out[2] = kiln_mod(ctx, crs, kiln_const(ctx, KILN_I64, (double)S));
}

static kiln_expr *gc_pack_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	gemm_conv *g = user;
	conv_args *c = g->c;
	/* Bp[jo, crs, ji] = Xp[n, ch, oh*sh + r*dh, ow*sw + s*dw] at q = jo*nb + ji */
	kiln_expr *q = kiln_add(ctx, kiln_mul(ctx, idx[0], kiln_const(ctx, KILN_I64, (double)g->nb)), idx[2]);
	kiln_expr *qc = kiln_min(ctx, q, kiln_const(ctx, KILN_I64, (double)(g->Q - 1)));
	kiln_expr *P = kiln_const(ctx, KILN_I64, (double)(g->OH * g->OW)), *OW = kiln_const(ctx, KILN_I64, (double)g->OW);
	kiln_expr *n = kiln_div(ctx, qc, P), *p = kiln_mod(ctx, qc, P), *crs[3];
	split_crs(ctx, g, idx[1], crs);
	kiln_expr *x = KILN_READ(ctx, c->Xp, n, crs[0], in_h(ctx, c, kiln_div(ctx, p, OW), crs[1]),
	                         in_w(ctx, c, kiln_mod(ctx, p, OW), crs[2]));
	if (g->Q % g->nb == 0)
		return x;
	return kiln_select(ctx, kiln_lt(ctx, q, kiln_const(ctx, KILN_I64, (double)g->Q)), x, kiln_const(ctx, c->X->type, 0));
}

static kiln_expr *gc_mm_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	gemm_conv *g = user;
	kiln_expr *k = kiln_iter_var(g->crs), *crs[3];
	kiln_expr *nb = kiln_const(ctx, KILN_I64, (double)g->nb);
	kiln_expr *b = KILN_READ(ctx, g->Bp, kiln_div(ctx, idx[1], nb), k, kiln_mod(ctx, idx[1], nb));
	split_crs(ctx, g, k, crs); /* flattening folds these back into one index */
	kiln_expr *w = KILN_READ(ctx, g->c->W, idx[0], crs[0], crs[1], crs[2]);
	return kiln_sum(ctx, kiln_mul(ctx, w, b), 1, &g->crs);
}

static kiln_expr *gc_out_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	gemm_conv *g = user;
	kiln_expr *q = kiln_add(ctx, kiln_mul(ctx, idx[0], kiln_const(ctx, KILN_I64, (double)(g->OH * g->OW))),
	                        kiln_add(ctx, kiln_mul(ctx, idx[2], kiln_const(ctx, KILN_I64, (double)g->OW)), idx[3]));
	return KILN_READ(ctx, g->mm, idx[1], q);
}

static kiln_tensor *conv_as_gemm(kiln_ctx *ctx, conv_args *c, int64_t OH, int64_t OW)
{
	gemm_conv *g = ir_alloc(ctx, sizeof *g);
	int64_t N = c->X->shape[0], C = c->X->shape[1], K = c->W->shape[0], R = c->W->shape[2], S = c->W->shape[3];
	*g = (gemm_conv){c, NULL, NULL, NULL, 32, OH, OW, N * OH * OW};
	int64_t np = (g->Q + g->nb - 1) / g->nb;
	g->crs = kiln_reduce_axis(ctx, C * R * S, "crs");
	g->Bp = op_tag(kiln_compute(ctx, "conv2d.cols", 3, (int64_t[]){np, C * R * S, g->nb}, gc_pack_body, g), TAG_PACK);
	if (g->Bp)
		g->Bp->op->attr[1] = 1; /* an im2col: GPU schedules keep it a kernel of its own */
	/* the GEMM covers whole panels (the padding columns are zeros), so every
	 * tile starts on a panel boundary and B loads stay contiguous */
	g->mm = op_tag(kiln_compute(ctx, "conv2d.gemm", 2, (int64_t[]){K, np * g->nb}, gc_mm_body, g), TAG_MATMUL);
	if (!g->mm)
		return NULL;
	g->mm->op->attr[0] = g->nb;
	kiln_tensor *y = op_tag(kiln_compute(ctx, "conv2d", 4, (int64_t[]){N, K, OH, OW}, gc_out_body, g), TAG_INJECTIVE);
	if (y)
		y->op->attr[1] = 1; /* a view of the product: CPU schedules read it in place */
	return y;
}

conv_args *op_conv_begin(kiln_ctx *ctx, const char *op, kiln_tensor *X, kiln_tensor *W, const kiln_conv2d_attrs *attrs,
                         int wdim)
{
	if (!X || !W)
		return NULL;
	if (X->ndim != 4 || W->ndim != wdim)
		return ir_error(ctx, wdim == 4 ? "%s: input and weight must be 4-D (NCHW, OIHW)"
		                               : "%s: the input must be 4-D (NCHW) and the transformed weight 3-D",
		                op), NULL;
	if (need_float(ctx, op, X) || same_type(ctx, op, X, W))
		return NULL;
	conv_args *c = ir_alloc(ctx, sizeof *c);
	c->X = X;
	c->W = W;
	if (attrs)
		c->a = *attrs;
	norm_conv_attrs(&c->a);
	return c;
}

static kiln_tensor *conv2d_form(kiln_ctx *ctx, kiln_tensor *X, kiln_tensor *W, const kiln_conv2d_attrs *attrs,
                                bool direct)
{
	conv_args *c = op_conv_begin(ctx, "conv2d", X, W, attrs, 4);
	if (!c)
		return NULL;
	int64_t g = c->a.groups, C = X->shape[1], K = W->shape[0];
	if (g < 1 || C % g || K % g)
		return ir_error(ctx, "conv2d: %lld groups do not divide %lld input and %lld output channels", (long long)g,
		                (long long)C, (long long)K), NULL;
	if (W->shape[1] != C / g)
		return ir_error(ctx, "conv2d: weight has %lld input channels, expected %lld (= %lld / %lld groups)",
		                (long long)W->shape[1], (long long)(C / g), (long long)C, (long long)g), NULL;
	int64_t oh, ow;
	if (check_window(ctx, "conv2d", X, W->shape[2], W->shape[3], c->a.stride, c->a.pad, c->a.dilation, &oh, &ow))
		return NULL;
	c->cpg = C / g;
	c->kpg = K / g;
	c->Xp = op_pad_spatial(ctx, c, c->a.pad);
	c->rc = kiln_reduce_axis(ctx, C / g, "rc");
	c->r = kiln_reduce_axis(ctx, W->shape[2], "r");
	c->s = kiln_reduce_axis(ctx, W->shape[3], "s");
	/* measured on AVX-512, one core: below 32 columns the GEMM form wins (7x7:
	 * 90-100 GFLOP/s, direct 55); from 32 up the direct form with two-vector
	 * blocks wins (56x56: 96, GEMM 81-87) */
	/* strided: the direct form's vectors would gather every other input column
	 * (ResNet-18's 7x7/2 stem, AVX-512, one core: direct 9.6 ms, GEMM form 3.5) */
	if (g == 1 && !direct && (ow < 32 || c->a.stride[1] > 1))
		return conv_as_gemm(ctx, c, oh, ow);
	return op_tag(kiln_compute(ctx, "conv2d", 4, (int64_t[]){X->shape[0], K, oh, ow}, conv_body, c), TAG_CONV);
}

kiln_tensor *kiln_op_conv2d(kiln_ctx *ctx, kiln_tensor *X, kiln_tensor *W, const kiln_conv2d_attrs *attrs)
{
	return conv2d_form(ctx, X, W, attrs, false);
}

kiln_tensor *kiln_op_conv2d_direct(kiln_ctx *ctx, kiln_tensor *X, kiln_tensor *W, const kiln_conv2d_attrs *attrs)
{
	return conv2d_form(ctx, X, W, attrs, true);
}

/*
 * ---- output channels in vector lanes ----
 *
 * Y[n, k, oh, ow] = sum_{c, r, s} Xp[n, c, oh*sh + r*dh, ow*sw + s*dw] Wt[c, r, s, k]
 * (computed as Yt[n, oh, ow, k], then read back in NCHW order) with the
 * weights transposed so that output channels are contiguous: the
 * CPU schedule puts k in the vector lanes and a few output columns in
 * registers, each input element broadcast once per block. Small images (a
 * row of 7 or 14 columns) and strided convolutions keep every lane busy this
 * way, where vectors along the row waste lanes or gather.
 */
void kiln_conv2d_pack_weights(const float *W, int64_t K, int64_t C, int64_t R, int64_t S, float *Wt)
{
	for (int64_t k = 0; k < K; k++)
		for (int64_t crs = 0; crs < C * R * S; crs++)
			Wt[crs * K + k] = W[k * C * R * S + crs];
}

static kiln_expr *kl_pack_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	conv_args *c = user;
	return KILN_READ(ctx, c->W, idx[3], idx[0], idx[1], idx[2]);
}

/* Yt[n, oh, ow, k]: channels last, so that a block of them is contiguous where it accumulates */
static kiln_expr *kl_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	conv_args *c = user;
	kiln_expr *rc = kiln_iter_var(c->rc), *r = kiln_iter_var(c->r), *s = kiln_iter_var(c->s);
	kiln_expr *x = KILN_READ(ctx, c->Xp, idx[0], rc, in_h(ctx, c, idx[1], r), in_w(ctx, c, idx[2], s));
	kiln_expr *w = KILN_READ(ctx, c->Wt, rc, r, s, idx[3]);
	return kiln_sum(ctx, kiln_mul(ctx, x, w), 3, (kiln_iter *[]){c->rc, c->r, c->s});
}

static kiln_expr *kl_out_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	conv_args *c = user;
	return KILN_READ(ctx, c->Yt, idx[0], idx[2], idx[3], idx[1]);
}

kiln_tensor *kiln_op_conv2d_kpacked(kiln_ctx *ctx, kiln_tensor *X, kiln_tensor *W, const kiln_conv2d_attrs *attrs,
                                    int packed)
{
	const char *op = "conv2d_kpacked";
	conv_args *c = op_conv_begin(ctx, op, X, W, attrs, 4);
	if (!c)
		return NULL;
	if (c->a.groups != 1)
		return ir_error(ctx, "%s: only ungrouped convolutions", op), NULL;
	int64_t C = X->shape[1], K = packed ? W->shape[3] : W->shape[0], R = packed ? W->shape[1] : W->shape[2],
	        S = packed ? W->shape[2] : W->shape[3];
	if ((packed ? W->shape[0] : W->shape[1]) != C)
		return ir_error(ctx, packed ? "%s: packed weight must be [%lld, r, s, k]" : "%s: weight must be [k, %lld, r, s]",
		                op, (long long)C), NULL;
	int64_t oh, ow;
	if (check_window(ctx, op, X, R, S, c->a.stride, c->a.pad, c->a.dilation, &oh, &ow))
		return NULL;
	c->cpg = C;
	c->kpg = K;
	c->Xp = op_pad_spatial(ctx, c, c->a.pad);
	c->Wt = packed ? W : op_tag(kiln_compute(ctx, ir_fmt(ctx, "%s.packed", W->name), 4, (int64_t[]){C, R, S, K},
	                                         kl_pack_body, c), TAG_INJECTIVE);
	c->rc = kiln_reduce_axis(ctx, C, "rc");
	c->r = kiln_reduce_axis(ctx, R, "r");
	c->s = kiln_reduce_axis(ctx, S, "s");
	c->Yt = op_tag(kiln_compute(ctx, "conv2d.nhwc", 4, (int64_t[]){X->shape[0], oh, ow, K}, kl_body, c), TAG_CONV_KLANES);
	return c->Yt ? op_tag(kiln_compute(ctx, op, 4, (int64_t[]){X->shape[0], K, oh, ow}, kl_out_body, c), TAG_INJECTIVE)
	             : NULL;
}

kiln_tensor *kiln_op_depthwise_conv2d(kiln_ctx *ctx, kiln_tensor *X, kiln_tensor *W, const kiln_conv2d_attrs *attrs)
{
	conv_args *c = op_conv_begin(ctx, "depthwise_conv2d", X, W, attrs, 4);
	if (!c)
		return NULL;
	if (W->shape[0] != X->shape[1] || W->shape[1] != 1)
		return ir_error(ctx, "depthwise_conv2d: weight must be [%lld, 1, r, s], got [%lld, %lld, ...]",
		                (long long)X->shape[1], (long long)W->shape[0], (long long)W->shape[1]), NULL;
	int64_t oh, ow;
	if (check_window(ctx, "depthwise_conv2d", X, W->shape[2], W->shape[3], c->a.stride, c->a.pad, c->a.dilation, &oh, &ow))
		return NULL;
	if (c->a.stride[1] > 1) {
		/* padded on the right to a whole number of phases (never read: every tap is inside the padded input) */
		int64_t sw = c->a.stride[1], wp = X->shape[3] + c->a.pad[1] + c->a.pad[3], q = (wp + sw - 1) / sw;
		int64_t pad[4] = {c->a.pad[0], c->a.pad[1], c->a.pad[2], c->a.pad[3] + q * sw - wp};
		c->Xpad = op_pad_spatial(ctx, c, pad);
		int64_t shape[5] = {X->shape[0], X->shape[1], X->shape[2] + pad[0] + pad[2], sw, q};
		c->Xp = c->Xpad ? op_tag(kiln_compute(ctx, ir_fmt(ctx, "%s.phases", X->name), 5, shape, phase_body, c),
		                         TAG_INJECTIVE)
		                : NULL;
	} else {
		c->Xp = op_pad_spatial(ctx, c, c->a.pad);
	}
	if (!c->Xp)
		return NULL;
	c->r = kiln_reduce_axis(ctx, W->shape[2], "r");
	c->s = kiln_reduce_axis(ctx, W->shape[3], "s");
	return op_tag(kiln_compute(ctx, "depthwise_conv2d", 4, (int64_t[]){X->shape[0], X->shape[1], oh, ow}, dw_body, c),
	              TAG_SPATIAL_REDUCE);
}

/* ---- pooling ---- */

typedef struct {
	conv_args c;
	kiln_pool2d_attrs p;
	kiln_tensor *sum;
	int64_t H, W;
} pool_args;

static kiln_expr *window_reduce(kiln_ctx *ctx, kiln_expr *const *idx, conv_args *c, kiln_reduce_op op)
{
	kiln_expr *r = kiln_iter_var(c->r), *s = kiln_iter_var(c->s);
	kiln_expr *x = KILN_READ(ctx, c->Xp, idx[0], idx[1], in_h(ctx, c, idx[2], r), in_w(ctx, c, idx[3], s));
	return kiln_reduce(ctx, op, x, 2, (kiln_iter *[]){c->r, c->s}, NULL);
}

static kiln_expr *maxpool_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	return window_reduce(ctx, idx, user, KILN_RMAX);
}

static kiln_expr *sumpool_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	return window_reduce(ctx, idx, user, KILN_SUM);
}

/* Divides the window sum by the window size, or by its part inside the input. */
static kiln_expr *avgpool_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	pool_args *p = user;
	kiln_expr *sum = KILN_READ(ctx, p->sum, idx[0], idx[1], idx[2], idx[3]);
	kiln_dtype t = p->sum->type;
	if (p->p.count_include_pad)
		return kiln_div(ctx, sum, kiln_const(ctx, t, (double)(p->p.kernel[0] * p->p.kernel[1])));
	kiln_expr *cnt[2];
	for (int d = 0; d < 2; d++) {
		kiln_expr *start = kiln_sub(ctx, kiln_mul(ctx, idx[2 + d], kiln_const(ctx, KILN_I64, (double)p->p.stride[d])),
		                            kiln_const(ctx, KILN_I64, (double)p->p.pad[d]));
		kiln_expr *end = kiln_add(ctx, start, kiln_const(ctx, KILN_I64, (double)p->p.kernel[d]));
		int64_t ext = d == 0 ? p->H : p->W;
		cnt[d] = kiln_sub(ctx, kiln_min(ctx, end, kiln_const(ctx, KILN_I64, (double)ext)),
		                  kiln_max(ctx, start, kiln_const(ctx, KILN_I64, 0)));
	}
	return kiln_div(ctx, sum, kiln_cast(ctx, t, kiln_mul(ctx, cnt[0], cnt[1])));
}

static kiln_tensor *pool_common(kiln_ctx *ctx, const char *op, kiln_tensor *X, const kiln_pool2d_attrs *a, bool max)
{
	if (!X)
		return NULL;
	if (X->ndim != 4)
		return ir_error(ctx, "%s: input must be 4-D NCHW", op), NULL;
	if (need_float(ctx, op, X))
		return NULL;
	pool_args *p = ir_alloc(ctx, sizeof *p);
	p->p = *a;
	for (int i = 0; i < 2; i++) {
		if (p->p.kernel[i] < 1)
			return ir_error(ctx, "%s: kernel size must be at least 1", op), NULL;
		if (!p->p.stride[i])
			p->p.stride[i] = 1;
	}
	conv_args *c = &p->c;
	c->X = X;
	c->a.stride[0] = p->p.stride[0];
	c->a.stride[1] = p->p.stride[1];
	c->a.dilation[0] = c->a.dilation[1] = 1;
	int64_t oh, ow;
	if (check_window(ctx, op, X, p->p.kernel[0], p->p.kernel[1], p->p.stride, p->p.pad, c->a.dilation, &oh, &ow))
		return NULL;
	for (int i = 0; i < 2; i++)
		if (p->p.pad[i] >= p->p.kernel[i] || p->p.pad[i + 2] >= p->p.kernel[i])
			return ir_error(ctx, "%s: padding %lld is not smaller than the kernel (%lld)", op,
			                (long long)p->p.pad[i], (long long)p->p.kernel[i]), NULL;
	c->value = max ? -INFINITY : 0;
	c->Xp = op_pad_spatial(ctx, c, p->p.pad);
	c->r = kiln_reduce_axis(ctx, p->p.kernel[0], "r");
	c->s = kiln_reduce_axis(ctx, p->p.kernel[1], "s");
	int64_t shape[4] = {X->shape[0], X->shape[1], oh, ow};
	if (max)
		return op_tag(kiln_compute(ctx, op, 4, shape, maxpool_body, c), TAG_SPATIAL_REDUCE);
	p->H = X->shape[2];
	p->W = X->shape[3];
	p->sum = op_tag(kiln_compute(ctx, ir_fmt(ctx, "%s.sum", op), 4, shape, sumpool_body, c), TAG_SPATIAL_REDUCE);
	if (!p->sum)
		return NULL;
	return op_tag(kiln_compute(ctx, op, 4, shape, avgpool_body, p), TAG_INJECTIVE);
}

kiln_tensor *kiln_op_max_pool2d(kiln_ctx *ctx, kiln_tensor *X, const kiln_pool2d_attrs *a)
{
	return pool_common(ctx, "max_pool2d", X, a, true);
}

kiln_tensor *kiln_op_avg_pool2d(kiln_ctx *ctx, kiln_tensor *X, const kiln_pool2d_attrs *a)
{
	return pool_common(ctx, "avg_pool2d", X, a, false);
}

typedef struct {
	kiln_tensor *X, *sum;
	kiln_iter *h, *w;
} gap_args;

static kiln_expr *gap_sum_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	gap_args *g = user;
	return kiln_sum(ctx, KILN_READ(ctx, g->X, idx[0], idx[1], kiln_iter_var(g->h), kiln_iter_var(g->w)), 2,
	                (kiln_iter *[]){g->h, g->w});
}

static kiln_expr *gap_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	gap_args *g = user;
	return kiln_div(ctx, KILN_READ(ctx, g->sum, idx[0], idx[1], idx[2], idx[3]),
	                kiln_const(ctx, g->X->type, (double)(g->X->shape[2] * g->X->shape[3])));
}

kiln_tensor *kiln_op_global_avg_pool2d(kiln_ctx *ctx, kiln_tensor *X)
{
	if (!X)
		return NULL;
	if (X->ndim != 4)
		return ir_error(ctx, "global_avg_pool2d: input must be 4-D NCHW"), NULL;
	if (need_float(ctx, "global_avg_pool2d", X))
		return NULL;
	gap_args *g = ir_alloc(ctx, sizeof *g);
	g->X = X;
	g->h = kiln_reduce_axis(ctx, X->shape[2], "h");
	g->w = kiln_reduce_axis(ctx, X->shape[3], "w");
	int64_t shape[4] = {X->shape[0], X->shape[1], 1, 1};
	g->sum = op_tag(kiln_compute(ctx, "global_avg_pool2d.sum", 4, shape, gap_sum_body, g), TAG_GLOBAL_POOL);
	return op_tag(kiln_compute(ctx, "global_avg_pool2d", 4, shape, gap_body, g), TAG_INJECTIVE);
}

/* ---- row-wise: softmax, layer norm ---- */

typedef struct {
	kiln_tensor *X, *max, *e, *sum, *mean, *var, *gamma, *beta;
	kiln_iter *k;
	int axis;
	double eps;
} row_args;

/* idx with position axis replaced by v (or removed when v is NULL and keep is false) */
static void row_index(const row_args *r, kiln_expr *const *idx, kiln_expr *v, kiln_expr **out)
{
	for (int d = 0; d < r->X->ndim; d++)
		out[d] = d == r->axis ? v : idx[d];
}

static kiln_expr *sm_max_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	row_args *r = user;
	kiln_expr *ix[KILN_MAX_DIMS];
	row_index(r, idx, kiln_iter_var(r->k), ix);
	return kiln_reduce(ctx, KILN_RMAX, kiln_read(ctx, r->X, ix), 1, &r->k, NULL);
}

static kiln_expr *sm_exp_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	row_args *r = user;
	kiln_expr *ix[KILN_MAX_DIMS];
	row_index(r, idx, kiln_const(ctx, KILN_I64, 0), ix);
	return kiln_call(ctx, KILN_EXP, kiln_sub(ctx, kiln_read(ctx, r->X, idx), kiln_read(ctx, r->max, ix)), NULL);
}

static kiln_expr *sm_sum_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	row_args *r = user;
	kiln_expr *ix[KILN_MAX_DIMS];
	row_index(r, idx, kiln_iter_var(r->k), ix);
	return kiln_sum(ctx, kiln_read(ctx, r->e, ix), 1, &r->k);
}

static kiln_expr *sm_out_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	row_args *r = user;
	kiln_expr *ix[KILN_MAX_DIMS];
	row_index(r, idx, kiln_const(ctx, KILN_I64, 0), ix);
	return kiln_div(ctx, kiln_read(ctx, r->e, idx), kiln_read(ctx, r->sum, ix));
}

static int row_shape(kiln_ctx *ctx, const char *op, kiln_tensor *X, int *axis, int64_t *shape)
{
	if (*axis < 0)
		*axis += X->ndim;
	if (*axis < 0 || *axis >= X->ndim)
		return ir_error(ctx, "%s: axis is out of range for a %d-D tensor", op, X->ndim);
	memcpy(shape, X->shape, sizeof(int64_t) * X->ndim);
	shape[*axis] = 1;
	return 0;
}

kiln_tensor *kiln_op_softmax(kiln_ctx *ctx, kiln_tensor *X, int axis)
{
	if (!X || need_float(ctx, "softmax", X))
		return NULL;
	row_args *r = ir_alloc(ctx, sizeof *r);
	r->X = X;
	int64_t rs[KILN_MAX_DIMS];
	if (row_shape(ctx, "softmax", X, &axis, rs))
		return NULL;
	r->axis = axis;
	r->k = kiln_reduce_axis(ctx, X->shape[axis], "k");
	r->max = op_tag(kiln_compute(ctx, "softmax.max", X->ndim, rs, sm_max_body, r), TAG_ROW_REDUCE);
	r->e = op_tag(kiln_compute(ctx, "softmax.exp", X->ndim, X->shape, sm_exp_body, r), TAG_INJECTIVE);
	r->k = kiln_reduce_axis(ctx, X->shape[axis], "k");
	r->sum = op_tag(kiln_compute(ctx, "softmax.sum", X->ndim, rs, sm_sum_body, r), TAG_ROW_REDUCE);
	kiln_tensor *out = op_tag(kiln_compute(ctx, "softmax", X->ndim, X->shape, sm_out_body, r), TAG_ROW_OUTPUT);
	if (out)
		out->op->attr[0] = axis;
	return out;
}

static kiln_expr *ln_mean_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	row_args *r = user;
	kiln_expr *ix[KILN_MAX_DIMS];
	row_index(r, idx, kiln_iter_var(r->k), ix);
	kiln_expr *n = kiln_const(ctx, r->X->type, (double)r->X->shape[r->axis]);
	return kiln_sum(ctx, kiln_div(ctx, kiln_read(ctx, r->X, ix), n), 1, &r->k);
}

static kiln_expr *ln_var_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	row_args *r = user;
	kiln_expr *ix[KILN_MAX_DIMS];
	row_index(r, idx, kiln_iter_var(r->k), ix);
	kiln_expr *d = kiln_sub(ctx, kiln_read(ctx, r->X, ix), kiln_read(ctx, r->mean, idx));
	kiln_expr *n = kiln_const(ctx, r->X->type, (double)r->X->shape[r->axis]);
	return kiln_sum(ctx, kiln_div(ctx, kiln_mul(ctx, d, d), n), 1, &r->k);
}

static kiln_expr *ln_out_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	row_args *r = user;
	kiln_expr *ix[KILN_MAX_DIMS];
	row_index(r, idx, kiln_const(ctx, KILN_I64, 0), ix);
	kiln_expr *c = idx[r->axis];
	kiln_expr *inv = kiln_call(ctx, KILN_RSQRT, kiln_add(ctx, kiln_read(ctx, r->var, ix), kiln_const(ctx, r->X->type, r->eps)), NULL);
	kiln_expr *y = kiln_mul(ctx, kiln_sub(ctx, kiln_read(ctx, r->X, idx), kiln_read(ctx, r->mean, ix)), inv);
	return kiln_add(ctx, kiln_mul(ctx, y, KILN_READ(ctx, r->gamma, c)), KILN_READ(ctx, r->beta, c));
}

kiln_tensor *kiln_op_layer_norm(kiln_ctx *ctx, kiln_tensor *X, kiln_tensor *gamma, kiln_tensor *beta, double eps)
{
	if (!X || !gamma || !beta || need_float(ctx, "layer_norm", X) || same_type(ctx, "layer_norm", X, gamma) ||
	    same_type(ctx, "layer_norm", X, beta))
		return NULL;
	row_args *r = ir_alloc(ctx, sizeof *r);
	r->X = X;
	r->gamma = gamma;
	r->beta = beta;
	r->eps = eps;
	int axis = -1;
	int64_t rs[KILN_MAX_DIMS];
	if (row_shape(ctx, "layer_norm", X, &axis, rs))
		return NULL;
	r->axis = axis;
	int64_t n = X->shape[axis];
	if (gamma->ndim != 1 || gamma->shape[0] != n || beta->ndim != 1 || beta->shape[0] != n)
		return ir_error(ctx, "layer_norm: gamma and beta must have shape [%lld]", (long long)n), NULL;
	r->k = kiln_reduce_axis(ctx, n, "k");
	r->mean = op_tag(kiln_compute(ctx, "layer_norm.mean", X->ndim, rs, ln_mean_body, r), TAG_ROW_REDUCE);
	r->k = kiln_reduce_axis(ctx, n, "k");
	r->var = op_tag(kiln_compute(ctx, "layer_norm.var", X->ndim, rs, ln_var_body, r), TAG_ROW_REDUCE);
	kiln_tensor *out = op_tag(kiln_compute(ctx, "layer_norm", X->ndim, X->shape, ln_out_body, r), TAG_ROW_OUTPUT);
	if (out)
		out->op->attr[0] = axis;
	return out;
}

static kiln_expr *bn_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	row_args *r = user;
	kiln_expr *c = idx[1];
	kiln_expr *scale = kiln_mul(ctx, KILN_READ(ctx, r->gamma, c),
	                            kiln_call(ctx, KILN_RSQRT, kiln_add(ctx, KILN_READ(ctx, r->var, c), kiln_const(ctx, r->X->type, r->eps)), NULL));
	return kiln_add(ctx, kiln_mul(ctx, kiln_sub(ctx, kiln_read(ctx, r->X, idx), KILN_READ(ctx, r->mean, c)), scale),
	                KILN_READ(ctx, r->beta, c));
}

kiln_tensor *kiln_op_batch_norm(kiln_ctx *ctx, kiln_tensor *X, kiln_tensor *gamma, kiln_tensor *beta,
                                kiln_tensor *mean, kiln_tensor *var, double eps)
{
	if (!X || !gamma || !beta || !mean || !var || need_float(ctx, "batch_norm", X))
		return NULL;
	if (X->ndim < 2)
		return ir_error(ctx, "batch_norm: input must have a channel axis (at least 2-D)"), NULL;
	kiln_tensor *p[4] = {gamma, beta, mean, var};
	for (int i = 0; i < 4; i++) {
		if (same_type(ctx, "batch_norm", X, p[i]))
			return NULL;
		if (p[i]->ndim != 1 || p[i]->shape[0] != X->shape[1])
			return ir_error(ctx, "batch_norm: '%s' must have shape [%lld]", p[i]->name, (long long)X->shape[1]), NULL;
	}
	row_args *r = ir_alloc(ctx, sizeof *r);
	*r = (row_args){.X = X, .gamma = gamma, .beta = beta, .mean = mean, .var = var, .eps = eps};
	return op_tag(kiln_compute(ctx, "batch_norm", X->ndim, X->shape, bn_body, r), TAG_INJECTIVE);
}
