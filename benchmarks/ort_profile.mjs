// benchmarks/ort_profile.mjs MODEL.onnx SHAPE [RUNS] [THREADS] — onnxruntime-node's time per
// node of a whole model (its profiler, enableProfiling), the median over RUNS runs (default
// 30) of one random float32 input of SHAPE (like 1,3,224,224), THREADS intra-op threads
// (default 1). One JSON line per node in execution order, then one with the sum: the peer's
// side of a per-layer comparison (kiln's: `kiln bench M.so --print-graph` times each kernel
// inside whole runs and alone).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);
const ort = require('onnxruntime-node');
const [model, shape, runsArg, threadsArg] = process.argv.slice(2);
if (!model || !shape) {
  console.error('usage: ort_profile.mjs MODEL.onnx SHAPE [RUNS] [THREADS]');
  process.exit(2);
}
const runs = Number(runsArg ?? 30), threads = Number(threadsArg ?? 1);
const dims = shape.split(',').map(Number);
if (!(runs >= 1) || !(threads >= 1) || dims.some((d) => !(d >= 1)))
  throw new Error('ort_profile: RUNS and THREADS are positive, SHAPE positive integers joined by commas');
const dir = mkdtempSync(path.join(tmpdir(), 'ort-profile-'));
try {
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all', enableProfiling: true, profileFilePrefix: path.join(dir, 'p'),
  });
  const data = Float32Array.from({ length: dims.reduce((a, b) => a * b) }, () => Math.random() * 2 - 1);
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, dims) };
  for (let i = 0; i < runs; i++) await session.run(feeds);
  session.endProfiling();
  await session.release?.();
  const file = readdirSync(dir).find((f) => f.endsWith('.json'));
  if (!file) throw new Error('ort_profile: onnxruntime wrote no profile');
  const byNode = new Map();
  for (const e of JSON.parse(readFileSync(path.join(dir, file), 'utf8')))
    if (e.cat === 'Node' && e.name.endsWith('_kernel_time')) {
      const k = e.name.slice(0, -'_kernel_time'.length);
      if (!byNode.has(k)) byNode.set(k, { op: e.args?.op_name ?? '?', us: [] });
      byNode.get(k).us.push(e.dur);
    }
  let sum = 0;
  for (const [node, { op, us }] of byNode) {
    us.sort((a, b) => a - b);
    const ms = us[us.length >> 1] / 1000;
    sum += ms;
    console.log(JSON.stringify({ node, op, ms: +ms.toFixed(4), samples: us.length }));
  }
  console.log(JSON.stringify({ model: path.basename(model), threads, runs, nodes: byNode.size, sum_ms: +sum.toFixed(3) }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
