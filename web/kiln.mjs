// kiln.mjs — kiln's JavaScript API, for node and the browser.
//
//   import * as kiln from './kiln.mjs';
//   const s = await kiln.load();                 // the bundle this file lies in
//   const x = s.array(new Float32Array(...), [64, 64]);
//   const y = s.empty([64, 64]);
//   await s.run('relu', [x, y]);
//   const out = await y.read();                  // a Float32Array
//
// A bundle (`kiln build OP --target webgpu,webgl,wasm -o dir/`) holds kiln.json,
// one module container per target, the web runtime (kiln_runtime.js/.wasm:
// the native runtime's C compiled by Emscripten) and these JS files. load()
// tries the backends in the order asked (by default webgpu, then webgl, then
// wasm) and keeps the first that opens; session.skipped says why each earlier
// one was passed over. The C runtime parses the module, checks every call's
// arguments and walks the launch plan; this file gives it what only JS has:
// the wasm kernel instance, and WebGPU buffers and pipelines.
import { WebGPUDevice, dispatchSize } from './webgpu.mjs';

const isNode = typeof process === 'object' && !!process.versions?.node && typeof window === 'undefined';

export const BACKENDS = ['webgpu', 'webgl', 'wasm'];

// dtype name (as the runtime prints it) -> [typed array, kiln_typecode, bits]
const DTYPES = {
  bool: [Uint8Array, 0, 1], int8: [Int8Array, 1, 8], int16: [Int16Array, 1, 16], int32: [Int32Array, 1, 32],
  int64: [BigInt64Array, 1, 64], uint8: [Uint8Array, 2, 8], uint16: [Uint16Array, 2, 16],
  uint32: [Uint32Array, 2, 32], uint64: [BigUint64Array, 2, 64], float16: [Uint16Array, 3, 16],
  float32: [Float32Array, 3, 32], float64: [Float64Array, 3, 64],
};
// The typed array class that holds a dtype's elements (float16: the raw bits).
export function arrayType(dtype) {
  const info = DTYPES[dtype];
  if (!info) throw new Error(`kiln: unknown dtype '${dtype}' (one of ${Object.keys(DTYPES).join(', ')})`);
  return info[0];
}

const DEV = { cpu: 0, webgpu: 3, wasm: 4 }; // kiln_device_kind

const align = (n, a) => Math.ceil(n / a) * a;

// Reads a file of the bundle at base (a directory path in node, a URL in a page).
async function readBytes(base, name) {
  if (isNode && !/^(https?|blob|data):/.test(String(base))) {
    const fs = await import('node:fs/promises');
    const { fileURLToPath } = await import('node:url');
    const dir = String(base).startsWith('file:') ? fileURLToPath(base) : String(base);
    try {
      return new Uint8Array(await fs.readFile(dir.replace(/\/?$/, '/') + name));
    } catch (e) {
      throw new Error(`kiln: cannot read ${name} of the bundle at ${base} (${e.code || e.message})`);
    }
  }
  const url = new URL(name, new URL(String(base).replace(/\/?$/, '/'), globalThis.location?.href));
  const r = await fetch(url);
  if (!r.ok) throw new Error(`kiln: cannot fetch ${url} (HTTP ${r.status})`);
  return new Uint8Array(await r.arrayBuffer());
}

// Starts the web runtime (Emscripten's CommonJS factory) with host as Module.kilnHost.
async function startRuntime(base, host) {
  const wasmBinary = await readBytes(base, 'kiln_runtime.wasm');
  if (!WebAssembly.validate(wasmBinary))
    throw new Error(`kiln: the bundle's kiln_runtime.wasm at ${base} is not valid WebAssembly (truncated or corrupted?)`);
  const text = new TextDecoder().decode(await readBytes(base, 'kiln_runtime.js'));
  let factory;
  if (isNode) { // the factory require()s node's modules: give it a require
    const { createRequire } = await import('node:module');
    const require = createRequire(import.meta.url);
    const module = { exports: {} };
    new Function('require', 'module', 'exports', '__dirname', '__filename', text)(require, module, module.exports, '.', 'kiln_runtime.js');
    factory = module.exports;
  } else {
    factory = new Function(`${text}\nreturn KilnRuntime;`)();
  }
  let M;
  try {
    M = await factory({ wasmBinary, kilnHost: host, print: () => {}, printErr: () => {} });
  } catch (e) {
    throw new Error(`kiln: the bundle's web runtime at ${base} does not start (${String(e?.message ?? e).split('\n')[0]})`);
  }
  // a binary that validates can still lack what kiln.mjs calls (a corrupted export section)
  const missing = RUNTIME_EXPORTS.filter((name) => typeof M.asm?.[name] !== 'function');
  if (missing.length)
    throw new Error(`kiln: the bundle's kiln_runtime.wasm at ${base} lacks ${missing.join(', ')} (corrupted or another version?)`);
  // a trap inside the runtime (a bug, or a binary corrupted past validation)
  // reaches callers as a kiln: error, like every other failure of the API
  for (const name of RUNTIME_EXPORTS) {
    const f = M.asm[name];
    M['_' + name] = (...args) => {
      try {
        return f(...args);
      } catch (e) {
        throw new Error(`kiln: the web runtime trapped in ${name} (${e?.message ?? e}); is kiln_runtime.wasm at ${base} intact?`);
      }
    };
  }
  return M;
}

