/*
 * test_graph.c — the graph passes on a small residual network written here
 * as an ONNX model (protobuf-c structs, packed): conv + batch norm + relu,
 * conv + residual add + relu, global average pool, flatten, gemm, softmax.
 * Checked: batch norm folds away, each conv takes its epilogue into ONE
 * kernel, the planner reuses memory, and the outputs on llvm, opencl and
 * webgl match the same network written as plain C loops here (nothing
 * shared with kiln's operators). Then hostile plans and inputs.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include "kiln/model.h"
#include "kiln/onnx.h"
#include "kiln/tune.h"
#include "onnx.pb-c.h"
#include "runtime/rt.h"
#include "testutil.h"

enum { C0 = 4, C1 = 16, H = 16, W = 16, NCLS = 3 };

static float w1[C1][C0][3][3], b1[C1], gam[C1], bet[C1], mu[C1], var[C1], w2[C1][C1][3][3], wf[NCLS][C1], bf[NCLS];

static void init_weights(void)
{
	uint64_t s = 12345;
#define RND() ((float)((s = s * 6364136223846793005ull + 1442695040888963407ull) >> 40) / (float)(1 << 24) - 0.5f)
	for (int i = 0; i < C1 * C0 * 9; i++)
		((float *)w1)[i] = RND();
	for (int i = 0; i < C1 * C1 * 9; i++)
		((float *)w2)[i] = RND() * 0.5f;
	for (int i = 0; i < C1; i++) {
		b1[i] = RND();
		gam[i] = 1 + RND();
		bet[i] = RND();
		mu[i] = RND() * 0.2f;
		var[i] = 0.5f + RND() + 0.5f;
	}
	for (int i = 0; i < NCLS * C1; i++)
		((float *)wf)[i] = RND();
	for (int i = 0; i < NCLS; i++)
		bf[i] = RND();
#undef RND
}

/* ---- the network as plain loops ---- */

static void conv3x3(int ci, int co, const float *x, const float *w, const float *b, float *y)
{
	for (int k = 0; k < co; k++)
		for (int i = 0; i < H; i++)
			for (int j = 0; j < W; j++) {
				double acc = b ? b[k] : 0;
				for (int c = 0; c < ci; c++)
					for (int r = 0; r < 3; r++)
						for (int q = 0; q < 3; q++) {
							int ii = i + r - 1, jj = j + q - 1;
							if (ii >= 0 && ii < H && jj >= 0 && jj < W)
								acc += (double)x[(c * H + ii) * W + jj] * w[((k * ci + c) * 3 + r) * 3 + q];
						}
				y[(k * H + i) * W + j] = (float)acc;
			}
}

static void reference(const float *x, float *out)
{
	static float c1[C1 * H * W], r1[C1 * H * W], c2[C1 * H * W];
	conv3x3(C0, C1, x, &w1[0][0][0][0], b1, c1);
	for (int k = 0; k < C1; k++)
		for (int p = 0; p < H * W; p++) {
			float v = (c1[k * H * W + p] - mu[k]) / sqrtf(var[k] + 1e-5f) * gam[k] + bet[k];
			r1[k * H * W + p] = v > 0 ? v : 0;
		}
	conv3x3(C1, C1, r1, &w2[0][0][0][0], NULL, c2);
	double pooled[C1];
	for (int k = 0; k < C1; k++) {
		double s = 0;
		for (int p = 0; p < H * W; p++) {
			float v = c2[k * H * W + p] + r1[k * H * W + p];
			s += v > 0 ? v : 0;
		}
		pooled[k] = s / (H * W);
	}
	double logit[NCLS], mx = -1e300, sum = 0;
	for (int n = 0; n < NCLS; n++) {
		logit[n] = bf[n];
		for (int k = 0; k < C1; k++)
			logit[n] += pooled[k] * wf[n][k];
		mx = logit[n] > mx ? logit[n] : mx;
	}
	for (int n = 0; n < NCLS; n++)
		sum += exp(logit[n] - mx);
	for (int n = 0; n < NCLS; n++)
		out[n] = (float)(exp(logit[n] - mx) / sum);
}

/* ---- the network as ONNX ---- */

static Onnx__TensorProto *tensor(const char *name, int nd, const int64_t *dims, const float *data)
{
	Onnx__TensorProto *t = calloc(1, sizeof *t);
	onnx__tensor_proto__init(t);
	t->name = (char *)name;
	t->has_data_type = 1;
	t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
	t->n_dims = (size_t)nd;
	t->dims = (int64_t *)dims;
	int64_t n = 1;
	for (int i = 0; i < nd; i++)
		n *= dims[i];
	t->n_float_data = (size_t)n;
	t->float_data = (float *)data;
	return t;
}

static Onnx__AttributeProto *attr_ints(const char *name, int n, const int64_t *v)
{
	Onnx__AttributeProto *a = calloc(1, sizeof *a);
	onnx__attribute_proto__init(a);
	a->name = (char *)name;
	a->has_type = 1;
	a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
	a->n_ints = (size_t)n;
	a->ints = (int64_t *)v;
	return a;
}

static Onnx__AttributeProto *attr_int(const char *name, int64_t v)
{
	Onnx__AttributeProto *a = calloc(1, sizeof *a);
	onnx__attribute_proto__init(a);
	a->name = (char *)name;
	a->has_type = 1;
	a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
	a->has_i = 1;
	a->i = v;
	return a;
}

static Onnx__NodeProto *node(const char *op, int nin, const char **in, const char *out, int nattr,
                             Onnx__AttributeProto **attrs)
{
	Onnx__NodeProto *n = calloc(1, sizeof *n);
	onnx__node_proto__init(n);
	n->op_type = (char *)op;
	n->n_input = (size_t)nin;
	n->input = (char **)in;
	n->n_output = 1;
	n->output = calloc(1, sizeof(char *));
	n->output[0] = (char *)out;
	n->n_attribute = (size_t)nattr;
	n->attribute = attrs;
	return n;
}

static Onnx__ValueInfoProto *value(const char *name, int nd, const int64_t *dims)
{
	Onnx__ValueInfoProto *v = calloc(1, sizeof *v);
	onnx__value_info_proto__init(v);
	v->name = (char *)name;
	Onnx__TypeProto *t = calloc(1, sizeof *t);
	onnx__type_proto__init(t);
	Onnx__TypeProto__Tensor *tt = calloc(1, sizeof *tt);
	onnx__type_proto__tensor__init(tt);
	tt->has_elem_type = 1;
	tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
	Onnx__TensorShapeProto *sh = calloc(1, sizeof *sh);
	onnx__tensor_shape_proto__init(sh);
	sh->n_dim = (size_t)nd;
	sh->dim = calloc((size_t)nd, sizeof *sh->dim);
	for (int i = 0; i < nd; i++) {
		sh->dim[i] = calloc(1, sizeof **sh->dim);
		onnx__tensor_shape_proto__dimension__init(sh->dim[i]);
		sh->dim[i]->value_case = dims[i] > 0 ? ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
		                                     : ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
		if (dims[i] > 0)
			sh->dim[i]->dim_value = dims[i];
		else
			sh->dim[i]->dim_param = "N";
	}
	tt->shape = sh;
	t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
	t->tensor_type = tt;
	v->type = t;
	return v;
}

/* Keeps t's data in weights.bin at offset (ONNX external data) instead of inline. */
static void make_external(Onnx__TensorProto *t, const char *offset, const char *length)
{
	static Onnx__StringStringEntryProto e[2][3];
	static Onnx__StringStringEntryProto *ep[2][3];
	static int k;
	int i = k++ % 2;
	const char *kv[3][2] = {{"location", "weights.bin"}, {"offset", offset}, {"length", length}};
	for (int j = 0; j < 3; j++) {
		onnx__string_string_entry_proto__init(&e[i][j]);
		e[i][j].key = (char *)kv[j][0];
		e[i][j].value = (char *)kv[j][1];
		ep[i][j] = &e[i][j];
	}
	t->n_float_data = 0;
	t->float_data = NULL;
	t->has_data_location = 1;
	t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
	t->n_external_data = 3;
	t->external_data = ep[i];
}

/*
 * A model of one graph (IR 7, opset 13) packed into bytes (malloc'ed, *size
 * of them); then what the builders calloc'ed is freed: the nodes with their
 * outputs and attributes, the initializers, the value infos (the arrays of
 * attribute pointers stay the caller's).
 */
