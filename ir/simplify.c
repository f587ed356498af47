/*
 * simplify.c — the arithmetic simplifier.
 *
 * Integer expressions are brought to a canonical sum of products
 * (coefficient × term + constant, terms in order of first appearance) so
 * that index arithmetic cancels: (i*16 + j)*512 - i*8192 becomes j*512.
 * Division and modulo by positive constants use the constant bounds of
 * loop variables (i / 16 with i in [0, 16) is 0). Comparisons that bounds
 * decide are folded, so guards that always hold disappear. Vector index
 * arithmetic keeps ramps and broadcasts outermost: x16(a) + ramp(b, 1, 16)
 * becomes ramp(a + b, 1, 16), which codegen turns into a contiguous load.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mutate.h"
#include "simplify.h"

/* ---- constant bounds ---- */

/*
 * Saturation makes an end look unbounded; a bound of finite operands that
 * saturates is an index past 64-bit arithmetic, which is not the same as
 * unknown: it is noted here for ir_const_bounds_checked (per thread).
 */
static _Thread_local bool saturated;

static bool is_finite_end(int64_t v) { return v != INT64_MIN && v != INT64_MAX; }

static int64_t sat_add(int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_add_overflow(a, b, &r)) {
		saturated |= is_finite_end(a) && is_finite_end(b);
		return a > 0 ? INT64_MAX : INT64_MIN;
	}
	return r;
}

static int64_t sat_mul(int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_mul_overflow(a, b, &r)) {
		saturated |= is_finite_end(a) && is_finite_end(b);
		return (a > 0) == (b > 0) ? INT64_MAX : INT64_MIN;
	}
	return r;
}

