/*
 * graph.c — building a graph, reading node attributes, printing.
 */
#include <stdlib.h>
#include <string.h>

#include "graph.h"
#include "optable.h"

kiln_graph *kiln_graph_new(kiln_ctx *ctx, const char *what)
{
	kiln_graph *g = ir_alloc(ctx, sizeof *g);
	g->ctx = ctx;
	g->what = ir_strdup(ctx, what ? what : "graph");
	return g;
}

/* Grows an arena array of elem-byte entries to hold one more (old copies stay in the arena). */
static void *grow(kiln_ctx *ctx, void *p, int n, int *cap, size_t elem)
{
	if (n < *cap)
		return p;
	int nc = *cap ? *cap * 2 : 64;
	void *q = ir_alloc(ctx, elem * (size_t)nc);
	if (n)
		memcpy(q, p, elem * (size_t)n);
	*cap = nc;
	return q;
}

int gr_add_value(kiln_graph *g, const char *name)
{
	g->values = grow(g->ctx, g->values, g->nvalue, &g->vcap, sizeof *g->values);
	gr_value *v = &g->values[g->nvalue];
	memset(v, 0, sizeof *v);
	v->name = ir_strdup(g->ctx, name ? name : "");
	v->producer = -1;
	return g->nvalue++;
}

int gr_add_const(kiln_graph *g, const char *name, kiln_dtype t, int ndim, const int64_t *shape, const void *data)
{
	if (ndim < 0 || ndim > KILN_MAX_DIMS)
		return ir_error(g->ctx, "%s: constant '%s' has %d dimensions (at most %d)", g->what, name, ndim,
		                KILN_MAX_DIMS);
	int id = gr_add_value(g, name);
	gr_value *v = &g->values[id];
	v->dtype = t;
	v->ndim = ndim;
	memcpy(v->shape, shape, sizeof(int64_t) * ndim);
	v->typed = true;
	size_t n = gr_bytes(v);
	v->data = ir_alloc(g->ctx, n ? n : 1);
	if (n)
		memcpy(v->data, data, n);
	return id;
}

int gr_add_node(kiln_graph *g, const char *name, const char *op, int nin, const int *in, int nout, const int *out)
{
	g->nodes = grow(g->ctx, g->nodes, g->nnode, &g->ncap, sizeof *g->nodes);
	gr_node *n = &g->nodes[g->nnode];
	memset(n, 0, sizeof *n);
	n->name = ir_strdup(g->ctx, name ? name : "");
	n->op = ir_strdup(g->ctx, op);
	n->nin = nin;
	n->nout = nout;
	n->in = ir_alloc(g->ctx, sizeof(int) * (nin + 1));
	n->out = ir_alloc(g->ctx, sizeof(int) * (nout + 1));
	memcpy(n->in, in, sizeof(int) * nin);
	memcpy(n->out, out, sizeof(int) * nout);
	n->group = -1;
	for (int k = 0; k < nout; k++)
		if (out[k] >= 0)
			g->values[out[k]].producer = g->nnode;
	return g->nnode++;
}

gr_attr *gr_add_attr(kiln_graph *g, int node, const char *name, gr_attr_kind kind)
{
	gr_node *n = &g->nodes[node];
	int cap = n->nattr; /* attributes come once per node: grow by exact size */
	gr_attr *a = ir_alloc(g->ctx, sizeof *a * (cap + 1));
	if (n->nattr)
		memcpy(a, n->attr, sizeof *a * n->nattr);
	n->attr = a;
	gr_attr *x = &a[n->nattr++];
	x->name = ir_strdup(g->ctx, name);
	x->kind = kind;
	x->tensor = -1;
	return x;
}

const char *gr_node_label(const kiln_graph *g, const gr_node *n)
{
	return *n->name ? ir_fmt(g->ctx, "%s '%s'", n->op, n->name) : ir_fmt(g->ctx, "%s (node %d)", n->op,
	                                                                       (int)(n - g->nodes));
}

int64_t gr_numel(const gr_value *v)
{
	int64_t c = 1;
	for (int d = 0; d < v->ndim; d++)
		c *= v->shape[d];
	return c;
}

size_t gr_bytes(const gr_value *v) { return (size_t)gr_numel(v) * kiln_dtype_bytes(v->dtype); }

const float *gr_const_f32(const kiln_graph *g, int v, int64_t n)
{
	if (v < 0)
		return NULL;
	const gr_value *x = &g->values[v];
	return x->data && x->dtype.code == KILN_FLOAT && x->dtype.bits == 32 && gr_numel(x) == n ? x->data : NULL;
}

void gr_count_uses(kiln_graph *g)
{
	for (int i = 0; i < g->nvalue; i++)
		g->values[i].nuse = 0;
	for (int i = 0; i < g->nnode; i++) {
		gr_node *n = &g->nodes[i];
		for (int k = 0; !n->dead && k < n->nin; k++)
			if (n->in[k] >= 0)
				g->values[n->in[k]].nuse++;
	}
	for (int i = 0; i < g->noutput; i++)
		g->values[g->outputs[i]].nuse++;
}

