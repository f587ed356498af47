/*
 * proto.c — encoding and decoding RPC message bodies (the format is in proto.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static const char *names[RPC_NUM_TYPES] = {
	[RPC_HELLO] = "HELLO", [RPC_REGISTER] = "REGISTER", [RPC_WELCOME] = "WELCOME", [RPC_ERROR] = "ERROR",
	[RPC_OK] = "OK", [RPC_DEVICES] = "DEVICES", [RPC_DEVICE_LIST] = "DEVICE_LIST", [RPC_UPLOAD] = "UPLOAD",
	[RPC_MODULE] = "MODULE", [RPC_FREE_MODULE] = "FREE_MODULE", [RPC_ALLOC] = "ALLOC", [RPC_ARRAY] = "ARRAY",
	[RPC_FREE_ARRAY] = "FREE_ARRAY", [RPC_WRITE] = "WRITE", [RPC_READ] = "READ", [RPC_DATA] = "DATA",
	[RPC_CALL] = "CALL", [RPC_TIME] = "TIME", [RPC_TIMING] = "TIMING", [RPC_CLOSE] = "CLOSE",
	[RPC_MODEL_LOAD] = "MODEL_LOAD", [RPC_MODEL_INFO] = "MODEL_INFO", [RPC_MODEL_RUN] = "MODEL_RUN",
	[RPC_MODEL_OUTPUTS] = "MODEL_OUTPUTS", [RPC_MODEL_TIME] = "MODEL_TIME", [RPC_FREE_MODEL] = "FREE_MODEL",
	[RPC_PARCEL] = "PARCEL", [RPC_POOL] = "POOL", [RPC_MODEL_STEPS] = "MODEL_STEPS", [RPC_STEP_TIMES] = "STEP_TIMES",
};

const char *rpc_type_name(int type) { return type > 0 && type < RPC_NUM_TYPES ? names[type] : "unknown"; }

/* ---- decoding: a cursor that fails once and stays failed ---- */

typedef struct {
	const uint8_t *p;
	size_t left;
	const char *fail; /* the field that did not fit, or NULL */
} cursor;

static const uint8_t *take(cursor *c, size_t n, const char *field)
{
	if (c->fail || n > c->left) {
		if (!c->fail)
			c->fail = field;
		return NULL;
	}
	const uint8_t *p = c->p;
	c->p += n;
	c->left -= n;
	return p;
}

