// rpc.mjs — kiln's RPC server in JavaScript: a browser tab (rpc.html) or a
// node process (rpc-node.mjs) registers at `kiln rpc proxy` under a key and
// runs what the paired client sends — module uploads, arrays, calls, timings
// — on WebGPU, WebGL2 or wasm through the web runtime (kiln.mjs).
//
// The messages are runtime/rpc/proto.h's: one WebSocket binary message is
// one message body. Every field is checked against what is left of the
// message before use; a malformed message ends the session with an ERROR.
// A session is the life of one connection: when it ends (the client left,
// the proxy closed it) everything it made is freed and the server
// registers again, fresh.
import { Model, arrayType, dawnGpu, openModule, openModuleStream } from './kiln.mjs';
import { WebGPUDevice } from './webgpu.mjs';

let probedGpu = null;

export const RPC_VERSION = 1;
const MAGIC = 0x4350524b; // "KRPC"
const MAX_NAME = 4096, MAX_KEY = 256, MAX_ARGS = 256;
export const T = {
  HELLO: 1, REGISTER: 2, WELCOME: 3, ERROR: 4, OK: 5, DEVICES: 6, DEVICE_LIST: 7, UPLOAD: 8, MODULE: 9,
  FREE_MODULE: 10, ALLOC: 11, ARRAY: 12, FREE_ARRAY: 13, WRITE: 14, READ: 15, DATA: 16, CALL: 17, TIME: 18,
  TIMING: 19, CLOSE: 20, MODEL_LOAD: 21, MODEL_INFO: 22, MODEL_RUN: 23, MODEL_OUTPUTS: 24, MODEL_TIME: 25,
  FREE_MODEL: 26, PARCEL: 27, MODEL_STEPS: 29, STEP_TIMES: 30,
};
const MAX_IO = 64;
const NAMES = Object.fromEntries(Object.entries(T).map(([k, v]) => [v, k]));
// kiln_typecode and bits -> the dtype names kiln.mjs takes
const DTYPE = { '0/1': 'bool', '0/8': 'bool', '1/8': 'int8', '1/16': 'int16', '1/32': 'int32', '1/64': 'int64',
  '2/8': 'uint8', '2/16': 'uint16', '2/32': 'uint32', '2/64': 'uint64', '3/16': 'float16', '3/32': 'float32',
  '3/64': 'float64' };

const CODE = Object.fromEntries(Object.entries(DTYPE).map(([k, v]) => [v, k.split('/').map(Number)]));
CODE.bool = [0, 8];

class ProtocolError extends Error {}

// A wasm model just loaded runs in V8's baseline tier (Liftoff) until its
// functions are tiered up in the background: a model's kernels ran 1.5-2x
// slower for its first second or more, and which schedule wins there is not
// which wins in the optimized code. Whole runs until they stop getting
// faster (three batches in a row none of them 3% faster than the best so
// far) and at least 2 s, at most 15 s, once per model; node started with
// --no-liftoff (kiln tune's runner) compiles with the optimizing tier at
// once and needs no minimum.
const eager = globalThis.process?.execArgv?.includes('--no-liftoff') ?? false;
async function warmed(model) {
  if (model.backend !== 'wasm' || model.warmed) return;
  model.warmed = true;
  const t0 = performance.now(), least = eager ? 0 : 2000;
  let best = Infinity, calm = 0;
  while ((calm < 3 || performance.now() - t0 < least) && performance.now() - t0 < 15000) {
    const t = (await model.time({ warmup: 0, repeat: 3 })).medianMs;
    calm = t < best * 0.97 ? 0 : calm + 1;
    best = Math.min(best, t);
  }
}

