/*
 * test_schedule.c — every schedule primitive, checked on the exact IR it
 * lowers to (small cases, pinned text) and on the results (against the
 * oracle); and every misuse, checked for its message.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "schedule/schedule.h"
#include "testutil.h"

/* ---- small operators ---- */

typedef struct {
	kiln_ctx *ctx;
	kiln_tensor *A, *B, *C;
	kiln_iter *k;
} fix;

static kiln_expr *copy2_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	fix *f = user;
	return kiln_mul(ctx, KILN_READ(ctx, f->A, idx[0], idx[1]), kiln_float(ctx, 2));
}

static kiln_expr *plus1_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	fix *f = user;
	return kiln_add(ctx, KILN_READ(ctx, f->B, idx[0], idx[1]), kiln_float(ctx, 1));
}

static kiln_expr *rowsum_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	fix *f = user;
	return kiln_sum(ctx, KILN_READ(ctx, f->A, idx[0], kiln_iter_var(f->k)), 1, &f->k);
}

/* B = A * 2, C = B + 1 over [R, S] */
static fix chain(int64_t R, int64_t S)
{
	fix f = {kiln_ctx_new()};
	f.A = kiln_placeholder(f.ctx, "A", 2, (int64_t[]){R, S}, KILN_F32);
	f.B = kiln_compute(f.ctx, "B", 2, (int64_t[]){R, S}, copy2_body, &f);
	f.C = kiln_compute(f.ctx, "C", 2, (int64_t[]){R, S}, plus1_body, &f);
	return f;
}

/* B[i] = sum_k A[i, k] over [R, K] */
static fix rowsum(int64_t R, int64_t K)
{
	fix f = {kiln_ctx_new()};
	f.A = kiln_placeholder(f.ctx, "A", 2, (int64_t[]){R, K}, KILN_F32);
	f.k = kiln_reduce_axis(f.ctx, K, "k");
	f.B = kiln_compute(f.ctx, "B", 1, (int64_t[]){R}, rowsum_body, &f);
	return f;
}

/* Lowers and returns the printed function body (static buffer). */
static const char *lowered(kiln_schedule *s, int n, kiln_tensor *const *args)
{
	static char buf[8192];
	kiln_func *f = kiln_lower(s, "f", n, args, NULL);
	ck_assert_msg(f != NULL, "lower failed: %s", kiln_error(s->ctx));
	FILE *m = fmemopen(buf, sizeof buf, "w");
	kiln_func_print(f, m);
	fclose(m);
	return buf;
}

/* KILN_PRINT_IR=1 prints every lowered body (to re-record the pins); the
 * comparison still runs, so a run with it set cannot pass by skipping it. */
static void expect_ir(const char *name, const char *got, const char *want)
{
	if (getenv("KILN_PRINT_IR"))
		printf("=== %s\n%s", name, got);
	ck_assert_msg(!strcmp(got, want), "%s: lowered IR differs.\n--- got:\n%s--- want:\n%s", name, got, want);
}

#include "test_schedule_ir.h"

#define CHECK_ORACLE(f, s, n, ...) \
	ck_assert_double_ge(tu_check((f).ctx, (s), (n), (kiln_tensor *[]){__VA_ARGS__}, 3), 0)

START_TEST(prim_split)
{
	/* a pure stage: the last tile shifts inwards, no guard */
	fix f = chain(6, 10);
	kiln_schedule *s = kiln_schedule_create(f.ctx, 1, &f.C);
	kiln_stage *c = kiln_stage_of(s, f.C);
	ck_assert_int_eq(kiln_compute_inline(kiln_stage_of(s, f.B)), 0);
	kiln_iter *o, *i;
	ck_assert_int_eq(kiln_split(c, kiln_stage_axis(c, 1), 4, &o, &i), 0);
	expect_ir("split", lowered(s, 2, (kiln_tensor *[]){f.A, f.C}), IR_SPLIT);
	CHECK_ORACLE(f, s, 2, f.A, f.C);
	kiln_ctx_free(f.ctx);
}
END_TEST

START_TEST(prim_split_reduce_guard)
{
	/* a reduction split unevenly gets a guard; an even split gets none */
	fix f = rowsum(4, 10);
	kiln_schedule *s = kiln_schedule_create(f.ctx, 1, &f.B);
	kiln_stage *b = kiln_stage_of(s, f.B);
	kiln_iter *o, *i;
	ck_assert_int_eq(kiln_split(b, f.k, 4, &o, &i), 0);
	expect_ir("split_reduce", lowered(s, 2, (kiln_tensor *[]){f.A, f.B}), IR_SPLIT_REDUCE);
	CHECK_ORACLE(f, s, 2, f.A, f.B);
	kiln_ctx_free(f.ctx);
	f = rowsum(4, 12);
	s = kiln_schedule_create(f.ctx, 1, &f.B);
	b = kiln_stage_of(s, f.B);
	ck_assert_int_eq(kiln_split_nparts(b, f.k, 3, &o, &i), 0);
	expect_ir("split_nparts", lowered(s, 2, (kiln_tensor *[]){f.A, f.B}), IR_SPLIT_NPARTS);
	CHECK_ORACLE(f, s, 2, f.A, f.B);
	kiln_ctx_free(f.ctx);
}
END_TEST

START_TEST(prim_fuse_reorder_parallel)
{
	fix f = chain(3, 5);
	kiln_schedule *s = kiln_schedule_create(f.ctx, 1, &f.C);
	kiln_stage *c = kiln_stage_of(s, f.C);
	kiln_compute_inline(kiln_stage_of(s, f.B));
	kiln_iter *i = kiln_stage_axis(c, 0), *j = kiln_stage_axis(c, 1), *fused;
	ck_assert_int_eq(kiln_reorder(c, 2, (kiln_iter *[]){j, i}), 0);
	expect_ir("reorder", lowered(s, 2, (kiln_tensor *[]){f.A, f.C}), IR_REORDER);
	ck_assert_int_eq(kiln_fuse(c, j, i, &fused), 0);
	ck_assert_int_eq(kiln_parallel(c, fused), 0);
	expect_ir("fuse_parallel", lowered(s, 2, (kiln_tensor *[]){f.A, f.C}), IR_FUSE);
	CHECK_ORACLE(f, s, 2, f.A, f.C);
	kiln_ctx_free(f.ctx);
}
END_TEST

START_TEST(prim_tile_vectorize_unroll)
{
	fix f = chain(4, 32);
	kiln_schedule *s = kiln_schedule_create(f.ctx, 1, &f.C);
	kiln_stage *c = kiln_stage_of(s, f.C);
	kiln_compute_inline(kiln_stage_of(s, f.B));
	kiln_iter *io, *jo, *ii, *ji;
	ck_assert_int_eq(kiln_tile(c, kiln_stage_axis(c, 0), kiln_stage_axis(c, 1), 2, 16, &io, &jo, &ii, &ji), 0);
	ck_assert_int_eq(kiln_vectorize(c, ji), 0);
	ck_assert_int_eq(kiln_unroll(c, ii), 0);
	expect_ir("tile_vectorize_unroll", lowered(s, 2, (kiln_tensor *[]){f.A, f.C}), IR_TILE);
	CHECK_ORACLE(f, s, 2, f.A, f.C);
	kiln_ctx_free(f.ctx);
}
END_TEST

