/*
 * fuzz_cli.c — libFuzzer target for what the kiln tool parses from its
 * command line: the input is split at newlines into a --shape value, a number
 * for --threads, a --target list and an --attr string, each fed to the tool's
 * parsers (tools/args.c), and an operator (picked by the first byte) is
 * declared from the shape and attributes through the registry
 * (ops/registry.c), which checks attribute keys, numbers and ranges.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/ops.h"
#include "tools/args.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 4096)
		return 0;
	char *text = malloc(size);
	memcpy(text, data + 1, size - 1);
	text[size - 1] = 0;
	char *field[4] = {"", "", "", ""};
	char *p = text;
	for (int f = 0; f < 4 && p; f++) {
		field[f] = p;
		p = strchr(p, '\n');
		if (p)
			*p++ = 0;
	}
	int64_t shape[KILN_MAX_DIMS];
	int n = cli_parse_shape(field[0], shape);
	long long x;
	char err[256], buf[256];
	const char *keys[4];
	cli_parse_int("--threads", field[1], 1, KILN_MAX_THREADS, &x, err, sizeof err);
	cli_target_list(field[2], buf, sizeof buf, keys, err, sizeof err);
	if (n > 0) { /* declaring builds IR only: no array of the shape is allocated */
		kiln_ctx *ctx = kiln_ctx_new();
		kiln_op_inst o;
		kiln_op_declare(ctx, kiln_op_at(data[0] % kiln_num_ops()), n, shape, field[3], &o);
		kiln_ctx_free(ctx);
	}
	free(text);
	return 0;
}
