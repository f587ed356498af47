/*
 * test_ops.c — every operator of the registry against the oracle, under
 * its default CPU schedule and under a second, hand-written one that
 * inlines producers, splits by odd factors (guards and shifted tiles),
 * unrolls and parallelizes. Shapes are deliberately not multiples of 16.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "kiln/ops.h"
#include "reference.h"
#include "schedule/schedule.h"
#include "testutil.h"

/* The second schedule: the same for every operator, written by hand. */
static kiln_schedule *stress_schedule(kiln_ctx *ctx, kiln_op_inst *o)
{
	kiln_tensor *out = o->args[o->nargs - 1];
	kiln_schedule *s = kiln_schedule_create(ctx, 1, &out);
	kiln_stage *st = kiln_stage_of(s, out);
	/* inline every elementwise producer reachable through the output's reads */
	for (int i = 0; i < s->nstage; i++) {
		kiln_stage *p = s->stages[i];
		if (p != st && p->op->nreduce == 0 && p->op->tag && !strcmp(p->op->tag, "injective"))
			kiln_compute_inline(p);
	}
	for (int i = 0; i < s->nstage; i++) {
		kiln_stage *p = s->stages[i];
		if (p->attach == ATTACH_INLINE || p->op->naxis == 0)
			continue;
		kiln_iter *last = kiln_stage_axis(p, p->op->naxis - 1), *o3, *i3;
		if (kiln_split(p, last, 3, &o3, &i3))
			return NULL;
		if (kiln_unroll(p, i3))
			return NULL;
		if (p->op->nreduce) {
			kiln_iter *k = kiln_stage_reduce_axis(p, 0), *ko, *ki;
			if (kiln_split(p, k, 2, &ko, &ki))
				return NULL;
		}
		if (p->op->naxis > 1 && kiln_parallel(p, kiln_stage_axis(p, 0)))
			return NULL;
	}
	return s;
}

static void run_op(const kiln_op_info *info, bool stress)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_op_inst o;
	ck_assert_msg(kiln_op_declare(ctx, info, kiln_op_example_rank(info), info->example, "", &o) == 0,
	              "%s: declare failed: %s", info->name, kiln_error(ctx));
	kiln_tensor *out = o.args[o.nargs - 1];
	kiln_schedule *s = stress ? stress_schedule(ctx, &o) : kiln_schedule_cpu(ctx, 1, &out);
	ck_assert_msg(s != NULL, "%s: schedule failed: %s", info->name, kiln_error(ctx));
	double err = tu_check_ref(ctx, s, o.nargs, o.args, 42, "llvm", info->name, "");
	ck_assert_msg(err >= 0, "%s (%s schedule) does not match the oracle or the reference: %s", info->name, stress ? "stress" : "default",
	              kiln_error(ctx));
	kiln_ctx_free(ctx);
}

START_TEST(op_default) { run_op(kiln_op_at(_i), false); }
END_TEST

/*
 * Every operator's default schedule sized for other CPUs this host can run:
 * 16 AVX2 registers of 8 lanes (haswell), SSE's 4 lanes (x86-64). Sizing
 * from the target must never change what is computed.
 */
static const char *const cpu_targets[] = {"llvm -mcpu=haswell", "llvm -mcpu=x86-64"};

START_TEST(op_default_other_cpus)
{
	const kiln_op_info *info = kiln_op_at(_i / 2);
	const char *target = cpu_targets[_i % 2];
	kiln_target t;
	char err[256];
	ck_assert_int_eq(kiln_target_parse(target, &t, err, sizeof err), 0);
	if (!kiln_target_runs_here(&t))
		return; /* (x86-64 and haswell run on every machine kiln is developed on) */
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_op_inst o;
	ck_assert_int_eq(kiln_op_declare(ctx, info, kiln_op_example_rank(info), info->example, "", &o), 0);
	kiln_schedule *s = kiln_schedule_for(ctx, target, 1, &o.args[o.nargs - 1]);
	ck_assert_msg(s != NULL, "%s: %s", info->name, kiln_error(ctx));
	double e = tu_check_ref(ctx, s, o.nargs, o.args, 42, target, info->name, "");
	ck_assert_msg(e >= 0, "%s on %s: %s", info->name, target, kiln_error(ctx));
	kiln_ctx_free(ctx);
}
END_TEST

