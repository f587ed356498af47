/*
 * test_web.c — bundles run through the JS API (web/kiln.mjs) and the
 * Emscripten-built runtime: every operator's bundle (kiln_bundle_write, one
 * module per web target, default schedules) in node on wasm and webgpu
 * (Dawn), and in headless Chromium on wasm, webgpu (SwiftShader) and webgl
 * (WebGL2), each output against the oracle.
 *
 * main() builds the bundles and runs tests/web_run.mjs once per host (one
 * browser for every case); the tests then compare what came back.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kiln/ops.h"
#include "reference.h"
#include "testutil.h"

/* bundle keys; "webgpu-cpu" is WGSL under the schedule for emulated adapters */
static const char *const targets[] = {"webgpu", "webgpu-cpu", "webgl", "wasm"};
#define NTARGET 4
static char root[64] = "/tmp/kiln-web-XXXXXX";

/* A bundle to run: an operator at a shape, with attributes, in folder dir. */
typedef struct {
	const kiln_op_info *info;
	int n;
	int64_t shape[KILN_MAX_DIMS];
	const char *attrs;
	char dir[48];
	double *ref; /* the independent reference's output */
} web_case;
static web_case cases[64];
static int ncases;

/* Beyond every operator's example: shapes that take the GPU schedule's tiled
 * forms (shared memory, barriers; uneven edges), and a pad value that is not 0. */
static const struct {
	const char *op, *dir, *attrs;
	int n;
	int64_t shape[KILN_MAX_DIMS];
} extra[] = {
	{"matmul", "matmul-tiled", "", 3, {97, 130, 45}},
	{"conv2d", "conv2d-tiled", "pad=1", 7, {1, 8, 10, 10, 64, 3, 3}},
	{"pad", "pad-value", "before=1x0x2,after=0x3x1,value=1.5", 3, {2, 5, 6}},
};
static char harness_failed[2][512]; /* why web_run.mjs failed, per host */

/* Reads path into a (which must have its size); -1 if short or missing. */
static int read_into(const char *path, kiln_array *a)
{
	size_t n = (size_t)kiln_array_numel(a) * kiln_dtype_bytes(a->dtype);
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	int ok = fread(a->data, 1, n, f) == n;
	fclose(f);
	return ok ? 0 : -1;
}

static char *slurp(const char *path)
{
	static char buf[2048];
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	return buf;
}

/*
 * The bundle of case i in root/DIR, its inputs (aK.bin), the oracle's
 * outputs (want-aK.bin) and the reference's; its entry goes to json.
 */
static int prepare_case(int i, FILE *json)
{
	web_case *c = &cases[i];
	const kiln_op_info *info = c->info;
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_op_inst o;
	int rc = kiln_op_declare(ctx, info, c->n, c->shape, c->attrs, &o);
	kiln_module *mods[NTARGET] = {0};
	for (int t = 0; t < NTARGET && !rc; t++) {
		kiln_tensor *out = o.args[o.nargs - 1];
		kiln_func *f = kiln_lower(kiln_schedule_for(ctx, targets[t], 1, &out), info->name, o.nargs, o.args, NULL);
		mods[t] = f ? kiln_build(ctx, 1, &f, strcmp(targets[t], "webgpu-cpu") ? targets[t] : "webgpu") : NULL;
		rc = mods[t] ? 0 : -1;
	}
	char dir[128], path[192];
	snprintf(dir, sizeof dir, "%s/%s", root, c->dir);
	rc = rc || kiln_bundle_write_keys(ctx, dir, info->name, NTARGET, mods, targets);
	if (rc)
		fprintf(stderr, "%s: %s\n", c->dir, kiln_error(ctx));
	kiln_array *arr[64], *ins[64];
	kiln_tensor *phs[64];
	bool filled = !rc;
	int nin = filled ? tu_fill_inputs(o.nargs, o.args, 42, arr, ins, phs) : 0;
	fprintf(json, "%s{\"dir\": \"%s\", \"func\": \"%s\", \"args\": [", i ? ",\n" : "", c->dir, info->name);
	for (int a = 0; a < o.nargs && !rc; a++) {
		bool out = !kiln_tensor_is_placeholder(o.args[a]);
		size_t n = (size_t)kiln_array_numel(arr[a]) * kiln_dtype_bytes(arr[a]->dtype);
		if (out && kiln_eval(ctx, o.args[a], nin, phs, ins, arr[a])) {
			fprintf(stderr, "%s: the oracle failed: %s\n", c->dir, kiln_error(ctx));
			rc = -1;
		}
		char why[256];
		if (out && !rc) {
			c->ref = malloc(sizeof(double) * (size_t)kiln_array_numel(arr[a]));
			if (ref_eval(info->name, c->attrs, nin, (const kiln_array *const *)ins, arr[a], c->ref, why,
			             sizeof why)) {
				fprintf(stderr, "%s: the reference refused: %s\n", c->dir, why);
				rc = -1;
			}
		}
		snprintf(path, sizeof path, "%s/%sa%d.bin", dir, out ? "want-" : "", a);
		rc = rc || tu_write_file(path, arr[a]->data, n);
		fprintf(json, "%s{\"file\": \"a%d.bin\", \"output\": %s}", a ? ", " : "", a, out ? "true" : "false");
	}
	fprintf(json, "]}");
	for (int a = 0; filled && a < o.nargs; a++)
		kiln_array_free(arr[a]);
	for (int t = 0; t < NTARGET; t++)
		kiln_module_free(mods[t]);
	kiln_ctx_free(ctx);
	return rc;
}

