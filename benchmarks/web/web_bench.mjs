#!/usr/bin/env node
// web_bench.mjs matmul|conv2d [REPEAT] — kiln's web targets against the web's
// peers, measured in the same run (benchmarks/run.sh matmul_web|conv2d_web).
//
//   wasm, node, one thread: kiln (bundle, JS API) vs @tensorflow/tfjs-backend-wasm
//     and onnxruntime-web's wasm execution provider;
//   WebGPU, headless Chromium, one page: kiln vs @tensorflow/tfjs-backend-webgpu.
//
// Cases: matmul 1024^3; the four 3x3 convolutions of ResNet-18 (batch 1, pad 1).
// WebGPU samples end with the last output read back (see pageBench).
// Prints one JSON line per case and peer: bench, case, target, threads,
// kiln_ms, peer, peer_ms, ratio (peer_ms / kiln_ms: > 1 means kiln is faster),
// gflops. Each side is timed in blocks (kiln, peers, then again; for wasm each
// block in a fresh node process of its own), each sample
// at least 100 ms of calls after a long warm-up (V8 runs wasm in Liftoff
// first); the median of all samples is reported. Transfers are not timed:
// inputs stay where each library keeps them. TF.js computes convolutions in
// NHWC, kiln and onnxruntime in NCHW, each in its own layout.
//
// KILN names the kiln binary (run.sh sets it); bundles go to KILN_BENCH_DIR;
// KILN_TUNING_LOG: a tuning log the wasm bundles are built with (kiln tune --target wasm).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const [which = 'matmul', repeatArg = '5'] = process.argv.slice(2);
// KILN_BENCH_SMOKE=1: tiny cases, one sample each (CI runs every benchmark
// once this way; its timings mean nothing, its checks do)
const smoke = !!process.env.KILN_BENCH_SMOKE && process.env.KILN_BENCH_SMOKE !== '0';
const repeat = smoke ? 1 : Number(repeatArg);
let failed = false; // any mismatch, missing peer or failed case: exit 1 at the end
const kilnBin = process.env.KILN;
const work = process.env.KILN_BENCH_DIR || fs.mkdtempSync('/tmp/kiln-web-bench-');
const keepWork = !!process.env.KILN_BENCH_DIR;
if (!kilnBin || !['matmul', 'conv2d'].includes(which) || !(repeat > 0)) {
  console.error('usage: KILN=path/to/kiln web_bench.mjs matmul|conv2d [REPEAT]');
  process.exit(2);
}

const CASES = which === 'matmul'
  ? [smoke ? { name: 'matmul 67x67x67', op: 'matmul', shape: [67, 67, 67], flops: 2 * 67 ** 3 }
    : { name: 'matmul 1024x1024x1024', op: 'matmul', shape: [1024, 1024, 1024], flops: 2 * 1024 ** 3 }]
  : (smoke ? [[16, 9]] : [[64, 56], [128, 28], [256, 14], [512, 7]]).map(([c, hw]) => ({
    name: `resnet18 ${c}x${hw}x${hw}->${c} 3x3 pad1`, op: 'conv2d', attr: 'pad=1', shape: [1, c, hw, hw, c, 3, 3],
    c, hw, flops: 2 * c * c * 9 * hw * hw,
  }));

const median = (v) => {
  const s = v.slice().sort((a, b) => a - b), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const random = (n, seed) => {
  let x = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    return (x >>> 0) / 2147483648 - 1;
  });
};

// Milliseconds per call of fn (async) over `count` samples of >= 100 ms each.
async function sample(fn, count, calls) {
  const out = [];
  for (let r = 0; r < count; r++) {
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) await fn();
    out.push((performance.now() - t0) / calls);
  }
  return out;
}

async function calibrate(fn, warmup) {
  if (smoke) return 1;
  for (let i = 0; i < warmup; i++) await fn();
  const t0 = performance.now();
  await fn();
  const dt = performance.now() - t0;
  return Math.max(1, Math.ceil(100 / Math.max(dt, 1e-3)));
}

