/*
 * testutil.h — helpers shared by the Check suites: compare a built
 * function with the oracle on random inputs.
 */
#ifndef KILN_TESTUTIL_H
#define KILN_TESTUTIL_H

#include <check.h>

#include "kiln/build.h"
#include "kiln/ops.h"

/* Runs every test of s (Check's normal output, which CI reads) and frees it; the failure count. */
int tu_run_suite(Suite *s);
/* Writes n bytes to path; 0 or -1. */
int tu_write_file(const char *path, const void *data, size_t n);
/* Tolerance for an element type: |got - want| <= atol + rtol * |want|. */
void tu_tolerance(kiln_dtype t, double *atol, double *rtol);
/*
 * Makes an array per argument and fills the placeholders' with random values
 * from seed (variances positive); ins/phs receive the inputs and their
 * tensors for kiln_eval. Returns the number of inputs.
 */
int tu_fill_inputs(int nargs, kiln_tensor *const *args, uint64_t seed, kiln_array **arr, kiln_array **ins,
                   kiln_tensor **phs);
/* The largest |got - want| over all elements, or -1 (printed) past the dtype's tolerance. */
double tu_compare(const char *name, const kiln_array *got, const kiln_array *want);
/* The same against the independent reference's doubles (tests/reference.h). */
double tu_compare_ref(const char *name, const kiln_array *got, const double *want);
/*
 * Builds the schedule for the llvm target, runs it on random inputs and
 * compares every output with the oracle. Returns the max error seen, or -1
 * (with a message printed) on any failure.
 */
double tu_check(kiln_ctx *ctx, kiln_schedule *s, int nargs, kiln_tensor *const *args, uint64_t seed);
/* The same for another target ("opencl"). */
double tu_check_target(kiln_ctx *ctx, kiln_schedule *s, int nargs, kiln_tensor *const *args, uint64_t seed,
                       const char *target);
/*
 * The check every kernel test ends in. Outputs are poisoned (NaN) before the
 * kernel runs and every array carries a guard zone; afterwards the guards
 * must be intact, the inputs unchanged, and each output must match the
 * oracle (computed before the kernel ran) and, when op is the name of a
 * registry operator, the independent reference (tests/reference.c) with
 * the same "k=v" attrs. Returns the max error, or -1 (printed).
 */
double tu_check_ref(kiln_ctx *ctx, kiln_schedule *s, int nargs, kiln_tensor *const *args, uint64_t seed,
                    const char *target, const char *op, const char *attrs);
/* The printed IR of s lowered as "fn" (malloc'ed; Check assertion on failure). */
char *tu_lowered_text(kiln_ctx *ctx, kiln_schedule *s, int nargs, kiln_tensor *const *args);
/* The device source (opencl, webgl, webgpu) of s lowered; free() it. */
char *tu_device_text(kiln_ctx *ctx, kiln_schedule *s, int nargs, kiln_tensor *const *args, const char *target);
/* The same with the test's own reference: fills want (numel of the last
 * argument) from the inputs' pristine copies; 0, or -1 (printed). */
typedef int (*tu_ref_fn)(int nin, const kiln_array *const *ins, const kiln_array *out, double *want, void *user);
double tu_check_with(kiln_ctx *ctx, kiln_schedule *s, int nargs, kiln_tensor *const *args, uint64_t seed,
                     const char *target, tu_ref_fn reference, void *user);
/*
 * A test array: its data followed by a guard zone of 256 bytes holding a
 * canary, so a kernel writing past the end shows (allocations round up and
 * JIT code is not instrumented, so ASan and valgrind would not see it).
 */
kiln_array *tu_guarded_array(int ndim, const int64_t *shape, kiln_dtype dtype);
/* Whether a's guard zone still holds the canary (if not, says so on stderr). */
int tu_guard_intact(const char *name, const kiln_array *a);
/* Declares registry operator info at its example shape, schedules it with sched
 * and checks it on target against the oracle (Check assertions). */
typedef kiln_schedule *(*tu_schedule_fn)(kiln_ctx *ctx, kiln_tensor *out);
void tu_run_op(const kiln_op_info *info, tu_schedule_fn sched, const char *target, const char *what);

/*
 * Declares registry operator `name` at shape with attrs, schedules it with
 * sched and checks it on target against the oracle and the reference (Check
 * assertions). TU_RUN(target, sched, name, attrs, d0, d1, ...) spells the shape inline.
 */
void tu_run_shape(const char *target, tu_schedule_fn sched, const char *name, int n, const int64_t *shape,
                  const char *attrs);
#define TU_RUN(target, sched, name, attrs, ...)                                                                    \
	tu_run_shape(target, sched, name, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)),                   \
	             (int64_t[]){__VA_ARGS__}, attrs)

/* A second GPU schedule: producers inlined, the first axis on blockIdx.y, the
 * rest fused into blocks of 32 threads on blockIdx.x / threadIdx.x. */
kiln_schedule *tu_grid2d_schedule(kiln_ctx *ctx, kiln_tensor *out);

/*
 * Y[i] = X[(i * 3000000) % 7] over 1000 elements, with a 2-D grid schedule:
 * every buffer index fits 32 bits, but the product i * 3000000 does not. A
 * language without 64-bit integers must refuse it (wrapped, the product
 * turns negative and the read leaves X); OpenCL keeps it 64-bit.
 */
kiln_schedule *tu_wide_index_op(kiln_ctx *ctx, kiln_tensor **X, kiln_tensor **Y);

/* Asserts that a step failed with a message containing `needle`. */
#define tu_expect_error(ctx, rc_is_error, needle)                                                                  \
	do {                                                                                                             \
		ck_assert_msg((needle)[0] != '\0', "tu_expect_error needs a non-empty needle");                           \
		ck_assert_msg((rc_is_error), "expected an error containing '%s'", (needle));                                \
		ck_assert_msg(strstr(kiln_error(ctx), (needle)) != NULL, "error was: '%s', expected '%s'", kiln_error(ctx), \
		              (needle));                                                                                     \
	} while (0)

#endif
