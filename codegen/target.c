/*
 * target.c — target strings into descriptions (include/kiln/target.h): the
 * host's CPU as LLVM detects it, a named x86-64 CPU, or a web / GPU kind.
 */
#include <llvm-c/TargetMachine.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln/target.h"

/* Feature sets several CPUs share (LLVM's names), for what a host must have to run their code. */
#define V2 "+sse4.2,+popcnt"
#define V3 V2 ",+avx,+avx2,+fma,+bmi,+bmi2,+movbe,+f16c,+lzcnt"
#define V4 V3 ",+avx512f,+avx512bw,+avx512cd,+avx512dq,+avx512vl"
#define ICL V4 ",+avx512vbmi,+avx512vbmi2,+avx512vnni,+gfni,+vaes,+vpclmulqdq"
#define ZN1 V3 ",+sse4a,+clzero,+adx,+rdseed"

/*
 * x86-64 CPUs by the widest vectors they run well and FMA (LLVM's -mcpu
 * names), with the features a host needs to run code built for them (the
 * ones codegen may use; a subset of each CPU's full list).
 */
static const struct {
	const char *name;
	int bits;
	bool fma;
	const char *needs;
} cpus[] = {
	{"x86-64", 128, false, ""},          {"x86-64-v2", 128, false, V2},     {"x86-64-v3", 256, true, V3},
	{"x86-64-v4", 512, true, V4},        {"nehalem", 128, false, V2},       {"westmere", 128, false, V2},
	{"sandybridge", 256, false, V2 ",+avx"}, {"ivybridge", 256, false, V2 ",+avx,+f16c"},
	{"haswell", 256, true, V3},          {"broadwell", 256, true, V3 ",+adx,+rdseed"},
	{"skylake", 256, true, V3 ",+adx,+rdseed,+clflushopt"},
	{"alderlake", 256, true, V3 ",+adx,+rdseed,+gfni,+vaes,+avxvnni"},
	{"raptorlake", 256, true, V3 ",+adx,+rdseed,+gfni,+vaes,+avxvnni"},
	{"meteorlake", 256, true, V3 ",+adx,+rdseed,+gfni,+vaes,+avxvnni"},
	{"skylake-avx512", 512, true, V4 ",+adx,+rdseed,+clflushopt"},
	{"cascadelake", 512, true, V4 ",+avx512vnni"},
	{"cooperlake", 512, true, V4 ",+avx512vnni,+avx512bf16"},
	{"icelake-client", 512, true, ICL},  {"icelake-server", 512, true, ICL}, {"tigerlake", 512, true, ICL},
	{"rocketlake", 512, true, ICL},      {"sapphirerapids", 512, true, ICL ",+avx512bf16,+avx512fp16,+amx-tile"},
	{"emeraldrapids", 512, true, ICL ",+avx512bf16,+avx512fp16,+amx-tile"},
	{"graniterapids", 512, true, ICL ",+avx512bf16,+avx512fp16,+amx-tile"},
	{"btver2", 256, false, V2 ",+avx,+sse4a"}, {"bdver4", 256, true, V2 ",+avx,+avx2,+fma,+sse4a,+xop"},
	{"znver1", 256, true, ZN1},          {"znver2", 256, true, ZN1 ",+clwb"},
	{"znver3", 256, true, ZN1 ",+clwb,+vaes,+vpclmulqdq"},
	{"znver4", 512, true, ZN1 ",+clwb,+vaes,+vpclmulqdq" ",+avx512f,+avx512bw,+avx512cd,+avx512dq,+avx512vl,+avx512vnni,+avx512bf16,+gfni"},
	{"znver5", 512, true, ZN1 ",+clwb,+vaes,+vpclmulqdq" ",+avx512f,+avx512bw,+avx512cd,+avx512dq,+avx512vl,+avx512vnni,+avx512bf16,+gfni"},
};

static bool has_feature(const char *list, const char *f)
{
	size_t n = strlen(f);
	for (const char *p = list; (p = strstr(p, f)); p += n)
		if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == 0))
			return true;
	return false;
}