static int64_t floordiv(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static int64_t floormod(int64_t a, int64_t b) { return a - floordiv(a, b) * b; }

static const ir_range unknown = {INT64_MIN, INT64_MAX};

static bool known(ir_range r) { return r.lo != INT64_MIN && r.hi != INT64_MAX; }

void ir_env_push(ir_env *env, const ir_expr *var, int64_t lo, int64_t hi)
{
	if (env->n == env->cap) {
		env->cap = env->cap ? env->cap * 2 : 32;
		env->vars = realloc(env->vars, sizeof *env->vars * env->cap);
		env->r = realloc(env->r, sizeof *env->r * env->cap);
	}
	env->vars[env->n] = var;
	env->r[env->n++] = (ir_range){lo, hi};
}

void ir_env_free(ir_env *env)
{
	free(env->vars);
	free(env->r);
	memset(env, 0, sizeof *env);
}

static ir_range range_mul(ir_range a, ir_range b)
{
	if (!known(a) || !known(b))
		return unknown;
	int64_t c[4] = {sat_mul(a.lo, b.lo), sat_mul(a.lo, b.hi), sat_mul(a.hi, b.lo), sat_mul(a.hi, b.hi)};
	ir_range r = {c[0], c[0]};
	for (int i = 1; i < 4; i++) {
		r.lo = c[i] < r.lo ? c[i] : r.lo;
		r.hi = c[i] > r.hi ? c[i] : r.hi;
	}
	return r;
}

static ir_range bounds(const ir_env *env, const ir_expr *e, bool lanes);

static ir_range intersect(ir_range a, ir_range b)
{
	return (ir_range){a.lo > b.lo ? a.lo : b.lo, a.hi < b.hi ? a.hi : b.hi};
}

/* Bounds of e under env plus what cond (truth: or its negation) says. */
static ir_range bounds_assuming(const ir_env *env, const ir_expr *cond, bool truth, const ir_expr *e, bool lanes)
{
	ir_env tmp = {0};
	for (int i = 0; env && i < env->n; i++)
		ir_env_push(&tmp, env->vars[i], env->r[i].lo, env->r[i].hi);
	ir_env_assume(&tmp, cond, truth);
	ir_range r = bounds(&tmp, e, lanes);
	ir_env_free(&tmp);
	return r;
}

/* lanes: whether a vector's range is the union of its lanes' (else unknown) */
static ir_range bounds_of(const ir_env *env, const ir_expr *e, bool lanes)
{
	if (!e || (e->type.lanes != 1 && !lanes))
		return unknown;
	switch (e->kind) {
	case IR_RAMP: {
		ir_range b = bounds(env, e->ramp.base, lanes), st = bounds(env, e->ramp.stride, lanes);
		ir_range off = range_mul(st, (ir_range){0, e->type.lanes - 1});
		return (ir_range){sat_add(b.lo, off.lo), sat_add(b.hi, off.hi)};
	}
	case IR_BROADCAST:
		return bounds(env, e->bcast.value, lanes);
	case IR_INT_IMM:
		return (ir_range){e->i, e->i};
	case IR_VAR:
		if (env)
			for (int i = env->n - 1; i >= 0; i--)
				if (env->vars[i] == e)
					return env->r[i];
		return unknown;
	case IR_CAST: {
		if (!ir_is_int(e->bin.a->type) || !ir_is_int(e->type))
			return unknown;
		/* a cast that narrows or changes signedness keeps the range only where it fits */
		ir_range r = bounds(env, e->bin.a, lanes);
		int bits = e->type.bits;
		int64_t lo = e->type.code == KILN_UINT ? 0 : bits >= 64 ? INT64_MIN : -((int64_t)1 << (bits - 1));
		int64_t hi = bits >= 64 ? INT64_MAX : e->type.code == KILN_UINT ? ((int64_t)1 << bits) - 1 : ((int64_t)1 << (bits - 1)) - 1;
		if (bits >= 64 && e->type.code == KILN_UINT && e->bin.a->type.code != KILN_UINT && r.lo < 0)
			return unknown;
		return r.lo >= lo && r.hi <= hi ? r : unknown;
	}
	case IR_SELECT:
	case IR_IF_THEN_ELSE: {
		/* each branch under the condition that chooses it: select(i > 0, i - 1, 0) is never
		 * negative; conditions nested in conditions are analysed a few levels deep only
		 * (each level looks at both sides: past that the union of the sides) */
		static _Thread_local int assuming;
		bool scalar = e->sel.cond->type.lanes == 1 && assuming < 4;
		assuming++;
		ir_range a = scalar ? bounds_assuming(env, e->sel.cond, true, e->sel.t, lanes) : bounds(env, e->sel.t, lanes);
		ir_range b = scalar ? bounds_assuming(env, e->sel.cond, false, e->sel.f, lanes) : bounds(env, e->sel.f, lanes);
		assuming--;
		return (ir_range){a.lo < b.lo ? a.lo : b.lo, a.hi > b.hi ? a.hi : b.hi};
	}
	case IR_ADD:
	case IR_SUB:
	case IR_MUL:
	case IR_MIN:
	case IR_MAX:
	case IR_DIV:
	case IR_MOD:
		break;
	default:
		return unknown;
	}
	if (!ir_is_int(e->type))
		return unknown;
	ir_range a = bounds(env, e->bin.a, lanes), b = bounds(env, e->bin.b, lanes);
	switch (e->kind) {
	case IR_ADD:
		return (ir_range){sat_add(a.lo, b.lo), sat_add(a.hi, b.hi)};
	case IR_SUB: {
		/* an unbounded end stays unbounded; -INT64_MIN does not exist */
		bool lo_open = a.lo == INT64_MIN || b.hi == INT64_MAX || b.hi == INT64_MIN;
		bool hi_open = a.hi == INT64_MAX || b.lo == INT64_MIN;
		return (ir_range){lo_open ? INT64_MIN : sat_add(a.lo, -b.hi), hi_open ? INT64_MAX : sat_add(a.hi, -b.lo)};
	}
	case IR_MUL:
		return range_mul(a, b);
	case IR_MIN:
		return (ir_range){a.lo < b.lo ? a.lo : b.lo, a.hi < b.hi ? a.hi : b.hi};
	case IR_MAX:
		return (ir_range){a.lo > b.lo ? a.lo : b.lo, a.hi > b.hi ? a.hi : b.hi};
	case IR_DIV:
		if (b.lo == b.hi && b.lo > 0) {
			return (ir_range){a.lo == INT64_MIN ? INT64_MIN : floordiv(a.lo, b.lo),
			                  a.hi == INT64_MAX ? INT64_MAX : floordiv(a.hi, b.lo)};
		}
		return unknown;
	case IR_MOD:
		if (b.lo == b.hi && b.lo > 0) {
			if (a.lo >= 0 && a.hi < b.lo)
				return a;
			return (ir_range){0, b.lo - 1};
		}
		return unknown;
	}
	return unknown;
}

/* The interval arithmetic, narrowed by the facts env holds about whole expressions. */
static ir_range bounds(const ir_env *env, const ir_expr *e, bool lanes)
{
	ir_range r = bounds_of(env, e, lanes);
	if (!e || e->kind == IR_VAR || e->kind == IR_INT_IMM || !env)
		return r;
	for (int i = env->n - 1; i >= 0; i--)
		if (env->vars[i]->kind != IR_VAR && ir_expr_equal(env->vars[i], e))
			r = intersect(r, env->r[i]);
	return r;
}

/* Records lo <= x <= hi (intersected with what is known), and for x = v + c the shifted range of v. */
static void assume_range(ir_env *env, const ir_expr *x, int64_t lo, int64_t hi)
{
	if (x->kind == IR_INT_IMM)
		return;
	ir_range r = intersect(bounds(env, x, false), (ir_range){lo, hi});
	ir_env_push(env, x, r.lo, r.hi);
	int64_t c;
	const ir_expr *v = NULL;
	if ((x->kind == IR_ADD || x->kind == IR_SUB) && ir_is_const_int(x->bin.b, &c) && x->bin.a->kind == IR_VAR &&
	    c != INT64_MIN)
		v = x->bin.a, c = x->kind == IR_SUB ? -c : c;
	else if (x->kind == IR_ADD && ir_is_const_int(x->bin.a, &c) && x->bin.b->kind == IR_VAR)
		v = x->bin.b;
	if (v && c != INT64_MIN) /* v = x - c; an unbounded end stays unbounded */
		assume_range(env, v, r.lo == INT64_MIN ? INT64_MIN : sat_add(r.lo, -c),
		             r.hi == INT64_MAX ? INT64_MAX : sat_add(r.hi, -c));
}

void ir_env_assume(ir_env *env, const ir_expr *cond, bool truth)
{
	if (!cond || cond->type.lanes != 1)
		return;
	int k = cond->kind;
	if (k == IR_NOT) {
		ir_env_assume(env, cond->bin.a, !truth);
		return;
	}
	if ((k == IR_AND && truth) || (k == IR_OR && !truth)) {
		ir_env_assume(env, cond->bin.a, truth);
		ir_env_assume(env, cond->bin.b, truth);
		return;
	}
	if (!ir_is_compare(k) || !ir_is_int(cond->bin.a->type) || cond->bin.a->type.lanes != 1)
		return;
	static const int negate[] = {[IR_EQ] = IR_NE, [IR_NE] = IR_EQ, [IR_LT] = IR_GE,
	                             [IR_LE] = IR_GT, [IR_GT] = IR_LE, [IR_GE] = IR_LT};
	if (!truth)
		k = negate[k];
	const ir_expr *a = cond->bin.a, *b = cond->bin.b;
	if (k == IR_GT || k == IR_GE) { /* b < a, b <= a */
		const ir_expr *t = a;
		a = b, b = t;
		k = k == IR_GT ? IR_LT : IR_LE;
	}
	ir_range ra = bounds(env, a, false), rb = bounds(env, b, false);
	int64_t strict = k == IR_LT;
	switch (k) {
	case IR_LT:
	case IR_LE:
		assume_range(env, a, INT64_MIN, rb.hi == INT64_MAX ? INT64_MAX : sat_add(rb.hi, -strict));
		assume_range(env, b, ra.lo == INT64_MIN ? INT64_MIN : sat_add(ra.lo, strict), INT64_MAX);
		break;
	case IR_EQ:
		assume_range(env, a, rb.lo, rb.hi);
		assume_range(env, b, ra.lo, ra.hi);
		break;
	default: /* != says little about an interval */
		break;
	}
}

ir_range ir_const_bounds(const ir_env *env, const ir_expr *e) { return bounds(env, e, false); }

ir_range ir_const_bounds_checked(const ir_env *env, const ir_expr *e, bool *overflow)
{
	bool saved = saturated;
	saturated = false;
	ir_range r = bounds(env, e, false);
	*overflow = saturated;
	saturated = saved;
	return r;
}

ir_range ir_lane_bounds(const ir_env *env, const ir_expr *e) { return bounds(env, e, true); }

/* ---- linear forms: sum coef[i]*term[i] + c ---- */

typedef struct {
	int n, cap;
	ir_expr **term;
	int64_t *coef;
	int64_t c;
} lin;

/* Index arithmetic wraps at 64 bits as the generated code does; in C only unsigned arithmetic may. */
static int64_t wrap_add(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static int64_t wrap_mul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }
static int64_t wrap_neg(int64_t a) { return (int64_t)(0 - (uint64_t)a); }

static void lin_add_term(lin *l, ir_expr *t, int64_t k)
{
	if (k == 0)
		return;
	for (int i = 0; i < l->n; i++)
		if (ir_expr_equal(l->term[i], t)) {
			l->coef[i] = wrap_add(l->coef[i], k);
			return;
		}
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->term = realloc(l->term, sizeof *l->term * l->cap);
		l->coef = realloc(l->coef, sizeof *l->coef * l->cap);
	}
	l->term[l->n] = t;
	l->coef[l->n++] = k;
}

