/*
 * rt.h — runtime internals shared by the runtime's files.
 */
#ifndef KILN_RT_H
#define KILN_RT_H

#include "kiln/runtime.h"

/* Sets this thread's runtime error and returns -1. */
int rt_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Whether an array or an argument can have dtype t: bool (1 or 8 bits), int
 * and uint of 8-64 bits, float of 16-64 bits, one lane. 0, or -1 with a
 * message that names `what`.
 */
int rt_dtype_check(kiln_dtype t, const char *what);
/*
 * The bytes of a compact array of this shape and dtype, every product
 * checked: extents must be >= 0 and the total at most KILN_MAX_ARRAY_BYTES.
 * 0, or -1 with a message that names `what`.
 */
int rt_array_bytes(int ndim, const int64_t *shape, kiln_dtype t, const char *what, size_t *out);

typedef struct rt_function rt_function;
/*
 * A device: what runs a module's functions, as TVM's DeviceAPI or QBE's
 * targets — one struct of function pointers per device, filled with
 * designated initializers where the device lives (call.c: cpu, opencl.c,
 * gles.c, web.c: wasm and webgpu, rpc/client.c: remote). call.c and the
 * graph executor call through it; nothing else dispatches on a target name.
 */
typedef struct rt_device {
	const char *name;
	kiln_device_kind arrays;  /* where the arguments of its functions live */
	/* runs f once; with ms, returns the kernels' own time (kernel_clock) */
	int (*run)(kiln_module *m, rt_function *f, kiln_array **args, double *ms);
	bool kernel_clock;        /* run's ms is the device's clock: the evaluator times by it */
	bool needs_code;          /* a function needs f->fn or launches in the module */
	/* the whole time evaluator, when the device times on its own side (remote); NULL: call.c's */
	int (*time)(kiln_module *m, rt_function *f, kiln_array **args, const kiln_time_opts *o, kiln_timing *out);
	/*
	 * The graph executor's resident form (opencl, gles): arguments live in
	 * device buffers shared between functions, keyed by their host memory;
	 * upload[i] / download[i] say which cross the bus. sync waits for queued
	 * work; forget releases the buffers of host memory in [host, host + bytes).
	 */
	int (*run_resident)(kiln_module *m, rt_function *f, kiln_array **args, const uint8_t *upload,
	                    const uint8_t *download);
	int (*sync)(void);
	void (*forget)(const void *host, size_t bytes);
	/*
	 * Buffers the host cannot address (web: wasm kernel memory, GPUBuffers).
	 * alloc returns a handle (a byte offset, a buffer id), 0 with a message on
	 * failure; with offsets, handle + n addresses n bytes into a buffer, so one
	 * allocation can hold an arena. NULL alloc: arrays are host memory.
	 */
	bool offsets;
	uintptr_t (*alloc)(kiln_module *m, size_t bytes);
	void (*release)(kiln_module *m, uintptr_t handle);
	int (*upload)(kiln_module *m, uintptr_t handle, const void *src, size_t bytes);
} rt_device;

extern const rt_device rt_cpu_device, rt_opencl_device, rt_gles_device, rt_wasm_device, rt_webgpu_device,
	rt_remote_device;
/* The device that runs m (its own, else the one for its target here), or NULL with a message. */
const rt_device *rt_device_for(kiln_module *m);
/* A model over module m (kiln/model.h); owns: m is freed with the model (and on failure). */
struct kiln_model *rt_model_over(kiln_module *m, bool owns);
/* Checks the time evaluator's options and fills in the defaults (opts may be NULL). */
int rt_time_opts(const kiln_time_opts *opts, kiln_time_opts *out);
/* The time evaluator's loop on the host clock: warm-ups, calls per sample grown
 * to min_repeat_ms when number is 0, repeat samples summarized into out. */
int rt_time_host(int (*once)(void *), void *arg, const kiln_time_opts *o, kiln_timing *out);
/* Median, mean and min of out->samples_ms[0..repeat). */
void rt_timing_summarize(kiln_timing *out, int repeat);
/* qsort's comparison of doubles, ascending. */
int rt_cmp_double(const void *a, const void *b);

