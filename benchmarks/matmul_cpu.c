/*
 * matmul_cpu — kiln's default-scheduled matmul against OpenBLAS sgemm,
 * measured in the same run, at 1 and 2 threads, N = 256 .. 2048.
 * One JSON line per case; ratio = peer_ms / kiln_ms (> 1: kiln is faster).
 * Run through benchmarks/run.sh, which sets OPENBLAS_CORETYPE from this CPU.
 * Exits 1 when kiln's output differs from OpenBLAS's anywhere.
 * KILN_TUNING_LOG=F.jsonl: kiln's side uses the best record of F for each
 * size measured on this machine (kiln tune), where it has one ("tuned").
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "kiln/build.h"
#include "kiln/ops.h"
#include "kiln/tune.h"

typedef struct {
	kiln_module *m;
	kiln_array **args;
	const float *a, *b;
	float *c;
	int n;
} ctx_t;

static void run_kiln(void *p)
{
	ctx_t *c = p;
	if (kiln_module_call(c->m, "matmul", c->args, 3)) {
		fprintf(stderr, "%s\n", kiln_rt_last_error());
		exit(1);
	}
}

static void run_blas(void *p)
{
	ctx_t *c = p;
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->n, c->n, c->n, 1.0f, c->a, c->n, c->b, c->n, 0.0f, c->c,
	            c->n);
}

int main(int argc, char **argv)
{
	int sizes[] = {256, 512, 1024, 2048}, nsizes = bench_smoke() ? 1 : 4;
	int repeat = bench_smoke() ? 1 : argc > 1 ? atoi(argv[1]) : 9;
	if (repeat < 1) {
		fprintf(stderr, "usage: matmul_cpu [REPEAT >= 1]\n");
		return 2;
	}
	if (bench_smoke())
		sizes[0] = 67; /* uneven: the edges of the register tiles */
	const char *core = getenv("OPENBLAS_CORETYPE");
	/* KILN_TARGET="llvm -mcpu=haswell" sizes and compiles kiln's side for another CPU
	 * (one this host can run): an AVX2 machine's schedule measured here */
	const char *target = getenv("KILN_TARGET") ? getenv("KILN_TARGET") : "llvm";
	for (int threads = 1; threads <= 2; threads++) {
		kiln_set_num_threads(threads);
		openblas_set_num_threads(threads);
		for (int s = 0; s < nsizes; s++) {
			int n = sizes[s];
			kiln_ctx *kc = kiln_ctx_new();
			kiln_tensor *A = kiln_placeholder(kc, "A", 2, (int64_t[]){n, n}, KILN_F32);
			kiln_tensor *B = kiln_placeholder(kc, "B", 2, (int64_t[]){n, n}, KILN_F32);
			kiln_tensor *C = kiln_op_matmul(kc, A, B, 0, 0);
			/* the best tuning record for this size on this machine, if a log is given */
			kiln_tune_task task = {"matmul", "", "", ""};
			snprintf(task.shape, sizeof task.shape, "%d,%d,%d", n, n, n);
			snprintf(task.target, sizeof task.target, "%s", target);
			kiln_tune_record best;
			kiln_target tt;
			char err[512], desc[512];
			int tuned = 0;
			if (getenv("KILN_TUNING_LOG") && !kiln_target_parse(target, &tt, err, sizeof err))
				tuned = kiln_tune_log_best(getenv("KILN_TUNING_LOG"), &task, kiln_target_describe(&tt, desc, sizeof desc),
				                           &best, err, sizeof err) == 1;
			double t0 = bench_now_ms();
			kiln_schedule *sch = tuned ? kiln_schedule_cpu_config(kc, &tt, &best.cfg, 1, &C)
			                           : kiln_schedule_for(kc, target, 1, &C);
			kiln_module *m = kiln_build_schedule(sch, "matmul", 3, (kiln_tensor *[]){A, B, C}, target);
			double compile_ms = bench_now_ms() - t0;
			if (!m) {
				fprintf(stderr, "build: %s\n", kiln_error(kc));
				return 1;
			}
			kiln_array *a = kiln_array_empty(2, (int64_t[]){n, n}, KILN_F32);
			kiln_array *b = kiln_array_empty(2, (int64_t[]){n, n}, KILN_F32);
			kiln_array *c = kiln_array_empty(2, (int64_t[]){n, n}, KILN_F32);
			kiln_array_fill_random(a, 1, -1, 1);
			kiln_array_fill_random(b, 2, -1, 1);
			float *ref = malloc(sizeof(float) * n * n);
			ctx_t cx = {m, (kiln_array *[]){a, b, c}, a->data, b->data, ref, n};
			run_kiln(&cx);
			run_blas(&cx);
			double maxerr = 0;
			for (int64_t i = 0; i < (int64_t)n * n; i++)
				maxerr = fmax(maxerr, fabs(ref[i] - ((float *)c->data)[i]));
			bench_check("matmul_cpu", c->data, ref, (long)n * n, n);
			double kms, pms;
			bench_pair(run_kiln, &cx, run_blas, &cx, repeat, &kms, &pms);
			double fl = 2.0 * n * n * n;
			printf("{\"bench\": \"matmul_cpu\", \"case\": \"%dx%dx%d\", \"target\": \"%s%s\", \"threads\": %d, "
			       "\"kiln_ms\": %.4f, \"peer\": \"openblas-sgemm(%s)\", \"peer_ms\": %.4f, \"ratio\": %.3f, "
			       "\"gflops\": %.1f, \"peer_gflops\": %.1f, \"compile_ms\": %.1f, \"max_abs_diff\": %.2g}\n",
			       n, n, n, target, tuned ? " (tuned)" : "", threads, kms, core ? core : "auto", pms, pms / kms, fl / kms / 1e6, fl / pms / 1e6,
			       compile_ms, maxerr);
			fflush(stdout);
			free(ref);
			kiln_array_free(a);
			kiln_array_free(b);
			kiln_array_free(c);
			kiln_module_free(m);
			kiln_ctx_free(kc);
		}
	}
	return 0;
}