START_TEST(prim_compute_at_root_inline)
{
	fix f = chain(4, 6);
	kiln_schedule *s = kiln_schedule_create(f.ctx, 1, &f.C);
	kiln_stage *b = kiln_stage_of(s, f.B), *c = kiln_stage_of(s, f.C);
	expect_ir("compute_root", lowered(s, 2, (kiln_tensor *[]){f.A, f.C}), IR_ROOT);
	ck_assert_int_eq(kiln_compute_at(b, c, kiln_stage_axis(c, 0)), 0);
	expect_ir("compute_at", lowered(s, 2, (kiln_tensor *[]){f.A, f.C}), IR_AT);
	CHECK_ORACLE(f, s, 2, f.A, f.C);
	ck_assert_int_eq(kiln_compute_root(b), 0);
	ck_assert_int_eq(kiln_compute_inline(b), 0);
	expect_ir("compute_inline", lowered(s, 2, (kiln_tensor *[]){f.A, f.C}), IR_INLINE);
	CHECK_ORACLE(f, s, 2, f.A, f.C);
	kiln_ctx_free(f.ctx);
}
END_TEST

START_TEST(prim_caches)
{
	fix f = rowsum(3, 8);
	kiln_schedule *s = kiln_schedule_create(f.ctx, 1, &f.B);
	kiln_stage *b = kiln_stage_of(s, f.B);
	kiln_tensor *AL = kiln_cache_read(s, f.A, KILN_SCOPE_LOCAL, 1, &b);
	ck_assert_ptr_nonnull(AL);
	ck_assert_int_eq(kiln_compute_at(kiln_stage_of(s, AL), b, kiln_stage_axis(b, 0)), 0);
	expect_ir("cache_read", lowered(s, 2, (kiln_tensor *[]){f.A, f.B}), IR_CACHE_READ);
	CHECK_ORACLE(f, s, 2, f.A, f.B);
	kiln_ctx_free(f.ctx);

	f = rowsum(3, 8);
	s = kiln_schedule_create(f.ctx, 1, &f.B);
	kiln_tensor *BL = kiln_cache_write(s, f.B, KILN_SCOPE_LOCAL);
	ck_assert_ptr_nonnull(BL);
	b = kiln_stage_of(s, f.B);
	ck_assert_int_eq(kiln_compute_at(kiln_stage_of(s, BL), b, kiln_stage_axis(b, 0)), 0);
	expect_ir("cache_write", lowered(s, 2, (kiln_tensor *[]){f.A, f.B}), IR_CACHE_WRITE);
	CHECK_ORACLE(f, s, 2, f.A, f.B);
	kiln_ctx_free(f.ctx);
}
END_TEST

START_TEST(prim_storage_order)
{
	/* B stored transposed: a [S][R] buffer indexed j*R + i */
	fix f = chain(3, 5);
	kiln_schedule *s = kiln_schedule_create(f.ctx, 1, &f.C);
	ck_assert_int_eq(kiln_storage_order(kiln_stage_of(s, f.B), 2, (int[]){1, 0}), 0);
	expect_ir("storage_order", lowered(s, 2, (kiln_tensor *[]){f.A, f.C}), IR_STORAGE_ORDER);
	CHECK_ORACLE(f, s, 2, f.A, f.C);
	/* as a function argument B would have to be the caller's row-major array */
	tu_expect_error(f.ctx, kiln_lower(s, "g", 3, (kiln_tensor *[]){f.A, f.B, f.C}, NULL) == NULL,
	                "lower: argument 'B' has a storage order");
	kiln_ctx_free(f.ctx);
}
END_TEST

START_TEST(prim_storage_align)
{
	/* B's rows padded from 5 to 8 elements: a [3][8] buffer indexed i*8 + j */
	fix f = chain(3, 5);
	kiln_schedule *s = kiln_schedule_create(f.ctx, 1, &f.C);
	kiln_stage *b = kiln_stage_of(s, f.B);
	ck_assert_int_eq(kiln_storage_align(b, 0, 8, 0), 0);
	const char *ir = lowered(s, 2, (kiln_tensor *[]){f.A, f.C});
	ck_assert_msg(strstr(ir, "allocate B[float32 * 24]") && strstr(ir, "B[i*8 + j] ="), "%s", ir);
	CHECK_ORACLE(f, s, 2, f.A, f.C);
	tu_expect_error(f.ctx, kiln_lower(s, "g", 3, (kiln_tensor *[]){f.A, f.B, f.C}, NULL) == NULL,
	                "lower: argument 'B' has a storage alignment");
	kiln_ctx_free(f.ctx);
	/* transposed, the outer dimension in storage (j) padded from 3 to 4 with offset 1 -> 5 */
	f = chain(3, 5);
	s = kiln_schedule_create(f.ctx, 1, &f.C);
	b = kiln_stage_of(s, f.B);
	ck_assert_int_eq(kiln_storage_order(b, 2, (int[]){1, 0}), 0);
	ck_assert_int_eq(kiln_storage_align(b, 1, 4, 1), 0);
	ir = lowered(s, 2, (kiln_tensor *[]){f.A, f.C});
	ck_assert_msg(strstr(ir, "allocate B[float32 * 25]") && strstr(ir, "B[j*5 + i] ="), "%s", ir);
	CHECK_ORACLE(f, s, 2, f.A, f.C);
	/* refusals: the innermost dimension in storage, bad factors, outputs, dimensions out of range */
	tu_expect_error(f.ctx, kiln_storage_align(b, 0, 4, 0) < 0, "dimension 0 of stage 'B' is innermost in storage");
	kiln_clear_error(f.ctx);
	tu_expect_error(f.ctx, kiln_storage_align(b, 1, 4, 4) < 0, "factor 4 and offset 4");
	kiln_clear_error(f.ctx);
	tu_expect_error(f.ctx, kiln_storage_align(b, 1, 0, 0) < 0, "factor 0 and offset 0");
	kiln_clear_error(f.ctx);
	tu_expect_error(f.ctx, kiln_storage_align(b, 2, 4, 0) < 0, "stage 'B' has no dimension 2");
	kiln_clear_error(f.ctx);
	tu_expect_error(f.ctx, kiln_storage_align(kiln_stage_of(s, f.C), 0, 4, 0) < 0, "output 'C' keeps");
	kiln_clear_error(f.ctx);
	/* a storage order that moves an aligned dimension innermost is refused when lowered */
	ck_assert_int_eq(kiln_storage_order(b, 2, (int[]){0, 1}), 0);
	tu_expect_error(f.ctx, kiln_lower(s, "h", 2, (kiln_tensor *[]){f.A, f.C}, NULL) == NULL,
	                "dimension 1 of 'B' is aligned (storage_align) but innermost in storage");
	kiln_ctx_free(f.ctx);
}
END_TEST

/* C[i, j] = B[i / 4, j % 8] over [R, S] with B = A * 2 over [R/4, 8] */
static kiln_expr *divmod_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	fix *f = user;
	kiln_expr *i = kiln_div(ctx, idx[0], kiln_const(ctx, KILN_I64, 4)), *j = kiln_mod(ctx, idx[1], kiln_const(ctx, KILN_I64, 8));
	return kiln_add(ctx, KILN_READ(ctx, f->B, i, j), kiln_float(ctx, 1));
}

