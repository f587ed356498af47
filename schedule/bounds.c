/*
 * bounds.c — symbolic intervals of index expressions, for bound inference.
 *
 * Variables listed in the free set range over constant intervals (the loops
 * inside an attach point); every other variable is a fixed symbol (the loops
 * outside it). The result is [lo, hi] as expressions in the fixed symbols,
 * or NULL ends where the expression is beyond this interval arithmetic (a
 * product of two free variables, a data-dependent index); the caller then
 * falls back to the whole dimension.
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

static sch_ival point(ir_expr *e) { return (sch_ival){e, e}; }
static const sch_ival none = {NULL, NULL};

sch_ival sch_bound(kiln_ctx *ctx, const ir_expr *e, const sch_free *fr)
{
	ir_expr *x = (ir_expr *)e;
	if (!uses_free(e, fr))
		return point(x);
	switch (e->kind) {
	case IR_VAR:
		for (int i = 0; i < fr->n; i++)
			if (fr->vars[i] == e)
				return (sch_ival){ir_int(ctx, e->type, fr->lo[i]), ir_int(ctx, e->type, fr->hi[i])};
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
			return (sch_ival){ir_add(ctx, a.lo, b.lo), ir_add(ctx, a.hi, b.hi)};
		return (sch_ival){ir_sub(ctx, a.lo, b.hi), ir_sub(ctx, a.hi, b.lo)};
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
		if (c >= 0)
			return (sch_ival){ir_mul(ctx, a.lo, k), ir_mul(ctx, a.hi, k)};
		return (sch_ival){ir_mul(ctx, a.hi, k), ir_mul(ctx, a.lo, k)};
	}
	case IR_DIV: {
		int64_t c;
		if (!ir_is_const_int(e->bin.b, &c) || c <= 0)
			return none;
		sch_ival a = sch_bound(ctx, e->bin.a, fr);
		if (!a.lo)
			return none;
		return (sch_ival){ir_div(ctx, a.lo, e->bin.b), ir_div(ctx, a.hi, e->bin.b)};
	}
	case IR_MOD: {
		int64_t c;
		if (!ir_is_const_int(e->bin.b, &c) || c <= 0)
			return none;
		return (sch_ival){ir_int(ctx, e->type, 0), ir_int(ctx, e->type, c - 1)};
	}
	case IR_MIN:
	case IR_MAX: {
		sch_ival a = sch_bound(ctx, e->bin.a, fr), b = sch_bound(ctx, e->bin.b, fr);
		if (!a.lo || !b.lo)
			return none;
		return (sch_ival){ir_binary(ctx, e->kind, a.lo, b.lo), ir_binary(ctx, e->kind, a.hi, b.hi)};
	}
	case IR_SELECT:
	case IR_IF_THEN_ELSE: {
		sch_ival a = sch_bound(ctx, e->sel.t, fr), b = sch_bound(ctx, e->sel.f, fr);
		if (!a.lo || !b.lo)
			return none;
		return (sch_ival){ir_binary(ctx, IR_MIN, a.lo, b.lo), ir_binary(ctx, IR_MAX, a.hi, b.hi)};
	}
	default:
		return none;
	}
}
