// models_web.mjs KILN DIR [REPEAT] — whole models on wasm in node, one
// thread: kiln's model bundle (loadModel, backend wasm) against
// onnxruntime-web's wasm execution provider, in the same process on the same
// input, outputs compared. DIR holds the .onnx files (scripts/export_models.py).
// One JSON line per model: both medians and ratio = peer / kiln (> 1: kiln faster),
// the median of the ratios of runs taken in turn.
// V8 runs wasm in Liftoff first: both warm up 10 runs before any sample.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const [kilnExe, dir, rep] = process.argv.slice(2);
if (!kilnExe || !dir) {
  console.error('usage: models_web.mjs KILN DIR [REPEAT]');
  process.exit(2);
}
const repeat = Number(rep ?? 10);
const here = path.dirname(fileURLToPath(import.meta.url));
const ort = (await import('onnxruntime-web')).default ?? (await import('onnxruntime-web'));
ort.env.wasm.numThreads = 1;
const models = [
  ['resnet18', [1, 3, 224, 224]], ['mobilenet_v2', [1, 3, 224, 224]], ['squeezenet1_1', [1, 3, 224, 224]],
  ['transformer', [1, 128, 256]],
];
const median = (v) => {
  const s = v.slice().sort((a, b) => a - b), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
// kiln and the peer in turn: a shared VM's speed drifts by 20% within a minute,
// and timed one block after the other the two were not measured at the same
// speed. Each turn runs each twice and times the second run, so neither is timed
// with the caches the other left. Medians of each, and of the turns' ratios.
const timeBoth = async (fk, fo) => {
  for (let i = 0; i < 10; i++) await fk(), await fo();
  const tk = [], to = [], r = [];
  for (let i = 0; i < repeat; i++) {
    await fk();
    let t0 = performance.now();
    await fk();
    const k = performance.now() - t0;
    await fo();
    t0 = performance.now();
    await fo();
    const o = performance.now() - t0;
    tk.push(k), to.push(o), r.push(o / k);
  }
  return [median(tk), median(to), median(r)];
};
let bad = 0;
for (const [name, shape] of models) {
  const onnx = path.join(dir, `${name}.onnx`);
  if (!fs.existsSync(onnx)) continue;
  const bundle = fs.mkdtempSync('/tmp/kiln-models-web-');
  execFileSync(kilnExe, ['compile', onnx, '--target', 'web', '-o', bundle], { stdio: 'ignore' });
  const kiln = await import(pathToFileURL(path.join(bundle, 'kiln.mjs')).href);
  const model = await kiln.loadModel(pathToFileURL(bundle).href + '/', { backend: 'wasm' });
  const n = shape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(n).map((_, i) => Math.sin(i * 0.37));
  const session = await ort.InferenceSession.create(onnx, { executionProviders: ['wasm'] });
  const feeds = { input: new ort.Tensor('float32', x, shape) };
  const want = (await session.run(feeds)).output.data, got = (await model.run({ input: x })).output;
  let d = 0, s = 0;
  for (let i = 0; i < want.length; i++) {
    d = Math.max(d, Math.abs(want[i] - got[i]));
    s = Math.max(s, Math.abs(want[i]));
  }
  const rel = s ? d / s : d;
  if (!(rel <= 1e-4)) bad++;
  const [km, om, ratio] = await timeBoth(() => model.run({ input: x }), () => session.run(feeds));
  console.log(JSON.stringify({
    bench: 'models_web', case: name, target: 'wasm', device: model.device, threads: 1, kiln_ms: +km.toFixed(2),
    peer: `onnxruntime-web ${ort.env.versions?.web ?? ''} wasm EP (node, 1 thread)`, peer_ms: +om.toFixed(2),
    ratio: +ratio.toFixed(3), max_diff_rel: +rel.toExponential(2),
  }));
  model.dispose();
  fs.rmSync(bundle, { recursive: true, force: true });
}
void here;
process.exit(bad ? 1 : 0);