// What kiln.mjs calls in the web runtime (web/meson.build exports them).
const RUNTIME_EXPORTS = ['malloc', 'free', 'kiln_module_load_bytes', 'kiln_module_free', 'kiln_module_call',
  'kiln_rt_last_error', 'kiln_array_free', 'kiln_gles_device_name', 'kiln_web_array', 'kiln_web_array_data',
  'kiln_web_blob', 'kiln_web_describe', 'kiln_web_time', 'kiln_web_model', 'kiln_web_model_describe',
  'kiln_model_run', 'kiln_model_set_input_data', 'kiln_model_free', 'kiln_web_add_blob'];

// A first-fit allocator over a wasm memory, above base: wasm arrays live in
// their module's kernel instance, so kernels read them in place.
class WasmHeap {
  constructor(memory, base) {
    this.memory = memory;
    this.top = align(base, 64);
    this.sizes = new Map(); // offset -> bytes
    this.holes = [];        // [{off, size}] sorted by offset
  }

  alloc(bytes) {
    const n = align(Math.max(Number(bytes), 1), 64);
    let off = -1;
    const i = this.holes.findIndex((h) => h.size >= n);
    if (i >= 0) {
      const h = this.holes[i];
      off = h.off;
      if (h.size === n) this.holes.splice(i, 1);
      else this.holes[i] = { off: h.off + n, size: h.size - n };
    } else {
      // grow first, commit after: a failed grow leaves the heap as it was, so
      // one refused allocation does not break the session for good
      const need = Math.ceil((this.top + n) / 65536) - this.memory.buffer.byteLength / 65536;
      if (need > 0) {
        try {
          this.memory.grow(need);
        } catch (e) {
          throw new Error(`kiln: cannot allocate ${n} bytes of wasm memory (${this.memory.buffer.byteLength} in use: ${e.message})`);
        }
      }
      off = this.top;
      this.top += n;
    }
    this.sizes.set(off, n);
    return off;
  }

  free(off) {
    const size = this.sizes.get(off);
    if (size === undefined) return;
    this.sizes.delete(off);
    this.holes.push({ off, size });
    this.holes.sort((a, b) => a.off - b.off);
    const merged = [];
    for (const h of this.holes) {
      const last = merged[merged.length - 1];
      if (last && last.off + last.size === h.off) last.size += h.size;
      else merged.push({ ...h });
    }
    const last = merged[merged.length - 1];
    if (last && last.off + last.size === this.top) { // give the top back
      this.top = last.off;
      merged.pop();
    }
    this.holes = merged;
  }
}

// The wasm backend: the module's kernel binary (relaxed-simd when this
// engine validates it, else plain simd128) instantiated over its own memory.
async function openWasm(rt, mod) {
  if (isNode) { // node 20's V8 validates relaxed SIMD only behind this flag
    const v8 = await import('node:v8');
    v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  }
  let bytes = null, variant = null;
  for (const name of ['wasm-relaxed', 'wasm-simd128']) {
    const b = rt.blob(mod, name);
    if (b && WebAssembly.validate(b)) { bytes = b; variant = name; break; }
  }
  if (!bytes) throw new Error('this engine validates neither of the module\'s kernel binaries (wasm SIMD is needed)');
  const memory = new WebAssembly.Memory({ initial: 1 });
  let heap = null;
  const env = {
    memory,
    kiln_workspace_alloc: (n) => heap.alloc(n),
    kiln_workspace_free: (p) => heap.free(p),
  };
  for (const [c, js] of [['exp', Math.exp], ['log', Math.log], ['pow', Math.pow], ['tanh', Math.tanh],
    ['sqrt', Math.sqrt], ['fmod', (a, b) => a % b]]) {
    env[c] = js;
    env[c + 'f'] = js;
  }
  const module = await WebAssembly.compile(bytes);
  for (const imp of WebAssembly.Module.imports(module))
    if (imp.module !== 'env' || !(imp.name in env))
      throw new Error(`the kernel imports ${imp.module}.${imp.name}, which this host does not provide`);
  // the kernel's data and its 1 MiB stack lie below __heap_base
  memory.grow(Math.ceil((4 << 20) / 65536));
  const instance = await WebAssembly.instantiate(module, { env });
  heap = new WasmHeap(memory, instance.exports.__heap_base.value);
  return { instance, memory, heap, variant };
}

// Dawn's GPU object in node, from npm `webgpu` (pkg: the imported package):
// KILN_DAWN_BACKEND picks Dawn's backend, default OpenGL ES through EGL
// surfaceless (Mesa here, a compatibility-mode adapter); "vulkan" for a
// Vulkan driver. Returns load()'s {gpu, compatibility} options.
export function dawnGpu(pkg) {
  Object.assign(globalThis, pkg.globals);
  const backend = process.env.KILN_DAWN_BACKEND || 'opengles';
  if (backend === 'opengles' && !process.env.EGL_PLATFORM) process.env.EGL_PLATFORM = 'surfaceless';
  return { gpu: pkg.create([`backend=${backend}`]), compatibility: backend === 'opengles' };
}

async function nodeGpu() {
  let pkg;
  try {
    pkg = await import('webgpu');
  } catch {
    throw new Error('no WebGPU in node without the npm package `webgpu` (npm install webgpu)');
  }
  return dawnGpu(pkg);
}

// The runtime's exports, wrapped for JS values.
class Runtime {
  constructor(M) {
    this.M = M;
  }

  str(p) { return this.M.UTF8ToString(p); }

  cstr(s) {
    const n = this.M.lengthBytesUTF8(s) + 1;
    const p = this.M._malloc(n);
    this.M.stringToUTF8(s, p, n);
    return p;
  }

  error() { return this.str(this.M._kiln_rt_last_error()); }

  load(bytes, what) {
    const p = this.M._malloc(bytes.length);
    this.M.HEAPU8.set(bytes, p);
    const w = this.cstr(what);
    const mod = this.M._kiln_module_load_bytes(p, bytes.length, w);
    this.M._free(p);
    this.M._free(w);
    if (!mod) throw new Error(`kiln: ${this.error()}`);
    return mod;
  }

