/*
 * npy.c — reading and writing numpy's .npy files: the magic, a version, the
 * header length, a header that is a Python dict literal ({'descr': '<f4',
 * 'fortran_order': False, 'shape': (1, 3, 224, 224), }) padded with spaces,
 * then the elements. Every length is checked against what the file holds,
 * every extent and the total size with overflow checks, before anything is
 * allocated.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npy.h"

static const struct {
	const char *descr;
	kiln_dtype t;
} types[] = {
	{"<f4", {KILN_FLOAT, 32, 1}}, {"<f8", {KILN_FLOAT, 64, 1}}, {"<i8", {KILN_INT, 64, 1}},
	{"<i4", {KILN_INT, 32, 1}},   {"|i1", {KILN_INT, 8, 1}},    {"|u1", {KILN_UINT, 8, 1}},
	{"|b1", {KILN_BOOL, 1, 1}},
};

/* The value of key in the header dict: a pointer just past "'key':" and its spaces, or NULL. */
static const char *value_of(const char *h, const char *key)
{
	char pat[32];
	snprintf(pat, sizeof pat, "'%s'", key);
	const char *p = strstr(h, pat);
	if (!p)
		return NULL;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	if (*p++ != ':')
		return NULL;
	while (*p == ' ')
		p++;
	return p;
}

kiln_array *npy_parse(const unsigned char *d, size_t size, char *err, size_t errlen)
{
	if (size < 10 || memcmp(d, "\x93NUMPY", 6))
		return snprintf(err, errlen, "not a .npy file (no \\x93NUMPY magic)"), NULL;
	int major = d[6];
	size_t hl, at;
	if (major == 1) {
		hl = d[8] | (size_t)d[9] << 8;
		at = 10;
	} else if (major == 2 || major == 3) {
		if (size < 12)
			return snprintf(err, errlen, "the .npy header is truncated"), NULL;
		hl = d[8] | (size_t)d[9] << 8 | (size_t)d[10] << 16 | (size_t)d[11] << 24;
		at = 12;
	} else {
		return snprintf(err, errlen, ".npy format version %d (1 to 3 are read)", major), NULL;
	}
	if (hl > size - at || hl > 65536)
		return snprintf(err, errlen, "the .npy header (%zu bytes) is longer than the file", hl), NULL;
	char h[65537];
	memcpy(h, d + at, hl);
	h[hl] = 0;
	if (strlen(h) != hl)
		return snprintf(err, errlen, "the .npy header holds a NUL byte"), NULL;
	at += hl;
	const char *descr = value_of(h, "descr"), *fortran = value_of(h, "fortran_order"), *shape = value_of(h, "shape");
	if (!descr || !fortran || !shape || *descr != '\'' || *shape != '(')
		return snprintf(err, errlen, "the .npy header lacks descr, fortran_order or shape"), NULL;
	if (strncmp(fortran, "False", 5))
		return snprintf(err, errlen, "Fortran-order .npy arrays are not read (save with C order)"), NULL;
	kiln_dtype t = {0};
	bool found = false;
	for (size_t i = 0; i < sizeof types / sizeof *types && !found; i++)
		if (!strncmp(descr + 1, types[i].descr, 3) && descr[4] == '\'') {
			t = types[i].t;
			found = true;
		}
	if (!found)
		return snprintf(err, errlen, "the .npy dtype %.8s is not read (<f4, <f8, <i8, <i4, |i1, |u1, |b1)", descr),
		       NULL;
	int64_t dims[KILN_MAX_DIMS], count = 1;
	int nd = 0;
	const char *p = shape + 1;
	for (;;) {
		while (*p == ' ' || *p == ',')
			p++;
		if (*p == ')')
			break;
		if (*p < '0' || *p > '9' || nd == KILN_MAX_DIMS)
			return snprintf(err, errlen, "the .npy shape is not a tuple of at most %d extents", KILN_MAX_DIMS), NULL;
		errno = 0;
		char *end;
		long long v = strtoll(p, &end, 10);
		if (errno || v < 0 || __builtin_mul_overflow(count, (int64_t)v, &count) || count > KILN_MAX_ARRAY_BYTES)
			return snprintf(err, errlen, "the .npy shape is too large"), NULL;
		dims[nd++] = v;
		p = end;
	}
	size_t bytes = (size_t)count * kiln_dtype_bytes(t);
	if (size - at != bytes)
		return snprintf(err, errlen, "the .npy file holds %zu bytes of data, its shape and dtype say %zu", size - at,
		                bytes), NULL;
	kiln_array *a = kiln_array_empty(nd, dims, t);
	if (!a)
		return snprintf(err, errlen, "%s", kiln_rt_last_error()), NULL;
	if (bytes)
		memcpy(a->data, d + at, bytes);
	return a;
}

kiln_array *npy_read(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno)), NULL;
	long n = -1;
	if (!fseek(f, 0, SEEK_END))
		n = ftell(f);
	if (n < 0 || fseek(f, 0, SEEK_SET) || (int64_t)n > KILN_MAX_ARRAY_BYTES) {
		fclose(f);
		return snprintf(err, errlen, "%s: cannot read (not a regular file, or too large)", path), NULL;
	}
	unsigned char *d = malloc((size_t)n + 1);
	size_t got = d ? fread(d, 1, (size_t)n, f) : 0;
	fclose(f);
	kiln_array *a = NULL;
	if (!d || got != (size_t)n)
		snprintf(err, errlen, "%s: read failed", path);
	else if (!(a = npy_parse(d, (size_t)n, err, errlen))) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s: %s", path, err);
		snprintf(err, errlen, "%s", msg);
	}
	free(d);
	return a;
}

int npy_write(const char *path, const kiln_array *a, char *err, size_t errlen)
{
	const char *descr = NULL;
	for (size_t i = 0; i < sizeof types / sizeof *types; i++)
		if (types[i].t.code == a->dtype.code && types[i].t.bits == a->dtype.bits)
			descr = types[i].descr;
	if (!descr || !kiln_array_is_compact(a))
		return snprintf(err, errlen, "%s: a compact float32/64, int8/32/64, uint8 or bool array is needed", path), -1;
	char h[512];
	int n = snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
	for (int d = 0; d < a->ndim; d++)
		n += snprintf(h + n, sizeof h - (size_t)n, "%lld%s", (long long)a->shape[d], a->ndim == 1 ? "," : d + 1 < a->ndim ? ", " : "");
	n += snprintf(h + n, sizeof h - (size_t)n, "), }");
	/* magic (6) + version (2) + length (2) + header, padded with spaces to 64 bytes, ending in '\n' */
	int total = (10 + n + 1 + 63) / 64 * 64;
	memset(h + n, ' ', (size_t)(total - 10 - n));
	h[total - 10 - 1] = '\n';
	FILE *f = fopen(path, "wb");
	if (!f)
		return snprintf(err, errlen, "cannot write '%s': %s", path, strerror(errno)), -1;
	unsigned char head[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)((total - 10) & 255),
	                          (unsigned char)((total - 10) >> 8)};
	size_t bytes = (size_t)kiln_array_numel(a) * kiln_dtype_bytes(a->dtype);
	bool ok = fwrite(head, 1, 10, f) == 10 && fwrite(h, 1, (size_t)(total - 10), f) == (size_t)(total - 10) &&
	          fwrite(a->data, 1, bytes, f) == bytes;
	ok &= fclose(f) == 0;
	return ok ? 0 : (snprintf(err, errlen, "cannot write '%s'", path), -1);
}