START_TEST(bounds_through_divmod)
{
	/* B computed at C's 8x8 tiles: rows i/4 of a tile starting on a multiple of 8 are 2 of B's 16 (the
	 * ends (8*io + 7)/4 - 8*io/4 do not simplify, their span does), columns j % 8 all 8: a window of 16
	 * where the whole of B (128) was computed per tile before */
	fix f = {kiln_ctx_new()};
	f.A = kiln_placeholder(f.ctx, "A", 2, (int64_t[]){16, 8}, KILN_F32);
	f.B = kiln_compute(f.ctx, "B", 2, (int64_t[]){16, 8}, copy2_body, &f);
	f.C = kiln_compute(f.ctx, "C", 2, (int64_t[]){64, 16}, divmod_body, &f);
	kiln_schedule *s = kiln_schedule_create(f.ctx, 1, &f.C);
	kiln_stage *c = kiln_stage_of(s, f.C);
	kiln_iter *io, *ii, *jo, *ji;
	ck_assert_int_eq(kiln_tile(c, kiln_stage_axis(c, 0), kiln_stage_axis(c, 1), 8, 8, &io, &jo, &ii, &ji), 0);
	ck_assert_int_eq(kiln_compute_at(kiln_stage_of(s, f.B), c, jo), 0);
	const char *ir = lowered(s, 2, (kiln_tensor *[]){f.A, f.C});
	ck_assert_msg(strstr(ir, "allocate B[float32 * 16]"), "want B's window of 2 rows x 8 columns:\n%s", ir);
	CHECK_ORACLE(f, s, 2, f.A, f.C);
	kiln_ctx_free(f.ctx);
}
END_TEST

START_TEST(prim_double_buffer_refusals)
{
	/* double buffering needs a shared stage computed at a serial loop of its reader
	 * (tests/test_tune.c runs double-buffered GPU kernels) */
	fix f = chain(3, 5);
	kiln_schedule *s = kiln_schedule_create(f.ctx, 1, &f.C);
	kiln_stage *b = kiln_stage_of(s, f.B), *c = kiln_stage_of(s, f.C);
	tu_expect_error(f.ctx, kiln_double_buffer(c) < 0, "double_buffer: output 'C' is not a shared-memory stage");
	kiln_clear_error(f.ctx);
	ck_assert_int_eq(kiln_double_buffer(b), 0);
	tu_expect_error(f.ctx, kiln_lower(s, "f", 2, (kiln_tensor *[]){f.A, f.C}, NULL) == NULL,
	                "double_buffer: 'B' is not in shared memory (set_scope)");
	kiln_clear_error(f.ctx);
	ck_assert_int_eq(kiln_set_scope(b, KILN_SCOPE_SHARED), 0);
	tu_expect_error(f.ctx, kiln_lower(s, "f", 2, (kiln_tensor *[]){f.A, f.C}, NULL) == NULL,
	                "double_buffer: 'B' is not computed at a loop (compute_at)");
	kiln_clear_error(f.ctx);
	/* at C's parallel row loop: no serial loop to pipeline */
	ck_assert_int_eq(kiln_compute_at(b, c, kiln_stage_axis(c, 0)), 0);
	ck_assert_int_eq(kiln_parallel(c, kiln_stage_axis(c, 0)), 0);
	tu_expect_error(f.ctx, kiln_lower(s, "f", 2, (kiln_tensor *[]){f.A, f.C}, NULL) == NULL,
	                "double_buffer: 'B' is computed at loop 'i', which is not a serial loop");
	kiln_ctx_free(f.ctx);
}
END_TEST

START_TEST(prim_vthread)
{
	/* C's columns j = v*4 + jr with v a virtual thread; B (local, computed per
	 * row inside it) gets one copy of its 4-element tile per virtual thread */
	fix f = chain(3, 8);
	kiln_schedule *s = kiln_schedule_create(f.ctx, 1, &f.C);
	kiln_stage *c = kiln_stage_of(s, f.C), *b = kiln_stage_of(s, f.B);
	kiln_iter *v, *jr;
	ck_assert_int_eq(kiln_split_nparts(c, kiln_stage_axis(c, 1), 2, &v, &jr), 0);
	ck_assert_int_eq(kiln_reorder(c, 3, (kiln_iter *[]){v, kiln_stage_axis(c, 0), jr}), 0);
	ck_assert_int_eq(kiln_bind(c, v, KILN_VTHREAD_X), 0);
	ck_assert_int_eq(kiln_set_scope(b, KILN_SCOPE_LOCAL), 0);
	ck_assert_int_eq(kiln_compute_at(b, c, kiln_stage_axis(c, 0)), 0);
	expect_ir("vthread", lowered(s, 2, (kiln_tensor *[]){f.A, f.C}), IR_VTHREAD);
	CHECK_ORACLE(f, s, 2, f.A, f.C);
	kiln_ctx_free(f.ctx);
}
END_TEST

START_TEST(prim_rfactor)
{
	/* the classic use: 16 partial sums as one vector, then a short final sum */
	fix f = rowsum(2, 64);
	kiln_schedule *s = kiln_schedule_create(f.ctx, 1, &f.B);
	kiln_stage *b = kiln_stage_of(s, f.B);
	kiln_iter *ko, *ki;
	ck_assert_int_eq(kiln_split(b, f.k, 16, &ko, &ki), 0);
	kiln_tensor *RF = kiln_rfactor(s, f.B, ki);
	ck_assert_msg(RF != NULL, "%s", kiln_error(f.ctx));
	kiln_stage *rf = kiln_stage_of(s, RF);
	kiln_iter *lane = kiln_stage_axis(rf, 0), *row = kiln_stage_axis(rf, 1), *rest = kiln_stage_reduce_axis(rf, 0);
	ck_assert_int_eq(kiln_reorder(rf, 3, (kiln_iter *[]){row, rest, lane}), 0);
	ck_assert_int_eq(kiln_vectorize(rf, lane), 0);
	expect_ir("rfactor", lowered(s, 2, (kiln_tensor *[]){f.A, f.B}), IR_RFACTOR);
	CHECK_ORACLE(f, s, 2, f.A, f.B);
	kiln_ctx_free(f.ctx);
}
END_TEST

START_TEST(prim_bind)
{
	fix f = chain(4, 64);
	kiln_schedule *s = kiln_schedule_create(f.ctx, 1, &f.C);
	kiln_stage *c = kiln_stage_of(s, f.C);
	kiln_compute_inline(kiln_stage_of(s, f.B));
	ck_assert_int_eq(kiln_bind(c, kiln_stage_axis(c, 0), KILN_BLOCK_X), 0);
	ck_assert_int_eq(kiln_bind(c, kiln_stage_axis(c, 1), KILN_THREAD_X), 0);
	expect_ir("bind", lowered(s, 2, (kiln_tensor *[]){f.A, f.C}), IR_BIND);
	/* the CPU target refuses thread-bound loops with a message */
	kiln_func *fn = kiln_lower(s, "f", 2, (kiln_tensor *[]){f.A, f.C}, NULL);
	tu_expect_error(f.ctx, kiln_build(f.ctx, 1, &fn, "llvm") == NULL, "bound to a GPU thread index");
	kiln_ctx_free(f.ctx);
}
END_TEST

/* The LLVM IR code generation emits for a small kernel, up to the attributes
 * (which name the host CPU), pinned; and the same kernel executed. */
