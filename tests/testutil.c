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
#include "testutil.h"

static int write_bytes(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	int ok = fwrite(data, 1, n, f) == n;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/*
 * A wasm module runs in node (tests/wasm_call.js): the arrays go to files in
 * a fresh folder with the kernel binaries, and the outputs come back.
 */
static int call_in_node(kiln_module *m, const char *fn, kiln_array **arr, int nargs, const bool *is_output)
{
	char dir[] = "/tmp/kiln-node-XXXXXX", path[4200];
	if (!mkdtemp(dir))
		return fprintf(stderr, "cannot create a temporary folder\n"), -1;
	static const char *variants[] = {"wasm-relaxed", "wasm-simd128"};
	const char *order = getenv("KILN_WASM_VARIANT"); /* force one of them */
	int rc = 0;
	char json[8192];
	size_t k = (size_t)snprintf(json, sizeof json, "{\"func\": \"%s\", \"variants\": [", fn);
	int nv = 0;
	for (int v = 0; v < 2 && !rc; v++) {
		if (order && strcmp(order, variants[v]))
			continue;
		const rt_blob *b = rt_module_blob(m, variants[v]);
		snprintf(path, sizeof path, "%s/%s.wasm", dir, variants[v]);
		rc = !b || write_bytes(path, b->data, b->size);
		k += (size_t)snprintf(json + k, sizeof json - k, "%s\"%s.wasm\"", nv++ ? ", " : "", variants[v]);
	}
	k += (size_t)snprintf(json + k, sizeof json - k, "], \"args\": [");
	for (int i = 0; i < nargs && !rc; i++) {
		size_t n = (size_t)kiln_array_numel(arr[i]) * kiln_dtype_bytes(arr[i]->dtype);
		snprintf(path, sizeof path, "%s/a%d.bin", dir, i);
		rc = write_bytes(path, arr[i]->data, n);
		k += (size_t)snprintf(json + k, sizeof json - k, "%s{\"file\": \"a%d.bin\", \"bytes\": %zu, \"output\": %s}",
		                      i ? ", " : "", i, n, is_output[i] ? "true" : "false");
	}
	snprintf(json + k, sizeof json - k, "]}\n");
	snprintf(path, sizeof path, "%s/call.json", dir);
	if (rc || write_bytes(path, json, strlen(json))) {
		fprintf(stderr, "cannot write the call into %s\n", dir);
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		execlp("node", "node", KILN_TESTS_DIR "/wasm_call.js", dir, (char *)NULL);
		_exit(127);
	}
	int st = -1;
	if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "node %s/wasm_call.js %s failed (status %d)\n", KILN_TESTS_DIR, dir, st);
		return -1;
	}
	for (int i = 0; i < nargs && !rc; i++) {
		if (!is_output[i])
			continue;
		size_t n = (size_t)kiln_array_numel(arr[i]) * kiln_dtype_bytes(arr[i]->dtype);
		snprintf(path, sizeof path, "%s/a%d.bin", dir, i);
		FILE *f = fopen(path, "rb");
		rc = !f || fread(arr[i]->data, 1, n, f) != n;
		if (f)
			fclose(f);
	}
	if (!rc) { /* what this function and wasm_call.js wrote */
		const char *names[] = {"wasm-relaxed.wasm", "wasm-simd128.wasm", "call.json", "used.txt"};
		for (int i = 0; i < 4 + nargs; i++) {
			if (i < 4)
				snprintf(path, sizeof path, "%s/%s", dir, names[i]);
			else
				snprintf(path, sizeof path, "%s/a%d.bin", dir, i - 4);
			unlink(path);
		}
		rmdir(dir);
	}
	return rc ? (fprintf(stderr, "cannot read the outputs back from %s\n", dir), -1) : 0;
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

double tu_check(kiln_ctx *ctx, kiln_schedule *s, int nargs, kiln_tensor *const *args, uint64_t seed)
{
	return tu_check_target(ctx, s, nargs, args, seed, "llvm");
}

double tu_check_target(kiln_ctx *ctx, kiln_schedule *s, int nargs, kiln_tensor *const *args, uint64_t seed,
                       const char *target)
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
	kiln_array *arr[64], *ins[64];
	kiln_tensor *phs[64];
	int nin = 0;
	for (int i = 0; i < nargs; i++) {
		kiln_dtype t = kiln_tensor_dtype(args[i]);
		arr[i] = kiln_array_empty(kiln_tensor_ndim(args[i]), kiln_tensor_shape(args[i]), t);
		bool is_input = kiln_tensor_is_placeholder(args[i]);
		if (is_input) {
			/* variances must be positive; everything else spans both signs */
			if (t.code == KILN_FLOAT && !strcmp(kiln_tensor_name(args[i]), "var"))
				kiln_array_fill_random(arr[i], seed + (uint64_t)i * 7919, 0.5, 1.5);
			else if (t.code == KILN_FLOAT)
				kiln_array_fill_random(arr[i], seed + (uint64_t)i * 7919, -1, 1);
			else
				kiln_array_fill_random(arr[i], seed + (uint64_t)i * 7919, -10, 10);
			ins[nin] = arr[i];
			phs[nin++] = args[i];
		}
	}
	double maxerr = 0;
	bool is_output[64];
	for (int i = 0; i < nargs; i++)
		is_output[i] = !kiln_tensor_is_placeholder(args[i]);
	if (!strcmp(target, "wasm")) {
		if (call_in_node(m, "fn", arr, nargs, is_output))
			maxerr = -1;
	} else if (kiln_module_call(m, "fn", arr, nargs)) {
		fprintf(stderr, "call failed: %s\n", kiln_rt_last_error());
		maxerr = -1;
	}
	for (int i = 0; i < nargs && maxerr >= 0; i++) {
		if (kiln_tensor_is_placeholder(args[i]))
			continue;
		kiln_array *want = kiln_array_empty(kiln_tensor_ndim(args[i]), kiln_tensor_shape(args[i]), kiln_tensor_dtype(args[i]));
		if (kiln_eval(ctx, args[i], nin, phs, ins, want)) {
			fprintf(stderr, "oracle failed: %s\n", kiln_error(ctx));
			maxerr = -1;
		} else {
			double atol, rtol;
			tu_tolerance(kiln_tensor_dtype(args[i]), &atol, &rtol);
			int64_t n = kiln_array_numel(want);
			for (int64_t k = 0; k < n; k++) {
				double a = get(arr[i], k), b = get(want, k), err = fabs(a - b);
				if (!(err <= atol + rtol * fabs(b))) {
					fprintf(stderr, "mismatch in %s at flat index %lld: got %.9g, want %.9g\n",
					        kiln_tensor_name(args[i]), (long long)k, a, b);
					maxerr = -1;
					break;
				}
				if (err > maxerr)
					maxerr = err;
			}
		}
		kiln_array_free(want);
	}
	for (int i = 0; i < nargs; i++)
		kiln_array_free(arr[i]);
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
	double err = tu_check_target(ctx, s, o.nargs, o.args, 42, target);
	ck_assert_msg(err >= 0, "%s (%s schedule) on %s does not match the oracle: %s", info->name, what, target,
	              kiln_error(ctx));
	kiln_ctx_free(ctx);
}
