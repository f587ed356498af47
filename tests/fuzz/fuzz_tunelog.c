/*
 * fuzz_tunelog.c — libFuzzer target for tuning-log records
 * (tune/tune.c, over cJSON): any line gives a record with small whole
 * configuration numbers and bounded strings, or a refusal; never a crash.
 */
#include <stdint.h>
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
	free(line);
	return 0;
}