static uint64_t get_le(cursor *c, int bytes, const char *field)
{
	const uint8_t *p = take(c, (size_t)bytes, field);
	uint64_t v = 0;
	for (int i = 0; p && i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint32_t get_u32(cursor *c, const char *f) { return (uint32_t)get_le(c, 4, f); }

static double get_f64(cursor *c, const char *f)
{
	uint64_t bits = get_le(c, 8, f);
	double d;
	memcpy(&d, &bits, sizeof d);
	return d;
}

static rpc_span get_str(cursor *c, size_t max, const char *field)
{
	uint32_t n = get_u32(c, field);
	rpc_span s = {NULL, 0};
	if (!c->fail && n > max) {
		c->fail = field;
		return s;
	}
	s.p = take(c, n, field);
	s.n = s.p ? n : 0;
	return s;
}

static rpc_span get_bytes(cursor *c, const char *field)
{
	uint64_t n = get_le(c, 8, field);
	rpc_span s = {NULL, 0};
	if (!c->fail && n > c->left) {
		c->fail = field;
		return s;
	}
	s.p = take(c, (size_t)n, field);
	s.n = s.p ? (size_t)n : 0;
	return s;
}

static void get_args(cursor *c, rpc_msg *m)
{
	m->module = get_u32(c, "module");
	m->text = get_str(c, RPC_MAX_NAME, "function name");
	m->nargs = get_u32(c, "argument count");
	if (!c->fail && m->nargs > RPC_MAX_ARGS) {
		c->fail = "argument count";
		return;
	}
	for (uint32_t i = 0; i < m->nargs && !c->fail; i++)
		m->args[i] = get_u32(c, "argument");
}

/* u32 n, bytes[n]: a model's inputs or outputs. */
static void get_io(cursor *c, rpc_msg *m)
{
	m->nio = get_u32(c, "value count");
	if (!c->fail && m->nio > RPC_MAX_IO)
		c->fail = "value count";
	for (uint32_t i = 0; i < m->nio && !c->fail; i++)
		m->io[i] = get_bytes(c, "value");
}

/* u32 n, {io}: a model's input or output descriptions. */
static uint32_t get_infos(cursor *c, kiln_arg_info *info, const char *what)
{
	uint32_t n = get_u32(c, what);
	if (!c->fail && n > RPC_MAX_IO)
		c->fail = what;
	for (uint32_t i = 0; i < n && !c->fail; i++) {
		rpc_span name = get_str(c, sizeof info->name - 1, "name");
		memset(&info[i], 0, sizeof info[i]);
		if (name.p)
			memcpy(info[i].name, name.p, name.n);
		info[i].dtype.code = (uint8_t)get_le(c, 1, "dtype");
		info[i].dtype.bits = (uint8_t)get_le(c, 1, "dtype");
		info[i].dtype.lanes = (uint16_t)get_le(c, 2, "dtype");
		info[i].ndim = (int)get_le(c, 1, "rank");
		if (!c->fail && info[i].ndim > KILN_MAX_DIMS)
			c->fail = "rank";
		for (int d = 0; d < info[i].ndim && !c->fail; d++)
			info[i].shape[d] = (int64_t)get_le(c, 8, "shape");
	}
	return c->fail ? 0 : n;
}

int rpc_decode(const uint8_t *body, size_t n, rpc_msg *m, char *err, size_t errn)
{
	memset(m, 0, sizeof *m);
	cursor c = {body, n, NULL};
	m->type = (int)get_le(&c, 1, "type");
	if (c.fail) {
		snprintf(err, errn, "an empty message");
		return -1;
	}
	switch (m->type) {
	case RPC_HELLO:
	case RPC_POOL:
	case RPC_REGISTER:
		m->magic = get_u32(&c, "magic");
		m->version = (uint32_t)get_le(&c, 2, "version");
		if (!c.fail && m->magic != RPC_MAGIC) {
			snprintf(err, errn, "%s: not a kiln RPC peer (magic %#x)", rpc_type_name(m->type), m->magic);
			return -1;
		}
		m->key = get_str(&c, KILN_RPC_MAX_KEY, "key");
		if (m->type == RPC_REGISTER) {
			m->text = get_str(&c, RPC_MAX_NAME, "description");
			m->flags = (uint8_t)get_le(&c, 1, "flags");
		}
		break;
	case RPC_WELCOME:
		m->version = (uint32_t)get_le(&c, 2, "version");
		m->text = get_str(&c, RPC_MAX_NAME, "description");
		break;
	case RPC_ERROR:
		m->text = get_str(&c, RPC_MAX_NAME, "message");
		break;
	case RPC_OK:
	case RPC_DEVICES:
	case RPC_CLOSE:
		break;
	case RPC_DEVICE_LIST:
		m->ndevices = get_u32(&c, "device count");
		if (!c.fail && m->ndevices > RPC_MAX_DEVICES)
			c.fail = "device count";
		for (uint32_t i = 0; i < m->ndevices && !c.fail; i++) {
			m->dev_target[i] = get_str(&c, 31, "device target");
			m->dev_desc[i] = get_str(&c, RPC_MAX_NAME, "device description");
		}
		break;
	case RPC_UPLOAD:
	case RPC_DATA:
		m->data = get_bytes(&c, "data");
		break;
	case RPC_MODULE:
	case RPC_FREE_MODULE:
		m->module = get_u32(&c, "module");
		break;
	case RPC_ARRAY:
	case RPC_FREE_ARRAY:
	case RPC_READ:
		m->array = get_u32(&c, "array");
		break;
	case RPC_WRITE:
		m->array = get_u32(&c, "array");
		m->data = get_bytes(&c, "data");
		break;
	case RPC_ALLOC:
		m->module = get_u32(&c, "module");
		m->dtype.code = (uint8_t)get_le(&c, 1, "dtype");
		m->dtype.bits = (uint8_t)get_le(&c, 1, "dtype");
		m->dtype.lanes = (uint16_t)get_le(&c, 2, "dtype");
		m->ndim = (int)get_le(&c, 1, "rank");
		if (!c.fail && m->ndim > KILN_MAX_DIMS)
			c.fail = "rank";
		for (int d = 0; d < m->ndim && !c.fail; d++)
			m->shape[d] = (int64_t)get_le(&c, 8, "shape");
		break;
	case RPC_CALL:
		get_args(&c, m);
		break;
	case RPC_TIME:
		get_args(&c, m);
		m->warmup = (int32_t)get_u32(&c, "warmup");
		m->number = (int32_t)get_u32(&c, "number");
		m->repeat = (int32_t)get_u32(&c, "repeat");
		m->min_repeat_ms = get_f64(&c, "min_repeat_ms");
		break;
	case RPC_TIMING:
		m->median_ms = get_f64(&c, "median");
		m->mean_ms = get_f64(&c, "mean");
		m->min_ms = get_f64(&c, "min");
		m->number = (int32_t)get_u32(&c, "number");
		m->nsamples = get_u32(&c, "sample count");
		if (!c.fail && m->nsamples > RPC_MAX_SAMPLES)
			c.fail = "sample count";
		m->samples = take(&c, (size_t)m->nsamples * 8, "samples");
		break;
	case RPC_MODEL_LOAD:
		m->data = get_bytes(&c, "data");
		break;
	case RPC_MODEL_INFO:
		m->model = get_u32(&c, "model");
		m->nin = get_infos(&c, m->in_info, "input count");
		m->nout = get_infos(&c, m->out_info, "output count");
		break;
	case RPC_MODEL_RUN:
		m->model = get_u32(&c, "model");
		get_io(&c, m);
		break;
	case RPC_MODEL_OUTPUTS:
		get_io(&c, m);
		break;
	case RPC_MODEL_TIME:
		m->model = get_u32(&c, "model");
		get_io(&c, m);
		m->warmup = (int32_t)get_u32(&c, "warmup");
		m->number = (int32_t)get_u32(&c, "number");
		m->repeat = (int32_t)get_u32(&c, "repeat");
		m->min_repeat_ms = get_f64(&c, "min_repeat_ms");
		break;
	case RPC_FREE_MODEL:
		m->model = get_u32(&c, "model");
		break;
	case RPC_MODEL_STEPS:
		m->model = get_u32(&c, "model");
		get_io(&c, m);
		m->runs = (int32_t)get_u32(&c, "runs");
		break;
	case RPC_STEP_TIMES: {
		/* every entry checked here, so rpc_step_next walks them without checks */
		m->nsteps = get_u32(&c, "step count");
		if (!c.fail && m->nsteps > RPC_MAX_STEPS)
			c.fail = "step count";
		const uint8_t *from = c.p;
		for (uint32_t i = 0; i < m->nsteps && !c.fail; i++) {
			get_str(&c, RPC_MAX_NAME, "step name");
			get_f64(&c, "step time");
		}
		m->steps = (rpc_span){from, c.fail ? 0 : (size_t)(c.p - from)};
		break;
	}
	case RPC_PARCEL:
		m->text = get_str(&c, 64, "token");
		m->size = get_le(&c, 8, "size");
		break;
	default:
		snprintf(err, errn, "unknown message type %d", m->type);
		return -1;
	}
	if (c.fail) {
		snprintf(err, errn, "%s message: bad or truncated %s", rpc_type_name(m->type), c.fail);
		return -1;
	}
	if (c.left) {
		snprintf(err, errn, "%s message: %zu bytes past its last field", rpc_type_name(m->type), c.left);
		return -1;
	}
	return 0;
}

double rpc_sample(const rpc_msg *m, uint32_t i)
{
	cursor c = {m->samples + 8 * (size_t)i, 8, NULL};
	return i < m->nsamples ? get_f64(&c, "sample") : 0;
}

void rpc_step_next(const rpc_msg *m, size_t *at, rpc_span *name, double *ms)
{
	cursor c = {m->steps.p + *at, m->steps.n - *at, NULL};
	*name = get_str(&c, RPC_MAX_NAME, "step name");
	*ms = get_f64(&c, "step time");
	*at = m->steps.n - c.left;
}

/* ---- encoding ---- */

static void put(rpc_buf *b, const void *d, size_t n)
{
	if (b->oom)
		return;
	if (n > b->cap - b->n) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap - b->n < n && cap < ((size_t)1 << 62))
			cap *= 2;
		uint8_t *p = cap - b->n >= n ? realloc(b->p, cap) : NULL;
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, d, n);
	b->n += n;
}

