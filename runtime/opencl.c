/*
 * opencl.c — the OpenCL device layer (through ocl-icd): picks a platform
 * and device, compiles each module's source once (a program cache keyed by
 * the source), keeps each function's device buffers between calls, and runs
 * its launches. Event profiling gives the kernels' own time.
 *
 * Platform and device come from kiln_opencl_select() or the environment
 * (KILN_OPENCL_PLATFORM, KILN_OPENCL_DEVICE: case-insensitive substrings),
 * else the first GPU, else the first device. Nothing touches OpenCL before
 * the first call that needs it (PoCL hangs in a child forked after that).
 */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <dlfcn.h>
#include <ctype.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/opencl.h"
#include "rt.h"

typedef struct {
	uint64_t hash;
	char *src;
	cl_program prog;
} program;

typedef struct {
	cl_platform_id platform;
	cl_device_id device;
	cl_context ctx;
	cl_command_queue q;
	char name[600];
	int nprog;
	program progs[64];
} cl_state;

/*
 * libOpenCL is opened when a device is first asked for, not linked: a
 * program that runs CPU models never needs it (nor an OpenCL driver).
 */
#define CL_FUNCS(X) X(clBuildProgram) X(clCreateBuffer) X(clCreateCommandQueue) X(clCreateContext) X(clCreateKernel) X(clCreateProgramWithSource) X(clEnqueueNDRangeKernel) X(clEnqueueReadBuffer) X(clEnqueueWriteBuffer) X(clFinish) X(clGetDeviceIDs) X(clGetDeviceInfo) X(clGetEventProfilingInfo) X(clGetPlatformIDs) X(clGetPlatformInfo) X(clGetProgramBuildInfo) X(clReleaseContext) X(clReleaseEvent) X(clReleaseKernel) X(clReleaseMemObject) X(clReleaseProgram) X(clSetKernelArg)
static struct {
#define X(f) __typeof__(&f) f;
	CL_FUNCS(X)
#undef X
} cl_api;
#define CL(f) (cl_api.f)
static pthread_once_t cl_once = PTHREAD_ONCE_INIT;
static char cl_missing[512]; /* why libOpenCL could not be used, "" when it can */

