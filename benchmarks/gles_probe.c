/*
 * gles_probe — the ceilings of fragment-shader work on this machine's
 * EGL / OpenGL ES 3 device, to read the WebGL target's figures against:
 *
 *   fma      independent vec4 multiply-adds, no memory: the arithmetic rate
 *            a fragment shader can reach at all;
 *   fetch    RGBA32F texelFetch, neighbouring fragments reading neighbouring
 *            texels: the texel rate every kiln WebGL kernel's reads share;
 *   matmul   a hand-written RGBA matmul, 4x4 outputs per fragment written to
 *            4 render targets (rows 4r..4r+3), B reused across 4 rows: what
 *            register tiling could bring over one output (or one texel) per
 *            fragment. Checked on a few outputs against double sums.
 *
 *   gles_probe [--small]     one JSON line per case (--small: tiny sizes, for llvmpipe)
 *
 * On NVIDIA's H100 / H200 only a few TPCs of the chip run graphics shaders,
 * which is why fma there is about 1/30 of what the same GPU computes in
 * OpenCL or Vulkan compute.
 */
#include <EGL/egl.h>
#include <EGL/eglext.h>
#include <GLES3/gl3.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int context(void)
{
	PFNEGLGETPLATFORMDISPLAYEXTPROC get = (PFNEGLGETPLATFORMDISPLAYEXTPROC)eglGetProcAddress("eglGetPlatformDisplayEXT");
	EGLDisplay d = get ? get(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY, NULL) : EGL_NO_DISPLAY;
	if (d == EGL_NO_DISPLAY)
		d = eglGetDisplay(EGL_DEFAULT_DISPLAY);
	EGLint major, minor, n = 0;
	EGLint cattrs[] = {EGL_SURFACE_TYPE, EGL_PBUFFER_BIT, EGL_RENDERABLE_TYPE, EGL_OPENGL_ES3_BIT, EGL_NONE};
	EGLint xattrs[] = {EGL_CONTEXT_MAJOR_VERSION, 3, EGL_NONE};
	EGLConfig cfg;
	if (d == EGL_NO_DISPLAY || !eglInitialize(d, &major, &minor) || !eglChooseConfig(d, cattrs, &cfg, 1, &n) || n < 1 ||
	    !eglBindAPI(EGL_OPENGL_ES_API))
		return -1;
	EGLContext c = eglCreateContext(d, cfg, EGL_NO_CONTEXT, xattrs);
	return c != EGL_NO_CONTEXT && eglMakeCurrent(d, EGL_NO_SURFACE, EGL_NO_SURFACE, c) ? 0 : -1;
}

static GLuint shader(GLenum kind, const char *src)
{
	GLuint s = glCreateShader(kind);
	glShaderSource(s, 1, &src, NULL);
	glCompileShader(s);
	GLint ok;
	glGetShaderiv(s, GL_COMPILE_STATUS, &ok);
	if (!ok) {
		char log[4096];
		glGetShaderInfoLog(s, sizeof log, NULL, log);
		fprintf(stderr, "gles_probe: shader does not compile: %s\n", log);
		exit(1);
	}
	return s;
}

/* A full-screen triangle and the fragment shader fs, with samplers A (unit 0) and B (unit 1). */
static GLuint program(const char *fs)
{
	static const char vs[] = "#version 300 es\n"
	                         "void main() { vec2 p = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));"
	                         " gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0); }\n";
	GLuint p = glCreateProgram();
	glAttachShader(p, shader(GL_VERTEX_SHADER, vs));
	glAttachShader(p, shader(GL_FRAGMENT_SHADER, fs));
	glLinkProgram(p);
	glUseProgram(p);
	glUniform1i(glGetUniformLocation(p, "A"), 0);
	glUniform1i(glGetUniformLocation(p, "B"), 1);
	return p;
}

static GLuint texture(int w, int h, const float *rgba)
{
	GLuint t;
	glGenTextures(1, &t);
	glBindTexture(GL_TEXTURE_2D, t);
	glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA32F, w, h, 0, GL_RGBA, GL_FLOAT, rgba);
	glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
	glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
	return t;
}

/* Median seconds of one w x h draw (15 samples of `reps` draws, each ending in glFinish). */
static double time_draw(int w, int h, int reps)
{
	double t[15];
	glViewport(0, 0, w, h);
	glDrawArrays(GL_TRIANGLES, 0, 3);
	glFinish();
	for (int i = 0; i < 15; i++) {
		double t0 = now();
		for (int r = 0; r < reps; r++)
			glDrawArrays(GL_TRIANGLES, 0, 3);
		glFinish();
		t[i] = (now() - t0) / reps;
	}
	qsort(t, 15, sizeof t[0], cmp_double);
	return t[7];
}

