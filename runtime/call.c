/*
 * call.c — calling any compiled function through libffi, after checking
 * the arguments against the module's metadata, and the time evaluator.
 */
#ifndef __EMSCRIPTEN__
#include <ffi.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

#define MAX_FFI_ARGS 256

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape)
{
	size_t k = (size_t)snprintf(buf, n, "[");
	for (int d = 0; d < ndim && k < n; d++)
		k += (size_t)snprintf(buf + k, n - k, "%s%lld", d ? ", " : "", (long long)shape[d]);
	if (k < n)
		snprintf(buf + k, n - k, "]");
}

static const char *device_name(int d)
{
	static const char *names[] = {"the host's memory", "an OpenCL device", "a GLES device", "a WebGPU buffer",
	                              "a wasm kernel instance's memory"};
	return d >= 0 && d <= KILN_DEV_WASM ? names[d] : "an unknown device";
}

static int check_args(kiln_module *m, const rt_function *f, kiln_array **args, int nargs)
{
	const rt_device *device = rt_device_for(m);
	if (!device)
		return rt_error("%s: %s", f->name, kiln_rt_last_error());
	int dev = (int)device->arrays;
	if (nargs != f->nargs) {
		char names[512] = "";
		size_t k = 0;
		for (int i = 0; i < f->nargs && k < sizeof names; i++)
			k += (size_t)snprintf(names + k, sizeof names - k, "%s%s", i ? ", " : "", f->args[i].name);
		return rt_error("%s expects %d arguments (%s), got %d", f->name, f->nargs, names, nargs);
	}
	for (int i = 0; i < nargs; i++) {
		const kiln_arg_info *ai = &f->args[i];
		const kiln_array *a = args[i];
		char want[64], got[64];
		if (!a || !a->data)
			return rt_error("argument %d (%s) of %s is NULL", i, ai->name, f->name);
		/* bool is one byte per element whether it says 1 or 8 bits */
		bool same_bits = a->dtype.bits == ai->dtype.bits || a->dtype.code == KILN_BOOL;
		if (a->dtype.code != ai->dtype.code || !same_bits || a->dtype.lanes != ai->dtype.lanes)
			return rt_error("argument %d (%s) of %s has dtype %s, expected %s", i, ai->name, f->name,
			                kiln_dtype_str(a->dtype, got), kiln_dtype_str(ai->dtype, want));
		bool same = a->ndim == ai->ndim;
		for (int d = 0; same && d < a->ndim; d++)
			same = a->shape[d] == ai->shape[d];
		if (!same) {
			shape_str(got, sizeof got, a->ndim, a->shape);
			shape_str(want, sizeof want, ai->ndim, ai->shape);
			return rt_error("argument %d (%s) of %s has shape %s, expected %s", i, ai->name, f->name, got, want);
		}
		if (!kiln_array_is_compact(a))
			return rt_error("argument %d (%s) of %s is not a compact row-major array", i, ai->name, f->name);
		if ((int)a->device != dev)
			return rt_error("argument %d (%s) of %s lives in %s; a %s module takes arrays in %s", i, ai->name,
			                f->name, device_name(a->device), m->target, device_name(dev));
	}
	if (device->needs_code && !f->fn && !f->nlaunch)
		return rt_error("%s has no code in this module", f->name);
	return 0;
}

#ifndef __EMSCRIPTEN__
/* The host CPU: a function is a C entry point int fn(T *a, T *b, ...), called through libffi. */
static int cpu_run(kiln_module *m, rt_function *f, kiln_array **args, double *ms)
{
	ffi_cif cif;
	ffi_type *types[MAX_FFI_ARGS];
	void *ptrs[MAX_FFI_ARGS], *vals[MAX_FFI_ARGS];
	if (f->nargs > MAX_FFI_ARGS)
		return rt_error("%s has more than %d arguments", f->name, MAX_FFI_ARGS);
	if (!f->fn)
		return rt_error("%s has no code in this module", f->name);
	for (int i = 0; i < f->nargs; i++) {
		types[i] = &ffi_type_pointer;
		ptrs[i] = args[i]->data;
		vals[i] = &ptrs[i];
	}
	if (ffi_prep_cif(&cif, FFI_DEFAULT_ABI, (unsigned)f->nargs, &ffi_type_sint32, types) != FFI_OK)
		return rt_error("libffi cannot describe a call to %s", f->name);
	ffi_arg rc = 0;
	ffi_call(&cif, FFI_FN(f->fn), &rc, vals);
	if ((int32_t)rc != 0)
		return rt_error("%s returned status %d", f->name, (int)(int32_t)rc);
	return 0;
}

const rt_device rt_cpu_device = {
	.name = "cpu",
	.arrays = KILN_DEV_CPU,
	.run = cpu_run,
	.needs_code = true,
};
#endif

/* The function fn of m, once its arguments have been checked against its metadata; NULL with a message. */
static rt_function *checked(kiln_module *m, const char *fn, kiln_array **args, int nargs)
{
	if (!m) {
		rt_error("call: no module");
		return NULL;
	}
	rt_function *f = rt_module_find(m, fn);
	if (!f) {
		char names[512] = "";
		size_t k = 0;
		for (int i = 0; i < m->nfunc && k < sizeof names; i++)
			k += (size_t)snprintf(names + k, sizeof names - k, "%s%s", i ? ", " : "", m->funcs[i].name);
		rt_error("no function '%s' in the module (it has: %s)", fn, names);
		return NULL;
	}
	if (f->nargs > MAX_FFI_ARGS) {
		rt_error("%s has more than %d arguments", fn, MAX_FFI_ARGS);
		return NULL;
	}
	return check_args(m, f, args, nargs) ? NULL : f;
}

