/*
 * rpc_bench.c — what RPC costs: the round trip of an empty request and of a
 * call of a one-element kernel (inputs over, call, outputs back), the
 * overhead of timing a kernel there (wall time of the TIME request minus the
 * time the device measured), and the upload throughput of a 100 MB module —
 * each against the same work done locally where it can be (llvm).
 *
 *   rpc_bench HOST:PORT KEY TARGET [LABEL]
 *
 * Prints one JSON line per case. Medians over many repetitions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/build.h"
#include "kiln/ops.h"
#include "kiln/rpc.h"
#include "runtime/rt.h"

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static kiln_module *relu_module(kiln_ctx *ctx, const char *target, int64_t n)
{
	kiln_op_inst o;
	const kiln_op_info *info = kiln_op_find("relu");
	if (kiln_op_declare(ctx, info, 1, (int64_t[]){n}, "", &o))
		return NULL;
	kiln_tensor *out = o.args[1];
	kiln_schedule *s = kiln_schedule_for(ctx, target, 1, &out);
	return s ? kiln_build_schedule(s, "relu", 2, o.args, target) : NULL;
}

static int fail(const char *what)
{
	fprintf(stderr, "rpc_bench: %s: %s\n", what, kiln_rt_last_error());
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: rpc_bench HOST:PORT KEY TARGET [LABEL]\n");
		return 2;
	}
	char host[256];
	const char *colon = strrchr(argv[1], ':');
	if (!colon || colon - argv[1] >= (long)sizeof host) {
		fprintf(stderr, "rpc_bench: %s is not HOST:PORT\n", argv[1]);
		return 2;
	}
	memcpy(host, argv[1], (size_t)(colon - argv[1]));
	host[colon - argv[1]] = 0;
	int port = atoi(colon + 1);
	const char *key = argv[2], *target = argv[3], *label = argc > 4 ? argv[4] : argv[1];
	bool smoke = getenv("KILN_BENCH_SMOKE") != NULL;
	int reps = smoke ? 20 : 500;
	size_t upload_mb = smoke ? 4 : 100;

	kiln_rpc *s = kiln_rpc_connect(host, port, key, 120000);
	if (!s)
		return fail("connect");
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_module *local = relu_module(ctx, target, 1);
	if (!local) {
		fprintf(stderr, "rpc_bench: build: %s\n", kiln_error(ctx));
		return 1;
	}
	kiln_module *r = kiln_rpc_upload(s, local);
	if (!r)
		return fail("upload");
	kiln_array *x = kiln_array_empty(1, (int64_t[]){1}, KILN_F32), *y = kiln_array_empty(1, (int64_t[]){1}, KILN_F32);
	kiln_array *args[2] = {x, y};
	double *t = malloc(sizeof(double) * (size_t)reps);

	/* an empty request: the protocol's round trip */
	kiln_rpc_device d[16];
	for (int i = 0; i < reps; i++) {
		double t0 = rt_now_ms();
		if (kiln_rpc_devices(s, d, 16) < 0)
			return fail("devices");
		t[i] = rt_now_ms() - t0;
	}
	double rtt = median(t, reps);
	/* a call: the input over (once: the same bytes are not sent again), the call, the output back */
	for (int i = 0; i < reps; i++) {
		double t0 = rt_now_ms();
		if (kiln_module_call(r, "relu", args, 2))
			return fail("call");
		t[i] = rt_now_ms() - t0;
	}
	double call = median(t, reps);
	double local_call = -1;
	if (!strcmp(target, "llvm")) {
		for (int i = 0; i < reps; i++) {
			double t0 = rt_now_ms();
			if (kiln_module_call(local, "relu", args, 2))
				return fail("local call");
			t[i] = rt_now_ms() - t0;
		}
		local_call = median(t, reps);
	}
	printf("{\"bench\":\"rpc\",\"case\":\"empty_request\",\"via\":\"%s\",\"target\":\"%s\",\"remote_ms\":%.4f,\"goal_ms\":1}\n",
	       label, target, rtt);
	printf("{\"bench\":\"rpc\",\"case\":\"call_1_element\",\"via\":\"%s\",\"target\":\"%s\",\"remote_ms\":%.4f,"
	       "\"local_ms\":%.5f,\"overhead_ms\":%.4f}\n",
	       label, target, call, local_call, call - (local_call > 0 ? local_call : 0));

	/* timing there: the TIME request's wall time against what the device measured */
	kiln_time_opts o = {.warmup = 1, .number = 10, .repeat = 10};
	int treps = smoke ? 5 : 50;
	double *over = malloc(sizeof(double) * (size_t)treps);
	kiln_timing tm;
	if (kiln_module_time(r, "relu", args, 2, &o, &tm)) /* the first TIME also allocates and writes */
		return fail("time");
	kiln_timing_free(&tm);
	for (int i = 0; i < treps; i++) {
		double t0 = rt_now_ms();
		if (kiln_module_time(r, "relu", args, 2, &o, &tm))
			return fail("time");
		double wall = rt_now_ms() - t0, device = 0;
		for (int k = 0; k < tm.nsamples; k++)
			device += tm.samples_ms[k] * tm.number;
		over[i] = wall - device;
		kiln_timing_free(&tm);
	}
	printf("{\"bench\":\"rpc\",\"case\":\"time_request_overhead\",\"via\":\"%s\",\"target\":\"%s\",\"overhead_ms\":%.4f,"
	       "\"calls_timed\":%d,\"goal_ms\":1}\n", label, target, median(over, treps), o.number * o.repeat + o.warmup);

	/* a 100 MB module: the relu module with a blob of that size beside its code */
	size_t bytes = upload_mb << 20;
	uint8_t *pad = malloc(bytes);
	for (size_t i = 0; i < bytes; i++)
		pad[i] = (uint8_t)(i * 2654435761u >> 13);
	if (rt_module_add_blob(local, "padding", pad, bytes))
		return fail("blob");
	free(pad);
	uint8_t *data;
	size_t n;
	if (rt_module_container(local, &data, &n))
		return fail("container");
	int ureps = smoke ? 1 : 3;
	double best = 1e30;
	for (int i = 0; i < ureps; i++) {
		double t0 = rt_now_ms();
		kiln_module *big = kiln_rpc_upload_bytes(s, data, n);
		double dt = rt_now_ms() - t0;
		if (!big)
			return fail("upload 100 MB");
		kiln_module_free(big);
		t[i] = dt;
		best = dt < best ? dt : best;
	}
	double med = median(t, ureps);
	printf("{\"bench\":\"rpc\",\"case\":\"upload\",\"via\":\"%s\",\"target\":\"%s\",\"mbytes\":%.1f,\"ms\":%.1f,"
	       "\"mb_per_s\":%.0f,\"goal_mb_per_s\":200}\n", label, target, n / 1048576.0, med, n / 1048576.0 / (med / 1000));
	free(data);
	free(t);
	free(over);
	kiln_array_free(x);
	kiln_array_free(y);
	kiln_module_free(r);
	kiln_module_free(local);
	kiln_rpc_close(s);
	kiln_ctx_free(ctx);
	return 0;
}
