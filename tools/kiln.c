/*
 * kiln — the command-line tool.
 *
 *   kiln ops                         list the operators
 *   kiln lower OP --shape ...        print the IR after every lowering pass
 *   kiln build OP --shape ... -o F   compile and export a shared library
 *   kiln run OP --shape ...          run on random inputs, compare with the oracle
 *   kiln bench OP --shape ...        median time and GFLOP/s
 *
 * Errors go to stderr and the exit status is 1 (2 for bad usage).
 */
#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <dirent.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/build.h"
#include "kiln/opencl.h"
#include "kiln/model.h"
#include "kiln/onnx.h"
#include "kiln/ops.h"
#include "kiln/parse.h"
#include "kiln/tune.h"
#include "args.h"
#include "npy.h"
#include "rpc.h"

/* a model's outputs compared after tuning, at most */
#define MAX_COMPARED_OUTPUTS 64

typedef struct {
	const char *op, *shape, *attrs, *target, *out;
	int threads, repeat;
	uint64_t seed;
	int help;
	int llvm; /* lower: 1 = the LLVM IR as emitted, 2 = after O3 */
	const char *port; /* serve */
	const char *input_shape[16]; /* compile: name=N,N,... */
	const char *input[16];       /* run M.kmod: .npy files, in input order */
	int ninput;
	int ninput_shape;
	int print_graph;
	/* tune and measure */
	int trials, timeout, check;
	int min_repeat_ms, cooldown_ms; /* measure_option's: a sample's least length, a pause between trials */
	const char *log, *tuning_log, *search, *config;
	const char *oracle; /* measure --check: where the oracle's outputs are kept between trials */
	const char *save_module, *module; /* measure: build only and save the module there / measure the one saved there */
	int build_jobs;                   /* tune: candidates built at once (0: one per core, at most 8) */
	bool node_runner;   /* tune: rpc is the node runner on this machine (its records are this machine's) */
	int list_space;     /* tune --list-space: print the configurations the task's schedule takes */
	const char *rpc, *key; /* run and bench there: HOST:PORT of a server or proxy, and its key */
} opts;

static const char *usage_main =
	"usage: kiln <command> [options]\n"
	"\n"
	"commands:\n"
	"  ops                       list the operators and their --shape numbers\n"
	"  lower OP --shape S        print the loop IR after every lowering pass\n"
	"  build OP --shape S -o F   compile OP and export it as a shared library F\n"
	"  build OP --target web -o DIR/\n"
	"                            write a bundle that runs OP in node or a browser\n"
	"  serve DIR                 serve a bundle to a browser (http://127.0.0.1:8080/)\n"
	"  run OP --shape S          run OP on random inputs and compare with the oracle\n"
	"  bench OP --shape S        time OP: median milliseconds and GFLOP/s\n"
	"  devices                   list the devices each target can run on here\n"
	"  onnx MODEL                load and check an ONNX model, and summarize it\n"
	"  compile MODEL.onnx -o M.kmod|M.so\n"
	"                            compile a whole ONNX model into one model module or library\n"
	"  run M.kmod / bench M.kmod run a compiled model on random inputs / time it\n"
	"  tune OP --shape S --log F tune OP's CPU schedule; build|run|bench --tuning-log F apply it\n"
	"  rpc server|proxy|devices  serve devices to remote clients, pair clients with browser\n"
	"                            tabs; run|bench OP ... --rpc HOST:PORT run OP there\n"
	"\n"
	"`kiln <command> --help` describes a command's options.\n";

static const char *usage_common =
	"  --shape N,N,...   the operator's sizes (see `kiln ops`)\n"
	"  --attr k=v,...    operator attributes (see `kiln ops`)\n"
	"  --target T        llvm (this CPU; the default), opencl (KILN_OPENCL_PLATFORM and\n"
	"                    KILN_OPENCL_DEVICE pick the device), webgl (GLSL ES 3.00, run\n"
	"                    natively on EGL), wasm or webgpu (WGSL; both build and lower\n"
	"                    only: their kernels run in a JavaScript host, from a bundle);\n"
	"                    webgpu-cpu is WGSL scheduled for adapters that are a CPU\n"
	"                    underneath (SwiftShader); build also takes web or a comma list\n"
	"                    of webgpu, webgpu-cpu, webgl, wasm\n";

static void cmd_usage(const char *cmd)
{
	if (!strcmp(cmd, "ops")) {
		printf("usage: kiln ops\n\nLists every operator with what --shape and --attr mean for it.\n");
		return;
	}
	if (!strcmp(cmd, "serve")) {
		printf("usage: kiln serve DIR [--port N]\n\nServes a bundle folder over HTTP on 127.0.0.1 (port 8080 by default;\n"
		       "0 picks a free one) with the COOP/COEP headers a cross-origin isolated page needs.\n"
		       "Open the printed URL: the bundle's index.html runs each function and times it.\n"
		       "Runs kiln's own server (web/serve.mjs) with node; the folder is only data: a\n"
		       "serve.mjs inside it is never run, and links out of the folder are not followed.\n");
		return;
	}
	if (!strcmp(cmd, "compile")) {
		printf("usage: kiln compile MODEL.onnx -o M.kmod|M.so|DIR/ [--target T|web] [--input-shape NAME=N,N,...]\n"
		       "                    [--print-graph] [--tuning-log F.jsonl [--rpc HOST:PORT] | --config C]\n\n"
		       "Imports the model, runs the graph passes (shape inference and constant folding,\n"
		       "simplification, fusion, memory planning) and writes one model module: a kernel per\n"
		       "fused group, the execution plan and the weights. --input-shape binds an input's\n"
		       "symbolic dimensions (repeat it per input); --print-graph shows the graph after each\n"
		       "pass. -o M.so (llvm) writes ONE shared library holding code, plan and weights, with\n"
		       "a plain C entry int model_run(const float *input, float *output).\n"
		       "kiln run M.kmod|M.so [--input X.npy ...] [-o Y.npy|DIR] runs it (random inputs\n"
		       "without --input; -o writes the outputs); bench times it (--print-graph: each kernel\n"
		       "inside whole runs and alone); kiln_model_load (kiln/model.h) loads it in C.\n"
		       "--target web -o DIR/ writes a bundle of the web targets' modules (kiln.mjs's loadModel).\n"
		       "--tuning-log applies the best record of each kernel's task (kiln tune MODEL.onnx) measured\n"
		       "on this machine, or with --rpc on that server or browser tab; --config C gives every\n"
		       "convolution and matrix product whose schedule takes it one configuration (kiln tune --help).\n");
		return;
	}
	if (!strcmp(cmd, "onnx")) {
		printf("usage: kiln onnx MODEL.onnx\n\nDecodes the model (protobuf-c, onnx.proto from libonnx-dev), checks it (IR version,\n"
		       "opsets %d-%d, every value defined before use, types, initializer sizes, external\n"
		       "data paths) and prints its inputs, outputs, operators and initializers. A file it\n"
		       "cannot read is refused with the reason.\n", KILN_ONNX_MIN_OPSET, KILN_ONNX_MAX_OPSET);
		return;
	}
	if (!strcmp(cmd, "tune") || !strcmp(cmd, "measure")) {
		printf("usage: kiln tune OP|FILE.kte|MODEL.onnx [--shape S] [--attr A] [--target 'llvm ...'] --log F.jsonl\n"
		       "                 [--trials N] [--search xgb|random|grid] [--seed N] [--timeout S] [--repeat N]\n"
		       "                 [--min-repeat-ms MS] [--cooldown-ms MS] [--build-jobs N]\n"
		       "                 [--rpc HOST:PORT [--key K]] [--list-space]\n\n"
		       "Searches the CPU template for OP on this machine: register blocks (rows x vectors\n"
		       "of columns), unrolling of the innermost reduction, the order of the block loops\n"
		       "and tiles of blocks. --search xgb (the default) measures batches of 16: the first\n"
		       "at random, the next chosen by simulated annealing on a cost model (XGBoost,\n"
		       "trained on features of the lowered code of every trial so far) plus a few at\n"
		       "random. Each trial is built, run and timed by worker processes (kiln measure)\n"
		       "with a timeout, the first one and every new best checked against the oracle;\n"
		       "failures are recorded and the search goes on. --build-jobs N candidates (one per\n"
		       "core, at most 8) are built at once, each saving its module, and then measured one\n"
		       "after another with nothing else running; 1 builds each in its measuring worker.\n"
		       "A trial's time is the median of --repeat samples (10), each at least\n"
		       "--min-repeat-ms long (20); --cooldown-ms pauses between trials. --list-space prints\n"
		       "the configurations the operator's schedule takes (one --config per line) and\n"
		       "measures nothing. Appends one JSON line per trial to the log and writes\n"
		       "F.jsonl.svg (best so far against trials). With --rpc each\n"
		       "trial is built here and measured on that server's CPU (see kiln rpc --help; give\n"
		       "--target 'llvm -mcpu=CPU' for its CPU); its records apply with the same --rpc.\n"
		       "--target wasm or webgpu measures in node on this machine (kiln tune starts a private\n"
		       "proxy and web/rpc-node.mjs, with Dawn for webgpu, and stops them), or with --rpc PROXY\n"
		       "--key K in a browser tab. A web bundle built with --tuning-log takes each module's own\n"
		       "target's best record (wasm the CPU template's, webgpu the GPU one's).\n"
		       "--tuning-log F.jsonl on lower, build, run and bench applies the best record of the\n"
		       "same task; --config ROWS,VECTORS[,UNROLL,TILE,ORDER[,STAGES,PAD[,SPLIT]]] applies one\n"
		       "by hand (ORDER 1: column blocks outside, 2: rows outside; 0 for a knob: the default).\n"
		       "--target opencl|webgpu on a GPU searches the GPU matmul template instead: ROWS and\n"
		       "VECTORS (float4s) per thread, UNROLL the k panel's depth, TILE threads per block side,\n"
		       "ORDER 2 deals float4s a block apart, STAGES 2 double-buffers the shared panels,\n"
		       "PAD 1 pads their rows off the same bank, SPLIT 1 keeps a deep reduction whole and N\n"
		       "splits it into N parts (split-K; 0 lets the default decide). Direct and depthwise\n"
		       "convolutions and pools take ROWS (output channels of a convolution, else output rows)\n"
		       "x VECTORS float4s per thread and TILE; their other knobs keep the first value.\n"
		       "--target webgl searches the WebGL template (here on EGL, or with --rpc in a tab):\n"
		       "ROWS blocks of the output per fragment (1-8, a render target each; 0: the default's\n"
		       "choice), VECTORS 1 (R32F) or 4 (RGBA texels), UNROLL the innermost reduction's.\n"
		       "For MODEL.onnx (llvm; wasm, in node or with --rpc in a browser tab; opencl: the GPU\n"
		       "template; webgl: its own; with --rpc llvm, opencl and webgl on a server too) each\n"
		       "distinct convolution and matrix product is searched on its own; a round\n"
		       "(--trials counts rounds) builds the model with every task's next configuration and\n"
		       "times its kernels inside whole runs; the first round (the defaults) is logged too, and\n"
		       "the tuned model is checked against the default one at the end.\n"
		       "kiln compile MODEL.onnx -o M.so|M.kmod|DIR/ [--target T|web] --tuning-log F.jsonl builds\n"
		       "with those (a web bundle's wasm module takes the wasm records).\n");
		return;
	}
	if (!strcmp(cmd, "devices")) {
		printf("usage: kiln devices\n\nLists the CPU and every OpenCL device, and which one runs opencl.\n");
		return;
	}
	printf("usage: kiln %s OP --shape N,N,... [options]\n\n", cmd);
	if (!strcmp(cmd, "lower"))
		printf("Prints the IR of OP's default schedule after each pass of the lowering pipeline.\n\n");
	else if (!strcmp(cmd, "build"))
		printf("Compiles OP. For llvm, writes a shared library (-o) whose function OP has the C\n"
		       "signature int OP(float *in0, ..., float *out): dlopen it or kiln_module_load it. For\n"
		       "opencl, writes a module container holding the kernels; kiln_module_load runs it.\n"
		       "With -o DIR/ (a folder: a trailing '/' or an existing one) or --target web, writes a\n"
		       "bundle for node and browsers: --target takes webgpu, webgpu-cpu, webgl, wasm or a\n"
		       "comma list of them (web = all four); the JS API (DIR/kiln.mjs) runs the first that\n"
		       "works there (webgpu-cpu in place of webgpu on a CPU-emulated adapter). Serve it with\n"
		       "`kiln serve DIR`.\n\n");
	else if (!strcmp(cmd, "run"))
		printf("Runs OP on random inputs and prints the largest difference from the oracle;\n"
		       "exits 1 when it exceeds the tolerance of the dtype.\n\n");
	else if (!strcmp(cmd, "bench"))
		printf("Times OP with the runtime's time evaluator and prints the median (for opencl, the\n"
		       "kernels' own time from device events, without transfers).\n\n");
	printf("options:\n%s", usage_common);
	if (!strcmp(cmd, "build"))
		printf("  -o FILE|DIR/      where to write the library, module or bundle (required)\n");
	if (!strcmp(cmd, "lower"))
		printf("  --llvm            print the LLVM IR code generation emits instead\n"
		       "  --llvm-opt        print the LLVM IR after the O3 pipeline\n");
	if (!strcmp(cmd, "run"))
		printf("  --seed N          seed of the random inputs (default 1)\n");
	if (!strcmp(cmd, "bench"))
		printf("  --threads N       threads for parallel loops (default: KILN_NUM_THREADS or all cores)\n"
		       "  --repeat N        samples to take the median of (default 10)\n");
}

