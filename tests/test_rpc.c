/*
 * test_rpc.c — the native RPC server and the remote device, on loopback:
 * remote calls against plain C loops on llvm, opencl and webgl; timings;
 * and the faults and attacks a server must survive (wrong or missing key,
 * another version, oversize, truncated and garbage messages, a client that
 * stalls mid-message or drops mid-upload, a kernel that crashes the worker,
 * a worker killed under its client, bad handles) — after each, the server
 * still serves a new session.
 */
#include <check.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kiln/build.h"
#include "kiln/graph.h"
#include "kiln/model.h"
#include "kiln/onnx.h"
#include "kiln/ops.h"
#include "kiln/rpc.h"
#include "runtime/rpc/proto.h"
#include "runtime/rt.h"
#include "testutil.h"

#define KEY "test-key-0123"

static pid_t server_pid;
static int server_port;
/* where clients connect: the native server, or the proxy (KILN_TEST_PROXY) */
static const char *conn_host = "127.0.0.1";
static int conn_port;
static const char *conn_key = KEY;

static void on_listening(int port, void *arg)
{
	int fd = *(int *)arg;
	ssize_t w = write(fd, &port, sizeof port);
	(void)w;
	close(fd);
}

/* A server in a child process (its own process group, so its workers go with it). */
static void start_server(void)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	server_pid = fork();
	if (server_pid == 0) {
		setpgid(0, 0);
		close(p[0]);
		kiln_rpc_server_opts o = {.port = 0, .key = KEY, .timeout_ms = 1000, .max_message = 64 << 20,
		                          .listening = on_listening, .arg = &p[1]};
		kiln_rpc_serve(&o);
		fprintf(stderr, "server: %s\n", kiln_rt_last_error());
		_exit(1);
	}
	close(p[1]);
	ck_assert_int_eq(read(p[0], &server_port, sizeof server_port), (ssize_t)sizeof server_port);
	close(p[0]);
	conn_port = server_port;
}

static void stop_server(void)
{
	if (server_pid > 0) {
		kill(-server_pid, SIGKILL);
		kill(server_pid, SIGKILL);
		waitpid(server_pid, NULL, 0);
	}
	server_pid = 0;
}

static kiln_rpc *connect_ok(void)
{
	kiln_rpc *s = kiln_rpc_connect(conn_host, conn_port, conn_key, 60000);
	ck_assert_msg(s != NULL, "%s", kiln_rt_last_error());
	return s;
}

/* matmul [m, k] x [k, n] built for target. */
static kiln_module *matmul_module(kiln_ctx *ctx, const char *target, int64_t m, int64_t k, int64_t n)
{
	kiln_op_inst o;
	const kiln_op_info *info = kiln_op_find("matmul");
	ck_assert_int_eq(kiln_op_declare(ctx, info, 3, (int64_t[]){m, n, k}, "", &o), 0);
	kiln_tensor *out = o.args[o.nargs - 1];
	kiln_schedule *s = kiln_schedule_for(ctx, target, 1, &out);
	ck_assert_msg(s != NULL, "%s", kiln_error(ctx));
	kiln_module *mod = kiln_build_schedule(s, "matmul", o.nargs, o.args, target);
	ck_assert_msg(mod != NULL, "%s", kiln_error(ctx));
	return mod;
}

/* A remote matmul against a plain C loop; the output poisoned first. */
static void check_remote_matmul(const char *target)
{
	const int64_t M = 37, K = 29, N = 41;
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_module *local = matmul_module(ctx, target, M, K, N);
	kiln_rpc *s = connect_ok();
	kiln_module *r = kiln_rpc_upload(s, local);
	ck_assert_msg(r != NULL, "%s", kiln_rt_last_error());
	kiln_module_free(local);
	ck_assert_str_eq(kiln_module_target(r), target);
	kiln_array *a = kiln_array_empty(2, (int64_t[]){M, K}, KILN_F32), *b = kiln_array_empty(2, (int64_t[]){K, N}, KILN_F32),
	           *c = kiln_array_empty(2, (int64_t[]){M, N}, KILN_F32);
	kiln_array_fill_random(a, 1, -1, 1);
	kiln_array_fill_random(b, 2, -1, 1);
	for (int64_t i = 0; i < M * N; i++)
		((float *)c->data)[i] = NAN;
	ck_assert_msg(kiln_module_call(r, "matmul", (kiln_array *[]){a, b, c}, 3) == 0, "%s", kiln_rt_last_error());
	const float *A = a->data, *B = b->data, *C = c->data;
	for (int64_t i = 0; i < M; i++)
		for (int64_t j = 0; j < N; j++) {
			double want = 0;
			for (int64_t q = 0; q < K; q++)
				want += (double)A[i * K + q] * B[q * N + j];
			ck_assert_msg(fabs(C[i * N + j] - want) <= 1e-4 + 1e-4 * fabs(want), "%s: c[%lld][%lld] = %g, want %g",
			              target, (long long)i, (long long)j, C[i * N + j], want);
		}
	kiln_timing t;
	kiln_time_opts o = {.warmup = 1, .number = 3, .repeat = 4};
	ck_assert_msg(kiln_module_time(r, "matmul", (kiln_array *[]){a, b, c}, 3, &o, &t) == 0, "%s", kiln_rt_last_error());
	ck_assert_int_eq(t.nsamples, 4);
	ck_assert_int_eq(t.number, 3);
	ck_assert(t.median_ms > 0 && t.min_ms <= t.median_ms);
	kiln_timing_free(&t);
	/* a wrong shape is refused here, before anything crosses */
	kiln_array *bad = kiln_array_empty(2, (int64_t[]){M, N + 1}, KILN_F32);
	ck_assert_int_ne(kiln_module_call(r, "matmul", (kiln_array *[]){a, b, bad}, 3), 0);
	ck_assert(strstr(kiln_rt_last_error(), "has shape") != NULL);
	kiln_array_free(bad);
	kiln_array_free(a);
	kiln_array_free(b);
	kiln_array_free(c);
	kiln_module_free(r);
	kiln_rpc_close(s);
	kiln_ctx_free(ctx);
}

START_TEST(remote_llvm) { check_remote_matmul("llvm"); }
END_TEST
START_TEST(remote_opencl) { check_remote_matmul("opencl"); }
END_TEST
START_TEST(remote_webgl) { check_remote_matmul("webgl"); }
END_TEST

