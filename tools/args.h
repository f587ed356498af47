/*
 * args.h — the kiln tool's parsers of command-line values (numbers, shapes,
 * bundle target lists), apart from the tool so that a fuzz target
 * (tests/fuzz/fuzz_cli.c) can drive them with arbitrary text.
 */
#ifndef KILN_TOOLS_ARGS_H
#define KILN_TOOLS_ARGS_H

#include <stdint.h>

/* A whole decimal integer in [lo, hi]: no trailing text, no clamping of
 * out-of-range values. 0, or -1 with a message (naming opt) in err. */
int cli_parse_int(const char *opt, const char *v, long long lo, long long hi, long long *out, char *err, int errlen);
/* "N,N,..." (or 'x' between) of positive numbers into shape; the count, or
 * -1 when it is not such a list of at most KILN_MAX_DIMS numbers. */
int cli_parse_shape(const char *s, int64_t *shape);
/* A bundle's target list ("web" or a comma list of webgpu, webgpu-cpu, webgl,
 * wasm, no empty or repeated names) into keys (pointers into buf, which
 * receives a copy); the count, or -1 with a message in err. */
int cli_target_list(const char *list, char *buf, int buflen, const char **keys, char *err, int errlen);

#endif