  // A container already at p (n bytes) in the runtime's memory; frees p.
  loadAt(p, n, what) {
    const w = this.cstr(what);
    const mod = this.M._kiln_module_load_bytes(p, n, w);
    this.M._free(p);
    this.M._free(w);
    if (!mod) throw new Error(`kiln: ${this.error()}`);
    return mod;
  }

  describe(mod) {
    const p = this.M._kiln_web_describe(mod);
    if (!p) throw new Error(`kiln: ${this.error()}`);
    const d = JSON.parse(this.str(p));
    this.M._free(p);
    return d;
  }

  addBlob(mod, name, bytes) {
    const p = this.M._malloc(Math.max(1, bytes.length)), n = this.cstr(name);
    if (!p) throw new Error(`kiln: no memory for ${bytes.length} bytes of ${name}`);
    this.M.HEAPU8.set(bytes, p);
    const rc = this.M._kiln_web_add_blob(mod, n, p, bytes.length);
    this.M._free(p);
    this.M._free(n);
    if (rc) throw new Error(`kiln: ${this.error()}`);
  }

  blob(mod, name) {
    const n = this.cstr(name), sz = this.M._malloc(4);
    const p = this.M._kiln_web_blob(mod, n, sz);
    const size = this.M.HEAPU32[sz >> 2];
    this.M._free(n);
    this.M._free(sz);
    return p ? this.M.HEAPU8.slice(p, p + size) : null;
  }

  // fn(mod, name, argv, nargs, ...rest) with the descriptors in a C array
  withArgs(name, descs, fn) {
    const n = this.cstr(name), argv = this.M._malloc(4 * Math.max(1, descs.length));
    this.M.HEAPU32.set(descs, argv >> 2);
    try {
      return fn(n, argv);
    } finally {
      this.M._free(n);
      this.M._free(argv);
    }
  }
}

// An n-d array on a session's backend. read() gives a typed array.
export class KilnArray {
  constructor(session, shape, dtype) {
    const info = DTYPES[dtype];
    if (!info) throw new Error(`kiln: unknown dtype '${dtype}' (one of ${Object.keys(DTYPES).join(', ')})`);
    if (!Array.isArray(shape) || shape.length > 8)
      throw new Error(`kiln: a shape is a list of at most 8 sizes, not ${JSON.stringify(shape)}`);
    shape.forEach((d, i) => {
      if (!Number.isInteger(d) || d < 0) throw new Error(`kiln: dimension ${i} of shape [${shape}] is not a size`);
    });
    this.session = session;
    this.shape = shape.slice();
    this.dtype = dtype;
    this.size = shape.reduce((a, b) => a * b, 1);
    this.bytes = dtype === 'bool' ? this.size : this.size * (info[2] / 8);
    const s = session, M = s.rt.M, be = s.backend;
    let data = 0;
    if (be === 'wasm') data = s.wasm.heap.alloc(this.bytes);
    else if (be === 'webgpu') data = s.gpuAlloc(this.bytes);
    const shp = M._malloc(8 * Math.max(1, shape.length));
    M.HEAPF64.set(shape, shp >> 3);
    this.desc = M._kiln_web_array(data, be === 'webgl' ? DEV.cpu : DEV[be], info[1], info[2], 1, shape.length, shp);
    M._free(shp);
    if (!this.desc) throw new Error(`kiln: ${s.rt.error()}`);
    this.data = be === 'webgl' ? M._kiln_web_array_data(this.desc) : data;
  }

  // The bytes of this array where the backend can see them (wasm, webgl).
  view() {
    const mem = this.session.backend === 'wasm' ? this.session.wasm.memory.buffer : this.session.rt.M.HEAPU8.buffer;
    return new Uint8Array(mem, this.data, this.bytes);
  }

  write(values) {
    if (!this.desc) throw new Error('kiln: the array was disposed');
    const T = DTYPES[this.dtype][0];
    // any array of numbers converts (a Float64Array into float32, a plain array);
    // only a conversion JS refuses (numbers into a BigInt64Array) is an error
    let typed = values;
    if (!(values instanceof T)) {
      try {
        typed = T.from(values ?? []);
      } catch (e) {
        throw new Error(`kiln: cannot write ${values?.constructor?.name ?? typeof values} values to a ${this.dtype} array (${e.message})`);
      }
    }
    if (typed.length !== this.size)
      throw new Error(`kiln: ${typed.length} values for an array of shape [${this.shape}] (${this.size} elements)`);
    const u8 = new Uint8Array(typed.buffer, typed.byteOffset, this.bytes);
    if (this.session.backend === 'webgpu') this.session.gpu.upload(this.session.buffers.get(this.data), u8);
    else this.view().set(u8);
    return this;
  }

  async read() {
    if (!this.desc) throw new Error('kiln: the array was disposed');
    const T = DTYPES[this.dtype][0];
    let u8;
    if (this.session.backend === 'webgpu') {
      await this.session.check();
      u8 = await this.session.gpu.download(this.session.buffers.get(this.data), this.bytes);
    } else {
      u8 = this.view().slice();
    }
    return new T(u8.buffer, u8.byteOffset, this.size);
  }

  dispose() {
    if (!this.desc) return;
    const s = this.session;
    s.rt.M._kiln_array_free(this.desc);
    if (s.backend === 'wasm') s.wasm.heap.free(this.data);
    else if (s.backend === 'webgpu') s.gpuFree(this.data);
    this.desc = 0;
  }
}

