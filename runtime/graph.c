/*
 * graph.c — the graph executor: runs a model module's plan (what
 * graph/build.c writes into the "graph" blob) step by step, each step one
 * function of the module called on views of the model's buffers.
 *
 * Every field of the plan is checked before use: counts against what is
 * left, value indices against the value count, shapes and sizes with
 * overflow-checked arithmetic, weight and arena offsets against their
 * buffers, and every step's arguments against its function's metadata
 * (same dtype and element count; the function's shape is the view the
 * kernel takes). A hostile plan is refused at load, never at run time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/model.h"
#include "rt.h"
/* header-only, as in module.c: the web runtime links no system libraries */
#define XXH_INLINE_ALL
#include <xxhash.h>

#define PLAN_MAGIC "KGRAPH\0\1"
#define PLAN_VERSION 2u
#define MAX_VALUES (1 << 20)
#define MAX_STEP_ARGS 256
#define NO_INIT UINT64_MAX

enum { V_INPUT, V_OUTPUT, V_WEIGHT, V_TEMP };

typedef struct {
	kiln_arg_info info;
	int kind;
	uint64_t offset, init;
	size_t bytes;
	void *data;          /* where its elements live once the model is set up */
} mvalue;

typedef struct {
	char fn[64];
	int nargs;
	int *arg;            /* value indices */
	kiln_array **views;  /* the arrays the call gets (shaped as the function declares) */
	/* OpenCL: which arguments cross the bus (the rest stay in device buffers) */
	uint8_t *up_each;    /* every run: the first reader of each input */
	uint8_t *up_first;   /* the first run: the first reader of each weight */
	uint8_t *down;       /* the writer of each output */
	uint8_t *up;         /* this run's */
} mstep;

struct kiln_model {
	kiln_module *mod;
	bool owns;           /* frees mod with the model */
	int nvalue, ninput, noutput, nstep;
	mvalue *values;
	int *inputs, *outputs;
	mstep *steps;
	uint64_t arena_bytes, weights_bytes;
	uint8_t *arena, *weights;
	kiln_array **out_arrays;
	kiln_arg_info *in_info, *out_info;
	bool resident;       /* a device module: intermediates and weights stay on the device */
	bool warm;           /* the weights are on the device */
	const rt_device *device; /* what runs the module */
	const rt_device *dev; /* device when its buffers are outside this process's memory (web), or NULL */
	uintptr_t *handles;  /* dev: per value its buffer (0: none of its own) */
	uintptr_t arena_handle;
};

typedef struct {
	const uint8_t *p;
	size_t n, at;
	const char *what;
	int err;
} rd;

/* 64-byte aligned host memory (what kernels' vector loads expect); freed with free(). */
static void *host_alloc(int64_t bytes)
{
	void *p = NULL;
	return posix_memalign(&p, 64, (size_t)(bytes + 63) / 64 * 64) ? NULL : p;
}

static uint64_t get(rd *r, int bytes, const char *field)
{
	if (r->err)
		return 0;
	if (r->n - r->at < (size_t)bytes) {
		r->err = rt_error("%s: the plan ends inside %s", r->what, field);
		return 0;
	}
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)r->p[r->at + i] << (8 * i);
	r->at += bytes;
	return v;
}

static void get_str(rd *r, char *out, size_t cap, const char *field)
{
	uint64_t len = get(r, 4, field);
	out[0] = 0;
	if (r->err)
		return;
	if (len >= cap || len > r->n - r->at) {
		r->err = rt_error("%s: %s has length %llu (at most %zu, %zu bytes left)", r->what, field,
		                  (unsigned long long)len, cap - 1, r->n - r->at);
		return;
	}
	memcpy(out, r->p + r->at, len);
	out[len] = 0;
	if (strlen(out) != len)
		r->err = rt_error("%s: %s holds a NUL byte", r->what, field);
	r->at += len;
}

static uint64_t get_count(rd *r, uint64_t max, const char *field)
{
	uint64_t n = get(r, 4, field);
	if (!r->err && n > max)
		r->err = rt_error("%s: %llu %s (at most %llu)", r->what, (unsigned long long)n, field, (unsigned long long)max);
	return r->err ? 0 : n;
}

