/*
 * interp.c — the oracle. Evaluates a tensor expression straight from its
 * declaration, in double precision (int64 for integers), ignoring any
 * schedule. Every target is tested against it, so it is kept as plain as
 * possible: each compute tensor is materialized whole, element by element.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

typedef struct {
	ir_tensor *t;
	double *data;
} mat;

typedef struct {
	kiln_ctx *ctx;
	int nm;
	mat m[256];
	int nb;
	const ir_expr *bvar[512];
	int64_t bval[512];
	int nin;
	ir_tensor *const *ins;
	kiln_array *const *inputs;
	int err;
} interp;

static double eval(interp *ip, const ir_expr *e);

static int64_t floordiv(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Wraps an integer to the width of its type, as the targets do. */
static int64_t wrap(ir_type t, int64_t v)
{
	if (t.code == KILN_BOOL)
		return v != 0;
	if (t.bits >= 64)
		return v;
	uint64_t mask = (1ull << t.bits) - 1, u = (uint64_t)v & mask;
	if (t.code == KILN_INT && (u >> (t.bits - 1)))
		u |= ~mask;
	return (int64_t)u;
}

static double read_array(const kiln_array *a, int64_t flat)
{
	kiln_dtype t = a->dtype;
	switch (t.code) {
	case KILN_FLOAT:
		return t.bits == 32 ? ((float *)a->data)[flat] : t.bits == 64 ? ((double *)a->data)[flat]
		                                                                : (double)((_Float16 *)a->data)[flat];
	case KILN_BOOL:
		return ((uint8_t *)a->data)[flat] != 0;
	case KILN_UINT:
		return t.bits == 8 ? ((uint8_t *)a->data)[flat] : t.bits == 16 ? ((uint16_t *)a->data)[flat]
		       : t.bits == 32 ? ((uint32_t *)a->data)[flat] : (double)((uint64_t *)a->data)[flat];
	default:
		return t.bits == 8 ? ((int8_t *)a->data)[flat] : t.bits == 16 ? ((int16_t *)a->data)[flat]
		       : t.bits == 32 ? ((int32_t *)a->data)[flat] : (double)((int64_t *)a->data)[flat];
	}
}

static void write_array(kiln_array *a, int64_t flat, double v)
{
	kiln_dtype t = a->dtype;
	switch (t.code) {
	case KILN_FLOAT:
		if (t.bits == 32)
			((float *)a->data)[flat] = (float)v;
		else if (t.bits == 64)
			((double *)a->data)[flat] = v;
		else
			((_Float16 *)a->data)[flat] = (_Float16)v;
		return;
	case KILN_BOOL:
		((uint8_t *)a->data)[flat] = v != 0;
		return;
	default: {
		int64_t i = wrap(t, (int64_t)v);
		if (t.bits == 8)
			((int8_t *)a->data)[flat] = (int8_t)i;
		else if (t.bits == 16)
			((int16_t *)a->data)[flat] = (int16_t)i;
		else if (t.bits == 32)
			((int32_t *)a->data)[flat] = (int32_t)i;
		else
			((int64_t *)a->data)[flat] = i;
	}
	}
}

static int64_t numel(const ir_tensor *t)
{
	int64_t n = 1;
	for (int d = 0; d < t->ndim; d++)
		n *= t->shape[d];
	return n;
}

static double *materialize(interp *ip, ir_tensor *t);

static double eval_read(interp *ip, const ir_expr *e)
{
	ir_tensor *t = e->read.t;
	int64_t flat = 0;
	for (int d = 0; d < t->ndim; d++) {
		int64_t i = (int64_t)eval(ip, e->read.idx[d]);
		if (i < 0 || i >= t->shape[d]) {
			if (!ip->err++)
				ir_error(ip->ctx, "oracle: read of %s out of bounds: index %lld of dimension %d (extent %lld)",
				         t->name, (long long)i, d, (long long)t->shape[d]);
			return 0;
		}
		flat = flat * t->shape[d] + i;
	}
	double *data = materialize(ip, t);
	return data ? data[flat] : 0;
}

