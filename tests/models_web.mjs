#!/usr/bin/env node
// models_web.mjs KILN — whole models through the JS API's loadModel, in node
// (wasm, WebGPU on Dawn) and in headless Chromium (WebGPU on SwiftShader,
// WebGL2, wasm), against onnxruntime-node on the same inputs.
//
// Models: a small perceptron, SqueezeNet 1.1 and the 2-layer transformer,
// exported by scripts/export_models.py (Debian's torch), each compiled with
// `kiln compile M.onnx --target web -o DIR/`. Every backend runs two different
// inputs (an output left from the first run cannot pass the second) and must
// be within 1e-4 of the output's scale; the backend that ran is checked
// against the one asked for; the API's refusals are checked by message.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const kilnExe = process.argv[2];
if (!kilnExe) {
  console.error('usage: models_web.mjs KILN');
  process.exit(2);
}
const here = path.dirname(fileURLToPath(import.meta.url));
const src = path.resolve(here, '..');
const require = createRequire(path.join(src, 'package.json'));
const ort = require('onnxruntime-node');
const root = fs.mkdtempSync('/tmp/kiln-models-web-');
let failures = 0;
const fail = (msg) => {
  console.log(`FAIL: ${msg}`);
  failures++;
};

const models = [
  { name: 'mlp', shape: [1, 64] },
  { name: 'squeezenet1_1', shape: [1, 3, 224, 224] },
  { name: 'transformer', shape: [1, 128, 256] },
];
try {
  execFileSync('/usr/bin/python3', [path.join(src, 'scripts/export_models.py'), root, ...models.map((m) => m.name)],
    { stdio: ['ignore', 'ignore', 'pipe'] });
} catch (e) {
  console.error(`models_web: the export failed (apt install python3-torch python3-torchvision): ${e.stderr}`);
  process.exit(1);
}

const inputOf = (m, k) => {
  const n = m.shape.reduce((a, b) => a * b, 1);
  return new Float32Array(n).map((_, i) => Math.sin(i * 0.37 + k) * (k ? 0.5 : 1));
};
const scaleDiff = (got, want) => {
  let d = 0, s = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]);
    d = Number.isNaN(e) ? Infinity : Math.max(d, e);
    s = Math.max(s, Math.abs(want[i]));
  }
  return s ? d / s : d;
};

for (const m of models) {
  m.dir = path.join(root, m.name);
  execFileSync(kilnExe, ['compile', path.join(root, `${m.name}.onnx`), '--target', 'web', '-o', m.dir], { stdio: 'ignore' });
  const s = await ort.InferenceSession.create(path.join(root, `${m.name}.onnx`));
  m.inputs = [inputOf(m, 0), inputOf(m, 1)];
  m.refs = [];
  for (const x of m.inputs) m.refs.push(Array.from((await s.run({ input: new ort.Tensor('float32', x, m.shape) })).output.data));
}

// One model on one backend, self-contained (Chromium runs it from its source text).
async function runModel({ base, backend, inputs, opts }) {
  try {
    const kiln = await import(base + 'kiln.mjs');
    const model = await kiln.loadModel(base, { ...opts, backend });
    const outs = [];
    for (const x of inputs) {
      const { output } = await model.run({ input: Float32Array.from(x) });
      outs.push(Array.from(output));
    }
    const r = { backend: model.backend, device: model.device, outs };
    model.dispose();
    return r;
  } catch (e) {
    return { error: String(e && e.message || e) };
  }
}

function check(where, m, backend, r) {
  if (r.error) return fail(`${m.name} on ${where} ${backend}: ${r.error}`);
  if (r.backend !== backend) return fail(`${m.name} on ${where}: asked for ${backend}, ran on ${r.backend}`);
  for (let k = 0; k < 2; k++) {
    const rel = scaleDiff(r.outs[k], m.refs[k]);
    if (!(rel <= 1e-4)) fail(`${m.name} on ${where} ${backend}, input ${k}: differs from onnxruntime by ${rel} of the scale`);
    else console.log(`ok: ${m.name} on ${where} ${backend} (${r.device}), input ${k}: ${rel.toExponential(2)}`);
  }
}

// node: wasm and WebGPU (Dawn from this repository's node_modules)
const kiln = await import('../web/kiln.mjs');
const gpuOpts = kiln.dawnGpu(require('webgpu'));
for (const m of models)
  for (const backend of ['wasm', 'webgpu'])
    check('node', m, backend, await runModel({ base: pathToFileURL(m.dir).href + '/', backend, inputs: m.inputs, opts: gpuOpts }));

