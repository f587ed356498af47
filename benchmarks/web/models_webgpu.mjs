// models_webgpu.mjs DIR... — whole models through WebGPU in node (Dawn, npm `webgpu`;
// KILN_DAWN_BACKEND=vulkan on a GPU machine): each DIR a model bundle (kiln compile
// M.onnx --target web -o DIR/; the webgpu module and its weights are all it needs)
// holding in.bin (the float32 input) and out.bin (onnxruntime's output for it, as
// benchmarks/run.sh models_gpu writes them). Compares with out.bin and times run()
// with the input's upload and the output's readback: median of 51 after 20
// warm-ups; time() (launches_ms: the launches alone, input resident); and
// record_ms, the part of that the CPU spends recording and submitting them.
// One JSON line per model; exit 1 when an output differs by more than 1e-4 of
// its scale. For the GPU machine (no node there), README's GPU section says
// what to carry.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
const require = createRequire(import.meta.url);
const pkg = require('webgpu');
const dirs = process.argv.slice(2);
if (!dirs.length) {
  console.error('usage: models_webgpu.mjs DIR...');
  process.exit(2);
}
let gpu = null, bad = 0;
for (const dir of dirs) {
  const k = await import(pathToFileURL(`${dir}/kiln.mjs`).href);
  gpu ??= k.dawnGpu(pkg); // one Dawn instance for every model
  const m = await k.loadModel(pathToFileURL(dir).href + '/', { backend: 'webgpu', ...gpu });
  const buf = fs.readFileSync(`${dir}/in.bin`), wb = fs.readFileSync(`${dir}/out.bin`);
  const x = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  const want = new Float32Array(wb.buffer.slice(wb.byteOffset, wb.byteOffset + wb.byteLength));
  const feeds = { [m.inputs[0].name]: x };
  const got = Object.values(await m.run(feeds))[0];
  let d = got.length === want.length ? 0 : Infinity, s = 0;
  for (let i = 0; i < want.length && d !== Infinity; i++) {
    const e = Math.abs(want[i] - got[i]);
    d = Number.isNaN(e) ? Infinity : Math.max(d, e);
    s = Math.max(s, Math.abs(want[i]));
  }
  const rel = s ? d / s : d;
  if (!(rel <= 1e-4)) bad++;
  for (let i = 0; i < 20; i++) await m.run(feeds);
  const t = [];
  for (let i = 0; i < 51; i++) {
    const t0 = performance.now();
    await m.run(feeds);
    t.push(performance.now() - t0);
  }
  t.sort((a, b) => a - b);
  // and the launches alone, the input already on the device and nothing read
  // back: what PyTorch eager's CUDA-event time covers (benchmarks/torch_models.py)
  const launches = await m.time({ warmup: 5, repeat: 51 });
  // and of that, the CPU's part: launch() returns once every launch is
  // recorded and submitted; the GPU may still be running the last ones
  const rec = [];
  for (let i = 0; i < 51; i++) {
    const t0 = performance.now();
    m.launch();
    rec.push(performance.now() - t0);
    await m.session.gpu.device.queue.onSubmittedWorkDone();
  }
  rec.sort((a, b) => a - b);
  console.log(JSON.stringify({ case: path.basename(path.resolve(dir)), backend: m.backend, device: m.device,
    ms: +t[25].toFixed(3), min_ms: +t[0].toFixed(3), launches_ms: +launches.medianMs.toFixed(3),
    record_ms: +rec[25].toFixed(3), max_diff_rel: rel, n: got.length }));
  m.dispose();
}
process.exit(bad ? 1 : 0);
