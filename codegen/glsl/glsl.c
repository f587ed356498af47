/*
 * glsl.c — GLSL ES 3.00 (WebGL2) through the shared C-like printer.
 *
 * The WebGL programming model: one fragment per output element. Each kernel
 * is a fragment shader of its own; tensors are R32F textures, element i at
 * texel (i % W, i / W) with W = min(size, KILN_GLSL_WIDTH), read with
 * texelFetch. A kernel writes only the element of its own fragment in each
 * output: that element lives in a local accumulator (so a reduction can
 * read and update it), and becomes the fragment's colour.
 *
 * A fragment may compute several blocks of an output ("rows=L"): its grid
 * covers 1/L of the output's texels, and block r (the texels r*n/L + id)
 * goes to a render target of its own, which the runtime then gathers into
 * place (one more draw). That is how one fragment writes more than 4
 * elements (WebGL's only way: a fragment writes its own texel of each
 * target) while every tensor keeps one layout, so a kernel reading it
 * needs to know nothing.
 * No shared memory, no 64-bit integers: indices are 32-bit ints.
 */
#include <string.h>

#include "codegen/c_like.h"
#include "glsl.h"
#include "ir/mutate.h"
#include "ir/simplify.h"

/* What the hooks need to know about the kernel being printed. */
#define MAX_OUTPUTS 4 /* draw buffers every GLES 3.0 / WebGL2 device has */
#define MAX_TARGETS 8 /* outputs x rows: what most devices allow (the runtime checks its own) */

typedef struct {
	const ir_buffer *out; /* the first global buffer the kernel writes */
	int nout;
	const ir_buffer *outs[MAX_OUTPUTS]; /* all it writes: one render target each */
	int ntex;
	const ir_buffer *tex[64]; /* the global buffers it reads, as textures t0, t1, ... */
	int lanes;                /* elements per texel: 1 (R32F) or 4 (RGBA32F, packed) */
	int rows;                 /* blocks of each output per fragment, a render target each */
	int64_t block;            /* texels per block: the fragments */
	unsigned stored[MAX_OUTPUTS]; /* blocks of each output the kernel stores to (bit r: block r) */
	int function_lanes;       /* the first kernel's, which every kernel of the function shares */
} glsl_state;

/* Texels of a tensor of n elements, lanes per texel; and the width of its texture. */
static int64_t texels(int64_t n, int lanes) { return (n + lanes - 1) / lanes; }

/* Lanes of the kernel's stores to global memory: 4 when it writes whole texels. */
typedef struct {
	ir_mutator m;
	int lanes;
} lane_scan;

static ir_stmt *scan_store(ir_mutator *m, ir_stmt *s)
{
	lane_scan *ls = (lane_scan *)m;
	if (s->kind == IR_STORE && s->store.buf->scope == KILN_SCOPE_GLOBAL)
		ls->lanes = s->store.value->type.lanes;
	return ir_mutate_stmt_children(m, s);
}

int64_t cg_glsl_width(int64_t n) { return n < KILN_GLSL_WIDTH ? (n ? n : 1) : KILN_GLSL_WIDTH; }

static const char *gl_type(cg_src *s, ir_type t, char *buf)
{
	const char *base = t.code == KILN_FLOAT ? "float" : t.code == KILN_BOOL ? "bool" : "int";
	const char *vec = t.code == KILN_FLOAT ? "vec" : t.code == KILN_BOOL ? "bvec" : "ivec";
	if (t.code == KILN_FLOAT && t.bits != 32)
		cg_fail(s, "only float32 tensors (GLSL ES has no %d-bit floats)", t.bits);
	if (t.lanes > 1)
		snprintf(buf, 32, "%s%d", vec, t.lanes);
	else
		snprintf(buf, 32, "%s", base);
	return buf;
}

static void gl_int_imm(cg_src *s, ir_type t, int64_t v)
{
	if (t.code == KILN_BOOL)
		fputs(v ? "true" : "false", s->f);
	else if (v > INT32_MAX || v < INT32_MIN)
		cg_fail(s, "the integer %lld does not fit GLSL's 32-bit int", (long long)v);
	else
		fprintf(s->f, "%lld", (long long)v);
}

/* The accumulator of block r of output o: kiln_out, or kiln_out0, kiln_out1, ... (render target o * rows + r). */
static const char *out_name(cg_src *s, int o, int r)
{
	glsl_state *g = s->user;
	return g->nout * g->rows == 1 ? "kiln_out" : cg_fmt(s, "kiln_out%d", o * g->rows + r);
}

static int out_index(glsl_state *g, const ir_buffer *b)
{
	for (int o = 0; o < g->nout; o++)
		if (g->outs[o] == b)
			return o;
	return -1;
}

static int tex_index(glsl_state *g, const ir_buffer *b)
{
	for (int i = 0; i < g->ntex; i++)
		if (g->tex[i] == b)
			return i;
	return -1;
}

static void gl_kernel_begin(cg_src *s)
{
	const ir_kernel *k = s->k;
	glsl_state *g = s->user;
	int function_lanes = g->function_lanes;
	memset(g, 0, sizeof *g);
	lane_scan ls = {{NULL, NULL, scan_store, NULL}, 1};
	ir_mutate_stmt(&ls.m, k->body);
	g->lanes = ls.lanes;
	g->function_lanes = function_lanes ? function_lanes : g->lanes;
	if (g->lanes != 1 && g->lanes != 4)
		cg_fail(s, "kernel '%s' writes %d elements per fragment; webgl writes 1 (R32F) or 4 (packed RGBA)", k->name,
		        g->lanes);
	if (g->lanes != g->function_lanes)
		cg_fail(s, "kernel '%s' is %s but an earlier kernel of the function is not; pack every stage or none",
		        k->name, g->lanes == 4 ? "packed" : "unpacked");
	for (int p = 0; p < k->nparam; p++)
		if (k->params[p]->elem.code != KILN_FLOAT || k->params[p]->elem.bits != 32)
			cg_fail(s, "tensor '%s' is not float32; the webgl target stores float32 tensors only (R32F textures)",
			        k->params[p]->name);
	if (k->nwritten < 1 || k->nwritten > MAX_OUTPUTS)
		cg_fail(s, "kernel '%s' writes %d tensors; a webgl kernel writes 1 to %d (one render target each)", k->name,
		        k->nwritten, MAX_OUTPUTS);
	/* the written buffers come first (build_device puts them there): render targets; the rest are textures */
	g->nout = k->nwritten < MAX_OUTPUTS ? k->nwritten : MAX_OUTPUTS;
	for (int o = 0; o < g->nout && o < k->nparam; o++) {
		g->outs[o] = k->params[o];
		if (g->outs[o]->size != k->params[0]->size)
			cg_fail(s, "kernel '%s' writes '%s' and '%s' of different sizes; render targets share one grid", k->name,
			        k->params[0]->name, g->outs[o]->name);
	}
	g->out = k->nparam ? k->params[0] : NULL;
	for (int p = g->nout; p < k->nparam && g->ntex < 64; p++)
		g->tex[g->ntex++] = k->params[p];
	if (k->grid[1] != 1 || k->grid[2] != 1 || k->block[1] != 1 || k->block[2] != 1)
		cg_fail(s, "kernel '%s' uses a 2-D or 3-D grid; webgl kernels bind one fused axis (x)", k->name);
	if (!g->out)
		cg_fail(s, "kernel '%s' writes no tensor", k->name);
	if (s->err)
		return;
	int L = g->lanes;
	int64_t n = texels(g->out->size, L);
	if (L == 4 && g->out->size % 4)
		cg_fail(s, "packed output '%s' has %lld elements, not a multiple of 4", g->out->name, (long long)g->out->size);
	int64_t threads = k->grid[0] * k->block[0]; /* one per texel of a block */
	g->rows = threads > 0 && n % threads == 0 && n / threads <= MAX_TARGETS ? (int)(n / threads) : 1;
	g->block = n / g->rows;
	if (threads != g->block)
		cg_fail(s, "kernel '%s' runs %lld threads for %lld outputs; webgl runs one fragment per output element, "
		           "or per element of each of up to %d blocks (bind the output's fused axis without a shifted or "
		           "guarded split)", k->name, (long long)threads, (long long)n, MAX_TARGETS);
	else if (g->nout * g->rows > MAX_TARGETS)
		cg_fail(s, "kernel '%s' writes %d outputs in %d blocks each: %d render targets, more than %d", k->name,
		        g->nout, g->rows, g->nout * g->rows, MAX_TARGETS);
	if (s->err)
		return;
	int64_t w = cg_glsl_width(g->block);
	fprintf(s->f, "//@kernel %s%s", k->name, L == 4 ? " rgba" : "");
	if (g->nout > 1)
		fprintf(s->f, " outputs=%d", g->nout);
	if (g->rows > 1)
		fprintf(s->f, " rows=%d", g->rows);
	fputs("\n#version 300 es\nprecision highp float;\nprecision highp int;\nprecision highp sampler2D;\n", s->f);
	for (int i = 0; i < g->ntex; i++)
		fprintf(s->f, "uniform highp sampler2D t%d; /* %s */\n", i, g->tex[i]->name);
	if (g->nout * g->rows == 1)
		fputs("out vec4 kiln_frag;\n", s->f);
	else
		for (int o = 0; o < g->nout; o++)
			for (int r = 0; r < g->rows; r++)
				fprintf(s->f, "layout(location = %d) out vec4 kiln_frag%d; /* %s, block %d */\n", o * g->rows + r,
				        o * g->rows + r, g->outs[o]->name, r);
	for (int i = 0; i < g->ntex; i++) {
		long long tw = (long long)cg_glsl_width(texels(g->tex[i]->size, L));
		if (L == 1) {
			fprintf(s->f, "float kiln_t%d(int i) { return texelFetch(t%d, ivec2(i %% %lld, i / %lld), 0).r; }\n", i,
			        i, tw, tw);
			continue;
		}
		/* packed: element i is component i % 4 of texel i / 4; kiln_tNv reads 4 aligned elements */
		fprintf(s->f, "vec4 kiln_t%dv(int i) { int t = i / 4; return texelFetch(t%d, ivec2(t %% %lld, t / %lld), 0); }\n",
		        i, i, tw, tw);
		fprintf(s->f, "float kiln_t%d(int i) { return kiln_t%dv(i - i %% 4)[i %% 4]; }\n", i, i);
	}
	fputs("int kiln_floordiv(int a, int b) { int q = a / b; return (a % b != 0 && ((a % b < 0) != (b < 0))) ? q - 1 : q; }\n"
	      "int kiln_floormod(int a, int b) { int r = a % b; return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r; }\n"
	      "float kiln_erf(float x) { float t = 1.0 / (1.0 + 0.3275911 * abs(x)); float p = t * (0.254829592 + t * "
	      "(-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))); "
	      "return sign(x) * (1.0 - p * exp(-x * x)); }\n"
	      "vec2 kiln_erf(vec2 x) { return vec2(kiln_erf(x.x), kiln_erf(x.y)); }\n"
	      "vec3 kiln_erf(vec3 x) { return vec3(kiln_erf(x.x), kiln_erf(x.y), kiln_erf(x.z)); }\n"
	      "vec4 kiln_erf(vec4 x) { return vec4(kiln_erf(x.x), kiln_erf(x.y), kiln_erf(x.z), kiln_erf(x.w)); }\n",
	      s->f);
	fprintf(s->f, "void main()\n{\n");
	s->indent = 1;
	cg_line(s, "int kiln_id = int(gl_FragCoord.y) * %lld + int(gl_FragCoord.x);", (long long)w);
	cg_line(s, "if (kiln_id >= %lld) discard;", (long long)g->block);
	if (k->index[KILN_BLOCK_X])
		cg_line(s, "int %s = kiln_id / %lld;", cg_name_of(s, k->index[KILN_BLOCK_X], "blockIdx.x"),
		        (long long)k->block[0]);
	if (k->index[KILN_THREAD_X])
		cg_line(s, "int %s = kiln_id %% %lld;", cg_name_of(s, k->index[KILN_THREAD_X], "threadIdx.x"),
		        (long long)k->block[0]);
	for (int o = 0; o < g->nout; o++)
		for (int r = 0; r < g->rows; r++)
			cg_line(s, "%s %s = %s;", L == 4 ? "vec4" : "float", out_name(s, o, r), L == 4 ? "vec4(0.0)" : "0.0");
}

static void gl_kernel_end(cg_src *s)
{
	glsl_state *g = s->user;
	for (int o = 0; o < g->nout && !s->err; o++)
		if (g->stored[o] != (1u << g->rows) - 1)
			cg_fail(s, "kernel '%s' computes %d blocks of '%s' per fragment but does not store all of them "
			        "(unroll the loop over the blocks)", s->k->name, g->rows, g->outs[o]->name);
	for (int o = 0; o < g->nout; o++)
		for (int r = 0; r < g->rows; r++) {
			const char *frag = g->nout * g->rows == 1 ? "kiln_frag" : cg_fmt(s, "kiln_frag%d", o * g->rows + r);
			if (g->lanes == 4)
				cg_line(s, "%s = %s;", frag, out_name(s, o, r));
			else
				cg_line(s, "%s = vec4(%s, 0.0, 0.0, 1.0);", frag, out_name(s, o, r));
		}
	fputs("}\n", s->f);
}

/*
 * The fragment may only touch its own output element, or its own element
 * of one of its blocks: the block it touches (-1 after an error).
 */
static int check_own(cg_src *s, const ir_expr *index)
{
	const ir_kernel *k = s->k;
	glsl_state *g = s->user;
	if (index->type.lanes > 1) {
		int64_t st;
		if (index->kind != IR_RAMP || !ir_is_const_int(index->ramp.stride, &st) || st != 1 ||
		    index->type.lanes != g->lanes) {
			cg_fail(s, "kernel '%s' writes a non-contiguous vector; a packed fragment writes 4 consecutive elements",
			        k->name);
			return -1;
		}
		index = ir_div(s->ctx, ir_cast(s->ctx, IR_I64, index->ramp.base), ir_i64(s->ctx, g->lanes));
	}
	ir_expr *id = NULL;
	if (k->index[KILN_BLOCK_X])
		id = ir_mul(s->ctx, k->index[KILN_BLOCK_X], ir_i64(s->ctx, k->block[0]));
	if (k->index[KILN_THREAD_X])
		id = id ? ir_add(s->ctx, id, k->index[KILN_THREAD_X]) : k->index[KILN_THREAD_X];
	if (!id)
		id = ir_i64(s->ctx, 0);
	ir_expr *d = ir_simplify_expr(s->ctx, NULL, ir_sub(s->ctx, ir_cast(s->ctx, IR_I64, (ir_expr *)index), id));
	int64_t v;
	if (ir_is_const_int(d, &v) && v >= 0 && v % g->block == 0 && v / g->block < g->rows)
		return (int)(v / g->block);
	cg_fail(s, "kernel '%s' touches output element %s, not its own; webgl runs one fragment per element "
	           "(bind the output's fused axis without a shifted split)", k->name, ir_expr_to_str(s->ctx, index));
	return -1;
}

static char *gl_load(cg_src *s, const ir_expr *e)
{
	glsl_state *g = s->user;
	const ir_buffer *b = e->load.buf;
	const ir_expr *ix = e->load.index;
	int n = e->type.lanes;
	char tb[32];
	int o = out_index(g, b);
	if (o >= 0) {
		if (n != g->lanes)
			cg_fail(s, "a %d-lane read of the output '%s' in a %d-lane kernel", n, b->name, g->lanes);
		int r = check_own(s, ix);
		return cg_fmt(s, "%s", out_name(s, o, r < 0 ? 0 : r));
	}
	int t = tex_index(g, b);
	const char *name = t >= 0 ? NULL : cg_name_of(s, b, b->name);
	int64_t rem;
	if (n == 1 && t >= 0 && g->lanes == 4 &&
	    ir_is_const_int(ir_simplify_expr(s->ctx, &s->env, ir_mod(s->ctx, (ir_expr *)ix, ir_i64(s->ctx, 4))), &rem)) {
		/* a known component of an aligned texel: the same fetch as its neighbours', which the compiler shares */
		ir_expr *base = ir_simplify_expr(s->ctx, &s->env, ir_sub(s->ctx, (ir_expr *)ix, ir_i64(s->ctx, rem)));
		return cg_fmt(s, "kiln_t%dv(%s).%s", t, cg_expr(s, base), cg_lane(s, (int)rem));
	}
	if (n == 1)
		return t >= 0 ? cg_fmt(s, "kiln_t%d(%s)", t, cg_expr(s, ix)) : cg_fmt(s, "%s[%s]", name, cg_expr(s, ix));
	if (t >= 0 && g->lanes == 4 && n == 4 && cg_aligned_ramp(s, ix)) /* four aligned elements: one texel */
		return cg_fmt(s, "kiln_t%dv(%s)", t, cg_expr(s, ix->ramp.base));
	/* vectors: lane by lane from a named index vector */
	const char *iv = cg_temp(s, ix);
	char *lanes = cg_fmt(s, "%s", "");
	for (int i = 0; i < n; i++)
		lanes = t >= 0 ? cg_fmt(s, "%s%skiln_t%d(%s.%s)", lanes, i ? ", " : "", t, iv, cg_lane(s, i))
		               : cg_fmt(s, "%s%s%s[%s.%s]", lanes, i ? ", " : "", name, iv, cg_lane(s, i));
	return cg_fmt(s, "%s(%s)", gl_type(s, e->type, tb), lanes);
}

