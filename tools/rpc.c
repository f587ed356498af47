/*
 * rpc.c — `kiln rpc server|proxy|devices`, and the remote path of run and
 * bench (--rpc HOST:PORT --key K): the module built here is uploaded and
 * called there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln/build.h"
#include "kiln/rpc.h"
#include "runtime/rpc/proxy.h"
#include "args.h"
#include "npy.h"
#include "rpc.h"

#define RPC_MAX_IO_CLI 64

static const char *usage =
	"usage: kiln rpc server [--key K] [--host H] [--port N] [--proxy HOST:PORT] [--timeout S]\n"
	"                       [--idle S] [--max-message MB] [--devices llvm,opencl,webgl]\n"
	"       kiln rpc proxy  [--host H] [--port N] [--web-port N] [--web DIR] [--wait S] [--timeout S]\n"
	"       kiln rpc devices --rpc HOST:PORT [--key K]\n"
	"\n"
	"server: serves this machine's CPU, OpenCL and GLES devices to kiln clients, each\n"
	"  session in its own worker process (a crashing kernel ends only its session).\n"
	"  Listens on 127.0.0.1:9090 by default (--port 0: a free port, printed); --host\n"
	"  0.0.0.0 opens it to the network (every client must still present the key).\n"
	"  --proxy registers at a proxy instead of listening. --devices serves only those\n"
	"  targets (the others' drivers are never loaded).\n"
	"proxy: pairs clients (TCP, --port, default 9090) with devices that registered under\n"
	"  the same key: native servers (TCP, same port) and browser tabs or node processes\n"
	"  over WebSocket (--web-port, default 9091; it also serves the device page, printed).\n"
	"  A client whose devices are all busy waits --wait seconds (default 30; clients give\n"
	"  up after 60). --timeout S (default 10) cuts off a peer silent or stalled that long.\n"
	"devices: through a proxy, the devices registered under the key (free or busy); then\n"
	"  what the server (or the device you are paired with) runs.\n"
	"\n"
	"The key comes from --key or the KILN_RPC_KEY environment variable (which keeps it\n"
	"out of the process list). kiln run|bench OP ... --rpc HOST:PORT [--key K] builds OP\n"
	"here and runs or times it there.\n";

/* The key from --key, else KILN_RPC_KEY; NULL (printed) when neither. */
const char *cli_rpc_key(const char *key)
{
	if (!key)
		key = getenv("KILN_RPC_KEY");
	if (!key || !key[0])
		fprintf(stderr, "kiln: rpc needs a key: --key K or KILN_RPC_KEY\n");
	return key && key[0] ? key : NULL;
}

kiln_rpc *cli_rpc_connect(const char *addr, const char *key)
{
	char host[256];
	int port;
	if (!(key = cli_rpc_key(key)))
		return NULL;
	if (rpc_split(addr, host, sizeof host, &port)) {
		fprintf(stderr, "kiln: --rpc takes HOST:PORT, not '%s'\n", addr);
		return NULL;
	}
	kiln_rpc *s = kiln_rpc_connect(host, port, key, 0);
	if (!s)
		fprintf(stderr, "kiln: %s\n", kiln_rt_last_error());
	return s;
}

int rpc_split(const char *s, char *host, size_t n, int *port)
{
	const char *colon = s ? strrchr(s, ':') : NULL;
	long long p;
	char err[128];
	if (!colon || colon == s || (size_t)(colon - s) >= n ||
	    cli_parse_int("port", colon + 1, 1, 65535, &p, err, sizeof err))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	*port = (int)p;
	return 0;
}

static void print_port(int port, void *arg)
{
	const char *what = arg;
	printf("kiln rpc server: %s %d\n", what, port);
	fflush(stdout);
}

typedef struct {
	const char *key, *host, *proxy, *rpc, *web, *devices;
	long long port, web_port, timeout, idle, max_mb, wait, sessions;
} rpc_opts;

