/*
 * expr.c — the context arena, and one checking constructor per expression
 * node, plus the public kiln_* wrappers of the tensor-expression API.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

struct ir_chunk {
	struct ir_chunk *next;
	max_align_t data[];
};

_Noreturn void ir_internal_error(const char *file, int line, const char *what)
{
	fprintf(stderr, "kiln internal error at %s:%d: %s\n", file, line, what);
	abort();
}

kiln_ctx *kiln_ctx_new(void)
{
	kiln_ctx *ctx = calloc(1, sizeof *ctx);
	return ctx;
}

void kiln_ctx_free(kiln_ctx *ctx)
{
	if (!ctx)
		return;
	struct ir_chunk *c = ctx->chunks;
	while (c) {
		struct ir_chunk *n = c->next;
		free(c);
		c = n;
	}
	free(ctx);
}

kiln_ctx_mark kiln_ctx_save(kiln_ctx *ctx) { return (kiln_ctx_mark){ctx->chunks, ctx->cur, ctx->end}; }

void kiln_ctx_release(kiln_ctx *ctx, kiln_ctx_mark mark)
{
	/* chunks are a stack, newest first: free down to the marked one, then resume inside it */
	while (ctx->chunks && ctx->chunks != mark.chunk) {
		struct ir_chunk *n = ctx->chunks->next;
		free(ctx->chunks);
		ctx->chunks = n;
	}
	ctx->cur = mark.cur;
	ctx->end = mark.end;
}

/* Bump allocation in 64 KiB chunks; big requests get a chunk of their own. */
void *ir_alloc(kiln_ctx *ctx, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if ((size_t)(ctx->end - ctx->cur) < n) {
		size_t sz = n > 65536 ? n : 65536;
		struct ir_chunk *c = malloc(sizeof *c + sz);
		if (!c)
			ir_internal_error(__FILE__, __LINE__, "out of memory");
		c->next = ctx->chunks;
		ctx->chunks = c;
		ctx->cur = (char *)c->data;
		ctx->end = ctx->cur + sz;
	}
	void *p = ctx->cur;
	ctx->cur += n;
	memset(p, 0, n);
	return p;
}

char *ir_strdup(kiln_ctx *ctx, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = ir_alloc(ctx, n);
	memcpy(p, s, n);
	return p;
}

char *ir_fmt(kiln_ctx *ctx, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return ir_strdup(ctx, buf);
}

int ir_error(kiln_ctx *ctx, const char *fmt, ...)
{
	if (ctx->nerr++ == 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(ctx->err, sizeof ctx->err, fmt, ap);
		va_end(ap);
	}
	return -1;
}

const char *kiln_error(const kiln_ctx *ctx) { return ctx->err; }

void kiln_clear_error(kiln_ctx *ctx)
{
	ctx->err[0] = 0;
	ctx->nerr = 0;
}

static ir_expr *new_expr(kiln_ctx *ctx, int kind, ir_type t)
{
	ir_expr *e = ir_alloc(ctx, sizeof *e);
	e->kind = (uint8_t)kind;
	e->type = t;
	return e;
}

ir_expr *ir_int(kiln_ctx *ctx, ir_type t, int64_t v)
{
	ir_expr *e = new_expr(ctx, IR_INT_IMM, t);
	e->i = v;
	return e;
}

ir_expr *ir_float(kiln_ctx *ctx, ir_type t, double v)
{
	ir_expr *e = new_expr(ctx, IR_FLOAT_IMM, t);
	e->f = v;
	return e;
}

ir_expr *ir_var(kiln_ctx *ctx, const char *name, ir_type t)
{
	ir_expr *e = new_expr(ctx, IR_VAR, t);
	e->var.name = ir_strdup(ctx, name);
	e->var.id = ++ctx->next_id;
	return e;
}

static const char *op_sym[] = {
	[IR_ADD] = "+", [IR_SUB] = "-", [IR_MUL] = "*", [IR_DIV] = "/", [IR_MOD] = "%",
	[IR_MIN] = "min", [IR_MAX] = "max", [IR_EQ] = "==", [IR_NE] = "!=", [IR_LT] = "<",
	[IR_LE] = "<=", [IR_GT] = ">", [IR_GE] = ">=", [IR_AND] = "&&", [IR_OR] = "||",
};