START_TEST(devices_listed)
{
	kiln_rpc_device pool[4];
	ck_assert_int_eq(kiln_rpc_pool("127.0.0.1", server_port, KEY, pool, 4, 5000), -1); /* a server, not a proxy */
	ck_assert_msg(strstr(kiln_rt_last_error(), "opens with HELLO") != NULL, "%s", kiln_rt_last_error());
	kiln_rpc *s = connect_ok();
	ck_assert(strstr(kiln_rpc_peer(s), "kiln rpc server") != NULL);
	kiln_rpc_device d[16];
	int n = kiln_rpc_devices(s, d, 16);
	ck_assert_msg(n >= 1, "%s", kiln_rt_last_error());
	ck_assert_str_eq(d[0].target, "llvm");
	kiln_rpc_close(s);
}
END_TEST

/* ---- raw protocol: what a hostile or broken peer sends ---- */

static int raw_connect(void)
{
	int fd = rpc_dial("127.0.0.1", server_port, 5000);
	ck_assert_msg(fd >= 0, "%s", kiln_rt_last_error());
	return fd;
}

static void send_frame(int fd, rpc_buf *b)
{
	ck_assert_int_eq(rpc_end(b), 0);
	ck_assert_int_eq(rpc_write_all(fd, b->p, b->n, 5000), 0);
}

static void hello(rpc_buf *b, uint32_t magic, uint16_t version, const char *key)
{
	rpc_begin(b, RPC_HELLO);
	rpc_u32(b, magic);
	rpc_u16(b, version);
	rpc_str(b, key, strlen(key));
}

/* The next message must be an ERROR containing what; then the server closes (when closes). */
static void expect_error(int fd, const char *what, bool closes)
{
	uint8_t *body;
	size_t n;
	ck_assert_msg(rpc_read_frame(fd, 1 << 20, 5000, 5000, &body, &n) == 0, "%s", kiln_rt_last_error());
	rpc_msg m;
	char err[256];
	ck_assert_int_eq(rpc_decode(body, n, &m, err, sizeof err), 0);
	ck_assert_int_eq(m.type, RPC_ERROR);
	char text[1100];
	snprintf(text, sizeof text, "%.*s", (int)m.text.n, (const char *)m.text.p);
	ck_assert_msg(strstr(text, what) != NULL, "'%s' lacks '%s'", text, what);
	free(body);
	if (closes)
		ck_assert_int_eq(rpc_read_frame(fd, 1 << 20, 5000, 5000, &body, &n), 1);
}

/* A raw session past HELLO: the socket, the server's WELCOME read and dropped. */
static int raw_session(const char *key, int port)
{
	int fd = rpc_dial("127.0.0.1", port, 5000);
	ck_assert_msg(fd >= 0, "%s", kiln_rt_last_error());
	rpc_buf b = {0};
	hello(&b, RPC_MAGIC, KILN_RPC_VERSION, key);
	send_frame(fd, &b);
	rpc_buf_free(&b);
	uint8_t *body;
	size_t n;
	ck_assert_msg(rpc_read_frame(fd, 1 << 20, 20000, 20000, &body, &n) == 0, "%s", kiln_rt_last_error());
	rpc_msg m;
	char err[256];
	ck_assert_int_eq(rpc_decode(body, n, &m, err, sizeof err), 0);
	ck_assert_int_eq(m.type, RPC_WELCOME);
	free(body);
	return fd;
}

/* After any fault, a new session works. */
static void still_serving(void)
{
	kiln_rpc *s = connect_ok();
	kiln_rpc_device d[4];
	ck_assert_int_ge(kiln_rpc_devices(s, d, 4), 1);
	kiln_rpc_close(s);
}

START_TEST(wrong_key_refused)
{
	ck_assert_ptr_null(kiln_rpc_connect("127.0.0.1", server_port, "test-key-0124", 5000));
	ck_assert(strstr(kiln_rt_last_error(), "wrong key") != NULL);
	ck_assert_ptr_null(kiln_rpc_connect("127.0.0.1", server_port, "", 5000)); /* refused by the client */
	ck_assert(strstr(kiln_rt_last_error(), "key") != NULL);
	int fd = raw_connect();
	rpc_buf b = {0};
	hello(&b, RPC_MAGIC, KILN_RPC_VERSION, ""); /* no key at all */
	send_frame(fd, &b);
	expect_error(fd, "wrong key", true);
	close(fd);
	fd = raw_connect(); /* a key one byte longer: compared whole, refused */
	hello(&b, RPC_MAGIC, KILN_RPC_VERSION, KEY "4");
	send_frame(fd, &b);
	expect_error(fd, "wrong key", true);
	close(fd);
	rpc_buf_free(&b);
	still_serving();
}
END_TEST

START_TEST(version_and_garbage_refused)
{
	rpc_buf b = {0};
	int fd = raw_connect();
	hello(&b, RPC_MAGIC, KILN_RPC_VERSION + 1, KEY);
	send_frame(fd, &b);
	expect_error(fd, "version", true);
	close(fd);
	fd = raw_connect();
	hello(&b, 0x12345678, KILN_RPC_VERSION, KEY);
	send_frame(fd, &b);
	expect_error(fd, "not a kiln RPC peer", true);
	close(fd);
	fd = raw_connect(); /* an HTTP request where a frame is due: a 1.2 GB "length" */
	ck_assert_int_eq(rpc_write_all(fd, "GET / HTTP/1.1\r\n\r\n", 18, 5000), 0);
	expect_error(fd, "over the limit", true);
	close(fd);
	/* garbage after a good HELLO: an unknown type, then the session is closed */
	fd = raw_session(KEY, server_port);
	ck_assert_int_eq(rpc_write_all(fd, "\5\0\0\0\377abcd", 9, 5000), 0);
	expect_error(fd, "unknown message type 255", true);
	close(fd);
	/* a truncated field: CALL whose argument count promises more than it holds */
	fd = raw_session(KEY, server_port);
	rpc_begin(&b, RPC_CALL);
	rpc_u32(&b, 1);
	rpc_str(&b, "f", 1);
	rpc_u32(&b, 200);
	rpc_u32(&b, 1);
	send_frame(fd, &b);
	expect_error(fd, "truncated argument", true);
	close(fd);
	rpc_buf_free(&b);
	still_serving();
}
END_TEST

START_TEST(oversize_refused)
{
	int fd = raw_session(KEY, server_port);
	/* 65 MiB announced against the server's 64: refused before it is read or allocated */
	uint32_t len = 65u << 20;
	uint8_t head[5] = {len & 255, (len >> 8) & 255, (len >> 16) & 255, len >> 24, RPC_UPLOAD};
	ck_assert_int_eq(rpc_write_all(fd, head, 5, 5000), 0);
	expect_error(fd, "over the limit of 67108864 bytes", true);
	close(fd);
	still_serving();
}
END_TEST

