/*
 * kiln operator library: compute declarations (as TVM's TOPI) and their
 * default schedules, plus a registry the CLI and the tests walk.
 *
 * Layouts are NCHW for images and OIHW for convolution weights. Every
 * declaration checks shapes and returns NULL with a message on mismatch.
 */
#ifndef KILN_OPS_H
#define KILN_OPS_H

#include "schedule.h"
#include "target.h"

#ifdef __cplusplus
extern "C" {
#endif

/* C = op(A) @ op(B) for 2-D A, B; op transposes when the flag is set. */
kiln_tensor *kiln_op_matmul(kiln_ctx *ctx, kiln_tensor *A, kiln_tensor *B, int trans_a, int trans_b);
/*
 * A matmul whose B was packed ahead of time (constant weights): Bp is
 * [ceil(N / nb), K, nb] with nb = kiln_matmul_pack_width(N), the panels the
 * default matmul otherwise packs on every call; kiln_matmul_pack fills it
 * from B ([K, N], or [N, K] with trans_b), zeros past N.
 */
kiln_tensor *kiln_op_matmul_prepacked(kiln_ctx *ctx, kiln_tensor *A, kiln_tensor *Bp, int64_t N, int trans_a);
int64_t kiln_matmul_pack_width(int64_t N);
void kiln_matmul_pack(const float *B, int64_t K, int64_t N, int trans_b, float *Bp);
/* The same over a leading batch axis: A [b, m, k], B [b, k, n]. */
kiln_tensor *kiln_op_batch_matmul(kiln_ctx *ctx, kiln_tensor *A, kiln_tensor *B, int trans_a, int trans_b);
/* Y = X W^T + bias: X [m, k], W [n, k], bias [n] or NULL (TVM's dense, ONNX Gemm with transB). */
kiln_tensor *kiln_op_dense(kiln_ctx *ctx, kiln_tensor *X, kiln_tensor *W, kiln_tensor *bias);

typedef struct {
	int64_t stride[2];   /* h, w */
	int64_t pad[4];      /* top, left, bottom, right */
	int64_t dilation[2]; /* h, w */
	int64_t groups;
} kiln_conv2d_attrs;
/* X [n, c, h, w], W [k, c/groups, r, s] -> [n, k, oh, ow]. */
kiln_tensor *kiln_op_conv2d(kiln_ctx *ctx, kiln_tensor *X, kiln_tensor *W, const kiln_conv2d_attrs *a);
/*
 * The same convolution, always in the direct form (kiln_op_conv2d takes a
 * GEMM form for rows under 32 columns and for strides). CPU targets read a
 * strided row with whole-vector loads and shuffles, which makes the direct
 * form the faster one for wide strided rows of few input channels (a stem).
 */
kiln_tensor *kiln_op_conv2d_direct(kiln_ctx *ctx, kiln_tensor *X, kiln_tensor *W, const kiln_conv2d_attrs *a);
/*
 * An ungrouped convolution whose CPU schedule puts output channels in the
 * vector lanes (for rows too short, or strided, for vectors along them). W is
 * [k, c, r, s], or with `packed` the [c, r, s, k] that
 * kiln_conv2d_pack_weights makes of it (a model's constant weights).
 */
kiln_tensor *kiln_op_conv2d_kpacked(kiln_ctx *ctx, kiln_tensor *X, kiln_tensor *W, const kiln_conv2d_attrs *a,
                                    int packed);
void kiln_conv2d_pack_weights(const float *W, int64_t K, int64_t C, int64_t R, int64_t S, float *Wt);
/*
 * A 3x3, stride-1, ungrouped convolution by Winograd's F(m x m, 3x3), m = 4
 * or 2: (m+2)^2 products per m x m output tile and channel pair instead of
 * 9 m^2 (an output that ends inside a tile is computed whole and cropped).
 * F(4x4) saves the most; F(2x2) keeps small images (7x7) in enough tiles.
 * W is [k, c, 3, 3], or with `transformed` the [(m+2)^2, k, c] that
 * kiln_winograd_weights makes of it (a model's constant weights, transformed
 * once). CPU targets (llvm, wasm) schedule it.
 */
kiln_tensor *kiln_op_conv2d_winograd(kiln_ctx *ctx, kiln_tensor *X, kiln_tensor *W, const kiln_conv2d_attrs *a, int m,
                                     int transformed);
/* U = [(m+2)^2, K, C] from W [K, C, 3, 3]; -1 for an m other than 2 and 4. */
int kiln_winograd_weights(const float *W, int64_t K, int64_t C, int m, float *U);
/* X [n, c, h, w], W [c, 1, r, s]: one filter per channel. */
kiln_tensor *kiln_op_depthwise_conv2d(kiln_ctx *ctx, kiln_tensor *X, kiln_tensor *W, const kiln_conv2d_attrs *a);

typedef struct {
	int64_t kernel[2], stride[2], pad[4];
	int count_include_pad; /* average pooling: divide by the full window */
} kiln_pool2d_attrs;
kiln_tensor *kiln_op_max_pool2d(kiln_ctx *ctx, kiln_tensor *X, const kiln_pool2d_attrs *a);
kiln_tensor *kiln_op_avg_pool2d(kiln_ctx *ctx, kiln_tensor *X, const kiln_pool2d_attrs *a);
/* [n, c, h, w] -> [n, c, 1, 1] */
kiln_tensor *kiln_op_global_avg_pool2d(kiln_ctx *ctx, kiln_tensor *X);

/* Numerically stable softmax over one axis (negative counts from the end). */
kiln_tensor *kiln_op_softmax(kiln_ctx *ctx, kiln_tensor *X, int axis);
/* Normalizes over the last axis: gamma, beta [last]. */
kiln_tensor *kiln_op_layer_norm(kiln_ctx *ctx, kiln_tensor *X, kiln_tensor *gamma, kiln_tensor *beta, double eps);
/* Inference batch norm over axis 1 of NCHW: gamma, beta, mean, var [c]. */
kiln_tensor *kiln_op_batch_norm(kiln_ctx *ctx, kiln_tensor *X, kiln_tensor *gamma, kiln_tensor *beta,
                                kiln_tensor *mean, kiln_tensor *var, double eps);

typedef enum { KILN_BIN_ADD, KILN_BIN_SUB, KILN_BIN_MUL, KILN_BIN_DIV, KILN_BIN_MAX, KILN_BIN_MIN, KILN_BIN_POW } kiln_binop;
/* Elementwise with numpy broadcasting. */
kiln_tensor *kiln_op_binary(kiln_ctx *ctx, kiln_binop op, kiln_tensor *A, kiln_tensor *B);

typedef enum {
	KILN_UN_RELU, KILN_UN_CLIP, KILN_UN_SIGMOID, KILN_UN_TANH, KILN_UN_GELU, KILN_UN_EXP, KILN_UN_LOG,
	KILN_UN_SQRT, KILN_UN_ABS, KILN_UN_NEG, KILN_UN_LEAKY_RELU
} kiln_unop;
/* p0, p1: clip's min and max; leaky relu's slope. */
kiln_tensor *kiln_op_unary(kiln_ctx *ctx, kiln_unop op, kiln_tensor *X, double p0, double p1);

kiln_tensor *kiln_op_transpose(kiln_ctx *ctx, kiln_tensor *X, const int *perm);
kiln_tensor *kiln_op_reshape(kiln_ctx *ctx, kiln_tensor *X, int ndim, const int64_t *shape);
/* Constant padding: before[d] / after[d] elements on each side of each dim. */
kiln_tensor *kiln_op_pad(kiln_ctx *ctx, kiln_tensor *X, const int64_t *before, const int64_t *after, double value);
kiln_tensor *kiln_op_concat(kiln_ctx *ctx, int n, kiln_tensor *const *xs, int axis);

/*
 * The default CPU schedule for the tensors an op declaration returned:
 * tiled for cache, vectorized along the innermost contiguous axis, parallel
 * on the outer axis. Walks every stage the outputs depend on.
 */
kiln_schedule *kiln_schedule_cpu(kiln_ctx *ctx, int nout, kiln_tensor *const *outs);
/* The same sized for a described CPU (wasm: 128-bit vectors, 16 registers). */
kiln_schedule *kiln_schedule_cpu_for(kiln_ctx *ctx, const kiln_target *t, int nout, kiln_tensor *const *outs);
/*
 * The knobs of the CPU schedules' tiled reductions (matmul, conv, pooling,
 * any tiled reduction), each 0 for the default the target gives: rows of
 * the register block and vectors of its columns; how far the innermost
 * reduction loop is unrolled (a divisor of it); order 1 puts the column
 * blocks outside the row blocks, 2 the rows outside the columns; tile
 * groups the outer of the two, tile blocks at a time, outside the inner
 * one, so the inner one's operand stays in cache across them (a divisor of
 * the outer blocks). What a tuner searches (include/kiln/tune.h).
 */
typedef struct kiln_cpu_config {
	int rows, vecs;
	int unroll, tile, order;
	/* GPU templates only (0: the default): stages 2 double-buffers the
	 * shared-memory panels, 1 keeps one copy; pad 1 pads panel rows that
	 * are a whole number of banks by one float4, 2 leaves them; split 1
	 * never splits the reduction, N >= 2 splits it into N parts (split-K:
	 * partial sums a second kernel adds), 0 as the default decides (see
	 * kiln_schedule_gpu_config) */
	int stages, pad, split;
} kiln_cpu_config;
kiln_schedule *kiln_schedule_cpu_config(kiln_ctx *ctx, const kiln_target *t, const kiln_cpu_config *cfg, int nout,
                                        kiln_tensor *const *outs);
/* The default schedule for GPU-style targets (opencl): every stage a kernel,
 * threads bound to output elements; matmul-shaped stages in register tiles
 * with double-buffered shared panels sized to fit any target's shared memory
 * (kiln_schedule_for sizes them to the target's own). */
kiln_schedule *kiln_schedule_gpu(kiln_ctx *ctx, int nout, kiln_tensor *const *outs);
/*
 * The same with a tuner's configuration for its matmul template (opencl and
 * webgpu on a real GPU), the five knobs read as: rows: output rows per
 * thread; vecs: float4s of columns per thread; unroll: depth of the k panel
 * staged in shared memory; tile: threads per side of the block; order 2
 * deals a thread's float4s a block-width apart (virtual threads), 1 keeps
 * them together; stages 2 double-buffers the shared panels (1: one copy);
 * pad 1 makes each panel row of a whole number of banks (32 words) a float4
 * longer (2: not). 0: the default, sized from the shape and the target's
 * shared memory. Window reductions (direct and depthwise convolutions,
 * pools) read rows (output channels of a convolution, else output rows),
 * vecs and tile only, as a register tile per thread; the other knobs must
 * keep their first value (unroll 4, order, stages and pad 1, split 0).
 */
kiln_schedule *kiln_schedule_gpu_config(kiln_ctx *ctx, const kiln_cpu_config *cfg, int nout, kiln_tensor *const *outs);
/* The template of target t (CPU, GPU or WebGL, above) under cfg. */
kiln_schedule *kiln_schedule_template(kiln_ctx *ctx, const kiln_target *t, const kiln_cpu_config *cfg, int nout,
                                      kiln_tensor *const *outs);
/* For GPUs emulated on a CPU (SwiftShader, lavapipe; WebGPU's "webgpu-cpu"):
 * no shared memory or barriers, a 4x4 register tile per thread for matmuls. */
kiln_schedule *kiln_schedule_gpu_emulated(kiln_ctx *ctx, int nout, kiln_tensor *const *outs);
/* The default schedule for WebGL2 (webgl): one fragment per output element, or
 * per element of 4 blocks of a large reduction whose blocks share a read. */
kiln_schedule *kiln_schedule_webgl(kiln_ctx *ctx, int nout, kiln_tensor *const *outs);
/* WebGL2 with RGBA packing (4 elements per texel and per fragment): a schedule
 * choice for stages whose innermost extent is a multiple of 4. */
kiln_schedule *kiln_schedule_webgl_packed(kiln_ctx *ctx, int nout, kiln_tensor *const *outs);
/*
 * The WebGL template under a tuner's configuration, the knobs read as: vecs:
 * elements per texel and fragment along the innermost axis, 1 (R32F) or 4
 * (RGBA32F, as _packed); rows: blocks of the output per fragment, 1-8, each
 * drawn to a render target of its own and copied into place (a matmul's
 * fragment computes rows x vecs outputs, reusing each texel it reads); unroll:
 * the innermost reduction unrolled by 1-64. Rows and unroll apply to stages
 * with a reduction; 0 is 1, except rows 0: the default's choice (4 where the
 * blocks share a read and 1024 fragments remain, else 1).
 */
kiln_schedule *kiln_schedule_webgl_config(kiln_ctx *ctx, const kiln_cpu_config *cfg, int nout,
                                          kiln_tensor *const *outs);
/* The default schedule for a target name ("llvm", "wasm", "opencl", "webgl", "webgpu",
 * "webgpu-cpu"). */
kiln_schedule *kiln_schedule_for(kiln_ctx *ctx, const char *target, int nout, kiln_tensor *const *outs);

/* ---- the registry: operators by name, for tools and tests ---- */

#define KILN_OP_MAX_ARGS 8
typedef struct {
	int nargs, nin;                      /* args = inputs, then outputs */
	kiln_tensor *args[KILN_OP_MAX_ARGS];
	double flops;                        /* floating-point operations of one call */
} kiln_op_inst;

/*
 * One attribute an operator takes from "key=value" text: a number in
 * [lo, hi] (whole when integer), or with list, whole numbers in [lo, hi]
 * joined by 'x' (at most KILN_MAX_DIMS). A spec list ends with a NULL key.
 */
typedef struct {
	const char *key;
	double lo, hi;
	int integer, list;
} kiln_attr_spec;

typedef struct {
	const char *name;
	const char *summary;
	const char *shape_help; /* what --shape means, e.g. "M,N,K" */
	int nshape;             /* how many numbers --shape takes */
	const char *attr_help;  /* key=value attributes it takes, or "" */
	const int64_t *example; /* a small shape the tests use (zero-terminated) */
	/* Declares the op from n --shape numbers and "k=v,k=v" attributes. */
	int (*declare)(kiln_ctx *ctx, int n, const int64_t *shape, const char *attrs, kiln_op_inst *out);
	const kiln_attr_spec *attrs; /* what attr_help names, checked before declare */
} kiln_op_info;

int kiln_num_ops(void);
const kiln_op_info *kiln_op_at(int i);
const kiln_op_info *kiln_op_find(const char *name);
/* Checks the count and sign of the shape numbers and every attribute against
 * the op's specs (unknown keys, text that is not a number, values out of
 * range are errors naming the attribute), then declares the op. */
int kiln_op_declare(kiln_ctx *ctx, const kiln_op_info *op, int n, const int64_t *shape, const char *attrs,
                    kiln_op_inst *out);
/* The number of entries of op->example. */
int kiln_op_example_rank(const kiln_op_info *op);

#ifdef __cplusplus
}
#endif
#endif
