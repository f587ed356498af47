/*
 * rpc.h — the kiln tool's RPC commands (tools/rpc.c).
 */
#ifndef KILN_TOOLS_RPC_H
#define KILN_TOOLS_RPC_H

#include <stddef.h>

#include "kiln/rpc.h"

/* kiln rpc server|proxy|devices ...: the exit status. */
int cli_rpc(int argc, char **argv);
/* The key from key (--key), else KILN_RPC_KEY; NULL (printed) when neither. */
const char *cli_rpc_key(const char *key);
/* A session with the server or proxy at addr (HOST:PORT); NULL (printed) on failure. */
kiln_rpc *cli_rpc_connect(const char *addr, const char *key);
/* HOST:PORT into host (n bytes) and a port 1-65535; 0 or -1. */
int rpc_split(const char *s, char *host, size_t n, int *port);

#endif