static int parse(int argc, char **argv, opts *o)
{
	*o = (opts){.target = "llvm", .attrs = "", .repeat = 10, .seed = 1, .trials = 32, .timeout = 60, .search = "xgb",
	          .min_repeat_ms = 20};
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			o->help = 1;
			return 0;
		}
		if (!strcmp(a, "--print-graph")) {
			o->print_graph = 1;
			continue;
		}
		if (!strcmp(a, "--check")) {
			o->check = 1;
			continue;
		}
		if (!strcmp(a, "--list-space")) {
			o->list_space = 1;
			continue;
		}
		if (!strcmp(a, "--llvm") || !strcmp(a, "--llvm-opt")) {
			o->llvm = a[6] ? 2 : 1;
			continue;
		}
		if (a[0] != '-') {
			if (o->op) {
				fprintf(stderr, "kiln: unexpected argument '%s'\n", a);
				return -1;
			}
			o->op = a;
			continue;
		}
		if (!v) {
			fprintf(stderr, "kiln: option %s needs a value\n", a);
			return -1;
		}
		i++;
		if (!strcmp(a, "--shape"))
			o->shape = v;
		else if (!strcmp(a, "--attr"))
			o->attrs = v;
		else if (!strcmp(a, "--target"))
			o->target = v;
		else if (!strcmp(a, "-o"))
			o->out = v;
		else if (!strcmp(a, "--threads") || !strcmp(a, "--repeat") || !strcmp(a, "--seed")) {
			/* threads: up to the thread pool's cap; repeat: samples of the time evaluator */
			long long x;
			bool th = a[2] == 't', rep = a[2] == 'r';
			char err[256];
			if (cli_parse_int(a, v, th || rep ? 1 : 0, th ? KILN_MAX_THREADS : rep ? 100000 : INT64_MAX, &x, err,
			                  sizeof err)) {
				fprintf(stderr, "kiln: %s\n", err);
				return -1;
			}
			if (th)
				o->threads = (int)x;
			else if (rep)
				o->repeat = (int)x;
			else
				o->seed = (uint64_t)x;
		} else if (!strcmp(a, "--min-repeat-ms") || !strcmp(a, "--cooldown-ms")) {
			long long x;
			char err[256];
			if (cli_parse_int(a, v, 0, 60000, &x, err, sizeof err)) {
				fprintf(stderr, "kiln: %s\n", err);
				return -1;
			}
			*(a[2] == 'm' ? &o->min_repeat_ms : &o->cooldown_ms) = (int)x;
		} else if (!strcmp(a, "--trials") || !strcmp(a, "--timeout")) {
			long long x;
			char err[256];
			if (cli_parse_int(a, v, 1, a[3] == 'r' ? 100000 : 3600, &x, err, sizeof err)) {
				fprintf(stderr, "kiln: %s\n", err);
				return -1;
			}
			*(a[3] == 'r' ? &o->trials : &o->timeout) = (int)x;
		} else if (!strcmp(a, "--log"))
			o->log = v;
		else if (!strcmp(a, "--tuning-log"))
			o->tuning_log = v;
		else if (!strcmp(a, "--search")) {
			if (strcmp(v, "random") && strcmp(v, "grid") && strcmp(v, "xgb")) {
				fprintf(stderr, "kiln: --search takes xgb, random or grid, not '%s'\n", v);
				return -1;
			}
			o->search = v;
		} else if (!strcmp(a, "--config"))
			o->config = v;
		else if (!strcmp(a, "--oracle"))
			o->oracle = v;
		else if (!strcmp(a, "--save-module"))
			o->save_module = v;
		else if (!strcmp(a, "--module"))
			o->module = v;
		else if (!strcmp(a, "--build-jobs")) {
			long long x;
			char err[256];
			if (cli_parse_int(a, v, 1, 64, &x, err, sizeof err)) {
				fprintf(stderr, "kiln: %s\n", err);
				return -1;
			}
			o->build_jobs = (int)x;
		}
		else if (!strcmp(a, "--port"))
			o->port = v;
		else if (!strcmp(a, "--rpc"))
			o->rpc = v;
		else if (!strcmp(a, "--key"))
			o->key = v;
		else if (!strcmp(a, "--input")) {
			if (o->ninput == 16) {
				fprintf(stderr, "kiln: more than 16 --input options\n");
				return -1;
			}
			o->input[o->ninput++] = v;
		} else if (!strcmp(a, "--input-shape")) {
			if (o->ninput_shape == 16) {
				fprintf(stderr, "kiln: more than 16 --input-shape options\n");
				return -1;
			}
			o->input_shape[o->ninput_shape++] = v;
		}
		else {
			fprintf(stderr, "kiln: unknown option '%s' (try kiln %s --help)\n", a, argv[1]);
			return -1;
		}
	}
	return 0;
}

/*
 * A .kte file in place of a registry operator (FILE.kte, or FILE.kte:OP when
 * it holds several ops): its op, declared as the file says, scheduled by its
 * schedule blocks. The CLI handles one operator per run, so one program.
 */
static kiln_program *program;
static kiln_op_info program_info;

/* A whole text file of at most max bytes, NUL-terminated; NULL (printed) otherwise. */
static char *read_text(const char *path, long max)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "kiln: cannot open %s: %s\n", path, strerror(errno));
		return NULL;
	}
	char *buf = malloc((size_t)max + 1);
	size_t n = buf ? fread(buf, 1, (size_t)max + 1, f) : 0;
	bool bad = ferror(f);
	fclose(f);
	if (!buf || bad || n > (size_t)max) {
		fprintf(stderr, "kiln: %s: %s\n", path, bad ? "read error" : "larger than 1 MiB");
		free(buf);
		return NULL;
	}
	if (memchr(buf, 0, n)) {
		fprintf(stderr, "kiln: %s: a NUL byte; .kte files are text\n", path);
		free(buf);
		return NULL;
	}
	buf[n] = 0;
	return buf;
}

static bool is_kte(const char *op)
{
	const char *dot = strstr(op, ".kte");
	return dot && (dot[4] == 0 || dot[4] == ':');
}

static const kiln_op_info *declare_program(kiln_ctx *ctx, const opts *o, kiln_op_inst *inst)
{
	char path[4096];
	const char *colon = strstr(o->op, ".kte:");
	size_t plen = colon ? (size_t)(colon + 4 - o->op) : strlen(o->op);
	if (plen >= sizeof path) {
		fprintf(stderr, "kiln: path too long\n");
		return NULL;
	}
	memcpy(path, o->op, plen);
	path[plen] = 0;
	if (o->shape || (o->attrs && *o->attrs)) {
		fprintf(stderr, "kiln: %s declares its own shapes; --shape and --attr are for registry operators\n", path);
		return NULL;
	}
	char *text = read_text(path, 1 << 20);
	if (!text)
		return NULL;
	program = kiln_parse(ctx, path, text);
	free(text);
	if (!program) {
		fprintf(stderr, "%s\n", kiln_error(ctx));
		return NULL;
	}
	const char *name = colon ? colon + 5 : NULL;
	if (!name && kiln_program_num_ops(program) > 1) {
		fprintf(stderr, "kiln: %s holds %d ops; name one as %s:OP (", path, kiln_program_num_ops(program), path);
		for (int i = 0; i < kiln_program_num_ops(program); i++)
			fprintf(stderr, "%s%s", i ? ", " : "", kiln_program_op_name(program, i));
		fprintf(stderr, ")\n");
		return NULL;
	}
	if (!name)
		name = kiln_program_op_name(program, 0);
	kiln_tensor **args;
	int nargs = kiln_program_args(program, name, &inst->nin, &args);
	if (nargs < 0) {
		fprintf(stderr, "kiln: %s has no op '%s'\n", path, name);
		return NULL;
	}
	if (nargs > KILN_OP_MAX_ARGS) {
		fprintf(stderr, "kiln: op '%s' has %d arguments; the CLI runs at most %d\n", name, nargs, KILN_OP_MAX_ARGS);
		return NULL;
	}
	inst->nargs = nargs;
	memcpy(inst->args, args, sizeof(kiln_tensor *) * (size_t)nargs);
	/* flops: one multiply-add per reduction step of every output element (an estimate for GFLOP/s) */
	inst->flops = 0;
	for (int i = inst->nin; i < nargs; i++)
		inst->flops += 2.0 * kiln_tensor_work(args[i]);
	program_info.name = name;
	return &program_info;
}

/* Declares the operator named in o; prints what went wrong otherwise. */
static const kiln_op_info *declare(kiln_ctx *ctx, const opts *o, kiln_op_inst *inst)
{
	if (!o->op) {
		fprintf(stderr, "kiln: which operator? (see kiln ops, or give a .kte file)\n");
		return NULL;
	}
	if (is_kte(o->op))
		return declare_program(ctx, o, inst);
	const kiln_op_info *info = kiln_op_find(o->op);
	if (!info) {
		fprintf(stderr, "kiln: unknown operator '%s' (see kiln ops)\n", o->op);
		return NULL;
	}
	int64_t shape[KILN_MAX_DIMS];
	int n = 0;
	if (o->shape) {
		n = cli_parse_shape(o->shape, shape);
	} else { /* without --shape, the small example shape the tests use */
		n = kiln_op_example_rank(info);
		memcpy(shape, info->example, sizeof(int64_t) * (size_t)n);
	}
	if (n <= 0) {
		fprintf(stderr, "kiln: --shape '%s' is not a list of positive integers\n", o->shape);
		return NULL;
	}
	kiln_target t;
	char err[256];
	if (kiln_target_parse(o->target, &t, err, sizeof err)) {
		fprintf(stderr, "kiln: %s\n", err);
		return NULL;
	}
	if (kiln_op_declare(ctx, info, n, shape, o->attrs, inst)) {
		fprintf(stderr, "kiln: %s\n", kiln_error(ctx));
		return NULL;
	}
	return info;
}

/*
 * A register-block configuration for the CPU template (--config R,V, or the
 * best record of --tuning-log), applied in place of the default; NULL: none.
 */
static const kiln_cpu_config *cpu_config;
static const char *cpu_config_from;

static kiln_func *lower(kiln_ctx *ctx, const kiln_op_info *info, kiln_op_inst *inst, const char *target, FILE *trace)
{
	int nout = inst->nargs - inst->nin;
	const char *which = NULL;
	kiln_target t;
	char err[256];
	kiln_schedule *s;
	if (cpu_config && !kiln_target_parse(target, &t, err, sizeof err) && !t.emulated) {
		static char buf[512];
		char d[160];
		kiln_tune_config_describe_for(&t, cpu_config, d, sizeof d);
		snprintf(buf, sizeof buf, "the %s template, %s (%s)",
		         t.kind == KILN_LLVM || t.kind == KILN_WASM ? "CPU" : t.kind == KILN_WEBGL ? "WebGL" : "GPU", d,
		         cpu_config_from);
		which = buf;
		s = kiln_schedule_template(ctx, &t, cpu_config, nout, inst->args + inst->nin);
	} else {
		s = program && info == &program_info ? kiln_program_schedule(program, info->name, target, &which)
		                                     : kiln_schedule_for(ctx, target, nout, inst->args + inst->nin);
	}
	if (trace && which)
		fprintf(trace, "// %s: %s\n", info->name, which);
	kiln_func *f = s ? kiln_lower(s, info->name, inst->nargs, inst->args, trace) : NULL;
	if (!f)
		fprintf(stderr, "kiln: %s: %s\n", info->name, kiln_error(ctx));
	return f;
}

/* llvm, with or without -mcpu/-mattr: code for a CPU. */
static bool is_cpu_target(const char *target)
{
	kiln_target t;
	char err[256];
	return !kiln_target_parse(target, &t, err, sizeof err) && t.kind == KILN_LLVM;
}

/* The code a target name generates: "webgpu-cpu" is WGSL under another schedule. */
static const char *codegen_target(const char *target) { return strcmp(target, "webgpu-cpu") ? target : "webgpu"; }

static kiln_module *build(kiln_ctx *ctx, const kiln_op_info *info, kiln_op_inst *inst, const char *target)
{
	kiln_func *f = lower(ctx, info, inst, target, NULL);
	kiln_module *m = f ? kiln_build(ctx, 1, &f, codegen_target(target)) : NULL;
	if (f && !m)
		fprintf(stderr, "kiln: %s: %s\n", info->name, kiln_error(ctx));
	return m;
}

/* Arrays for every argument, inputs random; NULL (printed) when one cannot be made. */
static kiln_array **alloc_args(kiln_op_inst *inst, uint64_t seed)
{
	kiln_array **a = calloc((size_t)inst->nargs, sizeof *a);
	for (int i = 0; a && i < inst->nargs; i++) {
		kiln_tensor *t = inst->args[i];
		a[i] = kiln_array_empty(kiln_tensor_ndim(t), kiln_tensor_shape(t), kiln_tensor_dtype(t));
		if (!a[i]) {
			fprintf(stderr, "kiln: argument '%s': %s\n", kiln_tensor_name(t), kiln_rt_last_error());
			for (int k = 0; k < i; k++)
				kiln_array_free(a[k]);
			free(a);
			return NULL;
		}
		bool var = !strcmp(kiln_tensor_name(t), "var");
		if (i < inst->nin)
			kiln_array_fill_random(a[i], seed + (uint64_t)i, var ? 0.5 : -1, var ? 1.5 : 1);
	}
	return a;
}

static void free_args(kiln_op_inst *inst, kiln_array **a)
{
	for (int i = 0; i < inst->nargs; i++)
		kiln_array_free(a[i]);
	free(a);
}

static int cmd_devices(void)
{
	kiln_target host;
	char err[256], desc[512];
	if (!kiln_target_parse("llvm", &host, err, sizeof err))
		printf("%s\n", kiln_target_describe(&host, desc, sizeof desc));
	printf("llvm: this CPU (%d threads)\n", kiln_get_num_threads());
	char buf[4096];
	if (kiln_opencl_devices(buf, sizeof buf) > 0) {
		fputs(buf, stdout);
		const char *used = kiln_opencl_device_name();
		printf("opencl runs on: %s\n", used ? used : kiln_rt_last_error());
	} else {
		printf("opencl: no device (install an ICD, e.g. pocl-opencl-icd)\n");
	}
	const char *gles = kiln_gles_device_name();
	printf("webgl (native GLES through EGL): %s\n", gles ? gles : kiln_rt_last_error());
	return 0;
}

static int cmd_ops(void)
{
	printf("%-18s %-16s %s\n", "operator", "--shape", "what it computes [--attr]");
	for (int i = 0; i < kiln_num_ops(); i++) {
		const kiln_op_info *op = kiln_op_at(i);
		printf("%-18s %-16s %s", op->name, op->shape_help, op->summary);
		if (op->attr_help[0])
			printf(" [%s]", op->attr_help);
		printf("\n");
	}
	return 0;
}

/* run and bench --rpc: the session their module lives in, closed by finish(). */
static kiln_rpc *session;

static void finish(kiln_module *m)
{
	kiln_module_free(m);
	kiln_rpc_close(session);
	session = NULL;
}

/* Declares, builds and allocates random arguments: what run and bench share. */
static kiln_module *prepare(kiln_ctx *ctx, const opts *o, kiln_op_inst *inst, const kiln_op_info **info,
                            kiln_array ***args)
{
	kiln_target t;
	char err[256];
	if (!o->rpc && !o->save_module && !kiln_target_parse(o->target, &t, err, sizeof err) &&
	    !kiln_target_runs_here(&t)) {
		fprintf(stderr, "kiln: this CPU cannot run code for '%s' (it lacks features that target has); "
		                "build it with -o instead\n", o->target);
		return NULL;
	}
	*info = declare(ctx, o, inst);
	/* measure --module: the candidate a build worker saved (kiln tune builds several at once) */
	kiln_module *m = !*info ? NULL : o->module ? kiln_module_load(o->module) : build(ctx, *info, inst, o->target);
	if (m && o->save_module) /* measure --save-module: built here, kept for a measuring worker */
		return m;
	if (m && o->rpc) { /* built here, run there: the remote twin replaces it */
		kiln_module *r = (session = cli_rpc_connect(o->rpc, o->key)) ? kiln_rpc_upload(session, m) : NULL;
		if (session && !r) {
			fprintf(stderr, "kiln: %s\n", kiln_rt_last_error());
			kiln_rpc_close(session);
			session = NULL;
		}
		kiln_module_free(m);
		m = r;
	}
	if (m && !(*args = alloc_args(inst, o->seed))) {
		kiln_module_free(m);
		return NULL;
	}
	return m;
}

