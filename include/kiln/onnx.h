/*
 * kiln ONNX frontend: reading .onnx files (frontends/onnx/).
 *
 * A model is decoded with protobuf-c (C generated at build time from the
 * onnx.proto that Debian's libonnx-dev ships) and checked before anything
 * uses it: the IR version and the default domain's opset (7 to 17), every
 * node's inputs defined before use, value and initializer types known,
 * initializer sizes overflow-checked and consistent with their data, and
 * external data named by safe relative paths. A malformed, truncated or
 * hostile file is refused with a message naming what is wrong, never a
 * crash and never an allocation sized by an unchecked field.
 */
#ifndef KILN_ONNX_H
#define KILN_ONNX_H

#include <stdio.h>

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kiln_onnx_model kiln_onnx_model;

/* The opsets of the default domain this frontend reads. */
#define KILN_ONNX_MIN_OPSET 7
#define KILN_ONNX_MAX_OPSET 17
/* The largest .onnx file it reads (protobuf's own limit; weights past it go in external data). */
#define KILN_ONNX_MAX_BYTES ((int64_t)2 << 30)

/* Loads and checks path; NULL with the reason in kiln_error(ctx). */
kiln_onnx_model *kiln_onnx_load(kiln_ctx *ctx, const char *path);
/* The same from memory; what names the bytes in messages. */
kiln_onnx_model *kiln_onnx_load_bytes(kiln_ctx *ctx, const void *data, size_t size, const char *what);
void kiln_onnx_free(kiln_onnx_model *m);
/*
 * Writes a summary: producer, IR version, opsets, graph inputs and outputs
 * with their types and shapes (symbolic dimensions by name), node counts by
 * operator, initializers and their bytes.
 */
void kiln_onnx_describe(const kiln_onnx_model *m, FILE *out);
/* Counts: nodes, graph inputs (initializers excluded), graph outputs, initializers. */
int kiln_onnx_num_nodes(const kiln_onnx_model *m);
int kiln_onnx_num_inputs(const kiln_onnx_model *m);
int kiln_onnx_num_outputs(const kiln_onnx_model *m);
int kiln_onnx_num_initializers(const kiln_onnx_model *m);
/* The name of graph input i (initializers excluded), or NULL. */
const char *kiln_onnx_input_name(const kiln_onnx_model *m, int i);
/* The default domain's opset version the model imports. */
int kiln_onnx_opset(const kiln_onnx_model *m);

/* A shape for a graph input: binds its symbolic dimensions (--input-shape name=1,3,224,224). */
typedef struct {
	const char *name;
	int ndim;
	int64_t shape[KILN_MAX_DIMS];
} kiln_input_shape;

/*
 * The model as a graph (kiln/graph.h): initializers (also external data,
 * read through mmap from the model's folder) become constants, inputs get
 * static shapes — their own, or those bound here (every symbolic dimension
 * must be bound). NULL with the reason in kiln_error(ctx). The graph lives
 * in ctx; the model can be freed once it is imported.
 */
kiln_graph *kiln_onnx_import(kiln_ctx *ctx, const kiln_onnx_model *m, int nbind, const kiln_input_shape *binds);
/* A serialized ONNX TensorProto (the .pb files of ONNX's test data) as a new array. */
kiln_array *kiln_onnx_read_tensor(kiln_ctx *ctx, const void *data, size_t size, const char *what);

#ifdef __cplusplus
}
#endif
#endif
