/*
 * winograd.c — 3x3 stride-1 convolutions by Winograd's minimal filtering:
 * the compute declarations (ops/schedule_cpu.c schedules them) and the
 * weight transform the model compiler applies once to constant weights.
 */
#include "ops.h"

/*
 * ---- Winograd F(m x m, 3x3), m = 4 or 2 ----
 *
 * A 3x3 stride-1 convolution as Y = A^T [(G g G^T) (.) (B^T d B)] A per m x m
 * output tile of an a x a input tile (a = m + 2): a^2 products per tile and
 * channel pair where the direct form takes 9 m^2 (F(4,3): 36 for 144; F(2,3):
 * 16 for 36, for small images, where 4x4 tiles would be few and mostly
 * outside the output). The stages:
 *   Xp[n, c, h, w]        the padded input
 *   T[c, r, i, j, t]      B^T d, one tile row r = (n, th) of column t at a time (local)
 *   V[e, c, r, t]         (B^T d B)[e/a, e%a]
 *   U[e, k, c]            (G g G^T)[e/a, e%a]: the weights (transformed once
 *                         by the model compiler, kiln_winograd_weights)
 *   M[e, k, q]            sum_c U[e, k, c] V[e, c, q]: a^2 GEMMs (the matmul
 *                         schedule; V read flat, q = r*TW + t)
 *   Y[n, k, h, w]         (A^T M A)[h%m, w%m] of tile q (over whole tiles: an
 *                         output that ends inside a tile is cropped from it)
 * Each transform is written per case of its small-matrix index as a sum of the
 * nonzero coefficients only (a select over the cases); the CPU schedule
 * unrolls those indices, so every case folds to its own sum.
 */
typedef struct {
	int m, a;
	double G[6][3], BT[6][6], AT[4][6];
} wg_mats;

static const wg_mats WG4 = {4, 6,
                            {{1.0 / 4, 0, 0}, {-1.0 / 6, -1.0 / 6, -1.0 / 6}, {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                             {1.0 / 24, 1.0 / 12, 1.0 / 6}, {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}},
                            {{4, 0, -5, 0, 1, 0}, {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                             {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}},
                            {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}}};
static const wg_mats WG2 = {2, 4,
                            {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}},
                            {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}},
                            {{1, 1, 1, 0}, {0, 1, -1, -1}}};

static const wg_mats *wg_for(int m) { return m == 4 ? &WG4 : m == 2 ? &WG2 : NULL; }

int kiln_winograd_weights(const float *W, int64_t K, int64_t C, int m, float *U)
{
	const wg_mats *g = wg_for(m);
	if (!g)
		return -1;
	int a = g->a;
	for (int64_t k = 0; k < K; k++)
		for (int64_t c = 0; c < C; c++) {
			const float *w = W + (k * C + c) * 9;
			for (int e = 0; e < a * a; e++) {
				double v = 0;
				for (int r = 0; r < 3; r++)
					for (int s = 0; s < 3; s++)
						v += g->G[e / a][r] * g->G[e % a][s] * w[r * 3 + s];
				U[((int64_t)e * K + k) * C + c] = (float)v;
			}
		}
	return 0;
}

typedef struct {
	conv_args *c;
	const wg_mats *g;
	kiln_tensor *U, *T, *V, *M, *Y;
	kiln_iter *ck;          /* M's reduction over input channels */
	int64_t TH, TW, P;
} wino_args;

/* sum of coef[i] * term(i) over the nonzero coefficients */
static kiln_expr *wg_sum(kiln_ctx *ctx, kiln_dtype t, int n, const double *coef, kiln_expr *const *term)
{
	kiln_expr *acc = NULL;
	for (int i = 0; i < n; i++) {
		if (coef[i] == 0)
			continue;
		kiln_expr *x = coef[i] == 1 ? term[i] : kiln_mul(ctx, term[i], kiln_const(ctx, t, coef[i]));
		acc = acc ? kiln_add(ctx, acc, x) : x;
	}
	return acc ? acc : kiln_const(ctx, t, 0);
}

/* select(idx == 0, case[0], select(idx == 1, case[1], ... case[n-1])) */
static kiln_expr *wg_cases(kiln_ctx *ctx, kiln_expr *idx, int n, kiln_expr *const *cases)
{
	kiln_expr *v = cases[n - 1];
	for (int i = n - 2; i >= 0; i--)
		v = kiln_select(ctx, kiln_eq(ctx, idx, kiln_const(ctx, KILN_I64, i)), cases[i], v);
	return v;
}

static kiln_expr *wg_i(kiln_ctx *ctx, int64_t v) { return kiln_const(ctx, KILN_I64, (double)v); }

