/*
 * server.c — the native RPC server: sessions over TCP (or registered at a
 * proxy), each served by its own worker process with this machine's CPU,
 * OpenCL and GLES devices.
 *
 * A worker owns its session's modules and arrays and answers one request at
 * a time. A kernel that crashes the worker (SIGSEGV, SIGFPE, ...) ends that
 * session only: the signal handler sends the client a prepared ERROR frame
 * naming the call, then the worker exits; the listener keeps serving.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../rt.h"
#include "kiln/model.h"
#include "kiln/opencl.h"
#include "proto.h"

#define MAX_MODULES 64
#define MAX_ARRAYS 4096
#define MAX_WORKERS 64
#define MAX_MODELS 16

typedef struct {
	const kiln_rpc_server_opts *o;
	int fd;
	size_t max;
	int timeout;
	kiln_module *mods[MAX_MODULES];
	struct {
		kiln_array *a;
		uint32_t module;
	} arrays[MAX_ARRAYS];
	uint64_t array_bytes, array_limit;
	kiln_model *models[MAX_MODELS];
	rpc_buf out;
} session;

/* ---- the crash report: written by a signal handler with nothing but write(2) ---- */
static int crash_fd = -1;
static uint8_t crash_frame[600];
static size_t crash_len;

/* Prepares the ERROR frame a crash during `what` sends. */
static void arm_crash(int fd, const char *what, const char *fn)
{
	char msg[512];
	int n = snprintf(msg, sizeof msg, "the server's worker crashed during %s %s (a fatal signal); this session "
	                 "is over, the server goes on serving", what, fn);
	if (n < 0 || n >= (int)sizeof msg)
		n = (int)sizeof msg - 1;
	uint32_t body = 1 + 4 + (uint32_t)n;
	uint8_t *p = crash_frame;
	for (int i = 0; i < 4; i++)
		*p++ = (uint8_t)(body >> (8 * i));
	*p++ = RPC_ERROR;
	for (int i = 0; i < 4; i++)
		*p++ = (uint8_t)((uint32_t)n >> (8 * i));
	memcpy(p, msg, (size_t)n);
	crash_len = 4 + body;
	crash_fd = fd;
}

static void on_crash(int sig)
{
	if (crash_fd >= 0) {
		ssize_t w = write(crash_fd, crash_frame, crash_len);
		(void)w;
	}
	_exit(128 + sig);
}

static void catch_crashes(void)
{
	struct sigaction sa = {0};
	sa.sa_handler = on_crash;
	sigemptyset(&sa.sa_mask);
	int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
	for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
		sigaction(sigs[i], &sa, NULL);
}

/* ---- replies ---- */

static int send_out(session *s)
{
	if (rpc_end(&s->out))
		return rt_error("rpc: out of memory building a reply");
	return rpc_write_all(s->fd, s->out.p, s->out.n, s->timeout);
}

static int reply_ok(session *s)
{
	rpc_begin(&s->out, RPC_OK);
	return send_out(s);
}

static int reply_u32(session *s, int type, uint32_t v)
{
	rpc_begin(&s->out, type);
	rpc_u32(&s->out, v);
	return send_out(s);
}