static double eval_reduce(interp *ip, const ir_expr *e)
{
	int n = e->red.naxis, base = ip->nb;
	double acc;
	if (base + n > 512) {
		if (!ip->err++)
			ir_error(ip->ctx, "oracle: expression nested too deep");
		return 0;
	}
	switch (e->red.op) {
	case KILN_SUM: acc = 0; break;
	case KILN_PROD: acc = 1; break;
	case KILN_RMAX: acc = -INFINITY; break;
	default: acc = INFINITY; break;
	}
	if (!ir_is_float(e->type) && e->red.op == KILN_RMAX)
		acc = -9.2e18;
	if (!ir_is_float(e->type) && e->red.op == KILN_RMIN)
		acc = 9.2e18;
	for (int i = 0; i < n; i++) {
		ip->bvar[base + i] = e->red.axis[i]->var;
		ip->bval[base + i] = e->red.axis[i]->min;
	}
	ip->nb = base + n;
	for (;;) {
		if (!e->red.cond || eval(ip, e->red.cond) != 0) {
			double x = eval(ip, e->red.src);
			switch (e->red.op) {
			case KILN_SUM: acc += x; break;
			case KILN_PROD: acc *= x; break;
			case KILN_RMAX: acc = x > acc ? x : acc; break;
			case KILN_RMIN: acc = x < acc ? x : acc; break;
			}
		}
		int i = n - 1;
		while (i >= 0 && ++ip->bval[base + i] == e->red.axis[i]->min + e->red.axis[i]->extent) {
			ip->bval[base + i] = e->red.axis[i]->min;
			i--;
		}
		if (i < 0)
			break;
	}
	ip->nb = base;
	return acc;
}

static double eval_call(interp *ip, const ir_expr *e)
{
	double x = eval(ip, e->call.a);
	switch (e->call.op) {
	case KILN_EXP: return exp(x);
	case KILN_LOG: return log(x);
	case KILN_SQRT: return sqrt(x);
	case KILN_RSQRT: return 1 / sqrt(x);
	case KILN_TANH: return tanh(x);
	case KILN_SIGMOID: return 1 / (1 + exp(-x));
	case KILN_ERF: return erf(x);
	case KILN_POW: return pow(x, eval(ip, e->call.b));
	case KILN_ABS: return fabs(x);
	case KILN_FLOOR: return floor(x);
	case KILN_CEIL: return ceil(x);
	case KILN_ROUND: return nearbyint(x); /* ties to even, like ONNX Round */
	default: return NAN;
	}
}

/* Values are doubles; integer-typed ones hold exact integers. */
static double eval(interp *ip, const ir_expr *e)
{
	switch (e->kind) {
	case IR_INT_IMM:
		return (double)e->i;
	case IR_FLOAT_IMM:
		return e->f;
	case IR_VAR:
		for (int i = ip->nb - 1; i >= 0; i--)
			if (ip->bvar[i] == e)
				return (double)ip->bval[i];
		if (!ip->err++)
			ir_error(ip->ctx, "oracle: variable '%s' is not bound here", e->var.name);
		return 0;
	case IR_NOT:
		return eval(ip, e->bin.a) == 0;
	case IR_SELECT:
	case IR_IF_THEN_ELSE:
		return eval(ip, e->sel.cond) != 0 ? eval(ip, e->sel.t) : eval(ip, e->sel.f);
	case IR_CAST: {
		double v = eval(ip, e->bin.a);
		if (ir_is_float(e->type))
			return e->type.bits == 32 ? (double)(float)v : v;
		if (ir_is_bool(e->type))
			return v != 0;
		return (double)wrap(e->type, (int64_t)v);
	}
	case IR_CALL:
		return eval_call(ip, e);
	case IR_READ:
		return eval_read(ip, e);
	case IR_REDUCE:
		return eval_reduce(ip, e);
	case IR_LET: {
		if (ip->nb == 512)
			return ir_error(ip->ctx, "oracle: lets nested too deep"), 0;
		ip->bvar[ip->nb] = e->let.var;
		ip->bval[ip->nb++] = (int64_t)eval(ip, e->let.value);
		double r = eval(ip, e->let.body);
		ip->nb--;
		return r;
	}
	default:
		break;
	}
	if (!ir_is_binary(e->kind)) {
		if (!ip->err++)
			ir_error(ip->ctx, "oracle: cannot evaluate a lowered node (kind %d)", e->kind);
		return 0;
	}
	double a = eval(ip, e->bin.a), b = eval(ip, e->bin.b);
	bool isint = ir_is_int(e->bin.a->type);
	switch (e->kind) {
	case IR_ADD: return isint ? (double)wrap(e->type, (int64_t)a + (int64_t)b) : a + b;
	case IR_SUB: return isint ? (double)wrap(e->type, (int64_t)a - (int64_t)b) : a - b;
	case IR_MUL: return isint ? (double)wrap(e->type, (int64_t)a * (int64_t)b) : a * b;
	case IR_DIV:
		if (!isint)
			return a / b;
		if ((int64_t)b == 0) {
			if (!ip->err++)
				ir_error(ip->ctx, "oracle: integer division by zero");
			return 0;
		}
		return (double)floordiv((int64_t)a, (int64_t)b);
	case IR_MOD:
		if (!isint)
			return a - floor(a / b) * b;
		if ((int64_t)b == 0) {
			if (!ip->err++)
				ir_error(ip->ctx, "oracle: integer modulo by zero");
			return 0;
		}
		return (double)((int64_t)a - floordiv((int64_t)a, (int64_t)b) * (int64_t)b);
	case IR_MIN: return a < b ? a : b;
	case IR_MAX: return a > b ? a : b;
	case IR_EQ: return a == b;
	case IR_NE: return a != b;
	case IR_LT: return a < b;
	case IR_LE: return a <= b;
	case IR_GT: return a > b;
	case IR_GE: return a >= b;
	case IR_AND: return a != 0 && b != 0;
	case IR_OR: return a != 0 || b != 0;
	}
	return 0;
}