/*
 * Makes a and b agree on a type: integers widen to the wider one (index
 * arithmetic mixes int32 and int64), an integer immediate takes a float
 * operand's type, and a scalar broadcasts against a vector.
 */
static int unify(kiln_ctx *ctx, int kind, ir_expr **pa, ir_expr **pb)
{
	ir_expr *a = *pa, *b = *pb;
	ir_type ta = ir_elem(a->type), tb = ir_elem(b->type);
	if (!ir_type_eq(ta, tb)) {
		if (ir_is_int(ta) && ir_is_int(tb)) {
			ir_type w = ta.bits >= tb.bits ? ta : tb;
			if (ta.code != tb.code && a->kind != IR_INT_IMM && b->kind != IR_INT_IMM && ta.bits == tb.bits)
				goto mismatch;
			if (!ir_type_eq(ta, w))
				a = a->kind == IR_INT_IMM ? ir_int(ctx, w, a->i) : ir_cast(ctx, ir_with_lanes(w, a->type.lanes), a);
			if (!ir_type_eq(tb, w))
				b = b->kind == IR_INT_IMM ? ir_int(ctx, w, b->i) : ir_cast(ctx, ir_with_lanes(w, b->type.lanes), b);
		} else if (ir_is_float(ta) && b->kind == IR_INT_IMM) {
			b = ir_float(ctx, ir_with_lanes(ta, b->type.lanes), (double)b->i);
		} else if (ir_is_float(tb) && a->kind == IR_INT_IMM) {
			a = ir_float(ctx, ir_with_lanes(tb, a->type.lanes), (double)a->i);
		} else if (ir_is_float(ta) && ir_is_float(tb) && (a->kind == IR_FLOAT_IMM || b->kind == IR_FLOAT_IMM)) {
			if (a->kind == IR_FLOAT_IMM)
				a = ir_float(ctx, ir_with_lanes(tb, a->type.lanes), a->f);
			else
				b = ir_float(ctx, ir_with_lanes(ta, b->type.lanes), b->f);
		} else {
			goto mismatch;
		}
	}
	if (a->type.lanes != b->type.lanes) {
		if (a->type.lanes == 1)
			a = ir_broadcast(ctx, a, b->type.lanes);
		else if (b->type.lanes == 1)
			b = ir_broadcast(ctx, b, a->type.lanes);
		else
			return ir_error(ctx, "operands of %s have %d and %d lanes", op_sym[kind], a->type.lanes,
			                b->type.lanes);
	}
	*pa = a;
	*pb = b;
	return 0;
mismatch:;
	char b1[16], b2[16];
	return ir_error(ctx, "type mismatch in '%s': %s vs %s", op_sym[kind], ir_type_str(a->type, b1),
	                ir_type_str(b->type, b2));
}

ir_expr *ir_binary(kiln_ctx *ctx, int kind, ir_expr *a, ir_expr *b)
{
	if (!a || !b)
		return NULL;
	ir_assert(ir_is_binary(kind));
	if (unify(ctx, kind, &a, &b))
		return NULL;
	ir_type t = a->type;
	if (kind == IR_AND || kind == IR_OR) {
		if (!ir_is_bool(t))
			return ir_error(ctx, "operands of '%s' must be bool", op_sym[kind]), NULL;
	} else if (ir_is_bool(t) && !(kind == IR_EQ || kind == IR_NE)) {
		return ir_error(ctx, "arithmetic '%s' on bool operands", op_sym[kind]), NULL;
	}
	if (t.code == KILN_HANDLE)
		return ir_error(ctx, "arithmetic on a buffer handle"), NULL;
	if (ir_is_compare(kind))
		t = ir_t(KILN_BOOL, 1, t.lanes);
	ir_expr *e = new_expr(ctx, kind, t);
	e->bin.a = a;
	e->bin.b = b;
	return e;
}

ir_expr *ir_not(kiln_ctx *ctx, ir_expr *a)
{
	if (!a)
		return NULL;
	if (!ir_is_bool(a->type))
		return ir_error(ctx, "operand of '!' must be bool"), NULL;
	ir_expr *e = new_expr(ctx, IR_NOT, a->type);
	e->bin.a = a;
	return e;
}