static uint8_t *pack_graph(const char *name, size_t nnode, Onnx__NodeProto **nodes, size_t ninit,
                           Onnx__TensorProto **inits, size_t nin, Onnx__ValueInfoProto **ins, size_t nout,
                           Onnx__ValueInfoProto **outs, size_t *size)
{
	Onnx__GraphProto g;
	onnx__graph_proto__init(&g);
	g.name = (char *)name;
	g.n_node = nnode;
	g.node = nodes;
	g.n_initializer = ninit;
	g.initializer = inits;
	g.n_input = nin;
	g.input = ins;
	g.n_output = nout;
	g.output = outs;
	Onnx__OperatorSetIdProto op;
	onnx__operator_set_id_proto__init(&op);
	op.domain = "";
	op.has_version = 1;
	op.version = 13;
	Onnx__OperatorSetIdProto *ops[] = {&op};
	Onnx__ModelProto m;
	onnx__model_proto__init(&m);
	m.has_ir_version = 1;
	m.ir_version = 7;
	m.n_opset_import = 1;
	m.opset_import = ops;
	m.graph = &g;
	*size = onnx__model_proto__get_packed_size(&m);
	uint8_t *buf = malloc(*size);
	onnx__model_proto__pack(&m, buf);
	/* the structs only point at static data: free what calloc made */
	for (size_t i = 0; i < nnode; i++) {
		free(nodes[i]->output);
		for (size_t a = 0; a < nodes[i]->n_attribute; a++)
			free(nodes[i]->attribute[a]);
		free(nodes[i]);
	}
	for (size_t i = 0; i < ninit; i++)
		free(inits[i]);
	for (size_t i = 0; i < nin + nout; i++) {
		Onnx__ValueInfoProto *v = i < nin ? ins[i] : outs[i - nin];
		Onnx__TensorShapeProto *sh = v->type->tensor_type->shape;
		for (size_t d = 0; d < sh->n_dim; d++)
			free(sh->dim[d]);
		free(sh->dim), free(sh), free(v->type->tensor_type), free(v->type), free(v);
	}
	return buf;
}

/* The packed model; batch < 0 leaves the batch dimension symbolic; external:
 * w1 and w2 kept in weights.bin beside the model (w1 at 0, w2 after it). */
static uint8_t *model_bytes_ext(size_t *size, int batch, bool external)
{
	static const int64_t dw1[] = {C1, C0, 3, 3}, dc[] = {C1}, dw2[] = {C1, C1, 3, 3}, dwf[] = {NCLS, C1},
	                     dbf[] = {NCLS}, pads[] = {1, 1, 1, 1};
	static const char *in_c1[] = {"x", "w1", "b1"}, *in_bn[] = {"c1", "gamma", "beta", "mean", "var"},
	                  *in_r1[] = {"bn"}, *in_c2[] = {"r1", "w2"}, *in_add[] = {"c2", "r1"}, *in_r2[] = {"a"},
	                  *in_gap[] = {"r2"}, *in_fl[] = {"gap"}, *in_gemm[] = {"f", "wf", "bf"}, *in_sm[] = {"logits"};
	Onnx__AttributeProto **pa1 = calloc(1, sizeof *pa1), **pa2 = calloc(1, sizeof *pa2),
	                     **ga = calloc(1, sizeof *ga), **sa = calloc(1, sizeof *sa);
	pa1[0] = attr_ints("pads", 4, pads);
	pa2[0] = attr_ints("pads", 4, pads);
	ga[0] = attr_int("transB", 1);
	sa[0] = attr_int("axis", 1);
	Onnx__NodeProto *nodes[] = {
		node("Conv", 3, in_c1, "c1", 1, pa1),        node("BatchNormalization", 5, in_bn, "bn", 0, NULL),
		node("Relu", 1, in_r1, "r1", 0, NULL),       node("Conv", 2, in_c2, "c2", 1, pa2),
		node("Add", 2, in_add, "a", 0, NULL),        node("Relu", 1, in_r2, "r2", 0, NULL),
		node("GlobalAveragePool", 1, in_gap, "gap", 0, NULL), node("Flatten", 1, in_fl, "f", 0, NULL),
		node("Gemm", 3, in_gemm, "logits", 1, ga),   node("Softmax", 1, in_sm, "y", 1, sa),
	};
	Onnx__TensorProto *inits[] = {
		tensor("w1", 4, dw1, &w1[0][0][0][0]), tensor("b1", 1, dc, b1), tensor("gamma", 1, dc, gam),
		tensor("beta", 1, dc, bet), tensor("mean", 1, dc, mu), tensor("var", 1, dc, var),
		tensor("w2", 4, dw2, &w2[0][0][0][0]), tensor("wf", 2, dwf, &wf[0][0]), tensor("bf", 1, dbf, bf),
	};
	if (external) {
		static char o2[32], l1[32], l2[32];
		snprintf(l1, sizeof l1, "%zu", sizeof w1);
		snprintf(o2, sizeof o2, "%zu", sizeof w1);
		snprintf(l2, sizeof l2, "%zu", sizeof w2);
		make_external(inits[0], "0", l1);
		make_external(inits[6], o2, l2);
	}
	int64_t xd[] = {batch, C0, H, W}, yd[] = {batch, NCLS};
	Onnx__ValueInfoProto *ins[] = {value("x", 4, xd)}, *outs[] = {value("y", 2, yd)};
	uint8_t *buf = pack_graph("residual", sizeof nodes / sizeof *nodes, nodes, sizeof inits / sizeof *inits, inits, 1, ins,
	                          1, outs, size);
	free(pa1), free(pa2), free(ga), free(sa);
	return buf;
}

static uint8_t *model_bytes(size_t *size, int batch) { return model_bytes_ext(size, batch, false); }

/* The graph of packed model bytes (freed here), imported. */
static kiln_graph *import_bytes(kiln_ctx *ctx, uint8_t *bytes, size_t n, const char *name)
{
	kiln_onnx_model *om = kiln_onnx_load_bytes(ctx, bytes, n, name);
	free(bytes);
	ck_assert_msg(om, "%s", kiln_error(ctx));
	kiln_graph *g = kiln_onnx_import(ctx, om, 0, NULL);
	kiln_onnx_free(om);
	ck_assert_msg(g, "%s", kiln_error(ctx));
	return g;
}

/* Compiles the network for target: the module, and the graph in *gout. */
static kiln_module *compile(kiln_ctx *ctx, const char *target, kiln_graph **gout)
{
	size_t n;
	uint8_t *bytes = model_bytes(&n, 1);
	kiln_graph *g = import_bytes(ctx, bytes, n, "residual.onnx");
	kiln_module *m = kiln_graph_compile(g, target, NULL);
	ck_assert_msg(m, "%s", kiln_error(ctx));
	*gout = g;
	return m;
}

static const char *targets[] = {"llvm", "opencl", "webgl"};

/* Compiles g for target; *text gets the graph printed after each pass (free it). */
static kiln_module *compile_printed(kiln_ctx *ctx, kiln_graph *g, const char *target, char **text)
{
	size_t len = 0;
	*text = NULL;
	FILE *mem = open_memstream(text, &len);
	kiln_module *mod = kiln_graph_compile(g, target, mem);
	fclose(mem);
	ck_assert_msg(mod, "%s", kiln_error(ctx));
	return mod;
}


/*
 * Two Concats along channels: cat = [relu(conv(x) + b1); conv(u)] with
 * u = sigmoid(x) gathers two kernels' outputs, which the planner places
 * inside it (no copy); u lives while the first input already sits in cat's
 * bytes, so cat's lifetime must start with its first input's or u would be
 * placed over it. cat2 = [conv(u); x] reads the graph input and a value cat
 * already holds, so it stays a copy. y = relu(cat), y2 = relu(cat2).
 */
