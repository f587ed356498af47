/*
 * client.c — sessions with a remote server, and the remote device: a module
 * uploaded there is a kiln_module here whose device forwards calls.
 *
 * The remote twin holds the uploaded container's metadata (parsed here, so
 * kiln_module_call checks arguments before anything crosses the network)
 * and, per function, the handles of its arguments' arrays over there,
 * allocated on the first call and reused (timing repeats calls on them).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../rt.h"
#include "proto.h"
/* header-only, as in module.c */
#define XXH_INLINE_ALL
#include <xxhash.h>

struct kiln_rpc {
	int fd;
	int timeout;
	size_t max;
	int refs;       /* the open session, and each remote module */
	bool closed;    /* kiln_rpc_close was called */
	bool broken;    /* the connection failed: every later request fails at once */
	char peer[256];
	char why[512];  /* why it broke */
	rpc_buf out;
	rpc_buf batch;  /* requests sent together (queue_request, flush) */
	bool batch_oom;
};

typedef struct {
	kiln_rpc *s;
	uint32_t handle;
	int nfunc;
	uint32_t **arrays; /* per function: its arguments' arrays there, or NULL */
	uint64_t **sent;   /* per function and argument: a hash of the bytes written there (0: unknown) */
} remote;

static void unref(kiln_rpc *s)
{
	if (--s->refs > 0)
		return;
	if (s->fd >= 0)
		close(s->fd);
	rpc_buf_free(&s->out);
	rpc_buf_free(&s->batch);
	free(s);
}

/* The session broke: remembered, so every later request says why. */
static int broke(kiln_rpc *s)
{
	if (!s->broken)
		snprintf(s->why, sizeof s->why, "%s", kiln_rt_last_error());
	s->broken = true;
	return rt_error("%s", s->why);
}

/*
 * Reads the next reply, which must be of type want (or ERROR: its message
 * becomes the error). The caller frees *body after using the spans of *r.
 */
static int receive(kiln_rpc *s, int want, rpc_msg *r, uint8_t **body)
{
	*body = NULL;
	if (s->broken)
		return rt_error("%s", s->why);
	size_t n;
	int rc = rpc_read_frame(s->fd, s->max, s->timeout, s->timeout, body, &n);
	if (rc) {
		if (rc > 0)
			rt_error("rpc: the server closed the session");
		return broke(s);
	}
	char err[256];
	if (rpc_decode(*body, n, r, err, sizeof err)) {
		rt_error("rpc: the server sent a malformed reply (%s)", err);
		return broke(s);
	}
	if (r->type == RPC_ERROR) {
		rt_error("remote: %.*s", (int)r->text.n, (const char *)r->text.p);
		/* errors about the protocol itself end the session there */
		if (strstr(kiln_rt_last_error(), "closing the session") || strstr(kiln_rt_last_error(), "session is over"))
			broke(s);
		return -1;
	}
	if (r->type != want) {
		rt_error("rpc: the server answered %s where %s was due", rpc_type_name(r->type), rpc_type_name(want));
		return broke(s);
	}
	return 0;
}

/* Sends s->out (begun by the caller) and reads the reply, as receive. */
static int request(kiln_rpc *s, int want, rpc_msg *r, uint8_t **body)
{
	*body = NULL;
	if (s->broken)
		return rt_error("%s", s->why);
	if (s->closed)
		return rt_error("rpc: the session was closed");
	if (rpc_end(&s->out))
		return rt_error("rpc: out of memory building a request");
	if (rpc_write_all(s->fd, s->out.p, s->out.n, s->timeout))
		return broke(s);
	return receive(s, want, r, body);
}

/*
 * Requests sent together: each built in s->out is queued, flush sends them in
 * one write, and the replies are read in order afterwards (a session answers
 * in order), so a call with its copies costs one round trip instead of one
 * per request.
 */
static void queue_request(kiln_rpc *s)
{
	rpc_buf *b = &s->batch;
	if (s->batch_oom || rpc_end(&s->out)) {
		s->batch_oom = true;
		return;
	}
	if (s->out.n > b->cap - b->n) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap - b->n < s->out.n)
			cap *= 2;
		uint8_t *p = realloc(b->p, cap);
		if (!p) {
			s->batch_oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s->out.p, s->out.n);
	b->n += s->out.n;
}

