/*
 * web.c — the runtime's face to a JavaScript host; compiled only by
 * Emscripten, with the runtime's other files, into kiln_runtime.wasm.
 *
 * The JS layer (web/kiln.mjs) hands this runtime module containers and
 * array descriptors and calls functions through it: parsing, argument
 * checks, launch plans and the WebGL2 device are the same C as natively.
 * What only JS can do comes back to it through Module.kilnHost:
 *
 *   wasmCall(module, name, offsets)        run an export of a wasm module's
 *                                          kernel instance; returns its status
 *   gpuAlloc(bytes) -> id, gpuFree(id)     GPUBuffers for temporaries
 *   gpuDispatch(module, launch, kernel, gx, gy, gz, n, ids)
 *                                          record one launch: pointers into
 *                                          this memory (the launch's plan
 *                                          entry names it while the module
 *                                          lives: the host may cache by it)
 *   gpuSubmit(module)                      submit what was recorded
 *
 * A host function that fails returns non-zero and leaves its message in
 * kilnHost.lastError, which becomes this runtime's error.
 */
#include <emscripten.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/model.h"
#include "rt.h"

EM_JS(int, host_wasm_call, (const kiln_module *m, const char *name, int n, const uint32_t *offsets), {
	const h = Module['kilnHost'];
	const offs = Array.from(HEAPU32.subarray(offsets >> 2, (offsets >> 2) + n));
	try {
		return h.wasmCall(m, UTF8ToString(name), offs);
	} catch (e) {
		h.lastError = String(e && e.message || e);
		return -1;
	}
});

EM_JS(int, host_gpu_alloc, (double bytes), {
	const h = Module['kilnHost'];
	try {
		return h.gpuAlloc(bytes);
	} catch (e) {
		h.lastError = String(e && e.message || e);
		return 0;
	}
});

EM_JS(void, host_gpu_free, (int id), { Module['kilnHost'].gpuFree(id); });

EM_JS(int, host_gpu_dispatch, (const kiln_module *m, const rt_launch *la, const char *kernel, int gx, int gy, int gz,
                                int n, const uint32_t *ids), {
	const h = Module['kilnHost'];
	try {
		return h.gpuDispatch(m, la, kernel, gx >>> 0, gy >>> 0, gz >>> 0, n, ids);
	} catch (e) {
		h.lastError = String(e && e.message || e);
		return -1;
	}
});

EM_JS(int, host_gpu_submit, (const kiln_module *m), {
	const h = Module['kilnHost'];
	try {
		return h.gpuSubmit(m);
	} catch (e) {
		h.lastError = String(e && e.message || e);
		return -1;
	}
});

EM_JS(void, host_error, (char *buf, int size), { stringToUTF8(Module['kilnHost'].lastError || 'failed', buf, size); });

/* Buffers of a model on the wasm kernel instance's heap or in GPUBuffers (rt_device's alloc). */
EM_JS(double, host_dev_alloc, (const kiln_module *m, double bytes), {
	const h = Module['kilnHost'];
	try {
		return h.devAlloc(m, bytes);
	} catch (e) {
		h.lastError = String(e && e.message || e);
		return 0;
	}
});

EM_JS(void, host_dev_free, (const kiln_module *m, double handle), { Module['kilnHost'].devFree(m, handle); });

EM_JS(int, host_dev_upload, (const kiln_module *m, double handle, const void *src, double bytes), {
	const h = Module['kilnHost'];
	try {
		return h.devUpload(m, handle, HEAPU8.subarray(src, src + bytes));
	} catch (e) {
		h.lastError = String(e && e.message || e);
		return -1;
	}
});

/* The host's last message as this runtime's error, prefixed with what failed. */
static int host_failed(const char *what)
{
	char msg[768];
	host_error(msg, sizeof msg);
	return rt_error("%s: %s", what, msg);
}

static uintptr_t dev_alloc(kiln_module *m, size_t bytes)
{
	uintptr_t h = (uintptr_t)host_dev_alloc(m, (double)bytes);
	if (!h)
		host_failed("allocating a model buffer");
	return h;
}

static void dev_free(kiln_module *m, uintptr_t h) { host_dev_free(m, (double)h); }

static int dev_upload(kiln_module *m, uintptr_t h, const void *src, size_t bytes)
{
	return host_dev_upload(m, (double)h, src, (double)bytes) ? host_failed("uploading a model buffer") : 0;
}