static uint8_t *concat_model_bytes(size_t *size)
{
	static const int64_t dw1[] = {C1, C0, 3, 3}, dc[] = {C1}, pads[] = {1, 1, 1, 1};
	static const char *in_c1[] = {"x", "w1", "b1"}, *in_r1[] = {"c1"}, *in_u[] = {"x"}, *in_c2[] = {"u", "w1"},
	                  *in_cat[] = {"r1", "c2"}, *in_y[] = {"cat"}, *in_cat2[] = {"c2", "x"}, *in_y2[] = {"cat2"};
	Onnx__AttributeProto *a[4];
	a[0] = attr_ints("pads", 4, pads), a[1] = attr_ints("pads", 4, pads), a[2] = attr_int("axis", 1), a[3] = attr_int("axis", 1);
	Onnx__NodeProto *nodes[] = {
		node("Conv", 3, in_c1, "c1", 1, &a[0]),   node("Relu", 1, in_r1, "r1", 0, NULL),
		node("Sigmoid", 1, in_u, "u", 0, NULL),   node("Conv", 2, in_c2, "c2", 1, &a[1]),
		node("Concat", 2, in_cat, "cat", 1, &a[2]),
		node("Relu", 1, in_y, "y", 0, NULL),      node("Concat", 2, in_cat2, "cat2", 1, &a[3]),
		node("Relu", 1, in_y2, "y2", 0, NULL),
	};
	Onnx__TensorProto *inits[] = {tensor("w1", 4, dw1, &w1[0][0][0][0]), tensor("b1", 1, dc, b1)};
	int64_t xd[] = {1, C0, H, W}, yd[] = {1, 2 * C1, H, W}, y2d[] = {1, C1 + C0, H, W};
	Onnx__ValueInfoProto *ins[] = {value("x", 4, xd)}, *outs[] = {value("y", 4, yd), value("y2", 4, y2d)};
	return pack_graph("concat", sizeof nodes / sizeof *nodes, nodes, 2, inits, 1, ins, 2, outs, size);
}

/*
 * The Concat planned in place: printed so, its kernel gone on llvm (the
 * arena holds it) and kept on opencl and webgl (a buffer per value); the
 * outputs of both Concats, poisoned first, match plain loops on each target.
 */
START_TEST(concat_in_place)
{
	init_weights();
	kiln_ctx *ctx = kiln_ctx_new();
	size_t n;
	uint8_t *bytes = concat_model_bytes(&n);
	kiln_graph *g = import_bytes(ctx, bytes, n, "concat.onnx");
	char *text;
	kiln_module *mod = compile_printed(ctx, g, targets[_i], &text);
	const char *at = strstr(text, ", in place] %cat:");
	ck_assert_msg(at && !strstr(at + 12, "in place"), "want cat, and only cat, in place:\n%.3000s", text);
	free(text);
	/* conv, sigmoid, conv, Concat, Relu, Concat, Relu */
	ck_assert_int_eq(kiln_module_num_functions(mod), _i == 0 ? 6 : 7);
	kiln_model *m = kiln_model_from_module(mod);
	ck_assert_msg(m, "%s", kiln_rt_last_error());
	kiln_array *x = kiln_array_empty(4, (int64_t[]){1, C0, H, W}, KILN_F32);
	kiln_array_fill_random(x, 11, -1, 1);
	ck_assert_int_eq(kiln_model_set_input(m, "x", x), 0);
	for (int o = 0; o < 2; o++) {
		const kiln_array *y = kiln_model_get_output(m, o);
		memset(y->data, 0xff, sizeof(float) * (size_t)kiln_array_numel(y)); /* NaN poison */
	}
	ck_assert_msg(!kiln_model_run(m), "%s", kiln_rt_last_error());
	static float c1[C1 * H * W], c2[C1 * H * W], u[C0 * H * W];
	for (int p = 0; p < C0 * H * W; p++)
		u[p] = 1 / (1 + expf(-((float *)x->data)[p]));
	conv3x3(C0, C1, x->data, &w1[0][0][0][0], b1, c1);
	conv3x3(C0, C1, u, &w1[0][0][0][0], NULL, c2);
	const float *y = kiln_model_get_output(m, 0)->data, *y2 = kiln_model_get_output(m, 1)->data;
	const float *xs = x->data;
	for (int p = 0; p < 2 * C1 * H * W; p++) {
		float v = p < C1 * H * W ? c1[p] : c2[p - C1 * H * W];
		v = v > 0 ? v : 0;
		ck_assert_msg(fabsf(y[p] - v) <= 1e-4f + 1e-4f * fabsf(v), "%s: y[%d] = %g, want %g", targets[_i], p, y[p], v);
	}
	for (int p = 0; p < (C1 + C0) * H * W; p++) {
		float v = p < C1 * H * W ? c2[p] : xs[p - C1 * H * W];
		v = v > 0 ? v : 0;
		ck_assert_msg(fabsf(y2[p] - v) <= 1e-4f + 1e-4f * fabsf(v), "%s: y2[%d] = %g, want %g", targets[_i], p, y2[p],
		              v);
	}
	kiln_array_free(x);
	kiln_model_free(m);
	kiln_ctx_free(ctx);
}
END_TEST

/*
 * A LayerNorm of x [A, B, L] spelled out op by op, as exporters before
 * opset 17 write it: m = ReduceMean(x), d = x - m, v = ReduceMean(d^2) (Pow,
 * or Mul(d, d) when square), n = d / Sqrt(v + eps), then * gamma and + beta
 * (each optional). Over axis 2 (the last, written -1 for m and 2 for v) or
 * axis 1; extra names one more graph output ("m", "d" or NULL).
 */
typedef struct {
	bool square, gamma, beta;
	int axis;
	const char *extra;
} ln_variant;

static float ln_gamma[64], ln_beta[64];
static const float ln_two = 2, ln_eps = 1e-3f;

static uint8_t *layer_norm_bytes(size_t *size, const int64_t *xd, ln_variant v)
{
	static const int64_t last[] = {-1}, third[] = {2}, second[] = {1};
	static const char *in_m[] = {"x"}, *in_d[] = {"x", "m"}, *in_p[] = {"d", "two"}, *in_sq[] = {"d", "d"},
	                  *in_v[] = {"p"}, *in_ve[] = {"v", "eps"}, *in_s[] = {"ve"}, *in_n[] = {"d", "s"};
	static const char *in_g[] = {"n", "gamma"}, *in_b[2];
	static int64_t dl[1];
	dl[0] = xd[2];
	Onnx__AttributeProto *a[2] = {attr_ints("axes", 1, v.axis == 1 ? second : last),
	                              attr_ints("axes", 1, v.axis == 1 ? second : third)};
	Onnx__NodeProto *nodes[9];
	int nn = 0;
	nodes[nn++] = node("ReduceMean", 1, in_m, "m", 1, &a[0]);
	nodes[nn++] = node("Sub", 2, in_d, "d", 0, NULL);
	nodes[nn++] = v.square ? node("Mul", 2, in_sq, "p", 0, NULL) : node("Pow", 2, in_p, "p", 0, NULL);
	nodes[nn++] = node("ReduceMean", 1, in_v, "v", 1, &a[1]);
	nodes[nn++] = node("Add", 2, in_ve, "ve", 0, NULL);
	nodes[nn++] = node("Sqrt", 1, in_s, "s", 0, NULL);
	nodes[nn++] = node("Div", 2, in_n, v.gamma || v.beta ? "n" : "y", 0, NULL);
	if (v.gamma)
		nodes[nn++] = node("Mul", 2, in_g, v.beta ? "g" : "y", 0, NULL);
	in_b[0] = "beta", in_b[1] = v.gamma ? "g" : "n";
	if (v.beta)
		nodes[nn++] = node("Add", 2, in_b, "y", 0, NULL);
	Onnx__TensorProto *inits[4] = {tensor("two", 0, NULL, &ln_two), tensor("eps", 0, NULL, &ln_eps)};
	int ni = 2;
	if (v.gamma)
		inits[ni++] = tensor("gamma", 1, dl, ln_gamma);
	if (v.beta)
		inits[ni++] = tensor("beta", 1, dl, ln_beta);
	int64_t md[] = {xd[0], v.axis == 1 ? 1 : xd[1], v.axis == 1 ? xd[2] : 1};
	Onnx__ValueInfoProto *ins[] = {value("x", 3, xd)}, *outs[2] = {value("y", 3, xd)};
	if (v.extra)
		outs[1] = !strcmp(v.extra, "m") ? value("m", 3, md) : value(v.extra, 3, xd);
	return pack_graph("layernorm", (size_t)nn, nodes, (size_t)ni, inits, 1, ins, v.extra ? 2 : 1, outs, size);
}

