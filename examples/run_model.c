/*
 * run_model — runs a compiled model with libkiln_runtime alone (no compiler):
 *
 *   kiln compile model.onnx -o model.so      (or -o model.kmod)
 *   run_model model.so
 *
 * Every input is filled with the same pattern, the model runs, and each
 * output is printed: its name, shape, sum and first values.
 */
#include <stdio.h>

#include "kiln/model.h"

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s MODEL.so|MODEL.kmod\n", argv[0]);
		return 2;
	}
	kiln_model *m = kiln_model_load(argv[1]);
	if (!m) {
		fprintf(stderr, "%s\n", kiln_rt_last_error());
		return 1;
	}
	for (int i = 0; i < kiln_model_num_inputs(m); i++) {
		const kiln_arg_info *in = kiln_model_input_info(m, i);
		kiln_array *x = kiln_array_empty(in->ndim, in->shape, in->dtype);
		if (!x || in->dtype.code != KILN_FLOAT || in->dtype.bits != 32) {
			fprintf(stderr, "input '%s': this example fills float32 inputs only\n", in->name);
			return 1;
		}
		for (int64_t k = 0; k < kiln_array_numel(x); k++)
			((float *)x->data)[k] = (float)(k % 7 - 3) * 0.25f; /* the pattern model_run_plain uses */
		if (kiln_model_set_input(m, in->name, x)) {
			fprintf(stderr, "%s\n", kiln_rt_last_error());
			return 1;
		}
		kiln_array_free(x);
	}
	if (kiln_model_run(m)) {
		fprintf(stderr, "%s\n", kiln_rt_last_error());
		return 1;
	}
	for (int i = 0; i < kiln_model_num_outputs(m); i++) {
		const kiln_array *y = kiln_model_get_output(m, i);
		double sum = 0;
		for (int64_t k = 0; k < kiln_array_numel(y); k++)
			sum += ((const float *)y->data)[k];
		printf("%s: %lld elements, sum %.4f, first %.5f\n", kiln_model_output_info(m, i)->name,
		       (long long)kiln_array_numel(y), sum, ((const float *)y->data)[0]);
	}
	kiln_model_free(m);
	return 0;
}
