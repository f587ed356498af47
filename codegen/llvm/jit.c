/*
 * jit.c — LLVM IR to machine code: the O3 pipeline, one object file in
 * memory, loaded into an ORC LLJIT for in-process calls and linked with
 * `cc -shared` when exported. One compile serves both.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codegen.h"
#include "schedule/schedule.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_llvm(void)
{
	LLVMInitializeNativeTarget();
	LLVMInitializeNativeAsmPrinter();
}

void cg_host_target(cg_target *t)
{
	pthread_once(&init_once, init_llvm);
	static char *triple, *cpu, *features;
	if (!triple) {
		triple = LLVMGetDefaultTargetTriple();
		cpu = LLVMGetHostCPUName();
		features = LLVMGetHostCPUFeatures();
	}
	t->triple = triple;
	t->cpu = cpu;
	t->features = features;
	t->vector_bits = strstr(features, "+avx512f") ? 512 : strstr(features, "+avx") ? 256 : 128;
	t->wasm = false;
	t->relaxed_madd = false;
}

static int llvm_err(kiln_ctx *ctx, const char *what, LLVMErrorRef err)
{
	char *m = LLVMGetErrorMessage(err);
	ir_error(ctx, "%s: %s", what, m);
	LLVMDisposeErrorMessage(m);
	return -1;
}

/* What a JIT-built module owns besides its container: the JIT and the IR text.
 * The object file itself is the module's "llvm-obj" blob, so save and export
 * both find it there. */
typedef struct {
	LLVMOrcLLJITRef jit;
	char *ir;
} jit_owner;

static int link_for_save(kiln_module *m);

static void jit_free(void *p)
{
	jit_owner *o = p;
	if (o->jit)
		LLVMOrcDisposeLLJIT(o->jit);
	LLVMDisposeMessage(o->ir);
	free(o);
}

/* A target machine for t, with mod set to its triple and data layout. */
static LLVMTargetMachineRef target_machine(kiln_ctx *ctx, const cg_target *t, LLVMModuleRef mod)
{
	char *msg = NULL;
	LLVMTargetRef target;
	if (LLVMGetTargetFromTriple(t->triple, &target, &msg)) {
		ir_error(ctx, "llvm: no target for %s: %s", t->triple, msg);
		LLVMDisposeMessage(msg);
		return NULL;
	}
	LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, t->triple, t->cpu, t->features,
	                                                  LLVMCodeGenLevelAggressive, LLVMRelocPIC, LLVMCodeModelDefault);
	LLVMSetTarget(mod, t->triple);
	LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
	LLVMSetModuleDataLayout(mod, td);
	LLVMDisposeTargetData(td);
	return tm;
}

/* The O3 pipeline; slp: run the SLP vectorizer too. */
static int optimize(kiln_ctx *ctx, LLVMTargetMachineRef tm, LLVMModuleRef mod, bool slp)
{
	LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
	LLVMPassBuilderOptionsSetLoopVectorization(opts, 1);
	LLVMPassBuilderOptionsSetSLPVectorization(opts, slp);
	LLVMPassBuilderOptionsSetLoopUnrolling(opts, 1);
	LLVMErrorRef err = LLVMRunPasses(mod, "default<O3>", tm, opts);
	LLVMDisposePassBuilderOptions(opts);
	return err ? llvm_err(ctx, "llvm: optimization failed", err) : 0;
}

/* Optimizes mod and emits an object into memory. */
int cg_llvm_compile(kiln_ctx *ctx, const cg_target *t, LLVMModuleRef mod, uint8_t **obj, size_t *size, char **ir)
{
	char *msg = NULL;
	LLVMTargetMachineRef tm = target_machine(ctx, t, mod);
	if (!tm)
		return -1;
	/*
	 * No SLP vectorizer for wasm: kiln's schedules vectorize explicitly, and on
	 * wasm32 SLP packs the 64-bit index math into i64x2 vectors and gathers
	 * scalars lane by lane (replace_lane) inside the matmul kernel's inner
	 * loop; without it that kernel ran 1.3-2x faster in V8 (paired runs).
	 */
	if (optimize(ctx, tm, mod, !t->wasm)) {
		LLVMDisposeTargetMachine(tm);
		return -1;
	}
	if (t->relaxed_madd)
		cg_wasm_relaxed_madd(mod);
	*ir = LLVMPrintModuleToString(mod);
	LLVMMemoryBufferRef buf;
	if (LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMObjectFile, &msg, &buf)) {
		ir_error(ctx, "llvm: object emission failed: %s", msg);
		LLVMDisposeMessage(msg);
		LLVMDisposeTargetMachine(tm);
		return -1;
	}
	*size = LLVMGetBufferSize(buf);
	*obj = malloc(*size);
	memcpy(*obj, LLVMGetBufferStart(buf), *size);
	LLVMDisposeMemoryBuffer(buf);
	LLVMDisposeTargetMachine(tm);
	return 0;
}

