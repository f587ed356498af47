/*
 * simplify.c — rewrites that remove work before fusion: Identity and
 * Dropout vanish (their readers read the input); a BatchNormalization with
 * constant statistics folds into the convolution before it (scaled weights,
 * shifted bias), or else becomes one elementwise scale-and-shift that
 * fusion can chain; nodes nothing reads are dropped.
 */
#include <math.h>
#include <string.h>

#include "optable.h"

/* Readers of value from now read to instead. */
static void replace_uses(kiln_graph *g, int from, int to)
{
	for (int i = 0; i < g->nnode; i++) {
		gr_node *n = &g->nodes[i];
		for (int k = 0; !n->dead && k < n->nin; k++)
			if (n->in[k] == from)
				n->in[k] = to;
	}
}

/* BatchNormalization as y = x * scale[c] + shift[c]; false when its statistics are not constants. */
static bool bn_affine(kiln_graph *g, gr_node *bn, int64_t C, float **scale, float **shift)
{
	for (int k = 1; k < 5; k++)
		if (!gr_const_f32(g, bn->in[k], C))
			return false;
	double eps = gr_attr_float(bn, "epsilon", 1e-5);
	const float *gamma = g->values[bn->in[1]].data, *beta = g->values[bn->in[2]].data;
	const float *mean = g->values[bn->in[3]].data, *var = g->values[bn->in[4]].data;
	*scale = ir_alloc(g->ctx, sizeof(float) * C);
	*shift = ir_alloc(g->ctx, sizeof(float) * C);
	for (int64_t c = 0; c < C; c++) {
		double s = gamma[c] / sqrt((double)var[c] + eps);
		(*scale)[c] = (float)s;
		(*shift)[c] = (float)(beta[c] - mean[c] * s);
	}
	return true;
}

/* Folds bn into the Conv that produces its input, when nothing else reads the conv. */
static bool fold_into_conv(kiln_graph *g, gr_node *bn, const float *scale, const float *shift)
{
	int x = bn->in[0];
	gr_value *xv = &g->values[x];
	if (xv->producer < 0 || xv->nuse != 1 || xv->is_output)
		return false;
	gr_node *conv = &g->nodes[xv->producer];
	if (conv->dead || strcmp(conv->op, "Conv") || conv->out[0] != x)
		return false;
	int64_t K = xv->shape[1];
	gr_value *w = &g->values[conv->in[1]];
	int has_bias = conv->nin > 2 && conv->in[2] >= 0;
	if (!gr_const_f32(g, conv->in[1], gr_numel(w)) || w->shape[0] != K || (has_bias && !gr_const_f32(g, conv->in[2], K)))
		return false;
	int64_t per = gr_numel(w) / K;
	float *nw = ir_alloc(g->ctx, sizeof(float) * gr_numel(w)), *nb = ir_alloc(g->ctx, sizeof(float) * K);
	const float *ow = w->data, *ob = has_bias ? g->values[conv->in[2]].data : NULL;
	for (int64_t k = 0; k < K; k++) {
		for (int64_t i = 0; i < per; i++)
			nw[k * per + i] = ow[k * per + i] * scale[k];
		nb[k] = (ob ? ob[k] : 0) * scale[k] + shift[k];
	}
	int wid = gr_add_const(g, ir_fmt(g->ctx, "%s.bnw", w->name), w->dtype, w->ndim, w->shape, nw);
	int bid = gr_add_const(g, ir_fmt(g->ctx, "%s.bnb", w->name), w->dtype, 1, &K, nb);
	if (wid < 0 || bid < 0)
		return false;
	conv = &g->nodes[g->values[x].producer]; /* values may have moved, nodes did not */
	conv->in[1] = wid;
	conv->in[2] = bid; /* in[] has room for one more than it had */
	conv->nin = 3;
	conv->out[0] = bn->out[0];
	g->values[bn->out[0]].producer = g->values[x].producer;
	bn->dead = true;
	return true;
}

int gr_simplify(kiln_graph *g)
{
	gr_count_uses(g);
	for (int i = 0; i < g->nnode; i++) {
		gr_node *n = &g->nodes[i];
		if (n->dead)
			continue;
		if (!strcmp(n->op, "Identity") || !strcmp(n->op, "Dropout")) {
			int out = n->out[0];
			/* a graph output keeps its name: the copy stays */
			if (g->values[out].is_output)
				continue;
			replace_uses(g, out, n->in[0]);
			n->dead = true;
			gr_count_uses(g);
			continue;
		}
		if (!strcmp(n->op, "BatchNormalization")) {
			gr_value *x = &g->values[n->in[0]];
			float *scale, *shift;
			if (x->ndim < 2 || !bn_affine(g, n, x->shape[1], &scale, &shift))
				continue;
			if (fold_into_conv(g, n, scale, shift)) {
				gr_count_uses(g);
				continue;
			}
			/* elementwise x * scale + shift, with [C, 1, ...] constants that broadcast over N and space */
			int64_t shape[KILN_MAX_DIMS];
			int nd = x->ndim - 1;
			shape[0] = x->shape[1];
			for (int d = 1; d < nd; d++)
				shape[d] = 1;
			int s = gr_add_const(g, ir_fmt(g->ctx, "%s.scale", n->name), x->dtype, nd, shape, scale);
			int t = gr_add_const(g, ir_fmt(g->ctx, "%s.shift", n->name), x->dtype, nd, shape, shift);
			if (s < 0 || t < 0)
				return -1;
			n = &g->nodes[i];
			n->op = "kiln.ScaleShift";
			n->def = gr_op_find(n->op);
			n->in[1] = s;
			n->in[2] = t;
			n->nin = 3;
			n->nattr = 0;
			gr_count_uses(g);
		}
	}
	/* dead code: nodes none of whose outputs anyone reads */
	for (int i = g->nnode - 1; i >= 0; i--) {
		gr_node *n = &g->nodes[i];
		if (n->dead)
			continue;
		bool used = false;
		for (int k = 0; k < n->nout; k++)
			used |= n->out[k] >= 0 && g->values[n->out[k]].nuse > 0;
		if (!used) {
			n->dead = true;
			gr_count_uses(g);
		}
	}
	return 0;
}
