/*
 * pipeline.c — double buffering of shared-memory stages (kiln_double_buffer),
 * after virtual threads are injected.
 *
 * A shared stage computed at a serial loop k is fetched at the top of k's
 * body and read by the rest of it:
 *
 *     for k { allocate S { S[..] = G[k ..]; compute(S) } }
 *
 * becomes
 *
 *     allocate S2[2 * size] { allocate R[regs] in local {
 *       S2[..] = G[min ..]                        the first panel, half 0
 *       for k {
 *         if (k + 1 < end) R[r] = G[k+1 ..]        the next panel, into registers
 *         compute(S2 at half (k - min) % 2)
 *         if (k + 1 < end) S2[other half] = R[r]
 *         barrier
 *       } } }
 *
 * so the global loads of the next panel are in flight while the block
 * computes, and one barrier per iteration does instead of two: the stores
 * go to the half no thread reads this iteration. The device pass (device.c)
 * adds the barrier before the loop and sees that the body ends with one.
 */
#include "ir/mutate.h"
#include "schedule.h"

#define MAX_PIPED 8
#define MAX_REGS 256 /* registers per thread for one stage's next panel */

typedef struct {
	ir_buffer *from, *to, *reg;
	ir_stmt *fetch;
} piped;

typedef struct {
	kiln_ctx *ctx;
	int n;
	piped p[MAX_PIPED];
	int nlocal;
	ir_buffer *local[64]; /* buffers allocated or written inside the loop (beyond the piped ones) */
	int err;
} pipeline;

/* ---- which statement fetches which stage ---- */

typedef struct {
	const pipeline *pl;
	ir_buffer *w;
	int nw;
	bool reads_other; /* loads a non-global buffer, or one the loop itself computes */
} fetch_probe;

static bool loop_local(const pipeline *pl, const ir_buffer *b)
{
	for (int i = 0; i < pl->nlocal; i++)
		if (pl->local[i] == b)
			return true;
	return false;
}

static bool probe_load(const ir_expr *e, void *user)
{
	fetch_probe *f = user;
	/* a panel of a stage the loop computes is not there one iteration early */
	if (e->kind == IR_LOAD && (e->load.buf->scope != KILN_SCOPE_GLOBAL || loop_local(f->pl, e->load.buf)))
		f->reads_other = true;
	return true;
}

static bool probe_store(const ir_stmt *s, void *user)
{
	fetch_probe *f = user;
	if (s->kind == IR_STORE && s->store.buf != f->w) {
		f->w = s->store.buf;
		f->nw++;
	}
	if (s->kind == IR_BARRIER || s->kind == IR_ALLOCATE)
		f->reads_other = true;
	return true;
}

/* The stage whose fetch s is: s stores into that stage only and reads global memory only. */
static piped *fetch_of(pipeline *pl, ir_stmt *s)
{
	fetch_probe f = {pl, NULL, 0, false};
	if (!pl->n)
		return NULL;
	ir_visit_stmts(s, probe_store, &f);
	ir_visit_stmt_exprs(s, probe_load, &f);
	if (f.nw != 1 || f.reads_other)
		return NULL;
	for (int i = 0; i < pl->n; i++)
		if (pl->p[i].from == f.w && !pl->p[i].fetch)
			return &pl->p[i];
	return NULL;
}

/* Notes the buffers s allocates or writes (the loop's own: not copied one iteration early). */
static bool note_local(const ir_stmt *s, void *user)
{
	pipeline *pl = user;
	ir_buffer *b = s->kind == IR_ALLOCATE ? s->alloc.buf : s->kind == IR_STORE ? s->store.buf : NULL;
	if (b && !b->double_buffer && !loop_local(pl, b)) {
		if (pl->nlocal == 64 && !pl->err++)
			ir_error(pl->ctx, "double_buffer: a loop with more than 64 buffers of its own");
		else if (pl->nlocal < 64)
			pl->local[pl->nlocal++] = b;
	}
	return true;
}

