/*
 * bundle.c — kiln_bundle_write: a folder a browser or node loads as is.
 *
 *   kiln.json              {"format": "kiln-bundle", "version": 1, "name": N,
 *                           "modules": {TARGET: FILE, ...}}
 *   N.KEY.kmod             one module container per key: a target (webgpu, webgl,
 *                          wasm), or webgpu-cpu: WGSL scheduled for adapters
 *                          that are a CPU underneath (kiln_schedule_gpu_emulated)
 *   kiln_runtime.js/.wasm  the runtime's C, compiled by Emscripten (web/meson.build)
 *   kiln.mjs, kiln.d.ts,   the JS API and its WebGPU device
 *   webgpu.mjs
 *   index.html, serve.mjs  a page that runs every function, and a server for it
 *
 * The web files come from KILN_WEB_DIR when set (one folder with all of
 * them), else from an installed kiln's share/kiln/web beside the library
 * (found relative to libkiln itself, so a staged or moved install works),
 * else from the build tree and source tree this kiln was built in.
 */
#include <dlfcn.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ir/ir.h"
#include "kiln/build.h"
#include "runtime/rt.h"
#define XXH_INLINE_ALL
#include <xxhash.h>

#ifndef KILN_WEB_BUILD_DIR
#define KILN_WEB_BUILD_DIR "."
#endif
#ifndef KILN_WEB_SRC_DIR
#define KILN_WEB_SRC_DIR "."
#endif

#ifndef KILN_WEB_REL_DIR
#define KILN_WEB_REL_DIR "../share/kiln/web"
#endif

/* dir/name is a readable file */
static bool has_file(const char *dir, const char *name)
{
	char p[4200];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	return access(p, R_OK) == 0;
}

const char *kiln_web_dir(bool runtime)
{
	static _Thread_local char buf[4096];
	const char *env = getenv("KILN_WEB_DIR");
	if (env && *env)
		return env;
	Dl_info info;
	if (dladdr((void *)kiln_web_dir, &info) && info.dli_fname && strchr(info.dli_fname, '/')) {
		snprintf(buf, sizeof buf, "%s", info.dli_fname);
		*strrchr(buf, '/') = 0;
		size_t n = strlen(buf);
		snprintf(buf + n, sizeof buf - n, "/%s", KILN_WEB_REL_DIR);
		if (has_file(buf, "kiln.mjs") && has_file(buf, "kiln_runtime.js"))
			return buf;
	}
	return runtime ? KILN_WEB_BUILD_DIR : KILN_WEB_SRC_DIR;
}

static const char *const built_files[] = {"kiln_runtime.js", "kiln_runtime.wasm"};
static const char *const source_files[] = {"kiln.mjs", "kiln.d.ts", "webgpu.mjs", "index.html", "serve.mjs"};
static const char *const web_targets[] = {"webgpu", "webgl", "wasm"};

static int copy_file(kiln_ctx *ctx, const char *from_dir, const char *name, const char *to_dir, const char *hint)
{
	char from[4096], to[4096];
	snprintf(from, sizeof from, "%s/%s", from_dir, name);
	snprintf(to, sizeof to, "%s/%s", to_dir, name);
	FILE *in = fopen(from, "rb");
	if (!in)
		return ir_error(ctx, "bundle: cannot read %s%s", from, hint);
	FILE *out = fopen(to, "wb");
	if (!out) {
		fclose(in);
		return ir_error(ctx, "bundle: cannot write %s: %s", to, strerror(errno));
	}
	char buf[1 << 16];
	size_t n;
	int rc = 0;
	while ((n = fread(buf, 1, sizeof buf, in)) > 0)
		if (fwrite(buf, 1, n, out) != n) {
			rc = ir_error(ctx, "bundle: writing %s failed", to);
			break;
		}
	if (ferror(in))
		rc = ir_error(ctx, "bundle: reading %s failed", from);
	fclose(in);
	if (fclose(out) && !rc)
		rc = ir_error(ctx, "bundle: writing %s failed", to);
	return rc;
}

/* A name that is safe as a file name and inside JSON: letters, digits, _ - . */
static int plain_name(const char *s)
{
	if (!*s || *s == '.')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
		      *s == '-' || *s == '.'))
			return 0;
	return 1;
}

int kiln_bundle_write(kiln_ctx *ctx, const char *dir, const char *name, int nmod, kiln_module *const *mods)
{
	return kiln_bundle_write_keys(ctx, dir, name, nmod, mods, NULL);
}

/* The manifest key of module i: its target unless keys name another. */
static const char *key_of(kiln_module *const *mods, const char *const *keys, int i)
{
	return keys && keys[i] ? keys[i] : kiln_module_target(mods[i]);
}