static int flush(kiln_rpc *s)
{
	bool oom = s->batch_oom;
	size_t n = s->batch.n;
	s->batch.n = 0;
	s->batch_oom = false;
	if (s->broken)
		return rt_error("%s", s->why);
	if (s->closed)
		return rt_error("rpc: the session was closed");
	if (oom)
		return rt_error("rpc: out of memory building requests");
	return rpc_write_all(s->fd, s->batch.p, n, s->timeout) ? broke(s) : 0;
}

/* The reply to a queued request that answers OK; the first failure of a batch is kept in first. */
static void receive_ok(kiln_rpc *s, char *first, size_t n)
{
	rpc_msg r;
	uint8_t *body;
	if (receive(s, RPC_OK, &r, &body) && !first[0])
		snprintf(first, n, "%s", kiln_rt_last_error());
	free(body);
}

/* A request whose reply carries nothing but success. */
static int request_ok(kiln_rpc *s)
{
	rpc_msg r;
	uint8_t *body;
	int rc = request(s, RPC_OK, &r, &body);
	free(body);
	return rc;
}

kiln_rpc *kiln_rpc_connect(const char *host, int port, const char *key, int timeout_ms)
{
	if (!host || !key) {
		rt_error("rpc: connect needs a host and a key");
		return NULL;
	}
	if (!key[0] || strlen(key) > KILN_RPC_MAX_KEY) {
		rt_error("rpc: a key is 1 to %d bytes", KILN_RPC_MAX_KEY);
		return NULL;
	}
	if (timeout_ms < 0) {
		rt_error("rpc: timeout %d ms is negative", timeout_ms);
		return NULL;
	}
	kiln_rpc *s = calloc(1, sizeof *s);
	if (!s) {
		rt_error("rpc: out of memory");
		return NULL;
	}
	s->refs = 1;
	s->timeout = timeout_ms ? timeout_ms : 60000;
	s->max = KILN_RPC_LIMIT_MAX_MESSAGE;
	if ((s->fd = rpc_dial(host, port, s->timeout)) < 0) {
		unref(s);
		return NULL;
	}
	rpc_begin(&s->out, RPC_HELLO);
	rpc_u32(&s->out, RPC_MAGIC);
	rpc_u16(&s->out, KILN_RPC_VERSION);
	rpc_str(&s->out, key, strlen(key));
	rpc_msg r;
	uint8_t *body;
	if (request(s, RPC_WELCOME, &r, &body)) {
		free(body);
		unref(s);
		return NULL;
	}
	snprintf(s->peer, sizeof s->peer, "%.*s", (int)r.text.n, (const char *)r.text.p);
	int version = (int)r.version;
	free(body);
	if (version != KILN_RPC_VERSION) {
		rt_error("rpc: the server speaks version %d, this client %d", version, KILN_RPC_VERSION);
		unref(s);
		return NULL;
	}
	return s;
}

const char *kiln_rpc_peer(const kiln_rpc *s) { return s ? s->peer : ""; }

int kiln_rpc_pool(const char *host, int port, const char *key, kiln_rpc_device *out, int max, int timeout_ms)
{
	if (!host || !key || !key[0] || strlen(key) > KILN_RPC_MAX_KEY)
		return rt_error("rpc: pool needs a host and a key of 1 to %d bytes", KILN_RPC_MAX_KEY);
	kiln_rpc s = {.refs = 1, .timeout = timeout_ms > 0 ? timeout_ms : 60000, .max = KILN_RPC_LIMIT_MAX_MESSAGE};
	if ((s.fd = rpc_dial(host, port, s.timeout)) < 0)
		return -1;
	rpc_begin(&s.out, RPC_POOL);
	rpc_u32(&s.out, RPC_MAGIC);
	rpc_u16(&s.out, KILN_RPC_VERSION);
	rpc_str(&s.out, key, strlen(key));
	rpc_msg r;
	uint8_t *body;
	int rc = request(&s, RPC_DEVICE_LIST, &r, &body);
	for (int i = 0; !rc && i < (int)r.ndevices && i < max; i++) {
		snprintf(out[i].target, sizeof out[i].target, "%.*s", (int)r.dev_target[i].n, (const char *)r.dev_target[i].p);
		snprintf(out[i].description, sizeof out[i].description, "%.*s", (int)r.dev_desc[i].n,
		         (const char *)r.dev_desc[i].p);
	}
	free(body);
	close(s.fd);
	rpc_buf_free(&s.out);
	return rc ? -1 : (int)r.ndevices;
}

