/*
 * onnx.c — reading .onnx files: decode with protobuf-c, then check the model
 * before anything uses it. Decoding runs under an allocator with a byte
 * budget proportional to the file, so a hostile length or count in the file
 * cannot make it allocate more than the file could honestly describe; every
 * later check reads only what decoding produced.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <protobuf-c/protobuf-c.h>

#include "onnx_internal.h"

void *onnx_budget_alloc(void *data, size_t n)
{
	onnx_budget *b = data;
	if (n > b->limit - b->used || n > SIZE_MAX - 16) {
		b->over = true;
		return NULL;
	}
	size_t *p = malloc(n + 16);
	if (!p)
		return NULL;
	p[0] = n;
	b->used += n;
	return (char *)p + 16;
}

void onnx_budget_free(void *data, void *ptr)
{
	if (!ptr)
		return;
	onnx_budget *b = data;
	size_t *p = (size_t *)((char *)ptr - 16);
	b->used -= p[0];
	free(p);
}

/* ---- names: an open-addressing map of value names (the loader's checks and the importer) ---- */

static uint64_t name_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

bool onnx_names_init(onnx_names *s, size_t count)
{
	s->cap = 16;
	while (s->cap < 2 * count + 16)
		s->cap *= 2;
	s->key = calloc(s->cap, sizeof *s->key);
	s->val = calloc(s->cap, sizeof *s->val);
	return s->key && s->val;
}

void onnx_names_free(onnx_names *s)
{
	free(s->key);
	free(s->val);
}

int onnx_names_get(const onnx_names *s, const char *name)
{
	for (size_t i = name_hash(name) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
		if (!s->key[i])
			return -1;
		if (!strcmp(s->key[i], name))
			return s->val[i];
	}
}

bool onnx_names_put(onnx_names *s, const char *name, int value)
{
	size_t i = name_hash(name) & (s->cap - 1);
	for (; s->key[i]; i = (i + 1) & (s->cap - 1))
		if (!strcmp(s->key[i], name))
			return false;
	s->key[i] = name;
	s->val[i] = value;
	return true;
}

/* ---- types ---- */

/* Bytes of one element of an ONNX data type in raw_data; 0 when unknown or not fixed (strings). */
int onnx_elem_bytes(int32_t t)
{
	switch (t) {
	case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
	case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: return 4;
	case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
	case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: return 1;
	case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
	case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: return 2;
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
	case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: case ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX64: return 8;
	case ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX128: return 16;
	default: return 0;
	}
}

const char *onnx_type_name(int32_t t)
{
	static const char *names[] = {"undefined", "float32", "uint8", "int8", "uint16", "int16", "int32", "int64",
	                              "string", "bool", "float16", "float64", "uint32", "uint64", "complex64",
	                              "complex128", "bfloat16"};
	return t >= 0 && t < (int32_t)(sizeof names / sizeof *names) ? names[t] : "unknown";
}

static bool known_type(int32_t t) { return t == ONNX__TENSOR_PROTO__DATA_TYPE__STRING || onnx_elem_bytes(t) > 0; }

/* The element count of dims, or -1 when an extent is negative or the product passes 2^40. */
int64_t onnx_dims_count(size_t n, const int64_t *dims)
{
	int64_t c = 1;
	for (size_t i = 0; i < n; i++)
		if (dims[i] < 0 || __builtin_mul_overflow(c, dims[i], &c) || c > KILN_MAX_ARRAY_BYTES)
			return -1;
	return c;
}

/* ---- checks ---- */

static bool default_domain(const char *d) { return !d || !*d || !strcmp(d, "ai.onnx"); }

/* A path inside the model's folder: relative, no "..", no NUL (the string ends at its first). */
bool onnx_safe_relative(const char *p)
{
	if (!p || !*p || p[0] == '/' || p[0] == '\\')
		return false;
	for (const char *s = p; *s; s++)
		if (s[0] == '.' && s[1] == '.' && (s == p || s[-1] == '/' || s[-1] == '\\') &&
		    (s[2] == 0 || s[2] == '/' || s[2] == '\\'))
			return false;
	return true;
}

