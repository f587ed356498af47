// webgpu_node.mjs — kiln's WebGPU matmul against TF.js's webgpu backend on
// the same Dawn (npm `webgpu`) in one node process: for GPU machines with no
// browser, such as the one `device` lends (Dawn on NVIDIA's Vulkan driver).
//
//   kiln build matmul --shape N,N,N --target webgpu -o DIR/
//   node benchmarks/web/webgpu_node.mjs DIR/ [REPEAT]
//
// TF.js (tfjs-core, tfjs-backend-webgpu) and `webgpu` are require()d from
// here, the repository, or NODE_PATH; KILN_DAWN_BACKEND picks Dawn's backend
// (default vulkan). A sample is k calls and then one readback of the output,
// the one completion both libraries expose alike; k makes a sample last about
// 2.5 s, so that the readback (64 MiB at 4096³) is a small part of it.
// Samples alternate in blocks (kiln, TF.js, again); medians. One JSON line.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = process.argv[2], repeat = Number(process.argv[3] || 5);
if (!dir || !fs.existsSync(path.join(dir, 'kiln.json'))) {
  console.error('usage: node webgpu_node.mjs BUNDLE_DIR [REPEAT]  (a matmul bundle from kiln build --target webgpu)');
  process.exit(2);
}
const require = createRequire(import.meta.url);
const webgpu = require('webgpu');
Object.assign(globalThis, webgpu.globals);
const gpu = webgpu.create([`backend=${process.env.KILN_DAWN_BACKEND || 'vulkan'}`]);
globalThis.navigator = { gpu }; // where TF.js looks for WebGPU
if (!await gpu.requestAdapter()) { // TF.js asks for a core adapter only
  console.error('webgpu_node: Dawn offers no core WebGPU adapter here (only compatibility mode, as on Mesa llvmpipe), so TF.js cannot run');
  process.exit(1);
}
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-webgpu');
await tf.setBackend('webgpu');
await tf.ready();

const kiln = await import(pathToFileURL(path.join(dir, 'kiln.mjs')).href);
const s = await kiln.load(dir, { backend: 'webgpu', gpu });
const f = s.functions[0];
const [m, k] = f.args[0].shape, n = f.args[1].shape[1];
const random = (len) => Float32Array.from({ length: len }, () => Math.random() * 2 - 1);
const A = random(m * k), B = random(k * n);
const args = s.arraysFor(f.name, [A, B]);
const a = tf.tensor2d(A, [m, k]), b = tf.tensor2d(B, [k, n]);
const out = args[2];

const kilnBatch = async (calls) => {
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) s.call(f.name, args);
  await out.read();
  return (performance.now() - t0) / calls;
};
const tfBatch = async (calls) => {
  const t0 = performance.now();
  let o = null;
  for (let i = 0; i < calls; i++) {
    o?.dispose();
    o = tf.matMul(a, b);
  }
  await o.data();
  o.dispose();
  return (performance.now() - t0) / calls;
};

// the two agree on every element (|d| <= 1e-5 k + 1e-4 |theirs|), or the run fails
await s.run(f.name, args);
const mine = await out.read(), theirs = await tf.matMul(a, b).data();
let diff = 0;
for (let i = 0; i < mine.length; i++) {
  const d = Math.abs(mine[i] - theirs[i]);
  if (!(d <= 1e-5 * k + 1e-4 * Math.abs(theirs[i]))) {
    console.error(`webgpu_node: kiln and TF.js differ at element ${i} of ${mine.length}: ${mine[i]} vs ${theirs[i]}`);
    process.exit(1);
  }
  diff = Math.max(diff, d / (Math.abs(theirs[i]) + 1));
}
if (mine.length !== theirs.length) {
  console.error(`webgpu_node: kiln's output has ${mine.length} elements, TF.js's ${theirs.length}`);
  process.exit(1);
}

const callsFor = async (batch) => {
  for (let i = 0; i < 3; i++) await batch(1);
  return Math.max(1, Math.min(200, Math.ceil(2500 / await batch(1))));
};
const kc = await callsFor(kilnBatch), tc = await callsFor(tfBatch);
const ks = [], ts = [];
for (let block = 0; block < 2; block++) {
  for (let r = 0; r < repeat; r++) ks.push(await kilnBatch(kc));
  for (let r = 0; r < repeat; r++) ts.push(await tfBatch(tc));
}
const median = (v) => {
  const q = v.slice().sort((x, y) => x - y), h = q.length >> 1;
  return q.length % 2 ? q[h] : (q[h - 1] + q[h]) / 2;
};
const km = median(ks), tm = median(ts), flops = 2 * m * n * k;
console.log(JSON.stringify({
  bench: 'matmul_webgpu_node', case: `matmul ${m}x${n}x${k}`, target: 'webgpu', device: s.device,
  kiln_ms: +km.toFixed(4), peer: 'tfjs-backend-webgpu 4.22 (same process, same Dawn)', peer_ms: +tm.toFixed(4),
  ratio: +(tm / km).toFixed(3), gflops: +(flops / km / 1e6).toFixed(1), peer_gflops: +(flops / tm / 1e6).toFixed(1),
  max_rel_diff_vs_tfjs: +diff.toExponential(2), calls_per_sample: [kc, tc],
}));
args.forEach((x) => x.dispose());
s.dispose();
process.exit(0); // Dawn's instance keeps node alive otherwise
