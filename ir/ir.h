/*
 * ir.h — the core types of kiln: data types, expressions, statements,
 * tensors and the context that owns them.
 *
 * Nodes are small immutable tagged unions allocated in the context's arena.
 * Each has one constructor (ir/expr.c, ir/stmt.c) that checks its operand
 * types. Variables are compared by identity (pointer), never by name.
 */
#ifndef KILN_IR_H
#define KILN_IR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "kiln/build.h"
#include "kiln/te.h"

typedef kiln_dtype ir_type;
typedef struct ir_expr ir_expr;
typedef struct ir_stmt ir_stmt;
typedef struct ir_tensor ir_tensor;
typedef struct ir_op ir_op;
typedef struct ir_iter ir_iter;
typedef struct ir_buffer ir_buffer;
typedef struct ir_func ir_func;

/* Internal errors (bugs), kept apart from user errors: abort naming file:line. */
#define ir_assert(c) ((c) ? (void)0 : ir_internal_error(__FILE__, __LINE__, #c))
_Noreturn void ir_internal_error(const char *file, int line, const char *what);

/* ---- context: arena + first error ---- */

struct ir_ctx {
	struct ir_chunk *chunks;
	char *cur, *end;
	char err[1024];
	int nerr;
	int next_id; /* unique suffixes for generated names */
};

void *ir_alloc(kiln_ctx *ctx, size_t n);
char *ir_strdup(kiln_ctx *ctx, const char *s);
char *ir_fmt(kiln_ctx *ctx, const char *fmt, ...);
/* Records a user error (the first one wins) and returns -1. */
int ir_error(kiln_ctx *ctx, const char *fmt, ...);

/* ---- types ---- */

static inline ir_type ir_t(int code, int bits, int lanes) { return (ir_type){(uint8_t)code, (uint8_t)bits, (uint16_t)lanes}; }
#define IR_I32 ir_t(KILN_INT, 32, 1)
#define IR_I64 ir_t(KILN_INT, 64, 1)
#define IR_F32 ir_t(KILN_FLOAT, 32, 1)
#define IR_F64 ir_t(KILN_FLOAT, 64, 1)
#define IR_BOOL ir_t(KILN_BOOL, 1, 1)
#define IR_HANDLE ir_t(KILN_HANDLE, 64, 1)
static inline bool ir_type_eq(ir_type a, ir_type b) { return a.code == b.code && a.bits == b.bits && a.lanes == b.lanes; }
static inline ir_type ir_with_lanes(ir_type t, int lanes) { t.lanes = (uint16_t)lanes; return t; }
static inline ir_type ir_elem(ir_type t) { return ir_with_lanes(t, 1); }
static inline bool ir_is_float(ir_type t) { return t.code == KILN_FLOAT; }
static inline bool ir_is_int(ir_type t) { return t.code == KILN_INT || t.code == KILN_UINT; }
static inline bool ir_is_bool(ir_type t) { return t.code == KILN_BOOL; }

/* ---- expressions ---- */

typedef enum {
	IR_INT_IMM, IR_FLOAT_IMM, IR_VAR,
	/* binary, in the order the printer and simplifier use */
	IR_ADD, IR_SUB, IR_MUL, IR_DIV, IR_MOD, IR_MIN, IR_MAX,
	IR_EQ, IR_NE, IR_LT, IR_LE, IR_GT, IR_GE, IR_AND, IR_OR,
	IR_NOT, IR_SELECT,
	IR_IF_THEN_ELSE, /* select that evaluates only the taken branch; lifted into IR_IF by lift_ite.c */
	IR_CAST, IR_CALL,
	IR_READ,      /* tensor[idx...] before storage flattening */
	IR_LOAD,      /* buffer[index] after flattening; index may be a vector */
	IR_RAMP,      /* base + stride * [0, lanes) */
	IR_BROADCAST, /* value repeated lanes times */
	IR_REDUCE,    /* reduction; only at the top of a compute body */
	IR_LET,       /* let var = value in body */
	IR_NUM_EXPR_KINDS
} ir_expr_kind;

static inline bool ir_is_binary(int k) { return k >= IR_ADD && k <= IR_OR; }
static inline bool ir_is_compare(int k) { return k >= IR_EQ && k <= IR_GE; }

/* One iteration variable of an op or a schedule: var over [min, min+extent). */
struct ir_iter {
	ir_expr *var;
	int64_t min, extent;
	bool reduce; /* a reduction axis (versus data-parallel) */
};

