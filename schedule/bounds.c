/*
 * bounds.c — symbolic intervals of index expressions, for bound inference.
 *
 * Variables listed in the free set range over constant intervals (the loops
 * inside an attach point); every other variable is a fixed symbol (the loops
 * outside it). The result is [lo, hi] as expressions in the fixed symbols,
 * or NULL ends where the expression is beyond this interval arithmetic (a
 * product of two free variables, a data-dependent index); the caller then
 * falls back to the whole dimension. Alongside the ends, a constant bound on
 * their distance (span) where one is known: a window [m, m + 63] divided by
 * 32 is at most 3 values wide (2 when m is a multiple of 32) even though
 * (m + 63)/32 - m/32 does not simplify.
 */
#include "ir/mutate.h"
#include "schedule.h"

static bool uses_free(const ir_expr *e, const sch_free *fr)
{
	for (int i = 0; i < fr->n; i++)
		if (ir_expr_uses_var(e, fr->vars[i]))
			return true;
	return false;
}

static sch_ival point(ir_expr *e) { return (sch_ival){e, e, 0}; }
static const sch_ival none = {NULL, NULL, -1};

/* Is e a multiple of c for every value of its symbols? (a panel start j.outer*64 is one of 32) */
static bool multiple_of(const ir_expr *e, int64_t c)
{
	int64_t v;
	if (ir_is_const_int(e, &v))
		return v % c == 0;
	switch (e->kind) {
	case IR_MUL:
		return (ir_is_const_int(e->bin.b, &v) && v % c == 0) || (ir_is_const_int(e->bin.a, &v) && v % c == 0) ||
		       multiple_of(e->bin.a, c) || multiple_of(e->bin.b, c);
	case IR_ADD:
	case IR_SUB:
	case IR_MIN:
	case IR_MAX:
		return multiple_of(e->bin.a, c) && multiple_of(e->bin.b, c);
	case IR_CAST: /* a narrowing cast wraps, and keeps multiples of c only where c divides the modulus */
		return ir_is_int(e->type) && e->type.bits >= e->bin.a->type.bits && multiple_of(e->bin.a, c);
	default:
		return false;
	}
}

int64_t sch_span_add(int64_t a, int64_t b)
{
	int64_t s;
	return a < 0 || b < 0 || __builtin_add_overflow(a, b, &s) ? -1 : s;
}

sch_ival sch_bound(kiln_ctx *ctx, const ir_expr *e, const sch_free *fr)
{
	ir_expr *x = (ir_expr *)e;
	if (!uses_free(e, fr))
		return point(x);
	switch (e->kind) {
	case IR_VAR:
		for (int i = 0; i < fr->n; i++)
			if (fr->vars[i] == e)
				return (sch_ival){ir_int(ctx, e->type, fr->lo[i]), ir_int(ctx, e->type, fr->hi[i]), fr->hi[i] - fr->lo[i]};
		return point(x);
	case IR_CAST:
		if (!ir_is_int(e->type) || !ir_is_int(e->bin.a->type))
			return none;
		return sch_bound(ctx, e->bin.a, fr);
	case IR_ADD:
	case IR_SUB: {
		sch_ival a = sch_bound(ctx, e->bin.a, fr), b = sch_bound(ctx, e->bin.b, fr);
		if (!a.lo || !b.lo)
			return none;
		if (e->kind == IR_ADD)
			return (sch_ival){ir_add(ctx, a.lo, b.lo), ir_add(ctx, a.hi, b.hi), sch_span_add(a.span, b.span)};
		return (sch_ival){ir_sub(ctx, a.lo, b.hi), ir_sub(ctx, a.hi, b.lo), sch_span_add(a.span, b.span)};
	}
	case IR_MUL: {
		int64_t c;
		const ir_expr *other = NULL;
		if (ir_is_const_int(e->bin.b, &c))
			other = e->bin.a;
		else if (ir_is_const_int(e->bin.a, &c))
			other = e->bin.b;
		if (!other)
			return none;
		sch_ival a = sch_bound(ctx, other, fr);
		if (!a.lo)
			return none;
		ir_expr *k = ir_int(ctx, e->type, c);
		int64_t span = -1;
		if (a.span >= 0 && c != INT64_MIN && __builtin_mul_overflow(a.span, c < 0 ? -c : c, &span))
			span = -1;
		if (c >= 0)
			return (sch_ival){ir_mul(ctx, a.lo, k), ir_mul(ctx, a.hi, k), span};
		return (sch_ival){ir_mul(ctx, a.hi, k), ir_mul(ctx, a.lo, k), span};
	}
	case IR_DIV: {
		int64_t c;
		if (!ir_is_const_int(e->bin.b, &c) || c <= 0)
			return none;
		sch_ival a = sch_bound(ctx, e->bin.a, fr);
		if (!a.lo)
			return none;
		/* floor(hi/c) - floor(lo/c) <= ceil(span/c), and floor(span/c) from a multiple of c */
		int64_t span = a.span < 0 ? -1 : multiple_of(a.lo, c) ? a.span / c : a.span / c + (a.span % c != 0);
		return (sch_ival){ir_div(ctx, a.lo, e->bin.b), ir_div(ctx, a.hi, e->bin.b), span};
	}
	case IR_MOD: {
		int64_t c;
		if (!ir_is_const_int(e->bin.b, &c) || c <= 0)
			return none;
		/* a window starting on a multiple of c that does not wrap: [0, span] */
		sch_ival a = sch_bound(ctx, e->bin.a, fr);
		if (a.lo && a.span >= 0 && a.span < c && multiple_of(a.lo, c))
			return (sch_ival){ir_int(ctx, e->type, 0), ir_int(ctx, e->type, a.span), a.span};
		return (sch_ival){ir_int(ctx, e->type, 0), ir_int(ctx, e->type, c - 1), c - 1};
	}
	case IR_MIN:
	case IR_MAX: {
		sch_ival a = sch_bound(ctx, e->bin.a, fr), b = sch_bound(ctx, e->bin.b, fr);
		if (!a.lo || !b.lo)
			return none;
		/* min(a, b) - min(a', b') stays within the wider of the two spans */
		int64_t span = a.span < 0 || b.span < 0 ? -1 : a.span > b.span ? a.span : b.span;
		return (sch_ival){ir_binary(ctx, e->kind, a.lo, b.lo), ir_binary(ctx, e->kind, a.hi, b.hi), span};
	}
	case IR_SELECT:
	case IR_IF_THEN_ELSE: {
		sch_ival a = sch_bound(ctx, e->sel.t, fr), b = sch_bound(ctx, e->sel.f, fr);
		if (!a.lo || !b.lo)
			return none;
		return (sch_ival){ir_binary(ctx, IR_MIN, a.lo, b.lo), ir_binary(ctx, IR_MAX, a.hi, b.hi), -1};
	}
	default:
		return none;
	}
}
