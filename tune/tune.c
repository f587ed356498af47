/*
 * tune.c — the CPU template's configuration space, fixed search orders,
 * configurations as text (--config), and the tuning log: one JSON object
 * per line, written and read with cJSON.
 */
#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/tune.h"
#include "tune/internal.h"

/*
 * The GPU matmul template's space: 2-8 rows x 1-4 float4s of columns per
 * thread (16 columns only with up to 4 rows: the accumulators must stay in
 * registers), k panels of 4-16, 8x8 or 16x16 threads, and for several
 * float4s both ways of dealing them out; panels double-buffered or not,
 * padded or not.
 */
static int gpu_space(kiln_cpu_config *out, int max)
{
	/* split: as the default decides, never, or 4 or 16 parts (the schedule refuses the ones that would repeat
	 * the default or that a GEMM with blocks enough never needs) */
	static const int rows[] = {2, 4, 8}, vec4s[] = {1, 2, 4}, panels[] = {4, 8, 16}, threads[] = {8, 16},
	                 splits[] = {0, 1, 4, 16};
	int n = 0;
	for (int r = 0; r < 3; r++)
		for (int v = 0; v < 3; v++) {
			if (rows[r] * vec4s[v] * 4 > 64)
				continue;
			for (int p = 0; p < 3; p++)
				for (int th = 0; th < 2; th++)
					for (int order = 1; order <= (vec4s[v] > 1 ? 2 : 1); order++)
						for (int stages = 1; stages <= 2; stages++)
							for (int pad = 1; pad <= 2; pad++)
								for (int sp = 0; sp < 4; sp++) {
									if (n < max)
										out[n] = (kiln_cpu_config){rows[r], vec4s[v], panels[p], threads[th], order,
										                           stages, pad, splits[sp]};
									n++;
								}
		}
	return n < max ? n : max;
}

/*
 * The WebGL template's space: 1-8 blocks of the output per fragment (a
 * render target each; more than 4 only where the device has the targets),
 * one element or an RGBA texel of four per fragment and block, and the
 * reduction unrolled 1-8 times (3: a 3x3 window's columns).
 */
static int webgl_space(kiln_cpu_config *out, int max)
{
	static const int rows[] = {1, 2, 4, 8}, lanes[] = {1, 4}, unrolls[] = {1, 2, 3, 4, 8};
	int n = 0;
	for (int r = 0; r < 4; r++)
		for (int l = 0; l < 2; l++)
			for (int u = 0; u < 5; u++) {
				if (n < max)
					out[n] = (kiln_cpu_config){rows[r], lanes[l], unrolls[u], 1, 1};
				n++;
			}
	return n < max ? n : max;
}

int kiln_tune_space(const kiln_target *t, kiln_cpu_config *out, int max)
{
	static const int unrolls[] = {1, 2, 4, 8}, tiles[] = {1, 2, 4, 8, 16};
	if ((t->kind == KILN_OPENCL || t->kind == KILN_WEBGPU) && !t->emulated)
		return gpu_space(out, max);
	if (t->kind == KILN_WEBGL)
		return webgl_space(out, max);
	int n = 0, budget = t->vector_regs > 8 ? t->vector_regs - 4 : 4;
	for (int vecs = 1; vecs <= 4; vecs++)
		for (int rows = 1; rows <= 8; rows++) {
			/* blocks past the registers spill; keep the first one that does as a witness */
			if (rows * vecs > budget + vecs)
				continue;
			for (int u = 0; u < 4; u++)
				for (int order = 1; order <= 2; order++)
					for (int ti = 0; ti < 5; ti++) {
						if (n < max)
							out[n] = (kiln_cpu_config){rows, vecs, unrolls[u], tiles[ti], order};
						n++;
					}
		}
	return n < max ? n : max;
}

int kiln_tune_space_taken(kiln_ctx *ctx, const kiln_target *t, int nout, kiln_tensor *const *outs,
                          kiln_cpu_config *out, int max)
{
	kiln_cpu_config *all = malloc(sizeof *all * 4096);
	if (!all)
		return -1;
	int nall = kiln_tune_space(t, all, 4096), n = 0;
	for (int i = 0; i < nall && n < max; i++) {
		kiln_ctx_mark mark = kiln_ctx_save(ctx);
		if (kiln_schedule_template(ctx, t, &all[i], nout, outs))
			out[n++] = all[i];
		kiln_ctx_release(ctx, mark);
		kiln_clear_error(ctx); /* a refusal's reason: a context keeps its first error */
	}
	free(all);
	return n;
}

