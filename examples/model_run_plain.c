/*
 * model_run_plain — calls a model library through its plain C entry point,
 * with no kiln header at all: link the library the compiler wrote.
 *
 *   kiln compile model.onnx -o model.so
 *   cc -o app model_run_plain.c model.so -Wl,-rpath,.   (libkiln_runtime beside it or on the path)
 *
 * model_run takes every input packed in order and writes every output packed
 * in order; here one input of n_in floats and one output of n_out floats.
 */
#include <stdio.h>
#include <stdlib.h>

int model_run(const float *input, float *output);

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s N_INPUT_FLOATS N_OUTPUT_FLOATS\n", argv[0]);
		return 2;
	}
	long n_in = atol(argv[1]), n_out = atol(argv[2]);
	float *x = malloc(sizeof(float) * (size_t)n_in), *y = malloc(sizeof(float) * (size_t)n_out);
	if (!x || !y || n_in < 1 || n_out < 1)
		return 2;
	for (long k = 0; k < n_in; k++)
		x[k] = (float)(k % 7 - 3) * 0.25f;
	if (model_run(x, y)) {
		fprintf(stderr, "model_run failed\n");
		return 1;
	}
	double sum = 0;
	for (long k = 0; k < n_out; k++)
		sum += y[k];
	printf("output: %ld elements, sum %.4f, first %.5f\n", n_out, sum, y[0]);
	free(x), free(y);
	return 0;
}