static int wasm_run(kiln_module *m, rt_function *f, kiln_array **args, double *ms)
{
	(void)ms;
	uint32_t offs[RT_MAX_LAUNCH_ARGS * 4];
	if (f->nargs > (int)(sizeof offs / sizeof *offs))
		return rt_error("%s has more than %d arguments", f->name, (int)(sizeof offs / sizeof *offs));
	for (int i = 0; i < f->nargs; i++)
		offs[i] = (uint32_t)(uintptr_t)args[i]->data;
	int rc = host_wasm_call(m, f->name, f->nargs, offs);
	if (rc < 0)
		return host_failed(f->name);
	if (rc)
		return rt_error("%s returned status %d", f->name, rc);
	return 0;
}

/* The GPUBuffers of a webgpu function's temporaries, made on its first call. */
typedef struct {
	int n;
	uint32_t ids[];
} gpu_temps;

static void free_temps(rt_function *f)
{
	gpu_temps *t = f->dev;
	for (int i = 0; t && i < t->n; i++)
		if (t->ids[i])
			host_gpu_free((int)t->ids[i]);
	free(t);
	f->dev = NULL;
}

static int webgpu_run(kiln_module *m, rt_function *f, kiln_array **args, double *ms)
{
	if (ms)
		return rt_error("%s: WebGPU work completes asynchronously; the JS layer times it (Session.time)", f->name);
	if (!f->dev) {
		gpu_temps *t = calloc(1, sizeof *t + sizeof(uint32_t) * (size_t)f->ntemp);
		if (!t)
			return rt_error("out of memory");
		f->dev = t;
		m->dev_free = free_temps;
		for (int i = 0; i < f->ntemp; i++, t->n++)
			if (!(t->ids[i] = (uint32_t)host_gpu_alloc((double)f->temp_bytes[i])))
				return host_failed(f->name);
	}
	gpu_temps *t = f->dev;
	for (int l = 0; l < f->nlaunch; l++) {
		const rt_launch *la = &f->launches[l];
		uint32_t ids[RT_MAX_LAUNCH_ARGS];
		for (int a = 0; a < la->nargs; a++) {
			int k = la->args[a];
			if (k >= f->nargs || -1 - k >= t->n)
				return rt_error("%s: launch %d binds argument %d, which the function does not have", f->name, l, k);
			ids[a] = k >= 0 ? (uint32_t)(uintptr_t)args[k]->data : t->ids[-1 - k];
		}
		if (host_gpu_dispatch(m, la, la->kernel, (int)la->grid[0], (int)la->grid[1], (int)la->grid[2], la->nargs, ids))
			return host_failed(la->kernel);
	}
	if (host_gpu_submit(m))
		return host_failed(f->name);
	return 0;
}

/* wasm memory takes offsets into one allocation (a model's arena); a GPUBuffer id does not */
const rt_device rt_wasm_device = {
	.name = "wasm",
	.arrays = KILN_DEV_WASM,
	.run = wasm_run, /* the function's code is the module's kernel binary, which the JS host holds */
	.offsets = true,
	.alloc = dev_alloc,
	.release = dev_free,
	.upload = dev_upload,
};

const rt_device rt_webgpu_device = {
	.name = "webgpu",
	.arrays = KILN_DEV_WEBGPU,
	.run = webgpu_run, /* submits only: completion and readback are asynchronous in JS */
	.kernel_clock = true,
	.needs_code = true,
	.alloc = dev_alloc,
	.release = dev_free,
	.upload = dev_upload,
};

/*
 * An array descriptor for the host: data is a wasm offset (KILN_DEV_WASM),
 * a GPUBuffer id (KILN_DEV_WEBGPU), or 0 with KILN_DEV_CPU to allocate
 * host memory here (webgl modules). shape holds ndim JS numbers.
 */
EMSCRIPTEN_KEEPALIVE
kiln_array *kiln_web_array(uint32_t data, int device, int code, int bits, int lanes, int ndim, const double *shape)
{
	if (ndim < 0 || ndim > KILN_MAX_DIMS) {
		rt_error("an array of %d dimensions; kiln arrays have at most %d", ndim, KILN_MAX_DIMS);
		return NULL;
	}
	int64_t s[KILN_MAX_DIMS];
	for (int d = 0; d < ndim; d++) {
		if (!(shape[d] >= 0 && shape[d] < 9007199254740992.0)) {
			rt_error("dimension %d of an array is %g", d, shape[d]);
			return NULL;
		}
		s[d] = (int64_t)shape[d];
	}
	kiln_dtype t = {(uint8_t)code, (uint8_t)bits, (uint16_t)lanes};
	kiln_array *a = device == KILN_DEV_CPU && !data ? kiln_array_empty(ndim, s, t)
	                                                : kiln_array_wrap((void *)(uintptr_t)data, ndim, s, t);
	if (a && !(device == KILN_DEV_CPU && !data))
		a->device = (kiln_device_kind)device;
	if (!a)
		rt_error("out of memory for an array");
	return a;
}

