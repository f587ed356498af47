/*
 * patterns.c — subgraphs an exporter spelled out op by op, put back as the
 * one operator they compute, before fusion.
 *
 * LayerNorm: exporters before ONNX's LayerNormalization (opset 17), and
 * PyTorch's at opset < 17, write it as
 *
 *   m = ReduceMean(x, last axis)  d = x - m  v = ReduceMean(d ^ 2)   (or d * d)
 *   y = d / Sqrt(v + eps) [* gamma] [+ beta]
 *
 * which fusion cannot join (two reductions, d read twice): six kernels and
 * five passes over x per LayerNorm (the transformer encoder's four are 24 of
 * its 72 kernels). As one LayerNormalization it is one row kernel. The
 * rewrite needs every intermediate to have no other reader and not be a graph
 * output, eps, gamma and beta constants, gamma and beta of the row's length.
 * onnxruntime's LayerNormFusion does the same.
 */
#include <string.h>

#include "optable.h"

/* The only live node reading value v, or NULL (several readers, or a graph output). */
static gr_node *only_reader(kiln_graph *g, int v)
{
	if (v < 0 || g->values[v].nuse != 1 || g->values[v].is_output)
		return NULL;
	for (int i = 0; i < g->nnode; i++) {
		gr_node *n = &g->nodes[i];
		for (int k = 0; !n->dead && k < n->nin; k++)
			if (n->in[k] == v)
				return n;
	}
	return NULL;
}

static bool is_op(const gr_node *n, const char *op) { return n && !n->dead && !strcmp(n->op, op); }

/* The input of the two-input node n that is not v (-1 when neither or both are v). */
static int other_input(const gr_node *n, int v)
{
	if (n->nin != 2 || (n->in[0] == v) == (n->in[1] == v))
		return -1;
	return n->in[0] == v ? n->in[1] : n->in[0];
}

/* A ReduceMean of x over its last axis alone, keeping it. */
static bool mean_of_last(kiln_graph *g, const gr_node *n, int x)
{
	if (!is_op(n, "ReduceMean") || n->in[0] != x || !gr_attr_int(n, "keepdims", 1))
		return false;
	int rank = g->values[x].ndim, count;
	const int64_t *axes = gr_attr_ints(n, "axes", &count);
	if (count < 0 && n->nin > 1 && n->in[1] >= 0) { /* opset 18: axes is an input */
		const gr_value *a = &g->values[n->in[1]];
		if (!a->data || a->dtype.code != KILN_INT || a->dtype.bits != 64)
			return false;
		axes = a->data;
		count = (int)gr_numel(a);
	}
	return count == 1 && (axes[0] == -1 || axes[0] == rank - 1);
}

