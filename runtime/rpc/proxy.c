/*
 * proxy.c — `kiln rpc proxy`: pairs clients with devices by key.
 *
 * One libwebsockets event loop with two listeners:
 *   - TCP (raw sockets): clients, whose first frame is HELLO, and native
 *     servers registering as devices (first frame REGISTER);
 *   - HTTP + WebSocket: browser tabs and node processes registering as
 *     devices (first message REGISTER), and the device page itself.
 * A client's HELLO names a key; it is paired with a free device registered
 * under that key (keys compared in constant time) and the HELLO is forwarded
 * to it, which answers. From then on the proxy copies messages both ways: a
 * frame from a TCP peer becomes one WebSocket binary message to a web device
 * and back. Several devices under one key form a pool, used in turn; a
 * client finding all of them busy waits (--wait seconds). A session ends
 * with its connection: the proxy then closes the device's connection and the
 * device registers afresh (so no session's state survives into the next).
 * A browser device fetches large messages as parcels over HTTP (GET
 * /parcel/TOKEN, served while the client's bytes still arrive), which a tab
 * takes in several times faster than one big WebSocket message. POOL, in
 * place of HELLO, lists the devices of a key. Every message is checked
 * against the size limit before it is buffered; a peer that stalls
 * mid-message, or says nothing, is cut off.
 *
 * Linked into the kiln tool only: libkiln_runtime does not need libwebsockets.
 */
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../rt.h"
#include "proto.h"
#include "proxy.h"

/* How long a client waits for a device of its key to (re-)register. */
#define GRACE_MS 2000

/* Messages to web devices from this size on go as parcels (fetched over HTTP). */
#define PARCEL_MIN ((size_t)1 << 20)

enum { K_CONN = 1, K_PARCEL };
enum { C_NEW, C_CLIENT_WAITING, C_CLIENT, C_DEVICE, C_CLOSING };

typedef struct out_msg {
	struct out_msg *next;
	uint8_t *buf; /* LWS_PRE bytes of headroom, then the data */
	size_t n, off;
	bool frame;   /* raw bytes (a TCP frame) or one WebSocket message */
} out_msg;

typedef struct conn {
	int kind;              /* K_CONN (what a wsi's user slot points at: a conn or a parcel) */
	struct conn *next;     /* every connection */
	struct lws *wsi;
	bool ws;               /* a WebSocket peer (else raw TCP) */
	bool parcels;          /* a device that fetches large messages as parcels */
	int state;
	struct conn *peer;     /* the paired client or device */
	char key[KILN_RPC_MAX_KEY];
	size_t keyn;
	char desc[256];
	uint8_t head[4];       /* raw: the frame's length so far */
	size_t headn;
	uint8_t *body;         /* the message being received */
	size_t need, have;
	double since;          /* when the connection opened / began waiting / last made progress */
	struct parcel *filling; /* the parcel this client's message is arriving into */
	uint8_t *hello;        /* a waiting client's HELLO, forwarded once a device frees up */
	size_t hellon;
	out_msg *out, *out_tail;
	bool close_when_sent;
	bool hung_up;          /* lws closed it: forget the wsi */
} conn;

typedef struct parcel {
	int kind;              /* K_PARCEL */
	struct parcel *next;
	char token[33];
	uint8_t *data;
	size_t n, off;
	struct conn *device;   /* the device it is for (NULL once it left) */
	struct conn *source;   /* the client still sending it (NULL once whole) */
	size_t avail;          /* bytes of it received so far: served as they arrive */
	struct lws *wsi;       /* the HTTP request serving it */
	double since;
} parcel;

static struct {
	const kiln_rpc_proxy_opts *o;
	parcel *parcels;
	size_t max;
	conn *all;
	struct lws_context *ctx;
	lws_sorted_usec_list_t tick;
	volatile sig_atomic_t stop;
} P;

static void on_signal(int sig) { P.stop = 1; }

/* ---- sending ---- */