// A loaded bundle on one backend.
export class Session {
  constructor(rt, manifest) {
    this.rt = rt;
    this.manifest = manifest;
    this.backend = null;
    this.device = '';    // what runs it: adapter or renderer name, wasm variant
    this.skipped = [];   // [{backend, reason}] for the backends passed over
    this.functions = []; // [{name, args: [{name, dtype, shape, output}]}]
    this.buffers = new Map(); // GPUBuffer id -> GPUBuffer
    this.nextBuffer = 1;
    this.scopes = 0; // open WebGPU error scopes
    this.launches = new Map(); // plan entry -> its recorded launch (host.gpuDispatch)
    // a model run: its steps record into one pass, submitted once it holds
    // submitEvery launches (at a step's end) and at the run's end
    this.batching = false;
    this.submitEvery = 16;
  }

  fn(name) {
    const f = this.functions.find((g) => g.name === name);
    if (!f) throw new Error(`kiln: no function '${name}' in the bundle (it has: ${this.functions.map((g) => g.name).join(', ')})`);
    return f;
  }

  array(values, shape, dtype = 'float32') {
    if (!shape && (values == null || typeof values.length !== 'number'))
      throw new Error('kiln: array(values, shape) needs values with a length, or a shape');
    const a = new KilnArray(this, shape ?? [values.length], dtype);
    return values ? a.write(values) : a;
  }

  empty(shape, dtype = 'float32') { return new KilnArray(this, shape, dtype); }

  // Arrays for every argument of fn (inputs filled from inputs[i] when given).
  arraysFor(name, inputs = []) {
    return this.fn(name).args.map((a, i) => this.array(a.output ? null : inputs[i] ?? null, a.shape, a.dtype));
  }

  gpuAlloc(bytes) {
    const id = this.nextBuffer++;
    this.buffers.set(id, this.gpu.alloc(bytes));
    return id;
  }

  gpuFree(id) {
    const b = this.buffers.get(id);
    if (b) this.gpu.free(b);
    this.buffers.delete(id);
    this.launches.clear(); // their bind groups may hold b
  }

  // One call through the C runtime (checks the arguments, then runs or submits).
  // The runtime's descriptors of args (in order, or by name) for fn: only
  // this session's arrays, since another's point into another runtime.
  descs(name, args) {
    const f = this.fn(name);
    if (!Array.isArray(args) && (!args || typeof args !== 'object'))
      throw new Error(`kiln: ${name} takes its arguments as an array or an object keyed by name`);
    if (!Array.isArray(args)) {
      const names = f.args.map((a) => a.name);
      const missing = names.filter((n) => !(n in args)), extra = Object.keys(args).filter((k) => !names.includes(k));
      if (missing.length || extra.length)
        throw new Error(`kiln: ${name} takes the arguments ${names.join(', ')}` +
          `${missing.length ? `; missing: ${missing.join(', ')}` : ''}${extra.length ? `; unknown: ${extra.join(', ')}` : ''}`);
    }
    const list = Array.isArray(args) ? args : f.args.map((a) => args[a.name]);
    return list.map((a, i) => {
      if (!(a instanceof KilnArray))
        throw new Error(`kiln: argument ${i} (${f.args[i]?.name ?? '?'}) of ${name} is not a kiln array`);
      if (a.session !== this)
        throw new Error(`kiln: argument ${i} (${f.args[i]?.name ?? '?'}) of ${name} belongs to another session`);
      return a.desc;
    });
  }

  call(name, args) {
    const d = this.descs(name, args);
    const rc = this.rt.withArgs(name, d, (n, argv) => this.rt.M._kiln_module_call(this.mod, n, argv, d.length));
    if (rc) throw new Error(`kiln: ${this.rt.error()}`);
  }

  // Runs fn once. args: arrays in the function's order, or {argName: array}.
  async run(name, args) {
    if (this.backend !== 'webgpu') return this.call(name, args);
    this.gpu.device.pushErrorScope('validation');
    this.scopes++;
    try {
      this.call(name, args);
    } finally {
      await this.check();
    }
  }

  // Raises the first WebGPU validation error of the launches submitted so far.
  async check() {
    let err = null;
    for (; this.scopes > 0; this.scopes--) err = (await this.gpu.device.popErrorScope()) || err;
    if (err) throw new Error(`kiln: webgpu: ${err.message.replace(/^webgpu: /, '')}`);
    if (this.gpu.lost) throw new Error(`kiln: webgpu: the device was lost (${this.gpu.lost})`);
  }

  // The time evaluator: median/mean/min milliseconds per call over `repeat`
  // samples of `number` calls. wasm and webgl are timed by the C runtime;
  // WebGPU by the wall clock around submits and onSubmittedWorkDone.
  async time(name, args, { warmup = 1, number = 0, repeat = 10, minRepeatMs = 50 } = {}) {
    if (this.backend !== 'webgpu') {
      const d = this.descs(name, args);
      if (!Number.isInteger(repeat) || repeat < 1 || repeat > 100000)
        throw new Error(`kiln: time: repeat is 1 to 100000, not ${repeat}`);
      const out = this.rt.M._malloc(8 * (4 + repeat));
      const rc = this.rt.withArgs(name, d,
        (n, argv) => this.rt.M._kiln_web_time(this.mod, n, argv, d.length, warmup, number, repeat, minRepeatMs, out));
      const r = this.rt.M.HEAPF64.slice(out >> 3, (out >> 3) + 4 + repeat);
      this.rt.M._free(out);
      if (rc) throw new Error(`kiln: ${this.rt.error()}`);
      return { medianMs: r[0], meanMs: r[1], minMs: r[2], number: r[3], repeat, samples: Array.from(r.subarray(4)) };
    }
    const q = this.gpu.device.queue;
    const batch = async (k) => {
      const t0 = performance.now();
      for (let i = 0; i < k; i++) this.call(name, args);
      await q.onSubmittedWorkDone();
      return performance.now() - t0;
    };
    await this.run(name, args);
    for (let i = 1; i < warmup; i++) await batch(1);
    if (number <= 0) number = Math.max(1, Math.min(1000, Math.ceil(minRepeatMs / Math.max(await batch(1), 1e-3))));
    const samples = [];
    for (let r = 0; r < repeat; r++) samples.push((await batch(number)) / number);
    const sorted = samples.slice().sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return {
      medianMs: sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2,
      meanMs: samples.reduce((a, b) => a + b, 0) / samples.length,
      minMs: sorted[0], number, repeat, samples,
    };
  }