/* Whether text holds a vector of exactly `lanes` lanes ("x8(" or ", 8)" of a ramp) and none wider than it. */
static bool widest_lanes(const char *text, int lanes)
{
	char want[16];
	snprintf(want, sizeof want, "x%d(", lanes);
	bool found = strstr(text, want) != NULL;
	for (int l = lanes * 2; l <= 64; l *= 2) {
		char wider[16];
		snprintf(wider, sizeof wider, "x%d(", l);
		if (strstr(text, wider))
			return false;
	}
	return found;
}

/* Targets parse into what schedules size from; the matmul's register blocks follow the vector width. */
START_TEST(targets_size_schedules)
{
	kiln_target t;
	char err[256];
	ck_assert_int_eq(kiln_target_parse("llvm -mcpu=haswell", &t, err, sizeof err), 0);
	ck_assert_int_eq(t.vector_bits, 256);
	ck_assert_int_eq(t.vector_regs, 16);
	ck_assert(t.fma && !t.host);
	ck_assert_int_eq(kiln_target_parse("llvm -mcpu=haswell -mattr=+avx512f", &t, err, sizeof err), 0);
	ck_assert_int_eq(t.vector_bits, 512);
	ck_assert_int_eq(kiln_target_parse("llvm -mcpu=znver4 -mattr=-avx512f", &t, err, sizeof err), 0);
	ck_assert_int_eq(t.vector_bits, 256);
	ck_assert_int_eq(kiln_target_parse("wasm", &t, err, sizeof err), 0);
	ck_assert_int_eq(t.vector_bits, 128);
	ck_assert_int_eq(kiln_target_parse("llvm", &t, err, sizeof err), 0);
	ck_assert(t.host && t.vector_bits >= 128 && t.cores >= 1);
	ck_assert_int_eq(kiln_target_parse("llvm -mcpu=pentium5", &t, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "unknown CPU 'pentium5'"), "%s", err);
	ck_assert_int_eq(kiln_target_parse("wasm -mcpu=haswell", &t, err, sizeof err), -1);
	ck_assert_int_eq(kiln_target_parse("llvm -mattr=+avx2;rm", &t, err, sizeof err), -1);
	ck_assert_int_eq(kiln_target_parse("", &t, err, sizeof err), -1);
	/* the register block: 28 accumulators of 32 registers leave 8 rows x 2 vectors; 12 of 16, 6 x 2; wasm
	 * keeps half of its 16 for V8 (6 x 2 ran at half the speed of 4 x 2): 4 x 2. A matrix-vector product
	 * (one row): AVX2 takes the whole packed panel of 32 columns, wasm two vectors. */
	static const struct {
		const char *target;
		int lanes;
		int64_t m, n;
		const char *block;
	} cases[] = {{"llvm -mcpu=skylake-avx512", 16, 64, 64, "allocate matmul.local[float32 * 256]"},
	             {"llvm -mcpu=haswell", 8, 64, 64, "allocate matmul.local[float32 * 96]"},
	             {"wasm", 4, 64, 64, "allocate matmul.local[float32 * 32]"},
	             {"llvm -mcpu=haswell", 8, 1, 96, "allocate matmul.local[float32 * 32]"},
	             {"wasm", 4, 1, 96, "allocate matmul.local[float32 * 8]"}};
	for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
		kiln_ctx *ctx = kiln_ctx_new();
		kiln_tensor *A = kiln_placeholder(ctx, "A", 2, (int64_t[]){cases[c].m, 64}, KILN_F32);
		kiln_tensor *B = kiln_placeholder(ctx, "B", 2, (int64_t[]){64, cases[c].n}, KILN_F32);
		kiln_tensor *C = kiln_op_matmul(ctx, A, B, 0, 0);
		kiln_schedule *s = kiln_schedule_for(ctx, cases[c].target, 1, &C);
		ck_assert_msg(s, "%s", kiln_error(ctx));
		char *text = tu_lowered_text(ctx, s, 3, (kiln_tensor *[]){A, B, C});
		/* the accumulators: vectors of one register; B read contiguously within its panels */
		char acc[64];
		snprintf(acc, sizeof acc, "matmul.local[ramp(");
		ck_assert_msg(strstr(text, acc) && widest_lanes(strstr(text, "matmul.local"), cases[c].lanes) &&
		                  !strstr(text, "% x") && strstr(text, cases[c].block),
		              "%s, %lld rows:\n%.3000s", cases[c].target, (long long)cases[c].m, text);
		free(text);
		kiln_ctx_free(ctx);
	}
}
END_TEST