static void lin_free(lin *l)
{
	free(l->term);
	free(l->coef);
}

/* Adds k * e to l, expanding sums and constant products. */
static void to_lin(lin *l, ir_expr *e, int64_t k)
{
	int64_t c;
	switch (e->kind) {
	case IR_INT_IMM:
		l->c = wrap_add(l->c, wrap_mul(k, e->i));
		return;
	case IR_ADD:
		to_lin(l, e->bin.a, k);
		to_lin(l, e->bin.b, k);
		return;
	case IR_SUB:
		to_lin(l, e->bin.a, k);
		to_lin(l, e->bin.b, wrap_neg(k));
		return;
	case IR_MUL:
		if (ir_is_const_int(e->bin.b, &c)) {
			to_lin(l, e->bin.a, wrap_mul(k, c));
			return;
		}
		if (ir_is_const_int(e->bin.a, &c)) {
			to_lin(l, e->bin.b, wrap_mul(k, c));
			return;
		}
		break;
	}
	lin_add_term(l, e, k);
}

/* Is d the division of x by b (directly, or x = y/a and d = y/(a*b))? */
static bool divides_into(const ir_expr *d, const ir_expr *x, int64_t b)
{
	int64_t c, a;
	if (d->kind != IR_DIV || !ir_is_const_int(d->bin.b, &c))
		return false;
	if (c == b && ir_expr_equal(d->bin.a, x))
		return true;
	return x->kind == IR_DIV && ir_is_const_int(x->bin.b, &a) && a > 0 && c == a * b &&
	       ir_expr_equal(d->bin.a, x->bin.a);
}