static int check_initializer(kiln_ctx *ctx, const char *what, const Onnx__TensorProto *t)
{
	const char *name = t->name ? t->name : "";
	if (!*name)
		return ir_error(ctx, "%s: an initializer has no name", what);
	int32_t dt = t->has_data_type ? t->data_type : 0;
	if (!known_type(dt))
		return ir_error(ctx, "%s: initializer '%s' has data type %d, which ONNX does not define", what, name, dt);
	int64_t n = onnx_dims_count(t->n_dims, t->dims);
	if (n < 0)
		return ir_error(ctx, "%s: initializer '%s' has a negative extent or more than 2^40 elements", what, name);
	if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
		const char *loc = NULL;
		for (size_t i = 0; i < t->n_external_data; i++) {
			const Onnx__StringStringEntryProto *e = t->external_data[i];
			if (e && e->key && !strcmp(e->key, "location"))
				loc = e->value;
		}
		if (!onnx_safe_relative(loc))
			return ir_error(ctx, "%s: initializer '%s' keeps its data in '%s', which is not a relative path inside "
			                "the model's folder", what, name, loc ? loc : "(no location)");
		return 0;
	}
	int eb = onnx_elem_bytes(dt);
	size_t have;
	const char *field;
	if (t->has_raw_data) {
		if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__STRING)
			return ir_error(ctx, "%s: initializer '%s' holds strings in raw_data", what, name);
		if ((uint64_t)t->raw_data.len != (uint64_t)n * (uint64_t)eb)
			return ir_error(ctx, "%s: initializer '%s' (%s, %lld elements) has %zu bytes of raw_data, expected %lld",
			                what, name, onnx_type_name(dt), (long long)n, t->raw_data.len, (long long)(n * eb));
		return 0;
	}
	switch (dt) {
	case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: have = t->n_float_data; field = "float_data"; break;
	case ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX64: have = t->n_float_data / 2; field = "float_data"; break;
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: have = t->n_int64_data; field = "int64_data"; break;
	case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: have = t->n_double_data; field = "double_data"; break;
	case ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX128: have = t->n_double_data / 2; field = "double_data"; break;
	case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
	case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: have = t->n_uint64_data; field = "uint64_data"; break;
	case ONNX__TENSOR_PROTO__DATA_TYPE__STRING: have = t->n_string_data; field = "string_data"; break;
	default: have = t->n_int32_data; field = "int32_data"; break;
	}
	if ((uint64_t)have != (uint64_t)n)
		return ir_error(ctx, "%s: initializer '%s' (%s) has %zu values in %s, expected %lld", what, name,
		                onnx_type_name(dt), have, field, (long long)n);
	return 0;
}

/* A graph input or output: a tensor of a known type, extents known (>= 0) or symbolic. */
static int check_value(kiln_ctx *ctx, const char *what, const char *role, const Onnx__ValueInfoProto *v)
{
	const char *name = v->name ? v->name : "";
	if (!*name)
		return ir_error(ctx, "%s: a graph %s has no name", what, role);
	const Onnx__TypeProto *t = v->type;
	if (!t || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !t->tensor_type)
		return ir_error(ctx, "%s: graph %s '%s' is not a tensor (sequences, maps and optionals are not read)", what,
		                role, name);
	const Onnx__TypeProto__Tensor *tt = t->tensor_type;
	if (!tt->has_elem_type || !known_type(tt->elem_type))
		return ir_error(ctx, "%s: graph %s '%s' has element type %d, which ONNX does not define", what, role, name,
		                tt->has_elem_type ? tt->elem_type : 0);
	for (size_t d = 0; tt->shape && d < tt->shape->n_dim; d++) {
		const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
		if (dim && dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && dim->dim_value < 0)
			return ir_error(ctx, "%s: graph %s '%s' has extent %lld in dimension %zu", what, role, name,
			                (long long)dim->dim_value, d);
	}
	if (tt->shape && tt->shape->n_dim > KILN_MAX_DIMS)
		return ir_error(ctx, "%s: graph %s '%s' has %zu dimensions (at most %d)", what, role, name, tt->shape->n_dim,
		                KILN_MAX_DIMS);
	return 0;
}