START_TEST(op_stress) { run_op(kiln_op_at(_i), true); }
END_TEST

/* Attributes the example shapes do not reach: strides, padding, groups, transposes. */
static kiln_schedule *cpu_schedule(kiln_ctx *ctx, kiln_tensor *out) { return kiln_schedule_cpu(ctx, 1, &out); }

#define RUN(name, attrs, ...) TU_RUN("llvm", cpu_schedule, name, attrs, __VA_ARGS__)

START_TEST(op_attrs)
{
	RUN("matmul", "trans_a=1,trans_b=1", 33, 70, 21);
	RUN("matmul", "", 64, 64, 64);
	/* rows too few for a register block: the whole packed panel per block, a shifted last one */
	RUN("matmul", "", 1, 100, 37);
	RUN("matmul", "trans_b=1", 3, 70, 20);
	RUN("batch_matmul", "trans_b=1", 2, 9, 40, 5);
	RUN("dense", "bias=0", 1, 100, 64);
	RUN("conv2d", "pad=1", 1, 8, 14, 14, 16, 3, 3);
	RUN("conv2d", "stride=2,pad=1,dilation=2", 2, 4, 13, 11, 6, 3, 3);
	RUN("conv2d", "groups=4,pad=1", 1, 8, 9, 9, 8, 3, 3);
	RUN("conv2d", "", 1, 3, 20, 20, 8, 1, 1);
	RUN("conv2d", "pad=1", 1, 3, 6, 40, 8, 3, 3);           /* wide rows: the direct form */
	RUN("conv2d", "stride=2,pad=2,dilation=2", 2, 5, 9, 70, 12, 3, 3);
	RUN("conv2d", "pad=1", 3, 4, 5, 5, 9, 3, 3);            /* the GEMM form over a batch */
	RUN("depthwise_conv2d", "stride=2,pad=1", 1, 4, 15, 15, 3, 3);
	RUN("max_pool2d", "kernel=3,stride=2,pad=1", 1, 2, 13, 13);
	RUN("avg_pool2d", "kernel=3,stride=2,pad=1", 1, 2, 13, 13);
	RUN("avg_pool2d", "kernel=3,stride=2,pad=1,count_include_pad=1", 1, 2, 13, 13);
	RUN("softmax", "axis=1", 3, 5, 7);
	RUN("add", "bshape=3x1x5", 2, 3, 4, 5);
	RUN("transpose", "perm=0x2x3x1", 2, 3, 4, 5);
	RUN("reshape", "to=5x24", 4, 6, 5);
	RUN("concat", "n=3,axis=2", 3, 4, 5);
	RUN("concat", "n=1,axis=0", 3, 4);
	/* values the defaults hide: a pad value that is not 0, an eps that matters */
	RUN("pad", "before=1x0x2,after=0x3x1,value=1.5", 2, 5, 6);
	RUN("layer_norm", "eps=0.25", 4, 3, 10);
	RUN("batch_norm", "eps=0.25", 1, 4, 3, 5);
	RUN("clip", "min=-0.2,max=0.7", 5, 11);
	RUN("softmax", "axis=0", 9, 4);
	RUN("matmul", "trans_a=1", 17, 9, 33);
	RUN("max_pool2d", "kernel=3,stride=1,pad=1", 2, 3, 7, 8);
	RUN("avg_pool2d", "kernel=2,stride=1", 1, 3, 6, 7);
	RUN("depthwise_conv2d", "dilation=2,pad=2", 2, 3, 9, 10, 3, 3);
	RUN("conv2d", "groups=2,stride=2", 1, 6, 11, 12, 4, 3, 3);
	RUN("sub", "bshape=5", 3, 4, 5);
	RUN("mul", "bshape=4x1", 2, 4, 6);
	RUN("div", "bshape=1x1x6", 3, 2, 6);
	RUN("transpose", "", 2, 3, 4);
	RUN("global_avg_pool2d", "", 2, 3, 1, 17);
	/* eight planes or more: each plane's padded input made inside its parallel task */
	RUN("max_pool2d", "kernel=3,stride=2,pad=1", 1, 8, 37, 37);
	RUN("depthwise_conv2d", "stride=2,pad=1", 2, 5, 35, 34, 3, 3);
	RUN("depthwise_conv2d", "pad=1", 1, 16, 20, 40, 3, 3);
	/* strided phases read from a padded plane widened to whole phases (26 -> 27 columns, 19 -> 20) */
	RUN("depthwise_conv2d", "stride=3,pad=2", 1, 9, 20, 22, 5, 5);
	RUN("depthwise_conv2d", "stride=2,pad=2,dilation=2", 1, 8, 13, 15, 3, 3);
	RUN("avg_pool2d", "kernel=3,stride=3,pad=1", 1, 8, 30, 50);
	RUN("max_pool2d", "kernel=4,stride=4", 3, 3, 20, 70);
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_conv2d_attrs bad = {{1, 1}, {0, 0, 0, 0}, {1, 1}, 3};
	kiln_tensor *X = kiln_placeholder(ctx, "X", 4, (int64_t[]){1, 4, 5, 5}, KILN_F32);
	kiln_tensor *W = kiln_placeholder(ctx, "W", 4, (int64_t[]){6, 4, 3, 3}, KILN_F32);
	ck_assert_ptr_null(kiln_op_conv2d(ctx, X, W, &bad));
	ck_assert_str_eq(kiln_error(ctx), "conv2d: 3 groups do not divide 4 input and 6 output channels");
	kiln_ctx_free(ctx);
	/* an output whose positions overflow (fuzz_cli found N * OH * OW overflowing in the GEMM form): refused */
	ctx = kiln_ctx_new();
	kiln_conv2d_attrs huge = {{2, 2}, {333333, 333333, 333333, 333333}, {1, 1}, 1};
	X = kiln_placeholder(ctx, "X", 4, (int64_t[]){1555555555, 6, 11, 1}, KILN_F32);
	W = kiln_placeholder(ctx, "W", 4, (int64_t[]){16, 6, 3, 3}, KILN_F32);
	ck_assert_ptr_null(kiln_op_conv2d(ctx, X, W, &huge));
	ck_assert_msg(strstr(kiln_error(ctx), "positions") != NULL, "%s", kiln_error(ctx));
	kiln_ctx_free(ctx);
}
END_TEST

