/*
 * wgsl.c — WGSL compute shaders (WebGPU) through the shared C-like printer.
 *
 * Each kernel is a shader module of its own, introduced by a
 * "//@kernel NAME" line (the device splits the source there), so names
 * never meet across kernels and each module enables only what it uses.
 * Tensors are storage buffers at @group(0) @binding(i), i the kernel's
 * parameter order (read-only unless written); shared scope is
 * var<workgroup>; blockIdx / threadIdx come from workgroup_id /
 * local_invocation_id. WGSL has no 64-bit integers: kiln's 64-bit index
 * math is printed as i32 and every buffer must fit it. A grid over 65535
 * workgroups in some dimension is folded: the host dispatches
 * (min(total, 65535), ceil(total / 65535), 1) and the kernel unfolds the
 * flat workgroup number (see wgsl.h).
 */
#include <ctype.h>
#include <string.h>

#include "codegen/c_like.h"
#include "ir/mutate.h"
#include "wgsl.h"

/* What the kernel being printed needs besides its own body. */
#define MAX_VEC4 32

typedef struct {
	bool floordiv, erf, special, f16;
	/* private arrays printed as vec4 variables (register tiles), see vec4_layout */
	int nvec4;
	const ir_buffer *vec4[MAX_VEC4];
	const char **vars[MAX_VEC4]; /* their variables' names, one per four elements */
} wgsl_needs;

/* ---- private arrays as vectors ---- */

typedef struct {
	const ir_buffer *b;
	kiln_ctx *ctx;
	bool vector, other, variable; /* variable: some index is not a constant */
} vec4_use;

static void vec4_access(vec4_use *u, const ir_expr *ix, int lanes)
{
	int64_t rem, c;
	if (!ir_is_const_int(ir_simplify_expr(u->ctx, NULL, (ir_expr *)(lanes == 1 ? ix : ix->kind == IR_RAMP ? ix->ramp.base : ix)), &c))
		u->variable = true;
	if (lanes == 1)
		return;
	if (lanes == 4 && cg_unit_ramp(ix) &&
	    ir_is_const_int(ir_simplify_expr(u->ctx, NULL, ir_mod(u->ctx, ix->ramp.base, ir_i64(u->ctx, 4))), &rem) && !rem)
		u->vector = true;
	else
		u->other = true;
}

static bool vec4_load(const ir_expr *e, void *user)
{
	vec4_use *u = user;
	if (e->kind == IR_LOAD && e->load.buf == u->b)
		vec4_access(u, e->load.index, e->type.lanes);
	return !u->other;
}

static bool vec4_store(const ir_stmt *st, void *user)
{
	vec4_use *u = user;
	if (st->kind == IR_STORE && st->store.buf == u->b)
		vec4_access(u, st->store.index, st->store.value->type.lanes);
	return !u->other;
}

/*
 * Private arrays indexed by constants only, read and written as aligned
 * vec4s (and single elements), become one vec4 variable per four elements:
 * CPU emulators (SwiftShader) keep arrays in memory and variables in
 * registers (matmul 1024^3 in Chromium: 0.89 -> 1.07-1.25 GFLOP/s). An
 * array<vec4> instead of array<f32> made no difference there.
 */
typedef struct {
	cg_src *s;
	wgsl_needs *n;
} vec4_scan;

static bool vec4_layout(const ir_stmt *st, void *user)
{
	vec4_scan *v = user;
	wgsl_needs *n = v->n;
	const ir_buffer *b = st->kind == IR_ALLOCATE ? st->alloc.buf : NULL;
	if (b && b->scope == KILN_SCOPE_LOCAL && b->elem.bits == 32 && b->elem.code != KILN_BOOL && b->size % 4 == 0 &&
	    n->nvec4 < MAX_VEC4) {
		vec4_use u = {b, v->s->ctx, false, false, false};
		ir_visit_stmts(st->alloc.body, vec4_store, &u);
		ir_visit_stmt_exprs(st->alloc.body, vec4_load, &u);
		if (u.vector && !u.other && !u.variable) {
			/* names from the kernel's name table, so none can collide;
			 * each slot's address is its key */
			const char **vars = ir_alloc(v->s->ctx, sizeof *vars * (size_t)(b->size / 4));
			const char *base = cg_name_of(v->s, b, b->name);
			for (int64_t i = 0; i < b->size / 4; i++)
				vars[i] = cg_name_of(v->s, &vars[i], cg_fmt(v->s, "%s_%lld", base, (long long)i));
			n->vars[n->nvec4] = vars;
			n->vec4[n->nvec4++] = b;
		}
	}
	return true;
}