function bundle(c, targets) {
  const dir = path.join(work, `${c.op}-${c.shape.join('x')}-${targets.replace(/,/g, '-')}`) + '/';
  if (fs.existsSync(dir + 'kiln.json')) return dir; // built by an earlier process of this run
  const args = ['build', c.op, '--shape', c.shape.join(','), '--target', targets, '-o', dir];
  if (c.attr) args.push('--attr', c.attr);
  // KILN_TUNING_LOG (benchmarks/run.sh tune_web): the wasm kernels tuned in node
  if (process.env.KILN_TUNING_LOG && targets === 'wasm') args.push('--tuning-log', process.env.KILN_TUNING_LOG);
  execFileSync(kilnBin, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  return dir;
}

// An ONNX model of the case (MatMul of two inputs; Conv with its weights as an
// initializer), written with protobufjs from Debian's onnx.proto (libonnx-dev).
async function onnxModel(c, weights) {
  const protobuf = (await import('protobufjs')).default;
  const protoPath = process.env.KILN_ONNX_PROTO || '/usr/include/onnx/onnx.proto';
  const root = new protobuf.Root().loadSync(protoPath, { keepCase: true });
  const Model = root.lookupType('onnx.ModelProto');
  const vi = (name, dims) => ({ name, type: { tensor_type: { elem_type: 1, shape: { dim: dims.map((d) => ({ dim_value: d })) } } } });
  let graph;
  if (c.op === 'matmul') {
    const [m, n, k] = c.shape;
    graph = { name: 'mm', node: [{ op_type: 'MatMul', input: ['A', 'B'], output: ['C'] }],
      input: [vi('A', [m, k]), vi('B', [k, n])], output: [vi('C', [m, n])] };
  } else {
    const { c: ch, hw } = c;
    graph = { name: 'conv', node: [{ op_type: 'Conv', input: ['X', 'W'], output: ['Y'], attribute: [
      { name: 'kernel_shape', type: 7, ints: [3, 3] }, { name: 'pads', type: 7, ints: [1, 1, 1, 1] }] }],
    initializer: [{ name: 'W', dims: [ch, ch, 3, 3], data_type: 1, raw_data: new Uint8Array(weights.buffer) }],
    input: [vi('X', [1, ch, hw, hw])], output: [vi('Y', [1, ch, hw, hw])] };
  }
  const msg = Model.fromObject({ ir_version: 8, producer_name: 'kiln-bench', opset_import: [{ domain: '', version: 13 }], graph });
  return Model.encode(msg).finish();
}

// The number of products summed into one output element (the tolerance grows with it).
const terms = (c) => (c.op === 'matmul' ? c.shape[2] : c.c * 9);

// Whole outputs compared: |k - p| <= 1e-5 terms + 1e-4 |p| everywhere, else
// the case failed (a benchmark of a wrong kernel has measured nothing).
function check(c, peer, kiln, other) {
  const atol = 1e-5 * terms(c);
  let diff = 0;
  if (!kiln || !other || kiln.length !== other.length) {
    console.error(`web_bench: ${c.name}: kiln's output and ${peer}'s have different sizes`);
    failed = true;
    return NaN;
  }
  for (let k = 0; k < kiln.length; k++) {
    const d = Math.abs(kiln[k] - other[k]);
    if (!(d <= atol + 1e-4 * Math.abs(other[k]))) {
      console.error(`web_bench: ${c.name}: kiln and ${peer} differ at element ${k} of ${kiln.length}: ${kiln[k]} vs ${other[k]}`);
      failed = true;
      return NaN;
    }
    diff = Math.max(diff, d);
  }
  return diff;
}

function line(c, target, kilnMs, peer, peerMs, extra = {}) {
  console.log(JSON.stringify({
    bench: `${which}_web`, case: c.name, target, threads: 1, kiln_ms: +kilnMs.toFixed(4), peer, peer_ms: +peerMs.toFixed(4),
    ratio: +(peerMs / kilnMs).toFixed(3), gflops: +(c.flops / kilnMs / 1e6).toFixed(2),
    peer_gflops: +(c.flops / peerMs / 1e6).toFixed(2), ...extra,
  }));
}

// ---- wasm in node, one thread --------------------------------------------
// Each library runs in its own node process (`--child LIB CASE`): loaded
// together, one library's wasm engine state (V8 flags, compiled modules,
// memory) moved another's timings by up to 25% here. A child sets up its
// library, warms up, prints its samples and writes its whole output to
// WORK/out-LIB.bin. Every library pays for moving data in and out of wasm
// memory per call (TF.js reads its output out, onnxruntime copies inputs in
// and outputs out): kiln's samples do too (write inputs, run, read the
// output), and its in-place time is reported beside them.
async function wasmChild(lib, c) {
  const n = c.op === 'matmul' ? c.shape[0] * c.shape[2] : c.c * c.hw * c.hw;
  const data = [random(n, 7), random(c.op === 'matmul' ? c.shape[2] * c.shape[1] : c.c * c.c * 9, 8)];
  let run, result, inPlace = null, info = '';
  if (lib === 'kiln') {
    const dir = bundle(c, 'wasm');
    const kiln = await import(pathToFileURL(dir + 'kiln.mjs').href);
    const s = await kiln.load(dir, { backend: 'wasm' });
    const f = s.functions[0];
    const args = s.arraysFor(f.name, data);
    const out = args[args.length - 1];
    run = async () => {
      data.forEach((d, i) => args[i].write(d));
      await s.run(f.name, args);
      await out.read();
    };
    inPlace = () => s.run(f.name, args);
    result = async () => out.read();
    info = s.device;
  } else if (lib === 'tfjs') {
    const tf = await import('@tensorflow/tfjs-core');
    const wasmBackend = await import('@tensorflow/tfjs-backend-wasm');
    wasmBackend.setWasmPaths(pathToFileURL(path.join(here, 'node_modules/@tensorflow/tfjs-backend-wasm/dist/')).pathname);
    await tf.setBackend('wasm');
    await tf.ready();
    let op;
    if (c.op === 'matmul') {
      const [m, nn, k] = c.shape;
      const a = tf.tensor2d(data[0], [m, k]), b = tf.tensor2d(data[1], [k, nn]);
      op = () => tf.matMul(a, b);
    } else {
      const { c: ch, hw } = c;
      const x = tf.transpose(tf.tensor4d(data[0], [1, ch, hw, hw]), [0, 2, 3, 1]);
      const w = tf.transpose(tf.tensor4d(data[1], [ch, ch, 3, 3]), [2, 3, 1, 0]);
      op = () => tf.conv2d(x, w, 1, 'same');
    }
    // not tf.tidy(() => op().dataSync()): tidy walks whatever the callback
    // returns looking for tensors, and walking a 1M-element Float32Array took
    // ten times longer than the matmul itself
    run = () => {
      const out = op();
      out.dataSync();
      out.dispose();
    };
    result = async () => {
      const out = op(), nchw = c.op === 'matmul' ? out : tf.transpose(out, [0, 3, 1, 2]);
      const v = nchw.dataSync();
      out.dispose();
      nchw.dispose();
      return v;
    };
    info = `simd ${await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')}`;
  } else {
    const ort = (await import('onnxruntime-web')).default ?? (await import('onnxruntime-web'));
    ort.env.wasm.numThreads = 1;
    let session, feeds;
    if (c.op === 'matmul') {
      const [m, nn, k] = c.shape;
      session = await ort.InferenceSession.create(await onnxModel(c), { executionProviders: ['wasm'] });
      feeds = { A: new ort.Tensor('float32', data[0], [m, k]), B: new ort.Tensor('float32', data[1], [k, nn]) };
    } else {
      const { c: ch, hw } = c;
      session = await ort.InferenceSession.create(await onnxModel(c, data[1]), { executionProviders: ['wasm'] });
      feeds = { X: new ort.Tensor('float32', data[0], [1, ch, hw, hw]) };
    }
    run = () => session.run(feeds);
    result = async () => (await session.run(feeds))[c.op === 'matmul' ? 'C' : 'Y'].data;
    info = `onnxruntime-web ${ort.env.versions?.web ?? ''}`;
  }
  const calls = await calibrate(run, 10);
  const samples = await sample(run, repeat, calls);
  const inPlaceSamples = inPlace ? await sample(inPlace, repeat, await calibrate(inPlace, 3)) : null;
  const v = await result();
  fs.writeFileSync(path.join(work, `out-${lib}.bin`), new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  // a pipe takes writes asynchronously: wait, or exit() cuts the line at 64 KiB
  await new Promise((done) => process.stdout.write(JSON.stringify({ samples, inPlaceSamples, info }) + '\n', done));
}

async function wasmInNode() {
  const self = fileURLToPath(import.meta.url);
  const child = (lib, i) => JSON.parse(execFileSync(process.execPath, [self, which, String(repeat), '--child', lib, String(i)],
    { env: { ...process.env, KILN_BENCH_DIR: work }, stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 26 }).toString().trim().split('\n').pop());
  for (let i = 0; i < CASES.length; i++) {
    const c = CASES[i];
    const samples = { kiln: [], tfjs: [], ort: [] }, last = {}, outs = {}, inPlace = [];
    for (let block = 0; block < 2; block++)
      for (const lib of Object.keys(samples)) {
        try {
          last[lib] = child(lib, i);
        } catch (e) {
          console.error(`web_bench: ${c.name}: the ${lib} process failed: ${e.message.split('\n')[0]}`);
          process.exit(1);
        }
        samples[lib].push(...last[lib].samples);
        if (last[lib].inPlaceSamples) inPlace.push(...last[lib].inPlaceSamples);
        const b = fs.readFileSync(path.join(work, `out-${lib}.bin`));
        outs[lib] = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
      }
    const km = median(samples.kiln), extra = { kiln_variant: last.kiln.info, kiln_in_place_ms: +median(inPlace).toFixed(4),
      timed: 'every library moves its inputs in and its output out of wasm memory per call' };
    const dt = check(c, 'TF.js', outs.kiln, outs.tfjs), dort = check(c, 'onnxruntime-web', outs.kiln, outs.ort);
    line(c, 'wasm', km, 'tfjs-backend-wasm 4.22 (node, 1 thread)', median(samples.tfjs),
      { ...extra, peer_info: last.tfjs.info, node: process.version, max_abs_diff: +dt.toExponential(2) });
    line(c, 'wasm', km, `${last.ort.info} wasm EP (node, 1 thread)`, median(samples.ort),
      { ...extra, max_abs_diff: +dort.toExponential(2) });
  }
}

// ---- WebGPU in headless Chromium ------------------------------------------
// The page loads kiln's bundle and TF.js (UMD builds) side by side.
async function pageBench({ bundleUrl, peersUrl, c, repeat, smoke }) {
  const load = (src) => new Promise((ok, fail) => {
    const el = document.createElement('script');
    el.src = src;
    el.onload = ok;
    el.onerror = () => fail(new Error(`cannot load ${src}`));
    document.head.appendChild(el);
  });
  await load(`${peersUrl}@tensorflow/tfjs-core/dist/tf-core.min.js`);
  await load(`${peersUrl}@tensorflow/tfjs-backend-webgpu/dist/tf-backend-webgpu.min.js`);
  const tf = globalThis.tf;
  await tf.setBackend('webgpu');
  await tf.ready();
  const kiln = await import(`${bundleUrl}kiln.mjs`);
  const s = await kiln.load(bundleUrl, { backend: 'webgpu' });
  const f = s.functions[0];
  const rnd = (n) => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
  const data = f.args.filter((a) => !a.output).map((a) => rnd(a.shape.reduce((x, y) => x * y, 1)));
  const args = s.arraysFor(f.name, data);
  let tfOp;
  if (c.op === 'matmul') {
    const [m, n, k] = c.shape;
    const a = tf.tensor2d(data[0], [m, k]), b = tf.tensor2d(data[1], [k, n]);
    tfOp = () => tf.matMul(a, b);
  } else {
    const { c: ch, hw } = c;
    const x = tf.transpose(tf.tensor4d(data[0], [1, ch, hw, hw]), [0, 2, 3, 1]);
    const w = tf.transpose(tf.tensor4d(data[1], [ch, ch, 3, 3]), [2, 3, 1, 0]);
    tfOp = () => tf.conv2d(x, w, 1, 'same');
  }
  // k calls, then the last output read back: both libraries queue GPU work
  // and return at once, and a readback is the one completion both expose
  // alike (TF.js's own queue flushing is internal); k is large enough that
  // the one readback is a small part of a sample
  const tfBatch = async (k) => {
    const t0 = performance.now();
    let out = null;
    for (let i = 0; i < k; i++) {
      out?.dispose();
      out = tfOp();
    }
    await out.data();
    out.dispose();
    return (performance.now() - t0) / k;
  };
  const result = args[args.length - 1];
  const kilnBatch = async (k) => {
    const t0 = performance.now();
    for (let i = 0; i < k; i++) s.call(f.name, args);
    await result.read();
    return (performance.now() - t0) / k;
  };
  const calls = async (fn) => {
    for (let i = 0; i < 3; i++) await fn(1);
    return Math.max(1, Math.min(200, Math.ceil(100 / Math.max(await fn(1), 1e-3))));
  };
  // whole outputs compared before timing (TF.js's conv is NHWC: transposed back)
  s.call(f.name, args);
  const kOut = await result.read();
  const tOutT = tfOp(), tOutN = c.op === 'matmul' ? tOutT : tf.transpose(tOutT, [0, 3, 1, 2]);
  const tOut = await tOutN.data();
  tOutT.dispose();
  if (tOutN !== tOutT) tOutN.dispose();
  const atol = 1e-5 * (c.op === 'matmul' ? c.shape[2] : c.c * 9);
  let maxDiff = 0, mismatch = null;
  for (let k = 0; k < kOut.length && !mismatch; k++) {
    const d = Math.abs(kOut[k] - tOut[k]);
    if (!(d <= atol + 1e-4 * Math.abs(tOut[k]))) mismatch = `element ${k} of ${kOut.length}: ${kOut[k]} vs ${tOut[k]}`;
    maxDiff = Math.max(maxDiff, d);
  }
  if (kOut.length !== tOut.length) mismatch = `sizes ${kOut.length} and ${tOut.length}`;
  if (smoke) { // the check is the point
    args.forEach((a) => a.dispose());
    s.dispose();
    return { kilnMs: NaN, tfMs: NaN, device: s.device, maxDiff, mismatch };
  }
  const kc = await calls(kilnBatch), tc = await calls(tfBatch);
  const ks = [], ts = [];
  for (let block = 0; block < 2; block++) {
    for (let r = 0; r < repeat; r++) ks.push(await kilnBatch(kc));
    for (let r = 0; r < repeat; r++) ts.push(await tfBatch(tc));
  }
  const med = (v) => {
    const q = v.slice().sort((a, b) => a - b), m = q.length >> 1;
    return q.length % 2 ? q[m] : (q[m - 1] + q[m]) / 2;
  };
  const device = s.device;
  args.forEach((a) => a.dispose());
  s.dispose();
  return { kilnMs: med(ks), tfMs: med(ts), device, maxDiff, mismatch };
}

async function webgpuInChromium() {
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch {
    console.error('web_bench: npm playwright-core is missing (npm install at the repository root)');
    failed = true;
    return;
  }
  const { serve } = await import('../../web/serve.mjs');
  // one folder served: the bundles (built in it) and copies of the peers' two
  // files (kiln serve's server follows no links out of the folder it serves)
  const site = work;
  for (const f of ['@tensorflow/tfjs-core/dist/tf-core.min.js', '@tensorflow/tfjs-backend-webgpu/dist/tf-backend-webgpu.min.js']) {
    fs.mkdirSync(path.dirname(path.join(site, 'peers', f)), { recursive: true });
    fs.copyFileSync(path.join(here, 'node_modules', f), path.join(site, 'peers', f));
  }
  fs.writeFileSync(path.join(site, 'index.html'), '<!doctype html><meta charset="utf-8"><title>kiln web bench</title>\n');
  const server = await serve(site, { port: 0 });
  const origin = `http://127.0.0.1:${server.address().port}`;
  // a fresh browser per case: SwiftShader's seconds-long dispatches can leave
  // Chromium's GPU process unusable for the next page
  const launch = (profile) => chromium.launchPersistentContext(profile, {
    headless: true, executablePath: process.env.KILN_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-first-run', '--disable-quic', '--enable-unsafe-webgpu', ...(process.env.KILN_CHROMIUM_ARGS || '').split(' ').filter(Boolean)],
  });
  try {
    for (const c of CASES) {
      const dir = bundle(c, 'webgpu,webgpu-cpu'); // the JS API picks the module for this adapter
      const name = path.basename(dir); // bundle() builds it inside the served folder
      const profile = fs.mkdtempSync('/tmp/kiln-bench-chromium-');
      const ctx = await launch(profile);
      try {
        const page = await ctx.newPage();
        await page.goto(`${origin}/index.html`);
        const r = await page.evaluate(pageBench, { bundleUrl: `${origin}/${name}/`, peersUrl: `${origin}/peers/`, c, repeat, smoke });
        if (r.mismatch) {
          console.error(`web_bench: ${c.name} on webgpu: kiln and TF.js differ at ${r.mismatch}`);
          failed = true;
        }
        line(c, 'webgpu', r.kilnMs, 'tfjs-backend-webgpu 4.22 (same page)', r.tfMs,
          { adapter: r.device, browser: 'chromium ' + ctx.browser()?.version?.(), max_abs_diff: +r.maxDiff.toExponential(2) });
      } catch (e) {
        console.error(`web_bench: ${c.name} on webgpu: ${e.message.split('\n')[0]}`);
        failed = true;
      } finally {
        await ctx.close();
        fs.rmSync(profile, { recursive: true, force: true });
      }
    }
  } finally {
    server.close();
  }
}

const childAt = process.argv.indexOf('--child');
if (childAt > 0) {
  await wasmChild(process.argv[childAt + 1], CASES[Number(process.argv[childAt + 2])]);
  process.exit(0);
}
const only = process.env.KILN_WEB_BENCH || 'wasm,webgpu';
if (only.includes('wasm')) await wasmInNode();
if (only.includes('webgpu')) await webgpuInChromium();
if (!keepWork) fs.rmSync(work, { recursive: true, force: true });
process.exit(failed ? 1 : 0);