/* An ERROR reply; the session goes on (a request failed, not the protocol). */
static int reply_error(session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int reply_error(session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = rpc_error_frame(&s->out, fmt, ap);
	va_end(ap);
	return rc ? rt_error("rpc: out of memory building a reply") : rpc_write_all(s->fd, s->out.p, s->out.n, s->timeout);
}

/* ---- handles ---- */

static kiln_module *module_of(session *s, uint32_t h) { return h >= 1 && h <= MAX_MODULES ? s->mods[h - 1] : NULL; }

static kiln_array *array_of(session *s, uint32_t h) { return h >= 1 && h <= MAX_ARRAYS ? s->arrays[h - 1].a : NULL; }

static void free_array(session *s, uint32_t h)
{
	kiln_array *a = s->arrays[h - 1].a;
	s->array_bytes -= (uint64_t)kiln_array_numel(a) * kiln_dtype_bytes(a->dtype);
	kiln_array_free(a);
	s->arrays[h - 1].a = NULL;
}

/* A NUL-terminated copy of a span (names are at most RPC_MAX_NAME bytes). */
static void span_str(rpc_span sp, char *buf, size_t n)
{
	size_t k = sp.n < n - 1 ? sp.n : n - 1;
	memcpy(buf, sp.p, k);
	buf[k] = 0;
}

/* ---- requests ---- */

/* Whether the server serves target (its --devices list). */
static bool serves(const session *s, const char *target)
{
	const char *l = s->o->devices;
	size_t n = strlen(target);
	while (l && *l) {
		const char *end = strchr(l, ',');
		size_t k = end ? (size_t)(end - l) : strlen(l);
		if (k == n && !strncmp(l, target, n))
			return true;
		l = end ? end + 1 : l + k;
	}
	return !l;
}

static int do_devices(session *s)
{
	char cpu[128];
	snprintf(cpu, sizeof cpu, "the host CPU, %d threads", kiln_get_num_threads());
	const char *targets[3] = {"llvm", "opencl", "webgl"};
	/* each probed only when served: opening OpenCL or EGL loads their drivers */
	const char *desc[3] = {serves(s, "llvm") ? cpu : NULL, serves(s, "opencl") ? kiln_opencl_device_name() : NULL,
	                       serves(s, "webgl") ? kiln_gles_device_name() : NULL};
	rpc_begin(&s->out, RPC_DEVICE_LIST);
	uint32_t n = 0;
	for (int i = 0; i < 3; i++)
		n += desc[i] != NULL;
	rpc_u32(&s->out, n);
	for (int i = 0; i < 3; i++)
		if (desc[i]) {
			rpc_str(&s->out, targets[i], strlen(targets[i]));
			rpc_str(&s->out, desc[i], strlen(desc[i]));
		}
	return send_out(s);
}

/* The first empty one of n slots, or n. */
static int free_slot(void *const *slots, int n)
{
	int i = 0;
	while (i < n && slots[i])
		i++;
	return i;
}

static int do_upload(session *s, const rpc_msg *m)
{
	int slot = free_slot((void *const *)s->mods, MAX_MODULES);
	if (slot == MAX_MODULES)
		return reply_error(s, "the session already holds %d modules; free one first", MAX_MODULES);
	arm_crash(s->fd, "UPLOAD", "(loading its code)"); /* a shared object's constructors run here */
	kiln_module *mod = kiln_module_load_bytes(m->data.p, m->data.n, "the uploaded module");
	crash_fd = -1;
	if (!mod)
		return reply_error(s, "%s", kiln_rt_last_error());
	if (!serves(s, mod->target)) {
		int rc = reply_error(s, "this server serves %s, not %s modules", s->o->devices, mod->target);
		kiln_module_free(mod);
		return rc;
	}
	if (!rt_device_for(mod)) {
		char msg[1024];
		snprintf(msg, sizeof msg, "%s", kiln_rt_last_error());
		kiln_module_free(mod);
		return reply_error(s, "%s", msg);
	}
	s->mods[slot] = mod;
	return reply_u32(s, RPC_MODULE, (uint32_t)slot + 1);
}

static int do_free_module(session *s, uint32_t h)
{
	if (!module_of(s, h))
		return reply_error(s, "no module %u in this session", h);
	for (uint32_t i = 1; i <= MAX_ARRAYS; i++)
		if (s->arrays[i - 1].a && s->arrays[i - 1].module == h)
			free_array(s, i);
	kiln_module_free(s->mods[h - 1]);
	s->mods[h - 1] = NULL;
	return reply_ok(s);
}

static int do_alloc(session *s, const rpc_msg *m)
{
	if (!module_of(s, m->module))
		return reply_error(s, "no module %u in this session", m->module);
	int slot = 0;
	while (slot < MAX_ARRAYS && s->arrays[slot].a)
		slot++;
	if (slot == MAX_ARRAYS)
		return reply_error(s, "the session already holds %d arrays; free some first", MAX_ARRAYS);
	size_t bytes;
	if (rt_dtype_check(m->dtype, "the array") || rt_array_bytes(m->ndim, m->shape, m->dtype, "the array", &bytes))
		return reply_error(s, "%s", kiln_rt_last_error());
	if (bytes > s->array_limit - s->array_bytes)
		return reply_error(s, "an array of %zu bytes would take the session past its %llu bytes of arrays", bytes,
		                   (unsigned long long)s->array_limit);
	kiln_array *a = kiln_array_empty(m->ndim, m->shape, m->dtype);
	if (!a)
		return reply_error(s, "%s", kiln_rt_last_error());
	s->arrays[slot].a = a;
	s->arrays[slot].module = m->module;
	s->array_bytes += bytes;
	return reply_u32(s, RPC_ARRAY, (uint32_t)slot + 1);
}

static int do_write(session *s, const rpc_msg *m)
{
	kiln_array *a = array_of(s, m->array);
	if (!a)
		return reply_error(s, "no array %u in this session", m->array);
	size_t bytes = (size_t)kiln_array_numel(a) * kiln_dtype_bytes(a->dtype);
	if (m->data.n != bytes)
		return reply_error(s, "array %u holds %zu bytes; WRITE sent %zu", m->array, bytes, m->data.n);
	memcpy(a->data, m->data.p, bytes);
	return reply_ok(s);
}

static int do_read(session *s, uint32_t h)
{
	kiln_array *a = array_of(s, h);
	if (!a)
		return reply_error(s, "no array %u in this session", h);
	rpc_begin(&s->out, RPC_DATA);
	rpc_bytes(&s->out, a->data, (uint64_t)kiln_array_numel(a) * kiln_dtype_bytes(a->dtype));
	return send_out(s);
}

/* TIMING from t, which it frees. */
static int reply_timing(session *s, kiln_timing *t)
{
	rpc_begin(&s->out, RPC_TIMING);
	rpc_f64(&s->out, t->median_ms);
	rpc_f64(&s->out, t->mean_ms);
	rpc_f64(&s->out, t->min_ms);
	rpc_u32(&s->out, (uint32_t)t->number);
	rpc_u32(&s->out, (uint32_t)t->nsamples);
	for (int i = 0; i < t->nsamples; i++)
		rpc_f64(&s->out, t->samples_ms[i]);
	kiln_timing_free(t);
	return send_out(s);
}

/* CALL and TIME: the module, the function's name and the arrays; -1 after an error reply. */
static int call_args(session *s, const rpc_msg *m, kiln_module **mod, char *fn, size_t fnn, kiln_array **arr)
{
	if (!(*mod = module_of(s, m->module)))
		return reply_error(s, "no module %u in this session", m->module) ? -2 : -1;
	span_str(m->text, fn, fnn);
	for (uint32_t i = 0; i < m->nargs; i++)
		if (!(arr[i] = array_of(s, m->args[i])))
			return reply_error(s, "argument %u of %s: no array %u in this session", i, fn, m->args[i]) ? -2 : -1;
	return 0;
}

static int do_call(session *s, const rpc_msg *m)
{
	kiln_module *mod;
	char fn[RPC_MAX_NAME + 1];
	kiln_array *arr[RPC_MAX_ARGS];
	int rc = call_args(s, m, &mod, fn, sizeof fn, arr);
	if (rc)
		return rc == -2 ? -1 : 0;
	arm_crash(s->fd, "CALL", fn);
	rc = kiln_module_call(mod, fn, arr, (int)m->nargs);
	crash_fd = -1;
	return rc ? reply_error(s, "%s", kiln_rt_last_error()) : reply_ok(s);
}

static int do_time(session *s, const rpc_msg *m)
{
	kiln_module *mod;
	char fn[RPC_MAX_NAME + 1];
	kiln_array *arr[RPC_MAX_ARGS];
	int rc = call_args(s, m, &mod, fn, sizeof fn, arr);
	if (rc)
		return rc == -2 ? -1 : 0;
	kiln_time_opts o = {m->warmup, m->number, m->repeat, m->min_repeat_ms};
	kiln_timing t;
	arm_crash(s->fd, "TIME", fn);
	rc = kiln_module_time(mod, fn, arr, (int)m->nargs, &o, &t);
	crash_fd = -1;
	if (rc)
		return reply_error(s, "%s", kiln_rt_last_error());
	return reply_timing(s, &t);
}

/* ---- whole models ---- */

static kiln_model *model_of(session *s, uint32_t h) { return h >= 1 && h <= MAX_MODELS ? s->models[h - 1] : NULL; }

static int do_model_load(session *s, const rpc_msg *m)
{
	int slot = free_slot((void *const *)s->models, MAX_MODELS);
	if (slot == MAX_MODELS)
		return reply_error(s, "the session already holds %d models; free one first", MAX_MODELS);
	arm_crash(s->fd, "MODEL_LOAD", "(loading its code)");
	kiln_model *mm = kiln_model_load_bytes(m->data.p, m->data.n, "the uploaded model");
	crash_fd = -1;
	if (!mm)
		return reply_error(s, "%s", kiln_rt_last_error());
	if (!serves(s, kiln_model_target(mm))) {
		int rc = reply_error(s, "this server serves %s, not %s models", s->o->devices, kiln_model_target(mm));
		kiln_model_free(mm);
		return rc;
	}
	s->models[slot] = mm;
	rpc_begin(&s->out, RPC_MODEL_INFO);
	rpc_u32(&s->out, (uint32_t)slot + 1);
	rpc_u32(&s->out, (uint32_t)kiln_model_num_inputs(mm));
	for (int i = 0; i < kiln_model_num_inputs(mm); i++)
		rpc_arg_info(&s->out, kiln_model_input_info(mm, i));
	rpc_u32(&s->out, (uint32_t)kiln_model_num_outputs(mm));
	for (int i = 0; i < kiln_model_num_outputs(mm); i++)
		rpc_arg_info(&s->out, kiln_model_output_info(mm, i));
	return send_out(s);
}

/* The model of a MODEL_RUN / MODEL_TIME with its inputs set; NULL after an error reply (*rc its status). */
static kiln_model *model_with_inputs(session *s, const rpc_msg *m, int *rc)
{
	kiln_model *mm = model_of(s, m->model);
	if (!mm) {
		*rc = reply_error(s, "no model %u in this session", m->model);
		return NULL;
	}
	if ((int)m->nio != kiln_model_num_inputs(mm)) {
		*rc = reply_error(s, "the model has %d inputs, %u were sent", kiln_model_num_inputs(mm), m->nio);
		return NULL;
	}
	for (uint32_t i = 0; i < m->nio; i++)
		if (kiln_model_set_input_data(mm, (int)i, m->io[i].p, m->io[i].n)) {
			*rc = reply_error(s, "%s", kiln_rt_last_error());
			return NULL;
		}
	return mm;
}

static int do_model_run(session *s, const rpc_msg *m)
{
	int rc = 0;
	kiln_model *mm = model_with_inputs(s, m, &rc);
	if (!mm)
		return rc;
	arm_crash(s->fd, "MODEL_RUN", kiln_model_target(mm));
	rc = kiln_model_run(mm);
	crash_fd = -1;
	if (rc)
		return reply_error(s, "%s", kiln_rt_last_error());
	rpc_begin(&s->out, RPC_MODEL_OUTPUTS);
	rpc_u32(&s->out, (uint32_t)kiln_model_num_outputs(mm));
	for (int i = 0; i < kiln_model_num_outputs(mm); i++) {
		const kiln_array *y = kiln_model_get_output(mm, i);
		rpc_bytes(&s->out, y->data, (uint64_t)kiln_array_numel(y) * kiln_dtype_bytes(y->dtype));
	}
	return send_out(s);
}

static int do_model_time(session *s, const rpc_msg *m)
{
	int rc = 0;
	kiln_model *mm = model_with_inputs(s, m, &rc);
	if (!mm)
		return rc;
	kiln_time_opts o = {m->warmup, m->number, m->repeat, m->min_repeat_ms};
	kiln_timing t;
	arm_crash(s->fd, "MODEL_TIME", kiln_model_target(mm));
	rc = kiln_model_time(mm, &o, &t);
	crash_fd = -1;
	if (rc)
		return reply_error(s, "%s", kiln_rt_last_error());
	return reply_timing(s, &t);
}

/* Each step timed inside whole runs (kiln_model_step_times_in_runs): what a model's tuning measures. */
static int do_model_steps(session *s, const rpc_msg *m)
{
	int rc = 0;
	kiln_model *mm = model_with_inputs(s, m, &rc);
	if (!mm)
		return rc;
	/* (a sample per step and run is kept: bounded, as a request's work is) */
	if (m->runs < 1 || m->runs > RPC_MAX_STEP_RUNS)
		return reply_error(s, "MODEL_STEPS: %d runs (1 to %d)", m->runs, RPC_MAX_STEP_RUNS);
	int n = kiln_model_num_steps(mm);
	double *ms = calloc(n ? (size_t)n : 1, sizeof *ms);
	if (!ms)
		return reply_error(s, "out of memory for %d steps", n);
	arm_crash(s->fd, "MODEL_STEPS", kiln_model_target(mm));
	rc = kiln_model_step_times_in_runs(mm, m->runs, ms);
	crash_fd = -1;
	if (rc) {
		free(ms);
		return reply_error(s, "%s", kiln_rt_last_error());
	}
	rpc_begin(&s->out, RPC_STEP_TIMES);
	rpc_u32(&s->out, (uint32_t)n);
	for (int i = 0; i < n; i++) {
		const char *fn = kiln_model_step_name(mm, i);
		rpc_str(&s->out, fn, strlen(fn));
		rpc_f64(&s->out, ms[i]);
	}
	free(ms);
	return send_out(s);
}

/* One request; 1 when the session ends cleanly, -1 on a broken connection. */
static int handle(session *s, const rpc_msg *m)
{
	switch (m->type) {
	case RPC_DEVICES:
		return do_devices(s);
	case RPC_UPLOAD:
		return do_upload(s, m);
	case RPC_FREE_MODULE:
		return do_free_module(s, m->module);
	case RPC_ALLOC:
		return do_alloc(s, m);
	case RPC_FREE_ARRAY:
		if (!array_of(s, m->array))
			return reply_error(s, "no array %u in this session", m->array);
		free_array(s, m->array);
		return reply_ok(s);
	case RPC_WRITE:
		return do_write(s, m);
	case RPC_READ:
		return do_read(s, m->array);
	case RPC_CALL:
		return do_call(s, m);
	case RPC_TIME:
		return do_time(s, m);
	case RPC_MODEL_LOAD:
		return do_model_load(s, m);
	case RPC_MODEL_RUN:
		return do_model_run(s, m);
	case RPC_MODEL_TIME:
		return do_model_time(s, m);
	case RPC_MODEL_STEPS:
		return do_model_steps(s, m);
	case RPC_FREE_MODEL:
		if (!model_of(s, m->model))
			return reply_error(s, "no model %u in this session", m->model);
		kiln_model_free(s->models[m->model - 1]);
		s->models[m->model - 1] = NULL;
		return reply_ok(s);
	case RPC_CLOSE:
		return reply_ok(s) ? -1 : 1;
	default:
		return reply_error(s, "a server does not take %s messages", rpc_type_name(m->type));
	}
}

/* HELLO: the protocol, the version, the key (compared in constant time). 0, or -1 after refusing. */
static int greet(session *s, const uint8_t *body, size_t n)
{
	rpc_msg m;
	char err[256];
	if (rpc_decode(body, n, &m, err, sizeof err) || m.type != RPC_HELLO) {
		rpc_send_error(s->fd, s->timeout, "a session opens with HELLO (%s)",
		               rpc_decode(body, n, &m, err, sizeof err) ? err : rpc_type_name(m.type));
		return -1;
	}
	if (m.version != KILN_RPC_VERSION) {
		rpc_send_error(s->fd, s->timeout, "this server speaks kiln RPC version %d, the client %u", KILN_RPC_VERSION,
		               m.version);
		return -1;
	}
	if (!rpc_key_equal(m.key.p, m.key.n, (const uint8_t *)s->o->key, strlen(s->o->key))) {
		rpc_send_error(s->fd, s->timeout, "wrong key: the session is refused");
		return -1;
	}
	char host[128] = "?", desc[256];
	gethostname(host, sizeof host - 1);
	snprintf(desc, sizeof desc, "kiln rpc server on %s (worker %d)", host, (int)getpid());
	rpc_begin(&s->out, RPC_WELCOME);
	rpc_u16(&s->out, KILN_RPC_VERSION);
	rpc_str(&s->out, desc, strlen(desc));
	return send_out(s);
}

/* Serves one session on fd until it closes, breaks or idles out; the worker's whole life. */
void rpc_serve_session(const kiln_rpc_server_opts *o, int fd, bool report_crashes)
{
	session *s = calloc(1, sizeof *s);
	if (!s)
		return;
	s->o = o;
	s->fd = fd;
	s->max = o->max_message ? o->max_message : KILN_RPC_DEFAULT_MAX_MESSAGE;
	s->timeout = o->timeout_ms > 0 ? o->timeout_ms : 10000;
	uint64_t mem = rt_physical_memory();
	s->array_limit = mem ? mem / 2 : (uint64_t)4 << 30;
	if (report_crashes)
		catch_crashes();
	uint8_t *body;
	size_t n;
	/* a connection that never says HELLO is dropped after the message timeout */
	int first = rpc_read_frame(fd, s->max, s->timeout, s->timeout, &body, &n);
	if (first < 0)
		rpc_send_error(fd, s->timeout, "%s before HELLO; closing the connection", kiln_rt_last_error());
	if (first == 0) {
		int rc = greet(s, body, n);
		free(body);
		int idle = o->idle_ms > 0 ? o->idle_ms : 600000;
		while (!rc) {
			int r = rpc_read_frame(fd, s->max, idle, s->timeout, &body, &n);
			if (r) {
				if (r < 0) /* oversize, timed out, garbage length: say why, then close */
					rpc_send_error(fd, s->timeout, "%s; closing the session", kiln_rt_last_error());
				break;
			}
			rpc_msg m;
			char err[256];
			if (rpc_decode(body, n, &m, err, sizeof err)) {
				rpc_send_error(fd, s->timeout, "protocol violation: %s; closing the session", err);
				free(body);
				break;
			}
			rc = handle(s, &m);
			free(body);
		}
	}
	for (uint32_t i = 1; i <= MAX_ARRAYS; i++)
		if (s->arrays[i - 1].a)
			free_array(s, i);
	for (int i = 0; i < MAX_MODULES; i++)
		kiln_module_free(s->mods[i]);
	for (int i = 0; i < MAX_MODELS; i++)
		kiln_model_free(s->models[i]);
	rpc_buf_free(&s->out);
	free(s);
	rpc_close_gracefully(fd);
}

static void reap(int *workers)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		(*workers)--;
}

