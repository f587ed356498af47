/*
 * module.c — the module container: one format for every target.
 *
 *   "KILNMOD\1"  u32 version
 *   str target
 *   u32 nfunc  { str name, u32 nargs { str name, u8 code, u8 bits, u16 lanes,
 *                                      u8 ndim, i64 shape[ndim], u8 is_output }
 *                u32 nlaunch { str kernel, u32 grid[3], u32 block[3], u32 nargs, i32 args[nargs] }
 *                u32 ntemp { u64 bytes } }
 *   u32 nblob  { str name, u64 size, bytes }
 *   u64 checksum: XXH3-64 (xxHash, libxxhash) of every byte before it
 *
 * Integers are little-endian; str is u32 length + bytes. The checksum is
 * verified before any field is read, so a corrupted module (a flipped bit in
 * its metadata or its code) is refused before anything of it runs. An exported shared
 * library carries the container (without blobs) in a data symbol; a saved
 * module is the container in a file, its blobs holding the code (an object
 * file for CPU code, kernel sources for GPU targets). The reader checks every
 * length against what is left, and every dtype, shape and launch against the
 * runtime's limits, so a truncated or hostile file gets an error.
 */
#ifndef __EMSCRIPTEN__
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rt.h"
/* header-only: the web runtime (Emscripten) links no system libraries */
#define XXH_INLINE_ALL
#include <xxhash.h>

#define MAGIC "KILNMOD\1"
#define VERSION 3u
#define MAX_FUNCS 4096
#define MAX_ARGS 256

kiln_module *rt_module_new(const char *target)
{
	kiln_module *m = calloc(1, sizeof *m);
	if (m)
		snprintf(m->target, sizeof m->target, "%s", target);
	return m;
}

int rt_module_add_function(kiln_module *m, const char *name, int nargs, const kiln_arg_info *args, void *fn)
{
	if (rt_module_find(m, name))
		return rt_error("module already has a function named '%s'", name);
	rt_function *nf = realloc(m->funcs, sizeof *nf * (m->nfunc + 1));
	if (!nf)
		return rt_error("out of memory");
	m->funcs = nf;
	rt_function *f = &m->funcs[m->nfunc];
	memset(f, 0, sizeof *f);
	f->name = strdup(name);
	f->nargs = nargs;
	f->args = calloc(nargs ? nargs : 1, sizeof *f->args);
	if (!f->name || !f->args)
		return rt_error("out of memory");
	memcpy(f->args, args, sizeof *args * nargs);
	f->fn = fn;
	m->nfunc++;
	return 0;
}

int rt_function_set_launches(rt_function *f, int nlaunch, const rt_launch *l, int ntemp, const uint64_t *temp_bytes)
{
	f->launches = calloc(nlaunch ? nlaunch : 1, sizeof *l);
	f->temp_bytes = calloc(ntemp ? ntemp : 1, sizeof *temp_bytes);
	if (!f->launches || !f->temp_bytes)
		return rt_error("out of memory");
	if (nlaunch)
		memcpy(f->launches, l, sizeof *l * nlaunch);
	if (ntemp)
		memcpy(f->temp_bytes, temp_bytes, sizeof *temp_bytes * ntemp);
	f->nlaunch = nlaunch;
	f->ntemp = ntemp;
	return 0;
}

int rt_module_add_blob(kiln_module *m, const char *name, const void *data, size_t size)
{
	rt_blob *nb = realloc(m->blobs, sizeof *nb * (m->nblob + 1));
	if (!nb)
		return rt_error("out of memory");
	m->blobs = nb;
	rt_blob *b = &m->blobs[m->nblob];
	b->name = strdup(name);
	b->data = malloc(size ? size : 1);
	if (!b->name || !b->data)
		return rt_error("out of memory");
	memcpy(b->data, data, size);
	b->size = size;
	m->nblob++;
	return 0;
}

