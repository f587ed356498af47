/*
 * conv2d_cpu — the 3x3 layers of ResNet-18 (batch 1, pad 1) with kiln's
 * default schedule, against oneDNN (the library PyTorch and onnxruntime run
 * on CPUs) in the same run, at 1 and 2 threads. oneDNN gets NCHW in and out,
 * as kiln does, and chooses its own layouts: its weights are reordered into
 * the layout it prefers once, outside the timed region; the activations'
 * reorders, if it wants any, are part of its call (as in a framework that
 * hands it NCHW tensors). Also measures this CPU's FMA peak in the same run,
 * with the widest vectors the host has (read from the CPU, never assumed),
 * so pct_peak_per_core is kiln's GFLOP/s over (peak of one core x threads).
 * Exits 1 when kiln's output differs from oneDNN's anywhere.
 */
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "kiln/build.h"
#include "kiln/ops.h"

typedef struct {
	kiln_module *m;
	kiln_array **args;
} conv_t;

static void run_kiln(void *p)
{
	conv_t *c = p;
	if (kiln_module_call(c->m, "conv2d", c->args, 3)) {
		fprintf(stderr, "%s\n", kiln_rt_last_error());
		exit(1);
	}
}

#define DNNL_OK(call)                                                                                              \
	do {                                                                                                             \
		dnnl_status_t st_ = (call);                                                                                  \
		if (st_ != dnnl_success) {                                                                                   \
			fprintf(stderr, "oneDNN: %s failed (status %d)\n", #call, (int)st_);                                    \
			exit(1);                                                                                                 \
		}                                                                                                            \
	} while (0)

/* A oneDNN convolution: NCHW x (pre-reordered) weights -> NCHW. */
typedef struct {
	dnnl_engine_t eng;
	dnnl_stream_t s;
	dnnl_primitive_t conv, src_in, dst_out; /* reorders NULL when NCHW is oneDNN's choice */
	dnnl_memory_t user_src, user_dst, src, wei, dst;
} onednn_t;

/* A reorder from memory a to memory b (same dims), or NULL when their layouts agree. */
static dnnl_primitive_t reorder(onednn_t *o, dnnl_memory_t a, dnnl_memory_t b)
{
	const dnnl_memory_desc_t *ma, *mb;
	DNNL_OK(dnnl_memory_get_memory_desc(a, &ma));
	DNNL_OK(dnnl_memory_get_memory_desc(b, &mb));
	if (dnnl_memory_desc_equal(ma, mb))
		return NULL;
	dnnl_primitive_desc_t pd;
	dnnl_primitive_t r;
	DNNL_OK(dnnl_reorder_primitive_desc_create(&pd, ma, o->eng, mb, o->eng, NULL));
	DNNL_OK(dnnl_primitive_create(&r, pd));
	dnnl_primitive_desc_destroy(pd);
	return r;
}

static void run_reorder(onednn_t *o, dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to)
{
	dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
	DNNL_OK(dnnl_primitive_execute(r, o->s, 2, args));
}

static void onednn_init(onednn_t *o, int C, int H, int W, int K, float *x, const float *w, float *y)
{
	DNNL_OK(dnnl_engine_create(&o->eng, dnnl_cpu, 0));
	DNNL_OK(dnnl_stream_create(&o->s, o->eng, dnnl_stream_default_flags));
	dnnl_memory_desc_t user_src, user_wei, user_dst, any_src, any_wei, any_dst;
	dnnl_dims_t sd = {1, C, H, W}, wd = {K, C, 3, 3}, dd = {1, K, H, W};
	DNNL_OK(dnnl_memory_desc_init_by_tag(&user_src, 4, sd, dnnl_f32, dnnl_nchw));
	DNNL_OK(dnnl_memory_desc_init_by_tag(&user_wei, 4, wd, dnnl_f32, dnnl_oihw));
	DNNL_OK(dnnl_memory_desc_init_by_tag(&user_dst, 4, dd, dnnl_f32, dnnl_nchw));
	DNNL_OK(dnnl_memory_desc_init_by_tag(&any_src, 4, sd, dnnl_f32, dnnl_format_tag_any));
	DNNL_OK(dnnl_memory_desc_init_by_tag(&any_wei, 4, wd, dnnl_f32, dnnl_format_tag_any));
	DNNL_OK(dnnl_memory_desc_init_by_tag(&any_dst, 4, dd, dnnl_f32, dnnl_format_tag_any));
	dnnl_convolution_desc_t cd;
	dnnl_dims_t stride = {1, 1}, dil = {0, 0}, pad = {1, 1};
	DNNL_OK(dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &any_src,
	                                                   &any_wei, NULL, &any_dst, stride, dil, pad, pad));
	dnnl_primitive_desc_t pd;
	DNNL_OK(dnnl_primitive_desc_create(&pd, &cd, NULL, o->eng, NULL));
	DNNL_OK(dnnl_memory_create(&o->user_src, &user_src, o->eng, x));
	DNNL_OK(dnnl_memory_create(&o->user_dst, &user_dst, o->eng, y));
	dnnl_memory_t user_w;
	DNNL_OK(dnnl_memory_create(&user_w, &user_wei, o->eng, (void *)w));
	DNNL_OK(dnnl_memory_create(&o->src, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), o->eng,
	                           DNNL_MEMORY_ALLOCATE));
	DNNL_OK(dnnl_memory_create(&o->wei, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), o->eng,
	                           DNNL_MEMORY_ALLOCATE));
	DNNL_OK(dnnl_memory_create(&o->dst, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), o->eng,
	                           DNNL_MEMORY_ALLOCATE));
	DNNL_OK(dnnl_primitive_create(&o->conv, pd));
	dnnl_primitive_desc_destroy(pd);
	/* the weights once, untimed; the activations' reorders on every call */
	dnnl_primitive_t rw = reorder(o, user_w, o->wei);
	if (rw) {
		run_reorder(o, rw, user_w, o->wei);
		dnnl_primitive_destroy(rw);
	} else {
		DNNL_OK(dnnl_memory_set_data_handle(o->wei, (void *)w));
	}
	DNNL_OK(dnnl_stream_wait(o->s));
	dnnl_memory_destroy(user_w);
	o->src_in = reorder(o, o->user_src, o->src);
	o->dst_out = reorder(o, o->dst, o->user_dst);
	if (!o->src_in)
		DNNL_OK(dnnl_memory_set_data_handle(o->src, x));
	if (!o->dst_out)
		DNNL_OK(dnnl_memory_set_data_handle(o->dst, y));
}

