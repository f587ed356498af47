#!/usr/bin/env node
// web_run.mjs ROOT node|chromium — runs the bundles under ROOT through the JS
// API (web/kiln.mjs), in node or in headless Chromium, for tests/test_web.c.
//
// ROOT/cases.json: {cases: [{dir, func, args: [{file, output}]}], backends: {node: [...], chromium: [...]}}.
// Each case's dir is a bundle holding its input files. For every backend the
// outputs go to dir/ENV-BACKEND-FILE, the device used to dir/ENV-BACKEND.used,
// or the error to dir/ENV-BACKEND.err. Exits 0 once every case was attempted.
//
// Chromium: tests/chromium.mjs (Debian's chromium through playwright-core).
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [root, env] = process.argv.slice(2);
if (!root || !['node', 'chromium'].includes(env)) {
  console.error('usage: web_run.mjs ROOT node|chromium');
  process.exit(2);
}
const { cases, backends } = JSON.parse(fs.readFileSync(path.join(root, 'cases.json'), 'utf8'));

// One case on one backend; self-contained, since Chromium runs it from its
// source text. Returns {device} and {outputs: {file: base64}}, or {error}.
async function runCase({ base, c, backend, inputs, opts }) {
  const b64 = (u8) => {
    let s = '';
    for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode(...u8.subarray(i, i + 0x8000));
    return btoa(s);
  };
  const unb64 = (t) => Uint8Array.from(atob(t), (ch) => ch.charCodeAt(0));
  let s;
  try {
    const kiln = await import(base + 'kiln.mjs');
    // "webgpu" and "webgpu-cpu": the bundle's two WebGPU modules, each insisted on
    const kernels = backend === 'webgpu-cpu' ? 'cpu' : backend === 'webgpu' ? 'gpu' : undefined;
    s = await kiln.load(base, { ...opts, backend: backend === 'webgpu-cpu' ? 'webgpu' : backend, webgpuKernels: kernels });
    const f = s.fn(c.func);
    // outputs poisoned (NaN, or a pattern for integers) so an element the
    // kernel never writes cannot pass as the zero of a fresh array
    const arrays = f.args.map((a, i) => {
      const arr = s.empty(a.shape, a.dtype);
      const T = kiln.arrayType(a.dtype);
      if (!a.output) {
        const u8 = unb64(inputs[i]);
        arr.write(new T(u8.buffer, 0, arr.size));
      } else {
        arr.write(new T(arr.size).fill(a.dtype.startsWith('float') ? NaN : 0x5b));
      }
      return arr;
    });
    await s.run(c.func, arrays);
    for (let i = 0; i < f.args.length; i++) {
      if (f.args[i].output) continue;
      const t = await arrays[i].read();
      const now = new Uint8Array(t.buffer, t.byteOffset, t.byteLength), was = unb64(inputs[i]);
      if (now.some((v, k) => v !== was[k])) throw new Error(`the kernel changed its input ${f.args[i].name}`);
    }
    const outputs = {};
    for (let i = 0; i < f.args.length; i++) {
      if (!f.args[i].output) continue;
      const t = await arrays[i].read();
      outputs[c.args[i].file] = b64(new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
    }
    arrays.forEach((a) => a.dispose());
    return { device: `${s.backend}: ${s.device}`, outputs };
  } catch (e) {
    return { error: String(e && e.message || e) };
  } finally {
    s?.dispose();
  }
}

function inputsOf(c) {
  return c.args.map((a) => (a.output ? null : fs.readFileSync(path.join(root, c.dir, a.file)).toString('base64')));
}

function record(c, backend, r) {
  const at = (suffix) => path.join(root, c.dir, `${env}-${backend}${suffix}`);
  if (r.error) {
    fs.writeFileSync(at('.err'), r.error + '\n');
    return;
  }
  for (const [file, data] of Object.entries(r.outputs)) fs.writeFileSync(at('-' + file), Buffer.from(data, 'base64'));
  fs.writeFileSync(at('.used'), r.device + '\n');
}

// Dawn from this repository's node_modules (the bundles lie elsewhere, where
// kiln.mjs's own import('webgpu') would not find it).
async function inNode() {
  const { dawnGpu } = await import('../web/kiln.mjs');
  const opts = dawnGpu(await import('webgpu'));
  for (const c of cases)
    for (const backend of backends[env]) {
      const base = pathToFileURL(path.join(path.resolve(root), c.dir)).href + '/';
      record(c, backend, await runCase({ base, c, backend, inputs: inputsOf(c), opts }));
    }
}

async function inChromium() {
  const { withChromiumPage } = await import('./chromium.mjs');
  await withChromiumPage(root, async (page, origin) => {
    for (const c of cases)
      for (const backend of backends[env]) {
        const r = await page.evaluate(runCase, { base: `${origin}/${c.dir}/`, c, backend, inputs: inputsOf(c), opts: {} })
          .catch((e) => ({ error: `the page failed: ${e.message}` }));
        record(c, backend, r);
      }
  });
}

(env === 'node' ? inNode() : inChromium()).then(() => process.exit(0), (e) => {
  console.error(`web_run (${env}): ${e.stack || e.message}`);
  process.exit(1);
});
