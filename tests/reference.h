/*
 * reference.h — every registry operator written again as plain C loops, from
 * the operators' published definitions (ONNX's operator pages, numpy's
 * broadcasting), sharing nothing with ops/ or the oracle: the second truth
 * the tests compare kernels with. The oracle evaluates the same
 * tensor-expression definition a kernel is built from, so only this catches
 * a wrong definition (a gelu constant, a padding offset).
 */
#ifndef KILN_TEST_REFERENCE_H
#define KILN_TEST_REFERENCE_H

#include "kiln/runtime.h"

/*
 * Computes operator `op` with the registry's "key=value,..." attributes
 * (their documented defaults when absent) from the input arrays into want
 * (numel(out) doubles), after checking that out's shape is the one the
 * definition gives for these inputs. Returns 0; -1 with a message in err
 * when the shape differs or the operator is unknown to the reference.
 */
int ref_eval(const char *op, const char *attrs, int nin, const kiln_array *const *ins, const kiln_array *out,
             double *want, char *err, size_t errlen);

/* Whether the reference knows op (every registry operator should). */
int ref_knows(const char *op);

#endif
