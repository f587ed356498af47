/*
 * kiln schedules: how a tensor expression becomes loops.
 *
 * A schedule holds one stage per compute. Primitives rewrite a stage's loop
 * nest (split, fuse, reorder, tile), annotate loops (vectorize, unroll,
 * parallel, bind), move stages (compute_at / inline / root), and add stages
 * (cache_read, cache_write, rfactor). Every primitive checks its arguments
 * and returns -1 (or NULL) with a message in kiln_error(ctx) on misuse.
 */
#ifndef KILN_SCHEDULE_H
#define KILN_SCHEDULE_H

#include "te.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sch_schedule kiln_schedule;
typedef struct sch_stage kiln_stage;

/*
 * Thread indices a loop can be bound to (GPU targets). A virtual thread
 * (TVM's vthread) runs its iterations as more threads of the block inside
 * one real thread: bound inference gives each its own local tile, and the
 * loop is unrolled where its variable is used (on every target).
 */
typedef enum {
	KILN_THREAD_NONE = 0,
	KILN_BLOCK_X, KILN_BLOCK_Y, KILN_BLOCK_Z,
	KILN_THREAD_X, KILN_THREAD_Y, KILN_THREAD_Z,
	KILN_VTHREAD_X, KILN_VTHREAD_Y, KILN_VTHREAD_Z,
} kiln_thread;

/* Memory scopes of a stage's buffer. */
typedef enum { KILN_SCOPE_GLOBAL = 0, KILN_SCOPE_SHARED, KILN_SCOPE_LOCAL } kiln_scope;

kiln_schedule *kiln_schedule_create(kiln_ctx *ctx, int nout, kiln_tensor *const *outs);
kiln_stage *kiln_stage_of(kiln_schedule *s, kiln_tensor *t);
/* The i-th data-parallel axis and i-th reduction axis of a stage's op. */
kiln_iter *kiln_stage_axis(kiln_stage *st, int i);
kiln_iter *kiln_stage_reduce_axis(kiln_stage *st, int i);
/* The current loop order, outermost first. */
int kiln_stage_leaves(kiln_stage *st, kiln_iter ***leaves);

int kiln_split(kiln_stage *st, kiln_iter *it, int64_t factor, kiln_iter **outer, kiln_iter **inner);
int kiln_split_nparts(kiln_stage *st, kiln_iter *it, int64_t nparts, kiln_iter **outer, kiln_iter **inner);
int kiln_fuse(kiln_stage *st, kiln_iter *outer, kiln_iter *inner, kiln_iter **fused);
int kiln_reorder(kiln_stage *st, int n, kiln_iter *const *order);
int kiln_tile(kiln_stage *st, kiln_iter *x, kiln_iter *y, int64_t fx, int64_t fy, kiln_iter **xo, kiln_iter **yo,
              kiln_iter **xi, kiln_iter **yi);
int kiln_vectorize(kiln_stage *st, kiln_iter *it);
int kiln_unroll(kiln_stage *st, kiln_iter *it);
int kiln_parallel(kiln_stage *st, kiln_iter *it);
int kiln_bind(kiln_stage *st, kiln_iter *it, kiln_thread thread);

int kiln_compute_at(kiln_stage *st, kiln_stage *parent, kiln_iter *it);
int kiln_compute_inline(kiln_stage *st);
int kiln_compute_root(kiln_stage *st);
int kiln_set_scope(kiln_stage *st, kiln_scope scope);
/*
 * Lays out the stage's buffer with its dimensions in the order dims[0]
 * (outermost) .. dims[n-1] (innermost) instead of row-major: {1, 0} stores a
 * 2-d stage transposed (Halide's reorder_storage). Function arguments keep
 * the caller's row-major layout.
 */
int kiln_storage_order(kiln_stage *st, int n, const int *dims);
/*
 * Pads the stride of the stage's dimension dim up to the next value v with
 * v % factor == offset (TVM's storage_align): with factor 32 and offset 4,
 * the rows of a transposed shared-memory panel start on different banks.
 * The innermost dimension in storage order (stride 1) has no stride to pad.
 */
int kiln_storage_align(kiln_stage *st, int dim, int64_t factor, int64_t offset);
/*
 * Double buffering (software pipelining) of a shared-memory stage computed
 * at a serial loop of its reader: two copies of its buffer; while iteration
 * i computes from one, the panel of iteration i+1 is loaded from global
 * memory into registers and then stored into the other, with one barrier
 * per iteration instead of two (TVM's double_buffer). Checked at lowering:
 * the stage must be in shared scope and fetched at the top of that loop.
 */
int kiln_double_buffer(kiln_stage *st);

/* A stage copying t into scope, read by the given stages instead of t. */
kiln_tensor *kiln_cache_read(kiln_schedule *s, kiln_tensor *t, kiln_scope scope, int nreaders,
                             kiln_stage *const *readers);
/* t's computation moves into a new stage in scope; t becomes a copy of it. */
kiln_tensor *kiln_cache_write(kiln_schedule *s, kiln_tensor *t, kiln_scope scope);
/*
 * Factors the reduction of t over the reduce leaf it: returns a tensor with
 * a new leading axis of extent(it) holding partial results; t then reduces
 * that axis.
 */
kiln_tensor *kiln_rfactor(kiln_schedule *s, kiln_tensor *t, kiln_iter *it);

#ifdef __cplusplus
}
#endif
#endif
