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
static char *host_triple, *host_cpu, *host_features;

bool cg_is_x86(const char *triple) { return !strncmp(triple, "x86_64", 6) || (triple[0] == 'i' && strstr(triple, "86-")); }

/* LLVM's feature list f with what kiln turns off on x86 appended (later entries win), snprintf-style into dst. */
static int kiln_features(char *dst, size_t n, const char *triple, const char *f)
{
	bool x86 = cg_is_x86(triple);
	return snprintf(dst, n, "%s%s%s", f, x86 && *f ? "," : "", x86 ? "-sse4a" : "");
}

/* Once per process: LLVM's native target, and this host as LLVM detects it (kept for the process's lifetime). */
static void init_llvm(void)
{
	LLVMInitializeNativeTarget();
	LLVMInitializeNativeAsmPrinter();
	host_triple = LLVMGetDefaultTargetTriple();
	host_cpu = LLVMGetHostCPUName();
	char *f = LLVMGetHostCPUFeatures();
	size_t n = (size_t)kiln_features(NULL, 0, host_triple, f) + 1;
	host_features = malloc(n);
	ir_assert(host_features);
	kiln_features(host_features, n, host_triple, f);
	LLVMDisposeMessage(f);
}

/*
 * AMD's SSE4a (insertq, extrq), which LLVM picks for some vector shuffles on
 * AMD CPUs, is off on x86, whatever -mattr says: it is a legacy-SSE encoding,
 * and after 256-bit AVX code each one cost 123 ns on a Zen 3 VM (against 2 ns
 * for vpinsrq). MobileNetV2's 56x56 depthwise layer took 1.26 ms with it and
 * 0.21 ms without. Nothing kiln generates needs it.
 *
 * Fills t for this host (cpu name and features as LLVM detects them).
 */
