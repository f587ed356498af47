/*
 * infer.c — shape and dtype inference, with constant folding.
 *
 * Each node, in order, is built as tensor expressions over placeholders of
 * its inputs' types (the operator table's build, the same code the kernels
 * come from): the result's dtype and shape are the node's. A node whose
 * tensor inputs are all constants is evaluated at once by the oracle (the
 * IR interpreter) and becomes a constant: Shape -> Gather -> Concat ->
 * Reshape chains fold away before any kernel exists.
 */
#include <string.h>

#include "optable.h"

/* Folding runs the interpreter: past this many elements the node stays a kernel. */
#define FOLD_MAX_ELEMENTS (1 << 20)

/* Prefixes a message the operator library left with the node's label. */
static void label_error(kiln_graph *g, gr_node *n)
{
	kiln_ctx *ctx = g->ctx;
	const char *label = gr_node_label(g, n);
	if (!ctx->nerr || strstr(ctx->err, label))
		return;
	char msg[sizeof ctx->err];
	snprintf(msg, sizeof msg, "%s: %s: %.700s", g->what, label, ctx->err);
	memcpy(ctx->err, msg, sizeof msg);
}

/* Arity and attributes against the table: what is not supported is said, by name. */
static int check_node(kiln_graph *g, gr_node *n, gr_build *b)
{
	const gr_opdef *d = n->def;
	while (n->nin > 0 && n->in[n->nin - 1] < 0)
		n->nin--; /* trailing omitted inputs are no inputs */
	if (n->nin < d->min_in || n->nin > d->max_in || n->nin > GR_MAX_IN)
		return gr_node_error(b, "takes %d to %d inputs, got %d", d->min_in, d->max_in, n->nin);
	if (n->nout > d->max_out || n->nout < 1 || n->nout > GR_MAX_OUT)
		return gr_node_error(b, "has %d outputs (at most %d)", n->nout, d->max_out);
	if (n->out[0] < 0)
		return gr_node_error(b, "its first output is omitted");
	for (int k = 0; k < d->min_in && k < n->nin; k++)
		if (n->in[k] < 0)
			return gr_node_error(b, "input %d is required but omitted", k);
	for (int k = 0; k < n->nin; k++)
		if (n->in[k] >= 0 && !g->values[n->in[k]].typed)
			return gr_node_error(b, "input '%s' has no known type", g->values[n->in[k]].name);
	for (int i = 0; i < n->nattr; i++) {
		bool known = false;
		for (const char *const *a = d->attrs; a && *a && !known; a++)
			known = !strcmp(*a, n->attr[i].name);
		if (!known)
			return gr_node_error(b, "attribute '%s' is not supported", n->attr[i].name);
	}
	return 0;
}

int gr_build_node(kiln_graph *g, int id, gr_build *b)
{
	gr_node *n = &g->nodes[id];
	memset(b, 0, sizeof *b);
	b->g = g;
	b->n = n;
	b->ctx = g->ctx;
	b->opset = g->opset;
	b->prepack = g->prepack;
	b->cpu = g->prepack ? &g->cpu : NULL;
	for (int k = 0; k < n->nin && k < GR_MAX_IN; k++) {
		if (n->in[k] < 0 || (n->def->const_inputs >> k & 1))
			continue;
		gr_value *v = &g->values[n->in[k]];
		b->in[k] = kiln_placeholder(g->ctx, ir_fmt(g->ctx, "in%d", k), v->ndim, v->shape, v->dtype);
		if (!b->in[k])
			return -1;
	}
	int rc = n->def->build(b);
	if (!rc && n->def->kind != GR_SOURCE)
		for (int k = 0; k < n->nout; k++)
			if (n->out[k] >= 0 && !b->out[k])
				rc = gr_node_error(b, "output %d is not produced", k);
	if (rc)
		label_error(g, n);
	return rc;
}

typedef struct {
	gr_build *b;
	kiln_tensor *core;
	int ndim;
	const int64_t *shape;
} complete_args;

static kiln_expr *complete_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	complete_args *c = user;
	kiln_expr *acc = gr_read_as(ctx, c->core, c->ndim, c->shape, idx);
	return c->b->epilogue ? c->b->epilogue(c->b, idx, acc) : acc;
}

