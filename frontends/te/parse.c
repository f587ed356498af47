/*
 * parse.c — the .kte language: a tokenizer and a recursive-descent parser
 * in chibicc's style, one function per grammar rule.
 *
 *   program   = (op | schedule)*
 *   op        = "op" ident "(" param ("," param)* ")" "->" ident ("," ident)* "{" compute* "}"
 *   param     = ident ":" dtype "[" int ("," int)* "]"
 *   compute   = ident "[" axis ("," axis)* "]" "=" expr ";"?
 *   axis      = ident (":" int)?
 *   expr      = or
 *   or        = and ("||" and)*
 *   and       = compare ("&&" compare)*
 *   compare   = add (("==" | "!=" | "<" | "<=" | ">" | ">=") add)?
 *   add       = mul (("+" | "-") mul)*
 *   mul       = unary (("*" | "/" | "%") unary)*
 *   unary     = ("-" | "!") unary | primary
 *   primary   = number | "(" expr ")" | ident "[" expr ("," expr)* "]"
 *             | reduce | ident "(" expr ("," expr)* ")" | ident
 *   reduce    = ("sum" | "max" | "min" | "prod") "(" axis ("," axis)* "," expr ("where" expr)? ")"
 *   schedule  = "schedule" ident* "{" primitive* "}"
 *
 * Schedule blocks are kept as token ranges and applied to a fresh schedule
 * whenever one is asked for (kiln_program_schedule), so their errors point
 * at the primitive in the file. Expressions are built with the C API as
 * they parse; a literal takes the type of the other operand (i - 1 is i64
 * arithmetic, x * 2 is f32), otherwise types must agree as in the C API.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "kiln/ops.h"
#include "kiln/parse.h"
#include "schedule/schedule.h"

#define MAX_TEXT (1 << 20) /* 1 MiB of source */
#define MAX_DEPTH 200      /* nesting of expressions */
#define MAX_NODES 2000     /* operators in one statement: every later pass recurses over its tree */
#define MAX_NAMES 64       /* tensors of an op, axes in scope */
#define MAX_OPS 64
#define MAX_BLOCKS 16

typedef enum { TK_IDENT, TK_NUM, TK_PUNCT, TK_EOF } tk_kind;

typedef struct {
	tk_kind kind;
	const char *loc;
	int len;
	bool is_float;
	double fval;
	int64_t ival;
} token;

typedef struct {
	const char *name;
	kiln_tensor *t;
} named_tensor;

typedef struct {
	int start, end; /* token range of the primitives */
	int ntarget;
	const char *target[8];
	int line;
} sched_block;

typedef struct {
	const char *name;
	int nin, nout, ntensor;
	kiln_tensor *args[MAX_NAMES];
	named_tensor tensor[MAX_NAMES];
	int nblock;
	sched_block block[MAX_BLOCKS];
} te_op;

struct kiln_program {
	kiln_ctx *ctx;
	const char *file, *text;
	token *tok;
	int ntok;
	int nop;
	te_op *op[MAX_OPS];
};

typedef struct {
	kiln_iter *it;
	bool reduce;
} scoped;

typedef struct {
	kiln_program *p;
	kiln_ctx *ctx;
	int pos;
	int depth;
	int nodes; /* operators of the current statement */
	te_op *op;
	int nscope;
	scoped scope[MAX_NAMES];
	int stmt_start, stmt_end; /* the compute statement being parsed: where extents are inferred */
	/* applying a schedule block */
	kiln_schedule *s;
	int nnew;
	named_tensor fresh[MAX_NAMES];
} parser;

/* ---- errors with a caret ---- */

static void line_col(const kiln_program *p, const char *loc, int *line, int *col, const char **start)
{
	*line = 1;
	*start = p->text;
	for (const char *c = p->text; c < loc; c++)
		if (*c == '\n') {
			(*line)++;
			*start = c + 1;
		}
	*col = (int)(loc - *start) + 1;
}

/* Records "file:line:col: error: msg", the line and a caret under tok (the first error wins). */
static int verror_at(parser *ps, const token *tok, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof msg, fmt, ap);
	int line, col;
	const char *start;
	line_col(ps->p, tok->loc, &line, &col, &start);
	/* a long line is shown from 100 characters before the column, so the caret stays on it */
	int skip = col > 150 ? col - 101 : 0, n = 0;
	start += skip;
	while (start[n] && start[n] != '\n' && n < 200)
		n++;
	int caret = col - 1 - skip < n ? col - 1 - skip : n;
	return ir_error(ps->ctx, "%s:%d:%d: error: %s\n  %s%.*s\n  %*s^", ps->p->file, line, col, msg, skip ? "..." : "", n,
	                start, caret + (skip ? 3 : 0), "");
}