/* The model as a whole: versions, domains, values defined before use, types and sizes. */
static int check_model(kiln_ctx *ctx, kiln_onnx_model *m, const char *what)
{
	const Onnx__ModelProto *p = m->proto;
	if (!p->has_ir_version || p->ir_version < 3 || p->ir_version > 10)
		return ir_error(ctx, "%s: IR version %lld; this frontend reads IR versions 3 to 10 (ONNX 1.2 and later)", what,
		                (long long)(p->has_ir_version ? p->ir_version : 0));
	m->opset = -1;
	for (size_t i = 0; i < p->n_opset_import; i++) {
		const Onnx__OperatorSetIdProto *o = p->opset_import[i];
		if (o && default_domain(o->domain))
			m->opset = o->has_version ? (int)(o->version > INT_MAX ? INT_MAX : o->version) : 0;
	}
	if (m->opset < 0)
		return ir_error(ctx, "%s: the model imports no opset of the default ONNX domain", what);
	if (m->opset < KILN_ONNX_MIN_OPSET || m->opset > KILN_ONNX_MAX_OPSET)
		return ir_error(ctx, "%s: opset %d of the default domain; this frontend reads opsets %d to %d", what, m->opset,
		                KILN_ONNX_MIN_OPSET, KILN_ONNX_MAX_OPSET);
	const Onnx__GraphProto *g = p->graph;
	if (!g)
		return ir_error(ctx, "%s: the model has no graph", what);
	if (!g->n_output)
		return ir_error(ctx, "%s: the graph has no outputs", what);
	size_t count = g->n_input + g->n_initializer;
	for (size_t i = 0; i < g->n_node; i++)
		count += g->node[i] ? g->node[i]->n_output : 0;
	onnx_names defined;
	if (!onnx_names_init(&defined, count)) {
		onnx_names_free(&defined);
		return ir_error(ctx, "%s: out of memory", what);
	}
	int rc = 0;
	for (size_t i = 0; i < g->n_initializer && !rc; i++)
		if (!(rc = check_initializer(ctx, what, g->initializer[i])) && !onnx_names_put(&defined, g->initializer[i]->name, 0))
			rc = ir_error(ctx, "%s: two initializers are named '%s'", what, g->initializer[i]->name);
	m->ninputs = 0;
	for (size_t i = 0; i < g->n_input && !rc; i++) {
		if ((rc = check_value(ctx, what, "input", g->input[i])))
			break;
		if (onnx_names_put(&defined, g->input[i]->name, 0))
			m->ninputs++; /* an input that an initializer already names is a default, not an input */
	}
	for (size_t i = 0; i < g->n_node && !rc; i++) {
		const Onnx__NodeProto *n = g->node[i];
		const char *op = n->op_type ? n->op_type : "", *nn = n->name && *n->name ? n->name : "";
		if (!*op) {
			rc = ir_error(ctx, "%s: node %zu%s%s has no operator type", what, i, *nn ? " " : "", nn);
			break;
		}
		char label[160]; /* "Conv" or "Conv conv1": how messages name the node */
		snprintf(label, sizeof label, "%s%s%s", op, *nn ? " " : "", nn);
		if (!default_domain(n->domain)) {
			bool imported = false;
			for (size_t k = 0; k < p->n_opset_import && !imported; k++)
				imported = p->opset_import[k] && p->opset_import[k]->domain && !strcmp(p->opset_import[k]->domain, n->domain);
			if (!imported) {
				rc = ir_error(ctx, "%s: node %zu (%s) is in domain '%s', which the model does not import", what, i, label,
				              n->domain);
				break;
			}
		}
		for (size_t k = 0; k < n->n_input && !rc; k++)
			if (n->input[k] && *n->input[k] && onnx_names_get(&defined, n->input[k]) < 0)
				rc = ir_error(ctx, "%s: node %zu (%s) reads '%s', which no graph input, initializer or earlier node "
				              "defines", what, i, label, n->input[k]);
		for (size_t k = 0; k < n->n_output && !rc; k++)
			if (n->output[k] && *n->output[k] && !onnx_names_put(&defined, n->output[k], 0))
				rc = ir_error(ctx, "%s: node %zu (%s) defines '%s' a second time", what, i, label, n->output[k]);
	}
	for (size_t i = 0; i < g->n_output && !rc; i++)
		if (!(rc = check_value(ctx, what, "output", g->output[i])) && onnx_names_get(&defined, g->output[i]->name) < 0)
			rc = ir_error(ctx, "%s: graph output '%s' is not defined by the graph", what, g->output[i]->name);
	onnx_names_free(&defined);
	return rc;
}