/* The names of b's vec4 variables, or NULL when b is an array. */
static const char **vec4_vars(cg_src *s, const ir_buffer *b)
{
	wgsl_needs *n = s->user;
	for (int i = 0; i < n->nvec4; i++)
		if (n->vec4[i] == b)
			return n->vars[i];
	return NULL;
}

/* The variable holding elements c..c+3 (lanes 4), or element c's lane (lanes 1). */
static char *vec4_ref(cg_src *s, const char **vars, const ir_expr *ix, int lanes)
{
	int64_t c = 0;
	ir_is_const_int(ir_simplify_expr(s->ctx, NULL, (ir_expr *)(lanes == 1 ? ix : ix->ramp.base)), &c);
	return lanes == 1 ? cg_fmt(s, "%s.%s", vars[c / 4], cg_lane(s, (int)(c % 4))) : cg_fmt(s, "%s", vars[c / 4]);
}

static const char *scalar(cg_src *s, ir_type t)
{
	switch (t.code) {
	case KILN_BOOL: return "bool";
	case KILN_FLOAT:
		if (t.bits == 32)
			return "f32";
		if (t.bits == 16)
			return "f16";
		cg_fail(s, "WGSL has no %d-bit floats (f32, and f16 with shader-f16)", t.bits);
		return "f32";
	case KILN_UINT:
		if (t.bits == 32 || t.bits == 64)
			return "u32";
		break;
	default:
		/* 64-bit index math narrowed: every buffer is checked to fit i32 */
		if (t.bits == 32 || t.bits == 64)
			return "i32";
		break;
	}
	cg_fail(s, "WGSL has no %d-bit integers (i32 and u32 only)", t.bits);
	return "i32";
}

static const char *wg_type(cg_src *s, ir_type t, char *buf)
{
	if (t.lanes > 1)
		snprintf(buf, 32, "vec%d<%s>", t.lanes, scalar(s, t));
	else
		snprintf(buf, 32, "%s", scalar(s, t));
	return buf;
}

static void wg_int_imm(cg_src *s, ir_type t, int64_t v)
{
	if (t.code == KILN_BOOL)
		fputs(v ? "true" : "false", s->f);
	else if (t.code == KILN_UINT && (v < 0 || v > UINT32_MAX))
		cg_fail(s, "the integer %lld does not fit WGSL's u32", (long long)v);
	else if (t.code == KILN_UINT)
		fprintf(s->f, "%lldu", (long long)v);
	else if (v > INT32_MAX || v < INT32_MIN)
		cg_fail(s, "the integer %lld does not fit WGSL's i32", (long long)v);
	else
		fprintf(s->f, "%lld", (long long)v);
}

static char *wg_declare(cg_src *s, ir_type t, const char *name, bool mut)
{
	char tb[32];
	return cg_fmt(s, "%s %s: %s", mut ? "var" : "let", name, wg_type(s, t, tb));
}

static bool scan(const ir_expr *e, void *user)
{
	wgsl_needs *n = user;
	if ((e->kind == IR_DIV || e->kind == IR_MOD) && ir_is_int(e->type))
		n->floordiv = true;
	if (e->kind == IR_CALL && e->call.op == KILN_ERF)
		n->erf = true;
	if (e->kind == IR_FLOAT_IMM && (e->f != e->f || e->f == 1.0 / 0.0 || e->f == -1.0 / 0.0))
		n->special = true;
	if (e->type.code == KILN_FLOAT && e->type.bits == 16)
		n->f16 = true;
	return true;
}

