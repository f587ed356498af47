/*
 * test_runtime.c — the runtime core: the module container (round trip,
 * truncated and corrupted files), the thread pool and the time evaluator.
 */
#include <check.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln/build.h"
#include "kiln/ops.h"
#include "runtime/rt.h"
#define XXH_INLINE_ALL
#include <xxhash.h>
#include "testutil.h"

/* A small built module: relu over [5, 37]. */
static kiln_module *relu_module(kiln_ctx *ctx)
{
	kiln_op_inst o;
	const kiln_op_info *info = kiln_op_find("relu");
	ck_assert_int_eq(kiln_op_declare(ctx, info, 2, (int64_t[]){5, 37}, "", &o), 0);
	kiln_tensor *out = o.args[1];
	kiln_module *m = kiln_build_schedule(kiln_schedule_cpu(ctx, 1, &out), "relu", 2, o.args, "llvm");
	ck_assert_msg(m != NULL, "%s", kiln_error(ctx));
	return m;
}

static int run_relu(kiln_module *m)
{
	kiln_array *x = kiln_array_empty(2, (int64_t[]){5, 37}, KILN_F32), *y = kiln_array_empty(2, (int64_t[]){5, 37}, KILN_F32);
	kiln_array_fill_random(x, 9, -1, 1);
	int rc = kiln_module_call(m, "relu", (kiln_array *[]){x, y}, 2);
	for (int i = 0; !rc && i < 5 * 37; i++) {
		float a = ((float *)x->data)[i], b = ((float *)y->data)[i];
		if (b != (a > 0 ? a : 0))
			rc = -1;
	}
	kiln_array_free(x);
	kiln_array_free(y);
	return rc;
}

START_TEST(save_load_roundtrip)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_module *m = relu_module(ctx);
	char path[] = "/tmp/kiln-test-XXXXXX.kmod";
	int fd = mkstemps(path, 5);
	close(fd);
	ck_assert_int_eq(kiln_module_save(m, path), 0);
	kiln_module *l = kiln_module_load(path);
	ck_assert_msg(l != NULL, "%s", kiln_rt_last_error());
	ck_assert_int_eq(kiln_module_num_functions(l), 1);
	ck_assert_str_eq(kiln_module_function_name(l, 0), "relu");
	ck_assert_int_eq(run_relu(l), 0);
	kiln_module_free(l);
	/* an exported library loads the same way */
	char so[] = "/tmp/kiln-test-XXXXXX.so";
	fd = mkstemps(so, 3);
	close(fd);
	ck_assert_int_eq(kiln_export_library(ctx, m, so), 0);
	l = kiln_module_load(so);
	ck_assert_msg(l != NULL, "%s", kiln_rt_last_error());
	ck_assert_int_eq(run_relu(l), 0);
	kiln_module_free(l);
	unlink(so);
	unlink(path);
	kiln_module_free(m);
	kiln_ctx_free(ctx);
}
END_TEST