static double *materialize(interp *ip, ir_tensor *t)
{
	for (int i = 0; i < ip->nm; i++)
		if (ip->m[i].t == t)
			return ip->m[i].data;
	if (ip->nm == 256) {
		ir_error(ip->ctx, "oracle: more than 256 tensors");
		return NULL;
	}
	int64_t n = numel(t);
	double *data = malloc(sizeof(double) * (n ? n : 1));
	if (!data) {
		ir_error(ip->ctx, "oracle: out of memory for %s", t->name);
		return NULL;
	}
	ip->m[ip->nm++] = (mat){t, data};
	if (t->op->kind == IR_OP_PLACEHOLDER) {
		for (int i = 0; i < ip->nin; i++)
			if (ip->ins[i] == t) {
				const kiln_array *a = ip->inputs[i];
				bool same = a && a->data && a->ndim == t->ndim && kiln_array_is_compact(a) &&
				            a->dtype.code == t->type.code && a->dtype.bits == t->type.bits;
				for (int d = 0; same && d < t->ndim; d++)
					same = a->shape[d] == t->shape[d];
				if (!same) {
					ir_error(ip->ctx, "oracle: the input array for '%s' does not have its shape and dtype", t->name);
					ip->err++;
					return NULL;
				}
				for (int64_t k = 0; k < n; k++)
					data[k] = read_array(a, k);
				return data;
			}
		ir_error(ip->ctx, "oracle: no input given for placeholder '%s'", t->name);
		ip->err++;
		return NULL;
	}
	ir_op *op = t->op;
	int base = ip->nb;
	if (base + op->naxis > 512) {
		ir_error(ip->ctx, "oracle: tensors nested too deep at %s", t->name);
		ip->err++;
		return NULL;
	}
	for (int d = 0; d < op->naxis; d++) {
		ip->bvar[base + d] = op->axis[d]->var;
		ip->bval[base + d] = 0;
	}
	ip->nb = base + op->naxis;
	ir_expr *body = op->body[t->value_index];
	for (int64_t k = 0; k < n && !ip->err; k++) {
		double v = eval(ip, body);
		if (ir_is_float(t->type) && t->type.bits == 32)
			v = (double)(float)v;
		else if (!ir_is_float(t->type))
			v = (double)wrap(t->type, (int64_t)v);
		data[k] = v;
		for (int d = op->naxis - 1; d >= 0; d--) {
			if (++ip->bval[base + d] < t->shape[d])
				break;
			ip->bval[base + d] = 0;
		}
	}
	ip->nb = base;
	return data;
}

int kiln_eval(kiln_ctx *ctx, kiln_tensor *t, int nin, kiln_tensor *const *ins, kiln_array *const *inputs,
              kiln_array *out)
{
	interp *ip = calloc(1, sizeof *ip);
	if (!ip)
		return ir_error(ctx, "oracle: out of memory");
	ip->ctx = ctx;
	ip->nin = nin;
	ip->ins = ins;
	ip->inputs = inputs;
	int rc = 0;
	int64_t n = numel(t);
	if (kiln_array_numel(out) != n || !kiln_array_is_compact(out)) {
		rc = ir_error(ctx, "oracle: output array for %s has %lld elements, expected %lld", t->name,
		              (long long)kiln_array_numel(out), (long long)n);
	} else {
		double *data = materialize(ip, t);
		if (!data || ip->err)
			rc = -1;
		else
			for (int64_t k = 0; k < n; k++)
				write_array(out, k, data[k]);
	}
	for (int i = 0; i < ip->nm; i++)
		free(ip->m[i].data);
	free(ip);
	return rc;
}