START_TEST(llvm_ir_text)
{
	fix f = chain(2, 16);
	kiln_schedule *s = kiln_schedule_create(f.ctx, 1, &f.C);
	kiln_stage *c = kiln_stage_of(s, f.C);
	kiln_compute_inline(kiln_stage_of(s, f.B));
	ck_assert_int_eq(kiln_vectorize(c, kiln_stage_axis(c, 1)), 0);
	kiln_func *fn = kiln_lower(s, "f", 2, (kiln_tensor *[]){f.A, f.C}, NULL);
	ck_assert_ptr_nonnull(fn);
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	ck_assert_int_eq(kiln_llvm_ir(f.ctx, 1, &fn, 0, m), 0);
	fclose(m);
	char *attrs = strstr(text, "attributes #0");
	ck_assert_ptr_nonnull(attrs);
	*attrs = 0;
	expect_ir("llvm_ir", text, IR_LLVM);
	free(text);
	CHECK_ORACLE(f, s, 2, f.A, f.C);
	kiln_ctx_free(f.ctx);
}
END_TEST

/* ---- misuse: a message, never an abort ---- */

START_TEST(misuse)
{
	fix f = chain(4, 6), g = chain(4, 6);
	kiln_schedule *s = kiln_schedule_create(f.ctx, 1, &f.C);
	kiln_stage *b = kiln_stage_of(s, f.B), *c = kiln_stage_of(s, f.C);
	kiln_iter *o, *i;
	/* an axis of another stage */
	tu_expect_error(f.ctx, kiln_split(c, kiln_stage_axis(b, 0), 2, &o, &i) < 0,
	                "axis 'i' belongs to stage 'B', not to stage 'C'");
	kiln_clear_error(f.ctx);
	/* an axis of another schedule's tensor entirely */
	tu_expect_error(f.ctx, kiln_split(c, g.C->op->axis[0], 2, &o, &i) < 0, "is not an axis of stage 'C'");
	kiln_clear_error(f.ctx);
	/* zero and negative factors */
	tu_expect_error(f.ctx, kiln_split(c, kiln_stage_axis(c, 0), 0, &o, &i) < 0, "factor 0 of axis 'i' must be positive");
	kiln_clear_error(f.ctx);
	tu_expect_error(f.ctx, kiln_split_nparts(c, kiln_stage_axis(c, 0), -2, &o, &i) < 0, "nparts -2 of axis 'i' must be positive");
	kiln_clear_error(f.ctx);
	/* compute_at into a stage that does not consume the tensor: D reads A, not B */
	kiln_tensor *D = kiln_compute(f.ctx, "D", 2, (int64_t[]){4, 6}, copy2_body, &f);
	kiln_schedule *s2 = kiln_schedule_create(f.ctx, 2, (kiln_tensor *[]){f.C, D});
	tu_expect_error(f.ctx,
	                kiln_compute_at(kiln_stage_of(s2, f.B), kiln_stage_of(s2, D), kiln_stage_axis(kiln_stage_of(s2, D), 0)) < 0,
	                "compute_at: stage 'D' does not read 'B', so 'B' cannot be computed inside it");
	kiln_clear_error(f.ctx);
	/* an output cannot move inside another stage */
	tu_expect_error(f.ctx, kiln_compute_at(c, b, kiln_stage_axis(b, 0)) < 0,
	                "compute_at: 'C' is an output of the schedule; outputs stay at the root");
	kiln_clear_error(f.ctx);
	/* storage orders: a permutation of the dimensions, never of an output */
	tu_expect_error(f.ctx, kiln_storage_order(b, 2, (int[]){1, 1}) < 0,
	                "storage_order: dimension 1 at position 1 of stage 'B' is out of range or repeated");
	kiln_clear_error(f.ctx);
	tu_expect_error(f.ctx, kiln_storage_order(b, 1, (int[]){0}) < 0, "stage 'B' has 2 dimensions but 1 were given");
	kiln_clear_error(f.ctx);
	tu_expect_error(f.ctx, kiln_storage_order(c, 2, (int[]){1, 0}) < 0,
	                "storage_order: output 'C' keeps the caller's row-major layout");
	kiln_clear_error(f.ctx);
	/* reorder with a duplicate or a foreign axis */
	tu_expect_error(f.ctx, kiln_reorder(c, 2, (kiln_iter *[]){kiln_stage_axis(c, 0), kiln_stage_axis(c, 0)}) < 0,
	                "reorder: axis 'i' appears twice");
	kiln_clear_error(f.ctx);
	tu_expect_error(f.ctx, kiln_reorder(c, 2, (kiln_iter *[]){kiln_stage_axis(c, 0), kiln_stage_axis(b, 1)}) < 0,
	                "reorder: axis 'j' belongs to stage 'B'");
	kiln_clear_error(f.ctx);
	/* an axis already split */
	ck_assert_int_eq(kiln_split(c, kiln_stage_axis(c, 1), 2, &o, &i), 0);
	tu_expect_error(f.ctx, kiln_vectorize(c, kiln_stage_axis(c, 1)) < 0, "was already split or fused; use its parts");
	kiln_clear_error(f.ctx);
	/* fuse of non-adjacent axes; parallel on a reduction */
	tu_expect_error(f.ctx, kiln_fuse(c, o, kiln_stage_axis(c, 0), NULL) < 0, "are not adjacent");
	kiln_clear_error(f.ctx);
	kiln_ctx_free(g.ctx);
	kiln_ctx_free(f.ctx);

	f = rowsum(4, 6);
	s = kiln_schedule_create(f.ctx, 1, &f.B);
	b = kiln_stage_of(s, f.B);
	tu_expect_error(f.ctx, kiln_parallel(b, f.k) < 0, "parallel: 'k' is a reduction axis");
	kiln_clear_error(f.ctx);
	tu_expect_error(f.ctx, kiln_compute_inline(b) < 0, "is an output of the schedule");
	kiln_clear_error(f.ctx);
	/* binding a thread index is a schedule choice; only a CPU build refuses it */
	ck_assert_msg(kiln_bind(b, kiln_stage_axis(b, 0), KILN_THREAD_X) == 0, "%s", kiln_error(f.ctx));
	tu_expect_error(f.ctx, kiln_bind(b, kiln_stage_axis(b, 0), (kiln_thread)42) < 0, "bind: 42 is not a thread index");
	kiln_ctx_free(f.ctx);
}
END_TEST

static kiln_expr *shifted_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	fix *f = user;
	return KILN_READ(ctx, f->A, idx[0], kiln_add(ctx, idx[1], kiln_int(ctx, 1)));
}

START_TEST(misuse_lowering)
{
	/* a read past the end of a tensor is refused, not compiled */
	{
		fix f = chain(4, 6);
		kiln_tensor *S = kiln_compute(f.ctx, "S", 2, (int64_t[]){4, 6}, shifted_body, &f);
		kiln_schedule *s = kiln_schedule_create(f.ctx, 1, &S);
		tu_expect_error(f.ctx, kiln_lower(s, "f", 2, (kiln_tensor *[]){f.A, S}, NULL) == NULL,
		                "lower: 'S' reads A out of bounds: index 1 (j + 1) ranges over [1, 6] but 'A' has extent 6 there");
		kiln_ctx_free(f.ctx);
	}
	/* vectorize of a loop too long to be one vector */
	fix f = chain(2, 200);
	kiln_schedule *s = kiln_schedule_create(f.ctx, 1, &f.C);
	kiln_stage *c = kiln_stage_of(s, f.C);
	ck_assert_int_eq(kiln_vectorize(c, kiln_stage_axis(c, 1)), 0);
	tu_expect_error(f.ctx, kiln_lower(s, "f", 2, (kiln_tensor *[]){f.A, f.C}, NULL) == NULL,
	                "vectorize: loop 'j' has extent 200; vectorized loops take at most 64 lanes");
	kiln_ctx_free(f.ctx);
	/* a missing argument, an output left out, a repeated argument */
	f = chain(2, 3);
	s = kiln_schedule_create(f.ctx, 1, &f.C);
	tu_expect_error(f.ctx, kiln_lower(s, "f", 1, (kiln_tensor *[]){f.C}, NULL) == NULL,
	                "reads placeholder 'A', which is not among the arguments");
	kiln_clear_error(f.ctx);
	tu_expect_error(f.ctx, kiln_lower(s, "f", 1, (kiln_tensor *[]){f.A}, NULL) == NULL,
	                "output 'C' of the schedule is not among the arguments");
	kiln_clear_error(f.ctx);
	tu_expect_error(f.ctx, kiln_lower(s, "f", 3, (kiln_tensor *[]){f.A, f.A, f.C}, NULL) == NULL,
	                "tensor 'A' is given twice");
	kiln_ctx_free(f.ctx);
	/* (compute_at before a split of its axis is allowed: tests/test_te.c) */
}
END_TEST

