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
 * goes on. This covers the CPU (llvm) target's register-block template.
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
 * The configurations of the CPU template for target t: block rows 1-8 x
 * 1-4 vectors of columns whose accumulators fit the registers (and a few
 * that spill, so the search sees why not). Returns how many (at most max).
 */
int kiln_tune_space(const kiln_target *t, kiln_cpu_config *out, int max);
/* The order a search visits n configurations in: "grid" (as declared) or "random" (seeded). 0 or -1. */
int kiln_tune_order(const char *search, uint64_t seed, int n, int *order);

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
