/*
 * fuzz_onnx.c — libFuzzer target for the ONNX reader (frontends/onnx/): any
 * bytes are decoded by protobuf-c under the reader's memory budget and
 * checked, then refused with a message or summarized; never a crash, a hang
 * or an allocation past the budget.
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
	}
	kiln_onnx_free(m);
	kiln_ctx_free(ctx);
	return 0;
}
