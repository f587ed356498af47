/*
 * lower.c — from a schedule to a lowered function.
 *
 * kiln_lower is the whole pipeline in one readable list (as Halide's
 * Lower.cpp): schedule_ops builds the loop nests (inline expansion, lazy
 * selects, bound inference, loops, guards, attach points), then flatten, inject_vthread,
 * double_buffer, simplify,
 * vectorize, unroll, simplify. Pass a FILE to print the IR after each.
 */
#include <stdlib.h>
#include <string.h>

#include "ir/mutate.h"
#include "schedule.h"

/* ---- inline expansion ---- */

static void expand_inline(sch_schedule *s)
{
	for (int i = 0; i < s->nstage; i++) {
		sch_stage *st = s->stages[i];
		st->body = ir_alloc(s->ctx, sizeof(ir_expr *) * st->op->nout);
		for (int k = 0; k < st->op->nout; k++)
			st->body[k] = sch_expand_inline(s, st->op->body[k]);
	}
}

/* ---- bound inference ---- */

static int leaf_pos(const sch_stage *st, const ir_iter *it)
{
	for (int i = 0; i < st->nleaf; i++)
		if (st->leaf[i] == it)
			return i;
	return -1;
}

static int64_t *root_extents(sch_stage *st)
{
	int64_t *ext = ir_alloc(st->s->ctx, sizeof(int64_t) * (st->nroot ? st->nroot : 1));
	for (int d = 0; d < st->op->naxis; d++)
		ext[d] = st->dext[d];
	for (int r = 0; r < st->op->nreduce; r++)
		ext[st->op->naxis + r] = st->op->reduce[r]->extent;
	return ext;
}

/* Index of each root iterator of st, in terms of its leaf loop variables. */
static ir_expr **root_index(sch_stage *st, const sch_nest *nest)
{
	kiln_ctx *ctx = st->s->ctx;
	ir_expr **idx = ir_alloc(ctx, sizeof(ir_expr *) * (st->nroot ? st->nroot : 1));
	for (int d = 0; d < st->op->naxis; d++)
		idx[d] = ir_add(ctx, st->dmin[d], nest->root_val[d]);
	for (int r = 0; r < st->op->nreduce; r++)
		idx[st->op->naxis + r] = ir_add(ctx, ir_i64(ctx, st->op->reduce[r]->min), nest->root_val[st->op->naxis + r]);
	return idx;
}

static ir_expr **root_vars(sch_stage *st)
{
	ir_expr **v = ir_alloc(st->s->ctx, sizeof(ir_expr *) * (st->nroot ? st->nroot : 1));
	for (int i = 0; i < st->nroot; i++)
		v[i] = st->root[i]->var;
	return v;
}

typedef struct {
	kiln_ctx *ctx;
	sch_stage *p;
	int n, cap;
	ir_expr ***reads; /* every read: a region from only some of them would be too small */
} read_list;

static bool collect_reads(const ir_expr *e, void *user)
{
	read_list *rl = user;
	if (e->kind == IR_READ)
		for (int k = 0; k < rl->p->nout; k++)
			if (e->read.t == rl->p->outs[k]) {
				if (rl->n == rl->cap) {
					int cap = rl->cap ? 2 * rl->cap : 64;
					ir_expr ***r = ir_alloc(rl->ctx, sizeof *r * (size_t)cap);
					if (rl->n)
						memcpy(r, rl->reads, sizeof *r * (size_t)rl->n);
					rl->reads = r;
					rl->cap = cap;
				}
				rl->reads[rl->n++] = e->read.idx;
			}
	return true;
}

static bool stage_reads(const sch_stage *o, const sch_stage *p);

/* Adds the reads of p in consumer c, as intervals over c's free leaves and the
 * variables of `threads` (a shared stage's thread indices, the parent's loops
 * between two attach points); span[d]: a bound on hi - lo while a single read
 * makes the region (-1: none). */
