/*
 * proxy.h — the RPC proxy (proxy.c), built into the kiln tool with libwebsockets.
 */
#ifndef KILN_RPC_PROXY_H
#define KILN_RPC_PROXY_H

#include <stddef.h>

typedef struct {
	const char *host;            /* both listeners' address; NULL: 127.0.0.1 */
	int port;                    /* clients and native servers (TCP); 0: a free one */
	int web_port;                /* browser tabs and node (WebSocket), and the device page (HTTP) */
	const char *web_dir;         /* rpc.html, rpc.mjs, kiln.mjs, webgpu.mjs */
	const char *web_runtime_dir; /* kiln_runtime.js and .wasm */
	size_t max_message;          /* 0: KILN_RPC_DEFAULT_MAX_MESSAGE */
	int timeout_ms;              /* a message must arrive whole within it; a new connection speak within it */
	int wait_ms;                 /* how long a client waits for a busy device of its key */
	void (*listening)(int port, int web_port, void *arg);
	void *arg;
} kiln_rpc_proxy_opts;

/* Runs the proxy until SIGINT or SIGTERM; -1 with a message when it cannot start. */
int kiln_rpc_proxy(const kiln_rpc_proxy_opts *o);

#endif
