/*
 * device.c — the host/device split and barrier insertion.
 *
 * The host part of a GPU function may only allocate global intermediates
 * and launch kernels; a kernel starts at the outermost loop bound to a block
 * or thread index. Inside it, every loop bound to the same index must have
 * the same extent (that is the launch extent), and the loop becomes the
 * index itself. Shared buffers move to the kernel's top. Barriers go where
 * threads write a shared buffer and then read it, and at the end of a loop
 * whose iterations write it after reading it.
 */
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "ir/mutate.h"
#include "ir/simplify.h"

typedef struct {
	ir_mutator m;
	ir_kernel *k;
	int err;
	const ir_device_limits *lim;
} kernel_builder;

static int kfail(kernel_builder *kb, const char *fmt, const char *a, long long b, long long c)
{
	if (!kb->err++)
		ir_error(kb->m.ctx, fmt, a, b, c);
	return -1;
}

static void add_buffer(kiln_ctx *ctx, ir_buffer ***list, int *n, ir_buffer *b)
{
	for (int i = 0; i < *n; i++)
		if ((*list)[i] == b)
			return;
	ir_buffer **nl = ir_alloc(ctx, sizeof(ir_buffer *) * (*n + 1));
	if (*n)
		memcpy(nl, *list, sizeof(ir_buffer *) * *n);
	nl[(*n)++] = b;
	*list = nl;
}

static ir_expr *kernel_expr(ir_mutator *m, ir_expr *e)
{
	kernel_builder *kb = (kernel_builder *)m;
	if (e->kind == IR_LOAD && e->load.buf->scope == KILN_SCOPE_GLOBAL)
		add_buffer(m->ctx, &kb->k->params, &kb->k->nparam, e->load.buf);
	return ir_mutate_expr_children(m, e);
}

static ir_stmt *kernel_stmt(ir_mutator *m, ir_stmt *s)
{
	kernel_builder *kb = (kernel_builder *)m;
	ir_kernel *k = kb->k;
	kiln_ctx *ctx = m->ctx;
	switch (s->kind) {
	case IR_FOR: {
		if (s->loop.kind == IR_FOR_PARALLEL) {
			kfail(kb, "device: loop '%s' is a CPU parallel loop inside a GPU kernel (bind it instead)",
			      s->loop.var->var.name, 0, 0);
			return s;
		}
		if (s->loop.kind != IR_FOR_THREAD)
			return ir_mutate_stmt_children(m, s);
		int64_t ext;
		kiln_thread t = s->loop.thread;
		if (!ir_is_const_int(s->loop.extent, &ext)) {
			kfail(kb, "device: loop '%s' is bound to a thread index but its extent is not constant",
			      s->loop.var->var.name, 0, 0);
			return s;
		}
		int64_t *slot = t <= KILN_BLOCK_Z ? &k->grid[t - KILN_BLOCK_X] : &k->block[t - KILN_THREAD_X];
		if (k->index[t] && *slot != ext) {
			kfail(kb, "device: %s is bound to loops of extents %lld and %lld in one kernel; they must match",
			      ir_thread_name(t), (long long)*slot, (long long)ext);
			return s;
		}
		if (!k->index[t]) {
			k->index[t] = ir_var(ctx, ir_thread_name(t), IR_I64);
			*slot = ext;
		}
		ir_expr *idx = ir_add(ctx, s->loop.min, k->index[t]);
		return ir_mutate_stmt(m, ir_substitute_stmt(ctx, s->loop.body, 1, &s->loop.var, &idx));
	}
	case IR_ALLOCATE: {
		ir_buffer *b = s->alloc.buf;
		if (b->scope == KILN_SCOPE_GLOBAL) {
			kfail(kb, "device: global buffer '%s' is allocated inside a kernel; compute it at the root", b->name, 0, 0);
			return s;
		}
		ir_stmt *body = ir_mutate_stmt(m, s->alloc.body);
		if (b->scope == KILN_SCOPE_SHARED) {
			add_buffer(ctx, &k->shared, &k->nshared, b);
			k->shared_bytes += b->size * (int64_t)kiln_dtype_bytes(b->elem);
			return body;
		}
		return body ? ir_allocate(ctx, b, body) : NULL;
	}
	case IR_STORE:
		if (s->store.buf->scope == KILN_SCOPE_GLOBAL) {
			add_buffer(ctx, &k->params, &k->nparam, s->store.buf);
			add_buffer(ctx, &k->written, &k->nwritten, s->store.buf);
		}
		return ir_mutate_stmt_children(m, s);
	default:
		return ir_mutate_stmt_children(m, s);
	}
}

