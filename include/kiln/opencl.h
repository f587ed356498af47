/*
 * kiln OpenCL device: selecting and listing devices. Functions built for
 * the "opencl" target run through kiln_module_call like any other.
 */
#ifndef KILN_OPENCL_H
#define KILN_OPENCL_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Chooses the platform and device by case-insensitive substrings ("" = any);
 * overrides KILN_OPENCL_PLATFORM / KILN_OPENCL_DEVICE. Call before the first run. */
void kiln_opencl_select(const char *platform, const char *device);
/* "platform / device" of the device runs use, or NULL (reason in kiln_rt_last_error). */
const char *kiln_opencl_device_name(void);
/* "vendor / renderer" of the GLES device webgl modules run on natively, or NULL. */
const char *kiln_gles_device_name(void);
/* Writes one line per OpenCL device into buf; returns the count. */
int kiln_opencl_devices(char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif
