/*
 * codegen.c — lowered loop IR to LLVM IR.
 *
 * A function becomes `i32 name(T *arg0, T *arg1, ...)` returning 0. Loops
 * are plain phi loops; parallel loops are outlined into
 * `i32 name.par.N(i64 begin, i64 end, ptr closure)` and run through the
 * runtime's kiln_parallel_for. Vectors map to LLVM vectors; a ramp index
 * with stride 1 is one contiguous vector load or store. exp, tanh, sigmoid
 * and erf on f32 are inlined polynomials so they vectorize (and need no
 * libm under wasm).
 */
#include <llvm-c/Analysis.h>
#include <stdlib.h>
#include <string.h>

#include "codegen.h"
#include "ir/mutate.h"
#include "ir/simplify.h"

typedef struct {
	const ir_expr *var;
	LLVMValueRef val;
} sym;

typedef struct {
	kiln_ctx *ctx;
	const cg_target *tgt;
	LLVMContextRef c;
	LLVMModuleRef mod;
	LLVMBuilderRef b;
	LLVMValueRef fn;
	const char *fname;
	int npar;
	int nsym, symcap;
	sym *syms;
	LLVMTypeRef i1, i8, i32, i64, ptr, voidt;
	int err;
	bool in_select; /* inside a select given the all-lanes fast path */
} cg;

static int cg_fail(cg *g, const char *fmt, const char *what)
{
	if (!g->err++)
		ir_error(g->ctx, fmt, what);
	return -1;
}

/* ---- types and symbols ---- */

static LLVMTypeRef scalar_type(cg *g, ir_type t)
{
	switch (t.code) {
	case KILN_BOOL:
		return g->i1;
	case KILN_FLOAT:
		return t.bits == 16 ? LLVMHalfTypeInContext(g->c) : t.bits == 32 ? LLVMFloatTypeInContext(g->c)
		                                                                   : LLVMDoubleTypeInContext(g->c);
	case KILN_HANDLE:
		return g->ptr;
	default:
		return LLVMIntTypeInContext(g->c, t.bits);
	}
}

static LLVMTypeRef llvm_type(cg *g, ir_type t)
{
	LLVMTypeRef s = scalar_type(g, t);
	return t.lanes > 1 ? LLVMVectorType(s, t.lanes) : s;
}

/* Bools live in memory as bytes. */
static LLVMTypeRef mem_type(cg *g, ir_type t)
{
	if (t.code == KILN_BOOL)
		return t.lanes > 1 ? LLVMVectorType(g->i8, t.lanes) : g->i8;
	return llvm_type(g, t);
}

static void push(cg *g, const ir_expr *var, LLVMValueRef v)
{
	if (g->nsym == g->symcap) {
		g->symcap = g->symcap ? g->symcap * 2 : 64;
		g->syms = realloc(g->syms, sizeof *g->syms * g->symcap);
	}
	g->syms[g->nsym++] = (sym){var, v};
}

static LLVMValueRef lookup(cg *g, const ir_expr *var)
{
	for (int i = g->nsym - 1; i >= 0; i--)
		if (g->syms[i].var == var)
			return g->syms[i].val;
	return NULL;
}

static LLVMValueRef const_int(cg *g, ir_type t, int64_t v) { return LLVMConstInt(scalar_type(g, t), (unsigned long long)v, 1); }

static LLVMValueRef splat(cg *g, LLVMValueRef v, int lanes)
{
	if (lanes == 1)
		return v;
	LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(v), lanes);
	LLVMValueRef u = LLVMBuildInsertElement(g->b, LLVMGetUndef(vt), v, LLVMConstInt(g->i32, 0, 0), "");
	LLVMValueRef zero = LLVMConstNull(LLVMVectorType(g->i32, lanes));
	return LLVMBuildShuffleVector(g->b, u, LLVMGetUndef(vt), zero, "");
}

static LLVMValueRef fconst(cg *g, ir_type t, double v) { return splat(g, LLVMConstReal(scalar_type(g, t), v), t.lanes); }

static LLVMValueRef call_intrinsic(cg *g, const char *name, LLVMTypeRef t, LLVMValueRef *args, int n)
{
	unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
	LLVMValueRef f = LLVMGetIntrinsicDeclaration(g->mod, id, &t, 1);
	LLVMTypeRef ft = LLVMIntrinsicGetType(g->c, id, &t, 1);
	return LLVMBuildCall2(g->b, ft, f, args, (unsigned)n, "");
}

static void set_fast(LLVMValueRef v)
{
	if (LLVMCanValueUseFastMathFlags(v))
		LLVMSetFastMathFlags(v, LLVMFastMathAllowContract);
}

/* ---- expressions ---- */

static LLVMValueRef expr(cg *g, const ir_expr *e);
static LLVMValueRef all_lanes(cg *g, const ir_expr *c);
static LLVMBasicBlockRef new_block(cg *g, const char *name);
static LLVMValueRef gather(cg *g, const ir_buffer *buf, ir_type t, LLVMValueRef iv);

static LLVMValueRef farith(cg *g, int kind, LLVMValueRef a, LLVMValueRef b)
{
	LLVMValueRef r;
	switch (kind) {
	case IR_ADD: r = LLVMBuildFAdd(g->b, a, b, ""); break;
	case IR_SUB: r = LLVMBuildFSub(g->b, a, b, ""); break;
	case IR_MUL: r = LLVMBuildFMul(g->b, a, b, ""); break;
	default: r = LLVMBuildFDiv(g->b, a, b, ""); break;
	}
	set_fast(r);
	return r;
}

/* exp(x) for f32: 2^n * p(r) with x = n*ln2 + r, |r| <= ln2/2 (Cephes expf). */
static LLVMValueRef fexp(cg *g, ir_type t, LLVMValueRef x)
{
	LLVMTypeRef ft = llvm_type(g, t);
	int l = t.lanes;
	LLVMValueRef hi = fconst(g, t, 88.3762626647949), lo = fconst(g, t, -87.3365447504);
	x = LLVMBuildSelect(g->b, LLVMBuildFCmp(g->b, LLVMRealOGT, x, hi, ""), hi, x, "");
	x = LLVMBuildSelect(g->b, LLVMBuildFCmp(g->b, LLVMRealOLT, x, lo, ""), lo, x, "");
	LLVMValueRef fx = farith(g, IR_MUL, x, fconst(g, t, 1.44269504088896341));
	fx = call_intrinsic(g, "llvm.roundeven", ft, &fx, 1);
	LLVMValueRef r = farith(g, IR_SUB, x, farith(g, IR_MUL, fx, fconst(g, t, 0.693359375)));
	r = farith(g, IR_SUB, r, farith(g, IR_MUL, fx, fconst(g, t, -2.12194440e-4)));
	static const double c[] = {1.9875691500E-4, 1.3981999507E-3, 8.3334519073E-3, 4.1665795894E-2,
	                           1.6666665459E-1, 5.0000001201E-1};
	LLVMValueRef p = fconst(g, t, c[0]);
	for (int i = 1; i < 6; i++)
		p = farith(g, IR_ADD, farith(g, IR_MUL, p, r), fconst(g, t, c[i]));
	LLVMValueRef r2 = farith(g, IR_MUL, r, r);
	p = farith(g, IR_ADD, farith(g, IR_ADD, farith(g, IR_MUL, p, r2), r), fconst(g, t, 1.0));
	LLVMTypeRef it = l > 1 ? LLVMVectorType(g->i32, l) : g->i32;
	LLVMValueRef n = LLVMBuildFPToSI(g->b, fx, it, "");
	LLVMValueRef bits = LLVMBuildShl(g->b, LLVMBuildAdd(g->b, n, splat(g, LLVMConstInt(g->i32, 127, 0), l), ""),
	                                 splat(g, LLVMConstInt(g->i32, 23, 0), l), "");
	return farith(g, IR_MUL, p, LLVMBuildBitCast(g->b, bits, ft, ""));
}

/* erf(x): Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), odd-symmetric. */
static LLVMValueRef ferf(cg *g, ir_type t, LLVMValueRef x)
{
	LLVMTypeRef ft = llvm_type(g, t);
	LLVMValueRef ax = call_intrinsic(g, "llvm.fabs", ft, &x, 1);
	LLVMValueRef tt = farith(g, IR_DIV, fconst(g, t, 1.0),
	                         farith(g, IR_ADD, fconst(g, t, 1.0), farith(g, IR_MUL, ax, fconst(g, t, 0.3275911))));
	static const double a[] = {1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592};
	LLVMValueRef p = fconst(g, t, a[0]);
	for (int i = 1; i < 5; i++)
		p = farith(g, IR_ADD, farith(g, IR_MUL, p, tt), fconst(g, t, a[i]));
	p = farith(g, IR_MUL, p, tt);
	LLVMValueRef nx2 = LLVMBuildFNeg(g->b, farith(g, IR_MUL, ax, ax), "");
	LLVMValueRef y = farith(g, IR_SUB, fconst(g, t, 1.0), farith(g, IR_MUL, p, fexp(g, t, nx2)));
	return call_intrinsic(g, "llvm.copysign", ft, (LLVMValueRef[]){y, x}, 2);
}

