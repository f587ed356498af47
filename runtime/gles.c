/*
 * gles.c — the GLES device: runs webgl modules natively through EGL
 * (surfaceless, Mesa llvmpipe here, NVIDIA on the GPU machine). Only
 * OpenGL ES 3.0 calls that WebGL2 also has are used, so this file can later
 * compile under Emscripten against WebGL2.
 *
 * Every buffer is an R32F texture of cg_glsl_width(n) columns; a kernel
 * draws one full-screen triangle into the texture of its output (an FBO,
 * EXT_color_buffer_float), reading its inputs with texelFetch. A kernel
 * whose fragments compute several blocks of their output ("rows=L") draws
 * into L block textures, which one more draw gathers into the output.
 *
 * Compiled by Emscripten, the same file runs on WebGL2: only the context
 * comes from elsewhere (a canvas the JS layer registers as "#kiln-webgl").
 */
#ifdef __EMSCRIPTEN__
#include <emscripten/html5.h>
#else
#include <EGL/egl.h>
#include <EGL/eglext.h>
#include <dlfcn.h>
#endif
#include <GLES3/gl3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

#define WIDTH 4096 /* texels per row: KILN_GLSL_WIDTH of the code generator */

typedef struct {
	GLuint vs, fbo, vao;
	GLuint gather;   /* the program that gathers a kernel's blocks into its output (made when first needed) */
	GLint gather_at[4]; /* its uniforms: block texels, block texture width, output width, output texels */
	int max_targets; /* render targets one draw can write */
	int attached;    /* attachments of fbo that may hold a texture */
	GLenum read_fmt; /* how R32F textures read back: GL_RED, else GL_RGBA (WebGL's one sure format) */
	char name[256];
} gl_state;

typedef struct {
	char *src;
	GLuint prog;
} gl_prog;

/* A function's textures and programs, kept between calls. */
typedef struct {
	int n;
	GLuint *tex;
	int64_t *elems;
	GLuint *progs;
	float *staging;
	int lanes; /* elements per texel: 1 (R32F) or 4 (RGBA32F) for the whole function */
	int *outs;     /* outputs of each launch */
	int *rows;     /* blocks of each output a fragment computes (a render target each) */
	GLuint **blks; /* a launch's block textures, output o's block r at o * rows + r (rows > 1) */
} fn_state;

#ifdef __EMSCRIPTEN__
#define GL(f) f
#else
/*
 * libEGL and libGLESv2 are opened when the device is first used, not linked:
 * a program that runs CPU or OpenCL models never needs them (a GPU machine
 * with OpenCL but no EGL runs kiln's CPU and OpenCL models).
 */
#define EGL_FUNCS(X) X(eglBindAPI) X(eglChooseConfig) X(eglCreateContext) X(eglGetDisplay) X(eglGetProcAddress) X(eglInitialize) X(eglMakeCurrent)
#define GLES_FUNCS(X) X(glActiveTexture) X(glAttachShader) X(glBindFramebuffer) X(glBindTexture) X(glBindVertexArray) X(glCheckFramebufferStatus) X(glCompileShader) X(glCreateProgram) X(glCreateShader) X(glDeleteProgram) X(glDeleteShader) X(glDeleteTextures) X(glDrawArrays) X(glDrawBuffers) X(glFinish) X(glFramebufferTexture2D) X(glGenFramebuffers) X(glGenTextures) X(glGenVertexArrays) X(glGetError) X(glGetIntegerv) X(glGetProgramiv) X(glGetShaderInfoLog) X(glGetShaderiv) X(glGetString) X(glGetUniformLocation) X(glLinkProgram) X(glReadBuffer) X(glReadPixels) X(glShaderSource) X(glTexImage2D) X(glTexParameteri) X(glTexSubImage2D) X(glUniform1i) X(glUseProgram) X(glViewport)
static struct {
#define X(f) __typeof__(&f) f;
	EGL_FUNCS(X)
	GLES_FUNCS(X)
#undef X
} gl_api;
#define GL(f) (gl_api.f)
static pthread_once_t gl_once = PTHREAD_ONCE_INIT;
static char gl_missing[512]; /* why EGL / GLES could not be used, "" when they can */