static void region_from(sch_stage *p, sch_stage *c, int first_free, const ir_env *threads, ir_expr **lo, ir_expr **hi,
                        int64_t *span, bool *ok)
{
	kiln_ctx *ctx = p->s->ctx;
	sch_nest nest;
	sch_make_nest(c, root_extents(c), &nest);
	ir_expr **idx = root_index(c, &nest), **vars = root_vars(c);
	const ir_expr *fv[64];
	int64_t flo[64], fhi[64];
	int nf = 0;
	for (int i = first_free; i < c->nleaf && nf < 64; i++, nf++) {
		fv[nf] = c->leaf[i]->var;
		flo[nf] = 0;
		fhi[nf] = nest.leaf_ext[i] - 1;
	}
	/* a shared stage's thread indices too: the block's window at once is tighter than
	 * each thread's window widened by where threads start (x/32 over 64 columns: 2, not 3) */
	for (int i = 0; threads && i < threads->n && nf < 64; i++, nf++) {
		fv[nf] = threads->vars[i];
		flo[nf] = threads->r[i].lo;
		fhi[nf] = threads->r[i].hi;
	}
	sch_free fr = {nf, fv, flo, fhi};
	read_list rl = {ctx, p, 0, 0, NULL};
	for (int k = 0; k < c->op->nout; k++)
		ir_visit_expr(c->body[k], collect_reads, &rl);
	for (int d = 0; d < p->outs[0]->ndim; d++) {
		for (int r = 0; r < rl.n && ok[d]; r++) {
			ir_expr *e = ir_substitute(ctx, rl.reads[r][d], c->nroot, vars, idx);
			sch_ival iv = sch_bound(ctx, ir_simplify_expr(ctx, NULL, e), &fr);
			if (!iv.lo) {
				ok[d] = false;
				break;
			}
			span[d] = lo[d] ? -1 : iv.span;
			lo[d] = lo[d] ? ir_binary(ctx, IR_MIN, lo[d], iv.lo) : iv.lo;
			hi[d] = hi[d] ? ir_binary(ctx, IR_MAX, hi[d], iv.hi) : iv.hi;
		}
	}
}

/* The ranges of the loops (or only the threadIdx-bound ones) of the stages whose bounds are already inferred. */
static void leaf_env(sch_schedule *s, ir_env *env, bool threads_only)
{
	for (int i = 0; i < s->nstage; i++) {
		sch_stage *st = s->stages[i];
		if (!st->dext || st->attach == ATTACH_INLINE)
			continue;
		sch_nest nest;
		sch_make_nest(st, root_extents(st), &nest);
		for (int l = 0; l < st->nleaf; l++) {
			sch_ann a = sch_annotation(st, st->leaf[l]);
			if (!threads_only || (a.kind == IR_FOR_THREAD && a.thread >= KILN_THREAD_X))
				ir_env_push(env, st->leaf[l]->var, 0, nest.leaf_ext[l] - 1);
		}
	}
}

/*
 * A shared buffer serves every thread of a block: its region is the union
 * over the thread indices. region_from already lets them range over their
 * extents; this bounds the ends again over threads that did not fit its
 * free set (past 64 variables).
 */
static void relax_threads(kiln_ctx *ctx, const ir_env *threads, int ndim, ir_expr **lo, ir_expr **hi, int64_t *span,
                          bool *ok)
{
	int nf = threads->n < 64 ? threads->n : 64;
	int64_t flo[64], fhi[64];
	for (int i = 0; i < nf; i++) {
		flo[i] = threads->r[i].lo;
		fhi[i] = threads->r[i].hi;
	}
	sch_free fr = {nf, threads->vars, flo, fhi};
	for (int d = 0; d < ndim; d++) {
		if (!ok[d] || !lo[d])
			continue;
		sch_ival a = sch_bound(ctx, ir_simplify_expr(ctx, NULL, lo[d]), &fr);
		sch_ival b = sch_bound(ctx, ir_simplify_expr(ctx, NULL, hi[d]), &fr);
		ok[d] = a.lo && b.hi;
		lo[d] = a.lo;
		hi[d] = b.hi;
		/* every thread's window [l, l + span] with l anywhere in a */
		span[d] = sch_span_add(span[d], a.span);
	}
}

