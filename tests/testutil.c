/*
 * testutil.c — build, run on random inputs, compare with the oracle.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kiln/runtime.h"
#include "runtime/rt.h"
#include "schedule/schedule.h"
#include "reference.h"
#include "testutil.h"

int tu_run_suite(Suite *s)
{
	SRunner *r = srunner_create(s);
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed;
}

int tu_write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	int ok = fwrite(data, 1, n, f) == n;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* The files a node call wrote into its folder, removed once it worked. */
typedef struct {
	char dir[32];
	int n;
	char names[80][32];
} node_dir;

static int put_file(node_dir *d, const char *name, const void *data, size_t n)
{
	char path[64];
	snprintf(path, sizeof path, "%s/%s", d->dir, name);
	if (d->n < 80)
		snprintf(d->names[d->n++], sizeof d->names[0], "%s", name);
	return tu_write_file(path, data, n);
}

/* call.json's target-specific part for a wasm module: the kernel binaries. */
static int wasm_files(node_dir *d, const kiln_module *m, char *json, size_t cap)
{
	static const char *variants[] = {"wasm-relaxed", "wasm-simd128"};
	const char *order = getenv("KILN_WASM_VARIANT"); /* force one of them */
	size_t k = (size_t)snprintf(json, cap, "\"variants\": [");
	int nv = 0;
	for (int v = 0; v < 2; v++) {
		if (order && strcmp(order, variants[v]))
			continue;
		const rt_blob *b = rt_module_blob(m, variants[v]);
		char name[32];
		snprintf(name, sizeof name, "%s.wasm", variants[v]);
		if (!b || put_file(d, name, b->data, b->size))
			return -1;
		k += (size_t)snprintf(json + k, cap - k, "%s\"%s\"", nv++ ? ", " : "", name);
	}
	snprintf(json + k, cap - k, "], ");
	return 0;
}

/* ... for a webgpu module: the WGSL source, the launches and their temporaries. */
static int webgpu_files(node_dir *d, const kiln_module *m, const char *fn, char *json, size_t cap)
{
	const rt_blob *b = rt_module_blob(m, "wgsl-src");
	const rt_function *f = rt_module_find(m, fn);
	if (!b || !f || put_file(d, "kernels.wgsl", b->data, b->size))
		return -1;
	size_t k = (size_t)snprintf(json, cap, "\"source\": \"kernels.wgsl\", \"launches\": [");
	for (int l = 0; l < f->nlaunch && k < cap; l++) {
		const rt_launch *ln = &f->launches[l];
		k += (size_t)snprintf(json + k, cap - k, "%s{\"kernel\": \"%s\", \"grid\": [%u, %u, %u], \"block\": [%u, %u, %u], \"args\": [",
		                      l ? ", " : "", ln->kernel, ln->grid[0], ln->grid[1], ln->grid[2], ln->block[0],
		                      ln->block[1], ln->block[2]);
		for (int a = 0; a < ln->nargs && k < cap; a++)
			k += (size_t)snprintf(json + k, cap - k, "%s%d", a ? ", " : "", ln->args[a]);
		k += (size_t)snprintf(json + k, cap - k, "]}");
	}
	k += (size_t)snprintf(json + k, cap - k, "], \"temps\": [");
	for (int t = 0; t < f->ntemp && k < cap; t++)
		k += (size_t)snprintf(json + k, cap - k, "%s%llu", t ? ", " : "", (unsigned long long)f->temp_bytes[t]);
	k += (size_t)snprintf(json + k, cap - k, "], ");
	return k < cap ? 0 : -1;
}

/* What the wasm harness must have run: the forced variant, else the relaxed one (node 20 takes it). */
static int check_used(const char *dir, const char *target)
{
	char path[64], used[64] = "";
	snprintf(path, sizeof path, "%s/used.txt", dir);
	FILE *f = fopen(path, "r");
	if (!f || !fgets(used, sizeof used, f)) {
		if (f)
			fclose(f);
		return fprintf(stderr, "the %s harness did not say what it ran\n", target), -1;
	}
	fclose(f);
	used[strcspn(used, "\n")] = 0;
	char *ext = strstr(used, ".wasm"); /* the harness names the file it ran */
	if (ext)
		*ext = 0;
	const char *want = getenv("KILN_WASM_VARIANT") ? getenv("KILN_WASM_VARIANT") : "wasm-relaxed";
	if (!strcmp(target, "wasm") && strcmp(used, want))
		return fprintf(stderr, "wasm: the harness ran %s, expected %s\n", used, want), -1;
	return 0;
}