int kiln_rpc_devices(kiln_rpc *s, kiln_rpc_device *out, int max)
{
	if (!s)
		return rt_error("rpc: no session");
	rpc_begin(&s->out, RPC_DEVICES);
	rpc_msg r;
	uint8_t *body;
	if (request(s, RPC_DEVICE_LIST, &r, &body)) {
		free(body);
		return -1;
	}
	for (int i = 0; i < (int)r.ndevices && i < max; i++) {
		snprintf(out[i].target, sizeof out[i].target, "%.*s", (int)r.dev_target[i].n,
		         (const char *)r.dev_target[i].p);
		snprintf(out[i].description, sizeof out[i].description, "%.*s", (int)r.dev_desc[i].n,
		         (const char *)r.dev_desc[i].p);
	}
	free(body);
	return (int)r.ndevices;
}

void kiln_rpc_close(kiln_rpc *s)
{
	if (!s || s->closed)
		return;
	if (!s->broken) {
		rpc_begin(&s->out, RPC_CLOSE);
		request_ok(s);
	}
	s->closed = true;
	unref(s);
}

/* ---- the remote device ---- */

static void remote_free(void *p)
{
	remote *r = p;
	kiln_rpc *s = r->s;
	if (!s->broken && !s->closed) { /* the server frees the module's arrays with it */
		rpc_begin(&s->out, RPC_FREE_MODULE);
		rpc_u32(&s->out, r->handle);
		request_ok(s);
	}
	for (int i = 0; i < r->nfunc; i++) {
		free(r->arrays[i]);
		free(r->sent[i]);
	}
	free(r->arrays);
	free(r->sent);
	free(r);
	unref(s);
}

/* The handles of f's arguments over there, allocated on its first call. */
static uint32_t *arrays_for(kiln_module *m, rt_function *f)
{
	remote *r = m->owner;
	int fi = (int)(f - m->funcs);
	if (r->arrays[fi])
		return r->arrays[fi];
	uint32_t *h = calloc((size_t)(f->nargs ? f->nargs : 1), sizeof *h);
	free(r->sent[fi]);
	r->sent[fi] = calloc((size_t)(f->nargs ? f->nargs : 1), sizeof **r->sent);
	if (!h || !r->sent[fi]) {
		free(h);
		rt_error("rpc: out of memory");
		return NULL;
	}
	for (int i = 0; i < f->nargs; i++) {
		const kiln_arg_info *a = &f->args[i];
		rpc_begin(&r->s->out, RPC_ALLOC);
		rpc_u32(&r->s->out, r->handle);
		rpc_u8(&r->s->out, a->dtype.code);
		rpc_u8(&r->s->out, a->dtype.bits);
		rpc_u16(&r->s->out, a->dtype.lanes);
		rpc_u8(&r->s->out, (uint8_t)a->ndim);
		for (int d = 0; d < a->ndim; d++)
			rpc_i64(&r->s->out, a->shape[d]);
		rpc_msg rep;
		uint8_t *body;
		int rc = request(r->s, RPC_ARRAY, &rep, &body);
		free(body);
		if (rc) {
			free(h); /* the server frees what was allocated with the module */
			return NULL;
		}
		h[i] = rep.array;
	}
	return r->arrays[fi] = h;
}

static size_t arg_bytes(const kiln_array *a) { return (size_t)kiln_array_numel(a) * kiln_dtype_bytes(a->dtype); }