const rt_blob *rt_module_blob(const kiln_module *m, const char *name)
{
	for (int i = 0; i < m->nblob; i++)
		if (!strcmp(m->blobs[i].name, name))
			return &m->blobs[i];
	return NULL;
}

rt_function *rt_module_find(const kiln_module *m, const char *name)
{
	for (int i = 0; i < m->nfunc; i++)
		if (!strcmp(m->funcs[i].name, name))
			return &m->funcs[i];
	return NULL;
}

void kiln_module_free(kiln_module *m)
{
	if (!m)
		return;
	for (int i = 0; i < m->nfunc; i++) {
		if (m->funcs[i].dev && m->dev_free)
			m->dev_free(&m->funcs[i]);
		free(m->funcs[i].name);
		free(m->funcs[i].args);
		free(m->funcs[i].launches);
		free(m->funcs[i].temp_bytes);
	}
	free(m->funcs);
	for (int i = 0; i < m->nblob; i++) {
		free(m->blobs[i].name);
		free(m->blobs[i].data);
	}
	free(m->blobs);
	if (m->owner_free)
		m->owner_free(m->owner);
#ifndef __EMSCRIPTEN__
	if (m->dl)
		dlclose(m->dl);
	if (m->code_fd)
		close(m->code_fd - 1);
#endif
	free(m);
}

int kiln_module_num_functions(const kiln_module *m) { return m ? m->nfunc : 0; }
const char *kiln_module_target(const kiln_module *m) { return m ? m->target : ""; }

const char *kiln_module_function_name(const kiln_module *m, int i)
{
	return m && i >= 0 && i < m->nfunc ? m->funcs[i].name : NULL;
}

int kiln_module_function_args(const kiln_module *m, const char *fn, const kiln_arg_info **args)
{
	rt_function *f = m ? rt_module_find(m, fn) : NULL;
	if (!f)
		return rt_error("no function '%s' in the module", fn);
	*args = f->args;
	return f->nargs;
}

void *kiln_module_function_ptr(const kiln_module *m, const char *fn)
{
	rt_function *f = m ? rt_module_find(m, fn) : NULL;
	return f ? f->fn : NULL;
}

/* ---- writing ---- */

typedef struct {
	uint8_t *p;
	size_t n, cap;
} wbuf;

static void put(wbuf *w, const void *d, size_t n)
{
	if (w->n + n > w->cap) {
		size_t nc = w->cap ? w->cap : 256;
		while (nc < w->n + n)
			nc *= 2;
		w->p = realloc(w->p, nc);
		w->cap = nc;
	}
	memcpy(w->p + w->n, d, n);
	w->n += n;
}

static void put_u8(wbuf *w, uint8_t v) { put(w, &v, 1); }
static void put_u16(wbuf *w, uint16_t v) { put(w, (uint8_t[]){v & 255, v >> 8}, 2); }

static void put_u32(wbuf *w, uint32_t v)
{
	uint8_t b[4];
	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	put(w, b, 4);
}

static void put_u64(wbuf *w, uint64_t v)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	put(w, b, 8);
}

static void put_str(wbuf *w, const char *s)
{
	size_t n = strlen(s);
	put_u32(w, (uint32_t)n);
	put(w, s, n);
}

/* blobs: 0 none (a library's embedded metadata), 1 all (a saved module), 2 all but code (a model library's
 * data), 3 all but the weights (a module of a model bundle, whose weights lie beside it) */