/* U[e, k, c] from raw weights W[k, c, 3, 3] (the operator-level form) */
static kiln_expr *wg_u_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	wino_args *w = user;
	const wg_mats *g = w->g;
	kiln_tensor *W = w->c->W;
	kiln_expr *t[9], *cases[36];
	for (int r = 0; r < 3; r++)
		for (int s = 0; s < 3; s++)
			t[r * 3 + s] = KILN_READ(ctx, W, idx[1], idx[2], wg_i(ctx, r), wg_i(ctx, s));
	for (int e = 0; e < g->a * g->a; e++) {
		double coef[9];
		for (int r = 0; r < 3; r++)
			for (int s = 0; s < 3; s++)
				coef[r * 3 + s] = g->G[e / g->a][r] * g->G[e % g->a][s];
		cases[e] = wg_sum(ctx, W->type, 9, coef, t);
	}
	return wg_cases(ctx, idx[0], g->a * g->a, cases);
}

/* T[c, r, i, j, t] = sum_l BT[i][l] Xp[n, c, th*m + l, t*m + j] with r = n*TH + th */
static kiln_expr *wg_t_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	wino_args *w = user;
	const wg_mats *g = w->g;
	kiln_expr *TH = wg_i(ctx, w->TH), *m = wg_i(ctx, g->m);
	kiln_expr *n = kiln_div(ctx, idx[1], TH), *h0 = kiln_mul(ctx, kiln_mod(ctx, idx[1], TH), m);
	kiln_expr *col = kiln_add(ctx, kiln_mul(ctx, idx[4], m), idx[3]), *d[6], *cases[6];
	for (int l = 0; l < g->a; l++)
		d[l] = KILN_READ(ctx, w->c->Xp, n, idx[0], kiln_add(ctx, h0, wg_i(ctx, l)), col);
	for (int i = 0; i < g->a; i++)
		cases[i] = wg_sum(ctx, w->c->X->type, g->a, g->BT[i], d);
	return wg_cases(ctx, idx[2], g->a, cases);
}

/* V[e, c, r, t] = sum_j T[c, r, e/a, j, t] BT[e%a][j] */
static kiln_expr *wg_v_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	wino_args *w = user;
	const wg_mats *g = w->g;
	kiln_expr *cases[36];
	for (int e = 0; e < g->a * g->a; e++) {
		kiln_expr *t[6];
		for (int j = 0; j < g->a; j++)
			t[j] = KILN_READ(ctx, w->T, idx[1], idx[2], wg_i(ctx, e / g->a), wg_i(ctx, j), idx[3]);
		cases[e] = wg_sum(ctx, w->c->X->type, g->a, g->BT[e % g->a], t);
	}
	return wg_cases(ctx, idx[0], g->a * g->a, cases);
}

/* M[e, k, q] = sum_c U[e, k, c] V[e, c, q / TW, q % TW] (contiguous in q once flattened) */
static kiln_expr *wg_m_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	wino_args *w = user;
	kiln_expr *c = kiln_iter_var(w->ck), *TW = wg_i(ctx, w->TW);
	kiln_expr *u = KILN_READ(ctx, w->U, idx[0], idx[1], c);
	kiln_expr *v = KILN_READ(ctx, w->V, idx[0], c, kiln_div(ctx, idx[2], TW), kiln_mod(ctx, idx[2], TW));
	return kiln_sum(ctx, kiln_mul(ctx, u, v), 1, &w->ck);
}

/* Y[n, k, h, w] = sum AT[h%m][e/a] AT[w%m][e%a] M[e, k, (n*TH + h/m)*TW + w/m] */
static kiln_expr *wg_y_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	wino_args *w = user;
	const wg_mats *g = w->g;
	int a = g->a, E = a * a;
	kiln_expr *m = wg_i(ctx, g->m);
	kiln_expr *r = kiln_add(ctx, kiln_mul(ctx, idx[0], wg_i(ctx, w->TH)), kiln_div(ctx, idx[2], m));
	kiln_expr *q = kiln_add(ctx, kiln_mul(ctx, r, wg_i(ctx, w->TW)), kiln_div(ctx, idx[3], m));
	kiln_expr *mv[36], *cases[16];
	for (int e = 0; e < E; e++)
		mv[e] = KILN_READ(ctx, w->M, wg_i(ctx, e), idx[1], q);
	for (int i = 0; i < g->m; i++)
		for (int j = 0; j < g->m; j++) {
			double coef[36];
			for (int e = 0; e < E; e++)
				coef[e] = g->AT[i][e / a] * g->AT[j][e % a];
			cases[i * g->m + j] = wg_sum(ctx, w->c->X->type, E, coef, mv);
		}
	kiln_expr *ij = kiln_add(ctx, kiln_mul(ctx, kiln_mod(ctx, idx[2], m), m), kiln_mod(ctx, idx[3], m));
	return wg_cases(ctx, ij, g->m * g->m, cases);
}

static kiln_expr *wg_crop_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	wino_args *w = user;
	return kiln_read(ctx, w->Y, idx);
}

