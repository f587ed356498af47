/*
 * print.c — a printer you can debug by. Halide's notation: loops read
 * `for (x, min, extent)`, `parallel (...)`, `vectorized (...)`; operators
 * are printed infix with only the parentheses precedence needs.
 */
#include <stdlib.h>
#include <string.h>

#include "ir.h"

const char *ir_type_str(ir_type t, char *buf) { return kiln_dtype_str(t, buf); }

static int prec(int k)
{
	switch (k) {
	case IR_OR: return 1;
	case IR_AND: return 2;
	case IR_EQ: case IR_NE: case IR_LT: case IR_LE: case IR_GT: case IR_GE: return 3;
	case IR_ADD: case IR_SUB: return 4;
	case IR_MUL: case IR_DIV: case IR_MOD: return 5;
	default: return 9;
	}
}

static const char *sym(int k)
{
	static const char *s[] = {[IR_ADD] = " + ", [IR_SUB] = " - ", [IR_MUL] = "*", [IR_DIV] = "/", [IR_MOD] = " % ",
	                          [IR_EQ] = " == ", [IR_NE] = " != ", [IR_LT] = " < ", [IR_LE] = " <= ",
	                          [IR_GT] = " > ", [IR_GE] = " >= ", [IR_AND] = " && ", [IR_OR] = " || "};
	return s[k];
}

static void pexpr(FILE *f, const ir_expr *e, int outer);

/*
 * The variables bound around what is being printed. A loop or let whose
 * name an enclosing binding of another variable already shows is printed
 * with a suffix (i, then i.1), so two nested loops never read as one
 * (rfactor's partial sums computed at the loop of the axis they share a
 * name with). Per thread: printing needs no context argument.
 */
#define MAX_SHOWN 128
typedef struct {
	const ir_expr *var;
	char name[64];
} shown;
static _Thread_local struct {
	int n;
	shown s[MAX_SHOWN];
} bound;

static const char *var_name(const ir_expr *v)
{
	for (int i = bound.n - 1; i >= 0; i--)
		if (bound.s[i].var == v)
			return bound.s[i].name;
	return v->var.name;
}

static bool name_shown(const char *name)
{
	for (int i = 0; i < bound.n; i++)
		if (!strcmp(bound.s[i].name, name))
			return true;
	return false;
}

/* Binds v for what is printed inside it; returns its printed name. */
static const char *bind_var(const ir_expr *v)
{
	if (bound.n == MAX_SHOWN)
		return v->var.name;
	shown *s = &bound.s[bound.n++];
	s->var = v;
	snprintf(s->name, sizeof s->name, "%s", v->var.name);
	bound.n--; /* not itself while checking */
	for (int k = 1; name_shown(s->name) && k < 1000; k++)
		snprintf(s->name, sizeof s->name, "%s.%d", v->var.name, k);
	bound.n++;
	return s->name;
}

/* The name v will be printed with once bound here, in buf (binding nothing yet). */
static const char *name_if_bound(const ir_expr *v, char *buf, size_t n)
{
	int saved = bound.n;
	snprintf(buf, n, "%s", bind_var(v));
	bound.n = saved;
	return buf;
}

static void plist(FILE *f, ir_expr *const *v, int n)
{
	for (int i = 0; i < n; i++) {
		if (i)
			fputs(", ", f);
		pexpr(f, v[i], 0);
	}
}

