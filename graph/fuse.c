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
 * A value read twice joins too when both readers will: GELU's
 * x * (1 + erf(x / sqrt 2)) / 2 or SiLU's x * sigmoid(x) after a matmul
 * or conv is one kernel (a diamond; one per group, so no expression is
 * repeated more than twice).
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

/* Whether input k of node n can never be the one it joins a group by: a constant, a graph input, a broadcast operand. */
static bool inert(const kiln_graph *g, const gr_node *n, int k)
{
	int in = n->in[k];
	if (in < 0 || (n->def->const_inputs >> k & 1))
		return true;
	const gr_value *v = &g->values[in];
	return v->producer < 0 || v->data || !same_shape(v, &g->values[n->out[0]]);
}

/* An elementwise node of one output of v's shape (what a diamond is made of). */
static bool elementwise_like(const kiln_graph *g, const gr_node *n, const gr_value *v)
{
	return !n->dead && n->def->kind == GR_ELEMWISE && !n->def->injective && n->nout == 1 &&
	       same_shape(&g->values[n->out[0]], v);
}

/*
 * Whether value u is node n's output or computed from it by a chain of
 * elementwise nodes, each read once and with every other input inert: the
 * chain joins n's group one node after another, and nothing else can take
 * one of its nodes away.
 */
static bool chained_from(const kiln_graph *g, int u, const gr_node *n, int depth)
{
	const gr_value *uv = &g->values[u];
	if (uv->nuse != 1 || uv->is_output) /* n's output too: read elsewhere, the chain could leave the group */
		return false;
	if (u == n->out[0])
		return true;
	if (depth > 16 || uv->producer < 0 || !elementwise_like(g, &g->nodes[uv->producer], &g->values[n->out[0]]))
		return false;
	const gr_node *p = &g->nodes[uv->producer];
	int chain = -1;
	for (int k = 0; k < p->nin; k++) {
		if (inert(g, p, k))
			continue;
		if (chain >= 0)
			return false;
		chain = p->in[k];
	}
	return chain >= 0 && chained_from(g, chain, n, depth + 1);
}

/*
 * Whether node ni (elementwise, v's shape) may join the group whose output
 * v is although v has two readers: both in ni (x * x), or the other one a
 * later elementwise node m whose other inputs all come from ni by a chain
 * (chained_from). Then ni, the chain and m join the group in turn and v
 * never leaves it (build.c expresses it once per reader).
 */
static bool diamond(const kiln_graph *g, int ni, int v)
{
	const gr_node *n = &g->nodes[ni];
	const gr_value *vv = &g->values[v];
	int in_n = 0;
	for (int k = 0; k < n->nin; k++)
		in_n += n->in[k] == v;
	if (vv->nuse != 2 || !elementwise_like(g, n, vv))
		return false;
	if (in_n == 2)
		return true;
	for (int j = ni + 1; j < g->nnode; j++) {
		const gr_node *m = &g->nodes[j];
		bool reads = false;
		for (int k = 0; k < m->nin; k++)
			reads |= !m->dead && m->in[k] == v;
		if (!reads)
			continue;
		if (!elementwise_like(g, m, vv))
			return false;
		int live = 0;
		for (int k = 0; k < m->nin; k++) {
			if (m->in[k] == v || inert(g, m, k))
				continue;
			if (!chained_from(g, m->in[k], n, 0))
				return false;
			live++;
		}
		return live == 1;
	}
	return false;
}

/*
 * The group this elementwise or injective node can join, or -1. An
 * injective one (an index map: Reshape, Transpose, Slice...) joins only a
 * group without an anchor (a chain of maps and elementwise ops, read
 * through in one pass), and by its data input; an anchor's output read
 * through a map would not be its epilogue any more. An elementwise one
 * joins by a value read twice when that is a diamond and the group has
 * none yet (*by_diamond says so).
 */
static int joinable(kiln_graph *g, int ni, const bool *open, const bool *has_diamond, bool *by_diamond)
{
	const gr_node *n = &g->nodes[ni];
	const gr_value *out = &g->values[n->out[0]];
	bool map = n->def->injective;
	*by_diamond = false;
	for (int k = 0; k < (map ? 1 : n->nin); k++) {
		if (n->in[k] < 0 || (n->def->const_inputs >> k & 1))
			continue;
		const gr_value *v = &g->values[n->in[k]];
		if (v->producer < 0 || v->data || v->is_output || (!map && !same_shape(v, out)))
			continue;
		int grp = g->nodes[v->producer].group;
		bool twice = v->nuse != 1;
		if (twice && (map || grp < 0 || has_diamond[grp] || !diamond(g, ni, n->in[k])))
			continue;
		/* a map that reads elements several times (Expand) would recompute the chain for each */
		if (map && gr_numel(out) > gr_numel(v))
			continue;
		if (grp >= 0 && open[grp] && g->groups[grp].nout == 1 && g->groups[grp].outs[0] == n->in[k] &&
		    (!map || g->groups[grp].anchor < 0)) {
			*by_diamond = twice;
			return grp;
		}
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
	bool *open = ir_alloc(g->ctx, live + 1), *has_diamond = ir_alloc(g->ctx, live + 1), by_diamond;
	memset(has_diamond, 0, (size_t)live + 1);
	g->ngroup = 0;
	for (int i = 0; i < g->nnode; i++) {
		gr_node *n = &g->nodes[i];
		if (n->dead)
			continue;
		bool chain = n->def->kind == GR_ELEMWISE || n->def->injective;
		int grp = chain && n->nout == 1 ? joinable(g, i, open, has_diamond, &by_diamond) : -1;
		if (grp >= 0) {
			has_diamond[grp] |= by_diamond;
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
	/* every value a member reads from outside its group is a graph input, a constant or a group's output
	 * (what the plan gives memory); a fusion rule that broke this would read what nothing wrote */
	for (int i = 0; i < g->nnode; i++) {
		const gr_node *n = &g->nodes[i];
		for (int k = 0; !n->dead && k < n->nin; k++) {
			int in = n->in[k];
			const gr_value *v = in >= 0 ? &g->values[in] : NULL;
			if (!v || v->producer < 0 || v->data || g->nodes[v->producer].group == n->group)
				continue;
			const gr_group *pg = &g->groups[g->nodes[v->producer].group];
			bool out = false;
			for (int o = 0; o < pg->nout; o++)
				out |= pg->outs[o] == in;
			if (!out)
				return ir_error(g->ctx, "%s: fusion left '%s' inside its kernel while %s reads it", g->what, v->name,
				                gr_node_label(g, n)), -1;
		}
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
