/*
 * schedule.h — stages, iteration relations and the lowering entry points.
 */
#ifndef KILN_SCHEDULE_INTERNAL_H
#define KILN_SCHEDULE_INTERNAL_H

#include "ir/ir.h"
#include "ir/simplify.h"

typedef struct sch_stage sch_stage;
typedef struct sch_schedule sch_schedule;

/* How leaf iterators derive from root ones. Applied in order. */
typedef enum { REL_SPLIT, REL_FUSE } sch_rel_kind;
typedef struct {
	sch_rel_kind kind;
	ir_iter *parent, *outer, *inner; /* split: parent -> (outer, inner); fuse: (outer, inner) -> fused */
	ir_iter *fused;
	int64_t factor; /* split: the inner extent, or the outer one with nparts */
	bool nparts;
} sch_rel;

typedef enum { ATTACH_ROOT, ATTACH_INLINE, ATTACH_AT } sch_attach;

typedef struct {
	ir_iter *iv;
	ir_for_kind kind;
	kiln_thread thread;
} sch_ann;

struct sch_stage {
	sch_schedule *s;
	ir_op *op;
	int nout;
	ir_tensor **outs;     /* the tensors this stage writes */
	int nroot;
	ir_iter **root;       /* op axes, then reduce axes */
	int nleaf, leafcap;
	ir_iter **leaf;       /* current loop order, outermost first */
	int nrel, relcap;
	sch_rel *rel;
	int nann, anncap;
	sch_ann *ann;
	sch_attach attach;
	sch_stage *attach_stage;
	ir_iter *attach_iv;
	kiln_scope scope;
	int *storage;         /* storage_order: dimensions outermost first (NULL: row-major) */
	int64_t align_factor[KILN_MAX_DIMS], align_offset[KILN_MAX_DIMS]; /* storage_align per dimension (0: none) */
	bool double_buffer;   /* kiln_double_buffer */
	bool is_output;
	const char *note;     /* which default schedule a scheduler applied (printed by kiln_lower's trace) */
	/* filled by bound inference (lower.c) */
	ir_expr **dmin;       /* per data axis: the first index computed */
	int64_t *dext;        /* per data axis: how many */
	ir_expr **body;       /* op bodies with inline stages substituted */
};

struct sch_schedule {
	kiln_ctx *ctx;
	int nstage, stagecap;
	sch_stage **stages; /* producers before consumers */
	int nout;
	ir_tensor **outs;
};

sch_stage *sch_stage_of(sch_schedule *s, const ir_tensor *t);
/* Extents of every iterator of a stage given its root extents. */
int64_t sch_extent(sch_stage *st, ir_iter *it, const int64_t *root_ext);
/* The for-kind and thread annotation of a leaf. */
sch_ann sch_annotation(const sch_stage *st, const ir_iter *it);
/* e with every read of an inlined stage replaced by that stage's body. */
ir_expr *sch_expand_inline(sch_schedule *s, ir_expr *e);
/* Does this stage's (inline-expanded) body read t? */
bool sch_reads(const sch_stage *st, const ir_tensor *t);

/*
 * Root values in terms of leaf loop variables: vals[r] for each root iter r
 * (relative to the root's min), and the guard conditions that imperfect
 * splits need. ext[] receives each leaf's extent.
 */
typedef struct {
	ir_expr **root_val;   /* per root iter */
	int nguard;
	ir_expr **guard;      /* conditions over leaf vars */
	int64_t *leaf_ext;    /* per leaf */
} sch_nest;
int sch_make_nest(sch_stage *st, const int64_t *root_ext, sch_nest *out);

/* Lowering passes; each takes and returns a statement. */
ir_stmt *sch_schedule_ops(sch_schedule *s);                    /* bound inference + loop nests */
/* Virtual-thread loops unrolled where used, local buffers copied per virtual thread (vthread.c). */
ir_stmt *ir_inject_vthread(kiln_ctx *ctx, ir_stmt *s);
/* Double-buffered shared stages: two halves, the next panel through registers (pipeline.c). */
ir_stmt *ir_inject_double_buffer(kiln_ctx *ctx, ir_stmt *s);
ir_stmt *ir_flatten(sch_schedule *sch, ir_stmt *s, int nargs, ir_tensor *const *args, ir_buffer **bufs);
ir_stmt *ir_vectorize(kiln_ctx *ctx, ir_stmt *s);
ir_stmt *ir_unroll(kiln_ctx *ctx, ir_stmt *s);
/* changed: whether any loop was split (the result then wants a simplify). */
ir_stmt *ir_partition_loops(kiln_ctx *ctx, ir_stmt *s, bool *changed);

/* Reads against extents under their conditions (reads.c): refuses provably
 * out-of-bounds reads; turns selects whose sides are in bounds only under
 * their condition into if_then_else (on the stages' inlined bodies). */
int sch_check_reads(sch_schedule *s);
void sch_lazy_selects(sch_schedule *s);

/* Symbolic interval of an index expression (bounds.c). NULL ends mean unknown;
 * span, when >= 0, bounds hi - lo whatever the fixed symbols are (x / 32 over
 * a window of 64 spans 2 panels even where the ends do not simplify). */
typedef struct {
	ir_expr *lo, *hi;
	int64_t span;
} sch_ival;
typedef struct {
	int n;
	const ir_expr **vars;
	const int64_t *lo, *hi;
} sch_free;
sch_ival sch_bound(kiln_ctx *ctx, const ir_expr *e, const sch_free *fr);
/* a + b for spans: -1 (unknown) when either is, or on overflow */
int64_t sch_span_add(int64_t a, int64_t b);

#endif