static void run_onednn(void *p)
{
	onednn_t *o = p;
	if (o->src_in)
		run_reorder(o, o->src_in, o->user_src, o->src);
	dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, o->src}, {DNNL_ARG_WEIGHTS, o->wei}, {DNNL_ARG_DST, o->dst}};
	DNNL_OK(dnnl_primitive_execute(o->conv, o->s, 3, args));
	if (o->dst_out)
		run_reorder(o, o->dst_out, o->dst, o->user_dst);
	DNNL_OK(dnnl_stream_wait(o->s));
}

static void onednn_free(onednn_t *o)
{
	dnnl_primitive_t ps[] = {o->conv, o->src_in, o->dst_out};
	for (int i = 0; i < 3; i++)
		if (ps[i])
			dnnl_primitive_destroy(ps[i]);
	dnnl_memory_t ms[] = {o->user_src, o->user_dst, o->src, o->wei, o->dst};
	for (int i = 0; i < 5; i++)
		dnnl_memory_destroy(ms[i]);
	dnnl_stream_destroy(o->s);
	dnnl_engine_destroy(o->eng);
}

/* 24 independent FMA chains on 16-lane vectors (hosts with AVX-512) */
__attribute__((target("avx512f"))) static double fma_peak_avx512(void)
{
	__m512 acc[24];
	for (int i = 0; i < 24; i++)
		acc[i] = _mm512_set1_ps((float)i * 1e-3f);
	__m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
	long iters = bench_smoke() ? 10000 : 4000000;
	double t0 = bench_now_ms();
	for (long k = 0; k < iters; k++)
#pragma GCC unroll 24
		for (int i = 0; i < 24; i++)
			acc[i] = _mm512_fmadd_ps(acc[i], a, b);
	double dt = bench_now_ms() - t0;
	float sink = 0;
	for (int i = 0; i < 24; i++)
		sink += _mm512_reduce_add_ps(acc[i]);
	if (sink == 12345.0f)
		printf("#");
	return 2.0 * 16 * 24 * iters / dt / 1e6;
}

/* 12 independent FMA chains on 8-lane vectors (AVX2 + FMA hosts: 16 ymm registers) */
__attribute__((target("avx2,fma"))) static double fma_peak_avx2(void)
{
	__m256 acc[12];
	for (int i = 0; i < 12; i++)
		acc[i] = _mm256_set1_ps((float)i * 1e-3f);
	__m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
	long iters = bench_smoke() ? 10000 : 8000000;
	double t0 = bench_now_ms();
	for (long k = 0; k < iters; k++)
#pragma GCC unroll 12
		for (int i = 0; i < 12; i++)
			acc[i] = _mm256_fmadd_ps(acc[i], a, b);
	double dt = bench_now_ms() - t0;
	float lanes[8], sink = 0;
	for (int i = 0; i < 12; i++) {
		_mm256_storeu_ps(lanes, acc[i]);
		for (int l = 0; l < 8; l++)
			sink += lanes[l];
	}
	if (sink == 12345.0f)
		printf("#");
	return 2.0 * 8 * 12 * iters / dt / 1e6;
}

/* The per-core FMA peak with the host's widest FMA; 0 when it has no FMA unit we can probe. */
static double fma_peak_one(void)
{
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f"))
		return fma_peak_avx512();
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		return fma_peak_avx2();
	return 0;
}

static const char *fma_isa(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") ? "avx512f"
	       : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? "avx2+fma" : "none";
}

static void *peak_thread(void *out)
{
	*(double *)out = fma_peak_one();
	return NULL;
}

/* The FMA peak with n threads running at once: on these VMs two threads
 * share one core's FMA units in part, so it is not n times one core. */
