/*
 * kiln tuning: the configuration space of a task, the order a search visits
 * it in, and the log of trials (JSON lines) that builds apply the best of.
 *
 *   kiln tune matmul --shape 512,512,512 --trials 40 --log tune.jsonl
 *   kiln bench matmul --shape 512,512,512 --tuning-log tune.jsonl
 *
 * Each trial is measured by a worker process (`kiln measure`, spawned by
 * `kiln tune` with a timeout), so a candidate that fails to build, crashes,
 * hangs or computes a wrong answer is recorded as an error and the search
 * goes on. This covers the CPU template (llvm, and wasm over RPC). Searches:
 * grid, random, and "xgb": a cost model trained on the trials so far
 * guides simulated annealing to the next batch (as AutoTVM's XGBTuner).
 */
#ifndef KILN_TUNE_H
#define KILN_TUNE_H

#include "ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What is tuned: an operator of the registry (or FILE.kte[:OP]) at a shape, on a target; for a
 * model's fused group, op is "graph OPS" and attrs the group's task key (kiln_graph_group_task). */
typedef struct {
	char op[256];
	char shape[128];
	char attrs[1024];
	char target[128];
} kiln_tune_task;

#define KILN_TUNE_MAX_SAMPLES 32

/* One trial, as one line of the log. */
typedef struct {
	kiln_tune_task task;
	kiln_cpu_config cfg;
	double median_ms, gflops;
	int nsamples;
	double samples_ms[KILN_TUNE_MAX_SAMPLES];
	char error[256];  /* "" when the trial ran and matched */
	char device[256]; /* the target described (kiln_target_describe) */
	char version[32];
	double unix_time;
} kiln_tune_record;

/*
 * The configurations of target t's template. CPU (llvm, wasm): register
 * blocks of 1-8 rows x 1-4 vectors of columns whose accumulators fit the
 * registers (and a few that spill, so the search sees why not), each with
 * the innermost reduction unrolled 1-8 times, both block orders, and tiles
 * of 1-16 blocks. GPU (opencl, webgpu; kiln_schedule_gpu_config): 2-8 rows
 * x 1-4 float4s per thread, k panels of 4-16, 8x8 or 16x16 threads, both
 * ways of dealing float4s (a window reduction takes those whose other knobs
 * keep their first value). Returns how many (at most max); a task's
 * schedule refuses some (kiln_schedule_template fails: factors that do not
 * divide it).
 */
int kiln_tune_space(const kiln_target *t, kiln_cpu_config *out, int max);
/*
 * The configurations of kiln_tune_space(t) that the template of the operator
 * whose outputs are outs takes (each scheduled in ctx, whose arena is given
 * back after each: see kiln_ctx_save); how many (at most max), -1 without memory.
 */
int kiln_tune_space_taken(kiln_ctx *ctx, const kiln_target *t, int nout, kiln_tensor *const *outs,
                          kiln_cpu_config *out, int max);
/* The order a search visits n configurations in: "grid" (as declared) or "random" (seeded). 0 or -1. */
int kiln_tune_order(const char *search, uint64_t seed, int n, int *order);
/* "ROWS,VECS,UNROLL,TILE,ORDER" (what --config takes) into buf. */
void kiln_tune_config_str(const kiln_cpu_config *c, char *buf, size_t n);
/* Parses 2-5 comma-separated numbers (the rest 0) within the template's ranges; 0 or -1. */
int kiln_tune_config_parse(const char *s, kiln_cpu_config *c);
/* For people: "8 rows x 2 vectors, unroll 4, tile 8, columns outside". */
void kiln_tune_config_describe(const kiln_cpu_config *c, char *buf, size_t n);
/* The same in the words of t's template (the GPU matmul's for opencl and webgpu; NULL: the CPU's). */
void kiln_tune_config_describe_for(const kiln_target *t, const kiln_cpu_config *c, char *buf, size_t n);

/*
 * Features of a lowered function for the cost model (tune/feature.c), as
 * AutoTVM's iteration-variable features: for the loop nest of its hottest
 * statements, per loop (innermost first) its extent and annotation, and for
 * the buffers those statements touch, their stride along the loop, the
 * bytes touched inside it and the reuse; plus whole-function totals
 * (operations, bytes, arithmetic intensity, vector lanes, accumulators).
 * Fills KILN_TUNE_FEATURES floats; 0, or -1 (no loop nest to describe).
 */