ir_expr *ir_select(kiln_ctx *ctx, ir_expr *c, ir_expr *t, ir_expr *f)
{
	return ir_select_kind(ctx, IR_SELECT, c, t, f);
}

ir_expr *ir_select_kind(kiln_ctx *ctx, int kind, ir_expr *c, ir_expr *t, ir_expr *f)
{
	const char *what = kind == IR_SELECT ? "select" : "if_then_else";
	if (!c || !t || !f)
		return NULL;
	if (!ir_is_bool(c->type))
		return ir_error(ctx, "%s condition must be bool", what), NULL;
	/* a lazy choice is a branch, and a branch has one direction */
	if (kind == IR_IF_THEN_ELSE && c->type.lanes != 1)
		return ir_error(ctx, "if_then_else condition must be a scalar"), NULL;
	if (unify(ctx, IR_EQ, &t, &f))
		return NULL;
	if (c->type.lanes != t->type.lanes) {
		if (c->type.lanes == 1)
			c = ir_broadcast(ctx, c, t->type.lanes);
		else if (t->type.lanes == 1) {
			t = ir_broadcast(ctx, t, c->type.lanes);
			f = ir_broadcast(ctx, f, c->type.lanes);
		} else
			return ir_error(ctx, "%s lanes differ", what), NULL;
	}
	ir_expr *e = new_expr(ctx, kind, t->type);
	e->sel.cond = c;
	e->sel.t = t;
	e->sel.f = f;
	return e;
}

ir_expr *ir_cast(kiln_ctx *ctx, ir_type t, ir_expr *a)
{
	if (!a)
		return NULL;
	if (t.code == KILN_HANDLE || a->type.code == KILN_HANDLE)
		return ir_error(ctx, "cannot cast a buffer handle"), NULL;
	t.lanes = a->type.lanes;
	if (ir_type_eq(t, a->type))
		return a;
	ir_expr *e = new_expr(ctx, IR_CAST, t);
	e->bin.a = a;
	return e;
}

ir_expr *ir_call(kiln_ctx *ctx, kiln_intrinsic op, ir_expr *a, ir_expr *b)
{
	if (!a || (op == KILN_POW && !b))
		return ctx->nerr ? NULL : (ir_error(ctx, "%s: missing operand (NULL)", kiln_intrinsic_name(op)), NULL);
	if ((unsigned)op >= KILN_NUM_INTRINSICS)
		return ir_error(ctx, "unknown intrinsic %d", (int)op), NULL;
	if (op == KILN_ABS && ir_is_int(a->type))
		; /* abs is defined on integers too */
	else if (!ir_is_float(a->type))
		return ir_error(ctx, "%s needs a float operand", kiln_intrinsic_name(op)), NULL;
	if (op == KILN_POW && unify(ctx, IR_MUL, &a, &b))
		return NULL;
	ir_expr *e = new_expr(ctx, IR_CALL, a->type);
	e->call.op = op;
	e->call.a = a;
	e->call.b = op == KILN_POW ? b : NULL;
	return e;
}

ir_expr *ir_read(kiln_ctx *ctx, ir_tensor *t, ir_expr *const *idx)
{
	if (!t)
		return NULL;
	if (t->ctx != ctx)
		return ir_error(ctx, "read of '%s': the tensor belongs to another context", t->name), NULL;
	if (t->ndim > 0 && !idx)
		return ir_error(ctx, "read of '%s': no indices (NULL)", t->name), NULL;
	ir_expr **v = ir_alloc(ctx, sizeof *v * (t->ndim ? t->ndim : 1));
	for (int d = 0; d < t->ndim; d++) {
		if (!idx[d])
			return NULL;
		if (!ir_is_int(idx[d]->type) || idx[d]->type.lanes != 1)
			return ir_error(ctx, "index %d of %s must be a scalar integer", d, t->name), NULL;
		v[d] = idx[d];
	}
	ir_expr *e = new_expr(ctx, IR_READ, t->type);
	e->read.t = t;
	e->read.idx = v;
	return e;
}

ir_expr *ir_load(kiln_ctx *ctx, ir_buffer *buf, ir_expr *index)
{
	ir_assert(buf && index && ir_is_int(index->type));
	ir_expr *e = new_expr(ctx, IR_LOAD, ir_with_lanes(buf->elem, index->type.lanes));
	e->load.buf = buf;
	e->load.index = index;
	return e;
}

