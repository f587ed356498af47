/*
 * c_like.h — one printer for the C-like kernel languages: OpenCL C, GLSL ES
 * and WGSL. The shared part walks the kernel IR; a language
 * is a table of hooks for what differs: type names, literals, built-ins,
 * vector loads and stores, declarations.
 */
#ifndef KILN_C_LIKE_H
#define KILN_C_LIKE_H

#include <stdio.h>

#include "ir/simplify.h"
#include "schedule/device.h"

typedef struct cg_src cg_src;

typedef struct {
	const char *name;
	/* the spelling of a type, for declarations and casts */
	const char *(*type)(cg_src *s, ir_type t, char *buf);
	/* literals */
	void (*int_imm)(cg_src *s, ir_type t, int64_t v);
	/* the kernel's signature, index variables and shared arrays; its closing */
	void (*kernel_begin)(cg_src *s);
	void (*kernel_end)(cg_src *s);
	/* buf[index] as a value (index may be a vector) */
	char *(*load)(cg_src *s, const ir_expr *e);
	void (*store)(cg_src *s, const ir_stmt *st);
	void (*barrier)(cg_src *s);
	/* a private (per-thread) array */
	void (*local_array)(cg_src *s, const ir_buffer *b);
	/* the function implementing an intrinsic on t, or NULL to expand it */
	const char *(*math)(kiln_intrinsic op, ir_type t);
	/* min, max, select and casts on vectors differ by language */
	char *(*minmax)(cg_src *s, const ir_expr *e, const char *a, const char *b);
	char *(*select)(cg_src *s, const ir_expr *e, const char *c, const char *t, const char *f);
	char *(*cast)(cg_src *s, ir_type to, const ir_expr *from, const char *v);
	/* comparisons and logic on vectors where infix operators do not apply (NULL: infix) */
	char *(*vector_binary)(cg_src *s, const ir_expr *e, const char *a, const char *b);
	/* helper definitions printed once before the kernels */
	const char *prelude;
	int max_lanes;
	bool (*lanes_ok)(int lanes);
	size_t state_size;  /* the hooks' own state, zeroed per print (cg_src.user) */
	/* infinities and NaN where the language has no literal for them (NULL: C's 1.0f/0.0f) */
	char *(*special_float)(cg_src *s, double v);
	bool output_first;  /* kernel parameters: the written buffer first (one per kernel) */
	bool constructors;  /* vector literals as T(a, b) (GLSL, WGSL) rather than ((T)(a, b)) (OpenCL) */
	/* a boolean vector's true lanes are -1 (OpenCL C: what comparisons give and select() tests the top bit
	 * of), so a broadcast bool is -(int)b: ((int4)(b)) would make its true lanes 1 */
	bool true_all_ones;
	const char *value_decl; /* how a named value is declared: "const " in C; GLSL's const wants constants */
	/* the declaration of a variable (mut) or a named value, without its initializer
	 * (NULL: C's "T name", value_decl first for values) */
	char *(*declare)(cg_src *s, ir_type t, const char *name, bool mut);
	bool no_ternary; /* scalar selects go through select() too (WGSL has no ?:) */
	/* the language has 64-bit integers (OpenCL C): a kernel whose index math
	 * provably fits 32 bits is printed with it narrowed (cg_src.narrow), and
	 * the floor helpers for 32-bit values are kiln_floordiv32 / kiln_floormod32 */
	bool int64;
} cg_lang;

typedef struct {
	const void *key;
	const char *name;
} cg_name;

struct cg_src {
	FILE *f;
	const cg_lang *lang;
	const ir_kernel *k;
	kiln_ctx *ctx;
	int indent;
	int err;
	int ntmp;
	int nname, namecap;
	cg_name *names;
	void *user; /* the language's own state */
	ir_env env; /* the ranges of the index variables in scope where printing is */
	bool narrow; /* 64-bit integers print as 32-bit in this kernel (cg_lang.int64) */
};

/* Prints the kernels of every function into f, the language's prelude first. Returns 0 or -1. */
int cg_print_kernels(kiln_ctx *ctx, const cg_lang *lang, int nfunc, ir_device_func *const *ds, FILE *f);

/* For the hooks: */
char *cg_expr(cg_src *s, const ir_expr *e);
const char *cg_name_of(cg_src *s, const void *key, const char *base);
/* "T name" in C, "let name: T" in WGSL: see cg_lang.declare. */
char *cg_decl(cg_src *s, ir_type t, const char *name, bool mut);
void cg_line(cg_src *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *cg_fmt(cg_src *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A fresh temporary holding e, declared on its own line before the statement. */
const char *cg_temp(cg_src *s, const ir_expr *e);
int cg_fail(cg_src *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Whether a vector index is base + (0, 1, 2, ...): consecutive elements. */
bool cg_unit_ramp(const ir_expr *ix);
/* And base a multiple of the lane count (under the ranges in scope): whole
 * aligned vectors of a buffer whose start is aligned. */
bool cg_aligned_ramp(cg_src *s, const ir_expr *ix);
/* The name of lane i of a vector in the language. */
const char *cg_lane(cg_src *s, int i);

#endif
