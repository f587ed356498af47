/*
 * optable.h — the operator table: how each operator of a graph becomes
 * tensor expressions (as ONNX defines them; the text language will map onto
 * the same table).
 *
 * Three kinds of operators:
 *  - elementwise: expr() builds the output element from the input elements
 *    (numpy broadcasting is the table's business, not the op's). Fusion
 *    chains them into one expression after a producer.
 *  - anchors (Conv, Gemm, MatMul): build() returns the core reduction; an
 *    optional epilogue (bias, alpha/beta) applies elementwise, and fused
 *    consumers follow it in the same kernel.
 *  - the rest: build() returns its output tensors from its inputs.
 * Inputs listed in const_inputs (a Reshape's shape, a Slice's starts) are
 * never read as tensors: the graph must know their values when it builds.
 */
#ifndef KILN_GRAPH_OPTABLE_H
#define KILN_GRAPH_OPTABLE_H

#include "graph.h"

#define GR_MAX_IN 64 /* the importer's limit too; a kernel takes at most 60 tensors */
#define GR_MAX_OUT 16

typedef enum { GR_ELEMWISE, GR_ANCHOR, GR_OPAQUE, GR_SOURCE } gr_kind;

typedef struct gr_build gr_build;
typedef kiln_expr *(*gr_epilogue_fn)(gr_build *b, kiln_expr *const *idx, kiln_expr *acc);

/* One node being built: its placeholders in, its tensors out. */
struct gr_build {
	kiln_graph *g;
	gr_node *n;
	kiln_ctx *ctx;
	int opset;
	kiln_tensor *in[GR_MAX_IN];    /* NULL for omitted inputs and const inputs */
	int in_value[GR_MAX_IN];       /* 1 + the value in[k] holds when not the node's input (packed weights) */
	bool prepack;                  /* constant matmul weights may be packed now (CPU targets) */
	const kiln_target *cpu;        /* that CPU target, when prepack (sizes the forms chosen) */
	kiln_tensor *out[GR_MAX_OUT];
	/* an output whose tensor is a view: the same elements in another shape
	 * (a 1-D convolution built as a 2-D one); its value gets this shape */
	bool view[GR_MAX_OUT];
	int view_ndim[GR_MAX_OUT];
	int64_t view_shape[GR_MAX_OUT][KILN_MAX_DIMS];
	gr_epilogue_fn epilogue;       /* anchors: applied to the core per element */
	void *state;                   /* what the epilogue needs */
	/* GR_SOURCE ops (Shape, Constant, ConstantOfShape) set these instead */
	kiln_dtype src_dtype;
	int src_ndim;
	int64_t src_shape[KILN_MAX_DIMS];
	void *src_data;
};

typedef struct gr_opdef {
	const char *name;
	gr_kind kind;
	int min_in, max_in, max_out;
	unsigned const_inputs;         /* bit k: input k must be a constant */
	const char *const *attrs;      /* the attributes it reads (NULL: none) */
	int (*build)(gr_build *b);
	kiln_expr *(*expr)(gr_build *b, kiln_expr *const *args);
	/* an index map of input 0 (Reshape, Transpose, Slice...): fuse.c lets it
	 * join a chain of such maps and elementwise ops, build.c reads through it */
	bool injective;
} gr_opdef;

const gr_opdef *gr_op_find(const char *name);

/* The parts of the table, one per file. */
extern const gr_opdef gr_ops_elemwise[], gr_ops_nn[], gr_ops_shape[];

/* ---- helpers the tables share (optable.c) ---- */

/* A user error naming the node: "model.onnx: Conv 'c1': <message>"; returns -1. */
int gr_node_error(gr_build *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Input k's value, or NULL when omitted. */
gr_value *gr_input(gr_build *b, int k);
/* The int64 values of constant input k (int32 or int64), at most max of them;
 * *count gets how many. Omitted: *count = -1 and 0 returned. */
int gr_const_ints(gr_build *b, int k, int64_t *out, int max, int *count);
/* A scalar of constant input k as a double (dflt when omitted). */
int gr_const_scalar(gr_build *b, int k, double dflt, double *out);
/* numpy broadcasting of two shapes into out (rank = the larger). */
int gr_broadcast(gr_build *b, int na, const int64_t *a, int nb, const int64_t *bs, int *nout, int64_t *out);
/* t read at idx (rank ndim >= t's), broadcasting t's extents of 1 and missing leading dims. */
kiln_expr *gr_bcast_read(kiln_ctx *ctx, kiln_tensor *t, int ndim, kiln_expr *const *idx);
/* A compute over shape whose body is expr() of the node's inputs read with broadcasting. */
int gr_elemwise_build(gr_build *b);
/* Normalizes a possibly negative axis against rank; -1 with an error if outside. */
int gr_axis(gr_build *b, int64_t axis, int rank, const char *what);
/* The index of a flat position in shape (row-major), as expressions. */
void gr_unflatten(kiln_ctx *ctx, kiln_expr *flat, int ndim, const int64_t *shape, kiln_expr **out);
/* The row-major flat position of idx in shape. */
kiln_expr *gr_flatten(kiln_ctx *ctx, int ndim, const int64_t *shape, kiln_expr *const *idx);
/* t (any shape of numel equal to shape's) read at idx of shape. */
kiln_expr *gr_read_as(kiln_ctx *ctx, kiln_tensor *t, int ndim, const int64_t *shape, kiln_expr *const *idx);
kiln_expr *gr_i64(kiln_ctx *ctx, int64_t v);
/* Replaces input k's placeholder by one of another shape with the same
 * elements (kernels take their arguments in any shape of that size). */
kiln_tensor *gr_view_input(gr_build *b, int k, int ndim, const int64_t *shape);
/* Output k is the value's elements in tensor t's shape; the value keeps ndim/shape. */
void gr_set_view(gr_build *b, int k, kiln_tensor *t, int ndim, const int64_t *shape);

/* infer.c: builds node id's tensor expressions over fresh placeholders of
 * its inputs (b->in) into b->out; errors carry the node's label. */
int gr_build_node(kiln_graph *g, int id, gr_build *b);
/* Output k in the value's shape (ndim/shape), the epilogue applied. */
kiln_tensor *gr_complete(gr_build *b, int k, int ndim, const int64_t *shape);

#endif