/* The head of a CALL or TIME: the module, the function, its arguments' arrays there. */
static void put_call(rpc_buf *b, int type, uint32_t module, const rt_function *f, const uint32_t *h)
{
	rpc_begin(b, type);
	rpc_u32(b, module);
	rpc_str(b, f->name, strlen(f->name));
	rpc_u32(b, (uint32_t)f->nargs);
	for (int i = 0; i < f->nargs; i++)
		rpc_u32(b, h[i]);
}

/*
 * Allocates f's arrays there (once) and queues the WRITE of each input whose
 * bytes differ from what was last written there (kernels never write their
 * inputs, so timing or calling again on the same data sends none); hash[i]
 * receives the new hash of each input queued, else 0. Then begins the CALL or
 * TIME itself in s->out (the caller adds any fields and queues it). The
 * handles, or NULL with a message.
 */
static uint32_t *begin_call(kiln_module *m, rt_function *f, kiln_array **args, int type, int *nwrites, uint64_t *hash)
{
	remote *r = m->owner;
	uint32_t *h = arrays_for(m, f); /* before anything is queued: its ALLOCs are requests of their own */
	if (!h)
		return NULL;
	const uint64_t *sent = r->sent[f - m->funcs];
	*nwrites = 0;
	for (int i = 0; i < f->nargs; i++) {
		hash[i] = 0;
		if (f->args[i].is_output)
			continue;
		uint64_t x = XXH3_64bits(args[i]->data, arg_bytes(args[i])) | 1; /* never 0, "unknown" */
		if (sent[i] == x)
			continue;
		hash[i] = x;
		rpc_begin(&r->s->out, RPC_WRITE);
		rpc_u32(&r->s->out, h[i]);
		rpc_bytes(&r->s->out, args[i]->data, arg_bytes(args[i]));
		queue_request(r->s);
		(*nwrites)++;
	}
	put_call(&r->s->out, type, r->handle, f, h);
	return h;
}

/* After a batch: the inputs written are known to be there; after a failure, nothing is. */
static void note_sent(kiln_module *m, rt_function *f, const uint64_t *hash, bool ok)
{
	uint64_t *sent = ((remote *)m->owner)->sent[f - m->funcs];
	for (int i = 0; i < f->nargs; i++)
		sent[i] = !ok ? 0 : hash[i] ? hash[i] : sent[i];
}

/* Inputs over, the call, outputs back: one batch, one round trip. */
static int remote_run(kiln_module *m, rt_function *f, kiln_array **args, double *ms)
{
	remote *r = m->owner;
	kiln_rpc *s = r->s;
	int nwrites;
	uint64_t hash[RPC_MAX_ARGS];
	uint32_t *h = begin_call(m, f, args, RPC_CALL, &nwrites, hash);
	if (!h)
		return -1;
	queue_request(s);
	for (int i = 0; i < f->nargs; i++)
		if (f->args[i].is_output) {
			rpc_begin(&s->out, RPC_READ);
			rpc_u32(&s->out, h[i]);
			queue_request(s);
		}
	if (flush(s))
		return -1;
	char first[1024] = "";
	for (int i = 0; i < nwrites + 1; i++) /* the WRITEs, then the CALL */
		receive_ok(s, first, sizeof first);
	for (int i = 0; i < f->nargs && !s->broken; i++) {
		if (!f->args[i].is_output)
			continue;
		rpc_msg rep;
		uint8_t *body;
		int rc = receive(s, RPC_DATA, &rep, &body);
		if (rc && !first[0])
			snprintf(first, sizeof first, "%s", kiln_rt_last_error());
		else if (!rc && !first[0] && rep.data.n != arg_bytes(args[i]))
			snprintf(first, sizeof first, "rpc: %s's output %s came back with %zu bytes, not %zu", f->name,
			         f->args[i].name, rep.data.n, arg_bytes(args[i]));
		else if (!rc && !first[0]) /* outputs of a call that failed are not copied */
			memcpy(args[i]->data, rep.data.p, rep.data.n);
		free(body);
	}
	if (s->broken && !first[0])
		snprintf(first, sizeof first, "%s", s->why);
	note_sent(m, f, hash, !first[0]);
	return first[0] ? rt_error("%s", first) : 0;
}

