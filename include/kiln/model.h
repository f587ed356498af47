/*
 * kiln models: running a whole compiled model (runtime/graph.c).
 *
 * A model module (what kiln_graph_compile builds and kiln_module_save
 * writes) holds a function per fused group, the execution plan and the
 * weights. The graph executor runs the plan with libkiln_runtime alone:
 *
 *   kiln_model *m = kiln_model_load("resnet18.kmod");
 *   kiln_model_set_input(m, "input", x);     // copies, checking dtype and shape
 *   kiln_model_run(m);
 *   const kiln_array *y = kiln_model_get_output(m, 0);
 *
 * Intermediates live in one arena whose layout the compiler planned;
 * inputs and outputs have buffers of their own. A model exported as a shared
 * library (kiln compile model.onnx -o model.so) loads the same way, and also
 * offers a plain C entry point needing no kiln header:
 *
 *   int model_run(const float *input, float *output);   // inputs / outputs packed in order
 *
 * (0, or -1: kiln_rt_last_error says why).
 */
#ifndef KILN_MODEL_H
#define KILN_MODEL_H

#include <stdio.h>

#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kiln_model kiln_model;

/* Loads a saved model module; NULL with the reason in kiln_rt_last_error(). */
kiln_model *kiln_model_load(const char *path);
kiln_model *kiln_model_load_bytes(const void *data, size_t size, const char *what);
/* A model over a module already in memory; the model takes it (freed with the model, also on failure). */
kiln_model *kiln_model_from_module(kiln_module *m);
void kiln_model_free(kiln_model *m);

/* The target its kernels were built for ("llvm", "opencl", "webgl", "wasm", "webgpu"). */
const char *kiln_model_target(const kiln_model *m);
int kiln_model_num_inputs(const kiln_model *m);
int kiln_model_num_outputs(const kiln_model *m);
/* Name, dtype and shape of input / output i (NULL when out of range). */
const kiln_arg_info *kiln_model_input_info(const kiln_model *m, int i);
const kiln_arg_info *kiln_model_output_info(const kiln_model *m, int i);
/* Bytes of input i (output = 0) or output i (output = 1); 0 when out of range. */
size_t kiln_model_io_bytes(const kiln_model *m, int output, int i);
/* Bytes of the planned arena of intermediates. */
int64_t kiln_model_arena_bytes(const kiln_model *m);

/* Copies a (compact) array into input name; dtype and shape must match. */
int kiln_model_set_input(kiln_model *m, const char *name, const kiln_array *a);
/* The same from raw memory holding the input's bytes. */
int kiln_model_set_input_data(kiln_model *m, int i, const void *data, size_t bytes);
int kiln_model_run(kiln_model *m);
/* Output i after a run; owned by the model, valid until the next run or free. */
const kiln_array *kiln_model_get_output(const kiln_model *m, int i);
/* Output name, or NULL. */
const kiln_array *kiln_model_get_output_by_name(const kiln_model *m, const char *name);
/* Times each step (kernel) and writes a table, slowest first, with medians
 * and shares of the total: where a model spends its time. Each step is timed
 * in whole runs (the caches as the steps before it leave them) and alone,
 * repeated runs times (its data warm): a step slower in runs than alone
 * waits on memory its neighbours evicted. */
int kiln_model_profile(kiln_model *m, int runs, FILE *out);
/* Steps (one kernel each) and the name of step s's function (the graph's group function). */
int kiln_model_num_steps(const kiln_model *m);
const char *kiln_model_step_name(const kiln_model *m, int s);
/* The median milliseconds of each step over runs runs, into ms[0..num_steps). 0 or -1. */
int kiln_model_step_times(kiln_model *m, int runs, double *ms);
/* The same, each step timed inside runs whole runs of the model. */
int kiln_model_step_times_in_runs(kiln_model *m, int runs, double *ms);
/* Times whole runs with the time evaluator's options (kiln_module_time's). */
int kiln_model_time(kiln_model *m, const kiln_time_opts *opts, kiln_timing *out);

#ifdef __cplusplus
}
#endif
#endif