/* The body of a loop without the allocations and fetches of its double-buffered stages (noted in pl). */
static ir_stmt *peel(pipeline *pl, ir_stmt *s)
{
	kiln_ctx *ctx = pl->ctx;
	if (!s)
		return s;
	if (s->kind == IR_ALLOCATE && s->alloc.buf->double_buffer && s->alloc.buf->scope == KILN_SCOPE_SHARED) {
		if (pl->n == MAX_PIPED) {
			pl->err++;
			return ir_error(ctx, "double_buffer: more than %d stages at one loop", MAX_PIPED), s;
		}
		pl->p[pl->n++] = (piped){s->alloc.buf, NULL, NULL, NULL};
		return peel(pl, s->alloc.body);
	}
	if (s->kind == IR_ALLOCATE)
		return ir_allocate(ctx, s->alloc.buf, peel(pl, s->alloc.body));
	if (s->kind == IR_SEQ) {
		ir_stmt **parts = ir_alloc(ctx, sizeof(ir_stmt *) * s->seq.n);
		int k = 0;
		for (int i = 0; i < s->seq.n; i++) {
			piped *p = fetch_of(pl, s->seq.s[i]);
			if (p)
				p->fetch = s->seq.s[i];
			else
				parts[k++] = peel(pl, s->seq.s[i]);
		}
		return ir_seq(ctx, k, parts);
	}
	return s;
}

/* ---- a fetch split in two: into registers, then from them into shared memory ---- */

typedef struct {
	ir_expr *var, *min;
	int64_t ext;
} serial_loop;

typedef struct {
	pipeline *pl;
	piped *p;
	enum { TO_REGS, FROM_REGS, DIRECT } mode; /* global -> registers -> shared, or global -> shared */
	ir_expr *half;   /* the offset of the half the stores to shared memory go to */
	int64_t next;    /* registers handed out so far */
	int nl;
	serial_loop loops[16];
} splitter;

static ir_stmt *split(splitter *sp, ir_stmt *s)
{
	kiln_ctx *ctx = sp->pl->ctx;
	if (!s || sp->pl->err)
		return s;
	switch (s->kind) {
	case IR_FOR: {
		if (s->loop.kind == IR_FOR_THREAD) /* each thread has its own registers */
			return ir_for(ctx, s->loop.var, s->loop.min, s->loop.extent, s->loop.kind, s->loop.thread,
			              split(sp, s->loop.body));
		int64_t ext;
		if (!ir_is_const_int(s->loop.extent, &ext) || sp->nl == 16) {
			sp->pl->err++;
			return ir_error(ctx, "double_buffer: the copy into '%s' has a loop '%s' of unknown extent (or 16 nested); "
			                     "registers for it cannot be counted",
			                sp->p->from->name, s->loop.var->var.name), s;
		}
		sp->loops[sp->nl++] = (serial_loop){s->loop.var, s->loop.min, ext};
		ir_stmt *body = split(sp, s->loop.body);
		sp->nl--;
		/* unrolled, so the register index is a constant: an indexed private array would live in memory */
		ir_for_kind kind = s->loop.kind == IR_FOR_SERIAL ? IR_FOR_UNROLLED : s->loop.kind;
		return ir_for(ctx, s->loop.var, s->loop.min, s->loop.extent, kind, s->loop.thread, body);
	}
	case IR_IF:
		return ir_if(ctx, s->ifs.cond, split(sp, s->ifs.then), split(sp, s->ifs.els));
	case IR_LET_STMT:
		return ir_let_stmt(ctx, s->let.var, s->let.value, split(sp, s->let.body));
	case IR_SEQ: {
		ir_stmt **parts = ir_alloc(ctx, sizeof(ir_stmt *) * s->seq.n);
		for (int i = 0; i < s->seq.n; i++)
			parts[i] = split(sp, s->seq.s[i]);
		return ir_seq(ctx, s->seq.n, parts);
	}
	case IR_STORE: {
		/* this store's registers: row-major over the serial loops around it */
		ir_expr *r = ir_i64(ctx, sp->next);
		int64_t count = 1;
		for (int i = sp->nl - 1; i >= 0; i--) {
			ir_expr *pos = ir_sub(ctx, sp->loops[i].var, sp->loops[i].min);
			r = ir_add(ctx, r, count == 1 ? pos : ir_mul(ctx, pos, ir_i64(ctx, count)));
			count *= sp->loops[i].ext;
			if (count > MAX_REGS)
				break;
		}
		sp->next += count;
		if (count > MAX_REGS || sp->next > MAX_REGS) {
			sp->pl->err++;
			return ir_error(ctx, "double_buffer: each thread copies more than %d elements of '%s' per iteration; "
			                     "registers cannot hold the next panel (fetch it with more threads)",
			                MAX_REGS, sp->p->from->name), s;
		}
		if (sp->mode == TO_REGS)
			return sp->p->reg ? ir_store(ctx, sp->p->reg, r, s->store.value) : s; /* NULL: only counting */
		return ir_store(ctx, sp->p->to, ir_add(ctx, sp->half, s->store.index),
		                sp->mode == DIRECT ? s->store.value : ir_load(ctx, sp->p->reg, r));
	}
	default:
		return s;
	}
}