static int serialize(const kiln_module *m, int blobs, uint8_t **out, size_t *size)
{
	wbuf w = {0};
	put(&w, MAGIC, 8);
	put_u32(&w, VERSION);
	put_str(&w, m->target);
	put_u32(&w, (uint32_t)m->nfunc);
	for (int i = 0; i < m->nfunc; i++) {
		rt_function *f = &m->funcs[i];
		put_str(&w, f->name);
		put_u32(&w, (uint32_t)f->nargs);
		for (int a = 0; a < f->nargs; a++) {
			kiln_arg_info *ai = &f->args[a];
			put_str(&w, ai->name);
			put_u8(&w, ai->dtype.code);
			put_u8(&w, ai->dtype.bits);
			put_u16(&w, ai->dtype.lanes);
			put_u8(&w, (uint8_t)ai->ndim);
			for (int d = 0; d < ai->ndim; d++)
				put_u64(&w, (uint64_t)ai->shape[d]);
			put_u8(&w, (uint8_t)ai->is_output);
		}
		put_u32(&w, (uint32_t)f->nlaunch);
		for (int l = 0; l < f->nlaunch; l++) {
			rt_launch *la = &f->launches[l];
			put_str(&w, la->kernel);
			for (int d = 0; d < 3; d++)
				put_u32(&w, la->grid[d]);
			for (int d = 0; d < 3; d++)
				put_u32(&w, la->block[d]);
			put_u32(&w, (uint32_t)la->nargs);
			for (int a = 0; a < la->nargs; a++)
				put_u32(&w, (uint32_t)la->args[a]);
		}
		put_u32(&w, (uint32_t)f->ntemp);
		for (int t = 0; t < f->ntemp; t++)
			put_u64(&w, f->temp_bytes[t]);
	}
	/* a linked library replaces the object code it was linked from */
	bool linked = rt_module_blob(m, "llvm-so") != NULL;
	int nsaved = 0;
#define SKIP(b)                                                                                                    \
	((linked && !strcmp((b)->name, "llvm-obj")) ||                                                                 \
	 (blobs == 2 && (!strcmp((b)->name, "llvm-obj") || !strcmp((b)->name, "llvm-so"))) ||                       \
	 (blobs == 3 && !strcmp((b)->name, "weights")))
	for (int i = 0; blobs && i < m->nblob; i++)
		nsaved += !SKIP(&m->blobs[i]);
	put_u32(&w, (uint32_t)nsaved);
	for (int i = 0; blobs && i < m->nblob; i++) {
		if (SKIP(&m->blobs[i]))
			continue;
		put_str(&w, m->blobs[i].name);
		put_u64(&w, m->blobs[i].size);
		put(&w, m->blobs[i].data, m->blobs[i].size);
	}
#undef SKIP
	put_u64(&w, (uint64_t)XXH3_64bits(w.p, w.n));
	*out = w.p;
	*size = w.n;
	return 0;
}

int rt_module_serialize(const kiln_module *m, uint8_t **out, size_t *size) { return serialize(m, 0, out, size); }
int rt_module_serialize_data(const kiln_module *m, uint8_t **out, size_t *size) { return serialize(m, 2, out, size); }

static int save(const kiln_module *m, const char *path, int blobs)
{
	if (!m)
		return rt_error("save: no module");
	if (!path)
		return rt_error("save: no path");
	if (m->save_prepare && m->save_prepare((kiln_module *)m))
		return -1;
	uint8_t *data;
	size_t n;
	serialize(m, blobs, &data, &n);
	FILE *f = fopen(path, "wb");
	if (!f) {
		free(data);
		return rt_error("save: cannot open '%s' for writing", path);
	}
	size_t w = fwrite(data, 1, n, f);
	int bad = fclose(f) != 0 || w != n;
	free(data);
	return bad ? rt_error("save: cannot write '%s'", path) : 0;
}

int kiln_module_save(const kiln_module *m, const char *path) { return save(m, path, 1); }

int rt_module_container(const kiln_module *m, uint8_t **out, size_t *size)
{
	if (m->save_prepare && m->save_prepare((kiln_module *)m))
		return -1;
	if (!strcmp(m->target, "llvm") && !rt_module_blob(m, "llvm-so"))
		return rt_error("a CPU module loaded from a shared library carries no code a container can hold; use the "
		                "module built in this process, or one saved with kiln_module_save");
	return serialize(m, 1, out, size) ? -1 : 0;
}
int rt_module_save_without_weights(const kiln_module *m, const char *path) { return save(m, path, 3); }

/* ---- reading ---- */

typedef struct {
	const uint8_t *p;
	size_t n, off;
	const char *what;
	int err;
} rbuf;

