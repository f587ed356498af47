/*
 * c_like.c — the shared printer of C-like kernel source.
 *
 * Expressions print to strings; whatever must be named first (a vector
 * index that a gather reads lane by lane, a let) becomes a temporary on its
 * own line before the statement that uses it. Every variable and buffer gets
 * a unique, legal identifier: a producer computed inside a consumer's loop
 * reads the consumer's `i` inside its own `i` loop, so shadowing would be a
 * silent bug.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "c_like.h"
#include "ir/mutate.h"

int cg_fail(cg_src *s, const char *fmt, ...)
{
	if (s->err++ == 0) {
		char buf[512];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(buf, sizeof buf, fmt, ap);
		va_end(ap);
		ir_error(s->ctx, "%s codegen: %s", s->lang->name, buf);
	}
	return -1;
}

char *cg_fmt(cg_src *s, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < (int)sizeof buf)
		return ir_strdup(s->ctx, buf);
	char *big = ir_alloc(s->ctx, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return big;
}

void cg_line(cg_src *s, const char *fmt, ...)
{
	for (int i = 0; i < s->indent; i++)
		fputs("  ", s->f);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(s->f, fmt, ap);
	va_end(ap);
	fputc('\n', s->f);
}

/* Reserved words of the languages kiln prints, which a tensor may be named. */
static bool reserved(const char *n)
{
	static const char *words[] = {
		"int", "uint", "long", "ulong", "float", "double", "half", "char", "uchar", "short", "ushort", "bool",
		"void", "for", "if", "else", "while", "do", "return", "const", "restrict", "global", "local", "private",
		"kernel", "constant", "in", "out", "inout", "uniform", "buffer", "shared", "precision", "highp", "mediump",
		"lowp", "sampler2D", "texture", "vec2", "vec3", "vec4", "ivec4", "mat4", "struct", "switch", "case",
		"break", "continue", "default", "static", "sizeof", "goto", "select", "min", "max", "exp", "log", "fn",
		"var", "let", "loop", "main", "true", "false", "discard", "layout", "flat", "smooth", "output", "input",
		/* built-in functions the printers call */
		"sqrt", "rsqrt", "tanh", "erf", "pow", "fabs", "abs", "floor", "ceil", "rint", "round", "fmin", "fmax",
		"barrier", "sign", "clamp", "mix", "texelFetch", "floatBitsToInt", "isnan", "isinf",
		/* WGSL's keywords, reserved words and the built-ins it prints */
		"alias", "const_assert", "diagnostic", "enable", "f16", "f32", "i32", "u32", "override", "requires",
		"array", "atomic", "ptr", "mat2x2", "mat3x3", "mat4x4", "vec2i", "vec3i", "vec4i", "vec2f", "vec3f", "vec4f",
		"vec2u", "vec3u", "vec4u", "vec2h", "vec3h", "vec4h", "bitcast", "inverseSqrt", "NULL", "Self", "abstract",
		"active", "alignas", "alignof", "as", "asm", "asm_fragment", "async", "attribute", "auto", "await", "become",
		"cast", "catch", "class", "co_await", "co_return", "co_yield", "coherent", "column_major", "common",
		"compile", "compile_fragment", "concept", "const_cast", "consteval", "constexpr", "constinit", "crate",
		"debugger", "decltype", "delete", "demote", "demote_to_helper", "dynamic_cast", "enum", "explicit",
		"export", "extends", "extern", "external", "fallthrough", "filter", "final", "finally", "friend", "from",
		"fxgroup", "get", "groupshared", "handle", "impl", "implements", "import", "inline", "instanceof",
		"interface", "invariant", "macro", "macro_rules", "match", "meta", "mod", "module", "move", "mut",
		"mutable", "namespace", "new", "nil", "noexcept", "noinline", "nointerpolation", "non_coherent",
		"noncoherent", "noperspective", "null", "nullptr", "of", "operator", "package", "packoffset",
		"partition", "pass", "patch", "pixelfragment", "precise", "premerge", "priv", "protected", "pub",
		"public", "readonly", "ref", "regardless", "register", "reinterpret_cast", "require", "resource",
		"row_major", "sample", "sampler", "sampler_comparison", "self", "set", "signed",
		"snorm", "static_assert", "static_cast", "std", "subroutine", "super", "target", "template", "this",
		"thread_local", "throw", "trait", "try", "type", "typedef", "typeid", "typename", "typeof", "union",
		"unless", "unorm", "unsafe", "unsized", "use", "using", "varying", "virtual", "volatile", "wgsl",
		"where", "with", "writeonly", "yield", "read", "write", "read_write", "storage", "function",
		"workgroup", "compute", "vertex", "fragment", "binding", "group", "builtin", "location", NULL};
	for (int i = 0; words[i]; i++)
		if (!strcmp(n, words[i]))
			return true;
	/* families: vload4, convert_float4, get_local_id, workgroupBarrier ... */
	static const char *prefixes[] = {"vload", "vstore", "convert_", "get_", "as_", "atomic", "workgroup", NULL};
	for (int i = 0; prefixes[i]; i++)
		if (!strncmp(n, prefixes[i], strlen(prefixes[i])))
			return true;
	return false;
}