/* Vector width, registers and FMA from an LLVM feature list ("+avx2,-avx512f,..."). */
static void from_features(kiln_target *t, const char *f)
{
	if (has_feature(f, "+avx512f"))
		t->vector_bits = 512, t->vector_regs = 32;
	else if (has_feature(f, "-avx512f") && t->vector_bits > 256)
		t->vector_bits = 256, t->vector_regs = 16;
	if (t->vector_bits < 256 && (has_feature(f, "+avx") || has_feature(f, "+avx2")))
		t->vector_bits = 256;
	if (has_feature(f, "-avx")) /* LLVM drops what builds on it too: AVX2, FMA, AVX-512 */
		t->vector_bits = 128, t->vector_regs = 16, t->fma = false;
	if (has_feature(f, "+fma") || has_feature(f, "+avx512f"))
		t->fma = true;
	if (has_feature(f, "-fma"))
		t->fma = false;
	if (has_feature(f, "+neon"))
		t->vector_bits = 128, t->vector_regs = 32, t->fma = true;
}

static char *host_name, *host_feats;
static pthread_once_t host_once = PTHREAD_ONCE_INIT;

/* LLVM detects these once per process; they stay for its lifetime. */
static void detect_host(void)
{
	host_name = LLVMGetHostCPUName();
	host_feats = LLVMGetHostCPUFeatures();
}

static const char *host_features(void)
{
	pthread_once(&host_once, detect_host);
	return host_feats;
}

static void host_cpu(kiln_target *t)
{
	const char *features = host_features();
	snprintf(t->cpu, sizeof t->cpu, "%s", host_name);
	t->host = true;
	t->vector_bits = 128;
	t->vector_regs = 16;
	from_features(t, features);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	t->cores = n > 0 ? (int)n : 0;
#ifdef _SC_LEVEL1_DCACHE_SIZE
	long l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE), l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
	t->l1d_bytes = l1 > 0 ? l1 : 0;
	t->l2_bytes = l2 > 0 ? l2 : 0;
#endif
}

int kiln_target_parse(const char *text, kiln_target *t, char *err, int errlen)
{
	memset(t, 0, sizeof *t);
	if (!text || !*text)
		return snprintf(err, (size_t)errlen, "no target given"), -1;
	char buf[512];
	if (strlen(text) >= sizeof buf)
		return snprintf(err, (size_t)errlen, "target string longer than %zu bytes", sizeof buf - 1), -1;
	snprintf(buf, sizeof buf, "%s", text);
	char *save = NULL, *kind = strtok_r(buf, " ", &save);
	/* WebGL2: no shared memory, a fragment per element of textures up to 4096 x 4096; WebGPU's
	 * default limits (grids past 65535 workgroups a dimension are folded by codegen/wgsl) */
	static const struct {
		const char *name;
		kiln_target_kind kind;
		int bits, threads;
		int64_t shared, grid;
	} kinds[] = {{"llvm", KILN_LLVM, 0, 0, 0, 0},
	             {"wasm", KILN_WASM, 128, 0, 0, 0},
	             {"opencl", KILN_OPENCL, 128, 1024, 48 * 1024, 0x7fffffff},
	             {"webgl", KILN_WEBGL, 128, 1024, 0, 4096 * 4096},
	             {"webgpu", KILN_WEBGPU, 128, 256, 16 * 1024, 0x7fffffff},
	             {"webgpu-cpu", KILN_WEBGPU, 128, 256, 16 * 1024, 0x7fffffff}};
	size_t k = 0;
	while (k < sizeof kinds / sizeof *kinds && (!kind || strcmp(kind, kinds[k].name)))
		k++;
	if (k == sizeof kinds / sizeof *kinds)
		return snprintf(err, (size_t)errlen,
		                "unknown target '%s' (llvm, wasm, opencl, webgl, webgpu, webgpu-cpu; llvm takes -mcpu= and "
		                "-mattr=)", kind ? kind : text), -1;
	t->kind = kinds[k].kind;
	snprintf(t->name, sizeof t->name, "%s", kinds[k].kind == KILN_WEBGPU ? "webgpu" : kinds[k].name);
	t->emulated = !strcmp(kinds[k].name, "webgpu-cpu");
	/* V8 and browsers give wasm 16 XMM registers of 128 bits; GPU kinds vectorize to float4 */
	t->vector_bits = kinds[k].bits;
	t->vector_regs = t->kind == KILN_WASM ? 16 : 0;
	t->max_threads = kinds[k].threads;
	t->shared_bytes = kinds[k].shared;
	t->max_grid = kinds[k].grid;
	const char *mcpu = NULL, *mattr = NULL;
	for (char *opt; (opt = strtok_r(NULL, " ", &save));) {
		if (t->kind != KILN_LLVM)
			return snprintf(err, (size_t)errlen, "target '%s' takes no options ('%s')", kinds[k].name, opt), -1;
		if (!strncmp(opt, "-mcpu=", 6) && opt[6])
			mcpu = opt + 6;
		else if (!strncmp(opt, "-mattr=", 7) && opt[7])
			mattr = opt + 7;
		else
			return snprintf(err, (size_t)errlen, "unknown llvm target option '%s' (-mcpu=NAME, -mattr=+f,-g)", opt), -1;
	}
	if (t->kind != KILN_LLVM)
		return 0;
	host_cpu(t);
	if (mcpu) {
		/* a CPU named explicitly is that CPU as the table describes it, even when it is
		 * this host's name (valgrind's synthetic CPU calls itself one) */
		size_t c = 0;
		while (c < sizeof cpus / sizeof *cpus && strcmp(cpus[c].name, mcpu))
			c++;
		if (c == sizeof cpus / sizeof *cpus)
			return snprintf(err, (size_t)errlen, "unknown CPU '%s' (x86-64 names LLVM knows, e.g. haswell, znver3, "
			                                    "skylake-avx512, znver4, x86-64-v3)", mcpu), -1;
		snprintf(t->cpu, sizeof t->cpu, "%s", mcpu);
		t->host = false;
		t->vector_bits = cpus[c].bits;
		t->vector_regs = cpus[c].bits == 512 ? 32 : 16;
		t->fma = cpus[c].fma;
		/* its caches are not this host's: unknown (the forms sized by them assume 32 KiB of L1) */
		t->l1d_bytes = t->l2_bytes = 0;
	}
	if (mattr) {
		if (strlen(mattr) >= sizeof t->attrs)
			return snprintf(err, (size_t)errlen, "-mattr longer than %zu bytes", sizeof t->attrs - 1), -1;
		for (const char *p = mattr; *p; p++)
			if (!(*p == '+' || *p == '-' || *p == ',' || *p == '.' || *p == '_' || (*p >= 'a' && *p <= 'z') ||
			      (*p >= '0' && *p <= '9')))
				return snprintf(err, (size_t)errlen, "-mattr: '%c' in '%s' (a list like +avx2,-avx512f)", *p, mattr),
				       -1;
		snprintf(t->attrs, sizeof t->attrs, "%s", mattr);
		t->host = false;
		from_features(t, mattr);
	}
	return 0;
}

