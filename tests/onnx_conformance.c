/*
 * onnx_conformance.c — ONNX's own node tests (Debian's libonnx-testdata) run
 * through the whole model path: load, import, compile for a target, run
 * with the graph executor, compare every output with the test's expected
 * tensors (|got - want| <= atol + rtol |want|; integers and bools exact).
 *
 *   onnx_conformance [--target T] [--expect FILE] [--list] [SUITE_DIR...]
 *
 * Each test prints PASS, FAIL (with the first mismatch or the error) or
 * SKIP (an operator, attribute or dtype kiln does not support, named).
 * With --expect, the tests FILE lists must all pass (exit 1 otherwise), so
 * a regression fails CI; tests that pass and are not listed are reported.
 * --list prints the names of the passing tests (to update FILE).
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/model.h"
#include "kiln/onnx.h"

#define TESTDATA "/usr/share/libonnx-testdata/data"

static const double rel_tol = 1e-3, abs_tol = 1e-4;

static void *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	void *p = malloc(sz > 0 ? (size_t)sz : 1);
	*n = p && sz >= 0 ? fread(p, 1, (size_t)sz, f) : 0;
	fclose(f);
	return p;
}

/* A test data set's tensor (.pb) as a new array; NULL when missing or unreadable. */
static kiln_array *read_pb(kiln_ctx *ctx, const char *path)
{
	size_t n;
	void *bytes = slurp(path, &n);
	kiln_array *a = bytes ? kiln_onnx_read_tensor(ctx, bytes, n, path) : NULL;
	free(bytes);
	return a;
}

static double elem(const kiln_array *a, int64_t i)
{
	switch (a->dtype.code) {
	case KILN_FLOAT: return a->dtype.bits == 32 ? ((float *)a->data)[i] : ((double *)a->data)[i];
	case KILN_INT:
		return a->dtype.bits == 64 ? (double)((int64_t *)a->data)[i] : a->dtype.bits == 32 ? ((int32_t *)a->data)[i]
		                                                                                   : ((int8_t *)a->data)[i];
	default: return ((uint8_t *)a->data)[i];
	}
}

/* "" when equal within tolerance, else the first difference. */
static const char *compare(const kiln_array *got, const kiln_array *want, char *msg, size_t cap)
{
	if (got->dtype.code != want->dtype.code || got->dtype.bits != want->dtype.bits)
		return snprintf(msg, cap, "dtype differs"), msg;
	if (kiln_array_numel(got) != kiln_array_numel(want) || got->ndim != want->ndim)
		return snprintf(msg, cap, "shape differs (%lld vs %lld elements, rank %d vs %d)",
		                (long long)kiln_array_numel(got), (long long)kiln_array_numel(want), got->ndim, want->ndim), msg;
	for (int d = 0; d < got->ndim; d++)
		if (got->shape[d] != want->shape[d])
			return snprintf(msg, cap, "extent %d differs", d), msg;
	for (int64_t i = 0; i < kiln_array_numel(got); i++) {
		double g = elem(got, i), w = elem(want, i);
		bool ok = got->dtype.code == KILN_FLOAT ? (isnan(w) ? isnan(g) : isinf(w) ? g == w : fabs(g - w) <= abs_tol + rel_tol * fabs(w))
		                                        : g == w;
		if (!ok)
			return snprintf(msg, cap, "element %lld: got %.8g, want %.8g", (long long)i, g, w), msg;
	}
	return "";
}

typedef enum { PASS, FAIL, SKIP } result;

/* Unsupported things are skips; anything else that fails is a failure. */
static bool unsupported(const char *err)
{
	return strstr(err, "not supported") || strstr(err, "does not support") || strstr(err, "this frontend reads") ||
	       strstr(err, "kiln does not read") || strstr(err, "not a tensor") ||
	       strstr(err, "imports no opset of the default") /* training-domain models */ ||
	       strstr(err, "stores float32 tensors only") || strstr(err, "which webgl cannot hold"); /* webgl's textures */
}

