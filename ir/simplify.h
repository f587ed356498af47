/*
 * simplify.h — the arithmetic simplifier and constant bounds.
 */
#ifndef KILN_SIMPLIFY_H
#define KILN_SIMPLIFY_H

#include "ir.h"

/* A closed integer interval; INT64_MIN / INT64_MAX stand for "unbounded". */
typedef struct {
	int64_t lo, hi;
} ir_range;

/* Known constant ranges of variables (a stack: inner scopes push). */
typedef struct {
	int n, cap;
	const ir_expr **vars;
	ir_range *r;
} ir_env;

void ir_env_push(ir_env *env, const ir_expr *var, int64_t lo, int64_t hi);
void ir_env_free(ir_env *env);
/*
 * Pushes what cond (truth) or its negation (!truth) says about integer
 * expressions: i > 0 narrows i, k*8 + j < 131 bounds that sum wherever it
 * appears. Pop by restoring env->n.
 */
void ir_env_assume(ir_env *env, const ir_expr *cond, bool truth);
/* Constant bounds of an integer expression under env (may be unbounded). */
ir_range ir_const_bounds(const ir_env *env, const ir_expr *e);
/* The same, and whether some bound of finite values overflowed 64 bits (an
 * unbounded end then means "too large", not "unknown"). */
ir_range ir_const_bounds_checked(const ir_env *env, const ir_expr *e, bool *overflow);
/* The same for vectors too: a range holding every lane. */
ir_range ir_lane_bounds(const ir_env *env, const ir_expr *e);

/* env may be NULL. Loops met while simplifying a statement add their ranges. */
ir_expr *ir_simplify_expr(kiln_ctx *ctx, ir_env *env, ir_expr *e);
ir_stmt *ir_simplify(kiln_ctx *ctx, ir_env *env, ir_stmt *s);

#endif