static int parse(int argc, char **argv, rpc_opts *o)
{
	*o = (rpc_opts){.port = 9090, .web_port = 9091, .timeout = 10, .idle = 600, .max_mb = 256, .wait = 30};
	for (int i = 3; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage, stdout);
			return 1;
		}
		if (!v) {
			fprintf(stderr, "kiln: rpc: option %s needs a value\n", a);
			return -1;
		}
		i++;
		struct {
			const char *name;
			long long *dst, lo, hi;
		} nums[] = {{"--port", &o->port, 0, 65535},     {"--web-port", &o->web_port, 0, 65535},
		            {"--timeout", &o->timeout, 1, 3600}, {"--idle", &o->idle, 1, 86400},
		            {"--max-message", &o->max_mb, 1, 2048}, {"--wait", &o->wait, 0, 3600},
		            {"--sessions", &o->sessions, 0, 1000000}};
		bool done = false;
		for (size_t k = 0; k < sizeof nums / sizeof *nums && !done; k++) {
			if (strcmp(a, nums[k].name))
				continue;
			char err[256];
			if (cli_parse_int(a, v, nums[k].lo, nums[k].hi, nums[k].dst, err, sizeof err)) {
				fprintf(stderr, "kiln: rpc: %s\n", err);
				return -1;
			}
			done = true;
		}
		if (done)
			continue;
		if (!strcmp(a, "--key"))
			o->key = v;
		else if (!strcmp(a, "--host"))
			o->host = v;
		else if (!strcmp(a, "--proxy"))
			o->proxy = v;
		else if (!strcmp(a, "--rpc"))
			o->rpc = v;
		else if (!strcmp(a, "--web"))
			o->web = v;
		else if (!strcmp(a, "--devices")) {
			/* a comma list of llvm, opencl, webgl */
			for (const char *p = v; *p;) {
				size_t k = strcspn(p, ",");
				if (!((k == 4 && !strncmp(p, "llvm", 4)) || (k == 6 && !strncmp(p, "opencl", 6)) ||
				      (k == 5 && !strncmp(p, "webgl", 5)))) {
					fprintf(stderr, "kiln: rpc: --devices takes a comma list of llvm, opencl, webgl, not '%s'\n", v);
					return -1;
				}
				p += k + (p[k] == ',');
			}
			if (!*v || v[strlen(v) - 1] == ',') {
				fprintf(stderr, "kiln: rpc: --devices takes a comma list of llvm, opencl, webgl, not '%s'\n", v);
				return -1;
			}
			o->devices = v;
		}
		else {
			fprintf(stderr, "kiln: rpc: unknown option '%s' (try kiln rpc --help)\n", a);
			return -1;
		}
	}
	return 0;
}

static bool loopback(const char *host)
{
	return !host || !strcmp(host, "127.0.0.1") || !strcmp(host, "localhost") || !strcmp(host, "::1");
}

static int rpc_server(const rpc_opts *o)
{
	const char *key = cli_rpc_key(o->key);
	if (!key)
		return 2;
	char host[256];
	int port = 0;
	if (o->proxy && rpc_split(o->proxy, host, sizeof host, &port)) {
		fprintf(stderr, "kiln: --proxy takes HOST:PORT, not '%s'\n", o->proxy);
		return 2;
	}
	if (!loopback(o->host))
		fprintf(stderr, "kiln: warning: listening on %s, beyond this machine: anyone who can reach it and "
		                "knows the key runs code here\n", o->host);
	kiln_rpc_server_opts so = {
		.host = o->host, .port = (int)o->port, .key = key, .max_message = (size_t)o->max_mb << 20,
		.timeout_ms = (int)o->timeout * 1000, .idle_ms = (int)o->idle * 1000, .proxy_host = o->proxy ? host : NULL, .proxy_port = port,
		.sessions = (int)o->sessions, .devices = o->devices, .listening = print_port,
		.arg = o->proxy ? "registered at the proxy on port" : "listening on port",
	};
	if (kiln_rpc_serve(&so)) {
		fprintf(stderr, "kiln: %s\n", kiln_rt_last_error());
		return 1;
	}
	return 0;
}

static void print_proxy(int port, int web_port, void *arg)
{
	const char *host = arg;
	printf("kiln rpc proxy: clients and native servers: %s:%d\n", host, port);
	printf("kiln rpc proxy: devices: open http://%s:%d/#key=KEY in a browser (or run\n"
	       "  node --experimental-websocket rpc-node.mjs ws://%s:%d/ KEY from kiln's web folder)\n",
	       host, web_port, host, web_port);
	fflush(stdout);
}

static int rpc_proxy(const rpc_opts *o)
{
	const char *host = o->host ? o->host : "127.0.0.1";
	if (!loopback(o->host))
		fprintf(stderr, "kiln: warning: the proxy listens on %s, beyond this machine: whoever reaches it can "
		                "register devices, and use any device whose key they know\n", o->host);
	kiln_rpc_proxy_opts po = {
		.host = host, .port = (int)o->port, .web_port = (int)o->web_port,
		.web_dir = o->web ? o->web : kiln_web_dir(false), .web_runtime_dir = o->web ? o->web : kiln_web_dir(true),
		.max_message = (size_t)o->max_mb << 20, .timeout_ms = (int)o->timeout * 1000, .wait_ms = (int)o->wait * 1000,
		.listening = print_proxy, .arg = (void *)host,
	};
	if (kiln_rpc_proxy(&po)) {
		fprintf(stderr, "kiln: %s\n", kiln_rt_last_error());
		return 1;
	}
	return 0;
}