int kiln_bundle_write_keys(kiln_ctx *ctx, const char *dir, const char *name, int nmod, kiln_module *const *mods,
                           const char *const *keys)
{
	if (!plain_name(name))
		return ir_error(ctx, "bundle: name '%s' is not plain (letters, digits, '_', '-', '.')", name);
	if (nmod <= 0)
		return ir_error(ctx, "bundle: no modules to write");
	for (int i = 0; i < nmod; i++) {
		const char *t = kiln_module_target(mods[i]), *key = key_of(mods, keys, i);
		int web = 0;
		for (size_t k = 0; k < sizeof web_targets / sizeof *web_targets; k++)
			web |= !strcmp(t, web_targets[k]);
		if (!web)
			return ir_error(ctx, "bundle: a %s module does not run on the web (bundles hold webgpu, webgl and wasm "
			                     "modules)", t);
		/* "webgpu-cpu": WGSL scheduled for adapters that are a CPU underneath */
		if (strcmp(key, t) && !(!strcmp(key, "webgpu-cpu") && !strcmp(t, "webgpu")))
			return ir_error(ctx, "bundle: a %s module cannot stand as '%s' (keys are the targets, and webgpu-cpu "
			                     "for a webgpu module)", t, key);
		for (int j = 0; j < i; j++)
			if (!strcmp(key, key_of(mods, keys, j)))
				return ir_error(ctx, "bundle: two %s modules; a bundle holds one of each", key);
	}
	if (mkdir(dir, 0755) && errno != EEXIST)
		return ir_error(ctx, "bundle: cannot create folder %s: %s", dir, strerror(errno));
	char bdir[4096], sdir[4096];
	snprintf(bdir, sizeof bdir, "%s", kiln_web_dir(true));
	snprintf(sdir, sizeof sdir, "%s", kiln_web_dir(false));
	for (size_t k = 0; k < sizeof built_files / sizeof *built_files; k++)
		if (copy_file(ctx, bdir, built_files[k], dir,
		              " (the web runtime is built by Emscripten: install emscripten and rebuild kiln, or set "
		              "KILN_WEB_DIR)"))
			return -1;
	for (size_t k = 0; k < sizeof source_files / sizeof *source_files; k++)
		if (copy_file(ctx, sdir, source_files[k], dir, " (set KILN_WEB_DIR to kiln's web/ folder)"))
			return -1;
	char path[4096];
	snprintf(path, sizeof path, "%s/kiln.json", dir);
	FILE *f = fopen(path, "w");
	if (!f)
		return ir_error(ctx, "bundle: cannot write %s: %s", path, strerror(errno));
	fprintf(f, "{\n  \"format\": \"kiln-bundle\",\n  \"version\": 1,\n  \"name\": \"%s\",\n", name);
	/* model modules (a plan and weights inside): the JS API's loadModel opens them */
	if (nmod && rt_module_blob(mods[0], "graph"))
		fprintf(f, "  \"model\": true,\n");
	fprintf(f, "  \"modules\": {");
	for (int i = 0; i < nmod; i++)
		fprintf(f, "%s\n    \"%s\": \"%s.%s.kmod\"", i ? "," : "", key_of(mods, keys, i), name, key_of(mods, keys, i));
	fprintf(f, "\n  }");
	/* a model's weights lie beside its modules, each distinct file once (the GPU
	 * modules share theirs; wasm's holds prepacked matmul panels): named by hash */
	bool model = rt_module_blob(mods[0], "weights") != NULL;
	char (*wfile)[128] = calloc((size_t)nmod, sizeof *wfile);
	if (!wfile) {
		fclose(f);
		return ir_error(ctx, "bundle: out of memory");
	}
	for (int i = 0; model && i < nmod; i++) {
		const rt_blob *w = rt_module_blob(mods[i], "weights");
		if (!w) {
			free(wfile);
			fclose(f);
			return ir_error(ctx, "bundle: module %d of the model has no weights", i);
		}
		snprintf(wfile[i], sizeof wfile[i], "%s.%016llx.weights", name,
		         (unsigned long long)XXH3_64bits(w->data, w->size));
	}
	if (model) {
		fprintf(f, ",\n  \"weights\": {");
		for (int i = 0; i < nmod; i++)
			fprintf(f, "%s\n    \"%s\": \"%s\"", i ? "," : "", key_of(mods, keys, i), wfile[i]);
		fprintf(f, "\n  }");
	}
	fprintf(f, "\n}\n");
	int rc = fclose(f) ? ir_error(ctx, "bundle: writing %s failed", path) : 0;
	for (int i = 0; i < nmod && !rc; i++) {
		snprintf(path, sizeof path, "%s/%s.%s.kmod", dir, name, key_of(mods, keys, i));
		if (model ? rt_module_save_without_weights(mods[i], path) : kiln_module_save(mods[i], path))
			rc = ir_error(ctx, "bundle: %s", kiln_rt_last_error());
		bool seen = false;
		for (int j = 0; j < i && model; j++)
			seen |= !strcmp(wfile[i], wfile[j]);
		if (rc || !model || seen)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, wfile[i]);
		const rt_blob *w = rt_module_blob(mods[i], "weights");
		FILE *wf = fopen(path, "wb");
		if (!wf || fwrite(w->data, 1, w->size, wf) != w->size)
			rc = ir_error(ctx, "bundle: cannot write %s", path);
		if (wf && fclose(wf) && !rc)
			rc = ir_error(ctx, "bundle: cannot write %s", path);
	}
	free(wfile);
	return rc;
}