  dispose() {
    if (this.mod) this.rt.M._kiln_module_free(this.mod);
    this.mod = 0;
    this.launches.clear();
    for (const b of this.buffers.values()) b.destroy();
    this.buffers.clear();
    this.gpu?.device.destroy();
  }
}

// Opens backend `name` for session s, or throws saying why it cannot run here:
// the bundle's module for it (or its webgpu-cpu kernels on an emulated adapter).
async function open(s, name, base, opts) {
  const file = s.manifest.modules?.[name];
  if (!file) throw new Error(`the bundle has no ${name} module (build it with --target ${name})`);
  const cpuFile = s.manifest.modules?.['webgpu-cpu'];
  await openBackend(s, name, opts, !!cpuFile, async (cpuKernels) => {
    const f = cpuKernels ? cpuFile : file, wfile = s.manifest.weights?.[cpuKernels ? 'webgpu-cpu' : name];
    return { file: f, bytes: await readBytes(base, f), weights: wfile ? await readBytes(base, wfile) : null };
  });
}

// The part of opening a backend that does not care where the module came
// from: fetch(cpuKernels) gives {file, bytes, weights} once the adapter
// (for webgpu) has said whether CPU-shaped kernels are wanted.
async function openBackend(s, name, opts, hasCpuKernels, fetch) {
  let mod = 0;
  try {
    let cpuKernels = false;
    if (name === 'webgpu') { // the adapter first: it decides which of the bundle's kernels run
      let gpu = opts.gpu ?? globalThis.navigator?.gpu, compatibility = !!opts.compatibility;
      if (!gpu && isNode) ({ gpu, compatibility } = await nodeGpu());
      if (!gpu) throw new Error('this host has no WebGPU (navigator.gpu is missing)');
      const want = opts.webgpuKernels ?? 'auto';
      if (!['auto', 'gpu', 'cpu'].includes(want)) throw new Error(`webgpuKernels is 'auto', 'gpu' or 'cpu', not '${want}'`);
      if (want === 'cpu' && !hasCpuKernels) throw new Error('the bundle has no webgpu-cpu module (build it with --target web)');
      s.gpu = await WebGPUDevice.open(gpu, { compatibility });
      cpuKernels = hasCpuKernels && (want === 'cpu' || (want === 'auto' && s.gpu.emulated));
    }
    const { file, bytes, weights, at, n } = await fetch(cpuKernels);
    mod = at ? s.rt.loadAt(at, n, file) : s.rt.load(bytes, file);
    if (weights) s.rt.addBlob(mod, 'weights', weights);
    const d = s.rt.describe(mod);
    if (d.target !== name) throw new Error(`${file} holds a ${d.target} module, not ${name}`);
    s.functions = d.functions;
    if (name === 'wasm') {
      s.wasm = await openWasm(s.rt, mod);
      s.device = `wasm (${s.wasm.variant})`;
    } else if (name === 'webgpu') {
      const src = s.rt.blob(mod, 'wgsl-src');
      if (!src) throw new Error(`${file} carries no WGSL`);
      s.pipelines = await s.gpu.compile(new TextDecoder().decode(src));
      s.device = s.gpu.name + (cpuKernels ? ' (kernels for CPU adapters)' : '');
    } else if (name === 'webgl') {
      const canvas = opts.canvas ?? (typeof OffscreenCanvas !== 'undefined' ? new OffscreenCanvas(1, 1)
        : globalThis.document?.createElement('canvas'));
      if (!canvas) throw new Error(isNode ? 'node has no WebGL2 (run the bundle in a browser)' : 'this host has no canvas for WebGL2');
      s.rt.M.specialHTMLTargets['#kiln-webgl'] = canvas;
      const p = s.rt.M._kiln_gles_device_name();
      if (!p) throw new Error(s.rt.error());
      s.device = s.rt.str(p);
    } else {
      throw new Error(`unknown backend '${name}'`);
    }
  } catch (e) {
    if (mod) s.rt.M._kiln_module_free(mod);
    s.gpu?.device.destroy(); // opened before a later step failed
    s.gpu = null;
    s.wasm = null;
    throw e;
  }
  s.mod = mod;
  s.backend = name;
}

/**
 * Opens one module container (what `kiln build ... -o M.kmod` or
 * kiln_module_save writes) on the backend its target names: the RPC server
 * runs uploaded modules this way. opts.base: where kiln_runtime.js/.wasm lie
 * (default: beside this file); opts.gpu, opts.canvas as for load().
 */
export async function openModule(bytes, opts = {}) {
  if (!(bytes instanceof Uint8Array)) throw new Error('kiln: openModule takes the container as a Uint8Array');
  const s = await bareSession(opts);
  const target = containerTarget(bytes, opts.name);
  const p = s.rt.M._malloc(Math.max(1, bytes.length));
  if (!p) throw new Error(`kiln: no memory for a module of ${bytes.length} bytes`);
  s.rt.M.HEAPU8.set(bytes, p);
  return openAt(s, target, p, bytes.length, opts);
}