ir_expr *ir_ramp(kiln_ctx *ctx, ir_expr *base, ir_expr *stride, int lanes)
{
	ir_assert(base->type.lanes == 1 && stride->type.lanes == 1 && lanes > 1);
	if (unify(ctx, IR_ADD, &base, &stride))
		return NULL;
	ir_expr *e = new_expr(ctx, IR_RAMP, ir_with_lanes(base->type, lanes));
	e->ramp.base = base;
	e->ramp.stride = stride;
	return e;
}

ir_expr *ir_broadcast(kiln_ctx *ctx, ir_expr *v, int lanes)
{
	ir_assert(v->type.lanes == 1);
	if (lanes == 1)
		return v;
	ir_expr *e = new_expr(ctx, IR_BROADCAST, ir_with_lanes(v->type, lanes));
	e->bcast.value = v;
	return e;
}

ir_expr *ir_reduce(kiln_ctx *ctx, kiln_reduce_op op, ir_expr *src, int naxis, ir_iter *const *axes, ir_expr *cond)
{
	if (!src)
		return NULL;
	if (naxis < 1)
		return ir_error(ctx, "a reduction needs at least one axis"), NULL;
	for (int i = 0; i < naxis; i++)
		if (!axes[i] || !axes[i]->reduce)
			return ir_error(ctx, "reduction axis %d is not made by kiln_reduce_axis", i), NULL;
	if (cond && !ir_is_bool(cond->type))
		return ir_error(ctx, "reduction condition must be bool"), NULL;
	if ((unsigned)op > KILN_PROD)
		return ir_error(ctx, "unknown reduction %d", (int)op), NULL;
	ir_expr *e = new_expr(ctx, IR_REDUCE, src->type);
	e->red.op = op;
	e->red.src = src;
	e->red.naxis = naxis;
	e->red.axis = ir_alloc(ctx, sizeof(ir_iter *) * naxis);
	memcpy(e->red.axis, axes, sizeof(ir_iter *) * naxis);
	e->red.cond = cond;
	return e;
}

ir_expr *ir_let(kiln_ctx *ctx, ir_expr *var, ir_expr *value, ir_expr *body)
{
	if (!var || !value || !body)
		return NULL;
	ir_assert(var->kind == IR_VAR && ir_type_eq(var->type, value->type));
	ir_expr *e = new_expr(ctx, IR_LET, body->type);
	e->let.var = var;
	e->let.value = value;
	e->let.body = body;
	return e;
}

ir_iter *ir_iter_new(kiln_ctx *ctx, const char *name, int64_t min, int64_t extent, bool reduce)
{
	ir_iter *it = ir_alloc(ctx, sizeof *it);
	it->var = ir_var(ctx, name, IR_I64);
	it->var->var.iter = it;
	it->min = min;
	it->extent = extent;
	it->reduce = reduce;
	return it;
}

ir_expr *ir_reduce_identity(kiln_ctx *ctx, kiln_reduce_op op, ir_type t)
{
	bool f = ir_is_float(t);
	switch (op) {
	case KILN_SUM:
		return f ? ir_float(ctx, t, 0) : ir_int(ctx, t, 0);
	case KILN_PROD:
		return f ? ir_float(ctx, t, 1) : ir_int(ctx, t, 1);
	case KILN_RMAX:
		if (f)
			return ir_float(ctx, t, -INFINITY);
		return ir_int(ctx, t, t.code == KILN_UINT ? 0 : t.bits >= 64 ? INT64_MIN : -((int64_t)1 << (t.bits - 1)));
	case KILN_RMIN:
		if (f)
			return ir_float(ctx, t, INFINITY);
		return ir_int(ctx, t, t.code == KILN_UINT ? (t.bits >= 64 ? -1 : (int64_t)((1ull << t.bits) - 1))
		                      : t.bits >= 64 ? INT64_MAX : ((int64_t)1 << (t.bits - 1)) - 1);
	}
	ir_internal_error(__FILE__, __LINE__, "bad reduce op");
}