static int cmd_run(kiln_ctx *ctx, const opts *o)
{
	kiln_op_inst inst;
	const kiln_op_info *info;
	kiln_array **a;
	kiln_module *m = prepare(ctx, o, &inst, &info, &a);
	if (!m)
		return 1;
	int rc = 0;
	if (kiln_module_call(m, info->name, a, inst.nargs)) {
		fprintf(stderr, "kiln: %s\n", kiln_rt_last_error());
		rc = 1;
	}
	kiln_tensor *out = inst.args[inst.nargs - 1];
	kiln_array *want = kiln_array_empty(kiln_tensor_ndim(out), kiln_tensor_shape(out), kiln_tensor_dtype(out));
	if (!rc && kiln_eval(ctx, out, inst.nin, inst.args, a, want)) {
		fprintf(stderr, "kiln: oracle: %s\n", kiln_error(ctx));
		rc = 1;
	}
	if (!rc) {
		const float *got = a[inst.nargs - 1]->data, *ref = want->data;
		double maxerr = 0, worst = 0;
		int64_t n = kiln_array_numel(want);
		for (int64_t i = 0; i < n; i++) {
			double e = fabs((double)got[i] - ref[i]), scaled = e / (1e-4 + 1e-4 * fabs(ref[i]));
			if (e > maxerr || isnan(e))
				maxerr = isnan(e) ? INFINITY : e;
			if (scaled > worst || isnan(scaled))
				worst = isnan(scaled) ? INFINITY : scaled;
		}
		printf("%s: %lld outputs, max abs error %.3g vs the oracle (%s)\n", info->name, (long long)n, maxerr,
		       worst <= 1 ? "within tolerance" : "OVER TOLERANCE");
		rc = worst <= 1 ? 0 : 1;
	}
	kiln_array_free(want);
	free_args(&inst, a);
	finish(m);
	return rc;
}

static int cmd_bench(kiln_ctx *ctx, const opts *o)
{
	if (o->threads > 0)
		kiln_set_num_threads(o->threads);
	kiln_op_inst inst;
	const kiln_op_info *info;
	kiln_array **a;
	kiln_module *m = prepare(ctx, o, &inst, &info, &a);
	if (!m)
		return 1;
	kiln_time_opts t = {.warmup = 3, .repeat = o->repeat > 0 ? o->repeat : 10, .min_repeat_ms = 50};
	kiln_timing r;
	int rc = kiln_module_time(m, info->name, a, inst.nargs, &t, &r);
	if (rc)
		fprintf(stderr, "kiln: %s\n", kiln_rt_last_error());
	else if (session)
		printf("%s: median %.4f ms over %d samples of %d calls, %.2f GFLOP/s, on %s\n", info->name, r.median_ms,
		       r.nsamples, r.number, inst.flops / r.median_ms / 1e6, kiln_rpc_peer(session));
	else if (is_cpu_target(o->target))
		printf("%s: median %.4f ms over %d samples of %d calls, %.2f GFLOP/s, %d threads\n", info->name, r.median_ms,
		       r.nsamples, r.number, inst.flops / r.median_ms / 1e6, kiln_get_num_threads());
	else
		printf("%s: median %.4f ms of kernel time over %d samples of %d calls, %.2f GFLOP/s, on %s\n", info->name,
		       r.median_ms, r.nsamples, r.number, inst.flops / r.median_ms / 1e6,
		       strcmp(o->target, "webgl") ? kiln_opencl_device_name() : kiln_gles_device_name());
	kiln_timing_free(&r);
	free_args(&inst, a);
	finish(m);
	return rc ? 1 : 0;
}

/* build writes a bundle for --target web or a list, or for -o naming a folder. */
static bool is_bundle(const opts *o)
{
	struct stat st;
	size_t n = o->out ? strlen(o->out) : 0;
	return !strcmp(o->target, "web") || strchr(o->target, ',') || (n && o->out[n - 1] == '/') ||
	       (o->out && !stat(o->out, &st) && S_ISDIR(st.st_mode));
}

static int pick_config(const opts *o, kiln_cpu_config *cfg);

/* kiln build OP --target T1,T2 -o DIR/: one module per web target, in one bundle. */
static int cmd_bundle(kiln_ctx *ctx, const opts *o)
{
	if (!o->out) {
		fprintf(stderr, "kiln: build needs -o DIR/\n");
		return 1;
	}
	struct stat st;
	size_t ol = strlen(o->out);
	if (o->out[ol - 1] != '/' && (stat(o->out, &st) || !S_ISDIR(st.st_mode))) {
		fprintf(stderr, "kiln: a bundle is a folder: write -o %s/ (with the slash) to create it, not a file name\n",
		        o->out);
		return 1;
	}
	char list[256], err[256];
	kiln_module *mods[4];
	const char *keys[4];
	int nt = cli_target_list(o->target, list, sizeof list, keys, err, sizeof err), n = 0, rc = 1;
	if (nt < 0) {
		fprintf(stderr, "kiln: %s\n", err);
		return 1;
	}
	const char *name = o->op; /* the operator's name (a .kte file's op, not its path) */
	for (; n < nt; n++) {
		opts one = *o;
		one.target = keys[n];
		/* --tuning-log: wasm takes the CPU template's record, webgpu the GPU one's, webgl its own */
		static kiln_cpu_config picked; /* cpu_config may point at it past this iteration */
		kiln_target kt;
		bool templated = !kiln_target_parse(keys[n], &kt, err, sizeof err) && !kt.emulated;
		if (o->tuning_log && !o->config) {
			cpu_config = NULL;
			if (templated && pick_config(&one, &picked))
				goto done;
		}
		/* one --config for several modules is the CPU's or GPU's; the webgl module keeps its default */
		const kiln_cpu_config *given = cpu_config;
		if (o->config && nt > 1 && templated && kt.kind == KILN_WEBGL)
			cpu_config = NULL;
		kiln_op_inst inst;
		const kiln_op_info *info = declare(ctx, &one, &inst);
		bool built = info && (mods[n] = build(ctx, info, &inst, keys[n]));
		cpu_config = o->config ? given : cpu_config;
		if (!built)
			goto done;
		if (o->tuning_log && !o->config)
			cpu_config = NULL; /* the next module picks its own */
		name = info->name;
	}
	if (kiln_bundle_write_keys(ctx, o->out, name, n, mods, keys)) {
		fprintf(stderr, "kiln: %s\n", kiln_error(ctx));
		goto done;
	}
	printf("wrote %s: a bundle of %s for", o->out, name);
	for (int i = 0; i < n; i++)
		printf(" %s", keys[i]);
	printf("\n  node: import { load } from '<the folder>/kiln.mjs'; browser: kiln serve %s\n", o->out);
	rc = 0;
done:
	for (int i = 0; i < n; i++)
		kiln_module_free(mods[i]);
	return rc;
}

/* kiln onnx MODEL: load and check an ONNX model, and summarize it. */
static int cmd_onnx(const opts *o)
{
	if (!o->op) {
		fprintf(stderr, "kiln: onnx needs a model file (kiln onnx model.onnx)\n");
		return 2;
	}
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_onnx_model *m = kiln_onnx_load(ctx, o->op);
	if (!m)
		fprintf(stderr, "kiln: %s\n", kiln_error(ctx));
	else
		kiln_onnx_describe(m, stdout);
	kiln_onnx_free(m);
	kiln_ctx_free(ctx);
	return m ? 0 : 1;
}

static bool is_library(const char *path)
{
	size_t n = strlen(path);
	return n > 3 && !strcmp(path + n - 3, ".so");
}

/* kiln compile MODEL.onnx -o M.kmod|M.so: the whole model as one model module, or one shared library. */
/* --input-shape NAME=N,N,... into binds (names malloc'ed); the count, or -1 (printed). */
static int input_binds(const opts *o, kiln_input_shape *binds)
{
	for (int i = 0; i < o->ninput_shape; i++) {
		const char *eq = strchr(o->input_shape[i], '=');
		int n = eq ? cli_parse_shape(eq + 1, binds[i].shape) : -1;
		if (!eq || eq == o->input_shape[i] || n <= 0) {
			fprintf(stderr, "kiln: --input-shape '%s' is not NAME=N,N,... with positive extents\n", o->input_shape[i]);
			for (int k = 0; k < i; k++)
				free((char *)binds[k].name);
			return -1;
		}
		binds[i].name = strndup(o->input_shape[i], (size_t)(eq - o->input_shape[i]));
		binds[i].ndim = n;
	}
	return o->ninput_shape;
}

/* The model of o as an optimized graph in ctx; NULL (printed). *m is freed by the caller. */
static kiln_graph *model_graph(kiln_ctx *ctx, const opts *o, kiln_onnx_model **m)
{
	kiln_input_shape binds[16];
	int nb = input_binds(o, binds);
	*m = nb < 0 ? NULL : kiln_onnx_load(ctx, o->op);
	kiln_graph *g = *m ? kiln_onnx_import(ctx, *m, nb, binds) : NULL;
	for (int i = 0; i < nb; i++)
		free((char *)binds[i].name);
	if (g && kiln_graph_optimize(g, NULL))
		g = NULL;
	if (!g && nb >= 0)
		fprintf(stderr, "kiln: %s\n", kiln_error(ctx));
	return g;
}

/* The groups a CPU configuration changes: convolutions and matrix products. */
static bool tunable_task(const char *task)
{
	return !strncmp(task, "Conv", 4) || !strncmp(task, "MatMul", 6) || !strncmp(task, "Gemm", 4);
}

/* The tuning record key of a model's group task. */
static kiln_tune_task group_record_task(const char *task, const char *target)
{
	kiln_tune_task t = {0};
	snprintf(t.op, sizeof t.op, "graph %.*s", (int)strcspn(task, " "), task);
	snprintf(t.attrs, sizeof t.attrs, "%s", task);
	snprintf(t.target, sizeof t.target, "%s", target);
	return t;
}

/* kiln_graph_set_config's answers: the best record of a log per task, or one fixed configuration. */
typedef struct {
	const char *log, *target;
	char device[256];
	const kiln_cpu_config *fixed;
	int n, applied, asked, kept; /* kept: the best record is the default schedule's */
	kiln_cpu_config cfg[512];
} group_configs;

static const kiln_cpu_config *group_config(const char *task, void *user)
{
	group_configs *gc = user;
	if (!tunable_task(task))
		return NULL;
	gc->asked++;
	if (gc->fixed || !gc->log)
		return gc->fixed;
	kiln_tune_task t = group_record_task(task, gc->target);
	kiln_tune_record best;
	char err[512];
	if (gc->n == 512 || kiln_tune_log_best(gc->log, &t, gc->device, &best, err, sizeof err) != 1)
		return NULL;
	if (!memcmp(&best.cfg, &(kiln_cpu_config){0}, sizeof best.cfg)) { /* the tuner's record of the default won */
		gc->kept++;
		return NULL;
	}
	gc->cfg[gc->n] = best.cfg;
	gc->applied++;
	return &gc->cfg[gc->n++];
}

/*
 * The device for target as tuning records carry it: this machine's (an
 * OpenCL device's name included), or with remote the server's or tab's at
 * that address (records measured there apply there: kiln run --rpc, kiln
 * compile --rpc).
 */
static void host_device(const char *target, const char *remote, char *out, size_t n)
{
	kiln_target t;
	char err[512];
	out[0] = 0;
	if (!kiln_target_parse(target, &t, err, sizeof err)) {
		const char *dev = remote                   ? NULL
		                  : t.kind == KILN_OPENCL ? kiln_opencl_device_name()
		                  : t.kind == KILN_WEBGL  ? kiln_gles_device_name()
		                                          : NULL;
		kiln_target_describe(&t, err, sizeof err);
		if (remote)
			snprintf(out, n, "%.200s; remote %.200s", err, remote); /* (the form records have had) */
		else if (dev)
			snprintf(out, n, "%.200s on %.200s", err, dev);
		else
			snprintf(out, n, "%.255s", err);
	}
}