START_TEST(truncated_and_corrupt)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_module *m = relu_module(ctx);
	/* metadata only: blobs would make every prefix a long object file */
	uint8_t *data;
	size_t n;
	rt_module_serialize(m, &data, &n);
	for (size_t k = 0; k < n; k++) {
		kiln_module *p = rt_module_parse(data, k, "cut");
		ck_assert_msg(p == NULL, "a module cut at %zu of %zu bytes was accepted", k, n);
		ck_assert_msg(strstr(kiln_rt_last_error(), "cut:") == kiln_rt_last_error(), "%s", kiln_rt_last_error());
	}
	kiln_module *whole = rt_module_parse(data, n, "whole");
	ck_assert_ptr_nonnull(whole);
	kiln_module_free(whole);
	/* every single-byte corruption is refused (the checksum), never a crash */
	uint64_t s = 12345;
	for (size_t k = 0; k < n; k++)
		for (int t = 0; t < 4; t++) {
			uint8_t *c = malloc(n);
			memcpy(c, data, n);
			s = s * 6364136223846793005ull + 1442695040888963407ull;
			c[k] = (uint8_t)(s >> 56);
			kiln_module *p = rt_module_parse(c, n, "corrupt");
			ck_assert_msg(p == NULL || c[k] == data[k], "byte %zu corrupted and accepted", k);
			kiln_module_free(p);
			free(c);
		}
	kiln_module *flipped = (data[n / 2] ^= 4, rt_module_parse(data, n, "flipped"));
	data[n / 2] ^= 4;
	ck_assert_ptr_null(flipped);
	ck_assert_msg(strstr(kiln_rt_last_error(), "checksum mismatch: the module is truncated or corrupted"), "%s",
	              kiln_rt_last_error());
	/* a huge length field with a valid checksum is refused without allocating it */
	uint8_t bad[24] = {'K', 'I', 'L', 'N', 'M', 'O', 'D', 1, 3, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f};
	uint64_t sum = XXH3_64bits(bad, 16);
	for (int i = 0; i < 8; i++)
		bad[16 + i] = (uint8_t)(sum >> (8 * i));
	ck_assert_ptr_null(rt_module_parse(bad, sizeof bad, "huge"));
	ck_assert_msg(strstr(kiln_rt_last_error(), "truncated module: target name needs 2147483647 bytes"), "%s",
	              kiln_rt_last_error());
	ck_assert_ptr_null(kiln_module_load_bytes(NULL, 100, NULL));
	ck_assert_str_eq(kiln_rt_last_error(), "module: no data (NULL)");
	ck_assert_ptr_null(kiln_module_load("/nonexistent/x.so"));
	ck_assert_str_eq(kiln_rt_last_error(), "cannot open module '/nonexistent/x.so'");
	free(data);
	kiln_module_free(m);
	kiln_ctx_free(ctx);
}
END_TEST

static int count_chunk(int64_t b, int64_t e, void *closure)
{
	atomic_long *sum = closure;
	for (int64_t i = b; i < e; i++)
		atomic_fetch_add(sum, i);
	return 0;
}

static int nested_chunk(int64_t b, int64_t e, void *closure)
{
	for (int64_t i = b; i < e; i++)
		kiln_parallel_for(10, count_chunk, closure);
	return 0;
}

static int failing_chunk(int64_t b, int64_t e, void *closure) { return b == 0 ? 7 : 0; }

/* Sizes that overflow, exceed the limit or the machine, and dtypes no array holds are refused. */
START_TEST(array_limits)
{
	ck_assert_ptr_null(kiln_array_empty(1, (int64_t[]){1LL << 62}, KILN_F32));
	ck_assert_msg(strstr(kiln_rt_last_error(), "is larger than 1099511627776 bytes"), "%s", kiln_rt_last_error());
	ck_assert_ptr_null(kiln_array_empty(2, (int64_t[]){1LL << 32, 1LL << 32}, KILN_F32));
	ck_assert_ptr_null(kiln_array_empty(3, (int64_t[]){1LL << 31, 1LL << 31, 1LL << 31}, KILN_F32));
	ck_assert_ptr_null(kiln_array_empty(2, (int64_t[]){INT64_MAX / 2, 4}, KILN_F32));
	ck_assert_ptr_null(kiln_array_empty(1, (int64_t[]){-3}, KILN_F32));
	ck_assert_str_eq(kiln_rt_last_error(), "array: dimension 0 is negative (-3)");
	/* within the limit but past this machine's memory (24 GiB here; 256 GiB covers larger ones) */
	ck_assert_ptr_null(kiln_array_empty(1, (int64_t[]){1LL << 36}, KILN_F32));
	ck_assert_msg(strstr(kiln_rt_last_error(), "more than this machine's memory"), "%s", kiln_rt_last_error());
	ck_assert_ptr_null(kiln_array_empty(1, (int64_t[]){4}, (kiln_dtype){KILN_FLOAT, 13, 1}));
	ck_assert_msg(strstr(kiln_rt_last_error(), "13 bits"), "%s", kiln_rt_last_error());
	ck_assert_ptr_null(kiln_array_empty(1, (int64_t[]){4}, (kiln_dtype){KILN_INT, 0, 1}));
	ck_assert_ptr_null(kiln_array_empty(1, (int64_t[]){4}, (kiln_dtype){KILN_INT, 9, 1}));
	ck_assert_ptr_null(kiln_array_empty(1, NULL, KILN_F32));
	ck_assert_ptr_null(kiln_array_wrap(NULL, 1, (int64_t[]){1LL << 62}, KILN_F32));
	/* a zero extent is an empty array, whatever the others */
	kiln_array *e = kiln_array_empty(3, (int64_t[]){0, 1LL << 62, 1LL << 62}, KILN_F32);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(kiln_array_numel(e), 0);
	kiln_array_free(e);
}
END_TEST