/* The TIMING reply of a TIME / MODEL_TIME already sent; its samples into out. */
static int receive_timing(kiln_rpc *s, kiln_timing *out)
{
	rpc_msg rep;
	uint8_t *body;
	if (receive(s, RPC_TIMING, &rep, &body)) {
		free(body);
		return -1;
	}
	int rc = 0;
	if (rep.nsamples < 1 || !(rep.median_ms >= 0) || rep.number < 1)
		rc = rt_error("rpc: the server sent a timing with %u samples of %d calls", rep.nsamples, rep.number);
	else if (!(out->samples_ms = malloc(sizeof(double) * rep.nsamples)))
		rc = rt_error("rpc: out of memory");
	for (uint32_t i = 0; !rc && i < rep.nsamples; i++)
		out->samples_ms[i] = rpc_sample(&rep, i);
	if (!rc) {
		out->number = rep.number;
		rt_timing_summarize(out, (int)rep.nsamples); /* recomputed here from the samples themselves */
	}
	free(body);
	return rc;
}

static int remote_time(kiln_module *m, rt_function *f, kiln_array **args, const kiln_time_opts *o, kiln_timing *out)
{
	remote *r = m->owner;
	kiln_rpc *s = r->s;
	int nwrites;
	uint64_t hash[RPC_MAX_ARGS];
	uint32_t *h = begin_call(m, f, args, RPC_TIME, &nwrites, hash);
	if (!h)
		return -1;
	rpc_u32(&s->out, (uint32_t)o->warmup);
	rpc_u32(&s->out, (uint32_t)o->number);
	rpc_u32(&s->out, (uint32_t)o->repeat);
	rpc_f64(&s->out, o->min_repeat_ms);
	queue_request(s);
	if (flush(s))
		return -1;
	char first[1024] = "";
	for (int i = 0; i < nwrites; i++)
		receive_ok(s, first, sizeof first);
	int rc = receive_timing(s, out);
	note_sent(m, f, hash, !first[0] && !rc);
	if (first[0]) { /* an input did not arrive: the timing is of other data */
		kiln_timing_free(out);
		return rt_error("%s", first);
	}
	return rc;
}

const rt_device rt_remote_device = {
	.name = "remote",
	.arrays = KILN_DEV_CPU, /* host arrays here, copied over and back around each call */
	.run = remote_run,
	.time = remote_time,
};

kiln_module *kiln_rpc_upload_bytes(kiln_rpc *s, const void *data, size_t size)
{
	if (!s) {
		rt_error("rpc: no session");
		return NULL;
	}
	kiln_module *m = rt_module_parse(data, size, "the module to upload");
	remote *r = m ? calloc(1, sizeof *r) : NULL;
	if (r) {
		r->arrays = calloc((size_t)(m->nfunc ? m->nfunc : 1), sizeof *r->arrays);
		r->sent = calloc((size_t)(m->nfunc ? m->nfunc : 1), sizeof *r->sent);
	}
	if (m && (!r || !r->arrays || !r->sent)) {
		rt_error("rpc: out of memory");
		if (r) {
			free(r->arrays);
			free(r->sent);
		}
		free(r);
		r = NULL;
	}
	if (!r) {
		kiln_module_free(m);
		return NULL;
	}
	rpc_begin(&s->out, RPC_UPLOAD);
	rpc_bytes(&s->out, data, size);
	rpc_msg rep;
	uint8_t *body;
	int rc = request(s, RPC_MODULE, &rep, &body);
	free(body);
	/* the twin needs the metadata only: the code runs over there */
	for (int i = 0; i < m->nblob; i++) {
		free(m->blobs[i].name);
		free(m->blobs[i].data);
	}
	free(m->blobs);
	m->blobs = NULL;
	m->nblob = 0;
	if (rc) {
		free(r->arrays);
		free(r->sent);
		free(r);
		kiln_module_free(m);
		return NULL;
	}
	r->s = s;
	r->handle = rep.module;
	r->nfunc = m->nfunc;
	s->refs++;
	m->device = &rt_remote_device;
	m->owner = r;
	m->owner_free = remote_free;
	return m;
}