void kiln_model_free(kiln_model *m)
{
	if (!m)
		return;
	if (m->resident) {
		void (*forget)(const void *, size_t) = m->device->forget;
		forget(m->arena, m->arena_bytes ? m->arena_bytes : 64);
		forget(m->weights, m->weights_bytes ? m->weights_bytes : 64);
		for (int v = 0; v < m->nvalue; v++)
			if (m->values[v].kind == V_INPUT || m->values[v].kind == V_OUTPUT)
				forget(m->values[v].data, m->values[v].bytes ? m->values[v].bytes : 64);
	}
	for (int s = 0; s < m->nstep; s++) {
		for (int a = 0; m->steps[s].views && a < m->steps[s].nargs; a++)
			kiln_array_free(m->steps[s].views[a]);
		free(m->steps[s].views);
		free(m->steps[s].arg);
		free(m->steps[s].up_each), free(m->steps[s].up_first), free(m->steps[s].down), free(m->steps[s].up);
	}
	for (int i = 0; m->out_arrays && i < m->noutput; i++)
		kiln_array_free(m->out_arrays[i]);
	if (m->dev) {
		for (int v = 0; m->handles && v < m->nvalue; v++)
			if (m->handles[v])
				m->dev->release(m->mod, m->handles[v]);
		if (m->arena_handle)
			m->dev->release(m->mod, m->arena_handle);
		free(m->handles);
	}
	for (int v = 0; !m->dev && v < m->nvalue; v++)
		if (m->values[v].kind == V_INPUT || m->values[v].kind == V_OUTPUT)
			free(m->values[v].data);
	free(m->arena);
	free(m->weights);
	free(m->out_arrays), free(m->in_info), free(m->out_info);
	free(m->values), free(m->inputs), free(m->outputs), free(m->steps);
	if (m->owns)
		kiln_module_free(m->mod);
	free(m);
}

static int parse_values(kiln_model *m, rd *r)
{
	int n = (int)get_count(r, MAX_VALUES, "values");
	m->values = calloc(n ? n : 1, sizeof *m->values);
	if (!m->values)
		return rt_error("%s: out of memory", r->what);
	m->nvalue = n; /* only once the array exists: kiln_model_free walks it */
	for (int i = 0; i < m->nvalue && !r->err; i++) {
		mvalue *v = &m->values[i];
		get_str(r, v->info.name, sizeof v->info.name, "a value's name");
		v->info.dtype.code = (uint8_t)get(r, 1, "a dtype");
		v->info.dtype.bits = (uint8_t)get(r, 1, "a dtype");
		v->info.dtype.lanes = (uint16_t)get(r, 2, "a dtype");
		v->info.ndim = (int)get(r, 1, "a rank");
		if (!r->err && v->info.ndim > KILN_MAX_DIMS)
			return r->err = rt_error("%s: value '%s' has %d dimensions (at most %d)", r->what, v->info.name,
			                         v->info.ndim, KILN_MAX_DIMS);
		for (int d = 0; d < v->info.ndim; d++)
			v->info.shape[d] = (int64_t)get(r, 8, "a shape");
		v->kind = (int)get(r, 1, "a value kind");
		v->offset = get(r, 8, "an offset");
		v->init = get(r, 8, "an initial value");
		if (r->err)
			break;
		if (v->kind > V_TEMP)
			return r->err = rt_error("%s: value '%s' has kind %d", r->what, v->info.name, v->kind);
		if (rt_dtype_check(v->info.dtype, v->info.name) ||
		    rt_array_bytes(v->info.ndim, v->info.shape, v->info.dtype, v->info.name, &v->bytes))
			return r->err = -1;
		uint64_t room = v->kind == V_WEIGHT ? m->weights_bytes : m->arena_bytes;
		if ((v->kind == V_WEIGHT || v->kind == V_TEMP) && (v->offset > room || v->bytes > room - v->offset))
			return r->err = rt_error("%s: value '%s' (%zu bytes at %llu) lies outside its %llu-byte buffer", r->what,
			                         v->info.name, v->bytes, (unsigned long long)v->offset, (unsigned long long)room);
		if (v->kind == V_OUTPUT && v->init != NO_INIT &&
		    (v->init > m->weights_bytes || v->bytes > m->weights_bytes - v->init))
			return r->err = rt_error("%s: output '%s' starts from bytes outside the weights", r->what, v->info.name);
	}
	return r->err;
}

