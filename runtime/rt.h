/*
 * rt.h — runtime internals shared by the runtime's files.
 */
#ifndef KILN_RT_H
#define KILN_RT_H

#include "kiln/runtime.h"

/* Sets this thread's runtime error and returns -1. */
int rt_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One function of a module. */
typedef struct {
	char *name;
	int nargs;
	kiln_arg_info *args;
	void *fn; /* CPU entry point once resolved */
} rt_function;

/* A named blob: object code, kernel source, ... */
typedef struct {
	char *name;
	uint8_t *data;
	size_t size;
} rt_blob;

struct kiln_module {
	char target[32];
	int nfunc;
	rt_function *funcs;
	int nblob;
	rt_blob *blobs;
	void *dl;                   /* dlopen handle of an exported library */
	void *owner;                /* e.g. the JIT that holds the code */
	void (*owner_free)(void *owner);
};

/* Serializes the module container (metadata + blobs); malloc'ed bytes. */
int rt_module_serialize(const kiln_module *m, uint8_t **out, size_t *size);
/* Parses a container; what says where the bytes came from (for messages). */
kiln_module *rt_module_parse(const uint8_t *data, size_t size, const char *what);
kiln_module *rt_module_new(const char *target);
int rt_module_add_function(kiln_module *m, const char *name, int nargs, const kiln_arg_info *args, void *fn);
int rt_module_add_blob(kiln_module *m, const char *name, const void *data, size_t size);
const rt_blob *rt_module_blob(const kiln_module *m, const char *name);
rt_function *rt_module_find(const kiln_module *m, const char *name);

/* The symbol an exported library uses to carry its module container. */
#define RT_BLOB_SYMBOL "__kiln_module_blob"
#define RT_BLOB_SIZE_SYMBOL "__kiln_module_blob_size"

double rt_now_ms(void);

#endif