/*
 * The Winograd and kpacked forms at the shapes their edges hide in. Tagged
 * "slow": its time goes to code generation, and winograd_transformed and
 * kpacked_packed take the same schedules through valgrind.
 */
START_TEST(op_attrs_conv_forms)
{
	/* Winograd: whole and partial tiles, padding 0 and 2, a batch, a row of tiles wider than a vector */
	RUN("conv2d_winograd", "pad=1", 1, 16, 16, 16, 24);
	RUN("conv2d_winograd", "pad=0", 2, 3, 11, 7, 5);
	RUN("conv2d_winograd", "pad=2", 1, 5, 6, 9, 3);
	RUN("conv2d_winograd", "pad=1", 1, 4, 8, 150, 4);
	/* F(2x2, 3x3): a 7x7 image, whole tiles, partial ones without padding, a batch */
	RUN("conv2d_winograd", "pad=1,tile=2", 1, 16, 7, 7, 24);
	RUN("conv2d_winograd", "pad=1,tile=2", 1, 8, 12, 16, 8);
	RUN("conv2d_winograd", "pad=0,tile=2", 2, 3, 11, 8, 5);
	/* output channels in lanes: strides, dilation, 1x1, channel counts that are not whole vectors, odd rows */
	RUN("conv2d_kpacked", "stride=2,pad=3", 1, 3, 23, 29, 40, 7, 7);
	RUN("conv2d_kpacked", "pad=1", 2, 9, 7, 7, 20, 3, 3);
	RUN("conv2d_kpacked", "", 1, 17, 13, 13, 70, 1, 1);
	RUN("conv2d_kpacked", "stride=2,pad=2,dilation=2", 1, 5, 15, 31, 33, 3, 3);
}
END_TEST

