/*
 * npy.h — numpy's .npy files for the kiln tool's model inputs and outputs
 * (format versions 1-3, little-endian, C order; float32/64, int8/32/64,
 * uint8, bool), apart from the tool so that a fuzz target can drive the reader.
 */
#ifndef KILN_TOOLS_NPY_H
#define KILN_TOOLS_NPY_H

#include <stddef.h>

#include "kiln/runtime.h"

/* Parses a whole .npy file held in memory into a new array; NULL with a message in err. */
kiln_array *npy_parse(const unsigned char *data, size_t size, char *err, size_t errlen);
/* Reads path; NULL with a message in err. */
kiln_array *npy_read(const char *path, char *err, size_t errlen);
/* Writes a compact array as a version 1.0 .npy; 0, or -1 with a message in err. */
int npy_write(const char *path, const kiln_array *a, char *err, size_t errlen);

#endif