#define KILN_TUNE_FEATURES 112
struct ir_func;
int kiln_tune_features(const struct ir_func *f, float *out);

/*
 * The cost model (tune/cost.c): gradient-boosted trees (XGBoost's C API)
 * with a pairwise ranking objective, trained on measured configurations'
 * features and throughputs (failures as 0), predicting a score that orders
 * untried ones (higher: faster). Retrained from scratch on all data each time.
 */
typedef struct kiln_cost_model kiln_cost_model;
kiln_cost_model *kiln_cost_new(void);
/* x: n rows of KILN_TUNE_FEATURES; y: throughput. 0, or -1 with a message in err. */
int kiln_cost_train(kiln_cost_model *m, const float *x, const float *y, int n, char *err, int errlen);
int kiln_cost_predict(kiln_cost_model *m, const float *x, int n, float *out, char *err, int errlen);
void kiln_cost_free(kiln_cost_model *m);

/*
 * Simulated annealing over a space (tune/anneal.c): walkers move between
 * configurations that differ in one knob, accepting worse scores with a
 * probability that cools to zero; the best `want` configurations it met
 * that are not in `skip` (1 per configuration already measured or chosen)
 * are written to out, best first. score rates n configurations at once
 * (the model's predictions); 0 or -1. Returns how many were found.
 */
typedef int (*kiln_tune_score_fn)(void *user, const int *idx, int n, float *scores);
int kiln_tune_anneal(const kiln_cpu_config *space, int nspace, kiln_tune_score_fn score, void *user,
                     const unsigned char *skip, int want, uint64_t seed, int *out);

/*
 * The search as an ask/tell loop (tune/search.c), for kiln tune and for
 * scripts that measure their own way:
 *
 *   kiln_tuner *tu = kiln_tuner_new("xgb", space, n, seed, my_features, me);
 *   for (int k = 0; k < trials && (i = kiln_tuner_next(tu)) >= 0; k++)
 *       kiln_tuner_update(tu, i, measure(&space[i]));   // GFLOP/s, 0: failed
 *
 * search: "grid", "random" or "xgb" (features required: kiln_tune_config_features
 * computes them). next gives an index into space, each once, -1 when all are
 * used. note: why the model could not be used ("" if it could; the batches
 * were random then). NULL from new: an unknown search or no memory.
 */
typedef struct kiln_tuner kiln_tuner;
typedef int (*kiln_tune_feature_fn)(void *user, int i, float *out);
kiln_tuner *kiln_tuner_new(const char *search, const kiln_cpu_config *space, int n, uint64_t seed,
                           kiln_tune_feature_fn features, void *user);
int kiln_tuner_next(kiln_tuner *tu);
/*
 * How many more configurations next gives before it needs the updates of
 * those it gave (the xgb search picks each batch from every result before
 * it; grid and random never wait: all that are left). A driver that builds
 * several candidates at once asks up to this many, so the search is the
 * same however many it builds at once. 0 (xgb): the next call starts a new
 * batch.
 */
int kiln_tuner_ready(const kiln_tuner *tu);
int kiln_tuner_update(kiln_tuner *tu, int i, double gflops);
const char *kiln_tuner_note(const kiln_tuner *tu);
void kiln_tuner_free(kiln_tuner *tu);
/*
 * The features of cfg applied to an operator declared in ctx (args: its
 * inputs then its nout outputs; name: the function's): scheduled, lowered
 * (into ctx's arena: use a context per configuration, or a few) and read.
 */
int kiln_tune_config_features(kiln_ctx *ctx, const kiln_target *t, const kiln_cpu_config *cfg, const char *name,
                              int nargs, kiln_tensor *const *args, int nout, float *out);

/* Appends r to the log as one JSON line; 0, or -1 with a message in err. */
int kiln_tune_log_append(const char *path, const kiln_tune_record *r, char *err, int errlen);
/* Parses one log line; 0, or -1 (not a record of this version's shape). */
int kiln_tune_record_parse(const char *line, kiln_tune_record *r);
/*
 * The fastest record without error for task in the log, measured on device
 * (kiln_target_describe's line; NULL: any machine): 1 (in *best), 0 (no such
 * record), -1 (unreadable; message in err). Lines that are not records are
 * skipped.
 */
int kiln_tune_log_best(const char *path, const kiln_tune_task *task, const char *device, kiln_tune_record *best,
                       char *err, int errlen);

#ifdef __cplusplus
}
#endif
#endif