static int need(rbuf *r, size_t k, const char *field)
{
	if (r->err)
		return -1;
	if (k > r->n - r->off) {
		r->err = 1;
		return rt_error("%s: truncated module: %s needs %zu bytes at offset %zu, only %zu left", r->what, field, k,
		                r->off, r->n - r->off);
	}
	return 0;
}

static uint64_t get_uint(rbuf *r, int bytes, const char *field)
{
	if (need(r, (size_t)bytes, field))
		return 0;
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)r->p[r->off + i] << (8 * i);
	r->off += (size_t)bytes;
	return v;
}

static int get_str(rbuf *r, char *out, size_t cap, const char *field)
{
	uint64_t n = get_uint(r, 4, field);
	if (r->err || need(r, n, field))
		return -1;
	if (n >= cap) {
		r->err = 1;
		return rt_error("%s: %s is %llu bytes long (at most %zu) at offset %zu", r->what, field,
		                (unsigned long long)n, cap - 1, r->off);
	}
	memcpy(out, r->p + r->off, n);
	out[n] = 0;
	if (strlen(out) != n) {
		r->err = 1;
		return rt_error("%s: %s contains a NUL byte at offset %zu", r->what, field, r->off);
	}
	r->off += n;
	return 0;
}

static int bad(rbuf *r, const char *fmt, unsigned long long v)
{
	r->err = 1;
	char msg[256];
	snprintf(msg, sizeof msg, fmt, v);
	return rt_error("%s: %s (offset %zu)", r->what, msg, r->off);
}

/* The launches of one function; every argument index must name an argument or a temporary. */
static int parse_launches(rbuf *r, rt_function *f)
{
	uint64_t nl = get_uint(r, 4, "launch count");
	if (!r->err && nl > 4096)
		return bad(r, "%llu launches (at most 4096)", nl);
	rt_launch *ls = calloc(nl ? nl : 1, sizeof *ls);
	for (uint64_t l = 0; l < nl && !r->err; l++) {
		get_str(r, ls[l].kernel, sizeof ls[l].kernel, "kernel name");
		for (int d = 0; d < 3; d++)
			ls[l].grid[d] = (uint32_t)get_uint(r, 4, "grid");
		for (int d = 0; d < 3; d++)
			ls[l].block[d] = (uint32_t)get_uint(r, 4, "block");
		uint64_t threads = (uint64_t)ls[l].block[0] * ls[l].block[1] * ls[l].block[2];
		for (int d = 0; d < 3 && !r->err; d++)
			if (ls[l].grid[d] == 0 || ls[l].block[d] == 0 || ls[l].grid[d] > RT_MAX_GRID)
				bad(r, "a launch grid of 0 or more than 2^31-1 blocks, or a block of 0 threads (dimension %llu)",
				    (unsigned long long)d);
		if (!r->err && threads > RT_MAX_BLOCK_THREADS)
			bad(r, "a launch block of %llu threads (at most 1024)", threads);
		uint64_t na = get_uint(r, 4, "launch argument count");
		if (!r->err && na > RT_MAX_LAUNCH_ARGS) {
			bad(r, "a launch with %llu arguments (at most 64)", na);
			break;
		}
		ls[l].nargs = (int)na;
		for (uint64_t a = 0; a < na && !r->err; a++)
			ls[l].args[a] = (int32_t)(uint32_t)get_uint(r, 4, "launch argument");
	}
	uint64_t nt = r->err ? 0 : get_uint(r, 4, "temporary count");
	if (!r->err && nt > 4096)
		bad(r, "%llu temporaries (at most 4096)", nt);
	uint64_t *tb = calloc(nt && !r->err ? nt : 1, sizeof *tb);
	for (uint64_t t = 0; t < nt && !r->err; t++)
		tb[t] = get_uint(r, 8, "temporary size");
	for (uint64_t l = 0; l < nl && !r->err; l++)
		for (int a = 0; a < ls[l].nargs; a++)
			if (ls[l].args[a] >= f->nargs || (ls[l].args[a] < 0 && -1 - ls[l].args[a] >= (int64_t)nt))
				bad(r, "launch argument %lld names no argument or temporary", (unsigned long long)ls[l].args[a]);
	int rc = r->err ? -1 : rt_function_set_launches(f, (int)nl, ls, (int)nt, tb);
	free(ls);
	free(tb);
	return rc;
}