static int parse_ends(kiln_model *m, rd *r, int **list, int *n, int kind, const char *what)
{
	*n = (int)get_count(r, (uint64_t)m->nvalue, what);
	*list = calloc(*n ? *n : 1, sizeof(int));
	if (!*list)
		return rt_error("%s: out of memory", r->what);
	for (int i = 0; i < *n && !r->err; i++) {
		uint64_t v = get(r, 4, what);
		if (!r->err && (v >= (uint64_t)m->nvalue || m->values[v].kind != kind))
			return r->err = rt_error("%s: %s %d names value %llu, which is not one", r->what, what, i,
			                         (unsigned long long)v);
		(*list)[i] = (int)v;
	}
	return r->err;
}

static int64_t numel_of(const kiln_arg_info *a)
{
	int64_t n = 1;
	for (int d = 0; d < a->ndim; d++)
		n *= a->shape[d];
	return n;
}

static int parse_steps(kiln_model *m, rd *r)
{
	int n = (int)get_count(r, 1u << 20, "steps");
	m->steps = calloc(n ? n : 1, sizeof *m->steps);
	if (!m->steps)
		return rt_error("%s: out of memory", r->what);
	m->nstep = n;
	for (int s = 0; s < m->nstep && !r->err; s++) {
		mstep *st = &m->steps[s];
		get_str(r, st->fn, sizeof st->fn, "a step's function");
		st->nargs = (int)get_count(r, MAX_STEP_ARGS, "step arguments");
		if (r->err)
			break;
		st->arg = calloc(st->nargs ? st->nargs : 1, sizeof(int));
		if (!st->arg)
			return r->err = rt_error("%s: out of memory", r->what);
		for (int a = 0; a < st->nargs && !r->err; a++) {
			uint64_t v = get(r, 4, "a step argument");
			if (!r->err && v >= (uint64_t)m->nvalue)
				return r->err = rt_error("%s: step %s reads value %llu of %d", r->what, st->fn, (unsigned long long)v,
				                         m->nvalue);
			st->arg[a] = (int)v;
		}
		if (r->err)
			break;
		const kiln_arg_info *fa;
		int nfa = kiln_module_function_args(m->mod, st->fn, &fa);
		if (nfa < 0)
			return r->err = rt_error("%s: step %d calls '%s', which the module does not have", r->what, s, st->fn);
		if (nfa != st->nargs)
			return r->err = rt_error("%s: step %s passes %d arguments to a function of %d", r->what, st->fn,
			                         st->nargs, nfa);
		for (int a = 0; a < nfa; a++) {
			const mvalue *v = &m->values[st->arg[a]];
			const kiln_dtype x = v->info.dtype, y = fa[a].dtype;
			if (x.code != y.code || x.bits != y.bits || x.lanes != y.lanes || numel_of(&v->info) != numel_of(&fa[a]))
				return r->err = rt_error("%s: step %s argument %d ('%s') does not match the function's '%s'",
				                         r->what, st->fn, a, v->info.name, fa[a].name);
			if (fa[a].is_output && (v->kind == V_INPUT || v->kind == V_WEIGHT))
				return r->err = rt_error("%s: step %s writes '%s', an input or weight", r->what, st->fn,
				                         v->info.name);
		}
	}
	return r->err;
}

/*
 * Buffers on a device the host cannot address (web.c's devices): one
 * for the arena when handles take offsets, else one per intermediate; one
 * per weight, uploaded now; one per input and output. v->data holds the
 * handle the kernels get.
 */