/* Rewrites the LayerNorm that starts at ReduceMean node r; false when it is not one. */
static bool fuse_layer_norm(kiln_graph *g, gr_node *r)
{
	int x = r->in[0];
	const gr_value *xv = &g->values[x];
	if (!xv->typed || xv->ndim < 1 || xv->dtype.code != KILN_FLOAT || xv->dtype.bits != 32 || !mean_of_last(g, r, x))
		return false;
	int64_t C = xv->shape[xv->ndim - 1];
	gr_node *sub = only_reader(g, r->out[0]);
	if (!is_op(sub, "Sub") || sub->in[0] != x || sub->in[1] != r->out[0])
		return false;
	/* d = x - m has exactly two readers: the square and the division */
	int d = sub->out[0];
	if (g->values[d].is_output)
		return false;
	gr_node *sq = NULL, *div = NULL;
	for (int i = 0; i < g->nnode; i++) {
		gr_node *n = &g->nodes[i];
		bool reads = false;
		for (int k = 0; !n->dead && k < n->nin; k++)
			reads |= n->in[k] == d;
		if (!reads)
			continue;
		if (is_op(n, "Div") && n->in[0] == d && n->in[1] != d)
			div = n;
		else if (is_op(n, "Mul") && n->nin == 2 && n->in[0] == d && n->in[1] == d)
			sq = n;
		else if (is_op(n, "Pow") && n->in[0] == d) {
			const float *e = gr_const_f32(g, n->in[1], 1);
			if (e && *e == 2.0f)
				sq = n;
		}
	}
	/* nuse counts reads: Mul(d, d) reads it twice */
	if (!sq || !div || g->values[d].nuse != (strcmp(sq->op, "Mul") ? 2 : 3))
		return false;
	gr_node *var = only_reader(g, sq->out[0]);
	if (!var || !mean_of_last(g, var, sq->out[0]))
		return false;
	gr_node *add = only_reader(g, var->out[0]);
	if (!is_op(add, "Add"))
		return false;
	const float *eps = gr_const_f32(g, other_input(add, var->out[0]), 1);
	gr_node *sqrt_ = only_reader(g, add->out[0]);
	if (!eps || !is_op(sqrt_, "Sqrt") || div->in[1] != sqrt_->out[0] || g->values[sqrt_->out[0]].nuse != 1)
		return false;
	/* then y = n * gamma + beta: each optional, gamma first, either operand order */
	gr_node *last = div, *mul = only_reader(g, div->out[0]), *bias = mul;
	int gamma = -1, beta = -1;
	if (is_op(mul, "Mul") && gr_const_f32(g, other_input(mul, div->out[0]), C)) {
		gamma = other_input(mul, div->out[0]);
		last = mul;
		bias = only_reader(g, mul->out[0]);
	} else {
		mul = NULL;
	}
	if (is_op(bias, "Add") && gr_const_f32(g, other_input(bias, last->out[0]), C)) {
		beta = other_input(bias, last->out[0]);
		last = bias;
	}
	/* gamma and beta broadcast along the last axis only */
	for (int v = 0; v < 2; v++) {
		int c = v ? beta : gamma;
		const gr_value *cv = c >= 0 ? &g->values[c] : NULL;
		for (int k = 0; cv && k + 1 < cv->ndim; k++)
			if (cv->shape[k] != 1 || cv->ndim > xv->ndim)
				return false;
	}
	if (gamma < 0) {
		float *ones = ir_alloc(g->ctx, sizeof(float) * (size_t)C);
		for (int64_t c = 0; c < C; c++)
			ones[c] = 1;
		gamma = gr_add_const(g, ir_fmt(g->ctx, "%s.ones", last->name), xv->dtype, 1, &C, ones);
		if (gamma < 0)
			return false;
	}
	/* the last node becomes the LayerNormalization; the others go */
	double epsilon = *eps;
	int *in = ir_alloc(g->ctx, sizeof(int) * 3);
	in[0] = x;
	in[1] = gamma;
	in[2] = beta;
	gr_node *dead[] = {r, sub, sq, var, add, sqrt_, div, mul};
	for (size_t i = 0; i < sizeof dead / sizeof *dead; i++)
		if (dead[i] && dead[i] != last)
			dead[i]->dead = true;
	int id = (int)(last - g->nodes);
	last->op = "LayerNormalization";
	last->def = gr_op_find(last->op);
	last->in = in;
	last->nin = beta >= 0 ? 3 : 2;
	last->nattr = 0;
	gr_attr *a = gr_add_attr(g, id, "axis", GR_INT);
	if (a)
		a->i = -1;
	a = gr_add_attr(g, id, "epsilon", GR_FLOAT);
	if (a)
		a->f = epsilon;
	return a != NULL;
}

int gr_patterns(kiln_graph *g)
{
	gr_count_uses(g);
	for (int i = 0; i < g->nnode; i++) {
		if (g->ctx->nerr)
			return -1;
		if (is_op(&g->nodes[i], "ReduceMean") && fuse_layer_norm(g, &g->nodes[i]))
			gr_count_uses(g);
	}
	return g->ctx->nerr ? -1 : 0;
}