START_TEST(slow_and_dropped_clients)
{
	/* slow loris: half a length, then nothing; the server's 1 s message timeout cuts it off */
	int fd = raw_connect();
	ck_assert_int_eq(rpc_write_all(fd, "\20\0", 2, 5000), 0);
	uint8_t *body;
	size_t n;
	double t0 = rt_now_ms();
	int rc = rpc_read_frame(fd, 1 << 20, 5000, 5000, &body, &n);
	if (rc == 0) { /* the timeout's ERROR, then the close */
		free(body);
		rc = rpc_read_frame(fd, 1 << 20, 5000, 5000, &body, &n);
	}
	ck_assert_int_eq(rc, 1);
	ck_assert(rt_now_ms() - t0 < 4000);
	close(fd);
	/* a client that says nothing at all is dropped too */
	fd = raw_connect();
	ck_assert_int_eq(rpc_read_frame(fd, 1 << 20, 5000, 5000, &body, &n), 0);
	free(body);
	close(fd);
	/* a client that disconnects in the middle of an upload */
	fd = raw_session(KEY, server_port);
	uint8_t head[13] = {0, 0, 16, 0, RPC_UPLOAD, 0xf7, 0xff, 15, 0, 0, 0, 0, 0};
	ck_assert_int_eq(rpc_write_all(fd, head, sizeof head, 5000), 0);
	ck_assert_int_eq(rpc_write_all(fd, "KILNMOD", 7, 5000), 0);
	close(fd);
	still_serving();
}
END_TEST

START_TEST(bad_requests_answered)
{
	kiln_rpc *s = connect_ok();
	/* a container that is not one: an error, the session goes on */
	ck_assert_ptr_null(kiln_rpc_upload_bytes(s, "not a module", 12));
	ck_assert(strstr(kiln_rt_last_error(), "module") != NULL);
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_module *local = matmul_module(ctx, "llvm", 4, 4, 4);
	kiln_module *r = kiln_rpc_upload(s, local);
	ck_assert_msg(r != NULL, "%s", kiln_rt_last_error());
	/* a wasm module: this server cannot run it, and says so */
	kiln_module *w = matmul_module(ctx, "wasm", 4, 4, 4);
	ck_assert_ptr_null(kiln_rpc_upload(s, w));
	ck_assert_msg(strstr(kiln_rt_last_error(), "JavaScript host") != NULL, "%s", kiln_rt_last_error());
	kiln_module_free(w);
	kiln_module_free(local);
	kiln_array *a[3];
	for (int i = 0; i < 3; i++)
		a[i] = kiln_array_empty(2, (int64_t[]){4, 4}, KILN_F32);
	ck_assert_int_eq(kiln_module_call(r, "matmul", a, 3), 0);
	kiln_module_free(r);
	kiln_rpc_close(s);
	/* raw: handles that do not exist, a huge array, a WRITE of the wrong size */
	int fd = raw_session(KEY, server_port);
	rpc_buf b = {0};
	uint8_t *body;
	size_t n;
	rpc_begin(&b, RPC_READ);
	rpc_u32(&b, 77);
	send_frame(fd, &b);
	expect_error(fd, "no array 77", false);
	rpc_begin(&b, RPC_FREE_MODULE);
	rpc_u32(&b, 0xffffffffu);
	send_frame(fd, &b);
	expect_error(fd, "no module 4294967295", false);
	rpc_begin(&b, RPC_CALL);
	rpc_u32(&b, 3);
	rpc_str(&b, "matmul", 6);
	rpc_u32(&b, 0);
	send_frame(fd, &b);
	expect_error(fd, "no module 3", false);
	rpc_begin(&b, RPC_WELCOME);
	rpc_u16(&b, 1);
	rpc_str(&b, "x", 1);
	send_frame(fd, &b);
	expect_error(fd, "does not take WELCOME", false);
	rpc_begin(&b, RPC_CLOSE);
	send_frame(fd, &b);
	ck_assert_int_eq(rpc_read_frame(fd, 1 << 20, 5000, 5000, &body, &n), 0);
	free(body);
	close(fd);
	rpc_buf_free(&b);
	for (int i = 0; i < 3; i++)
		kiln_array_free(a[i]);
	kiln_ctx_free(ctx);
	still_serving();
}
END_TEST

START_TEST(huge_array_refused)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_module *local = matmul_module(ctx, "llvm", 4, 4, 4);
	uint8_t *data;
	size_t size;
	ck_assert_int_eq(rt_module_container(local, &data, &size), 0);
	kiln_module_free(local);
	int fd = raw_session(KEY, server_port);
	rpc_buf b = {0};
	uint8_t *body;
	size_t n;
	rpc_begin(&b, RPC_UPLOAD);
	rpc_bytes(&b, data, size);
	send_frame(fd, &b);
	free(data);
	rpc_msg m;
	char err[256];
	ck_assert_int_eq(rpc_read_frame(fd, 1 << 20, 5000, 5000, &body, &n), 0);
	ck_assert_int_eq(rpc_decode(body, n, &m, err, sizeof err), 0);
	ck_assert_int_eq(m.type, RPC_MODULE);
	uint32_t mod = m.module;
	free(body);
	struct {
		int64_t d0, d1;
		const char *why;
	} cases[] = {{(int64_t)1 << 40, (int64_t)1 << 40, "larger than"}, {(int64_t)1 << 20, (int64_t)1 << 16, "bytes"},
	             {-1, 4, "negative"}};
	for (int c = 0; c < 3; c++) {
		rpc_begin(&b, RPC_ALLOC);
		rpc_u32(&b, mod);
		rpc_u8(&b, KILN_FLOAT);
		rpc_u8(&b, 32);
		rpc_u16(&b, 1);
		rpc_u8(&b, 2);
		rpc_i64(&b, cases[c].d0);
		rpc_i64(&b, cases[c].d1);
		send_frame(fd, &b);
		expect_error(fd, cases[c].why, false);
	}
	/* a dtype no array holds */
	rpc_begin(&b, RPC_ALLOC);
	rpc_u32(&b, mod);
	rpc_u8(&b, KILN_HANDLE);
	rpc_u8(&b, 64);
	rpc_u16(&b, 1);
	rpc_u8(&b, 0);
	send_frame(fd, &b);
	expect_error(fd, "dtype", false);
	rpc_buf_free(&b);
	close(fd);
	kiln_ctx_free(ctx);
	still_serving();
}
END_TEST

