/*
 * threadpool.c — the pool that runs parallel loops.
 *
 * kiln_parallel_for splits [0, n) into one contiguous chunk per thread; the
 * caller runs chunks too, so a pool of N threads has N-1 workers. Workers
 * spin briefly after a job before sleeping, because kernels are usually
 * called back to back and a futex wake-up costs more than a short kernel.
 * A parallel loop inside a parallel loop, or a second caller while the pool
 * is busy, runs serially in the calling thread: correct, never deadlocks.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rt.h"

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() ((void)0)
#endif

typedef struct {
	int nthreads;
	pthread_t *workers;
	pthread_mutex_t mu;
	pthread_cond_t wake, done;
	pthread_mutex_t busy; /* held by the caller that owns the current job */
	/* the current job, published under generation `gen` */
	kiln_parallel_fn fn;
	void *closure;
	int64_t n;
	int nchunks;
	atomic_uint_fast32_t gen;
	/* claims: generation (24 bits) | chunk count (16) | next chunk (24). A claim
	 * carries the chunk count of its own job, so it is valid exactly when its
	 * chunk is below that count: every chunk of an earlier job was claimed
	 * before the next job was published, so stale claims are always past it. */
	atomic_uint_fast64_t ticket;
	atomic_int remaining;
	atomic_int status;
	atomic_bool stop;
} pool;

static pool *the_pool;
static int requested;
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local int in_parallel;

/*
 * Claims and runs chunks of the published job until none is left. Whoever
 * makes a valid claim runs it, even a thread still leaving the previous job;
 * the job's fields are stable meanwhile, since the next job is published
 * only once every chunk of this one has finished.
 */
static void run_chunks(pool *p)
{
	for (;;) {
		uint64_t t = atomic_fetch_add(&p->ticket, 1);
		int c = (int)(t & 0xffffff), nchunks = (int)((t >> 24) & 0xffff);
		if (c >= nchunks)
			return;
		int64_t b = p->n * c / p->nchunks, e = p->n * (c + 1) / p->nchunks;
		int rc = p->fn(b, e, p->closure);
		if (rc)
			atomic_store(&p->status, rc);
		if (atomic_fetch_sub(&p->remaining, 1) == 1) {
			pthread_mutex_lock(&p->mu);
			pthread_cond_signal(&p->done);
			pthread_mutex_unlock(&p->mu);
		}
	}
}

static void *worker(void *arg)
{
	pool *p = arg;
	in_parallel = 1;
	uint32_t seen = 0;
	for (;;) {
		/* spin a little before sleeping */
		for (int i = 0; i < 20000 && atomic_load(&p->gen) == seen && !atomic_load(&p->stop); i++)
			cpu_relax();
		pthread_mutex_lock(&p->mu);
		while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop))
			pthread_cond_wait(&p->wake, &p->mu);
		pthread_mutex_unlock(&p->mu);
		if (atomic_load(&p->stop))
			return NULL;
		seen = (uint32_t)atomic_load(&p->gen);
		run_chunks(p);
	}
}

static int default_threads(void)
{
	const char *env = getenv("KILN_NUM_THREADS");
	char *end;
	long v = env ? strtol(env, &end, 10) : 0;
	if (env && *env && !*end && v > 0)
		return v > KILN_MAX_THREADS ? KILN_MAX_THREADS : (int)v;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > KILN_MAX_THREADS ? KILN_MAX_THREADS : n > 0 ? (int)n : 1;
}

static void pool_destroy(pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	atomic_store(&p->stop, true);
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->nthreads - 1; i++)
		pthread_join(p->workers[i], NULL);
	free(p->workers);
	free(p);
}

static pool *pool_create(int n)
{
	if (n > 1024)
		n = 1024;
	pool *p = calloc(1, sizeof *p);
	p->nthreads = n;
	pthread_mutex_init(&p->mu, NULL);
	pthread_mutex_init(&p->busy, NULL);
	pthread_cond_init(&p->wake, NULL);
	pthread_cond_init(&p->done, NULL);
	p->workers = calloc((size_t)n, sizeof(pthread_t));
	for (int i = 0; i < n - 1; i++)
		if (pthread_create(&p->workers[i], NULL, worker, p)) {
			p->nthreads = i + 1; /* run with the threads we got */
			break;
		}
	return p;
}

static void at_exit_destroy(void) { pool_destroy(the_pool); the_pool = NULL; }

static pool *get_pool(void)
{
	pthread_mutex_lock(&pool_mu);
	int want = requested > 0 ? requested : default_threads();
	if (!the_pool || the_pool->nthreads != want) {
		static int registered;
		pool_destroy(the_pool);
		the_pool = pool_create(want);
		if (!registered++)
			atexit(at_exit_destroy);
	}
	pool *p = the_pool;
	pthread_mutex_unlock(&pool_mu);
	return p;
}

