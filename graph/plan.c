/*
 * plan.c — memory planning: every intermediate (a group's result that is
 * not a graph output) gets a byte offset in one arena, and two values share
 * bytes only when their lifetimes do not overlap. Lifetimes are in group
 * steps: from the step that writes a value to the last step that reads it.
 * Offsets are placed first-fit among the values live at the same time
 * (largest first, as onnxruntime's and TVM's planners order them), so the
 * arena is the peak of what is live, not the sum of every intermediate.
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

int gr_plan(kiln_graph *g)
{
	int *first = calloc(g->nvalue, sizeof(int)), *last = calloc(g->nvalue, sizeof(int));
	interval *iv = calloc(g->nvalue + 1, sizeof *iv);
	const interval **placed = calloc(g->nvalue + 1, sizeof *placed);
	if (!first || !last || !iv || !placed) {
		free(first), free(last), free(iv), free(placed);
		return ir_error(g->ctx, "%s: out of memory planning buffers", g->what);
	}
	for (int v = 0; v < g->nvalue; v++)
		first[v] = last[v] = -1;
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
	int niv = 0;
	g->unplanned_bytes = 0;
	for (int v = 0; v < g->nvalue; v++) {
		gr_value *x = &g->values[v];
		if (first[v] < 0 || x->is_output || x->is_input || x->data)
			continue;
		int64_t size = ((int64_t)gr_bytes(x) + ALIGN - 1) / ALIGN * ALIGN;
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
	free(first), free(last), free(iv), free(placed);
	return 0;
}