/* node tests/web_run.mjs root HOST; on failure, why goes to harness_failed[h]. */
static void run_host(int h, const char *host)
{
	char log[128];
	snprintf(log, sizeof log, "%s/%s.log", root, host);
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		if (!freopen(log, "w", stderr))
			_exit(126);
		execlp("node", "node", KILN_TESTS_DIR "/web_run.mjs", root, host, (char *)NULL);
		_exit(127);
	}
	int st = -1;
	if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		const char *text = slurp(log);
		snprintf(harness_failed[h], sizeof harness_failed[h], "web_run.mjs %s failed (status %d): %.400s", host, st,
		         text ? text : "");
	}
}

/* The outputs of case i on backend `backend` in host h against the oracle's and the reference's. */
static void check_case(int i, int h, const char *backend)
{
	static const char *hosts[] = {"node", "chromium"};
	ck_assert_msg(!harness_failed[h][0], "%s", harness_failed[h]);
	web_case *c = &cases[i];
	char path[256];
	snprintf(path, sizeof path, "%s/%s/%s-%s.err", root, c->dir, hosts[h], backend);
	const char *err = slurp(path);
	ck_assert_msg(!err, "%s on %s in %s: %s", c->dir, backend, hosts[h], err);
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_op_inst o;
	ck_assert_int_eq(kiln_op_declare(ctx, c->info, c->n, c->shape, c->attrs, &o), 0);
	kiln_tensor *t = o.args[o.nargs - 1];
	kiln_array *got = kiln_array_empty(kiln_tensor_ndim(t), kiln_tensor_shape(t), kiln_tensor_dtype(t));
	kiln_array *want = kiln_array_empty(kiln_tensor_ndim(t), kiln_tensor_shape(t), kiln_tensor_dtype(t));
	snprintf(path, sizeof path, "%s/%s/want-a%d.bin", root, c->dir, o.nargs - 1);
	ck_assert_msg(!read_into(path, want), "%s: no oracle output %s", c->dir, path);
	snprintf(path, sizeof path, "%s/%s/%s-%s-a%d.bin", root, c->dir, hosts[h], backend, o.nargs - 1);
	ck_assert_msg(!read_into(path, got), "%s on %s in %s: no output %s", c->dir, backend, hosts[h], path);
	ck_assert_msg(tu_compare(kiln_tensor_name(t), got, want) >= 0, "%s on %s in %s does not match the oracle", c->dir,
	              backend, hosts[h]);
	ck_assert_msg(tu_compare_ref(kiln_tensor_name(t), got, c->ref) >= 0,
	              "%s on %s in %s does not match the independent reference", c->dir, backend, hosts[h]);
	kiln_array_free(got);
	kiln_array_free(want);
	kiln_ctx_free(ctx);
}