static result run_test(const char *dir, const char *target, char *why, size_t cap)
{
	char path[8192];
	kiln_ctx *ctx = kiln_ctx_new();
	result r = FAIL;
	kiln_model *model = NULL;
	snprintf(path, sizeof path, "%s/model.onnx", dir);
	kiln_onnx_model *om = kiln_onnx_load(ctx, path);
	/* symbolic input dimensions are bound to the first data set's shapes, as a user binds them */
	kiln_input_shape binds[16];
	int nbind = 0;
	kiln_ctx *scratch = kiln_ctx_new();
	for (int i = 0; om && i < kiln_onnx_num_inputs(om) && nbind < 16; i++) {
		snprintf(path, sizeof path, "%s/test_data_set_0/input_%d.pb", dir, i);
		kiln_array *a = read_pb(scratch, path);
		if (!a)
			continue;
		binds[nbind].name = kiln_onnx_input_name(om, i);
		binds[nbind].ndim = a->ndim;
		memcpy(binds[nbind].shape, a->shape, sizeof a->shape);
		nbind++;
		kiln_array_free(a);
	}
	kiln_ctx_free(scratch);
	kiln_graph *g = om ? kiln_onnx_import(ctx, om, nbind, binds) : NULL;
	kiln_module *mod = g ? kiln_graph_compile(g, target, NULL) : NULL;
	if (!mod) {
		snprintf(why, cap, "%s", kiln_error(ctx));
		r = unsupported(why) ? SKIP : FAIL;
		goto done;
	}
	if (!(model = kiln_model_from_module(mod))) {
		snprintf(why, cap, "%s", kiln_rt_last_error());
		goto done;
	}
	int nsets = 0;
	for (int s = 0;; s++) {
		snprintf(path, sizeof path, "%s/test_data_set_%d", dir, s);
		DIR *d = opendir(path);
		if (!d)
			break;
		closedir(d);
		nsets++;
		for (int i = 0; i < kiln_model_num_inputs(model); i++) {
			snprintf(path, sizeof path, "%s/test_data_set_%d/input_%d.pb", dir, s, i);
			kiln_array *a = read_pb(ctx, path);
			int rc = a ? kiln_model_set_input_data(model, i, a->data,
			                                       (size_t)kiln_array_numel(a) * kiln_dtype_bytes(a->dtype)) : -1;
			if (rc)
				snprintf(why, cap, "input %d: %s", i, a ? kiln_rt_last_error() : kiln_error(ctx));
			kiln_array_free(a);
			if (rc)
				goto done;
		}
		/* poison the outputs: a kernel that writes nothing must not pass on stale values */
		for (int o = 0; o < kiln_model_num_outputs(model); o++) {
			const kiln_array *y = kiln_model_get_output(model, o);
			memset(y->data, 0xff, (size_t)kiln_array_numel(y) * kiln_dtype_bytes(y->dtype));
		}
		if (kiln_model_run(model)) {
			snprintf(why, cap, "run: %s", kiln_rt_last_error());
			goto done;
		}
		for (int o = 0; o < kiln_model_num_outputs(model); o++) {
			snprintf(path, sizeof path, "%s/test_data_set_%d/output_%d.pb", dir, s, o);
			kiln_array *want = read_pb(ctx, path);
			if (!want) {
				snprintf(why, cap, "output %d: %s", o, kiln_error(ctx));
				goto done;
			}
			char msg[256];
			const char *diff = compare(kiln_model_get_output(model, o), want, msg, sizeof msg);
			kiln_array_free(want);
			if (*diff) {
				snprintf(why, cap, "set %d output %d: %s", s, o, diff);
				goto done;
			}
		}
	}
	r = nsets ? PASS : FAIL;
	if (!nsets)
		snprintf(why, cap, "no test data sets");
done:
	kiln_model_free(model);
	kiln_onnx_free(om);
	kiln_ctx_free(ctx);
	return r;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv)
{
	const char *target = "llvm", *expect = NULL;
	bool list = false, verbose = false;
	const char *suites[16];
	int nsuite = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--target") && i + 1 < argc)
			target = argv[++i];
		else if (!strcmp(argv[i], "--expect") && i + 1 < argc)
			expect = argv[++i];
		else if (!strcmp(argv[i], "--list"))
			list = true;
		else if (!strcmp(argv[i], "-v"))
			verbose = true;
		else if (nsuite < 16)
			suites[nsuite++] = argv[i];
	}
	if (!nsuite) {
		static const char *dflt[] = {TESTDATA "/node", TESTDATA "/pytorch-converted", TESTDATA "/pytorch-operator",
		                             TESTDATA "/simple"};
		for (int i = 0; i < 4; i++)
			suites[nsuite++] = dflt[i];
	}
	/* the expected list */
	char **want = NULL;
	int nwant = 0;
	if (expect) {
		FILE *f = fopen(expect, "r");
		if (!f) {
			fprintf(stderr, "cannot read %s\n", expect);
			return 2;
		}
		char line[512];
		while (fgets(line, sizeof line, f)) {
			line[strcspn(line, "\r\n#")] = 0;
			if (!*line)
				continue;
			want = realloc(want, sizeof *want * (nwant + 1));
			want[nwant++] = strdup(line);
		}
		fclose(f);
		qsort(want, nwant, sizeof *want, cmp_str);
	}
	int npass = 0, nfail = 0, nskip = 0, missing = 0;
	for (int s = 0; s < nsuite; s++) {
		DIR *d = opendir(suites[s]);
		if (!d) {
			fprintf(stderr, "%s is missing: apt install libonnx-testdata\n", suites[s]);
			return 2;
		}
		char **names = NULL;
		int nn = 0;
		struct dirent *e;
		while ((e = readdir(d)))
			if (!strncmp(e->d_name, "test_", 5)) {
				names = realloc(names, sizeof *names * (nn + 1));
				names[nn++] = strdup(e->d_name);
			}
		closedir(d);
		qsort(names, nn, sizeof *names, cmp_str);
		const char *suite = strrchr(suites[s], '/') ? strrchr(suites[s], '/') + 1 : suites[s];
		for (int i = 0; i < nn; i++) {
			char dir[4096], why[1024] = "", key[600];
			snprintf(dir, sizeof dir, "%s/%s", suites[s], names[i]);
			snprintf(key, sizeof key, "%s/%s", suite, names[i]);
			result r = run_test(dir, target, why, sizeof why);
			bool expected = want && bsearch(&(const char *){key}, want, nwant, sizeof *want, cmp_str);
			npass += r == PASS, nfail += r == FAIL, nskip += r == SKIP;
			if (list && r == PASS)
				printf("%s\n", key);
			else if (!list && (verbose || r == FAIL || (expected && r != PASS)))
				printf("%s %s%s%s\n", r == PASS ? "PASS" : r == FAIL ? "FAIL" : "SKIP", key, *why ? ": " : "", why);
			if (expected && r != PASS) {
				printf("  ^ REGRESSION: listed in %s\n", expect);
				missing++;
			} else if (want && !expected && r == PASS && verbose) {
				printf("  (passes, not listed in %s)\n", expect);
			}
			free(names[i]);
		}
		free(names);
	}
	fprintf(list ? stderr : stdout, "%s: %d passed, %d failed, %d skipped (unsupported)%s\n", target, npass, nfail,
	        nskip, missing ? "" : "");
	if (expect)
		fprintf(stdout, "%d of %d expected tests did not pass\n", missing, nwant);
	for (int i = 0; i < nwant; i++)
		free(want[i]);
	free(want);
	return missing ? 1 : 0;
}