static ir_iter *attach_leaf(const sch_stage *c, ir_iter *iv);

/*
 * Where o runs inside p's attach loop, as another stage attached to the same
 * parent at that loop or a deeper one (a padded input made once per channel
 * plane, read by a register block attached at the plane's column loop): the
 * position of o's loop in the parent, -1 if o is not attached there.
 */
static int attached_inside(const sch_stage *o, const sch_stage *p)
{
	if (o == p || o->attach != ATTACH_AT || o->attach_stage != p->attach_stage)
		return -1;
	const sch_stage *c = p->attach_stage;
	ir_iter *ol = attach_leaf(c, o->attach_iv), *pl = attach_leaf(c, p->attach_iv);
	int op = ol ? leaf_pos(c, ol) : -1, pp = pl ? leaf_pos(c, pl) : -1;
	return pp >= 0 && op >= pp ? op : -1;
}

/*
 * The region of p needed inside one iteration of its attach loop: what the
 * consumer reads with the loops inside that point free, plus what stages
 * attached at the same point read over their whole (already inferred) nest.
 */
static int infer_attached(sch_stage *p)
{
	kiln_ctx *ctx = p->s->ctx;
	sch_stage *c = p->attach_stage;
	ir_tensor *t = p->outs[0];
	ir_expr *lo[KILN_MAX_DIMS] = {0}, *hi[KILN_MAX_DIMS] = {0};
	int64_t span[KILN_MAX_DIMS];
	bool ok[KILN_MAX_DIMS];
	for (int d = 0; d < t->ndim; d++)
		ok[d] = true, span[d] = -1;
	ir_env threads = {0};
	if (p->scope == KILN_SCOPE_SHARED)
		leaf_env(p->s, &threads, true);
	int at = leaf_pos(c, p->attach_iv);
	region_from(p, c, at + 1, &threads, lo, hi, span, ok);
	for (int i = 0; i < p->s->nstage; i++) {
		sch_stage *o = p->s->stages[i];
		int oat = attached_inside(o, p);
		if (oat < 0 || !stage_reads(o, p))
			continue;
		/* o's region moves with the parent's loops between p's attach point and its own: they range freely */
		ir_env between = {0};
		for (int k = 0; k < threads.n; k++)
			ir_env_push(&between, threads.vars[k], threads.r[k].lo, threads.r[k].hi);
		if (oat > at) {
			sch_nest nest;
			sch_make_nest(c, root_extents(c), &nest);
			for (int l = at + 1; l <= oat; l++)
				ir_env_push(&between, c->leaf[l]->var, 0, nest.leaf_ext[l] - 1);
		}
		region_from(p, o, 0, &between, lo, hi, span, ok);
		ir_env_free(&between);
	}
	/* with the loop ranges known, the consumers' in-bounds clamps fold away
	 * when tiles divide evenly, and windows keep constant extents */
	ir_env env = {0};
	leaf_env(p->s, &env, false);
	for (int d = 0; d < t->ndim; d++)
		if (ok[d] && lo[d]) {
			lo[d] = ir_simplify_expr(ctx, &env, lo[d]);
			hi[d] = ir_simplify_expr(ctx, &env, hi[d]);
		}
	if (p->scope == KILN_SCOPE_SHARED)
		relax_threads(ctx, &threads, t->ndim, lo, hi, span, ok);
	ir_env_free(&threads);
	for (int d = 0; d < t->ndim; d++) {
		int64_t ext = 0;
		bool good = ok[d] && lo[d];
		if (good) {
			lo[d] = ir_simplify_expr(ctx, &env, lo[d]);
			ir_expr *n = ir_simplify_expr(ctx, &env, ir_add(ctx, ir_sub(ctx, hi[d], lo[d]), ir_i64(ctx, 1)));
			good = ir_is_const_int(n, &ext) && ext > 0;
			/* ends that do not simplify (x/32 over a tile): the window from lo as wide as the span */
			if (!good && span[d] >= 0 && span[d] < t->shape[d]) {
				ext = span[d] + 1;
				good = true;
			}
		}
		if (!good || ext >= t->shape[d]) {
			/* beyond interval arithmetic, or the whole extent anyway */
			p->dmin[d] = ir_i64(ctx, 0);
			p->dext[d] = t->shape[d];
			continue;
		}
		/* Slide the window inside the tensor so that it keeps a constant extent:
		 * the consumer's imperfect tiles would otherwise make p compute (and read
		 * its own inputs) past the end. */
		ir_expr *mn = ir_binary(ctx, IR_MAX, ir_binary(ctx, IR_MIN, lo[d], ir_i64(ctx, t->shape[d] - ext)), ir_i64(ctx, 0));
		p->dmin[d] = ir_simplify_expr(ctx, &env, mn);
		p->dext[d] = ext;
	}
	ir_env_free(&env);
	return 0;
}