static void put_le(rpc_buf *b, uint64_t v, int bytes)
{
	uint8_t t[8];
	for (int i = 0; i < bytes; i++)
		t[i] = (uint8_t)(v >> (8 * i));
	put(b, t, (size_t)bytes);
}

void rpc_begin(rpc_buf *b, int type)
{
	b->n = 0;
	b->oom = 0;
	put_le(b, 0, 4); /* the length, written by rpc_end */
	put_le(b, (uint64_t)type, 1);
}

void rpc_u8(rpc_buf *b, uint8_t v) { put_le(b, v, 1); }
void rpc_u16(rpc_buf *b, uint16_t v) { put_le(b, v, 2); }
void rpc_u32(rpc_buf *b, uint32_t v) { put_le(b, v, 4); }
void rpc_i64(rpc_buf *b, int64_t v) { put_le(b, (uint64_t)v, 8); }
void rpc_u64(rpc_buf *b, uint64_t v) { put_le(b, v, 8); }

void rpc_f64(rpc_buf *b, double v)
{
	uint64_t bits;
	memcpy(&bits, &v, sizeof bits);
	put_le(b, bits, 8);
}

void rpc_str(rpc_buf *b, const char *s, size_t n)
{
	put_le(b, n, 4);
	put(b, s, n);
}