/* A schedule of Y alone with axis split by lanes and the inner part vectorized (*outer: the outer part). */
static kiln_schedule *split_vectorized(kiln_ctx *ctx, kiln_tensor *Y, int axis, int64_t lanes, kiln_iter **outer)
{
	kiln_schedule *sch = kiln_schedule_create(ctx, 1, &Y);
	kiln_stage *st = kiln_stage_of(sch, Y);
	kiln_iter *o, *in;
	ck_assert_int_eq(kiln_split(st, kiln_stage_axis(st, axis), lanes, &o, &in), 0);
	ck_assert_int_eq(kiln_vectorize(st, in), 0);
	if (outer)
		*outer = o;
	return sch;
}

/* ---- vector loads with a constant stride, and clamped ones (on x86 with AVX
 * the lanes at a clamped edge come from masked loads, elsewhere a gather;
 * the guard page after X catches a read past its last element) ---- */

typedef struct {
	kiln_tensor *X;
	int64_t s, len;
	int clamp; /* 0: none; -1: s*i - 1 clamped below at 0; 1: s*i + s clamped above at len - 1 */
} strided_fix;

/* Y[i] = sum_o X[s*i + o] * (o + 1), or with clamp: X[clamp(s*i - 1 or s*i + s, 0, len - 1)] */
static kiln_expr *strided_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	strided_fix *f = user;
	kiln_expr *base = kiln_mul(ctx, idx[0], kiln_int(ctx, f->s));
	if (f->clamp) {
		kiln_expr *i = kiln_add(ctx, base, kiln_int(ctx, f->clamp < 0 ? -1 : f->s));
		i = kiln_max(ctx, kiln_min(ctx, i, kiln_int(ctx, f->len - 1)), kiln_int(ctx, 0));
		return kiln_read(ctx, f->X, &i);
	}
	kiln_expr *sum = NULL;
	for (int64_t o = 0; o < f->s; o++) {
		kiln_expr *i = kiln_add(ctx, base, kiln_int(ctx, o));
		kiln_expr *t = kiln_mul(ctx, kiln_read(ctx, f->X, &i), kiln_float(ctx, (double)(o + 1)));
		sum = sum ? kiln_add(ctx, sum, t) : t;
	}
	return sum;
}

/*
 * Strided lanes are loaded as whole vectors and shuffled, clamped ones as a
 * whole vector where the clamp does nothing: neither may read past the last
 * element a lane reads. The input ends right before a page the process may
 * not read, so one element too far is a crash, not a quiet pass.
 */
START_TEST(strided_vector_loads)
{
	long page = sysconf(_SC_PAGESIZE);
	static const int lanes[] = {4, 8, 14, 16};
	for (int clamp = -1; clamp <= 1; clamp++)
		for (int64_t s = 1; s <= 4; s++)
			for (size_t l = 0; l < sizeof lanes / sizeof *lanes; l++) {
				/* a row that is not whole vectors: the last one shifted inwards */
				int64_t W = 3 * lanes[l] + 1, len = s * W;
				size_t bytes = (size_t)len * sizeof(float), span = (bytes + (size_t)page - 1) / (size_t)page * (size_t)page;
				char *map = mmap(NULL, span + (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
				ck_assert(map != MAP_FAILED);
				ck_assert_int_eq(mprotect(map + span, (size_t)page, PROT_NONE), 0);
				float *x = (float *)(map + span - bytes);
				for (int64_t i = 0; i < len; i++)
					x[i] = (float)((i * 37) % 101) * 0.01f - 0.5f;
				kiln_ctx *ctx = kiln_ctx_new();
				strided_fix f = {kiln_placeholder(ctx, "X", 1, &len, KILN_F32), s, len, clamp};
				kiln_tensor *Y = kiln_compute(ctx, "Y", 1, &W, strided_body, &f);
				kiln_schedule *sch = split_vectorized(ctx, Y, 0, lanes[l], NULL);
				kiln_module *m = kiln_build_schedule(sch, "f", 2, (kiln_tensor *[]){f.X, Y}, "llvm");
				ck_assert_msg(m, "%s", kiln_error(ctx));
				kiln_array *xa = kiln_array_wrap(x, 1, &len, KILN_F32), *ya = tu_guarded_array(1, &W, KILN_F32);
				ck_assert_int_eq(kiln_module_call(m, "f", (kiln_array *[]){xa, ya}, 2), 0);
				ck_assert(tu_guard_intact("Y", ya));
				const float *y = ya->data;
				for (int64_t i = 0; i < W; i++) {
					double want = 0;
					if (clamp) {
						int64_t k = clamp < 0 ? s * i - 1 : s * i + s;
						want = x[k < 0 ? 0 : k > len - 1 ? len - 1 : k];
					} else {
						for (int64_t d = 0; d < s; d++)
							want += (double)x[s * i + d] * (double)(d + 1);
					}
					ck_assert_msg(fabs(y[i] - want) <= 1e-5, "stride %lld, %d lanes, clamp %d: Y[%lld] = %g, want %g",
					              (long long)s, lanes[l], clamp, (long long)i, y[i], want);
				}
				kiln_array_free(xa);
				kiln_array_free(ya);
				kiln_module_free(m);
				kiln_ctx_free(ctx);
				munmap(map, span + (size_t)page);
			}
}
END_TEST

/* Y[i, j] = X[i] * (j + 1): with j unrolled inside a vector of i, k stores of stride k, one interleaved group */
static kiln_expr *interleave_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	fix *f = user;
	return kiln_mul(ctx, KILN_READ(ctx, f->A, idx[0]), kiln_cast(ctx, KILN_F32, kiln_add(ctx, idx[1], kiln_int(ctx, 1))));
}

/* Y[i] = (u64)(i - 4) < 10 ? 1 : 0: unsigned, so i < 4 wraps to huge and is out of range */
static kiln_expr *unsigned_range_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	(void)user;
	kiln_expr *u = kiln_cast(ctx, KILN_DT(KILN_UINT, 64), kiln_sub(ctx, idx[0], kiln_int(ctx, 4)));
	return kiln_select(ctx, kiln_lt(ctx, u, kiln_const(ctx, KILN_DT(KILN_UINT, 64), 10)), kiln_float(ctx, 1),
	                   kiln_float(ctx, 0));
}

/*
 * Stores of stride k = 2, 3, 4 unrolled side by side become one contiguous
 * store (codegen's store groups); a vector select over an unsigned range
 * keeps its per-lane answer (the all-lanes test reads only signed ramps).
 */
