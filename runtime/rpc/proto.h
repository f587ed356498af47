/*
 * proto.h — kiln's RPC messages (shared by client.c, server.c, the proxy and,
 * in JavaScript, web/rpc.mjs).
 *
 * On a byte stream every message is a frame: u32 length, then that many bytes
 * of body; over WebSocket one binary message is one body. A body is
 *
 *   u8 type, then the type's fields, little-endian:
 *     str   = u32 length + bytes (names at most RPC_MAX_NAME, keys KILN_RPC_MAX_KEY)
 *     bytes = u64 length + bytes
 *
 *   HELLO      u32 magic "KRPC", u16 version, str key          client -> server
 *   REGISTER   u32 magic, u16 version, str key, str description, u8 flags   server -> proxy
 *              (flags bit 0: send large messages as PARCELs)
 *   WELCOME    u16 version, str description                    server -> client
 *   ERROR      str message                                     either way
 *   OK
 *   DEVICES                          -> DEVICE_LIST u32 n {str target, str description}
 *   UPLOAD     bytes container       -> MODULE u32 handle
 *   FREE_MODULE u32 module           -> OK
 *   ALLOC      u32 module, u8 code, u8 bits, u16 lanes, u8 ndim, i64 shape[ndim] -> ARRAY u32 handle
 *   FREE_ARRAY u32 array             -> OK
 *   WRITE      u32 array, bytes data -> OK      (data is the array's every byte)
 *   READ       u32 array             -> DATA bytes
 *   CALL       u32 module, str fn, u32 n, u32 array[n]          -> OK
 *   TIME       u32 module, str fn, u32 n, u32 array[n], i32 warmup, i32 number, i32 repeat,
 *              f64 min_repeat_ms     -> TIMING f64 median, f64 mean, f64 min, i32 number,
 *                                                u32 n, f64 samples[n]
 *   CLOSE                            -> OK, then the server closes
 *   MODEL_LOAD bytes container       -> MODEL_INFO u32 handle, u32 nin {io}, u32 nout {io}
 *              io = str name, u8 code, u8 bits, u16 lanes, u8 ndim, i64 shape[ndim]
 *   MODEL_RUN  u32 model, u32 n, bytes input[n]    -> MODEL_OUTPUTS u32 n, bytes output[n]
 *   MODEL_TIME u32 model, u32 n, bytes input[n], i32 warmup, i32 number, i32 repeat,
 *              f64 min_repeat_ms     -> TIMING
 *   FREE_MODEL u32 model             -> OK
 *   MODEL_STEPS u32 model, u32 n, bytes input[n], i32 runs (1 to RPC_MAX_STEP_RUNS)
 *                                    -> STEP_TIMES u32 n, {str function, f64 ms}[n]: each step
 *                                       (kernel) timed inside runs whole runs after a warm one,
 *                                       its median, in plan order (what model tuning measures)
 *   PARCEL     str token, u64 size   proxy -> web device: fetch the next message's body
 *              from GET /parcel/TOKEN on the proxy (large messages: a browser fetches
 *              faster than it receives a WebSocket message)
 *   POOL       u32 magic, u16 version, str key   client -> proxy, instead of HELLO
 *                                    -> DEVICE_LIST {free|busy, description} of the devices
 *                                       registered under key; then the proxy closes
 *
 * rpc_decode checks every field against what is left of the body and
 * against the limits below before anything uses it, so a hostile or
 * truncated message is an error, never a read past the end.
 */
#ifndef KILN_RPC_PROTO_H
#define KILN_RPC_PROTO_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/rpc.h"

#define RPC_MAGIC 0x4350524bu /* "KRPC" little-endian */
#define RPC_MAX_NAME 4096
#define RPC_MAX_DEVICES 16
#define RPC_MAX_ARGS 256
#define RPC_MAX_SAMPLES 100000
#define RPC_MAX_IO 64
#define RPC_MAX_STEPS 100000
#define RPC_MAX_STEP_RUNS 1000 /* MODEL_STEPS */
#define RPC_REGISTER_PARCELS 1u

enum {
	RPC_HELLO = 1,
	RPC_REGISTER,
	RPC_WELCOME,
	RPC_ERROR,
	RPC_OK,
	RPC_DEVICES,
	RPC_DEVICE_LIST,
	RPC_UPLOAD,
	RPC_MODULE,
	RPC_FREE_MODULE,
	RPC_ALLOC,
	RPC_ARRAY,
	RPC_FREE_ARRAY,
	RPC_WRITE,
	RPC_READ,
	RPC_DATA,
	RPC_CALL,
	RPC_TIME,
	RPC_TIMING,
	RPC_CLOSE,
	RPC_MODEL_LOAD,
	RPC_MODEL_INFO,
	RPC_MODEL_RUN,
	RPC_MODEL_OUTPUTS,
	RPC_MODEL_TIME,
	RPC_FREE_MODEL,
	RPC_PARCEL,
	RPC_POOL,
	RPC_MODEL_STEPS,
	RPC_STEP_TIMES,
	RPC_NUM_TYPES
};

/* A byte range inside a decoded body (not NUL-terminated). */
typedef struct {
	const uint8_t *p;
	size_t n;
} rpc_span;