/**
 * openModule for a container that arrives in pieces (an RPC upload being
 * fetched): next() gives the next Uint8Array, or null at the end; size is the
 * whole length. The pieces go straight into the runtime's memory, with no
 * assembled copy in between.
 */
export async function openModuleStream(size, next, opts = {}) {
  const s = await bareSession(opts);
  const M = s.rt.M, p = M._malloc(Math.max(1, size));
  if (!p) throw new Error(`kiln: no memory for a module of ${size} bytes`);
  let off = 0, target;
  try {
    for (let c; (c = await next());) {
      if (c.length > size - off) throw new Error(`kiln: ${opts.name ?? 'the module'} is longer than the ${size} bytes announced`);
      M.HEAPU8.set(c, p + off); // HEAPU8 read again each time: the memory may have grown
      off += c.length;
    }
    if (off !== size) throw new Error(`kiln: ${opts.name ?? 'the module'} ended after ${off} of ${size} bytes`);
    target = containerTarget(M.HEAPU8.subarray(p, p + Math.min(size, 64)), opts.name);
  } catch (e) {
    M._free(p);
    throw e;
  }
  return openAt(s, target, p, size, opts);
}

// A session over a fresh runtime, with no backend opened yet.
async function bareSession(opts) {
  const base = opts.base ?? new URL('.', import.meta.url).href;
  const host = makeHost();
  const rt = new Runtime(await startRuntime(base, host));
  const s = new Session(rt, { modules: {} });
  host.session = s;
  return s;
}

// The target is the container's first field ("KILNMOD\1", u32 version, u32 length, the name):
// read here to pick the backend; the C runtime checks the whole container when it loads it.
function containerTarget(head, name = 'the module') {
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const magic = new TextDecoder().decode(head.subarray(0, 7));
  const tlen = head.length >= 16 ? dv.getUint32(12, true) : 0;
  if (magic !== 'KILNMOD' || head[7] !== 1 || tlen < 1 || tlen > 31 || head.length < 16 + tlen)
    throw new Error(`kiln: ${name} is not a kiln module container`);
  const target = new TextDecoder().decode(head.subarray(16, 16 + tlen));
  if (!BACKENDS.includes(target))
    throw new Error(`kiln: a ${target} module runs natively; the web runtime runs ${BACKENDS.join(', ')} modules`);
  return target;
}

// Opens s on target with the container at p (n bytes) in its runtime's memory, which it frees.
async function openAt(s, target, p, n, opts) {
  let taken = false; // once the runtime has the container, loadAt frees it
  try {
    await openBackend(s, target, opts, false, async () => {
      taken = true;
      return { file: opts.name ?? 'the module', at: p, n, weights: null };
    });
  } catch (e) {
    if (!taken) s.rt.M._free(p);
    throw new Error(`kiln: ${target}: ${e.message}`);
  }
  return s;
}

// What the C runtime calls back into (web.c); modules are told apart by pointer,
// and a page may hold several sessions over one runtime each.
function makeHost() {
  const host = { session: null, lastError: '' };
  host.wasmCall = (mod, name, offsets) => {
    const f = host.session.wasm.instance.exports[name];
    if (typeof f !== 'function') throw new Error(`the kernel binary has no function '${name}'`);
    return f(...offsets);
  };
  host.gpuAlloc = (bytes) => host.session.gpuAlloc(bytes);
  host.gpuFree = (id) => host.session.gpuFree(id);
  // A launch's pipeline, bind group and workgroups are worked out once and
  // kept under its plan entry (la, a pointer into the runtime's memory) for
  // as long as its buffers stay the same: a model's ~100 launches per run
  // cost the CPU more than the GPU took to run them.
  host.gpuDispatch = (mod, la, kernel, gx, gy, gz, n, ids) => {
    const s = host.session, H = s.rt.M.HEAPU32, at = ids >> 2;
    let c = s.launches.get(la);
    if (c && (c.mod !== mod || c.ids.length !== n)) c = null;
    for (let i = 0; c && i < n; i++) if (c.ids[i] !== H[at + i]) c = null;
    if (!c) {
      const name = s.rt.str(kernel), p = s.pipelines.get(name);
      if (!p) throw new Error(`the module has no kernel '${name}'`);
      const idList = H.slice(at, at + n);
      const group = s.gpu.bindGroup(p, Array.from(idList, (id) => s.buffers.get(id)));
      c = { mod, ids: idList, pipeline: p, group, size: dispatchSize([gx, gy, gz]) };
      s.launches.set(la, c);
    }
    s.gpu.record(c.pipeline, c.group, c.size);
    return 0;
  };
  host.gpuSubmit = () => {
    const s = host.session;
    if (!s.batching || s.gpu.recorded >= s.submitEvery) s.gpu.submit();
    return 0;
  };
  // a model's buffers (runtime/graph.c through web.c's rt_buffer_ops)
  host.devAlloc = (mod, bytes) => {
    const s = host.session;
    return s.backend === 'wasm' ? s.wasm.heap.alloc(bytes) : s.gpuAlloc(bytes);
  };
  host.devFree = (mod, handle) => {
    const s = host.session;
    if (s.backend === 'wasm') s.wasm.heap.free(handle);
    else s.gpuFree(handle);
  };
  host.devUpload = (mod, handle, u8) => {
    const s = host.session;
    if (s.backend === 'wasm') new Uint8Array(s.wasm.memory.buffer, handle, u8.length).set(u8);
    else s.gpu.upload(s.buffers.get(handle), u8);
    return 0;
  };
  return host;
}