kiln_module *kiln_rpc_upload(kiln_rpc *s, const kiln_module *m)
{
	if (!m) {
		rt_error("rpc: upload: no module");
		return NULL;
	}
	uint8_t *data;
	size_t n;
	if (rt_module_container(m, &data, &n))
		return NULL;
	kiln_module *r = kiln_rpc_upload_bytes(s, data, n);
	free(data);
	return r;
}

/* ---- whole models ---- */

struct kiln_rpc_model {
	kiln_rpc *s;
	uint32_t handle;
	int nin, nout;
	kiln_arg_info in[RPC_MAX_IO], out[RPC_MAX_IO];
};

kiln_rpc_model *kiln_rpc_load_model(kiln_rpc *s, const void *container, size_t size)
{
	if (!s || !container) {
		rt_error("rpc: load_model needs a session and a container");
		return NULL;
	}
	kiln_rpc_model *m = calloc(1, sizeof *m);
	if (!m) {
		rt_error("rpc: out of memory");
		return NULL;
	}
	rpc_begin(&s->out, RPC_MODEL_LOAD);
	rpc_bytes(&s->out, container, size);
	rpc_msg *rep = malloc(sizeof *rep); /* large: the descriptions of 2 x 64 values */
	uint8_t *body = NULL;
	int rc = rep ? request(s, RPC_MODEL_INFO, rep, &body) : rt_error("rpc: out of memory");
	if (!rc) {
		m->s = s;
		m->handle = rep->model;
		m->nin = (int)rep->nin;
		m->nout = (int)rep->nout;
		memcpy(m->in, rep->in_info, sizeof *m->in * rep->nin);
		memcpy(m->out, rep->out_info, sizeof *m->out * rep->nout);
		s->refs++;
	}
	free(body);
	free(rep);
	if (rc) {
		free(m);
		return NULL;
	}
	return m;
}

int kiln_rpc_model_num_inputs(const kiln_rpc_model *m) { return m ? m->nin : 0; }
int kiln_rpc_model_num_outputs(const kiln_rpc_model *m) { return m ? m->nout : 0; }
const kiln_arg_info *kiln_rpc_model_input_info(const kiln_rpc_model *m, int i)
{
	return m && i >= 0 && i < m->nin ? &m->in[i] : NULL;
}
const kiln_arg_info *kiln_rpc_model_output_info(const kiln_rpc_model *m, int i)
{
	return m && i >= 0 && i < m->nout ? &m->out[i] : NULL;
}

/* Whether a is an array of info's dtype and shape; -1 with a message otherwise. */
static int matches(const kiln_array *a, const kiln_arg_info *info, const char *what)
{
	/* bool is one byte per element whether it says 1 or 8 bits */
	bool same = a && a->data && a->ndim == info->ndim && a->dtype.code == info->dtype.code &&
	            (a->dtype.bits == info->dtype.bits || a->dtype.code == KILN_BOOL) &&
	            a->dtype.lanes == info->dtype.lanes && kiln_array_is_compact(a);
	for (int d = 0; same && d < a->ndim; d++)
		same = a->shape[d] == info->shape[d];
	return same ? 0 : rt_error("rpc: the model's %s '%s' takes a compact array of its dtype and shape", what, info->name);
}

/* Begins MODEL_RUN / MODEL_TIME with the inputs; -1 with a message on a wrong input. */
static int put_inputs(kiln_rpc_model *m, int type, const kiln_array *const *inputs)
{
	for (int i = 0; i < m->nin; i++)
		if (matches(inputs[i], &m->in[i], "input"))
			return -1;
	rpc_begin(&m->s->out, type);
	rpc_u32(&m->s->out, m->handle);
	rpc_u32(&m->s->out, (uint32_t)m->nin);
	for (int i = 0; i < m->nin; i++)
		rpc_bytes(&m->s->out, inputs[i]->data, arg_bytes(inputs[i]));
	return 0;
}