void cg_host_target(cg_target *t)
{
	pthread_once(&init_once, init_llvm);
	t->triple = host_triple;
	t->cpu = host_cpu;
	t->features = host_features;
	t->vector_bits = strstr(host_features, "+avx512f") ? 512 : strstr(host_features, "+avx") ? 256 : 128;
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

/* cg_target for a parsed llvm target: the host's, or a named CPU with its -mattr. */
static void llvm_target(const kiln_target *kt, cg_target *t)
{
	cg_host_target(t);
	if (kt && !kt->host) {
		t->cpu = kt->cpu;
		kiln_features(t->own_features, sizeof t->own_features, t->triple, kt->attrs);
		t->features = t->own_features;
	}
	if (kt)
		t->vector_bits = kt->vector_bits;
}

kiln_module *cg_llvm_build(kiln_ctx *ctx, int nfunc, kiln_func *const *funcs, const kiln_target *kt)
{
	cg_target t;
	llvm_target(kt, &t);
	kiln_module *m = cg_module_new(ctx, "llvm", nfunc, funcs);
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
	/* code for a CPU this one cannot run is exported (kiln build -o), never loaded to be called here */
	if (!rc)
		rc = rt_module_add_blob(m, "llvm-obj", obj, obj_size) ? ir_error(ctx, "build: %s", kiln_rt_last_error())
		     : kt && !kiln_target_runs_here(kt)               ? 0
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
	llvm_target(NULL, &t);
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
 * A mkstemps template "DIR/stem-XXXXXXsuffix" in $TMPDIR, or /tmp when it is
 * unset, too long, or holds a character the assembly's .incbin string could
 * not carry.
 */
static char *temp_template(char *buf, size_t n, const char *stem, const char *suffix)
{
	const char *dir = getenv("TMPDIR");
	if (!dir || !*dir || strpbrk(dir, "\"\\\n") ||
	    (size_t)snprintf(buf, n, "%s/%s-XXXXXX%s", dir, stem, suffix) >= n)
		snprintf(buf, n, "/tmp/%s-XXXXXX%s", stem, suffix);
	return buf;
}

/* Writes n bytes to a new temporary file named from tmpl (mkstemps, suffix length sl). */
static int write_temp(kiln_ctx *ctx, char *tmpl, int sl, const void *data, size_t n)
{
	int fd = mkstemps(tmpl, sl);
	if (fd < 0)
		return ir_error(ctx, "export: cannot create a temporary file");
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(fd, (const char *)data + done, n - done);
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	close(fd);
	if (done != n) {
		unlink(tmpl);
		return ir_error(ctx, "export: cannot write %s", tmpl);
	}
	return 0;
}

/* Links objb, and extra source files (assembly, C), into the shared library path. */
static int link_shared_with(kiln_ctx *ctx, const rt_blob *objb, const char *path, int nextra, char **extra)
{
	char obj[512];
	if (write_temp(ctx, temp_template(obj, sizeof obj, "kiln-export", ".o"), 2, objb->data, objb->size))
		return -1;
	Dl_info info;
	char rt[4096] = "";
	if (dladdr((void *)kiln_parallel_for, &info) && info.dli_fname)
		snprintf(rt, sizeof rt, "%s", info.dli_fname);
	const char *cc = getenv("CC") ? getenv("CC") : "cc";
	char *argv[16];
	int n = 0;
	argv[n++] = (char *)cc;
	argv[n++] = "-shared";
	argv[n++] = "-fPIC";
	argv[n++] = "-o";
	argv[n++] = (char *)path;
	argv[n++] = obj;
	for (int i = 0; i < nextra && n < 12; i++)
		argv[n++] = extra[i];
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

/*
 * Links object code into a shared library at path with the system's cc. The
 * library needs libkiln_runtime (parallel loops, workspaces) by its soname
 * and carries no RUNPATH: a program that loads it has the runtime already,
 * or finds an installed one the usual way, never this build's folder.
 */
static int link_shared(kiln_ctx *ctx, const rt_blob *objb, const char *path)
{
	return link_shared_with(ctx, objb, path, 0, NULL);
}

/*
 * A model's library: its whole container (plan, weights) as a read-only
 * data symbol the runtime prefers to the metadata, and a plain C entry
 * point, int model_run(const float *input, float *output), that loads the
 * model from the library it lives in once and runs it (inputs and outputs
 * in order, packed one after the other).
 */
static int link_model(kiln_ctx *ctx, const kiln_module *m, const rt_blob *objb, const char *path)
{
	uint8_t *data;
	size_t size;
	if (rt_module_serialize_data(m, &data, &size))
		return ir_error(ctx, "export: %s", kiln_rt_last_error());
	char bin[512], as[512], c[512];
	temp_template(as, sizeof as, "kiln-model", ".s");
	temp_template(c, sizeof c, "kiln-model", ".c");
	int rc = write_temp(ctx, temp_template(bin, sizeof bin, "kiln-model", ".bin"), 4, data, size);
	free(data);
	if (rc)
		return -1;
	char text[8192];
	int len = snprintf(text, sizeof text,
	                   "\t.section .rodata\n\t.p2align 6\n\t.globl %s\n%s:\n\t.incbin \"%s\"\n"
	                   "\t.p2align 3\n\t.globl %s\n%s:\n\t.quad %zu\n\t.section .note.GNU-stack,\"\",@progbits\n",
	                   RT_DATA_SYMBOL, RT_DATA_SYMBOL, bin, RT_DATA_SIZE_SYMBOL, RT_DATA_SIZE_SYMBOL, size);
	rc = write_temp(ctx, as, 2, text, (size_t)len);
	if (!rc) {
		len = snprintf(text, sizeof text,
		               "/* model_run: the exported model as one plain C call (written by kiln_export_library) */\n"
		               "#define _GNU_SOURCE\n#include <dlfcn.h>\n#include <pthread.h>\n#include <stddef.h>\n"
		               "#include <stdint.h>\n#include <string.h>\n"
		               "typedef struct kiln_model kiln_model;\n"
		               "/* kiln_array begins with its data pointer (kiln/runtime.h) */\n"
		               "typedef struct { void *data; } kiln_array_head;\n"
		               "extern kiln_model *kiln_model_load(const char *);\n"
		               "extern int kiln_model_num_inputs(const kiln_model *), kiln_model_num_outputs(const kiln_model *);\n"
		               "extern int kiln_model_set_input_data(kiln_model *, int, const void *, size_t);\n"
		               "extern int kiln_model_run(kiln_model *);\n"
		               "extern const kiln_array_head *kiln_model_get_output(const kiln_model *, int);\n"
		               "extern size_t kiln_model_io_bytes(const kiln_model *, int output, int i);\n"
		               "static kiln_model *model;\nstatic pthread_once_t once = PTHREAD_ONCE_INIT;\n"
		               "/* one model, one set of buffers: callers take turns */\n"
		               "static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;\n"
		               "static void load(void) {\n\tDl_info d;\n"
		               "\tif (dladdr((void *)load, &d) && d.dli_fname)\n\t\tmodel = kiln_model_load(d.dli_fname);\n}\n"
		               "static int run(const float *input, float *output) {\n"
		               "\tconst char *in = (const char *)input;\n"
		               "\tfor (int i = 0; i < kiln_model_num_inputs(model); i++) {\n"
		               "\t\tsize_t n = kiln_model_io_bytes(model, 0, i);\n"
		               "\t\tif (kiln_model_set_input_data(model, i, in, n))\n\t\t\treturn -1;\n\t\tin += n;\n\t}\n"
		               "\tif (kiln_model_run(model))\n\t\treturn -1;\n"
		               "\tchar *out = (char *)output;\n"
		               "\tfor (int i = 0; i < kiln_model_num_outputs(model); i++) {\n"
		               "\t\tsize_t n = kiln_model_io_bytes(model, 1, i);\n"
		               "\t\tmemcpy(out, kiln_model_get_output(model, i)->data, n);\n\t\tout += n;\n\t}\n"
		               "\treturn 0;\n}\n"
		               "int model_run(const float *input, float *output) {\n"
		               "\tpthread_once(&once, load);\n\tif (!model)\n\t\treturn -1;\n"
		               "\tpthread_mutex_lock(&lock);\n\tint rc = run(input, output);\n"
		               "\tpthread_mutex_unlock(&lock);\n\treturn rc;\n}\n");
		rc = write_temp(ctx, c, 2, text, (size_t)len);
	}
	char *extra[] = {as, c, "-lpthread"};
	if (!rc)
		rc = link_shared_with(ctx, objb, path, 3, extra);
	unlink(bin), unlink(as), unlink(c);
	return rc;
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
	return rt_module_blob(m, "graph") ? link_model(ctx, m, objb, path) : link_shared(ctx, objb, path);
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
	char so[512];
	int fd = mkstemps(temp_template(so, sizeof so, "kiln-save", ".so"), 3);
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
