/*
 * wasm.c — the wasm target: the CPU target's LLVM IR compiled for wasm32
 * with 128-bit SIMD, linked by wasm-ld-19 into a kernel binary.
 *
 * A kernel binary imports its memory (the host's: the web runtime's heap,
 * or a harness's) and anything it calls (kiln_workspace_alloc/free, libm)
 * from "env", and exports each function, its stack pointer (a host points
 * it into memory it owns before calling) and __heap_base. Two binaries go
 * into the module: "wasm-simd128", and "wasm-relaxed" built with
 * relaxed-simd (its contracted vector mul-adds fused into relaxed_madd),
 * which a host picks when its engine validates it. Parallel
 * loops run serially: wasm kernels run on one thread.
 */
#include <llvm-c/Target.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen.h"
#include "schedule/schedule.h"

static pthread_once_t wasm_once = PTHREAD_ONCE_INIT;

static void init_wasm(void)
{
	LLVMInitializeWebAssemblyTargetInfo();
	LLVMInitializeWebAssemblyTarget();
	LLVMInitializeWebAssemblyTargetMC();
	LLVMInitializeWebAssemblyAsmPrinter();
}

/* The fmul feeding an fadd operand, when both may contract and the sum is its only use. */
static LLVMValueRef contracted_mul(LLVMValueRef v)
{
	if (!LLVMIsAInstruction(v) || LLVMGetInstructionOpcode(v) != LLVMFMul)
		return NULL;
	if (!(LLVMGetFastMathFlags(v) & LLVMFastMathAllowContract))
		return NULL;
	LLVMUseRef u = LLVMGetFirstUse(v);
	return u && !LLVMGetNextUse(u) ? v : NULL;
}

/* Lanes [first, first + n) of v as a vector of n. */
static LLVMValueRef lanes_of(LLVMBuilderRef b, LLVMContextRef c, LLVMValueRef v, unsigned first, unsigned n)
{
	LLVMValueRef mask[64];
	for (unsigned k = 0; k < n; k++)
		mask[k] = LLVMConstInt(LLVMInt32TypeInContext(c), first + k, 0);
	return LLVMBuildShuffleVector(b, v, LLVMGetPoison(LLVMTypeOf(v)), LLVMConstVector(mask, n), "");
}

/* a and b (of n lanes each) side by side. */
static LLVMValueRef concat(LLVMBuilderRef b, LLVMContextRef c, LLVMValueRef x, LLVMValueRef y, unsigned n)
{
	LLVMValueRef mask[64];
	for (unsigned k = 0; k < 2 * n; k++)
		mask[k] = LLVMConstInt(LLVMInt32TypeInContext(c), k, 0);
	return LLVMBuildShuffleVector(b, x, y, LLVMConstVector(mask, 2 * n), "");
}

/* relaxed_madd over 128-bit pieces of a vector of `lanes` (a power-of-two
 * multiple of the piece): the backend splits wide vectors into v128
 * registers anyway, so the shuffles cost nothing. */
static LLVMValueRef madd(LLVMBuilderRef b, LLVMModuleRef mod, LLVMValueRef x, LLVMValueRef y, LLVMValueRef acc,
                         unsigned first, unsigned n, unsigned piece)
{
	LLVMContextRef c = LLVMGetModuleContext(mod);
	if (n > piece) {
		LLVMValueRef lo = madd(b, mod, x, y, acc, first, n / 2, piece);
		LLVMValueRef hi = madd(b, mod, x, y, acc, first + n / 2, n / 2, piece);
		return concat(b, c, lo, hi, n / 2);
	}
	unsigned total = LLVMGetVectorSize(LLVMTypeOf(x));
	LLVMValueRef args[3] = {x, y, acc};
	if (n != total)
		for (int k = 0; k < 3; k++)
			args[k] = lanes_of(b, c, args[k], first, n);
	LLVMTypeRef ty = LLVMTypeOf(args[0]);
	const char *name = "llvm.wasm.relaxed.madd";
	LLVMValueRef fn = LLVMGetIntrinsicDeclaration(mod, LLVMLookupIntrinsicID(name, strlen(name)), &ty, 1);
	return LLVMBuildCall2(b, LLVMGlobalGetValueType(fn), fn, args, 3, "");
}

int cg_wasm_relaxed_madd(LLVMModuleRef mod)
{
	LLVMBuilderRef b = LLVMCreateBuilderInContext(LLVMGetModuleContext(mod));
	int n = 0;
	for (LLVMValueRef f = LLVMGetFirstFunction(mod); f; f = LLVMGetNextFunction(f))
		for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(f); bb; bb = LLVMGetNextBasicBlock(bb))
			for (LLVMValueRef i = LLVMGetFirstInstruction(bb), next; i; i = next) {
				next = LLVMGetNextInstruction(i);
				if (LLVMGetInstructionOpcode(i) != LLVMFAdd || !(LLVMGetFastMathFlags(i) & LLVMFastMathAllowContract))
					continue;
				LLVMTypeRef ty = LLVMTypeOf(i);
				if (LLVMGetTypeKind(ty) != LLVMVectorTypeKind)
					continue;
				LLVMTypeKind el = LLVMGetTypeKind(LLVMGetElementType(ty));
				unsigned lanes = LLVMGetVectorSize(ty), piece = el == LLVMFloatTypeKind ? 4 : el == LLVMDoubleTypeKind ? 2 : 0;
				if (!piece || lanes < piece || lanes > 64 || lanes % piece || (lanes & (lanes - 1)))
					continue;
				LLVMValueRef x = LLVMGetOperand(i, 0), y = LLVMGetOperand(i, 1);
				LLVMValueRef mul = contracted_mul(x), acc = y;
				if (!mul) {
					mul = contracted_mul(y);
					acc = x;
				}
				if (!mul)
					continue;
				LLVMPositionBuilderBefore(b, i);
				LLVMValueRef r = madd(b, mod, LLVMGetOperand(mul, 0), LLVMGetOperand(mul, 1), acc, 0, lanes, piece);
				LLVMReplaceAllUsesWith(i, r);
				LLVMInstructionEraseFromParent(i);
				LLVMInstructionEraseFromParent(mul);
				n++;
			}
	LLVMDisposeBuilder(b);
	return n;
}