/* At a proxy: register, wait for a client's session, serve it in a worker; again. */
static int serve_at_proxy(const kiln_rpc_server_opts *o)
{
	const char *host = o->proxy_host;
	int port = o->proxy_port;
	int timeout = o->timeout_ms > 0 ? o->timeout_ms : 10000;
	bool away = false;
	for (int served = 0; !o->sessions || served < o->sessions; served++) {
		int fd = rpc_dial(host, port, timeout);
		/* unreachable at first: an error; later (the proxy restarting): wait for it, saying so once */
		if (fd < 0 && !served)
			return -1;
		if (fd < 0) {
			if (!away)
				fprintf(stderr, "kiln rpc server: %s; retrying every second\n", kiln_rt_last_error());
			away = true;
			served--;
			sleep(1);
			continue;
		}
		if (away)
			fprintf(stderr, "kiln rpc server: the proxy is back\n");
		away = false;
		char desc[256], hn[128] = "?";
		gethostname(hn, sizeof hn - 1);
		snprintf(desc, sizeof desc, "kiln rpc server on %s: %s", hn, o->devices ? o->devices : "llvm,opencl,webgl");
		rpc_buf b = {0};
		rpc_begin(&b, RPC_REGISTER);
		rpc_u32(&b, RPC_MAGIC);
		rpc_u16(&b, KILN_RPC_VERSION);
		rpc_str(&b, o->key, strlen(o->key));
		rpc_str(&b, desc, strlen(desc));
		rpc_u8(&b, 0); /* frames over TCP: no parcels */
		int rc = rpc_end(&b) || rpc_write_all(fd, b.p, b.n, timeout);
		rpc_buf_free(&b);
		if (rc) {
			close(fd);
			return -1;
		}
		if (o->listening && served == 0)
			o->listening(port, o->arg);
		/* the proxy forwards the client's HELLO once one is paired with this server */
		struct pollfd p = {fd, POLLIN, 0};
		while (poll(&p, 1, -1) < 0 && errno == EINTR)
			;
		pid_t pid = fork();
		if (pid == 0) {
			rpc_serve_session(o, fd, true);
			_exit(0);
		}
		close(fd);
		if (pid < 0)
			return rt_error("rpc server: fork: %s", strerror(errno));
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	return 0;
}

int kiln_rpc_serve(const kiln_rpc_server_opts *o)
{
	if (!o || !o->key || !o->key[0])
		return rt_error("rpc server: a key is required (sessions must present it)");
	if (strlen(o->key) > KILN_RPC_MAX_KEY)
		return rt_error("rpc server: a key is at most %d bytes", KILN_RPC_MAX_KEY);
	if (o->max_message > KILN_RPC_LIMIT_MAX_MESSAGE)
		return rt_error("rpc server: the maximum message is at most %zu bytes", KILN_RPC_LIMIT_MAX_MESSAGE);
	if (o->proxy_host)
		return serve_at_proxy(o);
	int port;
	int lfd = rpc_listen(o->host ? o->host : "127.0.0.1", o->port, &port);
	if (lfd < 0)
		return -1;
	if (o->listening)
		o->listening(port, o->arg);
	int workers = 0;
	for (;;) {
		struct pollfd p = {lfd, POLLIN, 0};
		int r = poll(&p, 1, 1000);
		reap(&workers);
		if (r <= 0)
			continue;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		rpc_nodelay(fd);
		if (workers >= MAX_WORKERS) {
			rpc_send_error(fd, 1000, "the server is serving %d sessions, its most; try again later", workers);
			close(fd);
			continue;
		}
		pid_t pid = fork();
		if (pid == 0) {
			close(lfd);
			rpc_serve_session(o, fd, true);
			_exit(0);
		}
		if (pid > 0)
			workers++;
		close(fd);
	}
}