static void pexpr(FILE *f, const ir_expr *e, int outer)
{
	char tb[16];
	if (!e) {
		fputs("<null>", f);
		return;
	}
	switch (e->kind) {
	case IR_INT_IMM:
		if (ir_is_bool(e->type))
			fputs(e->i ? "true" : "false", f);
		else
			fprintf(f, "%lld", (long long)e->i);
		return;
	case IR_FLOAT_IMM:
		fprintf(f, "%.9g%s", e->f, e->type.bits == 32 ? "f" : e->type.bits == 16 ? "h" : "");
		return;
	case IR_VAR:
		fputs(var_name(e), f);
		return;
	case IR_MIN:
	case IR_MAX:
		fprintf(f, "%s(", e->kind == IR_MIN ? "min" : "max");
		pexpr(f, e->bin.a, 0);
		fputs(", ", f);
		pexpr(f, e->bin.b, 0);
		fputs(")", f);
		return;
	case IR_NOT:
		fputs("!", f);
		pexpr(f, e->bin.a, 9);
		return;
	case IR_SELECT:
	case IR_IF_THEN_ELSE:
		fputs(e->kind == IR_SELECT ? "select(" : "if_then_else(", f);
		plist(f, (ir_expr *[]){e->sel.cond, e->sel.t, e->sel.f}, 3);
		fputs(")", f);
		return;
	case IR_CAST:
		fprintf(f, "%s(", ir_type_str(e->type, tb));
		pexpr(f, e->bin.a, 0);
		fputs(")", f);
		return;
	case IR_CALL:
		fprintf(f, "%s(", kiln_intrinsic_name(e->call.op));
		pexpr(f, e->call.a, 0);
		if (e->call.b) {
			fputs(", ", f);
			pexpr(f, e->call.b, 0);
		}
		fputs(")", f);
		return;
	case IR_READ:
		fprintf(f, "%s[", e->read.t->name);
		plist(f, e->read.idx, e->read.t->ndim);
		fputs("]", f);
		return;
	case IR_LOAD:
		fprintf(f, "%s[", e->load.buf->name);
		pexpr(f, e->load.index, 0);
		fputs("]", f);
		return;
	case IR_RAMP:
		fputs("ramp(", f);
		plist(f, (ir_expr *[]){e->ramp.base, e->ramp.stride}, 2);
		fprintf(f, ", %d)", e->type.lanes);
		return;
	case IR_BROADCAST:
		fprintf(f, "x%d(", e->type.lanes);
		pexpr(f, e->bcast.value, 0);
		fputs(")", f);
		return;
	case IR_REDUCE: {
		static const char *names[] = {"sum", "max", "min", "prod"};
		fprintf(f, "%s(", names[e->red.op]);
		pexpr(f, e->red.src, 0);
		fputs(", axis=[", f);
		for (int i = 0; i < e->red.naxis; i++)
			fprintf(f, "%s%s", i ? ", " : "", e->red.axis[i]->var->var.name);
		fputs("]", f);
		if (e->red.cond) {
			fputs(", where=", f);
			pexpr(f, e->red.cond, 0);
		}
		fputs(")", f);
		return;
	}
	case IR_LET: {
		int n = bound.n;
		char nb[64];
		fprintf(f, "(let %s = ", name_if_bound(e->let.var, nb, sizeof nb));
		pexpr(f, e->let.value, 0);
		fputs(" in ", f);
		bind_var(e->let.var);
		pexpr(f, e->let.body, 0);
		bound.n = n;
		fputs(")", f);
		return;
	}
	default: {
		int p = prec(e->kind);
		bool paren = p < outer;
		if (paren)
			fputs("(", f);
		pexpr(f, e->bin.a, p);
		fputs(sym(e->kind), f);
		/* the right operand of - / % needs parentheses at equal precedence */
		bool rassoc = e->kind == IR_SUB || e->kind == IR_DIV || e->kind == IR_MOD || ir_is_compare(e->kind);
		pexpr(f, e->bin.b, rassoc ? p + 1 : p);
		if (paren)
			fputs(")", f);
	}
	}
}

void ir_print_expr(FILE *f, const ir_expr *e) { pexpr(f, e, 0); }

static void ind(FILE *f, int n)
{
	for (int i = 0; i < n; i++)
		fputs("  ", f);
}

static const char *scope_name(kiln_scope s)
{
	return s == KILN_SCOPE_SHARED ? "shared" : s == KILN_SCOPE_LOCAL ? "local" : "global";
}

const char *ir_thread_name(kiln_thread t)
{
	static const char *n[] = {"", "blockIdx.x", "blockIdx.y", "blockIdx.z", "threadIdx.x", "threadIdx.y", "threadIdx.z",
	                          "vthread.x", "vthread.y", "vthread.z"};
	return n[t];
}

