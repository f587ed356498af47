/*
 * array.c — dtypes, aligned n-d arrays, and the runtime's error slot.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rt.h"

static _Thread_local char rt_err[1024];

int rt_error(const char *fmt, ...)
{
	/* formatted apart first: an argument may be the last message itself ("%s: %s", what, kiln_rt_last_error()) */
	char msg[sizeof rt_err];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	memcpy(rt_err, msg, sizeof msg);
	return -1;
}

const char *kiln_rt_last_error(void) { return rt_err; }

double rt_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

const char *kiln_dtype_str(kiln_dtype t, char *buf)
{
	static const char *names[] = {"bool", "int", "uint", "float", "handle"};
	if (t.code > KILN_HANDLE) {
		snprintf(buf, 16, "?%d", t.code);
		return buf;
	}
	if (t.code == KILN_BOOL || t.code == KILN_HANDLE)
		snprintf(buf, 16, "%s", names[t.code]);
	else
		snprintf(buf, 16, "%s%d", names[t.code], t.bits);
	if (t.lanes > 1)
		snprintf(buf + strlen(buf), 16 - strlen(buf), "x%d", t.lanes);
	return buf;
}

int kiln_dtype_parse(const char *s, kiln_dtype *out)
{
	static const struct {
		const char *name;
		kiln_dtype t;
	} tab[] = {
		{"bool", {KILN_BOOL, 1, 1}},     {"float16", {KILN_FLOAT, 16, 1}}, {"f16", {KILN_FLOAT, 16, 1}},
		{"float32", {KILN_FLOAT, 32, 1}}, {"f32", {KILN_FLOAT, 32, 1}},    {"float64", {KILN_FLOAT, 64, 1}},
		{"f64", {KILN_FLOAT, 64, 1}},    {"int8", {KILN_INT, 8, 1}},       {"i8", {KILN_INT, 8, 1}},
		{"int16", {KILN_INT, 16, 1}},    {"int32", {KILN_INT, 32, 1}},     {"i32", {KILN_INT, 32, 1}},
		{"int64", {KILN_INT, 64, 1}},    {"i64", {KILN_INT, 64, 1}},       {"uint8", {KILN_UINT, 8, 1}},
		{"u8", {KILN_UINT, 8, 1}},       {"uint16", {KILN_UINT, 16, 1}},   {"uint32", {KILN_UINT, 32, 1}},
		{"uint64", {KILN_UINT, 64, 1}},
	};
	for (size_t i = 0; i < sizeof tab / sizeof *tab; i++)
		if (!strcmp(s, tab[i].name)) {
			*out = tab[i].t;
			return 0;
		}
	return -1;
}

size_t kiln_dtype_bytes(kiln_dtype t)
{
	size_t b = t.code == KILN_BOOL ? 1 : (t.bits + 7) / 8;
	return b * (t.lanes ? t.lanes : 1);
}

int rt_dtype_check(kiln_dtype t, const char *what)
{
	bool ok = t.lanes == 1;
	switch (t.code) {
	case KILN_BOOL: ok = ok && (t.bits == 1 || t.bits == 8); break;
	case KILN_INT:
	case KILN_UINT: ok = ok && (t.bits == 8 || t.bits == 16 || t.bits == 32 || t.bits == 64); break;
	case KILN_FLOAT: ok = ok && (t.bits == 16 || t.bits == 32 || t.bits == 64); break;
	default: ok = false;
	}
	if (ok)
		return 0;
	return rt_error("%s: dtype code %u with %u bits and %u lanes is not one an array holds (bool, int/uint 8-64, "
	                "float 16-64; one lane)", what, t.code, t.bits, t.lanes);
}

int rt_array_bytes(int ndim, const int64_t *shape, kiln_dtype t, const char *what, size_t *out)
{
	if (ndim < 0 || ndim > KILN_MAX_DIMS)
		return rt_error("%s: %d dimensions (at most %d)", what, ndim, KILN_MAX_DIMS);
	if (ndim > 0 && !shape)
		return rt_error("%s: %d dimensions but no shape", what, ndim);
	if (rt_dtype_check(t, what))
		return -1;
	int64_t n = (int64_t)kiln_dtype_bytes(t);
	bool zero = false;
	for (int d = 0; d < ndim; d++) {
		if (shape[d] < 0)
			return rt_error("%s: dimension %d is negative (%lld)", what, d, (long long)shape[d]);
		zero = zero || shape[d] == 0;
	}
	/* a zero extent makes every product 0; otherwise each step must stay in bounds */
	for (int d = 0; d < ndim && !zero; d++)
		if (__builtin_mul_overflow(n, shape[d], &n) || n > KILN_MAX_ARRAY_BYTES) {
			char dims[160] = "";
			for (int k = 0, o = 0; k < ndim && o < (int)sizeof dims; k++)
				o += snprintf(dims + o, sizeof dims - (size_t)o, "%s%lld", k ? "x" : "", (long long)shape[k]);
			return rt_error("%s: a %s array of %s elements is larger than %lld bytes (KILN_MAX_ARRAY_BYTES)", what,
			                kiln_dtype_str(t, (char[16]){0}), dims, (long long)KILN_MAX_ARRAY_BYTES);
		}
	*out = zero ? 0 : (size_t)n;
	return 0;
}