/*
 * A wasm or webgpu module runs in node (tests/wasm_call.js, tests/webgpu_call.mjs):
 * the arrays go to files in a fresh folder with the kernels, and the outputs come back.
 */
static int call_in_node(kiln_module *m, const char *fn, kiln_array **arr, int nargs, const bool *is_output)
{
	node_dir d = {"/tmp/kiln-node-XXXXXX", 0, {{0}}};
	char path[64], *json = malloc(1 << 16);
	const size_t cap = 1 << 16;
	bool webgpu = !strcmp(m->target, "webgpu");
	if (!mkdtemp(d.dir))
		return free(json), fprintf(stderr, "cannot create a temporary folder\n"), -1;
	size_t k = (size_t)snprintf(json, cap, "{\"func\": \"%s\", ", fn);
	int rc = webgpu ? webgpu_files(&d, m, fn, json + k, cap - k) : wasm_files(&d, m, json + k, cap - k);
	k += strlen(json + k);
	k += (size_t)snprintf(json + k, cap - k, "\"args\": [");
	for (int i = 0; i < nargs && !rc; i++) {
		size_t n = (size_t)kiln_array_numel(arr[i]) * kiln_dtype_bytes(arr[i]->dtype);
		char name[32];
		snprintf(name, sizeof name, "a%d.bin", i);
		rc = put_file(&d, name, arr[i]->data, n);
		k += (size_t)snprintf(json + k, cap - k, "%s{\"file\": \"%s\", \"bytes\": %zu, \"output\": %s}", i ? ", " : "",
		                      name, n, is_output[i] ? "true" : "false");
	}
	snprintf(json + k, cap - k, "]}\n");
	rc = rc || put_file(&d, "call.json", json, strlen(json));
	free(json);
	if (rc) {
		fprintf(stderr, "cannot write the call into %s\n", d.dir);
		return -1;
	}
	const char *script = webgpu ? KILN_TESTS_DIR "/webgpu_call.mjs" : KILN_TESTS_DIR "/wasm_call.js";
	/* node's stderr goes to a file, shown only when the call fails: Dawn warns
	 * about its limits on every start */
	snprintf(path, sizeof path, "%s/stderr.txt", d.dir);
	snprintf(d.names[d.n < 80 ? d.n++ : 79], sizeof d.names[0], "stderr.txt");
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		if (!freopen(path, "w", stderr))
			_exit(126);
		execlp("node", "node", script, d.dir, (char *)NULL);
		_exit(127);
	}
	int st = -1;
	if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		FILE *e = fopen(path, "r");
		char line[1024];
		while (e && fgets(line, sizeof line, e))
			fputs(line, stderr);
		if (e)
			fclose(e);
		fprintf(stderr, "node %s %s failed (status %d)\n", script, d.dir, st);
		return -1;
	}
	/* every argument comes back, inputs too: they must be unchanged */
	for (int i = 0; i < nargs && !rc; i++) {
		size_t n = (size_t)kiln_array_numel(arr[i]) * kiln_dtype_bytes(arr[i]->dtype);
		snprintf(path, sizeof path, "%s/a%d.bin", d.dir, i);
		FILE *f = fopen(path, "rb");
		rc = !f || fread(arr[i]->data, 1, n, f) != n;
		if (f)
			fclose(f);
	}
	if (rc)
		return fprintf(stderr, "cannot read the outputs back from %s\n", d.dir), -1;
	if (check_used(d.dir, m->target))
		return -1;
	snprintf(d.names[d.n < 80 ? d.n++ : 79], sizeof d.names[0], "used.txt");
	for (int i = 0; i < d.n; i++) {
		snprintf(path, sizeof path, "%s/%s", d.dir, d.names[i]);
		unlink(path);
	}
	rmdir(d.dir);
	return 0;
}

