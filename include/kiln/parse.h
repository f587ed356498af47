/*
 * kiln's text tensor-expression language (.kte files): operators and their
 * schedules, parsed into the same tensors and schedules as the C API.
 *
 *   op swish_rowsum(X: f32[129, 1000]) -> Y {
 *     Y[i] = sum(j, X[i, j] * sigmoid(X[i, j]))
 *   }
 *   schedule llvm {
 *     split Y.j 8 -> jo, ji
 *     rfactor Y.ji -> Yrf
 *     vectorize Yrf.ji
 *   }
 *
 * The README's "The .kte language" section is the reference of every
 * construct. Errors name file:line:column and show the line with a caret.
 */
#ifndef KILN_PARSE_H
#define KILN_PARSE_H

#include "schedule.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kiln_program kiln_program;

/* Parses text (file names it in errors) into ctx's arena, applying every
 * schedule block once to check it. NULL with the message in kiln_error(ctx). */
kiln_program *kiln_parse(kiln_ctx *ctx, const char *file, const char *text);

int kiln_program_num_ops(const kiln_program *p);
const char *kiln_program_op_name(const kiln_program *p, int i);
/* The op's function arguments, inputs (in declaration order) then outputs;
 * their count, or -1 (no such op). nin receives the number of inputs. */
int kiln_program_args(const kiln_program *p, const char *op, int *nin, kiln_tensor ***args);
/*
 * A fresh schedule of op for target: the op's schedule blocks that name the
 * target, else its blocks that name none, else the target's default
 * schedule (kiln_schedule_for). which (may be NULL) receives "schedule
 * <targets> at file:line" or "default".
 */
kiln_schedule *kiln_program_schedule(kiln_program *p, const char *op, const char *target, const char **which);

#ifdef __cplusplus
}
#endif
#endif
