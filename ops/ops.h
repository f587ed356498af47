/*
 * ops.h — helpers shared by the operator declarations and schedules.
 */
#ifndef KILN_OPS_INTERNAL_H
#define KILN_OPS_INTERNAL_H

#include "ir/ir.h"
#include "kiln/ops.h"
#include "schedule/schedule.h"

/* Tags name the operator kind that made a stage; the default schedules dispatch on them. */
#define TAG_INJECTIVE "injective"
#define TAG_PACK "pack"
#define TAG_MATMUL "matmul"
#define TAG_CONV "conv2d"
#define TAG_CONV_KLANES "conv2d_klanes" /* output channels in the vector lanes */
#define TAG_SPATIAL_REDUCE "spatial_reduce" /* depthwise conv, pooling */
#define TAG_ROW_REDUCE "row_reduce"         /* reductions over one row: softmax, layer norm stats */
#define TAG_ROW_OUTPUT "row_output"         /* the output of a row-wise op */
#define TAG_GLOBAL_POOL "global_pool"
#define TAG_WINO_WEIGHTS "winograd_weights" /* G g G^T, per call (the operator-level form) */
#define TAG_WINO_TILES "winograd_tiles"   /* B^T d of one row of input tiles */
#define TAG_WINO_INPUT "winograd_input"   /* B^T d B */
#define TAG_WINO_OUTPUT "winograd_output" /* A^T M A */

kiln_tensor *op_tag(kiln_tensor *t, const char *tag);

/* ---- convolutions (nn.c), shared with winograd.c ---- */
typedef struct {
	kiln_tensor *X, *W, *Xp, *Wt, *Yt;
	kiln_iter *rc, *r, *s;
	kiln_conv2d_attrs a;
	int64_t cpg, kpg; /* channels per group in and out */
	double value;     /* padding value */
	int64_t pt, pl;
	kiln_tensor *Xpad; /* a strided depthwise convolution: the padded input its phases read */
} conv_args;
/* The checks and attributes every convolution shares (wdim: the weight's rank); NULL after an error. */
conv_args *op_conv_begin(kiln_ctx *ctx, const char *op, kiln_tensor *X, kiln_tensor *W, const kiln_conv2d_attrs *attrs,
                         int wdim);
/* X padded by pad (top, left, bottom, right) with c->value: a compute, or X itself without padding. */
kiln_tensor *op_pad_spatial(kiln_ctx *ctx, conv_args *c, const int64_t *pad);
/* The stage's op has this tag. */
bool op_is(const sch_stage *st, const char *tag);
/* p has readers, and none of them reduces (inlined, p is computed for each of their reads of it, not per step of a reduction). */
bool op_readers_pure(sch_schedule *s, sch_stage *p);
/* x as a float of type t (for constants in a body). */
kiln_expr *op_const(kiln_ctx *ctx, kiln_dtype t, double v);

#endif