static bool identifier(const char *n)
{
	if (!(isalpha((unsigned char)n[0]) || (n[0] == '_' && n[1] && n[1] != '_')))
		return false;
	for (const char *p = n; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_')
			return false;
	return true;
}

static bool written(const ir_kernel *k, const ir_buffer *b)
{
	for (int w = 0; w < k->nwritten; w++)
		if (k->written[w] == b)
			return true;
	return false;
}

static void wg_kernel_begin(cg_src *s)
{
	const ir_kernel *k = s->k;
	wgsl_needs *n = s->user;
	char tb[32];
	memset(n, 0, sizeof *n);
	ir_visit_stmt_exprs(k->body, scan, n);
	ir_visit_stmts(k->body, vec4_layout, &(vec4_scan){s, n});
	for (int p = 0; p < k->nparam; p++) {
		const ir_buffer *b = k->params[p];
		if (b->elem.bits != 32 && !(b->elem.code == KILN_FLOAT && b->elem.bits == 16))
			cg_fail(s, "tensor '%s' has %d-bit elements; WGSL storage buffers hold f32, i32, u32 and f16", b->name,
			        b->elem.bits);
		if (b->elem.code == KILN_BOOL)
			cg_fail(s, "tensor '%s' is bool; WGSL storage buffers cannot hold bools", b->name);
		if (b->elem.code == KILN_FLOAT && b->elem.bits == 16)
			n->f16 = true;
		if (b->size > INT32_MAX)
			cg_fail(s, "tensor '%s' has %lld elements; WGSL indexes with i32", b->name, (long long)b->size);
	}
	if (!identifier(k->name))
		cg_fail(s, "kernel name '%s' is not a WGSL identifier (rename the function)", k->name);
	if (k->block[0] > 256 || k->block[1] > 256 || k->block[2] > 64)
		cg_fail(s, "kernel '%s' has workgroups of %lld x %lld x %lld; WebGPU allows 256 x 256 x 64", k->name,
		        (long long)k->block[0], (long long)k->block[1], (long long)k->block[2]);
	int64_t total = k->grid[0] * k->grid[1] * k->grid[2];
	bool fold = k->grid[0] > KILN_WGSL_MAX_GROUPS || k->grid[1] > KILN_WGSL_MAX_GROUPS || k->grid[2] > KILN_WGSL_MAX_GROUPS;
	if (total > (int64_t)KILN_WGSL_MAX_GROUPS * KILN_WGSL_MAX_GROUPS)
		cg_fail(s, "kernel '%s' launches %lld workgroups; WebGPU dispatches at most 65535 x 65535 (tile coarser)",
		        k->name, (long long)total);
	if (s->err)
		return;
	fprintf(s->f, "//@kernel %s\n", k->name);
	if (n->f16)
		fputs("enable f16;\n", s->f);
	for (int p = 0; p < k->nparam; p++) {
		const ir_buffer *b = k->params[p];
		fprintf(s->f, "@group(0) @binding(%d) var<storage, %s> %s: array<%s>;\n", p,
		        written(k, b) ? "read_write" : "read", cg_name_of(s, b, b->name), wg_type(s, b->elem, tb));
	}
	for (int i = 0; i < k->nshared; i++)
		fprintf(s->f, "var<workgroup> %s: array<%s, %lld>;\n", cg_name_of(s, k->shared[i], k->shared[i]->name),
		        wg_type(s, k->shared[i]->elem, tb), (long long)k->shared[i]->size);
	fprintf(s->f, "\n@compute @workgroup_size(%lld, %lld, %lld)\nfn %s(@builtin(workgroup_id) kiln_wid: vec3<u32>, "
	              "@builtin(local_invocation_id) kiln_lid: vec3<u32>%s)\n{\n",
	        (long long)k->block[0], (long long)k->block[1], (long long)k->block[2], k->name,
	        fold ? ", @builtin(num_workgroups) kiln_nwg: vec3<u32>" : "");
	s->indent = 1;
	static const char *axis = "xyz";
	if (fold) { /* workgroup_id and num_workgroups are uniform: the early return keeps barriers legal */
		cg_line(s, "let kiln_flat: u32 = kiln_wid.x + kiln_wid.y * kiln_nwg.x;");
		cg_line(s, "if (kiln_flat >= %lldu) {", (long long)total);
		cg_line(s, "  return;");
		cg_line(s, "}");
	}
	for (int t = KILN_BLOCK_X; t <= KILN_THREAD_Z; t++) {
		if (!k->index[t])
			continue;
		const char *v = cg_name_of(s, k->index[t], k->index[t]->var.name);
		int d = t <= KILN_BLOCK_Z ? t - KILN_BLOCK_X : t - KILN_THREAD_X;
		if (t > KILN_BLOCK_Z)
			cg_line(s, "let %s: i32 = i32(kiln_lid.%c);", v, axis[d]);
		else if (!fold)
			cg_line(s, "let %s: i32 = i32(kiln_wid.%c);", v, axis[d]);
		else if (d == 0)
			cg_line(s, "let %s: i32 = i32(kiln_flat %% %lldu);", v, (long long)k->grid[0]);
		else if (d == 1)
			cg_line(s, "let %s: i32 = i32((kiln_flat / %lldu) %% %lldu);", v, (long long)k->grid[0],
			        (long long)k->grid[1]);
		else
			cg_line(s, "let %s: i32 = i32(kiln_flat / %lldu);", v, (long long)(k->grid[0] * k->grid[1]));
	}
}

/* The helpers the body called, after it (WGSL declares in any order). */
static void wg_kernel_end(cg_src *s)
{
	wgsl_needs *n = s->user;
	fputs("}\n", s->f);
	if (n->floordiv)
		fputs("fn kiln_floordiv(a: i32, b: i32) -> i32 { let q = a / b; let r = a % b; "
		      "return select(q, q - 1, r != 0 && ((r < 0) != (b < 0))); }\n"
		      "fn kiln_floormod(a: i32, b: i32) -> i32 { let r = a % b; "
		      "return select(r, r + b, r != 0 && ((r < 0) != (b < 0))); }\n",
		      s->f);
	if (n->erf) /* Abramowitz-Stegun 7.1.26; WGSL has no erf and no overloads */
		fputs("fn kiln_erf(x: f32) -> f32 { let t = 1.0 / (1.0 + 0.3275911 * abs(x)); let p = t * (0.254829592 + t * "
		      "(-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))); "
		      "return sign(x) * (1.0 - p * exp(-x * x)); }\n"
		      "fn kiln_erf2(x: vec2<f32>) -> vec2<f32> { return vec2<f32>(kiln_erf(x.x), kiln_erf(x.y)); }\n"
		      "fn kiln_erf3(x: vec3<f32>) -> vec3<f32> { return vec3<f32>(kiln_erf(x.x), kiln_erf(x.y), kiln_erf(x.z)); }\n"
		      "fn kiln_erf4(x: vec4<f32>) -> vec4<f32> { return vec4<f32>(kiln_erf(x.x), kiln_erf(x.y), kiln_erf(x.z), "
		      "kiln_erf(x.w)); }\n",
		      s->f);
	if (n->special) /* a user function is never evaluated at shader creation, where infinities are errors */
		fputs("fn kiln_f32_bits(b: u32) -> f32 { return bitcast<f32>(b); }\n", s->f);
}

/* Lane i's index: base + i of a unit ramp, else lane i of the index vector. */
static char *lane_index(cg_src *s, const char *iv, bool ramp, int i)
{
	if (ramp)
		return i ? cg_fmt(s, "%s + %d", iv, i) : cg_fmt(s, "%s", iv);
	return cg_fmt(s, "%s.%s", iv, cg_lane(s, i));
}

static char *wg_load(cg_src *s, const ir_expr *e)
{
	const ir_buffer *b = e->load.buf;
	const char *name = cg_name_of(s, b, b->name);
	const ir_expr *ix = e->load.index;
	int n = e->type.lanes;
	char tb[32];
	const char **vars = vec4_vars(s, b);
	if (vars)
		return vec4_ref(s, vars, ix, n);
	if (n == 1)
		return cg_fmt(s, "%s[%s]", name, cg_expr(s, ix));
	if (ix->kind == IR_BROADCAST)
		return cg_fmt(s, "%s(%s[%s])", wg_type(s, e->type, tb), name, cg_expr(s, ix->bcast.value));
	bool ramp = cg_unit_ramp(ix);
	const char *iv = cg_temp(s, ramp ? ix->ramp.base : ix);
	char *lanes = cg_fmt(s, "%s", "");
	for (int i = 0; i < n; i++)
		lanes = cg_fmt(s, "%s%s%s[%s]", lanes, i ? ", " : "", name, lane_index(s, iv, ramp, i));
	return cg_fmt(s, "%s(%s)", wg_type(s, e->type, tb), lanes);
}

static void wg_store(cg_src *s, const ir_stmt *st)
{
	const ir_buffer *b = st->store.buf;
	const char *name = cg_name_of(s, b, b->name);
	const ir_expr *ix = st->store.index, *val = st->store.value;
	int n = val->type.lanes;
	const char **vars = vec4_vars(s, b);
	if (vars) {
		char *v = cg_expr(s, val);
		cg_line(s, "%s = %s;", vec4_ref(s, vars, ix, n), v);
		return;
	}
	if (n == 1) {
		char *v = cg_expr(s, val);
		cg_line(s, "%s[%s] = %s;", name, cg_expr(s, ix), v);
		return;
	}
	const char *vv = cg_temp(s, val);
	bool ramp = cg_unit_ramp(ix);
	const char *iv = cg_temp(s, ramp ? ix->ramp.base : ix);
	for (int i = 0; i < n; i++)
		cg_line(s, "%s[%s] = %s.%s;", name, lane_index(s, iv, ramp, i), vv, cg_lane(s, i));
}

static void wg_barrier(cg_src *s) { cg_line(s, "workgroupBarrier();"); }

static void wg_local_array(cg_src *s, const ir_buffer *b)
{
	char tb[32];
	const char **vars = vec4_vars(s, b);
	for (int64_t i = 0; vars && i < b->size / 4; i++)
		cg_line(s, "var %s: %s;", vars[i], wg_type(s, ir_with_lanes(b->elem, 4), tb));
	if (!vars)
		cg_line(s, "var %s: array<%s, %lld>;", cg_name_of(s, b, b->name), wg_type(s, b->elem, tb), (long long)b->size);
}

static const char *wg_math(kiln_intrinsic op, ir_type t)
{
	static const char *erf[] = {"kiln_erf", "kiln_erf", "kiln_erf2", "kiln_erf3", "kiln_erf4"};
	switch (op) {
	case KILN_EXP: return "exp";
	case KILN_LOG: return "log";
	case KILN_SQRT: return "sqrt";
	case KILN_RSQRT: return "inverseSqrt";
	case KILN_TANH: return "tanh";
	case KILN_ERF: return t.lanes <= 4 ? erf[t.lanes] : NULL;
	case KILN_POW: return "pow";
	case KILN_ABS: return "abs";
	case KILN_FLOOR: return "floor";
	case KILN_CEIL: return "ceil";
	case KILN_ROUND: return "round"; /* ties to even, as the oracle */
	default: return NULL;
	}
}

static char *wg_minmax(cg_src *s, const ir_expr *e, const char *a, const char *b)
{
	return cg_fmt(s, "%s(%s, %s)", e->kind == IR_MIN ? "min" : "max", a, b);
}

static char *wg_select(cg_src *s, const ir_expr *e, const char *c, const char *t, const char *f)
{
	return cg_fmt(s, "select(%s, %s, %s)", f, t, c);
}

static char *wg_cast(cg_src *s, ir_type to, const ir_expr *from, const char *v)
{
	char tb[32];
	return cg_fmt(s, "%s(%s)", wg_type(s, to, tb), v);
}

static bool wg_lanes_ok(int n) { return n >= 2 && n <= 4; }

static char *wg_special_float(cg_src *s, double v)
{
	return cg_fmt(s, "kiln_f32_bits(%s)", v != v ? "0x7fc00000u" : v > 0 ? "0x7f800000u" : "0xff800000u");
}

const cg_lang cg_wgsl = {
	.name = "webgpu",
	.type = wg_type,
	.int_imm = wg_int_imm,
	.kernel_begin = wg_kernel_begin,
	.kernel_end = wg_kernel_end,
	.load = wg_load,
	.store = wg_store,
	.barrier = wg_barrier,
	.local_array = wg_local_array,
	.math = wg_math,
	.minmax = wg_minmax,
	.select = wg_select,
	.cast = wg_cast,
	.max_lanes = 4,
	.lanes_ok = wg_lanes_ok,
	.state_size = sizeof(wgsl_needs),
	.special_float = wg_special_float,
	.constructors = true,
	.declare = wg_declare,
	.no_ternary = true,
};
