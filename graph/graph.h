/*
 * graph.h — the graph IR: typed values with static shapes, nodes naming an
 * operator of the table (graph/optable.c), and the passes over them.
 *
 * A frontend (frontends/onnx) builds a graph; gr_infer gives every value
 * its dtype and shape, folding constants as it goes; the passes then
 * rewrite it in place, one file and one entry point each, in the order
 * kiln_graph_compile lists them:
 *
 *   infer.c   shapes and dtypes; nodes whose inputs are constants fold
 *   simplify.c Identity / Dropout vanish; BatchNormalization
 *             folds into the convolution before it
 *   patterns.c subgraphs spelled out op by op become the one operator
 *             they compute (a decomposed LayerNorm: LayerNormalization)
 *   fuse.c    elementwise consumers join their producer's group; index
 *             maps (Reshape, Transpose, Slice...) chain with them
 *   plan.c    liveness-based buffer reuse for intermediates; a Concat's
 *             inputs placed inside its output (no copy)
 *   build.c   one tensor-expression function per group, lowered and built
 *
 * Everything lives in the context's arena and dies with it.
 */
#ifndef KILN_GRAPH_INTERNAL_H
#define KILN_GRAPH_INTERNAL_H

#include "ir/ir.h"
#include "kiln/graph.h"
#include "kiln/target.h"

typedef enum { GR_INT, GR_FLOAT, GR_INTS, GR_FLOATS, GR_STRING, GR_TENSOR } gr_attr_kind;

/* One attribute of a node, as the frontend read it. */
typedef struct {
	const char *name;
	gr_attr_kind kind;
	int64_t i;
	double f;
	int n;           /* GR_INTS, GR_FLOATS */
	int64_t *ints;
	double *floats;
	const char *s;
	int tensor;      /* GR_TENSOR: a constant value of the graph */
} gr_attr;

/* A tensor of the graph. Constants carry compact host data. */
typedef struct {
	const char *name;
	kiln_dtype dtype;
	int ndim;
	int64_t shape[KILN_MAX_DIMS];
	bool typed;      /* dtype and shape known */
	void *data;      /* a constant: ndim/shape/dtype describe it */
	int producer;    /* the node that defines it, -1 for inputs and constants */
	bool is_input, is_output;
	int nuse;        /* live nodes reading it (gr_count_uses) */
} gr_value;

struct gr_opdef;

typedef struct {
	const char *name;      /* the frontend's node name ("" if none) */
	const char *op;        /* operator type, e.g. "Conv" */
	const struct gr_opdef *def;
	int nin, nout;
	int *in, *out;         /* value ids; -1 for an omitted optional input */
	int nattr;
	gr_attr *attr;
	bool dead;
	int group;             /* fuse.c: the group it belongs to, -1 before */
} gr_node;

/* A fused group: an anchor (conv / matmul, or any single op) and the
 * elementwise nodes after it, or a chain of elementwise nodes and index
 * maps, built as ONE tensor-expression function. */
typedef struct {
	int anchor;            /* node id, or -1: an elementwise chain alone */
	int n;                 /* member nodes in execution order (anchor first) */
	int *nodes;
	int nout;              /* the values it writes (several for Split) */
	int *outs;
	const char *fn;        /* its function in the module */
	/* plan.c: a lone Concat whose inputs' producers write straight into
	 * their slices of its output; targets that address intermediates by
	 * arena offset (llvm, wasm) run no kernel for it */
	bool in_place;
} gr_group;

struct kiln_graph {
	kiln_ctx *ctx;
	int nvalue, vcap;
	gr_value *values;
	int nnode, ncap;
	gr_node *nodes;
	int ninput, noutput;
	int *inputs, *outputs;
	int ngroup;
	gr_group *groups;
	/* plan.c: per value the byte offset of its buffer in the arena of
	 * intermediates (-1: not an intermediate), and the arena's size */
	int64_t *offset;
	int64_t arena_bytes, unplanned_bytes;
	const char *what;      /* names the graph in messages (the model's path) */
	int opset;             /* the ONNX opset its operators follow */
	bool prepack;          /* build.c, CPU targets: constant matmul weights packed at compile time */
	kiln_target cpu;       /* build.c: that CPU target's description, when prepack */
	kiln_group_config_fn config; /* build.c: a tuned schedule configuration per group task, or NULL */
	void *config_user;
};

/* ---- building (graph.c) ---- */

int gr_add_value(kiln_graph *g, const char *name);
/* A constant value holding a copy of data (compact, ndim/shape/dtype). */
int gr_add_const(kiln_graph *g, const char *name, kiln_dtype t, int ndim, const int64_t *shape, const void *data);
/* A node; in/out are copied. Returns its id or -1. */
int gr_add_node(kiln_graph *g, const char *name, const char *op, int nin, const int *in, int nout, const int *out);
gr_attr *gr_add_attr(kiln_graph *g, int node, const char *name, gr_attr_kind kind);
/* "Conv conv1": how messages name a node. */
const char *gr_node_label(const kiln_graph *g, const gr_node *n);
int64_t gr_numel(const gr_value *v);
size_t gr_bytes(const gr_value *v);
/* Value v's data when it is a float32 constant of n elements, else NULL (v < 0 too). */
const float *gr_const_f32(const kiln_graph *g, int v, int64_t n);
/* Recounts nuse over live nodes (graph outputs count as a use). */
void gr_count_uses(kiln_graph *g);
/* Writes the graph: one line per live node with its inputs' and outputs' types. */
void gr_print(const kiln_graph *g, const char *title, FILE *out);

/* ---- attributes (graph.c): defaults when absent; errors name the node ---- */

const gr_attr *gr_attr_find(const gr_node *n, const char *name);
int64_t gr_attr_int(const gr_node *n, const char *name, int64_t dflt);
double gr_attr_float(const gr_node *n, const char *name, double dflt);
const char *gr_attr_str(const gr_node *n, const char *name, const char *dflt);
/* The ints of a list attribute; *count = -1 when absent. */
const int64_t *gr_attr_ints(const gr_node *n, const char *name, int *count);

/* ---- the passes ---- */

int gr_infer(kiln_graph *g);
int gr_simplify(kiln_graph *g);
int gr_patterns(kiln_graph *g);
int gr_fuse(kiln_graph *g);
int gr_plan(kiln_graph *g);
kiln_module *gr_build_module(kiln_graph *g, const char *target);

#endif