START_TEST(interleaved_stores_and_unsigned_selects)
{
	for (int64_t k = 2; k <= 4; k++) {
		fix f = {kiln_ctx_new()};
		int64_t W = 37;
		f.A = kiln_placeholder(f.ctx, "A", 1, &W, KILN_F32);
		kiln_tensor *Y = kiln_compute(f.ctx, "Y", 2, (int64_t[]){W, k}, interleave_body, &f);
		kiln_schedule *sch = kiln_schedule_create(f.ctx, 1, &Y);
		kiln_stage *st = kiln_stage_of(sch, Y);
		kiln_iter *io, *ii;
		ck_assert_int_eq(kiln_split(st, kiln_stage_axis(st, 0), 8, &io, &ii), 0);
		ck_assert_int_eq(kiln_reorder(st, 3, (kiln_iter *[]){io, kiln_stage_axis(st, 1), ii}), 0);
		ck_assert_int_eq(kiln_unroll(st, kiln_stage_axis(st, 1)), 0);
		ck_assert_int_eq(kiln_vectorize(st, ii), 0);
		ck_assert_double_le(tu_check_ref(f.ctx, sch, 2, (kiln_tensor *[]){f.A, Y}, 3, "llvm", NULL, NULL), 1e-6);
		kiln_ctx_free(f.ctx);
	}
	fix f = {kiln_ctx_new()};
	int64_t W = 32;
	kiln_tensor *Y = kiln_compute(f.ctx, "Y", 1, &W, unsigned_range_body, &f);
	kiln_schedule *sch = split_vectorized(f.ctx, Y, 0, 4, NULL);
	kiln_module *m = kiln_build_schedule(sch, "f", 1, &Y, "llvm");
	ck_assert_msg(m, "%s", kiln_error(f.ctx));
	kiln_array *y = tu_guarded_array(1, &W, KILN_F32);
	ck_assert_int_eq(kiln_module_call(m, "f", &y, 1), 0);
	for (int64_t i = 0; i < W; i++)
		ck_assert_msg(((float *)y->data)[i] == (i >= 4 && i < 14 ? 1.0f : 0.0f), "Y[%lld] = %g", (long long)i,
		              ((float *)y->data)[i]);
	kiln_array_free(y);
	kiln_module_free(m);
	kiln_ctx_free(f.ctx);
}
END_TEST

/* Y[j] = P[j / 8, 1, j % 8] * 2: a row read from panels of 2 x 8, as the packed matmul reads B */
static kiln_expr *panel_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	fix *f = user;
	kiln_expr *eight = kiln_const(ctx, KILN_I64, 8);
	return kiln_mul(ctx, KILN_READ(ctx, f->A, kiln_div(ctx, idx[0], eight), kiln_int(ctx, 1), kiln_mod(ctx, idx[0], eight)),
	                kiln_float(ctx, 2));
}

/*
 * A split of 28 columns by 8 shifts its last tile inwards to start at 20;
 * read through div/mod, that start made every tile's vector a gather (the
 * packed classifier of MobileNetV2 ran at 5 GFLOP/s). The loop is
 * partitioned: tiles 0-2 read whole panels, only the last keeps the
 * general index. Serial and parallel tile loops, against plain C.
 */
START_TEST(partitioned_shifted_tiles)
{
	for (int par = 0; par <= 1; par++) {
		fix f = {kiln_ctx_new()};
		int64_t W = 28, pshape[3] = {4, 2, 8};
		f.A = kiln_placeholder(f.ctx, "P", 3, pshape, KILN_F32);
		kiln_tensor *Y = kiln_compute(f.ctx, "Y", 1, &W, panel_body, &f);
		kiln_iter *o;
		kiln_schedule *sch = split_vectorized(f.ctx, Y, 0, 8, &o);
		if (par)
			ck_assert_int_eq(kiln_parallel(kiln_stage_of(sch, Y), o), 0);
		const char *ir = lowered(sch, 2, (kiln_tensor *[]){f.A, Y});
		ck_assert_msg(strstr(ir, "if (i.outer < 3) {") && strstr(ir, "P[ramp(i.outer*16 + 8, 1, 8)]") &&
		                  strstr(ir, "Y[ramp(20, 1, 8)]"),
		              "want aligned panels for tiles 0-2 and the shifted tile apart:\n%.3000s", ir);
		kiln_module *m = kiln_build_schedule(sch, "f", 2, (kiln_tensor *[]){f.A, Y}, "llvm");
		ck_assert_msg(m, "%s", kiln_error(f.ctx));
		kiln_array *pa = tu_guarded_array(3, pshape, KILN_F32), *ya = tu_guarded_array(1, &W, KILN_F32);
		float *p = pa->data;
		for (int i = 0; i < 64; i++)
			p[i] = (float)((i * 7) % 13) - 6.0f;
		memset(ya->data, 0xff, sizeof(float) * (size_t)W); /* NaN poison */
		ck_assert_int_eq(kiln_module_call(m, "f", (kiln_array *[]){pa, ya}, 2), 0);
		ck_assert(tu_guard_intact("Y", ya));
		for (int64_t j = 0; j < W; j++) {
			float want = 2 * p[j / 8 * 16 + 8 + j % 8];
			ck_assert_msg(((float *)ya->data)[j] == want, "parallel %d: Y[%lld] = %g, want %g", par, (long long)j,
			              ((float *)ya->data)[j], want);
		}
		kiln_array_free(pa);
		kiln_array_free(ya);
		kiln_module_free(m);
		kiln_ctx_free(f.ctx);
	}
}
END_TEST

/* Y[j, i] = (s*i + B[j]) OP K, or K OP that: a vector of i compared with a bound, per row j (B a tensor: no bounds to fold with) */
typedef struct {
	kiln_tensor *B;
	int op, ramp_first;
	int64_t s, k;
} cmp_fix;

static kiln_expr *ramp_cmp_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	static kiln_expr *(*const ops[])(kiln_ctx *, kiln_expr *, kiln_expr *) = {kiln_lt, kiln_le, kiln_gt, kiln_ge};
	cmp_fix *f = user;
	kiln_expr *r = kiln_add(ctx, kiln_mul(ctx, idx[1], kiln_int(ctx, f->s)), KILN_READ(ctx, f->B, idx[0]));
	kiln_expr *k = ir_int(ctx, IR_I64, f->k); /* int64: kiln_int makes int32 immediates */
	kiln_expr *c = f->ramp_first ? ops[f->op](ctx, r, k) : ops[f->op](ctx, k, r);
	return kiln_select(ctx, c, kiln_float(ctx, 1), kiln_float(ctx, 0));
}

/*
 * Vector compares of a ramp with a bound become 32-bit lane offsets against
 * one clamped, saturated scalar difference (codegen's lane_cmp: the LLVM IR
 * compares <16 x i32>): every operator, both orders, rising and falling
 * strides, ramps starting far out (2^62) and bounds inside the lanes, far
 * outside them and at the ends of int64 (where K - b overflows), against
 * the same compare in C.
 */