static bool stage_reads(const sch_stage *o, const sch_stage *p)
{
	for (int k = 0; k < p->nout; k++)
		if (sch_reads(o, p->outs[k]))
			return true;
	return false;
}

/*
 * The leaf an attach point became when its axis was split or fused after
 * compute_at (TVM allows either order): once per iteration of a split axis
 * is once per iteration of its inner part, and a fused loop runs each
 * iteration of its parts. NULL if the axis is gone (rfactor rebuilt it).
 */
static ir_iter *attach_leaf(const sch_stage *c, ir_iter *iv)
{
	for (int guard = 0; iv && leaf_pos(c, iv) < 0 && guard <= c->nrel; guard++) {
		ir_iter *next = NULL;
		for (int i = 0; i < c->nrel && !next; i++) {
			const sch_rel *r = &c->rel[i];
			if (r->kind == REL_SPLIT && r->parent == iv)
				next = r->inner;
			else if (r->kind == REL_FUSE && (r->outer == iv || r->inner == iv))
				next = r->fused;
		}
		iv = next;
	}
	return iv && leaf_pos(c, iv) >= 0 ? iv : NULL;
}

static int check_attachments(sch_schedule *s, int nargs, ir_tensor *const *args)
{
	kiln_ctx *ctx = s->ctx;
	for (int i = 0; i < s->nstage; i++) {
		sch_stage *p = s->stages[i];
		if (p->attach != ATTACH_AT)
			continue;
		sch_stage *c = p->attach_stage;
		if (c->attach == ATTACH_INLINE)
			return ir_error(ctx, "compute_at: '%s' is computed inside '%s', which was then inlined", p->op->name,
			                c->op->name);
		ir_iter *leaf = attach_leaf(c, p->attach_iv);
		if (!leaf)
			return ir_error(ctx, "compute_at: axis '%s' of '%s' is no longer a loop of it (rfactor rebuilt its loops "
			                     "after '%s' was attached)", p->attach_iv->var->var.name, c->op->name, p->op->name);
		p->attach_iv = leaf;
		for (int a = 0; a < nargs; a++)
			for (int k = 0; k < p->nout; k++)
				if (args[a] == p->outs[k])
					return ir_error(ctx, "compute_at: '%s' is a function argument; arguments are computed at the root",
					                args[a]->name);
		for (int j = 0; j < s->nstage; j++) {
			sch_stage *o = s->stages[j];
			if (o != c && o != p && o->attach != ATTACH_INLINE && attached_inside(o, p) < 0 && stage_reads(o, p))
				return ir_error(ctx, "compute_at: '%s' is computed inside '%s' but '%s', computed elsewhere, reads it too",
				                p->op->name, c->op->name, o->op->name);
		}
	}
	return 0;
}