static int setup_device(kiln_model *m, const rt_blob *wb, const char *what)
{
	const rt_device *d = m->dev;
	m->handles = calloc(m->nvalue ? m->nvalue : 1, sizeof *m->handles);
	if (!m->handles)
		return rt_error("%s: out of memory", what);
	if (d->offsets && !(m->arena_handle = d->alloc(m->mod, m->arena_bytes ? m->arena_bytes : 64)))
		return -1;
	for (int i = 0; i < m->nvalue; i++) {
		mvalue *v = &m->values[i];
		if (v->kind == V_TEMP && d->offsets) {
			v->data = (void *)(m->arena_handle + (uintptr_t)v->offset);
			continue;
		}
		if (!(m->handles[i] = d->alloc(m->mod, v->bytes ? v->bytes : 64)))
			return -1;
		v->data = (void *)m->handles[i];
		if (v->kind == V_WEIGHT && v->bytes && d->upload(m->mod, m->handles[i], wb->data + v->offset, v->bytes))
			return -1;
	}
	return 0;
}

/* Buffers: the arena, the weights (aligned copies), inputs and outputs; then each step's views. */
static int setup(kiln_model *m, const rt_blob *wb, const char *what)
{
	if (!(m->device = rt_device_for(m->mod)))
		return rt_error("%s: %s", what, kiln_rt_last_error());
	if ((m->dev = m->device->alloc ? m->device : NULL)) {
		if (setup_device(m, wb, what))
			return -1;
	} else {
		m->arena = host_alloc((int64_t)(m->arena_bytes ? m->arena_bytes : 64));
		m->weights = host_alloc((int64_t)(m->weights_bytes ? m->weights_bytes : 64));
		if (!m->arena || !m->weights)
			return rt_error("%s: cannot allocate %llu + %llu bytes", what, (unsigned long long)m->arena_bytes,
			                (unsigned long long)m->weights_bytes);
		if (m->weights_bytes)
			memcpy(m->weights, wb->data, m->weights_bytes);
		for (int i = 0; i < m->nvalue; i++) {
			mvalue *v = &m->values[i];
			if (v->kind == V_WEIGHT)
				v->data = m->weights + v->offset;
			else if (v->kind == V_TEMP)
				v->data = m->arena + v->offset;
			else if (!(v->data = host_alloc((int64_t)(v->bytes ? v->bytes : 64))))
				return rt_error("%s: cannot allocate '%s'", what, v->info.name);
			else if (v->kind == V_OUTPUT && v->init != NO_INIT)
				memcpy(v->data, m->weights + v->init, v->bytes);
			else
				memset(v->data, 0, v->bytes); /* a value no step writes reads as zeros, not old heap */
		}
	}
	for (int s = 0; s < m->nstep; s++) {
		mstep *st = &m->steps[s];
		const kiln_arg_info *fa;
		kiln_module_function_args(m->mod, st->fn, &fa);
		st->views = calloc(st->nargs ? st->nargs : 1, sizeof *st->views);
		if (!st->views)
			return rt_error("%s: out of memory", what);
		for (int a = 0; a < st->nargs; a++) {
			if (!(st->views[a] = kiln_array_wrap(m->values[st->arg[a]].data, fa[a].ndim, fa[a].shape, fa[a].dtype)))
				return -1;
			if (m->dev)
				st->views[a]->device = m->dev->arrays;
		}
	}
	bool gles = m->device == &rt_gles_device;
	m->resident = m->device->run_resident != NULL;
	if (m->resident) {
		/* webgl packs some functions' textures RGBA: a value whose writer and
		 * reader pack it differently goes through the host */
		int *lanes = calloc(m->nstep ? m->nstep : 1, sizeof(int)), *wlanes = calloc(m->nvalue ? m->nvalue : 1, sizeof(int));
		bool *seen = calloc(m->nvalue ? m->nvalue : 1, sizeof(bool)), *cross = calloc(m->nvalue ? m->nvalue : 1, sizeof(bool));
		if (!seen || !lanes || !wlanes || !cross) {
			free(seen), free(lanes), free(wlanes), free(cross);
			return rt_error("%s: out of memory", what);
		}
		for (int s = 0; s < m->nstep && gles; s++) {
			if ((lanes[s] = rt_gles_lanes(m->mod, rt_module_find(m->mod, m->steps[s].fn))) < 0) {
				free(seen), free(lanes), free(wlanes), free(cross);
				return -1;
			}
			const kiln_arg_info *fa;
			kiln_module_function_args(m->mod, m->steps[s].fn, &fa);
			for (int a = 0; a < m->steps[s].nargs; a++) {
				int v = m->steps[s].arg[a];
				if (fa[a].is_output)
					wlanes[v] = lanes[s];
				else if (wlanes[v] && wlanes[v] != lanes[s])
					cross[v] = true;
			}
		}
		for (int s = 0; s < m->nstep; s++) {
			mstep *st = &m->steps[s];
			size_t n = st->nargs ? st->nargs : 1;
			st->up_each = calloc(n, 1), st->up_first = calloc(n, 1), st->down = calloc(n, 1), st->up = calloc(n, 1);
			if (!st->up_each || !st->up_first || !st->down || !st->up) {
				free(seen);
				return rt_error("%s: out of memory", what);
			}
			const kiln_arg_info *fa;
			kiln_module_function_args(m->mod, st->fn, &fa);
			for (int a = 0; a < st->nargs; a++) {
				int v = st->arg[a];
				int kind = m->values[v].kind;
				if (fa[a].is_output) {
					st->down[a] = kind == V_OUTPUT || cross[v];
				} else {
					/* the host's copy is the truth where the packing changes */
					if (cross[v] && wlanes[v] != lanes[s])
						st->up_each[a] = 1;
					if (!seen[v]) {
						st->up_each[a] |= kind == V_INPUT || kind == V_OUTPUT;
						st->up_first[a] = kind == V_WEIGHT;
					}
				}
				seen[v] = true;
			}
		}
		free(seen), free(lanes), free(wlanes), free(cross);
	}
	m->out_arrays = calloc(m->noutput ? m->noutput : 1, sizeof *m->out_arrays);
	m->in_info = calloc(m->ninput ? m->ninput : 1, sizeof *m->in_info);
	m->out_info = calloc(m->noutput ? m->noutput : 1, sizeof *m->out_info);
	if (!m->out_arrays || !m->in_info || !m->out_info)
		return rt_error("%s: out of memory", what);
	for (int i = 0; i < m->ninput; i++)
		m->in_info[i] = m->values[m->inputs[i]].info;
	for (int i = 0; i < m->noutput; i++) {
		mvalue *v = &m->values[m->outputs[i]];
		m->out_info[i] = v->info;
		m->out_info[i].is_output = 1;
		if (!(m->out_arrays[i] = kiln_array_wrap(v->data, v->info.ndim, v->info.shape, v->info.dtype)))
			return -1;
		if (m->dev)
			m->out_arrays[i]->device = m->dev->arrays;
	}
	return 0;
}