/*
 * Folds k*(x % b) + k*b*(x / b) back into k*x (floor division makes this an
 * identity), repeatedly, so fused and reshaped indices that are split and
 * re-joined come back to the plain index.
 */
static void lin_merge_divmod(lin *l)
{
	for (bool changed = true; changed;) {
		changed = false;
		for (int i = 0; i < l->n && !changed; i++) {
			ir_expr *m = l->term[i];
			int64_t b;
			if (l->coef[i] == 0 || m->kind != IR_MOD || !ir_is_const_int(m->bin.b, &b) || b <= 0)
				continue;
			for (int j = 0; j < l->n; j++)
				if (l->coef[j] == wrap_mul(l->coef[i], b) && divides_into(l->term[j], m->bin.a, b)) {
					int64_t k = l->coef[i];
					l->coef[i] = l->coef[j] = 0;
					lin_add_term(l, m->bin.a, k);
					changed = true;
					break;
				}
		}
	}
}

static ir_expr *from_lin(kiln_ctx *ctx, const lin *l, ir_type t)
{
	ir_expr *r = NULL;
	/* positive terms first so the result reads as a sum, then the negative ones */
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < l->n; i++) {
			int64_t k = l->coef[i];
			if (k == 0 || (pass == 0) != (k > 0))
				continue;
			int64_t a = k > 0 ? k : wrap_neg(k);
			ir_expr *term = a == 1 ? l->term[i] : ir_mul(ctx, l->term[i], ir_int(ctx, t, a));
			if (!r)
				r = k > 0 ? term : ir_sub(ctx, ir_int(ctx, t, 0), term);
			else
				r = k > 0 ? ir_add(ctx, r, term) : ir_sub(ctx, r, term);
		}
	if (!r)
		return ir_int(ctx, t, l->c);
	if (l->c > 0)
		r = ir_add(ctx, r, ir_int(ctx, t, l->c));
	else if (l->c < 0)
		r = ir_sub(ctx, r, ir_int(ctx, t, wrap_neg(l->c)));
	return r;
}

static ir_range lin_bounds(const ir_env *env, const lin *l)
{
	ir_range r = {l->c, l->c};
	for (int i = 0; i < l->n; i++) {
		ir_range b = ir_const_bounds(env, l->term[i]);
		if (!known(b))
			return unknown;
		int64_t x = sat_mul(b.lo, l->coef[i]), y = sat_mul(b.hi, l->coef[i]);
		r.lo = sat_add(r.lo, x < y ? x : y);
		r.hi = sat_add(r.hi, x < y ? y : x);
	}
	return r;
}

/* ---- the mutator ---- */

typedef struct {
	ir_mutator m;
	ir_env *env;
} simp;

static ir_expr *simp_expr(ir_mutator *m, ir_expr *e);

static bool is_const(const ir_expr *e) { return e->kind == IR_INT_IMM || e->kind == IR_FLOAT_IMM; }

