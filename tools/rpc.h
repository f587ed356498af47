/*
 * rpc.h — the kiln tool's RPC commands (tools/rpc.c).
 */
#ifndef KILN_TOOLS_RPC_H
#define KILN_TOOLS_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/rpc.h"

/* kiln rpc server|proxy|devices ...: the exit status. */
int cli_rpc(int argc, char **argv);
/* The key from key (--key), else KILN_RPC_KEY; NULL (printed) when neither. */
const char *cli_rpc_key(const char *key);
/* A session with the server or proxy at addr (HOST:PORT); NULL (printed) on failure. */
kiln_rpc *cli_rpc_connect(const char *addr, const char *key);
/* HOST:PORT into host (n bytes) and a port 1-65535; 0 or -1. */
int rpc_split(const char *s, char *host, size_t n, int *port);

/* kiln run|bench M.kmod --rpc: the model loaded there, inputs from .npy files or random. */
int cli_rpc_model(const char *path, const char *addr, const char *key, bool bench, int ninput,
                  const char *const *inputs, const char *out, uint64_t seed, int repeat);
/*
 * The model module at path (a temporary file: removed once read) loaded on
 * the server at addr (the key from KILN_RPC_KEY), on random inputs of seed: with outs (room for nout), one
 * run's outputs (allocated, *n of them); else each step's time inside runs
 * whole runs (kiln_rpc_model_step_times: *steps, *n). 0, or -1 with err.
 */
int cli_rpc_model_measure(const char *path, const char *addr, uint64_t seed, int runs, kiln_rpc_step **steps,
                          int nout, kiln_array **outs, int *n, char *err, size_t errn);
/* A model output's summary line, and -o's .npy files (kiln.c, shared with the remote path). */
void cli_print_output(const char *name, const kiln_array *y);
int cli_write_output(const char *out, int n, const char *name, const kiln_array *y);

#endif