START_TEST(ramp_compares)
{
	enum { NS = 3, NB = 7 };
	static const int64_t strides[NS] = {1, 3, -2},
	                     bounds[NB] = {0, 5, -7, (int64_t)1 << 40, -((int64_t)1 << 40), INT64_MAX, INT64_MIN},
	                     starts[] = {0, -600, 5, -3, (int64_t)1 << 62, -((int64_t)1 << 62), 17, -40};
	int64_t J = 8, I = 32;
	/* one module per operator and order, one function per stride and bound:
	 * a build per case spent its time (under valgrind, minutes) in LLVM */
	for (int op = 0; op < 4; op++)
		for (int rf = 0; rf <= 1; rf++) {
			kiln_ctx *ctx = kiln_ctx_new();
			cmp_fix f[NS * NB];
			kiln_func *fns[NS * NB];
			for (int c = 0; c < NS * NB; c++) {
				f[c] = (cmp_fix){kiln_placeholder(ctx, "B", 1, &J, KILN_I64), op, rf, strides[c / NB], bounds[c % NB]};
				kiln_tensor *Y = kiln_compute(ctx, "Y", 2, (int64_t[]){J, I}, ramp_cmp_body, &f[c]);
				kiln_schedule *sch = split_vectorized(ctx, Y, 1, 16, NULL);
				fns[c] = kiln_lower(sch, ir_fmt(ctx, "f%d", c), 2, (kiln_tensor *[]){f[c].B, Y}, NULL);
				ck_assert_msg(fns[c], "%s", kiln_error(ctx));
			}
			if (op == 0 && rf) {
				char *text = NULL;
				size_t len = 0;
				FILE *m = open_memstream(&text, &len);
				ck_assert_int_eq(kiln_llvm_ir(ctx, 1, &fns[1], 0, m), 0); /* stride 1, bound 5 */
				fclose(m);
				ck_assert_msg(strstr(text, "icmp slt <16 x i32>"), "want 32-bit lane compares:\n%.3000s", text);
				free(text);
			}
			kiln_module *m = kiln_build(ctx, NS * NB, fns, "llvm");
			ck_assert_msg(m, "%s", kiln_error(ctx));
			kiln_array *b = kiln_array_wrap((void *)starts, 1, &J, KILN_I64);
			for (int c = 0; c < NS * NB; c++) {
				kiln_array *y = tu_guarded_array(2, (int64_t[]){J, I}, KILN_F32);
				ck_assert_int_eq(kiln_module_call(m, ir_fmt(ctx, "f%d", c), (kiln_array *[]){b, y}, 2), 0);
				for (int64_t j = 0; j < J; j++)
					for (int64_t i = 0; i < I; i++) {
						int64_t r = f[c].s * i + starts[j], a = rf ? r : f[c].k, d = rf ? f[c].k : r;
						bool want = op == 0 ? a < d : op == 1 ? a <= d : op == 2 ? a > d : a >= d;
						ck_assert_msg(((float *)y->data)[j * I + i] == (want ? 1.0f : 0.0f),
						              "op %d, ramp first %d, stride %lld, bound %lld: Y[%lld, %lld] = %g", op, rf,
						              (long long)f[c].s, (long long)f[c].k, (long long)j, (long long)i,
						              ((float *)y->data)[j * I + i]);
					}
				ck_assert(tu_guard_intact("Y", y));
				kiln_array_free(y);
			}
			kiln_array_free(b);
			kiln_module_free(m);
			kiln_ctx_free(ctx);
		}
}
END_TEST

/* Y[i] = X[clamp(s*i - 8)] with the bounds B[0] (lo) and B[1] (hi) read at run time, nested either way */
typedef struct {
	kiln_tensor *X, *B;
	int64_t s;
	int min_outer;
} clamp_fix;

static kiln_expr *clamp_any_body(kiln_ctx *ctx, kiln_expr *const *idx, void *user)
{
	clamp_fix *f = user;
	kiln_expr *i = kiln_add(ctx, kiln_mul(ctx, idx[0], kiln_int(ctx, f->s)), kiln_int(ctx, -8));
	kiln_expr *lo = KILN_READ(ctx, f->B, kiln_int(ctx, 0)), *hi = KILN_READ(ctx, f->B, kiln_int(ctx, 1));
	i = f->min_outer ? kiln_min(ctx, kiln_max(ctx, i, lo), hi) : kiln_max(ctx, kiln_min(ctx, i, hi), lo);
	return kiln_read(ctx, f->X, &i);
}

/*
 * x86 code generation by target: AMD's SSE4a off, for the host and for a
 * named AMD CPU, even when -mattr asks for it (LLVM picks its insertq for
 * some shuffles, and after 256-bit AVX code each one cost 123 ns on a Zen 3
 * VM: jit.c), and masked loads at the edges of a clamped range wherever
 * vectors are 256 bits or wider, a CPU given by name included (its -mattr
 * lists nothing), and not where -mattr takes AVX away. Code is generated, not
 * run; elsewhere than x86 there is nothing to check.
 */
/* Whether every target-features list in LLVM IR text turns SSE4a off (its last mention of it wins). */
static bool sse4a_off(const char *ir)
{
	int lists = 0;
	for (const char *p = ir; (p = strstr(p, "\"target-features\"=\"")); lists++) {
		p += strlen("\"target-features\"=\"");
		const char *end = strchr(p, '"'), *last = NULL;
		for (const char *q = p; (q = strstr(q, "sse4a")) && q < end; q++)
			last = q;
		if (!last || last == p || last[-1] != '-')
			return false;
	}
	return lists > 0;
}

START_TEST(x86_targets)
{
	static const struct {
		const char *target;
		bool masked;
	} cases[] = {{"llvm -mcpu=znver3", true},
	             {"llvm -mcpu=znver2 -mattr=+avx2", true},
	             {"llvm -mcpu=haswell", true},
	             {"llvm -mcpu=znver3 -mattr=+sse4a", true},
	             {"llvm -mcpu=haswell -mattr=-avx", false},
	             {"llvm -mcpu=x86-64", false}};
	for (size_t k = 0; k < sizeof cases / sizeof *cases + 1; k++) {
		const char *target = k < sizeof cases / sizeof *cases ? cases[k].target : "llvm";
		kiln_ctx *ctx = kiln_ctx_new();
		int64_t len = 64, W = 48, two = 2;
		clamp_fix f = {kiln_placeholder(ctx, "X", 1, &len, KILN_F32), kiln_placeholder(ctx, "B", 1, &two, KILN_I64), 1, 0};
		kiln_tensor *Y = kiln_compute(ctx, "Y", 1, &W, clamp_any_body, &f);
		kiln_module *m = kiln_build_schedule(split_vectorized(ctx, Y, 0, 16, NULL), "f", 3, (kiln_tensor *[]){f.X, f.B, Y},
		                                     target);
		ck_assert_msg(m, "%s: %s", target, kiln_error(ctx));
		char *text = NULL;
		size_t len_text = 0;
		FILE *out = open_memstream(&text, &len_text);
		ck_assert_int_eq(kiln_module_llvm_ir(m, out), 0);
		fclose(out);
		if (strstr(text, "target triple = \"x86_64")) {
			ck_assert_msg(sse4a_off(text), "%s: SSE4a not off:\n%.3000s", target, text);
			if (k < sizeof cases / sizeof *cases)
				ck_assert_msg(!strstr(text, "llvm.masked.load") == !cases[k].masked, "%s: want %s:\n%.3000s", target,
				              cases[k].masked ? "masked loads" : "no masked loads", text);
		}
		free(text);
		kiln_module_free(m);
		kiln_ctx_free(ctx);
	}
}
END_TEST

/*
 * Clamped vector loads whose bounds the compiler cannot see: both nestings
 * (max(min(i, hi), lo) and min(max(i, lo), hi), which differ when lo > hi),
 * strides 1-3, bounds inside the buffer, equal, or crossed; X between two
 * inaccessible pages (touching either end), so no lane reads what the
 * clamped index would not.
 */