/* ---- the compute reads its iteration's half ---- */

typedef struct {
	ir_mutator m;
	pipeline *pl;
	ir_expr *half;
} retarget;

static piped *piped_of(pipeline *pl, const ir_buffer *b)
{
	for (int i = 0; i < pl->n; i++)
		if (pl->p[i].from == b)
			return &pl->p[i];
	return NULL;
}

static ir_expr *retarget_expr(ir_mutator *m, ir_expr *e)
{
	retarget *r = (retarget *)m;
	ir_expr *c = ir_mutate_expr_children(m, e);
	piped *p = c->kind == IR_LOAD ? piped_of(r->pl, c->load.buf) : NULL;
	return p ? ir_load(m->ctx, p->to, ir_add(m->ctx, ir_mul(m->ctx, r->half, ir_i64(m->ctx, p->from->size)),
	                                         c->load.index))
	         : c;
}

static ir_stmt *retarget_stmt(ir_mutator *m, ir_stmt *s)
{
	retarget *r = (retarget *)m;
	if (s->kind == IR_STORE && piped_of(r->pl, s->store.buf) && !r->pl->err++)
		ir_error(m->ctx, "double_buffer: '%s' is written after its copy at the top of the loop", s->store.buf->name);
	return ir_mutate_stmt_children(m, s);
}

/* ---- the loop ---- */