static void name_set(cg_src *s, const void *key, const char *name)
{
	if (s->nname == s->namecap) {
		s->namecap = s->namecap ? s->namecap * 2 : 64;
		s->names = realloc(s->names, sizeof *s->names * s->namecap);
	}
	s->names[s->nname++] = (cg_name){key, ir_strdup(s->ctx, name)};
}

const char *cg_name_of(cg_src *s, const void *key, const char *base)
{
	for (int i = 0; i < s->nname; i++)
		if (s->names[i].key == key)
			return s->names[i].name;
	char clean[128];
	size_t n = 0;
	for (const char *p = base; *p && n < sizeof clean - 8; p++)
		clean[n++] = isalnum((unsigned char)*p) ? *p : '_';
	clean[n] = 0;
	/* WGSL refuses a leading "__" and a lone "_" */
	if (!n || isdigit((unsigned char)clean[0]) || reserved(clean) || !strncmp(clean, "gl_", 3) ||
	    !strncmp(clean, "kiln_", 5) || clean[0] == '_') {
		memmove(clean + 2, clean, n + 1);
		clean[0] = 'v';
		clean[1] = '_';
	}
	char *name = ir_strdup(s->ctx, clean);
	for (int suffix = 1;; suffix++) {
		bool taken = false;
		for (int i = 0; i < s->nname && !taken; i++)
			taken = !strcmp(s->names[i].name, name);
		if (!taken)
			break;
		name = cg_fmt(s, "%s_%d", clean, suffix);
	}
	name_set(s, key, name);
	return s->names[s->nname - 1].name;
}

char *cg_decl(cg_src *s, ir_type t, const char *name, bool mut)
{
	char tb[32];
	if (s->lang->declare)
		return s->lang->declare(s, t, name, mut);
	const char *value = s->lang->value_decl ? s->lang->value_decl : "const ";
	return cg_fmt(s, "%s%s %s", mut ? "" : value, s->lang->type(s, t, tb), name);
}

const char *cg_temp(cg_src *s, const ir_expr *e)
{
	char *v = cg_expr(s, e);
	const char *name = cg_fmt(s, "t%d", s->ntmp++);
	cg_line(s, "%s = %s;", cg_decl(s, e->type, name, false), v);
	return name;
}

static const char *binop(int kind)
{
	static const char *ops[] = {[IR_ADD] = "+", [IR_SUB] = "-", [IR_MUL] = "*", [IR_DIV] = "/", [IR_MOD] = "%",
	                            [IR_EQ] = "==", [IR_NE] = "!=", [IR_LT] = "<", [IR_LE] = "<=", [IR_GT] = ">",
	                            [IR_GE] = ">=", [IR_AND] = "&&", [IR_OR] = "||"};
	return ops[kind];
}