static int cmd_compile(const opts *o)
{
	if (!o->op || !o->out) {
		fprintf(stderr, "kiln: compile needs a model and -o FILE.kmod (kiln compile model.onnx -o model.kmod)\n");
		return 2;
	}
	kiln_input_shape binds[16];
	for (int i = 0; i < o->ninput_shape; i++) {
		const char *eq = strchr(o->input_shape[i], '=');
		int n = eq ? cli_parse_shape(eq + 1, binds[i].shape) : -1;
		if (!eq || eq == o->input_shape[i] || n <= 0) {
			fprintf(stderr, "kiln: --input-shape '%s' is not NAME=N,N,... with positive extents\n", o->input_shape[i]);
			return 2;
		}
		binds[i].name = strndup(o->input_shape[i], (size_t)(eq - o->input_shape[i]));
		binds[i].ndim = n;
	}
	bool web = !strcmp(o->target, "web");
	if (o->config && (web || o->tuning_log)) {
		fprintf(stderr, "kiln: compile: --config gives one target's model one configuration%s\n",
		        web ? " (one target's model: not a bundle's, whose targets take different knobs)"
		            : "; --config or --tuning-log, not both");
		return 2;
	}
	if (!web && strcmp(o->target, "llvm") && strcmp(o->target, "opencl") && strcmp(o->target, "webgl") &&
	    strcmp(o->target, "wasm") && strcmp(o->target, "webgpu") && strcmp(o->target, "webgpu-cpu")) {
		fprintf(stderr, "kiln: compile: unknown target '%s' (llvm, opencl, webgl, wasm, webgpu, webgpu-cpu, or web: "
		        "a bundle of the web ones)\n", o->target);
		return 2;
	}
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_onnx_model *m = kiln_onnx_load(ctx, o->op);
	kiln_graph *g = m ? kiln_onnx_import(ctx, m, o->ninput_shape, binds) : NULL;
	int rc = 1;
	FILE *lf = o->tuning_log ? fopen(o->tuning_log, "r") : NULL;
	bool log_bad = o->tuning_log && !lf;
	if (log_bad)
		fprintf(stderr, "kiln: cannot open %s: %s\n", o->tuning_log, strerror(errno));
	if (lf)
		fclose(lf);
	if (web && !log_bad) {
		/* one bundle: wasm, webgpu (and webgpu-cpu for emulated adapters), webgl; the JS API picks */
		static const char *targets[] = {"webgpu", "webgpu-cpu", "webgl", "wasm"};
		kiln_module *mods[4] = {0};
		group_configs gcs[4];
		int n = 0;
		for (; g && n < 4; n++) {
			/* each module with its own target's records (model tuning logs wasm's: kiln tune --target wasm) */
			gcs[n] = (group_configs){.log = o->tuning_log, .target = targets[n]};
			host_device(targets[n], o->rpc, gcs[n].device, sizeof gcs[n].device);
			kiln_graph_set_config(g, o->tuning_log ? group_config : NULL, &gcs[n]);
			if (!(mods[n] = kiln_graph_compile(g, targets[n], o->print_graph && !n ? stdout : NULL)))
				break;
		}
		if (n < 4)
			fprintf(stderr, "kiln: %s\n", kiln_error(ctx));
		else if (kiln_bundle_write_keys(ctx, o->out, "model", 4, mods, targets))
			fprintf(stderr, "kiln: %s\n", kiln_error(ctx));
		else {
			printf("wrote %s: a model bundle (webgpu, webgpu-cpu, webgl, wasm; kiln.mjs's loadModel opens it)\n",
			       o->out);
			for (int i = 0; o->tuning_log && i < 4; i++)
				if (gcs[i].applied || gcs[i].kept || !strcmp(targets[i], "wasm"))
					printf("%s: tuned configurations for %d of %d %s kernels (%d kept the default)\n", o->tuning_log,
					       gcs[i].applied, gcs[i].asked, targets[i], gcs[i].kept);
			rc = 0;
		}
		for (int i = 0; i < 4; i++)
			kiln_module_free(mods[i]);
		kiln_onnx_free(m);
		kiln_ctx_free(ctx);
		for (int i = 0; i < o->ninput_shape; i++)
			free((char *)binds[i].name);
		return rc;
	}
	group_configs gc = {.log = o->tuning_log, .target = o->target};
	static kiln_cpu_config given; /* --config: one configuration for every task, as a tuner's round builds */
	if (g && o->config && kiln_tune_config_parse(o->config, &given)) {
		fprintf(stderr, "kiln: compile takes --config ROWS,VECTORS[,...] (every convolution and matrix product "
		                "whose schedule takes it), not %s\n", o->config);
		log_bad = true;
	} else if (g && o->config) {
		gc.fixed = &given;
		kiln_graph_set_config(g, group_config, &gc);
	}
	if (g && o->tuning_log && !log_bad) {
		host_device(o->target, o->rpc, gc.device, sizeof gc.device);
		kiln_graph_set_config(g, group_config, &gc);
	}
	kiln_module *mod = g && !log_bad ? kiln_graph_compile(g, o->target, o->print_graph ? stdout : NULL) : NULL;
	if (mod && o->tuning_log)
		printf("%s: tuned configurations for %d of %d convolution and matrix-product kernels (%d kept the default: "
		       "no trial beat it)\n", o->tuning_log, gc.applied, gc.asked, gc.kept);
	if (!mod) {
		if (!g || !log_bad) /* (a missing log was said above) */
			fprintf(stderr, "kiln: %s\n", kiln_error(ctx));
	} else if (is_library(o->out) && strcmp(o->target, "llvm"))
		fprintf(stderr, "kiln: a model library (.so) holds CPU code: --target llvm, or write a .kmod for %s\n",
		        o->target);
	else if (is_library(o->out) ? kiln_export_library(ctx, mod, o->out) : kiln_module_save(mod, o->out))
		fprintf(stderr, "kiln: %s\n", is_library(o->out) ? kiln_error(ctx) : kiln_rt_last_error());
	else {
		int64_t plain, planned = kiln_graph_planned_bytes(g, &plain);
		printf("wrote %s: %d kernels for %s; intermediates %lld bytes planned (%lld without reuse)\n", o->out,
		       kiln_module_num_functions(mod), o->target, (long long)planned, (long long)plain);
		rc = 0;
	}
	kiln_module_free(mod);
	kiln_onnx_free(m);
	kiln_ctx_free(ctx);
	for (int i = 0; i < o->ninput_shape; i++)
		free((char *)binds[i].name);
	return rc;
}

/* A compiled model (a module container or library) rather than an operator name. */
static bool is_model(const opts *o)
{
	size_t n = o->op ? strlen(o->op) : 0;
	return (n > 5 && !strcmp(o->op + n - 5, ".kmod")) || (n > 3 && !strcmp(o->op + n - 3, ".so"));
}

/* kiln run|bench M.kmod: random inputs (uniform in [-1, 1)), outputs summarized, or timed. */
void cli_print_output(const char *name, const kiln_array *y)
{
	char dt[16];
	printf("output '%s': %s [", name, kiln_dtype_str(y->dtype, dt));
	for (int d = 0; d < y->ndim; d++)
		printf("%s%lld", d ? "," : "", (long long)y->shape[d]);
	printf("]");
	if (y->dtype.code == KILN_FLOAT && y->dtype.bits == 32) {
		double sum = 0;
		for (int64_t k = 0; k < kiln_array_numel(y); k++)
			sum += ((float *)y->data)[k];
		printf(" sum %.6g, first", sum);
		for (int64_t k = 0; k < kiln_array_numel(y) && k < 5; k++)
			printf(" %.6g", ((float *)y->data)[k]);
	}
	printf("\n");
}

int cli_write_output(const char *out, int n, const char *name, const kiln_array *y)
{
	/* one output: the file named; several: a folder of NAME.npy */
	char path[4200], err[600];
	if (n == 1) {
		snprintf(path, sizeof path, "%s", out);
	} else {
		mkdir(out, 0755);
		char safe[64];
		snprintf(safe, sizeof safe, "%s", name);
		for (char *c = safe; *c; c++)
			if (*c == '/' || *c == '\\' || (c == safe && *c == '.'))
				*c = '_';
		snprintf(path, sizeof path, "%s/%s.npy", out, safe);
	}
	if (npy_write(path, y, err, sizeof err)) {
		fprintf(stderr, "kiln: %s\n", err);
		return 1;
	}
	printf("wrote %s\n", path);
	return 0;
}

static int cmd_model(const opts *o, bool bench)
{
	if (o->rpc)
		return cli_rpc_model(o->op, o->rpc, o->key, bench, o->ninput, o->input, o->out, o->seed, o->repeat);
	kiln_model *m = kiln_model_load(o->op);
	if (!m) {
		fprintf(stderr, "kiln: %s\n", kiln_rt_last_error());
		return 1;
	}
	if (o->threads)
		kiln_set_num_threads(o->threads);
	int rc = 0;
	if (o->ninput && o->ninput != kiln_model_num_inputs(m)) {
		fprintf(stderr, "kiln: the model has %d inputs, %d --input files were given\n", kiln_model_num_inputs(m),
		        o->ninput);
		kiln_model_free(m);
		return 2;
	}
	char err[600];
	for (int i = 0; i < kiln_model_num_inputs(m) && !rc; i++) {
		const kiln_arg_info *in = kiln_model_input_info(m, i);
		kiln_array *a = o->ninput ? npy_read(o->input[i], err, sizeof err) : kiln_array_empty(in->ndim, in->shape, in->dtype);
		if (!a && o->ninput) {
			fprintf(stderr, "kiln: %s\n", err);
			kiln_model_free(m);
			return 1;
		}
		if (a && !o->ninput)
			kiln_array_fill_random(a, o->seed + (uint64_t)i, -1, 1);
		rc = !a || kiln_model_set_input(m, in->name, a);
		kiln_array_free(a);
	}
	kiln_timing t = {0};
	if (!rc)
		rc = bench ? kiln_model_time(m, &(kiln_time_opts){.warmup = 1, .repeat = o->repeat}, &t) : kiln_model_run(m);
	if (rc) {
		fprintf(stderr, "kiln: %s\n", kiln_rt_last_error());
		kiln_model_free(m);
		return 1;
	}
	if (bench)
		printf("%s: median %.3f ms, min %.3f ms over %d runs (%d threads)\n", o->op, t.median_ms, t.min_ms,
		       t.nsamples, kiln_get_num_threads());
	if (bench && o->print_graph && kiln_model_profile(m, o->repeat, stdout)) {
		fprintf(stderr, "kiln: %s\n", kiln_rt_last_error());
		rc = 1;
	}
	int n = kiln_model_num_outputs(m);
	for (int i = 0; i < n && !bench; i++)
		cli_print_output(kiln_model_output_info(m, i)->name, kiln_model_get_output(m, i));
	for (int i = 0; o->out && !bench && i < n; i++)
		rc |= cli_write_output(o->out, n, kiln_model_output_info(m, i)->name, kiln_model_get_output(m, i));
	kiln_timing_free(&t);
	kiln_model_free(m);
	return rc;
}

/* kiln serve DIR: the bundle's own server (serve.mjs) under node. */
static int cmd_serve(const opts *o)
{
	if (!o->op) {
		fprintf(stderr, "kiln: serve needs a folder (a bundle from kiln build ... -o DIR/)\n");
		return 2;
	}
	struct stat st;
	if (stat(o->op, &st) || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "kiln: %s is not a folder\n", o->op);
		return 1;
	}
	long long port = 8080;
	char err[256];
	if (o->port && cli_parse_int("--port", o->port, 0, 65535, &port, err, sizeof err)) {
		fprintf(stderr, "kiln: %s\n", err);
		return 2;
	}
	/* kiln's own server, never the folder's: serving a bundle someone sent you
	 * must not run their JavaScript */
	char script[4096], portbuf[16];
	snprintf(script, sizeof script, "%s/serve.mjs", kiln_web_dir(false));
	if (access(script, R_OK)) {
		fprintf(stderr, "kiln: kiln's server %s is missing (a moved or partial install?)\n", script);
		return 1;
	}
	snprintf(portbuf, sizeof portbuf, "%lld", port);
	const char *argv[] = {"node", script, o->op, "--port", portbuf, NULL};
	execvp("node", (char **)argv);
	fprintf(stderr, "kiln: cannot run node (%s); install nodejs\n", strerror(errno));
	return 1;
}

/* ---- tuning: kiln tune drives kiln measure workers ---- */

/* A mkdtemp/mkstemp template for stem in $TMPDIR (or /tmp, also when that would not fit n). */
static char *temp_name(char *buf, size_t n, const char *stem)
{
	const char *dir = getenv("TMPDIR");
	if (!dir || !*dir || (size_t)snprintf(buf, n, "%s/%s-XXXXXX", dir, stem) >= n)
		snprintf(buf, n, "/tmp/%s-XXXXXX", stem);
	return buf;
}