void tu_tolerance(kiln_dtype t, double *atol, double *rtol)
{
	if (t.code != KILN_FLOAT) {
		*atol = 0;
		*rtol = 0;
	} else if (t.bits == 16) {
		*atol = 1e-2;
		*rtol = 1e-2;
	} else if (t.bits == 32) {
		*atol = 1e-4;
		*rtol = 1e-4;
	} else {
		*atol = 1e-10;
		*rtol = 1e-10;
	}
}

static double get(const kiln_array *a, int64_t i)
{
	kiln_dtype t = a->dtype;
	if (t.code == KILN_FLOAT)
		return t.bits == 32 ? ((float *)a->data)[i] : t.bits == 64 ? ((double *)a->data)[i]
		                                                            : (double)((_Float16 *)a->data)[i];
	if (t.code == KILN_BOOL || t.bits == 8)
		return t.code == KILN_UINT || t.code == KILN_BOOL ? ((uint8_t *)a->data)[i] : ((int8_t *)a->data)[i];
	if (t.bits == 16)
		return ((int16_t *)a->data)[i];
	if (t.bits == 32)
		return ((int32_t *)a->data)[i];
	return (double)((int64_t *)a->data)[i];
}

/* Fills placeholder array a (argument i) with random values from seed. */
static void fill_input(kiln_array *a, const kiln_tensor *t, int i, uint64_t seed)
{
	/* variances must be positive; everything else spans both signs */
	if (a->dtype.code == KILN_FLOAT && !strcmp(kiln_tensor_name(t), "var"))
		kiln_array_fill_random(a, seed + (uint64_t)i * 7919, 0.5, 1.5);
	else if (a->dtype.code == KILN_FLOAT)
		kiln_array_fill_random(a, seed + (uint64_t)i * 7919, -1, 1);
	else
		kiln_array_fill_random(a, seed + (uint64_t)i * 7919, -10, 10);
}

int tu_fill_inputs(int nargs, kiln_tensor *const *args, uint64_t seed, kiln_array **arr, kiln_array **ins,
                   kiln_tensor **phs)
{
	int nin = 0;
	for (int i = 0; i < nargs; i++) {
		arr[i] = kiln_array_empty(kiln_tensor_ndim(args[i]), kiln_tensor_shape(args[i]), kiln_tensor_dtype(args[i]));
		if (kiln_tensor_is_placeholder(args[i])) {
			fill_input(arr[i], args[i], i, seed);
			ins[nin] = arr[i];
			phs[nin++] = args[i];
		}
	}
	return nin;
}

double tu_compare(const char *name, const kiln_array *got, const kiln_array *want)
{
	double atol, rtol, maxerr = 0;
	tu_tolerance(want->dtype, &atol, &rtol);
	int64_t n = kiln_array_numel(want);
	for (int64_t k = 0; k < n; k++) {
		double a = get(got, k), b = get(want, k), err = fabs(a - b);
		if (!(err <= atol + rtol * fabs(b))) {
			fprintf(stderr, "mismatch in %s at flat index %lld: got %.9g, want %.9g\n", name, (long long)k, a, b);
			return -1;
		}
		if (err > maxerr)
			maxerr = err;
	}
	return maxerr;
}

static size_t nbytes(const kiln_array *a) { return (size_t)kiln_array_numel(a) * kiln_dtype_bytes(a->dtype); }

#define TU_GUARD 256
#define TU_CANARY 0xC3

kiln_array *tu_guarded_array(int ndim, const int64_t *shape, kiln_dtype dtype)
{
	kiln_array *a = kiln_array_wrap(NULL, ndim, shape, dtype);
	size_t n = nbytes(a), cap = (n + TU_GUARD + 63) & ~(size_t)63;
	a->data = aligned_alloc(64, cap);
	a->owns_data = 1;
	memset((char *)a->data + n, TU_CANARY, cap - n);
	return a;
}

int tu_guard_intact(const char *name, const kiln_array *a)
{
	const unsigned char *g = (const unsigned char *)a->data + nbytes(a);
	for (int b = 0; b < TU_GUARD; b++)
		if (g[b] != TU_CANARY) {
			fprintf(stderr, "the kernel wrote past the end of %s (byte %d of its guard zone)\n", name, b);
			return 0;
		}
	return 1;
}