/* ---- barriers ---- */

typedef struct {
	ir_mutator m;
	int nr, nw;
	ir_buffer *r[64], *w[64];
} access;

static void note(ir_buffer **list, int *n, ir_buffer *b)
{
	for (int i = 0; i < *n; i++)
		if (list[i] == b)
			return;
	if (*n < 64)
		list[(*n)++] = b;
}

static ir_expr *access_expr(ir_mutator *m, ir_expr *e)
{
	access *a = (access *)m;
	if (e->kind == IR_LOAD && e->load.buf->scope == KILN_SCOPE_SHARED)
		note(a->r, &a->nr, e->load.buf);
	return ir_mutate_expr_children(m, e);
}

static ir_stmt *access_stmt(ir_mutator *m, ir_stmt *s)
{
	access *a = (access *)m;
	if (s->kind == IR_STORE && s->store.buf->scope == KILN_SCOPE_SHARED)
		note(a->w, &a->nw, s->store.buf);
	return ir_mutate_stmt_children(m, s);
}

static access accesses(const ir_stmt *s)
{
	access a = {{NULL, access_expr, access_stmt, NULL}, 0, 0, {0}, {0}};
	ir_mutate_stmt(&a.m, (ir_stmt *)s);
	return a;
}

static bool overlaps(ir_buffer *const *x, int nx, ir_buffer *const *y, int ny)
{
	for (int i = 0; i < nx; i++)
		for (int j = 0; j < ny; j++)
			if (x[i] == y[j])
				return true;
	return false;
}

static ir_stmt *sync_stmt(ir_mutator *m, ir_stmt *s)
{
	kiln_ctx *ctx = m->ctx;
	if (s->kind == IR_SEQ) {
		ir_stmt *r = ir_mutate_stmt_children(m, s);
		if (r->kind != IR_SEQ)
			return r;
		/* a barrier before a statement that reads what earlier ones wrote */
		ir_stmt **out = ir_alloc(ctx, sizeof(ir_stmt *) * r->seq.n * 2);
		int n = 0;
		ir_buffer *written[64];
		int nw = 0;
		for (int i = 0; i < r->seq.n; i++) {
			if (r->seq.s[i]->kind == IR_BARRIER)
				nw = 0; /* one already there (double buffering places its own) */
			access a = accesses(r->seq.s[i]);
			if (overlaps(a.r, a.nr, written, nw)) {
				out[n++] = ir_barrier(ctx, KILN_SCOPE_SHARED);
				nw = 0;
			}
			for (int k = 0; k < a.nw; k++)
				note(written, &nw, a.w[k]);
			out[n++] = r->seq.s[i];
		}
		return n == r->seq.n ? r : ir_seq(ctx, n, out);
	}
	if (s->kind == IR_FOR) {
		ir_stmt *r = ir_mutate_stmt_children(m, s);
		access a = accesses(r->loop.body);
		/* the next iteration must not overwrite what threads still read, unless the body ends in a barrier */
		const ir_stmt *b = r->loop.body;
		bool ends_synced = b->kind == IR_SEQ && b->seq.n && b->seq.s[b->seq.n - 1]->kind == IR_BARRIER;
		if (overlaps(a.r, a.nr, a.w, a.nw) && !ends_synced)
			return ir_for(ctx, r->loop.var, r->loop.min, r->loop.extent, r->loop.kind, r->loop.thread,
			              ir_seq2(ctx, r->loop.body, ir_barrier(ctx, KILN_SCOPE_SHARED)));
		return r;
	}
	return ir_mutate_stmt_children(m, s);
}