static void infer_bounds(sch_schedule *s)
{
	kiln_ctx *ctx = s->ctx;
	for (int i = s->nstage - 1; i >= 0; i--) {
		sch_stage *st = s->stages[i];
		int n = st->op->naxis ? st->op->naxis : 1;
		st->dmin = ir_alloc(ctx, sizeof(ir_expr *) * n);
		st->dext = ir_alloc(ctx, sizeof(int64_t) * n);
		if (st->attach == ATTACH_AT) {
			infer_attached(st);
		} else {
			for (int d = 0; d < st->op->naxis; d++) {
				st->dmin[d] = ir_i64(ctx, 0);
				st->dext[d] = st->outs[0]->shape[d];
			}
		}
	}
}

/* ---- loop nests ---- */

static ir_stmt *stage_nest(sch_stage *st);

/* Wraps body with the stages computed at leaf `level` of c. */
static ir_stmt *attach_at(sch_stage *c, int level, ir_stmt *body)
{
	sch_schedule *s = c->s;
	for (int i = s->nstage - 1; i >= 0; i--) {
		sch_stage *p = s->stages[i];
		if (p->attach != ATTACH_AT || p->attach_stage != c || p->attach_iv != c->leaf[level])
			continue;
		body = ir_seq2(s->ctx, stage_nest(p), body);
		for (int k = 0; k < p->nout; k++)
			body = ir_realize(s->ctx, p->outs[k], p->dmin, p->dext, p->scope, body);
	}
	return body;
}

static int guard_depth(const sch_stage *st, const ir_expr *g)
{
	int depth = 0;
	for (int i = 0; i < st->nleaf; i++)
		if (ir_expr_uses_var(g, st->leaf[i]->var))
			depth = i;
	return depth;
}

static bool guard_on_data(const sch_stage *st, const ir_expr *g)
{
	for (int i = 0; i < st->nleaf; i++)
		if (st->leaf[i]->reduce && ir_expr_uses_var(g, st->leaf[i]->var))
			return false;
	return true;
}

static ir_stmt *wrap_level(sch_stage *st, const sch_nest *nest, int level, ir_stmt *body, bool data_only,
                           bool attach)
{
	kiln_ctx *ctx = st->s->ctx;
	for (int g = 0; g < nest->nguard; g++)
		if (guard_depth(st, nest->guard[g]) == level && (!data_only || guard_on_data(st, nest->guard[g])))
			body = ir_if(ctx, nest->guard[g], body, NULL);
	if (attach)
		body = attach_at(st, level, body);
	ir_iter *it = st->leaf[level];
	sch_ann a = sch_annotation(st, it);
	return ir_for(ctx, it->var, ir_i64(ctx, 0), ir_i64(ctx, nest->leaf_ext[level]), a.kind, a.thread, body);
}

