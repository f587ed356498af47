/*
 * import.c — an ONNX model as a kiln graph: initializers (inline or in
 * external files, read through mmap) become constants, graph inputs get
 * static shapes (symbolic dimensions bound by the caller), nodes and their
 * attributes carry over by name. What the graph's operator table does not
 * support is reported later, by infer, naming the node.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graph/graph.h"
#include "onnx_internal.h"

/* ---- tensors ---- */

static int kiln_type_of(int32_t t, kiln_dtype *out)
{
	switch (t) {
	case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: *out = KILN_F32; return 0;
	case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: *out = KILN_F64; return 0;
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: *out = KILN_I64; return 0;
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: *out = KILN_I32; return 0;
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: *out = KILN_I8; return 0;
	case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: *out = KILN_U8; return 0;
	case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: *out = KILN_BOOLT; return 0;
	}
	return -1;
}

/* Bytes of external data: mmap'd from a file inside the model's folder, range-checked. */
static int external_data(kiln_ctx *ctx, const kiln_onnx_model *m, const Onnx__TensorProto *t, size_t want,
                         void *out)
{
	const char *loc = NULL;
	uint64_t offset = 0, length = want;
	for (size_t i = 0; i < t->n_external_data; i++) {
		const Onnx__StringStringEntryProto *e = t->external_data[i];
		if (!e || !e->key || !e->value)
			continue;
		char *end;
		if (!strcmp(e->key, "location"))
			loc = e->value;
		else if (!strcmp(e->key, "offset") || !strcmp(e->key, "length")) {
			unsigned long long v = strtoull(e->value, &end, 10);
			if (*end || end == e->value || e->value[0] == '-')
				return ir_error(ctx, "%s: tensor '%s': external data %s '%s' is not a number", m->what, t->name,
				                e->key, e->value);
			*(!strcmp(e->key, "offset") ? &offset : &length) = v;
		}
	}
	if (!m->dir)
		return ir_error(ctx, "%s: tensor '%s' keeps its data in '%s': load the model from its file, not from memory",
		                m->what, t->name, loc ? loc : "?");
	if (!loc || !onnx_safe_relative(loc))
		return ir_error(ctx, "%s: tensor '%s': external data location is not a relative path inside the model's folder",
		                m->what, t->name);
	if (length != want)
		return ir_error(ctx, "%s: tensor '%s': external data length %llu, the tensor needs %zu bytes", m->what,
		                t->name, (unsigned long long)length, want);
	char *path = malloc(strlen(m->dir) + strlen(loc) + 1);
	if (!path)
		return ir_error(ctx, "out of memory");
	strcpy(path, m->dir);
	strcat(path, loc);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	int rc = 0;
	if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		rc = ir_error(ctx, "%s: tensor '%s': cannot open its external data '%s'", m->what, t->name, path);
	} else if (offset > (uint64_t)st.st_size || want > (uint64_t)st.st_size - offset) {
		rc = ir_error(ctx, "%s: tensor '%s': bytes %llu..%llu of '%s', which has %lld", m->what, t->name,
		              (unsigned long long)offset, (unsigned long long)(offset + want), path, (long long)st.st_size);
	} else if (want) {
		void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			rc = ir_error(ctx, "%s: tensor '%s': cannot map '%s'", m->what, t->name, path);
		} else {
			memcpy(out, (const uint8_t *)p + offset, want);
			munmap(p, (size_t)st.st_size);
		}
	}
	if (fd >= 0)
		close(fd);
	free(path);
	return rc;
}