kiln_module *rt_module_parse(const uint8_t *data, size_t size, const char *what)
{
	rbuf r = {data, size, 0, what, 0};
	if (size < 8 || memcmp(data, MAGIC, 8) != 0) {
		rt_error("%s: not a kiln module (bad magic)", what);
		return NULL;
	}
	r.off = 8;
	uint32_t ver = (uint32_t)get_uint(&r, 4, "version");
	if (!r.err && ver != VERSION)
		bad(&r, "unsupported container version %llu (this runtime reads version 3)", ver);
	if (!r.err && need(&r, 8, "checksum") == 0) {
		uint64_t want = 0;
		for (int i = 0; i < 8; i++)
			want |= (uint64_t)data[size - 8 + i] << (8 * i);
		/* a fuzzer cannot forge checksums: its builds check everything after this */
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
		if (want != (uint64_t)XXH3_64bits(data, size - 8))
			bad(&r, "checksum mismatch: the module is truncated or corrupted (%llu bytes)", size);
#endif
		r.n = size - 8;
	}
	char target[32], name[256];
	get_str(&r, target, sizeof target, "target name");
	if (r.err)
		return NULL;
	kiln_module *m = rt_module_new(target);
	uint64_t nfunc = get_uint(&r, 4, "function count");
	if (!r.err && nfunc > MAX_FUNCS)
		bad(&r, "%llu functions (at most 4096)", nfunc);
	for (uint64_t i = 0; i < nfunc && !r.err; i++) {
		get_str(&r, name, sizeof name, "function name");
		uint64_t nargs = get_uint(&r, 4, "argument count");
		if (!r.err && nargs > MAX_ARGS)
			bad(&r, "%llu arguments (at most 256)", nargs);
		if (r.err)
			break; /* before allocating anything a hostile count asks for */
		kiln_arg_info *args = calloc(nargs ? nargs : 1, sizeof *args);
		for (uint64_t a = 0; a < nargs && !r.err; a++) {
			get_str(&r, args[a].name, sizeof args[a].name, "argument name");
			args[a].dtype.code = (uint8_t)get_uint(&r, 1, "dtype");
			args[a].dtype.bits = (uint8_t)get_uint(&r, 1, "dtype");
			args[a].dtype.lanes = (uint16_t)get_uint(&r, 2, "dtype");
			if (!r.err && rt_dtype_check(args[a].dtype, r.what))
				r.err = 1;
			uint64_t nd = get_uint(&r, 1, "rank");
			if (!r.err && nd > KILN_MAX_DIMS)
				bad(&r, "rank %llu (at most 8)", nd);
			args[a].ndim = (int)nd;
			for (uint64_t d = 0; d < nd && !r.err; d++)
				args[a].shape[d] = (int64_t)get_uint(&r, 8, "shape");
			size_t bytes;
			if (!r.err && rt_array_bytes(args[a].ndim, args[a].shape, args[a].dtype, r.what, &bytes))
				r.err = 1;
			args[a].is_output = get_uint(&r, 1, "output flag") != 0;
		}
		if (!r.err && rt_module_add_function(m, name, (int)nargs, args, NULL))
			r.err = 1;
		free(args);
		if (!r.err && parse_launches(&r, &m->funcs[m->nfunc - 1]))
			r.err = 1;
	}
	uint64_t nblob = get_uint(&r, 4, "blob count");
	if (!r.err && nblob > 1024)
		bad(&r, "%llu blobs (at most 1024)", nblob);
	for (uint64_t i = 0; i < nblob && !r.err; i++) {
		get_str(&r, name, sizeof name, "blob name");
		uint64_t n = get_uint(&r, 8, "blob size");
		if (r.err || need(&r, n, "blob data"))
			break;
		if (rt_module_add_blob(m, name, r.p + r.off, n))
			r.err = 1;
		r.off += n;
	}
	if (!r.err && r.off != r.n)
		bad(&r, "%llu bytes of trailing garbage", r.n - r.off);
	if (r.err) {
		kiln_module_free(m);
		return NULL;
	}
	return m;
}