static void push(conn *c, const uint8_t *data, size_t n, bool frame)
{
	if (!c->wsi || c->hung_up)
		return;
	out_msg *m = calloc(1, sizeof *m);
	size_t head = frame ? 4 : 0;
	uint8_t *buf = m ? malloc(LWS_PRE + head + n + 1) : NULL;
	if (!buf) {
		free(m);
		fprintf(stderr, "kiln rpc proxy: out of memory queueing %zu bytes; closing the connection\n", n);
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		return;
	}
	if (frame)
		for (int i = 0; i < 4; i++)
			buf[LWS_PRE + i] = (uint8_t)(n >> (8 * i));
	memcpy(buf + LWS_PRE + head, data, n);
	*m = (out_msg){NULL, buf, head + n, 0, frame};
	if (c->out_tail)
		c->out_tail->next = m;
	else
		c->out = m;
	c->out_tail = m;
	lws_callback_on_writable(c->wsi);
}

/* A message body to c in c's framing: one WebSocket message, or a length-prefixed frame. */
static void send_body(conn *c, const uint8_t *body, size_t n) { push(c, body, n, !c->ws); }

/* An ERROR to c, then close it once sent. */
static void refuse(conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void refuse(conn *c, const char *fmt, ...)
{
	rpc_buf b = {0};
	va_list ap;
	va_start(ap, fmt);
	int rc = rpc_error_frame(&b, fmt, ap);
	va_end(ap);
	if (!rc)
		send_body(c, b.p + 4, b.n - 4);
	rpc_buf_free(&b);
	c->state = C_CLOSING;
	c->close_when_sent = true;
	if (c->wsi && !c->hung_up)
		lws_callback_on_writable(c->wsi);
}

/* Writes the head of c's queue; -1 tells lws to close c. */
static int writable(conn *c)
{
	out_msg *m = c->out;
	if (!m)
		return c->close_when_sent ? -1 : 0;
	/* 1 MiB per event: lws buffers what the socket does not take, and comes back */
	size_t chunk = m->n - m->off > ((size_t)1 << 20) ? (size_t)1 << 20 : m->n - m->off;
	uint8_t *p = m->buf + LWS_PRE + m->off;
	int flags;
	if (m->frame)
		flags = LWS_WRITE_RAW;
	else
		flags = lws_write_ws_flags(LWS_WRITE_BINARY, m->off == 0, m->off + chunk == m->n);
	/* the headroom lws writes its frame header into: bytes already sent (or LWS_PRE) */
	if (lws_write(c->wsi, p, chunk, (enum lws_write_protocol)flags) < (int)chunk)
		return -1;
	m->off += chunk;
	if (m->off == m->n) {
		c->out = m->next;
		if (!c->out)
			c->out_tail = NULL;
		free(m->buf);
		free(m);
	}
	if (c->out || c->close_when_sent)
		lws_callback_on_writable(c->wsi);
	return 0;
}

/* ---- pairing ---- */

static bool same_key(const conn *a, const uint8_t *key, size_t n) { return rpc_key_equal((const uint8_t *)a->key, a->keyn, key, n); }

static void pair(conn *client, conn *dev, const uint8_t *hello, size_t n)
{
	client->state = C_CLIENT;
	client->peer = dev;
	dev->peer = client;
	printf("kiln rpc proxy: a client is paired with %s\n", dev->desc);
	fflush(stdout);
	send_body(dev, hello, n);
}

/* HELLO from a new client: a free device of its key, a wait, or a refusal. */
static void on_hello(conn *c, const rpc_msg *m, const uint8_t *body, size_t n)
{
	memcpy(c->key, m->key.p, m->key.n);
	c->keyn = m->key.n;
	/* every device's key is compared, whatever matches first */
	conn *free_dev = NULL;
	for (conn *d = P.all; d; d = d->next) {
		if (d->state != C_DEVICE)
			continue;
		bool match = same_key(d, m->key.p, m->key.n);
		if (match && !d->peer && !free_dev)
			free_dev = d;
	}
	if (free_dev) {
		pair(c, free_dev, body, n);
		return;
	}
	/* keep the HELLO to forward once a device frees up */
	if (!(c->hello = malloc(n))) {
		refuse(c, "the proxy is out of memory");
		return;
	}
	memcpy(c->hello, body, n);
	c->hellon = n;
	c->state = C_CLIENT_WAITING;
	c->since = rt_now_ms();
}

/* POOL: the devices registered under a key, free or busy; then the connection ends. */
static void on_pool(conn *c, const rpc_msg *m)
{
	if (m->version != KILN_RPC_VERSION) {
		refuse(c, "this proxy speaks kiln RPC version %d, the client %u", KILN_RPC_VERSION, m->version);
		return;
	}
	uint32_t n = 0;
	for (conn *d = P.all; d; d = d->next)
		n += d->state == C_DEVICE && same_key(d, m->key.p, m->key.n) && n < RPC_MAX_DEVICES;
	rpc_buf b = {0};
	rpc_begin(&b, RPC_DEVICE_LIST);
	rpc_u32(&b, n);
	uint32_t k = 0;
	for (conn *d = P.all; d && k < n; d = d->next)
		if (d->state == C_DEVICE && same_key(d, m->key.p, m->key.n)) {
			const char *st = d->peer ? "busy" : "free";
			rpc_str(&b, st, strlen(st));
			rpc_str(&b, d->desc, strlen(d->desc));
			k++;
		}
	if (!rpc_end(&b))
		send_body(c, b.p + 4, b.n - 4);
	rpc_buf_free(&b);
	c->state = C_CLOSING;
	c->close_when_sent = true;
}

/* A device is free: the longest-waiting client of its key gets it. */
static void device_free(conn *d)
{
	conn *first = NULL;
	for (conn *c = P.all; c; c = c->next)
		if (c->state == C_CLIENT_WAITING && same_key(d, (const uint8_t *)c->key, c->keyn) &&
		    (!first || c->since < first->since))
			first = c;
	if (first) {
		pair(first, d, first->hello, first->hellon);
		free(first->hello);
		first->hello = NULL;
	}
}

static void on_register(conn *c, const rpc_msg *m)
{
	if (m->version != KILN_RPC_VERSION) {
		refuse(c, "this proxy speaks kiln RPC version %d, the device %u", KILN_RPC_VERSION, m->version);
		return;
	}
	if (!m->key.n) {
		refuse(c, "a device registers with a key");
		return;
	}
	memcpy(c->key, m->key.p, m->key.n);
	c->keyn = m->key.n;
	snprintf(c->desc, sizeof c->desc, "%.*s", (int)m->text.n, (const char *)m->text.p);
	for (char *p = c->desc; *p; p++)
		if ((unsigned char)*p < 32)
			*p = '?';
	c->state = C_DEVICE;
	c->parcels = c->ws && (m->flags & RPC_REGISTER_PARCELS);
	printf("kiln rpc proxy: device registered: %s (%s)\n", c->desc, c->ws ? "websocket" : "tcp");
	fflush(stdout);
	device_free(c);
}

/*
 * A large message to a web device goes as a parcel: the device is sent its
 * token and fetches the body over HTTP from this proxy (GET /parcel/TOKEN,
 * once), because a browser receives a big WebSocket message several times
 * slower than a fetch of the same bytes.
 */
static parcel *send_parcel(conn *dev, uint8_t *body, size_t n, size_t avail)
{
	parcel *pc = calloc(1, sizeof *pc);
	uint8_t rnd[16];
	if (!pc || lws_get_random(P.ctx, rnd, sizeof rnd) != sizeof rnd) {
		free(pc);
		return NULL;
	}
	pc->kind = K_PARCEL;
	for (int i = 0; i < 16; i++)
		snprintf(pc->token + 2 * i, 3, "%02x", rnd[i]);
	pc->data = body;
	pc->n = n;
	pc->avail = avail;
	pc->device = dev;
	pc->since = rt_now_ms();
	pc->next = P.parcels;
	P.parcels = pc;
	rpc_buf b = {0};
	rpc_begin(&b, RPC_PARCEL);
	rpc_str(&b, pc->token, 32);
	rpc_u64(&b, n);
	if (!rpc_end(&b))
		send_body(dev, b.p + 4, b.n - 4);
	rpc_buf_free(&b);
	return pc;
}

static void parcel_free(parcel *pc)
{
	for (parcel **pp = &P.parcels; *pp; pp = &(*pp)->next)
		if (*pp == pc) {
			*pp = pc->next;
			break;
		}
	free(pc->data);
	free(pc);
}

static void on_control(conn *c, const uint8_t *body, size_t n);

/* One whole message from c (owned: freed here or passed on). */
static void on_message(conn *c, uint8_t *body, size_t n)
{
	if (c->state == C_CLOSING) {
		free(body);
		return;
	}
	if (c->state == C_CLIENT_WAITING) {
		refuse(c, "%s before the session opened (wait for WELCOME)", n ? rpc_type_name(body[0]) : "a message");
		free(body);
		return;
	}
	if (c->peer) { /* a paired session: copied through, unread */
		if (c->peer->parcels && n >= PARCEL_MIN && send_parcel(c->peer, body, n, n))
			return;
		send_body(c->peer, body, n);
		free(body);
		return;
	}
	on_control(c, body, n);
	free(body);
}

/* A message of an unpaired connection: HELLO, REGISTER, or a refusal. */
static void on_control(conn *c, const uint8_t *body, size_t n)
{
	rpc_msg m;
	char err[256];
	if (rpc_decode(body, n, &m, err, sizeof err)) {
		refuse(c, "protocol violation: %s", err);
		return;
	}
	if (c->state == C_NEW && m.type == RPC_HELLO && !c->ws)
		on_hello(c, &m, body, n);
	else if (c->state == C_NEW && m.type == RPC_POOL && !c->ws)
		on_pool(c, &m);
	else if (c->state == C_NEW && m.type == RPC_REGISTER)
		on_register(c, &m);
	else if (c->state == C_NEW)
		refuse(c, "a connection to the proxy opens with HELLO (clients, over TCP) or REGISTER (devices), not %s",
		       rpc_type_name(m.type));
	else
		refuse(c, "%s while no session is open", rpc_type_name(m.type));
}

/* Bytes of a message announced as n bytes: refused past the limit before any is buffered. */
static int begin_body(conn *c, size_t n)
{
	if (n == 0 || n > P.max) {
		refuse(c, "a message of %zu bytes is over the proxy's limit of %zu bytes", n, P.max);
		return -1;
	}
	if (!(c->body = malloc(n))) {
		refuse(c, "the proxy has no memory for a message of %zu bytes", n);
		return -1;
	}
	c->need = n;
	c->have = 0;
	/* a large message to a browser device: its parcel is announced now and served as it arrives */
	if (c->state == C_CLIENT && c->peer && c->peer->parcels && n >= PARCEL_MIN &&
	    (c->filling = send_parcel(c->peer, c->body, n, 0)))
		c->filling->source = c;
	return 0;
}

/* The client's bytes so far reach its parcel; whole, the parcel owns them. */
static void parcel_progress(conn *c)
{
	parcel *pc = c->filling;
	pc->avail = c->have;
	if (c->have == c->need) {
		pc->source = NULL;
		c->filling = NULL;
		c->body = NULL;
		c->need = c->have = 0;
	}
	if (pc->wsi)
		lws_callback_on_writable(pc->wsi);
}

/* Raw TCP bytes: frames reassembled, each handled whole. */
static void raw_rx(conn *c, const uint8_t *p, size_t n)
{
	c->since = rt_now_ms();
	while (n && c->state != C_CLOSING) {
		if (!c->body) {
			while (n && c->headn < 4)
				c->head[c->headn++] = *p++, n--;
			if (c->headn < 4)
				return;
			uint32_t len = (uint32_t)c->head[0] | (uint32_t)c->head[1] << 8 | (uint32_t)c->head[2] << 16 |
			               (uint32_t)c->head[3] << 24;
			c->headn = 0;
			if (begin_body(c, len))
				return;
			continue;
		}
		size_t k = c->need - c->have < n ? c->need - c->have : n;
		memcpy(c->body + c->have, p, k);
		c->have += k;
		p += k;
		n -= k;
		if (c->filling) {
			parcel_progress(c);
			continue;
		}
		if (c->have == c->need) {
			uint8_t *body = c->body;
			size_t len = c->need;
			c->body = NULL;
			c->need = c->have = 0;
			on_message(c, body, len);
		}
	}
}

/* A WebSocket fragment: a message grows until its final fragment. */
static void ws_rx(conn *c, struct lws *wsi, const uint8_t *p, size_t n)
{
	c->since = rt_now_ms();
	if (c->state == C_CLOSING)
		return;
	if (lws_frame_is_binary(wsi) == 0 && lws_is_first_fragment(wsi)) {
		refuse(c, "devices send binary messages");
		return;
	}
	size_t want = c->have + n;
	if (want > P.max) {
		refuse(c, "a message of at least %zu bytes is over the proxy's limit of %zu bytes", want, P.max);
		free(c->body);
		c->body = NULL;
		c->have = 0;
		return;
	}
	uint8_t *b = realloc(c->body, want ? want : 1);
	if (!b) {
		refuse(c, "the proxy has no memory for a message of %zu bytes", want);
		return;
	}
	c->body = b;
	memcpy(b + c->have, p, n);
	c->have = want;
	if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
		uint8_t *body = c->body;
		size_t len = c->have;
		c->body = NULL;
		c->have = 0;
		on_message(c, body, len);
	}
}

