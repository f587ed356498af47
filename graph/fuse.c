/*
 * fuse.c — operator fusion: every live node joins a group, and a group
 * becomes one kernel (build.c makes it ONE tensor-expression function).
 *
 * An elementwise node joins the group that produces one of its inputs when
 * that input is the group's result, nothing else reads it, it is not a
 * graph output, and the node's result has its shape (the other inputs
 * broadcast into it). So conv + bias + relu + residual add, or matmul + bias
 * + GELU's erf chain, are one kernel; the intermediate values never exist.
 * An index map (Reshape, Transpose, Slice, Squeeze, Unsqueeze, Flatten,
 * Expand) starts such a chain too, or joins one that has no anchor: an
 * attention head's Slice -> Reshape -> Transpose -> scale is one kernel
 * that reads the projection once.
 * Groups then run in the order of their last members, which is a
 * topological order: a group's inputs are results of groups whose last
 * member came earlier.
 */
#include <stdlib.h>
#include <string.h>

#include "optable.h"

static bool same_shape(const gr_value *a, const gr_value *b)
{
	return a->ndim == b->ndim && !memcmp(a->shape, b->shape, sizeof(int64_t) * a->ndim);
}

/*
 * The group this elementwise or injective node can join, or -1. An
 * injective one (an index map: Reshape, Transpose, Slice...) joins only a
 * group without an anchor (a chain of maps and elementwise ops, read
 * through in one pass), and by its data input; an anchor's output read
 * through a map would not be its epilogue any more.
 */
static int joinable(kiln_graph *g, const gr_node *n, const bool *open)
{
	const gr_value *out = &g->values[n->out[0]];
	bool map = n->def->injective;
	for (int k = 0; k < (map ? 1 : n->nin); k++) {
		if (n->in[k] < 0 || (n->def->const_inputs >> k & 1))
			continue;
		const gr_value *v = &g->values[n->in[k]];
		if (v->producer < 0 || v->data || v->nuse != 1 || v->is_output || (!map && !same_shape(v, out)))
			continue;
		/* a map that reads elements several times (Expand) would recompute the chain for each */
		if (map && gr_numel(out) > gr_numel(v))
			continue;
		int grp = g->nodes[v->producer].group;
		if (grp >= 0 && open[grp] && g->groups[grp].nout == 1 && g->groups[grp].outs[0] == n->in[k] &&
		    (!map || g->groups[grp].anchor < 0))
			return grp;
	}
	return -1;
}

static int last_member(const gr_group *a) { return a->nodes[a->n - 1]; }

static int by_last_member(const void *a, const void *b)
{
	return last_member(a) - last_member(b);
}

int gr_fuse(kiln_graph *g)
{
	gr_count_uses(g);
	int live = 0;
	for (int i = 0; i < g->nnode; i++)
		live += !g->nodes[i].dead;
	g->groups = ir_alloc(g->ctx, sizeof *g->groups * (live + 1));
	bool *open = ir_alloc(g->ctx, live + 1);
	g->ngroup = 0;
	for (int i = 0; i < g->nnode; i++) {
		gr_node *n = &g->nodes[i];
		if (n->dead)
			continue;
		bool chain = n->def->kind == GR_ELEMWISE || n->def->injective;
		int grp = chain && n->nout == 1 ? joinable(g, n, open) : -1;
		if (grp >= 0) {
			gr_group *gp = &g->groups[grp];
			int *nodes = ir_alloc(g->ctx, sizeof(int) * (gp->n + 1));
			memcpy(nodes, gp->nodes, sizeof(int) * gp->n);
			nodes[gp->n++] = i;
			gp->nodes = nodes;
			gp->outs[0] = n->out[0];
			n->group = grp;
			continue;
		}
		gr_group *gp = &g->groups[g->ngroup];
		gp->anchor = chain ? -1 : i;
		gp->n = 1;
		gp->nodes = ir_alloc(g->ctx, sizeof(int));
		gp->nodes[0] = i;
		gp->outs = ir_alloc(g->ctx, sizeof(int) * n->nout);
		for (int k = 0; k < n->nout; k++)
			if (n->out[k] >= 0)
				gp->outs[gp->nout++] = n->out[k];
		/* only anchors and chains of elementwise ops and index maps take followers */
		open[g->ngroup] = chain || n->def->kind == GR_ANCHOR;
		n->group = g->ngroup++;
	}
	qsort(g->groups, g->ngroup, sizeof *g->groups, by_last_member);
	for (int k = 0; k < g->ngroup; k++) {
		gr_group *gp = &g->groups[k];
		gp->fn = ir_fmt(g->ctx, "k%d_%s", k, g->nodes[gp->nodes[0]].op);
		for (char *c = (char *)gp->fn; *c; c++)
			if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
				*c = '_';
		for (int m = 0; m < gp->n; m++)
			g->nodes[gp->nodes[m]].group = k;
	}
	return 0;
}
