/*
 * kiln build: lowering a schedule to loop IR and compiling it.
 */
#ifndef KILN_BUILD_H
#define KILN_BUILD_H

#include <stdio.h>

#include "schedule.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ir_func kiln_func;

/*
 * Lowers a schedule to one function whose arguments are args (inputs and
 * outputs, in order). With trace != NULL the IR is printed there after
 * every pass of the pipeline.
 */
kiln_func *kiln_lower(kiln_schedule *s, const char *name, int nargs, kiln_tensor *const *args, FILE *trace);
/* Prints a lowered function. */
void kiln_func_print(const kiln_func *f, FILE *out);

/*
 * Compiles lowered functions for a target into a module that can be called
 * at once: "llvm" (this CPU, JIT; exportable) or "opencl" (kernels run on
 * the OpenCL device the runtime selects). NULL on failure.
 */
kiln_module *kiln_build(kiln_ctx *ctx, int nfunc, kiln_func *const *funcs, const char *target);
/* Writes the kernel source a GPU-style target ("opencl") generates for funcs. */
int kiln_device_source(kiln_ctx *ctx, int nfunc, kiln_func *const *funcs, const char *target, FILE *out);
/* Lowers and builds one function in one step. */
kiln_module *kiln_build_schedule(kiln_schedule *s, const char *name, int nargs, kiln_tensor *const *args,
                                 const char *target);
/*
 * Writes a shared library holding the module's code and its metadata, so a
 * program that links only libkiln_runtime can dlopen it and call each
 * function by its C signature, or load it with kiln_module_load.
 */
int kiln_export_library(kiln_ctx *ctx, const kiln_module *m, const char *path);
/*
 * Writes a web bundle into folder dir (made if missing): the modules (one
 * per target among webgpu, webgl, wasm) as name.TARGET.kmod, a kiln.json
 * manifest, the Emscripten-built runtime and the JS API (web/kiln.mjs). It
 * loads in node and in a page; the JS API picks webgpu, webgl or wasm.
 */
int kiln_bundle_write(kiln_ctx *ctx, const char *dir, const char *name, int nmod, kiln_module *const *mods);
/*
 * The folder holding kiln's web files: the web runtime (runtime = true:
 * kiln_runtime.js/.wasm) or the JS files (kiln.mjs, serve.mjs, ...).
 * KILN_WEB_DIR when set; else an installed kiln's share/kiln/web, found
 * beside libkiln; else the build and source trees kiln was built in.
 */
const char *kiln_web_dir(bool runtime);
/*
 * The same with a manifest key per module (keys[i] NULL: its target). The
 * key "webgpu-cpu" holds a second webgpu module, built from
 * kiln_schedule_gpu_emulated: the JS API loads it instead of "webgpu" when
 * the adapter is a CPU underneath (SwiftShader, llvmpipe / lavapipe).
 */
int kiln_bundle_write_keys(kiln_ctx *ctx, const char *dir, const char *name, int nmod, kiln_module *const *mods,
                           const char *const *keys);
/* Writes the LLVM IR a build of this module produced (after optimization). */
int kiln_module_llvm_ir(const kiln_module *m, FILE *out);
/*
 * Writes the LLVM IR of functions for the llvm target without building a
 * module: as code generation emits it (optimize = 0) or after the O3
 * pipeline (optimize = 1).
 */
int kiln_llvm_ir(kiln_ctx *ctx, int nfunc, kiln_func *const *funcs, int optimize, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
