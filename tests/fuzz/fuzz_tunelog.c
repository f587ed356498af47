/*
 * fuzz_tunelog.c — libFuzzer target for tuning-log records
 * (tune/tune.c, over cJSON) and --config strings: any line gives a record
 * (or a configuration) with small whole numbers in the template's ranges
 * and bounded strings, or a refusal; never a crash. A configuration that
 * parses prints back to the same numbers.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/tune.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1);
	memcpy(line, data, size);
	line[size] = 0;
	kiln_tune_record r;
	if (!kiln_tune_record_parse(line, &r) &&
	    (r.cfg.rows < 0 || r.cfg.rows > 16 || r.cfg.vecs < 0 || r.cfg.vecs > 8 || r.nsamples > KILN_TUNE_MAX_SAMPLES ||
	     strlen(r.task.op) >= sizeof r.task.op))
		abort();
	if (!kiln_tune_record_parse(line, &r) && (r.cfg.unroll < 0 || r.cfg.unroll > 64 || r.cfg.tile < 0 ||
	                                          r.cfg.tile > 1024 || r.cfg.order < 0 || r.cfg.order > 2))
		abort();
	kiln_cpu_config c, back;
	char text[64];
	if (!kiln_tune_config_parse(line, &c)) {
		kiln_tune_config_str(&c, text, sizeof text);
		if (kiln_tune_config_parse(text, &back) || memcmp(&c, &back, sizeof c))
			abort();
	}
	free(line);
	return 0;
}
