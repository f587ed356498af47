/*
 * kiln tensor expressions: declare an operator once.
 *
 *   kiln_ctx *ctx = kiln_ctx_new();
 *   kiln_tensor *A = kiln_placeholder(ctx, "A", 2, (int64_t[]){M, K}, KILN_F32);
 *   kiln_iter *k = kiln_reduce_axis(ctx, K, "k");
 *   C[i, j] = sum_k A[i, k] * B[k, j]   -- a compute whose body a callback builds
 *
 * Every object lives in the context's arena and dies with kiln_ctx_free.
 * Constructors check types; on a user error they return NULL and leave a
 * message in kiln_error(ctx). NULL operands propagate, so a chain of
 * constructors can be checked once at the end.
 */
#ifndef KILN_TE_H
#define KILN_TE_H

#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ir_ctx kiln_ctx;
typedef struct ir_expr kiln_expr;
typedef struct ir_tensor kiln_tensor;
typedef struct ir_iter kiln_iter;

#define KILN_DT(c, b) ((kiln_dtype){(c), (b), 1})
#define KILN_F16 KILN_DT(KILN_FLOAT, 16)
#define KILN_F32 KILN_DT(KILN_FLOAT, 32)
#define KILN_F64 KILN_DT(KILN_FLOAT, 64)
#define KILN_I8 KILN_DT(KILN_INT, 8)
#define KILN_I32 KILN_DT(KILN_INT, 32)
#define KILN_I64 KILN_DT(KILN_INT, 64)
#define KILN_U8 KILN_DT(KILN_UINT, 8)
#define KILN_BOOLT KILN_DT(KILN_BOOL, 1)

kiln_ctx *kiln_ctx_new(void);
void kiln_ctx_free(kiln_ctx *ctx);
/*
 * A point in the context's arena, and a release back to it: everything
 * allocated since the mark is freed. For a tuner that schedules and lowers
 * thousands of candidates of one declaration: mark after declaring, release
 * after each candidate. Nothing made before the mark may keep a pointer to
 * what was made after it (schedules and lowering do not change the tensors
 * they start from); the error message survives.
 */
typedef struct {
	void *chunk;
	char *cur, *end;
} kiln_ctx_mark;
kiln_ctx_mark kiln_ctx_save(kiln_ctx *ctx);
void kiln_ctx_release(kiln_ctx *ctx, kiln_ctx_mark mark);
/* The first error since the last kiln_clear_error ("" if none). */
const char *kiln_error(const kiln_ctx *ctx);
void kiln_clear_error(kiln_ctx *ctx);

/* Immediates. kiln_int is int32 (index arithmetic widens to int64 as needed). */
kiln_expr *kiln_int(kiln_ctx *ctx, int64_t v);
kiln_expr *kiln_float(kiln_ctx *ctx, double v);
kiln_expr *kiln_const(kiln_ctx *ctx, kiln_dtype t, double v);
kiln_expr *kiln_var(kiln_ctx *ctx, const char *name, kiln_dtype t);

/* Arithmetic. Integer div/mod round toward minus infinity (floor). */
kiln_expr *kiln_add(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b);
kiln_expr *kiln_sub(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b);
kiln_expr *kiln_mul(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b);
kiln_expr *kiln_div(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b);
kiln_expr *kiln_mod(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b);
kiln_expr *kiln_min(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b);
kiln_expr *kiln_max(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b);
kiln_expr *kiln_eq(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b);
kiln_expr *kiln_ne(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b);
kiln_expr *kiln_lt(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b);
kiln_expr *kiln_le(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b);
kiln_expr *kiln_gt(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b);
kiln_expr *kiln_ge(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b);
kiln_expr *kiln_and(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b);
kiln_expr *kiln_or(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b);
kiln_expr *kiln_not(kiln_ctx *ctx, kiln_expr *a);
/*
 * cond ? t : f. Bound inference reads each side under the condition that
 * chooses it, so select(i > 0, X[i-1], 0) is a valid read of X. select may
 * evaluate both sides (it vectorizes); where a side is in bounds only under
 * its condition, lowering makes it an if_then_else.
 */
kiln_expr *kiln_select(kiln_ctx *ctx, kiln_expr *cond, kiln_expr *t, kiln_expr *f);
/* The same, evaluating only the side the (scalar) condition takes, on every target. */
kiln_expr *kiln_if_then_else(kiln_ctx *ctx, kiln_expr *cond, kiln_expr *t, kiln_expr *f);
kiln_expr *kiln_cast(kiln_ctx *ctx, kiln_dtype t, kiln_expr *a);

/* Math intrinsics on floats. */
typedef enum {
	KILN_EXP, KILN_LOG, KILN_SQRT, KILN_RSQRT, KILN_TANH, KILN_SIGMOID, KILN_ERF,
	KILN_POW, KILN_ABS, KILN_FLOOR, KILN_CEIL, KILN_ROUND,
	KILN_NUM_INTRINSICS
} kiln_intrinsic;
kiln_expr *kiln_call(kiln_ctx *ctx, kiln_intrinsic op, kiln_expr *a, kiln_expr *b /* POW only */);
const char *kiln_intrinsic_name(kiln_intrinsic op);