/* A decoded message: spans point into the body it came from. */
typedef struct {
	int type;
	uint32_t magic, version;
	rpc_span key, text;          /* HELLO/REGISTER key; description, ERROR message, fn name */
	rpc_span data;               /* UPLOAD, WRITE, DATA */
	uint32_t module, array;      /* handles */
	kiln_dtype dtype;            /* ALLOC */
	int ndim;
	int64_t shape[KILN_MAX_DIMS];
	uint32_t nargs;              /* CALL, TIME */
	uint32_t args[RPC_MAX_ARGS];
	int32_t warmup, number, repeat;
	double min_repeat_ms;
	double median_ms, mean_ms, min_ms; /* TIMING */
	uint32_t nsamples;
	const uint8_t *samples;      /* nsamples little-endian f64 */
	uint32_t model;              /* MODEL_* handle */
	uint64_t size;               /* PARCEL */
	uint8_t flags;               /* REGISTER */
	uint32_t nio;                /* MODEL_RUN, MODEL_TIME inputs; MODEL_OUTPUTS */
	rpc_span io[RPC_MAX_IO];
	uint32_t nin, nout;          /* MODEL_INFO */
	kiln_arg_info in_info[RPC_MAX_IO], out_info[RPC_MAX_IO];
	int32_t runs;                /* MODEL_STEPS */
	uint32_t nsteps;             /* STEP_TIMES: nsteps {str, f64} checked, walked by rpc_step_next */
	rpc_span steps;
	uint32_t ndevices;           /* DEVICE_LIST */
	rpc_span dev_target[RPC_MAX_DEVICES], dev_desc[RPC_MAX_DEVICES];
} rpc_msg;

/* The name of a message type ("CALL"), "unknown" past the table. */
const char *rpc_type_name(int type);
/* Decodes body[0..n); 0, or -1 with a message in err. */
int rpc_decode(const uint8_t *body, size_t n, rpc_msg *m, char *err, size_t errn);
/* samples[i] of a decoded TIMING. */
double rpc_sample(const rpc_msg *m, uint32_t i);
/* The next step of a decoded STEP_TIMES from *at (0 for the first): its function's name and time. */
void rpc_step_next(const rpc_msg *m, size_t *at, rpc_span *name, double *ms);

/* A message being built: a frame (u32 length, then the body) in one buffer. */
typedef struct {
	uint8_t *p;
	size_t n, cap;
	int oom;
} rpc_buf;

void rpc_begin(rpc_buf *b, int type);
void rpc_u8(rpc_buf *b, uint8_t v);
void rpc_u16(rpc_buf *b, uint16_t v);
void rpc_u32(rpc_buf *b, uint32_t v);
void rpc_u64(rpc_buf *b, uint64_t v);
void rpc_i64(rpc_buf *b, int64_t v);
void rpc_f64(rpc_buf *b, double v);
void rpc_str(rpc_buf *b, const char *s, size_t n);
void rpc_bytes(rpc_buf *b, const void *d, uint64_t n);
/* A model's input or output description (MODEL_INFO). */
void rpc_arg_info(rpc_buf *b, const kiln_arg_info *a);
/* Writes the frame's length; 0, or -1 with a message when memory ran out. */
int rpc_end(rpc_buf *b);
void rpc_buf_free(rpc_buf *b);
/* b holds an ERROR frame with the formatted message (at most 1 KiB); 0, or -1 out of memory. */
int rpc_error_frame(rpc_buf *b, const char *fmt, va_list ap);

/* ---- frames on a socket (runtime/rpc/net.c) ---- */
/*
 * Reads one frame's body (malloc'ed) from fd: the whole frame must arrive
 * within timeout_ms once its first byte has; first_ms bounds the wait for
 * that byte (-1: forever). A body over max bytes is refused before any of
 * it is allocated. 0; 1 when the peer closed cleanly before a frame; -1
 * with a message.
 */
int rpc_read_frame(int fd, size_t max, int first_ms, int timeout_ms, uint8_t **body, size_t *n);
/* Writes all n bytes within timeout_ms (no SIGPIPE); 0 or -1 with a message. */
int rpc_write_all(int fd, const void *p, size_t n, int timeout_ms);
/* Ends our side, reads and drops what the peer still sends (up to a second), closes. */
void rpc_close_gracefully(int fd);
/* Sends an ERROR message (best effort). */
void rpc_send_error(int fd, int timeout_ms, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Sends small messages at once (no Nagle delay): requests are answered one at a time. */
void rpc_nodelay(int fd);
/* A connected TCP socket to host:port, or -1 with a message. */
int rpc_dial(const char *host, int port, int timeout_ms);
/* A listening TCP socket on host:port (port 0: any; *bound gets it), or -1 with a message. */
int rpc_listen(const char *host, int port, int *bound);
/* Whether a and b are equal, in time that depends only on their lengths' maximum. */
int rpc_key_equal(const uint8_t *a, size_t an, const uint8_t *b, size_t bn);

/*
 * The server's side of one session on fd, until it ends; fd is closed.
 * report_crashes: a fatal signal sends the client an ERROR and exits (the
 * worker process's life); the fuzz target keeps its own handlers.
 */
void rpc_serve_session(const kiln_rpc_server_opts *o, int fd, bool report_crashes);

#endif