/* Runs m on x (seed) with its outputs poisoned and checks y against plain loops. */
static void layer_norm_matches(kiln_model *m, const int64_t *xd, ln_variant v, uint64_t seed, const char *what)
{
	kiln_array *x = kiln_array_empty(3, xd, KILN_F32);
	kiln_array_fill_random(x, seed, -2, 3);
	ck_assert_int_eq(kiln_model_set_input(m, "x", x), 0);
	const kiln_array *y = kiln_model_get_output(m, 0);
	memset(y->data, 0xff, sizeof(float) * (size_t)kiln_array_numel(y));
	ck_assert_msg(!kiln_model_run(m), "%s: %s", what, kiln_rt_last_error());
	const float *xs = x->data, *ys = kiln_model_get_output(m, 0)->data;
	int64_t A = xd[0], B = xd[1], L = xd[2];
	/* the normalized axis runs with stride `step` through rows starting at `base` */
	int64_t n = v.axis == 1 ? B : L, step = v.axis == 1 ? L : 1;
	for (int64_t a = 0; a < A; a++)
		for (int64_t r = 0; r < (v.axis == 1 ? L : B); r++) {
			int64_t base = v.axis == 1 ? a * B * L + r : (a * B + r) * L;
			double mean = 0, var = 0;
			for (int64_t c = 0; c < n; c++)
				mean += xs[base + c * step];
			mean /= (double)n;
			for (int64_t c = 0; c < n; c++)
				var += (xs[base + c * step] - mean) * (xs[base + c * step] - mean);
			var /= (double)n;
			for (int64_t c = 0; c < n; c++) {
				int64_t at = base + c * step, col = at % L;
				double want = (xs[at] - mean) / sqrt(var + ln_eps);
				if (v.gamma)
					want *= ln_gamma[col];
				if (v.beta)
					want += ln_beta[col];
				float got = ys[at];
				ck_assert_msg(fabs(got - want) <= 1e-4 + 1e-4 * fabs(want), "%s: y[%lld] = %g, want %g", what,
				              (long long)at, got, want);
			}
		}
	kiln_array_free(x);
}

/*
 * The decomposed LayerNorm becomes one LayerNormalization node and one
 * kernel on llvm, opencl and webgl (variants 0-2), with Mul(d, d) and no
 * gamma or beta (3), with beta only (4); it stays as it was when its mean or
 * d is read outside (graph outputs: 5, 6) or it normalizes axis 1 (7).
 * Outputs, poisoned first, against plain loops either way.
 */
START_TEST(layer_norm_pattern)
{
	for (int c = 0; c < 64; c++)
		ln_gamma[c] = 0.5f + (float)(c % 7) * 0.25f, ln_beta[c] = (float)(c % 5) - 2;
	static const ln_variant vs[] = {
		{false, true, true, 2, NULL}, {false, true, true, 2, NULL}, {false, true, true, 2, NULL},
		{true, false, false, 2, NULL}, {false, false, true, 2, NULL}, {false, true, true, 2, "m"},
		{false, true, true, 2, "d"},  {false, true, true, 1, NULL},
	};
	ln_variant v = vs[_i];
	const char *target = _i < 3 ? targets[_i] : "llvm";
	bool fused = _i < 5;
	static const int64_t xd[] = {3, 5, 24};
	kiln_ctx *ctx = kiln_ctx_new();
	size_t n;
	uint8_t *bytes = layer_norm_bytes(&n, xd, v);
	kiln_graph *g = import_bytes(ctx, bytes, n, "layernorm.onnx");
	char *text;
	kiln_module *mod = compile_printed(ctx, g, target, &text);
	const char *after = strstr(text, "// graph after fuse");
	ck_assert_ptr_nonnull(after);
	bool one = strstr(after, "= LayerNormalization(%x:") != NULL && !strstr(after, "ReduceMean");
	ck_assert_msg(fused ? one : !one, "%s, variant %d:\n%.3000s", target, (int)_i, after);
	if (fused)
		ck_assert_int_eq(kiln_module_num_functions(mod), 1);
	free(text);
	kiln_model *m = kiln_model_from_module(mod);
	ck_assert_msg(m, "%s", kiln_rt_last_error());
	layer_norm_matches(m, xd, v, 7 + (uint64_t)_i, target);
	kiln_model_free(m);
	kiln_ctx_free(ctx);
}
END_TEST

/*
 * Two model modules loaded at once whose libraries name the same function
 * (k0_LayerNormalization, compiled for other shapes): each runs its own
 * code. Both came from memory files, and dlopen took the second's name
 * (/proc/self/fd/N, its descriptor's number, free again after the first
 * load) for the first library's and handed that back.
 */
START_TEST(two_modules_loaded)
{
	static const int64_t xa[] = {3, 5, 24}, xb[] = {2, 7, 16};
	const int64_t *xd[2] = {xa, xb};
	kiln_model *m[2];
	for (int k = 0; k < 2; k++) {
		kiln_ctx *ctx = kiln_ctx_new();
		size_t n;
		uint8_t *bytes = layer_norm_bytes(&n, xd[k], (ln_variant){false, true, true, 2, NULL});
		kiln_graph *g = import_bytes(ctx, bytes, n, "layernorm.onnx");
		kiln_module *mod = kiln_graph_compile(g, "llvm", NULL);
		ck_assert_msg(mod, "%s", kiln_error(ctx));
		char path[] = "/tmp/kiln-two-XXXXXX";
		int fd = mkstemp(path);
		ck_assert_int_ge(fd, 0);
		close(fd);
		ck_assert_msg(!kiln_module_save(mod, path), "%s", kiln_rt_last_error());
		kiln_module_free(mod);
		m[k] = kiln_model_load(path);
		unlink(path);
		ck_assert_msg(m[k], "%s", kiln_rt_last_error());
		kiln_ctx_free(ctx);
	}
	for (int k = 0; k < 2; k++)
		layer_norm_matches(m[k], xd[k], (ln_variant){false, true, true, 2, NULL}, 21 + (uint64_t)k,
		                   k ? "second model" : "first model");
	kiln_model_free(m[0]);
	kiln_model_free(m[1]);
}
END_TEST

static Onnx__TensorProto *tensor_i64(const char *name, int n, const int64_t *data)
{
	static int64_t dims[8][1];
	static int k;
	int64_t *d = dims[k++ % 8];
	d[0] = n;
	Onnx__TensorProto *t = tensor(name, 1, d, NULL);
	t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
	t->n_float_data = 0;
	t->n_int64_data = (size_t)n;
	t->int64_data = (int64_t *)data;
	return t;
}

/*
 * Index maps fused into a chain: y = Transpose(Reshape(Slice(sigmoid(x)))) *
 * 0.5 is ONE kernel reading x through the three maps; z =
 * Transpose(MatMul(x, w)) keeps its map apart from the matmul. 3 kernels on
 * llvm, opencl and webgl, the chain's nodes in one; y and z, poisoned first,
 * against plain loops.
 */
/* The kernel each named value of text's graph after fusion is computed in ("[kN] %name:"). */
static int kernel_of(const char *text, const char *name)
{
	const char *after = strstr(text, "// graph after fuse");
	ck_assert_ptr_nonnull(after);
	char key[64];
	snprintf(key, sizeof key, "%%%s:", name);
	const char *at = strstr(after, key);
	ck_assert_msg(at, "%s missing:\n%.3000s", key, after);
	while (at > after && at[-1] != '[')
		at--;
	return atoi(at + 1);
}