static ir_stmt *stage_nest(sch_stage *st)
{
	kiln_ctx *ctx = st->s->ctx;
	sch_nest nest;
	sch_make_nest(st, root_extents(st), &nest);
	ir_expr **idx = root_index(st, &nest), **vars = root_vars(st);
	bool reduce = st->op->nreduce > 0;
	ir_stmt *update = NULL, *init = NULL;
	for (int k = 0; k < st->op->nout; k++) {
		ir_tensor *t = st->outs[k];
		ir_expr *b = st->body[k];
		if (!reduce) {
			update = ir_seq2(ctx, update, ir_provide(ctx, t, idx, ir_substitute(ctx, b, st->nroot, vars, idx)));
			continue;
		}
		ir_expr *src = ir_substitute(ctx, b->red.src, st->nroot, vars, idx);
		ir_expr *acc = ir_reduce_combine(ctx, b->red.op, ir_read(ctx, t, idx), src);
		ir_stmt *u = ir_provide(ctx, t, idx, acc);
		if (b->red.cond)
			u = ir_if(ctx, ir_substitute(ctx, b->red.cond, st->nroot, vars, idx), u, NULL);
		update = ir_seq2(ctx, update, u);
		init = ir_seq2(ctx, init, ir_provide(ctx, t, idx, ir_reduce_identity(ctx, b->red.op, t->type)));
	}
	int p = st->nleaf;
	if (reduce)
		for (int i = 0; i < st->nleaf; i++)
			if (st->leaf[i]->reduce) {
				p = i;
				break;
			}
	ir_stmt *body = update;
	for (int level = st->nleaf - 1; level >= p; level--)
		body = wrap_level(st, &nest, level, body, false, true);
	if (reduce) {
		/* the data-parallel loops inside the first reduction loop are repeated for the init */
		for (int level = st->nleaf - 1; level > p; level--)
			if (!st->leaf[level]->reduce)
				init = wrap_level(st, &nest, level, init, true, false);
		body = ir_seq2(ctx, init, body);
	}
	for (int level = p - 1; level >= 0; level--)
		body = wrap_level(st, &nest, level, body, false, true);
	return body;
}

static bool is_arg(ir_tensor *t, int nargs, ir_tensor *const *args)
{
	for (int i = 0; i < nargs; i++)
		if (args[i] == t)
			return true;
	return false;
}

static ir_stmt *schedule_ops(sch_schedule *s, int nargs, ir_tensor *const *args)
{
	if (check_attachments(s, nargs, args))
		return NULL;
	expand_inline(s);
	sch_lazy_selects(s);
	infer_bounds(s);
	kiln_ctx *ctx = s->ctx;
	ir_stmt *body = NULL;
	for (int i = 0; i < s->nstage; i++)
		if (s->stages[i]->attach == ATTACH_ROOT)
			body = ir_seq2(ctx, body, stage_nest(s->stages[i]));
	for (int i = s->nstage - 1; i >= 0; i--) {
		sch_stage *st = s->stages[i];
		if (st->attach != ATTACH_ROOT)
			continue;
		for (int k = 0; k < st->nout; k++)
			if (!is_arg(st->outs[k], nargs, args))
				body = ir_realize(ctx, st->outs[k], st->dmin, st->dext, st->scope, body);
	}
	return body;
}

/* Every tensor the function touches must be an argument or computed in it. */
static int check_args(sch_schedule *s, int nargs, ir_tensor *const *args)
{
	kiln_ctx *ctx = s->ctx;
	if (nargs < 1)
		return ir_error(ctx, "lower: a function needs at least one argument");
	for (int i = 0; i < nargs; i++) {
		if (!args[i])
			return ir_error(ctx, "lower: argument %d is NULL", i);
		for (int k = 0; k < i; k++)
			if (args[k] == args[i])
				return ir_error(ctx, "lower: tensor '%s' is given twice as an argument", args[i]->name);
		if (args[i]->op->kind == IR_OP_COMPUTE && !sch_stage_of(s, args[i]))
			return ir_error(ctx, "lower: argument '%s' is not computed by this schedule", args[i]->name);
		const sch_stage *st = args[i]->op->kind == IR_OP_COMPUTE ? sch_stage_of(s, args[i]) : NULL;
		bool aligned = false;
		for (int d = 0; st && d < args[i]->ndim; d++)
			aligned |= st->align_factor[d] != 0;
		if (st && (st->storage || aligned))
			return ir_error(ctx, "lower: argument '%s' has a storage %s, but arguments keep the caller's "
			                     "row-major layout", args[i]->name, st->storage ? "order" : "alignment");
	}
	for (int i = 0; i < s->nout; i++)
		if (!is_arg(s->outs[i], nargs, args))
			return ir_error(ctx, "lower: output '%s' of the schedule is not among the arguments", s->outs[i]->name);
	for (int i = 0; i < s->nstage; i++) {
		ir_tensor **ts = NULL;
		int n = 0, cap = 0;
		for (int k = 0; k < s->stages[i]->op->nout; k++)
			ir_expr_tensors(s->stages[i]->op->body[k], &ts, &n, &cap);
		for (int k = 0; k < n; k++)
			if (ts[k]->op->kind == IR_OP_PLACEHOLDER && !is_arg(ts[k], nargs, args)) {
				int rc = ir_error(ctx, "lower: '%s' reads placeholder '%s', which is not among the arguments",
				                  s->stages[i]->op->name, ts[k]->name);
				free(ts);
				return rc;
			}
		free(ts);
	}
	return 0;
}

