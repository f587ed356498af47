/*
 * test_onnx.c — the ONNX frontend's reader: every model of Debian's
 * libonnx-testdata loads, or is refused for a reason that names a real limit
 * (an opset before 7, a sequence or optional input, a training-only domain);
 * crafted models (packed with the same protobuf-c code) are refused with the
 * right message for each defect; every truncation and many corruptions of a
 * real model are refused or read, never a crash (ASan and valgrind run this).
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/onnx.h"
#include "onnx.pb-c.h"
#include "testutil.h"

#define TESTDATA "/usr/share/libonnx-testdata/data"

static int loaded, refused;

/* Loads every model.onnx under dir/ * / (one level of test folders). */
static void load_all(const char *dir)
{
	DIR *d = opendir(dir);
	ck_assert_msg(d != NULL, "%s is missing: apt install libonnx-testdata", dir);
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		char path[1024];
		snprintf(path, sizeof path, "%s/%s/model.onnx", dir, e->d_name);
		FILE *f = fopen(path, "rb");
		if (!f)
			continue;
		fclose(f);
		kiln_ctx *ctx = kiln_ctx_new();
		kiln_onnx_model *m = kiln_onnx_load(ctx, path);
		if (m) {
			loaded++;
			ck_assert_int_ge(kiln_onnx_num_outputs(m), 1);
			char *text = NULL;
			size_t len = 0;
			FILE *out = open_memstream(&text, &len);
			kiln_onnx_describe(m, out);
			fclose(out);
			ck_assert_msg(strstr(text, "outputs:"), "%s", text);
			free(text);
		} else {
			refused++;
			const char *why = kiln_error(ctx);
			ck_assert_msg(strstr(why, "of the default domain; this frontend reads opsets 7 to 17") ||
			                  strstr(why, "is not a tensor (sequences, maps and optionals are not read)") ||
			                  strstr(why, "imports no opset of the default ONNX domain"),
			              "%s refused for an unexpected reason: %s", path, why);
		}
		kiln_onnx_free(m);
		kiln_ctx_free(ctx);
	}
	closedir(d);
}

START_TEST(testdata_models)
{
	loaded = refused = 0;
	static const char *sets[] = {"node", "pytorch-converted", "pytorch-operator", "simple"};
	for (int i = 0; i < 4; i++) {
		char dir[256];
		snprintf(dir, sizeof dir, "%s/%s", TESTDATA, sets[i]);
		load_all(dir);
	}
	/* 903 of 1,072 here; the rest use opsets 1 and 6, sequences or optionals, or training ops */
	ck_assert_msg(loaded >= 850 && refused <= 200, "loaded %d, refused %d", loaded, refused);
}
END_TEST

/* A model to break: Y = Relu(X) with one initializer W [2, 3] of float32. */
typedef struct {
	Onnx__ModelProto model;
	Onnx__GraphProto graph;
	Onnx__OperatorSetIdProto opset, *opsets[1];
	Onnx__NodeProto node, *nodes[1];
	char *node_in[1], *node_out[1];
	Onnx__ValueInfoProto x, y, *ins[1], *outs[1];
	Onnx__TypeProto tx, ty;
	Onnx__TypeProto__Tensor ttx, tty;
	Onnx__TensorProto w, *inits[1];
	int64_t wdims[2];
	float wdata[6];
	Onnx__StringStringEntryProto loc, *locs[1];
} crafted;