const char *kiln_target_describe(const kiln_target *t, char *buf, int n)
{
	if (t->kind != KILN_LLVM) {
		snprintf(buf, (size_t)n, "%s%s: %d-bit vectors", t->name, t->emulated ? " (emulated adapter)" : "",
		         t->vector_bits);
		return buf;
	}
	snprintf(buf, (size_t)n, "llvm -mcpu=%s%s%s%s: %d-bit vectors, %d registers%s, %d cores, L1d %lld KiB, L2 %lld KiB",
	         t->cpu, t->attrs[0] ? " -mattr=" : "", t->attrs, t->host ? " (this host)" : "", t->vector_bits,
	         t->vector_regs, t->fma ? ", FMA" : "", t->cores, (long long)t->l1d_bytes / 1024,
	         (long long)t->l2_bytes / 1024);
	return buf;
}

/* Whether the host has every +feature of list. */
static bool host_has_all(const char *list)
{
	char buf[1024];
	snprintf(buf, sizeof buf, "%s", list);
	char *save = NULL;
	for (char *f = strtok_r(buf, ",", &save); f; f = strtok_r(NULL, ",", &save))
		if (f[0] == '+' && !has_feature(host_features(), f))
			return false;
	return true;
}

bool kiln_target_runs_here(const kiln_target *t)
{
	if (t->kind != KILN_LLVM || t->host)
		return true;
	kiln_target h = {0};
	host_cpu(&h);
	if (t->vector_bits > h.vector_bits || (t->fma && !h.fma))
		return false;
	/* what the named CPU implies, and every feature the target adds */
	for (size_t c = 0; c < sizeof cpus / sizeof *cpus; c++)
		if (!strcmp(cpus[c].name, t->cpu) && !host_has_all(cpus[c].needs))
			return false;
	return host_has_all(t->attrs);
}