static char *float_imm(cg_src *s, ir_type t, double v)
{
	char num[64];
	if ((v != v || v == 1.0 / 0.0 || v == -1.0 / 0.0) && s->lang->special_float)
		return s->lang->special_float(s, v);
	if (v != v)
		return cg_fmt(s, "(0.0f/0.0f)");
	if (v == 1.0 / 0.0 || v == -1.0 / 0.0)
		snprintf(num, sizeof num, "%s(1.0f/0.0f)", v < 0 ? "-" : "");
	else {
		snprintf(num, sizeof num, "%.9g", v);
		if (!strpbrk(num, ".e"))
			strcat(num, ".0");
		if (t.bits == 32)
			strcat(num, "f");
	}
	return cg_fmt(s, "%s", num);
}

bool cg_unit_ramp(const ir_expr *ix)
{
	int64_t st;
	return ix->kind == IR_RAMP && ir_is_const_int(ix->ramp.stride, &st) && st == 1;
}

/* ---- the ranges of integer values, as far as constants and loops tell ---- */

static const ir_range unbounded = {INT64_MIN, INT64_MAX};

static ir_range loop_range(const ir_env *env, const ir_stmt *st)
{
	ir_range mn = ir_const_bounds(env, st->loop.min), ext = ir_const_bounds(env, st->loop.extent);
	if (mn.lo == INT64_MIN || mn.hi == INT64_MAX || ext.hi == INT64_MAX)
		return unbounded;
	return (ir_range){mn.lo, mn.hi + ext.hi - 1};
}

static void push_range(ir_env *env, const ir_expr *var, ir_range r) { ir_env_push(env, var, r.lo, r.hi); }

/* blockIdx in [0, grid), threadIdx in [0, block) */
static void push_thread_ranges(ir_env *env, const ir_kernel *k)
{
	for (int t = KILN_BLOCK_X; t <= KILN_THREAD_Z; t++)
		if (k->index[t])
			ir_env_push(env, k->index[t], 0,
			            (t <= KILN_BLOCK_Z ? k->grid[t - KILN_BLOCK_X] : k->block[t - KILN_THREAD_X]) - 1);
}

static bool is_int64(ir_type t) { return ir_is_int(t) && t.bits == 64; }

typedef struct {
	const ir_env *env;
	bool ok;
	ir_range bad; /* the range of the first value that does not fit */
} narrow_check;

/* The first value that failed the proof, for the message of languages that must narrow. */
static _Thread_local ir_range narrow_bad;

static bool narrow_visit(const ir_expr *e, void *user)
{
	narrow_check *c = user;
	if (is_int64(e->type)) {
		ir_range r = ir_lane_bounds(c->env, e);
		if (c->ok && !(r.lo >= INT32_MIN && r.hi <= INT32_MAX))
			c->bad = r;
		c->ok &= r.lo >= INT32_MIN && r.hi <= INT32_MAX;
	}
	return c->ok;
}

static bool narrow_expr(const ir_env *env, const ir_expr *e)
{
	narrow_check c = {env, true, {0, 0}};
	if (e)
		ir_visit_expr(e, narrow_visit, &c);
	if (!c.ok)
		narrow_bad = c.bad;
	return c.ok;
}

/* Whether every 64-bit integer value st computes provably fits 32 bits:
 * indices are 64-bit in kiln's IR, and on GPUs 64-bit integer arithmetic is
 * two instructions or more. A loaded or converted 64-bit value has no known
 * range, so a kernel touching 64-bit integer data stays 64-bit. */