static bool uses_thread(const ir_expr *e, const ir_kernel *k)
{
	for (int t = KILN_THREAD_X; t <= KILN_THREAD_Z; t++)
		if (k->index[t] && ir_expr_uses_var(e, k->index[t]))
			return true;
	return false;
}

/* A barrier every thread of a block might not reach would hang the device. */
static int check_barriers(kiln_ctx *ctx, const ir_stmt *s, const ir_kernel *k, bool divergent)
{
	if (!s)
		return 0;
	switch (s->kind) {
	case IR_BARRIER:
		return divergent ? ir_error(ctx, "device: kernel '%s' needs a barrier inside a branch that depends on the "
		                                 "thread index (make the shared-memory stage's extents divide evenly)",
		                            k->name)
		                 : 0;
	case IR_IF:
		divergent |= uses_thread(s->ifs.cond, k);
		return check_barriers(ctx, s->ifs.then, k, divergent) || check_barriers(ctx, s->ifs.els, k, divergent) ? -1 : 0;
	case IR_FOR:
		divergent |= uses_thread(s->loop.extent, k) || uses_thread(s->loop.min, k);
		return check_barriers(ctx, s->loop.body, k, divergent);
	case IR_SEQ:
		for (int i = 0; i < s->seq.n; i++)
			if (check_barriers(ctx, s->seq.s[i], k, divergent))
				return -1;
		return 0;
	case IR_ALLOCATE:
		return check_barriers(ctx, s->alloc.body, k, divergent);
	case IR_LET_STMT:
		return check_barriers(ctx, s->let.body, k, divergent);
	default:
		return 0;
	}
}

/* ---- the host part ---- */

typedef struct {
	kiln_ctx *ctx;
	const kiln_func *f;
	const ir_device_limits *lim;
	ir_device_func *out;
	int cap;
	int err;
} splitter;

