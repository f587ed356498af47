/*
 * fuzz_rpc.c — libFuzzer target for the RPC message decoder and the
 * server's session: the input is decoded as one message body, then fed as
 * the byte stream of a session (after a valid HELLO) to the server's own
 * session loop over a socketpair, with a thread draining its replies.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/rpc/proto.h"

static void *drain(void *arg)
{
	int fd = *(int *)arg;
	char buf[65536];
	while (read(fd, buf, sizeof buf) > 0)
		;
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	rpc_msg m;
	char err[256];
	if (!rpc_decode(data, size, &m, err, sizeof err) && m.type == RPC_TIMING)
		for (uint32_t i = 0; i < m.nsamples; i++)
			(void)rpc_sample(&m, i);

	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return 0;
	pthread_t t;
	pthread_create(&t, NULL, drain, &sv[0]);
	rpc_buf b = {0};
	rpc_begin(&b, RPC_HELLO);
	rpc_u32(&b, RPC_MAGIC);
	rpc_u16(&b, KILN_RPC_VERSION);
	rpc_str(&b, "k", 1);
	rpc_end(&b);
	/* the session's input: HELLO, then the fuzz bytes as frames; a writer thread would
	 * be needed past the socket's buffer, so inputs are kept below it */
	if (b.n + size < 100000) {
		int wr = dup(sv[0]);
		if (write(wr, b.p, b.n) == (ssize_t)b.n && (size == 0 || write(wr, data, size) == (ssize_t)size))
			shutdown(wr, SHUT_WR);
		close(wr);
		kiln_rpc_server_opts o = {.key = "k", .timeout_ms = 50, .idle_ms = 50, .max_message = 1 << 20,
		                          .devices = "llvm"};
		rpc_serve_session(&o, sv[1], false);
	} else {
		close(sv[1]);
	}
	pthread_join(t, NULL);
	close(sv[0]);
	rpc_buf_free(&b);
	return 0;
}