/*
 * Poison for an output before the kernel runs: NaN for floats, a pattern for
 * integers, so an element the kernel never writes cannot pass as a zero.
 */
static void poison(kiln_array *a)
{
	int64_t n = kiln_array_numel(a);
	kiln_dtype t = a->dtype;
	if (t.code == KILN_FLOAT && t.bits == 32)
		for (int64_t i = 0; i < n; i++)
			((float *)a->data)[i] = NAN;
	else if (t.code == KILN_FLOAT && t.bits == 64)
		for (int64_t i = 0; i < n; i++)
			((double *)a->data)[i] = NAN;
	else if (t.code == KILN_FLOAT && t.bits == 16)
		for (int64_t i = 0; i < n; i++)
			((uint16_t *)a->data)[i] = 0x7e00;
	else
		memset(a->data, 0x5b, nbytes(a));
}

/* Compares got with the reference's doubles; max error or -1 (printed). */
double tu_compare_ref(const char *name, const kiln_array *got, const double *want)
{
	double atol, rtol, maxerr = 0;
	tu_tolerance(got->dtype, &atol, &rtol);
	for (int64_t k = 0; k < kiln_array_numel(got); k++) {
		double a = get(got, k), err = fabs(a - want[k]);
		if (!(err <= atol + rtol * fabs(want[k]))) {
			fprintf(stderr, "%s differs from the independent reference at flat index %lld: got %.9g, want %.9g\n",
			        name, (long long)k, a, want[k]);
			return -1;
		}
		maxerr = err > maxerr ? err : maxerr;
	}
	return maxerr;
}

double tu_check(kiln_ctx *ctx, kiln_schedule *s, int nargs, kiln_tensor *const *args, uint64_t seed)
{
	return tu_check_ref(ctx, s, nargs, args, seed, "llvm", NULL, NULL);
}

double tu_check_target(kiln_ctx *ctx, kiln_schedule *s, int nargs, kiln_tensor *const *args, uint64_t seed,
                       const char *target)
{
	return tu_check_ref(ctx, s, nargs, args, seed, target, NULL, NULL);
}

/* Runs fn of m on target with arr; 0 or -1 (printed). */
static int run_kernel(kiln_module *m, const char *target, int nargs, kiln_tensor *const *args, kiln_array **arr)
{
	bool is_output[64];
	for (int i = 0; i < nargs; i++)
		is_output[i] = !kiln_tensor_is_placeholder(args[i]);
	if (!strcmp(target, "wasm") || !strcmp(target, "webgpu"))
		return call_in_node(m, "fn", arr, nargs, is_output);
	if (kiln_module_call(m, "fn", arr, nargs)) {
		fprintf(stderr, "call failed: %s\n", kiln_rt_last_error());
		return -1;
	}
	return 0;
}

typedef struct {
	const char *op, *attrs;
} registry_ref;

/* The registry operator's independent reference (tests/reference.c). */
static int ref_registry(int nin, const kiln_array *const *ins, const kiln_array *out, double *want, void *user)
{
	registry_ref *r = user;
	char why[256];
	if (ref_eval(r->op, r->attrs, nin, ins, out, want, why, sizeof why)) {
		fprintf(stderr, "%s %s: the reference refused: %s\n", r->op, r->attrs ? r->attrs : "", why);
		return -1;
	}
	return 0;
}

double tu_check_ref(kiln_ctx *ctx, kiln_schedule *s, int nargs, kiln_tensor *const *args, uint64_t seed,
                    const char *target, const char *op, const char *attrs)
{
	registry_ref r = {op, attrs};
	return tu_check_with(ctx, s, nargs, args, seed, target, op ? ref_registry : NULL, &r);
}