static void print_value(const kiln_graph *g, int id, FILE *out)
{
	if (id < 0) {
		fprintf(out, "-");
		return;
	}
	const gr_value *v = &g->values[id];
	char dt[16];
	fprintf(out, "%%%s", v->name);
	if (!v->typed)
		return;
	fprintf(out, ":%s[", kiln_dtype_str(v->dtype, dt));
	for (int d = 0; d < v->ndim; d++)
		fprintf(out, "%s%lld", d ? "," : "", (long long)v->shape[d]);
	fprintf(out, "]%s", v->data ? "=const" : "");
}

void gr_print(const kiln_graph *g, const char *title, FILE *out)
{
	int live = 0;
	for (int i = 0; i < g->nnode; i++)
		live += !g->nodes[i].dead;
	fprintf(out, "// graph after %s: %d nodes", title, live);
	if (g->ngroup)
		fprintf(out, ", %d kernels", g->ngroup);
	fprintf(out, "\n");
	for (int i = 0; i < g->ninput; i++) {
		fprintf(out, "input ");
		print_value(g, g->inputs[i], out);
		fprintf(out, "\n");
	}
	for (int i = 0; i < g->nnode; i++) {
		const gr_node *n = &g->nodes[i];
		if (n->dead)
			continue;
		if (n->group >= 0)
			fprintf(out, "  [k%d%s] ", n->group, g->groups[n->group].in_place ? ", in place" : "");
		else
			fprintf(out, "  ");
		for (int k = 0; k < n->nout; k++) {
			fprintf(out, k ? ", " : "");
			print_value(g, n->out[k], out);
		}
		fprintf(out, " = %s(", n->op);
		for (int k = 0; k < n->nin; k++) {
			fprintf(out, k ? ", " : "");
			print_value(g, n->in[k], out);
		}
		fprintf(out, ")\n");
	}
	for (int i = 0; i < g->noutput; i++) {
		fprintf(out, "output ");
		print_value(g, g->outputs[i], out);
		fprintf(out, "\n");
	}
	if (g->offset)
		fprintf(out, "// intermediates: %lld bytes planned, %lld without reuse\n", (long long)g->arena_bytes,
		        (long long)g->unplanned_bytes);
}

/* ---- attributes ---- */

const gr_attr *gr_attr_find(const gr_node *n, const char *name)
{
	for (int i = 0; i < n->nattr; i++)
		if (!strcmp(n->attr[i].name, name))
			return &n->attr[i];
	return NULL;
}

int64_t gr_attr_int(const gr_node *n, const char *name, int64_t dflt)
{
	const gr_attr *a = gr_attr_find(n, name);
	return a && a->kind == GR_INT ? a->i : dflt;
}

double gr_attr_float(const gr_node *n, const char *name, double dflt)
{
	const gr_attr *a = gr_attr_find(n, name);
	return a && a->kind == GR_FLOAT ? a->f : a && a->kind == GR_INT ? (double)a->i : dflt;
}

const char *gr_attr_str(const gr_node *n, const char *name, const char *dflt)
{
	const gr_attr *a = gr_attr_find(n, name);
	return a && a->kind == GR_STRING ? a->s : dflt;
}

const int64_t *gr_attr_ints(const gr_node *n, const char *name, int *count)
{
	const gr_attr *a = gr_attr_find(n, name);
	if (!a || a->kind != GR_INTS) {
		*count = -1;
		return NULL;
	}
	*count = a->n;
	return a->ints;
}

/* ---- the public face ---- */

int kiln_graph_num_nodes(const kiln_graph *g)
{
	int live = 0;
	for (int i = 0; g && i < g->nnode; i++)
		live += !g->nodes[i].dead;
	return live;
}

void kiln_graph_print(const kiln_graph *g, FILE *out)
{
	if (g)
		gr_print(g, "import", out);
}

/*
 * The pass list, in order (as Halide's Lower.cpp): each pass rewrites the
 * graph in place; with print_graph the graph is printed after each.
 */
int kiln_graph_optimize(kiln_graph *g, FILE *print_graph)
{
	if (!g)
		return -1;
	static const struct {
		const char *name;
		int (*run)(kiln_graph *);
	} passes[] = {
		{"infer", gr_infer},
		{"simplify", gr_simplify},
		{"patterns", gr_patterns},
		{"fuse", gr_fuse},
		{"plan", gr_plan},
	};
	if (g->ngroup)
		return ir_error(g->ctx, "%s: the graph passes already ran", g->what);
	for (size_t i = 0; i < sizeof passes / sizeof *passes; i++) {
		if (passes[i].run(g))
			return -1;
		if (print_graph)
			gr_print(g, passes[i].name, print_graph);
	}
	return 0;
}

kiln_module *kiln_graph_compile(kiln_graph *g, const char *target, FILE *print_graph)
{
	if (!g || !target)
		return NULL;
	if (!g->ngroup && !g->offset && kiln_graph_optimize(g, print_graph))
		return NULL;
	return gr_build_module(g, target);
}

void kiln_graph_set_config(kiln_graph *g, kiln_group_config_fn fn, void *user)
{
	if (g) {
		g->config = fn;
		g->config_user = user;
	}
}

int64_t kiln_graph_planned_bytes(const kiln_graph *g, int64_t *without_reuse)
{
	if (without_reuse)
		*without_reuse = g ? g->unplanned_bytes : 0;
	return g ? g->arena_bytes : 0;
}