#ifndef __EMSCRIPTEN__
static int resolve_symbols(kiln_module *m, const char *path)
{
	for (int i = 0; i < m->nfunc; i++) {
		m->funcs[i].fn = dlsym(m->dl, m->funcs[i].name);
		if (!m->funcs[i].fn)
			return rt_error("%s: the library has no symbol for function '%s'", path, m->funcs[i].name);
	}
	return 0;
}

/*
 * An ELF file's headers against its size: dlopen maps what the program
 * headers say, and a truncated library then dies with SIGBUS on the first
 * touch of a page past the end instead of returning an error.
 */
static int elf_check(int fd, const char *path)
{
	struct stat st;
	Elf64_Ehdr eh;
	if (fstat(fd, &st) || pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh)
		return rt_error("%s: cannot read its ELF header", path);
	uint64_t size = (uint64_t)st.st_size;
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr))
		return rt_error("%s: not a 64-bit ELF shared library", path);
	if (eh.e_phoff > size || (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > size - eh.e_phoff ||
	    (eh.e_shnum && (eh.e_shoff > size || (uint64_t)eh.e_shnum * eh.e_shentsize > size - eh.e_shoff)))
		return rt_error("%s: truncated library (its headers point past its %llu bytes)", path,
		                (unsigned long long)size);
	for (int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (uint64_t)i * sizeof ph)) != (ssize_t)sizeof ph)
			return rt_error("%s: cannot read its program headers", path);
		if (ph.p_type == PT_LOAD && (ph.p_offset > size || ph.p_filesz > size - ph.p_offset))
			return rt_error("%s: truncated library (segment %d ends at %llu of %llu bytes)", path, i,
			                (unsigned long long)(ph.p_offset + ph.p_filesz), (unsigned long long)size);
	}
	return 0;
}

static kiln_module *load_shared(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int bad = fd < 0 ? rt_error("cannot open module '%s'", path) : elf_check(fd, path);
	if (fd >= 0)
		close(fd);
	if (bad)
		return NULL;
	/* dlopen searches the library path for a name without a '/': "m.so" means ./m.so here */
	char local[4200];
	if (!strchr(path, '/'))
		snprintf(local, sizeof local, "./%s", path);
	void *dl = dlopen(strchr(path, '/') ? path : local, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		rt_error("cannot load '%s': %s", path, dlerror());
		return NULL;
	}
	/* a model library carries its whole container (plan, weights) as data: that one, else the metadata */
	const uint8_t *blob = dlsym(dl, RT_DATA_SYMBOL);
	const int64_t *size = dlsym(dl, RT_DATA_SIZE_SYMBOL);
	if (!blob || !size) {
		blob = dlsym(dl, RT_BLOB_SYMBOL);
		size = dlsym(dl, RT_BLOB_SIZE_SYMBOL);
	}
	if (!blob || !size || *size < 0) {
		dlclose(dl);
		rt_error("%s: a shared library, but not one exported by kiln (no %s symbol)", path, RT_BLOB_SYMBOL);
		return NULL;
	}
	kiln_module *m = rt_module_parse(blob, (size_t)*size, path);
	if (!m) {
		dlclose(dl);
		return NULL;
	}
	m->dl = dl;
	if (resolve_symbols(m, path)) {
		kiln_module_free(m);
		return NULL;
	}
	return m;
}