double tu_check_with(kiln_ctx *ctx, kiln_schedule *s, int nargs, kiln_tensor *const *args, uint64_t seed,
                     const char *target, tu_ref_fn reference, void *user)
{
	kiln_func *f = kiln_lower(s, "fn", nargs, args, NULL);
	if (!f) {
		fprintf(stderr, "lower failed: %s\n", kiln_error(ctx));
		return -1;
	}
	kiln_module *m = kiln_build(ctx, 1, &f, target);
	if (!m) {
		fprintf(stderr, "build failed: %s\n", kiln_error(ctx));
		return -1;
	}
	/* the device layers check their own buffers' guards and inputs (runtime/opencl.c) */
	setenv("KILN_CHECK_DEVICE", "1", 0);
	kiln_array *arr[64], *ins[64], *want[64] = {0}, *copy[64] = {0};
	kiln_tensor *phs[64];
	int nin = 0;
	double maxerr = 0;
	for (int i = 0; i < nargs; i++) {
		arr[i] = tu_guarded_array(kiln_tensor_ndim(args[i]), kiln_tensor_shape(args[i]), kiln_tensor_dtype(args[i]));
		if (kiln_tensor_is_placeholder(args[i])) {
			fill_input(arr[i], args[i], i, seed);
			copy[i] = kiln_array_empty(arr[i]->ndim, arr[i]->shape, arr[i]->dtype);
			memcpy(copy[i]->data, arr[i]->data, nbytes(arr[i]));
			ins[nin] = copy[i];
			phs[nin++] = args[i];
		} else {
			poison(arr[i]);
		}
	}
	/* the oracle and the reference read pristine copies of the inputs */
	for (int i = 0; i < nargs && maxerr >= 0; i++) {
		if (copy[i])
			continue;
		want[i] = kiln_array_empty(arr[i]->ndim, arr[i]->shape, arr[i]->dtype);
		if (kiln_eval(ctx, args[i], nin, phs, ins, want[i])) {
			fprintf(stderr, "oracle failed: %s\n", kiln_error(ctx));
			maxerr = -1;
		}
	}
	if (maxerr >= 0 && run_kernel(m, target, nargs, args, arr))
		maxerr = -1;
	for (int i = 0; i < nargs && maxerr >= 0; i++) {
		const char *name = kiln_tensor_name(args[i]);
		if (!tu_guard_intact(name, arr[i]))
			maxerr = -1;
		else if (copy[i] && memcmp(copy[i]->data, arr[i]->data, nbytes(arr[i]))) {
			fprintf(stderr, "the kernel changed its input %s\n", name);
			maxerr = -1;
		} else if (want[i]) {
			double err = tu_compare(name, arr[i], want[i]);
			maxerr = err < 0 ? -1 : err > maxerr ? err : maxerr;
		}
	}
	if (reference && maxerr >= 0) {
		/* the independent reference: one output, after the inputs */
		kiln_array *out = arr[nargs - 1];
		double *ref = malloc(sizeof(double) * (size_t)(kiln_array_numel(out) ? kiln_array_numel(out) : 1));
		if (reference(nin, (const kiln_array *const *)ins, out, ref, user)) {
			maxerr = -1;
		} else {
			double err = tu_compare_ref(kiln_tensor_name(args[nargs - 1]), out, ref);
			maxerr = err < 0 ? -1 : err > maxerr ? err : maxerr;
		}
		free(ref);
	}
	for (int i = 0; i < nargs; i++) {
		kiln_array_free(arr[i]);
		kiln_array_free(want[i]);
		kiln_array_free(copy[i]);
	}
	kiln_module_free(m);
	return maxerr;
}

void tu_run_op(const kiln_op_info *info, tu_schedule_fn sched, const char *target, const char *what)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_op_inst o;
	ck_assert_msg(kiln_op_declare(ctx, info, kiln_op_example_rank(info), info->example, "", &o) == 0, "%s: %s",
	              info->name, kiln_error(ctx));
	kiln_tensor *out = o.args[o.nargs - 1];
	kiln_schedule *s = sched(ctx, out);
	ck_assert_msg(s != NULL, "%s: schedule failed: %s", info->name, kiln_error(ctx));
	double err = tu_check_ref(ctx, s, o.nargs, o.args, 42, target, info->name, "");
	ck_assert_msg(err >= 0, "%s (%s schedule) on %s does not match the oracle or the reference: %s", info->name, what, target,
	              kiln_error(ctx));
	kiln_ctx_free(ctx);
}