kiln_onnx_model *kiln_onnx_load_bytes(kiln_ctx *ctx, const void *data, size_t size, const char *what)
{
	what = what ? what : "model";
	if (!data && size)
		return ir_error(ctx, "%s: no data (NULL)", what), NULL;
	if ((int64_t)size > KILN_ONNX_MAX_BYTES)
		return ir_error(ctx, "%s: %zu bytes; protobuf files stop at 2 GiB (keep weights in external data)", what,
		                size), NULL;
	kiln_onnx_model *m = calloc(1, sizeof *m);
	if (!m)
		return ir_error(ctx, "%s: out of memory", what), NULL;
	/* decoded messages cost more than their bytes (pointers, structs, 8-byte
	 * integers from 1-byte varints), but a bounded factor more */
	m->spent.limit = 64 * size + ((size_t)64 << 20);
	m->alloc = (ProtobufCAllocator){onnx_budget_alloc, onnx_budget_free, &m->spent};
	m->proto = onnx__model_proto__unpack(&m->alloc, size, data);
	if (!m->proto) {
		if (m->spent.over)
			ir_error(ctx, "%s: decoding would take more than %zu bytes of memory for a %zu-byte file (hostile "
			         "lengths or counts?)", what, m->spent.limit, size);
		else
			ir_error(ctx, "%s: not an ONNX model (the protobuf does not decode: truncated or corrupted?)", what);
		free(m);
		return NULL;
	}
	m->what = strdup(what);
	if (!m->what || check_model(ctx, m, what)) {
		if (!m->what)
			ir_error(ctx, "%s: out of memory", what);
		kiln_onnx_free(m);
		return NULL;
	}
	return m;
}

kiln_onnx_model *kiln_onnx_load(kiln_ctx *ctx, const char *path)
{
	if (!path)
		return ir_error(ctx, "onnx: no path (NULL)"), NULL;
	FILE *f = fopen(path, "rb");
	if (!f)
		return ir_error(ctx, "cannot open '%s': %s", path, strerror(errno)), NULL;
	long n = -1;
	if (!fseek(f, 0, SEEK_END))
		n = ftell(f);
	if (n < 0 || fseek(f, 0, SEEK_SET)) {
		fclose(f);
		return ir_error(ctx, "%s: cannot read (not a regular file?)", path), NULL;
	}
	if ((int64_t)n > KILN_ONNX_MAX_BYTES) {
		fclose(f);
		return ir_error(ctx, "%s: %ld bytes; protobuf files stop at 2 GiB (keep weights in external data)", path, n),
		       NULL;
	}
	uint8_t *data = malloc((size_t)n + 1);
	size_t got = data ? fread(data, 1, (size_t)n, f) : 0;
	fclose(f);
	if (!data || got != (size_t)n) {
		free(data);
		return ir_error(ctx, "%s: read failed", path), NULL;
	}
	kiln_onnx_model *m = kiln_onnx_load_bytes(ctx, data, (size_t)n, path);
	free(data);
	if (m) {
		const char *slash = strrchr(path, '/');
		m->dir = slash ? strndup(path, (size_t)(slash - path + 1)) : strdup("./");
		if (!m->dir) {
			kiln_onnx_free(m);
			return ir_error(ctx, "%s: out of memory", path), NULL;
		}
	}
	return m;
}

void kiln_onnx_free(kiln_onnx_model *m)
{
	if (!m)
		return;
	if (m->proto)
		onnx__model_proto__free_unpacked(m->proto, &m->alloc);
	free(m->dir);
	free(m->what);
	free(m);
}

int kiln_onnx_num_nodes(const kiln_onnx_model *m) { return m ? (int)m->proto->graph->n_node : 0; }
int kiln_onnx_num_inputs(const kiln_onnx_model *m) { return m ? m->ninputs : 0; }
int kiln_onnx_num_outputs(const kiln_onnx_model *m) { return m ? (int)m->proto->graph->n_output : 0; }
int kiln_onnx_num_initializers(const kiln_onnx_model *m) { return m ? (int)m->proto->graph->n_initializer : 0; }
int kiln_onnx_opset(const kiln_onnx_model *m) { return m ? m->opset : 0; }