ir_expr *ir_reduce_combine(kiln_ctx *ctx, kiln_reduce_op op, ir_expr *acc, ir_expr *x)
{
	static const int kind[] = {[KILN_SUM] = IR_ADD, [KILN_RMAX] = IR_MAX, [KILN_RMIN] = IR_MIN, [KILN_PROD] = IR_MUL};
	return ir_binary(ctx, kind[op], acc, x);
}

/* Structural equality; variables compare by identity. */
bool ir_expr_equal(const ir_expr *a, const ir_expr *b)
{
	if (a == b)
		return true;
	if (!a || !b || a->kind != b->kind || !ir_type_eq(a->type, b->type))
		return false;
	switch (a->kind) {
	case IR_INT_IMM:
		return a->i == b->i;
	case IR_FLOAT_IMM:
		return a->f == b->f;
	case IR_VAR:
		return false;
	case IR_NOT:
	case IR_CAST:
		return ir_expr_equal(a->bin.a, b->bin.a);
	case IR_SELECT:
	case IR_IF_THEN_ELSE:
		return ir_expr_equal(a->sel.cond, b->sel.cond) && ir_expr_equal(a->sel.t, b->sel.t) &&
		       ir_expr_equal(a->sel.f, b->sel.f);
	case IR_CALL:
		return a->call.op == b->call.op && ir_expr_equal(a->call.a, b->call.a) &&
		       (!a->call.b || ir_expr_equal(a->call.b, b->call.b));
	case IR_READ:
		if (a->read.t != b->read.t)
			return false;
		for (int d = 0; d < a->read.t->ndim; d++)
			if (!ir_expr_equal(a->read.idx[d], b->read.idx[d]))
				return false;
		return true;
	case IR_LOAD:
		return a->load.buf == b->load.buf && ir_expr_equal(a->load.index, b->load.index);
	case IR_RAMP:
		return ir_expr_equal(a->ramp.base, b->ramp.base) && ir_expr_equal(a->ramp.stride, b->ramp.stride);
	case IR_BROADCAST:
		return ir_expr_equal(a->bcast.value, b->bcast.value);
	case IR_REDUCE:
	case IR_LET:
		return false;
	default:
		return ir_expr_equal(a->bin.a, b->bin.a) && ir_expr_equal(a->bin.b, b->bin.b);
	}
}

/* ---- public wrappers ---- */

kiln_expr *kiln_int(kiln_ctx *ctx, int64_t v) { return ir_int(ctx, IR_I32, v); }
kiln_expr *kiln_float(kiln_ctx *ctx, double v) { return ir_float(ctx, IR_F32, v); }

kiln_expr *kiln_const(kiln_ctx *ctx, kiln_dtype t, double v)
{
	if (t.lanes != 1 || t.code == KILN_HANDLE)
		return ir_error(ctx, "constants are scalars of a numeric type"), NULL;
	if (t.code == KILN_FLOAT)
		return ir_float(ctx, t, v);
	return ir_int(ctx, t, (int64_t)v);
}

kiln_expr *kiln_var(kiln_ctx *ctx, const char *name, kiln_dtype t) { return ir_var(ctx, name, t); }
kiln_expr *kiln_add(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b) { return ir_binary(ctx, IR_ADD, a, b); }
kiln_expr *kiln_sub(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b) { return ir_binary(ctx, IR_SUB, a, b); }
kiln_expr *kiln_mul(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b) { return ir_binary(ctx, IR_MUL, a, b); }
kiln_expr *kiln_div(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b) { return ir_binary(ctx, IR_DIV, a, b); }
kiln_expr *kiln_mod(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b) { return ir_binary(ctx, IR_MOD, a, b); }
kiln_expr *kiln_min(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b) { return ir_binary(ctx, IR_MIN, a, b); }
kiln_expr *kiln_max(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b) { return ir_binary(ctx, IR_MAX, a, b); }
kiln_expr *kiln_eq(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b) { return ir_binary(ctx, IR_EQ, a, b); }
kiln_expr *kiln_ne(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b) { return ir_binary(ctx, IR_NE, a, b); }
kiln_expr *kiln_lt(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b) { return ir_binary(ctx, IR_LT, a, b); }
kiln_expr *kiln_le(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b) { return ir_binary(ctx, IR_LE, a, b); }
kiln_expr *kiln_gt(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b) { return ir_binary(ctx, IR_GT, a, b); }
kiln_expr *kiln_ge(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b) { return ir_binary(ctx, IR_GE, a, b); }
kiln_expr *kiln_and(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b) { return ir_binary(ctx, IR_AND, a, b); }
kiln_expr *kiln_or(kiln_ctx *ctx, kiln_expr *a, kiln_expr *b) { return ir_binary(ctx, IR_OR, a, b); }
kiln_expr *kiln_not(kiln_ctx *ctx, kiln_expr *a) { return ir_not(ctx, a); }
kiln_expr *kiln_select(kiln_ctx *ctx, kiln_expr *c, kiln_expr *t, kiln_expr *f) { return ir_select(ctx, c, t, f); }