kiln_tensor *kiln_op_conv2d_winograd(kiln_ctx *ctx, kiln_tensor *X, kiln_tensor *W, const kiln_conv2d_attrs *attrs, int m,
                                     int transformed)
{
	const char *op = "conv2d_winograd";
	const wg_mats *g = wg_for(m);
	if (!g)
		return ir_error(ctx, "%s: tile %d: F(2x2, 3x3) and F(4x4, 3x3) are the forms there are (tile 2 or 4)", op, m),
		       NULL;
	int E = g->a * g->a;
	conv_args *c = op_conv_begin(ctx, op, X, W, attrs, transformed ? 3 : 4);
	if (!c)
		return NULL;
	int64_t N = X->shape[0], C = X->shape[1], H = X->shape[2], Wd = X->shape[3];
	const int64_t *p = c->a.pad;
	if (c->a.groups != 1 || c->a.stride[0] != 1 || c->a.stride[1] != 1 || c->a.dilation[0] != 1 || c->a.dilation[1] != 1)
		return ir_error(ctx, "%s: only ungrouped 3x3 convolutions with stride 1 and dilation 1", op), NULL;
	int64_t K;
	if (transformed) {
		if (W->ndim != 3 || W->shape[0] != E || W->shape[2] != C)
			return ir_error(ctx, "%s: transformed weights must be [%d, K, %lld]", op, E, (long long)C), NULL;
		K = W->shape[1];
	} else {
		if (W->shape[1] != C || W->shape[2] != 3 || W->shape[3] != 3)
			return ir_error(ctx, "%s: weight must be [K, %lld, 3, 3], got [%lld, %lld, %lld, %lld]", op, (long long)C,
			                (long long)W->shape[0], (long long)W->shape[1], (long long)W->shape[2],
			                (long long)W->shape[3]), NULL;
		K = W->shape[0];
	}
	for (int i = 0; i < 4; i++)
		if (p[i] < 0 || p[i] > H + Wd)
			return ir_error(ctx, "%s: padding %lld is out of range", op, (long long)p[i]), NULL;
	int64_t OH = H + p[0] + p[2] - 2, OW = Wd + p[1] + p[3] - 2, tiles;
	if (OH < 1 || OW < 1)
		return ir_error(ctx, "%s: the window is larger than the padded input", op), NULL;
	/* (the padding is at most H + W above, so OH and OW cannot overflow; their product over the batch can) */
	if (__builtin_mul_overflow(N, (OH + m - 1) / m, &tiles) || __builtin_mul_overflow(tiles, (OW + m - 1) / m, &tiles) ||
	    tiles > KILN_MAX_ARRAY_BYTES)
		return ir_error(ctx, "%s: %lld images of %lldx%lld outputs are too many tiles", op, (long long)N, (long long)OH,
		                (long long)OW), NULL;
	wino_args *w = ir_alloc(ctx, sizeof *w);
	w->c = c;
	w->g = g;
	w->TH = (OH + m - 1) / m;
	w->TW = (OW + m - 1) / m;
	w->P = N * w->TH * w->TW;
	/* partial tiles: the input padded on past the last one, the output cropped */
	int64_t tp[4] = {p[0], p[1], p[2] + m * w->TH - OH, p[3] + m * w->TW - OW};
	c->Xp = op_pad_spatial(ctx, c, tp);
	w->U = transformed ? W : op_tag(kiln_compute(ctx, ir_fmt(ctx, "%s.winograd", W->name), 3, (int64_t[]){E, K, C},
	                                             wg_u_body, w), TAG_WINO_WEIGHTS);
	int64_t R = N * w->TH;
	w->T = op_tag(kiln_compute(ctx, "conv2d.tiles", 5, (int64_t[]){C, R, g->a, g->a, w->TW}, wg_t_body, w),
	              TAG_WINO_TILES);
	w->V = op_tag(kiln_compute(ctx, "conv2d.input", 4, (int64_t[]){E, C, R, w->TW}, wg_v_body, w), TAG_WINO_INPUT);
	w->ck = kiln_reduce_axis(ctx, C, "c");
	w->M = op_tag(kiln_compute(ctx, "conv2d.products", 3, (int64_t[]){E, K, w->P}, wg_m_body, w), TAG_MATMUL);
	if (!w->M)
		return NULL;
	w->M->op->attr[0] = 32; /* columns of a register block (the matmul schedule narrows it to two vectors) */
	int64_t full[4] = {N, K, m * w->TH, m * w->TW};
	kiln_tensor *Y = op_tag(kiln_compute(ctx, full[2] == OH && full[3] == OW ? op : "conv2d.tiled", 4, full, wg_y_body, w),
	                        TAG_WINO_OUTPUT);
	if (!Y)
		return NULL;
	Y->op->attr[0] = m; /* the tile, for the schedule */
	if (full[2] == OH && full[3] == OW)
		return Y;
	/* untagged: the default schedule inlines the crop into what reads it */
	w->Y = Y;
	return kiln_compute(ctx, op, 4, (int64_t[]){N, K, OH, OW}, wg_crop_body, w);
}