kiln_model *kiln_model_from_module(kiln_module *mod) { return rt_model_over(mod, true); }

kiln_model *rt_model_over(kiln_module *mod, bool owns)
{
	if (!mod)
		return rt_error("model: no module"), NULL;
	const char *what = "model";
	const rt_blob *pb = rt_module_blob(mod, "graph"), *wb = rt_module_blob(mod, "weights");
	if (!pb || !wb) {
		if (owns)
			kiln_module_free(mod);
		return rt_error("%s: a module without a graph plan or weights (a single-operator module? use "
		                "kiln_module_call)", what), NULL;
	}
	kiln_model *m = calloc(1, sizeof *m);
	if (!m) {
		if (owns)
			kiln_module_free(mod);
		return rt_error("out of memory"), NULL;
	}
	m->mod = mod;
	m->owns = owns;
	rd r = {pb->data, pb->size, 0, what, 0};
	if (r.n < 8 || memcmp(r.p, PLAN_MAGIC, 8)) {
		kiln_model_free(m);
		return rt_error("%s: the graph blob is not a kiln plan", what), NULL;
	}
	r.at = 8;
	uint64_t version = get(&r, 4, "the version");
	if (!r.err && version != PLAN_VERSION)
		r.err = rt_error("%s: plan version %llu (this runtime reads %u)", what, (unsigned long long)version,
		                 PLAN_VERSION);
	m->arena_bytes = get(&r, 8, "the arena size");
	m->weights_bytes = get(&r, 8, "the weights size");
	uint64_t hash = get(&r, 8, "the weights hash");
	if (!r.err && m->weights_bytes != wb->size)
		r.err = rt_error("%s: the plan expects %llu bytes of weights, the module holds %zu", what,
		                 (unsigned long long)m->weights_bytes, wb->size);
	if (!r.err && hash != (uint64_t)XXH3_64bits(wb->data, wb->size))
		r.err = rt_error("%s: the weights are not the ones the plan was built with (another model's, or corrupted)",
		                 what);
	if (!r.err && m->arena_bytes > (uint64_t)KILN_MAX_ARRAY_BYTES)
		r.err = rt_error("%s: an arena of %llu bytes (at most %lld)", what, (unsigned long long)m->arena_bytes,
		                 (long long)KILN_MAX_ARRAY_BYTES);
	if (r.err || parse_values(m, &r) || parse_ends(m, &r, &m->inputs, &m->ninput, V_INPUT, "inputs") ||
	    parse_ends(m, &r, &m->outputs, &m->noutput, V_OUTPUT, "outputs") || parse_steps(m, &r)) {
		kiln_model_free(m);
		return NULL;
	}
	if (r.at != r.n) {
		kiln_model_free(m);
		return rt_error("%s: %zu bytes after the plan", what, r.n - r.at), NULL;
	}
	/* sizes a hostile plan could inflate: the arena is never more than its
	 * intermediates without reuse, and everything must fit this machine */
	uint64_t temps = 0, total = m->arena_bytes + m->weights_bytes, mem = rt_physical_memory();
	for (int v = 0; v < m->nvalue; v++) {
		if (m->values[v].kind == V_TEMP)
			temps += (m->values[v].bytes + 63) / 64 * 64;
		if (m->values[v].kind == V_INPUT || m->values[v].kind == V_OUTPUT)
			total += m->values[v].bytes;
	}
	if (m->arena_bytes > temps + 64 || (mem && total > mem)) {
		rt_error("%s: the plan asks for %llu bytes (an arena of %llu for %llu bytes of intermediates); this machine "
		         "has %llu", what, (unsigned long long)total, (unsigned long long)m->arena_bytes,
		         (unsigned long long)temps, (unsigned long long)mem);
		kiln_model_free(m);
		return NULL;
	}
	if (setup(m, wb, what)) {
		kiln_model_free(m);
		return NULL;
	}
	return m;
}