/*
 * A pooling whose input also feeds another output: the padded input can not
 * move inside the pooling's per-plane tasks (the other reader needs all of
 * it), so the schedule leaves it where it is and the pair still builds.
 */
START_TEST(pool_input_with_two_readers)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_tensor *X = kiln_placeholder(ctx, "X", 4, (int64_t[]){1, 8, 12, 12}, KILN_F32);
	kiln_tensor *R = kiln_op_unary(ctx, KILN_UN_RELU, X, 0, 0);
	kiln_pool2d_attrs pa = {{3, 3}, {2, 2}, {1, 1, 1, 1}, 0};
	kiln_tensor *P = kiln_op_max_pool2d(ctx, R, &pa), *E = kiln_op_unary(ctx, KILN_UN_EXP, R, 0, 0);
	kiln_tensor *outs[] = {P, E};
	kiln_schedule *s = kiln_schedule_cpu(ctx, 2, outs);
	ck_assert_msg(s, "%s", kiln_error(ctx));
	ck_assert_double_ge(tu_check(ctx, s, 3, (kiln_tensor *[]){X, P, E}, 5), 0);
	kiln_ctx_free(ctx);
}
END_TEST

/*
 * A GEMM-form convolution (rows of 14) with a ReLU after it: the ReLU reads
 * the product in place through the NCHW view, which is no longer copied
 * into a buffer of its own first; the pair matches the interpreter.
 */
START_TEST(gemm_conv_view_inlined)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_tensor *X = kiln_placeholder(ctx, "X", 4, (int64_t[]){1, 16, 14, 14}, KILN_F32);
	kiln_tensor *W = kiln_placeholder(ctx, "W", 4, (int64_t[]){24, 16, 1, 1}, KILN_F32);
	kiln_conv2d_attrs a = {{1, 1}, {0, 0, 0, 0}, {1, 1}, 1};
	kiln_tensor *Y = kiln_op_unary(ctx, KILN_UN_RELU, kiln_op_conv2d(ctx, X, W, &a), 0, 0);
	kiln_schedule *s = kiln_schedule_cpu(ctx, 1, &Y);
	ck_assert_msg(s, "%s", kiln_error(ctx));
	char *text = tu_lowered_text(ctx, s, 3, (kiln_tensor *[]){X, W, Y});
	ck_assert_msg(strstr(text, "allocate conv2d.gemm[") && !strstr(text, "allocate conv2d["),
	              "want the product read in place:\n%.3000s", text);
	free(text);
	ck_assert_double_ge(tu_check(ctx, kiln_schedule_cpu(ctx, 1, &Y), 3, (kiln_tensor *[]){X, W, Y}, 5), 0);
	kiln_ctx_free(ctx);
}
END_TEST

/* x[i] for a weight index: varied, repeatable, in [-1, 1] */
static float weight_at(int64_t i) { return (float)((i * 7919) % 201) / 100.0f - 1.0f; }

/* want = the independent reference's conv2d (tests/reference.c) of x and the raw weights w [K, C, R, S] */
static void conv_ref(const kiln_array *x, float *w, int64_t K, int64_t R, int64_t S, int64_t st, int64_t p,
                     const kiln_array *y, double *want)
{
	char attrs[64], err[256];
	snprintf(attrs, sizeof attrs, "stride=%lld,pad=%lld", (long long)st, (long long)p);
	kiln_array *wa = kiln_array_wrap(w, 4, (int64_t[]){K, x->shape[1], R, S}, KILN_F32);
	ck_assert_msg(!ref_eval("conv2d", attrs, 2, (const kiln_array *[]){x, wa}, y, want, err, sizeof err), "%s", err);
	kiln_array_free(wa);
}