static void trace_pass(FILE *trace, const char *pass, const ir_stmt *s)
{
	if (!trace)
		return;
	fprintf(trace, "// ---- after %s ----\n", pass);
	ir_print_stmt(trace, s, 0);
}

kiln_func *kiln_lower(kiln_schedule *s, const char *name, int nargs, kiln_tensor *const *args, FILE *trace)
{
	if (!s)
		return NULL;
	kiln_ctx *ctx = s->ctx;
	/* the name becomes a C symbol, a wasm export and a kernel prefix */
	bool ident = name && (name[0] == '_' || (name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z'));
	for (const char *p = name; ident && *p; p++)
		ident = *p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9');
	if (!ident || strlen(name) > 200)
		return ir_error(ctx, "lower: function name '%s' is not a C identifier (letters, digits, '_'; up to 200)",
		                name ? name : "(NULL)"), NULL;
	if (check_args(s, nargs, args) || sch_check_reads(s))
		return NULL;
	ir_func *f = ir_alloc(ctx, sizeof *f);
	f->name = ir_strdup(ctx, name);
	f->ctx = ctx;
	f->nargs = nargs;
	f->args = ir_alloc(ctx, sizeof(ir_buffer *) * nargs);
	f->is_output = ir_alloc(ctx, sizeof(bool) * nargs);
	for (int i = 0; i < nargs; i++)
		f->is_output[i] = args[i]->op->kind == IR_OP_COMPUTE;

	for (int i = 0; trace && i < s->nstage; i++)
		if (s->stages[i]->note)
			fprintf(trace, "// %s: %s\n", s->stages[i]->op->name, s->stages[i]->note);
	ir_stmt *st = schedule_ops(s, nargs, args);
	if (!st)
		return NULL;
	trace_pass(trace, "schedule", st);
	st = ir_flatten(s, st, nargs, args, f->args);
	if (!st)
		return NULL;
	trace_pass(trace, "flatten", st);
	st = ir_inject_vthread(ctx, st);
	if (!st)
		return NULL;
	trace_pass(trace, "inject_vthread", st);
	st = ir_inject_double_buffer(ctx, st);
	if (!st)
		return NULL;
	trace_pass(trace, "double_buffer", st);
	st = ir_simplify(ctx, NULL, st);
	trace_pass(trace, "simplify", st);
	bool split;
	st = ir_partition_loops(ctx, st, &split);
	if (!st)
		return NULL;
	if (split) {
		trace_pass(trace, "partition_loops", st);
		st = ir_simplify(ctx, NULL, st);
		trace_pass(trace, "simplify", st);
	}
	st = ir_vectorize(ctx, st);
	if (!st)
		return NULL;
	trace_pass(trace, "vectorize", st);
	st = ir_unroll(ctx, st);
	if (!st)
		return NULL;
	trace_pass(trace, "unroll", st);
	st = ir_simplify(ctx, NULL, st);
	trace_pass(trace, "simplify", st);
	if (ctx->nerr)
		return NULL;
	f->body = st ? st : ir_eval(ctx, ir_int(ctx, IR_I32, 0));
	return f;
}
