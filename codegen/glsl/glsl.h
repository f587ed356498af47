/*
 * glsl.h — the GLSL ES 3.00 (WebGL2) language of the C-like printer.
 */
#ifndef KILN_CG_GLSL_H
#define KILN_CG_GLSL_H

#include "codegen/c_like.h"

/* Textures hold tensors in rows of at most this many texels; the runtime uses the same rule. */
#define KILN_GLSL_WIDTH 4096
/* The texture width of a tensor of n elements. */
int64_t cg_glsl_width(int64_t n);

extern const cg_lang cg_glsl;

#endif
