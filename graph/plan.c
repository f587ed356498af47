/*
 * plan.c — memory planning: every intermediate (a group's result that is
 * not a graph output) gets a byte offset in one arena, and two values share
 * bytes only when their lifetimes do not overlap. Lifetimes are in group
 * steps: from the step that writes a value to the last step that reads it.
 * Offsets are placed first-fit among the values live at the same time
 * (largest first, as onnxruntime's and TVM's planners order them), so the
 * arena is the peak of what is live, not the sum of every intermediate.
 *
 * A Concat along an axis with only 1s before it is one contiguous run of its
 * inputs, one after another. Where each input is an intermediate only this
 * Concat gathers, it is placed at its slice of the Concat's output: its
 * producer writes there, the copy disappears (SqueezeNet's eight fire
 * modules end in one), and the output's lifetime widens to cover the
 * inputs' (written earlier, maybe read later).
 */
#include <stdlib.h>
#include <string.h>

#include "optable.h"

#define ALIGN 64

typedef struct {
	int value;
	int first, last;
	int64_t size, offset;
} interval;

static int by_size(const void *a, const void *b)
{
	const interval *x = a, *y = b;
	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	return x->first - y->first;
}

static int by_offset(const void *a, const void *b)
{
	const interval *const *x = a, *const *y = b;
	return (*x)->offset < (*y)->offset ? -1 : (*x)->offset > (*y)->offset;
}

/*
 * Marks group s in place when it is a lone Concat whose inputs can live in
 * its output (see above): alias[v] gets the output, at[v] the byte offset,
 * and the output's lifetime takes in the inputs'.
 */
static void concat_in_place(kiln_graph *g, int s, int *first, int *last, int *alias, int64_t *at)
{
	gr_group *gp = &g->groups[s];
	const gr_node *n = &g->nodes[gp->nodes[0]];
	if (gp->n != 1 || strcmp(n->op, "Concat") || n->nout != 1 || gp->nout != 1 || gp->outs[0] != n->out[0])
		return;
	int o = n->out[0];
	const gr_value *y = &g->values[o];
	/* two inputs at least, none empty: each slice is smaller than the output, so no input shares both
	 * start and size with it (GPU devices key their buffers by host address and size) */
	if (y->is_output || y->is_input || y->data || alias[o] >= 0 || n->nin < 2)
		return;
	int64_t axis = gr_attr_int(n, "axis", 0), total = 0;
	if (axis < 0)
		axis += y->ndim;
	for (int d = 0; d < axis && d < y->ndim; d++)
		if (y->shape[d] != 1)
			return;
	for (int k = 0; k < n->nin; k++) {
		int v = n->in[k];
		const gr_value *x = v >= 0 ? &g->values[v] : NULL;
		/* written by an earlier kernel, one slice only, not a Concat's output in turn */
		if (!x || x->is_output || x->is_input || x->data || first[v] < 0 || first[v] >= s || alias[v] >= 0 ||
		    x->dtype.bits != y->dtype.bits || x->dtype.lanes != y->dtype.lanes || !gr_bytes(x))
			return;
		total += (int64_t)gr_bytes(x);
		for (int j = 0; j < k; j++)
			if (n->in[j] == v)
				return;
		for (int t = 0; t < g->ngroup; t++)
			if (g->groups[t].in_place && g->groups[t].outs[0] == v)
				return;
	}
	if (total != (int64_t)gr_bytes(y))
		return;
	int64_t off = 0;
	for (int k = 0; k < n->nin; k++) {
		int v = n->in[k];
		alias[v] = o;
		at[v] = off;
		off += (int64_t)gr_bytes(&g->values[v]);
		if (first[v] < first[o])
			first[o] = first[v];
		if (last[v] > last[o])
			last[o] = last[v];
	}
	gp->in_place = true;
}

int gr_plan(kiln_graph *g)
{
	int *first = calloc(g->nvalue, sizeof(int)), *last = calloc(g->nvalue, sizeof(int));
	int *alias = calloc(g->nvalue, sizeof(int));
	int64_t *at = calloc(g->nvalue, sizeof(int64_t));
	interval *iv = calloc(g->nvalue + 1, sizeof *iv);
	const interval **placed = calloc(g->nvalue + 1, sizeof *placed);
	if (!first || !last || !alias || !at || !iv || !placed) {
		free(first), free(last), free(alias), free(at), free(iv), free(placed);
		return ir_error(g->ctx, "%s: out of memory planning buffers", g->what);
	}
	for (int v = 0; v < g->nvalue; v++)
		first[v] = last[v] = alias[v] = -1;
	for (int s = 0; s < g->ngroup; s++) {
		gr_group *gp = &g->groups[s];
		for (int k = 0; k < gp->nout; k++)
			first[gp->outs[k]] = s;
		for (int m = 0; m < gp->n; m++) {
			gr_node *n = &g->nodes[gp->nodes[m]];
			for (int k = 0; k < n->nin; k++)
				if (n->in[k] >= 0)
					last[n->in[k]] = s;
		}
	}
	for (int s = 0; s < g->ngroup; s++)
		g->groups[s].in_place = false;
	for (int s = 0; s < g->ngroup; s++)
		concat_in_place(g, s, first, last, alias, at);
	int niv = 0;
	g->unplanned_bytes = 0;
	for (int v = 0; v < g->nvalue; v++) {
		gr_value *x = &g->values[v];
		if (first[v] < 0 || x->is_output || x->is_input || x->data)
			continue;
		int64_t size = ((int64_t)gr_bytes(x) + ALIGN - 1) / ALIGN * ALIGN;
		if (alias[v] >= 0) {
			g->unplanned_bytes += size; /* the comparison stays "every intermediate apart" */
			continue;
		}
		iv[niv++] = (interval){v, first[v], last[v] < first[v] ? first[v] : last[v], size ? size : ALIGN, 0};
		g->unplanned_bytes += size;
	}
	qsort(iv, niv, sizeof *iv, by_size);
	g->offset = ir_alloc(g->ctx, sizeof(int64_t) * g->nvalue);
	for (int v = 0; v < g->nvalue; v++)
		g->offset[v] = -1;
	g->arena_bytes = 0;
	for (int i = 0; i < niv; i++) {
		/* the values placed so far that are alive at the same time, by offset */
		int np = 0;
		for (int j = 0; j < i; j++)
			if (iv[j].first <= iv[i].last && iv[i].first <= iv[j].last)
				placed[np++] = &iv[j];
		qsort(placed, np, sizeof *placed, by_offset);
		int64_t at = 0;
		for (int j = 0; j < np; j++) {
			if (placed[j]->offset - at >= iv[i].size)
				break;
			if (placed[j]->offset + placed[j]->size > at)
				at = placed[j]->offset + placed[j]->size;
		}
		iv[i].offset = at;
		g->offset[iv[i].value] = at;
		if (at + iv[i].size > g->arena_bytes)
			g->arena_bytes = at + iv[i].size;
	}
	for (int v = 0; v < g->nvalue; v++)
		if (alias[v] >= 0)
			g->offset[v] = g->offset[alias[v]] + at[v];
	free(first), free(last), free(alias), free(at), free(iv), free(placed);
	return 0;
}