// Reads a message body; any field past the end is a ProtocolError.
export class Reader {
  constructor(u8) {
    this.u8 = u8;
    this.dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
    this.at = 0;
  }
  need(n, what) {
    if (n > this.u8.length - this.at) throw new ProtocolError(`bad or truncated ${what}`);
    const at = this.at;
    this.at += n;
    return at;
  }
  u8v(what) { return this.dv.getUint8(this.need(1, what)); }
  u16(what) { return this.dv.getUint16(this.need(2, what), true); }
  u32(what) { return this.dv.getUint32(this.need(4, what), true); }
  i32(what) { return this.dv.getInt32(this.need(4, what), true); }
  i64(what) {
    const v = this.dv.getBigInt64(this.need(8, what), true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtocolError(`${what} out of range`);
    return Number(v);
  }
  f64(what) { return this.dv.getFloat64(this.need(8, what), true); }
  str(max, what) {
    const n = this.u32(what);
    if (n > max) throw new ProtocolError(`bad or truncated ${what}`);
    return new TextDecoder().decode(this.u8.subarray(this.need(n, what), this.at));
  }
  bytes(what) {
    const n = this.dv.getBigUint64(this.need(8, what), true);
    if (n > BigInt(this.u8.length - this.at)) throw new ProtocolError(`bad or truncated ${what}`);
    return this.u8.subarray(this.need(Number(n), what), this.at);
  }
  end(type) {
    if (this.at !== this.u8.length) throw new ProtocolError(`${NAMES[type]} message: ${this.u8.length - this.at} bytes past its last field`);
  }
}

// Builds a message body.
export class Writer {
  constructor(type) {
    this.buf = new Uint8Array(256);
    this.n = 0;
    this.u8v(type);
  }
  room(n) {
    if (this.n + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.n + n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.n));
    this.buf = b;
  }
  put(n, fn) {
    this.room(n);
    fn(new DataView(this.buf.buffer, this.n, n));
    this.n += n;
    return this;
  }
  u8v(v) { return this.put(1, (d) => d.setUint8(0, v)); }
  u16(v) { return this.put(2, (d) => d.setUint16(0, v, true)); }
  u32(v) { return this.put(4, (d) => d.setUint32(0, v, true)); }
  i64(v) { return this.put(8, (d) => d.setBigInt64(0, BigInt(v), true)); }
  f64(v) { return this.put(8, (d) => d.setFloat64(0, v, true)); }
  raw(u8) {
    this.room(u8.length);
    this.buf.set(u8, this.n);
    this.n += u8.length;
    return this;
  }
  str(s) {
    const u8 = new TextEncoder().encode(s);
    return this.u32(u8.length).raw(u8);
  }
  bytes(u8) { return this.put(8, (d) => d.setBigUint64(0, BigInt(u8.length), true)).raw(u8); }
  body() { return this.buf.subarray(0, this.n); }
}