static kiln_array *array_new(int ndim, const int64_t *shape, kiln_dtype dtype, size_t *bytes)
{
	if (rt_array_bytes(ndim, shape, dtype, "array", bytes))
		return NULL;
	kiln_array *a = calloc(1, sizeof *a);
	if (!a) {
		rt_error("array: out of memory");
		return NULL;
	}
	a->ndim = ndim;
	a->dtype = dtype;
	int64_t s = 1;
	for (int d = ndim - 1; d >= 0; d--) {
		a->shape[d] = shape[d];
		a->strides[d] = s;
		/* only an array with a zero extent (no elements) can get here with huge others */
		if (__builtin_mul_overflow(s, shape[d], &s))
			s = 0;
	}
	return a;
}

/* This machine's memory in bytes, or 0 when unknown; asked once, not per array. */
uint64_t rt_physical_memory(void)
{
	static _Atomic uint64_t mem = UINT64_MAX;
	uint64_t m = mem;
	if (m == UINT64_MAX) {
		m = 0;
#ifdef _SC_PHYS_PAGES
		long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
		if (pages > 0 && page > 0)
			m = (uint64_t)pages * (uint64_t)page;
#endif
		mem = m;
	}
	return m;
}

kiln_array *kiln_array_empty(int ndim, const int64_t *shape, kiln_dtype dtype)
{
	size_t bytes;
	kiln_array *a = array_new(ndim, shape, dtype, &bytes);
	if (!a)
		return NULL;
	/* refused up front rather than left to overcommit and the OOM killer */
	uint64_t mem = rt_physical_memory();
	if (mem && bytes > mem) {
		free(a);
		rt_error("array: %zu bytes is more than this machine's memory (%llu bytes)", bytes, (unsigned long long)mem);
		return NULL;
	}
	bytes = (bytes + 63) & ~(size_t)63;
	a->data = aligned_alloc(64, bytes ? bytes : 64);
	if (!a->data) {
		free(a);
		rt_error("array: out of memory for %zu bytes", bytes);
		return NULL;
	}
	memset(a->data, 0, bytes);
	a->owns_data = 1;
	return a;
}

kiln_array *kiln_array_wrap(void *data, int ndim, const int64_t *shape, kiln_dtype dtype)
{
	size_t bytes;
	kiln_array *a = array_new(ndim, shape, dtype, &bytes);
	if (a)
		a->data = data;
	return a;
}

void kiln_array_free(kiln_array *a)
{
	if (!a)
		return;
	if (a->owns_data)
		free(a->data);
	free(a);
}

int64_t kiln_array_numel(const kiln_array *a)
{
	int64_t n = 1;
	for (int d = 0; d < a->ndim; d++)
		if (a->shape[d] == 0)
			return 0;
	for (int d = 0; d < a->ndim; d++)
		n *= a->shape[d];
	return n;
}

int kiln_array_is_compact(const kiln_array *a)
{
	int64_t s = 1;
	for (int d = a->ndim - 1; d >= 0; d--) {
		if (a->shape[d] != 1 && a->strides[d] != s)
			return 0;
		s *= a->shape[d];
	}
	return 1;
}

/* splitmix64: a small, good, seedable generator for test data */
static uint64_t next_u64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/*
 * IEEE half from a double, rounded to nearest even, by bits: clang 14 (which
 * Emscripten uses) has no _Float16 for wasm.
 */
static uint16_t to_half(double v)
{
	float fv = (float)v;
	uint32_t x;
	memcpy(&x, &fv, 4);
	uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
	int32_t e = (int32_t)((x >> 23) & 0xff) - 127 + 15;
	uint32_t mant = x & 0x7fffff;
	if (((x >> 23) & 0xff) == 0xff) /* inf, nan */
		return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0));
	if (e >= 31)
		return (uint16_t)(sign | 0x7c00);
	if (e <= 0) { /* subnormal half, or zero */
		if (e < -10)
			return sign;
		mant |= 0x800000;
		uint32_t shift = (uint32_t)(14 - e);
		uint32_t h = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
		if (rem > half || (rem == half && (h & 1)))
			h++;
		return (uint16_t)(sign | h);
	}
	uint32_t h = ((uint32_t)e << 10) | (mant >> 13), rem = mant & 0x1fff;
	if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
		h++; /* may carry into the exponent, up to inf: still right */
	return (uint16_t)(sign | h);
}

void kiln_array_fill_random(kiln_array *a, uint64_t seed, double lo, double hi)
{
	if (!a || !a->data || rt_dtype_check(a->dtype, "fill_random"))
		return;
	int64_t n = kiln_array_numel(a);
	uint64_t s = seed;
	for (int64_t i = 0; i < n; i++) {
		double u = (double)(next_u64(&s) >> 11) * (1.0 / 9007199254740992.0);
		double v = lo + (hi - lo) * u;
		kiln_dtype t = a->dtype;
		if (t.code == KILN_FLOAT && t.bits == 32)
			((float *)a->data)[i] = (float)v;
		else if (t.code == KILN_FLOAT && t.bits == 64)
			((double *)a->data)[i] = v;
		else if (t.code == KILN_FLOAT && t.bits == 16)
			((uint16_t *)a->data)[i] = to_half(v);
		else if (t.code == KILN_BOOL || t.bits == 8)
			((int8_t *)a->data)[i] = (int8_t)(t.code == KILN_BOOL ? (v > (lo + hi) / 2) : (int64_t)v);
		else if (t.bits == 16)
			((int16_t *)a->data)[i] = (int16_t)(int64_t)v;
		else if (t.bits == 32)
			((int32_t *)a->data)[i] = (int32_t)(int64_t)v;
		else
			((int64_t *)a->data)[i] = (int64_t)v;
	}
}