/*
 * A module whose function crashes: its code is a shared object compiled
 * here by the system's C compiler, its metadata made with the runtime's own
 * calls, so the server loads it like any CPU module.
 */
static kiln_module *crashing_module(void)
{
	char dir[] = "/tmp/kiln-rpc-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	char src[128], so[128], cmd[512];
	snprintf(src, sizeof src, "%s/crash.c", dir);
	snprintf(so, sizeof so, "%s/crash.so", dir);
	FILE *f = fopen(src, "w");
	fputs("int crash(float *x) { volatile int *p = (int *)(long)x[0]; return *p; }\n", f);
	fclose(f);
	snprintf(cmd, sizeof cmd, "cc -shared -fPIC -O0 -o %s %s", so, src);
	ck_assert_int_eq(system(cmd), 0);
	f = fopen(so, "rb");
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *bytes = malloc((size_t)size);
	ck_assert_int_eq(fread(bytes, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	unlink(src);
	unlink(so);
	rmdir(dir);
	kiln_module *m = rt_module_new("llvm");
	kiln_arg_info arg = {.name = "x", .dtype = KILN_F32, .ndim = 1, .shape = {1}};
	ck_assert_int_eq(rt_module_add_function(m, "crash", 1, &arg, NULL), 0);
	ck_assert_int_eq(rt_module_add_blob(m, "llvm-so", bytes, (size_t)size), 0);
	free(bytes);
	return m;
}

START_TEST(crashing_kernel_ends_its_session_only)
{
	kiln_rpc *s = connect_ok();
	kiln_module *local = crashing_module();
	kiln_module *r = kiln_rpc_upload(s, local);
	ck_assert_msg(r != NULL, "%s", kiln_rt_last_error());
	kiln_module_free(local);
	kiln_array *x = kiln_array_empty(1, (int64_t[]){1}, KILN_F32); /* x[0] = 0: a NULL read */
	ck_assert_int_ne(kiln_module_call(r, "crash", &x, 1), 0);
	ck_assert_msg(strstr(kiln_rt_last_error(), "worker crashed during CALL crash") != NULL, "%s",
	              kiln_rt_last_error());
	/* the session is over: later requests fail at once with the same reason */
	ck_assert_int_ne(kiln_module_call(r, "crash", &x, 1), 0);
	ck_assert(strstr(kiln_rt_last_error(), "crashed") != NULL);
	kiln_array_free(x);
	kiln_module_free(r);
	kiln_rpc_close(s);
	still_serving();
}
END_TEST

START_TEST(killed_worker_and_restarted_server)
{
	kiln_rpc *s = connect_ok();
	kiln_rpc *other = connect_ok(); /* a second client, served at the same time */
	int pid = 0;
	ck_assert_int_eq(sscanf(strstr(kiln_rpc_peer(s), "worker "), "worker %d", &pid), 1);
	kill(pid, SIGKILL);
	kiln_rpc_device d[4];
	ck_assert_int_lt(kiln_rpc_devices(s, d, 4), 0);
	ck_assert_msg(strstr(kiln_rt_last_error(), "closed") != NULL, "%s", kiln_rt_last_error());
	ck_assert_int_ge(kiln_rpc_devices(other, d, 4), 1);
	/* the whole server goes away and comes back on another port: the client errs, a new one connects */
	stop_server();
	ck_assert_int_lt(kiln_rpc_devices(other, d, 4), 0);
	start_server();
	still_serving();
	kiln_rpc_close(s);
	kiln_rpc_close(other);
	stop_server(); /* this one was started by the test's own process */
}
END_TEST

/*
 * A model's steps timed there inside whole runs (MODEL_STEPS, what model
 * tuning over RPC measures): the steps of the model built here, in plan
 * order, each with a time; a bad run count refused before it is sent.
 */
START_TEST(remote_model_steps)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_onnx_model *om = kiln_onnx_load(ctx, "/usr/share/libonnx-testdata/data/node/test_conv_with_strides_padding/model.onnx");
	kiln_graph *g = om ? kiln_onnx_import(ctx, om, 0, NULL) : NULL;
	kiln_module *mod = g ? kiln_graph_compile(g, "llvm", NULL) : NULL;
	ck_assert_msg(mod != NULL, "%s", kiln_error(ctx));
	char path[] = "/tmp/kiln-test-model-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_msg(kiln_module_save(mod, path) == 0, "%s", kiln_rt_last_error());
	FILE *f = fopen(path, "rb");
	ck_assert(f != NULL);
	static uint8_t bytes[1 << 20];
	size_t n = fread(bytes, 1, sizeof bytes, f);
	fclose(f);
	unlink(path);
	ck_assert(n > 0 && n < sizeof bytes);
	kiln_model *local = kiln_model_from_module(mod); /* (takes mod) */
	ck_assert(local != NULL);
	kiln_rpc *s = connect_ok();
	kiln_rpc_model *m = kiln_rpc_load_model(s, bytes, n);
	ck_assert_msg(m != NULL, "%s", kiln_rt_last_error());
	kiln_array *x[2];
	ck_assert_int_eq(kiln_rpc_model_num_inputs(m), 2); /* x and W */
	for (int i = 0; i < 2; i++) {
		const kiln_arg_info *in = kiln_rpc_model_input_info(m, i);
		x[i] = kiln_array_empty(in->ndim, in->shape, in->dtype);
		kiln_array_fill_random(x[i], 3 + (uint64_t)i, -1, 1);
	}
	kiln_rpc_step *steps;
	int ns;
	ck_assert_msg(kiln_rpc_model_step_times(m, (const kiln_array *const *)x, 3, &steps, &ns) == 0, "%s",
	              kiln_rt_last_error());
	ck_assert_int_eq(ns, kiln_model_num_steps(local));
	ck_assert_int_gt(ns, 0);
	for (int i = 0; i < ns; i++) {
		ck_assert_str_eq(steps[i].fn, kiln_model_step_name(local, i));
		ck_assert(steps[i].ms >= 0 && steps[i].ms < 1e4);
	}
	free(steps);
	ck_assert_int_ne(kiln_rpc_model_step_times(m, (const kiln_array *const *)x, 0, &steps, &ns), 0);
	ck_assert(steps == NULL && ns == 0);
	/* the request as the server decodes it: model, inputs, runs */
	rpc_buf b = {0};
	rpc_begin(&b, RPC_MODEL_STEPS);
	rpc_u32(&b, 1);
	rpc_u32(&b, 1);
	rpc_bytes(&b, x[0]->data, (uint64_t)kiln_array_numel(x[0]) * 4);
	rpc_u32(&b, 0);
	ck_assert_int_eq(rpc_end(&b), 0);
	rpc_msg d;
	char err[256];
	ck_assert_int_eq(rpc_decode(b.p + 4, b.n - 4, &d, err, sizeof err), 0);
	ck_assert(d.type == RPC_MODEL_STEPS && d.model == 1 && d.nio == 1 && d.runs == 0);
	rpc_buf_free(&b);
	kiln_array_free(x[0]);
	kiln_array_free(x[1]);
	kiln_rpc_model_free(m);
	kiln_rpc_close(s);
	kiln_model_free(local);
	kiln_onnx_free(om);
	kiln_ctx_free(ctx);
}
END_TEST

/* STEP_TIMES: every entry checked at decode, walked after; prefixes and oversized names refused. */
START_TEST(proto_step_times)
{
	rpc_buf b = {0};
	rpc_begin(&b, RPC_STEP_TIMES);
	rpc_u32(&b, 2);
	rpc_str(&b, "k0_Conv", 7);
	rpc_f64(&b, 0.5);
	rpc_str(&b, "k1_Relu", 7);
	rpc_f64(&b, 0.25);
	ck_assert_int_eq(rpc_end(&b), 0);
	rpc_msg m;
	char err[256];
	ck_assert_int_eq(rpc_decode(b.p + 4, b.n - 4, &m, err, sizeof err), 0);
	ck_assert_int_eq(m.nsteps, 2);
	size_t at = 0;
	rpc_span name;
	double ms;
	rpc_step_next(&m, &at, &name, &ms);
	ck_assert(name.n == 7 && !memcmp(name.p, "k0_Conv", 7) && ms == 0.5);
	rpc_step_next(&m, &at, &name, &ms);
	ck_assert(name.n == 7 && !memcmp(name.p, "k1_Relu", 7) && ms == 0.25);
	ck_assert_uint_eq(at, m.steps.n);
	for (size_t k = 0; k < b.n - 4; k++)
		ck_assert_int_ne(rpc_decode(b.p + 4, k, &m, err, sizeof err), 0);
	/* more steps announced than the limit, and a name over RPC_MAX_NAME */
	rpc_begin(&b, RPC_STEP_TIMES);
	rpc_u32(&b, RPC_MAX_STEPS + 1);
	ck_assert_int_eq(rpc_end(&b), 0);
	ck_assert_int_ne(rpc_decode(b.p + 4, b.n - 4, &m, err, sizeof err), 0);
	ck_assert(strstr(err, "step count") != NULL);
	static char big[RPC_MAX_NAME + 1];
	memset(big, 'a', sizeof big);
	rpc_begin(&b, RPC_STEP_TIMES);
	rpc_u32(&b, 1);
	rpc_str(&b, big, sizeof big);
	rpc_f64(&b, 1);
	ck_assert_int_eq(rpc_end(&b), 0);
	ck_assert_int_ne(rpc_decode(b.p + 4, b.n - 4, &m, err, sizeof err), 0);
	ck_assert(strstr(err, "step name") != NULL);
	rpc_buf_free(&b);
}
END_TEST

START_TEST(proto_round_trip)
{
	rpc_buf b = {0};
	rpc_begin(&b, RPC_TIMING);
	rpc_f64(&b, 1.5);
	rpc_f64(&b, 2.5);
	rpc_f64(&b, 0.5);
	rpc_u32(&b, 7);
	rpc_u32(&b, 2);
	rpc_f64(&b, 0.25);
	rpc_f64(&b, 4);
	ck_assert_int_eq(rpc_end(&b), 0);
	rpc_msg m;
	char err[256];
	ck_assert_int_eq(rpc_decode(b.p + 4, b.n - 4, &m, err, sizeof err), 0);
	ck_assert_int_eq(m.type, RPC_TIMING);
	ck_assert(m.median_ms == 1.5 && m.number == 7 && m.nsamples == 2 && rpc_sample(&m, 1) == 4);
	/* every shorter prefix is refused, never read past */
	for (size_t k = 0; k < b.n - 4; k++)
		ck_assert_int_ne(rpc_decode(b.p + 4, k, &m, err, sizeof err), 0);
	/* a trailing byte too */
	uint8_t longer[64];
	memcpy(longer, b.p + 4, b.n - 4);
	longer[b.n - 4] = 0;
	ck_assert_int_ne(rpc_decode(longer, b.n - 3, &m, err, sizeof err), 0);
	ck_assert(strstr(err, "past its last field") != NULL);
	rpc_buf_free(&b);
	ck_assert(rpc_key_equal((const uint8_t *)"abc", 3, (const uint8_t *)"abc", 3));
	ck_assert(!rpc_key_equal((const uint8_t *)"abc", 3, (const uint8_t *)"abcd", 4));
	ck_assert(!rpc_key_equal((const uint8_t *)"abc", 3, (const uint8_t *)"abd", 3));
	ck_assert(!rpc_key_equal((const uint8_t *)"", 0, (const uint8_t *)"a", 1));
}
END_TEST

/* ---- through the proxy (tests/rpc_test.sh starts it, a node server and a Chromium tab) ---- */

#define NATIVE_KEY "native-at-proxy"
static int proxy_port;
static const char *node_key, *tab_key;
static pid_t tab_pid, native_pid;

static void on_registered(int port, void *arg) { on_listening(port, arg); }

/* A native server registered at the proxy, in its own process group (its workers go with it). */
static void start_native(void)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	native_pid = fork();
	if (native_pid == 0) {
		setpgid(0, 0);
		close(p[0]);
		kiln_rpc_server_opts o = {.key = NATIVE_KEY, .proxy_host = "127.0.0.1", .proxy_port = proxy_port,
		                          .timeout_ms = 2000, .listening = on_registered, .arg = &p[1]};
		kiln_rpc_serve(&o);
		fprintf(stderr, "native server at the proxy: %s\n", kiln_rt_last_error());
		_exit(1);
	}
	close(p[1]);
	int port;
	ck_assert_int_eq(read(p[0], &port, sizeof port), (ssize_t)sizeof port);
	close(p[0]);
}