static ir_expr *fold_float(kiln_ctx *ctx, int kind, ir_type t, double a, double b)
{
	switch (kind) {
	case IR_ADD: return ir_float(ctx, t, a + b);
	case IR_SUB: return ir_float(ctx, t, a - b);
	case IR_MUL: return ir_float(ctx, t, a * b);
	case IR_DIV: return ir_float(ctx, t, a / b);
	case IR_MIN: return ir_float(ctx, t, a < b ? a : b);
	case IR_MAX: return ir_float(ctx, t, a > b ? a : b);
	case IR_EQ: return ir_int(ctx, IR_BOOL, a == b);
	case IR_NE: return ir_int(ctx, IR_BOOL, a != b);
	case IR_LT: return ir_int(ctx, IR_BOOL, a < b);
	case IR_LE: return ir_int(ctx, IR_BOOL, a <= b);
	case IR_GT: return ir_int(ctx, IR_BOOL, a > b);
	case IR_GE: return ir_int(ctx, IR_BOOL, a >= b);
	}
	return NULL;
}

/* Simplifies an integer scalar a (op) b whose operands are already simple. */
static ir_expr *simp_int(simp *s, int kind, ir_expr *e, ir_expr *a, ir_expr *b)
{
	kiln_ctx *ctx = s->m.ctx;
	ir_type t = a->type;
	int64_t ca = 0, cb = 0;
	bool ka = ir_is_const_int(a, &ca), kb = ir_is_const_int(b, &cb);
	if (kind == IR_ADD || kind == IR_SUB || kind == IR_MUL) {
		if (kind == IR_MUL && !ka && !kb) /* a product of two non-constants is a term */
			return e->bin.a == a && e->bin.b == b ? e : ir_mul(ctx, a, b);
		lin l = {0};
		to_lin(&l, e->bin.a == a && e->bin.b == b ? e : ir_binary(ctx, kind, a, b), 1);
		lin_merge_divmod(&l);
		ir_expr *r = from_lin(ctx, &l, t);
		lin_free(&l);
		return r;
	}
	if (kind == IR_DIV || kind == IR_MOD) {
		if (kb && cb == 0)
			return e->bin.a == a && e->bin.b == b ? e : ir_binary(ctx, kind, a, b); /* left to run time */
		if (ka && kb)
			return ir_int(ctx, t, kind == IR_DIV ? floordiv(ca, cb) : floormod(ca, cb));
		if (kb && cb > 0) {
			if (cb == 1)
				return kind == IR_DIV ? a : ir_int(ctx, t, 0);
			/* (x / p) / q == x / (p*q) for positive p, q (whose product fits: a fuzzer's chain of them did not) */
			int64_t p, pq;
			if (kind == IR_DIV && a->kind == IR_DIV && ir_is_const_int(a->bin.b, &p) && p > 0 &&
			    !__builtin_mul_overflow(p, cb, &pq))
				return simp_int(s, IR_DIV, e, a->bin.a, ir_int(ctx, t, pq));
			lin l = {0}, q = {0}, r = {0};
			to_lin(&l, a, 1);
			for (int i = 0; i < l.n; i++)
				lin_add_term(l.coef[i] % cb == 0 ? &q : &r, l.term[i], l.coef[i]);
			q.c = floordiv(l.c, cb) * cb;
			r.c = floormod(l.c, cb);
			ir_range rb = lin_bounds(s->env, &r);
			ir_expr *res = NULL;
			bool r_in_one_period = known(rb) && floordiv(rb.lo, cb) == floordiv(rb.hi, cb);
			if (kind == IR_MOD) {
				if (r_in_one_period) {
					r.c -= floordiv(rb.lo, cb) * cb;
					res = from_lin(ctx, &r, t);
				} else if (q.n > 0 || q.c != 0) {
					res = ir_mod(ctx, from_lin(ctx, &r, t), b);
				}
			} else if (r_in_one_period || q.n > 0 || q.c != 0) {
				for (int i = 0; i < q.n; i++)
					q.coef[i] /= cb;
				q.c /= cb;
				if (r_in_one_period)
					q.c += floordiv(rb.lo, cb);
				else
					lin_add_term(&q, ir_div(ctx, from_lin(ctx, &r, t), b), 1);
				res = from_lin(ctx, &q, t);
			}
			lin_free(&l);
			lin_free(&q);
			lin_free(&r);
			if (res)
				return res;
		}
		return e->bin.a == a && e->bin.b == b ? e : ir_binary(ctx, kind, a, b);
	}
	if (kind == IR_MIN || kind == IR_MAX) {
		if (ka && kb)
			return ir_int(ctx, t, kind == IR_MIN ? (ca < cb ? ca : cb) : (ca > cb ? ca : cb));
		lin d = {0};
		to_lin(&d, a, 1);
		to_lin(&d, b, -1);
		ir_range r = lin_bounds(s->env, &d);
		lin_free(&d);
		if (r.hi <= 0 && r.hi != INT64_MAX)
			return kind == IR_MIN ? a : b;
		if (r.lo >= 0 && r.lo != INT64_MIN)
			return kind == IR_MIN ? b : a;
		if (ir_expr_equal(a, b))
			return a;
		return e->bin.a == a && e->bin.b == b ? e : ir_binary(ctx, kind, a, b);
	}
	/* comparisons: decide a - b by its bounds */
	lin d = {0};
	to_lin(&d, a, 1);
	to_lin(&d, b, -1);
	ir_range r = lin_bounds(s->env, &d);
	int verdict = -1;
	switch (kind) {
	case IR_LT: verdict = r.hi < 0 ? 1 : r.lo >= 0 ? 0 : -1; break;
	case IR_LE: verdict = r.hi <= 0 ? 1 : r.lo > 0 ? 0 : -1; break;
	case IR_GT: verdict = r.lo > 0 ? 1 : r.hi <= 0 ? 0 : -1; break;
	case IR_GE: verdict = r.lo >= 0 ? 1 : r.hi < 0 ? 0 : -1; break;
	case IR_EQ: verdict = r.lo == 0 && r.hi == 0 ? 1 : (r.lo > 0 || r.hi < 0) ? 0 : -1; break;
	case IR_NE: verdict = r.lo == 0 && r.hi == 0 ? 0 : (r.lo > 0 || r.hi < 0) ? 1 : -1; break;
	}
	/* unbounded ends are INT64_MIN / INT64_MAX, so the tests above stay sound */
	lin_free(&d);
	if (verdict >= 0)
		return ir_int(ctx, IR_BOOL, verdict);
	return e->bin.a == a && e->bin.b == b ? e : ir_binary(ctx, kind, a, b);
}

