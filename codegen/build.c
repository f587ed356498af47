/*
 * build.c — kiln_build: one entry point, a target per folder. The CPU goes
 * through LLVM (codegen/llvm); GPU-style targets are split into kernels
 * (schedule/device.c), printed by their language's hooks of the C-like
 * printer, and described to the runtime as launches.
 */
#include <stdlib.h>
#include <string.h>

#include "codegen/c_like.h"
#include "codegen/llvm/codegen.h"
#include "codegen/glsl/glsl.h"
#include "codegen/opencl/opencl.h"
#include "codegen/wgsl/wgsl.h"
#include "schedule/schedule.h"

/* A GPU-style target: its language (its launch limits are the kiln_target's). */
typedef struct {
	const char *name;
	const cg_lang *lang;
	const char *blob; /* the blob the runtime reads the source from */
} device_target;

static const device_target device_targets[] = {
	{"opencl", &cg_opencl, "opencl-src"},
	{"webgl", &cg_glsl, "glsl-src"},
	{"webgpu", &cg_wgsl, "wgsl-src"},
};

static const device_target *device_target_of(const kiln_target *t, ir_device_limits *lim)
{
	*lim = (ir_device_limits){t->max_threads, t->shared_bytes, t->max_grid};
	for (size_t i = 0; i < sizeof device_targets / sizeof *device_targets; i++)
		if (!strcmp(t->name, device_targets[i].name))
			return &device_targets[i];
	return NULL;
}

/* For languages whose kernels render their outputs: the written buffers become the first parameters. */
static void output_first(ir_device_func *d)
{
	for (int k = 0; k < d->nkernel; k++) {
		ir_kernel *kn = &d->kernels[k];
		for (int w = kn->nwritten - 1; w >= 0; w--)
			for (int p = 0; p < kn->nparam; p++)
				if (kn->params[p] == kn->written[w]) {
					ir_buffer *b = kn->params[p];
					memmove(kn->params + 1, kn->params, sizeof(ir_buffer *) * p);
					kn->params[0] = b;
					break;
				}
	}
}

/* Where each kernel parameter comes from: an argument of f, or temporary -1-k. */
static int bind_params(kiln_ctx *ctx, const ir_device_func *d, const ir_kernel *k, rt_launch *l)
{
	const kiln_func *f = d->func;
	if (k->nparam > RT_MAX_LAUNCH_ARGS)
		return ir_error(ctx, "build: kernel '%s' takes %d buffers (at most %d)", k->name, k->nparam, RT_MAX_LAUNCH_ARGS);
	l->nargs = k->nparam;
	for (int p = 0; p < k->nparam; p++) {
		int found = 0;
		for (int a = 0; a < f->nargs && !found; a++)
			if (f->args[a] == k->params[p]) {
				l->args[p] = a;
				found = 1;
			}
		for (int t = 0; t < d->ntemp && !found; t++)
			if (d->temps[t] == k->params[p]) {
				l->args[p] = -1 - t;
				found = 1;
			}
		ir_assert(found);
	}
	return 0;
}

/* Every function split into kernels for t; NULL with a message. */
static ir_device_func **split_all(kiln_ctx *ctx, int nfunc, kiln_func *const *funcs, const device_target *t,
                                  const ir_device_limits *lim)
{
	ir_device_func **ds = ir_alloc(ctx, sizeof(ir_device_func *) * nfunc);
	for (int i = 0; i < nfunc; i++) {
		if (!(ds[i] = ir_split_device(ctx, funcs[i], lim)))
			return NULL;
		if (t->lang->output_first)
			output_first(ds[i]);
	}
	return ds;
}

static kiln_module *build_device(kiln_ctx *ctx, int nfunc, kiln_func *const *funcs, const device_target *t,
                                 const ir_device_limits *lim)
{
	ir_device_func **ds = split_all(ctx, nfunc, funcs, t, lim);
	if (!ds)
		return NULL;
	char *src = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&src, &len);
	int rc = cg_print_kernels(ctx, t->lang, nfunc, ds, f);
	fclose(f);
	kiln_module *m = rc ? NULL : cg_module_new(ctx, t->name, nfunc, funcs);
	for (int i = 0; m && i < nfunc; i++) {
		ir_device_func *d = ds[i];
		rt_launch *ls = calloc((size_t)d->nkernel, sizeof *ls);
		uint64_t *tb = calloc((size_t)(d->ntemp ? d->ntemp : 1), sizeof *tb);
		for (int k = 0; k < d->nkernel && !rc; k++) {
			const ir_kernel *kn = &d->kernels[k];
			snprintf(ls[k].kernel, sizeof ls[k].kernel, "%s", kn->name);
			for (int x = 0; x < 3; x++) {
				ls[k].grid[x] = (uint32_t)kn->grid[x];
				ls[k].block[x] = (uint32_t)kn->block[x];
			}
			rc = bind_params(ctx, d, kn, &ls[k]);
		}
		for (int k = 0; k < d->ntemp; k++)
			tb[k] = (uint64_t)d->temps[k]->size * kiln_dtype_bytes(d->temps[k]->elem);
		if (!rc)
			rc = rt_function_set_launches(&m->funcs[i], d->nkernel, ls, d->ntemp, tb);
		free(ls);
		free(tb);
		if (rc) {
			kiln_module_free(m);
			m = NULL;
		}
	}
	if (m && rt_module_add_blob(m, t->blob, src, len)) {
		ir_error(ctx, "build: %s", kiln_rt_last_error());
		kiln_module_free(m);
		m = NULL;
	}
	free(src);
	return m;
}

kiln_module *kiln_build(kiln_ctx *ctx, int nfunc, kiln_func *const *funcs, const char *target)
{
	if (nfunc < 1)
		return ir_error(ctx, "build: no functions"), NULL;
	for (int i = 0; i < nfunc; i++)
		if (!funcs[i])
			return ir_error(ctx, "build: function %d is NULL (did lowering fail?)", i), NULL;
	kiln_target t;
	char err[256];
	if (kiln_target_parse(target, &t, err, sizeof err))
		return ir_error(ctx, "build: %s", err), NULL;
	if (t.kind == KILN_LLVM)
		return cg_llvm_build(ctx, nfunc, funcs, &t);
	if (t.kind == KILN_WASM)
		return cg_wasm_build(ctx, nfunc, funcs);
	ir_device_limits lim;
	const device_target *dt = device_target_of(&t, &lim);
	if (dt)
		return build_device(ctx, nfunc, funcs, dt, &lim);
	ir_internal_error(__FILE__, __LINE__, "a parsed target without a code generator");
}

kiln_module *kiln_build_schedule(kiln_schedule *s, const char *name, int nargs, kiln_tensor *const *args,
                                 const char *target)
{
	if (!s)
		return NULL;
	kiln_func *f = kiln_lower(s, name, nargs, args, NULL);
	return f ? kiln_build(s->ctx, 1, &f, target) : NULL;
}

int kiln_device_source(kiln_ctx *ctx, int nfunc, kiln_func *const *funcs, const char *target, FILE *out)
{
	ir_device_limits lim;
	kiln_target t;
	char err[256];
	const device_target *dt = target && !kiln_target_parse(target, &t, err, sizeof err) ? device_target_of(&t, &lim)
	                                                                                    : NULL;
	if (dt) {
		ir_device_func **ds = split_all(ctx, nfunc, funcs, dt, &lim);
		return ds ? cg_print_kernels(ctx, dt->lang, nfunc, ds, out) : -1;
	}
	return ir_error(ctx, "source: '%s' is not a source-printing target (opencl, webgl, webgpu)", target ? target : "(null)");
}