kiln_model *kiln_model_load_bytes(const void *data, size_t size, const char *what)
{
	kiln_module *mod = kiln_module_load_bytes(data, size, what);
	return mod ? kiln_model_from_module(mod) : NULL;
}

kiln_model *kiln_model_load(const char *path)
{
	kiln_module *mod = kiln_module_load(path);
	return mod ? kiln_model_from_module(mod) : NULL;
}

int kiln_model_num_inputs(const kiln_model *m) { return m ? m->ninput : 0; }
const char *kiln_model_target(const kiln_model *m) { return m ? kiln_module_target(m->mod) : ""; }
int kiln_model_num_outputs(const kiln_model *m) { return m ? m->noutput : 0; }
int64_t kiln_model_arena_bytes(const kiln_model *m) { return m ? (int64_t)m->arena_bytes : 0; }

const kiln_arg_info *kiln_model_input_info(const kiln_model *m, int i)
{
	return m && i >= 0 && i < m->ninput ? &m->in_info[i] : NULL;
}

const kiln_arg_info *kiln_model_output_info(const kiln_model *m, int i)
{
	return m && i >= 0 && i < m->noutput ? &m->out_info[i] : NULL;
}

size_t kiln_model_io_bytes(const kiln_model *m, int output, int i)
{
	if (!m || i < 0 || i >= (output ? m->noutput : m->ninput))
		return 0;
	return m->values[output ? m->outputs[i] : m->inputs[i]].bytes;
}

int kiln_model_set_input_data(kiln_model *m, int i, const void *data, size_t bytes)
{
	if (!m || i < 0 || i >= m->ninput)
		return rt_error("model: no input %d (it has %d)", i, m ? m->ninput : 0);
	mvalue *v = &m->values[m->inputs[i]];
	if (!data || bytes != v->bytes)
		return rt_error("model: input '%s' takes %zu bytes, got %zu", v->info.name, v->bytes, data ? bytes : 0);
	if (m->dev)
		return m->dev->upload(m->mod, (uintptr_t)v->data, data, bytes);
	memcpy(v->data, data, bytes);
	return 0;
}

