/*
 * build.c — a model module from a fused, planned graph: one function per
 * group (its nodes' tensor expressions as ONE compute, scheduled by the
 * target's default schedule and lowered by the usual pipeline), all built
 * for the target at once; then the execution plan ("graph" blob) and the
 * weights ("weights" blob) join the module's container.
 *
 * The plan (read by runtime/graph.c), little-endian:
 *   "KGRAPH\0\1"  u32 version  u64 arena_bytes  u64 weights_bytes  u64 weights_hash (XXH3-64)
 *   u32 nvalue { str name, u8 code, u8 bits, u16 lanes, u8 ndim, i64 shape[ndim],
 *                u8 kind (0 input, 1 output, 2 weight, 3 intermediate), u64 offset, u64 init }
 *   u32 ninput { u32 value }  u32 noutput { u32 value }
 *   u32 nstep { str function, u32 nargs { u32 value } }
 * offset: into the weights (2) or the arena (3); init: an output's constant
 * value in the weights, or ~0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/ops.h"
#include "ir/mutate.h"
#include "optable.h"
#include "runtime/rt.h"
#define XXH_INLINE_ALL
#include <xxhash.h>

#define PLAN_MAGIC "KGRAPH\0\1"
#define PLAN_VERSION 2u
#define NO_INIT UINT64_MAX

/* ---- one group as one function ---- */

typedef struct {
	kiln_graph *g;
	gr_group *gp;
	gr_build anchor;              /* the anchor's build, when there is one */
	gr_build *member;             /* per member: the node (injective ones: built, for their index map) */
	int nside;                    /* the values read from outside, each one placeholder (and argument) */
	int side_value[64];
	kiln_tensor *side[64];
	/* the kernel's inputs */
	int nargs;
	kiln_tensor *args[64];
	int argval[64];
} group_build;

static int add_arg(group_build *gb, kiln_tensor *t, int value)
{
	if (gb->nargs >= 60)
		return ir_error(gb->g->ctx, "%s: a fused kernel reads more than 60 tensors", gb->g->what);
	gb->args[gb->nargs] = t;
	gb->argval[gb->nargs++] = value;
	return 0;
}

/* The member producing value v (the anchor is member 0), or -1: read from outside. */
static int member_of(const group_build *gb, int v)
{
	for (int m = 0; m < gb->gp->n; m++) {
		const gr_node *n = &gb->g->nodes[gb->gp->nodes[m]];
		for (int k = 0; k < n->nout; k++)
			if (n->out[k] == v)
				return m;
	}
	return -1;
}

static kiln_expr *value_at(group_build *gb, int v, kiln_expr *const *idx);

/* idx into value `from` (numpy broadcasting) as an index into value `to` of lower or equal rank. */
static kiln_expr *const *bcast_index(group_build *gb, int from, int to, kiln_expr *const *idx)
{
	const gr_value *f = &gb->g->values[from], *t = &gb->g->values[to];
	if (f->ndim == t->ndim && !memcmp(f->shape, t->shape, sizeof(int64_t) * t->ndim))
		return idx;
	kiln_expr **ix = ir_alloc(gb->g->ctx, sizeof *ix * (t->ndim ? t->ndim : 1));
	for (int d = 0; d < t->ndim; d++)
		ix[d] = t->shape[d] == 1 ? kiln_const(gb->g->ctx, KILN_I64, 0) : idx[f->ndim - t->ndim + d];
	return ix;
}

/*
 * An injective member (Reshape, Transpose, Slice...) pulled through: its
 * output tensor, built over a placeholder of its input, is read at idx and
 * every compute it reads is expanded in place, down to the placeholder,
 * whose reads become the input value's expression there. No copy is made.
 */
typedef struct {
	ir_mutator m;
	group_build *gb;
	kiln_tensor *in;
	int in_value;
	bool failed;
} pull_args;

