/*
 * kiln RPC: run and time modules on a remote device — another machine's CPU,
 * OpenCL or GLES device (`kiln rpc server`), or a browser tab or node process
 * reached through `kiln rpc proxy`.
 *
 *   kiln_rpc *s = kiln_rpc_connect("127.0.0.1", 9090, "my-key");
 *   kiln_module *r = kiln_rpc_upload(s, m);        // m: a module built here
 *   kiln_module_call(r, "relu", args, 2);          // host arrays in and out
 *   kiln_module_time(r, "relu", args, 2, NULL, &t); // timed over there
 *   kiln_module_free(r);
 *   kiln_rpc_close(s);
 *
 * A remote module is an ordinary kiln_module: kiln_module_call copies the
 * inputs over, runs the function there and copies the outputs back;
 * kiln_module_time runs the time evaluator there (the device's own clock
 * for GPUs) and returns its samples. Every error — a refused key, a function
 * that fails there, a worker that crashed, a dropped connection — comes back
 * through kiln_rt_last_error().
 */
#ifndef KILN_RPC_H
#define KILN_RPC_H

#include "kiln/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The protocol's version; a peer speaking another one is refused at HELLO. */
#define KILN_RPC_VERSION 1
/* The default and the largest maximum message size (a module upload is one message). */
#define KILN_RPC_DEFAULT_MAX_MESSAGE ((size_t)256 << 20)
#define KILN_RPC_LIMIT_MAX_MESSAGE ((size_t)2 << 30)
#define KILN_RPC_DEFAULT_PORT 9090
#define KILN_RPC_MAX_KEY 256

typedef struct kiln_rpc kiln_rpc;

/*
 * Opens a session with a server or a proxy at host:port under key. NULL
 * with a message when the connection fails, the key is refused, the peer
 * speaks another protocol version, or no device of that key frees up within
 * the proxy's wait. timeout_ms bounds every request of the session (0: 60 s).
 */
kiln_rpc *kiln_rpc_connect(const char *host, int port, const char *key, int timeout_ms);
/* What the peer said it is ("kiln rpc server 0.1.0 on HOST", "chromium tab ..."). */
const char *kiln_rpc_peer(const kiln_rpc *s);

typedef struct {
	char target[32];        /* the target whose modules it runs: llvm, opencl, webgl, wasm, webgpu */
	char description[256];  /* the device's name there */
} kiln_rpc_device;
/* Fills up to max devices the peer has; returns how many it has, or -1. */
int kiln_rpc_devices(kiln_rpc *s, kiln_rpc_device *out, int max);

/*
 * The devices registered at a proxy under key: target says "free" or "busy",
 * description what the device said it is. Returns how many there are (0: none
 * under that key), or -1 with a message (e.g. host:port is not a proxy).
 */
int kiln_rpc_pool(const char *host, int port, const char *key, kiln_rpc_device *out, int max, int timeout_ms);

/*
 * Uploads module m (built here, for a target the peer runs) and returns its
 * remote twin; m stays usable and owned by the caller. The remote module
 * keeps the session open until both are freed/closed. NULL with a message.
 */
kiln_module *kiln_rpc_upload(kiln_rpc *s, const kiln_module *m);
/* The same for a module container's bytes (what kiln_module_save writes). */
kiln_module *kiln_rpc_upload_bytes(kiln_rpc *s, const void *data, size_t size);

/*
 * A whole model (a model module: kiln compile MODEL.onnx --target T -o M.kmod)
 * loaded there; inputs go over and outputs come back in one request a run.
 */
typedef struct kiln_rpc_model kiln_rpc_model;
kiln_rpc_model *kiln_rpc_load_model(kiln_rpc *s, const void *container, size_t size);
int kiln_rpc_model_num_inputs(const kiln_rpc_model *m);
int kiln_rpc_model_num_outputs(const kiln_rpc_model *m);
const kiln_arg_info *kiln_rpc_model_input_info(const kiln_rpc_model *m, int i);
const kiln_arg_info *kiln_rpc_model_output_info(const kiln_rpc_model *m, int i);
/* Runs it on inputs (in input order) and fills outputs (arrays of the outputs' shapes). */
int kiln_rpc_model_run(kiln_rpc_model *m, const kiln_array *const *inputs, kiln_array *const *outputs);
/* The time evaluator there over whole runs on these inputs. */
int kiln_rpc_model_time(kiln_rpc_model *m, const kiln_array *const *inputs, const kiln_time_opts *opts,
                        kiln_timing *out);
/* One step of a model: its kernel's function and a time. */
typedef struct {
	char fn[128];
	double ms;
} kiln_rpc_step;
/*
 * Each step of the model timed there inside runs (1 to 1000) whole runs
 * (after a warm one) on these inputs, as kiln_model_step_times_in_runs: the medians in
 * plan order into *steps (malloc'ed: free it) and their count into *n.
 * What tuning a whole model measures: each kernel with the caches as the
 * kernels before it leave them. 0 or -1.
 */
int kiln_rpc_model_step_times(kiln_rpc_model *m, const kiln_array *const *inputs, int runs, kiln_rpc_step **steps,
                              int *n);
void kiln_rpc_model_free(kiln_rpc_model *m);

/* Ends the session (remote modules still open then fail with a message). */
void kiln_rpc_close(kiln_rpc *s);

/* ---- servers ---- */
typedef struct {
	const char *host;        /* address to listen on; NULL: 127.0.0.1 */
	int port;                /* 0: a free port (printed) */
	const char *key;         /* required: sessions must present it */
	size_t max_message;      /* 0: KILN_RPC_DEFAULT_MAX_MESSAGE */
	int timeout_ms;          /* a message must arrive whole within it once begun; 0: 10 s */
	int idle_ms;             /* a session idle this long is closed; 0: 10 minutes */
	const char *proxy_host;  /* register at the proxy there instead of listening */
	int proxy_port;
	int sessions;            /* with proxy: serve this many sessions and stop; 0: forever */
	const char *devices;     /* the targets served, a comma list of llvm, opencl, webgl; NULL: all */
	void (*listening)(int port, void *arg); /* called once bound (port chosen) */
	void *arg;
} kiln_rpc_server_opts;

/*
 * Serves sessions until killed: each session in its own worker process, so
 * a kernel that crashes ends only its session (its client gets an error
 * saying so). Returns only on a setup error (-1 with a message).
 */
int kiln_rpc_serve(const kiln_rpc_server_opts *o);

#ifdef __cplusplus
}
#endif
#endif
