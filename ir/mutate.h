/*
 * mutate.h — the visitor/mutator helper and substitution.
 */
#ifndef KILN_MUTATE_H
#define KILN_MUTATE_H

#include "ir.h"

/*
 * A pass embeds an ir_mutator first in its own struct and sets the hooks it
 * needs; a hook handles its cases and returns ir_mutate_*_children(m, x)
 * for the rest. A NULL ctx is allowed for visitors that never rebuild.
 */
typedef struct ir_mutator ir_mutator;
struct ir_mutator {
	kiln_ctx *ctx;
	ir_expr *(*expr)(ir_mutator *m, ir_expr *e);
	ir_stmt *(*stmt)(ir_mutator *m, ir_stmt *s);
	void *user;
};

ir_expr *ir_mutate_expr(ir_mutator *m, ir_expr *e);
ir_stmt *ir_mutate_stmt(ir_mutator *m, ir_stmt *s);
ir_expr *ir_mutate_expr_children(ir_mutator *m, ir_expr *e);
ir_stmt *ir_mutate_stmt_children(ir_mutator *m, ir_stmt *s);

/* e with each vars[i] replaced by values[i]. */
ir_expr *ir_substitute(kiln_ctx *ctx, ir_expr *e, int n, ir_expr *const *vars, ir_expr *const *values);
ir_stmt *ir_substitute_stmt(kiln_ctx *ctx, ir_stmt *s, int n, ir_expr *const *vars, ir_expr *const *values);
/* e with every read of tensor from turned into a read of to. */
ir_expr *ir_replace_tensor(kiln_ctx *ctx, ir_expr *e, ir_tensor *from, ir_tensor *to);

/* Calls fn on every subexpression, pre-order; fn returns false to skip children. */
void ir_visit_expr(const ir_expr *e, bool (*fn)(const ir_expr *e, void *user), void *user);
void ir_visit_stmt_exprs(const ir_stmt *s, bool (*fn)(const ir_expr *e, void *user), void *user);
/* Calls fn on every statement, pre-order; fn returns false to skip its children. */
void ir_visit_stmts(const ir_stmt *s, bool (*fn)(const ir_stmt *s, void *user), void *user);
bool ir_expr_uses_var(const ir_expr *e, const ir_expr *var);
bool ir_stmt_uses_var(const ir_stmt *s, const ir_expr *var);

#endif