static ir_expr *pull_read(ir_mutator *mu, ir_expr *e)
{
	pull_args *pa = (pull_args *)mu;
	if (e->kind != IR_READ)
		return ir_mutate_expr_children(mu, e);
	ir_tensor *t = e->read.t;
	kiln_expr **ix = ir_alloc(mu->ctx, sizeof *ix * (t->ndim ? t->ndim : 1));
	for (int d = 0; d < t->ndim; d++)
		ix[d] = ir_mutate_expr(mu, e->read.idx[d]);
	if (t == pa->in) {
		/* the placeholder may be a view of the value (another shape, the same elements) */
		const gr_value *v = &pa->gb->g->values[pa->in_value];
		kiln_expr **vx = ix;
		if (v->ndim != t->ndim || memcmp(v->shape, t->shape, sizeof(int64_t) * t->ndim)) {
			vx = ir_alloc(mu->ctx, sizeof *vx * (v->ndim ? v->ndim : 1));
			gr_unflatten(mu->ctx, gr_flatten(mu->ctx, t->ndim, t->shape, ix), v->ndim, v->shape, vx);
		}
		kiln_expr *x = value_at(pa->gb, pa->in_value, vx);
		pa->failed |= !x;
		return x ? x : e;
	}
	if (!t->op || t->op->kind != IR_OP_COMPUTE || t->op->nreduce || t->op->nout != 1) {
		pa->failed = true;
		return e;
	}
	ir_expr *vars[KILN_MAX_DIMS];
	for (int d = 0; d < t->op->naxis; d++)
		vars[d] = t->op->axis[d]->var;
	return ir_mutate_expr(mu, ir_substitute(mu->ctx, t->op->body[0], t->op->naxis, vars, ix));
}

static kiln_expr *pull_member(group_build *gb, gr_build *b, int v, kiln_expr *const *idx)
{
	kiln_ctx *ctx = gb->g->ctx;
	const gr_value *vv = &gb->g->values[v];
	pull_args pa = {{ctx, pull_read, NULL, NULL}, gb, b->in[0], b->n->in[0], false};
	kiln_expr *e = ir_mutate_expr(&pa.m, gr_read_as(ctx, b->out[0], vv->ndim, vv->shape, idx));
	if (pa.failed)
		return ctx->nerr ? NULL
		                 : (ir_error(ctx, "%s: %s is not an index map kiln can fuse", gb->g->what,
		                             gr_node_label(gb->g, b->n)), NULL);
	return e;
}

/* Value v of the group at idx (an index of v's own shape). */
static kiln_expr *value_at(group_build *gb, int v, kiln_expr *const *idx)
{
	kiln_ctx *ctx = gb->g->ctx;
	const gr_value *vv = &gb->g->values[v];
	int m = member_of(gb, v);
	kiln_expr *e = NULL;
	if (m < 0) {
		for (int i = 0; i < gb->nside && !e; i++)
			if (gb->side_value[i] == v)
				e = kiln_read_n(ctx, gb->side[i], vv->ndim, idx);
		if (!e)
			return ir_error(ctx, "%s: value '%s' has no placeholder in its group", gb->g->what, vv->name), NULL;
	} else if (m == 0 && gb->gp->anchor >= 0) {
		gr_build *b = &gb->anchor;
		e = gr_read_as(ctx, b->out[0], vv->ndim, vv->shape, idx);
		if (b->epilogue)
			e = b->epilogue(b, idx, e);
	} else {
		gr_build *b = &gb->member[m];
		if (b->n->def->injective) {
			e = pull_member(gb, b, v, idx);
		} else {
			kiln_expr *a[GR_MAX_IN] = {0};
			for (int k = 0; k < b->n->nin && k < GR_MAX_IN; k++) {
				int in = b->n->in[k];
				if (in < 0 || (b->n->def->const_inputs >> k & 1))
					continue;
				if (member_of(gb, in) >= 0) {
					a[k] = value_at(gb, in, bcast_index(gb, v, in, idx));
				} else {
					for (int i = 0; i < gb->nside && !a[k]; i++)
						if (gb->side_value[i] == in)
							a[k] = gr_bcast_read(ctx, gb->side[i], vv->ndim, idx);
				}
				if (!a[k])
					return NULL;
			}
			e = b->n->def->expr(b, a);
		}
	}
	/* a member value has one reader, but for a diamond's (fuse.c, at most one a group), which is expressed
	 * once per reader: nothing worth sharing */
	return e;
}

static kiln_expr *group_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	(void)ctx;
	group_build *gb = user;
	return value_at(gb, gb->gp->outs[0], idx);
}