/* ---- connections ---- */

static conn *conn_new(struct lws *wsi, bool ws)
{
	conn *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->kind = K_CONN;
	c->wsi = wsi;
	c->ws = ws;
	c->since = rt_now_ms();
	c->next = P.all;
	P.all = c;
	return c;
}

static void conn_gone(conn *c)
{
	c->hung_up = true;
	c->wsi = NULL;
	conn *peer = c->peer;
	if (peer) {
		peer->peer = NULL;
		if (peer->state == C_CLIENT)
			refuse(peer, "the device (%s) went away during the session (a closed tab, a crashed process?)",
			       c->desc);
		else if (peer->wsi) { /* the client left: the device starts over with a fresh connection */
			peer->state = C_CLOSING; /* not to be paired again meanwhile */
			lws_set_timeout(peer->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		}
	}
	if (c->desc[0]) { /* it had registered */
		printf("kiln rpc proxy: device gone: %s\n", c->desc);
		fflush(stdout);
	}
	if (c->filling) { /* the client left mid-message: its parcel owns the buffer and is cut short */
		parcel *pc = c->filling;
		pc->source = NULL;
		c->filling = NULL;
		c->body = NULL;
		if (pc->wsi)
			lws_set_timeout(pc->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		else
			parcel_free(pc);
	}
	for (parcel *pc = P.parcels, *nx; pc; pc = nx) {
		nx = pc->next;
		if (pc->device != c)
			continue;
		/* still filling from its client: that client's end frees it */
		if (!pc->wsi && !pc->source)
			parcel_free(pc);
		else
			pc->device = NULL;
	}
	for (conn **pp = &P.all; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	for (out_msg *m = c->out, *n; m; m = n) {
		n = m->next;
		free(m->buf);
		free(m);
	}
	free(c->body);
	free(c->hello);
	free(c);
}

/* Whether any device is registered under key (every one compared). */
static bool registered(const uint8_t *key, size_t n)
{
	bool any = false;
	for (conn *d = P.all; d; d = d->next)
		if (d->state == C_DEVICE)
			any |= same_key(d, key, n);
	return any;
}

/* Deadlines: a silent new connection, a stalled message, a client waiting too long. */
static void sweep(void)
{
	double now = rt_now_ms(), t = P.o->timeout_ms, wait = P.o->wait_ms;
	for (parcel *pc = P.parcels, *nx; pc; pc = nx) { /* a parcel its device never fetched */
		nx = pc->next;
		if (!pc->wsi && !pc->source && now - pc->since > 60000)
			parcel_free(pc);
	}
	for (conn *c = P.all; c; c = c->next) {
		if (c->hung_up || c->state == C_CLOSING)
			continue;
		bool partial = (c->body && c->have < c->need) || c->headn || (c->ws && c->body);
		if (partial && c->state != C_CLIENT_WAITING && now - c->since > t)
			refuse(c, "timed out in the middle of a message");
		else if (c->state == C_NEW && now - c->since > t)
			refuse(c, "no HELLO or REGISTER within %.0f s", t / 1000);
		else if (c->state == C_CLIENT_WAITING && !registered((const uint8_t *)c->key, c->keyn) &&
		         now - c->since > GRACE_MS)
			/* a device re-registers within a moment after each session; a key none has is refused soon */
			refuse(c, "no device is registered under this key at the proxy (wrong key, or the device is not "
			          "connected)");
		else if (c->state == C_CLIENT_WAITING && now - c->since > wait)
			refuse(c, "every device under this key stayed busy for %.0f s", wait / 1000);
	}
}

/* Every 100 ms: the deadlines (lws wakes for it even when no socket stirs). */
static void on_tick(lws_sorted_usec_list_t *sul)
{
	sweep();
	lws_sul_schedule(P.ctx, 0, &P.tick, on_tick, 100 * LWS_US_PER_MS);
}

static int on_raw(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	conn *c = user ? *(conn **)user : NULL; /* lws calls without a connection too */
	switch (reason) {
	case LWS_CALLBACK_RAW_ADOPT:
		if (!user || !(*(conn **)user = conn_new(wsi, false)))
			return -1;
		break;
	case LWS_CALLBACK_RAW_RX:
		if (c)
			raw_rx(c, in, len);
		break;
	case LWS_CALLBACK_RAW_WRITEABLE:
		return c ? writable(c) : 0;
	case LWS_CALLBACK_RAW_CLOSE:
		if (c)
			conn_gone(c);
		if (user)
			*(conn **)user = NULL;
		break;
	default:
		break;
	}
	return 0;
}

/* The files of the device page: a fixed list, looked up in the web folders. */
static int serve_file(struct lws *wsi, const char *path)
{
	static const struct {
		const char *url, *file, *mime;
	} files[] = {
		{"/", "rpc.html", "text/html"},
		{"/rpc.html", "rpc.html", "text/html"},
		{"/rpc.mjs", "rpc.mjs", "text/javascript"},
		{"/kiln.mjs", "kiln.mjs", "text/javascript"},
		{"/webgpu.mjs", "webgpu.mjs", "text/javascript"},
		{"/kiln_runtime.js", "kiln_runtime.js", "text/javascript"},
		{"/kiln_runtime.wasm", "kiln_runtime.wasm", "application/wasm"},
	};
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		if (strcmp(path, files[i].url))
			continue;
		for (int d = 0; d < 2; d++) {
			char full[4096];
			const char *dir = d ? P.o->web_runtime_dir : P.o->web_dir;
			if (!dir)
				continue;
			snprintf(full, sizeof full, "%s/%s", dir, files[i].file);
			struct stat st;
			if (stat(full, &st) || !S_ISREG(st.st_mode))
				continue;
			/* cross-origin isolated: the page's performance.now() (the tab's timings) gets fine-grained */
			static const char isolate[] = "Cross-Origin-Opener-Policy: same-origin\r\n"
			                              "Cross-Origin-Embedder-Policy: require-corp\r\n";
			int r = lws_serve_http_file(wsi, full, files[i].mime, isolate, (int)sizeof isolate - 1);
			return r < 0 || (r > 0 && lws_http_transaction_completed(wsi)) ? -1 : 0;
		}
	}
	lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, "not a file of kiln's device page");
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* GET /parcel/TOKEN: the body of a parcel, once, to whoever holds the token. */
static int serve_parcel(struct lws *wsi, void **slot, const char *token)
{
	parcel *pc = NULL;
	for (parcel *q = P.parcels; q && !pc; q = q->next)
		if (!q->wsi && rpc_key_equal((const uint8_t *)q->token, 32, (const uint8_t *)token, strlen(token)))
			pc = q;
	if (!pc) {
		lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, "no such parcel");
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	}
	uint8_t buf[LWS_PRE + 512], *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf;
	if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "application/octet-stream", pc->n, &p, end) ||
	    lws_add_http_header_by_name(wsi, (const uint8_t *)"cache-control:", (const uint8_t *)"no-store", 8, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	pc->wsi = wsi;
	*slot = pc;
	lws_callback_on_writable(wsi);
	return 0;
}

/* The next MiB of the parcel a request serves; done: the parcel is freed and the transaction ends. */
static int parcel_writable(struct lws *wsi, void **slot)
{
	parcel *pc = *slot;
	size_t ready = pc->avail - pc->off;
	if (!ready)
		return 0; /* the rest has not arrived: parcel_progress asks again */
	size_t chunk = ready > ((size_t)1 << 20) ? (size_t)1 << 20 : ready;
	bool last = pc->off + chunk == pc->n;
	/* lws_write wants LWS_PRE bytes before the data: the bytes already sent, or a copy for the first chunk */
	uint8_t *p = pc->data + pc->off;
	uint8_t *tmp = NULL;
	if (pc->off < LWS_PRE) {
		if (!(tmp = malloc(LWS_PRE + chunk)))
			return -1;
		memcpy(tmp + LWS_PRE, p, chunk);
		p = tmp + LWS_PRE;
	}
	int w = lws_write(wsi, p, chunk, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP);
	free(tmp);
	if (w < (int)chunk)
		return -1;
	pc->off += chunk;
	if (!last) {
		lws_callback_on_writable(wsi);
		return 0;
	}
	parcel_free(pc); /* fetched once; the connection may live on (keep-alive) */
	*slot = NULL;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int on_web(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	/* user is the connection's slot only for the HTTP and WebSocket reasons below (not, e.g.,
	 * the FILTER ones): read it inside their cases. It holds a conn (WebSocket) or the parcel
	 * an HTTP request serves; both begin with their kind. */
	conn **cp = user;
	conn *c = NULL;
	if (reason == LWS_CALLBACK_RECEIVE || reason == LWS_CALLBACK_SERVER_WRITEABLE || reason == LWS_CALLBACK_CLOSED)
		c = cp && *cp && (*cp)->kind == K_CONN ? *cp : NULL;
	switch (reason) {
	case LWS_CALLBACK_HTTP:
		if (in && !strncmp(in, "/parcel/", 8) && user)
			return serve_parcel(wsi, user, (const char *)in + 8);
		return serve_file(wsi, in ? (const char *)in : "/");
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (user && *(void **)user && ((parcel *)*(void **)user)->kind == K_PARCEL)
			return parcel_writable(wsi, user);
		return 0;
	case LWS_CALLBACK_CLOSED_HTTP:
		if (user && *(void **)user && ((parcel *)*(void **)user)->kind == K_PARCEL) {
			parcel *pc = *(void **)user;
			if (pc->source) { /* its client is still sending into that buffer: it keeps it */
				pc->source->filling = NULL;
				pc->data = NULL;
			}
			parcel_free(pc);
			*(void **)user = NULL;
		}
		return 0;
	case LWS_CALLBACK_HTTP_FILE_COMPLETION:
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	case LWS_CALLBACK_ESTABLISHED:
		if (!cp || !(*cp = conn_new(wsi, true)))
			return -1;
		break;
	case LWS_CALLBACK_RECEIVE:
		if (c)
			ws_rx(c, wsi, in, len);
		break;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return c ? writable(c) : 0;
	case LWS_CALLBACK_CLOSED:
		if (c)
			conn_gone(c);
		if (cp)
			*cp = NULL;
		break;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols raw_protocols[] = {
	{"kiln-raw", on_raw, sizeof(conn *), 0, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};
static const struct lws_protocols web_protocols[] = {
	{"kiln-rpc", on_web, sizeof(conn *), 65536, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

int kiln_rpc_proxy(const kiln_rpc_proxy_opts *o)
{
	const char *host = o->host ? o->host : "127.0.0.1"; /* never every interface by default */
	P.o = o;
	P.max = o->max_message ? o->max_message : KILN_RPC_DEFAULT_MAX_MESSAGE;
	lws_set_log_level(LLL_ERR, NULL);
	struct lws_context_creation_info ci = {0};
	ci.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	ci.pt_serv_buf_size = 256 * 1024; /* large reads: a 100 MB upload in few events */
	P.ctx = lws_create_context(&ci);
	if (!P.ctx)
		return rt_error("rpc proxy: libwebsockets cannot start");
	struct lws_context_creation_info raw = {0};
	raw.vhost_name = "kiln-clients";
	raw.port = o->port;
	raw.iface = host;
	raw.protocols = raw_protocols;
	raw.options = LWS_SERVER_OPTION_ADOPT_APPLY_LISTEN_ACCEPT_CONFIG;
	raw.listen_accept_role = "raw-skt";
	raw.listen_accept_protocol = "kiln-raw";
	struct lws_vhost *rv = lws_create_vhost(P.ctx, &raw);
	struct lws_context_creation_info web = {0};
	web.vhost_name = "kiln-devices";
	web.port = o->web_port;
	web.iface = host;
	web.protocols = web_protocols;
	struct lws_vhost *wv = rv ? lws_create_vhost(P.ctx, &web) : NULL;
	if (!rv || !wv) {
		lws_context_destroy(P.ctx);
		return rt_error("rpc proxy: cannot listen on %s ports %d and %d (in use?)", host, o->port, o->web_port);
	}
	if (o->listening)
		o->listening(lws_get_vhost_listen_port(rv), lws_get_vhost_listen_port(wv), o->arg);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	lws_sul_schedule(P.ctx, 0, &P.tick, on_tick, 100 * LWS_US_PER_MS);
	while (!P.stop)
		if (lws_service(P.ctx, 0) < 0)
			break;
	lws_context_destroy(P.ctx);
	while (P.all)
		conn_gone(P.all);
	while (P.parcels)
		parcel_free(P.parcels);
	return 0;
}