void kiln_tune_config_str(const kiln_cpu_config *c, char *buf, size_t n)
{
	/* the GPU knobs only when set: older tools read the five-knob form */
	int k = 0, used = tune_knobs_used(c);
	buf[0] = 0;
	for (int i = 0; i < used && k >= 0 && (size_t)k < n; i++)
		k += snprintf(buf + k, n - (size_t)k, i ? ",%d" : "%d", tune_knob(c, i));
}

int kiln_tune_config_parse(const char *s, kiln_cpu_config *c)
{
	long v[TUNE_KNOBS] = {0};
	int k = 0;
	const char *p = s;
	while (k < TUNE_KNOBS) {
		char *end;
		errno = 0;
		v[k++] = strtol(p, &end, 10);
		if (end == p || errno)
			return -1;
		p = end;
		if (*p != ',')
			break;
		p++;
	}
	int iv[TUNE_KNOBS];
	for (int i = 0; i < TUNE_KNOBS; i++) {
		if (v[i] < 0 || v[i] > tune_knob_info[i].top)
			return -1;
		iv[i] = (int)v[i];
	}
	if (*p || k < 2 || k == 6) /* the GPU knobs come as a pair (and then the split) */
		return -1;
	*c = tune_config_of(iv);
	return 0;
}

void kiln_tune_config_describe_for(const kiln_target *t, const kiln_cpu_config *c, char *buf, size_t n)
{
	if (!t || t->kind == KILN_LLVM || t->kind == KILN_WASM || t->emulated) {
		kiln_tune_config_describe(c, buf, n);
		return;
	}
	if (t->kind == KILN_WEBGL) {
		int vecs = c->vecs ? c->vecs : 1; /* 0: the default (rows: the default's choice) */
		char rows[32];
		snprintf(rows, sizeof rows, c->rows ? "%d block%s" : "the default's blocks", c->rows, c->rows == 1 ? "" : "s");
		snprintf(buf, n, "%s x %d element%s per fragment (%s), reduction unrolled %d", rows, vecs, vecs == 1 ? "" : "s",
		         vecs == 4 ? "RGBA" : "R32F", c->unroll ? c->unroll : 1);
		return;
	}
	char split[48] = "";
	if (c->split)
		snprintf(split, sizeof split, c->split == 1 ? ", the reduction whole" : ", the reduction in %d parts", c->split);
	snprintf(buf, n, "%d rows x %d float4s per thread, k panels of %d, %dx%d threads%s%s%s%s", c->rows, c->vecs,
	         c->unroll, c->tile, c->tile, c->order == 2 && c->vecs > 1 ? ", float4s dealt a block apart" : "",
	         c->stages == 2 ? ", double-buffered" : "", c->pad == 1 ? ", padded rows" : "", split);
}

void kiln_tune_config_describe(const kiln_cpu_config *c, char *buf, size_t n)
{
	int k = snprintf(buf, n, "%d rows x %d vectors", c->rows, c->vecs);
	if (c->unroll > 1 && k >= 0 && (size_t)k < n)
		k += snprintf(buf + k, n - (size_t)k, ", unroll %d", c->unroll);
	if (c->tile > 1 && k >= 0 && (size_t)k < n)
		k += snprintf(buf + k, n - (size_t)k, ", tile %d", c->tile);
	if (c->order && k >= 0 && (size_t)k < n)
		snprintf(buf + k, n - (size_t)k, ", %s outside", c->order == 1 ? "columns" : "rows");
}

int kiln_tune_order(const char *search, uint64_t seed, int n, int *order)
{
	for (int i = 0; i < n; i++)
		order[i] = i;
	if (!search || !strcmp(search, "grid"))
		return 0;
	if (strcmp(search, "random"))
		return -1;
	for (int i = n - 1; i > 0; i--) {
		int j = (int)(tune_next(&seed) % (uint64_t)(i + 1)), k = order[i];
		order[i] = order[j];
		order[j] = k;
	}
	return 0;
}

