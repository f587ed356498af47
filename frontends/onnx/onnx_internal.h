/*
 * onnx_internal.h — what the ONNX frontend's files share: the decoded model
 * and the helpers of the checks.
 */
#ifndef KILN_ONNX_INTERNAL_H
#define KILN_ONNX_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "ir/ir.h"
#include "kiln/onnx.h"
#include "onnx.pb-c.h"

/* A protobuf-c allocator that refuses to go past a byte budget. */
typedef struct {
	size_t used, limit;
	bool over;
} onnx_budget;

struct kiln_onnx_model {
	Onnx__ModelProto *proto;
	onnx_budget spent;
	ProtobufCAllocator alloc;
	int opset;
	int ninputs;  /* graph inputs that are not initializers */
	char *dir;    /* the model's folder (external data), NULL when loaded from memory */
	char *what;   /* names the model in messages */
};

/* Value names to numbers: open addressing over names the model holds (not copied). */
typedef struct {
	const char **key;
	int *val;
	size_t cap;
} onnx_names;
/* Room for count names; false when out of memory (free it anyway). */
bool onnx_names_init(onnx_names *s, size_t count);
void onnx_names_free(onnx_names *s);
/* The name's number, or -1. */
int onnx_names_get(const onnx_names *s, const char *name);
/* Adds name; false (and no change) when it is there already. */
bool onnx_names_put(onnx_names *s, const char *name, int value);

void *onnx_budget_alloc(void *data, size_t n);
void onnx_budget_free(void *data, void *ptr);
/* Bytes of one element of an ONNX data type; 0 when unknown or not fixed (strings). */
int onnx_elem_bytes(int32_t t);
const char *onnx_type_name(int32_t t);
/* The element count of dims, or -1 when an extent is negative or the product passes 2^40. */
int64_t onnx_dims_count(size_t n, const int64_t *dims);
/* A path inside the model's folder: relative, no "..". */
bool onnx_safe_relative(const char *p);

#endif