static bool narrow_stmt(ir_env *env, const ir_stmt *st)
{
	if (!st)
		return true;
	bool ok = true;
	switch (st->kind) {
	case IR_FOR:
		if (!narrow_expr(env, st->loop.min) || !narrow_expr(env, st->loop.extent))
			return false;
		push_range(env, st->loop.var, loop_range(env, st));
		ok = narrow_stmt(env, st->loop.body);
		env->n--;
		return ok;
	case IR_LET_STMT:
		if (!narrow_expr(env, st->let.value))
			return false;
		push_range(env, st->let.var, ir_lane_bounds(env, st->let.value));
		ok = narrow_stmt(env, st->let.body);
		env->n--;
		return ok;
	case IR_ALLOCATE:
		return !is_int64(st->alloc.buf->elem) && narrow_stmt(env, st->alloc.body);
	case IR_IF:
		return narrow_expr(env, st->ifs.cond) && narrow_stmt(env, st->ifs.then) && narrow_stmt(env, st->ifs.els);
	case IR_SEQ:
		for (int i = 0; i < st->seq.n && ok; i++)
			ok = narrow_stmt(env, st->seq.s[i]);
		return ok;
	case IR_STORE:
		return narrow_expr(env, st->store.index) && narrow_expr(env, st->store.value);
	case IR_EVAL:
		return narrow_expr(env, st->eval.e);
	default:
		return true;
	}
}

/* Whether every 64-bit integer of kernel k provably fits 32 bits; if not, why. */
static bool kernel_narrows(const ir_kernel *k, char *why, size_t n)
{
	for (int i = 0; i < k->nparam; i++)
		if (is_int64(k->params[i]->elem))
			return snprintf(why, n, "buffer '%s' holds 64-bit integers", k->params[i]->name), false;
	for (int i = 0; i < k->nshared; i++)
		if (is_int64(k->shared[i]->elem))
			return snprintf(why, n, "shared array '%s' holds 64-bit integers", k->shared[i]->name), false;
	ir_env env = {0};
	push_thread_ranges(&env, k);
	bool ok = narrow_stmt(&env, k->body);
	ir_env_free(&env);
	if (!ok)
		snprintf(why, n, "an index value ranges over [%lld, %lld]", (long long)narrow_bad.lo, (long long)narrow_bad.hi);
	return ok;
}

/* Whether a / b rounds the same toward zero as toward minus infinity:
 * both known non-negative (then C's / and % are kiln's floor division) */
static bool truncation_is_floor(cg_src *s, const ir_expr *e)
{
	ir_range a = ir_const_bounds(&s->env, e->bin.a), b = ir_const_bounds(&s->env, e->bin.b);
	return e->type.lanes == 1 && a.lo >= 0 && b.lo > 0;
}

bool cg_aligned_ramp(cg_src *s, const ir_expr *ix)
{
	int64_t rem;
	return cg_unit_ramp(ix) &&
	       ir_is_const_int(ir_simplify_expr(s->ctx, &s->env, ir_mod(s->ctx, ix->ramp.base, ir_i64(s->ctx, ix->type.lanes))),
	                       &rem) &&
	       rem == 0;
}

/* The name of lane i of a vector: s0..sf in OpenCL C, x y z w where vectors are constructed. */
const char *cg_lane(cg_src *s, int i)
{
	static const char *cl[] = {"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7",
	                           "s8", "s9", "sa", "sb", "sc", "sd", "se", "sf"};
	static const char *gl[] = {"x", "y", "z", "w"};
	return s->lang->constructors ? gl[i & 3] : cl[i & 15];
}

/* A vector of type t from the given lanes (or one value for all of them). */
static char *vec_of(cg_src *s, ir_type t, const char *lanes)
{
	char tb[32];
	if (s->lang->constructors)
		return cg_fmt(s, "%s(%s)", s->lang->type(s, t, tb), lanes);
	return cg_fmt(s, "((%s)(%s))", s->lang->type(s, t, tb), lanes);
}