typedef struct {
	int64_t N, C, H, W, K, R, st, pad;
} conv_case;

/*
 * One convolution form on one case against tests/reference.c's conv2d:
 * packed = 1, output channels in lanes with weights packed ahead
 * (kiln_conv2d_pack_weights, as the model compiler does); 0, the direct form
 * forced where kiln_op_conv2d would take the GEMM form. Guarded, poisoned.
 */
static void check_conv_form(int packed, const conv_case *cs, size_t seed)
{
	int64_t N = cs->N, C = cs->C, H = cs->H, Wd = cs->W, K = cs->K, R = cs->R;
	int64_t st = cs->st, p = cs->pad, OH = (H + 2 * p - R) / st + 1, OW = (Wd + 2 * p - R) / st + 1;
	int64_t wshape[4] = {C, R, R, K}, raw[4] = {K, C, R, R};
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_conv2d_attrs a = {{st, st}, {p, p, p, p}, {1, 1}, 1};
	kiln_tensor *X = kiln_placeholder(ctx, "X", 4, (int64_t[]){N, C, H, Wd}, KILN_F32);
	kiln_tensor *W = kiln_placeholder(ctx, "W", 4, packed ? wshape : raw, KILN_F32);
	kiln_tensor *Y = packed ? kiln_op_conv2d_kpacked(ctx, X, W, &a, 1) : kiln_op_conv2d_direct(ctx, X, W, &a);
	ck_assert_msg(Y && (packed || (Y->op->tag && !strcmp(Y->op->tag, "conv2d"))), "want the form: %s", kiln_error(ctx));
	kiln_module *m = kiln_build_schedule(kiln_schedule_cpu(ctx, 1, &Y), "f", 3, (kiln_tensor *[]){X, W, Y}, "llvm");
	ck_assert_msg(m, "%s", kiln_error(ctx));
	kiln_array *x = tu_guarded_array(4, (int64_t[]){N, C, H, Wd}, KILN_F32);
	kiln_array *wa = tu_guarded_array(4, packed ? wshape : raw, KILN_F32);
	kiln_array *y = tu_guarded_array(4, (int64_t[]){N, K, OH, OW}, KILN_F32);
	kiln_array_fill_random(x, seed, -1, 1);
	float *w = malloc(sizeof(float) * (size_t)(K * C * R * R));
	for (int64_t i = 0; i < K * C * R * R; i++)
		w[i] = weight_at(i);
	if (packed)
		kiln_conv2d_pack_weights(w, K, C, R, R, wa->data);
	else
		memcpy(wa->data, w, sizeof(float) * (size_t)(K * C * R * R));
	double *want = malloc(sizeof(double) * (size_t)(N * K * OH * OW));
	conv_ref(x, w, K, R, R, st, p, y, want);
	memset(y->data, 0xff, sizeof(float) * (size_t)(N * K * OH * OW)); /* NaN poison */
	ck_assert_int_eq(kiln_module_call(m, "f", (kiln_array *[]){x, wa, y}, 3), 0);
	ck_assert(tu_guard_intact("Y", y));
	ck_assert_msg(tu_compare_ref(packed ? "kpacked" : "direct", y, want) >= 0, "case %lldx%lld, %lld channels",
	              (long long)H, (long long)Wd, (long long)C);
	free(want);
	free(w);
	kiln_array_free(x);
	kiln_array_free(wa);
	kiln_array_free(y);
	kiln_module_free(m);
	kiln_ctx_free(ctx);
}

/* Output channels in lanes with weights packed ahead: a strided stem, a 7x7 image, a batch with 17 channels. */
START_TEST(kpacked_packed)
{
	static const conv_case cases[] = {{1, 3, 30, 30, 64, 7, 2, 3}, {1, 24, 7, 7, 48, 3, 1, 1}, {2, 16, 9, 12, 17, 1, 1, 0}};
	for (size_t t = 0; t < sizeof cases / sizeof *cases; t++)
		check_conv_form(1, &cases[t], 21 + t);
}
END_TEST