// The pieces as one Uint8Array (the piece itself when there is one).
function concat(chunks) {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

// Keys compared over their whole length, whatever differs first.
function sameKey(a, b) {
  const x = new TextEncoder().encode(a), y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

const isNode = typeof process === 'object' && !!process.versions?.node && typeof window === 'undefined';

// What this host can run: [{target, description}], probed once.
export async function probeDevices(opts = {}) {
  const out = [];
  if (typeof WebAssembly === 'object') out.push({ target: 'wasm', description: `wasm in ${isNode ? `node ${process.version}` : 'this browser'}` });
  try {
    let gpu = opts.gpu ?? globalThis.navigator?.gpu, compatibility = false;
    if (!gpu && isNode) ({ gpu, compatibility } = dawnGpu(await import('webgpu')));
    if (gpu) {
      const dev = await WebGPUDevice.open(gpu, { compatibility });
      probedGpu = gpu; // Dawn in node aborts when the GPU object is collected before its devices
      out.push({ target: 'webgpu', description: dev.name });
      dev.device.destroy();
    }
  } catch { /* no WebGPU here */ }
  if (!isNode && typeof document === 'object') {
    const gl = (opts.canvas ?? document.createElement('canvas')).getContext('webgl2');
    if (gl) {
      const ext = gl.getExtension('WEBGL_debug_renderer_info');
      out.push({ target: 'webgl', description: ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER) });
    }
  }
  return out;
}

/**
 * A server: new RpcServer({url, key, base, WebSocket, onState}).start().
 * url: the proxy's WebSocket address; key: what clients must present; base:
 * where kiln_runtime.js/.wasm lie; onState(state) hears every change
 * ({status, key, devices, session, last}). reconnect (default true):
 * register again after each session and after a lost connection.
 */
export class RpcServer {
  constructor(opts) {
    if (!opts?.url || !opts?.key) throw new Error('kiln rpc: a server needs the proxy url and a key');
    if (new TextEncoder().encode(opts.key).length > MAX_KEY) throw new Error(`kiln rpc: a key is at most ${MAX_KEY} bytes`);
    // parcels: large messages fetched over HTTP, faster in a browser than one big WebSocket message
    this.opts = { reconnect: true, parcels: !isNode, description: isNode ? `kiln node server (node ${process.version})` : `kiln browser tab (${(globalThis.navigator?.userAgent ?? '').match(/(HeadlessChrome|Chrome|Firefox|Version)\/[\d.]+/)?.[0] ?? 'a browser'})`, ...opts };
    this.WS = opts.WebSocket ?? globalThis.WebSocket;
    if (!this.WS) throw new Error('kiln rpc: no WebSocket here (node 20: run with --experimental-websocket)');
    this.state = { status: 'starting', key: opts.key, devices: [], session: false, last: '' };
    this.sessions = 0;
    this.stopped = false;
  }

  set(patch) {
    Object.assign(this.state, patch);
    this.opts.onState?.({ ...this.state });
  }

  async start() {
    this.set({ devices: await probeDevices(this.opts) });
    this.connect();
    return this;
  }

  stop() {
    this.stopped = true;
    this.ws?.close();
  }

  connect() {
    if (this.stopped) return;
    this.reset();
    this.set({ status: 'connecting', session: false });
    const ws = new this.WS(this.opts.url, 'kiln-rpc');
    this.ws = ws;
    ws.binaryType = 'arraybuffer';
    this.queue = Promise.resolve();
    ws.onopen = () => {
      ws.send(new Writer(T.REGISTER).u32(MAGIC).u16(RPC_VERSION).str(this.opts.key).str(this.describe()).u8v(this.opts.parcels ? 1 : 0).body());
      this.set({ status: 'registered, waiting for a client' });
    };
    ws.onmessage = (ev) => {
      const body = new Uint8Array(ev.data);
      // one request at a time, in order: each waits for the one before
      this.queue = this.queue.then(() => (body[0] === T.PARCEL ? this.parcel(body) : this.handle(body)))
        .catch((e) => this.fail(e));
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.reset();
      this.set({ status: this.stopped ? 'stopped' : 'disconnected', session: false });
      if (this.opts.reconnect && !this.stopped && !(this.opts.sessions && this.sessions >= this.opts.sessions))
        setTimeout(() => this.connect(), 100);
    };
    ws.onerror = () => this.set({ status: 'connection error' });
  }

  // A large message comes as a parcel: its token; the body is fetched from the proxy over
  // HTTP. An UPLOAD or MODEL_LOAD streams straight into a web runtime's memory as it
  // arrives; anything else is gathered and handled as usual.
  async parcel(body) {
    const r = new Reader(body);
    r.u8v('type');
    const token = r.str(64, 'token'), size = Number(r.dv.getBigUint64(r.need(8, 'size'), true));
    r.end(T.PARCEL);
    if (!/^[0-9a-f]{32}$/.test(token)) throw new ProtocolError('a parcel token is 32 hex digits');
    const url = new URL(`/parcel/${token}`, this.opts.url.replace(/^ws/, 'http'));
    const res = await fetch(url, { cache: 'no-store' });
    if (!res.ok || !res.body) throw new ProtocolError(`the proxy did not give parcel ${token} (HTTP ${res.status})`);
    const reader = res.body.getReader(), chunks = [];
    let got = 0;
    const read = async () => {
      const { value, done } = await reader.read();
      if (done) return null;
      got += value.length;
      if (got > size) throw new ProtocolError(`parcel ${token} is longer than its ${size} bytes`);
      return value;
    };
    while (got < 9) { // the type and, for an upload, the container's length
      const c = await read();
      if (!c) break;
      chunks.push(c);
    }
    const head = concat(chunks);
    if ((head[0] === T.UPLOAD || head[0] === T.MODEL_LOAD) && head.length >= 9 && this.greeted) {
      const type = head[0], n = Number(new DataView(head.buffer, head.byteOffset).getBigUint64(1, true));
      if (9 + n !== size) throw new ProtocolError(`${NAMES[type]} in parcel ${token}: ${n} bytes of data in ${size}`);
      this.set({ last: NAMES[type] });
      let first = head.subarray(9);
      const next = async () => {
        if (first) {
          const c = first;
          first = null;
          if (c.length) return c;
        }
        return read();
      };
      const s = await openModuleStream(n, next, { ...this.opts, name: `the uploaded ${type === T.UPLOAD ? 'module' : 'model'}` });
      return type === T.UPLOAD ? this.uploaded(s) : this.modelLoaded(s);
    }
    chunks.length = 0;
    chunks.push(head);
    for (let c; (c = await read());) chunks.push(c);
    const bytes = concat(chunks);
    if (bytes.length !== size) throw new ProtocolError(`parcel ${token}: ${bytes.length} bytes of ${size}`);
    return this.handle(bytes);
  }

  describe() {
    return `${this.opts.description}: ${this.state.devices.map((d) => d.target).join(', ')}`;
  }

  // Frees everything the session made.
  reset() {
    for (const m of this.modules?.values() ?? []) m.dispose();
    for (const m of this.models?.values() ?? []) m.dispose();
    this.modules = new Map();
    this.models = new Map();
    this.arrays = new Map();
    this.nextHandle = 1;
    this.greeted = false;
  }

  send(w) {
    if (this.ws?.readyState === 1) this.ws.send(w.body());
  }

  error(msg) { this.send(new Writer(T.ERROR).str(String(msg).slice(0, 4000))); }

  fail(e) {
    if (e instanceof ProtocolError) {
      this.error(`protocol violation: ${e.message}; closing the session`);
      this.ws?.close();
    } else {
      this.error(e?.message ?? String(e));
    }
  }

  module(h) {
    const m = this.modules.get(h);
    if (!m) throw new Error(`no module ${h} in this session`);
    return m;
  }

  array(h) {
    const a = this.arrays.get(h);
    if (!a) throw new Error(`no array ${h} in this session`);
    return a;
  }

  callArgs(r) {
    const module = r.u32('module'), fn = r.str(MAX_NAME, 'function name'), n = r.u32('argument count');
    if (n > MAX_ARGS) throw new ProtocolError('bad or truncated argument count');
    const handles = [];
    for (let i = 0; i < n; i++) handles.push(r.u32('argument'));
    return { module, fn, handles };
  }

  resolve({ module, fn, handles }) {
    const s = this.module(module);
    return { s, fn, arrays: handles.map((h, i) => {
      const a = this.arrays.get(h);
      if (!a) throw new Error(`argument ${i} of ${fn}: no array ${h} in this session`);
      return a.array;
    }) };
  }

  model(h) {
    const m = this.models.get(h);
    if (!m) throw new Error(`no model ${h} in this session`);
    return m;
  }

  // u32 n, bytes[n]: a model's inputs as typed arrays of its input dtypes.
  modelInputs(r, model) {
    const n = r.u32('value count');
    if (n > MAX_IO) throw new ProtocolError('bad or truncated value count');
    const list = [];
    for (let i = 0; i < n; i++) list.push(r.bytes('value'));
    return () => {
      if (n !== model.inputs.length) throw new Error(`the model has ${model.inputs.length} inputs, ${n} were sent`);
      return list.map((u8, i) => {
        const inp = model.inputs[i];
        if (u8.length !== inp.bytes) throw new Error(`input '${inp.name}' has ${inp.bytes} bytes; ${u8.length} were sent`);
        const T = arrayType(inp.dtype), copy = u8.slice(); // aligned for the typed array
        return new T(copy.buffer, 0, copy.length / T.BYTES_PER_ELEMENT);
      });
    };
  }

  // UPLOAD's reply, once the module is open in session s.
  uploaded(s) {
    const h = this.nextHandle++;
    this.modules.set(h, s);
    this.set({ last: `UPLOAD: a ${s.backend} module on ${s.device}` });
    return this.send(new Writer(T.MODULE).u32(h));
  }

  // MODEL_LOAD's reply: the model over session s, its inputs and outputs described.
  modelLoaded(s) {
    let model;
    try {
      model = new Model(s);
    } catch (e) {
      s.dispose();
      throw e;
    }
    const h = this.nextHandle++;
    this.models.set(h, model);
    this.set({ last: `MODEL_LOAD: a ${s.backend} model on ${s.device}` });
    const w = new Writer(T.MODEL_INFO).u32(h);
    for (const list of [model.inputs, model.outputs]) {
      w.u32(list.length);
      for (const v of list) {
        const [code, bits] = CODE[v.dtype];
        w.str(v.name).u8v(code).u8v(bits).u16(1).u8v(v.shape.length);
        for (const d of v.shape) w.i64(d);
      }
    }
    return this.send(w);
  }

  async handle(body) {
    const r = new Reader(body);
    const type = r.u8v('type');
    this.set({ last: NAMES[type] ?? `type ${type}` });
    if (!this.greeted) {
      if (type !== T.HELLO) throw new ProtocolError(`a session opens with HELLO, not ${NAMES[type] ?? type}`);
      const magic = r.u32('magic'), version = r.u16('version'), key = r.str(MAX_KEY, 'key');
      r.end(type);
      if (magic !== MAGIC) throw new ProtocolError('not a kiln RPC peer');
      if (version !== RPC_VERSION) throw new ProtocolError(`this server speaks kiln RPC version ${RPC_VERSION}, the client ${version}`);
      if (!sameKey(key, this.opts.key)) throw new ProtocolError('wrong key: the session is refused');
      this.greeted = true;
      this.sessions++;
      this.set({ status: 'in a session', session: true });
      this.send(new Writer(T.WELCOME).u16(RPC_VERSION).str(this.describe()));
      return;
    }
    switch (type) {
    case T.DEVICES: {
      r.end(type);
      const w = new Writer(T.DEVICE_LIST).u32(this.state.devices.length);
      for (const d of this.state.devices) w.str(d.target).str(d.description.slice(0, 255));
      return this.send(w);
    }
    case T.UPLOAD: {
      const bytes = r.bytes('data');
      r.end(type);
      return this.uploaded(await openModule(bytes, { ...this.opts, name: 'the uploaded module' }));
    }
    case T.FREE_MODULE: {
      const h = r.u32('module');
      r.end(type);
      const s = this.module(h);
      for (const [k, a] of this.arrays) if (a.module === h) { a.array.dispose(); this.arrays.delete(k); }
      s.dispose();
      this.modules.delete(h);
      return this.send(new Writer(T.OK));
    }
    case T.ALLOC: {
      const module = r.u32('module'), code = r.u8v('dtype'), bits = r.u8v('dtype'), lanes = r.u16('dtype');
      const ndim = r.u8v('rank');
      if (ndim > 8) throw new ProtocolError('bad or truncated rank');
      const shape = [];
      for (let d = 0; d < ndim; d++) shape.push(r.i64('shape'));
      r.end(type);
      const s = this.module(module), dtype = DTYPE[`${code}/${bits}`];
      if (!dtype || lanes !== 1) throw new Error(`an array cannot have dtype code ${code}, ${bits} bits, ${lanes} lanes`);
      const elems = shape.reduce((a, b) => (b < 0 || a < 0 ? -1 : a * b), 1);
      if (elems < 0) throw new Error(`the array's shape [${shape}] has a negative extent`);
      if (elems * Math.max(1, bits / 8) > 2 ** 31) throw new Error(`an array of shape [${shape}] is larger than 2 GiB, more than this device takes`);
      const a = s.empty(shape, dtype);
      const h = this.nextHandle++;
      this.arrays.set(h, { array: a, module });
      return this.send(new Writer(T.ARRAY).u32(h));
    }
    case T.FREE_ARRAY: {
      const h = r.u32('array');
      r.end(type);
      this.array(h).array.dispose();
      this.arrays.delete(h);
      return this.send(new Writer(T.OK));
    }
    case T.WRITE: {
      const h = r.u32('array'), data = r.bytes('data');
      r.end(type);
      const a = this.array(h).array;
      if (data.length !== a.bytes) throw new Error(`array ${h} holds ${a.bytes} bytes; WRITE sent ${data.length}`);
      const copy = data.slice(); // aligned for the typed array
      const Typed = { bool: Uint8Array, int8: Int8Array, int16: Int16Array, int32: Int32Array, int64: BigInt64Array,
        uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, uint64: BigUint64Array, float16: Uint16Array,
        float32: Float32Array, float64: Float64Array }[a.dtype];
      a.write(new Typed(copy.buffer, 0, a.size));
      return this.send(new Writer(T.OK));
    }
    case T.READ: {
      const h = r.u32('array');
      r.end(type);
      const v = await this.array(h).array.read();
      return this.send(new Writer(T.DATA).bytes(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)));
    }
    case T.CALL: {
      const c = this.callArgs(r);
      r.end(type);
      const { s, fn, arrays } = this.resolve(c);
      await s.run(fn, arrays);
      this.set({ last: `CALL ${fn} on ${s.backend}` });
      return this.send(new Writer(T.OK));
    }
    case T.TIME: {
      const c = this.callArgs(r);
      const warmup = r.i32('warmup'), number = r.i32('number'), repeat = r.i32('repeat'), minRepeatMs = r.f64('min_repeat_ms');
      r.end(type);
      if (repeat < 1 || repeat > 100000 || number < 0 || number > (1 << 24) || warmup < 0 || warmup > 100000 ||
          !(minRepeatMs >= 0 && minRepeatMs <= 3.6e6))
        throw new Error(`time: repeat ${repeat}, number ${number}, warmup ${warmup}, min_repeat_ms ${minRepeatMs}: out of range`);
      const { s, fn, arrays } = this.resolve(c);
      const t = await s.time(fn, arrays, { warmup, number, repeat, minRepeatMs });
      this.set({ last: `TIME ${fn} on ${s.backend}: ${t.medianMs.toFixed(4)} ms` });
      const w = new Writer(T.TIMING).f64(t.medianMs).f64(t.meanMs).f64(t.minMs).u32(t.number).u32(t.samples.length);
      for (const x of t.samples) w.f64(x);
      return this.send(w);
    }
    case T.MODEL_LOAD: {
      const bytes = r.bytes('data');
      r.end(type);
      return this.modelLoaded(await openModule(bytes, { ...this.opts, name: 'the uploaded model' }));
    }
    case T.MODEL_RUN: {
      const model = this.model(r.u32('model')), inputs = this.modelInputs(r, model);
      r.end(type);
      const out = await model.run(inputs());
      this.set({ last: `MODEL_RUN on ${model.backend}` });
      const w = new Writer(T.MODEL_OUTPUTS).u32(model.outputs.length);
      for (const o of model.outputs) {
        const v = out[o.name];
        w.bytes(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
      }
      return this.send(w);
    }
    case T.MODEL_TIME: {
      const model = this.model(r.u32('model')), inputs = this.modelInputs(r, model);
      const warmup = r.i32('warmup'), number = r.i32('number'), repeat = r.i32('repeat'), minRepeatMs = r.f64('min_repeat_ms');
      r.end(type);
      if (repeat < 1 || repeat > 100000 || warmup < 0 || warmup > 100000 || number < 0 || !(minRepeatMs >= 0))
        throw new Error(`time: repeat ${repeat}, warmup ${warmup}: out of range`);
      model.feed(inputs());
      await warmed(model);
      const t = await model.time({ warmup, repeat });
      this.set({ last: `MODEL_TIME on ${model.backend}: ${t.medianMs.toFixed(3)} ms` });
      const w = new Writer(T.TIMING).f64(t.medianMs).f64(t.meanMs).f64(t.minMs).u32(1).u32(t.samples.length);
      for (const x of t.samples) w.f64(x);
      return this.send(w);
    }
    case T.MODEL_STEPS: {
      const model = this.model(r.u32('model')), inputs = this.modelInputs(r, model), runs = r.i32('runs');
      r.end(type);
      if (!(runs >= 1 && runs <= 1000)) throw new Error(`MODEL_STEPS: ${runs} runs (1 to 1000)`);
      model.feed(inputs());
      await warmed(model);
      // each kernel inside whole runs; profile() says so where the backend cannot (WebGPU, WebGL queue their work)
      const steps = model.profile({ repeat: runs, inRuns: true });
      this.set({ last: `MODEL_STEPS on ${model.backend}: ${steps.length} steps` });
      const w = new Writer(T.STEP_TIMES).u32(steps.length);
      for (const st of steps) w.str(st.step).f64(st.ms);
      return this.send(w);
    }
    case T.FREE_MODEL: {
      const h = r.u32('model');
      r.end(type);
      this.model(h).dispose();
      this.models.delete(h);
      return this.send(new Writer(T.OK));
    }
    case T.CLOSE:
      r.end(type);
      this.send(new Writer(T.OK));
      this.ws.close();
      return;
    default:
      if (!NAMES[type]) throw new ProtocolError(`unknown message type ${type}`);
      throw new Error(`a server does not take ${NAMES[type]} messages`);
    }
  }
}