static void load_gl(void)
{
	void *egl = dlopen("libEGL.so.1", RTLD_NOW | RTLD_LOCAL);
	void *gles = dlopen("libGLESv2.so.2", RTLD_NOW | RTLD_LOCAL);
	if (!egl || !gles) {
		snprintf(gl_missing, sizeof gl_missing, "webgl: cannot load %s (install libegl1 and libgles2 with a driver: "
		         "libegl-mesa0 and libgl1-mesa-dri, or the GPU's): %s", !egl ? "libEGL.so.1" : "libGLESv2.so.2",
		         dlerror());
		return;
	}
#define X(f)                                                                                                       \
	if (!(gl_api.f = (__typeof__(&f))dlsym(egl, #f)) && !gl_missing[0])                                           \
		snprintf(gl_missing, sizeof gl_missing, "webgl: libEGL.so.1 has no %s", #f);
	EGL_FUNCS(X)
#undef X
#define X(f)                                                                                                       \
	if (!(gl_api.f = (__typeof__(&f))dlsym(gles, #f)) && !gl_missing[0])                                          \
		snprintf(gl_missing, sizeof gl_missing, "webgl: libGLESv2.so.2 has no %s", #f);
	GLES_FUNCS(X)
#undef X
}
#endif

static gl_state *gs;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* The texture of n texels: rows of up to WIDTH. */
static int64_t tex_width(int64_t n) { return n < WIDTH ? (n ? n : 1) : WIDTH; }
static int64_t tex_height(int64_t n) { return (n + tex_width(n) - 1) / tex_width(n); }
static int64_t texels(const fn_state *fs, int i) { return (fs->elems[i] + fs->lanes - 1) / fs->lanes; }

static const char vertex_src[] = "#version 300 es\n"
                                 "void main() {\n"
                                 "  vec2 p = vec2(float((gl_VertexID & 1) << 2) - 1.0, float((gl_VertexID & 2) << 1) - 1.0);\n"
                                 "  gl_Position = vec4(p, 0.0, 1.0);\n"
                                 "}\n";

static GLuint compile(GLenum kind, const char *src, const char *what)
{
	GLuint sh = GL(glCreateShader)(kind);
	GL(glShaderSource)(sh, 1, &src, NULL);
	GL(glCompileShader)(sh);
	GLint ok = 0;
	GL(glGetShaderiv)(sh, GL_COMPILE_STATUS, &ok);
	if (!ok) {
		char log[2048] = "";
		GL(glGetShaderInfoLog)(sh, sizeof log - 1, NULL, log);
		rt_error("webgl: %s does not compile: %s", what, log);
		GL(glDeleteShader)(sh);
		return 0;
	}
	return sh;
}

/* A program of the full-screen triangle and the fragment shader src; 0 with a message. */
static GLuint link_program(const char *src, const char *what)
{
	GLuint fsh = compile(GL_FRAGMENT_SHADER, src, what);
	if (!fsh)
		return 0;
	GLuint p = GL(glCreateProgram)();
	GL(glAttachShader)(p, gs->vs);
	GL(glAttachShader)(p, fsh);
	GL(glLinkProgram)(p);
	GL(glDeleteShader)(fsh);
	GLint ok = 0;
	GL(glGetProgramiv)(p, GL_LINK_STATUS, &ok);
	if (ok)
		return p;
	GL(glDeleteProgram)(p);
	rt_error("webgl: %s does not link on %s", what, gs->name);
	return 0;
}

#ifdef __EMSCRIPTEN__
/* A WebGL2 context on the canvas the JS layer put in specialHTMLTargets. */
static int make_context(void)
{
	EmscriptenWebGLContextAttributes at;
	emscripten_webgl_init_context_attributes(&at);
	at.majorVersion = 2;
	at.alpha = at.depth = at.stencil = at.antialias = at.premultipliedAlpha = 0;
	EMSCRIPTEN_WEBGL_CONTEXT_HANDLE ctx = emscripten_webgl_create_context("#kiln-webgl", &at);
	if (ctx <= 0 || emscripten_webgl_make_context_current(ctx) != EMSCRIPTEN_RESULT_SUCCESS)
		return rt_error("webgl: this host offers no WebGL2 context");
	/* the real renderer's name, where the browser offers it (init_locked asks) */
	emscripten_webgl_enable_extension(ctx, "WEBGL_debug_renderer_info");
	return 0;
}
#else
/* An OpenGL ES 3 context without a surface (EGL_MESA_platform_surfaceless, else the default display). */
static int make_context(void)
{
	pthread_once(&gl_once, load_gl);
	if (gl_missing[0])
		return rt_error("%s", gl_missing);
	PFNEGLGETPLATFORMDISPLAYEXTPROC get_display = (PFNEGLGETPLATFORMDISPLAYEXTPROC)GL(eglGetProcAddress)("eglGetPlatformDisplayEXT");
	EGLDisplay dpy = get_display ? get_display(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY, NULL) : EGL_NO_DISPLAY;
	if (dpy == EGL_NO_DISPLAY)
		dpy = GL(eglGetDisplay)(EGL_DEFAULT_DISPLAY);
	EGLint major, minor;
	if (dpy == EGL_NO_DISPLAY || !GL(eglInitialize)(dpy, &major, &minor))
		return rt_error("webgl: no EGL display (install libegl-mesa0 and libgl1-mesa-dri, or a GPU driver)");
	EGLint cattrs[] = {EGL_SURFACE_TYPE, EGL_PBUFFER_BIT, EGL_RENDERABLE_TYPE, EGL_OPENGL_ES3_BIT, EGL_NONE};
	EGLConfig cfg;
	EGLint ncfg = 0;
	if (!GL(eglChooseConfig)(dpy, cattrs, &cfg, 1, &ncfg) || ncfg < 1 || !GL(eglBindAPI)(EGL_OPENGL_ES_API))
		return rt_error("webgl: EGL has no OpenGL ES 3 configuration");
	EGLint ctxattrs[] = {EGL_CONTEXT_MAJOR_VERSION, 3, EGL_CONTEXT_MINOR_VERSION, 0, EGL_NONE};
	EGLContext ctx = GL(eglCreateContext)(dpy, cfg, EGL_NO_CONTEXT, ctxattrs);
	if (ctx == EGL_NO_CONTEXT || !GL(eglMakeCurrent)(dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, ctx))
		return rt_error("webgl: cannot create an OpenGL ES 3 context");
	return 0;
}
#endif

static int init_locked(void)
{
	if (gs)
		return 0;
	if (make_context())
		return -1;
	const char *ext = (const char *)GL(glGetString)(GL_EXTENSIONS);
	if (!ext || !strstr(ext, "GL_EXT_color_buffer_float"))
		return rt_error("webgl: the device cannot render to float textures (no EXT_color_buffer_float)");
	gl_state *s = calloc(1, sizeof *s);
	s->vs = compile(GL_VERTEX_SHADER, vertex_src, "the vertex shader");
	GL(glGenFramebuffers)(1, &s->fbo);
	GLint draw = 4, attach = 4;
	GL(glGetIntegerv)(GL_MAX_DRAW_BUFFERS, &draw);
	GL(glGetIntegerv)(GL_MAX_COLOR_ATTACHMENTS, &attach);
	s->max_targets = draw < attach ? draw : attach;
	s->max_targets = s->max_targets < 8 ? s->max_targets : 8; /* what a kernel may draw (codegen's limit) */
	s->attached = 1;
	GL(glGenVertexArrays)(1, &s->vao);
	/* a browser masks GL_RENDERER ("WebKit WebGL"); WEBGL_debug_renderer_info's
	 * unmasked strings name the real device where the browser offers them */
	const char *vendor = (const char *)GL(glGetString)(GL_VENDOR), *renderer = (const char *)GL(glGetString)(GL_RENDERER);
#ifdef __EMSCRIPTEN__
	if (strstr(ext, "WEBGL_debug_renderer_info")) {
		const char *uv = (const char *)GL(glGetString)(0x9245), *ur = (const char *)GL(glGetString)(0x9246);
		vendor = uv ? uv : vendor;
		renderer = ur ? ur : renderer;
	}
	while (GL(glGetError)() != GL_NO_ERROR) /* an unknown name only records an error */
		;
#endif
	snprintf(s->name, sizeof s->name, "%s / %s", vendor ? vendor : "?", renderer ? renderer : "?");
	/*
	 * Reading an R32F attachment as GL_RED is an implementation's choice
	 * (WebGL only promises RGBA + FLOAT): ask, with an R32F target bound.
	 */
	GLuint t;
	GL(glGenTextures)(1, &t);
	GL(glBindTexture)(GL_TEXTURE_2D, t);
	GL(glTexImage2D)(GL_TEXTURE_2D, 0, GL_R32F, 1, 1, 0, GL_RED, GL_FLOAT, NULL);
	GL(glBindFramebuffer)(GL_FRAMEBUFFER, s->fbo);
	GL(glFramebufferTexture2D)(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_TEXTURE_2D, t, 0);
	GLint fmt = 0, type = 0;
	GL(glGetIntegerv)(GL_IMPLEMENTATION_COLOR_READ_FORMAT, &fmt);
	GL(glGetIntegerv)(GL_IMPLEMENTATION_COLOR_READ_TYPE, &type);
	s->read_fmt = fmt == GL_RED && type == GL_FLOAT ? GL_RED : GL_RGBA;
	GL(glFramebufferTexture2D)(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_TEXTURE_2D, 0, 0);
	GL(glDeleteTextures)(1, &t);
	GL(glGetError)();
	gs = s;
	return 0;
}

const char *kiln_gles_device_name(void)
{
	pthread_mutex_lock(&mu);
	int rc = init_locked();
	pthread_mutex_unlock(&mu);
	return rc ? NULL : gs->name;
}

/* The number after `key` ("outputs=") in the header p..q, dflt without one, -1 past 1000 (a module's text). */
static int header_int(const char *p, const char *q, const char *key, int dflt)
{
	size_t kl = strlen(key);
	for (; p + kl <= q; p++)
		if (!memcmp(p, key, kl)) {
			long v = 0;
			for (const char *d = p + kl; d < q && *d >= '0' && *d <= '9' && v <= 1000; d++)
				v = v * 10 + (*d - '0');
			return v > 1000 ? -1 : (int)v;
		}
	return dflt;
}

/*
 * The source of kernel `name` in the module's blob of "//@kernel NAME[ rgba]
 * [ outputs=N][ rows=L]" sections; *lanes is 4 for a packed (RGBA) kernel,
 * else 1; *outs is how many outputs it writes (its first parameters), *rows
 * how many blocks of each a fragment computes.
 */
static char *kernel_source(const rt_blob *b, const char *name, int *lanes, int *outs, int *rows)
{
	char marker[96];
	snprintf(marker, sizeof marker, "//@kernel %s", name);
	const char *text = (const char *)b->data, *end = text + b->size;
	size_t ml = strlen(marker);
	for (const char *p = text; p + ml < end; p++)
		if (!memcmp(p, marker, ml) && (p == text || p[-1] == '\n') && (p[ml] == '\n' || p[ml] == ' ')) {
			const char *q = memchr(p + ml, '\n', (size_t)(end - p - ml));
			if (!q)
				return NULL;
			*lanes = p[ml] == ' ' && q - (p + ml) >= 5 && !memcmp(p + ml, " rgba", 5) ? 4 : 1;
			*outs = header_int(p + ml, q, "outputs=", 1);
			*rows = header_int(p + ml, q, "rows=", 1);
			if (*outs < 1 || *rows < 1 || *outs * *rows > 8)
				return NULL;
			q++;
			const char *stop = q;
			while (stop + 10 <= end && memcmp(stop, "//@kernel ", 10))
				stop++;
			if (stop + 10 > end)
				stop = end;
			char *src = malloc((size_t)(stop - q) + 1);
			memcpy(src, q, (size_t)(stop - q));
			src[stop - q] = 0;
			return src;
		}
	return NULL;
}

static void free_fn_state(rt_function *f)
{
	fn_state *fs = f->dev;
	if (!fs)
		return;
	if (fs->tex)
		GL(glDeleteTextures)(fs->n, fs->tex);
	for (int l = 0; l < f->nlaunch && fs->progs && fs->blks; l++) {
		if (fs->progs[l])
			GL(glDeleteProgram)(fs->progs[l]);
		if (fs->blks[l])
			GL(glDeleteTextures)(fs->outs[l] * fs->rows[l], fs->blks[l]);
		free(fs->blks[l]);
	}
	free(fs->blks);
	free(fs->rows);
	free(fs->tex);
	free(fs->elems);
	free(fs->progs);
	free(fs->staging);
	free(fs->outs);
	free(fs);
	f->dev = NULL;
}

/* Gives texture tex room for tx texels of lanes floats each (R32F or RGBA32F), nearest sampling. */
static void define_texture(GLuint tex, int64_t tx, int lanes)
{
	GL(glBindTexture)(GL_TEXTURE_2D, tex);
	if (lanes == 4)
		GL(glTexImage2D)(GL_TEXTURE_2D, 0, GL_RGBA32F, (GLsizei)tex_width(tx), (GLsizei)tex_height(tx), 0, GL_RGBA,
		                 GL_FLOAT, NULL);
	else
		GL(glTexImage2D)(GL_TEXTURE_2D, 0, GL_R32F, (GLsizei)tex_width(tx), (GLsizei)tex_height(tx), 0, GL_RED,
		                 GL_FLOAT, NULL);
	GL(glTexParameteri)(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
	GL(glTexParameteri)(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
}

/* Argument index of a launch's argument a (negative: a temporary after the arguments). */
static int launch_arg(const rt_function *f, const rt_launch *la, int a)
{
	return la->args[a] >= 0 ? la->args[a] : f->nargs - 1 - la->args[a];
}

/*
 * Launch l's block textures: each of its outputs in rows equal blocks, which
 * gather_blocks puts in place after the draw.
 */
static int gather_program(void);
static int make_blocks(rt_function *f, int l)
{
	fn_state *fs = f->dev;
	int nout = fs->outs[l], rows = fs->rows[l];
	if (nout * rows > gs->max_targets)
		return rt_error("%s: kernel '%s' draws %d render targets (%d outputs in %d blocks); %s allows %d", f->name,
		                f->launches[l].kernel, nout * rows, nout, rows, gs->name, gs->max_targets);
	int64_t tx = texels(fs, launch_arg(f, &f->launches[l], 0)), block = tx / rows;
	if (tx % rows)
		return rt_error("%s: kernel '%s' splits %lld texels into %d unequal blocks", f->name, f->launches[l].kernel,
		                (long long)tx, rows);
	if (gather_program())
		return -1;
	fs->blks[l] = calloc((size_t)(nout * rows), sizeof(GLuint));
	if (!fs->blks[l])
		return rt_error("out of memory");
	GL(glGenTextures)(nout * rows, fs->blks[l]);
	for (int i = 0; i < nout * rows; i++)
		define_texture(fs->blks[l][i], block, fs->lanes);
	return 0;
}

static int prepare_new(kiln_module *m, rt_function *f)
{
	const rt_blob *b = rt_module_blob(m, "glsl-src");
	if (!b)
		return rt_error("%s: the module carries no GLSL source", f->name);
	fn_state *fs = calloc(1, sizeof *fs);
	if (!fs)
		return rt_error("out of memory");
	size_t nl = (size_t)(f->nlaunch ? f->nlaunch : 1);
	fs->lanes = 1;
	fs->n = f->nargs + f->ntemp;
	fs->outs = calloc(nl, sizeof(int));
	fs->rows = calloc(nl, sizeof(int));
	fs->blks = calloc(nl, sizeof(GLuint *));
	fs->progs = calloc(nl, sizeof(GLuint));
	fs->tex = calloc((size_t)fs->n + 1, sizeof(GLuint));
	fs->elems = calloc((size_t)fs->n + 1, sizeof(int64_t));
	f->dev = fs;
	m->dev_free = free_fn_state;
	if (!fs->outs || !fs->rows || !fs->blks || !fs->progs || !fs->tex || !fs->elems)
		return rt_error("out of memory");
	if (f->nlaunch) {
		int outs, rows;
		char *first = kernel_source(b, f->launches[0].kernel, &fs->lanes, &outs, &rows);
		free(first);
	}
	GL(glGenTextures)(fs->n, fs->tex);
	int64_t most = 1;
	for (int i = 0; i < fs->n; i++) {
		int64_t n;
		if (i < f->nargs) {
			if (f->args[i].dtype.code != KILN_FLOAT || f->args[i].dtype.bits != 32)
				return rt_error("%s: argument %d is not float32; webgl runs float32 tensors", f->name, i);
			n = 1;
			for (int d = 0; d < f->args[i].ndim; d++)
				n *= f->args[i].shape[d];
		} else {
			n = (int64_t)(f->temp_bytes[i - f->nargs] / 4);
		}
		fs->elems[i] = n;
		int64_t tx = texels(fs, i);
		most = tx > most ? tx : most;
		GLint maxsize = 0;
		GL(glGetIntegerv)(GL_MAX_TEXTURE_SIZE, &maxsize);
		if (tex_height(tx) > maxsize)
			return rt_error("%s: a tensor of %lld elements needs %lld texture rows; the device allows %d", f->name,
			                (long long)n, (long long)tex_height(tx), maxsize);
		define_texture(fs->tex[i], tx, fs->lanes);
	}
	fs->staging = malloc(sizeof(float) * (size_t)(tex_width(most) * tex_height(most)) * 4);
	if (!fs->staging)
		return rt_error("%s: out of memory for a staging buffer of %lld texels", f->name, (long long)most);
	int lanes = 1;
	for (int l = 0; l < f->nlaunch; l++) {
		char *src = kernel_source(b, f->launches[l].kernel, &lanes, &fs->outs[l], &fs->rows[l]);
		if (!src || fs->outs[l] > f->launches[l].nargs)
			return rt_error("%s: no valid source for kernel '%s'", f->name, f->launches[l].kernel);
		if (lanes != fs->lanes) {
			free(src);
			return rt_error("%s: kernels disagree on packing (RGBA or not)", f->name);
		}
		if (fs->rows[l] > 1 && make_blocks(f, l)) {
			free(src);
			return -1;
		}
		fs->progs[l] = link_program(src, f->launches[l].kernel);
		free(src);
		if (!fs->progs[l])
			return -1;
	}
	return 0;
}

/*
 * Waits until the draws are done, for the time evaluator: glFinish natively;
 * WebGL's finish() returns at once, but a readback (one texel) blocks.
 */
static void wait_draws(fn_state *fs)
{
#ifdef __EMSCRIPTEN__
	GL(glReadPixels)(0, 0, 1, 1, fs->lanes == 4 || gs->read_fmt == GL_RGBA ? GL_RGBA : GL_RED, GL_FLOAT, fs->staging);
#else
	(void)fs;
	GL(glFinish)();
#endif
}

/*
 * The program that copies blocks into place: output texel p is texel
 * p % block of block p / block (up to 8, samplers b0..b7 on units 0..7).
 */
static const char gather_src[] =
	"#version 300 es\nprecision highp float;\nprecision highp int;\nprecision highp sampler2D;\n"
	"uniform sampler2D b0;\nuniform sampler2D b1;\nuniform sampler2D b2;\nuniform sampler2D b3;\n"
	"uniform sampler2D b4;\nuniform sampler2D b5;\nuniform sampler2D b6;\nuniform sampler2D b7;\n"
	"uniform int kiln_block, kiln_bw, kiln_w, kiln_n;\nout vec4 kiln_frag;\n"
	"void main() {\n"
	"  int p = int(gl_FragCoord.y) * kiln_w + int(gl_FragCoord.x);\n"
	"  if (p >= kiln_n) discard;\n"
	"  int r = p / kiln_block, t = p - r * kiln_block;\n"
	"  ivec2 c = ivec2(t % kiln_bw, t / kiln_bw);\n"
	"  if (r == 0) kiln_frag = texelFetch(b0, c, 0); else if (r == 1) kiln_frag = texelFetch(b1, c, 0);\n"
	"  else if (r == 2) kiln_frag = texelFetch(b2, c, 0); else if (r == 3) kiln_frag = texelFetch(b3, c, 0);\n"
	"  else if (r == 4) kiln_frag = texelFetch(b4, c, 0); else if (r == 5) kiln_frag = texelFetch(b5, c, 0);\n"
	"  else if (r == 6) kiln_frag = texelFetch(b6, c, 0); else kiln_frag = texelFetch(b7, c, 0);\n"
	"}\n";

static int gather_program(void)
{
	if (gs->gather)
		return 0;
	GLuint p = link_program(gather_src, "the block gather shader");
	if (!p)
		return -1;
	GL(glUseProgram)(p);
	for (int r = 0; r < 8; r++) {
		char name[4] = {'b', (char)('0' + r), 0};
		GL(glUniform1i)(GL(glGetUniformLocation)(p, name), r);
	}
	static const char *const names[4] = {"kiln_block", "kiln_bw", "kiln_w", "kiln_n"};
	for (int i = 0; i < 4; i++)
		gs->gather_at[i] = GL(glGetUniformLocation)(p, names[i]);
	gs->gather = p;
	return 0;
}

/*
 * Copies launch l's blocks into its outputs of tx texels each, one draw per
 * output (any block size: the blocks need not be whole texture rows).
 */
static void gather_blocks(rt_function *f, int l, const GLuint *tex, int64_t tx)
{
	fn_state *fs = f->dev;
	int rows = fs->rows[l];
	int64_t block = tx / rows;
	for (int a = 1; a < gs->attached; a++)
		GL(glFramebufferTexture2D)(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0 + (GLenum)a, GL_TEXTURE_2D, 0, 0);
	gs->attached = 1;
	GLenum first = GL_COLOR_ATTACHMENT0;
	GL(glDrawBuffers)(1, &first);
	GL(glUseProgram)(gs->gather);
	GL(glUniform1i)(gs->gather_at[0], (GLint)block);
	GL(glUniform1i)(gs->gather_at[1], (GLint)tex_width(block));
	GL(glUniform1i)(gs->gather_at[2], (GLint)tex_width(tx));
	GL(glUniform1i)(gs->gather_at[3], (GLint)tx);
	GL(glViewport)(0, 0, (GLsizei)tex_width(tx), (GLsizei)tex_height(tx));
	for (int o = 0; o < fs->outs[l]; o++) {
		int idx = launch_arg(f, &f->launches[l], o);
		GL(glFramebufferTexture2D)(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_TEXTURE_2D,
		                           idx < f->nargs ? tex[idx] : fs->tex[idx], 0);
		for (int r = 0; r < 8; r++) { /* the blocks; the rest of the units never read */
			GL(glActiveTexture)(GL_TEXTURE0 + (GLenum)r);
			GL(glBindTexture)(GL_TEXTURE_2D, fs->blks[l][o * rows + (r < rows ? r : 0)]);
		}
		GL(glDrawArrays)(GL_TRIANGLES, 0, 3);
	}
}

/*
 * One call: tex[i] is argument i's texture (the function's own, or one a
 * graph executor shares between functions); upload[i] / download[i] say
 * which arguments cross between host and device (NULL: every input in,
 * every output out).
 */
static int run_with(rt_function *f, const GLuint *tex, kiln_array **args, const uint8_t *upload,
                    const uint8_t *download, double *ms)
{
	fn_state *fs = f->dev;
	/* inputs: rows of the texture, the last one padded */
	for (int i = 0; i < f->nargs; i++) {
		if (upload ? !upload[i] : f->args[i].is_output)
			continue;
		int64_t n = fs->elems[i], tx = texels(fs, i), w = tex_width(tx), h = tex_height(tx), cap = w * h * fs->lanes;
		const float *src = args[i]->data;
		GLenum fmt = fs->lanes == 4 ? GL_RGBA : GL_RED;
		GL(glBindTexture)(GL_TEXTURE_2D, tex[i]);
		if (n == cap) {
			GL(glTexSubImage2D)(GL_TEXTURE_2D, 0, 0, 0, (GLsizei)w, (GLsizei)h, fmt, GL_FLOAT, src);
		} else { /* the last row padded with zeros */
			memcpy(fs->staging, src, sizeof(float) * (size_t)n);
			memset(fs->staging + n, 0, sizeof(float) * (size_t)(cap - n));
			GL(glTexSubImage2D)(GL_TEXTURE_2D, 0, 0, 0, (GLsizei)w, (GLsizei)h, fmt, GL_FLOAT, fs->staging);
		}
	}
	if (ms)
		GL(glFinish)();
	double t0 = rt_now_ms();
	GL(glBindFramebuffer)(GL_FRAMEBUFFER, gs->fbo);
	GL(glBindVertexArray)(gs->vao);
	for (int l = 0; l < f->nlaunch; l++) {
		rt_launch *la = &f->launches[l];
		int nout = fs->outs[l], rows = fs->rows[l], ntarget = nout * rows;
		GLenum bufs[8];
		/* one render target per output, or per block of each output */
		for (int a = 0; a < ntarget; a++) {
			int idx = launch_arg(f, la, a / rows);
			GL(glFramebufferTexture2D)(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0 + (GLenum)a, GL_TEXTURE_2D,
			                           rows > 1 ? fs->blks[l][a] : idx < f->nargs ? tex[idx] : fs->tex[idx], 0);
			bufs[a] = GL_COLOR_ATTACHMENT0 + (GLenum)a;
		}
		for (int a = ntarget; a < gs->attached; a++) /* detach what an earlier launch attached */
			GL(glFramebufferTexture2D)(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0 + (GLenum)a, GL_TEXTURE_2D, 0, 0);
		gs->attached = ntarget;
		GL(glDrawBuffers)(ntarget, bufs);
		if (GL(glCheckFramebufferStatus)(GL_FRAMEBUFFER) != GL_FRAMEBUFFER_COMPLETE)
			return rt_error("%s: cannot render into float textures on %s", f->name, gs->name);
		GL(glUseProgram)(fs->progs[l]);
		for (int a = nout; a < la->nargs; a++) {
			int idx = launch_arg(f, la, a);
			char uname[16];
			snprintf(uname, sizeof uname, "t%d", a - nout);
			GL(glActiveTexture)(GL_TEXTURE0 + (GLenum)(a - nout));
			GL(glBindTexture)(GL_TEXTURE_2D, idx < f->nargs ? tex[idx] : fs->tex[idx]);
			GL(glUniform1i)(GL(glGetUniformLocation)(fs->progs[l], uname), a - nout);
		}
		int64_t tx = texels(fs, launch_arg(f, la, 0)), block = tx / rows;
		GL(glViewport)(0, 0, (GLsizei)tex_width(block), (GLsizei)tex_height(block));
		GL(glDrawArrays)(GL_TRIANGLES, 0, 3);
		if (rows > 1)
			gather_blocks(f, l, tex, tx);
	}
	if (ms) {
		wait_draws(fs);
		*ms = rt_now_ms() - t0;
	}
	for (int a = 1; a < gs->attached; a++)
		GL(glFramebufferTexture2D)(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0 + (GLenum)a, GL_TEXTURE_2D, 0, 0);
	gs->attached = 1;
	GLenum first = GL_COLOR_ATTACHMENT0;
	GL(glDrawBuffers)(1, &first);
	GL(glReadBuffer)(GL_COLOR_ATTACHMENT0);
	for (int i = 0; i < f->nargs; i++) {
		if (download ? !download[i] : !f->args[i].is_output)
			continue;
		int64_t n = fs->elems[i], tx = texels(fs, i), w = tex_width(tx), h = tex_height(tx);
		GL(glFramebufferTexture2D)(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_TEXTURE_2D, tex[i], 0);
		if (fs->lanes == 4 || gs->read_fmt == GL_RED) {
			GL(glReadPixels)(0, 0, (GLsizei)w, (GLsizei)h, fs->lanes == 4 ? GL_RGBA : GL_RED, GL_FLOAT, fs->staging);
			memcpy(args[i]->data, fs->staging, sizeof(float) * (size_t)n);
		} else { /* one float of each RGBA texel */
			GL(glReadPixels)(0, 0, (GLsizei)w, (GLsizei)h, GL_RGBA, GL_FLOAT, fs->staging);
			float *dst = args[i]->data;
			for (int64_t k = 0; k < n; k++)
				dst[k] = fs->staging[4 * k];
		}
	}
	GLenum err = GL(glGetError)();
	if (err != GL_NO_ERROR)
		return rt_error("%s: OpenGL ES error 0x%x on %s", f->name, err, gs->name);
	return 0;
}

/* A function's textures and programs, made on its first call; a failure leaves none behind. */
static int prepare(kiln_module *m, rt_function *f)
{
	if (f->dev)
		return 0;
	int rc = prepare_new(m, f);
	if (rc)
		free_fn_state(f);
	return rc;
}

static int run_locked(kiln_module *m, rt_function *f, kiln_array **args, double *ms)
{
	if (init_locked() || prepare(m, f))
		return -1;
	fn_state *fs = f->dev;
	return run_with(f, fs->tex, args, NULL, NULL, ms);
}

static int rt_gles_run(kiln_module *m, rt_function *f, kiln_array **args, double *ms)
{
	pthread_mutex_lock(&mu);
	int rc = run_locked(m, f, args, ms);
	pthread_mutex_unlock(&mu);
	return rc;
}

/*
 * ---- textures a graph executor keeps on the device between functions ----
 * Keyed by the host memory they mirror and their packing (R32F or RGBA32F):
 * a value one kernel draws is the texture the next one samples, unless the
 * two pack it differently (the executor moves such values through the host).
 */
typedef struct {
	const void *host;
	int64_t elems;
	int lanes;
	GLuint tex;
} shared_tex;
static shared_tex *shared;
static int nshared, capshared;

static GLuint shared_texture(const fn_state *fs, int i, const void *host, bool *fresh)
{
	*fresh = false;
	for (int k = 0; k < nshared; k++)
		if (shared[k].host == host && shared[k].elems == fs->elems[i] && shared[k].lanes == fs->lanes)
			return shared[k].tex;
	if (nshared == capshared) {
		int cap = capshared ? 2 * capshared : 64;
		shared_tex *n = realloc(shared, sizeof *n * (size_t)cap);
		if (!n)
			return 0;
		shared = n;
		capshared = cap;
	}
	GLuint tex = 0;
	GL(glGenTextures)(1, &tex);
	define_texture(tex, texels(fs, i), fs->lanes);
	shared[nshared++] = (shared_tex){host, fs->elems[i], fs->lanes, tex};
	*fresh = true;
	return tex;
}

int rt_gles_lanes(kiln_module *m, rt_function *f)
{
	pthread_mutex_lock(&mu);
	int rc = init_locked() || prepare(m, f) ? -1 : ((fn_state *)f->dev)->lanes;
	pthread_mutex_unlock(&mu);
	return rc;
}

static int rt_gles_run_resident(kiln_module *m, rt_function *f, kiln_array **args, const uint8_t *upload,
                         const uint8_t *download)
{
	pthread_mutex_lock(&mu);
	int rc = init_locked() || prepare(m, f) ? -1 : 0;
	GLuint tex[RT_MAX_LAUNCH_ARGS * 4];
	uint8_t up[RT_MAX_LAUNCH_ARGS * 4];
	if (!rc && f->nargs > (int)(sizeof tex / sizeof *tex))
		rc = rt_error("%s: too many arguments", f->name);
	for (int i = 0; i < f->nargs && !rc; i++) {
		bool fresh;
		if (!(tex[i] = shared_texture(f->dev, i, args[i]->data, &fresh)))
			rc = rt_error("out of memory");
		up[i] = upload[i] || (fresh && !f->args[i].is_output);
	}
	if (!rc)
		rc = run_with(f, tex, args, up, download, NULL);
	pthread_mutex_unlock(&mu);
	return rc;
}

static void rt_gles_forget(const void *host, size_t bytes)
{
	pthread_mutex_lock(&mu);
	const char *lo = host, *hi = lo + bytes;
	for (int k = 0; k < nshared;) {
		if ((const char *)shared[k].host >= lo && (const char *)shared[k].host < hi) {
			GL(glDeleteTextures)(1, &shared[k].tex);
			shared[k] = shared[--nshared];
		} else {
			k++;
		}
	}
	pthread_mutex_unlock(&mu);
}

/*
 * Waits for every queued draw, for a step timed inside a model's runs:
 * glFinish natively; WebGL's finish() returns at once, so there a
 * one-texel readback of what is attached, which waits for what came before.
 */
static int rt_gles_sync(void)
{
	pthread_mutex_lock(&mu);
	if (gs) {
#ifdef __EMSCRIPTEN__
		float px[4];
		GL(glBindFramebuffer)(GL_FRAMEBUFFER, gs->fbo);
		GL(glReadBuffer)(GL_COLOR_ATTACHMENT0);
		if (GL(glCheckFramebufferStatus)(GL_FRAMEBUFFER) == GL_FRAMEBUFFER_COMPLETE)
			GL(glReadPixels)(0, 0, 1, 1, GL_RGBA, GL_FLOAT, px);
		else
			GL(glFinish)();
#else
		GL(glFinish)();
#endif
	}
	pthread_mutex_unlock(&mu);
	return 0;
}

const rt_device rt_gles_device = {
	.name = "gles",
	.arrays = KILN_DEV_CPU, /* host arrays, mirrored in textures */
	.run = rt_gles_run,
	.kernel_clock = true,
	.needs_code = true,
	.run_resident = rt_gles_run_resident,
	.sync = rt_gles_sync,
	.forget = rt_gles_forget,
};