/* Tensors. */
kiln_tensor *kiln_placeholder(kiln_ctx *ctx, const char *name, int ndim, const int64_t *shape, kiln_dtype t);

/* Builds the body of a compute from its index variables (one per output dim). */
typedef kiln_expr *(*kiln_compute_fn)(kiln_ctx *ctx, kiln_expr *const *idx, void *user);
kiln_tensor *kiln_compute(kiln_ctx *ctx, const char *name, int ndim, const int64_t *shape,
                          kiln_compute_fn fn, void *user);
/* The same with the output axes named (names[d] NULL: the default i, j, l, ...).
 * Default names never repeat a name the body uses for another variable. */
kiln_tensor *kiln_compute_named(kiln_ctx *ctx, const char *name, int ndim, const int64_t *shape,
                                const char *const *names, kiln_compute_fn fn, void *user);
/*
 * Without a callback: declare the output axes first, build the body from
 * their variables (kiln_iter_var), then the compute over them:
 *   kiln_iter *i = kiln_axis(ctx, 129, "i"), *j = kiln_reduce_axis(ctx, 1000, "j");
 *   kiln_tensor *Y = kiln_compute_expr(ctx, "Y", 1, &i,
 *       kiln_sum(ctx, KILN_READ(ctx, X, kiln_iter_var(i), kiln_iter_var(j)), 1, &j));
 * The compute gets axes of its own with the same names (kiln_stage_axis).
 */
kiln_iter *kiln_axis(kiln_ctx *ctx, int64_t extent, const char *name);
kiln_tensor *kiln_compute_expr(kiln_ctx *ctx, const char *name, int naxis, kiln_iter *const *axes, kiln_expr *body);
/* Several outputs over one iteration space: fn fills bodies[0..nout). */
typedef int (*kiln_compute_multi_fn)(kiln_ctx *ctx, kiln_expr *const *idx, kiln_expr **bodies, void *user);
int kiln_compute_multi(kiln_ctx *ctx, const char *name, int ndim, const int64_t *shape, int nout,
                       kiln_compute_multi_fn fn, void *user, kiln_tensor **outs);

/* t[idx...]; idx has exactly ndim(t) integer expressions. */
kiln_expr *kiln_read(kiln_ctx *ctx, kiln_tensor *t, kiln_expr *const *idx);
/* The same with the index count, checked against t's rank (what KILN_READ passes). */
kiln_expr *kiln_read_n(kiln_ctx *ctx, kiln_tensor *t, int n, kiln_expr *const *idx);
#define KILN_READ(ctx, t, ...)                                                                                     \
	kiln_read_n((ctx), (t), (int)(sizeof((kiln_expr *[]){__VA_ARGS__}) / sizeof(kiln_expr *)),                    \
	            (kiln_expr *[]){__VA_ARGS__})

/* Reductions. */
typedef enum { KILN_SUM, KILN_RMAX, KILN_RMIN, KILN_PROD } kiln_reduce_op;
kiln_iter *kiln_reduce_axis(kiln_ctx *ctx, int64_t extent, const char *name);
/* A reduction over naxis axes; cond (may be NULL) filters iterations. */
kiln_expr *kiln_reduce(kiln_ctx *ctx, kiln_reduce_op op, kiln_expr *src, int naxis, kiln_iter *const *axes,
                       kiln_expr *cond);
kiln_expr *kiln_sum(kiln_ctx *ctx, kiln_expr *src, int naxis, kiln_iter *const *axes);
kiln_expr *kiln_iter_var(kiln_iter *it);
int64_t kiln_iter_extent(const kiln_iter *it);
const char *kiln_iter_name(const kiln_iter *it);

const char *kiln_tensor_name(const kiln_tensor *t);
int kiln_tensor_ndim(const kiln_tensor *t);
const int64_t *kiln_tensor_shape(const kiln_tensor *t);
kiln_dtype kiln_tensor_dtype(const kiln_tensor *t);
/* Elements times reduction steps per element (for FLOP estimates). */
double kiln_tensor_work(const kiln_tensor *t);
/* An input declared by kiln_placeholder (versus a compute). */
int kiln_tensor_is_placeholder(const kiln_tensor *t);

/* Prints an expression (for debugging) into buf; returns buf. */
char *kiln_expr_str(const kiln_expr *e, char *buf, size_t n);

/*
 * The oracle: evaluates t from its inputs directly (double precision, no
 * schedule). inputs[i] holds placeholder ins[i]; out receives t. Returns 0.
 */
int kiln_eval(kiln_ctx *ctx, kiln_tensor *t, int nin, kiln_tensor *const *ins, kiln_array *const *inputs,
              kiln_array *out);

#ifdef __cplusplus
}
#endif
#endif