/* A TensorProto's elements as compact little-endian data of its kiln dtype, in the arena. */
static int tensor_data(kiln_ctx *ctx, const kiln_onnx_model *m, const Onnx__TensorProto *t, kiln_dtype *dt, int *ndim,
                       int64_t *shape, void **out)
{
	const char *name = t->name ? t->name : "";
	int32_t ot = t->has_data_type ? t->data_type : 0;
	if (kiln_type_of(ot, dt))
		return ir_error(ctx, "%s: tensor '%s' has data type %s, which kiln does not support (float, double, int8, "
		                "uint8, int32, int64, bool)", m->what, name, onnx_type_name(ot));
	if (t->n_dims > KILN_MAX_DIMS)
		return ir_error(ctx, "%s: tensor '%s' has %zu dimensions (at most %d)", m->what, name, t->n_dims,
		                KILN_MAX_DIMS);
	int64_t n = onnx_dims_count(t->n_dims, t->dims);
	size_t eb = kiln_dtype_bytes(*dt);
	if (n < 0 || (uint64_t)n * eb > (uint64_t)KILN_MAX_ARRAY_BYTES)
		return ir_error(ctx, "%s: tensor '%s' has a negative extent or is too large", m->what, name);
	*ndim = (int)t->n_dims;
	if (t->n_dims)
		memcpy(shape, t->dims, sizeof(int64_t) * t->n_dims);
	size_t bytes = (size_t)n * eb;
	uint8_t *d = ir_alloc(ctx, bytes ? bytes : 1);
	*out = d;
	if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
		return external_data(ctx, m, t, bytes, d);
	if (t->has_raw_data) {
		if (t->raw_data.len != bytes)
			return ir_error(ctx, "%s: tensor '%s' has %zu bytes of raw_data, expected %zu", m->what, name,
			                t->raw_data.len, bytes);
		if (bytes)
			memcpy(d, t->raw_data.data, bytes);
		return 0;
	}
	size_t have = ot == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT    ? t->n_float_data
	            : ot == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE   ? t->n_double_data
	            : ot == ONNX__TENSOR_PROTO__DATA_TYPE__INT64    ? t->n_int64_data
	                                                            : t->n_int32_data;
	if (have != (size_t)n)
		return ir_error(ctx, "%s: tensor '%s' holds %zu values, its shape %lld", m->what, name, have, (long long)n);
	for (int64_t i = 0; i < n; i++) {
		switch (ot) {
		case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: ((float *)d)[i] = t->float_data[i]; break;
		case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: ((double *)d)[i] = t->double_data[i]; break;
		case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: ((int64_t *)d)[i] = t->int64_data[i]; break;
		case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: ((int32_t *)d)[i] = t->int32_data[i]; break;
		case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: d[i] = t->int32_data[i] != 0; break;
		default: d[i] = (uint8_t)t->int32_data[i]; break; /* int8, uint8: one value per int32 */
		}
	}
	return 0;
}

static int add_tensor(kiln_graph *g, const kiln_onnx_model *m, const Onnx__TensorProto *t, const char *name)
{
	kiln_dtype dt;
	int ndim;
	int64_t shape[KILN_MAX_DIMS];
	void *data;
	if (tensor_data(g->ctx, m, t, &dt, &ndim, shape, &data))
		return -1;
	int id = gr_add_value(g, name); /* the data is in the arena already: no second copy */
	gr_value *v = &g->values[id];
	v->dtype = dt;
	v->ndim = ndim;
	memcpy(v->shape, shape, sizeof(int64_t) * ndim);
	v->typed = true;
	v->data = data;
	return id;
}

/* ---- inputs with bound shapes ---- */

static int add_input(kiln_graph *g, const kiln_onnx_model *m, const Onnx__ValueInfoProto *v, int nbind,
                     const kiln_input_shape *binds)
{
	const Onnx__TypeProto__Tensor *tt = v->type->tensor_type;
	int id = gr_add_value(g, v->name);
	gr_value *x = &g->values[id];
	x->is_input = true;
	if (kiln_type_of(tt->elem_type, &x->dtype))
		return ir_error(g->ctx, "%s: input '%s' has data type %s, which kiln does not support", m->what, v->name,
		                onnx_type_name(tt->elem_type));
	const kiln_input_shape *bind = NULL;
	for (int i = 0; i < nbind; i++)
		if (binds[i].name && !strcmp(binds[i].name, v->name))
			bind = &binds[i];
	if (!tt->shape && !bind)
		return ir_error(g->ctx, "%s: input '%s' has no shape; give one (--input-shape %s=...)", m->what, v->name,
		                v->name);
	int rank = tt->shape ? (int)tt->shape->n_dim : bind->ndim;
	if (bind && bind->ndim != rank)
		return ir_error(g->ctx, "%s: input '%s' is %d-D, the shape given for it %d-D", m->what, v->name, rank,
		                bind->ndim);
	if (rank > KILN_MAX_DIMS || (bind && (bind->ndim < 0 || bind->ndim > KILN_MAX_DIMS)))
		return ir_error(g->ctx, "%s: input '%s' has too many dimensions", m->what, v->name);
	x->ndim = rank;
	for (int d = 0; d < rank; d++) {
		const Onnx__TensorShapeProto__Dimension *dim = tt->shape ? tt->shape->dim[d] : NULL;
		bool fixed = dim && dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
		if (bind) {
			if (bind->shape[d] < 1)
				return ir_error(g->ctx, "%s: input '%s': extent %lld in dimension %d (empty tensors are not supported)",
				                m->what, v->name, (long long)bind->shape[d], d);
			if (fixed && dim->dim_value != bind->shape[d])
				return ir_error(g->ctx, "%s: input '%s' has extent %lld in dimension %d, the shape given %lld", m->what,
				                v->name, (long long)dim->dim_value, d, (long long)bind->shape[d]);
			x->shape[d] = bind->shape[d];
		} else if (fixed && dim->dim_value > 0) {
			x->shape[d] = dim->dim_value;
		} else {
			const char *sym = dim && dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
			                ? dim->dim_param : "?";
			return ir_error(g->ctx, "%s: input '%s' has a symbolic dimension %d ('%s'); bind it, e.g. "
			                "--input-shape %s=1,3,224,224", m->what, v->name, d, sym, v->name);
		}
	}
	int64_t bytes;
	if (__builtin_mul_overflow(gr_numel(x), (int64_t)kiln_dtype_bytes(x->dtype), &bytes) ||
	    bytes > KILN_MAX_ARRAY_BYTES)
		return ir_error(g->ctx, "%s: input '%s' is too large", m->what, v->name);
	x->typed = true;
	return id;
}