void tu_run_shape(const char *target, tu_schedule_fn sched, const char *name, int n, const int64_t *shape,
                  const char *attrs)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_op_inst o;
	ck_assert_msg(kiln_op_declare(ctx, kiln_op_find(name), n, shape, attrs, &o) == 0, "%s %s: %s", name, attrs,
	              kiln_error(ctx));
	kiln_schedule *s = sched(ctx, o.args[o.nargs - 1]);
	ck_assert_msg(s != NULL, "%s %s: schedule failed: %s", name, attrs, kiln_error(ctx));
	ck_assert_msg(tu_check_ref(ctx, s, o.nargs, o.args, 7, target, name, attrs) >= 0, "%s %s on %s: %s", name, attrs,
	              target, kiln_error(ctx));
	kiln_ctx_free(ctx);
}

/* The second schedule: producers inlined, the first axis on blockIdx.y, the
 * rest fused into blocks of 32 threads on blockIdx.x / threadIdx.x. */
kiln_schedule *tu_grid2d_schedule(kiln_ctx *ctx, kiln_tensor *out)
{
	kiln_schedule *s = kiln_schedule_create(ctx, 1, &out);
	kiln_stage *o = kiln_stage_of(s, out);
	for (int i = 0; i < s->nstage; i++) {
		kiln_stage *p = s->stages[i];
		if (p != o && p->op->nreduce == 0)
			kiln_compute_inline(p);
	}
	for (int i = 0; i < s->nstage; i++) {
		kiln_stage *p = s->stages[i];
		if (p->attach == ATTACH_INLINE)
			continue;
		int n = p->op->naxis;
		kiln_iter *rest = n > 1 ? kiln_stage_axis(p, 1) : kiln_stage_axis(p, 0);
		for (int d = 2; d < n; d++)
			if (kiln_fuse(p, rest, kiln_stage_axis(p, d), &rest))
				return NULL;
		kiln_iter *bo, *bi;
		if (kiln_split(p, rest, 32, &bo, &bi) || kiln_bind(p, bo, KILN_BLOCK_X) || kiln_bind(p, bi, KILN_THREAD_X))
			return NULL;
		if (n > 1 && kiln_bind(p, kiln_stage_axis(p, 0), KILN_BLOCK_Y))
			return NULL;
	}
	return s;
}

static kiln_expr *wide_index_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	kiln_expr *i = kiln_mod(ctx, kiln_mul(ctx, idx[0], kiln_int(ctx, 3000000)), kiln_int(ctx, 7));
	return KILN_READ(ctx, (kiln_tensor *)user, i);
}

kiln_schedule *tu_wide_index_op(kiln_ctx *ctx, kiln_tensor **X, kiln_tensor **Y)
{
	*X = kiln_placeholder(ctx, "X", 1, (int64_t[]){7}, KILN_F32);
	*Y = kiln_compute(ctx, "Y", 1, (int64_t[]){1000}, wide_index_body, *X);
	return *Y ? tu_grid2d_schedule(ctx, *Y) : NULL;
}

char *tu_lowered_text(kiln_ctx *ctx, kiln_schedule *s, int nargs, kiln_tensor *const *args)
{
	kiln_func *fn = kiln_lower(s, "fn", nargs, args, NULL);
	ck_assert_msg(fn, "%s", kiln_error(ctx));
	char *text = NULL;
	size_t n = 0;
	FILE *out = open_memstream(&text, &n);
	kiln_func_print(fn, out);
	fclose(out);
	return text;
}

char *tu_device_text(kiln_ctx *ctx, kiln_schedule *s, int nargs, kiln_tensor *const *args, const char *target)
{
	kiln_func *fn = s ? kiln_lower(s, "fn", nargs, args, NULL) : NULL;
	ck_assert_msg(fn, "%s", kiln_error(ctx));
	char *text = NULL;
	size_t n = 0;
	FILE *out = open_memstream(&text, &n);
	ck_assert_msg(kiln_device_source(ctx, 1, &fn, target, out) == 0, "%s", kiln_error(ctx));
	fclose(out);
	return text;
}