static char *call(cg_src *s, const ir_expr *e)
{
	ir_type t = e->type;
	char *a = cg_expr(s, e->call.a);
	const char *fn = s->lang->math(e->call.op, t);
	if (fn && e->call.op == KILN_POW)
		return cg_fmt(s, "%s(%s, %s)", fn, a, cg_expr(s, e->call.b));
	if (fn)
		return cg_fmt(s, "%s(%s)", fn, a);
	char *one = t.lanes > 1 ? vec_of(s, t, float_imm(s, ir_elem(t), 1.0)) : float_imm(s, t, 1.0);
	switch (e->call.op) {
	case KILN_SIGMOID:
		return cg_fmt(s, "(%s / (%s + %s(-(%s))))", one, one, s->lang->math(KILN_EXP, t), a);
	case KILN_RSQRT:
		return cg_fmt(s, "(%s / %s(%s))", one, s->lang->math(KILN_SQRT, t), a);
	default:
		cg_fail(s, "no %s for %s", kiln_intrinsic_name(e->call.op), "this type");
		return cg_fmt(s, "0");
	}
}

char *cg_expr(cg_src *s, const ir_expr *e)
{
	const cg_lang *L = s->lang;
	switch (e->kind) {
	case IR_INT_IMM: {
		char *buf = NULL;
		size_t n = 0;
		FILE *saved = s->f, *m = open_memstream(&buf, &n);
		s->f = m;
		L->int_imm(s, e->type, e->i);
		fclose(m);
		s->f = saved;
		char *r = cg_fmt(s, "%s", buf);
		free(buf);
		return r;
	}
	case IR_FLOAT_IMM:
		return float_imm(s, e->type, e->f);
	case IR_VAR:
		return cg_fmt(s, "%s", cg_name_of(s, e, e->var.name));
	case IR_NOT:
		if (e->type.lanes > 1 && L->vector_binary)
			return L->vector_binary(s, e, cg_expr(s, e->bin.a), NULL);
		return cg_fmt(s, "(!%s)", cg_expr(s, e->bin.a));
	case IR_SELECT: {
		char *c = cg_expr(s, e->sel.cond), *t = cg_expr(s, e->sel.t), *f = cg_expr(s, e->sel.f);
		if (e->type.lanes == 1 && !L->no_ternary)
			return cg_fmt(s, "(%s ? %s : %s)", c, t, f);
		return L->select(s, e, c, t, f);
	}
	case IR_IF_THEN_ELSE: {
		/* statements, not a ternary: WGSL's select() evaluates both sides, and
		 * the branch not taken may read out of bounds */
		const char *v = cg_fmt(s, "t%d", s->ntmp++);
		cg_line(s, "%s;", cg_decl(s, e->type, v, true));
		cg_line(s, "if (%s) {", cg_expr(s, e->sel.cond));
		s->indent++;
		cg_line(s, "%s = %s;", v, cg_expr(s, e->sel.t));
		s->indent--;
		cg_line(s, "} else {");
		s->indent++;
		cg_line(s, "%s = %s;", v, cg_expr(s, e->sel.f));
		s->indent--;
		cg_line(s, "}");
		return (char *)v;
	}
	case IR_CAST:
		return L->cast(s, e->type, e->bin.a, cg_expr(s, e->bin.a));
	case IR_CALL:
		return call(s, e);
	case IR_LOAD:
		return L->load(s, e);
	case IR_RAMP: {
		char *lanes = cg_fmt(s, "0");
		for (int i = 1; i < e->type.lanes; i++)
			lanes = cg_fmt(s, "%s, %d", lanes, i);
		return cg_fmt(s, "(%s * %s + %s)", vec_of(s, e->type, lanes), vec_of(s, e->type, cg_expr(s, e->ramp.stride)),
		              vec_of(s, e->type, cg_expr(s, e->ramp.base)));
	}
	case IR_BROADCAST:
		if (e->type.code == KILN_BOOL && s->lang->true_all_ones)
			return vec_of(s, e->type, cg_fmt(s, "-(int)(%s)", cg_expr(s, e->bcast.value)));
		return vec_of(s, e->type, cg_expr(s, e->bcast.value));
	case IR_LET: {
		const char *v = cg_name_of(s, e->let.var, e->let.var->var.name);
		cg_line(s, "%s = %s;", cg_decl(s, e->let.var->type, v, false), cg_expr(s, e->let.value));
		push_range(&s->env, e->let.var, ir_lane_bounds(&s->env, e->let.value));
		char *body = cg_expr(s, e->let.body);
		s->env.n--;
		return body;
	}
	case IR_MIN:
	case IR_MAX:
		return L->minmax(s, e, cg_expr(s, e->bin.a), cg_expr(s, e->bin.b));
	case IR_DIV:
	case IR_MOD:
		if (ir_is_int(e->type) && truncation_is_floor(s, e))
			return cg_fmt(s, "(%s %s %s)", cg_expr(s, e->bin.a), binop(e->kind), cg_expr(s, e->bin.b));
		if (ir_is_int(e->type)) {
			const char *fn = cg_fmt(s, "%s%s", e->kind == IR_DIV ? "div" : "mod",
			                        L->int64 && (e->type.bits < 64 || s->narrow) ? "32" : "");
			if (e->type.lanes == 1)
				return cg_fmt(s, "kiln_floor%s(%s, %s)", fn, cg_expr(s, e->bin.a), cg_expr(s, e->bin.b));
			/* lane by lane: the helpers are scalar */
			const char *a = cg_temp(s, e->bin.a), *b = cg_temp(s, e->bin.b);
			char *lanes = cg_fmt(s, "%s", "");
			for (int i = 0; i < e->type.lanes; i++)
				lanes = cg_fmt(s, "%s%skiln_floor%s(%s.%s, %s.%s)", lanes, i ? ", " : "", fn, a, cg_lane(s, i), b,
				               cg_lane(s, i));
			return vec_of(s, e->type, lanes);
		}
		if (e->kind == IR_MOD) {
			char *a = cg_expr(s, e->bin.a), *b = cg_expr(s, e->bin.b);
			return cg_fmt(s, "(%s - floor(%s / %s) * %s)", a, a, b, b);
		}
		/* fall through */
	default:
		if (ir_is_binary(e->kind)) {
			if (e->type.lanes > 1 && L->vector_binary && (ir_is_compare(e->kind) || e->kind == IR_AND || e->kind == IR_OR))
				return L->vector_binary(s, e, cg_expr(s, e->bin.a), cg_expr(s, e->bin.b));
			const char *op = binop(e->kind);
			if ((e->kind == IR_AND || e->kind == IR_OR) && e->type.lanes > 1)
				op = e->kind == IR_AND ? "&" : "|";
			return cg_fmt(s, "(%s %s %s)", cg_expr(s, e->bin.a), op, cg_expr(s, e->bin.b));
		}
		cg_fail(s, "a '%s' node survived lowering", e->kind == IR_READ ? "tensor read" : "reduce");
		return cg_fmt(s, "0");
	}
}