int kiln_model_set_input(kiln_model *m, const char *name, const kiln_array *a)
{
	if (!m || !name || !a)
		return rt_error("model: set_input needs a model, a name and an array");
	for (int i = 0; i < m->ninput; i++) {
		const kiln_arg_info *in = &m->in_info[i];
		if (strcmp(in->name, name))
			continue;
		char want[16], got[16];
		if (a->dtype.code != in->dtype.code || a->dtype.bits != in->dtype.bits || a->dtype.lanes != in->dtype.lanes)
			return rt_error("model: input '%s' is %s, the array %s", name, kiln_dtype_str(in->dtype, want),
			                kiln_dtype_str(a->dtype, got));
		if (a->ndim != in->ndim || memcmp(a->shape, in->shape, sizeof(int64_t) * a->ndim))
			return rt_error("model: input '%s' has another shape than the array (rank %d against %d, or extents)",
			                name, in->ndim, a->ndim);
		if (!kiln_array_is_compact(a))
			return rt_error("model: the array for '%s' is not compact", name);
		if (a->device != KILN_DEV_CPU)
			return rt_error("model: the array for '%s' is not in host memory", name);
		return kiln_model_set_input_data(m, i, a->data, m->values[m->inputs[i]].bytes);
	}
	char names[512] = "";
	size_t k = 0;
	for (int i = 0; i < m->ninput && k < sizeof names; i++)
		k += (size_t)snprintf(names + k, sizeof names - k, "%s%s", i ? ", " : "", m->in_info[i].name);
	return rt_error("model: no input named '%s' (it has: %s)", name, names);
}

/* Step s: on OpenCL through the device-resident path (inputs at their first
 * reader, weights on the first run), elsewhere as a plain call. */
static int run_step(kiln_model *m, int s)
{
	mstep *st = &m->steps[s];
	if (m->resident) {
		for (int a = 0; a < st->nargs; a++)
			st->up[a] = st->up_each[a] || (!m->warm && st->up_first[a]);
		rt_function *f = rt_module_find(m->mod, st->fn);
		return m->device->run_resident(m->mod, f, st->views, st->up, st->down);
	}
	return kiln_module_call(m->mod, st->fn, st->views, st->nargs);
}

int kiln_model_run(kiln_model *m)
{
	if (!m)
		return rt_error("model: none");
	/* outputs the compiler folded to constants: written every run, as a kernel would */
	for (int i = 0; i < m->noutput; i++) {
		mvalue *v = &m->values[m->outputs[i]];
		if (v->init == NO_INIT)
			continue;
		if (!m->dev)
			memcpy(v->data, m->weights + v->init, v->bytes);
		else if (m->dev->upload(m->mod, (uintptr_t)v->data, rt_module_blob(m->mod, "weights")->data + v->init, v->bytes))
			return -1;
	}
	for (int s = 0; s < m->nstep; s++)
		if (run_step(m, s))
			return -1;
	if (m->resident) {
		if (m->device->sync && m->device->sync())
			return -1;
		m->warm = true;
	}
	return 0;
}

const kiln_array *kiln_model_get_output(const kiln_model *m, int i)
{
	if (!m || i < 0 || i >= m->noutput) {
		rt_error("model: no output %d (it has %d)", i, m ? m->noutput : 0);
		return NULL;
	}
	return m->out_arrays[i];
}

const kiln_array *kiln_model_get_output_by_name(const kiln_model *m, const char *name)
{
	for (int i = 0; m && name && i < m->noutput; i++)
		if (!strcmp(m->out_info[i].name, name))
			return m->out_arrays[i];
	rt_error("model: no output named '%s'", name ? name : "(null)");
	return NULL;
}

static int run_once(void *m) { return kiln_model_run(m); }

int kiln_model_time(kiln_model *m, const kiln_time_opts *opts, kiln_timing *out)
{
	memset(out, 0, sizeof *out);
	kiln_time_opts o;
	if (rt_time_opts(opts, &o) || kiln_model_run(m))
		return -1;
	return rt_time_host(run_once, m, &o, out);
}

typedef struct {
	int step;
	double ms;
} step_time;

