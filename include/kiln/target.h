/*
 * kiln targets: what a target string names and what its machine can do.
 *
 *   "llvm"                         this host's CPU, as LLVM detects it
 *   "llvm -mcpu=znver3"            another x86-64 CPU (its vector width and FMA from the name)
 *   "llvm -mcpu=x86-64 -mattr=+avx2,+fma"   features added to (or, with -, taken from) a CPU
 *   "wasm", "opencl", "webgl", "webgpu", "webgpu-cpu"
 *
 * Default schedules size their vectors and register tiles from the
 * description, never from a fixed ISA: a 16-register AVX2 host gets tiles
 * that fit 16 registers.
 */
#ifndef KILN_TARGET_H
#define KILN_TARGET_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { KILN_LLVM, KILN_WASM, KILN_OPENCL, KILN_WEBGL, KILN_WEBGPU } kiln_target_kind;

typedef struct {
	kiln_target_kind kind;
	char name[16];      /* "llvm", "wasm", ... ("webgpu-cpu": webgpu with emulated set) */
	char cpu[64];       /* llvm: the CPU code is generated for (the host's when not given) */
	char attrs[256];    /* llvm: -mattr as given ("" for the CPU's own features) */
	bool host;          /* llvm: this machine's CPU, features as detected */
	int vector_bits;    /* the SIMD width f32 code vectorizes to */
	int vector_regs;    /* architectural vector registers */
	bool fma;           /* fused multiply-add in vector registers */
	bool emulated;      /* webgpu-cpu: an adapter that is a CPU underneath */
	int cores;          /* llvm: online cores here (0: unknown) */
	int64_t l1d_bytes;  /* llvm: per-core data cache (0: unknown) */
	int64_t l2_bytes;
	/* GPU kinds: what every device of the kind launches (one may grant more):
	 * threads and shared-memory bytes per block, blocks per grid dimension */
	int max_threads;
	int64_t shared_bytes, max_grid;
} kiln_target;

/* Parses a target string; 0, or -1 with a message in err. */
int kiln_target_parse(const char *text, kiln_target *t, char *err, int errlen);
/* f32 lanes of one vector register. */
static inline int kiln_target_lanes(const kiln_target *t) { return t->vector_bits / 32; }
/* One line describing t ("llvm -mcpu=znver4: 512-bit vectors, 32 registers, FMA, 2 cores, ..."). */
const char *kiln_target_describe(const kiln_target *t, char *buf, int n);
/* Whether code for t can run on this machine's CPU (llvm; other kinds: true). */
bool kiln_target_runs_here(const kiln_target *t);

#ifdef __cplusplus
}
#endif
#endif