static void stop_native(void)
{
	if (native_pid > 0) {
		kill(-native_pid, SIGKILL);
		kill(native_pid, SIGKILL);
		waitpid(native_pid, NULL, 0);
	}
	native_pid = 0;
}

static void use(const char *key)
{
	conn_port = proxy_port;
	conn_key = key;
}

START_TEST(proxy_native_server)
{
	use(NATIVE_KEY);
	check_remote_matmul("llvm");
	check_remote_matmul("opencl");
	check_remote_matmul("webgl");
}
END_TEST

START_TEST(proxy_node_server)
{
	use(node_key);
	check_remote_matmul("wasm");
	check_remote_matmul("webgpu");
}
END_TEST

START_TEST(proxy_chromium_tab)
{
	use(tab_key);
	check_remote_matmul("wasm");
	check_remote_matmul("webgpu");
	check_remote_matmul("webgl");
}
END_TEST

/* Every registry operator at its example shape, built here for target, run there, against the oracle. */
static void every_operator(const char *key, const char *target)
{
	use(key);
	kiln_rpc *s = connect_ok();
	int checked = 0;
	for (int i = 0; i < kiln_num_ops(); i++) {
		const kiln_op_info *info = kiln_op_at(i);
		kiln_ctx *ctx = kiln_ctx_new();
		kiln_op_inst o;
		ck_assert_int_eq(kiln_op_declare(ctx, info, kiln_op_example_rank(info), info->example, "", &o), 0);
		kiln_schedule *sch = kiln_schedule_for(ctx, target, o.nargs - o.nin, o.args + o.nin);
		kiln_module *local = sch ? kiln_build_schedule(sch, info->name, o.nargs, o.args, target) : NULL;
		ck_assert_msg(local != NULL, "%s on %s: %s", info->name, target, kiln_error(ctx));
		kiln_module *r = kiln_rpc_upload(s, local);
		ck_assert_msg(r != NULL, "%s on %s: %s", info->name, target, kiln_rt_last_error());
		kiln_module_free(local);
		kiln_array *arr[16], *ins[16];
		kiln_tensor *phs[16];
		ck_assert_int_le(o.nargs, 16);
		int nin = tu_fill_inputs(o.nargs, o.args, 11, arr, ins, phs);
		ck_assert_msg(kiln_module_call(r, info->name, arr, o.nargs) == 0, "%s on %s (%s): %s", info->name, target, key,
		              kiln_rt_last_error());
		for (int k = nin; k < o.nargs; k++) {
			kiln_array *want = kiln_array_empty(arr[k]->ndim, arr[k]->shape, arr[k]->dtype);
			ck_assert_msg(kiln_eval(ctx, o.args[k], nin, phs, ins, want) == 0, "%s", kiln_error(ctx));
			char what[128];
			snprintf(what, sizeof what, "%s on %s over rpc (%s)", info->name, target, key);
			ck_assert_msg(tu_compare(what, arr[k], want) >= 0, "%s differs from the oracle", what);
			kiln_array_free(want);
		}
		for (int k = 0; k < o.nargs; k++)
			kiln_array_free(arr[k]);
		kiln_module_free(r);
		kiln_ctx_free(ctx);
		checked++;
	}
	fprintf(stderr, "every operator: %d on %s through the proxy (%s)\n", checked, target, key);
	kiln_rpc_close(s);
}