static void stmt(cg_src *s, const ir_stmt *st)
{
	if (!st || s->err)
		return;
	const cg_lang *L = s->lang;
	switch (st->kind) {
	case IR_FOR: {
		const char *v = cg_name_of(s, st->loop.var, st->loop.var->var.name);
		char *mn = cg_expr(s, st->loop.min), *ext = cg_expr(s, st->loop.extent);
		const char *d = cg_decl(s, st->loop.var->type, v, true);
		if (!strcmp(mn, "0") || !strcmp(mn, "0L"))
			cg_line(s, "for (%s = %s; %s < %s; %s++) {", d, mn, v, ext, v);
		else
			cg_line(s, "for (%s = %s; %s < %s + %s; %s++) {", d, mn, v, mn, ext, v);
		s->indent++;
		push_range(&s->env, st->loop.var, loop_range(&s->env, st));
		stmt(s, st->loop.body);
		s->env.n--;
		s->indent--;
		cg_line(s, "}");
		return;
	}
	case IR_STORE:
		L->store(s, st);
		return;
	case IR_ALLOCATE:
		cg_line(s, "{");
		s->indent++;
		L->local_array(s, st->alloc.buf);
		stmt(s, st->alloc.body);
		s->indent--;
		cg_line(s, "}");
		return;
	case IR_IF:
		cg_line(s, "if (%s) {", cg_expr(s, st->ifs.cond));
		s->indent++;
		stmt(s, st->ifs.then);
		s->indent--;
		if (st->ifs.els) {
			cg_line(s, "} else {");
			s->indent++;
			stmt(s, st->ifs.els);
			s->indent--;
		}
		cg_line(s, "}");
		return;
	case IR_SEQ:
		for (int i = 0; i < st->seq.n; i++)
			stmt(s, st->seq.s[i]);
		return;
	case IR_LET_STMT: {
		const char *v = cg_name_of(s, st->let.var, st->let.var->var.name);
		cg_line(s, "%s = %s;", cg_decl(s, st->let.var->type, v, false), cg_expr(s, st->let.value));
		push_range(&s->env, st->let.var, ir_lane_bounds(&s->env, st->let.value));
		stmt(s, st->let.body);
		s->env.n--;
		return;
	}
	case IR_BARRIER:
		L->barrier(s);
		return;
	case IR_EVAL:
		cg_expr(s, st->eval.e);
		return;
	default:
		cg_fail(s, "a '%s' statement survived lowering", st->kind == IR_PROVIDE ? "provide" : "realize");
	}
}

