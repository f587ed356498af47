/*
 * opencl.h — the OpenCL C language of the C-like printer.
 */
#ifndef KILN_CG_OPENCL_H
#define KILN_CG_OPENCL_H

#include "codegen/c_like.h"

extern const cg_lang cg_opencl;

#endif
