/*
 * args.c — parsing the kiln tool's option values. Every value is checked
 * where it enters: numbers whole and in range (strtoll's clamping of
 * overflows is an error here), shapes positive, target lists well formed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/runtime.h"
#include "args.h"

int cli_parse_int(const char *opt, const char *v, long long lo, long long hi, long long *out, char *err, int errlen)
{
	char *end;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (end == v || *end || errno == ERANGE || x < lo || x > hi) {
		snprintf(err, (size_t)errlen, "%s takes a whole number from %lld to %lld, got '%s'", opt, lo, hi, v);
		return -1;
	}
	*out = x;
	return 0;
}

int cli_parse_shape(const char *s, int64_t *shape)
{
	int n = 0;
	memset(shape, 0, sizeof(int64_t) * KILN_MAX_DIMS);
	for (const char *p = s; *p;) {
		if (n == KILN_MAX_DIMS)
			return -1;
		char *end;
		errno = 0;
		long long v = strtoll(p, &end, 10);
		if (end == p || v <= 0 || errno == ERANGE)
			return -1;
		shape[n++] = v;
		p = end;
		if (*p == ',' || *p == 'x')
			p++;
		else if (*p)
			return -1;
	}
	return n;
}

int cli_target_list(const char *list, char *buf, int buflen, const char **keys, char *err, int errlen)
{
	static const char *const known[] = {"webgpu", "webgpu-cpu", "webgl", "wasm"};
	size_t len = strlen(list);
	if (!strcmp(list, "web"))
		list = "webgpu,webgpu-cpu,webgl,wasm";
	else if (!len || list[0] == ',' || list[len - 1] == ',' || strstr(list, ",,"))
		return snprintf(err, (size_t)errlen, "--target '%s' has an empty name in its list", list), -1;
	if (strlen(list) >= (size_t)buflen)
		return snprintf(err, (size_t)errlen, "--target '%.40s...' is too long", list), -1;
	snprintf(buf, (size_t)buflen, "%s", list);
	int n = 0;
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int k = 0;
		while (k < 4 && strcmp(t, known[k]))
			k++;
		if (k == 4)
			return snprintf(err, (size_t)errlen, "a bundle holds webgpu, webgpu-cpu, webgl and wasm modules, not '%s'",
			                t), -1;
		for (int j = 0; j < n; j++)
			if (!strcmp(keys[j], t))
				return snprintf(err, (size_t)errlen, "--target names %s twice", t), -1;
		keys[n++] = t;
	}
	return n;
}