/* Builds group gp's tensors: its output tensors in outs, inputs in gb. */
static int group_tensors(kiln_graph *g, gr_group *gp, group_build *gb, kiln_tensor **outs)
{
	memset(gb, 0, sizeof *gb);
	gb->g = g;
	gb->gp = gp;
	kiln_ctx *ctx = g->ctx;
	if (gp->anchor >= 0) {
		if (gr_build_node(g, gp->anchor, &gb->anchor))
			return -1;
		gr_node *n = &g->nodes[gp->anchor];
		for (int k = 0; k < n->nin && k < GR_MAX_IN; k++)
			if (gb->anchor.in[k] &&
			    add_arg(gb, gb->anchor.in[k], gb->anchor.in_value[k] ? gb->anchor.in_value[k] - 1 : n->in[k]))
				return -1;
		if (gp->n == 1 && !gb->anchor.epilogue) {
			for (int k = 0, o = 0; k < n->nout; k++)
				if (n->out[k] >= 0)
					outs[o++] = gb->anchor.out[k];
			return 0;
		}
	}
	const gr_value *ov = &g->values[gp->outs[0]];
	gb->member = ir_alloc(ctx, sizeof *gb->member * gp->n);
	for (int m = gp->anchor >= 0 ? 1 : 0; m < gp->n; m++) {
		gr_node *n = &g->nodes[gp->nodes[m]];
		gr_build *b = &gb->member[m];
		if (n->def->injective) {
			if (gr_build_node(g, gp->nodes[m], b))
				return -1;
		} else {
			*b = (gr_build){.g = g, .n = n, .ctx = ctx, .opset = g->opset};
		}
		/* each value read from outside: one placeholder, one argument */
		for (int k = 0; k < n->nin && k < GR_MAX_IN; k++) {
			int in = n->in[k];
			if (in < 0 || (n->def->const_inputs >> k & 1) || member_of(gb, in) >= 0)
				continue;
			bool have = false;
			for (int i = 0; i < gb->nside; i++)
				have |= gb->side_value[i] == in;
			if (have)
				continue;
			gr_value *v = &g->values[in];
			kiln_tensor *t = kiln_placeholder(ctx, ir_fmt(ctx, "v%d", in), v->ndim, v->shape, v->dtype);
			if (!t || add_arg(gb, t, in))
				return -1;
			gb->side_value[gb->nside] = in;
			gb->side[gb->nside++] = t;
		}
	}
	outs[0] = kiln_compute(ctx, gp->fn, ov->ndim, ov->shape, group_body, gb);
	if (outs[0])
		outs[0]->op->tag = "injective";
	return outs[0] ? 0 : -1;
}

/* ---- the plan ---- */

typedef struct {
	uint8_t *p;
	size_t n, cap;
	bool oom;
} wbuf;

static void put(wbuf *w, const void *d, size_t n)
{
	if (w->oom)
		return;
	if (w->n + n > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		while (cap < w->n + n)
			cap *= 2;
		uint8_t *q = realloc(w->p, cap);
		if (!q) {
			w->oom = true;
			return;
		}
		w->p = q;
		w->cap = cap;
	}
	memcpy(w->p + w->n, d, n);
	w->n += n;
}