void rpc_bytes(rpc_buf *b, const void *d, uint64_t n)
{
	put_le(b, n, 8);
	put(b, d, (size_t)n);
}

void rpc_arg_info(rpc_buf *b, const kiln_arg_info *a)
{
	rpc_str(b, a->name, strnlen(a->name, sizeof a->name - 1));
	put_le(b, a->dtype.code, 1);
	put_le(b, a->dtype.bits, 1);
	put_le(b, a->dtype.lanes, 2);
	put_le(b, (uint64_t)a->ndim, 1);
	for (int d = 0; d < a->ndim; d++)
		put_le(b, (uint64_t)a->shape[d], 8);
}

int rpc_end(rpc_buf *b)
{
	if (b->oom || b->n - 4 > UINT32_MAX)
		return -1;
	uint64_t n = b->n - 4;
	for (int i = 0; i < 4; i++)
		b->p[i] = (uint8_t)(n >> (8 * i));
	return 0;
}

int rpc_error_frame(rpc_buf *b, const char *fmt, va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof msg, fmt, ap);
	rpc_begin(b, RPC_ERROR);
	rpc_str(b, msg, strlen(msg));
	return rpc_end(b);
}

void rpc_buf_free(rpc_buf *b)
{
	free(b->p);
	*b = (rpc_buf){0};
}