int kiln_module_call(kiln_module *m, const char *fn, kiln_array **args, int nargs)
{
	rt_function *f = checked(m, fn, args, nargs);
	return f ? m->device->run(m, f, args, NULL) : -1;
}

int rt_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/*
 * A device with its own clock times the kernels: each sample is their time
 * averaged over `number` calls, without the transfers.
 */
static int time_device(kiln_module *m, rt_function *f, kiln_array **args, const kiln_time_opts *o, kiln_timing *out)
{
	double ms;
	for (int i = 0; i < o->warmup; i++)
		if (m->device->run(m, f, args, &ms))
			return -1;
	int number = o->number > 0 ? o->number : 1;
	if (o->number <= 0 && o->min_repeat_ms > 0) {
		if (m->device->run(m, f, args, &ms))
			return -1;
		number = ms > 0 ? (int)(o->min_repeat_ms / ms) + 1 : 1;
		if (number > 1000)
			number = 1000;
	}
	out->samples_ms = malloc(sizeof(double) * o->repeat);
	if (!out->samples_ms)
		return rt_error("out of memory");
	for (int r = 0; r < o->repeat; r++) {
		double sum = 0;
		for (int i = 0; i < number; i++) {
			if (m->device->run(m, f, args, &ms)) {
				kiln_timing_free(out);
				return -1;
			}
			sum += ms;
		}
		out->samples_ms[r] = sum / number;
	}
	out->number = number;
	rt_timing_summarize(out, o->repeat);
	return 0;
}

int rt_time_opts(const kiln_time_opts *opts, kiln_time_opts *out)
{
	kiln_time_opts o = opts ? *opts : (kiln_time_opts){0};
	if ((opts && o.repeat < 1) || o.repeat < 0 || o.number < 0 || o.warmup < 0 || !(o.min_repeat_ms >= 0) ||
	    o.repeat > 100000 || o.number > (1 << 24) || o.warmup > 100000 || o.min_repeat_ms > 3.6e6)
		return rt_error("time: repeat %d, number %d, warmup %d, min_repeat_ms %g: repeat must be 1 to 100000, the "
		                "others at least 0 (number 0: chosen from min_repeat_ms) and at most 2^24 calls, 100000 "
		                "warm-ups, an hour", o.repeat, o.number, o.warmup, o.min_repeat_ms);
	if (o.repeat <= 0)
		o.repeat = 5;
	if (o.warmup < 0)
		o.warmup = 0;
	if (!opts)
		o.warmup = 1;
	*out = o;
	return 0;
}

int rt_time_host(int (*once)(void *), void *arg, const kiln_time_opts *o, kiln_timing *out)
{
	for (int i = 0; i < o->warmup; i++)
		if (once(arg))
			return -1;
	int number = o->number > 0 ? o->number : 1;
	if (o->number <= 0 && o->min_repeat_ms > 0) {
		/* grow number until one sample takes min_repeat_ms */
		for (;;) {
			double t0 = rt_now_ms();
			for (int i = 0; i < number; i++)
				if (once(arg))
					return -1;
			double dt = rt_now_ms() - t0;
			if (dt >= o->min_repeat_ms || number >= (1 << 24))
				break;
			int next = dt > 0 ? (int)(number * o->min_repeat_ms / dt * 1.1) + 1 : number * 10;
			number = next > number * 10 ? number * 10 : next > number ? next : number + 1;
		}
	}
	out->samples_ms = malloc(sizeof(double) * o->repeat);
	if (!out->samples_ms)
		return rt_error("out of memory");
	for (int r = 0; r < o->repeat; r++) {
		double t0 = rt_now_ms();
		for (int i = 0; i < number; i++)
			if (once(arg)) {
				kiln_timing_free(out);
				return -1;
			}
		out->samples_ms[r] = (rt_now_ms() - t0) / number;
	}
	out->number = number;
	rt_timing_summarize(out, o->repeat);
	return 0;
}

struct host_call {
	kiln_module *m;
	const rt_function *f;
	kiln_array **args;
};

static int call_once(void *arg)
{
	struct host_call *c = arg;
	return c->m->device->run(c->m, (rt_function *)c->f, c->args, NULL);
}

int kiln_module_time(kiln_module *m, const char *fn, kiln_array **args, int nargs, const kiln_time_opts *opts,
                     kiln_timing *out)
{
	memset(out, 0, sizeof *out);
	kiln_time_opts o;
	if (rt_time_opts(opts, &o))
		return -1;
	rt_function *f = checked(m, fn, args, nargs);
	if (!f)
		return -1;
	if (m->device->time) /* it times on its side, warm-ups included */
		return m->device->time(m, f, args, &o, out);
	if (m->device->run(m, f, args, NULL)) /* one call first: a failing function fails here */
		return -1;
	if (m->device->kernel_clock)
		return time_device(m, f, args, &o, out);
	struct host_call hc = {m, f, args};
	return rt_time_host(call_once, &hc, &o, out);
}

void rt_timing_summarize(kiln_timing *out, int repeat)
{
	out->nsamples = repeat;
	double *sorted = malloc(sizeof(double) * repeat);
	memcpy(sorted, out->samples_ms, sizeof(double) * repeat);
	qsort(sorted, (size_t)repeat, sizeof(double), rt_cmp_double);
	out->median_ms = repeat % 2 ? sorted[repeat / 2] : (sorted[repeat / 2 - 1] + sorted[repeat / 2]) / 2;
	out->min_ms = sorted[0];
	double sum = 0;
	for (int r = 0; r < repeat; r++)
		sum += sorted[r];
	out->mean_ms = sum / repeat;
	free(sorted);
}

void kiln_timing_free(kiln_timing *t)
{
	free(t->samples_ms);
	t->samples_ms = NULL;
	t->nsamples = 0;
}
