/*
 * codegen.h — lowered functions to LLVM IR (codegen.c) and from there to
 * machine code, a JIT and exported libraries (jit.c).
 */
#ifndef KILN_CG_LLVM_H
#define KILN_CG_LLVM_H

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include "ir/ir.h"
#include "kiln/target.h"
#include "runtime/rt.h"

typedef struct {
	const char *triple;
	const char *cpu;
	const char *features;
	char own_features[320]; /* a named CPU's -mattr with what kiln turns off on x86 (features points here) */
	int vector_bits; /* preferred vector width */
	bool wasm;
	bool relaxed_madd; /* wasm: contracted vector mul-adds become relaxed_madd (cg_wasm_relaxed_madd) */
} cg_target;

/* Rewrites every contracted fadd(fmul(a, b), c) on f32x4 / f64x2 in mod into
 * llvm.wasm.relaxed.madd, which LLVM 19 does not form itself. Returns how many. */
int cg_wasm_relaxed_madd(LLVMModuleRef mod);

/* Whether an LLVM target triple names an x86 CPU. */
bool cg_is_x86(const char *triple);
/* Fills t for this host (cpu name and features as LLVM detects them, SSE4a off on x86: jit.c says why). */
void cg_host_target(cg_target *t);

/*
 * Emits every function into mod. Returns 0, or -1 with a message on ctx
 * (e.g. a GPU-only construct reached the CPU target).
 */
int cg_llvm_emit(kiln_ctx *ctx, LLVMContextRef c, LLVMModuleRef mod, const cg_target *t, int nfunc,
                 kiln_func *const *funcs);
/* Adds the module container bytes as the symbols an exported library carries. */
void cg_llvm_embed_blob(LLVMContextRef c, LLVMModuleRef mod, const uint8_t *data, size_t size);
/* Optimizes mod (O3 for t) and emits an object into malloc'ed memory; *ir gets the optimized IR text. */
int cg_llvm_compile(kiln_ctx *ctx, const cg_target *t, LLVMModuleRef mod, uint8_t **obj, size_t *size, char **ir);
/* Runs argv without a shell; returns its exit status (-1 if it could not run). */
int cg_run(char *const *argv);
/* Compiles functions for wasm32 (wasm.c): a module holding linked kernel binaries. */
kiln_module *cg_wasm_build(kiln_ctx *ctx, int nfunc, kiln_func *const *funcs);
/* Compiles functions for this CPU: a module callable at once and exportable. */
kiln_module *cg_llvm_build(kiln_ctx *ctx, int nfunc, kiln_func *const *funcs, const kiln_target *t);
/* An empty module for target listing funcs with their argument metadata (no code yet). */
kiln_module *cg_module_new(kiln_ctx *ctx, const char *target, int nfunc, kiln_func *const *funcs);
/* Argument metadata of a lowered function. */
void cg_arg_infos(const kiln_func *f, kiln_arg_info *out);

#endif