START_TEST(clamped_loads_any_bounds)
{
	long page = sysconf(_SC_PAGESIZE);
	static const int64_t los[] = {0, 10, 20, 5}, his[] = {63, 20, 10, 5};
	int64_t len = 64, W = 48, two = 2;
	for (int front = 0; front <= 1; front++)
		for (int mo = 0; mo <= 1; mo++)
			for (int64_t s = 1; s <= 3; s++)
				for (size_t b = 0; b < 4; b++) {
					char *map = mmap(NULL, 3 * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
					ck_assert(map != MAP_FAILED);
					ck_assert_int_eq(mprotect(map, (size_t)page, PROT_NONE), 0);
					ck_assert_int_eq(mprotect(map + 2 * page, (size_t)page, PROT_NONE), 0);
					float *x = front ? (float *)(map + page) : (float *)(map + 2 * page) - len;
					for (int64_t i = 0; i < len; i++)
						x[i] = (float)i;
					int64_t bounds[2] = {los[b], his[b]};
					kiln_ctx *ctx = kiln_ctx_new();
					clamp_fix f = {kiln_placeholder(ctx, "X", 1, &len, KILN_F32), kiln_placeholder(ctx, "B", 1, &two, KILN_I64),
					               s, mo};
					kiln_tensor *Y = kiln_compute(ctx, "Y", 1, &W, clamp_any_body, &f);
					kiln_schedule *sch = split_vectorized(ctx, Y, 0, 16, NULL);
					kiln_module *m = kiln_build_schedule(sch, "f", 3, (kiln_tensor *[]){f.X, f.B, Y}, "llvm");
					ck_assert_msg(m, "%s", kiln_error(ctx));
					kiln_array *xa = kiln_array_wrap(x, 1, &len, KILN_F32), *ba = kiln_array_wrap(bounds, 1, &two, KILN_I64);
					kiln_array *ya = tu_guarded_array(1, &W, KILN_F32);
					ck_assert_int_eq(kiln_module_call(m, "f", (kiln_array *[]){xa, ba, ya}, 3), 0);
					for (int64_t i = 0; i < W; i++) {
						int64_t k = s * i - 8, lo = bounds[0], hi = bounds[1];
						k = mo ? (k < lo ? lo : k) : (k > hi ? hi : k);
						k = mo ? (k > hi ? hi : k) : (k < lo ? lo : k);
						ck_assert_msg(((float *)ya->data)[i] == (float)k, "%s, stride %lld, bounds %lld..%lld: Y[%lld] = %g, want %lld",
						              mo ? "min(max())" : "max(min())", (long long)s, (long long)lo, (long long)hi,
						              (long long)i, ((float *)ya->data)[i], (long long)k);
					}
					ck_assert(tu_guard_intact("Y", ya));
					kiln_array_free(xa);
					kiln_array_free(ba);
					kiln_array_free(ya);
					kiln_module_free(m);
					kiln_ctx_free(ctx);
					munmap(map, 3 * (size_t)page);
				}
}
END_TEST

/* ---- calls: count, dtype, shape ---- */

START_TEST(misuse_calls)
{
	fix f = chain(4, 6);
	kiln_schedule *s = kiln_schedule_create(f.ctx, 1, &f.C);
	kiln_module *m = kiln_build_schedule(s, "f", 2, (kiln_tensor *[]){f.A, f.C}, "llvm");
	ck_assert_ptr_nonnull(m);
	kiln_array *a = kiln_array_empty(2, (int64_t[]){4, 6}, KILN_F32), *c = kiln_array_empty(2, (int64_t[]){4, 6}, KILN_F32);
	kiln_array *d = kiln_array_empty(2, (int64_t[]){4, 6}, KILN_F64), *e = kiln_array_empty(2, (int64_t[]){6, 4}, KILN_F32);
	ck_assert_int_eq(kiln_module_call(m, "f", (kiln_array *[]){a, c}, 2), 0);
	ck_assert_int_eq(kiln_module_call(m, "f", (kiln_array *[]){a}, 1), -1);
	ck_assert_str_eq(kiln_rt_last_error(), "f expects 2 arguments (A, C), got 1");
	ck_assert_int_eq(kiln_module_call(m, "f", (kiln_array *[]){d, c}, 2), -1);
	ck_assert_str_eq(kiln_rt_last_error(), "argument 0 (A) of f has dtype float64, expected float32");
	ck_assert_int_eq(kiln_module_call(m, "f", (kiln_array *[]){a, e}, 2), -1);
	ck_assert_str_eq(kiln_rt_last_error(), "argument 1 (C) of f has shape [6, 4], expected [4, 6]");
	ck_assert_int_eq(kiln_module_call(m, "g", (kiln_array *[]){a, c}, 2), -1);
	ck_assert_str_eq(kiln_rt_last_error(), "no function 'g' in the module (it has: f)");
	ck_assert_int_eq(kiln_module_call(m, "f", (kiln_array *[]){a, NULL}, 2), -1);
	ck_assert_str_eq(kiln_rt_last_error(), "argument 1 (C) of f is NULL");
	kiln_func *fn = kiln_lower(s, "f", 2, (kiln_tensor *[]){f.A, f.C}, NULL);
	ck_assert_ptr_null(kiln_build(f.ctx, 1, &fn, "vulkan"));
	ck_assert_str_eq(kiln_error(f.ctx), "build: unknown target 'vulkan' (llvm, wasm, opencl, webgl, webgpu, webgpu-cpu; llvm takes -mcpu= and -mattr=)");
	kiln_array_free(a);
	kiln_array_free(c);
	kiln_array_free(d);
	kiln_array_free(e);
	kiln_module_free(m);
	kiln_ctx_free(f.ctx);
}
END_TEST

Suite *schedule_suite(void)
{
	Suite *s = suite_create("schedule");
	TCase *tc = tcase_create("primitives");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, prim_split);
	tcase_add_test(tc, strided_vector_loads);
	tcase_add_test(tc, interleaved_stores_and_unsigned_selects);
	tcase_add_test(tc, partitioned_shifted_tiles);
	tcase_add_test(tc, x86_targets);
	tcase_add_test(tc, prim_split_reduce_guard);
	tcase_add_test(tc, prim_fuse_reorder_parallel);
	tcase_add_test(tc, prim_tile_vectorize_unroll);
	tcase_add_test(tc, prim_compute_at_root_inline);
	tcase_add_test(tc, prim_caches);
	tcase_add_test(tc, prim_rfactor);
	tcase_add_test(tc, prim_storage_order);
	tcase_add_test(tc, prim_storage_align);
	tcase_add_test(tc, prim_double_buffer_refusals);
	tcase_add_test(tc, bounds_through_divmod);
	tcase_add_test(tc, prim_vthread);
	tcase_add_test(tc, prim_bind);
	tcase_add_test(tc, llvm_ir_text);
	tcase_add_test(tc, misuse);
	tcase_add_test(tc, misuse_lowering);
	tcase_add_test(tc, misuse_calls);
	suite_add_tcase(s, tc);
	/* sweeps of generated compares and clamps against C, a few hundred
	 * small functions: LLVM's time, so not under valgrind (scripts/test.sh) */
	TCase *sweeps = tcase_create("codegen_sweeps");
	tcase_set_timeout(sweeps, 120);
	tcase_set_tags(sweeps, "slow");
	tcase_add_test(sweeps, ramp_compares);
	tcase_add_test(sweeps, clamped_loads_any_bounds);
	suite_add_tcase(s, sweeps);
	return s;
}

int main(void)
{
	int failed = tu_run_suite(schedule_suite());
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