static int make_kernel(splitter *sp, ir_stmt *root)
{
	kiln_ctx *ctx = sp->ctx;
	if (sp->out->nkernel == sp->cap) {
		sp->cap = sp->cap ? sp->cap * 2 : 4;
		ir_kernel *nk = ir_alloc(ctx, sizeof(ir_kernel) * sp->cap);
		if (sp->out->nkernel)
			memcpy(nk, sp->out->kernels, sizeof(ir_kernel) * sp->out->nkernel);
		sp->out->kernels = nk;
	}
	ir_kernel *k = &sp->out->kernels[sp->out->nkernel++];
	memset(k, 0, sizeof *k);
	k->name = ir_fmt(ctx, "%s_kernel%d", sp->f->name, sp->out->nkernel - 1);
	for (int d = 0; d < 3; d++)
		k->grid[d] = k->block[d] = 1;
	kernel_builder kb = {{ctx, kernel_expr, kernel_stmt, NULL}, k, 0, sp->lim};
	ir_stmt *body = ir_mutate_stmt(&kb.m, root);
	if (kb.err)
		return -1;
	/* with the index ranges known, `0 + blockIdx.x` and always-true guards go away */
	ir_env env = {0};
	for (int t = KILN_BLOCK_X; t <= KILN_THREAD_Z; t++)
		if (k->index[t])
			ir_env_push(&env, k->index[t], 0,
			            (t <= KILN_BLOCK_Z ? k->grid[t - KILN_BLOCK_X] : k->block[t - KILN_THREAD_X]) - 1);
	body = ir_simplify(ctx, &env, body);
	ir_env_free(&env);
	ir_mutator sync = {ctx, NULL, sync_stmt, NULL};
	k->body = ir_mutate_stmt(&sync, body);
	/* parameters in the function's argument order, then temporaries */
	ir_buffer **sorted = ir_alloc(ctx, sizeof(ir_buffer *) * (k->nparam ? k->nparam : 1));
	int n = 0;
	for (int a = 0; a < sp->f->nargs; a++)
		for (int p = 0; p < k->nparam; p++)
			if (k->params[p] == sp->f->args[a])
				sorted[n++] = k->params[p];
	for (int p = 0; p < k->nparam; p++) {
		bool is_arg = false;
		for (int a = 0; a < sp->f->nargs; a++)
			is_arg |= k->params[p] == sp->f->args[a];
		if (!is_arg)
			sorted[n++] = k->params[p];
	}
	k->params = sorted;
	int64_t threads = k->block[0] * k->block[1] * k->block[2];
	if (threads > sp->lim->max_threads)
		return ir_error(ctx, "device: kernel '%s' has %lld threads per block (%lld x %lld x %lld); the device "
		                     "allows %lld", k->name, (long long)threads, (long long)k->block[0],
		                (long long)k->block[1], (long long)k->block[2], (long long)sp->lim->max_threads);
	if (k->shared_bytes > sp->lim->max_shared_bytes)
		return ir_error(ctx, "device: kernel '%s' uses %lld bytes of shared memory; the device allows %lld",
		                k->name, (long long)k->shared_bytes, (long long)sp->lim->max_shared_bytes);
	for (int d = 0; d < 3; d++)
		if (k->grid[d] > sp->lim->max_grid)
			return ir_error(ctx, "device: kernel '%s' launches %lld blocks along %s; the device allows %lld",
			                k->name, (long long)k->grid[d], ir_thread_name(KILN_BLOCK_X + d), (long long)sp->lim->max_grid);
	return check_barriers(ctx, k->body, k, false);
}

static int host(splitter *sp, ir_stmt *s)
{
	if (!s)
		return 0;
	switch (s->kind) {
	case IR_SEQ:
		for (int i = 0; i < s->seq.n; i++)
			if (host(sp, s->seq.s[i]))
				return -1;
		return 0;
	case IR_ALLOCATE:
		if (s->alloc.buf->scope != KILN_SCOPE_GLOBAL)
			return ir_error(sp->ctx, "device: '%s' (%s scope) is allocated outside every kernel; compute it at a "
			                         "loop inside one", s->alloc.buf->name,
			                s->alloc.buf->scope == KILN_SCOPE_SHARED ? "shared" : "local");
		add_buffer(sp->ctx, &sp->out->temps, &sp->out->ntemp, s->alloc.buf);
		return host(sp, s->alloc.body);
	case IR_FOR:
		if (s->loop.kind == IR_FOR_THREAD)
			return make_kernel(sp, s);
		return ir_error(sp->ctx, "device: loop '%s' is not bound to a block or thread index and runs outside every "
		                         "kernel; bind it (kiln_bind) or move it inside a bound loop",
		                s->loop.var->var.name);
	default:
		return ir_error(sp->ctx, "device: '%s' computes outside every kernel (its stage has no loop bound to a block "
		                         "index)", s->kind == IR_STORE ? s->store.buf->name : "a statement");
	}
}

ir_device_func *ir_split_device(kiln_ctx *ctx, const kiln_func *f, const ir_device_limits *lim)
{
	ir_device_func *out = ir_alloc(ctx, sizeof *out);
	out->func = f;
	splitter sp = {ctx, f, lim, out, 0, 0};
	if (host(&sp, f->body))
		return NULL;
	if (out->nkernel == 0)
		return ir_error(ctx, "device: '%s' has no kernel (no loop is bound to a block index)", f->name), NULL;
	return out;
}