/**
 * Loads the bundle at base (default: the folder this file was loaded from).
 * opts.backend: 'auto' (webgpu, webgl, wasm: the first that opens), one name,
 * or a list in order. opts.gpu: a GPU object (navigator.gpu, or Dawn's in node).
 */
// The bundle's kiln.json, checked: version 1, module files named plainly inside the bundle.
async function readManifest(base) {
  let manifest;
  try {
    manifest = JSON.parse(new TextDecoder().decode(await readBytes(base, 'kiln.json')));
  } catch (e) {
    throw e.message.startsWith('kiln:') ? e : new Error(`kiln: ${base}kiln.json is not valid JSON (${e.message})`);
  }
  if (!manifest || typeof manifest !== 'object' || manifest.format !== 'kiln-bundle')
    throw new Error(`kiln: ${base}kiln.json is not a kiln bundle manifest`);
  if (manifest.version !== 1)
    throw new Error(`kiln: ${base}kiln.json has version ${JSON.stringify(manifest.version)}; this kiln.mjs reads version 1`);
  if (!manifest.modules || typeof manifest.modules !== 'object')
    throw new Error(`kiln: ${base}kiln.json lists no modules`);
  for (const [key, file] of Object.entries(manifest.modules))
    if (typeof file !== 'string' || !/^[A-Za-z0-9_][A-Za-z0-9_.-]*\.kmod$/.test(file) || file.includes('..'))
      throw new Error(`kiln: ${base}kiln.json names ${JSON.stringify(file)} for ${key}: module files are plain names inside the bundle`);
  if (manifest.weights !== undefined && (!manifest.weights || typeof manifest.weights !== 'object'))
    throw new Error(`kiln: ${base}kiln.json has a weights entry that is not a map`);
  for (const [key, file] of Object.entries(manifest.weights ?? {}))
    if (typeof file !== 'string' || !/^[A-Za-z0-9_][A-Za-z0-9_.-]*\.weights$/.test(file) || file.includes('..'))
      throw new Error(`kiln: ${base}kiln.json names ${JSON.stringify(file)} as ${key}'s weights: weights files are plain names inside the bundle`);
  return manifest;
}

export async function load(base = new URL('.', import.meta.url).href, opts = {}) {
  const manifest = await readManifest(base);
  const want = opts.backend && opts.backend !== 'auto' ? [opts.backend].flat() : BACKENDS;
  for (const b of want)
    if (!BACKENDS.includes(b)) throw new Error(`kiln: unknown backend '${b}' (one of ${BACKENDS.join(', ')}, or 'auto')`);
  const host = makeHost();
  const rt = new Runtime(await startRuntime(base, host));
  const s = new Session(rt, manifest);
  host.session = s;
  for (const b of want) {
    try {
      await open(s, b, base, opts);
      return s;
    } catch (e) {
      s.skipped.push({ backend: b, reason: e.message });
    }
  }
  throw new Error(`kiln: no backend can run this bundle here:\n${s.skipped.map((k) => `  ${k.backend}: ${k.reason}`).join('\n')}`);
}

// A whole model (kiln compile model.onnx --target web -o dir/) on one backend:
// the C graph executor runs the plan; inputs go in and outputs come back as
// typed arrays; intermediates stay where the kernels run (wasm memory, GPUBuffers).
export class Model {
  constructor(session) {
    const M = session.rt.M;
    this.session = session;
    this.backend = session.backend;
    this.device = session.device;
    this.skipped = session.skipped;
    this.ptr = M._kiln_web_model(session.mod);
    if (!this.ptr) throw new Error(`kiln: ${session.rt.error()}`);
    const p = M._kiln_web_model_describe(this.ptr);
    if (!p) {
      const err = session.rt.error();
      M._kiln_model_free(this.ptr);
      this.ptr = 0;
      throw new Error(`kiln: ${err}`);
    }
    this.queue = Promise.resolve(); // run() calls take turns: one set of buffers
    const d = JSON.parse(session.rt.str(p));
    M._free(p);
    this.inputs = d.inputs;   // [{name, dtype, shape, bytes}]
    this.outputs = d.outputs;
    this.arenaBytes = d.arena;
  }

  // Copies feeds ({inputName: typed array}, or an array in input order) to the model's inputs.
  feed(feeds) {
    const s = this.session, M = s.rt.M;
    if (!this.ptr) throw new Error('kiln: the model was disposed');
    const list = Array.isArray(feeds) ? feeds : this.inputs.map((i) => feeds?.[i.name]);
    if (!Array.isArray(feeds)) {
      const extra = Object.keys(feeds ?? {}).filter((k) => !this.inputs.some((i) => i.name === k));
      if (extra.length) throw new Error(`kiln: the model has no input ${extra.join(', ')} (it has: ${this.inputs.map((i) => i.name).join(', ')})`);
    }
    this.inputs.forEach((inp, i) => {
      const v = list[i];
      if (v == null) throw new Error(`kiln: no value for input '${inp.name}'`);
      const T = arrayType(inp.dtype);
      let typed = v;
      if (!(v instanceof T)) {
        try {
          typed = T.from(v);
        } catch (e) {
          throw new Error(`kiln: input '${inp.name}' is ${inp.dtype}; cannot convert ${v?.constructor?.name ?? typeof v} (${e.message})`);
        }
      }
      if (typed.byteLength !== inp.bytes)
        throw new Error(`kiln: input '${inp.name}' has shape [${inp.shape}] (${inp.bytes} bytes); got ${typed.length} values`);
      const p = M._malloc(inp.bytes);
      if (!p) throw new Error(`kiln: no memory for input '${inp.name}' (${inp.bytes} bytes)`);
      M.HEAPU8.set(new Uint8Array(typed.buffer, typed.byteOffset, inp.bytes), p);
      const rc = M._kiln_model_set_input_data(this.ptr, i, p, inp.bytes);
      M._free(p);
      if (rc) throw new Error(`kiln: ${s.rt.error()}`);
    });
  }

