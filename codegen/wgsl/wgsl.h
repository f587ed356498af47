/*
 * wgsl.h — the WGSL language of the C-like printer (the webgpu target).
 */
#ifndef KILN_CG_WGSL_H
#define KILN_CG_WGSL_H

#include "codegen/c_like.h"

/* WebGPU's maxComputeWorkgroupsPerDimension: a kernel whose grid exceeds it
 * in some dimension is dispatched folded (wgsl.c says how). */
#define KILN_WGSL_MAX_GROUPS 65535

extern const cg_lang cg_wgsl;

#endif