static int add_attr(kiln_graph *g, const kiln_onnx_model *m, int node, const Onnx__AttributeProto *a,
                    const char *label)
{
	const char *name = a->name ? a->name : "";
	gr_attr *x;
	switch (a->type) {
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
		gr_add_attr(g, node, name, GR_INT)->i = a->i;
		return 0;
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
		gr_add_attr(g, node, name, GR_FLOAT)->f = a->f;
		return 0;
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING:
		x = gr_add_attr(g, node, name, GR_STRING);
		x->s = ir_alloc(g->ctx, a->s.len + 1);
		if (a->s.len)
			memcpy((char *)x->s, a->s.data, a->s.len);
		return 0;
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
		if (a->n_ints > 1u << 20)
			break;
		x = gr_add_attr(g, node, name, GR_INTS);
		x->n = (int)a->n_ints;
		x->ints = ir_alloc(g->ctx, sizeof(int64_t) * (a->n_ints + 1));
		if (a->n_ints)
			memcpy(x->ints, a->ints, sizeof(int64_t) * a->n_ints);
		return 0;
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
		if (a->n_floats > 1u << 20)
			break;
		x = gr_add_attr(g, node, name, GR_FLOATS);
		x->n = (int)a->n_floats;
		x->floats = ir_alloc(g->ctx, sizeof(double) * (a->n_floats + 1));
		for (size_t i = 0; i < a->n_floats; i++)
			x->floats[i] = a->floats[i];
		return 0;
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR: {
		if (!a->t)
			break;
		int id = add_tensor(g, m, a->t, ir_fmt(g->ctx, "%s.%s", label, name));
		if (id < 0)
			return -1;
		gr_add_attr(g, node, name, GR_TENSOR)->tensor = id;
		return 0;
	}
	default:
		break;
	}
	return ir_error(g->ctx, "%s: %s: attribute '%s' has a type kiln does not read (type %d: graphs, sparse "
	                "tensors and string lists are not supported)", m->what, label, name, (int)a->type);
}