static void gl_store(cg_src *s, const ir_stmt *st)
{
	glsl_state *g = s->user;
	const ir_buffer *b = st->store.buf;
	const ir_expr *val = st->store.value;
	char *v = cg_expr(s, val);
	int o = out_index(g, b);
	if (o >= 0) {
		int r = check_own(s, st->store.index);
		if (r >= 0)
			g->stored[o] |= 1u << r;
		cg_line(s, "%s = %s;", out_name(s, o, r < 0 ? 0 : r), v);
		return;
	}
	if (b->scope == KILN_SCOPE_GLOBAL) {
		cg_fail(s, "kernel '%s' writes '%s' beyond its render targets", s->k->name, b->name);
		return;
	}
	const char *name = cg_name_of(s, b, b->name);
	if (val->type.lanes == 1) {
		cg_line(s, "%s[%s] = %s;", name, cg_expr(s, st->store.index), v);
		return;
	}
	char tb[32];
	const char *iv = cg_temp(s, st->store.index);
	const char *vv = cg_fmt(s, "t%d", s->ntmp++);
	cg_line(s, "%s %s = %s;", gl_type(s, val->type, tb), vv, v);
	for (int i = 0; i < val->type.lanes; i++)
		cg_line(s, "%s[%s.%s] = %s.%s;", name, iv, cg_lane(s, i), vv, cg_lane(s, i));
}

static void gl_barrier(cg_src *s) { cg_fail(s, "webgl has no barriers (no shared memory)"); }