EMSCRIPTEN_KEEPALIVE
void *kiln_web_array_data(const kiln_array *a) { return a ? a->data : NULL; }

/* A blob of m (kernel binary or source): its bytes, and its size in *size. */
EMSCRIPTEN_KEEPALIVE
const uint8_t *kiln_web_blob(const kiln_module *m, const char *name, uint32_t *size)
{
	const rt_blob *b = rt_module_blob(m, name);
	*size = b ? (uint32_t)b->size : 0;
	return b ? b->data : NULL;
}

/* JSON text: a module's names come from its file, so quote them safely. */
typedef struct {
	char *p;
	size_t n, cap;
	int oom;
} sbuf;

static void sb_put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_put(sbuf *b, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
		va_end(ap);
		if (k < 0)
			return;
		if (b->p && b->n + (size_t)k < b->cap) {
			b->n += (size_t)k;
			return;
		}
		size_t cap = (b->cap + (size_t)k + 1) * 2;
		char *q = realloc(b->p, cap);
		if (!q) {
			b->oom = 1;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
}

static void sb_str(sbuf *b, const char *s)
{
	sb_put(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			sb_put(b, "\\%c", c);
		else if (c < 0x20)
			sb_put(b, "\\u%04x", c);
		else
			sb_put(b, "%c", c);
	}
	sb_put(b, "\"");
}

/*
 * What the host needs to know about m, as JSON (malloc'ed; the caller frees):
 * {"target": T, "blobs": [...], "functions": [{"name", "args": [{"name",
 * "dtype", "shape", "output"}], "launches": N}]}.
 */
EMSCRIPTEN_KEEPALIVE
char *kiln_web_describe(const kiln_module *m)
{
	sbuf b = {0};
	sb_put(&b, "{\"target\":");
	sb_str(&b, m->target);
	sb_put(&b, ",\"blobs\":[");
	for (int i = 0; i < m->nblob; i++) {
		sb_put(&b, i ? "," : "");
		sb_str(&b, m->blobs[i].name);
	}
	sb_put(&b, "],\"functions\":[");
	for (int i = 0; i < m->nfunc; i++) {
		const rt_function *f = &m->funcs[i];
		sb_put(&b, "%s{\"name\":", i ? "," : "");
		sb_str(&b, f->name);
		sb_put(&b, ",\"args\":[");
		for (int a = 0; a < f->nargs; a++) {
			const kiln_arg_info *ai = &f->args[a];
			char dt[16];
			sb_put(&b, "%s{\"name\":", a ? "," : "");
			sb_str(&b, ai->name);
			sb_put(&b, ",\"dtype\":");
			sb_str(&b, kiln_dtype_str(ai->dtype, dt));
			sb_put(&b, ",\"shape\":[");
			for (int d = 0; d < ai->ndim; d++)
				sb_put(&b, "%s%lld", d ? "," : "", (long long)ai->shape[d]);
			sb_put(&b, "],\"output\":%s}", ai->is_output ? "true" : "false");
		}
		sb_put(&b, "],\"launches\":%d}", f->nlaunch);
	}
	sb_put(&b, "]}");
	if (b.oom) {
		free(b.p);
		rt_error("out of memory");
		return NULL;
	}
	return b.p;
}

/* Adds a blob to m (a model bundle's weights, which travel beside its module); 0 or -1. */
EMSCRIPTEN_KEEPALIVE
int kiln_web_add_blob(kiln_module *m, const char *name, const void *data, uint32_t size)
{
	return rt_module_blob(m, name) ? rt_error("the module has its %s already", name)
	                               : rt_module_add_blob(m, name, data, size);
}

/* A model over a session's module (the session keeps the module). */
EMSCRIPTEN_KEEPALIVE
struct kiln_model *kiln_web_model(kiln_module *m) { return rt_model_over(m, false); }

static void describe_io(sbuf *b, const kiln_model *m, int output)
{
	int n = output ? kiln_model_num_outputs(m) : kiln_model_num_inputs(m);
	sb_put(b, "[");
	for (int i = 0; i < n; i++) {
		const kiln_arg_info *a = output ? kiln_model_output_info(m, i) : kiln_model_input_info(m, i);
		const kiln_array *y = output ? kiln_model_get_output(m, i) : NULL;
		char dt[16];
		sb_put(b, "%s{\"name\":", i ? "," : "");
		sb_str(b, a->name);
		sb_put(b, ",\"dtype\":");
		sb_str(b, kiln_dtype_str(a->dtype, dt));
		sb_put(b, ",\"shape\":[");
		for (int d = 0; d < a->ndim; d++)
			sb_put(b, "%s%lld", d ? "," : "", (long long)a->shape[d]);
		sb_put(b, "],\"bytes\":%zu,\"data\":%lu}", kiln_model_io_bytes(m, output, i),
		       (unsigned long)(uintptr_t)(y ? y->data : NULL));
	}
	sb_put(b, "]");
}

/*
 * A model's inputs and outputs as JSON (malloc'ed): {"inputs": [{"name",
 * "dtype", "shape", "bytes", "data"}], "outputs": [...], "arena": N}; an
 * output's data is where it lies on the device (wasm offset, GPUBuffer id,
 * or a pointer into this runtime's memory for webgl).
 */
EMSCRIPTEN_KEEPALIVE
char *kiln_web_model_describe(const kiln_model *m)
{
	sbuf b = {0};
	sb_put(&b, "{\"inputs\":");
	describe_io(&b, m, 0);
	sb_put(&b, ",\"outputs\":");
	describe_io(&b, m, 1);
	sb_put(&b, ",\"arena\":%lld}", (long long)kiln_model_arena_bytes(m));
	if (b.oom) {
		free(b.p);
		rt_error("out of memory");
		return NULL;
	}
	return b.p;
}

/*
 * Each step of a model timed alone (kiln_model_step_times: a warm run, then
 * runs calls of each step, the median), or with in_runs inside runs whole
 * runs (kiln_model_step_times_in_runs), as JSON (malloc'ed) in plan order:
 * [{"step": function, "ms": median}]. The steps must finish when they
 * return: wasm's do; a browser's GPU queue does not wait, so the JS API
 * offers this for wasm only.
 */
EMSCRIPTEN_KEEPALIVE
char *kiln_web_model_profile(kiln_model *m, int runs, int in_runs)
{
	int n = kiln_model_num_steps(m);
	double *ms = calloc(n ? (size_t)n : 1, sizeof *ms);
	if (!ms) {
		rt_error("out of memory");
		return NULL;
	}
	if ((in_runs ? kiln_model_step_times_in_runs : kiln_model_step_times)(m, runs, ms)) {
		free(ms);
		return NULL;
	}
	sbuf b = {0};
	sb_put(&b, "[");
	for (int s = 0; s < n; s++) {
		sb_put(&b, "%s{\"step\":", s ? "," : "");
		sb_str(&b, kiln_model_step_name(m, s));
		sb_put(&b, ",\"ms\":%.6f}", ms[s]);
	}
	sb_put(&b, "]");
	free(ms);
	if (b.oom) {
		free(b.p);
		rt_error("out of memory");
		return NULL;
	}
	return b.p;
}

/*
 * The time evaluator for the host: out receives median, mean and min
 * milliseconds per call, the calls per sample, then the repeat samples.
 * Returns 0 or -1.
 */
EMSCRIPTEN_KEEPALIVE
int kiln_web_time(kiln_module *m, const char *fn, kiln_array **args, int nargs, int warmup, int number, int repeat,
                  double min_repeat_ms, double *out)
{
	kiln_time_opts o = {.warmup = warmup, .number = number, .repeat = repeat, .min_repeat_ms = min_repeat_ms};
	kiln_timing t;
	if (kiln_module_time(m, fn, args, nargs, &o, &t))
		return -1;
	out[0] = t.median_ms;
	out[1] = t.mean_ms;
	out[2] = t.min_ms;
	out[3] = t.number;
	for (int i = 0; i < t.nsamples; i++) /* out holds 4 + repeat doubles */
		out[4 + i] = t.samples_ms[i];
	kiln_timing_free(&t);
	return 0;
}