kiln_graph *kiln_onnx_import(kiln_ctx *ctx, const kiln_onnx_model *m, int nbind, const kiln_input_shape *binds)
{
	if (!m)
		return ir_error(ctx, "onnx import: no model"), NULL;
	if (nbind < 0 || (nbind && !binds))
		return ir_error(ctx, "onnx import: bad input shape list"), NULL;
	const Onnx__GraphProto *gp = m->proto->graph;
	kiln_graph *g = kiln_graph_new(ctx, m->what);
	g->opset = m->opset;
	size_t count = gp->n_input + gp->n_initializer + 16;
	for (size_t i = 0; i < gp->n_node; i++)
		count += gp->node[i]->n_output;
	onnx_names map;
	int rc = onnx_names_init(&map, count) ? 0 : ir_error(ctx, "out of memory");
	for (size_t i = 0; i < gp->n_initializer && !rc; i++) {
		int id = add_tensor(g, m, gp->initializer[i], gp->initializer[i]->name);
		rc = id < 0;
		if (!rc)
			onnx_names_put(&map, gp->initializer[i]->name, id);
	}
	g->inputs = ir_alloc(ctx, sizeof(int) * (gp->n_input + 1));
	for (size_t i = 0; i < gp->n_input && !rc; i++) {
		if (onnx_names_get(&map, gp->input[i]->name) >= 0)
			continue; /* an initializer's default: a constant */
		int id = add_input(g, m, gp->input[i], nbind, binds);
		rc = id < 0;
		if (!rc) {
			onnx_names_put(&map, gp->input[i]->name, id);
			g->inputs[g->ninput++] = id;
		}
	}
	for (int b = 0; b < nbind && !rc; b++) {
		int id = binds[b].name ? onnx_names_get(&map, binds[b].name) : -1;
		if (id < 0 || !g->values[id].is_input)
			rc = ir_error(ctx, "%s: a shape is given for '%s', which is not an input of the model", m->what,
			              binds[b].name ? binds[b].name : "(null)");
	}
	for (size_t i = 0; i < gp->n_node && !rc; i++) {
		const Onnx__NodeProto *n = gp->node[i];
		const char *label = ir_fmt(ctx, "%s%s%s", n->op_type, n->name && *n->name ? " " : "", n->name ? n->name : "");
		if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx")) {
			rc = ir_error(ctx, "%s: node %zu (%s) is in domain '%s', which kiln does not support", m->what, i, label,
			              n->domain);
			break;
		}
		if (n->n_input > 64 || n->n_output > 64) {
			rc = ir_error(ctx, "%s: node %zu (%s) has more than 64 inputs or outputs", m->what, i, label);
			break;
		}
		int in[64], out[64];
		for (size_t k = 0; k < n->n_input; k++)
			in[k] = n->input[k] && *n->input[k] ? onnx_names_get(&map, n->input[k]) : -1;
		for (size_t k = 0; k < n->n_output; k++) {
			out[k] = -1;
			if (n->output[k] && *n->output[k]) {
				out[k] = gr_add_value(g, n->output[k]);
				onnx_names_put(&map, g->values[out[k]].name, out[k]);
			}
		}
		int id = gr_add_node(g, n->name, n->op_type, (int)n->n_input, in, (int)n->n_output, out);
		for (size_t a = 0; a < n->n_attribute && !rc; a++)
			rc = add_attr(g, m, id, n->attribute[a], label);
	}
	g->outputs = ir_alloc(ctx, sizeof(int) * (gp->n_output + 1));
	for (size_t i = 0; i < gp->n_output && !rc; i++) {
		int id = onnx_names_get(&map, gp->output[i]->name);
		if (g->values[id].is_input || g->values[id].producer < 0)
			rc = ir_error(ctx, "%s: graph output '%s' is an input or initializer: nothing computes it", m->what,
			              gp->output[i]->name);
		else {
			g->values[id].is_output = true;
			g->outputs[g->noutput++] = id;
		}
	}
	onnx_names_free(&map);
	return rc ? NULL : g;
}

kiln_array *kiln_onnx_read_tensor(kiln_ctx *ctx, const void *data, size_t size, const char *what)
{
	onnx_budget b = {0, 64 * size + ((size_t)16 << 20), false};
	ProtobufCAllocator alloc = {onnx_budget_alloc, onnx_budget_free, &b};
	what = what ? what : "tensor";
	Onnx__TensorProto *t = data ? onnx__tensor_proto__unpack(&alloc, size, data) : NULL;
	if (!t)
		return ir_error(ctx, "%s: not an ONNX TensorProto (truncated or corrupted?)", what), NULL;
	kiln_onnx_model fake = {.what = (char *)what};
	kiln_dtype dt;
	int ndim;
	int64_t shape[KILN_MAX_DIMS];
	void *d;
	kiln_array *a = NULL;
	if (!tensor_data(ctx, &fake, t, &dt, &ndim, shape, &d)) {
		a = kiln_array_empty(ndim, shape, dt);
		if (!a)
			ir_error(ctx, "%s: %s", what, kiln_rt_last_error());
		else
			memcpy(a->data, d, (size_t)kiln_array_numel(a) * kiln_dtype_bytes(dt));
	}
	onnx__tensor_proto__free_unpacked(t, &alloc);
	return a;
}
