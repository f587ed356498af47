// webgpu_ab.mjs — matmul bundles (kiln build matmul --shape N,N,N --target webgpu -o DIR/) timed
// in turn in one node process on Dawn: two builds of kiln, or two schedules, A/B (on these VMs
// only runs taken in turn compare). Each bundle is first checked on 512 sampled outputs against
// float64 dot products; a sample is a block of calls ending in one readback (about 1.5 s);
// blocks of each bundle alternate REPEAT times; medians. KILN_DAWN_BACKEND picks Dawn's backend
// (vulkan on a GPU machine, GL ES through EGL by default); `webgpu` is require()d from here or
// NODE_PATH. One JSON line per bundle.
//
//   node benchmarks/web/webgpu_ab.mjs REPEAT DIR_A/ DIR_B/ ...
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const repeat = Number(process.argv[2]), dirs = process.argv.slice(3);
if (!(repeat >= 1) || !dirs.length) {
  console.error('usage: node webgpu_ab.mjs REPEAT BUNDLE_DIR...  (matmul bundles from kiln build --target webgpu)');
  process.exit(2);
}
const pkg = createRequire(import.meta.url)('webgpu');
let gpu = null; // one Dawn instance for every bundle
const runs = [];
let A, B, m, n, k;
for (const dir of dirs) {
  // each bundle's own JS (the query keeps two builds' modules apart)
  const kiln = await import(`${pathToFileURL(path.resolve(dir, 'kiln.mjs')).href}?${runs.length}`);
  gpu ??= kiln.dawnGpu(pkg);
  const s = await kiln.load(pathToFileURL(path.resolve(dir) + '/').href, { backend: 'webgpu', ...gpu });
  const f = s.functions[0];
  if (A && (f.args[0].shape[0] !== m || f.args[0].shape[1] !== k || f.args[1].shape[1] !== n)) {
    console.error(`webgpu_ab: ${dir} is not a ${m}x${n}x${k} matmul like the first`);
    process.exit(2);
  }
  [m, k] = f.args[0].shape;
  n = f.args[1].shape[1];
  if (!A) {
    const random = (len) => Float32Array.from({ length: len }, () => Math.random() * 2 - 1);
    A = random(m * k);
    B = random(k * n);
  }
  const args = s.arraysFor(f.name, [A, B]);
  await s.run(f.name, args);
  const out = await args[2].read();
  let bad = 0, worst = 0;
  for (let t = 0; t < 512; t++) {
    const i = Math.floor(Math.random() * m), j = Math.floor(Math.random() * n);
    let ref = 0;
    for (let q = 0; q < k; q++) ref += A[i * k + q] * B[q * n + j];
    const d = Math.abs(out[i * n + j] - ref);
    worst = Math.max(worst, d);
    if (!(d <= 1e-5 * k)) bad++;
  }
  if (bad) {
    console.error(`webgpu_ab: ${dir}: ${bad} of 512 sampled outputs wrong (worst |d| ${worst})`);
    process.exit(1);
  }
  runs.push({ dir, s, f, args, worst, ms: [] });
}

const block = async (x, calls) => {
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) x.s.call(x.f.name, x.args);
  await x.args[2].read();
  return (performance.now() - t0) / calls;
};
for (const x of runs) {
  for (let i = 0; i < 3; i++) await block(x, 1);
  x.calls = Math.max(1, Math.min(200, Math.ceil(1500 / await block(x, 1))));
}
for (let r = 0; r < repeat; r++)
  for (const x of runs) x.ms.push(await block(x, x.calls));
const median = (v) => {
  const q = v.slice().sort((a, b) => a - b), h = q.length >> 1;
  return q.length % 2 ? q[h] : (q[h - 1] + q[h]) / 2;
};
for (const x of runs)
  console.log(JSON.stringify({
    bench: 'matmul_webgpu_ab', bundle: x.dir, device: x.s.device, case: `matmul ${m}x${n}x${k}`,
    ms: +median(x.ms).toFixed(4), tflops: +(2 * m * n * k / median(x.ms) / 1e9).toFixed(2),
    min_ms: +Math.min(...x.ms).toFixed(4), worst_abs_diff: x.worst,
  }));