START_TEST(index_map_chain)
{
	static const int64_t starts[] = {1}, ends[] = {5}, axes[] = {1}, shape[] = {2, 2, 2, 4}, perm[] = {0, 2, 3, 1},
	                     perm2[] = {0, 2, 1}, dw[] = {4, 3};
	static const float half = 0.5f;
	static float w[4][3];
	for (int i = 0; i < 12; i++)
		((float *)w)[i] = (float)(i % 5) - 1.5f;
	static const char *in_u[] = {"x"}, *in_s[] = {"u", "starts", "ends", "axes"}, *in_r[] = {"s", "shape"}, *in_t[] = {"r"},
	                  *in_y[] = {"t", "half"}, *in_m[] = {"x", "w"}, *in_z[] = {"m"};
	Onnx__AttributeProto *a[2] = {attr_ints("perm", 4, perm), attr_ints("perm", 3, perm2)};
	Onnx__NodeProto *nodes[] = {
		node("Sigmoid", 1, in_u, "u", 0, NULL),
		node("Slice", 4, in_s, "s", 0, NULL),    node("Reshape", 2, in_r, "r", 0, NULL),
		node("Transpose", 1, in_t, "t", 1, &a[0]), node("Mul", 2, in_y, "y", 0, NULL),
		node("MatMul", 2, in_m, "m", 0, NULL),   node("Transpose", 1, in_z, "z", 1, &a[1]),
	};
	Onnx__TensorProto *inits[] = {tensor_i64("starts", 1, starts), tensor_i64("ends", 1, ends),
	                              tensor_i64("axes", 1, axes),     tensor_i64("shape", 4, shape),
	                              tensor("half", 0, NULL, &half),  tensor("w", 2, dw, &w[0][0])};
	int64_t xd[] = {2, 6, 4}, yd[] = {2, 2, 4, 2}, zd[] = {2, 3, 6};
	Onnx__ValueInfoProto *ins[] = {value("x", 3, xd)}, *outs[] = {value("y", 4, yd), value("z", 3, zd)};
	size_t n;
	uint8_t *bytes = pack_graph("maps", 7, nodes, 6, inits, 1, ins, 2, outs, &n);
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_graph *g = import_bytes(ctx, bytes, n, "maps.onnx");
	char *text;
	kiln_module *mod = compile_printed(ctx, g, targets[_i], &text);
	ck_assert_int_eq(kiln_graph_num_groups(g), 3);
	/* which kernel each value is computed in, after fusion */
	const char *after = strstr(text, "// graph after fuse");
	int k_of[7];
	const char *names[] = {"u", "s", "r", "t", "y", "m", "z"};
	for (int i = 0; i < 7; i++)
		k_of[i] = kernel_of(text, names[i]);
	for (int i = 1; i < 5; i++)
		ck_assert_msg(k_of[i] == k_of[0], "%s: %s not in u's kernel:\n%.2000s", targets[_i], names[i], after);
	ck_assert_msg(k_of[5] != k_of[6] && k_of[5] != k_of[0], "%s: the matmul and its map:\n%.2000s", targets[_i], after);
	free(text);
	kiln_model *m = kiln_model_from_module(mod);
	ck_assert_msg(m, "%s", kiln_rt_last_error());
	kiln_array *x = kiln_array_empty(3, xd, KILN_F32);
	kiln_array_fill_random(x, 5, -1, 1);
	ck_assert_int_eq(kiln_model_set_input(m, "x", x), 0);
	for (int o = 0; o < 2; o++) {
		const kiln_array *y = kiln_model_get_output(m, o);
		memset(y->data, 0xff, sizeof(float) * (size_t)kiln_array_numel(y));
	}
	ck_assert_msg(!kiln_model_run(m), "%s", kiln_rt_last_error());
	const float *xs = x->data, *y = kiln_model_get_output(m, 0)->data, *z = kiln_model_get_output(m, 1)->data;
	for (int b = 0; b < 2; b++)
		for (int i2 = 0; i2 < 2; i2++)
			for (int q = 0; q < 4; q++)
				for (int i1 = 0; i1 < 2; i1++) {
					double want = 0.5 / (1 + exp(-(double)xs[(b * 6 + i1 * 2 + i2 + 1) * 4 + q]));
					float got = y[((b * 2 + i2) * 4 + q) * 2 + i1];
					ck_assert_msg(fabs(got - want) <= 1e-6, "%s: y[%d,%d,%d,%d] = %g, want %g", targets[_i], b, i2, q,
					              i1, got, want);
				}
	for (int b = 0; b < 2; b++)
		for (int c = 0; c < 3; c++)
			for (int r = 0; r < 6; r++) {
				double want = 0;
				for (int k = 0; k < 4; k++)
					want += (double)xs[(b * 6 + r) * 4 + k] * w[k][c];
				float got = z[(b * 3 + c) * 6 + r];
				ck_assert_msg(fabs(got - want) <= 1e-5, "%s: z[%d,%d,%d] = %g, want %g", targets[_i], b, c, r, got, want);
			}
	kiln_array_free(x);
	kiln_model_free(m);
	kiln_ctx_free(ctx);
}
END_TEST

/*
 * Diamonds: a matmul's biased output read by GELU's two branches (x *
 * (1 + erf(x / sqrt 2)) / 2) is one kernel with the matmul; a second
 * diamond after it (SiLU: y * sigmoid(y)) is not (one a group); a
 * value whose second reader also takes another kernel's output stays
 * apart (t = tanh(a2), o2 = a2 * (t + exp(x2))); so does a SiLU whose gate
 * is a graph output too (q = sigmoid(p), o3 = p * q). Against plain loops.
 */
START_TEST(diamond_fusion)
{
	enum { R = 8, C = 6, N = 16 };
	static float w[C][N], w2[C][N], b[N], b2[N];
	static const float rt2 = 1.41421356f, one = 1, half = 0.5f;
	for (int i = 0; i < C * N; i++)
		((float *)w)[i] = (float)(i % 7) * 0.1f - 0.3f, ((float *)w2)[i] = (float)(i % 5) * 0.15f - 0.3f;
	for (int i = 0; i < N; i++)
		b[i] = (float)(i % 3) * 0.2f - 0.2f, b2[i] = (float)(i % 4) * 0.1f;
	static const char *in_m[] = {"x", "w"}, *in_a[] = {"m", "b"}, *in_d[] = {"a", "rt2"}, *in_e[] = {"d"},
	                  *in_f[] = {"e", "one"}, *in_g[] = {"a", "f"}, *in_y[] = {"g", "half"}, *in_s[] = {"y"},
	                  *in_z[] = {"y", "s"}, *in_m2[] = {"x", "w2"}, *in_a2[] = {"m2", "b2"}, *in_r[] = {"x2"},
	                  *in_t[] = {"a2"}, *in_u[] = {"t", "r"}, *in_o[] = {"a2", "u"}, *in_p[] = {"x", "w2"},
	                  *in_q[] = {"p"}, *in_o3[] = {"p", "q"};
	Onnx__NodeProto *nodes[] = {
		node("MatMul", 2, in_m, "m", 0, NULL), node("Add", 2, in_a, "a", 0, NULL),   node("Div", 2, in_d, "d", 0, NULL),
		node("Erf", 1, in_e, "e", 0, NULL),    node("Add", 2, in_f, "f", 0, NULL),   node("Mul", 2, in_g, "g", 0, NULL),
		node("Mul", 2, in_y, "y", 0, NULL),    node("Sigmoid", 1, in_s, "s", 0, NULL), node("Mul", 2, in_z, "z", 0, NULL),
		node("MatMul", 2, in_m2, "m2", 0, NULL), node("Add", 2, in_a2, "a2", 0, NULL), node("Exp", 1, in_r, "r", 0, NULL),
		node("Tanh", 1, in_t, "t", 0, NULL),   node("Add", 2, in_u, "u", 0, NULL),   node("Mul", 2, in_o, "o2", 0, NULL),
		node("MatMul", 2, in_p, "p", 0, NULL), node("Sigmoid", 1, in_q, "q", 0, NULL), node("Mul", 2, in_o3, "o3", 0, NULL),
	};
	int64_t wd[] = {C, N}, bd[] = {N}, xd[] = {R, C}, od[] = {R, N};
	Onnx__TensorProto *inits[] = {tensor("w", 2, wd, &w[0][0]), tensor("w2", 2, wd, &w2[0][0]), tensor("b", 1, bd, b),
	                              tensor("b2", 1, bd, b2),       tensor("rt2", 0, NULL, &rt2), tensor("one", 0, NULL, &one),
	                              tensor("half", 0, NULL, &half)};
	Onnx__ValueInfoProto *ins[] = {value("x", 2, xd), value("x2", 2, od)},
	                     *outs[] = {value("z", 2, od), value("o2", 2, od), value("q", 2, od), value("o3", 2, od)};
	size_t n;
	uint8_t *bytes = pack_graph("diamonds", 18, nodes, 7, inits, 2, ins, 4, outs, &n);
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_graph *g = import_bytes(ctx, bytes, n, "diamonds.onnx");
	char *text;
	kiln_module *mod = compile_printed(ctx, g, targets[_i], &text);
	ck_assert_msg(kiln_graph_num_groups(g) == 8, "%s: %d kernels:\n%.3000s", targets[_i], kiln_graph_num_groups(g),
	              strstr(text, "// graph after fuse"));
	static const char *gelu[] = {"a", "d", "e", "f", "g", "y"};
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(kernel_of(text, gelu[i]), kernel_of(text, "m"));
	ck_assert_int_eq(kernel_of(text, "s"), kernel_of(text, "z"));
	ck_assert_int_ne(kernel_of(text, "s"), kernel_of(text, "m"));
	ck_assert_int_eq(kernel_of(text, "a2"), kernel_of(text, "m2"));
	ck_assert_int_ne(kernel_of(text, "t"), kernel_of(text, "m2"));
	ck_assert_int_eq(kernel_of(text, "o2"), kernel_of(text, "t"));
	ck_assert_int_ne(kernel_of(text, "q"), kernel_of(text, "p"));
	free(text);
	kiln_model *m = kiln_model_from_module(mod);
	ck_assert_msg(m, "%s", kiln_rt_last_error());
	kiln_array *x = kiln_array_empty(2, xd, KILN_F32), *x2 = kiln_array_empty(2, od, KILN_F32);
	kiln_array_fill_random(x, 7, -2, 2);
	kiln_array_fill_random(x2, 8, -1, 1);
	ck_assert_int_eq(kiln_model_set_input(m, "x", x), 0);
	ck_assert_int_eq(kiln_model_set_input(m, "x2", x2), 0);
	for (int o = 0; o < 4; o++)
		memset(kiln_model_get_output(m, o)->data, 0xff, sizeof(float) * R * N);
	ck_assert_msg(!kiln_model_run(m), "%s", kiln_rt_last_error());
	const float *xs = x->data, *x2s = x2->data, *z = kiln_model_get_output(m, 0)->data,
	            *o2 = kiln_model_get_output(m, 1)->data, *q = kiln_model_get_output(m, 2)->data,
	            *o3 = kiln_model_get_output(m, 3)->data;
	for (int r = 0; r < R; r++)
		for (int c = 0; c < N; c++) {
			double a = b[c], a2 = b2[c], pw = 0;
			for (int k = 0; k < C; k++)
				a += (double)xs[r * C + k] * w[k][c], a2 += (double)xs[r * C + k] * w2[k][c],
					pw += (double)xs[r * C + k] * w2[k][c];
			double qw = 1 / (1 + exp(-pw));
			ck_assert_msg(fabs(q[r * N + c] - qw) <= 1e-5 && fabs(o3[r * N + c] - pw * qw) <= 1e-5 * (1 + fabs(pw)),
			              "%s: q, o3 [%d,%d] = %g, %g; want %g, %g", targets[_i], r, c, q[r * N + c], o3[r * N + c], qw,
			              pw * qw);
			double y = a * 0.5 * (1 + erf(a / sqrt(2))), zw = y / (1 + exp(-y)),
			       ow = a2 * (tanh(a2) + exp((double)x2s[r * N + c]));
			ck_assert_msg(fabs(z[r * N + c] - zw) <= 1e-5 * (1 + fabs(zw)), "%s: z[%d,%d] = %g, want %g", targets[_i], r,
			              c, z[r * N + c], zw);
			ck_assert_msg(fabs(o2[r * N + c] - ow) <= 1e-5 * (1 + fabs(ow)), "%s: o2[%d,%d] = %g, want %g", targets[_i],
			              r, c, o2[r * N + c], ow);
		}
	kiln_array_free(x);
	kiln_array_free(x2);
	kiln_model_free(m);
	kiln_ctx_free(ctx);
}
END_TEST

