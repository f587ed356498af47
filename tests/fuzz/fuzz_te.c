/*
 * fuzz_te.c — libFuzzer target for the .kte parser (frontends/te/parse.c):
 * any bytes give a program or a located message, never a crash, a hang or a
 * leak. A program that parses is also lowered for llvm (without building
 * machine code), so the schedules it carries go through bound inference.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/build.h"
#include "kiln/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = 0;
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_program *p = kiln_parse(ctx, "fuzz.kte", text);
	for (int i = 0; p && i < kiln_program_num_ops(p); i++) {
		const char *op = kiln_program_op_name(p, i);
		kiln_tensor **args;
		int nargs = kiln_program_args(p, op, NULL, &args);
		kiln_schedule *s = kiln_program_schedule(p, op, "llvm", NULL);
		if (s)
			kiln_lower(s, "fn", nargs, args, NULL);
		kiln_clear_error(ctx);
	}
	kiln_ctx_free(ctx);
	free(text);
	return 0;
}