START_TEST(proxy_every_operator)
{
	every_operator(NATIVE_KEY, "llvm");
	every_operator(NATIVE_KEY, "opencl");
	every_operator(NATIVE_KEY, "webgl");
	every_operator(node_key, "wasm");
	every_operator(node_key, "webgpu");
	every_operator(tab_key, "wasm");
	every_operator(tab_key, "webgpu");
	every_operator(tab_key, "webgl");
}
END_TEST

static int proxy_raw(void)
{
	int fd = rpc_dial("127.0.0.1", proxy_port, 5000);
	ck_assert_msg(fd >= 0, "%s", kiln_rt_last_error());
	return fd;
}

START_TEST(proxy_pool)
{
	kiln_rpc_device d[16];
	/* a device registers afresh after each session: a moment after the last test's, it is back */
	int n = 0;
	for (int i = 0; i < 50 && n != 1; i++)
		if ((n = kiln_rpc_pool("127.0.0.1", proxy_port, tab_key, d, 16, 10000)) != 1)
			usleep(100 * 1000);
	ck_assert_msg(n == 1, "%d: %s", n, kiln_rt_last_error());
	ck_assert_str_eq(d[0].target, "free");
	ck_assert_msg(strstr(d[0].description, "kiln browser tab") && strstr(d[0].description, "webgl"), "%s",
	              d[0].description);
	for (int i = 0; i < 50 && (n = kiln_rpc_pool("127.0.0.1", proxy_port, NATIVE_KEY, d, 16, 10000)) != 1; i++)
		usleep(100 * 1000);
	ck_assert_int_eq(n, 1);
	ck_assert_msg(strstr(d[0].description, "kiln rpc server on") && strstr(d[0].description, "opencl"), "%s",
	              d[0].description);
	/* busy while a client holds it */
	use(node_key);
	kiln_rpc *s = connect_ok();
	n = kiln_rpc_pool("127.0.0.1", proxy_port, node_key, d, 16, 10000);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(d[0].target, "busy");
	kiln_rpc_close(s);
	ck_assert_int_eq(kiln_rpc_pool("127.0.0.1", proxy_port, "nobody-has-this-key", d, 16, 10000), 0);
}
END_TEST

START_TEST(proxy_refuses)
{
	double t0 = rt_now_ms();
	ck_assert_ptr_null(kiln_rpc_connect("127.0.0.1", proxy_port, "nobody-has-this-key", 10000));
	ck_assert_msg(strstr(kiln_rt_last_error(), "no device is registered under this key") != NULL, "%s",
	              kiln_rt_last_error());
	ck_assert(rt_now_ms() - t0 < 5000);
	int fd = proxy_raw(); /* the proxy runs with --max-message 64 */
	uint32_t len = 65u << 20;
	uint8_t head[5] = {len & 255, (len >> 8) & 255, (len >> 16) & 255, len >> 24, RPC_UPLOAD};
	ck_assert_int_eq(rpc_write_all(fd, head, 5, 5000), 0);
	expect_error(fd, "over the proxy's limit of 67108864 bytes", true);
	close(fd);
	fd = proxy_raw();
	ck_assert_int_eq(rpc_write_all(fd, "\1\0\0\0\143", 5, 5000), 0);
	expect_error(fd, "protocol violation: unknown message type 99", true);
	close(fd);
	fd = proxy_raw();
	ck_assert_int_eq(rpc_write_all(fd, "\1\0\0\0\5", 5, 5000), 0);
	expect_error(fd, "opens with HELLO", true);
	close(fd);
	fd = proxy_raw(); /* half a length, then nothing: cut off after the proxy's 2 s */
	ck_assert_int_eq(rpc_write_all(fd, "\20", 1, 5000), 0);
	expect_error(fd, "timed out in the middle of a message", true);
	close(fd);
	fd = proxy_raw(); /* nothing at all */
	expect_error(fd, "no HELLO or REGISTER", true);
	close(fd);
	/* a REGISTER that speaks another version */
	fd = proxy_raw();
	rpc_buf b = {0};
	rpc_begin(&b, RPC_REGISTER);
	rpc_u32(&b, RPC_MAGIC);
	rpc_u16(&b, 77);
	rpc_str(&b, "k", 1);
	rpc_str(&b, "d", 1);
	rpc_u8(&b, 0);
	send_frame(fd, &b);
	expect_error(fd, "version", true);
	close(fd);
	rpc_buf_free(&b);
	use(node_key);
	still_serving();
}
END_TEST