static int rpc_devices(const rpc_opts *o)
{
	if (!o->rpc) {
		fprintf(stderr, "kiln: rpc devices needs --rpc HOST:PORT\n");
		return 2;
	}
	/* a proxy first: the devices registered under the key */
	const char *key = cli_rpc_key(o->key);
	char host[256];
	int port;
	if (!key)
		return 2;
	if (rpc_split(o->rpc, host, sizeof host, &port)) {
		fprintf(stderr, "kiln: --rpc takes HOST:PORT, not '%s'\n", o->rpc);
		return 2;
	}
	kiln_rpc_device pool[16];
	int np = kiln_rpc_pool(host, port, key, pool, 16, 10000);
	if (np == 0) {
		fprintf(stderr, "kiln: the proxy at %s has no device registered under this key\n", o->rpc);
		return 1;
	}
	if (np > 0) {
		printf("proxy %s: %d device%s under this key\n", o->rpc, np, np == 1 ? "" : "s");
		for (int i = 0; i < np && i < 16; i++)
			printf("  [%s] %s\n", pool[i].target, pool[i].description);
		printf("paired with one of them:\n");
	}
	kiln_rpc *s = cli_rpc_connect(o->rpc, o->key);
	if (!s)
		return 1;
	kiln_rpc_device d[16];
	int n = kiln_rpc_devices(s, d, 16);
	if (n < 0)
		fprintf(stderr, "kiln: %s\n", kiln_rt_last_error());
	printf("%s\n", kiln_rpc_peer(s));
	for (int i = 0; i < n && i < 16; i++)
		printf("  %-8s %s\n", d[i].target, d[i].description);
	kiln_rpc_close(s);
	return n < 0;
}

int cli_rpc(int argc, char **argv)
{
	const char *sub = argc > 2 ? argv[2] : NULL;
	if (!sub || !strcmp(sub, "--help") || !strcmp(sub, "-h")) {
		fputs(usage, sub ? stdout : stderr);
		return sub ? 0 : 2;
	}
	rpc_opts o;
	int p = parse(argc, argv, &o);
	if (p)
		return p > 0 ? 0 : 2;
	if (!strcmp(sub, "server"))
		return rpc_server(&o);
	if (!strcmp(sub, "devices"))
		return rpc_devices(&o);
	if (!strcmp(sub, "proxy"))
		return rpc_proxy(&o);
	fprintf(stderr, "kiln: rpc: unknown command '%s' (server, proxy or devices)\n\n%s", sub, usage);
	return 2;
}

/* A whole file, malloc'ed; NULL (printed) when unreadable or over 2 GiB. */
static uint8_t *read_file(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "kiln: cannot open %s\n", path);
		return NULL;
	}
	uint8_t head[4] = {0};
	if (fread(head, 1, 4, f) == 4 && !memcmp(head, "\x7f" "ELF", 4)) {
		fclose(f);
		fprintf(stderr, "kiln: %s is a shared library; --rpc uploads model modules (kiln compile ... -o M.kmod)\n", path);
		return NULL;
	}
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *data = size >= 0 && size <= (1L << 31) ? malloc((size_t)size + 1) : NULL;
	if (!data || fread(data, 1, (size_t)size, f) != (size_t)size) {
		fprintf(stderr, "kiln: cannot read %s\n", path);
		free(data);
		fclose(f);
		return NULL;
	}
	fclose(f);
	*n = (size_t)size;
	return data;
}