/* Whether e is a multiple of k whatever its variables are (every coefficient and the constant are). */
static bool multiple_of(ir_expr *e, int64_t k)
{
	lin l = {0};
	to_lin(&l, e, 1);
	bool ok = l.c % k == 0;
	for (int i = 0; i < l.n && ok; i++)
		ok = l.coef[i] % k == 0;
	lin_free(&l);
	return ok;
}

/* Vector index arithmetic: keep ramps and broadcasts outermost. */
static ir_expr *simp_vector(simp *s, int kind, ir_expr *a, ir_expr *b)
{
	kiln_ctx *ctx = s->m.ctx;
	int lanes = a->type.lanes;
	ir_mutator *m = &s->m;
	bool ab = a->kind == IR_BROADCAST, bb = b->kind == IR_BROADCAST;
	bool ar = a->kind == IR_RAMP, br = b->kind == IR_RAMP;
	if (ab && bb)
		return ir_broadcast(ctx, simp_expr(m, ir_binary(ctx, kind, a->bcast.value, b->bcast.value)), lanes);
	if (!ir_is_int(a->type))
		return NULL;
	if (kind == IR_ADD || kind == IR_SUB) {
		if (ar && bb)
			return ir_ramp(ctx, simp_expr(m, ir_binary(ctx, kind, a->ramp.base, b->bcast.value)), a->ramp.stride, lanes);
		if (ab && br && kind == IR_ADD)
			return ir_ramp(ctx, simp_expr(m, ir_add(ctx, a->bcast.value, b->ramp.base)), b->ramp.stride, lanes);
		if (ar && br)
			return ir_ramp(ctx, simp_expr(m, ir_binary(ctx, kind, a->ramp.base, b->ramp.base)),
			               simp_expr(m, ir_binary(ctx, kind, a->ramp.stride, b->ramp.stride)), lanes);
	}
	if (kind == IR_MUL) {
		if (ar && bb)
			return ir_ramp(ctx, simp_expr(m, ir_mul(ctx, a->ramp.base, b->bcast.value)),
			               simp_expr(m, ir_mul(ctx, a->ramp.stride, b->bcast.value)), lanes);
		if (ab && br)
			return simp_vector(s, kind, b, a);
	}
	int64_t st, c;
	if ((kind == IR_DIV || kind == IR_MOD) && ar && bb && ir_is_const_int(a->ramp.stride, &st) && st == 1 &&
	    ir_is_const_int(b->bcast.value, &c) && c > 0 && c % lanes == 0 && multiple_of(a->ramp.base, lanes)) {
		/* a whole vector inside one block of c (its base a multiple of the lanes,
		 * which divide c): one quotient, consecutive remainders; a matmul's
		 * column vector within a packed panel stays one contiguous load */
		if (kind == IR_DIV)
			return ir_broadcast(ctx, simp_expr(m, ir_div(ctx, a->ramp.base, b->bcast.value)), lanes);
		return ir_ramp(ctx, simp_expr(m, ir_mod(ctx, a->ramp.base, b->bcast.value)), a->ramp.stride, lanes);
	}
	return NULL;
}