/* Calls a libm function lane by lane (f64 tanh/erf have no inline form). */
static LLVMValueRef libm_call(cg *g, const char *name, ir_type t, LLVMValueRef x)
{
	LLVMTypeRef st = scalar_type(g, t);
	LLVMTypeRef ft = LLVMFunctionType(st, &st, 1, 0);
	LLVMValueRef f = LLVMGetNamedFunction(g->mod, name);
	if (!f)
		f = LLVMAddFunction(g->mod, name, ft);
	if (t.lanes == 1)
		return LLVMBuildCall2(g->b, ft, f, &x, 1, "");
	LLVMValueRef r = LLVMGetUndef(llvm_type(g, t));
	for (int i = 0; i < t.lanes; i++) {
		LLVMValueRef idx = LLVMConstInt(g->i32, i, 0);
		LLVMValueRef v = LLVMBuildExtractElement(g->b, x, idx, "");
		r = LLVMBuildInsertElement(g->b, r, LLVMBuildCall2(g->b, ft, f, &v, 1, ""), idx, "");
	}
	return r;
}

static LLVMValueRef call(cg *g, const ir_expr *e)
{
	ir_type t = e->type;
	LLVMTypeRef ft = llvm_type(g, t);
	LLVMValueRef x = expr(g, e->call.a);
	bool f32 = ir_is_float(t) && t.bits == 32;
	switch (e->call.op) {
	case KILN_EXP:
		return f32 ? fexp(g, t, x) : call_intrinsic(g, "llvm.exp", ft, &x, 1);
	case KILN_LOG:
		return call_intrinsic(g, "llvm.log", ft, &x, 1);
	case KILN_SQRT:
		return call_intrinsic(g, "llvm.sqrt", ft, &x, 1);
	case KILN_RSQRT:
		return farith(g, IR_DIV, fconst(g, t, 1.0), call_intrinsic(g, "llvm.sqrt", ft, &x, 1));
	case KILN_SIGMOID: {
		LLVMValueRef nx = LLVMBuildFNeg(g->b, x, "");
		LLVMValueRef ex = f32 ? fexp(g, t, nx) : call_intrinsic(g, "llvm.exp", ft, &nx, 1);
		return farith(g, IR_DIV, fconst(g, t, 1.0), farith(g, IR_ADD, fconst(g, t, 1.0), ex));
	}
	case KILN_TANH: {
		if (!f32)
			return libm_call(g, "tanh", t, x);
		/* tanh(x) = sign(x) * (1 - 2 / (exp(2|x|) + 1)); small |x| use x - x^3/3 to keep precision */
		LLVMValueRef ax = call_intrinsic(g, "llvm.fabs", ft, &x, 1);
		LLVMValueRef e2 = fexp(g, t, farith(g, IR_MUL, ax, fconst(g, t, 2.0)));
		LLVMValueRef big = farith(g, IR_SUB, fconst(g, t, 1.0),
		                          farith(g, IR_DIV, fconst(g, t, 2.0), farith(g, IR_ADD, e2, fconst(g, t, 1.0))));
		big = call_intrinsic(g, "llvm.copysign", ft, (LLVMValueRef[]){big, x}, 2);
		LLVMValueRef x2 = farith(g, IR_MUL, x, x);
		LLVMValueRef small = farith(g, IR_MUL, x,
		                            farith(g, IR_ADD, fconst(g, t, 1.0),
		                                   farith(g, IR_MUL, x2, farith(g, IR_ADD, fconst(g, t, -1.0 / 3),
		                                                                farith(g, IR_MUL, x2, fconst(g, t, 2.0 / 15))))));
		LLVMValueRef use_small = LLVMBuildFCmp(g->b, LLVMRealOLT, ax, fconst(g, t, 0.0625), "");
		return LLVMBuildSelect(g->b, use_small, small, big, "");
	}
	case KILN_ERF:
		return f32 ? ferf(g, t, x) : libm_call(g, "erf", t, x);
	case KILN_POW: {
		LLVMValueRef y = expr(g, e->call.b);
		return call_intrinsic(g, "llvm.pow", ft, (LLVMValueRef[]){x, y}, 2);
	}
	case KILN_ABS:
		if (ir_is_int(t))
			return call_intrinsic(g, "llvm.abs", ft, (LLVMValueRef[]){x, LLVMConstInt(g->i1, 0, 0)}, 2);
		return call_intrinsic(g, "llvm.fabs", ft, &x, 1);
	case KILN_FLOOR:
		return call_intrinsic(g, "llvm.floor", ft, &x, 1);
	case KILN_CEIL:
		return call_intrinsic(g, "llvm.ceil", ft, &x, 1);
	case KILN_ROUND:
		return call_intrinsic(g, "llvm.roundeven", ft, &x, 1);
	default:
		cg_fail(g, "codegen: unknown intrinsic %s", "?");
		return LLVMGetUndef(ft);
	}
}

static LLVMValueRef cast(cg *g, ir_type to, const ir_expr *a)
{
	LLVMValueRef v = expr(g, a);
	ir_type from = a->type;
	LLVMTypeRef tt = llvm_type(g, to);
	if (to.code == KILN_BOOL) {
		if (ir_is_float(from))
			return LLVMBuildFCmp(g->b, LLVMRealUNE, v, LLVMConstNull(LLVMTypeOf(v)), "");
		return LLVMBuildICmp(g->b, LLVMIntNE, v, LLVMConstNull(LLVMTypeOf(v)), "");
	}
	bool fsigned = from.code == KILN_INT;
	if (ir_is_float(to)) {
		if (ir_is_float(from))
			return from.bits < to.bits ? LLVMBuildFPExt(g->b, v, tt, "") : LLVMBuildFPTrunc(g->b, v, tt, "");
		return fsigned ? LLVMBuildSIToFP(g->b, v, tt, "") : LLVMBuildUIToFP(g->b, v, tt, "");
	}
	if (ir_is_float(from))
		return to.code == KILN_INT ? LLVMBuildFPToSI(g->b, v, tt, "") : LLVMBuildFPToUI(g->b, v, tt, "");
	if (from.bits == to.bits)
		return v;
	if (from.bits > to.bits)
		return LLVMBuildTrunc(g->b, v, tt, "");
	return fsigned ? LLVMBuildSExt(g->b, v, tt, "") : LLVMBuildZExt(g->b, v, tt, "");
}

/* Integer floor division and modulo (round toward minus infinity). */
static LLVMValueRef int_divmod(cg *g, const ir_expr *e, LLVMValueRef a, LLVMValueRef b)
{
	bool div = e->kind == IR_DIV;
	if (e->type.code == KILN_UINT)
		return div ? LLVMBuildUDiv(g->b, a, b, "") : LLVMBuildURem(g->b, a, b, "");
	/* C rounds toward zero; step the quotient down when the remainder's sign differs
	 * from the divisor's. With constant divisors LLVM folds all of this well. */
	LLVMValueRef q = LLVMBuildSDiv(g->b, a, b, ""), r = LLVMBuildSRem(g->b, a, b, "");
	LLVMValueRef zero = LLVMConstNull(LLVMTypeOf(a));
	LLVMValueRef nz = LLVMBuildICmp(g->b, LLVMIntNE, r, zero, "");
	LLVMValueRef sdiff = LLVMBuildICmp(g->b, LLVMIntSLT, LLVMBuildXor(g->b, r, b, ""), zero, "");
	LLVMValueRef fix = LLVMBuildAnd(g->b, nz, sdiff, "");
	if (div)
		return LLVMBuildSub(g->b, q, LLVMBuildZExt(g->b, fix, LLVMTypeOf(a), ""), "");
	return LLVMBuildAdd(g->b, r, LLVMBuildSelect(g->b, fix, b, zero, ""), "");
}

/*
 * The lanes i of base + step*i (64-bit scalars) that compare pred (signed)
 * with bound: step*i against bound - base clamped to just past the lanes'
 * offsets, as 32-bit constants (a 16-lane i64 compare is two zmm compares
 * plus the ramp's adds; padding stages test every lane).
 */
static LLVMValueRef lane_cmp(cg *g, int n, int64_t step, LLVMValueRef base, LLVMIntPredicate pred, LLVMValueRef bound)
{
	int64_t m = (step < 0 ? -step : step) * (n - 1) + 1;
	/* saturating: ramp(-10, 1, n) < INT64_MAX must stay all true */
	LLVMValueRef d = call_intrinsic(g, "llvm.ssub.sat", g->i64, (LLVMValueRef[]){bound, base}, 2);
	LLVMValueRef cm = LLVMConstInt(g->i64, (uint64_t)m, 0), cneg = LLVMConstInt(g->i64, (uint64_t)-m, 1);
	d = LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntSGT, d, cm, ""), cm, d, "");
	d = LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, d, cneg, ""), cneg, d, "");
	LLVMValueRef off[64];
	for (int i = 0; i < n; i++)
		off[i] = LLVMConstInt(g->i32, (uint64_t)(step * i), 1);
	return LLVMBuildICmp(g->b, pred, LLVMConstVector(off, (unsigned)n), splat(g, LLVMBuildTrunc(g->b, d, g->i32, ""), n), "");
}

/* ramp(b, s, n) < x(K) and the other orders, through lane_cmp; signed 64-bit ramps only, as lane_ends. NULL: another shape. */
static LLVMValueRef ramp_compare(cg *g, const ir_expr *e)
{
	static const LLVMIntPredicate sp[] = {LLVMIntSLT, LLVMIntSLE, LLVMIntSGT, LLVMIntSGE};
	static const LLVMIntPredicate flip[] = {LLVMIntSGT, LLVMIntSGE, LLVMIntSLT, LLVMIntSLE};
	const ir_expr *a = e->bin.a, *b = e->bin.b;
	int n = a->type.lanes, k = e->kind - IR_LT;
	if (k < 0 || k > 3 || n < 2 || n > 64 || a->type.code != KILN_INT || a->type.bits != 64)
		return NULL;
	bool ramp_first = a->kind == IR_RAMP;
	const ir_expr *r = ramp_first ? a : b, *c = ramp_first ? b : a;
	int64_t st;
	if (r->kind != IR_RAMP || c->kind != IR_BROADCAST || !ir_is_const_int(r->ramp.stride, &st) || st < -(1 << 20) ||
	    st > (1 << 20))
		return NULL;
	/* ramp OP K: s*i OP K - b; K OP ramp: s*i flip(OP) K - b */
	return lane_cmp(g, n, st, expr(g, r->ramp.base), ramp_first ? sp[k] : flip[k], expr(g, c->bcast.value));
}

static LLVMValueRef binary(cg *g, const ir_expr *e)
{
	LLVMValueRef rc = ramp_compare(g, e);
	if (rc)
		return rc;
	LLVMValueRef a = expr(g, e->bin.a), b = expr(g, e->bin.b);
	ir_type t = e->bin.a->type;
	bool f = ir_is_float(t), u = t.code == KILN_UINT || t.code == KILN_BOOL;
	switch (e->kind) {
	case IR_ADD:
	case IR_SUB:
	case IR_MUL:
		if (f)
			return farith(g, e->kind, a, b);
		return e->kind == IR_ADD ? LLVMBuildAdd(g->b, a, b, "") : e->kind == IR_SUB ? LLVMBuildSub(g->b, a, b, "")
		                                                                             : LLVMBuildMul(g->b, a, b, "");
	case IR_DIV:
	case IR_MOD:
		if (!f)
			return int_divmod(g, e, a, b);
		if (e->kind == IR_DIV)
			return farith(g, IR_DIV, a, b);
		{
			LLVMValueRef q = farith(g, IR_DIV, a, b);
			q = call_intrinsic(g, "llvm.floor", LLVMTypeOf(q), &q, 1);
			return farith(g, IR_SUB, a, farith(g, IR_MUL, q, b));
		}
	case IR_MIN:
	case IR_MAX: {
		bool mn = e->kind == IR_MIN;
		LLVMValueRef c = f ? LLVMBuildFCmp(g->b, mn ? LLVMRealOLT : LLVMRealOGT, a, b, "")
		                   : LLVMBuildICmp(g->b, mn ? (u ? LLVMIntULT : LLVMIntSLT) : (u ? LLVMIntUGT : LLVMIntSGT),
		                                   a, b, "");
		return LLVMBuildSelect(g->b, c, a, b, "");
	}
	case IR_AND:
		return LLVMBuildAnd(g->b, a, b, "");
	case IR_OR:
		return LLVMBuildOr(g->b, a, b, "");
	default: {
		static const LLVMRealPredicate fp[] = {LLVMRealOEQ, LLVMRealUNE, LLVMRealOLT, LLVMRealOLE, LLVMRealOGT, LLVMRealOGE};
		static const LLVMIntPredicate sp[] = {LLVMIntEQ, LLVMIntNE, LLVMIntSLT, LLVMIntSLE, LLVMIntSGT, LLVMIntSGE};
		static const LLVMIntPredicate up[] = {LLVMIntEQ, LLVMIntNE, LLVMIntULT, LLVMIntULE, LLVMIntUGT, LLVMIntUGE};
		int k = e->kind - IR_EQ;
		if (f)
			return LLVMBuildFCmp(g->b, fp[k], a, b, "");
		return LLVMBuildICmp(g->b, u ? up[k] : sp[k], a, b, "");
	}
	}
}

static LLVMValueRef buffer_ptr(cg *g, const ir_buffer *buf)
{
	LLVMValueRef p = lookup(g, buf->data);
	if (!p) {
		cg_fail(g, "codegen: buffer '%s' is not in scope", buf->name);
		return LLVMConstNull(g->ptr);
	}
	return p;
}

static LLVMValueRef elem_ptr(cg *g, const ir_buffer *buf, LLVMValueRef idx)
{
	LLVMTypeRef et = mem_type(g, buf->elem);
	return LLVMBuildGEP2(g->b, et, buffer_ptr(g, buf), &idx, 1, "");
}

static LLVMValueRef from_mem(cg *g, ir_type t, LLVMValueRef v)
{
	return t.code == KILN_BOOL ? LLVMBuildICmp(g->b, LLVMIntNE, v, LLVMConstNull(LLVMTypeOf(v)), "") : v;
}

static LLVMValueRef to_mem(cg *g, ir_type t, LLVMValueRef v)
{
	return t.code == KILN_BOOL ? LLVMBuildZExt(g->b, v, mem_type(g, t), "") : v;
}

static unsigned elem_align(const ir_buffer *buf) { return (unsigned)kiln_dtype_bytes(ir_elem(buf->elem)); }

/* A ramp with a small constant positive stride: contiguous or deinterleavable. */
static int64_t small_stride(const ir_expr *ix)
{
	int64_t s;
	return ix->kind == IR_RAMP && ix->type.lanes <= 64 && ir_is_const_int(ix->ramp.stride, &s) && s >= 1 && s <= 4
	           ? s
	           : 0;
}

/* llvm.masked.load of a vt at p: the lanes of mask read, the others are pass's */
static LLVMValueRef masked_load(cg *g, const ir_buffer *buf, LLVMTypeRef vt, LLVMValueRef p, LLVMValueRef mask,
                                LLVMValueRef pass)
{
	LLVMTypeRef ot[2] = {vt, g->ptr};
	unsigned id = LLVMLookupIntrinsicID("llvm.masked.load", 16);
	LLVMValueRef args[4] = {p, LLVMConstInt(g->i32, elem_align(buf), 0), mask, pass};
	return LLVMBuildCall2(g->b, LLVMIntrinsicGetType(g->c, id, ot, 2), LLVMGetIntrinsicDeclaration(g->mod, id, ot, 2),
	                      args, 4, "");
}

/* n lanes at p: a plain load, or with a masked load only the lanes whose index idx0 + i lies in [lo, hi] (either bound NULL) */
static LLVMValueRef chunk_load(cg *g, const ir_buffer *buf, LLVMTypeRef vt, int n, LLVMValueRef p, LLVMValueRef idx0,
                               LLVMValueRef lo, LLVMValueRef hi)
{
	if (!lo && !hi) {
		LLVMValueRef v = LLVMBuildLoad2(g->b, vt, p, "");
		LLVMSetAlignment(v, elem_align(buf));
		return v;
	}
	LLVMValueRef mask = LLVMConstAllOnes(LLVMVectorType(g->i1, (unsigned)n));
	if (lo)
		mask = LLVMBuildAnd(g->b, mask, lane_cmp(g, n, 1, idx0, LLVMIntSGE, lo), "");
	if (hi)
		mask = LLVMBuildAnd(g->b, mask, lane_cmp(g, n, 1, idx0, LLVMIntSLE, hi), "");
	return masked_load(g, buf, vt, p, mask, LLVMGetUndef(vt));
}

/*
 * n lanes at p[0], p[s], ..., p[(n-1)s]: whole vectors loaded from the span
 * they cover and shuffled together (a stride-2 window reads every other
 * column; lane-by-lane loads cost a load and an insert each). The last
 * vector ends at the last lane's element, so nothing past what the gather
 * would have read is touched. With lo or hi (base being the element index
 * of the first lane), the chunks read only elements inside [lo, hi] and the
 * lanes outside are undefined.
 */
static LLVMValueRef strided_load_in(cg *g, const ir_buffer *buf, ir_type t, LLVMValueRef base, int64_t s, LLVMValueRef lo,
                                    LLVMValueRef hi)
{
	int n = t.lanes;
	LLVMTypeRef vt = mem_type(g, t);
	LLVMValueRef p = elem_ptr(g, buf, base);
	if (s == 1)
		return chunk_load(g, buf, vt, n, p, base, lo, hi);
	int64_t span = (n - 1) * s + 1, nch = (span + n - 1) / n;
	LLVMValueRef acc = NULL, mask[64];
	int from[64];
	for (int64_t j = 0; j < nch; j++) {
		int64_t start = j < nch - 1 ? j * n : span - n;
		LLVMValueRef cs = LLVMConstInt(LLVMTypeOf(base), (uint64_t)start, 0);
		LLVMValueRef cp = LLVMBuildGEP2(g->b, mem_type(g, buf->elem), p,
		                                (LLVMValueRef[]){LLVMConstInt(g->i64, (uint64_t)start, 0)}, 1, "");
		LLVMValueRef c = chunk_load(g, buf, vt, n, cp, lo || hi ? LLVMBuildAdd(g->b, base, cs, "") : NULL, lo, hi);
		if (!acc) {
			acc = c;
			for (int i = 0; i < n; i++)
				from[i] = i * s < n ? (int)(i * s) : -1;
			continue;
		}
		/* lanes whose element lies in this chunk come from it (index n + offset), the rest stay */
		for (int i = 0; i < n; i++) {
			int64_t e = i * s;
			if (e >= start && e < start + n)
				from[i] = n + (int)(e - start);
			mask[i] = from[i] < 0 ? LLVMGetUndef(g->i32) : LLVMConstInt(g->i32, (unsigned)from[i], 0);
		}
		acc = LLVMBuildShuffleVector(g->b, acc, c, LLVMConstVector(mask, (unsigned)n), "");
		for (int i = 0; i < n; i++) /* lane i of acc now holds what lane i wants */
			if (from[i] >= 0)
				from[i] = i;
	}
	return acc;
}

static LLVMValueRef strided_load(cg *g, const ir_buffer *buf, ir_type t, LLVMValueRef base, int64_t s)
{
	return strided_load_in(g, buf, t, base, s, NULL, NULL);
}

static bool bcast_of(const ir_expr *e, const ir_expr **v)
{
	if (e->kind != IR_BROADCAST)
		return false;
	*v = e->bcast.value;
	return true;
}

/*
 * index = [x(off) +] clamp(ramp(b, s, n), x(lo), x(hi)), either bound alone
 * too: how padding stages read their input (clamped so the lanes in the
 * padding stay in bounds). Fills the parts (a missing bound NULL); false
 * when the index has another shape.
 */
static bool clamped_ramp(const ir_expr *ix, const ir_expr **off, const ir_expr **ramp, const ir_expr **lo,
                         const ir_expr **hi, bool *max_outer)
{
	*off = *lo = *hi = NULL;
	*max_outer = false;
	if (ix->kind == IR_ADD) {
		if (bcast_of(ix->bin.a, off))
			ix = ix->bin.b;
		else if (bcast_of(ix->bin.b, off))
			ix = ix->bin.a;
		else
			return false;
	}
	for (int k = 0; k < 2 && (ix->kind == IR_MAX || ix->kind == IR_MIN); k++) {
		const ir_expr **bound = ix->kind == IR_MAX ? lo : hi;
		if (!k)
			*max_outer = ix->kind == IR_MAX;
		if (*bound || !bcast_of(ix->bin.b, bound))
			return false;
		ix = ix->bin.a;
	}
	*ramp = ix;
	return (*lo || *hi) && small_stride(ix) != 0;
}

/* x86 with AVX: llvm.masked.load is one instruction (vmaskmovps, or a
 * k-masked load), where other targets would get a branch per lane. From the
 * target's vector width, not its -mattr: a CPU given by name (-mcpu=haswell)
 * lists no features of its own. */
static bool native_masked_loads(const cg *g, const ir_buffer *buf)
{
	int bits = ir_elem(buf->elem).bits;
	return !g->tgt->wasm && cg_is_x86(g->tgt->triple) && g->tgt->vector_bits >= 256 && (bits == 32 || bits == 64);
}

/*
 * A clamped load of stride s at the edges of its range, without a gather:
 * the lanes inside [lo, hi] come from masked loads of the span (shuffled as
 * strided_load does), the lanes below lo repeat lane 0's element and those
 * above hi lane n-1's (each clamped as the gather would: every address read
 * is one it reads).
 */
/* off + x, or x without an offset (NULL) */
static LLVMValueRef plus_off(cg *g, LLVMValueRef off, LLVMValueRef x) { return off ? LLVMBuildAdd(g->b, off, x, "") : x; }

static LLVMValueRef masked_clamped_load(cg *g, const ir_buffer *buf, ir_type t, LLVMValueRef off, LLVMValueRef rb,
                                        int64_t s, LLVMValueRef lov, LLVMValueRef hiv, bool max_outer)
{
	int n = t.lanes;
	LLVMTypeRef it = LLVMTypeOf(rb);
	LLVMValueRef below = NULL, above = NULL;
	if (lov)
		below = lane_cmp(g, n, s, rb, LLVMIntSLT, lov);
	if (hiv)
		above = lane_cmp(g, n, s, rb, LLVMIntSGT, hiv);
	/* lane 0's and lane n-1's clamped indices, the bounds applied in the index's own order (when lo > hi,
	 * max(min(i, hi), lo) is lo everywhere and min(max(i, lo), hi) is hi) */
	LLVMValueRef ends[2];
	for (int k = 0; k < 2; k++) {
		LLVMValueRef x = k ? LLVMBuildAdd(g->b, rb, LLVMConstInt(it, (uint64_t)((n - 1) * s), 0), "") : rb;
		for (int b = 0; b < 2; b++) {
			bool use_hi = (b == 0) == max_outer; /* the inner bound first */
			if (use_hi && hiv)
				x = LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, x, hiv, ""), x, hiv, "");
			else if (!use_hi && lov)
				x = LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntSGT, x, lov, ""), x, lov, "");
		}
		LLVMValueRef v = LLVMBuildLoad2(g->b, mem_type(g, buf->elem), elem_ptr(g, buf, plus_off(g, off, x)), "");
		LLVMSetAlignment(v, elem_align(buf));
		ends[k] = splat(g, v, n);
	}
	if (s == 1) {
		/* one masked load whose masked-off lanes are the repeated ends */
		LLVMValueRef pass = below ? LLVMBuildSelect(g->b, below, ends[0], ends[1], "") : ends[1];
		LLVMValueRef mask = LLVMConstAllOnes(LLVMVectorType(g->i1, (unsigned)n));
		if (below)
			mask = LLVMBuildNot(g->b, below, "");
		if (above)
			mask = LLVMBuildAnd(g->b, mask, LLVMBuildNot(g->b, above, ""), "");
		return masked_load(g, buf, mem_type(g, t), elem_ptr(g, buf, plus_off(g, off, rb)), mask, pass);
	}
	/* the masks compare element indices relative to the buffer's start minus off */
	LLVMValueRef v = strided_load_in(g, buf, t, plus_off(g, off, rb), s, lov ? plus_off(g, off, lov) : NULL,
	                                 hiv ? plus_off(g, off, hiv) : NULL);
	if (below)
		v = LLVMBuildSelect(g->b, below, ends[0], v, "");
	if (above)
		v = LLVMBuildSelect(g->b, above, ends[1], v, "");
	return v;
}

static LLVMValueRef load(cg *g, const ir_expr *e)
{
	const ir_buffer *buf = e->load.buf;
	const ir_expr *ix = e->load.index;
	int lanes = e->type.lanes;
	if (lanes == 1) {
		LLVMValueRef v = LLVMBuildLoad2(g->b, mem_type(g, buf->elem), elem_ptr(g, buf, expr(g, ix)), "");
		LLVMSetAlignment(v, elem_align(buf));
		return from_mem(g, buf->elem, v);
	}
	int64_t s;
	if (ix->kind == IR_RAMP && ir_is_const_int(ix->ramp.stride, &s) && s == 1) {
		LLVMValueRef v = LLVMBuildLoad2(g->b, mem_type(g, e->type), elem_ptr(g, buf, expr(g, ix->ramp.base)), "");
		LLVMSetAlignment(v, elem_align(buf));
		return from_mem(g, e->type, v);
	}
	if (ix->kind == IR_BROADCAST) {
		LLVMValueRef v = LLVMBuildLoad2(g->b, mem_type(g, buf->elem), elem_ptr(g, buf, expr(g, ix->bcast.value)), "");
		LLVMSetAlignment(v, elem_align(buf));
		return splat(g, from_mem(g, buf->elem, v), lanes);
	}
	if ((s = small_stride(ix)))
		return from_mem(g, e->type, strided_load(g, buf, e->type, expr(g, ix->ramp.base), s));
	const ir_expr *off, *ramp, *lo, *hi;
	bool max_outer;
	if (clamped_ramp(ix, &off, &ramp, &lo, &hi, &max_outer)) {
		/* the clamp only matters at the edges: whole vectors where the ramp is in range */
		int64_t rs = small_stride(ramp);
		/* the offset and bounds once, before the branch: both sides use them */
		LLVMValueRef rb = expr(g, ramp->ramp.base), in = LLVMConstInt(g->i1, 1, 0);
		LLVMValueRef offv = off ? expr(g, off) : NULL, lov = lo ? expr(g, lo) : NULL, hiv = hi ? expr(g, hi) : NULL;
		if (lov)
			in = LLVMBuildICmp(g->b, LLVMIntSGE, rb, lov, "");
		if (hiv) {
			LLVMValueRef last = LLVMBuildAdd(g->b, rb, LLVMConstInt(LLVMTypeOf(rb), (uint64_t)((lanes - 1) * rs), 1), "");
			in = LLVMBuildAnd(g->b, in, LLVMBuildICmp(g->b, LLVMIntSLE, last, hiv, ""), "");
		}
		LLVMBasicBlockRef fast = new_block(g, "ld.whole"), slow = new_block(g, "ld.clamped"),
		                  done = new_block(g, "ld.end");
		LLVMBuildCondBr(g->b, in, fast, slow);
		LLVMPositionBuilderAtEnd(g->b, fast);
		LLVMValueRef base = plus_off(g, offv, rb);
		LLVMValueRef v[2];
		LLVMBasicBlockRef bb[2];
		v[0] = strided_load(g, buf, e->type, base, rs);
		bb[0] = LLVMGetInsertBlock(g->b);
		LLVMBuildBr(g->b, done);
		LLVMPositionBuilderAtEnd(g->b, slow);
		/* 64-bit signed indices only: lane_cmp's arithmetic (flattening makes every index one) */
		bool i64 = ramp->type.code == KILN_INT && ramp->type.bits == 64;
		v[1] = i64 && native_masked_loads(g, buf)
		           ? masked_clamped_load(g, buf, e->type, offv, rb, rs, lov, hiv, max_outer)
		           : gather(g, buf, e->type, expr(g, ix));
		bb[1] = LLVMGetInsertBlock(g->b);
		LLVMBuildBr(g->b, done);
		LLVMPositionBuilderAtEnd(g->b, done);
		LLVMValueRef phi = LLVMBuildPhi(g->b, LLVMTypeOf(v[0]), "");
		LLVMAddIncoming(phi, v, bb, 2);
		return from_mem(g, e->type, phi);
	}
	return from_mem(g, e->type, gather(g, buf, e->type, expr(g, ix)));
}

/* a gather, lane by lane */
static LLVMValueRef gather(cg *g, const ir_buffer *buf, ir_type t, LLVMValueRef iv)
{
	int lanes = t.lanes;
	LLVMValueRef r = LLVMGetUndef(mem_type(g, t));
	for (int i = 0; i < lanes; i++) {
		LLVMValueRef li = LLVMConstInt(g->i32, i, 0);
		LLVMValueRef v = LLVMBuildLoad2(g->b, mem_type(g, buf->elem),
		                                elem_ptr(g, buf, LLVMBuildExtractElement(g->b, iv, li, "")), "");
		LLVMSetAlignment(v, elem_align(buf));
		r = LLVMBuildInsertElement(g->b, r, v, li, "");
	}
	return r;
}

/* The first and last lanes of an integer ramp with a constant stride, or of a broadcast, in lane order. */
static bool lane_ends(cg *g, const ir_expr *e, LLVMValueRef *first, LLVMValueRef *last, int64_t *stride)
{
	/* signed 64-bit only: an unsigned ramp that crosses zero, or a narrower one that wraps, is not monotonic */
	if (e->type.code != KILN_INT || e->type.bits != 64)
		return false;
	if (e->kind == IR_BROADCAST) {
		*first = *last = expr(g, e->bcast.value);
		*stride = 0;
		return true;
	}
	if (e->kind != IR_RAMP || !ir_is_const_int(e->ramp.stride, stride))
		return false;
	*first = expr(g, e->ramp.base);
	*last = LLVMBuildAdd(g->b, *first, LLVMConstInt(LLVMTypeOf(*first), (uint64_t)(*stride * (e->type.lanes - 1)), 1), "");
	return true;
}

/*
 * A scalar i1 that is true only when the vector condition c holds in every
 * lane, for c an && of comparisons between ramps and broadcasts (the bounds
 * test of a padded stage); NULL for a condition of another shape. Each
 * operand's smallest and largest lanes are its ends: a ramp is monotonic.
 */
static LLVMValueRef all_lanes(cg *g, const ir_expr *c)
{
	if (c->kind == IR_BROADCAST)
		return c->bcast.value->type.code == KILN_BOOL ? expr(g, c->bcast.value) : NULL;
	if (c->kind == IR_AND) {
		LLVMValueRef a = all_lanes(g, c->bin.a), b = a ? all_lanes(g, c->bin.b) : NULL;
		return a && b ? LLVMBuildAnd(g->b, a, b, "") : NULL;
	}
	if (c->kind != IR_LT && c->kind != IR_LE && c->kind != IR_GT && c->kind != IR_GE)
		return NULL;
	LLVMValueRef af, al, bf, bl;
	int64_t as, bs;
	if (!lane_ends(g, c->bin.a, &af, &al, &as) || !lane_ends(g, c->bin.b, &bf, &bl, &bs))
		return NULL;
	LLVMValueRef amin = as >= 0 ? af : al, amax = as >= 0 ? al : af, bmin = bs >= 0 ? bf : bl, bmax = bs >= 0 ? bl : bf;
	switch (c->kind) {
	case IR_LT:
		return LLVMBuildICmp(g->b, LLVMIntSLT, amax, bmin, "");
	case IR_LE:
		return LLVMBuildICmp(g->b, LLVMIntSLE, amax, bmin, "");
	case IR_GT:
		return LLVMBuildICmp(g->b, LLVMIntSGT, amin, bmax, "");
	default:
		return LLVMBuildICmp(g->b, LLVMIntSGE, amin, bmax, "");
	}
}

static LLVMValueRef expr(cg *g, const ir_expr *e)
{
	switch (e->kind) {
	case IR_INT_IMM:
		return splat(g, const_int(g, e->type, e->i), e->type.lanes);
	case IR_FLOAT_IMM:
		return fconst(g, e->type, e->f);
	case IR_VAR: {
		LLVMValueRef v = lookup(g, e);
		if (!v) {
			cg_fail(g, "codegen: variable '%s' is not in scope", e->var.name);
			return LLVMGetUndef(llvm_type(g, e->type));
		}
		return v;
	}
	case IR_NOT:
		return LLVMBuildNot(g->b, expr(g, e->bin.a), "");
	case IR_SELECT: {
		/* outermost selects only: the true side is emitted twice, so nested ones would double at every level */
		LLVMValueRef all = e->type.lanes > 1 && !g->in_select ? all_lanes(g, e->sel.cond) : NULL;
		if (all) {
			g->in_select = true;
			/* a padded stage's interior: every lane in range, so only the true side runs (no vector
			 * compares, no clamped gather); the edges take the full select */
			LLVMBasicBlockRef fast = new_block(g, "sel.all"), slow = new_block(g, "sel.lanes"), done = new_block(g, "sel.end");
			LLVMBuildCondBr(g->b, all, fast, slow);
			LLVMValueRef v[2];
			LLVMBasicBlockRef bb[2];
			LLVMPositionBuilderAtEnd(g->b, fast);
			v[0] = expr(g, e->sel.t);
			bb[0] = LLVMGetInsertBlock(g->b);
			LLVMBuildBr(g->b, done);
			LLVMPositionBuilderAtEnd(g->b, slow);
			LLVMValueRef c = expr(g, e->sel.cond), t = expr(g, e->sel.t), f = expr(g, e->sel.f);
			v[1] = LLVMBuildSelect(g->b, c, t, f, "");
			bb[1] = LLVMGetInsertBlock(g->b);
			LLVMBuildBr(g->b, done);
			LLVMPositionBuilderAtEnd(g->b, done);
			LLVMValueRef phi = LLVMBuildPhi(g->b, LLVMTypeOf(v[0]), "");
			LLVMAddIncoming(phi, v, bb, 2);
			g->in_select = false;
			return phi;
		}
		LLVMValueRef c = expr(g, e->sel.cond), t = expr(g, e->sel.t), f = expr(g, e->sel.f);
		return LLVMBuildSelect(g->b, c, t, f, "");
	}
	case IR_IF_THEN_ELSE: {
		/* a diamond: the branch not taken may read out of bounds, so it must not run */
		LLVMValueRef c = expr(g, e->sel.cond);
		LLVMBasicBlockRef tb = new_block(g, "ite.then"), fb = new_block(g, "ite.else"), done = new_block(g, "ite.end");
		LLVMBuildCondBr(g->b, c, tb, fb);
		LLVMPositionBuilderAtEnd(g->b, tb);
		LLVMValueRef v[2];
		LLVMBasicBlockRef from[2];
		v[0] = expr(g, e->sel.t);
		from[0] = LLVMGetInsertBlock(g->b);
		LLVMBuildBr(g->b, done);
		LLVMPositionBuilderAtEnd(g->b, fb);
		v[1] = expr(g, e->sel.f);
		from[1] = LLVMGetInsertBlock(g->b);
		LLVMBuildBr(g->b, done);
		LLVMPositionBuilderAtEnd(g->b, done);
		LLVMValueRef phi = LLVMBuildPhi(g->b, LLVMTypeOf(v[0]), "");
		LLVMAddIncoming(phi, v, from, 2);
		return phi;
	}
	case IR_CAST:
		return cast(g, e->type, e->bin.a);
	case IR_CALL:
		return call(g, e);
	case IR_LOAD:
		return load(g, e);
	case IR_RAMP: {
		int n = e->type.lanes;
		LLVMValueRef base = splat(g, expr(g, e->ramp.base), n), stride = splat(g, expr(g, e->ramp.stride), n);
		LLVMValueRef *k = malloc(sizeof *k * n);
		for (int i = 0; i < n; i++)
			k[i] = const_int(g, ir_elem(e->type), i);
		LLVMValueRef iota = LLVMConstVector(k, (unsigned)n);
		free(k);
		return LLVMBuildAdd(g->b, base, LLVMBuildMul(g->b, iota, stride, ""), "");
	}
	case IR_BROADCAST:
		return splat(g, expr(g, e->bcast.value), e->type.lanes);
	case IR_LET: {
		push(g, e->let.var, expr(g, e->let.value));
		LLVMValueRef r = expr(g, e->let.body);
		g->nsym--;
		return r;
	}
	case IR_READ:
	case IR_REDUCE:
		cg_fail(g, "codegen: '%s' survived lowering", e->kind == IR_READ ? "tensor read" : "reduce");
		return LLVMGetUndef(llvm_type(g, e->type));
	default:
		return binary(g, e);
	}
}

/* ---- statements ---- */

static void stmt(cg *g, const ir_stmt *s);

static LLVMBasicBlockRef new_block(cg *g, const char *name) { return LLVMAppendBasicBlockInContext(g->c, g->fn, name); }

/* for (v = lo; v < hi; v++) body, with v bound to var. */
static void emit_loop(cg *g, const ir_expr *var, LLVMValueRef lo, LLVMValueRef hi, const ir_stmt *body)
{
	LLVMBasicBlockRef pre = LLVMGetInsertBlock(g->b);
	LLVMBasicBlockRef head = new_block(g, "loop"), bodyb = new_block(g, "body"), exit = new_block(g, "done");
	LLVMBuildBr(g->b, head);
	LLVMPositionBuilderAtEnd(g->b, head);
	LLVMValueRef phi = LLVMBuildPhi(g->b, g->i64, var->var.name);
	LLVMValueRef cond = LLVMBuildICmp(g->b, LLVMIntSLT, phi, hi, "");
	LLVMBuildCondBr(g->b, cond, bodyb, exit);
	LLVMPositionBuilderAtEnd(g->b, bodyb);
	push(g, var, phi);
	stmt(g, body);
	g->nsym--;
	LLVMValueRef next = LLVMBuildAdd(g->b, phi, LLVMConstInt(g->i64, 1, 0), "");
	LLVMBasicBlockRef latch = LLVMGetInsertBlock(g->b);
	LLVMBuildBr(g->b, head);
	LLVMAddIncoming(phi, (LLVMValueRef[]){lo, next}, (LLVMBasicBlockRef[]){pre, latch}, 2);
	LLVMPositionBuilderAtEnd(g->b, exit);
}

typedef struct {
	cg *g;
	int n;
	const ir_expr *vars[256];
} freevars;

static void note_var(freevars *fv, const ir_expr *v)
{
	if (!lookup(fv->g, v))
		return;
	for (int i = 0; i < fv->n; i++)
		if (fv->vars[i] == v)
			return;
	if (fv->n < 256)
		fv->vars[fv->n++] = v;
}

static bool collect_free(const ir_expr *e, void *user)
{
	freevars *fv = user;
	if (e->kind == IR_VAR)
		note_var(fv, e);
	else if (e->kind == IR_LOAD)
		note_var(fv, e->load.buf->data);
	return true;
}

typedef struct {
	ir_mutator m;
	freevars *fv;
} store_scan;

static ir_stmt *scan_stores(ir_mutator *m, ir_stmt *s)
{
	store_scan *sc = (store_scan *)m;
	if (s->kind == IR_STORE)
		note_var(sc->fv, s->store.buf->data);
	return ir_mutate_stmt_children(m, s);
}

static void set_attrs(cg *g, LLVMValueRef fn);

/* An alloca in the current function's entry block, so a loop that reaches it
 * many times reuses one slot (and mem2reg / SROA can promote it). */
static LLVMValueRef entry_alloca(cg *g, LLVMTypeRef t, const char *name)
{
	LLVMBasicBlockRef cur = LLVMGetInsertBlock(g->b);
	LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(g->fn);
	LLVMValueRef first = LLVMGetFirstInstruction(entry);
	if (first)
		LLVMPositionBuilderBefore(g->b, first);
	else
		LLVMPositionBuilderAtEnd(g->b, entry);
	LLVMValueRef a = LLVMBuildAlloca(g->b, t, name);
	LLVMPositionBuilderAtEnd(g->b, cur);
	return a;
}

/*
 * A parallel loop: the body goes into its own function that runs a chunk
 * [begin, end) of iterations; the variables it uses from outside travel in a
 * closure struct on the caller's stack.
 */
static void emit_parallel(cg *g, const ir_stmt *s)
{
	freevars fv = {g, 0, {0}};
	ir_visit_stmt_exprs(s->loop.body, collect_free, &fv);
	store_scan sc = {{NULL, NULL, scan_stores, NULL}, &fv};
	ir_mutate_stmt(&sc.m, (ir_stmt *)s->loop.body);
	ir_visit_expr(s->loop.min, collect_free, &fv);
	if (fv.n == 256) {
		cg_fail(g, "codegen: parallel loop '%s' captures too many variables", s->loop.var->var.name);
		return;
	}
	LLVMTypeRef ftypes[256];
	LLVMValueRef vals[256];
	for (int i = 0; i < fv.n; i++) {
		vals[i] = lookup(g, fv.vars[i]);
		ftypes[i] = LLVMTypeOf(vals[i]);
	}
	LLVMTypeRef st = LLVMStructTypeInContext(g->c, ftypes, (unsigned)fv.n, 0);
	LLVMValueRef clo = entry_alloca(g, st, "closure");
	LLVMBasicBlockRef cur = LLVMGetInsertBlock(g->b);
	for (int i = 0; i < fv.n; i++)
		LLVMBuildStore(g->b, vals[i], LLVMBuildStructGEP2(g->b, st, clo, (unsigned)i, ""));

	LLVMTypeRef ptypes[] = {g->i64, g->i64, g->ptr};
	LLVMTypeRef pft = LLVMFunctionType(g->i32, ptypes, 3, 0);
	char name[256];
	snprintf(name, sizeof name, "%s.par.%d", g->fname, g->npar++);
	LLVMValueRef pf = LLVMAddFunction(g->mod, name, pft);
	LLVMSetLinkage(pf, LLVMInternalLinkage);
	set_attrs(g, pf);

	LLVMValueRef saved_fn = g->fn;
	int saved_nsym = g->nsym;
	g->fn = pf;
	LLVMBasicBlockRef pentry = new_block(g, "entry");
	LLVMPositionBuilderAtEnd(g->b, pentry);
	LLVMValueRef pclo = LLVMGetParam(pf, 2);
	for (int i = 0; i < fv.n; i++)
		push(g, fv.vars[i], LLVMBuildLoad2(g->b, ftypes[i], LLVMBuildStructGEP2(g->b, st, pclo, (unsigned)i, ""), ""));
	LLVMValueRef mn = LLVMBuildSExt(g->b, expr(g, s->loop.min), g->i64, "");
	/* iterate begin..end, with the loop variable offset by min */
	LLVMBasicBlockRef pre = LLVMGetInsertBlock(g->b);
	LLVMBasicBlockRef head = new_block(g, "loop"), bodyb = new_block(g, "body"), exit = new_block(g, "done");
	LLVMBuildBr(g->b, head);
	LLVMPositionBuilderAtEnd(g->b, head);
	LLVMValueRef phi = LLVMBuildPhi(g->b, g->i64, "task");
	LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, phi, LLVMGetParam(pf, 1), ""), bodyb, exit);
	LLVMPositionBuilderAtEnd(g->b, bodyb);
	push(g, s->loop.var, LLVMBuildAdd(g->b, phi, mn, s->loop.var->var.name));
	stmt(g, s->loop.body);
	g->nsym--;
	LLVMValueRef next = LLVMBuildAdd(g->b, phi, LLVMConstInt(g->i64, 1, 0), "");
	LLVMBasicBlockRef latch = LLVMGetInsertBlock(g->b);
	LLVMBuildBr(g->b, head);
	LLVMAddIncoming(phi, (LLVMValueRef[]){LLVMGetParam(pf, 0), next}, (LLVMBasicBlockRef[]){pre, latch}, 2);
	LLVMPositionBuilderAtEnd(g->b, exit);
	LLVMBuildRet(g->b, LLVMConstInt(g->i32, 0, 0));
	g->fn = saved_fn;
	g->nsym = saved_nsym;
	LLVMPositionBuilderAtEnd(g->b, cur);

	LLVMTypeRef rt_args[] = {g->i64, g->ptr, g->ptr};
	LLVMTypeRef rft = LLVMFunctionType(g->i32, rt_args, 3, 0);
	LLVMValueRef rf = LLVMGetNamedFunction(g->mod, "kiln_parallel_for");
	if (!rf)
		rf = LLVMAddFunction(g->mod, "kiln_parallel_for", rft);
	LLVMValueRef ext = LLVMBuildSExt(g->b, expr(g, s->loop.extent), g->i64, "");
	LLVMBuildCall2(g->b, rft, rf, (LLVMValueRef[]){ext, pf, clo}, 3, "");
}

static void emit_store(cg *g, const ir_stmt *s)
{
	const ir_buffer *buf = s->store.buf;
	const ir_expr *ix = s->store.index;
	LLVMValueRef v = to_mem(g, s->store.value->type, expr(g, s->store.value));
	int lanes = s->store.value->type.lanes;
	int64_t st;
	if (lanes == 1 || (ix->kind == IR_RAMP && ir_is_const_int(ix->ramp.stride, &st) && st == 1)) {
		LLVMValueRef p = elem_ptr(g, buf, expr(g, lanes == 1 ? ix : ix->ramp.base));
		LLVMSetAlignment(LLVMBuildStore(g->b, v, p), elem_align(buf));
		return;
	}
	/* a scatter, lane by lane, in lane order */
	LLVMValueRef iv = expr(g, ix);
	for (int i = 0; i < lanes; i++) {
		LLVMValueRef li = LLVMConstInt(g->i32, i, 0);
		LLVMValueRef p = elem_ptr(g, buf, LLVMBuildExtractElement(g->b, iv, li, ""));
		LLVMSetAlignment(LLVMBuildStore(g->b, LLVMBuildExtractElement(g->b, v, li, ""), p), elem_align(buf));
	}
}

typedef struct {
	bool hit;
	const ir_buffer *buf;
} load_probe;

static bool probe_loads(const ir_expr *e, void *user)
{
	load_probe *p = user;
	if (e->kind == IR_LOAD && e->load.buf == p->buf)
		p->hit = true;
	return !p->hit;
}

/*
 * How many statements from s[0] store one interleaved block: k stores
 * buf[ramp(b + j, k, n)] = v_j for j = 0..k-1 (k = 2..4) whose values do not
 * read buf. Together they write buf[b .. b + k*n) exactly once. 0: not such
 * a group. (An output split into rows of tiles writes each tile column this
 * way: a Winograd output transform's 4 columns of a tile row.)
 */
static int store_group(cg *g, ir_stmt *const *s, int n)
{
	if (n < 2 || s[0]->kind != IR_STORE)
		return 0;
	const ir_expr *ix = s[0]->store.index;
	int64_t k = small_stride(ix);
	if (k < 2 || k > n || s[0]->store.value->type.lanes != ix->type.lanes)
		return 0;
	for (int64_t j = 0; j < k; j++) {
		const ir_stmt *t = s[j];
		if (t->kind != IR_STORE || t->store.buf != s[0]->store.buf || small_stride(t->store.index) != k ||
		    t->store.index->type.lanes != ix->type.lanes)
			return 0;
		int64_t d;
		ir_expr *diff = ir_simplify_expr(g->ctx, NULL, ir_sub(g->ctx, t->store.index->ramp.base, ix->ramp.base));
		if (!ir_is_const_int(diff, &d) || d != j)
			return 0;
		load_probe p = {false, t->store.buf};
		ir_visit_expr(t->store.value, probe_loads, &p);
		if (p.hit)
			return 0;
	}
	return (int)k;
}

/* The k stores of a store_group as one contiguous store of their lanes interleaved. */
static void emit_store_group(cg *g, ir_stmt *const *s, int k)
{
	const ir_buffer *buf = s[0]->store.buf;
	int n = s[0]->store.index->type.lanes;
	LLVMValueRef v[4], mask[256];
	for (int j = 0; j < k; j++)
		v[j] = to_mem(g, s[j]->store.value->type, expr(g, s[j]->store.value));
	/* two halves of 2n lanes (v0 v1 | v2 v3), then element i*k + j from column j's lane i */
	LLVMValueRef undef = LLVMGetUndef(LLVMTypeOf(v[0]));
	for (int i = 0; i < 2 * n; i++)
		mask[i] = LLVMConstInt(g->i32, (unsigned)i, 0);
	LLVMValueRef lo = LLVMBuildShuffleVector(g->b, v[0], v[1], LLVMConstVector(mask, (unsigned)(2 * n)), "");
	LLVMValueRef hi = k > 2 ? LLVMBuildShuffleVector(g->b, v[2], k > 3 ? v[3] : undef,
	                                                 LLVMConstVector(mask, (unsigned)(2 * n)), "")
	                        : lo;
	for (int i = 0; i < n; i++)
		for (int j = 0; j < k; j++)
			mask[i * k + j] = LLVMConstInt(g->i32, (unsigned)(j < 2 ? j * n + i : 2 * n + (j - 2) * n + i), 0);
	LLVMValueRef all = LLVMBuildShuffleVector(g->b, lo, hi, LLVMConstVector(mask, (unsigned)(k * n)), "");
	LLVMValueRef p = elem_ptr(g, buf, expr(g, s[0]->store.index->ramp.base));
	LLVMSetAlignment(LLVMBuildStore(g->b, all, p), elem_align(buf));
}

static void emit_allocate(cg *g, const ir_stmt *s)
{
	const ir_buffer *buf = s->alloc.buf;
	int64_t bytes = buf->size * (int64_t)kiln_dtype_bytes(buf->elem);
	LLVMValueRef p;
	bool heap = bytes > 256 * 1024;
	if (!heap) {
		/* small buffers live on the stack */
		p = entry_alloca(g, LLVMArrayType2(mem_type(g, buf->elem), (uint64_t)buf->size), buf->name);
		LLVMSetAlignment(p, 64);
	} else {
		LLVMTypeRef ft = LLVMFunctionType(g->ptr, &g->i64, 1, 0);
		LLVMValueRef f = LLVMGetNamedFunction(g->mod, "kiln_workspace_alloc");
		if (!f)
			f = LLVMAddFunction(g->mod, "kiln_workspace_alloc", ft);
		p = LLVMBuildCall2(g->b, ft, f, (LLVMValueRef[]){LLVMConstInt(g->i64, (uint64_t)bytes, 0)}, 1, buf->name);
	}
	push(g, buf->data, p);
	stmt(g, s->alloc.body);
	g->nsym--;
	if (heap) {
		LLVMTypeRef ft = LLVMFunctionType(LLVMVoidTypeInContext(g->c), &g->ptr, 1, 0);
		LLVMValueRef f = LLVMGetNamedFunction(g->mod, "kiln_workspace_free");
		if (!f)
			f = LLVMAddFunction(g->mod, "kiln_workspace_free", ft);
		LLVMBuildCall2(g->b, ft, f, &p, 1, "");
	}
}

static void stmt(cg *g, const ir_stmt *s)
{
	if (!s || g->err)
		return;
	switch (s->kind) {
	case IR_FOR:
		if (s->loop.kind == IR_FOR_THREAD) {
			cg_fail(g, "codegen: loop '%s' is bound to a GPU thread index; the llvm target runs on the CPU "
			           "(build for a GPU target, or remove the bind)", s->loop.var->var.name);
			return;
		}
		if (s->loop.kind == IR_FOR_PARALLEL && !g->tgt->wasm) { /* wasm kernels run on one thread */
			emit_parallel(g, s);
			return;
		}
		{
			LLVMValueRef lo = LLVMBuildSExt(g->b, expr(g, s->loop.min), g->i64, "");
			LLVMValueRef hi = LLVMBuildAdd(g->b, lo, LLVMBuildSExt(g->b, expr(g, s->loop.extent), g->i64, ""), "");
			emit_loop(g, s->loop.var, lo, hi, s->loop.body);
		}
		return;
	case IR_STORE:
		emit_store(g, s);
		return;
	case IR_ALLOCATE:
		emit_allocate(g, s);
		return;
	case IR_IF: {
		LLVMValueRef c = expr(g, s->ifs.cond);
		LLVMBasicBlockRef tb = new_block(g, "then"), eb = s->ifs.els ? new_block(g, "else") : NULL,
		                  done = new_block(g, "endif");
		LLVMBuildCondBr(g->b, c, tb, eb ? eb : done);
		LLVMPositionBuilderAtEnd(g->b, tb);
		stmt(g, s->ifs.then);
		LLVMBuildBr(g->b, done);
		if (eb) {
			LLVMPositionBuilderAtEnd(g->b, eb);
			stmt(g, s->ifs.els);
			LLVMBuildBr(g->b, done);
		}
		LLVMPositionBuilderAtEnd(g->b, done);
		return;
	}
	case IR_SEQ:
		for (int i = 0; i < s->seq.n;) {
			int k = store_group(g, s->seq.s + i, s->seq.n - i);
			if (k) {
				emit_store_group(g, s->seq.s + i, k);
				i += k;
			} else {
				stmt(g, s->seq.s[i++]);
			}
		}
		return;
	case IR_LET_STMT:
		push(g, s->let.var, expr(g, s->let.value));
		stmt(g, s->let.body);
		g->nsym--;
		return;
	case IR_EVAL:
		expr(g, s->eval.e);
		return;
	case IR_BARRIER:
		cg_fail(g, "codegen: a %s barrier reached the CPU target", "shared-memory");
		return;
	default:
		cg_fail(g, "codegen: a '%s' statement survived lowering", s->kind == IR_PROVIDE ? "provide" : "realize");
	}
}

static void set_attrs(cg *g, LLVMValueRef fn)
{
	const cg_target *t = g->tgt;
	LLVMAddTargetDependentFunctionAttr(fn, "target-cpu", t->cpu);
	LLVMAddTargetDependentFunctionAttr(fn, "target-features", t->features);
	if (t->vector_bits) {
		char w[16];
		snprintf(w, sizeof w, "%d", t->vector_bits);
		LLVMAddTargetDependentFunctionAttr(fn, "prefer-vector-width", w);
		LLVMAddTargetDependentFunctionAttr(fn, "min-legal-vector-width", w);
	}
	unsigned nounwind = LLVMGetEnumAttributeKindForName("nounwind", 8);
	LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(g->c, nounwind, 0));
}

static void emit_function(cg *g, const kiln_func *f)
{
	LLVMTypeRef *params = malloc(sizeof *params * (f->nargs ? f->nargs : 1));
	for (int i = 0; i < f->nargs; i++)
		params[i] = g->ptr;
	LLVMTypeRef ft = LLVMFunctionType(g->i32, params, (unsigned)f->nargs, 0);
	free(params);
	g->fn = LLVMAddFunction(g->mod, f->name, ft);
	g->fname = f->name;
	g->npar = 0;
	set_attrs(g, g->fn);
	unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
	for (int i = 0; i < f->nargs; i++) {
		LLVMAddAttributeAtIndex(g->fn, (unsigned)i + 1, LLVMCreateEnumAttribute(g->c, noalias, 0));
		LLVMValueRef p = LLVMGetParam(g->fn, (unsigned)i);
		LLVMSetValueName2(p, f->args[i]->name, strlen(f->args[i]->name));
		push(g, f->args[i]->data, p);
	}
	LLVMBasicBlockRef entry = new_block(g, "entry");
	LLVMPositionBuilderAtEnd(g->b, entry);
	stmt(g, f->body);
	LLVMBuildRet(g->b, LLVMConstInt(g->i32, 0, 0));
	g->nsym = 0;
}

int cg_llvm_emit(kiln_ctx *ctx, LLVMContextRef c, LLVMModuleRef mod, const cg_target *t, int nfunc,
                 kiln_func *const *funcs)
{
	cg g = {0};
	g.ctx = ctx;
	g.tgt = t;
	g.c = c;
	g.mod = mod;
	g.b = LLVMCreateBuilderInContext(c);
	g.i1 = LLVMInt1TypeInContext(c);
	g.i8 = LLVMInt8TypeInContext(c);
	g.i32 = LLVMInt32TypeInContext(c);
	g.i64 = LLVMInt64TypeInContext(c);
	g.ptr = LLVMPointerTypeInContext(c, 0);
	for (int i = 0; i < nfunc && !g.err; i++)
		emit_function(&g, funcs[i]);
	LLVMDisposeBuilder(g.b);
	free(g.syms);
	if (g.err)
		return -1;
	char *msg = NULL;
	if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg)) {
		ir_error(ctx, "codegen: internal error, invalid LLVM IR: %s", msg);
		LLVMDisposeMessage(msg);
		return -1;
	}
	LLVMDisposeMessage(msg);
	return 0;
}

void cg_llvm_embed_blob(LLVMContextRef c, LLVMModuleRef mod, const uint8_t *data, size_t size)
{
	LLVMValueRef arr = LLVMConstStringInContext(c, (const char *)data, (unsigned)size, 1);
	LLVMValueRef g = LLVMAddGlobal(mod, LLVMTypeOf(arr), RT_BLOB_SYMBOL);
	LLVMSetInitializer(g, arr);
	LLVMSetGlobalConstant(g, 1);
	LLVMValueRef n = LLVMAddGlobal(mod, LLVMInt64TypeInContext(c), RT_BLOB_SIZE_SYMBOL);
	LLVMSetInitializer(n, LLVMConstInt(LLVMInt64TypeInContext(c), size, 0));
	LLVMSetGlobalConstant(n, 1);
}

kiln_module *cg_module_new(kiln_ctx *ctx, const char *target, int nfunc, kiln_func *const *funcs)
{
	kiln_module *m = rt_module_new(target);
	for (int i = 0; i < nfunc; i++) {
		kiln_arg_info args[64];
		if (funcs[i]->nargs > 64) {
			kiln_module_free(m);
			return ir_error(ctx, "build: '%s' has more than 64 arguments", funcs[i]->name), NULL;
		}
		cg_arg_infos(funcs[i], args);
		if (rt_module_add_function(m, funcs[i]->name, funcs[i]->nargs, args, NULL)) {
			kiln_module_free(m);
			return ir_error(ctx, "build: %s", kiln_rt_last_error()), NULL;
		}
	}
	return m;
}

void cg_arg_infos(const kiln_func *f, kiln_arg_info *out)
{
	for (int i = 0; i < f->nargs; i++) {
		const ir_buffer *b = f->args[i];
		memset(&out[i], 0, sizeof out[i]);
		snprintf(out[i].name, sizeof out[i].name, "%s", b->name);
		out[i].dtype = b->elem;
		out[i].ndim = b->ndim;
		memcpy(out[i].shape, b->shape, sizeof(int64_t) * b->ndim);
		out[i].is_output = f->is_output[i];
	}
}