/*
 * CPU code saved as a linked library ("llvm-so"): loaded from memory through
 * a memfd (a file with no name on any disk), so a deployed runtime needs no
 * compiler, linker or writable folder. Where memfd_create is missing (old
 * kernels) a private temporary file serves instead.
 */
static int load_linked(kiln_module *m, const rt_blob *so, const char *path)
{
	int fd = -1;
	char file[64] = "";
#ifdef MFD_CLOEXEC
	fd = memfd_create("kiln-module", MFD_CLOEXEC);
#endif
	if (fd < 0) {
		snprintf(file, sizeof file, "/tmp/kiln-load-XXXXXX");
		fd = mkstemp(file);
		if (fd < 0)
			return rt_error("%s: cannot create a memory file or a temporary file for its code", path);
	}
	size_t done = 0;
	while (done < so->size) {
		ssize_t w = write(fd, so->data + done, so->size - done);
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	int rc;
	if (done != so->size) {
		rc = rt_error("%s: cannot write its code to a memory file", path);
	} else {
		char name[64];
		if (file[0])
			snprintf(name, sizeof name, "%s", file);
		else
			snprintf(name, sizeof name, "/proc/self/fd/%d", fd);
		if (elf_check(fd, path))
			rc = -1;
		else if (!(m->dl = dlopen(name, RTLD_NOW | RTLD_LOCAL)))
			rc = rt_error("%s: cannot load its code: %s", path, dlerror());
		else
			rc = resolve_symbols(m, path);
	}
	/* dlopen returns a library already loaded under the same name without
	 * opening the file: a memfd's name is its descriptor's number, so it stays
	 * open while the library is loaded, and no two modules loaded at once share
	 * a name (closed, the next module's memfd took the number, and got the
	 * first module's code) */
	if (!file[0] && m->dl)
		m->code_fd = fd + 1;
	else
		close(fd);
	if (file[0])
		unlink(file);
	return rc;
}
#else
/*
 * The web runtime has no dynamic loader and no C compiler: CPU code reaches
 * it as a wasm kernel binary that the JS host instantiates.
 */
static kiln_module *load_shared(const char *path)
{
	rt_error("%s: a shared library; the web runtime loads module containers only", path);
	return NULL;
}

static int load_linked(kiln_module *m, const rt_blob *so, const char *path)
{
	return rt_error("%s: holds native code (target %s); the web runtime runs wasm, webgl and webgpu modules", path,
	                m->target);
}
#endif

kiln_module *kiln_module_load_bytes(const void *data, size_t size, const char *what)
{
	what = what ? what : "module";
	if (!data) {
		rt_error("%s: no data (NULL)", what);
		return NULL;
	}
	kiln_module *m = rt_module_parse(data, size, what);
	if (!m)
		return NULL;
	const rt_blob *so = rt_module_blob(m, "llvm-so");
	int rc = so ? load_linked(m, so, what) : 0;
	if (!so && rt_module_blob(m, "llvm-obj"))
		rc = rt_error("%s: holds unlinked object code, which this runtime does not link (it needs no toolchain); "
		              "save the module with kiln_module_save", what);
	if (rc) {
		kiln_module_free(m);
		return NULL;
	}
	return m;
}

kiln_module *kiln_module_load(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		rt_error("cannot open module '%s'", path);
		return NULL;
	}
	uint8_t head[4] = {0};
	size_t got = fread(head, 1, 4, f);
	if (got == 4 && !memcmp(head, "\x7f" "ELF", 4)) {
		fclose(f);
		return load_shared(path);
	}
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	if (n < 0 || n > (1L << 31)) {
		fclose(f);
		rt_error("%s: unreadable or larger than 2 GiB", path);
		return NULL;
	}
	uint8_t *data = malloc((size_t)n + 1);
	size_t rd = data ? fread(data, 1, (size_t)n, f) : 0;
	fclose(f);
	if (rd != (size_t)n) {
		free(data);
		rt_error("%s: read failed", path);
		return NULL;
	}
	kiln_module *m = kiln_module_load_bytes(data, (size_t)n, path);
	free(data);
	return m;
}