/* A second client of one device: waits while the first holds it, gets it when it leaves. */
START_TEST(proxy_two_clients_one_device)
{
	use(node_key);
	kiln_rpc *a = connect_ok();
	pid_t b = fork();
	if (b == 0) {
		double t0 = rt_now_ms();
		kiln_rpc *s = kiln_rpc_connect("127.0.0.1", proxy_port, node_key, 20000);
		kiln_rpc_device d[4];
		int ok = s && kiln_rpc_devices(s, d, 4) >= 1 && rt_now_ms() - t0 > 800;
		if (!ok)
			fprintf(stderr, "second client: %s\n", kiln_rt_last_error());
		kiln_rpc_close(s);
		_exit(ok ? 0 : 1);
	}
	usleep(1200 * 1000);
	kiln_rpc_close(a);
	int st;
	waitpid(b, &st, 0);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the waiting client did not get the device");
	/* held past the proxy's --wait (3 s): the waiting client is told why */
	a = connect_ok();
	double t0 = rt_now_ms();
	ck_assert_ptr_null(kiln_rpc_connect("127.0.0.1", proxy_port, node_key, 20000));
	ck_assert_msg(strstr(kiln_rt_last_error(), "stayed busy for 3 s") != NULL, "%s", kiln_rt_last_error());
	ck_assert(rt_now_ms() - t0 >= 2900);
	kiln_rpc_close(a);
	still_serving();
}
END_TEST

START_TEST(proxy_tab_closed_mid_call)
{
	use(tab_key);
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_module *local = matmul_module(ctx, "wasm", 128, 128, 128);
	kiln_rpc *s = connect_ok();
	kiln_module *r = kiln_rpc_upload(s, local);
	ck_assert_msg(r != NULL, "%s", kiln_rt_last_error());
	kiln_module_free(local);
	kiln_array *a[3];
	for (int i = 0; i < 3; i++)
		a[i] = kiln_array_empty(2, (int64_t[]){128, 128}, KILN_F32);
	pid_t closer = fork();
	if (closer == 0) {
		usleep(1500 * 1000);
		kill(tab_pid, SIGUSR1); /* tests/rpc_tab.mjs closes the tab, then opens a fresh one */
		_exit(0);
	}
	kiln_timing t;
	kiln_time_opts o = {.warmup = 1, .number = 0, .repeat = 3, .min_repeat_ms = 10000};
	ck_assert_int_ne(kiln_module_time(r, "matmul", a, 3, &o, &t), 0);
	ck_assert_msg(strstr(kiln_rt_last_error(), "went away during the session") != NULL, "%s", kiln_rt_last_error());
	waitpid(closer, NULL, 0);
	for (int i = 0; i < 3; i++)
		kiln_array_free(a[i]);
	kiln_module_free(r);
	kiln_rpc_close(s);
	kiln_ctx_free(ctx);
	/* the fresh tab registers within its page load */
	kiln_rpc *again = NULL;
	for (int i = 0; i < 30 && !again; i++)
		if (!(again = kiln_rpc_connect("127.0.0.1", proxy_port, tab_key, 20000)))
			sleep(1);
	ck_assert_msg(again != NULL, "%s", kiln_rt_last_error());
	kiln_rpc_close(again);
}
END_TEST

START_TEST(proxy_client_dropped_mid_upload)
{
	int fd = raw_session(node_key, proxy_port);
	uint8_t head[13] = {0, 0, 16, 0, RPC_UPLOAD, 0xf7, 0xff, 15, 0, 0, 0, 0, 0};
	ck_assert_int_eq(rpc_write_all(fd, head, sizeof head, 5000), 0);
	ck_assert_int_eq(rpc_write_all(fd, "KILNMOD", 7, 5000), 0);
	close(fd);
	use(node_key);
	still_serving();
	/* into the tab: a 4 MiB message is a parcel the tab fetches while it arrives; cut after 2 MiB */
	fd = raw_session(tab_key, proxy_port);
	uint8_t big[13] = {13, 0, 64, 0, RPC_UPLOAD, 4, 0, 64, 0, 0, 0, 0, 0};
	ck_assert_int_eq(rpc_write_all(fd, big, sizeof big, 5000), 0);
	uint8_t *half = calloc(1, 2 << 20);
	ck_assert_int_eq(rpc_write_all(fd, half, 2 << 20, 5000), 0);
	free(half);
	usleep(300 * 1000);
	close(fd);
	use(tab_key);
	still_serving();
}
END_TEST