static void put_u(wbuf *w, uint64_t v, int bytes)
{
	uint8_t b[8];
	for (int i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	put(w, b, bytes);
}

static void put_str(wbuf *w, const char *s)
{
	put_u(w, strlen(s), 4);
	put(w, s, strlen(s));
}

typedef struct {
	int *index;        /* graph value -> plan value, -1 if absent */
	int n;
	int *values;
	wbuf weights;
	uint64_t *woff;    /* per graph value: weights offset, or NO_INIT */
} plan_values;

static int plan_value(kiln_graph *g, plan_values *pv, int v)
{
	if (pv->index[v] >= 0)
		return pv->index[v];
	gr_value *x = &g->values[v];
	if (x->data) {
		while (pv->weights.n % 64)
			put_u(&pv->weights, 0, 1);
		pv->woff[v] = pv->weights.n;
		put(&pv->weights, x->data, gr_bytes(x));
	}
	pv->values[pv->n] = v;
	return pv->index[v] = pv->n++;
}

/* Appends to a bounded string. */
static void cat(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void cat(char *buf, size_t n, const char *fmt, ...)
{
	size_t l = strlen(buf);
	if (l + 1 >= n)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + l, n - l, fmt, ap);
	va_end(ap);
}

/*
 * What a tuning record of a group is for: its anchor's operator type, the
 * shapes it reads, its integer attributes (strides, pads, groups...), and
 * the operators fused after it. Two groups with one key are one task.
 */
static void group_task(const kiln_graph *g, const gr_group *gp, char *key, size_t n)
{
	key[0] = 0;
	for (int m = 0; m < gp->n; m++) {
		const gr_node *nd = &g->nodes[gp->nodes[m]];
		cat(key, n, "%s%s", m ? "+" : "", nd->op);
		if (m)
			continue;
		for (int k = 0; k < nd->nin; k++) {
			const gr_value *v = nd->in[k] >= 0 ? &g->values[nd->in[k]] : NULL;
			cat(key, n, " [");
			for (int d = 0; v && d < v->ndim; d++)
				cat(key, n, "%s%lld", d ? "," : "", (long long)v->shape[d]);
			cat(key, n, "]");
		}
		for (int a = 0; a < nd->nattr; a++) {
			const gr_attr *at = &nd->attr[a];
			if (at->kind == GR_INT)
				cat(key, n, " %s=%lld", at->name, (long long)at->i);
			else if (at->kind == GR_INTS) {
				cat(key, n, " %s=", at->name);
				for (int i = 0; i < at->n; i++)
					cat(key, n, "%s%lld", i ? "," : "", (long long)at->ints[i]);
			} else if (at->kind == GR_STRING)
				cat(key, n, " %s=%s", at->name, at->s);
		}
	}
}

int kiln_graph_num_groups(const kiln_graph *g) { return g ? g->ngroup : 0; }

const char *kiln_graph_group_task(kiln_graph *g, int i, const char **fn)
{
	if (!g || i < 0 || i >= g->ngroup)
		return NULL;
	char key[1024];
	group_task(g, &g->groups[i], key, sizeof key);
	if (fn)
		*fn = g->groups[i].fn;
	return ir_strdup(g->ctx, key);
}

/*
 * Whether target is a CPU (llvm, with or without -mcpu/-mattr, or wasm),
 * whose forms take weights packed at compile time (g->prepack); g->cpu then
 * describes it (vector width, registers, caches) for the op builders that
 * choose between forms.
 */
static void cpu_target(kiln_graph *g, const char *target)
{
	char err[256];
	g->prepack = !kiln_target_parse(target, &g->cpu, err, sizeof err) &&
	             (g->cpu.kind == KILN_LLVM || g->cpu.kind == KILN_WASM);
}

/* Targets with a schedule template a configuration applies to: the CPU one (llvm, wasm) and the GPU one. */
static bool tunable_target(const kiln_target *t)
{
	return t->kind == KILN_LLVM || t->kind == KILN_WASM || t->kind == KILN_WEBGL ||
	       ((t->kind == KILN_OPENCL || t->kind == KILN_WEBGPU) && !t->emulated);
}

int kiln_graph_group_visit(kiln_graph *g, int i, const char *target, const kiln_cpu_config *cfg,
                           kiln_group_visit_fn fn, void *user)
{
	if (!g || !target || i < 0 || i >= g->ngroup)
		return g ? ir_error(g->ctx, "graph: no group %d", i), -1 : -1;
	kiln_ctx *ctx = g->ctx;
	kiln_target tt;
	char terr[256];
	if (cfg && (kiln_target_parse(target, &tt, terr, sizeof terr) || !tunable_target(&tt)))
		return ir_error(ctx, "graph: configurations are for llvm and wasm (the CPU template), opencl and webgpu "
		                "(the GPU one) and webgl (its own), not '%s'", target), -1;
	/* building a matmul group packs its weights into a new graph value: the graph is put back as it was */
	int nvalue = g->nvalue, vcap = g->vcap;
	gr_value *values = g->values;
	bool prepack = g->prepack;
	kiln_target cpu = g->cpu;
	kiln_ctx_mark mark = kiln_ctx_save(ctx);
	cpu_target(g, target);
	gr_group *gp = &g->groups[i];
	group_build gb;
	kiln_tensor *outs[GR_MAX_OUT], *args[64 + GR_MAX_OUT];
	int rc = -1;
	if (!group_tensors(g, gp, &gb, outs)) {
		memcpy(args, gb.args, sizeof(kiln_tensor *) * gb.nargs);
		memcpy(args + gb.nargs, outs, sizeof(kiln_tensor *) * gp->nout);
		kiln_schedule *sch = cfg ? kiln_schedule_template(ctx, &tt, cfg, gp->nout, outs)
		                         : kiln_schedule_for(ctx, target, gp->nout, outs);
		kiln_func *f = sch && fn ? kiln_lower(sch, gp->fn, gb.nargs + gp->nout, args, NULL) : NULL;
		rc = !sch || (fn && !f) ? -1 : fn ? fn(user, f) : 0;
	}
	kiln_ctx_release(ctx, mark);
	g->nvalue = nvalue;
	g->vcap = vcap;
	g->values = values;
	g->prepack = prepack;
	g->cpu = cpu;
	return rc;
}

kiln_module *gr_build_module(kiln_graph *g, const char *target)
{
	kiln_ctx *ctx = g->ctx;
	cpu_target(g, target);
	/* their runtimes place every intermediate in one arena (the host's, or
	 * wasm memory), so a Concat planned in place has nothing left to do; the
	 * GPU devices give each intermediate a buffer of its own and keep it */
	bool arena = g->prepack;
	kiln_func **funcs = ir_alloc(ctx, sizeof *funcs * (g->ngroup + 1));
	int **stepargs = ir_alloc(ctx, sizeof(int *) * (g->ngroup + 1));
	int *nstepargs = ir_alloc(ctx, sizeof(int) * (g->ngroup + 1));
	int nstep = 0;
	const char **stepfn = ir_alloc(ctx, sizeof(char *) * (g->ngroup + 1));
	for (int i = 0; i < g->ngroup; i++) {
		gr_group *gp = &g->groups[i];
		if (arena && gp->in_place)
			continue;
		int s = nstep++;
		stepfn[s] = gp->fn;
		group_build gb;
		kiln_tensor *outs[GR_MAX_OUT];
		if (group_tensors(g, gp, &gb, outs))
			return NULL;
		kiln_tensor *args[64 + GR_MAX_OUT];
		memcpy(args, gb.args, sizeof(kiln_tensor *) * gb.nargs);
		memcpy(args + gb.nargs, outs, sizeof(kiln_tensor *) * gp->nout);
		/* a tuned configuration for this group's task, where the caller has one */
		const kiln_cpu_config *cfg = NULL;
		kiln_target tt;
		char terr[256];
		if (g->config && !kiln_target_parse(target, &tt, terr, sizeof terr) && tunable_target(&tt)) {
			char key[1024];
			group_task(g, gp, key, sizeof key);
			cfg = g->config(key, g->config_user);
			if (cfg && !memcmp(cfg, &(kiln_cpu_config){0}, sizeof *cfg))
				cfg = NULL; /* every knob 0: the default schedule (a tuner's record of it) */
		}
		kiln_schedule *sch = cfg ? kiln_schedule_template(ctx, &tt, cfg, gp->nout, outs)
		                         : kiln_schedule_for(ctx, target, gp->nout, outs);
		if (!sch && cfg) {
			/* a configuration this group's schedule does not take: its default, as a tuner expects */
			kiln_clear_error(ctx);
			sch = kiln_schedule_for(ctx, target, gp->nout, outs);
		}
		funcs[s] = sch ? kiln_lower(sch, gp->fn, gb.nargs + gp->nout, args, NULL) : NULL;
		if (!funcs[s]) {
			const gr_node *n = &g->nodes[gp->nodes[0]];
			char msg[sizeof ctx->err];
			snprintf(msg, sizeof msg, "%s: building the kernel of %s for %s: %.700s", g->what, gr_node_label(g, n), target,
			         ctx->err);
			memcpy(ctx->err, msg, sizeof msg);
			return NULL;
		}
		nstepargs[s] = gb.nargs + gp->nout;
		stepargs[s] = ir_alloc(ctx, sizeof(int) * nstepargs[s]);
		memcpy(stepargs[s], gb.argval, sizeof(int) * gb.nargs);
		memcpy(stepargs[s] + gb.nargs, gp->outs, sizeof(int) * gp->nout);
	}
	/* "webgpu-cpu" is WGSL under the schedule for CPU-emulated adapters */
	const char *cg = !strcmp(target, "webgpu-cpu") ? "webgpu" : target;
	kiln_module *m = nstep ? kiln_build(ctx, nstep, funcs, cg) : rt_module_new(cg);
	if (!m)
		return NULL;

	/* the values the plan names: graph inputs, outputs, and every kernel argument */
	plan_values pv = {0};
	pv.index = malloc(sizeof(int) * g->nvalue);
	pv.values = malloc(sizeof(int) * g->nvalue);
	pv.woff = malloc(sizeof(uint64_t) * g->nvalue);
	if (!pv.index || !pv.values || !pv.woff) {
		free(pv.index), free(pv.values), free(pv.woff);
		kiln_module_free(m);
		return ir_error(ctx, "%s: out of memory", g->what), NULL;
	}
	for (int v = 0; v < g->nvalue; v++)
		pv.index[v] = -1, pv.woff[v] = NO_INIT;
	for (int i = 0; i < g->ninput; i++)
		plan_value(g, &pv, g->inputs[i]);
	for (int i = 0; i < g->noutput; i++)
		plan_value(g, &pv, g->outputs[i]);
	for (int s = 0; s < nstep; s++)
		for (int a = 0; a < nstepargs[s]; a++)
			plan_value(g, &pv, stepargs[s][a]);

	wbuf w = {0};
	put(&w, PLAN_MAGIC, 8);
	put_u(&w, PLAN_VERSION, 4);
	put_u(&w, (uint64_t)g->arena_bytes, 8);
	put_u(&w, pv.weights.n, 8);
	/* the weights may travel apart from the plan (a bundle shares them between modules): checked on load */
	put_u(&w, (uint64_t)XXH3_64bits(pv.weights.p ? pv.weights.p : (uint8_t *)"", pv.weights.n), 8);
	put_u(&w, (uint64_t)pv.n, 4);
	for (int i = 0; i < pv.n; i++) {
		gr_value *x = &g->values[pv.values[i]];
		/* names are for messages, except the inputs' and outputs', which users look up */
		char name[64];
		snprintf(name, sizeof name, "%s", x->name);
		if (strlen(x->name) > 63 && (x->is_input || x->is_output)) {
			free(w.p), free(pv.weights.p), free(pv.index), free(pv.values), free(pv.woff);
			kiln_module_free(m);
			return ir_error(ctx, "%s: graph %s '%s' has a name longer than 63 bytes, which is not supported",
			                g->what, x->is_input ? "input" : "output", x->name), NULL;
		}
		put_str(&w, name);
		put_u(&w, x->dtype.code, 1);
		put_u(&w, x->dtype.bits, 1);
		put_u(&w, x->dtype.lanes, 2);
		put_u(&w, (uint64_t)x->ndim, 1);
		for (int d = 0; d < x->ndim; d++)
			put_u(&w, (uint64_t)x->shape[d], 8);
		int kind = x->is_input ? 0 : x->is_output ? 1 : x->data ? 2 : 3;
		put_u(&w, (uint64_t)kind, 1);
		uint64_t off = kind == 2 ? pv.woff[pv.values[i]] : kind == 3 ? (uint64_t)g->offset[pv.values[i]] : 0;
		put_u(&w, off, 8);
		put_u(&w, kind == 1 ? pv.woff[pv.values[i]] : NO_INIT, 8);
	}
	put_u(&w, (uint64_t)g->ninput, 4);
	for (int i = 0; i < g->ninput; i++)
		put_u(&w, (uint64_t)pv.index[g->inputs[i]], 4);
	put_u(&w, (uint64_t)g->noutput, 4);
	for (int i = 0; i < g->noutput; i++)
		put_u(&w, (uint64_t)pv.index[g->outputs[i]], 4);
	put_u(&w, (uint64_t)nstep, 4);
	for (int s = 0; s < nstep; s++) {
		put_str(&w, stepfn[s]);
		put_u(&w, (uint64_t)nstepargs[s], 4);
		for (int a = 0; a < nstepargs[s]; a++)
			put_u(&w, (uint64_t)pv.index[stepargs[s][a]], 4);
	}
	int rc = w.oom || pv.weights.oom ? ir_error(ctx, "%s: out of memory writing the plan", g->what) : 0;
	if (!rc && (rt_module_add_blob(m, "graph", w.p, w.n) ||
	            rt_module_add_blob(m, "weights", pv.weights.p ? pv.weights.p : (uint8_t *)"", pv.weights.n)))
		rc = ir_error(ctx, "%s: %s", g->what, kiln_rt_last_error());
	free(w.p), free(pv.weights.p), free(pv.index), free(pv.values), free(pv.woff);
	if (rc) {
		kiln_module_free(m);
		return NULL;
	}
	return m;
}