void ir_print_stmt(FILE *f, const ir_stmt *s, int d)
{
	if (!s) {
		ind(f, d);
		fputs("<null>\n", f);
		return;
	}
	switch (s->kind) {
	case IR_FOR: {
		static const char *kinds[] = {"for", "parallel", "vectorized", "unrolled", "bind"};
		ind(f, d);
		int n = bound.n;
		char nb[64];
		fprintf(f, "%s (%s, ", kinds[s->loop.kind], name_if_bound(s->loop.var, nb, sizeof nb));
		pexpr(f, s->loop.min, 0); /* min and extent are outside the loop */
		fputs(", ", f);
		pexpr(f, s->loop.extent, 0);
		bind_var(s->loop.var);
		if (s->loop.kind == IR_FOR_THREAD)
			fprintf(f, ", %s", ir_thread_name(s->loop.thread));
		fputs(") {\n", f);
		ir_print_stmt(f, s->loop.body, d + 1);
		bound.n = n;
		ind(f, d);
		fputs("}\n", f);
		return;
	}
	case IR_STORE:
		ind(f, d);
		fprintf(f, "%s[", s->store.buf->name);
		pexpr(f, s->store.index, 0);
		fputs("] = ", f);
		pexpr(f, s->store.value, 0);
		fputs("\n", f);
		return;
	case IR_PROVIDE:
		ind(f, d);
		fprintf(f, "%s(", s->provide.t->name);
		plist(f, s->provide.idx, s->provide.t->ndim);
		fputs(") = ", f);
		pexpr(f, s->provide.value, 0);
		fputs("\n", f);
		return;
	case IR_REALIZE:
		ind(f, d);
		fprintf(f, "realize %s(", s->realize.t->name);
		for (int i = 0; i < s->realize.t->ndim; i++) {
			fputs(i ? ", [" : "[", f);
			pexpr(f, s->realize.min[i], 0);
			fprintf(f, ", %lld]", (long long)s->realize.extent[i]);
		}
		fprintf(f, ") in %s {\n", scope_name(s->realize.scope));
		ir_print_stmt(f, s->realize.body, d + 1);
		ind(f, d);
		fputs("}\n", f);
		return;
	case IR_ALLOCATE: {
		char tb[16];
		ind(f, d);
		fprintf(f, "allocate %s[%s * %lld] in %s {\n", s->alloc.buf->name, ir_type_str(s->alloc.buf->elem, tb),
		        (long long)s->alloc.buf->size, scope_name(s->alloc.buf->scope));
		ir_print_stmt(f, s->alloc.body, d + 1);
		ind(f, d);
		fputs("}\n", f);
		return;
	}
	case IR_IF:
		ind(f, d);
		fputs("if (", f);
		pexpr(f, s->ifs.cond, 0);
		fputs(") {\n", f);
		ir_print_stmt(f, s->ifs.then, d + 1);
		if (s->ifs.els) {
			ind(f, d);
			fputs("} else {\n", f);
			ir_print_stmt(f, s->ifs.els, d + 1);
		}
		ind(f, d);
		fputs("}\n", f);
		return;
	case IR_SEQ:
		for (int i = 0; i < s->seq.n; i++)
			ir_print_stmt(f, s->seq.s[i], d);
		return;
	case IR_LET_STMT: {
		/* the binding lasts to the end of its body, which prints at the same depth */
		int n = bound.n;
		char nb[64];
		ind(f, d);
		fprintf(f, "let %s = ", name_if_bound(s->let.var, nb, sizeof nb));
		pexpr(f, s->let.value, 0);
		fputs("\n", f);
		bind_var(s->let.var);
		ir_print_stmt(f, s->let.body, d);
		bound.n = n;
		return;
	}
	case IR_BARRIER:
		ind(f, d);
		fprintf(f, "barrier(%s)\n", scope_name(s->barrier.scope));
		return;
	case IR_EVAL:
		ind(f, d);
		pexpr(f, s->eval.e, 0);
		fputs("\n", f);
		return;
	}
}

static char *to_str(kiln_ctx *ctx, const void *node, bool stmt)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return ir_strdup(ctx, "");
	if (stmt)
		ir_print_stmt(f, node, 0);
	else
		ir_print_expr(f, node);
	fclose(f);
	char *r = ir_strdup(ctx, buf);
	free(buf);
	return r;
}

char *ir_expr_to_str(kiln_ctx *ctx, const ir_expr *e) { return to_str(ctx, e, false); }
char *ir_stmt_to_str(kiln_ctx *ctx, const ir_stmt *s) { return to_str(ctx, s, true); }

void kiln_func_print(const kiln_func *fn, FILE *f)
{
	fprintf(f, "func %s(", fn->name);
	for (int i = 0; i < fn->nargs; i++) {
		char tb[16];
		ir_buffer *b = fn->args[i];
		fprintf(f, "%s%s: %s[", i ? ", " : "", b->name, ir_type_str(b->elem, tb));
		for (int d = 0; d < b->ndim; d++)
			fprintf(f, "%s%lld", d ? ", " : "", (long long)b->shape[d]);
		fputs("]", f);
	}
	fputs(") {\n", f);
	ir_print_stmt(f, fn->body, 1);
	fputs("}\n", f);
}
