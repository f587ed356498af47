/*
 * kiln runtime: arrays, modules, generic calls, timing, threads.
 *
 * This is the only header a deployed program needs. libkiln_runtime does not
 * link LLVM: it loads modules that the compiler (libkiln) built and exported.
 */
#ifndef KILN_RUNTIME_H
#define KILN_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Scalar kinds of a dtype. */
typedef enum {
	KILN_BOOL = 0,
	KILN_INT = 1,
	KILN_UINT = 2,
	KILN_FLOAT = 3,
	KILN_HANDLE = 4, /* an opaque pointer (buffer data); never a tensor element */
} kiln_typecode;

/* A data type: element kind, bits per lane, and vector lanes (1 = scalar). */
typedef struct {
	uint8_t code;
	uint8_t bits;
	uint16_t lanes;
} kiln_dtype;

#define KILN_MAX_DIMS 8

/* Returns "float32", "int64x4", ...; buf must hold 16 bytes. */
const char *kiln_dtype_str(kiln_dtype t, char *buf);
/* Parses "float32", "f32", "int8", "bool", ...; returns 0 or -1. */
int kiln_dtype_parse(const char *s, kiln_dtype *out);
/* Bytes of one element (all lanes); bool takes one byte. */
size_t kiln_dtype_bytes(kiln_dtype t);

/*
 * Where an array's data lives. In the web runtime, a wasm array's data is an
 * offset into the memory of its module's kernel instance, and a webgpu
 * array's data is the JS layer's id of a GPUBuffer (as a CUDA or OpenCL
 * array's data is a device handle in TVM's DLTensor).
 */
typedef enum {
	KILN_DEV_CPU = 0,
	KILN_DEV_OPENCL = 1,
	KILN_DEV_GLES = 2,
	KILN_DEV_WEBGPU = 3,
	KILN_DEV_WASM = 4,
} kiln_device_kind;

/*
 * An n-d array. data is 64-byte aligned when the runtime allocated it.
 * strides are in elements; a compact row-major array has the usual ones.
 */
typedef struct kiln_array {
	void *data;
	kiln_dtype dtype;
	int ndim;
	int64_t shape[KILN_MAX_DIMS];
	int64_t strides[KILN_MAX_DIMS];
	kiln_device_kind device;
	int owns_data;
} kiln_array;

/*
 * The largest array the runtime makes or accepts, in bytes (1 TiB): sizes
 * past it, or whose product of extents overflows, are refused with a
 * message wherever they enter (arrays, module metadata, the CLI).
 */
#define KILN_MAX_ARRAY_BYTES ((int64_t)1 << 40)

/*
 * A new zero-filled array; NULL with a message (kiln_rt_last_error) when the
 * dtype is not one an array can hold, an extent is negative, the size
 * overflows or exceeds KILN_MAX_ARRAY_BYTES or this machine's memory, or the
 * allocation fails.
 */
kiln_array *kiln_array_empty(int ndim, const int64_t *shape, kiln_dtype dtype);
/* Wraps caller memory; the array does not free it. */
kiln_array *kiln_array_wrap(void *data, int ndim, const int64_t *shape, kiln_dtype dtype);
void kiln_array_free(kiln_array *a);
int64_t kiln_array_numel(const kiln_array *a);
int kiln_array_is_compact(const kiln_array *a);
/* Fills a float or int array with uniform values in [lo, hi) from a seed. */
void kiln_array_fill_random(kiln_array *a, uint64_t seed, double lo, double hi);

/* Metadata of one argument of a compiled function. */
typedef struct {
	char name[64];
	kiln_dtype dtype;
	int ndim;
	int64_t shape[KILN_MAX_DIMS];
	int is_output;
} kiln_arg_info;

typedef struct kiln_module kiln_module;

/*
 * Loads a module: an exported shared library (its embedded metadata names
 * the functions) or a saved module container. NULL on failure; the reason
 * is in kiln_rt_last_error().
 */
kiln_module *kiln_module_load(const char *path);
/*
 * Loads a module container from memory (what kiln_module_save writes); what
 * names the bytes in messages. The web runtime loads bundles this way.
 */
kiln_module *kiln_module_load_bytes(const void *data, size_t size, const char *what);
void kiln_module_free(kiln_module *m);
/*
 * Writes the module's container (metadata and blobs) to path. A CPU module
 * built in this process has its code linked into a shared object first (the
 * compiler's toolchain does it, once): the saved module then loads with no
 * compiler or linker (kiln_module_load reads it from memory).
 */
int kiln_module_save(const kiln_module *m, const char *path);
int kiln_module_num_functions(const kiln_module *m);
/* The target the module was built for: "llvm", "wasm", "opencl", "webgl", "webgpu". */
const char *kiln_module_target(const kiln_module *m);
const char *kiln_module_function_name(const kiln_module *m, int i);
/* Argument metadata of a function; returns the count or -1 if not found. */
int kiln_module_function_args(const kiln_module *m, const char *fn, const kiln_arg_info **args);
/* The raw C entry point of a CPU function (int fn(T *a, T *b, ...)), or NULL. */
void *kiln_module_function_ptr(const kiln_module *m, const char *fn);

/*
 * Calls fn with arrays, checking count, dtype, shape and compactness
 * against the metadata first. Returns 0, or -1 with a message.
 */
int kiln_module_call(kiln_module *m, const char *fn, kiln_array **args, int nargs);

/* Result of the time evaluator, in milliseconds per call. */
typedef struct {
	double median_ms;
	double mean_ms;
	double min_ms;
	int nsamples;
	double *samples_ms; /* nsamples entries, owned by the result */
	int number;         /* calls averaged inside each sample */
} kiln_timing;

typedef struct {
	int warmup;        /* calls before timing */
	int number;        /* calls per sample (0 = chosen from min_repeat_ms) */
	int repeat;        /* samples, 1 to 100000 */
	double min_repeat_ms; /* grow number until a sample takes this long */
	/* repeat 0, negative values, or more than 2^24 calls, 100000 warm-ups or an
	 * hour, are errors: nothing is silently replaced. With opts NULL the
	 * evaluator takes warmup 1, repeat 5, number 1. */
} kiln_time_opts;

int kiln_module_time(kiln_module *m, const char *fn, kiln_array **args, int nargs,
                     const kiln_time_opts *opts, kiln_timing *out);
void kiln_timing_free(kiln_timing *t);

/* The last runtime error message of this thread ("" if none). */
const char *kiln_rt_last_error(void);

/*
 * Thread pool used by parallel loops. The size comes from this call, else
 * from KILN_NUM_THREADS, else the number of online cores; never more than
 * KILN_MAX_THREADS (larger requests are clamped).
 */
#define KILN_MAX_THREADS 1024
void kiln_set_num_threads(int n);
int kiln_get_num_threads(void);

/*
 * Runs fn(begin, end, closure) over [0, n) split into contiguous chunks,
 * one per pool thread. Generated code calls this for parallel loops.
 * Returns the first non-zero status of a chunk, else 0.
 */
typedef int (*kiln_parallel_fn)(int64_t begin, int64_t end, void *closure);
int kiln_parallel_for(int64_t n, kiln_parallel_fn fn, void *closure);

/* Scratch memory for generated code (64-byte aligned). */
void *kiln_workspace_alloc(int64_t bytes);
void kiln_workspace_free(void *p);

#ifdef __cplusplus
}
#endif
#endif