START_TEST(node_wasm) { check_case(_i, 0, "wasm"); }
END_TEST
START_TEST(node_webgpu) { check_case(_i, 0, "webgpu"); }
END_TEST
START_TEST(chromium_wasm) { check_case(_i, 1, "wasm"); }
END_TEST
START_TEST(chromium_webgpu) { check_case(_i, 1, "webgpu"); }
END_TEST
START_TEST(chromium_webgl) { check_case(_i, 1, "webgl"); }
END_TEST
START_TEST(node_webgpu_cpu) { check_case(_i, 0, "webgpu-cpu"); }
END_TEST
START_TEST(chromium_webgpu_cpu) { check_case(_i, 1, "webgpu-cpu"); }
END_TEST

/* Removes root and what the runs left in it. */
static void clean(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", root);
}

int main(void)
{
	if (!mkdtemp(root)) {
		fprintf(stderr, "cannot create %s: %s\n", root, strerror(errno));
		return 1;
	}
	char path[128];
	snprintf(path, sizeof path, "%s/cases.json", root);
	FILE *json = fopen(path, "w");
	int bad = !json;
	if (json) {
		fprintf(json, "{\"cases\": [\n");
		for (int i = 0; i < kiln_num_ops(); i++) {
			const kiln_op_info *info = kiln_op_at(i);
			web_case *c = &cases[ncases++];
			*c = (web_case){info, kiln_op_example_rank(info), {0}, "", "", NULL};
			memcpy(c->shape, info->example, sizeof(int64_t) * (size_t)c->n);
			snprintf(c->dir, sizeof c->dir, "%s", info->name);
		}
		for (size_t e = 0; e < sizeof extra / sizeof extra[0]; e++) {
			web_case *c = &cases[ncases++];
			*c = (web_case){kiln_op_find(extra[e].op), extra[e].n, {0}, extra[e].attrs, "", NULL};
			memcpy(c->shape, extra[e].shape, sizeof c->shape);
			snprintf(c->dir, sizeof c->dir, "%s", extra[e].dir);
		}
		for (int i = 0; i < ncases; i++)
			bad |= prepare_case(i, json) != 0;
		/* node has no WebGL2: the JS API's refusal of it is tested in test_web_api.mjs */
		fprintf(json, "\n], \"backends\": {\"node\": [\"wasm\", \"webgpu\", \"webgpu-cpu\"], "
		              "\"chromium\": [\"wasm\", \"webgpu\", \"webgpu-cpu\", \"webgl\"]}}\n");
		bad |= fclose(json) != 0;
	}
	if (bad) {
		fprintf(stderr, "could not prepare the bundles in %s\n", root);
		return 1;
	}
	run_host(0, "node");
	run_host(1, "chromium");

	Suite *s = suite_create("web");
	TCase *tn = tcase_create("node");
	tcase_add_loop_test(tn, node_wasm, 0, ncases);
	tcase_add_loop_test(tn, node_webgpu, 0, ncases);
	tcase_add_loop_test(tn, node_webgpu_cpu, 0, ncases);
	suite_add_tcase(s, tn);
	TCase *tc = tcase_create("chromium");
	/* the same bundles as the node cases, in the browser: the C side is the
	 * node cases' and valgrind does not follow Chromium (scripts/test.sh) */
	tcase_set_tags(tc, "slow");
	tcase_add_loop_test(tc, chromium_wasm, 0, ncases);
	tcase_add_loop_test(tc, chromium_webgpu, 0, ncases);
	tcase_add_loop_test(tc, chromium_webgl, 0, ncases);
	tcase_add_loop_test(tc, chromium_webgpu_cpu, 0, ncases);
	suite_add_tcase(s, tc);
	int failed = tu_run_suite(s);
	if (!failed && !getenv("KILN_TEST_KEEP"))
		clean();
	else
		fprintf(stderr, "the bundles and outputs are kept in %s\n", root);
	return failed ? 1 : 0;
}