START_TEST(residual_network)
{
	init_weights();
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_graph *g;
	kiln_module *mod = compile(ctx, targets[_i], &g);
	/* batch norm folded into the first conv; each conv one kernel with its epilogue */
	ck_assert_int_eq(kiln_graph_num_nodes(g), 9);
	ck_assert_int_eq(kiln_module_num_functions(mod), 6);
	int64_t plain, planned = kiln_graph_planned_bytes(g, &plain);
	ck_assert_msg(planned > 0 && planned < plain, "planned %lld of %lld", (long long)planned, (long long)plain);
	kiln_model *m = kiln_model_from_module(mod);
	ck_assert_msg(m, "%s", kiln_rt_last_error());
	ck_assert_int_eq(kiln_model_num_inputs(m), 1);
	ck_assert_str_eq(kiln_model_input_info(m, 0)->name, "x");
	for (int trial = 0; trial < 2; trial++) {
		kiln_array *x = kiln_array_empty(4, (int64_t[]){1, C0, H, W}, KILN_F32);
		kiln_array_fill_random(x, 7 + (uint64_t)trial, -1, 1);
		ck_assert_int_eq(kiln_model_set_input(m, "x", x), 0);
		const kiln_array *y = kiln_model_get_output(m, 0);
		memset(y->data, 0xff, sizeof(float) * NCLS); /* NaN poison */
		ck_assert_msg(!kiln_model_run(m), "%s", kiln_rt_last_error());
		float want[NCLS];
		reference(x->data, want);
		for (int i = 0; i < NCLS; i++)
			ck_assert_msg(fabsf(((float *)y->data)[i] - want[i]) <= 1e-4f + 1e-4f * fabsf(want[i]),
			              "%s: class %d: got %g, want %g", targets[_i], i, ((float *)y->data)[i], want[i]);
		kiln_array_free(x);
	}
	kiln_model_free(m);
	kiln_ctx_free(ctx);
}
END_TEST

/* Runs m on random input x (seeded) and compares its classes with the plain-C reference. */
static void run_matches_reference(kiln_model *m, uint64_t seed)
{
	kiln_array *x = kiln_array_empty(4, (int64_t[]){1, C0, H, W}, KILN_F32);
	kiln_array_fill_random(x, seed, -1, 1);
	ck_assert_int_eq(kiln_model_set_input(m, "x", x), 0);
	ck_assert_int_eq(kiln_model_run(m), 0);
	float want[NCLS];
	reference(x->data, want);
	for (int i = 0; i < NCLS; i++)
		ck_assert_float_eq_tol(((float *)kiln_model_get_output(m, 0)->data)[i], want[i], 1e-4);
	kiln_array_free(x);
}

static int visit_features(void *out, const kiln_func *f) { return kiln_tune_features(f, out); }

/* Counts functions that compute Winograd's products (the stage kiln_op_conv2d_winograd names). */
static int visit_winograd(void *count, const kiln_func *f)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	kiln_func_print(f, mem);
	fclose(mem);
	*(int *)count += strstr(text, "conv2d.products") != NULL;
	free(text);
	return 0;
}

/*
 * A tuner's look at each group under configurations (kiln_graph_group_visit):
 * a configuration the schedule refuses says why, the features of one are the
 * same every time, visiting gives back what it made (the arena, and the
 * packed weights a matrix product adds to the graph), and the graph then
 * still compiles into the network the reference computes.
 */
START_TEST(group_visits)
{
	init_weights();
	kiln_ctx *ctx = kiln_ctx_new();
	size_t n;
	uint8_t *bytes = model_bytes(&n, 1);
	kiln_graph *g = import_bytes(ctx, bytes, n, "residual.onnx");
	ck_assert_msg(!kiln_graph_optimize(g, NULL), "%s", kiln_error(ctx));
	int tunable = 0;
	for (int i = 0; i < kiln_graph_num_groups(g); i++) {
		const char *task = kiln_graph_group_task(g, i, NULL);
		if (strncmp(task, "Conv", 4) && strncmp(task, "Gemm", 4))
			continue;
		tunable++;
		const kiln_cpu_config cfg = {2, 0, 1, 1, 1}, bad = {2, 0, 1, 1, 3}; /* vectors: the default (the classifier has 3 columns) */
		float first[KILN_TUNE_FEATURES], again[KILN_TUNE_FEATURES];
		ck_assert_msg(!kiln_graph_group_visit(g, i, "llvm", &cfg, visit_features, first), "%s: %s", task,
		              kiln_error(ctx));
		kiln_ctx_mark before = kiln_ctx_save(ctx);
		for (int k = 0; k < 20; k++) {
			ck_assert_int_eq(kiln_graph_group_visit(g, i, "llvm", &cfg, visit_features, again), 0);
			ck_assert_mem_eq(first, again, sizeof first);
		}
		kiln_ctx_mark after = kiln_ctx_save(ctx);
		ck_assert_msg(before.chunk == after.chunk && before.cur == after.cur, "%s: visits grew the arena", task);
		ck_assert_int_eq(kiln_graph_group_visit(g, i, "llvm", &cfg, NULL, NULL), 0);
		ck_assert_int_eq(kiln_graph_group_visit(g, i, "llvm", &bad, NULL, NULL), -1);
		ck_assert_msg(strstr(kiln_error(ctx), "order 3"), "%s", kiln_error(ctx));
		kiln_clear_error(ctx);
		/* the GPU template: these kernels are too small for its tiles; webgl's takes one element per fragment
		 * (blocks need leading axes they divide); an emulated GPU has no template */
		ck_assert_int_eq(kiln_graph_group_visit(g, i, "opencl", &cfg, NULL, NULL), -1);
		ck_assert_msg(strstr(kiln_error(ctx), "the template's tiles do not apply"), "%s", kiln_error(ctx));
		kiln_clear_error(ctx);
		ck_assert_msg(!kiln_graph_group_visit(g, i, "webgl", &(kiln_cpu_config){1, 1, 1, 1, 1}, NULL, NULL), "%s: %s",
		              task, kiln_error(ctx));
		ck_assert_int_eq(kiln_graph_group_visit(g, i, "webgpu-cpu", &cfg, NULL, NULL), -1);
		ck_assert_msg(strstr(kiln_error(ctx), "and webgl (its own)"), "%s", kiln_error(ctx));
		kiln_clear_error(ctx);
	}
	ck_assert_int_eq(tunable, 3); /* two convolutions and the classifier */
	/* on a CPU the second convolution (16 -> 16 channels, 4x4 tiles of 4x4) takes Winograd's form; the first
	 * has too few input channels, and GPU targets keep the direct form */
	int winograd = 0;
	for (int i = 0; i < kiln_graph_num_groups(g); i++)
		ck_assert_int_eq(kiln_graph_group_visit(g, i, "llvm", NULL, visit_winograd, &winograd), 0);
	ck_assert_int_eq(winograd, 1);
	ck_assert_int_eq(kiln_graph_group_visit(g, kiln_graph_num_groups(g), "llvm", NULL, NULL, NULL), -1);
	kiln_clear_error(ctx);
	kiln_model *m = kiln_model_from_module(kiln_graph_compile(g, "llvm", NULL));
	ck_assert_msg(m, "%s %s", kiln_error(ctx), kiln_rt_last_error());
	run_matches_reference(m, 5);
	kiln_model_free(m);
	kiln_ctx_free(ctx);
}
END_TEST