static int error_at(parser *ps, const token *tok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int error_at(parser *ps, const token *tok, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = verror_at(ps, tok, fmt, ap);
	va_end(ap);
	return rc;
}

/* A C API call failed at tok: its message moves behind the location. */
static int api_error(parser *ps, const token *tok)
{
	char msg[1024];
	snprintf(msg, sizeof msg, "%s", kiln_error(ps->ctx));
	kiln_clear_error(ps->ctx);
	return error_at(ps, tok, "%s", msg[0] ? msg : "invalid here");
}

static bool failed(parser *ps) { return ps->ctx->nerr > 0; }

/* ---- tokens ---- */

static bool is_ident1(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_ident2(char c) { return is_ident1(c) || (c >= '0' && c <= '9'); }

static int tokenize(parser *ps)
{
	kiln_program *p = ps->p;
	int cap = 256;
	token *t = malloc(sizeof *t * cap);
	int n = 0;
	const char *c = p->text;
	static const char *puncts[] = {"->", "==", "!=", "<=", ">=", "&&", "||", "(", ")", "[", "]", "{", "}", ",", ":",
	                               ";", ".", "+", "-", "*", "/", "%", "<", ">", "=", "!"};
	while (1) {
		if (n + 1 >= cap) {
			cap *= 2;
			t = realloc(t, sizeof *t * cap);
		}
		while (*c == ' ' || *c == '\t' || *c == '\n' || *c == '\r')
			c++;
		if (*c == '#' || (c[0] == '/' && c[1] == '/')) {
			while (*c && *c != '\n')
				c++;
			continue;
		}
		token *k = &t[n];
		memset(k, 0, sizeof *k);
		k->loc = c;
		if (!*c) {
			k->kind = TK_EOF;
			n++;
			break;
		}
		if (is_ident1(*c)) {
			const char *s = c;
			while (is_ident2(*c))
				c++;
			k->kind = TK_IDENT;
			k->len = (int)(c - s);
			n++;
			continue;
		}
		if ((*c >= '0' && *c <= '9') || (*c == '.' && c[1] >= '0' && c[1] <= '9')) {
			char *end;
			errno = 0;
			long long v = strtoll(c, &end, 10);
			bool overflow = errno == ERANGE;
			if (*end == '.' || *end == 'e' || *end == 'E') {
				errno = 0;
				k->fval = strtod(c, &end);
				k->is_float = true;
				if (errno == ERANGE || !isfinite(k->fval)) {
					ps->p->ntok = n;
					free(t);
					parser tmp = *ps;
					token at = {TK_NUM, c, 1, 0, 0, 0};
					return error_at(&tmp, &at, "number out of range");
				}
			} else if (overflow) {
				free(t);
				token at = {TK_NUM, c, 1, 0, 0, 0};
				return error_at(ps, &at, "integer out of range (at most %lld)", (long long)INT64_MAX);
			} else {
				k->ival = v;
				k->fval = (double)v;
			}
			k->kind = TK_NUM;
			k->len = (int)(end - c);
			c = end;
			if (is_ident1(*c)) {
				free(t);
				token at = {TK_NUM, c, 1, 0, 0, 0};
				return error_at(ps, &at, "a letter right after a number");
			}
			n++;
			continue;
		}
		bool found = false;
		for (size_t i = 0; i < sizeof puncts / sizeof *puncts && !found; i++) {
			size_t l = strlen(puncts[i]);
			if (!strncmp(c, puncts[i], l)) {
				k->kind = TK_PUNCT;
				k->len = (int)l;
				c += l;
				found = true;
			}
		}
		if (!found) {
			free(t);
			token at = {TK_PUNCT, c, 1, 0, 0, 0};
			if ((unsigned char)*c < 32 || (unsigned char)*c >= 127)
				return error_at(ps, &at, "unexpected byte 0x%02x", (unsigned char)*c);
			return error_at(ps, &at, "unexpected character '%c'", *c);
		}
		n++;
	}
	p->tok = ir_alloc(ps->ctx, sizeof *t * n);
	memcpy(p->tok, t, sizeof *t * n);
	p->ntok = n;
	free(t);
	return 0;
}

static token *peek(parser *ps) { return &ps->p->tok[ps->pos]; }
static token *peek2(parser *ps) { return &ps->p->tok[ps->pos + (ps->pos + 1 < ps->p->ntok)]; }

static bool tok_is(const token *t, const char *s)
{
	return (t->kind == TK_PUNCT || t->kind == TK_IDENT) && (int)strlen(s) == t->len && !strncmp(t->loc, s, t->len);
}

static bool at(parser *ps, const char *s) { return tok_is(peek(ps), s); }

static bool consume(parser *ps, const char *s)
{
	if (!at(ps, s))
		return false;
	ps->pos++;
	return true;
}

static int expect(parser *ps, const char *s)
{
	if (failed(ps))
		return -1;
	if (consume(ps, s))
		return 0;
	token *t = peek(ps);
	if (t->kind == TK_EOF)
		return error_at(ps, t, "expected '%s' before the end of the file", s);
	return error_at(ps, t, "expected '%s', found '%.*s'", s, t->len, t->loc);
}

static const char *tok_str(parser *ps, const token *t) { return ir_fmt(ps->ctx, "%.*s", t->len, t->loc); }

static const char *ident(parser *ps, const char *what)
{
	if (failed(ps))
		return NULL;
	token *t = peek(ps);
	if (t->kind != TK_IDENT) {
		error_at(ps, t, "expected %s", what);
		return NULL;
	}
	ps->pos++;
	return tok_str(ps, t);
}

static int64_t integer(parser *ps, const char *what)
{
	if (failed(ps))
		return -1;
	token *t = peek(ps);
	bool neg = tok_is(t, "-") && peek2(ps)->kind == TK_NUM;
	token *num = neg ? peek2(ps) : t;
	if (num->kind != TK_NUM || num->is_float) {
		error_at(ps, t, "expected %s (a whole number)", what);
		return -1;
	}
	ps->pos += neg ? 2 : 1;
	return neg ? -num->ival : num->ival;
}

/* ---- names ---- */

static kiln_tensor *find_tensor(parser *ps, const char *name)
{
	for (int i = 0; i < ps->nnew; i++)
		if (!strcmp(ps->fresh[i].name, name))
			return ps->fresh[i].t;
	for (int i = 0; ps->op && i < ps->op->ntensor; i++)
		if (!strcmp(ps->op->tensor[i].name, name))
			return ps->op->tensor[i].t;
	return NULL;
}

static scoped *find_axis(parser *ps, const char *name)
{
	for (int i = ps->nscope - 1; i >= 0; i--)
		if (!strcmp(kiln_iter_name(ps->scope[i].it), name))
			return &ps->scope[i];
	return NULL;
}

static const char *const reserved[] = {"op", "schedule", "where", "sum", "prod", NULL};

static bool is_reserved(const char *name)
{
	for (int i = 0; reserved[i]; i++)
		if (!strcmp(reserved[i], name))
			return true;
	return false;
}

/* ---- dtypes ---- */

static const struct {
	const char *name;
	kiln_dtype t;
} dtypes[] = {{"f16", KILN_DT(KILN_FLOAT, 16)}, {"f32", KILN_DT(KILN_FLOAT, 32)}, {"f64", KILN_DT(KILN_FLOAT, 64)},
              {"i8", KILN_DT(KILN_INT, 8)},     {"i32", KILN_DT(KILN_INT, 32)},   {"i64", KILN_DT(KILN_INT, 64)},
              {"u8", KILN_DT(KILN_UINT, 8)},    {"bool", KILN_DT(KILN_BOOL, 1)}};

static bool dtype_named(const char *name, kiln_dtype *t)
{
	for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
		if (!strcmp(dtypes[i].name, name)) {
			*t = dtypes[i].t;
			return true;
		}
	return false;
}

/* ---- expressions ---- */

static kiln_expr *expr(parser *ps);

static bool is_literal(const kiln_expr *e) { return e && (e->kind == IR_INT_IMM || e->kind == IR_FLOAT_IMM); }

/* Whether integer v is a value of integer type t. */
static bool fits(int64_t v, ir_type t)
{
	if (t.bits >= 64)
		return t.code != KILN_UINT || v >= 0;
	if (t.code == KILN_UINT)
		return v >= 0 && v < (int64_t)1 << t.bits;
	return v >= -((int64_t)1 << (t.bits - 1)) && v < (int64_t)1 << (t.bits - 1);
}

/* A literal in type t, exactly (integers never pass through a double); NULL (reported at at) if it does not fit. */
static kiln_expr *literal_as(parser *ps, const token *at, const kiln_expr *lit, ir_type t)
{
	if (lit->kind == IR_INT_IMM && ir_is_int(t)) {
		if (!fits(lit->i, t)) {
			char tb[16];
			error_at(ps, at, "the literal %lld does not fit %s", (long long)lit->i, ir_type_str(t, tb));
			return NULL;
		}
		return ir_int(ps->ctx, t, lit->i);
	}
	return kiln_const(ps->ctx, t, lit->kind == IR_INT_IMM ? (double)lit->i : lit->f);
}

/* A literal operand takes the other operand's type: i - 1 stays i64, x * 2 stays f32. */
static int coerce(parser *ps, const token *at, kiln_expr **a, kiln_expr **b)
{
	if (!*a || !*b || ir_type_eq((*a)->type, (*b)->type) || ir_is_bool((*a)->type) || ir_is_bool((*b)->type))
		return 0;
	kiln_expr **lit = is_literal(*b) ? b : is_literal(*a) ? a : NULL;
	if (!lit)
		return 0;
	kiln_expr *other = lit == a ? *b : *a;
	if (ir_is_int(other->type) && (*lit)->kind == IR_FLOAT_IMM)
		return 0; /* 0.5 does not become an integer silently */
	*lit = literal_as(ps, at, *lit, other->type);
	return *lit ? 0 : -1;
}

/* Counts one more operator of the statement; -1 (reported at t) past MAX_NODES. */
static int count_node(parser *ps, const token *t)
{
	if (++ps->nodes <= MAX_NODES)
		return 0;
	return failed(ps) ? -1 : error_at(ps, t, "more than %d operators in one statement", MAX_NODES);
}

static kiln_expr *binary(parser *ps, const token *op, kiln_expr *a, kiln_expr *b)
{
	if (!a || !b || count_node(ps, op))
		return NULL;
	if (coerce(ps, op, &a, &b))
		return NULL;
	static const struct {
		const char *s;
		kiln_expr *(*fn)(kiln_ctx *, kiln_expr *, kiln_expr *);
	} ops[] = {{"+", kiln_add}, {"-", kiln_sub}, {"*", kiln_mul},  {"/", kiln_div},  {"%", kiln_mod},
	           {"==", kiln_eq}, {"!=", kiln_ne}, {"<", kiln_lt},   {"<=", kiln_le},  {">", kiln_gt},
	           {">=", kiln_ge}, {"&&", kiln_and}, {"||", kiln_or}};
	for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
		if (tok_is(op, ops[i].s)) {
			kiln_expr *r = ops[i].fn(ps->ctx, a, b);
			if (!r)
				api_error(ps, op);
			return r;
		}
	ir_internal_error(__FILE__, __LINE__, "unknown binary operator");
}

/* The extent of axis name: the extent of a tensor dimension it indexes alone
 * (X[i, j] gives j the extent of X's second dimension), within the statement. */
static int64_t infer_extent(parser *ps, const char *name)
{
	token *tk = ps->p->tok;
	for (int i = ps->stmt_start; i + 1 < ps->stmt_end; i++) {
		if (tk[i].kind != TK_IDENT || !tok_is(&tk[i + 1], "["))
			continue;
		kiln_tensor *t = find_tensor(ps, tok_str(ps, &tk[i]));
		if (!t)
			continue;
		int d = 0, depth = 0, first = i + 2;
		for (int j = i + 2; j < ps->stmt_end && d < kiln_tensor_ndim(t); j++) {
			bool end_arg = depth == 0 && (tok_is(&tk[j], ",") || tok_is(&tk[j], "]"));
			if (end_arg) {
				if (j == first + 1 && tk[first].kind == TK_IDENT && tok_is(&tk[first], name))
					return kiln_tensor_shape(t)[d];
				if (tok_is(&tk[j], "]"))
					break;
				d++;
				first = j + 1;
				continue;
			}
			if (tok_is(&tk[j], "(") || tok_is(&tk[j], "["))
				depth++;
			else if (tok_is(&tk[j], ")") || tok_is(&tk[j], "]"))
				depth--;
		}
	}
	return -1;
}

/* axis = ident (":" int)? ; a new axis, its extent given or inferred. */
static kiln_iter *axis_decl(parser *ps, bool reduce)
{
	token *t = peek(ps);
	const char *name = ident(ps, reduce ? "a reduce axis name" : "an axis name");
	if (!name)
		return NULL;
	if (is_reserved(name) || find_tensor(ps, name) || find_axis(ps, name)) {
		error_at(ps, t, "'%s' is already a name here; axes need fresh names", name);
		return NULL;
	}
	int64_t ext;
	if (consume(ps, ":")) {
		token *e = peek(ps);
		ext = integer(ps, "the axis extent");
		if (!failed(ps) && ext <= 0) {
			error_at(ps, e, "axis '%s' has extent %lld; it must be positive", name, (long long)ext);
			return NULL;
		}
	} else {
		ext = infer_extent(ps, name);
		if (ext < 0) {
			error_at(ps, t, "cannot infer the extent of axis '%s' (it never indexes a tensor alone); write %s: N",
			         name, name);
			return NULL;
		}
	}
	if (failed(ps))
		return NULL;
	kiln_iter *it = reduce ? kiln_reduce_axis(ps->ctx, ext, name) : kiln_axis(ps->ctx, ext, name);
	if (!it)
		api_error(ps, t);
	return it;
}

static int push_axis(parser *ps, const token *t, kiln_iter *it, bool reduce)
{
	if (ps->nscope == MAX_NAMES)
		return error_at(ps, t, "more than %d axes in scope", MAX_NAMES);
	ps->scope[ps->nscope++] = (scoped){it, reduce};
	return 0;
}

/* reduce = op "(" axis ("," axis)* "," expr ("where" expr)? ")" ; "(" already consumed */
static kiln_expr *reduce(parser *ps, const token *name)
{
	kiln_reduce_op op = tok_is(name, "sum") ? KILN_SUM : tok_is(name, "max") ? KILN_RMAX
	                    : tok_is(name, "min") ? KILN_RMIN : KILN_PROD;
	kiln_iter *axes[KILN_MAX_DIMS];
	int n = 0, saved = ps->nscope;
	do {
		if (n == KILN_MAX_DIMS) {
			error_at(ps, peek(ps), "more than %d reduce axes", KILN_MAX_DIMS);
			return NULL;
		}
		token *t = peek(ps);
		axes[n] = axis_decl(ps, true);
		if (!axes[n] || push_axis(ps, t, axes[n], true))
			return NULL;
		n++;
		expect(ps, ",");
	} while (!failed(ps) && peek(ps)->kind == TK_IDENT && (tok_is(peek2(ps), ",") || tok_is(peek2(ps), ":")) &&
	         !find_tensor(ps, tok_str(ps, peek(ps))) && !find_axis(ps, tok_str(ps, peek(ps))));
	kiln_expr *src = expr(ps), *cond = NULL;
	if (consume(ps, "where"))
		cond = expr(ps);
	expect(ps, ")");
	ps->nscope = saved;
	if (failed(ps) || !src)
		return NULL;
	kiln_expr *r = kiln_reduce(ps->ctx, op, src, n, axes, cond);
	if (!r)
		api_error(ps, name);
	return r;
}

/* The first argument of min/max is a fresh name followed by ',' or ':' for a reduction. */
static bool starts_reduce(parser *ps)
{
	token *t = peek(ps);
	if (t->kind != TK_IDENT || !(tok_is(peek2(ps), ",") || tok_is(peek2(ps), ":")))
		return false;
	const char *n = tok_str(ps, t);
	return !find_tensor(ps, n) && !find_axis(ps, n);
}

static const struct {
	const char *name;
	kiln_intrinsic op;
	int nargs;
} intrinsics[] = {{"exp", KILN_EXP, 1},     {"log", KILN_LOG, 1},     {"sqrt", KILN_SQRT, 1},   {"rsqrt", KILN_RSQRT, 1},
                  {"tanh", KILN_TANH, 1},   {"sigmoid", KILN_SIGMOID, 1}, {"erf", KILN_ERF, 1}, {"pow", KILN_POW, 2},
                  {"abs", KILN_ABS, 1},     {"floor", KILN_FLOOR, 1}, {"ceil", KILN_CEIL, 1},   {"round", KILN_ROUND, 1}};

/* ident "(" args ")" : an intrinsic, min/max, select, if_then_else, a cast, or a reduction. */
static kiln_expr *call(parser *ps, const token *name)
{
	const char *fn = tok_str(ps, name);
	if (tok_is(name, "sum") || tok_is(name, "prod") ||
	    ((tok_is(name, "max") || tok_is(name, "min")) && starts_reduce(ps)))
		return reduce(ps, name);
	kiln_expr *a[3] = {0};
	int n = 0;
	if (!at(ps, ")"))
		do {
			if (n == 3) {
				error_at(ps, peek(ps), "too many arguments to '%s'", fn);
				return NULL;
			}
			a[n++] = expr(ps);
		} while (!failed(ps) && consume(ps, ","));
	if (expect(ps, ")"))
		return NULL;
	for (int i = 0; i < n; i++)
		if (!a[i])
			return NULL;
	kiln_ctx *ctx = ps->ctx;
	kiln_expr *r = NULL;
	int want = -1;
	kiln_dtype t;
	if (dtype_named(fn, &t)) {
		want = 1;
		if (n == 1)
			r = kiln_cast(ctx, t, a[0]);
	} else if (!strcmp(fn, "min") || !strcmp(fn, "max")) {
		want = 2;
		if (n == 2) {
			if (coerce(ps, name, &a[0], &a[1]))
				return NULL;
			r = (fn[1] == 'i' ? kiln_min : kiln_max)(ctx, a[0], a[1]);
		}
	} else if (!strcmp(fn, "select") || !strcmp(fn, "if_then_else")) {
		want = 3;
		if (n == 3) {
			if (coerce(ps, name, &a[1], &a[2]))
				return NULL;
			r = (fn[0] == 's' ? kiln_select : kiln_if_then_else)(ctx, a[0], a[1], a[2]);
		}
	} else {
		for (size_t i = 0; i < sizeof intrinsics / sizeof *intrinsics; i++)
			if (!strcmp(fn, intrinsics[i].name)) {
				want = intrinsics[i].nargs;
				if (n == want && want == 2 && coerce(ps, name, &a[0], &a[1]))
					return NULL;
				if (n == want)
					r = kiln_call(ctx, intrinsics[i].op, a[0], want == 2 ? a[1] : NULL);
			}
		if (want < 0) {
			error_at(ps, name, "unknown function '%s'", fn);
			return NULL;
		}
	}
	if (n != want) {
		error_at(ps, name, "'%s' takes %d argument%s, not %d", fn, want, want == 1 ? "" : "s", n);
		return NULL;
	}
	if (!r)
		api_error(ps, name);
	return r;
}

/* ident "[" expr ("," expr)* "]" */
static kiln_expr *read(parser *ps, const token *name)
{
	const char *tn = tok_str(ps, name);
	kiln_tensor *t = find_tensor(ps, tn);
	if (!t) {
		error_at(ps, name, "unknown tensor '%s'", tn);
		return NULL;
	}
	kiln_expr *idx[KILN_MAX_DIMS + 1];
	int n = 0;
	do {
		if (n == KILN_MAX_DIMS + 1) {
			error_at(ps, peek(ps), "too many indices");
			return NULL;
		}
		token *it = peek(ps);
		kiln_expr *e = expr(ps);
		if (e && is_literal(e) && e->kind == IR_INT_IMM)
			e = ir_int(ps->ctx, IR_I64, e->i);
		if (e && !ir_is_int(e->type) && !failed(ps)) {
			error_at(ps, it, "an index must be an integer");
			return NULL;
		}
		idx[n++] = e;
	} while (!failed(ps) && consume(ps, ","));
	if (expect(ps, "]"))
		return NULL;
	if (n != kiln_tensor_ndim(t)) {
		error_at(ps, name, "'%s' has %d dimension%s; %d ind%s given", tn, kiln_tensor_ndim(t),
		         kiln_tensor_ndim(t) == 1 ? "" : "s", n, n == 1 ? "ex" : "ices");
		return NULL;
	}
	kiln_expr *r = kiln_read_n(ps->ctx, t, n, idx);
	if (!r)
		api_error(ps, name);
	return r;
}

static kiln_expr *primary(parser *ps)
{
	token *t = peek(ps);
	if (failed(ps))
		return NULL;
	if (consume(ps, "(")) {
		kiln_expr *e = expr(ps);
		return expect(ps, ")") ? NULL : e;
	}
	if (t->kind == TK_NUM) {
		ps->pos++;
		if (t->is_float)
			return kiln_float(ps->ctx, t->fval);
		/* exact: an integer literal never passes through a double */
		return ir_int(ps->ctx, t->ival > INT32_MAX ? IR_I64 : IR_I32, t->ival);
	}
	if (t->kind == TK_IDENT) {
		ps->pos++;
		if (consume(ps, "["))
			return read(ps, t);
		if (consume(ps, "("))
			return call(ps, t);
		const char *n = tok_str(ps, t);
		scoped *a = find_axis(ps, n);
		if (a)
			return kiln_iter_var(a->it);
		if (!strcmp(n, "true") || !strcmp(n, "false"))
			return kiln_const(ps->ctx, KILN_BOOLT, n[0] == 't');
		if (find_tensor(ps, n))
			error_at(ps, t, "'%s' is a tensor; read it with %s[...]", n, n);
		else
			error_at(ps, t, "unknown name '%s'", n);
		return NULL;
	}
	if (t->kind == TK_EOF)
		error_at(ps, t, "expected an expression before the end of the file");
	else
		error_at(ps, t, "expected an expression, found '%.*s'", t->len, t->loc);
	return NULL;
}

/* unary = ("-" | "!")* primary: the prefix operators are read in a loop, applied innermost first */
static kiln_expr *unary(parser *ps)
{
	int first = ps->pos;
	while (at(ps, "-") || at(ps, "!")) {
		if (count_node(ps, peek(ps)))
			return NULL;
		ps->pos++;
	}
	int last = ps->pos;
	kiln_expr *a = primary(ps);
	for (int i = last - 1; a && i >= first; i--) {
		token *t = &ps->p->tok[i];
		if (tok_is(t, "!")) {
			kiln_expr *r = kiln_not(ps->ctx, a);
			if (!r)
				api_error(ps, t);
			a = r;
		} else if (a->kind == IR_INT_IMM && a->i != INT64_MIN) {
			a = ir_int(ps->ctx, a->type, -a->i);
		} else if (a->kind == IR_FLOAT_IMM) {
			a = kiln_const(ps->ctx, a->type, -a->f);
		} else {
			a = binary(ps, t, ir_is_int(a->type) ? ir_int(ps->ctx, a->type, 0) : kiln_const(ps->ctx, a->type, 0), a);
		}
	}
	return a;
}

static kiln_expr *mul(parser *ps)
{
	kiln_expr *e = unary(ps);
	for (token *t = peek(ps); e && (at(ps, "*") || at(ps, "/") || at(ps, "%")); t = peek(ps)) {
		ps->pos++;
		e = binary(ps, t, e, unary(ps));
	}
	return e;
}

static kiln_expr *add(parser *ps)
{
	kiln_expr *e = mul(ps);
	for (token *t = peek(ps); e && (at(ps, "+") || at(ps, "-")); t = peek(ps)) {
		ps->pos++;
		e = binary(ps, t, e, mul(ps));
	}
	return e;
}

static kiln_expr *compare(parser *ps)
{
	kiln_expr *e = add(ps);
	token *t = peek(ps);
	if (e && (at(ps, "==") || at(ps, "!=") || at(ps, "<") || at(ps, "<=") || at(ps, ">") || at(ps, ">="))) {
		ps->pos++;
		e = binary(ps, t, e, add(ps));
	}
	return e;
}

static kiln_expr *and_expr(parser *ps)
{
	kiln_expr *e = compare(ps);
	for (token *t = peek(ps); e && at(ps, "&&"); t = peek(ps)) {
		ps->pos++;
		e = binary(ps, t, e, compare(ps));
	}
	return e;
}

static kiln_expr *expr(parser *ps)
{
	if (failed(ps))
		return NULL;
	if (++ps->depth > MAX_DEPTH) {
		error_at(ps, peek(ps), "expression nested more than %d deep", MAX_DEPTH);
		return NULL;
	}
	kiln_expr *e = and_expr(ps);
	for (token *t = peek(ps); e && at(ps, "||"); t = peek(ps)) {
		ps->pos++;
		e = binary(ps, t, e, and_expr(ps));
	}
	ps->depth--;
	return failed(ps) ? NULL : e;
}

/* ---- ops ---- */

static int add_tensor(parser *ps, const token *t, const char *name, kiln_tensor *x)
{
	if (ps->op->ntensor == MAX_NAMES)
		return error_at(ps, t, "more than %d tensors in one op", MAX_NAMES);
	ps->op->tensor[ps->op->ntensor++] = (named_tensor){name, x};
	return 0;
}

/* param = ident ":" dtype "[" int ("," int)* "]" */
static int param(parser *ps)
{
	token *t = peek(ps);
	const char *name = ident(ps, "an input name");
	if (!name)
		return -1;
	if (is_reserved(name) || find_tensor(ps, name))
		return error_at(ps, t, "'%s' is already a name here", name);
	expect(ps, ":");
	token *dt = peek(ps);
	const char *tn = ident(ps, "a dtype (f32, i32, ...)");
	kiln_dtype type;
	if (tn && !dtype_named(tn, &type))
		return error_at(ps, dt, "unknown dtype '%s' (f16, f32, f64, i8, i32, i64, u8, bool)", tn);
	expect(ps, "[");
	int64_t shape[KILN_MAX_DIMS];
	int n = 0;
	do {
		if (n == KILN_MAX_DIMS)
			return error_at(ps, peek(ps), "more than %d dimensions", KILN_MAX_DIMS);
		shape[n++] = integer(ps, "an extent");
	} while (!failed(ps) && consume(ps, ","));
	if (expect(ps, "]"))
		return -1;
	kiln_tensor *x = kiln_placeholder(ps->ctx, name, n, shape, type);
	if (!x)
		return api_error(ps, t);
	if (ps->op->nin == MAX_NAMES / 2)
		return error_at(ps, t, "more than %d inputs", MAX_NAMES / 2);
	ps->op->args[ps->op->nin++] = x;
	return add_tensor(ps, t, name, x);
}

/* Where the compute statement at the current position ends: a ';' or '}' at
 * depth 0, or a name right after an operand (two operands never touch, so
 * that name starts the next statement). Axis extents are inferred inside. */
static int statement_end(parser *ps)
{
	token *tk = ps->p->tok;
	int depth = 0, i = ps->pos;
	bool rhs = false;
	for (; tk[i].kind != TK_EOF; i++) {
		if (depth == 0 && rhs) {
			if (tok_is(&tk[i], ";") || tok_is(&tk[i], "}"))
				return i;
			const token *prev = &tk[i - 1];
			bool operand_end = prev->kind == TK_IDENT || prev->kind == TK_NUM || tok_is(prev, ")") || tok_is(prev, "]");
			if (tk[i].kind == TK_IDENT && operand_end && !tok_is(prev, "="))
				return i;
		}
		if (depth == 0 && tok_is(&tk[i], "="))
			rhs = true;
		if (tok_is(&tk[i], "(") || tok_is(&tk[i], "["))
			depth++;
		else if (tok_is(&tk[i], ")") || tok_is(&tk[i], "]"))
			depth--;
	}
	return i;
}

/* compute = ident "[" axis ("," axis)* "]" "=" expr ";"? */
static int compute(parser *ps)
{
	token *t = peek(ps);
	const char *name = ident(ps, "a tensor name");
	if (!name)
		return -1;
	if (is_reserved(name) || find_tensor(ps, name))
		return error_at(ps, t, "'%s' is already defined", name);
	ps->stmt_start = ps->pos;
	ps->stmt_end = statement_end(ps);
	ps->nodes = 0;
	expect(ps, "[");
	kiln_iter *axes[KILN_MAX_DIMS];
	int n = 0;
	ps->nscope = 0;
	if (!at(ps, "]"))
		do {
			if (n == KILN_MAX_DIMS)
				return error_at(ps, peek(ps), "more than %d axes", KILN_MAX_DIMS);
			token *at_tok = peek(ps);
			axes[n] = axis_decl(ps, false);
			if (!axes[n] || push_axis(ps, at_tok, axes[n], false))
				return -1;
			n++;
		} while (consume(ps, ","));
	expect(ps, "]");
	expect(ps, "=");
	kiln_expr *body = expr(ps);
	consume(ps, ";");
	if (failed(ps) || !body)
		return -1;
	kiln_tensor *x = kiln_compute_expr(ps->ctx, name, n, axes, body);
	ps->nscope = 0;
	if (!x)
		return api_error(ps, t);
	return add_tensor(ps, t, name, x);
}

static int op_decl(parser *ps)
{
	kiln_program *p = ps->p;
	token *t = peek(ps);
	const char *name = ident(ps, "the op's name");
	if (!name)
		return -1;
	for (int i = 0; i < p->nop; i++)
		if (!strcmp(p->op[i]->name, name))
			return error_at(ps, t, "op '%s' is defined twice", name);
	if (p->nop == MAX_OPS)
		return error_at(ps, t, "more than %d ops in one file", MAX_OPS);
	ps->op = ir_alloc(ps->ctx, sizeof *ps->op);
	ps->op->name = name;
	expect(ps, "(");
	do
		param(ps);
	while (!failed(ps) && consume(ps, ","));
	expect(ps, ")");
	expect(ps, "->");
	const token *outs[MAX_NAMES / 2];
	int nout = 0;
	bool paren = consume(ps, "(");
	do {
		if (nout == MAX_NAMES / 2)
			return error_at(ps, peek(ps), "too many outputs");
		outs[nout] = peek(ps);
		if (ident(ps, "an output name"))
			nout++;
	} while (!failed(ps) && consume(ps, ","));
	if (paren)
		expect(ps, ")");
	expect(ps, "{");
	while (!failed(ps) && !at(ps, "}") && peek(ps)->kind != TK_EOF)
		compute(ps);
	expect(ps, "}");
	if (failed(ps))
		return -1;
	for (int i = 0; i < nout; i++) {
		const char *on = tok_str(ps, outs[i]);
		kiln_tensor *x = find_tensor(ps, on);
		if (!x || kiln_tensor_is_placeholder(x))
			return error_at(ps, outs[i], "output '%s' is not computed in op '%s'", on, name);
		for (int k = 0; k < i; k++)
			if (!strcmp(on, tok_str(ps, outs[k])))
				return error_at(ps, outs[i], "output '%s' is named twice", on);
		ps->op->args[ps->op->nin + ps->op->nout++] = x;
	}
	p->op[p->nop++] = ps->op;
	return 0;
}

/* ---- schedules ---- */

static const char *const targets[] = {"llvm", "wasm", "opencl", "webgl", "webgpu", NULL};

/* schedule = "schedule" ident* "{" primitive* "}" : recorded, applied later */
static int schedule_decl(parser *ps, const token *kw)
{
	if (!ps->op)
		return error_at(ps, kw, "a schedule block must follow the op it schedules");
	te_op *op = ps->op;
	if (op->nblock == MAX_BLOCKS)
		return error_at(ps, kw, "more than %d schedule blocks for op '%s'", MAX_BLOCKS, op->name);
	sched_block *b = &op->block[op->nblock];
	memset(b, 0, sizeof *b);
	while (peek(ps)->kind == TK_IDENT) {
		token *t = peek(ps);
		const char *tn = ident(ps, "a target");
		bool known = false;
		for (int i = 0; targets[i]; i++)
			known |= !strcmp(targets[i], tn);
		if (!known)
			return error_at(ps, t, "unknown target '%s' (llvm, wasm, opencl, webgl, webgpu)", tn);
		if (b->ntarget == 8)
			return error_at(ps, t, "too many targets");
		b->target[b->ntarget++] = tn;
		consume(ps, ",");
	}
	if (expect(ps, "{"))
		return -1;
	b->start = ps->pos;
	int depth = 1;
	while (depth > 0 && peek(ps)->kind != TK_EOF) {
		if (at(ps, "{"))
			depth++;
		else if (at(ps, "}"))
			depth--;
		if (depth > 0)
			ps->pos++;
	}
	b->end = ps->pos;
	if (expect(ps, "}"))
		return -1;
	int line, col;
	const char *start;
	line_col(ps->p, kw->loc, &line, &col, &start);
	b->line = line;
	op->nblock++;
	return 0;
}

static const char *thread_names[] = {"", "blockIdx.x", "blockIdx.y", "blockIdx.z", "threadIdx.x",
                                     "threadIdx.y", "threadIdx.z", "vthread.x", "vthread.y", "vthread.z"};

/* stage = ident : a tensor of the op or one a primitive made */
static kiln_stage *stage_ref(parser *ps, kiln_tensor **tensor)
{
	token *t = peek(ps);
	const char *name = ident(ps, "a stage (a tensor name)");
	if (!name)
		return NULL;
	kiln_tensor *x = find_tensor(ps, name);
	if (!x) {
		error_at(ps, t, "unknown tensor '%s'", name);
		return NULL;
	}
	if (tensor)
		*tensor = x;
	kiln_stage *st = kiln_stage_of(ps->s, x);
	if (!st)
		api_error(ps, t);
	return st;
}

/* The axis of st called name: a loop of it now, or one of its op's axes. */
static kiln_iter *axis_named(sch_stage *st, const char *name)
{
	for (int i = 0; i < st->nleaf; i++)
		if (!strcmp(kiln_iter_name(st->leaf[i]), name))
			return st->leaf[i];
	for (int i = 0; i < st->op->naxis; i++)
		if (!strcmp(kiln_iter_name(st->op->axis[i]), name))
			return st->op->axis[i];
	for (int i = 0; i < st->op->nreduce; i++)
		if (!strcmp(kiln_iter_name(st->op->reduce[i]), name))
			return st->op->reduce[i];
	for (int i = 0; i < st->nrel; i++) {
		sch_rel *r = &st->rel[i];
		ir_iter *c[3] = {r->outer, r->inner, r->fused};
		for (int k = 0; k < 3; k++)
			if (c[k] && !strcmp(kiln_iter_name(c[k]), name))
				return c[k];
	}
	return NULL;
}

/* axis_ref = stage "." ident | ident (in the stage already named) */
static kiln_iter *axis_ref(parser *ps, kiln_stage **stp, bool need_stage)
{
	kiln_stage *st = *stp;
	/* "S.a", or "a" of the stage before; "ko.v" alone is an axis of that stage, not a stage ko */
	if (need_stage || !st ||
	    (peek(ps)->kind == TK_IDENT && tok_is(peek2(ps), ".") && find_tensor(ps, tok_str(ps, peek(ps))))) {
		kiln_stage *named = stage_ref(ps, NULL);
		if (!named)
			return NULL;
		if (st && named != st && !need_stage) {
			error_at(ps, &ps->p->tok[ps->pos - 1], "expected an axis of stage '%s'", st->op->name);
			return NULL;
		}
		st = *stp = named;
		if (expect(ps, "."))
			return NULL;
	}
	token *t = peek(ps);
	const char *name = ident(ps, "an axis name");
	if (!name)
		return NULL;
	kiln_iter *it = axis_named(st, name);
	/* axes the primitives name themselves have dotted names (rfactor's ko.v):
	 * the longest name that is an axis wins (ko.v over a ko beside it) */
	int at = ps->pos;
	const char *full = name;
	while (tok_is(peek(ps), ".") && peek2(ps)->kind == TK_IDENT) {
		ps->pos++;
		full = ir_fmt(ps->ctx, "%s.%s", full, ident(ps, "an axis name"));
		kiln_iter *longer = axis_named(st, full);
		if (longer) {
			it = longer;
			name = full;
			at = ps->pos;
		}
	}
	ps->pos = at;
	if (!it)
		error_at(ps, t, "stage '%s' has no axis '%s'", st->op->name, name);
	return it;
}

/* Names a new axis made by a primitive, as the user wrote it (the printed IR shows it). */
static int name_axis(parser *ps, sch_stage *st, const token *t, ir_iter *it)
{
	const char *name = tok_str(ps, t);
	kiln_iter *old = axis_named(st, name);
	if (old && old != it)
		return error_at(ps, t, "stage '%s' already has an axis '%s'", st->op->name, name);
	it->var->var.name = name; /* fresh from the primitive: no other node names it */
	return 0;
}

/* "->" ident ("," ident)* with exactly n names */
static int new_names(parser *ps, int n, const token **out)
{
	if (expect(ps, "->"))
		return -1;
	for (int i = 0; i < n; i++) {
		if (i)
			consume(ps, ",");
		out[i] = peek(ps);
		if (!ident(ps, "a name for the new axis or tensor"))
			return -1;
	}
	return 0;
}

static int new_tensor(parser *ps, const token *t, kiln_tensor *x)
{
	const char *name = tok_str(ps, t);
	if (find_tensor(ps, name) || is_reserved(name))
		return error_at(ps, t, "'%s' is already a name here", name);
	if (ps->nnew == MAX_NAMES)
		return error_at(ps, t, "too many new tensors");
	x->name = name;
	x->op->name = name;
	ps->fresh[ps->nnew++] = (named_tensor){name, x};
	return 0;
}

static int scope_named(parser *ps, kiln_scope *sc)
{
	token *t = peek(ps);
	const char *n = ident(ps, "a scope (global, shared, local)");
	if (!n)
		return -1;
	if (!strcmp(n, "global"))
		*sc = KILN_SCOPE_GLOBAL;
	else if (!strcmp(n, "shared"))
		*sc = KILN_SCOPE_SHARED;
	else if (!strcmp(n, "local"))
		*sc = KILN_SCOPE_LOCAL;
	else
		return error_at(ps, t, "unknown scope '%s' (global, shared, local)", n);
	return 0;
}

/* One primitive; its C API call's error is reported at its keyword. */
static int primitive(parser *ps)
{
	token *kw = peek(ps);
	const char *p = ident(ps, "a schedule primitive");
	if (!p)
		return -1;
	kiln_stage *st = NULL;
	kiln_tensor *t = NULL;
	const token *names[4];
	int rc = 0;
	if (!strcmp(p, "split") || !strcmp(p, "split_nparts")) {
		kiln_iter *it = axis_ref(ps, &st, true), *o, *i;
		int64_t f = integer(ps, "the factor");
		if (!it || new_names(ps, 2, names))
			return -1;
		rc = (p[5] ? kiln_split_nparts : kiln_split)(st, it, f, &o, &i);
		if (!rc && !name_axis(ps, st, names[0], o))
			name_axis(ps, st, names[1], i);
	} else if (!strcmp(p, "fuse")) {
		kiln_iter *a = axis_ref(ps, &st, true), *b, *f;
		consume(ps, ",");
		b = a ? axis_ref(ps, &st, false) : NULL;
		if (!b || new_names(ps, 1, names))
			return -1;
		if (!(rc = kiln_fuse(st, a, b, &f)))
			name_axis(ps, st, names[0], f);
	} else if (!strcmp(p, "tile")) {
		kiln_iter *x = axis_ref(ps, &st, true), *y, *r[4];
		consume(ps, ",");
		y = x ? axis_ref(ps, &st, false) : NULL;
		int64_t fx = integer(ps, "the x factor");
		consume(ps, ",");
		int64_t fy = integer(ps, "the y factor");
		if (!y || new_names(ps, 4, names))
			return -1;
		rc = kiln_tile(st, x, y, fx, fy, &r[0], &r[1], &r[2], &r[3]);
		for (int k = 0; k < 4 && !rc && !failed(ps); k++)
			name_axis(ps, st, names[k], r[k]);
	} else if (!strcmp(p, "reorder")) {
		kiln_iter *order[KILN_MAX_DIMS * 4];
		int n = 0;
		do {
			if (n == KILN_MAX_DIMS * 4)
				return error_at(ps, peek(ps), "too many axes");
			order[n] = axis_ref(ps, &st, n == 0);
			if (!order[n++])
				return -1;
		} while (consume(ps, ","));
		rc = kiln_reorder(st, n, order);
	} else if (!strcmp(p, "vectorize") || !strcmp(p, "unroll") || !strcmp(p, "parallel")) {
		kiln_iter *it = axis_ref(ps, &st, true);
		if (!it)
			return -1;
		rc = (p[0] == 'v' ? kiln_vectorize : p[0] == 'u' ? kiln_unroll : kiln_parallel)(st, it);
	} else if (!strcmp(p, "bind")) {
		kiln_iter *it = axis_ref(ps, &st, true);
		token *th = peek(ps);
		const char *a = ident(ps, "a thread index (blockIdx.x, threadIdx.y, vthread.z, ...)");
		if (!it || !a || expect(ps, "."))
			return -1;
		const char *b = ident(ps, "x, y or z");
		if (!b)
			return -1;
		const char *full = ir_fmt(ps->ctx, "%s.%s", a, b);
		int k = 1;
		while (k < 10 && strcmp(thread_names[k], full))
			k++;
		if (k == 10)
			return error_at(ps, th, "unknown thread index '%s' (blockIdx, threadIdx or vthread; .x, .y or .z)", full);
		rc = kiln_bind(st, it, (kiln_thread)k);
	} else if (!strcmp(p, "compute_at")) {
		kiln_stage *prod = stage_ref(ps, NULL), *parent = NULL;
		kiln_iter *it = prod ? axis_ref(ps, &parent, true) : NULL;
		if (!it)
			return -1;
		rc = kiln_compute_at(prod, parent, it);
	} else if (!strcmp(p, "compute_inline") || !strcmp(p, "compute_root")) {
		if (!(st = stage_ref(ps, NULL)))
			return -1;
		rc = (p[8] == 'i' ? kiln_compute_inline : kiln_compute_root)(st);
	} else if (!strcmp(p, "set_scope")) {
		kiln_scope sc;
		if (!(st = stage_ref(ps, NULL)) || scope_named(ps, &sc))
			return -1;
		rc = kiln_set_scope(st, sc);
	} else if (!strcmp(p, "storage_order")) {
		int dims[KILN_MAX_DIMS], n = 0;
		if (!(st = stage_ref(ps, NULL)))
			return -1;
		do {
			if (n == KILN_MAX_DIMS)
				return error_at(ps, peek(ps), "too many dimensions");
			int64_t d = integer(ps, "a dimension");
			dims[n++] = d < 0 || d > KILN_MAX_DIMS ? -1 : (int)d;
		} while (!failed(ps) && consume(ps, ","));
		if (failed(ps))
			return -1;
		rc = kiln_storage_order(st, n, dims);
	} else if (!strcmp(p, "storage_align")) {
		/* storage_align P dim, factor, offset */
		if (!(st = stage_ref(ps, NULL)))
			return -1;
		int64_t d = integer(ps, "a dimension");
		expect(ps, ",");
		int64_t f = integer(ps, "the factor");
		expect(ps, ",");
		int64_t o = integer(ps, "the offset");
		if (failed(ps))
			return -1;
		if (d < 0 || d >= KILN_MAX_DIMS)
			return error_at(ps, kw, "storage_align: dimension %lld is out of range", (long long)d);
		rc = kiln_storage_align(st, (int)d, f, o);
	} else if (!strcmp(p, "double_buffer")) {
		if (!(st = stage_ref(ps, NULL)))
			return -1;
		rc = kiln_double_buffer(st);
	} else if (!strcmp(p, "cache_read")) {
		kiln_scope sc;
		kiln_stage *readers[MAX_NAMES];
		int n = 0;
		/* any tensor, an input too: what it reads is a copy of a region of it */
		token *tt = peek(ps);
		const char *tn = ident(ps, "a tensor name");
		if (!tn)
			return -1;
		if (!(t = find_tensor(ps, tn)))
			return error_at(ps, tt, "unknown tensor '%s'", tn);
		if (scope_named(ps, &sc))
			return -1;
		do {
			if (n == MAX_NAMES)
				return error_at(ps, peek(ps), "too many readers");
			if (!(readers[n++] = stage_ref(ps, NULL)))
				return -1;
		} while (consume(ps, ","));
		if (new_names(ps, 1, names))
			return -1;
		kiln_tensor *c = kiln_cache_read(ps->s, t, sc, n, readers);
		if (!c)
			return api_error(ps, kw);
		return new_tensor(ps, names[0], c);
	} else if (!strcmp(p, "cache_write")) {
		kiln_scope sc;
		if (!stage_ref(ps, &t) || scope_named(ps, &sc) || new_names(ps, 1, names))
			return -1;
		kiln_tensor *c = kiln_cache_write(ps->s, t, sc);
		if (!c)
			return api_error(ps, kw);
		return new_tensor(ps, names[0], c);
	} else if (!strcmp(p, "rfactor")) {
		kiln_iter *it = axis_ref(ps, &st, true);
		if (!it || new_names(ps, 1, names))
			return -1;
		const char *axis = kiln_iter_name(it);
		kiln_tensor *rf = kiln_rfactor(ps->s, st->outs[0], it);
		if (!rf)
			return api_error(ps, kw);
		/* the partial sums' new leading axis keeps the factored axis' name */
		rf->op->axis[0]->var->var.name = axis;
		return new_tensor(ps, names[0], rf);
	} else {
		return error_at(ps, kw, "unknown schedule primitive '%s'", p);
	}
	consume(ps, ";");
	if (rc && !failed(ps))
		return error_at(ps, kw, "%s failed", p);
	if (rc)
		return api_error(ps, kw);
	return failed(ps) ? -1 : 0;
}

/* Applies block b of op to ps->s. */
static int apply_block(parser *ps, const sched_block *b)
{
	ps->pos = b->start;
	while (!failed(ps) && ps->pos < b->end)
		if (primitive(ps))
			return -1;
	if (!failed(ps) && ps->pos > b->end)
		return error_at(ps, &ps->p->tok[b->end], "the primitive runs past the end of the block");
	return failed(ps) ? -1 : 0;
}

static te_op *find_op(const kiln_program *p, const char *name)
{
	for (int i = 0; p && name && i < p->nop; i++)
		if (!strcmp(p->op[i]->name, name))
			return p->op[i];
	return NULL;
}

static bool names_target(const sched_block *b, const char *target)
{
	for (int i = 0; i < b->ntarget; i++)
		if (!strcmp(b->target[i], target))
			return true;
	return false;
}

/* A schedule of op made by the blocks chosen by use (block indices, in order). */
static kiln_schedule *schedule_with(kiln_program *p, te_op *op, int n, const int *use)
{
	parser ps = {.p = p, .ctx = p->ctx, .op = op};
	ps.s = kiln_schedule_create(p->ctx, op->nout, op->args + op->nin);
	if (!ps.s)
		return NULL;
	for (int i = 0; i < n; i++)
		if (apply_block(&ps, &op->block[use[i]]))
			return NULL;
	return ps.s;
}

kiln_schedule *kiln_program_schedule(kiln_program *p, const char *name, const char *target, const char **which)
{
	te_op *op = find_op(p, name);
	if (!op)
		return p ? (ir_error(p->ctx, "no op '%s' in %s", name ? name : "(NULL)", p->file), NULL) : NULL;
	/* blocks name a target kind: "llvm -mcpu=haswell" takes the llvm blocks, webgpu-cpu the webgpu ones */
	kiln_target t;
	char err[256];
	if (kiln_target_parse(target, &t, err, sizeof err))
		return ir_error(p->ctx, "schedule: %s", err), NULL;
	int use[MAX_BLOCKS], n = 0;
	for (int pass = 0; pass < 2 && n == 0; pass++)
		for (int i = 0; i < op->nblock; i++)
			if (pass == 0 ? names_target(&op->block[i], t.name) : op->block[i].ntarget == 0)
				use[n++] = i;
	if (n == 0) {
		if (which)
			*which = "default";
		return kiln_schedule_for(p->ctx, target, op->nout, op->args + op->nin);
	}
	if (which) {
		const sched_block *b = &op->block[use[0]];
		*which = ir_fmt(p->ctx, "schedule%s%s at %s:%d", b->ntarget ? " " : "", b->ntarget ? t.name : "", p->file,
		                b->line);
	}
	return schedule_with(p, op, n, use);
}

int kiln_program_num_ops(const kiln_program *p) { return p ? p->nop : 0; }

const char *kiln_program_op_name(const kiln_program *p, int i) { return p && i >= 0 && i < p->nop ? p->op[i]->name : NULL; }

int kiln_program_args(const kiln_program *p, const char *name, int *nin, kiln_tensor ***args)
{
	te_op *op = find_op(p, name);
	if (!op)
		return -1;
	if (nin)
		*nin = op->nin;
	if (args)
		*args = op->args;
	return op->nin + op->nout;
}

kiln_program *kiln_parse(kiln_ctx *ctx, const char *file, const char *text)
{
	if (!ctx)
		return NULL;
	if (!text)
		return ir_error(ctx, "kiln_parse: no text"), NULL;
	size_t len = strnlen(text, MAX_TEXT + 1);
	if (len > MAX_TEXT)
		return ir_error(ctx, "%s: more than %d bytes of source", file ? file : "<text>", MAX_TEXT), NULL;
	kiln_program *p = ir_alloc(ctx, sizeof *p);
	p->ctx = ctx;
	p->file = ir_strdup(ctx, file ? file : "<text>");
	p->text = ir_strdup(ctx, text);
	parser ps = {.p = p, .ctx = ctx};
	if (tokenize(&ps))
		return NULL;
	while (!failed(&ps) && peek(&ps)->kind != TK_EOF) {
		token *t = peek(&ps);
		if (consume(&ps, "op"))
			op_decl(&ps);
		else if (consume(&ps, "schedule"))
			schedule_decl(&ps, t);
		else
			error_at(&ps, t, "expected 'op' or 'schedule', found '%.*s'", t->len, t->loc);
	}
	if (failed(&ps))
		return NULL;
	if (p->nop == 0)
		return ir_error(ctx, "%s: no op in the file", p->file), NULL;
	/* every block once, so that a bad primitive is an error now, not at build time */
	for (int i = 0; i < p->nop; i++)
		for (int b = 0; b < p->op[i]->nblock; b++)
			if (!schedule_with(p, p->op[i], 1, &b))
				return NULL;
	return p;
}