/* This machine's memory in bytes, or 0 when unknown (asked once). */
uint64_t rt_physical_memory(void);

/* One kernel launch of a device function. */
#define RT_MAX_LAUNCH_ARGS 64
#define RT_MAX_GRID 0x7fffffffu       /* blocks along one grid dimension */
#define RT_MAX_BLOCK_THREADS 1024u    /* threads in one block (every target's limit) */
typedef struct {
	char kernel[64];          /* entry point in the module's source */
	uint32_t grid[3], block[3];
	int nargs;
	int32_t args[RT_MAX_LAUNCH_ARGS]; /* >= 0: the function's argument; < 0: temporary -1-k */
} rt_launch;

/* One function of a module: a CPU entry point, or a list of kernel launches. */
struct rt_function {
	char *name;
	int nargs;
	kiln_arg_info *args;
	void *fn;                 /* CPU entry point once resolved */
	int nlaunch;
	rt_launch *launches;
	int ntemp;
	uint64_t *temp_bytes;     /* device intermediates the launches share */
	void *dev;                /* the device layer's per-function state */
};

/* A named blob: object code, kernel source, ... */
typedef struct {
	char *name;
	uint8_t *data;
	size_t size;
} rt_blob;

struct kiln_module {
	char target[32];
	int nfunc;
	rt_function *funcs;
	int nblob;
	rt_blob *blobs;
	void *dl;                   /* dlopen handle of an exported library */
	int code_fd;                /* 1 + the memfd its library was loaded from, kept open while loaded (module.c) */
	void *owner;                /* e.g. the JIT that holds the code */
	void (*owner_free)(void *owner);
	void (*dev_free)(rt_function *f); /* releases f->dev */
	/* set by the compiler on modules it built: called by kiln_module_save to add
	 * what a saved module needs (CPU code linked into an "llvm-so" blob) */
	int (*save_prepare)(kiln_module *m);
	const rt_device *device;    /* set by rt_device_for, or by whoever made m (remote) */
};

/* Adds the launches and temporaries of a device function. */
int rt_function_set_launches(rt_function *f, int nlaunch, const rt_launch *l, int ntemp, const uint64_t *temp_bytes);

/* The packing (1 or 4 floats per texel) of f's textures on the GLES device, -1
 * with a message when the device or f's kernels are unusable. */
int rt_gles_lanes(kiln_module *m, rt_function *f);

/* What kiln_module_save writes, in memory (CPU code built here linked first); malloc'ed bytes. */
int rt_module_container(const kiln_module *m, uint8_t **out, size_t *size);
/* Serializes the module container (metadata + blobs); malloc'ed bytes. */
int rt_module_serialize(const kiln_module *m, uint8_t **out, size_t *size);
/* kiln_module_save without the "weights" blob: a model bundle keeps each distinct weights file once. */
int rt_module_save_without_weights(const kiln_module *m, const char *path);
/* The container with every blob but CPU code (what a model library embeds as data). */
int rt_module_serialize_data(const kiln_module *m, uint8_t **out, size_t *size);
/* Parses a container; what says where the bytes came from (for messages). */
kiln_module *rt_module_parse(const uint8_t *data, size_t size, const char *what);
kiln_module *rt_module_new(const char *target);
int rt_module_add_function(kiln_module *m, const char *name, int nargs, const kiln_arg_info *args, void *fn);
int rt_module_add_blob(kiln_module *m, const char *name, const void *data, size_t size);
const rt_blob *rt_module_blob(const kiln_module *m, const char *name);
rt_function *rt_module_find(const kiln_module *m, const char *name);

/* The symbol an exported library uses to carry its module container. */
#define RT_BLOB_SYMBOL "__kiln_module_blob"
#define RT_BLOB_SIZE_SYMBOL "__kiln_module_blob_size"
/* A model library's whole container but its code (plan, weights, kernel sources), preferred when present. */
#define RT_DATA_SYMBOL "__kiln_module_data"
#define RT_DATA_SIZE_SYMBOL "__kiln_module_data_size"

double rt_now_ms(void);

#endif
