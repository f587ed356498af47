/*
 * fuzz_onnx.c — libFuzzer target for the ONNX reader (frontends/onnx/): any
 * bytes are decoded by protobuf-c under the reader's memory budget and
 * checked, then refused with a message or summarized, and a model that loads
 * is imported and taken through the graph passes (shape inference with
 * constant folding, simplification, fusion, planning; no code generation):
 * never a crash, a hang or an allocation past the budget.
 */
#include <stdint.h>
#include <stdio.h>

#include "kiln/onnx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_onnx_model *m = kiln_onnx_load_bytes(ctx, data, size, "fuzz");
	if (m) {
		FILE *sink = fopen("/dev/null", "w");
		if (sink) {
			kiln_onnx_describe(m, sink);
			fclose(sink);
		}
		kiln_graph *g = kiln_onnx_import(ctx, m, 0, NULL);
		if (g)
			kiln_graph_optimize(g, NULL);
	}
	kiln_onnx_free(m);
	kiln_ctx_free(ctx);
	return 0;
}