static void load_opencl(void)
{
	void *h = dlopen("libOpenCL.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!h)
		h = dlopen("libOpenCL.so", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(cl_missing, sizeof cl_missing, "opencl: cannot load libOpenCL.so.1 (install ocl-icd-libopencl1 and an "
		         "OpenCL driver): %s", dlerror());
		return;
	}
#define X(f)                                                                                                       \
	if (!(cl_api.f = (__typeof__(&f))dlsym(h, #f)) && !cl_missing[0])                                              \
		snprintf(cl_missing, sizeof cl_missing, "opencl: libOpenCL.so.1 has no %s", #f);
	CL_FUNCS(X)
#undef X
}

/* 0 once libOpenCL is loaded; -1 with the reason otherwise. */
static int need_opencl(void)
{
	pthread_once(&cl_once, load_opencl);
	return cl_missing[0] ? rt_error("%s", cl_missing) : 0;
}

static cl_state *st;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char want_platform[128], want_device[128];
static int selected;

/* Buffers of one function, kept between calls. */
typedef struct {
	int n;
	cl_mem *mem; /* arguments, then temporaries */
	size_t *bytes;
	cl_kernel *kernels;
} fn_state;

static const char *cl_err(cl_int e)
{
	switch (e) {
	case CL_OUT_OF_RESOURCES: return "out of resources";
	case CL_OUT_OF_HOST_MEMORY: return "out of host memory";
	case CL_MEM_OBJECT_ALLOCATION_FAILURE: return "buffer allocation failed";
	case CL_INVALID_WORK_GROUP_SIZE: return "invalid work-group size";
	case CL_INVALID_WORK_ITEM_SIZE: return "invalid work-item size";
	case CL_INVALID_KERNEL_NAME: return "no such kernel";
	case CL_BUILD_PROGRAM_FAILURE: return "build failed";
	case CL_DEVICE_NOT_FOUND: return "no device";
	case -1001: return "no platform (is an ICD installed?)"; /* CL_PLATFORM_NOT_FOUND_KHR */
	default: return "error";
	}
}

static bool contains(const char *hay, const char *needle)
{
	if (!needle[0])
		return true;
	for (const char *h = hay; *h; h++) {
		size_t i = 0;
		while (needle[i] && h[i] && tolower((unsigned char)h[i]) == tolower((unsigned char)needle[i]))
			i++;
		if (!needle[i])
			return true;
	}
	return false;
}

void kiln_opencl_select(const char *platform, const char *device)
{
	pthread_mutex_lock(&mu);
	snprintf(want_platform, sizeof want_platform, "%s", platform ? platform : "");
	snprintf(want_device, sizeof want_device, "%s", device ? device : "");
	selected = 1;
	pthread_mutex_unlock(&mu);
}

/* Lists "platform / device" lines into buf; returns how many devices. */
int kiln_opencl_devices(char *buf, size_t n)
{
	cl_platform_id ps[16];
	cl_uint np = 0;
	size_t k = 0;
	if (n)
		buf[0] = 0;
	if (need_opencl() || CL(clGetPlatformIDs)(16, ps, &np) != CL_SUCCESS)
		return 0;
	int count = 0;
	for (cl_uint i = 0; i < np; i++) {
		char pn[256] = "";
		CL(clGetPlatformInfo)(ps[i], CL_PLATFORM_NAME, sizeof pn, pn, NULL);
		cl_device_id ds[16];
		cl_uint nd = 0;
		if (CL(clGetDeviceIDs)(ps[i], CL_DEVICE_TYPE_ALL, 16, ds, &nd) != CL_SUCCESS)
			continue;
		for (cl_uint j = 0; j < nd; j++) {
			char dn[256] = "", ver[128] = "";
			CL(clGetDeviceInfo)(ds[j], CL_DEVICE_NAME, sizeof dn, dn, NULL);
			CL(clGetDeviceInfo)(ds[j], CL_DEVICE_VERSION, sizeof ver, ver, NULL);
			if (k < n)
				k += (size_t)snprintf(buf + k, n - k, "opencl: %s / %s (%s)\n", pn, dn, ver);
			count++;
		}
	}
	return count;
}

static int init_locked(void)
{
	if (st)
		return 0;
	if (need_opencl())
		return -1;
	if (!selected) {
		const char *p = getenv("KILN_OPENCL_PLATFORM"), *d = getenv("KILN_OPENCL_DEVICE");
		snprintf(want_platform, sizeof want_platform, "%s", p ? p : "");
		snprintf(want_device, sizeof want_device, "%s", d ? d : "");
	}
	cl_platform_id ps[16];
	cl_uint np = 0;
	cl_int e = CL(clGetPlatformIDs)(16, ps, &np);
	if (e != CL_SUCCESS || np == 0)
		return rt_error("opencl: no platform found (%s); install an ICD such as pocl-opencl-icd", cl_err(e));
	cl_platform_id best_p = NULL;
	cl_device_id best_d = NULL;
	int best_score = -1;
	for (cl_uint i = 0; i < np; i++) {
		char pn[256] = "";
		CL(clGetPlatformInfo)(ps[i], CL_PLATFORM_NAME, sizeof pn, pn, NULL);
		if (!contains(pn, want_platform))
			continue;
		cl_device_id ds[16];
		cl_uint nd = 0;
		if (CL(clGetDeviceIDs)(ps[i], CL_DEVICE_TYPE_ALL, 16, ds, &nd) != CL_SUCCESS)
			continue;
		for (cl_uint j = 0; j < nd; j++) {
			char dn[256] = "";
			cl_device_type t = 0;
			CL(clGetDeviceInfo)(ds[j], CL_DEVICE_NAME, sizeof dn, dn, NULL);
			CL(clGetDeviceInfo)(ds[j], CL_DEVICE_TYPE, sizeof t, &t, NULL);
			if (!contains(dn, want_device))
				continue;
			int score = (t & CL_DEVICE_TYPE_GPU) ? 2 : 1;
			if (score > best_score) {
				best_score = score;
				best_p = ps[i];
				best_d = ds[j];
			}
		}
	}
	if (!best_d)
		return rt_error("opencl: no device matches platform '%s' and device '%s'", want_platform, want_device);
	cl_state *s = calloc(1, sizeof *s);
	s->platform = best_p;
	s->device = best_d;
	s->ctx = CL(clCreateContext)(NULL, 1, &best_d, NULL, NULL, &e);
	if (e != CL_SUCCESS) {
		free(s);
		return rt_error("opencl: cannot create a context (%s)", cl_err(e));
	}
	s->q = CL(clCreateCommandQueue)(s->ctx, best_d, CL_QUEUE_PROFILING_ENABLE, &e);
	if (e != CL_SUCCESS) {
		CL(clReleaseContext)(s->ctx);
		free(s);
		return rt_error("opencl: cannot create a queue (%s)", cl_err(e));
	}
	char pn[256] = "", dn[256] = "";
	CL(clGetPlatformInfo)(best_p, CL_PLATFORM_NAME, sizeof pn, pn, NULL);
	CL(clGetDeviceInfo)(best_d, CL_DEVICE_NAME, sizeof dn, dn, NULL);
	snprintf(s->name, sizeof s->name, "%s / %s", pn, dn);
	st = s;
	return 0;
}

const char *kiln_opencl_device_name(void)
{
	pthread_mutex_lock(&mu);
	int rc = init_locked();
	pthread_mutex_unlock(&mu);
	return rc ? NULL : st->name;
}

static uint64_t fnv(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
	return h;
}

/* The program built from src, from the cache when this source was built before. */
static cl_program get_program(const char *src, size_t len)
{
	uint64_t h = fnv(src, len);
	for (int i = 0; i < st->nprog; i++)
		if (st->progs[i].hash == h && strlen(st->progs[i].src) == len && !memcmp(st->progs[i].src, src, len))
			return st->progs[i].prog;
	cl_int e;
	cl_program p = CL(clCreateProgramWithSource)(st->ctx, 1, &src, &len, &e);
	if (e != CL_SUCCESS) {
		rt_error("opencl: cannot create a program (%s)", cl_err(e));
		return NULL;
	}
	e = CL(clBuildProgram)(p, 1, &st->device, "-cl-std=CL1.2", NULL, NULL);
	if (e != CL_SUCCESS) {
		char log[4096] = "";
		CL(clGetProgramBuildInfo)(p, st->device, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
		rt_error("opencl: the kernel source does not build on %s: %.3000s", st->name, log);
		CL(clReleaseProgram)(p);
		return NULL;
	}
	if (st->nprog == 64) { /* full: drop the oldest */
		CL(clReleaseProgram)(st->progs[0].prog);
		free(st->progs[0].src);
		memmove(st->progs, st->progs + 1, sizeof(program) * 63);
		st->nprog--;
	}
	char *copy = malloc(len + 1);
	memcpy(copy, src, len);
	copy[len] = 0;
	st->progs[st->nprog++] = (program){h, copy, p};
	return p;
}

static void free_fn_state(rt_function *f)
{
	fn_state *fs = f->dev;
	if (!fs)
		return;
	for (int i = 0; fs->mem && i < fs->n; i++)
		if (fs->mem[i])
			CL(clReleaseMemObject)(fs->mem[i]);
	for (int l = 0; fs->kernels && l < f->nlaunch; l++)
		if (fs->kernels[l])
			CL(clReleaseKernel)(fs->kernels[l]);
	free(fs->mem);
	free(fs->bytes);
	free(fs->kernels);
	free(fs);
	f->dev = NULL;
}

/*
 * KILN_CHECK_DEVICE=1 (the test suites set it): every buffer gets a guard zone
 * of GUARD_BYTES filled with a canary, outputs are uploaded too (so the poison
 * a test writes into them reaches the device and an unwritten element shows),
 * and after each call the guards and the inputs are read back and compared:
 * a kernel writing past an argument or into an input is an error.
 */
#define GUARD_BYTES 256
#define CANARY 0xA7
static bool check_mode(void)
{
	static int on = -1;
	if (on < 0) {
		const char *v = getenv("KILN_CHECK_DEVICE");
		on = v && *v && strcmp(v, "0");
	}
	return on;
}

static int prepare(kiln_module *m, rt_function *f)
{
	if (f->dev)
		return 0;
	const rt_blob *src = rt_module_blob(m, "opencl-src");
	if (!src)
		return rt_error("%s: the module carries no OpenCL source", f->name);
	cl_program p = get_program((const char *)src->data, src->size);
	if (!p)
		return -1;
	fn_state *fs = calloc(1, sizeof *fs);
	if (!fs)
		return rt_error("%s: out of memory", f->name);
	fs->n = f->nargs + f->ntemp;
	fs->mem = calloc((size_t)(fs->n ? fs->n : 1), sizeof(cl_mem));
	fs->bytes = calloc((size_t)(fs->n ? fs->n : 1), sizeof(size_t));
	fs->kernels = calloc((size_t)(f->nlaunch ? f->nlaunch : 1), sizeof(cl_kernel));
	f->dev = fs;
	m->dev_free = free_fn_state;
	if (!fs->mem || !fs->bytes || !fs->kernels) {
		free_fn_state(f);
		return rt_error("%s: out of memory", f->name);
	}
	cl_int e;
	for (int i = 0; i < fs->n; i++) {
		size_t bytes;
		if (i < f->nargs) {
			bytes = kiln_dtype_bytes(f->args[i].dtype);
			for (int d = 0; d < f->args[i].ndim; d++)
				bytes *= (size_t)f->args[i].shape[d];
		} else {
			bytes = f->temp_bytes[i - f->nargs];
		}
		fs->bytes[i] = bytes;
		fs->mem[i] = CL(clCreateBuffer)(st->ctx, CL_MEM_READ_WRITE, (bytes ? bytes : 4) + (check_mode() ? GUARD_BYTES : 0),
		                            NULL, &e);
		if (e != CL_SUCCESS)
			return rt_error("%s: cannot allocate %zu bytes on %s (%s)", f->name, bytes, st->name, cl_err(e));
	}
	for (int l = 0; l < f->nlaunch; l++) {
		rt_launch *la = &f->launches[l];
		fs->kernels[l] = CL(clCreateKernel)(p, la->kernel, &e);
		if (e != CL_SUCCESS)
			return rt_error("%s: kernel '%s' (%s)", f->name, la->kernel, cl_err(e));
		for (int a = 0; a < la->nargs; a++) {
			int idx = la->args[a] >= 0 ? la->args[a] : f->nargs - 1 - la->args[a];
			e = CL(clSetKernelArg)(fs->kernels[l], (cl_uint)a, sizeof(cl_mem), &fs->mem[idx]);
			if (e != CL_SUCCESS)
				return rt_error("%s: argument %d of kernel '%s' (%s)", f->name, a, la->kernel, cl_err(e));
		}
	}
	return 0;
}

/* Check mode, after a call: every guard zone intact, every input as uploaded. */
static int check_buffers(const rt_function *f, const fn_state *fs, kiln_array **args)
{
	uint8_t guard[GUARD_BYTES];
	for (int i = 0; i < f->nargs; i++) {
		cl_int e = CL(clEnqueueReadBuffer)(st->q, fs->mem[i], CL_TRUE, fs->bytes[i], GUARD_BYTES, guard, 0, NULL, NULL);
		if (e != CL_SUCCESS)
			return rt_error("%s: reading the guard of argument %d failed (%s)", f->name, i, cl_err(e));
		for (int b = 0; b < GUARD_BYTES; b++)
			if (guard[b] != CANARY)
				return rt_error("%s: a kernel wrote past the end of argument %d (%s), at byte %zu", f->name, i,
				                f->args[i].name, fs->bytes[i] + (size_t)b);
		if (f->args[i].is_output)
			continue;
		uint8_t *now = malloc(fs->bytes[i] ? fs->bytes[i] : 1);
		e = now ? CL(clEnqueueReadBuffer)(st->q, fs->mem[i], CL_TRUE, 0, fs->bytes[i], now, 0, NULL, NULL)
		        : CL_OUT_OF_HOST_MEMORY;
		int changed = e == CL_SUCCESS && memcmp(now, args[i]->data, fs->bytes[i]);
		free(now);
		if (e != CL_SUCCESS)
			return rt_error("%s: reading back input %d failed (%s)", f->name, i, cl_err(e));
		if (changed)
			return rt_error("%s: a kernel changed input %d (%s)", f->name, i, f->args[i].name);
	}
	return 0;
}

/* Queues every launch of f (ev: an event per launch, or NULL). */
static int enqueue_launches(rt_function *f, fn_state *fs, cl_event *ev)
{
	for (int l = 0; l < f->nlaunch; l++) {
		rt_launch *la = &f->launches[l];
		size_t global[3], local[3];
		for (int d = 0; d < 3; d++) {
			local[d] = la->block[d];
			global[d] = (size_t)la->grid[d] * la->block[d];
		}
		cl_int e = CL(clEnqueueNDRangeKernel)(st->q, fs->kernels[l], 3, NULL, global, local, 0, NULL, ev ? &ev[l] : NULL);
		if (e != CL_SUCCESS)
			return rt_error("%s: launch of '%s' (%ux%ux%u blocks of %ux%ux%u) failed on %s (%s)", f->name, la->kernel,
			                la->grid[0], la->grid[1], la->grid[2], la->block[0], la->block[1], la->block[2], st->name,
			                cl_err(e));
	}
	return 0;
}

static int run_locked(kiln_module *m, rt_function *f, kiln_array **args, double *kernel_ms)
{
	if (init_locked() || prepare(m, f))
		return -1;
	fn_state *fs = f->dev;
	cl_int e;
	uint8_t canary[GUARD_BYTES];
	memset(canary, CANARY, sizeof canary);
	for (int i = 0; i < f->nargs; i++)
		if (!f->args[i].is_output || check_mode()) {
			/* non-blocking as before; only the canary (on this stack) needs its write done before return */
			e = CL(clEnqueueWriteBuffer)(st->q, fs->mem[i], CL_FALSE, 0, fs->bytes[i], args[i]->data, 0, NULL, NULL);
			if (e == CL_SUCCESS && check_mode())
				e = CL(clEnqueueWriteBuffer)(st->q, fs->mem[i], CL_TRUE, fs->bytes[i], GUARD_BYTES, canary, 0, NULL, NULL);
			if (e != CL_SUCCESS)
				return rt_error("%s: upload of argument %d failed (%s)", f->name, i, cl_err(e));
		}
	cl_event *ev = calloc((size_t)(f->nlaunch ? f->nlaunch : 1), sizeof(cl_event));
	int rc = enqueue_launches(f, fs, ev);
	for (int i = 0; i < f->nargs && !rc; i++)
		if (f->args[i].is_output) {
			e = CL(clEnqueueReadBuffer)(st->q, fs->mem[i], CL_FALSE, 0, fs->bytes[i], args[i]->data, 0, NULL, NULL);
			if (e != CL_SUCCESS)
				rc = rt_error("%s: download of argument %d failed (%s)", f->name, i, cl_err(e));
		}
	e = CL(clFinish)(st->q);
	if (!rc && e != CL_SUCCESS)
		rc = rt_error("%s: the device failed while running (%s)", f->name, cl_err(e));
	if (!rc && check_mode())
		rc = check_buffers(f, fs, args);
	double ms = 0;
	for (int l = 0; l < f->nlaunch; l++)
		if (ev[l]) {
			cl_ulong a = 0, b = 0;
			CL(clGetEventProfilingInfo)(ev[l], CL_PROFILING_COMMAND_START, sizeof a, &a, NULL);
			CL(clGetEventProfilingInfo)(ev[l], CL_PROFILING_COMMAND_END, sizeof b, &b, NULL);
			ms += (double)(b - a) * 1e-6;
			CL(clReleaseEvent)(ev[l]);
		}
	free(ev);
	if (kernel_ms)
		*kernel_ms = ms;
	return rc;
}

/*
 * ---- buffers a graph executor keeps on the device between functions ----
 * Keyed by the host memory they mirror (an arena slice, a weight, an input):
 * a value one kernel writes is the buffer the next kernel reads, so
 * intermediates never cross the bus; upload / download say which do.
 */
typedef struct {
	const void *host;
	size_t bytes;
	cl_mem mem;
} shared_buf;
static shared_buf *shared;
static int nshared, capshared;

static cl_mem shared_mem(const void *host, size_t bytes, bool *fresh)
{
	*fresh = false;
	for (int i = 0; i < nshared; i++)
		if (shared[i].host == host && shared[i].bytes == bytes)
			return shared[i].mem;
	if (nshared == capshared) {
		int cap = capshared ? 2 * capshared : 64;
		shared_buf *n = realloc(shared, sizeof *n * (size_t)cap);
		if (!n)
			return NULL;
		shared = n;
		capshared = cap;
	}
	cl_int e;
	cl_mem mem = CL(clCreateBuffer)(st->ctx, CL_MEM_READ_WRITE, bytes ? bytes : 4, NULL, &e);
	if (e != CL_SUCCESS)
		return NULL;
	shared[nshared++] = (shared_buf){host, bytes, mem};
	*fresh = true;
	return mem;
}

static int set_args(rt_function *f, fn_state *fs, const cl_mem *mems)
{
	for (int l = 0; l < f->nlaunch; l++) {
		rt_launch *la = &f->launches[l];
		for (int a = 0; a < la->nargs; a++) {
			int idx = la->args[a] >= 0 ? la->args[a] : f->nargs - 1 - la->args[a];
			const cl_mem *mem = idx < f->nargs && mems ? &mems[idx] : &fs->mem[idx];
			cl_int e = CL(clSetKernelArg)(fs->kernels[l], (cl_uint)a, sizeof(cl_mem), mem);
			if (e != CL_SUCCESS)
				return rt_error("%s: argument %d of kernel '%s' (%s)", f->name, a, la->kernel, cl_err(e));
		}
	}
	return 0;
}

static int run_resident_locked(kiln_module *m, rt_function *f, kiln_array **args, const uint8_t *upload,
                               const uint8_t *download)
{
	if (init_locked() || prepare(m, f))
		return -1;
	fn_state *fs = f->dev;
	cl_mem mems[RT_MAX_LAUNCH_ARGS * 4];
	if (f->nargs > (int)(sizeof mems / sizeof *mems))
		return rt_error("%s: too many arguments", f->name);
	cl_int e = CL_SUCCESS;
	for (int i = 0; i < f->nargs; i++) {
		bool fresh;
		if (!(mems[i] = shared_mem(args[i]->data, fs->bytes[i], &fresh)))
			return rt_error("%s: cannot allocate %zu bytes on %s", f->name, fs->bytes[i], st->name);
		if (upload[i] || (fresh && !f->args[i].is_output))
			e = CL(clEnqueueWriteBuffer)(st->q, mems[i], CL_FALSE, 0, fs->bytes[i], args[i]->data, 0, NULL, NULL);
		if (e != CL_SUCCESS)
			return rt_error("%s: upload of argument %d failed (%s)", f->name, i, cl_err(e));
	}
	int rc = set_args(f, fs, mems);
	if (!rc)
		rc = enqueue_launches(f, fs, NULL);
	bool any = false;
	for (int i = 0; i < f->nargs && !rc; i++)
		if (download[i]) {
			any = true;
			e = CL(clEnqueueReadBuffer)(st->q, mems[i], CL_FALSE, 0, fs->bytes[i], args[i]->data, 0, NULL, NULL);
			if (e != CL_SUCCESS)
				rc = rt_error("%s: download of argument %d failed (%s)", f->name, i, cl_err(e));
		}
	/* the next function's kernels are queued behind these: wait only when the host reads */
	if (any && (e = CL(clFinish)(st->q)) != CL_SUCCESS && !rc)
		rc = rt_error("%s: the device failed while running (%s)", f->name, cl_err(e));
	/* a plain call of this function later finds its own buffers bound again */
	if (set_args(f, fs, NULL) && !rc)
		rc = -1;
	return rc;
}

static int rt_opencl_run_resident(kiln_module *m, rt_function *f, kiln_array **args, const uint8_t *upload,
                           const uint8_t *download)
{
	pthread_mutex_lock(&mu);
	int rc = run_resident_locked(m, f, args, upload, download);
	pthread_mutex_unlock(&mu);
	return rc;
}

static int rt_opencl_sync(void)
{
	pthread_mutex_lock(&mu);
	cl_int e = st ? CL(clFinish)(st->q) : CL_SUCCESS;
	pthread_mutex_unlock(&mu);
	return e == CL_SUCCESS ? 0 : rt_error("opencl: the device failed while running (%s)", cl_err(e));
}

static void rt_opencl_forget(const void *host, size_t bytes)
{
	pthread_mutex_lock(&mu);
	const char *lo = host, *hi = lo + bytes;
	for (int i = 0; i < nshared;) {
		if ((const char *)shared[i].host >= lo && (const char *)shared[i].host < hi) {
			CL(clReleaseMemObject)(shared[i].mem);
			shared[i] = shared[--nshared];
		} else {
			i++;
		}
	}
	pthread_mutex_unlock(&mu);
}

static int rt_opencl_run(kiln_module *m, rt_function *f, kiln_array **args, double *kernel_ms)
{
	pthread_mutex_lock(&mu);
	int rc = run_locked(m, f, args, kernel_ms);
	pthread_mutex_unlock(&mu);
	return rc;
}

const rt_device rt_opencl_device = {
	.name = "opencl",
	.arrays = KILN_DEV_CPU, /* host arrays, mirrored in device buffers around each call */
	.run = rt_opencl_run,
	.kernel_clock = true,
	.needs_code = true,
	.run_resident = rt_opencl_run_resident,
	.sync = rt_opencl_sync,
	.forget = rt_opencl_forget,
};
