/*
 * conv2d_cpu — the 3x3 layers of ResNet-18 (batch 1, pad 1) with kiln's
 * default schedule, against im2col + OpenBLAS sgemm (the classic CPU
 * convolution) in the same run, at 1 and 2 threads. Also measures this
 * machine's AVX-512 FMA peak in the same run, so pct_peak_per_core is
 * kiln's GFLOP/s over (peak of one core x threads).
 */
#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "kiln/build.h"
#include "kiln/ops.h"

typedef struct {
	kiln_module *m;
	kiln_array **args;
	int C, H, W, K;
	const float *x, *w;
	float *cols, *y;
} conv_t;

static void run_kiln(void *p)
{
	conv_t *c = p;
	if (kiln_module_call(c->m, "conv2d", c->args, 3)) {
		fprintf(stderr, "%s\n", kiln_rt_last_error());
		exit(1);
	}
}

/* im2col for a 3x3, stride 1, pad 1 convolution, then one sgemm */
static void run_im2col(void *p)
{
	conv_t *c = p;
	int H = c->H, W = c->W;
	for (int ch = 0; ch < c->C; ch++)
		for (int r = 0; r < 3; r++)
			for (int s = 0; s < 3; s++) {
				float *row = c->cols + ((size_t)(ch * 9 + r * 3 + s)) * H * W;
				for (int oh = 0; oh < H; oh++) {
					int ih = oh + r - 1;
					for (int ow = 0; ow < W; ow++) {
						int iw = ow + s - 1;
						row[oh * W + ow] = ih >= 0 && ih < H && iw >= 0 && iw < W ? c->x[((size_t)ch * H + ih) * W + iw] : 0;
					}
				}
			}
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->K, H * W, c->C * 9, 1.0f, c->w, c->C * 9, c->cols, H * W,
	            0.0f, c->y, H * W);
}

/* 24 independent FMA chains on 16-lane vectors: the per-core FMA peak */
__attribute__((target("avx512f"))) static double fma_peak_one(void)
{
	__m512 acc[24];
	for (int i = 0; i < 24; i++)
		acc[i] = _mm512_set1_ps((float)i * 1e-3f);
	__m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
	long iters = 4000000;
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
	int repeat = argc > 1 ? atoi(argv[1]) : 9;
	const char *core = getenv("OPENBLAS_CORETYPE");
	for (int threads = 1; threads <= 2; threads++) {
		kiln_set_num_threads(threads);
		openblas_set_num_threads(threads);
		for (int l = 0; l < 4; l++) {
			int C = layers[l][0], H = layers[l][1], W = layers[l][2], K = C;
			kiln_ctx *kc = kiln_ctx_new();
			kiln_tensor *X = kiln_placeholder(kc, "X", 4, (int64_t[]){1, C, H, W}, KILN_F32);
			kiln_tensor *Wt = kiln_placeholder(kc, "W", 4, (int64_t[]){K, C, 3, 3}, KILN_F32);
			kiln_conv2d_attrs at = {{1, 1}, {1, 1, 1, 1}, {1, 1}, 1};
			kiln_tensor *Y = kiln_op_conv2d(kc, X, Wt, &at);
			kiln_module *m = kiln_build_schedule(kiln_schedule_cpu(kc, 1, &Y), "conv2d", 3,
			                                     (kiln_tensor *[]){X, Wt, Y}, "llvm");
			if (!m) {
				fprintf(stderr, "build: %s\n", kiln_error(kc));
				return 1;
			}
			kiln_array *x = kiln_array_empty(4, (int64_t[]){1, C, H, W}, KILN_F32);
			kiln_array *w = kiln_array_empty(4, (int64_t[]){K, C, 3, 3}, KILN_F32);
			kiln_array *y = kiln_array_empty(4, (int64_t[]){1, K, H, W}, KILN_F32);
			kiln_array_fill_random(x, 1, -1, 1);
			kiln_array_fill_random(w, 2, -1, 1);
			float *cols = malloc(sizeof(float) * C * 9 * H * W), *ref = malloc(sizeof(float) * K * H * W);
			conv_t cv = {m, (kiln_array *[]){x, w, y}, C, H, W, K, x->data, w->data, cols, ref};
			run_kiln(&cv);
			run_im2col(&cv);
			double maxerr = 0;
			for (int i = 0; i < K * H * W; i++)
				maxerr = fmax(maxerr, fabs(ref[i] - ((float *)y->data)[i]));
			double kms, pms;
			bench_pair(run_kiln, &cv, run_im2col, &cv, repeat, &kms, &pms);
			/* the clock of these machines drifts: measure the peak beside each case,
			 * the best of a few short runs (a peak is a maximum) */
			double peak = 0, peak_n = 0;
			for (int i = 0; i < 3; i++) {
				peak = fmax(peak, fma_peak_one());
				peak_n = fmax(peak_n, fma_peak(threads));
			}
			double fl = 2.0 * K * H * W * C * 9, gf = fl / kms / 1e6;
			printf("{\"bench\": \"conv2d_cpu\", \"case\": \"resnet18 %dx%dx%d->%d 3x3 pad1\", \"target\": \"llvm\", "
			       "\"threads\": %d, \"kiln_ms\": %.4f, \"peer\": \"im2col+openblas-sgemm(%s)\", \"peer_ms\": %.4f, "
			       "\"ratio\": %.3f, \"gflops\": %.1f, \"peer_gflops\": %.1f, \"fma_peak_one_core\": %.1f, "
			       "\"pct_peak_per_core\": %.1f, \"fma_peak_these_threads\": %.1f, \"pct_peak_these_threads\": %.1f, "
			       "\"max_abs_diff\": %.2g}\n",
			       C, H, W, K, threads, kms, core ? core : "auto", pms, pms / kms, gf, fl / pms / 1e6, peak,
			       100 * gf / (peak * threads), peak_n, 100 * gf / peak_n, maxerr);
			fflush(stdout);
			free(cols);
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