int kiln_rpc_model_run(kiln_rpc_model *m, const kiln_array *const *inputs, kiln_array *const *outputs)
{
	if (!m)
		return rt_error("rpc: no model");
	for (int i = 0; i < m->nout; i++)
		if (matches(outputs[i], &m->out[i], "output"))
			return -1;
	if (put_inputs(m, RPC_MODEL_RUN, inputs))
		return -1;
	rpc_msg *rep = malloc(sizeof *rep);
	uint8_t *body = NULL;
	int rc = rep ? request(m->s, RPC_MODEL_OUTPUTS, rep, &body) : rt_error("rpc: out of memory");
	if (!rc && (int)rep->nio != m->nout)
		rc = rt_error("rpc: the server sent %u outputs of a model with %d", rep->nio, m->nout);
	for (int i = 0; !rc && i < m->nout; i++) {
		if (rep->io[i].n != arg_bytes(outputs[i]))
			rc = rt_error("rpc: output '%s' came back with %zu bytes, not %zu", m->out[i].name, rep->io[i].n,
			              arg_bytes(outputs[i]));
		else
			memcpy(outputs[i]->data, rep->io[i].p, rep->io[i].n);
	}
	free(body);
	free(rep);
	return rc;
}

int kiln_rpc_model_time(kiln_rpc_model *m, const kiln_array *const *inputs, const kiln_time_opts *opts,
                        kiln_timing *out)
{
	memset(out, 0, sizeof *out);
	kiln_time_opts o;
	if (!m)
		return rt_error("rpc: no model");
	if (rt_time_opts(opts, &o) || put_inputs(m, RPC_MODEL_TIME, inputs))
		return -1;
	rpc_u32(&m->s->out, (uint32_t)o.warmup);
	rpc_u32(&m->s->out, (uint32_t)o.number);
	rpc_u32(&m->s->out, (uint32_t)o.repeat);
	rpc_f64(&m->s->out, o.min_repeat_ms);
	queue_request(m->s);
	return flush(m->s) ? -1 : receive_timing(m->s, out);
}

int kiln_rpc_model_step_times(kiln_rpc_model *m, const kiln_array *const *inputs, int runs, kiln_rpc_step **steps,
                              int *n)
{
	*steps = NULL;
	*n = 0;
	if (!m)
		return rt_error("rpc: no model");
	if (runs < 1 || runs > RPC_MAX_STEP_RUNS)
		return rt_error("rpc: step times over %d runs (1 to %d)", runs, RPC_MAX_STEP_RUNS);
	rpc_msg *rep = malloc(sizeof *rep); /* (before the request: its reply must be read) */
	if (!rep)
		return rt_error("rpc: out of memory");
	if (put_inputs(m, RPC_MODEL_STEPS, inputs)) {
		free(rep);
		return -1;
	}
	rpc_u32(&m->s->out, (uint32_t)runs);
	queue_request(m->s);
	if (flush(m->s)) {
		free(rep);
		return -1;
	}
	uint8_t *body = NULL;
	int rc = receive(m->s, RPC_STEP_TIMES, rep, &body);
	kiln_rpc_step *out = rc ? NULL : calloc(rep->nsteps ? rep->nsteps : 1, sizeof *out);
	if (!rc && !out)
		rc = rt_error("rpc: out of memory for %u steps", rep->nsteps);
	size_t at = 0;
	for (uint32_t i = 0; !rc && i < rep->nsteps; i++) {
		rpc_span name;
		rpc_step_next(rep, &at, &name, &out[i].ms);
		if (name.n >= sizeof out[i].fn || memchr(name.p, 0, name.n) || !(out[i].ms >= 0))
			rc = rt_error("rpc: the server sent step %u with a name of %zu bytes and %g ms", i, name.n, out[i].ms);
		else
			memcpy(out[i].fn, name.p, name.n);
	}
	if (!rc) {
		*steps = out;
		*n = (int)rep->nsteps;
	} else {
		free(out);
	}
	free(body);
	free(rep);
	return rc;
}

void kiln_rpc_model_free(kiln_rpc_model *m)
{
	if (!m)
		return;
	kiln_rpc *s = m->s;
	if (!s->broken && !s->closed) {
		rpc_begin(&s->out, RPC_FREE_MODEL);
		rpc_u32(&s->out, m->handle);
		request_ok(s);
	}
	free(m);
	unref(s);
}