/* The guard zones of test arrays see a kernel that writes past its output:
 * relu built for [5, 37] is told its arrays are [5, 30] and writes 35 floats
 * past the end (inside the guard, so nothing else is harmed). */
START_TEST(guard_zone_catches_overrun)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_module *m = relu_module(ctx);
	rt_function *f = rt_module_find(m, "relu");
	f->args[0].shape[1] = f->args[1].shape[1] = 30;
	kiln_array *x = tu_guarded_array(2, (int64_t[]){5, 30}, KILN_F32), *y = tu_guarded_array(2, (int64_t[]){5, 30}, KILN_F32);
	kiln_array_fill_random(x, 3, -1, 1);
	ck_assert_int_eq(kiln_module_call(m, "relu", (kiln_array *[]){x, y}, 2), 0);
	ck_assert(tu_guard_intact("X", x));
	ck_assert(!tu_guard_intact("relu", y));
	kiln_array_free(x);
	kiln_array_free(y);
	kiln_module_free(m);
	kiln_ctx_free(ctx);
}
END_TEST

/* Creates the file a mkstemps template names (suffix_len: its suffix's length). */
static void make_temp(char *tmpl, int suffix_len)
{
	int fd = mkstemps(tmpl, suffix_len);
	ck_assert_int_ge(fd, 0);
	close(fd);
}

/*
 * A saved CPU module loads with no toolchain: its code was linked when it was
 * saved and is loaded from memory (PATH emptied, CC pointing nowhere).
 */
START_TEST(load_without_toolchain)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_module *m = relu_module(ctx);
	char path[] = "/tmp/kiln-saved-XXXXXX.kmod";
	make_temp(path, 5);
	ck_assert_msg(kiln_module_save(m, path) == 0, "%s", kiln_rt_last_error());
	kiln_module_free(m);
	char *old_path = strdup(getenv("PATH") ? getenv("PATH") : "");
	setenv("PATH", "", 1);
	setenv("CC", "/nonexistent/cc", 1);
	kiln_module *l = kiln_module_load(path);
	setenv("PATH", old_path, 1);
	unsetenv("CC");
	free(old_path);
	ck_assert_msg(l != NULL, "%s", kiln_rt_last_error());
	ck_assert_int_eq(run_relu(l), 0);
	ck_assert_ptr_null(rt_module_blob(l, "llvm-obj")); /* the linked library replaced it */
	kiln_module_free(l);
	unlink(path);
	kiln_ctx_free(ctx);
}
END_TEST

/* A truncated exported library is refused before dlopen maps past its end (SIGBUS). */
START_TEST(truncated_library)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_module *m = relu_module(ctx);
	char path[] = "/tmp/kiln-lib-XXXXXX.so";
	make_temp(path, 3);
	ck_assert_msg(kiln_export_library(ctx, m, path) == 0, "%s", kiln_error(ctx));
	kiln_module_free(m);
	FILE *f = fopen(path, "rb");
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fclose(f);
	/* a bare file name is the file in the current folder, not a library-path search */
	char cwd[4096];
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
	ck_assert_int_eq(chdir("/tmp"), 0);
	kiln_module *bare = kiln_module_load(strrchr(path, '/') + 1);
	ck_assert_int_eq(chdir(cwd), 0);
	ck_assert_msg(bare != NULL, "%s", kiln_rt_last_error());
	ck_assert_int_eq(run_relu(bare), 0);
	kiln_module_free(bare);
	for (long cut = n / 2; cut > 0; cut = cut > 4096 ? cut / 2 : cut - 1000) {
		ck_assert_int_eq(truncate(path, cut), 0);
		ck_assert_ptr_null(kiln_module_load(path));
		ck_assert_msg(strstr(kiln_rt_last_error(), "truncated library") || strstr(kiln_rt_last_error(), "ELF"),
		              "cut at %ld: %s", cut, kiln_rt_last_error());
	}
	unlink(path);
	kiln_ctx_free(ctx);
}
END_TEST