static int jit_load(kiln_ctx *ctx, jit_owner *o, kiln_module *m, const uint8_t *obj, size_t size)
{
	LLVMErrorRef err = LLVMOrcCreateLLJIT(&o->jit, NULL);
	if (err)
		return llvm_err(ctx, "jit: cannot create LLJIT", err);
	LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(o->jit);
	LLVMOrcDefinitionGeneratorRef gen;
	/* generated code calls into libkiln_runtime and libm, both already in this process */
	err = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(o->jit), NULL, NULL);
	if (err)
		return llvm_err(ctx, "jit: cannot search this process for symbols", err);
	LLVMOrcJITDylibAddGenerator(jd, gen);
	LLVMMemoryBufferRef buf = LLVMCreateMemoryBufferWithMemoryRangeCopy((const char *)obj, size, "kiln");
	err = LLVMOrcLLJITAddObjectFile(o->jit, jd, buf);
	if (err)
		return llvm_err(ctx, "jit: cannot add the object", err);
	for (int i = 0; i < m->nfunc; i++) {
		LLVMOrcExecutorAddress addr;
		err = LLVMOrcLLJITLookup(o->jit, &addr, m->funcs[i].name);
		if (err)
			return llvm_err(ctx, "jit: lookup failed", err);
		m->funcs[i].fn = (void *)(uintptr_t)addr;
	}
	return 0;
}

kiln_module *cg_llvm_build(kiln_ctx *ctx, int nfunc, kiln_func *const *funcs, const char *target)
{
	cg_target t;
	cg_host_target(&t);
	kiln_module *m = cg_module_new(ctx, target, nfunc, funcs);
	if (!m)
		return NULL;
	LLVMContextRef c = LLVMContextCreate();
	LLVMModuleRef mod = LLVMModuleCreateWithNameInContext("kiln", c);
	jit_owner *o = calloc(1, sizeof *o);
	m->owner = o;
	m->owner_free = jit_free;
	uint8_t *obj = NULL;
	size_t obj_size = 0;
	int rc = cg_llvm_emit(ctx, c, mod, &t, nfunc, funcs);
	if (!rc) {
		uint8_t *meta;
		size_t msize;
		rt_module_serialize(m, &meta, &msize);
		cg_llvm_embed_blob(c, mod, meta, msize);
		free(meta);
		rc = cg_llvm_compile(ctx, &t, mod, &obj, &obj_size, &o->ir);
	}
	LLVMDisposeModule(mod);
	LLVMContextDispose(c);
	if (!rc)
		rc = rt_module_add_blob(m, "llvm-obj", obj, obj_size) ? ir_error(ctx, "build: %s", kiln_rt_last_error())
		                                                       : jit_load(ctx, o, m, obj, obj_size);
	m->save_prepare = link_for_save;
	free(obj);
	if (rc) {
		kiln_module_free(m);
		return NULL;
	}
	return m;
}

int kiln_llvm_ir(kiln_ctx *ctx, int nfunc, kiln_func *const *funcs, int opt, FILE *out)
{
	for (int i = 0; i < nfunc; i++)
		if (!funcs[i])
			return ir_error(ctx, "llvm_ir: function %d is NULL (did lowering fail?)", i);
	cg_target t;
	cg_host_target(&t);
	LLVMContextRef c = LLVMContextCreate();
	LLVMModuleRef mod = LLVMModuleCreateWithNameInContext("kiln", c);
	int rc = cg_llvm_emit(ctx, c, mod, &t, nfunc, funcs);
	if (!rc && opt) {
		LLVMTargetMachineRef tm = target_machine(ctx, &t, mod);
		rc = tm ? optimize(ctx, tm, mod, true) : -1;
		if (tm)
			LLVMDisposeTargetMachine(tm);
	}
	if (!rc) {
		char *text = LLVMPrintModuleToString(mod);
		fputs(text, out);
		LLVMDisposeMessage(text);
	}
	LLVMDisposeModule(mod);
	LLVMContextDispose(c);
	return rc;
}