static void craft(crafted *c)
{
	memset(c, 0, sizeof *c);
	onnx__model_proto__init(&c->model);
	onnx__graph_proto__init(&c->graph);
	onnx__operator_set_id_proto__init(&c->opset);
	onnx__node_proto__init(&c->node);
	onnx__value_info_proto__init(&c->x);
	onnx__value_info_proto__init(&c->y);
	onnx__type_proto__init(&c->tx);
	onnx__type_proto__init(&c->ty);
	onnx__type_proto__tensor__init(&c->ttx);
	onnx__type_proto__tensor__init(&c->tty);
	onnx__tensor_proto__init(&c->w);
	onnx__string_string_entry_proto__init(&c->loc);
	c->model.has_ir_version = 1;
	c->model.ir_version = 8;
	c->opset.has_version = 1;
	c->opset.version = 13;
	c->opset.domain = "";
	c->opsets[0] = &c->opset;
	c->model.n_opset_import = 1;
	c->model.opset_import = c->opsets;
	c->model.graph = &c->graph;
	c->node.op_type = "Relu";
	c->node_in[0] = "X";
	c->node_out[0] = "Y";
	c->node.n_input = c->node.n_output = 1;
	c->node.input = c->node_in;
	c->node.output = c->node_out;
	c->nodes[0] = &c->node;
	c->graph.n_node = 1;
	c->graph.node = c->nodes;
	c->ttx.has_elem_type = c->tty.has_elem_type = 1;
	c->ttx.elem_type = c->tty.elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
	c->tx.value_case = c->ty.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
	c->tx.tensor_type = &c->ttx;
	c->ty.tensor_type = &c->tty;
	c->x.name = "X";
	c->x.type = &c->tx;
	c->y.name = "Y";
	c->y.type = &c->ty;
	c->ins[0] = &c->x;
	c->outs[0] = &c->y;
	c->graph.n_input = c->graph.n_output = 1;
	c->graph.input = c->ins;
	c->graph.output = c->outs;
	c->w.name = "W";
	c->w.has_data_type = 1;
	c->w.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
	c->wdims[0] = 2;
	c->wdims[1] = 3;
	c->w.n_dims = 2;
	c->w.dims = c->wdims;
	c->w.n_float_data = 6;
	c->w.float_data = c->wdata;
	c->inits[0] = &c->w;
	c->graph.n_initializer = 1;
	c->graph.initializer = c->inits;
}

/* Packs c and loads it; returns the loader's error ("" when it loaded). */
static const char *load_crafted(crafted *c, kiln_ctx *ctx)
{
	size_t n = onnx__model_proto__get_packed_size(&c->model);
	uint8_t *buf = malloc(n ? n : 1);
	onnx__model_proto__pack(&c->model, buf);
	kiln_onnx_model *m = kiln_onnx_load_bytes(ctx, buf, n, "crafted");
	free(buf);
	kiln_onnx_free(m);
	return m ? "" : kiln_error(ctx);
}

#define EXPECT(c, needle)                                                                                          \
	do {                                                                                                             \
		kiln_ctx *ctx_ = kiln_ctx_new();                                                                             \
		const char *why_ = load_crafted((c), ctx_);                                                                  \
		ck_assert_msg(strstr(why_, (needle)) && (*(needle) || !*why_), "expected '%s', got '%s'", (needle), why_); \
		kiln_ctx_free(ctx_);                                                                                         \
	} while (0)

