/*
 * unroll.c — replaces an unrolled loop by copies of its body, one per
 * iteration, with the loop variable replaced by the iteration's value.
 */
#include "ir/mutate.h"
#include "schedule.h"

#define MAX_UNROLL 512

static ir_stmt *unroll_stmt(ir_mutator *m, ir_stmt *s)
{
	kiln_ctx *ctx = m->ctx;
	if (s->kind != IR_FOR || s->loop.kind != IR_FOR_UNROLLED)
		return ir_mutate_stmt_children(m, s);
	ir_stmt *body = ir_mutate_stmt(m, s->loop.body);
	int64_t n;
	const char *name = s->loop.var->var.name;
	if (!ir_is_const_int(s->loop.extent, &n))
		return ir_error(ctx, "unroll: loop '%s' has a non-constant extent", name), s;
	if (n > MAX_UNROLL)
		return ir_error(ctx, "unroll: loop '%s' has %lld iterations; unrolling takes at most %d (split it first)",
		                name, (long long)n, MAX_UNROLL), s;
	if (!body)
		return NULL;
	ir_stmt **copies = ir_alloc(ctx, sizeof(ir_stmt *) * (n ? n : 1));
	for (int64_t i = 0; i < n; i++) {
		ir_expr *val = ir_add(ctx, s->loop.min, ir_int(ctx, s->loop.var->type, i));
		copies[i] = ir_substitute_stmt(ctx, body, 1, &s->loop.var, &val);
	}
	return ir_seq(ctx, (int)n, copies);
}

ir_stmt *ir_unroll(kiln_ctx *ctx, ir_stmt *s)
{
	ir_mutator m = {ctx, NULL, unroll_stmt, NULL};
	ir_stmt *r = ir_mutate_stmt(&m, s);
	return ctx->nerr ? NULL : r;
}