void kiln_set_num_threads(int n)
{
	pthread_mutex_lock(&pool_mu);
	requested = n > KILN_MAX_THREADS ? KILN_MAX_THREADS : n > 0 ? n : 0;
	pthread_mutex_unlock(&pool_mu);
}

int kiln_get_num_threads(void)
{
	pthread_mutex_lock(&pool_mu);
	int n = requested > 0 ? requested : default_threads();
	pthread_mutex_unlock(&pool_mu);
	return n;
}

int kiln_parallel_for(int64_t n, kiln_parallel_fn fn, void *closure)
{
	if (n <= 0)
		return 0;
	if (in_parallel || n == 1 || kiln_get_num_threads() <= 1)
		return fn(0, n, closure);
	pool *p = get_pool();
	if (pthread_mutex_trylock(&p->busy) != 0)
		return fn(0, n, closure);
	/* publish: the fields, then the generation, then the claims (release order) */
	p->fn = fn;
	p->closure = closure;
	p->n = n;
	p->nchunks = n < p->nthreads ? (int)n : p->nthreads; /* at most 65535: pool_create caps threads */
	atomic_store(&p->remaining, p->nchunks);
	atomic_store(&p->status, 0);
	uint32_t g = (uint32_t)atomic_load(&p->gen) + 1;
	pthread_mutex_lock(&p->mu);
	atomic_store(&p->gen, g);
	atomic_store(&p->ticket, ((uint64_t)(g & 0xffffff) << 40) | ((uint64_t)p->nchunks << 24));
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);
	in_parallel = 1;
	run_chunks(p);
	in_parallel = 0;
	for (int i = 0; i < 100000 && atomic_load(&p->remaining) > 0; i++)
		cpu_relax();
	pthread_mutex_lock(&p->mu);
	while (atomic_load(&p->remaining) > 0)
		pthread_cond_wait(&p->done, &p->mu);
	pthread_mutex_unlock(&p->mu);
	int rc = atomic_load(&p->status);
	pthread_mutex_unlock(&p->busy);
	return rc;
}

/*
 * Workspace: kernels allocate their large temporaries (padded inputs, im2col
 * columns) on every call. A few freed blocks are kept and handed to the next
 * request that fits: a fresh allocation of that size is mapped and faulted
 * in again each time (the system time was four times the kernel's own on a
 * stride-2 convolution of a 224x224 image). Each block carries its capacity
 * in a 64-byte header, which keeps the data 64-byte aligned.
 */
#define WS_SLOTS 8
#define WS_KEEP ((size_t)64 << 20) /* bytes kept at most (ResNet-18's largest workspace is under 2 MB) */

static pthread_mutex_t ws_mu = PTHREAD_MUTEX_INITIALIZER;
static char *ws_block[WS_SLOTS];
static size_t ws_kept;

static size_t ws_cap(const char *b) { return *(const size_t *)b; }

void *kiln_workspace_alloc(int64_t bytes)
{
	if (bytes > (int64_t)(SIZE_MAX / 2))
		return NULL;
	size_t n = ((size_t)(bytes > 0 ? bytes : 1) + 63) & ~(size_t)63;
	char *b = NULL;
	pthread_mutex_lock(&ws_mu);
	/* the smallest kept block that fits, unless it would waste more than half of itself */
	int best = -1;
	for (int i = 0; i < WS_SLOTS; i++)
		if (ws_block[i] && ws_cap(ws_block[i]) >= n && ws_cap(ws_block[i]) / 2 <= n &&
		    (best < 0 || ws_cap(ws_block[i]) < ws_cap(ws_block[best])))
			best = i;
	if (best >= 0) {
		b = ws_block[best];
		ws_block[best] = NULL;
		ws_kept -= ws_cap(b);
	}
	pthread_mutex_unlock(&ws_mu);
	if (!b) {
		b = aligned_alloc(64, n + 64);
		if (!b)
			return NULL;
		*(size_t *)b = n;
	}
	return b + 64;
}

void kiln_workspace_free(void *p)
{
	if (!p)
		return;
	char *b = (char *)p - 64;
	size_t n = ws_cap(b);
	pthread_mutex_lock(&ws_mu);
	if (ws_kept + n <= WS_KEEP) {
		/* an empty slot, else the smallest block if it is smaller than this one */
		int slot = -1;
		for (int i = 0; i < WS_SLOTS && slot < 0; i++)
			if (!ws_block[i])
				slot = i;
		for (int i = 0; i < WS_SLOTS && slot < 0; i++)
			if (ws_cap(ws_block[i]) < n && (slot < 0 || ws_cap(ws_block[i]) < ws_cap(ws_block[slot])))
				slot = i;
		if (slot >= 0) {
			char *old = ws_block[slot];
			if (old)
				ws_kept -= ws_cap(old);
			ws_block[slot] = b;
			ws_kept += n;
			b = old;
		}
	}
	pthread_mutex_unlock(&ws_mu);
	free(b);
}