START_TEST(saved_and_loaded)
{
	init_weights();
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_graph *g;
	kiln_module *mod = compile(ctx, "llvm", &g);
	char path[] = "/tmp/kiln-graph-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_msg(!kiln_module_save(mod, path), "%s", kiln_rt_last_error());
	kiln_module_free(mod);
	kiln_model *m = kiln_model_load(path);
	unlink(path);
	ck_assert_msg(m, "%s", kiln_rt_last_error());
	run_matches_reference(m, 3);
	kiln_array *x = kiln_array_empty(4, (int64_t[]){1, C0, H, W}, KILN_F32);
	/* wrong inputs are refused with a message */
	kiln_array *bad = kiln_array_empty(4, (int64_t[]){1, C0, H, W + 1}, KILN_F32);
	ck_assert_int_eq(kiln_model_set_input(m, "x", bad), -1);
	ck_assert_ptr_nonnull(strstr(kiln_rt_last_error(), "another shape"));
	ck_assert_int_eq(kiln_model_set_input(m, "nosuch", x), -1);
	ck_assert_ptr_nonnull(strstr(kiln_rt_last_error(), "no input named 'nosuch' (it has: x)"));
	ck_assert_ptr_null(kiln_model_get_output(m, 5));
	kiln_timing t;
	ck_assert_int_eq(kiln_model_time(m, &(kiln_time_opts){.repeat = 3}, &t), 0);
	ck_assert_int_eq(t.nsamples, 3);
	kiln_timing_free(&t);
	/* each step timed alone and inside whole runs, and the model runs right after */
	int ns = kiln_model_num_steps(m);
	ck_assert_int_gt(ns, 1);
	double *alone = calloc((size_t)ns, sizeof *alone), *in_runs = calloc((size_t)ns, sizeof *in_runs);
	ck_assert_int_eq(kiln_model_step_times(m, 3, alone), 0);
	ck_assert_int_eq(kiln_model_step_times_in_runs(m, 4, in_runs), 0);
	for (int s = 0; s < ns; s++)
		ck_assert_msg(alone[s] > 0 && in_runs[s] > 0, "step %d: %g ms alone, %g in runs", s, alone[s], in_runs[s]);
	run_matches_reference(m, 3);
	ck_assert_int_eq(kiln_model_step_times_in_runs(m, 0, in_runs), -1);
	ck_assert_ptr_nonnull(strstr(kiln_rt_last_error(), "1 to 100000 runs"));
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	ck_assert_int_eq(kiln_model_profile(m, 2, mem), 0);
	fclose(mem);
	ck_assert_msg(strstr(text, "alone ms") && strstr(text, "total"), "%s", text);
	free(text);
	free(alone);
	free(in_runs);
	kiln_array_free(bad);
	kiln_array_free(x);
	kiln_model_free(m);
	kiln_ctx_free(ctx);
}
END_TEST

static int visit_text(void *out, const kiln_func *f)
{
	char **text = out;
	size_t len = 0;
	FILE *mem = open_memstream(text, &len);
	kiln_func_print(f, mem);
	fclose(mem);
	return 0;
}

/* A graph of one Conv (attributes a) of input x (shape xd) by the constant weight w (wd, data) into y (yd), optimized. */
static kiln_graph *one_conv(kiln_ctx *ctx, const int64_t *xd, const int64_t *wd, const float *w, const int64_t *yd,
                            int nattr, Onnx__AttributeProto **a)
{
	static const char *in_c[] = {"x", "w"};
	Onnx__NodeProto *nodes[] = {node("Conv", 2, in_c, "y", nattr, a)};
	Onnx__TensorProto *inits[] = {tensor("w", 4, wd, w)};
	Onnx__ValueInfoProto *ins[] = {value("x", 4, xd)}, *outs[] = {value("y", 4, yd)};
	size_t n;
	uint8_t *bytes = pack_graph("conv", 1, nodes, 1, inits, 1, ins, 1, outs, &n);
	kiln_graph *g = import_bytes(ctx, bytes, n, "conv.onnx");
	ck_assert_msg(!kiln_graph_optimize(g, NULL), "%s", kiln_error(ctx));
	return g;
}

/*
 * Output channels in vector lanes (kpacked) for a 1x1 layer on a 7x7 image,
 * by the target: with 16-lane vectors at any depth; with 8-lane ones only
 * while a block's weight panel (depth x 16 channels) fits half the L1 (32
 * KiB for a CPU given by name, whatever this host has): 64 deep (4 KiB) yes,
 * 512 deep (32 KiB) no, the GEMM form instead. Code is generated for those
 * CPUs, not run.
 */
START_TEST(kpacked_by_target)
{
	static float wk[32 * 512];
	for (int i = 0; i < 32 * 512; i++)
		wk[i] = (float)(i % 7) - 3;
	static const struct {
		int64_t depth;
		const char *target;
		bool kpacked;
	} cases[] = {{64, "llvm -mcpu=haswell", true},
	             {512, "llvm -mcpu=haswell", false},
	             {512, "llvm -mcpu=skylake-avx512", true},
	             {64, "wasm", true}};
	for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
		const int64_t wd[] = {32, cases[k].depth, 1, 1}, xd[] = {1, cases[k].depth, 7, 7}, yd[] = {1, 32, 7, 7};
		kiln_ctx *ctx = kiln_ctx_new();
		kiln_graph *g = one_conv(ctx, xd, wd, wk, yd, 0, NULL);
		char *text = NULL;
		ck_assert_msg(!kiln_graph_group_visit(g, 0, cases[k].target, NULL, visit_text, &text), "%s", kiln_error(ctx));
		ck_assert_msg(!strstr(text, "conv2d.nhwc") == !cases[k].kpacked, "%lld deep on %s: want %s:\n%.3000s",
		              (long long)cases[k].depth, cases[k].target, cases[k].kpacked ? "kpacked" : "the GEMM form", text);
		free(text);
		kiln_ctx_free(ctx);
	}
}
END_TEST

/*
 * A 3x3 layer of 16 channels on a 7x7 image: 4x4 tiles would be 4 (64
 * outputs for 49), so the model compiler takes Winograd F(2x2, 3x3): 16
 * products per tile over 16 tiles (products of 16 cases x 16 channels x 16
 * tiles). Against plain loops.
 */
START_TEST(winograd_small_image)
{
	init_weights();
	static const int64_t dw2[] = {C1, C1, 3, 3}, pads[] = {1, 1, 1, 1}, xd[] = {1, C1, 7, 7};
	Onnx__AttributeProto *a[1] = {attr_ints("pads", 4, pads)};
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_graph *g = one_conv(ctx, xd, dw2, &w2[0][0][0][0], xd, 1, a);
	char *text = NULL;
	ck_assert_int_eq(kiln_graph_group_visit(g, 0, "llvm", NULL, visit_text, &text), 0);
	ck_assert_msg(strstr(text, "allocate conv2d.products[float32 * 4096]"), "want F(2x2, 3x3):\n%.3000s", text);
	free(text);
	kiln_model *m = kiln_model_from_module(kiln_graph_compile(g, "llvm", NULL));
	ck_assert_msg(m, "%s %s", kiln_error(ctx), kiln_rt_last_error());
	kiln_array *x = kiln_array_empty(4, xd, KILN_F32);
	kiln_array_fill_random(x, 3, -1, 1);
	ck_assert_int_eq(kiln_model_set_input(m, "x", x), 0);
	const kiln_array *y = kiln_model_get_output(m, 0);
	memset(y->data, 0xff, sizeof(float) * C1 * 49); /* NaN poison */
	ck_assert_int_eq(kiln_model_run(m), 0);
	const float *xs = x->data, *ys = y->data;
	for (int k = 0; k < C1; k++)
		for (int i = 0; i < 7; i++)
			for (int j = 0; j < 7; j++) {
				double acc = 0;
				for (int c = 0; c < C1; c++)
					for (int r = 0; r < 3; r++)
						for (int q = 0; q < 3; q++) {
							int ii = i + r - 1, jj = j + q - 1;
							if (ii >= 0 && ii < 7 && jj >= 0 && jj < 7)
								acc += (double)xs[(c * 7 + ii) * 7 + jj] * w2[k][c][r][q];
						}
				float got = ys[(k * 7 + i) * 7 + j];
				ck_assert_msg(fabs(got - acc) <= 1e-4 + 1e-4 * fabs(acc), "y[%d, %d, %d] = %g, want %g", k, i, j, got, acc);
			}
	kiln_array_free(x);
	kiln_model_free(m);
	kiln_ctx_free(ctx);
}
END_TEST