static const char *device;

static void probe_fma(int w, int h, int iters)
{
	char fs[1024];
	snprintf(fs, sizeof fs,
	         "#version 300 es\nprecision highp float;\nout vec4 o;\nuniform float u;\n"
	         "void main() { vec4 a0 = gl_FragCoord.xyxy * 1e-6, a1 = a0 + 0.1, a2 = a0 + 0.2, a3 = a0 + 0.3,"
	         " a4 = a0 + 0.4, a5 = a0 + 0.5, a6 = a0 + 0.6, a7 = a0 + 0.7; vec4 b = vec4(0.999 + u), c = vec4(0.001);\n"
	         " for (int i = 0; i < %d; i++) { a0 = a0 * b + c; a1 = a1 * b + c; a2 = a2 * b + c; a3 = a3 * b + c;"
	         " a4 = a4 * b + c; a5 = a5 * b + c; a6 = a6 * b + c; a7 = a7 * b + c; }\n"
	         " o = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7; }\n",
	         iters);
	GLuint p = program(fs);
	double t = time_draw(w, h, 3);
	printf("{\"bench\": \"gles_probe\", \"case\": \"fma\", \"device\": \"%s\", \"ms\": %.3f, \"gflops\": %.1f}\n", device,
	       t * 1e3, 2.0 * w * h * iters * 32 / t / 1e9);
	glDeleteProgram(p);
}

static void probe_fetch(int w, int h, int iters)
{
	int n = 1024;
	float *data = malloc(sizeof(float) * 4 * n * n);
	for (int i = 0; i < 4 * n * n; i++)
		data[i] = (float)(i % 7) * 0.1f;
	glActiveTexture(GL_TEXTURE0);
	GLuint t = texture(n, n, data);
	free(data);
	char fs[1024];
	snprintf(fs, sizeof fs,
	         "#version 300 es\nprecision highp float;\nprecision highp sampler2D;\nuniform sampler2D A;\nout vec4 o;\n"
	         "void main() { ivec2 p = ivec2(gl_FragCoord.xy) & %d; vec4 a = vec4(0.0);\n"
	         " for (int i = 0; i < %d; i++) a += texelFetch(A, ivec2((p.x + i) & %d, p.y), 0);\n o = a; }\n",
	         n - 1, iters, n - 1);
	GLuint p = program(fs);
	double s = time_draw(w, h, 3);
	printf("{\"bench\": \"gles_probe\", \"case\": \"fetch\", \"device\": \"%s\", \"ms\": %.3f, \"gtexels\": %.2f}\n",
	       device, s * 1e3, (double)w * h * iters / s / 1e9);
	glDeleteProgram(p);
	glDeleteTextures(1, &t);
}

