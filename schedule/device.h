/*
 * device.h — the host/device split: a lowered function for a GPU-style
 * target becomes a list of kernels, each launched over a grid of blocks.
 */
#ifndef KILN_DEVICE_H
#define KILN_DEVICE_H

#include "ir/ir.h"

/* One kernel: its body with thread loops replaced by index variables. */
typedef struct {
	const char *name;
	ir_stmt *body;
	int64_t grid[3], block[3];   /* blockIdx / threadIdx extents (1 when unused) */
	ir_expr *index[7];           /* the variable standing for each kiln_thread (NULL when unused) */
	int nparam;
	ir_buffer **params;          /* global buffers the kernel touches, in first-use order */
	int nwritten;
	ir_buffer **written;         /* the global buffers it stores to */
	int nshared;
	ir_buffer **shared;          /* shared buffers, declared at the kernel's top */
	int64_t shared_bytes;
} ir_kernel;

/* A function as the device runs it: kernels in launch order, and the global
 * intermediates the host allocates for them. */
typedef struct {
	const kiln_func *func;
	int nkernel;
	ir_kernel *kernels;
	int ntemp;
	ir_buffer **temps;
} ir_device_func;

/* What a device can launch. */
typedef struct {
	int64_t max_threads;      /* per block */
	int64_t max_shared_bytes; /* per block */
	int64_t max_grid;         /* blocks per dimension */
} ir_device_limits;

/* Splits f into kernels; NULL with a message when the schedule cannot run on a device. */
ir_device_func *ir_split_device(kiln_ctx *ctx, const kiln_func *f, const ir_device_limits *lim);

#endif