static ir_expr *simp_binary(simp *s, ir_expr *e)
{
	kiln_ctx *ctx = s->m.ctx;
	ir_expr *a = simp_expr(&s->m, e->bin.a), *b = simp_expr(&s->m, e->bin.b);
	int kind = e->kind;
	if (a->type.lanes > 1) {
		ir_expr *r = simp_vector(s, kind, a, b);
		if (r)
			return r;
		return a == e->bin.a && b == e->bin.b ? e : ir_binary(ctx, kind, a, b);
	}
	if (kind == IR_AND || kind == IR_OR) {
		int64_t c;
		bool and = kind == IR_AND;
		if (ir_is_const_int(a, &c))
			return (c != 0) == and ? b : a;
		if (ir_is_const_int(b, &c))
			return (c != 0) == and ? a : b;
		return a == e->bin.a && b == e->bin.b ? e : ir_binary(ctx, kind, a, b);
	}
	if (ir_is_float(a->type)) {
		if (a->kind == IR_FLOAT_IMM && b->kind == IR_FLOAT_IMM) {
			ir_expr *r = fold_float(ctx, kind, a->type, a->f, b->f);
			if (r)
				return r;
		}
		if (kind == IR_MUL && b->kind == IR_FLOAT_IMM && b->f == 1.0)
			return a;
		if (kind == IR_MUL && a->kind == IR_FLOAT_IMM && a->f == 1.0)
			return b;
		if ((kind == IR_ADD || kind == IR_SUB) && b->kind == IR_FLOAT_IMM && b->f == 0.0)
			return a;
		if (kind == IR_ADD && a->kind == IR_FLOAT_IMM && a->f == 0.0)
			return b;
		return a == e->bin.a && b == e->bin.b ? e : ir_binary(ctx, kind, a, b);
	}
	if (ir_is_bool(a->type)) {
		int64_t x, y;
		if (ir_is_const_int(a, &x) && ir_is_const_int(b, &y))
			return ir_int(ctx, IR_BOOL, kind == IR_EQ ? x == y : x != y);
		return a == e->bin.a && b == e->bin.b ? e : ir_binary(ctx, kind, a, b);
	}
	return simp_int(s, kind, e, a, b);
}

static ir_expr *simp_expr(ir_mutator *m, ir_expr *e)
{
	simp *s = (simp *)m;
	kiln_ctx *ctx = m->ctx;
	if (ir_is_binary(e->kind))
		return simp_binary(s, e);
	switch (e->kind) {
	case IR_NOT: {
		ir_expr *a = simp_expr(m, e->bin.a);
		int64_t c;
		if (ir_is_const_int(a, &c))
			return ir_int(ctx, IR_BOOL, !c);
		if (a->kind == IR_NOT)
			return a->bin.a;
		return a == e->bin.a ? e : ir_not(ctx, a);
	}
	case IR_SELECT:
	case IR_IF_THEN_ELSE: {
		ir_expr *c = simp_expr(m, e->sel.cond);
		int64_t v;
		/* a vector condition the same in every lane (an unrolled case index under vectorized loops) too */
		if (ir_is_const_int(c, &v) || (c->kind == IR_BROADCAST && ir_is_const_int(c->bcast.value, &v)))
			return simp_expr(m, v ? e->sel.t : e->sel.f);
		ir_expr *t = simp_expr(m, e->sel.t), *f = simp_expr(m, e->sel.f);
		if (ir_expr_equal(t, f))
			return t;
		return c == e->sel.cond && t == e->sel.t && f == e->sel.f ? e : ir_select_kind(ctx, e->kind, c, t, f);
	}
	case IR_CAST: {
		ir_expr *a = simp_expr(m, e->bin.a);
		if (is_const(a) && e->type.lanes == 1) {
			double v = a->kind == IR_INT_IMM ? (double)a->i : a->f;
			if (ir_is_float(e->type))
				return ir_float(ctx, e->type, v);
			if (ir_is_int(e->type) && a->kind == IR_INT_IMM)
				return ir_int(ctx, e->type, a->i);
		}
		if (a->kind == IR_BROADCAST)
			return ir_broadcast(ctx, simp_expr(m, ir_cast(ctx, ir_elem(e->type), a->bcast.value)), e->type.lanes);
		/* widening an integer ramp keeps it a ramp */
		if (a->kind == IR_RAMP && ir_is_int(e->type) && e->type.bits >= a->type.bits)
			return ir_ramp(ctx, ir_cast(ctx, ir_elem(e->type), a->ramp.base),
			               ir_cast(ctx, ir_elem(e->type), a->ramp.stride), e->type.lanes);
		return a == e->bin.a ? e : ir_cast(ctx, ir_elem(e->type), a);
	}
	case IR_BROADCAST: {
		ir_expr *v = simp_expr(m, e->bcast.value);
		return v == e->bcast.value ? e : ir_broadcast(ctx, v, e->type.lanes);
	}
	case IR_RAMP: {
		ir_expr *b = simp_expr(m, e->ramp.base), *st = simp_expr(m, e->ramp.stride);
		int64_t c;
		if (ir_is_const_int(st, &c) && c == 0)
			return ir_broadcast(ctx, b, e->type.lanes);
		return b == e->ramp.base && st == e->ramp.stride ? e : ir_ramp(ctx, b, st, e->type.lanes);
	}
	case IR_CALL: {
		ir_expr *a = simp_expr(m, e->call.a), *b = e->call.b ? simp_expr(m, e->call.b) : NULL;
		return a == e->call.a && b == e->call.b ? e : ir_call(ctx, e->call.op, a, b);
	}
	default:
		return ir_mutate_expr_children(m, e);
	}
}