static void probe_matmul(int n)
{
	/* row-major n x n matrices, a texel = 4 consecutive columns of a row */
	float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n), *c = malloc(sizeof(float) * n * n);
	srand(1);
	for (int i = 0; i < n * n; i++) {
		a[i] = (float)rand() / RAND_MAX - 0.5f;
		b[i] = (float)rand() / RAND_MAX - 0.5f;
	}
	GLuint out[4];
	GLenum bufs[4];
	/* render target r holds rows 4i + r: a fragment (j, i) writes C[4i..4i+3][4j..4j+3] */
	for (int r = 0; r < 4; r++) {
		out[r] = texture(n / 4, n / 4, NULL);
		glFramebufferTexture2D(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0 + r, GL_TEXTURE_2D, out[r], 0);
		bufs[r] = GL_COLOR_ATTACHMENT0 + r;
	}
	glDrawBuffers(4, bufs);
	/* the inputs after the targets: making a texture binds it to the active unit */
	glActiveTexture(GL_TEXTURE0);
	GLuint ta = texture(n / 4, n, a);
	glActiveTexture(GL_TEXTURE1);
	GLuint tb = texture(n / 4, n, b);
	char fs[2048];
	snprintf(fs, sizeof fs,
	         "#version 300 es\nprecision highp float;\nprecision highp int;\nprecision highp sampler2D;\n"
	         "uniform sampler2D A;\nuniform sampler2D B;\n"
	         "layout(location = 0) out vec4 o0;\nlayout(location = 1) out vec4 o1;\n"
	         "layout(location = 2) out vec4 o2;\nlayout(location = 3) out vec4 o3;\n"
	         "void main() { int j = int(gl_FragCoord.x), i = 4 * int(gl_FragCoord.y); vec4 c0 = vec4(0.0), c1 = c0, c2 = c0, c3 = c0;\n"
	         " for (int k = 0; k < %d; k++) {\n"
	         "  vec4 b0 = texelFetch(B, ivec2(j, 4 * k), 0), b1 = texelFetch(B, ivec2(j, 4 * k + 1), 0),"
	         " b2 = texelFetch(B, ivec2(j, 4 * k + 2), 0), b3 = texelFetch(B, ivec2(j, 4 * k + 3), 0);\n"
	         "  vec4 a = texelFetch(A, ivec2(k, i), 0); c0 += a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;\n"
	         "  a = texelFetch(A, ivec2(k, i + 1), 0); c1 += a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;\n"
	         "  a = texelFetch(A, ivec2(k, i + 2), 0); c2 += a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;\n"
	         "  a = texelFetch(A, ivec2(k, i + 3), 0); c3 += a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;\n }\n"
	         " o0 = c0; o1 = c1; o2 = c2; o3 = c3; }\n",
	         n / 4);
	GLuint p = program(fs);
	double t = time_draw(n / 4, n / 4, 1);
	/* check sampled outputs: row 4i + r of C is row i of target r */
	double maxerr = 0;
	for (int r = 0; r < 4; r++) {
		glReadBuffer(GL_COLOR_ATTACHMENT0 + r);
		glReadPixels(0, 0, n / 4, n / 4, GL_RGBA, GL_FLOAT, c);
		for (int s = 0; s < 16; s++) {
			int i = rand() % (n / 4), j = rand() % n;
			double ref = 0;
			for (int k = 0; k < n; k++)
				ref += (double)a[(4 * i + r) * n + k] * b[k * n + j];
			maxerr = fmax(maxerr, fabs(ref - c[i * n + j]));
		}
	}
	printf("{\"bench\": \"gles_probe\", \"case\": \"matmul %dx%dx%d, 4x4 per fragment\", \"device\": \"%s\", "
	       "\"ms\": %.3f, \"gflops\": %.1f, \"max_abs_diff\": %.2g}\n",
	       n, n, n, device, t * 1e3, 2.0 * n * n * n / t / 1e9, maxerr);
	glDrawBuffers(1, bufs);
	for (int r = 0; r < 4; r++)
		glFramebufferTexture2D(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0 + r, GL_TEXTURE_2D, 0, 0);
	glReadBuffer(GL_COLOR_ATTACHMENT0);
	glDeleteTextures(4, out);
	glDeleteTextures(1, &ta);
	glDeleteTextures(1, &tb);
	glDeleteProgram(p);
	free(a);
	free(b);
	free(c);
}

int main(int argc, char **argv)
{
	int small = argc > 1 && !strcmp(argv[1], "--small");
	if (context()) {
		printf("{\"bench\": \"gles_probe\", \"skipped\": \"no EGL / OpenGL ES 3 context here\"}\n");
		return 0;
	}
	if (!strstr((const char *)glGetString(GL_EXTENSIONS), "GL_EXT_color_buffer_float")) {
		printf("{\"bench\": \"gles_probe\", \"skipped\": \"no EXT_color_buffer_float\"}\n");
		return 0;
	}
	static char name[256];
	snprintf(name, sizeof name, "%s", (const char *)glGetString(GL_RENDERER));
	device = name;
	GLuint vao, fbo;
	glGenVertexArrays(1, &vao);
	glBindVertexArray(vao);
	glGenFramebuffers(1, &fbo);
	glBindFramebuffer(GL_FRAMEBUFFER, fbo);
	int w = small ? 64 : 2048;
	GLuint target = texture(w, w, NULL);
	glFramebufferTexture2D(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_TEXTURE_2D, target, 0);
	probe_fma(w, w, 256);
	probe_fetch(w, w, 256);
	glFramebufferTexture2D(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_TEXTURE_2D, 0, 0);
	for (int n = small ? 64 : 1024; n <= (small ? 64 : 4096); n *= 2)
		probe_matmul(n);
	GLenum err = glGetError();
	if (err) {
		fprintf(stderr, "gles_probe: GL error 0x%x\n", err);
		return 1;
	}
	return 0;
}