struct ir_expr {
	uint8_t kind;
	ir_type type;
	union {
		int64_t i;                /* IR_INT_IMM (also bool) */
		double f;                 /* IR_FLOAT_IMM */
		struct { const char *name; int id; const ir_iter *iter; } var; /* iter: the axis it is the variable of */
		struct { ir_expr *a, *b; } bin;             /* binary ops, IR_NOT (a) and IR_CAST (a) */
		struct { ir_expr *cond, *t, *f; } sel;
		struct { kiln_intrinsic op; ir_expr *a, *b; } call;
		struct { ir_tensor *t; ir_expr **idx; } read;
		struct { ir_buffer *buf; ir_expr *index; } load;
		struct { ir_expr *base, *stride; } ramp;  /* lanes = type.lanes */
		struct { ir_expr *value; } bcast;
		struct { kiln_reduce_op op; ir_expr *src; int naxis; ir_iter **axis; ir_expr *cond; } red;
		struct { ir_expr *var, *value, *body; } let;
	};
};

ir_expr *ir_int(kiln_ctx *ctx, ir_type t, int64_t v);
ir_expr *ir_float(kiln_ctx *ctx, ir_type t, double v);
ir_expr *ir_var(kiln_ctx *ctx, const char *name, ir_type t);
ir_expr *ir_binary(kiln_ctx *ctx, int kind, ir_expr *a, ir_expr *b);
ir_expr *ir_not(kiln_ctx *ctx, ir_expr *a);
ir_expr *ir_select(kiln_ctx *ctx, ir_expr *c, ir_expr *t, ir_expr *f);
/* kind: IR_SELECT, or IR_IF_THEN_ELSE (whose condition must be scalar) */
ir_expr *ir_select_kind(kiln_ctx *ctx, int kind, ir_expr *c, ir_expr *t, ir_expr *f);
static inline bool ir_is_select(int k) { return k == IR_SELECT || k == IR_IF_THEN_ELSE; }
ir_expr *ir_cast(kiln_ctx *ctx, ir_type t, ir_expr *a);
ir_expr *ir_call(kiln_ctx *ctx, kiln_intrinsic op, ir_expr *a, ir_expr *b);
ir_expr *ir_read(kiln_ctx *ctx, ir_tensor *t, ir_expr *const *idx);
ir_expr *ir_load(kiln_ctx *ctx, ir_buffer *buf, ir_expr *index);
ir_expr *ir_ramp(kiln_ctx *ctx, ir_expr *base, ir_expr *stride, int lanes);
ir_expr *ir_broadcast(kiln_ctx *ctx, ir_expr *v, int lanes);
ir_expr *ir_reduce(kiln_ctx *ctx, kiln_reduce_op op, ir_expr *src, int naxis, ir_iter *const *axes, ir_expr *cond);
ir_expr *ir_let(kiln_ctx *ctx, ir_expr *var, ir_expr *value, ir_expr *body);
ir_iter *ir_iter_new(kiln_ctx *ctx, const char *name, int64_t min, int64_t extent, bool reduce);

/* Shorthands for index arithmetic (int64 unless both sides are narrower). */
#define ir_add(c, a, b) ir_binary((c), IR_ADD, (a), (b))
#define ir_sub(c, a, b) ir_binary((c), IR_SUB, (a), (b))
#define ir_mul(c, a, b) ir_binary((c), IR_MUL, (a), (b))
#define ir_div(c, a, b) ir_binary((c), IR_DIV, (a), (b))
#define ir_mod(c, a, b) ir_binary((c), IR_MOD, (a), (b))
#define ir_lt(c, a, b) ir_binary((c), IR_LT, (a), (b))
#define ir_i64(c, v) ir_int((c), IR_I64, (v))

static inline bool ir_is_const_int(const ir_expr *e, int64_t *v)
{
	if (e && e->kind == IR_INT_IMM) {
		if (v)
			*v = e->i;
		return true;
	}
	return false;
}
/* The identity element of a reduction in type t. */
ir_expr *ir_reduce_identity(kiln_ctx *ctx, kiln_reduce_op op, ir_type t);
/* combine(acc, x) of a reduction. */
ir_expr *ir_reduce_combine(kiln_ctx *ctx, kiln_reduce_op op, ir_expr *acc, ir_expr *x);
bool ir_expr_equal(const ir_expr *a, const ir_expr *b);

/* ---- tensors and ops ---- */

typedef enum { IR_OP_PLACEHOLDER, IR_OP_COMPUTE } ir_op_kind;

struct ir_op {
	ir_op_kind kind;
	const char *name;
	int naxis;
	ir_iter **axis;     /* data-parallel axes, one per output dim */
	int nreduce;
	ir_iter **reduce;   /* reduction axes of the body (all bodies share them) */
	int nout;
	ir_expr **body;     /* one per output */
	ir_tensor **outs;
	const char *tag;    /* what kind of operator made it (ops/), for default schedules */
	int64_t attr[8];    /* op-specific numbers a default schedule needs (e.g. the pack width) */
};

struct ir_tensor {
	const char *name;
	ir_type type;
	int ndim;
	int64_t shape[KILN_MAX_DIMS];
	ir_op *op;
	int value_index; /* which output of op */
	kiln_ctx *ctx;   /* whose arena holds it: reads from another context are refused */
};

/* Makes a compute op and its tensors from ready bodies over the given axes. */
ir_op *ir_compute_op(kiln_ctx *ctx, const char *name, int naxis, ir_iter **axis, int nout, ir_expr **body,
                     const char *const *out_names);
/* The tensors an expression reads (each once), appended to *list. */
int ir_expr_tensors(const ir_expr *e, ir_tensor ***list, int *n, int *cap);

/* ---- buffers (after storage flattening) ---- */

struct ir_buffer {
	const char *name;
	ir_type elem;
	int ndim;
	int64_t shape[KILN_MAX_DIMS];
	int64_t size;     /* elements */
	kiln_scope scope;
	ir_expr *data;    /* handle var bound to the base pointer */
	ir_tensor *tensor; /* the tensor it stores, or NULL */
	bool double_buffer; /* a shared stage kiln_double_buffer asked for (schedule/pipeline.c) */
};

ir_buffer *ir_buffer_new(kiln_ctx *ctx, const char *name, ir_type elem, int ndim, const int64_t *shape, kiln_scope scope);

/* ---- statements ---- */

typedef enum { IR_FOR_SERIAL, IR_FOR_PARALLEL, IR_FOR_VECTORIZED, IR_FOR_UNROLLED, IR_FOR_THREAD } ir_for_kind;

typedef enum {
	IR_FOR, IR_STORE, IR_PROVIDE, IR_REALIZE, IR_ALLOCATE, IR_IF, IR_SEQ, IR_LET_STMT, IR_BARRIER, IR_EVAL,
	IR_NUM_STMT_KINDS
} ir_stmt_kind;

struct ir_stmt {
	uint8_t kind;
	union {
		struct { ir_expr *var, *min, *extent; ir_for_kind kind; kiln_thread thread; ir_stmt *body; } loop;
		struct { ir_buffer *buf; ir_expr *index, *value; } store;
		struct { ir_tensor *t; ir_expr **idx; ir_expr *value; } provide;
		/* Realize tensor t over [min[d], min[d]+extent[d]) in scope for body. */
		struct { ir_tensor *t; ir_expr **min; int64_t *extent; kiln_scope scope; ir_stmt *body; } realize;
		struct { ir_buffer *buf; ir_stmt *body; } alloc;
		struct { ir_expr *cond; ir_stmt *then, *els; } ifs;
		struct { int n; ir_stmt **s; } seq;
		struct { ir_expr *var, *value; ir_stmt *body; } let;
		struct { kiln_scope scope; } barrier;
		struct { ir_expr *e; } eval;
	};
};

ir_stmt *ir_for(kiln_ctx *ctx, ir_expr *var, ir_expr *min, ir_expr *extent, ir_for_kind kind, kiln_thread thread,
                ir_stmt *body);
ir_stmt *ir_store(kiln_ctx *ctx, ir_buffer *buf, ir_expr *index, ir_expr *value);
ir_stmt *ir_provide(kiln_ctx *ctx, ir_tensor *t, ir_expr *const *idx, ir_expr *value);
ir_stmt *ir_realize(kiln_ctx *ctx, ir_tensor *t, ir_expr *const *min, const int64_t *extent, kiln_scope scope,
                    ir_stmt *body);
ir_stmt *ir_allocate(kiln_ctx *ctx, ir_buffer *buf, ir_stmt *body);
ir_stmt *ir_if(kiln_ctx *ctx, ir_expr *cond, ir_stmt *then, ir_stmt *els);
/* A sequence; NULL items are skipped and a single item is returned as is. */
ir_stmt *ir_seq(kiln_ctx *ctx, int n, ir_stmt *const *s);
ir_stmt *ir_seq2(kiln_ctx *ctx, ir_stmt *a, ir_stmt *b);
ir_stmt *ir_let_stmt(kiln_ctx *ctx, ir_expr *var, ir_expr *value, ir_stmt *body);
ir_stmt *ir_barrier(kiln_ctx *ctx, kiln_scope scope);
ir_stmt *ir_eval(kiln_ctx *ctx, ir_expr *e);

/* ---- a lowered function ---- */

struct ir_func {
	const char *name;
	int nargs;
	ir_buffer **args;
	bool *is_output;
	ir_stmt *body;
	kiln_ctx *ctx;
};

/* ---- printing (ir/print.c) ---- */

void ir_print_expr(FILE *f, const ir_expr *e);
void ir_print_stmt(FILE *f, const ir_stmt *s, int indent);
/* "blockIdx.x", "threadIdx.y", "vthread.x", ... ("" for none). */
const char *ir_thread_name(kiln_thread t);
/* Prints into an arena string. */
char *ir_expr_to_str(kiln_ctx *ctx, const ir_expr *e);
char *ir_stmt_to_str(kiln_ctx *ctx, const ir_stmt *s);
const char *ir_type_str(ir_type t, char *buf);

#endif