const char *kiln_onnx_input_name(const kiln_onnx_model *m, int i)
{
	const Onnx__GraphProto *g = m ? m->proto->graph : NULL;
	for (size_t k = 0; g && k < g->n_input; k++) {
		bool init = false;
		for (size_t j = 0; j < g->n_initializer && !init; j++)
			init = !strcmp(g->initializer[j]->name, g->input[k]->name);
		if (!init && i-- == 0)
			return g->input[k]->name;
	}
	return NULL;
}

static void describe_value(const Onnx__ValueInfoProto *v, FILE *out)
{
	const Onnx__TypeProto__Tensor *t = v->type->tensor_type;
	fprintf(out, "  %s: %s [", v->name, onnx_type_name(t->elem_type));
	for (size_t d = 0; t->shape && d < t->shape->n_dim; d++) {
		const Onnx__TensorShapeProto__Dimension *dim = t->shape->dim[d];
		if (d)
			fprintf(out, ", ");
		if (dim && dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
			fprintf(out, "%lld", (long long)dim->dim_value);
		else if (dim && dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && dim->dim_param)
			fprintf(out, "%s", dim->dim_param);
		else
			fprintf(out, "?");
	}
	fprintf(out, "%s\n", t->shape ? "]" : "] (rank unknown)");
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void kiln_onnx_describe(const kiln_onnx_model *m, FILE *out)
{
	const Onnx__ModelProto *p = m->proto;
	const Onnx__GraphProto *g = p->graph;
	fprintf(out, "producer: %s %s\nIR version %lld, opset %d", p->producer_name ? p->producer_name : "?",
	        p->producer_version ? p->producer_version : "", (long long)p->ir_version, m->opset);
	for (size_t i = 0; i < p->n_opset_import; i++)
		if (p->opset_import[i] && !default_domain(p->opset_import[i]->domain))
			fprintf(out, ", %s %lld", p->opset_import[i]->domain, (long long)p->opset_import[i]->version);
	fprintf(out, "\ninputs:\n");
	onnx_names inits;
	if (!onnx_names_init(&inits, g->n_initializer)) {
		onnx_names_free(&inits);
		return;
	}
	for (size_t i = 0; i < g->n_initializer; i++)
		onnx_names_put(&inits, g->initializer[i]->name, 0);
	for (size_t i = 0; i < g->n_input; i++)
		if (onnx_names_get(&inits, g->input[i]->name) < 0)
			describe_value(g->input[i], out);
	fprintf(out, "outputs:\n");
	for (size_t i = 0; i < g->n_output; i++)
		describe_value(g->output[i], out);
	/* node counts by operator, sorted by name */
	const char **ops = malloc(sizeof *ops * (g->n_node ? g->n_node : 1));
	for (size_t i = 0; ops && i < g->n_node; i++)
		ops[i] = g->node[i]->op_type;
	if (ops)
		qsort(ops, g->n_node, sizeof *ops, cmp_str);
	fprintf(out, "nodes: %zu", g->n_node);
	for (size_t i = 0; ops && i < g->n_node;) {
		size_t j = i;
		while (j < g->n_node && !strcmp(ops[j], ops[i]))
			j++;
		fprintf(out, "%s%s x%zu", i ? ", " : " (", ops[i], j - i);
		i = j;
	}
	fprintf(out, "%s\n", g->n_node ? ")" : "");
	free(ops);
	uint64_t bytes = 0;
	size_t external = 0;
	for (size_t i = 0; i < g->n_initializer; i++) {
		const Onnx__TensorProto *t = g->initializer[i];
		if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
			external++;
		else
			bytes += (uint64_t)onnx_dims_count(t->n_dims, t->dims) * (uint64_t)onnx_elem_bytes(t->data_type);
	}
	fprintf(out, "initializers: %zu, %llu bytes inline", g->n_initializer, (unsigned long long)bytes);
	if (external)
		fprintf(out, ", %zu in external data", external);
	fprintf(out, "\n");
	onnx_names_free(&inits);
}