/* A module with 3 MiB of extra data: into the tab as a parcel (fetched over HTTP), into node as one message. */
START_TEST(proxy_large_messages)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_module *local = matmul_module(ctx, "wasm", 16, 16, 16);
	size_t big = (size_t)3 << 20;
	uint8_t *pad = malloc(big);
	for (size_t i = 0; i < big; i++)
		pad[i] = (uint8_t)(i * 31 + 7);
	ck_assert_int_eq(rt_module_add_blob(local, "padding", pad, big), 0);
	free(pad);
	uint8_t *data;
	size_t n;
	ck_assert_int_eq(rt_module_container(local, &data, &n), 0);
	kiln_module_free(local);
	const char *keys[2] = {tab_key, node_key};
	for (int k = 0; k < 2; k++) {
		use(keys[k]);
		kiln_rpc *s = connect_ok();
		kiln_module *r = kiln_rpc_upload_bytes(s, data, n);
		ck_assert_msg(r != NULL, "%s: %s", keys[k], kiln_rt_last_error());
		kiln_array *a[3];
		for (int i = 0; i < 3; i++) {
			a[i] = kiln_array_empty(2, (int64_t[]){16, 16}, KILN_F32);
			for (int j = 0; j < 256; j++)
				((float *)a[i]->data)[j] = i == 2 ? NAN : (float)((j * (i + 3)) % 7) - 3;
		}
		ck_assert_msg(kiln_module_call(r, "matmul", a, 3) == 0, "%s", kiln_rt_last_error());
		const float *A = a[0]->data, *B = a[1]->data, *C = a[2]->data;
		for (int i = 0; i < 16; i++)
			for (int j = 0; j < 16; j++) {
				float want = 0;
				for (int q = 0; q < 16; q++)
					want += A[i * 16 + q] * B[q * 16 + j];
				ck_assert_msg(C[i * 16 + j] == want, "%s: c[%d][%d] = %g, want %g", keys[k], i, j, C[i * 16 + j], want);
			}
		for (int i = 0; i < 3; i++)
			kiln_array_free(a[i]);
		kiln_module_free(r);
		kiln_rpc_close(s);
	}
	free(data);
	kiln_ctx_free(ctx);
	/* a parcel token nobody was given: 404 from the proxy's web port */
	const char *wp = getenv("KILN_TEST_WEB_PORT");
	if (wp) {
		int fd = rpc_dial("127.0.0.1", atoi(wp), 5000);
		ck_assert_int_ge(fd, 0);
		const char *req = "GET /parcel/00112233445566778899aabbccddeeff HTTP/1.1\r\nHost: x\r\n\r\n";
		ck_assert_int_eq(rpc_write_all(fd, req, strlen(req), 5000), 0);
		char resp[64] = "";
		struct pollfd pfd = {fd, POLLIN, 0};
		ck_assert_int_eq(poll(&pfd, 1, 5000), 1); /* rpc_dial's sockets do not block */
		ck_assert_int_gt(recv(fd, resp, sizeof resp - 1, 0), 12);
		ck_assert_msg(strstr(resp, " 404") != NULL, "%s", resp);
		close(fd);
	}
}
END_TEST

START_TEST(proxy_native_crash_and_restart)
{
	use(NATIVE_KEY);
	kiln_rpc *s = connect_ok();
	kiln_module *local = crashing_module();
	kiln_module *r = kiln_rpc_upload(s, local);
	ck_assert_msg(r != NULL, "%s", kiln_rt_last_error());
	kiln_module_free(local);
	kiln_array *x = kiln_array_empty(1, (int64_t[]){1}, KILN_F32);
	ck_assert_int_ne(kiln_module_call(r, "crash", &x, 1), 0);
	ck_assert_msg(strstr(kiln_rt_last_error(), "worker crashed during CALL crash") != NULL, "%s",
	              kiln_rt_last_error());
	kiln_array_free(x);
	kiln_module_free(r);
	kiln_rpc_close(s);
	still_serving();
	/* the server restarted under a waiting client: the session holder gets an error, the waiter the new server */
	kiln_rpc *a = connect_ok();
	pid_t b = fork();
	if (b == 0) {
		kiln_rpc *w = kiln_rpc_connect("127.0.0.1", proxy_port, NATIVE_KEY, 20000);
		kiln_rpc_device d[4];
		int ok = w && kiln_rpc_devices(w, d, 4) >= 1;
		if (!ok)
			fprintf(stderr, "waiting client: %s\n", kiln_rt_last_error());
		kiln_rpc_close(w);
		_exit(ok ? 0 : 1);
	}
	usleep(500 * 1000);
	stop_native();
	kiln_rpc_device d[4];
	ck_assert_int_lt(kiln_rpc_devices(a, d, 4), 0);
	ck_assert_msg(strstr(kiln_rt_last_error(), "went away") != NULL, "%s", kiln_rt_last_error());
	start_native();
	int st;
	waitpid(b, &st, 0);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the waiting client did not get the restarted server");
	kiln_rpc_close(a);
	stop_native(); /* this one was started by the test's own process */
}
END_TEST

int main(void)
{
	Suite *s = suite_create("rpc");
	TCase *t = tcase_create("native server");
	tcase_add_unchecked_fixture(t, start_server, stop_server);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, proto_round_trip);
	tcase_add_test(t, proto_step_times);
	tcase_add_test(t, remote_model_steps);
	tcase_add_test(t, devices_listed);
	tcase_add_test(t, remote_llvm);
	tcase_add_test(t, remote_opencl);
	tcase_add_test(t, remote_webgl);
	tcase_add_test(t, wrong_key_refused);
	tcase_add_test(t, version_and_garbage_refused);
	tcase_add_test(t, oversize_refused);
	tcase_add_test(t, slow_and_dropped_clients);
	tcase_add_test(t, bad_requests_answered);
	tcase_add_test(t, huge_array_refused);
	tcase_add_test(t, killed_worker_and_restarted_server);
	suite_add_tcase(s, t);
	/* tagged: valgrind would report the deliberate NULL read of the worker it follows */
	TCase *crash = tcase_create("crash");
	tcase_add_unchecked_fixture(crash, start_server, stop_server);
	tcase_set_timeout(crash, 120);
	tcase_set_tags(crash, "crash");
	tcase_add_test(crash, crashing_kernel_ends_its_session_only);
	suite_add_tcase(s, crash);
	/* set by tests/rpc_test.sh, which starts the proxy and the web devices */
	const char *proxy = getenv("KILN_TEST_PROXY");
	if (proxy) {
		proxy_port = atoi(proxy);
		node_key = getenv("KILN_TEST_NODE_KEY");
		tab_key = getenv("KILN_TEST_TAB_KEY");
		tab_pid = (pid_t)atoi(getenv("KILN_TEST_TAB_PID") ? getenv("KILN_TEST_TAB_PID") : "0");
		if (!node_key || !tab_key || tab_pid <= 0) {
			fprintf(stderr, "test_rpc: KILN_TEST_PROXY needs KILN_TEST_NODE_KEY, KILN_TEST_TAB_KEY, KILN_TEST_TAB_PID\n");
			return 2;
		}
		TCase *p = tcase_create("through the proxy");
		tcase_add_unchecked_fixture(p, start_native, stop_native);
		tcase_set_timeout(p, 180);
		tcase_add_test(p, proxy_native_server);
		tcase_add_test(p, proxy_node_server);
		tcase_add_test(p, proxy_chromium_tab);
		tcase_add_test(p, proxy_every_operator);
		tcase_add_test(p, proxy_pool);
		tcase_add_test(p, proxy_refuses);
		tcase_add_test(p, proxy_two_clients_one_device);
		tcase_add_test(p, proxy_client_dropped_mid_upload);
		tcase_add_test(p, proxy_large_messages);
		tcase_add_test(p, proxy_tab_closed_mid_call);
		tcase_add_test(p, proxy_native_crash_and_restart);
		suite_add_tcase(s, p);
	}
	return tu_run_suite(s) ? 1 : 0;
}