/* A symbolic batch must be bound, and binding it builds that batch. */
START_TEST(symbolic_batch)
{
	init_weights();
	kiln_ctx *ctx = kiln_ctx_new();
	size_t n;
	uint8_t *bytes = model_bytes(&n, -1);
	kiln_onnx_model *om = kiln_onnx_load_bytes(ctx, bytes, n, "residual.onnx");
	free(bytes);
	ck_assert_ptr_nonnull(om);
	ck_assert_ptr_null(kiln_onnx_import(ctx, om, 0, NULL));
	ck_assert_ptr_nonnull(strstr(kiln_error(ctx), "symbolic dimension 0 ('N')"));
	kiln_clear_error(ctx);
	kiln_input_shape b = {"x", 4, {2, C0, H, W}};
	kiln_graph *g = kiln_onnx_import(ctx, om, 1, &b);
	ck_assert_msg(g, "%s", kiln_error(ctx));
	kiln_model *m = kiln_model_from_module(kiln_graph_compile(g, "llvm", NULL));
	ck_assert_msg(m, "%s / %s", kiln_error(ctx), kiln_rt_last_error());
	ck_assert_int_eq(kiln_model_output_info(m, 0)->shape[0], 2);
	kiln_model_free(m);
	kiln_onnx_free(om);
	kiln_ctx_free(ctx);
}
END_TEST

/* Every byte of the plan flipped, and every truncation: refused with a message or run correctly, never a crash. */
START_TEST(hostile_plans)
{
	init_weights();
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_graph *g;
	kiln_module *mod = compile(ctx, "llvm", &g);
	rt_blob *plan = NULL;
	for (int i = 0; i < mod->nblob; i++)
		if (!strcmp(mod->blobs[i].name, "graph"))
			plan = &mod->blobs[i];
	ck_assert_ptr_nonnull(plan);
	uint8_t *orig = malloc(plan->size);
	memcpy(orig, plan->data, plan->size);
	size_t size = plan->size;
	/* models over the same module (not owning it), the plan blob changed in place */
	int refused = 0;
	for (size_t cut = 0; cut < size; cut += 1 + size / 200) {
		plan->size = cut;
		kiln_model *m = rt_model_over(mod, false);
		ck_assert_ptr_null(m);
		ck_assert_str_ne(kiln_rt_last_error(), "");
		refused++;
	}
	plan->size = size;
	for (size_t at = 0; at < size; at++) {
		memcpy(plan->data, orig, size);
		plan->data[at] ^= 0x5a;
		kiln_model *m = rt_model_over(mod, false);
		if (m) {
			kiln_array *x = kiln_array_empty(4, (int64_t[]){1, C0, H, W}, KILN_F32);
			kiln_model_set_input_data(m, 0, x->data, sizeof(float) * C0 * H * W);
			kiln_model_run(m);
			kiln_array_free(x);
			kiln_model_free(m);
		}
	}
	memcpy(plan->data, orig, size);
	free(orig);
	ck_assert_int_gt(refused, 10);
	kiln_module_free(mod);
	kiln_ctx_free(ctx);
}
END_TEST

/* Weights in a side file, read with mmap: the same results; a missing, short or escaping file is an error. */
START_TEST(external_data)
{
	init_weights();
	char dir[] = "/tmp/kiln-ext-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	char model[256], weights[256];
	snprintf(model, sizeof model, "%s/model.onnx", dir);
	snprintf(weights, sizeof weights, "%s/weights.bin", dir);
	size_t n;
	uint8_t *bytes = model_bytes_ext(&n, 1, true);
	FILE *f = fopen(model, "wb");
	fwrite(bytes, 1, n, f);
	fclose(f);
	free(bytes);
	kiln_ctx *ctx = kiln_ctx_new();
	/* no side file yet */
	kiln_onnx_model *om = kiln_onnx_load(ctx, model);
	ck_assert_msg(om, "%s", kiln_error(ctx));
	ck_assert_ptr_null(kiln_onnx_import(ctx, om, 0, NULL));
	ck_assert_ptr_nonnull(strstr(kiln_error(ctx), "cannot open its external data"));
	kiln_clear_error(ctx);
	/* a short one */
	f = fopen(weights, "wb");
	fwrite(w1, 1, sizeof w1, f);
	fclose(f);
	ck_assert_ptr_null(kiln_onnx_import(ctx, om, 0, NULL));
	ck_assert_ptr_nonnull(strstr(kiln_error(ctx), "bytes"));
	kiln_clear_error(ctx);
	/* the whole one */
	f = fopen(weights, "wb");
	fwrite(w1, 1, sizeof w1, f);
	fwrite(w2, 1, sizeof w2, f);
	fclose(f);
	kiln_graph *g = kiln_onnx_import(ctx, om, 0, NULL);
	ck_assert_msg(g, "%s", kiln_error(ctx));
	kiln_model *m = kiln_model_from_module(kiln_graph_compile(g, "llvm", NULL));
	ck_assert_msg(m, "%s / %s", kiln_error(ctx), kiln_rt_last_error());
	run_matches_reference(m, 5);
	kiln_model_free(m);
	kiln_onnx_free(om);
	/* from memory, external data has no folder to come from */
	f = fopen(model, "rb");
	bytes = malloc(n);
	ck_assert_uint_eq(fread(bytes, 1, n, f), n);
	fclose(f);
	om = kiln_onnx_load_bytes(ctx, bytes, n, "in memory");
	free(bytes);
	ck_assert_ptr_nonnull(om);
	ck_assert_ptr_null(kiln_onnx_import(ctx, om, 0, NULL));
	ck_assert_ptr_nonnull(strstr(kiln_error(ctx), "load the model from its file"));
	kiln_onnx_free(om);
	kiln_ctx_free(ctx);
	unlink(weights);
	unlink(model);
	rmdir(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("graph");
	TCase *tc = tcase_create("graph");
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, residual_network, 0, 3);
	tcase_add_loop_test(tc, concat_in_place, 0, 3);
	tcase_add_test(tc, saved_and_loaded);
	tcase_add_test(tc, group_visits);
	tcase_add_test(tc, winograd_small_image);
	tcase_add_test(tc, kpacked_by_target);
	tcase_add_test(tc, symbolic_batch);
	tcase_add_test(tc, hostile_plans);
	tcase_add_test(tc, external_data);
	suite_add_tcase(s, tc);
	/* the pattern and index-map passes, and models side by side; their
	 * opencl and webgl runs are "large" (not under valgrind: PoCL's and
	 * Mesa's compilers there cost ~40 s, and the graph code is the llvm runs') */
	TCase *tp = tcase_create("patterns"), *td = tcase_create("patterns_devices");
	tcase_set_timeout(tp, 300);
	tcase_set_timeout(td, 300);
	tcase_set_tags(td, "large");
	tcase_add_loop_test(tp, layer_norm_pattern, 0, 1);
	tcase_add_loop_test(tp, layer_norm_pattern, 3, 8);
	tcase_add_loop_test(td, layer_norm_pattern, 1, 3);
	tcase_add_test(tp, two_modules_loaded);
	tcase_add_loop_test(tp, index_map_chain, 0, 1);
	tcase_add_loop_test(td, index_map_chain, 1, 3);
	tcase_add_loop_test(tp, diamond_fusion, 0, 1);
	tcase_add_loop_test(td, diamond_fusion, 1, 3);
	suite_add_tcase(s, tp);
	suite_add_tcase(s, td);
	return tu_run_suite(s);
}