kiln_expr *kiln_if_then_else(kiln_ctx *ctx, kiln_expr *c, kiln_expr *t, kiln_expr *f)
{
	return ir_select_kind(ctx, IR_IF_THEN_ELSE, c, t, f);
}

kiln_expr *kiln_cast(kiln_ctx *ctx, kiln_dtype t, kiln_expr *a)
{
	if (t.lanes != 1)
		return ir_error(ctx, "kiln_cast takes a scalar type"), NULL;
	return ir_cast(ctx, t, a);
}

kiln_expr *kiln_call(kiln_ctx *ctx, kiln_intrinsic op, kiln_expr *a, kiln_expr *b) { return ir_call(ctx, op, a, b); }

const char *kiln_intrinsic_name(kiln_intrinsic op)
{
	static const char *names[] = {"exp", "log", "sqrt", "rsqrt", "tanh", "sigmoid", "erf",
	                              "pow", "abs", "floor", "ceil", "round"};
	return (unsigned)op < KILN_NUM_INTRINSICS ? names[op] : "?";
}

kiln_iter *kiln_axis(kiln_ctx *ctx, int64_t extent, const char *name)
{
	if (!name || !*name)
		return ir_error(ctx, "an axis needs a name"), NULL;
	if (extent <= 0)
		return ir_error(ctx, "axis '%s' has extent %lld; it must be positive", name, (long long)extent), NULL;
	return ir_iter_new(ctx, name, 0, extent, false);
}

kiln_iter *kiln_reduce_axis(kiln_ctx *ctx, int64_t extent, const char *name)
{
	if (extent <= 0)
		return ir_error(ctx, "reduce axis '%s' has extent %lld; it must be positive", name ? name : "k",
		                (long long)extent), NULL;
	return ir_iter_new(ctx, name ? name : "k", 0, extent, true);
}

kiln_expr *kiln_reduce(kiln_ctx *ctx, kiln_reduce_op op, kiln_expr *src, int naxis, kiln_iter *const *axes,
                       kiln_expr *cond)
{
	return ir_reduce(ctx, op, src, naxis, axes, cond);
}

kiln_expr *kiln_sum(kiln_ctx *ctx, kiln_expr *src, int naxis, kiln_iter *const *axes)
{
	return ir_reduce(ctx, KILN_SUM, src, naxis, axes, NULL);
}

kiln_expr *kiln_iter_var(kiln_iter *it) { return it ? it->var : NULL; }
int64_t kiln_iter_extent(const kiln_iter *it) { return it->extent; }
const char *kiln_iter_name(const kiln_iter *it) { return it->var->var.name; }
kiln_expr *kiln_read(kiln_ctx *ctx, kiln_tensor *t, kiln_expr *const *idx) { return ir_read(ctx, t, idx); }

kiln_expr *kiln_read_n(kiln_ctx *ctx, kiln_tensor *t, int n, kiln_expr *const *idx)
{
	if (t && n != t->ndim)
		return ir_error(ctx, "read of '%s' with %d indices; it has %d dimensions", t->name, n, t->ndim), NULL;
	return ir_read(ctx, t, idx);
}

char *kiln_expr_str(const kiln_expr *e, char *buf, size_t n)
{
	FILE *f = fmemopen(buf, n, "w");
	if (!f) {
		buf[0] = 0;
		return buf;
	}
	ir_print_expr(f, e);
	fclose(f);
	buf[n - 1] = 0;
	return buf;
}
