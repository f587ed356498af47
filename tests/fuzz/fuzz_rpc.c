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

/*
 * One drain thread for the whole run (a thread per input would make ASan's
 * thread registry grow): given a socket, it reads it to EOF, then says so.
 */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int drain_fd = -1; /* the socket to drain; -1 once drained */

static void *drain(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&mu);
		while (drain_fd < 0)
			pthread_cond_wait(&cv, &mu);
		int fd = drain_fd;
		pthread_mutex_unlock(&mu);
		char buf[65536];
		while (read(fd, buf, sizeof buf) > 0)
			;
		pthread_mutex_lock(&mu);
		drain_fd = -1;
		pthread_cond_broadcast(&cv);
		pthread_mutex_unlock(&mu);
	}
	return NULL;
}

static void drain_start(int fd)
{
	static pthread_t t;
	static int started;
	if (!started) {
		pthread_create(&t, NULL, drain, NULL);
		started = 1;
	}
	pthread_mutex_lock(&mu);
	drain_fd = fd;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void drain_wait(void)
{
	pthread_mutex_lock(&mu);
	while (drain_fd >= 0)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
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
	drain_start(sv[0]);
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
	drain_wait();
	close(sv[0]);
	rpc_buf_free(&b);
	return 0;
}