static ir_stmt *pipelined(pipeline *pl, ir_stmt *loop, ir_stmt *rest)
{
	kiln_ctx *ctx = pl->ctx;
	ir_expr *k = loop->loop.var, *min = loop->loop.min, *end = ir_add(ctx, min, loop->loop.extent);
	ir_expr *next = ir_add(ctx, k, ir_i64(ctx, 1));
	ir_expr *pos = ir_sub(ctx, k, min), *two = ir_i64(ctx, 2);
	int n = pl->n;
	ir_stmt **first = ir_alloc(ctx, sizeof(ir_stmt *) * n), **loads = ir_alloc(ctx, sizeof(ir_stmt *) * n),
	        **stores = ir_alloc(ctx, sizeof(ir_stmt *) * n);
	for (int i = 0; i < n; i++) {
		piped *p = &pl->p[i];
		if (!p->fetch) {
			pl->err++;
			return ir_error(ctx, "double_buffer: '%s' is not copied at the top of loop '%s' (compute it at that "
			                     "loop, from global memory)", p->from->name, k->var.name), loop;
		}
		int64_t shape[1] = {p->from->size * 2};
		p->to = ir_buffer_new(ctx, p->from->name, p->from->elem, 1, shape, KILN_SCOPE_SHARED);
		p->to->tensor = p->from->tensor;
		ir_stmt *fetch = ir_substitute_stmt(ctx, p->fetch, 1, &k, &next);
		/* the first pass counts the registers; the buffer then exists for the others */
		splitter sp = {pl, p, TO_REGS, NULL, 0, 0, {{0}}};
		split(&sp, fetch);
		if (pl->err)
			return loop;
		int64_t rshape[1] = {sp.next ? sp.next : 1};
		p->reg = ir_buffer_new(ctx, ir_fmt(ctx, "%s.next", p->from->name), p->from->elem, 1, rshape,
		                       KILN_SCOPE_LOCAL);
		sp.next = 0;
		loads[i] = split(&sp, fetch);
		ir_expr *other = ir_mul(ctx, ir_mod(ctx, ir_add(ctx, pos, ir_i64(ctx, 1)), two), ir_i64(ctx, p->from->size));
		sp = (splitter){pl, p, FROM_REGS, other, 0, 0, {{0}}};
		stores[i] = split(&sp, fetch);
		/* the first panel goes straight to half 0: nothing computes yet */
		sp = (splitter){pl, p, DIRECT, ir_i64(ctx, 0), 0, 0, {{0}}};
		first[i] = split(&sp, ir_substitute_stmt(ctx, p->fetch, 1, &k, &min));
	}
	retarget rt = {{ctx, retarget_expr, retarget_stmt, NULL}, pl, ir_mod(ctx, pos, two)};
	ir_stmt *compute = ir_mutate_stmt(&rt.m, rest);
	if (pl->err)
		return loop;
	ir_expr *more = ir_lt(ctx, next, end);
	ir_stmt *body[4] = {ir_if(ctx, more, ir_seq(ctx, n, loads), NULL), compute,
	                    ir_if(ctx, more, ir_seq(ctx, n, stores), NULL), ir_barrier(ctx, KILN_SCOPE_SHARED)};
	ir_stmt *l = ir_for(ctx, k, min, loop->loop.extent, loop->loop.kind, loop->loop.thread, ir_seq(ctx, 4, body));
	ir_stmt *pro = ir_seq(ctx, n, first);
	int64_t ext;
	if (!ir_is_const_int(loop->loop.extent, &ext) || ext < 1)
		pro = ir_if(ctx, ir_lt(ctx, ir_i64(ctx, 0), loop->loop.extent), pro, NULL);
	ir_stmt *out = ir_seq2(ctx, pro, l);
	for (int i = n - 1; i >= 0; i--)
		out = ir_allocate(ctx, pl->p[i].to, ir_allocate(ctx, pl->p[i].reg, out));
	return out;
}

static ir_stmt *pipe_stmt(ir_mutator *m, ir_stmt *s)
{
	if (s->kind != IR_FOR)
		return ir_mutate_stmt_children(m, s);
	ir_stmt *r = ir_mutate_stmt_children(m, s); /* inner loops first */
	pipeline *pl = m->user;
	*pl = (pipeline){m->ctx, 0, {{0}}, 0, {0}, 0};
	ir_stmt *rest = peel(pl, r->loop.body);
	if (!pl->n || pl->err)
		return r;
	/* a loop with stages to pipeline: again, knowing what the loop computes itself */
	*pl = (pipeline){m->ctx, 0, {{0}}, 0, {0}, 0};
	ir_visit_stmts(r->loop.body, note_local, pl);
	rest = peel(pl, r->loop.body);
	if (pl->err)
		return r;
	if (r->loop.kind != IR_FOR_SERIAL && r->loop.kind != IR_FOR_UNROLLED) {
		pl->err++;
		return ir_error(m->ctx, "double_buffer: '%s' is computed at loop '%s', which is not a serial loop",
		                pl->p[0].from->name, r->loop.var->var.name), r;
	}
	return pipelined(pl, r, rest);
}

static bool leftover(const ir_stmt *s, void *user)
{
	kiln_ctx *ctx = user;
	if (s->kind == IR_ALLOCATE && s->alloc.buf->double_buffer && !ctx->nerr)
		ir_error(ctx, "double_buffer: '%s' is %s; only a shared-memory stage computed at a serial loop of its reader "
		              "is double-buffered",
		         s->alloc.buf->name, s->alloc.buf->scope != KILN_SCOPE_SHARED ? "not in shared memory (set_scope)"
		                                                                      : "not computed at a loop (compute_at)");
	return true;
}

ir_stmt *ir_inject_double_buffer(kiln_ctx *ctx, ir_stmt *s)
{
	pipeline pl;
	ir_mutator m = {ctx, NULL, pipe_stmt, &pl};
	ir_stmt *r = ir_mutate_stmt(&m, s);
	if (!ctx->nerr)
		ir_visit_stmts(r, leftover, ctx);
	return ctx->nerr ? NULL : r;
}