  // Runs the plan once (WebGPU: the launches are submitted, not awaited).
  // WebGPU: the steps' launches go into one compute pass, submitted once it
  // holds submitEvery launches (at a step's end) and at the run's end, where
  // each step submitted its own (one command buffer per step cost more CPU
  // time than the H200 took to run ResNet-18's kernels).
  launch() {
    const s = this.session;
    s.batching = s.backend === 'webgpu';
    let rc;
    try {
      rc = s.rt.M._kiln_model_run(this.ptr);
    } finally {
      s.batching = false;
      if (s.backend === 'webgpu') s.gpu.submit();
    }
    if (rc) throw new Error(`kiln: ${s.rt.error()}`);
  }

  // The outputs as {name: typed array}, once the launches are done.
  async read() {
    const s = this.session, out = {};
    for (const o of this.outputs) {
      let u8;
      if (s.backend === 'webgpu') u8 = await s.gpu.download(s.buffers.get(o.data), o.bytes);
      else if (s.backend === 'wasm') u8 = new Uint8Array(s.wasm.memory.buffer, o.data, o.bytes).slice();
      else u8 = s.rt.M.HEAPU8.slice(o.data, o.data + o.bytes);
      out[o.name] = new (arrayType(o.dtype))(u8.buffer, u8.byteOffset, u8.byteLength / arrayType(o.dtype).BYTES_PER_ELEMENT);
    }
    return out;
  }

  // feeds -> {outputName: typed array}. Concurrent calls run one after another.
  run(feeds) {
    const turn = this.queue.then(() => this.runNow(feeds));
    this.queue = turn.catch(() => {});
    return turn;
  }

  async runNow(feeds) {
    this.feed(feeds);
    const s = this.session;
    if (s.backend === 'webgpu') {
      s.gpu.device.pushErrorScope('validation');
      s.scopes++;
      let launched = false;
      try {
        this.launch();
        launched = true;
      } finally {
        if (!launched) await s.check();
      }
      // the readback queued at once behind the launches, while the validation
      // scope comes back: one wait on Dawn's events where there were two
      const [checked, read] = await Promise.allSettled([s.check(), this.read()]);
      if (checked.status === 'rejected') throw checked.reason;
      if (read.status === 'rejected') throw read.reason;
      return read.value;
    }
    this.launch();
    return this.read();
  }

  // Median, mean and min milliseconds of whole runs (inputs already fed), after warm-ups.
  async time({ warmup = 3, repeat = 10 } = {}) {
    const s = this.session, samples = [];
    const once = async () => {
      const t0 = performance.now();
      this.launch();
      if (s.backend === 'webgpu') await s.gpu.device.queue.onSubmittedWorkDone();
      return performance.now() - t0;
    };
    for (let i = 0; i < warmup; i++) await once();
    for (let r = 0; r < repeat; r++) samples.push(await once());
    const sorted = samples.slice().sort((a, b) => a - b), mid = sorted.length >> 1;
    return {
      medianMs: sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2,
      meanMs: samples.reduce((a, b) => a + b, 0) / samples.length, minMs: sorted[0], repeat, samples,
    };
  }

  // Each kernel timed alone (inputs already fed), in plan order:
  // [{step, ms}], ms the median of repeat calls after a warm run; with
  // inRuns, each timed inside repeat whole runs (the caches as the kernels
  // before it leave them: what tuning a model measures). wasm only: WebGPU
  // and WebGL queue their work, so only whole runs (time()) are timed there.
  profile({ repeat = 10, inRuns = false } = {}) {
    const s = this.session, M = s.rt.M;
    if (!this.ptr) throw new Error('kiln: the model was disposed');
    if (s.backend !== 'wasm')
      throw new Error(`kiln: profile() times the steps of the wasm backend; this model runs on ${s.backend} (time() times whole runs)`);
    if (!Number.isInteger(repeat) || repeat < 1 || repeat > 100000)
      throw new Error(`kiln: profile's repeat must be an integer from 1 to 100000, not ${repeat}`);
    const p = M._kiln_web_model_profile(this.ptr, repeat, inRuns ? 1 : 0);
    if (!p) throw new Error(`kiln: ${s.rt.error()}`);
    try {
      return JSON.parse(s.rt.str(p));
    } finally {
      M._free(p);
    }
  }

  dispose() {
    if (this.ptr) this.session.rt.M._kiln_model_free(this.ptr);
    this.ptr = 0;
    this.session.dispose();
  }
}

/**
 * Loads a model bundle (kiln compile model.onnx --target web -o dir/) at base:
 * the first backend of opts.backend ('auto': webgpu, webgl, wasm) that opens,
 * reported as model.backend (and why others were passed over: model.skipped).
 *   const m = await loadModel('./resnet18/');
 *   const { output } = await m.run({ input: new Float32Array(3 * 224 * 224) });
 */
export async function loadModel(base = new URL('.', import.meta.url).href, opts = {}) {
  const s = await load(base, opts);
  if (!s.manifest.model) {
    s.dispose();
    throw new Error(`kiln: ${base} is a bundle of operators, not a model (kiln compile MODEL.onnx --target web -o DIR/)`);
  }
  try {
    return new Model(s);
  } catch (e) {
    s.dispose();
    throw e;
  }
}