static ir_stmt *simp_stmt(ir_mutator *m, ir_stmt *st)
{
	simp *s = (simp *)m;
	kiln_ctx *ctx = m->ctx;
	switch (st->kind) {
	case IR_FOR: {
		ir_expr *mn = simp_expr(m, st->loop.min), *ext = simp_expr(m, st->loop.extent);
		int64_t e;
		bool ke = ir_is_const_int(ext, &e);
		if (ke && e <= 0)
			return NULL;
		/* a loop of one iteration is a substitution, unless it names a GPU thread */
		if (ke && e == 1 && st->loop.kind != IR_FOR_THREAD)
			return simp_stmt(m, ir_substitute_stmt(ctx, st->loop.body, 1, &st->loop.var, &mn)) ;
		ir_range rm = ir_const_bounds(s->env, mn);
		ir_range re = ir_const_bounds(s->env, ext);
		int mark = s->env->n;
		if (known(rm) && known(re))
			ir_env_push(s->env, st->loop.var, rm.lo, rm.hi + re.hi - 1);
		ir_stmt *b = ir_mutate_stmt(m, st->loop.body);
		s->env->n = mark;
		if (!b)
			return NULL;
		if (mn == st->loop.min && ext == st->loop.extent && b == st->loop.body)
			return st;
		return ir_for(ctx, st->loop.var, mn, ext, st->loop.kind, st->loop.thread, b);
	}
	case IR_IF: {
		ir_expr *c = simp_expr(m, st->ifs.cond);
		int64_t v;
		if (ir_is_const_int(c, &v))
			return ir_mutate_stmt(m, v ? st->ifs.then : st->ifs.els);
		ir_stmt *t = ir_mutate_stmt(m, st->ifs.then), *e = ir_mutate_stmt(m, st->ifs.els);
		if (!t && !e)
			return NULL;
		if (!t)
			return ir_if(ctx, ir_not(ctx, c), e, NULL);
		return c == st->ifs.cond && t == st->ifs.then && e == st->ifs.els ? st : ir_if(ctx, c, t, e);
	}
	case IR_LET_STMT: {
		ir_expr *v = simp_expr(m, st->let.value);
		if (v->kind == IR_VAR || is_const(v))
			return ir_mutate_stmt(m, ir_substitute_stmt(ctx, st->let.body, 1, &st->let.var, &v));
		ir_range r = ir_const_bounds(s->env, v);
		int mark = s->env->n;
		if (known(r))
			ir_env_push(s->env, st->let.var, r.lo, r.hi);
		ir_stmt *b = ir_mutate_stmt(m, st->let.body);
		s->env->n = mark;
		if (!b)
			return NULL;
		if (!ir_stmt_uses_var(b, st->let.var))
			return b;
		return v == st->let.value && b == st->let.body ? st : ir_let_stmt(ctx, st->let.var, v, b);
	}
	default:
		return ir_mutate_stmt_children(m, st);
	}
}

ir_expr *ir_simplify_expr(kiln_ctx *ctx, ir_env *env, ir_expr *e)
{
	ir_env local = {0};
	simp s = {{ctx, simp_expr, simp_stmt, NULL}, env ? env : &local};
	ir_expr *r = e ? simp_expr(&s.m, e) : NULL;
	ir_env_free(&local);
	return r;
}

ir_stmt *ir_simplify(kiln_ctx *ctx, ir_env *env, ir_stmt *st)
{
	ir_env local = {0};
	simp s = {{ctx, simp_expr, simp_stmt, NULL}, env ? env : &local};
	ir_stmt *r = st ? ir_mutate_stmt(&s.m, st) : NULL;
	ir_env_free(&local);
	return r;
}