static void gl_local_array(cg_src *s, const ir_buffer *b)
{
	char tb[32];
	cg_line(s, "%s %s[%lld];", gl_type(s, b->elem, tb), cg_name_of(s, b, b->name), (long long)b->size);
}

static const char *gl_math(kiln_intrinsic op, ir_type t)
{
	switch (op) {
	case KILN_EXP: return "exp";
	case KILN_LOG: return "log";
	case KILN_SQRT: return "sqrt";
	case KILN_RSQRT: return "inversesqrt";
	case KILN_TANH: return "tanh";
	case KILN_ERF: return "kiln_erf";
	case KILN_POW: return "pow";
	case KILN_ABS: return "abs";
	case KILN_FLOOR: return "floor";
	case KILN_CEIL: return "ceil";
	case KILN_ROUND: return "roundEven";
	default: return NULL;
	}
}

static char *gl_minmax(cg_src *s, const ir_expr *e, const char *a, const char *b)
{
	return cg_fmt(s, "%s(%s, %s)", e->kind == IR_MIN ? "min" : "max", a, b);
}

static char *gl_select(cg_src *s, const ir_expr *e, const char *c, const char *t, const char *f)
{
	return cg_fmt(s, "mix(%s, %s, %s)", f, t, c);
}

static char *gl_cast(cg_src *s, ir_type to, const ir_expr *from, const char *v)
{
	char tb[32];
	return cg_fmt(s, "%s(%s)", gl_type(s, to, tb), v);
}

static bool gl_lanes_ok(int n) { return n >= 2 && n <= 4; }

/* GLSL compares vectors with functions, and has no && || ! on bool vectors */
static char *gl_vector_binary(cg_src *s, const ir_expr *e, const char *a, const char *b)
{
	int n = e->type.lanes;
	switch (e->kind) {
	case IR_EQ: return cg_fmt(s, "equal(%s, %s)", a, b);
	case IR_NE: return cg_fmt(s, "notEqual(%s, %s)", a, b);
	case IR_LT: return cg_fmt(s, "lessThan(%s, %s)", a, b);
	case IR_LE: return cg_fmt(s, "lessThanEqual(%s, %s)", a, b);
	case IR_GT: return cg_fmt(s, "greaterThan(%s, %s)", a, b);
	case IR_GE: return cg_fmt(s, "greaterThanEqual(%s, %s)", a, b);
	case IR_AND: return cg_fmt(s, "bvec%d(ivec%d(%s) * ivec%d(%s))", n, n, a, n, b);
	case IR_OR: return cg_fmt(s, "bvec%d(ivec%d(%s) + ivec%d(%s))", n, n, a, n, b);
	case IR_NOT: return cg_fmt(s, "not(%s)", a);
	default: return cg_fmt(s, "(%s)", a);
	}
}

/* GLSL ES rejects 1.0/0.0 in constant expressions: spell the bits */
static char *gl_special_float(cg_src *s, double v)
{
	if (v != v)
		return cg_fmt(s, "uintBitsToFloat(0x7fc00000u)");
	return cg_fmt(s, "uintBitsToFloat(%s)", v > 0 ? "0x7f800000u" : "0xff800000u");
}

const cg_lang cg_glsl = {
	.name = "webgl",
	.type = gl_type,
	.int_imm = gl_int_imm,
	.kernel_begin = gl_kernel_begin,
	.kernel_end = gl_kernel_end,
	.load = gl_load,
	.store = gl_store,
	.barrier = gl_barrier,
	.local_array = gl_local_array,
	.math = gl_math,
	.minmax = gl_minmax,
	.select = gl_select,
	.cast = gl_cast,
	.vector_binary = gl_vector_binary,
	.prelude = NULL,
	.max_lanes = 4,
	.lanes_ok = gl_lanes_ok,
	.state_size = sizeof(glsl_state),
	.special_float = gl_special_float,
	.output_first = true,
	.constructors = true,
	.value_decl = "",
};