static const char *const variants[][2] = {
	{"wasm-simd128", "+simd128,+bulk-memory,+mutable-globals,+sign-ext,+nontrapping-fptoint"},
	{"wasm-relaxed", "+simd128,+relaxed-simd,+bulk-memory,+mutable-globals,+sign-ext,+nontrapping-fptoint"},
};

static int read_file(const char *path, uint8_t **data, size_t *size)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	*data = n > 0 ? malloc((size_t)n) : NULL;
	int ok = *data && fread(*data, 1, (size_t)n, f) == (size_t)n;
	fclose(f);
	if (!ok) {
		free(*data);
		return -1;
	}
	*size = (size_t)n;
	return 0;
}

/* Links one object into a kernel binary exporting every function. */
static int link_wasm(kiln_ctx *ctx, int nfunc, kiln_func *const *funcs, const uint8_t *obj, size_t size, uint8_t **out,
                     size_t *out_size)
{
	char in[] = "/tmp/kiln-wasm-XXXXXX.o", res[] = "/tmp/kiln-wasm-XXXXXX.wasm";
	int fd = mkstemps(in, 2);
	if (fd < 0)
		return ir_error(ctx, "wasm: cannot create a temporary file");
	ssize_t w = write(fd, obj, size);
	close(fd);
	int rfd = mkstemps(res, 5);
	if (w != (ssize_t)size || rfd < 0) {
		unlink(in);
		if (rfd >= 0) {
			close(rfd);
			unlink(res);
		}
		return ir_error(ctx, "wasm: cannot write a temporary file");
	}
	close(rfd);
	const char *ld = getenv("KILN_WASM_LD") ? getenv("KILN_WASM_LD") : "wasm-ld-19";
	char **argv = calloc((size_t)nfunc + 16, sizeof *argv);
	char **exports = calloc((size_t)nfunc, sizeof *exports);
	int n = 0;
	argv[n++] = (char *)ld;
	argv[n++] = "--no-entry";
	argv[n++] = "--import-memory";
	argv[n++] = "--allow-undefined"; /* the host provides the runtime's and libm's functions */
	argv[n++] = "--export=__stack_pointer";
	argv[n++] = "--export=__heap_base";
	argv[n++] = "-O2";
	argv[n++] = "-z"; /* buffers up to 256 KiB live on the stack (codegen.c) */
	argv[n++] = "stack-size=1048576";
	for (int i = 0; i < nfunc; i++) {
		size_t len = strlen(funcs[i]->name) + 16;
		exports[i] = malloc(len);
		snprintf(exports[i], len, "--export=%s", funcs[i]->name);
		argv[n++] = exports[i];
	}
	argv[n++] = "-o";
	argv[n++] = res;
	argv[n++] = in;
	argv[n] = NULL;
	int st = cg_run(argv);
	for (int i = 0; i < nfunc; i++)
		free(exports[i]);
	free(exports);
	free(argv);
	unlink(in);
	int rc = 0;
	if (st != 0)
		rc = ir_error(ctx, "wasm: '%s' failed with status %d (install lld-19, or set KILN_WASM_LD)", ld, st);
	else if (read_file(res, out, out_size))
		rc = ir_error(ctx, "wasm: cannot read the linked binary %s", res);
	unlink(res);
	return rc;
}

kiln_module *cg_wasm_build(kiln_ctx *ctx, int nfunc, kiln_func *const *funcs)
{
	pthread_once(&wasm_once, init_wasm);
	kiln_module *m = cg_module_new(ctx, "wasm", nfunc, funcs);
	if (!m)
		return NULL;
	int rc = 0;
	for (size_t v = 0; v < sizeof variants / sizeof *variants && !rc; v++) {
		cg_target t = {.triple = "wasm32-unknown-unknown", .cpu = "generic", .features = variants[v][1], .vector_bits = 128,
		               .wasm = true, .relaxed_madd = v == 1};
		LLVMContextRef c = LLVMContextCreate();
		LLVMModuleRef mod = LLVMModuleCreateWithNameInContext("kiln", c);
		uint8_t *obj = NULL, *bin = NULL;
		size_t obj_size = 0, bin_size = 0;
		char *ir = NULL;
		rc = cg_llvm_emit(ctx, c, mod, &t, nfunc, funcs);
		if (!rc)
			rc = cg_llvm_compile(ctx, &t, mod, &obj, &obj_size, &ir);
		LLVMDisposeMessage(ir);
		LLVMDisposeModule(mod);
		LLVMContextDispose(c);
		if (!rc)
			rc = link_wasm(ctx, nfunc, funcs, obj, obj_size, &bin, &bin_size);
		if (!rc && rt_module_add_blob(m, variants[v][0], bin, bin_size))
			rc = ir_error(ctx, "build: %s", kiln_rt_last_error());
		free(obj);
		free(bin);
	}
	if (rc) {
		kiln_module_free(m);
		return NULL;
	}
	return m;
}
