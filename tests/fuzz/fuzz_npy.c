/*
 * fuzz_npy.c — libFuzzer target for the kiln tool's .npy reader
 * (tools/npy.c): any bytes give an array or a message, never a crash or an
 * allocation the file does not back.
 */
#include <stdint.h>
#include <stdlib.h>

#include "tools/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	kiln_array *a = npy_parse(data, size, err, sizeof err);
	kiln_array_free(a);
	return 0;
}