int kiln_tune_log_append(const char *path, const kiln_tune_record *r, char *err, int errlen)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "op", r->task.op);
	cJSON_AddStringToObject(o, "shape", r->task.shape);
	cJSON_AddStringToObject(o, "attrs", r->task.attrs);
	cJSON_AddStringToObject(o, "target", r->task.target);
	cJSON_AddStringToObject(o, "device", r->device);
	cJSON *cfg = cJSON_AddObjectToObject(o, "config");
	/* the GPU knobs only when set, as in --config */
	int nk = tune_knobs_used(&r->cfg);
	for (int k = 0; k < nk; k++)
		cJSON_AddNumberToObject(cfg, tune_knob_info[k].name, tune_knob(&r->cfg, k));
	cJSON_AddNumberToObject(o, "median_ms", r->median_ms);
	cJSON_AddNumberToObject(o, "gflops", r->gflops);
	cJSON *s = cJSON_AddArrayToObject(o, "samples_ms");
	for (int i = 0; i < r->nsamples && i < KILN_TUNE_MAX_SAMPLES; i++)
		cJSON_AddItemToArray(s, cJSON_CreateNumber(r->samples_ms[i]));
	cJSON_AddStringToObject(o, "error", r->error);
	cJSON_AddStringToObject(o, "version", r->version);
	cJSON_AddNumberToObject(o, "time", r->unix_time);
	char *line = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	FILE *f = line ? fopen(path, "a") : NULL;
	int rc = f && fprintf(f, "%s\n", line) > 0 ? 0 : -1;
	if (f && fclose(f))
		rc = -1;
	if (rc)
		snprintf(err, (size_t)errlen, "cannot append to %s: %s", path, line ? strerror(errno) : "out of memory");
	cJSON_free(line);
	return rc;
}

static int get_string(const cJSON *o, const char *key, char *out, size_t n)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsString(v) || strlen(v->valuestring) >= n)
		return -1;
	snprintf(out, n, "%s", v->valuestring);
	return 0;
}

static int get_number(const cJSON *o, const char *key, double *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsNumber(v))
		return -1;
	*out = v->valuedouble;
	return 0;
}

int kiln_tune_record_parse(const char *line, kiln_tune_record *r)
{
	memset(r, 0, sizeof *r);
	cJSON *o = cJSON_Parse(line);
	if (!o)
		return -1;
	double v[TUNE_KNOBS] = {0};
	const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(o, "config");
	int bad = get_string(o, "op", r->task.op, sizeof r->task.op) ||
	          get_string(o, "shape", r->task.shape, sizeof r->task.shape) ||
	          get_string(o, "attrs", r->task.attrs, sizeof r->task.attrs) ||
	          get_string(o, "target", r->task.target, sizeof r->task.target) ||
	          get_string(o, "error", r->error, sizeof r->error) || !cJSON_IsObject(cfg) ||
	          get_number(cfg, "rows", &v[0]) || get_number(cfg, "vecs", &v[1]) ||
	          get_number(o, "median_ms", &r->median_ms) || get_number(o, "gflops", &r->gflops);
	/* the knobs added after the register block: absent in older logs, meaning the default */
	for (int k = 2; k < TUNE_KNOBS; k++)
		get_number(cfg, tune_knob_info[k].name, &v[k]);
	get_string(o, "device", r->device, sizeof r->device);
	get_string(o, "version", r->version, sizeof r->version);
	get_number(o, "time", &r->unix_time);
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "samples_ms"), *x;
	cJSON_ArrayForEach(x, s)
	{
		if (cJSON_IsNumber(x) && r->nsamples < KILN_TUNE_MAX_SAMPLES)
			r->samples_ms[r->nsamples++] = x->valuedouble;
	}
	cJSON_Delete(o);
	/* configurations are small whole numbers; anything else is not a record of ours */
	int iv[TUNE_KNOBS];
	for (int k = 0; k < TUNE_KNOBS; k++) {
		bad |= !(v[k] >= 0 && v[k] <= tune_knob_info[k].top && v[k] == (int)v[k]);
		iv[k] = bad ? 0 : (int)v[k];
	}
	if (bad)
		return -1;
	r->cfg = tune_config_of(iv);
	return 0;
}

static bool same_task(const kiln_tune_task *a, const kiln_tune_task *b)
{
	return !strcmp(a->op, b->op) && !strcmp(a->shape, b->shape) && !strcmp(a->attrs, b->attrs) &&
	       !strcmp(a->target, b->target);
}

int kiln_tune_log_best(const char *path, const kiln_tune_task *task, const char *device, kiln_tune_record *best,
                       char *err, int errlen)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return snprintf(err, (size_t)errlen, "cannot open %s: %s", path, strerror(errno)), -1;
	char *line = NULL;
	size_t cap = 0;
	int found = 0;
	kiln_tune_record r;
	while (getline(&line, &cap, f) > 0) {
		if (kiln_tune_record_parse(line, &r) || r.error[0] || !same_task(&r.task, task) || !(r.median_ms > 0) ||
		    (device && r.device[0] && strcmp(r.device, device)))
			continue;
		if (!found || r.median_ms < best->median_ms)
			*best = r;
		found = 1;
	}
	free(line);
	fclose(f);
	return found;
}