static double bench_clock(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static kiln_tune_task task_of(const opts *o)
{
	kiln_tune_task t;
	snprintf(t.op, sizeof t.op, "%s", o->op ? o->op : "");
	snprintf(t.shape, sizeof t.shape, "%s", o->shape ? o->shape : "");
	snprintf(t.attrs, sizeof t.attrs, "%s", o->attrs ? o->attrs : "");
	snprintf(t.target, sizeof t.target, "%s", o->target);
	return t;
}

/*
 * The machine a tuning record belongs to: the target's description (a GPU's
 * with the device it was measured on), and for --rpc the server's address
 * (records measured there apply there).
 */
static const char *tuning_device(const opts *o, char *desc, size_t n)
{
	host_device(o->target, o->rpc && !o->node_runner ? o->rpc : NULL, desc, n);
	return desc;
}

/* --config R,V or the best record of --tuning-log for this task; 0, or -1 (printed). */
static int pick_config(const opts *o, kiln_cpu_config *cfg)
{
	if (o->config) {
		if (kiln_tune_config_parse(o->config, cfg)) {
			fprintf(stderr, "kiln: --config takes ROWS,VECTORS[,UNROLL,TILE,ORDER[,STAGES,PAD[,SPLIT]]] (0-16, 0-8, 0-64, "
			                "0-1024, 0-2, 0-2, 0-2, 0-64), "
			                "not '%s'\n", o->config);
			return -1;
		}
		cpu_config = cfg;
		cpu_config_from = "--config";
		return 0;
	}
	if (!o->tuning_log)
		return 0;
	kiln_tune_task task = task_of(o);
	kiln_tune_record best;
	char err[512], desc[512] = "";
	kiln_target t;
	if (!kiln_target_parse(o->target, &t, err, sizeof err))
		tuning_device(o, desc, 256);
	/* records measured on another machine do not apply here */
	int found = kiln_tune_log_best(o->tuning_log, &task, desc[0] ? desc : NULL, &best, err, sizeof err);
	if (found < 0) {
		fprintf(stderr, "kiln: %s\n", err);
		return -1;
	}
	if (!found) {
		fprintf(stderr, "kiln: %s has no record for %s %s on %s (%s): the default schedule\n",
		        o->tuning_log, task.op, task.shape, task.target, o->rpc ? o->rpc : "this machine");
		return 0;
	}
	*cfg = best.cfg;
	cpu_config = cfg;
	static char from[512];
	snprintf(from, sizeof from, "best of %s: %.4f ms", o->tuning_log, best.median_ms);
	cpu_config_from = from;
	return 0;
}

/* Element i of a as a double; -1 for a dtype it does not read (f16). */
static int element(const kiln_array *a, int64_t i, double *v)
{
	kiln_dtype t = a->dtype;
	if (t.code == KILN_FLOAT && t.bits == 32)
		*v = ((const float *)a->data)[i];
	else if (t.code == KILN_FLOAT && t.bits == 64)
		*v = ((const double *)a->data)[i];
	else if (t.code == KILN_INT && t.bits == 32)
		*v = ((const int32_t *)a->data)[i];
	else if (t.code == KILN_INT && t.bits == 64)
		*v = (double)((const int64_t *)a->data)[i];
	else if (t.code == KILN_INT && t.bits == 8)
		*v = ((const int8_t *)a->data)[i];
	else if ((t.code == KILN_UINT && t.bits == 8) || t.code == KILN_BOOL)
		*v = ((const uint8_t *)a->data)[i];
	else
		return -1;
	return 0;
}

/*
 * The oracle's output k as kept in PATH.k between the trials of one tuning
 * run (their inputs are the same): read into want (0), or -1 when it is not
 * there yet; with save, written (atomically: another worker may read it).
 * The interpreter takes seconds on a 1024^3 matmul; every new best is checked.
 */
static int oracle_kept(const char *path, int k, kiln_array *want, bool save)
{
	if (!path || !want)
		return -1;
	char name[4200], tmp[4300];
	snprintf(name, sizeof name, "%s.%d", path, k);
	size_t bytes = (size_t)kiln_array_numel(want) * (size_t)((want->dtype.bits + 7) / 8);
	if (save) {
		snprintf(tmp, sizeof tmp, "%s.%d", name, (int)getpid());
		FILE *f = fopen(tmp, "wb");
		bool ok = f && fwrite(want->data, 1, bytes, f) == bytes;
		if (f && fclose(f))
			ok = false;
		if (!ok || rename(tmp, name))
			unlink(tmp);
		return 0;
	}
	FILE *f = fopen(name, "rb");
	if (!f)
		return -1;
	bool ok = fread(want->data, 1, bytes, f) == bytes && fgetc(f) == EOF;
	fclose(f);
	return ok ? 0 : -1;
}

/* One trial in this process (spawned by kiln tune): one JSON line on stdout. */
static int cmd_measure(kiln_ctx *ctx, const opts *o)
{
	/* fault injection for the tests: a worker that crashes or hangs must not stop the tuner
	 * (crash-measure: only one measuring a module a build worker saved) */
	const char *fault = getenv("KILN_MEASURE_FAULT");
	if (fault && o->config && !strcmp(o->config, fault + strcspn(fault, ":") + (fault[strcspn(fault, ":")] ? 1 : 0))) {
		if (!strncmp(fault, "crash:", 6) || (!strncmp(fault, "crash-measure:", 14) && o->module))
			raise(SIGSEGV);
		if (!strncmp(fault, "hang:", 5))
			for (;;)
				pause();
	}
	kiln_op_inst inst;
	const kiln_op_info *info;
	kiln_array **a = NULL;
	cJSON *out = cJSON_CreateObject();
	char error[512] = "";
	kiln_module *m = prepare(ctx, o, &inst, &info, &a);
	kiln_timing r = {0};
	if (!m && kiln_error(ctx)[0])
		snprintf(error, sizeof error, "build: %s", kiln_error(ctx));
	else if (!m) /* the session: connecting, the key, the upload; or the saved candidate */
		snprintf(error, sizeof error, "%s: %s", o->rpc ? "rpc" : o->module ? "load" : "build",
		         kiln_rt_last_error()[0] ? kiln_rt_last_error() : "failed");
	if (m && o->save_module) {
		if (kiln_module_save(m, o->save_module))
			snprintf(error, sizeof error, "build: saving the module: %s", kiln_rt_last_error());
		kiln_module_free(m);
		m = NULL;
	}
	if (m && !error[0] && kiln_module_call(m, info->name, a, inst.nargs))
		snprintf(error, sizeof error, "run: %s", kiln_rt_last_error());
	/* the oracle, on this trial's inputs, for every output */
	for (int k = inst.nin; m && !error[0] && o->check && k < inst.nargs; k++) {
		kiln_tensor *ot = inst.args[k];
		kiln_array *want = kiln_array_empty(kiln_tensor_ndim(ot), kiln_tensor_shape(ot), kiln_tensor_dtype(ot));
		if (oracle_kept(o->oracle, k, want, false)) {
			if (kiln_eval(ctx, ot, inst.nin, inst.args, a, want))
				snprintf(error, sizeof error, "oracle: %s", kiln_error(ctx));
			else
				oracle_kept(o->oracle, k, want, true);
		}
		for (int64_t i = 0; !error[0] && i < kiln_array_numel(want); i++) {
			double got, ref;
			if (element(a[k], i, &got) || element(want, i, &ref)) {
				snprintf(error, sizeof error, "--check compares f32, f64 and integer outputs, not '%s''s dtype",
				         kiln_tensor_name(ot));
				break;
			}
			bool is_float = want->dtype.code == KILN_FLOAT;
			if (is_float ? !(fabs(got - ref) <= 1e-3 + 1e-3 * fabs(ref)) : got != ref)
				snprintf(error, sizeof error, "wrong result: %s[%lld] is %g, the oracle says %g", kiln_tensor_name(ot),
				         (long long)i, got, ref);
		}
		kiln_array_free(want);
	}
	kiln_time_opts t = {.warmup = 2, .repeat = o->repeat, .min_repeat_ms = o->min_repeat_ms};
	if (m && !error[0] && kiln_module_time(m, info->name, a, inst.nargs, &t, &r))
		snprintf(error, sizeof error, "time: %s", kiln_rt_last_error());
	cJSON_AddStringToObject(out, "error", error);
	if (!error[0] && !o->save_module) {
		cJSON_AddNumberToObject(out, "median_ms", r.median_ms);
		cJSON_AddNumberToObject(out, "gflops", inst.flops / r.median_ms / 1e6);
		cJSON *s = cJSON_AddArrayToObject(out, "samples_ms");
		for (int i = 0; i < r.nsamples && i < KILN_TUNE_MAX_SAMPLES; i++)
			cJSON_AddItemToArray(s, cJSON_CreateNumber(r.samples_ms[i]));
	}
	char *line = cJSON_PrintUnformatted(out);
	printf("%s\n", line);
	cJSON_free(line);
	cJSON_Delete(out);
	kiln_timing_free(&r);
	if (a)
		free_args(&inst, a);
	finish(m);
	return error[0] ? 1 : 0;
}

/* A `kiln measure` worker in flight: its pid, the read end of its stdout, its deadline. */
typedef struct {
	pid_t pid;
	int fd;
	double deadline;
	int timeout;
} worker;

/*
 * Starts `kiln measure` for cfg in a worker process with o's timeout; with
 * save, it only builds the candidate and saves the module there; with load,
 * it measures the module saved there instead of building one. 0, or -1 with
 * the reason in error.
 */
static int worker_start(const opts *o, const char *self, kiln_cpu_config cfg, bool check, const char *save,
                        const char *load, worker *w, char *error, size_t errlen)
{
	char config[64], repeat[16];
	kiln_tune_config_str(&cfg, config, sizeof config);
	char min_ms[16];
	snprintf(repeat, sizeof repeat, "%d", o->repeat);
	snprintf(min_ms, sizeof min_ms, "%d", o->min_repeat_ms);
	const char *argv[36 + 2 * 16];
	int n = 0;
	argv[n++] = self;
	argv[n++] = "measure";
	argv[n++] = o->op;
	if (o->shape)
		argv[n++] = "--shape", argv[n++] = o->shape;
	if (o->attrs && *o->attrs)
		argv[n++] = "--attr", argv[n++] = o->attrs;
	for (int i = 0; i < o->ninput_shape; i++)
		argv[n++] = "--input-shape", argv[n++] = o->input_shape[i];
	argv[n++] = "--target", argv[n++] = o->target;
	if (memcmp(&cfg, &(kiln_cpu_config){0}, sizeof cfg)) /* all 0: the default schedule */
		argv[n++] = "--config", argv[n++] = config;
	argv[n++] = "--repeat", argv[n++] = repeat;
	argv[n++] = "--min-repeat-ms", argv[n++] = min_ms;
	if (save)
		argv[n++] = "--save-module", argv[n++] = save;
	if (load)
		argv[n++] = "--module", argv[n++] = load;
	if (o->rpc && !save) /* (a build worker builds here) */
		argv[n++] = "--rpc", argv[n++] = o->rpc;
	if (check && !save)
		argv[n++] = "--check";
	if (check && !save && o->oracle)
		argv[n++] = "--oracle", argv[n++] = o->oracle;
	if (o->tuning_log) /* a model's round: a configuration per task */
		argv[n++] = "--tuning-log", argv[n++] = o->tuning_log;
	argv[n] = NULL;
	int fd[2];
	if (pipe2(fd, O_CLOEXEC)) { /* (a worker started after another must not hold that one's pipe open) */
		snprintf(error, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		/* the result comes back as JSON on stdout; the worker's messages are in it */
		int null = open("/dev/null", O_WRONLY);
		dup2(fd[1], 1);
		if (null >= 0)
			dup2(null, 2);
		close(fd[0]);
		close(fd[1]);
		execv(self, (char **)argv);
		_exit(127);
	}
	close(fd[1]);
	if (pid < 0) {
		close(fd[0]);
		snprintf(error, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	*w = (worker){pid, fd[0], bench_clock() + o->timeout, o->timeout};
	return 0;
}

/*
 * Waits for a worker: its JSON result, or NULL with the reason in error
 * (timed out, died, printed no JSON, or reported an error of its own).
 */
static cJSON *worker_finish(worker *w, char *error, size_t errlen)
{
	/* everything the worker prints, up to 1 MiB, until it closes its end or the deadline */
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	bool timed_out = false, ended = false;
	while (buf) {
		if (len + 1 == cap) {
			char *nb = cap < (1 << 20) ? realloc(buf, cap * 2) : NULL;
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		/* past the deadline too, output already there is read (a group of build workers started together is
		 * waited for one after another: the later ones' deadlines have passed by then, their results not lost) */
		struct pollfd p = {w->fd, POLLIN, 0};
		int left = (int)((w->deadline - bench_clock()) * 1000);
		if (poll(&p, 1, left > 0 ? left : 0) <= 0) { /* nothing by the deadline, or a signal (kiln tune's stop) */
			timed_out = true;
			break;
		}
		ssize_t k = read(w->fd, buf + len, cap - 1 - len);
		if (k <= 0) {
			ended = k == 0;
			break;
		}
		len += (size_t)k;
	}
	if (buf)
		buf[len] = 0;
	close(w->fd);
	int status = 0;
	/* a worker that closed its output but keeps running is stopped at the deadline too (one that has said
	 * everything gets two seconds more to exit: a group's later workers are read past their deadlines) */
	if (timed_out)
		kill(w->pid, SIGKILL);
	double stop = ended && w->deadline < bench_clock() + 2 ? bench_clock() + 2 : w->deadline;
	while (waitpid(w->pid, &status, timed_out ? 0 : WNOHANG) == 0) {
		if (bench_clock() > stop) {
			timed_out = true;
			kill(w->pid, SIGKILL);
			continue;
		}
		struct timespec ms = {0, 1000000};
		nanosleep(&ms, NULL);
	}
	cJSON *res = buf ? cJSON_Parse(buf) : NULL;
	free(buf);
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(res, "error");
	error[0] = 0;
	if (timed_out)
		snprintf(error, errlen, "timeout: no result within %d s", w->timeout);
	else if (WIFSIGNALED(status))
		snprintf(error, errlen, "the worker died (signal %d)", WTERMSIG(status));
	else if (cJSON_IsString(e) && e->valuestring[0])
		snprintf(error, errlen, "%s", e->valuestring);
	else if (!res)
		snprintf(error, errlen, "the worker printed no result (exit %d)", WEXITSTATUS(status));
	if (error[0]) {
		cJSON_Delete(res);
		return NULL;
	}
	return res;
}

/* Runs `kiln measure` for cfg in a worker and waits for it (worker_start, worker_finish). */
static cJSON *run_worker(const opts *o, const char *self, kiln_cpu_config cfg, bool check, const char *load,
                         char *error, size_t errlen)
{
	worker w;
	return worker_start(o, self, cfg, check, NULL, load, &w, error, errlen) ? NULL : worker_finish(&w, error, errlen);
}

/* Runs one trial of an operator in a worker (of the module saved at load, if given); fills r (r->error on any failure). */
static void run_trial(const opts *o, const char *self, kiln_cpu_config cfg, bool check, const char *load,
                      kiln_tune_record *r)
{
	cJSON *res = run_worker(o, self, cfg, check, load, r->error, sizeof r->error);
	const cJSON *ms = cJSON_GetObjectItemCaseSensitive(res, "median_ms"),
	            *s = cJSON_GetObjectItemCaseSensitive(res, "samples_ms"), *x;
	if (res && !cJSON_IsNumber(ms))
		snprintf(r->error, sizeof r->error, "the worker printed no time");
	else if (res) {
		r->median_ms = ms->valuedouble;
		cJSON_ArrayForEach(x, s)
		{
			if (cJSON_IsNumber(x) && r->nsamples < KILN_TUNE_MAX_SAMPLES)
				r->samples_ms[r->nsamples++] = x->valuedouble;
		}
	}
	cJSON_Delete(res);
}

static void write_plot(const char *path, const double *best, int n, const char *title, const char *ylabel);

/* configurations of the CPU template a tuner considers at most (kiln_tune_space) */
#define TUNE_SPACE_MAX 4096

/* SIGINT or SIGTERM during kiln tune: the trial in hand is stopped, the log kept, helpers and temp files removed */
static volatile sig_atomic_t tune_interrupted;
static void on_tune_signal(int sig) { tune_interrupted = sig; }

static bool is_onnx(const char *op)
{
	size_t n = op ? strlen(op) : 0;
	return n > 5 && !strcmp(op + n - 5, ".onnx");
}

/* Random inputs for every input of a model (seeded); 0 or -1 (message in the runtime's error). */
static int random_inputs(kiln_model *m, uint64_t seed)
{
	for (int i = 0; i < kiln_model_num_inputs(m); i++) {
		const kiln_arg_info *in = kiln_model_input_info(m, i);
		kiln_array *a = kiln_array_empty(in->ndim, in->shape, in->dtype);
		if (a)
			kiln_array_fill_random(a, seed + (uint64_t)i, -1, 1);
		int rc = !a || kiln_model_set_input(m, in->name, a);
		kiln_array_free(a);
		if (rc)
			return -1;
	}
	return 0;
}

/* A model compiled for o's target with one configuration for every tunable group (NULL: defaults), or from a log. */
/* g compiled for o's target under gc; NULL with error. */
static kiln_module *compiled_with(kiln_ctx *ctx, const opts *o, kiln_graph *g, group_configs *gc, char *error, size_t n)
{
	kiln_graph_set_config(g, group_config, gc);
	kiln_module *mod = kiln_graph_compile(g, o->target, NULL);
	if (!mod)
		snprintf(error, n, "compile: %s", kiln_error(ctx));
	return mod;
}

static kiln_model *model_with(kiln_ctx *ctx, const opts *o, kiln_graph *g, group_configs *gc, char *error, size_t n)
{
	kiln_module *mod = compiled_with(ctx, o, g, gc, error, n);
	kiln_model *m = mod ? kiln_model_from_module(mod) : NULL;
	if (mod && !m)
		snprintf(error, n, "load: %s", kiln_rt_last_error());
	return m;
}

/*
 * g compiled for o's target under gc and saved to a temporary module file
 * (its name into path, a buffer of n: the caller removes it where path[0]),
 * for a server to load (--rpc). 0, or -1 with error.
 */
static int model_file(kiln_ctx *ctx, const opts *o, kiln_graph *g, group_configs *gc, char *path, size_t n,
                      char *error, size_t en)
{
	error[0] = 0;
	kiln_module *mod = compiled_with(ctx, o, g, gc, error, en);
	int fd = mod ? mkstemp(temp_name(path, n, "kiln-model")) : -1;
	if (mod && fd < 0)
		snprintf(error, en, "a temporary file for the model: %s", strerror(errno));
	else if (mod && (close(fd), kiln_module_save(mod, path)))
		snprintf(error, en, "save: %s", kiln_rt_last_error());
	if (fd < 0)
		path[0] = 0;
	kiln_module_free(mod);
	return error[0] ? -1 : 0;
}

/*
 * One trial of a whole model (spawned by kiln tune MODEL.onnx): each tunable
 * task's kernel time, as JSON. Each kernel is timed inside whole runs (the
 * caches as the kernels before it leave them, as the model runs): here, or
 * with --rpc on the server, which loads the model module built here.
 */
static int cmd_measure_model(const opts *o)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_onnx_model *om = NULL;
	char error[600] = "", path[512] = "";
	cJSON *out = cJSON_CreateObject(), *tasks = cJSON_CreateArray();
	kiln_graph *g = model_graph(ctx, o, &om);
	group_configs gc = {.target = o->target, .fixed = cpu_config, .log = o->tuning_log};
	kiln_model *m = NULL;
	kiln_rpc_step *remote = NULL;
	int ns = 0;
	double *ms = NULL;
	if (!g)
		snprintf(error, sizeof error, "model: %s", kiln_error(ctx)[0] ? kiln_error(ctx) : "cannot import it");
	else if (o->rpc && !model_file(ctx, o, g, &gc, path, sizeof path, error, sizeof error))
		cli_rpc_model_measure(path, o->rpc, o->seed, o->repeat, &remote, 0, NULL, &ns, error, sizeof error);
	else if (!o->rpc && (m = model_with(ctx, o, g, &gc, error, sizeof error))) {
		ns = kiln_model_num_steps(m);
		if (!(ms = calloc((size_t)(ns ? ns : 1), sizeof *ms)))
			snprintf(error, sizeof error, "out of memory");
		else if (random_inputs(m, o->seed) || kiln_model_step_times_in_runs(m, o->repeat, ms))
			snprintf(error, sizeof error, "run: %s", kiln_rt_last_error());
	}
	if (path[0])
		unlink(path);
	/* each step's kernel is a group's function: its task's time is the sum over its groups */
	for (int s = 0; !error[0] && s < ns; s++) {
		const char *fn = NULL, *task = NULL, *step = remote ? remote[s].fn : kiln_model_step_name(m, s);
		for (int i = 0; i < kiln_graph_num_groups(g) && !task; i++) {
			const char *t = kiln_graph_group_task(g, i, &fn);
			if (t && fn && !strcmp(fn, step))
				task = t;
		}
		if (!task || !tunable_task(task))
			continue;
		cJSON *x = NULL, *it;
		cJSON_ArrayForEach(it, tasks)
		{
			if (!strcmp(cJSON_GetObjectItemCaseSensitive(it, "task")->valuestring, task))
				x = it;
		}
		if (!x) {
			x = cJSON_CreateObject();
			cJSON_AddStringToObject(x, "task", task);
			cJSON_AddNumberToObject(x, "ms", 0);
			cJSON_AddNumberToObject(x, "count", 0);
			cJSON_AddItemToArray(tasks, x);
		}
		cJSON *t = cJSON_GetObjectItemCaseSensitive(x, "ms"), *c = cJSON_GetObjectItemCaseSensitive(x, "count");
		cJSON_SetNumberValue(t, t->valuedouble + (remote ? remote[s].ms : ms[s]));
		cJSON_SetNumberValue(c, c->valuedouble + 1);
	}
	cJSON_AddStringToObject(out, "error", error);
	cJSON_AddItemToObject(out, "tasks", tasks);
	char *line = cJSON_PrintUnformatted(out);
	printf("%s\n", line);
	cJSON_free(line);
	cJSON_Delete(out);
	free(ms);
	free(remote);
	kiln_model_free(m);
	kiln_onnx_free(om);
	kiln_ctx_free(ctx);
	return error[0] ? 1 : 0;
}

/* The largest difference between two runs' float outputs, relative to each output's largest magnitude. */
static double compare_outputs(int n, const kiln_array *const *x, const kiln_array *const *y)
{
	double worst = 0;
	for (int i = 0; i < n; i++) {
		double scale = 1e-6;
		const float *a = x[i]->data, *b = y[i]->data;
		for (int64_t k = 0; k < kiln_array_numel(x[i]); k++)
			scale = fmax(scale, fabs(a[k]));
		for (int64_t k = 0; k < kiln_array_numel(x[i]); k++)
			worst = fmax(worst, fabs(a[k] - b[k]) / scale);
	}
	return worst;
}

/* The largest relative difference between two models' outputs on the same inputs (-1: they could not run). */
static double compare_models(kiln_model *a, kiln_model *b, uint64_t seed)
{
	if (random_inputs(a, seed) || random_inputs(b, seed) || kiln_model_run(a) || kiln_model_run(b))
		return -1;
	const kiln_array *x[MAX_COMPARED_OUTPUTS], *y[MAX_COMPARED_OUTPUTS];
	int n = kiln_model_num_outputs(a) < MAX_COMPARED_OUTPUTS ? kiln_model_num_outputs(a) : MAX_COMPARED_OUTPUTS;
	for (int i = 0; i < n; i++)
		x[i] = kiln_model_get_output(a, i), y[i] = kiln_model_get_output(b, i);
	return compare_outputs(n, x, y);
}

/*
 * The same on the server at o->rpc: the default build (g1) and the tuned one
 * (g2, under gc) each loaded there and run on the same inputs.
 */
static double compare_remote(kiln_ctx *ctx, const opts *o, kiln_graph *g1, kiln_graph *g2, group_configs *gc,
                             char *err, size_t en)
{
	group_configs none = {.target = o->target};
	char pa[512] = "", pb[512] = "";
	kiln_array *x[MAX_COMPARED_OUTPUTS] = {0}, *y[MAX_COMPARED_OUTPUTS] = {0};
	int nx = 0, ny = 0;
	double diff = -1;
	if (!model_file(ctx, o, g1, &none, pa, sizeof pa, err, en) && !model_file(ctx, o, g2, gc, pb, sizeof pb, err, en) &&
	    !cli_rpc_model_measure(pa, o->rpc, o->seed, 1, NULL, MAX_COMPARED_OUTPUTS, x, &nx, err, en) &&
	    !cli_rpc_model_measure(pb, o->rpc, o->seed, 1, NULL, MAX_COMPARED_OUTPUTS, y, &ny, err, en)) {
		diff = nx == ny ? compare_outputs(nx, (const kiln_array *const *)x, (const kiln_array *const *)y) : -1;
		if (nx != ny)
			snprintf(err, en, "the default model has %d outputs there, the tuned one %d", nx, ny);
	}
	for (int i = 0; i < MAX_COMPARED_OUTPUTS; i++)
		kiln_array_free(x[i]), kiln_array_free(y[i]);
	if (pa[0]) /* (a model not sent there is still here) */
		unlink(pa);
	if (pb[0])
		unlink(pb);
	return diff;
}

/* One distinct tunable task of a model, searched on its own. */
typedef struct {
	char key[1024];
	int group;                /* a group of this task (they share one kernel shape) */
	int ngroups;              /* how many groups run it */
	kiln_cpu_config *space;   /* what its schedule takes */
	int nspace;
	kiln_tuner *tuner;
	int at;                   /* this round's configuration (-1: the default) */
	double def_ms, best_ms;
	kiln_cpu_config best;
	kiln_graph *g;
	kiln_ctx *ctx; /* the graph's */
	const char *target;
} model_task;

static int visit_features(void *out, const kiln_func *f) { return kiln_tune_features(f, out); }

/* kiln_tuner's features for a model's task: its group lowered under space[i]. */
static int model_task_features(void *user, int i, float *out)
{
	model_task *mt = user;
	int rc = kiln_graph_group_visit(mt->g, mt->group, mt->target, &mt->space[i], visit_features, out);
	if (rc)
		kiln_clear_error(mt->ctx); /* zeros for this one (kiln_tuner); the next visits must not inherit it */
	return rc;
}

/*
 * kiln tune MODEL.onnx: the model's distinct convolutions and matrix
 * products (tasks), each searched on its own (--search, a tuner per task)
 * over the configurations its schedule takes. A round asks every task's
 * tuner for its next configuration, builds the model with all of them (a
 * log of one record per task, read by the worker as --tuning-log) and
 * times its kernels inside whole runs in a worker: one model run measures
 * every task, each weighted by how often it runs (a task's time sums its
 * groups'). The first round is the defaults, logged with every knob 0; the
 * tuned model is checked against the default one on the same inputs at the
 * end. llvm (the CPU template) or opencl (the GPU one).
 */
static int cmd_tune_model(const opts *o, const kiln_target *t, const char *self, const char *desc)
{
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_onnx_model *om = NULL;
	kiln_graph *g = model_graph(ctx, o, &om);
	kiln_cpu_config *all = malloc(sizeof *all * TUNE_SPACE_MAX);
	int nall = all ? kiln_tune_space(t, all, TUNE_SPACE_MAX) : 0, ntask = 0, n = o->trials, errors = 0, rc = 0;
	model_task *tasks = calloc(256, sizeof *tasks);
	double *curve = calloc((size_t)n, sizeof *curve), t0 = bench_clock();
	char err[600], cfgpath[512] = "", last_error[512] = "";
	if (!g || !tasks || !curve || !all) {
		rc = 1;
		goto done;
	}
	/* the distinct tasks, and the configurations each one's schedule takes */
	for (int i = 0; i < kiln_graph_num_groups(g); i++) {
		const char *key = kiln_graph_group_task(g, i, NULL);
		if (!key || !tunable_task(key))
			continue;
		int k = 0;
		while (k < ntask && strcmp(tasks[k].key, key))
			k++;
		if (k < ntask) {
			tasks[k].ngroups++;
			continue;
		}
		if (ntask == 256)
			continue;
		model_task *mt = &tasks[ntask++];
		*mt = (model_task){.group = i, .ngroups = 1, .g = g, .ctx = ctx, .target = o->target, .at = -1, .def_ms = 1e300,
		                   .best_ms = 1e300, .space = malloc(sizeof(kiln_cpu_config) * (size_t)nall)};
		snprintf(mt->key, sizeof mt->key, "%s", key);
		for (int c = 0; mt->space && c < nall; c++) {
			if (!kiln_graph_group_visit(g, i, o->target, &all[c], NULL, NULL))
				mt->space[mt->nspace++] = all[c];
			kiln_clear_error(ctx); /* the refusal's reason: a context keeps its first error */
		}
		mt->tuner = mt->nspace ? kiln_tuner_new(o->search, mt->space, mt->nspace, o->seed + (uint64_t)ntask,
		                                        model_task_features, mt) : NULL;
	}
	if (!ntask) {
		fprintf(stderr, "kiln: %s has no convolution or matrix product to tune\n", o->op);
		rc = 1;
		goto done;
	}
	int fd = -1;
	if ((fd = mkstemp(temp_name(cfgpath, sizeof cfgpath, "kiln-round"))) < 0) {
		fprintf(stderr, "kiln: a file for the rounds' configurations: %s\n", strerror(errno));
		cfgpath[0] = 0;
		rc = 1;
		goto done;
	}
	close(fd);
	fprintf(stderr, "tuning %d distinct convolutions and matrix products of %s on %s: %d rounds (%s search), log %s\n",
	        ntask, o->op, desc, n, o->search, o->log);
	opts round = *o;
	round.tuning_log = NULL;
	int i = 0;
	for (; i < n && !tune_interrupted; i++) {
		if (i > 0 && o->cooldown_ms)
			nanosleep(&(struct timespec){o->cooldown_ms / 1000, (long)(o->cooldown_ms % 1000) * 1000000}, NULL);
		/* round 0: the defaults; then each task's next configuration (its best once its space is spent) */
		FILE *f = fopen(cfgpath, "w"); /* emptied */
		bool written = f && !fclose(f);
		if (!written)
			snprintf(err, sizeof err, "cannot write %s: %s", cfgpath, strerror(errno));
		for (int k = 0; written && i > 0 && k < ntask; k++) {
			model_task *mt = &tasks[k];
			mt->at = mt->tuner ? kiln_tuner_next(mt->tuner) : -1;
			kiln_tune_record r = {.task = group_record_task(mt->key, o->target), .median_ms = 1, .nsamples = 1};
			if (mt->at >= 0)
				r.cfg = mt->space[mt->at];
			else if (mt->best_ms < 1e300)
				r.cfg = mt->best;
			else
				continue;
			written = !kiln_tune_log_append(cfgpath, &r, err, sizeof err);
		}
		if (!written) { /* a round measured under other configurations than the tuners think must not count */
			fprintf(stderr, "\nkiln: the round's configurations: %s\n", err);
			rc = 1;
			goto done;
		}
		round.tuning_log = i > 0 ? cfgpath : NULL;
		cJSON *res = run_worker(&round, self, (kiln_cpu_config){0}, false, NULL, err, sizeof err), *x;
		if (tune_interrupted) {
			cJSON_Delete(res);
			break;
		}
		if (!res) {
			/* the model did not build or run under this round's configurations: which task's broke it is not
			 * known, so no tuner learns from it (they stay tried) and it is counted as an error */
			errors++;
			snprintf(last_error, sizeof last_error, "%.500s", err);
		}
		for (int k = 0; res && k < ntask; k++) {
			model_task *mt = &tasks[k];
			double ms = -1;
			cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(res, "tasks"))
			{
				const cJSON *tk = cJSON_GetObjectItemCaseSensitive(x, "task"), *m = cJSON_GetObjectItemCaseSensitive(x, "ms");
				if (cJSON_IsString(tk) && cJSON_IsNumber(m) && !strcmp(tk->valuestring, mt->key))
					ms = m->valuedouble;
			}
			if (i == 0)
				mt->def_ms = ms > 0 ? ms : 1e300;
			else if (mt->at < 0)
				continue;
			else /* the model learns throughput: 1/time (the task's work is the same in every trial) */
				kiln_tuner_update(mt->tuner, mt->at, ms > 0 ? 1.0 / ms : 0);
			/* round 0's record is the default schedule (every knob 0): apply-best keeps it when no trial beats it */
			kiln_tune_record r = {.task = group_record_task(mt->key, o->target),
			                      .cfg = i == 0 ? (kiln_cpu_config){0} : mt->space[mt->at], .median_ms = ms,
			                      .nsamples = ms > 0, .samples_ms = {ms}};
			if (ms <= 0)
				snprintf(r.error, sizeof r.error, "%.250s", res ? "no time for this task" : err);
			snprintf(r.device, sizeof r.device, "%.255s", desc);
			snprintf(r.version, sizeof r.version, "%s", KILN_VERSION);
			r.unix_time = (double)time(NULL);
			if (kiln_tune_log_append(o->log, &r, err, sizeof err)) {
				fprintf(stderr, "\nkiln: %s\n", err);
				cJSON_Delete(res);
				rc = 1;
				goto done;
			}
			if (i > 0 && ms > 0 && ms < mt->best_ms) {
				mt->best_ms = ms;
				mt->best = mt->space[mt->at];
			}
		}
		cJSON_Delete(res);
		for (int k = 0; k < ntask; k++)
			curve[i] += fmin(tasks[k].def_ms, tasks[k].best_ms) < 1e300 ? fmin(tasks[k].def_ms, tasks[k].best_ms) : 0;
		if (i > 0 && !curve[i])
			curve[i] = curve[i - 1];
		double el = bench_clock() - t0, eta = el / (i + 1) * (n - i - 1);
		fprintf(stderr, "\r[%-30.*s] %3d/%d  kernels %.3f ms  errors %d  ETA %d:%02d ", 30 * (i + 1) / n,
		        "##############################", i + 1, n, curve[i], errors, (int)eta / 60, (int)eta % 60);
	}
	fprintf(stderr, "\n");
	if (last_error[0])
		fprintf(stderr, "kiln: %d rounds failed as a whole, the last: %s\n", errors, last_error);
	if (tune_interrupted) {
		fprintf(stderr, "kiln: interrupted after %d rounds; the log has them\n", i);
		rc = 130;
		goto done;
	}
	n = i;
	bool measured = false;
	for (int k = 0; k < ntask; k++)
		measured = measured || tasks[k].def_ms < 1e300 || tasks[k].best_ms < 1e300;
	if (!measured) { /* no default measured: nothing to compare with, and no record written */
		fprintf(stderr, "kiln: no round measured the model (%s); nothing was tuned\n",
		        last_error[0] ? last_error : "no rounds");
		rc = 1;
		goto done;
	}
	double def = 0, best = 0;
	for (int k = 0; k < ntask; k++) {
		model_task *mt = &tasks[k];
		bool tuned = mt->best_ms < mt->def_ms;
		char d[160];
		kiln_tune_config_describe_for(t, &mt->best, d, sizeof d);
		def += mt->def_ms < 1e300 ? mt->def_ms : 0;
		best += mt->def_ms < 1e300 ? fmin(mt->def_ms, mt->best_ms) : 0; /* (like with like: the tasks whose default ran) */
		if (mt->def_ms < 1e300)
			printf("%-56.56s (%d) %8.3f -> %8.3f ms  (%s)\n", mt->key, mt->ngroups, mt->def_ms,
			       fmin(mt->def_ms, mt->best_ms), tuned ? d : "the default");
		else if (mt->best_ms < 1e300)
			printf("%-56.56s (%d) the default not measured -> %8.3f ms  (%s)\n", mt->key, mt->ngroups, mt->best_ms,
			       d);
		else
			printf("%-56.56s (%d) not measured (the default)\n", mt->key, mt->ngroups);
		if (mt->tuner && kiln_tuner_note(mt->tuner)[0])
			fprintf(stderr, "kiln: %.60s: %s\n", mt->key, kiln_tuner_note(mt->tuner));
	}
	/* the plot is of kernel time, lower is better: drawn as the speed-up over the default */
	for (int i = 0; i < n; i++)
		curve[i] = curve[i] > 0 && curve[0] > 0 ? curve[0] / curve[i] : 0;
	char plot[4200], title[600];
	snprintf(plot, sizeof plot, "%s.svg", o->log);
	snprintf(title, sizeof title, "%s on %s: speed-up of its tunable kernels", o->op, o->target);
	write_plot(plot, curve, n, title, "speed-up over the defaults");
	/* the tuned model against the default one */
	kiln_onnx_model *om1 = NULL, *om2 = NULL;
	kiln_graph *g1 = model_graph(ctx, o, &om1), *g2 = g1 ? model_graph(ctx, o, &om2) : NULL;
	err[0] = 0;
	group_configs none = {.target = o->target}, logged = {.target = o->target, .log = o->log};
	snprintf(logged.device, sizeof logged.device, "%.255s", desc); /* where the records were measured */
	kiln_model *a = g2 && !o->rpc ? model_with(ctx, o, g1, &none, err, sizeof err) : NULL;
	kiln_model *b = a ? model_with(ctx, o, g2, &logged, err, sizeof err) : NULL;
	double diff = b ? compare_models(a, b, o->seed) : g2 && o->rpc ? compare_remote(ctx, o, g1, g2, &logged, err, sizeof err) : -1;
	if (diff < 0 || diff > 1e-4) {
		fprintf(stderr, "kiln: the tuned model %s the default one (%s)\n", diff < 0 ? "could not run beside" :
		        "differs from", err[0] ? err : kiln_rt_last_error());
		rc = 1;
	} else {
		printf("tunable kernels: %.3f ms with the defaults, %.3f ms tuned (%.2fx); tuned outputs within %.1e of the "
		       "default's; log %s, plot %s\napply it with: kiln compile %s -o %s%s --tuning-log %s%s%s\n",
		       def, best, best > 0 ? def / best : 0, diff, o->log, plot, o->op,
		       t->kind == KILN_LLVM ? "M.so" : "M.kmod --target ", t->kind == KILN_LLVM ? "" : t->name, o->log,
		       o->rpc && !o->node_runner ? " --rpc " : "", o->rpc && !o->node_runner ? o->rpc : "");
	}
	kiln_model_free(a);
	kiln_model_free(b);
	kiln_onnx_free(om1);
	kiln_onnx_free(om2);
done:
	if (cfgpath[0])
		unlink(cfgpath);
	for (int k = 0; tasks && k < ntask; k++) {
		kiln_tuner_free(tasks[k].tuner);
		free(tasks[k].space);
	}
	free(tasks), free(curve), free(all);
	kiln_onnx_free(om);
	kiln_ctx_free(ctx);
	return rc;
}

/* best-so-far GFLOP/s against trials, as an SVG line plot */
static void write_plot(const char *path, const double *best, int n, const char *title, const char *ylabel)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return;
	double top = 0;
	for (int i = 0; i < n; i++)
		top = best[i] > top ? best[i] : top;
	top = top > 0 ? top * 1.1 : 1;
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"400\" font-family=\"sans-serif\" "
	           "font-size=\"12\">\n<rect width=\"640\" height=\"400\" fill=\"white\"/>\n"
	           "<text x=\"320\" y=\"20\" text-anchor=\"middle\">%s</text>\n"
	           "<line x1=\"60\" y1=\"360\" x2=\"620\" y2=\"360\" stroke=\"black\"/>\n"
	           "<line x1=\"60\" y1=\"40\" x2=\"60\" y2=\"360\" stroke=\"black\"/>\n"
	           "<text x=\"340\" y=\"390\" text-anchor=\"middle\">trials (%d)</text>\n"
	           "<text x=\"15\" y=\"200\" transform=\"rotate(-90 15 200)\" text-anchor=\"middle\">%s "
	           "(top %.2f)</text>\n<polyline fill=\"none\" stroke=\"#c33\" stroke-width=\"2\" points=\"",
	        title, n, ylabel, top / 1.1);
	for (int i = 0; i < n; i++)
		fprintf(f, "%.1f,%.1f ", 60 + 560.0 * (n > 1 ? (double)i / (n - 1) : 0), 360 - 320 * best[i] / top);
	fprintf(f, "\"/>\n</svg>\n");
	fclose(f);
}

/*
 * The node runner: `kiln tune OP --target wasm` without --rpc measures each
 * trial in a node process on this machine (web/rpc-node.mjs: V8, as in
 * Chrome), reached through a private proxy; both are started here on
 * loopback with a random key and stopped when the tuning ends.
 */
typedef struct {
	pid_t proxy, node;
	int proxy_out, node_out; /* their output: files, read for the lines that say they are ready */
	char addr[64], key[40];
} node_runner;

/*
 * Starts argv with stdout and stderr into an unlinked temporary file (*out):
 * a pipe nobody reads after start-up would fill and stop the child. The
 * pid, or -1.
 */
static pid_t spawn_logged(const char *path, const char *const *argv, int *out)
{
	char name[512];
	int fd = mkstemp(temp_name(name, sizeof name, "kiln-runner"));
	if (fd < 0)
		return -1;
	unlink(name);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
		execvp(path, (char **)argv);
		fprintf(stderr, "cannot run %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	if (pid < 0)
		close(fd);
	*out = pid < 0 ? -1 : fd;
	return pid;
}

/* The start of file fd in buf (cap) once it holds needle, waiting up to seconds while *pid lives; 0 or -1
 * (*pid -1 when it exited: reaped here). */
static int await_text(int fd, pid_t *pid, char *buf, size_t cap, const char *needle, double seconds)
{
	double deadline = bench_clock() + seconds;
	for (;;) {
		ssize_t k = pread(fd, buf, cap - 1, 0);
		buf[k > 0 ? k : 0] = 0;
		if (strstr(buf, needle))
			return 0;
		if (waitpid(*pid, NULL, WNOHANG) != 0) {
			*pid = -1;
			return -1;
		}
		if (bench_clock() > deadline)
			return -1;
		nanosleep(&(struct timespec){0, 50000000}, NULL);
	}
}

static void node_runner_stop(node_runner *nr)
{
	pid_t pids[2] = {nr->node, nr->proxy};
	int fds[2] = {nr->node_out, nr->proxy_out};
	for (int i = 0; i < 2; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		if (pids[i] > 0) {
			kill(pids[i], SIGTERM);
			waitpid(pids[i], NULL, 0);
		}
	}
	*nr = (node_runner){.proxy_out = -1, .node_out = -1};
}

static int node_runner_start(const char *self, node_runner *nr)
{
	*nr = (node_runner){.proxy_out = -1, .node_out = -1};
	unsigned char r[16];
	if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
		fprintf(stderr, "kiln: no random key for the node runner: %s\n", strerror(errno));
		return -1;
	}
	for (int i = 0; i < 16; i++)
		snprintf(nr->key + 2 * i, 3, "%02x", r[i]);
	char out[8192] = "", script[4200], url[96];
	const char *pargv[] = {self, "rpc", "proxy", "--port", "0", "--web-port", "0", NULL};
	nr->proxy = spawn_logged(self, pargv, &nr->proxy_out);
	const char *c = NULL, *w = NULL;
	if (nr->proxy < 0 || await_text(nr->proxy_out, &nr->proxy, out, sizeof out, "in a browser", 10) ||
	    !(c = strstr(out, "native servers: ")) || !(w = strstr(out, "open http://"))) {
		fprintf(stderr, "kiln: the node runner's proxy did not start%s%s\n", out[0] ? ":\n" : "", out);
		node_runner_stop(nr);
		return -1;
	}
	snprintf(nr->addr, sizeof nr->addr, "%.*s", (int)strcspn(c + 16, "\n"), c + 16);
	snprintf(url, sizeof url, "ws://%.*s/", (int)strcspn(w + 12, "/"), w + 12);
	snprintf(script, sizeof script, "%s/rpc-node.mjs", kiln_web_dir(false));
	/* the key through the environment, not argv; the runtime's .wasm from where it was built or installed */
	setenv("KILN_RPC_KEY", nr->key, 1);
	setenv("KILN_WEB_RUNTIME_DIR", kiln_web_dir(true), 1);
	/* --no-liftoff: V8 compiles wasm with its optimizing tier at once, so a trial measures the code a page
	 * runs after its first seconds (a model's kernels ran 1.5-2x slower in the baseline tier, and which
	 * configuration wins there is not which wins in the optimized code) */
	const char *nargv[] = {"node", "--no-liftoff", "--experimental-websocket", script, url, NULL};
	nr->node = access(script, R_OK) ? -1 : spawn_logged("node", nargv, &nr->node_out);
	out[0] = 0;
	if (nr->node < 0 || await_text(nr->node_out, &nr->node, out, sizeof out, "registered", 60)) {
		fprintf(stderr, "kiln: the node runner (%s) did not start%s%s\n", script, out[0] ? ":\n" : "", out);
		node_runner_stop(nr);
		return -1;
	}
	return 0;
}

/* kiln tune's features for the xgb search: a configuration lowered in a context of its own. */
typedef struct {
	const opts *o;
	const kiln_target *t;
	const kiln_cpu_config *space;
} tune_features_of;

static int tune_features(void *user, int i, float *out)
{
	tune_features_of *tf = user;
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_op_inst inst;
	const kiln_op_info *info = declare(ctx, tf->o, &inst);
	int rc = info ? kiln_tune_config_features(ctx, tf->t, &tf->space[i], info->name, inst.nargs, inst.args,
	                                          inst.nargs - inst.nin, out) : -1;
	kiln_ctx_free(ctx);
	return rc;
}


/* Removes a private temporary folder of the tuner's and the files in it. */
static void remove_folder(const char *dir)
{
	DIR *d = opendir(dir);
	for (struct dirent *e; d && (e = readdir(d));) {
		char f[600];
		snprintf(f, sizeof f, "%s/%.60s", dir, e->d_name);
		if (e->d_name[0] != '.')
			unlink(f);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

/* Where build worker k of a group saves its candidate's module. */
static const char *candidate_path(char *buf, size_t n, const char *dir, int k)
{
	snprintf(buf, n, "%s/c%d.kmod", dir, k);
	return buf;
}

/* Candidates built at once when --build-jobs is not given: one per core, at most 8. */
static int default_build_jobs(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 8 ? 8 : (int)n;
}

/*
 * Builds space[ids[k]] for k < n at once, each in a worker that saves its
 * module as candidate_path(DIR, k); error[k] gets why one failed ("" when
 * it built), beginning "build: ". kiln tune's stop stops them all.
 */
static void build_candidates(const opts *o, const char *self, const kiln_cpu_config *space, const int *ids, int n,
                             const char *dir, char (*error)[512])
{
	worker w[64];
	bool started[64];
	for (int k = 0; k < n; k++) {
		char path[600];
		error[k][0] = 0;
		started[k] = !worker_start(o, self, space[ids[k]], false, candidate_path(path, sizeof path, dir, k), NULL,
		                           &w[k], error[k], 512);
	}
	for (int k = 0; k < n; k++) {
		if (started[k] && tune_interrupted)
			w[k].deadline = 0; /* killed at once */
		if (started[k])
			cJSON_Delete(worker_finish(&w[k], error[k], 512));
		if (error[k][0] && strncmp(error[k], "build: ", 7)) { /* the worker died or hung while building */
			char e[512];
			snprintf(e, sizeof e, "build: %.500s", error[k]);
			memcpy(error[k], e, sizeof e);
		}
	}
}

static int cmd_tune(const opts *o)
{
	kiln_target t;
	char err[512], desc[512];
	if (!o->op || (!o->log && !o->list_space)) {
		fprintf(stderr, "kiln: tune needs an operator (or FILE.kte) and --log FILE.jsonl\n");
		return 2;
	}
	if (o->list_space && is_onnx(o->op)) {
		fprintf(stderr, "kiln: --list-space lists an operator's configurations, not a model's\n");
		return 2;
	}
	if (kiln_target_parse(o->target, &t, err, sizeof err)) {
		fprintf(stderr, "kiln: %s\n", err);
		return 1;
	}
	/* the CPU template's knobs: llvm here or on a server, wasm in node here or in a browser tab (--rpc);
	 * the GPU matmul template's: opencl here or on a server, webgpu in node (Dawn) here or in a browser tab;
	 * the WebGL template's: webgl here (EGL) or on a server or in a browser tab */
	if (t.emulated) {
		fprintf(stderr, "kiln: tune measures the CPU template (llvm here or on a server with --rpc, wasm in node here "
		                "or in a browser tab with --rpc), the GPU matmul template (opencl; webgpu in node here or "
		                "in a browser tab with --rpc) and the WebGL one (webgl); not '%s'\n", o->target);
		return 1;
	}
	if (t.kind == KILN_WEBGPU && is_onnx(o->op)) {
		/* a model's tuning times each kernel inside whole runs; a WebGPU queue runs a model's kernels as one pass */
		fprintf(stderr, "kiln: tuning a whole model for %s is not supported yet (its matrix products: tune them "
		                "one by one; a model tunes on llvm, wasm, opencl and webgl)\n", t.name);
		return 1;
	}
	/* a log that cannot be written is said before the first trial, not after it */
	FILE *lf = o->list_space ? NULL : fopen(o->log, "a");
	if (!o->list_space && (!lf || fclose(lf))) {
		fprintf(stderr, "kiln: cannot append to %s: %s\n", o->log, strerror(errno));
		return 1;
	}
	/* without SA_RESTART: a signal also cuts short the wait for the worker in hand */
	struct sigaction sa = {.sa_handler = on_tune_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if ((t.kind == KILN_WASM || t.kind == KILN_WEBGPU) && !o->rpc && !o->list_space) {
		char self[4096];
		ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
		node_runner nr;
		if (sl <= 0 || (self[sl] = 0, node_runner_start(self, &nr)))
			return 1;
		fprintf(stderr, "measuring in node on this machine (web/rpc-node.mjs, pid %d, through a proxy at %s, pid %d)\n",
		        (int)nr.node, nr.addr, (int)nr.proxy);
		opts in_node = *o;
		in_node.rpc = nr.addr;
		in_node.key = NULL; /* the runner's, in the environment */
		in_node.node_runner = true;
		int rc = cmd_tune(&in_node);
		node_runner_stop(&nr);
		return rc;
	}
	if (!o->rpc && !o->list_space && !kiln_target_runs_here(&t)) {
		fprintf(stderr, "kiln: this CPU cannot run code for '%s' (measure it on a machine that can: --rpc)\n",
		        o->target);
		return 1;
	}
	if (o->rpc && !o->list_space) { /* the workers measure there; the key reaches them through the environment */
		const char *key = cli_rpc_key(o->key);
		if (!key)
			return 2;
		setenv("KILN_RPC_KEY", key, 1);
	}
	char self[4096];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
	if (sl <= 0) {
		fprintf(stderr, "kiln: cannot find this program (/proc/self/exe): %s\n", strerror(errno));
		return 1;
	}
	self[sl] = 0;
	if (is_onnx(o->op)) {
		tuning_device(o, desc, sizeof desc);
		return cmd_tune_model(o, &t, self, desc);
	}
	kiln_cpu_config *space = malloc(sizeof *space * TUNE_SPACE_MAX);
	int nall = space ? kiln_tune_space(&t, space, TUNE_SPACE_MAX) : 0, nspace = 0; /* (counted: said below) */
	/* the work of one call, for GFLOP/s; and the configurations this operator's
	 * schedule accepts (a matmul's columns must divide its packed panels) */
	kiln_ctx *ctx = kiln_ctx_new();
	kiln_op_inst inst;
	const kiln_op_info *info = space ? declare(ctx, o, &inst) : NULL;
	double flops = info ? inst.flops : 0;
	if (info)
		nspace = kiln_tune_space_taken(ctx, &t, inst.nargs - inst.nin, inst.args + inst.nin, space, TUNE_SPACE_MAX);
	nspace = nspace > 0 ? nspace : 0;
	kiln_ctx_free(ctx);
	if (!info || !nspace) {
		if (info)
			fprintf(stderr, "kiln: the template has no configuration this operator's schedule takes\n");
		free(space);
		return 1;
	}
	if (o->list_space) { /* for scripts: one --config per line */
		for (int i = 0; i < nspace; i++) {
			char c[64];
			kiln_tune_config_str(&space[i], c, sizeof c);
			printf("%s\n", c);
		}
		free(space);
		return 0;
	}
	int n = o->trials < nspace ? o->trials : nspace;
	/* the workers that check a trial share the oracle's outputs through a private folder */
	char odir[512], opath[600] = "";
	opts checked = *o;
	if (mkdtemp(temp_name(odir, sizeof odir, "kiln-oracle"))) {
		snprintf(opath, sizeof opath, "%s/out", odir);
		checked.oracle = opath;
	}
	o = &checked;
	tune_features_of tf = {o, &t, space};
	kiln_tuner *tu = kiln_tuner_new(o->search, space, nspace, o->seed, tune_features, &tf);
	double *best_so_far = calloc((size_t)n, sizeof *best_so_far), best = 0, t0 = bench_clock();
	int best_i = -1, errors = 0, rc = 0;
	if (!tu || !best_so_far) {
		fprintf(stderr, "kiln: out of memory for a space of %d configurations\n", nspace);
		rc = 1;
		n = 0;
	}
	kiln_tune_task task = task_of(o);
	tuning_device(o, desc, sizeof desc);
	fprintf(stderr, "tuning %s %s on %s: %d of %d configurations (%s search; %d the schedule refuses), log %s\n",
	        task.op, task.shape, desc, n, nspace, o->search, nall - nspace, o->log);
	bool oracle_ready = false; /* a checked trial has run the oracle (and kept its answer) */
	/* candidates are built ahead, jobs at a time, each in a worker that saves its module; then measured one
	 * after another with nothing else running (AutoTVM's builder and runner): building is most of a trial */
	char cdir[512] = "";
	int jobs = o->build_jobs ? o->build_jobs : default_build_jobs(), ids[64], ngroup = 0, next = 0;
	bool ahead = jobs > 1 && mkdtemp(temp_name(cdir, sizeof cdir, "kiln-candidates")), made = ahead;
	char (*built)[512] = calloc(64, sizeof *built);
	if (!built)
		n = 0;
	for (int i = 0; i < n && !tune_interrupted; i++) {
		if (next == ngroup) { /* the next group: as many as the search gives before it wants results */
			ngroup = next = 0;
			int want = ahead ? (jobs < n - i ? jobs : n - i) : 1;
			ids[ngroup++] = kiln_tuner_next(tu);
			while (ids[ngroup - 1] >= 0 && ngroup < want && kiln_tuner_ready(tu) > 0)
				ids[ngroup++] = kiln_tuner_next(tu);
			if (ids[ngroup - 1] < 0 && --ngroup == 0)
				break;
			if (ahead)
				build_candidates(o, self, space, ids, ngroup, cdir, built);
			/* a module that cannot be saved (no C compiler to link a CPU one): each built where it is measured */
			for (int k = 0; ahead && k < ngroup; k++)
				if (!strncmp(built[k], "build: saving the module", 24)) {
					fprintf(stderr, "\nkiln: %s; building each candidate in its measuring worker instead\n", built[k]);
					ahead = false;
				}
			if (!ahead)
				memset(built, 0, 64 * sizeof *built);
		}
		int at = ids[next];
		char load[600] = "";
		if (ahead)
			candidate_path(load, sizeof load, cdir, next);
		const char *build_error = built[next++];
		kiln_tune_record r = {.task = task, .cfg = space[at]};
		snprintf(r.device, sizeof r.device, "%.255s", desc);
		snprintf(r.version, sizeof r.version, "%s", KILN_VERSION);
		r.unix_time = (double)time(NULL);
		if (i > 0 && o->cooldown_ms) /* lets a machine that throttles when hot cool between trials */
			nanosleep(&(struct timespec){o->cooldown_ms / 1000, (long)(o->cooldown_ms % 1000) * 1000000}, NULL);
		/* the first trial, and any trial that would become the best, is checked against the oracle; until one
		 * has run it (the interpreter: a minute for a 1024^3 matmul, kept for the run) they get more time */
		opts chk = *o;
		if (!oracle_ready)
			chk.timeout = o->timeout < 100000 ? o->timeout * 20 : o->timeout;
		if (ahead && build_error[0])
			snprintf(r.error, sizeof r.error, "%s", build_error);
		else
			run_trial(i == 0 ? &chk : o, self, r.cfg, i == 0, ahead ? load : NULL, &r);
		oracle_ready |= i == 0 && !r.error[0];
		if (!r.error[0] && r.median_ms > 0) {
			r.gflops = flops / r.median_ms / 1e6;
			if (i > 0 && (best_i < 0 || r.gflops > best)) {
				kiln_tune_record again = r;
				again.nsamples = 0;
				run_trial(&chk, self, r.cfg, true, ahead ? load : NULL, &again);
				oracle_ready |= !again.error[0];
				if (again.error[0])
					snprintf(r.error, sizeof r.error, "%s", again.error);
			}
		}
		if (ahead)
			unlink(load);
		if (tune_interrupted) /* the trial was cut short: not a result */
			break;
		kiln_tuner_update(tu, at, r.error[0] ? 0 : r.gflops);
		if (r.error[0])
			errors++;
		else if (r.gflops > best) {
			best = r.gflops;
			best_i = at;
		}
		best_so_far[i] = best;
		if (kiln_tune_log_append(o->log, &r, err, sizeof err)) {
			fprintf(stderr, "\nkiln: %s\n", err);
			rc = 1;
			break;
		}
		double el = bench_clock() - t0, eta = el / (i + 1) * (n - i - 1);
		int bar = 30 * (i + 1) / n;
		fprintf(stderr, "\r[%-30.*s] %3d/%d  best %.1f GFLOP/s  errors %d  ETA %d:%02d ", bar,
		        "##############################", i + 1, n, best, errors, (int)eta / 60, (int)eta % 60);
	}
	fprintf(stderr, "\n");
	if (made) /* with what an interruption or an error left built and unmeasured */
		remove_folder(cdir);
	free(built);
	if (tu && kiln_tuner_note(tu)[0])
		fprintf(stderr, "kiln: %s (the batches after it were chosen at random)\n", kiln_tuner_note(tu));
	if (tune_interrupted && !rc) {
		fprintf(stderr, "kiln: interrupted; the log has the trials measured so far\n");
		rc = 130;
	}
	char plot[4200];
	snprintf(plot, sizeof plot, "%s.svg", o->log);
	char title[600];
	snprintf(title, sizeof title, "%s %s on %s", task.op, task.shape, o->target);
	if (!rc)
		write_plot(plot, best_so_far, n, title, "best GFLOP/s so far");
	if (!rc && best_i < 0) {
		fprintf(stderr, "kiln: every trial failed (see %s)\n", o->log);
		rc = 1;
	}
	if (!rc) {
		char d[160], c[64];
		kiln_tune_config_describe_for(&t, &space[best_i], d, sizeof d);
		kiln_tune_config_str(&space[best_i], c, sizeof c);
		printf("best: %s (--config %s), %.1f GFLOP/s; log %s, plot %s\n"
		       "apply it with: kiln %s %s%s%s%s%s --target '%s'%s%s --tuning-log %s\n",
		       d, c, best, o->log, plot, o->node_runner ? "build -o DIR/" : "build|run|bench", task.op,
		       o->shape ? " --shape " : "", o->shape ? o->shape : "",
		       task.attrs[0] ? " --attr " : "", task.attrs, task.target, o->rpc && !o->node_runner ? " --rpc " : "",
		       o->rpc && !o->node_runner ? o->rpc : "", o->log);
	}
	kiln_tuner_free(tu);
	if (opath[0]) /* the oracle's outputs, and any a killed worker left half-written */
		remove_folder(odir);
	free(best_so_far);
	free(space);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage_main, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "rpc"))
		return cli_rpc(argc, argv);
	static const char *cmds[] = {"ops", "lower", "build", "run", "bench", "devices", "serve", "onnx", "compile",
	                             "tune", "measure"};
	bool known = false;
	for (int i = 0; i < 11; i++)
		known |= !strcmp(cmd, cmds[i]);
	if (!known) {
		fprintf(stderr, "kiln: unknown command '%s'\n\n%s", cmd, usage_main);
		return 2;
	}
	opts o;
	if (parse(argc, argv, &o))
		return 2;
	if ((o.save_module || o.module) && strcmp(cmd, "measure")) {
		fprintf(stderr, "kiln: --save-module and --module are options of kiln measure (kiln tune's workers)\n");
		return 2;
	}
	if (o.help) {
		cmd_usage(cmd);
		return 0;
	}
	if (!strcmp(cmd, "ops"))
		return cmd_ops();
	if (!strcmp(cmd, "devices"))
		return cmd_devices();
	if (!strcmp(cmd, "serve"))
		return cmd_serve(&o);
	if (!strcmp(cmd, "onnx"))
		return cmd_onnx(&o);
	if (!strcmp(cmd, "compile"))
		return cmd_compile(&o);
	if ((!strcmp(cmd, "run") || !strcmp(cmd, "bench")) && is_model(&o))
		return cmd_model(&o, !strcmp(cmd, "bench"));
	if (!strcmp(cmd, "tune"))
		return cmd_tune(&o);
	static kiln_cpu_config cfg; /* cpu_config points at it for the whole run */
	if (!strcmp(cmd, "measure") && is_onnx(o.op)) /* --tuning-log: a configuration per task, read per group */
		return o.config && pick_config(&o, &cfg) ? 1 : cmd_measure_model(&o);
	/* a bundle's modules each take the best record of their own target (cmd_bundle) */
	bool per_target = !strcmp(cmd, "build") && is_bundle(&o) && o.tuning_log && !o.config;
	if (!per_target && pick_config(&o, &cfg))
		return 1;
	if (!strcmp(cmd, "measure")) {
		kiln_ctx *mctx = kiln_ctx_new();
		int mrc = cmd_measure(mctx, &o);
		kiln_ctx_free(mctx);
		return mrc;
	}
	kiln_ctx *ctx = kiln_ctx_new();
	if (!strcmp(cmd, "build") && is_bundle(&o)) {
		int brc = cmd_bundle(ctx, &o);
		kiln_ctx_free(ctx);
		return brc;
	}
	int rc = 1;
	if (!strcmp(cmd, "run")) {
		rc = cmd_run(ctx, &o);
	} else if (!strcmp(cmd, "bench")) {
		rc = cmd_bench(ctx, &o);
	} else {
		kiln_op_inst inst;
		const kiln_op_info *info = declare(ctx, &o, &inst);
		if (info && !strcmp(cmd, "lower")) {
			kiln_func *f = lower(ctx, info, &inst, o.target, o.llvm ? NULL : stdout);
			rc = f ? 0 : 1;
			kiln_target lt;
			char lerr[256];
			bool source = !kiln_target_parse(o.target, &lt, lerr, sizeof lerr) && lt.kind != KILN_LLVM &&
			              lt.kind != KILN_WASM;
			if (f && !o.llvm && source) {
				printf("// ---- %s source ----\n", o.target);
				if (kiln_device_source(ctx, 1, &f, codegen_target(o.target), stdout)) {
					fprintf(stderr, "kiln: %s\n", kiln_error(ctx));
					rc = 1;
				}
			}
			if (f && o.llvm && kiln_llvm_ir(ctx, 1, &f, o.llvm == 2, stdout)) {
				fprintf(stderr, "kiln: %s\n", kiln_error(ctx));
				rc = 1;
			}
		} else if (info) {
			kiln_module *m = NULL;
			bool cpu = is_cpu_target(o.target);
			size_t ol = o.out ? strlen(o.out) : 0;
			if (!o.out)
				fprintf(stderr, "kiln: build needs -o FILE\n");
			else if (cpu && ol > 5 && !strcmp(o.out + ol - 5, ".kmod"))
				fprintf(stderr, "kiln: for llvm, build writes a shared library (name it .so; kiln_module_load "
				                "and dlopen load it), not a module container: %s\n", o.out);
			else if ((m = build(ctx, info, &inst, o.target)) && cpu && kiln_export_library(ctx, m, o.out))
				fprintf(stderr, "kiln: %s\n", kiln_error(ctx));
			else if (m && !cpu && kiln_module_save(m, o.out))
				fprintf(stderr, "kiln: %s\n", kiln_rt_last_error());
			else if (m && !cpu) {
				printf("wrote %s: a module for target %s (load it with kiln_module_load)\n", o.out, o.target);
				rc = 0;
			} else if (m) {
				printf("wrote %s: int %s(", o.out, info->name);
				for (int i = 0; i < inst.nargs; i++)
					printf("%sfloat *%s", i ? ", " : "", kiln_tensor_name(inst.args[i]));
				printf(")\n");
				rc = 0;
			}
			kiln_module_free(m);
		}
	}
	kiln_ctx_free(ctx);
	return rc;
}