static double fma_peak(int n)
{
	pthread_t th[8];
	double r[8] = {0}, sum = 0;
	for (int i = 0; i < n; i++)
		pthread_create(&th[i], NULL, peak_thread, &r[i]);
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		sum += r[i];
	}
	return sum;
}

int main(int argc, char **argv)
{
	static const int layers[][3] = {{64, 56, 56}, {128, 28, 28}, {256, 14, 14}, {512, 7, 7}};
	static const int smoke_layers[][3] = {{16, 9, 11}};
	int repeat = bench_smoke() ? 1 : argc > 1 ? atoi(argv[1]) : 9, nlayers = bench_smoke() ? 1 : 4;
	/* KILN_TARGET="llvm -mcpu=haswell": kiln's side sized and compiled for another CPU this host can run */
	const char *target = getenv("KILN_TARGET") ? getenv("KILN_TARGET") : "llvm";
	for (int threads = 1; threads <= 2; threads++) {
		kiln_set_num_threads(threads);
		omp_set_num_threads(threads);
		for (int l = 0; l < nlayers; l++) {
			const int *ly = bench_smoke() ? smoke_layers[l] : layers[l];
			int C = ly[0], H = ly[1], W = ly[2], K = C;
			kiln_ctx *kc = kiln_ctx_new();
			kiln_tensor *X = kiln_placeholder(kc, "X", 4, (int64_t[]){1, C, H, W}, KILN_F32);
			kiln_tensor *Wt = kiln_placeholder(kc, "W", 4, (int64_t[]){K, C, 3, 3}, KILN_F32);
			kiln_conv2d_attrs at = {{1, 1}, {1, 1, 1, 1}, {1, 1}, 1};
			kiln_tensor *Y = kiln_op_conv2d(kc, X, Wt, &at);
			kiln_module *m = kiln_build_schedule(kiln_schedule_for(kc, target, 1, &Y), "conv2d", 3,
			                                     (kiln_tensor *[]){X, Wt, Y}, target);
			if (!m) {
				fprintf(stderr, "build: %s\n", kiln_error(kc));
				return 1;
			}
			kiln_array *x = kiln_array_empty(4, (int64_t[]){1, C, H, W}, KILN_F32);
			kiln_array *w = kiln_array_empty(4, (int64_t[]){K, C, 3, 3}, KILN_F32);
			kiln_array *y = kiln_array_empty(4, (int64_t[]){1, K, H, W}, KILN_F32);
			kiln_array_fill_random(x, 1, -1, 1);
			kiln_array_fill_random(w, 2, -1, 1);
			float *ref = malloc(sizeof(float) * K * H * W);
			conv_t cv = {m, (kiln_array *[]){x, w, y}};
			onednn_t od = {0};
			onednn_init(&od, C, H, W, K, x->data, w->data, ref);
			run_kiln(&cv);
			run_onednn(&od);
			bench_check("conv2d_cpu", y->data, ref, (long)K * H * W, C * 9);
			double maxerr = 0;
			for (int i = 0; i < K * H * W; i++)
				maxerr = fmax(maxerr, fabs(ref[i] - ((float *)y->data)[i]));
			double kms, pms;
			bench_pair(run_kiln, &cv, run_onednn, &od, repeat, &kms, &pms);
			/* the clock of these machines drifts: measure the peak beside each case,
			 * the best of a few short runs (a peak is a maximum) */
			double peak = 0, peak_n = 0;
			for (int i = 0; i < 3; i++) {
				peak = fmax(peak, fma_peak_one());
				peak_n = fmax(peak_n, fma_peak(threads));
			}
			double fl = 2.0 * K * H * W * C * 9, gf = fl / kms / 1e6;
			printf("{\"bench\": \"conv2d_cpu\", \"case\": \"resnet18 %dx%dx%d->%d 3x3 pad1\", \"target\": \"%s\", "
			       "\"threads\": %d, \"kiln_ms\": %.4f, \"peer\": \"onednn-%d.%d(nchw in/out, weights pre-packed)\", "
			       "\"peer_ms\": %.4f, \"ratio\": %.3f, \"gflops\": %.1f, \"peer_gflops\": %.1f, \"fma_isa\": \"%s\", "
			       "\"fma_peak_one_core\": %.1f, \"pct_peak_per_core\": %.1f, \"fma_peak_these_threads\": %.1f, "
			       "\"pct_peak_these_threads\": %.1f, \"max_abs_diff\": %.2g}\n",
			       C, H, W, K, target, threads, kms, dnnl_version()->major, dnnl_version()->minor, pms, pms / kms, gf,
			       fl / pms / 1e6, fma_isa(), peak, peak > 0 ? 100 * gf / (peak * threads) : 0, peak_n,
			       peak_n > 0 ? 100 * gf / peak_n : 0, maxerr);
			fflush(stdout);
			onednn_free(&od);
			free(ref);
			kiln_array_free(x);
			kiln_array_free(w);
			kiln_array_free(y);
			kiln_module_free(m);
			kiln_ctx_free(kc);
		}
	}
	return 0;
}