/* Every vector in a kernel must have a width the language has. */
static bool lanes_check(const ir_expr *e, void *user)
{
	cg_src *s = user;
	if (e->type.lanes > 1 && !s->lang->lanes_ok(e->type.lanes) && !s->err)
		cg_fail(s, "a vector of %d lanes; %s has vectors of 2, 3, 4, 8 or 16 lanes (split the vectorized loop)",
		        e->type.lanes, s->lang->name);
	return !s->err;
}

int cg_print_kernels(kiln_ctx *ctx, const cg_lang *lang, int nfunc, ir_device_func *const *ds, FILE *f)
{
	cg_src s = {f, lang, NULL, ctx, 0, 0, 0, 0, 0, NULL, lang->state_size ? calloc(1, lang->state_size) : NULL};
	if (lang->prelude)
		fputs(lang->prelude, f);
	for (int fi = 0; fi < nfunc && !s.err; fi++) {
		if (s.user) /* the hooks' state is per function */
			memset(s.user, 0, lang->state_size);
		for (int i = 0; i < ds[fi]->nkernel && !s.err; i++) {
			s.k = &ds[fi]->kernels[i];
			s.nname = 0; /* names are per kernel */
			s.ntmp = 0;
			ir_visit_stmt_exprs(s.k->body, lanes_check, &s);
			if (s.err)
				break;
			/* WGSL and GLSL ES have no 64-bit integers: their kernels narrow
			 * every index to 32 bits, and only where the same interval proof
			 * as OpenCL's shows that no value (intermediates included) leaves
			 * the 32-bit range; anything else is refused rather than wrapped */
			char why[160] = "";
			bool fits = kernel_narrows(s.k, why, sizeof why);
			s.narrow = lang->int64 && fits;
			if (!lang->int64 && !fits) {
				cg_fail(&s, "kernel '%s': %s, which %s cannot hold (it has 32-bit integers only)", s.k->name, why,
				        lang->name);
				break;
			}
			s.env.n = 0;
			push_thread_ranges(&s.env, s.k);
			lang->kernel_begin(&s);
			s.indent = 1;
			stmt(&s, s.k->body);
			lang->kernel_end(&s);
			s.indent = 0;
		}
	}
	free(s.names);
	free(s.user);
	ir_env_free(&s.env);
	return s.err ? -1 : 0;
}
