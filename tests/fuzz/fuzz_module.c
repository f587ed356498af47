/*
 * fuzz_module.c — libFuzzer target for the module container reader
 * (runtime/module.c): any bytes are parsed or refused with a message, never
 * a crash, a hang or an allocation sized by an unchecked field. Built with
 * FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, so the checksum does not stop the
 * fuzzer at the door: every field behind it is reachable. What parses is
 * walked through the public accessors.
 */
#include <stddef.h>
#include <stdint.h>

#include "runtime/rt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	kiln_module *m = rt_module_parse(data, size, "fuzz");
	for (int i = 0; m && i < kiln_module_num_functions(m); i++) {
		const kiln_arg_info *args;
		int n = kiln_module_function_args(m, kiln_module_function_name(m, i), &args);
		for (int a = 0; a < n; a++) {
			char buf[16];
			kiln_dtype_str(args[a].dtype, buf);
		}
	}
	kiln_module_free(m);
	return 0;
}