int cli_rpc_model(const char *path, const char *addr, const char *key, bool bench, int ninput,
                  const char *const *inputs, const char *out, uint64_t seed, int repeat)
{
	size_t n;
	uint8_t *data = read_file(path, &n);
	kiln_rpc *s = data ? cli_rpc_connect(addr, key) : NULL;
	kiln_rpc_model *m = s ? kiln_rpc_load_model(s, data, n) : NULL;
	free(data);
	int rc = m ? 0 : 1;
	if (s && !m)
		fprintf(stderr, "kiln: %s\n", kiln_rt_last_error());
	int nin = kiln_rpc_model_num_inputs(m), nout = kiln_rpc_model_num_outputs(m);
	if (m && ninput && ninput != nin) {
		fprintf(stderr, "kiln: the model has %d inputs, %d --input files were given\n", nin, ninput);
		rc = 2;
	}
	kiln_array *in[RPC_MAX_IO_CLI] = {0}, *outs[RPC_MAX_IO_CLI] = {0};
	if (!rc && (nin > RPC_MAX_IO_CLI || nout > RPC_MAX_IO_CLI)) {
		fprintf(stderr, "kiln: the model has more than %d inputs or outputs\n", RPC_MAX_IO_CLI);
		rc = 1;
	}
	char err[600];
	for (int i = 0; !rc && i < nin; i++) {
		const kiln_arg_info *info = kiln_rpc_model_input_info(m, i);
		in[i] = ninput ? npy_read(inputs[i], err, sizeof err) : kiln_array_empty(info->ndim, info->shape, info->dtype);
		if (!in[i]) {
			fprintf(stderr, "kiln: %s\n", ninput ? err : kiln_rt_last_error());
			rc = 1;
		} else if (!ninput) {
			kiln_array_fill_random(in[i], seed + (uint64_t)i, -1, 1);
		}
	}
	for (int i = 0; !rc && i < nout; i++) {
		const kiln_arg_info *info = kiln_rpc_model_output_info(m, i);
		if (!(outs[i] = kiln_array_empty(info->ndim, info->shape, info->dtype)))
			rc = 1;
	}
	kiln_timing t = {0};
	if (!rc && bench)
		rc = kiln_rpc_model_time(m, (const kiln_array *const *)in, &(kiln_time_opts){.warmup = 1, .repeat = repeat}, &t);
	else if (!rc)
		rc = kiln_rpc_model_run(m, (const kiln_array *const *)in, outs);
	if (rc == -1) {
		fprintf(stderr, "kiln: %s\n", kiln_rt_last_error());
		rc = 1;
	}
	if (!rc && bench)
		printf("%s: median %.3f ms, min %.3f ms over %d runs, on %s\n", path, t.median_ms, t.min_ms, t.nsamples,
		       kiln_rpc_peer(s));
	for (int i = 0; !rc && !bench && i < nout; i++)
		cli_print_output(kiln_rpc_model_output_info(m, i)->name, outs[i]);
	for (int i = 0; !rc && !bench && out && i < nout; i++)
		rc |= cli_write_output(out, nout, kiln_rpc_model_output_info(m, i)->name, outs[i]);
	for (int i = 0; i < RPC_MAX_IO_CLI; i++) {
		kiln_array_free(in[i]);
		kiln_array_free(outs[i]);
	}
	kiln_timing_free(&t);
	kiln_rpc_model_free(m);
	kiln_rpc_close(s);
	return rc;
}

int cli_rpc_model_measure(const char *path, const char *addr, uint64_t seed, int runs, kiln_rpc_step **steps,
                          int nout, kiln_array **outs, int *n, char *err, size_t errn)
{
	size_t size;
	*n = 0;
	err[0] = 0;
	uint8_t *data = read_file(path, &size);
	unlink(path); /* read: a worker killed at its deadline leaves nothing behind */
	const char *key = getenv("KILN_RPC_KEY");
	kiln_rpc *s = data && key && key[0] ? cli_rpc_connect(addr, NULL) : NULL;
	if (!data)
		snprintf(err, errn, "cannot read %s", path);
	else if (!key || !key[0])
		snprintf(err, errn, "rpc needs a key: KILN_RPC_KEY");
	kiln_rpc_model *m = s ? kiln_rpc_load_model(s, data, size) : NULL;
	free(data);
	int nin = kiln_rpc_model_num_inputs(m), rc = m ? 0 : -1;
	kiln_array *in[RPC_MAX_IO_CLI] = {0};
	if (!rc && nin > RPC_MAX_IO_CLI) {
		snprintf(err, errn, "the model has %d inputs, more than %d", nin, RPC_MAX_IO_CLI);
		rc = 1;
	} else if (!rc && outs && kiln_rpc_model_num_outputs(m) > nout) {
		snprintf(err, errn, "the model has %d outputs, more than %d", kiln_rpc_model_num_outputs(m), nout);
		rc = 1;
	}
	for (int i = 0; !rc && i < nin; i++) {
		const kiln_arg_info *info = kiln_rpc_model_input_info(m, i);
		if (!(in[i] = kiln_array_empty(info->ndim, info->shape, info->dtype)))
			rc = -1;
		else
			kiln_array_fill_random(in[i], seed + (uint64_t)i, -1, 1);
	}
	for (int i = 0; !rc && outs && i < kiln_rpc_model_num_outputs(m); i++) {
		const kiln_arg_info *info = kiln_rpc_model_output_info(m, i);
		if (!(outs[i] = kiln_array_empty(info->ndim, info->shape, info->dtype)))
			rc = -1;
		*n = i + 1;
	}
	if (!rc && outs)
		rc = kiln_rpc_model_run(m, (const kiln_array *const *)in, outs);
	else if (!rc)
		rc = kiln_rpc_model_step_times(m, (const kiln_array *const *)in, runs, steps, n);
	if (rc < 0 && !err[0]) /* (the client's messages say rpc: or remote:) */
		snprintf(err, errn, "%s", kiln_rt_last_error());
	for (int i = 0; i < RPC_MAX_IO_CLI; i++)
		kiln_array_free(in[i]);
	kiln_rpc_model_free(m);
	kiln_rpc_close(s);
	return rc ? -1 : 0;
}