int kiln_module_llvm_ir(const kiln_module *m, FILE *out)
{
	if (!m || m->owner_free != jit_free)
		return rt_error("module was not built by kiln_build in this process");
	fputs(((jit_owner *)m->owner)->ir, out);
	return 0;
}

/* Runs argv without a shell; returns its exit status. */
int cg_run(char *const *argv)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execvp(argv[0], argv);
		_exit(127);
	}
	int st;
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * Links object code into a shared library at path with the system's cc. The
 * library needs libkiln_runtime (parallel loops, workspaces) by its soname
 * and carries no RUNPATH: a program that loads it has the runtime already,
 * or finds an installed one the usual way, never this build's folder.
 */
static int link_shared(kiln_ctx *ctx, const rt_blob *objb, const char *path)
{
	char obj[] = "/tmp/kiln-export-XXXXXX.o";
	int fd = mkstemps(obj, 2);
	if (fd < 0)
		return ir_error(ctx, "export: cannot create a temporary file");
	ssize_t w = write(fd, objb->data, objb->size);
	close(fd);
	if (w != (ssize_t)objb->size) {
		unlink(obj);
		return ir_error(ctx, "export: cannot write %s", obj);
	}
	Dl_info info;
	char rt[4096] = "";
	if (dladdr((void *)kiln_parallel_for, &info) && info.dli_fname)
		snprintf(rt, sizeof rt, "%s", info.dli_fname);
	const char *cc = getenv("CC") ? getenv("CC") : "cc";
	char *argv[12];
	int n = 0;
	argv[n++] = (char *)cc;
	argv[n++] = "-shared";
	argv[n++] = "-o";
	argv[n++] = (char *)path;
	argv[n++] = obj;
	if (rt[0])
		argv[n++] = rt; /* recorded as DT_NEEDED libkiln_runtime.so, by its soname */
	argv[n++] = "-lm";
	argv[n] = NULL;
	int st = cg_run(argv);
	unlink(obj);
	if (st != 0)
		return ir_error(ctx, "export: '%s -shared' failed with status %d while writing %s", cc, st, path);
	return 0;
}

int kiln_export_library(kiln_ctx *ctx, const kiln_module *m, const char *path)
{
	const rt_blob *objb = m ? rt_module_blob(m, "llvm-obj") : NULL;
	if (!objb)
		return ir_error(ctx, "export: the module holds no CPU object code (built for another target?)");
	if (!path || !*path)
		return ir_error(ctx, "export: no output path");
	/* a path the linker could not write is said here, not in ld's words */
	int probe = open(path, O_WRONLY | O_CREAT, 0644);
	if (probe < 0)
		return ir_error(ctx, "export: cannot write '%s': %s", path, strerror(errno));
	close(probe);
	return link_shared(ctx, objb, path);
}

/*
 * The save hook of JIT-built modules (kiln_module_save calls it): links the
 * object code into a shared object now, while a toolchain is at hand, and
 * adds it as the "llvm-so" blob, which a runtime loads from memory with no
 * compiler or linker installed.
 */
static int link_for_save(kiln_module *m)
{
	if (rt_module_blob(m, "llvm-so"))
		return 0;
	const rt_blob *objb = rt_module_blob(m, "llvm-obj");
	if (!objb)
		return 0;
	char so[] = "/tmp/kiln-save-XXXXXX.so";
	int fd = mkstemps(so, 3);
	if (fd < 0)
		return rt_error("save: cannot create a temporary file");
	close(fd);
	kiln_ctx *ctx = kiln_ctx_new();
	int rc = link_shared(ctx, objb, so);
	if (rc)
		rt_error("save: %s", kiln_error(ctx));
	kiln_ctx_free(ctx);
	FILE *f = rc ? NULL : fopen(so, "rb");
	uint8_t *data = NULL;
	long n = -1;
	if (f && !fseek(f, 0, SEEK_END) && (n = ftell(f)) > 0 && !fseek(f, 0, SEEK_SET) && (data = malloc((size_t)n)))
		rc = fread(data, 1, (size_t)n, f) == (size_t)n ? rt_module_add_blob(m, "llvm-so", data, (size_t)n) : -1;
	else if (!rc)
		rc = rt_error("save: cannot read back the linked library");
	if (f)
		fclose(f);
	free(data);
	unlink(so);
	return rc;
}