START_TEST(crafted_defects)
{
	crafted c;
	craft(&c);
	EXPECT(&c, ""); /* the unbroken model loads */
	c.model.ir_version = 99;
	EXPECT(&c, "crafted: IR version 99; this frontend reads IR versions 3 to 10");
	craft(&c);
	c.opset.version = 18;
	EXPECT(&c, "opset 18 of the default domain; this frontend reads opsets 7 to 17");
	craft(&c);
	c.model.graph = NULL;
	EXPECT(&c, "the model has no graph");
	craft(&c);
	c.node_in[0] = "Z";
	EXPECT(&c, "node 0 (Relu) reads 'Z', which no graph input, initializer or earlier node defines");
	craft(&c);
	c.node_out[0] = "X";
	EXPECT(&c, "node 0 (Relu) defines 'X' a second time");
	craft(&c);
	c.node.op_type = "";
	EXPECT(&c, "node 0 has no operator type");
	craft(&c);
	c.node.domain = "com.example";
	EXPECT(&c, "is in domain 'com.example', which the model does not import");
	craft(&c);
	c.w.n_float_data = 5;
	EXPECT(&c, "initializer 'W' (float32) has 5 values in float_data, expected 6");
	craft(&c);
	c.w.n_float_data = 0;
	c.w.has_raw_data = 1;
	c.w.raw_data = (ProtobufCBinaryData){20, (uint8_t *)c.wdata};
	EXPECT(&c, "has 20 bytes of raw_data, expected 24");
	craft(&c);
	c.wdims[0] = -2;
	EXPECT(&c, "initializer 'W' has a negative extent or more than 2^40 elements");
	craft(&c);
	c.wdims[0] = c.wdims[1] = (int64_t)1 << 32;
	EXPECT(&c, "more than 2^40 elements");
	craft(&c);
	c.w.data_type = 99;
	EXPECT(&c, "initializer 'W' has data type 99, which ONNX does not define");
	/* external data: only relative paths inside the model's folder */
	static const char *bad_paths[] = {"../../etc/passwd", "/etc/passwd", "a/../../b", ".."};
	for (int i = 0; i < 4; i++) {
		craft(&c);
		c.w.n_float_data = 0;
		c.w.has_data_location = 1;
		c.w.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
		c.loc.key = "location";
		c.loc.value = (char *)bad_paths[i];
		c.locs[0] = &c.loc;
		c.w.n_external_data = 1;
		c.w.external_data = c.locs;
		EXPECT(&c, "which is not a relative path inside the model's folder");
	}
	c.loc.value = "weights/w.bin";
	EXPECT(&c, "");
	craft(&c);
	c.tty.elem_type = 77;
	EXPECT(&c, "graph output 'Y' has element type 77");
	craft(&c);
	c.y.name = "Q";
	EXPECT(&c, "graph output 'Q' is not defined by the graph");
	kiln_ctx *ctx = kiln_ctx_new();
	ck_assert_ptr_null(kiln_onnx_load_bytes(ctx, NULL, 10, NULL));
	ck_assert_str_eq(kiln_error(ctx), "model: no data (NULL)");
	kiln_clear_error(ctx);
	ck_assert_ptr_null(kiln_onnx_load(ctx, "/nonexistent/m.onnx"));
	ck_assert_str_eq(kiln_error(ctx), "cannot open '/nonexistent/m.onnx': No such file or directory");
	kiln_ctx_free(ctx);
}
END_TEST

/* Every prefix and many single-byte corruptions of a real model: refused or read, never a crash. */
START_TEST(truncated_and_corrupt)
{
	FILE *f = fopen(TESTDATA "/node/test_conv_with_strides_padding/model.onnx", "rb");
	ck_assert_ptr_nonnull(f);
	uint8_t data[4096];
	size_t n = fread(data, 1, sizeof data, f);
	fclose(f);
	int accepted = 0;
	for (size_t k = 0; k < n; k++) {
		kiln_ctx *ctx = kiln_ctx_new();
		kiln_onnx_model *m = kiln_onnx_load_bytes(ctx, data, k, "cut");
		ck_assert_msg(m || strstr(kiln_error(ctx), "cut: "), "cut at %zu: no message", k);
		accepted += m != NULL;
		kiln_onnx_free(m);
		kiln_ctx_free(ctx);
	}
	ck_assert_int_eq(accepted, 0); /* no prefix is a whole model */
	uint64_t s = 99;
	for (size_t k = 0; k < n; k++)
		for (int t = 0; t < 8; t++) {
			uint8_t c[4096];
			memcpy(c, data, n);
			s = s * 6364136223846793005ull + 1442695040888963407ull;
			c[k] = (uint8_t)(s >> 56);
			kiln_ctx *ctx = kiln_ctx_new();
			kiln_onnx_free(kiln_onnx_load_bytes(ctx, c, n, "corrupt"));
			kiln_ctx_free(ctx);
		}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("onnx");
	TCase *tc = tcase_create("reader");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, testdata_models);
	tcase_add_test(tc, crafted_defects);
	tcase_add_test(tc, truncated_and_corrupt);
	suite_add_tcase(s, tc);
	int failed = tu_run_suite(s);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