// the API's refusals
{
  const mlp = models[0], base = pathToFileURL(mlp.dir).href + '/';
  const model = await kiln.loadModel(base, { backend: 'wasm' });
  const refused = async (what, fn, needle) => {
    try {
      await fn();
      fail(`${what}: accepted`);
    } catch (e) {
      if (!String(e.message).includes(needle)) fail(`${what}: '${e.message}' does not say '${needle}'`);
      else console.log(`ok: ${what} refused`);
    }
  };
  // profile(): each kernel of the plan once, in order, each timed
  model.feed({ input: mlp.inputs[0] });
  const prof = model.profile({ repeat: 3 });
  if (!prof.length || new Set(prof.map((p) => p.step)).size !== prof.length ||
      !prof.every((p) => /^k\d+_/.test(p.step) && Number.isFinite(p.ms) && p.ms >= 0))
    fail(`profile: ${JSON.stringify(prof)}`);
  else console.log(`ok: profile times ${prof.length} kernels (${prof.map((p) => `${p.step} ${p.ms.toFixed(3)} ms`).join(', ')})`);
  await refused('profile with repeat 0', async () => model.profile({ repeat: 0 }), 'from 1 to 100000');
  const onGpu = await kiln.loadModel(base, { ...gpuOpts, backend: 'webgpu' });
  await refused('profile on webgpu', async () => onGpu.profile(), 'steps of the wasm backend');
  // WebGPU: a run's steps (prof.length of them, each a launch at least) go to
  // the queue as one command buffer, or one per step when submitEvery is 1;
  // the outputs are wasm's either way
  const q = onGpu.session.gpu.device.queue, submit = q.submit.bind(q);
  const wasmOut = await kiln.loadModel(base, { backend: 'wasm' }).then(async (w) => {
    const out = await w.run({ input: mlp.inputs[0] });
    w.dispose();
    return out;
  });
  for (const every of [16, 1]) {
    onGpu.session.submitEvery = every;
    let submits = 0;
    q.submit = (buffers) => (submits++, submit(buffers));
    onGpu.feed({ input: mlp.inputs[0] });
    onGpu.launch();
    await q.onSubmittedWorkDone();
    q.submit = submit;
    const out = await onGpu.run({ input: mlp.inputs[0] });
    const same = Object.keys(wasmOut).every((k) => scaleDiff(out[k], wasmOut[k]) <= 1e-5);
    const want = every === 1 ? prof.length : 1;
    if (prof.length < 2 || submits !== want || !same)
      fail(`webgpu, submitEvery ${every}: ${prof.length} steps made ${submits} submits (want ${want}); outputs as wasm's: ${same}`);
    else console.log(`ok: webgpu, submitEvery ${every}: a run's ${prof.length} steps in ${submits} submits`);
  }
  onGpu.dispose();
  await refused('a short input', () => model.run({ input: new Float32Array(3) }), "input 'input' has shape [1,64]");
  await refused('an unknown input', () => model.run({ input: mlp.inputs[0], other: mlp.inputs[0] }), 'the model has no input other');
  await refused('a missing input', () => model.run({}), "no value for input 'input'");
  model.dispose();
  await refused('a disposed model', () => model.run({ input: mlp.inputs[0] }), 'disposed');
  // weights that are not the model's (a flipped byte): refused by the plan's hash
  const bad = path.join(root, 'mlp-bad');
  fs.cpSync(mlp.dir, bad, { recursive: true });
  const manifest = JSON.parse(fs.readFileSync(path.join(bad, 'kiln.json'), 'utf8'));
  const wfile = path.join(bad, manifest.weights.wasm);
  const wb = fs.readFileSync(wfile);
  wb[wb.length >> 1] ^= 0x40;
  fs.writeFileSync(wfile, wb);
  await refused('corrupted weights', () => kiln.loadModel(pathToFileURL(bad).href + '/', { backend: 'wasm' }),
    'not the ones the plan was built with');
  const ops = path.join(root, 'relu-bundle');
  execFileSync(kilnExe, ['build', 'relu', '--target', 'wasm', '-o', ops + '/'], { stdio: 'ignore' });
  await refused('an operator bundle', () => kiln.loadModel(pathToFileURL(ops).href + '/', { backend: 'wasm' }), 'not a model');
}

// headless Chromium: WebGPU (SwiftShader), WebGL2 (ANGLE), wasm
{
  const { withChromiumPage } = await import('./chromium.mjs');
  await withChromiumPage(root, async (page, origin) => {
    for (const m of models)
      for (const backend of ['webgpu', 'webgl', 'wasm']) {
        const r = await page.evaluate(runModel, {
          base: `${origin}/${m.name}/`, backend, inputs: m.inputs.map((x) => Array.from(x)), opts: {},
        }).catch((e) => ({ error: `the page failed: ${e.message}` }));
        check('chromium', m, backend, r);
      }
    // the bundle's own page (what kiln serve shows) runs a model bundle through loadModel
    await page.goto(`${origin}/mlp/index.html?backend=wasm`);
    await page.waitForFunction(() => document.title.startsWith('kiln: '), null, { timeout: 60000 });
    const text = await page.textContent('#out');
    if ((await page.title()) !== 'kiln: done' || !text.includes('model on wasm'))
      fail(`the bundle's index.html: ${await page.title()}: ${text}`);
    else console.log('ok: the bundle page runs the model');
  });
}

fs.rmSync(root, { recursive: true, force: true });
console.log(failures ? `models_web: ${failures} failed` : 'models_web: every model matched onnxruntime on every backend');
process.exit(failures ? 1 : 0);
