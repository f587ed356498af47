/*
 * net.c — frames on TCP sockets: reads and writes with deadlines (a client
 * that sends half a message and stalls is cut off, not waited for), dialing,
 * listening, and the key comparison.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../rt.h"
#include "proto.h"

/* Waits until fd is readable (or writable) or the deadline passes; 0, or -1 with a message. */
static int wait_fd(int fd, short ev, double deadline, const char *what)
{
	for (;;) {
		int ms = -1;
		if (deadline >= 0) {
			double left = deadline - rt_now_ms();
			if (left <= 0)
				return rt_error("rpc: timed out %s", what);
			ms = left > 1e9 ? 1000000000 : (int)left + 1;
		}
		struct pollfd p = {fd, ev, 0};
		int r = poll(&p, 1, ms);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return rt_error("rpc: poll: %s", strerror(errno));
	}
}

/* Reads exactly n bytes by the deadline; 1 on EOF before the first byte when eof_ok. */
static int read_full(int fd, uint8_t *p, size_t n, double deadline, bool eof_ok, const char *what)
{
	size_t got = 0;
	while (got < n) {
		if (wait_fd(fd, POLLIN, deadline, what))
			return -1;
		ssize_t r = recv(fd, p + got, n - got, 0);
		if (r == 0) {
			if (eof_ok && got == 0)
				return 1;
			return rt_error("rpc: the peer closed the connection %s", what);
		}
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			if (errno == ECONNRESET)
				return rt_error("rpc: the peer closed the connection %s (reset)", what);
			return rt_error("rpc: reading %s: %s", what, strerror(errno));
		}
		got += (size_t)r;
	}
	return 0;
}

int rpc_read_frame(int fd, size_t max, int first_ms, int timeout_ms, uint8_t **body, size_t *n)
{
	*body = NULL;
	*n = 0;
	uint8_t head[4];
	/* the first byte may take first_ms; from then on the frame has timeout_ms */
	int rc = read_full(fd, head, 1, first_ms < 0 ? -1 : rt_now_ms() + first_ms, true, "waiting for a message");
	if (rc)
		return rc;
	double deadline = rt_now_ms() + timeout_ms;
	if (read_full(fd, head + 1, 3, deadline, false, "in a message's length"))
		return -1;
	uint32_t len = (uint32_t)head[0] | (uint32_t)head[1] << 8 | (uint32_t)head[2] << 16 | (uint32_t)head[3] << 24;
	if (len == 0)
		return rt_error("rpc: an empty message");
	if (len > max)
		return rt_error("rpc: a message of %u bytes is over the limit of %zu bytes", len, max);
	uint8_t *b = malloc(len);
	if (!b)
		return rt_error("rpc: no memory for a message of %u bytes", len);
	if (read_full(fd, b, len, deadline, false, "in the middle of a message")) {
		free(b);
		return -1;
	}
	*body = b;
	*n = len;
	return 0;
}

int rpc_write_all(int fd, const void *p, size_t n, int timeout_ms)
{
	const uint8_t *b = p;
	double deadline = rt_now_ms() + timeout_ms;
	while (n) {
		if (wait_fd(fd, POLLOUT, deadline, "sending a message"))
			return -1;
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			if (errno == EPIPE || errno == ECONNRESET)
				return rt_error("rpc: the peer closed the connection (sending a message)");
			return rt_error("rpc: sending: %s", strerror(errno));
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

void rpc_send_error(int fd, int timeout_ms, const char *fmt, ...)
{
	rpc_buf b = {0};
	va_list ap;
	va_start(ap, fmt);
	int rc = rpc_error_frame(&b, fmt, ap);
	va_end(ap);
	if (!rc)
		rpc_write_all(fd, b.p, b.n, timeout_ms);
	rpc_buf_free(&b);
}

void rpc_nodelay(int fd)
{
	int one = 1;
	/* requests are small and answered one at a time: Nagle would add 40 ms each */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int rpc_dial(const char *host, int port, int timeout_ms)
{
	if (port <= 0 || port > 65535)
		return rt_error("rpc: port %d is not a TCP port", port);
	char ps[16];
	snprintf(ps, sizeof ps, "%d", port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
	int g = getaddrinfo(host, ps, &hints, &res);
	if (g)
		return rt_error("rpc: cannot resolve '%s': %s", host, gai_strerror(g));
	int fd = -1;
	char why[256] = "no address";
	for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, a->ai_addr, a->ai_addrlen) && errno != EINPROGRESS) {
			snprintf(why, sizeof why, "%s", strerror(errno));
			close(fd);
			fd = -1;
			continue;
		}
		int err = 0;
		socklen_t el = sizeof err;
		if (wait_fd(fd, POLLOUT, rt_now_ms() + timeout_ms, "connecting") ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) || err) {
			snprintf(why, sizeof why, "%s", err ? strerror(err) : kiln_rt_last_error());
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		return rt_error("rpc: cannot connect to %s:%d: %s", host, port, why);
	rpc_nodelay(fd);
	return fd;
}

int rpc_listen(const char *host, int port, int *bound)
{
	if (port < 0 || port > 65535)
		return rt_error("rpc: port %d is not a TCP port", port);
	char ps[16];
	snprintf(ps, sizeof ps, "%d", port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
	int g = getaddrinfo(host, ps, &hints, &res);
	if (g)
		return rt_error("rpc: cannot resolve '%s': %s", host, gai_strerror(g));
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 64)) {
		int e = errno;
		freeaddrinfo(res);
		if (fd >= 0)
			close(fd);
		return rt_error("rpc: cannot listen on %s:%d: %s", host, port, strerror(e));
	}
	freeaddrinfo(res);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	*bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                        : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

int rpc_key_equal(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	/* every byte up to the longer length is compared, whatever differs first */
	size_t n = an > bn ? an : bn;
	unsigned diff = an != bn;
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned)((i < an ? a[i] : 0) ^ (i < bn ? b[i] : 0));
	return diff == 0;
}

void rpc_close_gracefully(int fd)
{
	/* closing with unread input sends a reset, which can destroy the ERROR just
	 * sent before the peer reads it: end our side, drain theirs briefly, then close */
	shutdown(fd, SHUT_WR);
	double deadline = rt_now_ms() + 1000;
	char buf[4096];
	size_t drained = 0;
	while (drained < ((size_t)1 << 20) && !wait_fd(fd, POLLIN, deadline, "draining")) {
		ssize_t r = recv(fd, buf, sizeof buf, 0);
		if (r <= 0)
			break;
		drained += (size_t)r;
	}
	close(fd);
}
