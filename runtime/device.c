/*
 * device.c — which device runs a module: the one table from target names to
 * devices (rt.h's rt_device). A native runtime runs llvm, opencl and webgl
 * modules; the web runtime (Emscripten) runs wasm, webgpu and webgl ones; a
 * remote module carries its own device (rpc/client.c).
 */
#include <string.h>

#include "rt.h"

static const struct {
	const char *target;
	const rt_device *device;
} devices[] = {
#ifdef __EMSCRIPTEN__
	{"wasm", &rt_wasm_device},
	{"webgpu", &rt_webgpu_device},
	{"webgl", &rt_gles_device},
#else
	{"llvm", &rt_cpu_device},
	{"opencl", &rt_opencl_device},
	{"webgl", &rt_gles_device},
#endif
};

const rt_device *rt_device_for(kiln_module *m)
{
	if (m->device)
		return m->device;
	for (size_t i = 0; i < sizeof devices / sizeof *devices; i++)
		if (!strcmp(m->target, devices[i].target))
			return m->device = devices[i].device;
#ifdef __EMSCRIPTEN__
	rt_error("a %s module runs natively; the web runtime runs wasm, webgl and webgpu modules", m->target);
#else
	if (!strcmp(m->target, "wasm") || !strcmp(m->target, "webgpu"))
		rt_error("a %s module runs in a JavaScript host (node or a browser); this native runtime cannot call it",
		         m->target);
	else
		rt_error("this runtime cannot run target '%s'", m->target);
#endif
	return NULL;
}