/*
 * The direct form forced where kiln_op_conv2d would take the GEMM form
 * (what the model compiler picks for a CPU's strided stems): strides 2 and
 * 3 read with chunked vector loads, rows of whole and shifted vectors, a batch.
 */
START_TEST(direct_strided)
{
	static const conv_case cases[] = {{1, 3, 69, 70, 32, 3, 2, 1}, {1, 3, 64, 75, 16, 3, 2, 0}, {2, 5, 20, 68, 8, 5, 3, 2}};
	for (size_t t = 0; t < sizeof cases / sizeof *cases; t++)
		check_conv_form(0, &cases[t], 31 + t);
}
END_TEST

/*
 * Winograd with weights transformed ahead (what the model compiler does):
 * kiln_winograd_weights, then the operator on the (m+2)^2 x K x C result,
 * against tests/reference.c's direct convolution; tiles of 4x4 and 2x2.
 * Partial tiles, no padding, a batch, a 7x7 image (ResNet-18's last layers).
 */
START_TEST(winograd_transformed)
{
	static const struct {
		int64_t N, C, H, W, K, pad, m;
	} cases[] = {{1, 16, 14, 14, 24, 1, 4}, {2, 3, 8, 12, 5, 0, 4}, {1, 7, 9, 6, 4, 2, 4},
	             {1, 16, 7, 7, 24, 1, 2},  {2, 3, 8, 11, 5, 0, 2}, {1, 7, 9, 6, 4, 2, 2}};
	for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
		int64_t N = cases[t].N, C = cases[t].C, H = cases[t].H, Wd = cases[t].W, K = cases[t].K, p = cases[t].pad;
		int64_t OH = H + 2 * p - 2, OW = Wd + 2 * p - 2, tile = cases[t].m, E = (tile + 2) * (tile + 2);
		kiln_ctx *ctx = kiln_ctx_new();
		kiln_conv2d_attrs a = {{1, 1}, {p, p, p, p}, {1, 1}, 1};
		kiln_tensor *X = kiln_placeholder(ctx, "X", 4, (int64_t[]){N, C, H, Wd}, KILN_F32);
		kiln_tensor *U = kiln_placeholder(ctx, "U", 3, (int64_t[]){E, K, C}, KILN_F32);
		kiln_tensor *Y = kiln_op_conv2d_winograd(ctx, X, U, &a, (int)tile, 1);
		ck_assert_msg(Y, "%s", kiln_error(ctx));
		kiln_schedule *s = kiln_schedule_cpu(ctx, 1, &Y);
		kiln_module *m = kiln_build_schedule(s, "f", 3, (kiln_tensor *[]){X, U, Y}, "llvm");
		ck_assert_msg(m, "%s", kiln_error(ctx));
		kiln_array *x = tu_guarded_array(4, (int64_t[]){N, C, H, Wd}, KILN_F32);
		kiln_array *u = tu_guarded_array(3, (int64_t[]){E, K, C}, KILN_F32);
		kiln_array *y = tu_guarded_array(4, (int64_t[]){N, K, OH, OW}, KILN_F32);
		kiln_array_fill_random(x, 11 + t, -1, 1);
		float *w = malloc(sizeof(float) * (size_t)(K * C * 9));
		for (int64_t i = 0; i < K * C * 9; i++)
			w[i] = weight_at(i);
		ck_assert_int_eq(kiln_winograd_weights(w, K, C, (int)tile, u->data), 0);
		double *want = malloc(sizeof(double) * (size_t)(N * K * OH * OW));
		conv_ref(x, w, K, 3, 3, 1, p, y, want);
		memset(y->data, 0xff, sizeof(float) * (size_t)(N * K * OH * OW)); /* NaN poison */
		ck_assert_int_eq(kiln_module_call(m, "f", (kiln_array *[]){x, u, y}, 3), 0);
		ck_assert(tu_guard_intact("Y", y));
		ck_assert_msg(tu_compare_ref("winograd", y, want) >= 0, "case %zu (tiles of %lld)", t, (long long)tile);
		free(want);
		free(w);
		kiln_array_free(x);
		kiln_array_free(u);
		kiln_array_free(y);
		kiln_module_free(m);
		kiln_ctx_free(ctx);
	}
	/* refusals: a stride, the wrong transformed shape */
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_tensor *X = kiln_placeholder(ctx, "X", 4, (int64_t[]){1, 4, 8, 8}, KILN_F32);
	kiln_tensor *U = kiln_placeholder(ctx, "U", 3, (int64_t[]){36, 5, 3}, KILN_F32);
	kiln_conv2d_attrs st = {{2, 2}, {1, 1, 1, 1}, {1, 1}, 1}, plain = {{1, 1}, {1, 1, 1, 1}, {1, 1}, 1};
	ck_assert_ptr_null(kiln_op_conv2d_winograd(ctx, X, U, &st, 4, 1));
	ck_assert_str_eq(kiln_error(ctx), "conv2d_winograd: only ungrouped 3x3 convolutions with stride 1 and dilation 1");
	kiln_clear_error(ctx);
	ck_assert_ptr_null(kiln_op_conv2d_winograd(ctx, X, U, &plain, 4, 1));
	ck_assert_str_eq(kiln_error(ctx), "conv2d_winograd: transformed weights must be [36, K, 4]");
	kiln_clear_error(ctx);
	ck_assert_ptr_null(kiln_op_conv2d_winograd(ctx, X, U, &plain, 2, 1));
	ck_assert_str_eq(kiln_error(ctx), "conv2d_winograd: transformed weights must be [16, K, 4]");
	kiln_clear_error(ctx);
	ck_assert_ptr_null(kiln_op_conv2d_winograd(ctx, X, U, &plain, 3, 1));
	ck_assert_str_eq(kiln_error(ctx), "conv2d_winograd: tile 3: F(2x2, 3x3) and F(4x4, 3x3) are the forms there are (tile 2 or 4)");
	ck_assert_int_eq(kiln_winograd_weights(NULL, 1, 1, 3, NULL), -1);
	kiln_clear_error(ctx);
	kiln_op_inst o;
	ck_assert_int_eq(kiln_op_declare(ctx, kiln_op_find("conv2d_winograd"), 5, (int64_t[]){1, 4, 8, 8, 4}, "tile=3", &o), -1);
	ck_assert_str_eq(kiln_error(ctx), "conv2d_winograd: tile 3: F(2x2, 3x3) and F(4x4, 3x3) are the forms there are (tile 2 or 4)");
	kiln_ctx_free(ctx);
}
END_TEST

Suite *ops_suite(void)
{
	Suite *s = suite_create("ops");
	TCase *tc = tcase_create("every_op");
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, op_default, 0, kiln_num_ops());
	tcase_add_loop_test(tc, op_stress, 0, kiln_num_ops());
	tcase_add_test(tc, op_attrs);
	tcase_add_test(tc, winograd_transformed);
	tcase_add_test(tc, kpacked_packed);
	tcase_add_test(tc, direct_strided);
	tcase_add_test(tc, pool_input_with_two_readers);
	tcase_add_test(tc, gemm_conv_view_inlined);
	tcase_add_test(tc, targets_size_schedules);
	suite_add_tcase(s, tc);
	/* code generation for other CPUs and more of it for the same paths:
	 * not under valgrind (scripts/test.sh), where LLVM would take most of
	 * the time; both other builds run them */
	TCase *slow = tcase_create("every_op_slow");
	tcase_set_timeout(slow, 300);
	tcase_set_tags(slow, "slow");
	tcase_add_loop_test(slow, op_default_other_cpus, 0, 2 * kiln_num_ops());
	tcase_add_test(slow, op_attrs_conv_forms);
	suite_add_tcase(s, slow);
	return s;
}

int main(void)
{
	int failed = tu_run_suite(ops_suite());
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