kiln_tensor *gr_complete(gr_build *b, int k, int ndim, const int64_t *shape)
{
	if (!b->epilogue || k)
		return b->out[k];
	complete_args *c = ir_alloc(b->ctx, sizeof *c);
	*c = (complete_args){b, b->out[0], ndim, shape};
	return kiln_compute(b->ctx, ir_fmt(b->ctx, "%s.out", b->n->op), ndim, shape, complete_body, c);
}

/* Evaluates the node's outputs with the oracle; they become constants. */
static int fold(kiln_graph *g, gr_node *n, gr_build *b)
{
	kiln_tensor *ins[GR_MAX_IN];
	kiln_array *arrs[GR_MAX_IN];
	int nin = 0, rc = 0;
	for (int k = 0; k < n->nin && k < GR_MAX_IN; k++) {
		if (!b->in[k])
			continue;
		gr_value *v = &g->values[n->in[k]];
		ins[nin] = b->in[k];
		arrs[nin] = kiln_array_wrap(v->data, kiln_tensor_ndim(b->in[k]), kiln_tensor_shape(b->in[k]), v->dtype);
		if (!arrs[nin]) {
			for (int i = 0; i < nin; i++)
				kiln_array_free(arrs[i]);
			return ir_error(g->ctx, "%s: folding %s: %s", g->what, gr_node_label(g, n), kiln_rt_last_error());
		}
		nin++;
	}
	for (int k = 0; k < n->nout && !rc; k++) {
		if (n->out[k] < 0)
			continue;
		gr_value *v = &g->values[n->out[k]];
		kiln_tensor *t = gr_complete(b, k, v->ndim, v->shape);
		size_t bytes = gr_bytes(v);
		v->data = ir_alloc(g->ctx, bytes ? bytes : 1);
		kiln_array *out = kiln_array_wrap(v->data, kiln_tensor_ndim(t), kiln_tensor_shape(t), v->dtype);
		rc = !t || !out ? -1 : kiln_eval(g->ctx, t, nin, ins, arrs, out);
		kiln_array_free(out);
	}
	for (int i = 0; i < nin; i++)
		kiln_array_free(arrs[i]);
	if (rc)
		label_error(g, n);
	return rc;
}

int gr_infer(kiln_graph *g)
{
	kiln_ctx *ctx = g->ctx;
	for (int id = 0; id < g->nnode; id++) {
		gr_node *n = &g->nodes[id];
		if (n->dead)
			continue;
		gr_build b = {.g = g, .n = n, .ctx = ctx};
		if (!(n->def = gr_op_find(n->op)))
			return gr_node_error(&b, "operator '%s' is not supported", n->op);
		if (check_node(g, n, &b) || gr_build_node(g, id, &b))
			return -1;
		if (n->def->kind == GR_SOURCE) {
			gr_value *v = &g->values[n->out[0]];
			v->dtype = b.src_dtype;
			v->ndim = b.src_ndim;
			memcpy(v->shape, b.src_shape, sizeof v->shape);
			v->data = b.src_data;
			v->typed = true;
			n->dead = true;
			continue;
		}
		bool foldable = true;
		int64_t total = 0;
		for (int k = 0; k < n->nin; k++)
			if (b.in[k] && !g->values[n->in[k]].data)
				foldable = false;
		for (int k = 0; k < n->nout; k++) {
			if (n->out[k] < 0)
				continue;
			gr_value *v = &g->values[n->out[k]];
			kiln_tensor *t = b.out[k];
			v->dtype = kiln_tensor_dtype(t);
			v->ndim = b.view[k] ? b.view_ndim[k] : kiln_tensor_ndim(t);
			memcpy(v->shape, b.view[k] ? b.view_shape[k] : kiln_tensor_shape(t), sizeof(int64_t) * v->ndim);
			v->typed = true;
			total += gr_numel(v);
			if (v->is_output && v->is_input)
				foldable = false;
		}
		if (foldable && total <= FOLD_MAX_ELEMENTS) {
			if (fold(g, n, &b))
				return -1;
			n->dead = true;
		}
	}
	for (int i = 0; i < g->noutput; i++) {
		gr_value *v = &g->values[g->outputs[i]];
		if (!v->typed)
			return ir_error(ctx, "%s: graph output '%s' has no known type", g->what, v->name);
	}
	return 0;
}
