/*
 * kiln graphs: whole models (graph/).
 *
 * A frontend (kiln_onnx_import) turns a model into a graph of operators on
 * tensors. kiln_graph_compile runs the graph passes — shape inference with
 * constant folding, simplification (Identity / Dropout gone, batch norm
 * folded into the convolution before it), operator fusion, memory planning —
 * and builds one module for a target: a function per fused group, the
 * execution plan and the weights. The runtime runs it (kiln/model.h).
 */
#ifndef KILN_GRAPH_H
#define KILN_GRAPH_H

#include <stdio.h>

#include "te.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kiln_graph kiln_graph;

/* An empty graph in ctx; what names it in messages. */
kiln_graph *kiln_graph_new(kiln_ctx *ctx, const char *what);
/* Live operator nodes. */
int kiln_graph_num_nodes(const kiln_graph *g);
/* Writes the graph, one node per line with its values' dtypes and shapes. */
void kiln_graph_print(const kiln_graph *g, FILE *out);

/*
 * Runs the graph passes alone (inference and folding, simplification,
 * fusion, planning), printing the graph after each with print_graph.
 * 0, or -1 with the reason in kiln_error(ctx). kiln_graph_compile runs them
 * when they have not run.
 */
int kiln_graph_optimize(kiln_graph *g, FILE *print_graph);
/*
 * Runs the graph passes and builds a model module for target ("llvm",
 * "opencl", ...). With print_graph the graph is printed after every pass.
 * NULL with the reason in kiln_error(ctx). kiln_module_save writes it;
 * kiln_model_load (kiln/model.h) runs it.
 */
kiln_module *kiln_graph_compile(kiln_graph *g, const char *target, FILE *print_graph);
/*
 * Tuning (kiln/tune.h): after kiln_graph_optimize, group i's task key (its
 * anchor operator, input shapes, attributes and fused operators; groups with
 * one key are one task) and its function's name in the module (*fn).
 * kiln_graph_set_config makes the next compile ask fn for each group's
 * configuration on llvm, wasm, opencl and webgpu (the CPU and GPU templates;
 * NULL answer: the default schedule; one the group's schedule refuses: the
 * default too).
 */
int kiln_graph_num_groups(const kiln_graph *g);
const char *kiln_graph_group_task(kiln_graph *g, int i, const char **fn);
struct kiln_cpu_config; /* kiln/ops.h */
typedef const struct kiln_cpu_config *(*kiln_group_config_fn)(const char *task, void *user);
void kiln_graph_set_config(kiln_graph *g, kiln_group_config_fn fn, void *user);
/*
 * For a tuner: group i's kernel for target scheduled with cfg (NULL: the
 * default schedule) and lowered, handed to fn while it lives — everything
 * made for it is released afterwards, so a tuner can look at thousands.
 * fn NULL: only whether the group's schedule takes cfg. Returns fn's result
 * (0 without fn), or -1 when the schedule refuses cfg or the group cannot
 * be built (the reason in kiln_error). After kiln_graph_optimize.
 */
struct ir_func; /* a kiln_func (kiln/build.h) */
typedef int (*kiln_group_visit_fn)(void *user, const struct ir_func *f);
int kiln_graph_group_visit(kiln_graph *g, int i, const char *target, const struct kiln_cpu_config *cfg,
                           kiln_group_visit_fn fn, void *user);
/* After compile: bytes of the planned arena of intermediates, and what they
 * would take without reuse (*without_reuse). */
int64_t kiln_graph_planned_bytes(const kiln_graph *g, int64_t *without_reuse);

#ifdef __cplusplus
}
#endif
#endif