static int by_time(const void *a, const void *b)
{
	double x = ((const step_time *)a)->ms, y = ((const step_time *)b)->ms;
	return x < y ? 1 : x > y ? -1 : 0;
}

int kiln_model_num_steps(const kiln_model *m) { return m ? m->nstep : 0; }

const char *kiln_model_step_name(const kiln_model *m, int s) { return m && s >= 0 && s < m->nstep ? m->steps[s].fn : NULL; }

/* Step s run once and waited for: its milliseconds, or -1. */
static double timed_step(kiln_model *m, int s)
{
	double t0 = rt_now_ms();
	if (run_step(m, s) || (m->resident && m->device->sync && m->device->sync())) /* queued: wait for it */
		return -1;
	return rt_now_ms() - t0;
}

/* (qsort: up to 100000 runs, many of them asked for over RPC) */
static double median_of(double *x, int n)
{
	qsort(x, (size_t)n, sizeof *x, rt_cmp_double);
	return x[n / 2];
}

/*
 * Each step's median over runs samples: in_runs, timed inside whole runs of
 * the model; else repeated alone after one warm run.
 */
static int step_times(kiln_model *m, int runs, double *ms, bool in_runs)
{
	if (!m || runs < 1 || runs > 100000 || !ms)
		return rt_error("model step times: a model, 1 to 100000 runs and room for every step");
	/* in runs: every step's samples at once; alone: one step's at a time */
	size_t rows = in_runs && m->nstep ? (size_t)m->nstep : 1;
	double *samples = calloc(rows * (size_t)runs, sizeof *samples);
	if (!samples)
		return rt_error("model step times: out of memory for %d runs of %d steps", runs, m->nstep);
	int rc = kiln_model_run(m); /* warm */
	for (int r = 0; r < runs && !rc && in_runs; r++)
		for (int s = 0; s < m->nstep && !rc; s++)
			rc = (samples[(size_t)s * runs + r] = timed_step(m, s)) < 0;
	for (int s = 0; s < m->nstep && !rc; s++) {
		for (int r = 0; r < runs && !rc && !in_runs; r++)
			rc = (samples[r] = timed_step(m, s)) < 0;
		if (!rc)
			ms[s] = median_of(samples + (in_runs ? (size_t)s * runs : 0), runs);
	}
	free(samples);
	return rc ? -1 : 0;
}

int kiln_model_step_times(kiln_model *m, int runs, double *ms) { return step_times(m, runs, ms, false); }

int kiln_model_step_times_in_runs(kiln_model *m, int runs, double *ms) { return step_times(m, runs, ms, true); }

int kiln_model_profile(kiln_model *m, int runs, FILE *out)
{
	if (!m || runs < 1 || runs > 100000 || !out)
		return rt_error("model profile: a model, 1 to 100000 runs and a stream");
	step_time *t = calloc(m->nstep ? m->nstep : 1, sizeof *t);
	double *ms = calloc(m->nstep ? m->nstep : 1, sizeof *ms), *alone = calloc(m->nstep ? m->nstep : 1, sizeof *ms);
	double total = 0, total_alone = 0;
	if (!t || !ms || !alone) {
		free(t), free(ms), free(alone);
		return rt_error("out of memory");
	}
	int rc = kiln_model_step_times_in_runs(m, runs, ms) || kiln_model_step_times(m, runs, alone);
	for (int s = 0; s < m->nstep && !rc; s++) {
		t[s] = (step_time){s, ms[s]};
		total += ms[s];
		total_alone += alone[s];
	}
	if (!rc) {
		qsort(t, m->nstep, sizeof *t, by_time);
		fprintf(out, "%-40s %10s %7s %10s\n", "step (kernel)", "median ms", "share", "alone ms");
		for (int s = 0; s < m->nstep; s++)
			fprintf(out, "%-40s %10.3f %6.1f%% %10.3f\n", m->steps[t[s].step].fn, t[s].ms,
			        total > 0 ? 100 * t[s].ms / total : 0, alone[t[s].step]);
		fprintf(out, "%-40s %10.3f %7s %10.3f\n", "total", total, "", total_alone);
	}
	free(t), free(ms), free(alone);
	return rc ? -1 : 0;
}