START_TEST(thread_pool)
{
	for (int t = 1; t <= 4; t++) {
		kiln_set_num_threads(t);
		ck_assert_int_eq(kiln_get_num_threads(), t);
		atomic_long sum = 0;
		ck_assert_int_eq(kiln_parallel_for(1000, count_chunk, &sum), 0);
		ck_assert_int_eq(sum, 999 * 1000 / 2);
		sum = 0;
		ck_assert_int_eq(kiln_parallel_for(5, nested_chunk, &sum), 0); /* nested loops run serially */
		ck_assert_int_eq(sum, 5 * 45);
		ck_assert_int_eq(kiln_parallel_for(8, failing_chunk, NULL), 7);
	}
	/* back-to-back short jobs: a thread leaving one job must neither lose nor
	 * repeat a chunk of the next (this once hung the time evaluator) */
	for (int t = 2; t <= 4; t++) {
		kiln_set_num_threads(t);
		for (int it = 0; it < 30000; it++) {
			atomic_long sum = 0;
			int64_t n = 1 + it % 7;
			ck_assert_int_eq(kiln_parallel_for(n, count_chunk, &sum), 0);
			ck_assert_int_eq(sum, n * (n - 1) / 2);
		}
	}
	kiln_set_num_threads(0);
	/* results do not depend on the thread count */
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_module *m = relu_module(ctx);
	kiln_set_num_threads(1);
	ck_assert_int_eq(run_relu(m), 0);
	kiln_set_num_threads(3);
	ck_assert_int_eq(run_relu(m), 0);
	kiln_set_num_threads(0);
	kiln_module_free(m);
	kiln_ctx_free(ctx);
}
END_TEST

START_TEST(time_evaluator)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_module *m = relu_module(ctx);
	kiln_array *x = kiln_array_empty(2, (int64_t[]){5, 37}, KILN_F32), *y = kiln_array_empty(2, (int64_t[]){5, 37}, KILN_F32);
	kiln_timing t;
	kiln_time_opts o = {.warmup = 1, .repeat = 7, .min_repeat_ms = 2};
	ck_assert_int_eq(kiln_module_time(m, "relu", (kiln_array *[]){x, y}, 2, &o, &t), 0);
	ck_assert_int_eq(t.nsamples, 7);
	ck_assert_int_ge(t.number, 1);
	ck_assert(t.min_ms <= t.median_ms && t.median_ms > 0);
	for (int i = 0; i < 7; i++)
		ck_assert(t.samples_ms[i] >= t.min_ms);
	kiln_timing_free(&t);
	/* a bad call is reported by the evaluator too */
	ck_assert_int_eq(kiln_module_time(m, "relu", (kiln_array *[]){x}, 1, &o, &t), -1);
	ck_assert_str_eq(kiln_rt_last_error(), "relu expects 2 arguments (X, relu), got 1");
	/* nothing is silently replaced by a default */
	kiln_time_opts neg[] = {{.number = -5, .repeat = 3}, {.repeat = 0}, {.repeat = -1}, {.warmup = -2, .repeat = 3},
	                        {.min_repeat_ms = -1, .repeat = 3}, {.repeat = 1000000}};
	for (size_t i = 0; i < sizeof neg / sizeof neg[0]; i++) {
		ck_assert_int_eq(kiln_module_time(m, "relu", (kiln_array *[]){x, y}, 2, &neg[i], &t), -1);
		ck_assert_msg(strstr(kiln_rt_last_error(), "repeat must be 1 to 100000"), "%s", kiln_rt_last_error());
	}
	kiln_array_free(x);
	kiln_array_free(y);
	kiln_module_free(m);
	kiln_ctx_free(ctx);
}
END_TEST

Suite *runtime_suite(void)
{
	Suite *s = suite_create("runtime");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, save_load_roundtrip);
	tcase_add_test(tc, truncated_and_corrupt);
	tcase_add_test(tc, array_limits);
	tcase_add_test(tc, load_without_toolchain);
	tcase_add_test(tc, truncated_library);
	tcase_add_test(tc, guard_zone_catches_overrun);
	tcase_add_test(tc, thread_pool);
	tcase_add_test(tc, time_evaluator);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	int failed = tu_run_suite(runtime_suite());
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
