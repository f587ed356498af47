#!/usr/bin/env node
// webgpu_call.mjs DIR — runs one function of a kiln webgpu module in node on
// Dawn (npm `webgpu`), for the Check suites (tests/testutil.c writes DIR and
// reads the outputs back).
//
// DIR holds call.json {source, launches: [{kernel, grid, block, args}],
// temps: [bytes...], args: [{file, bytes, output}]}, the WGSL source and the
// argument arrays as raw little-endian files. Every argument is written back
// over its file (after its guard zone was checked); the adapter used goes to used.txt.
//
// Dawn's backend: KILN_DAWN_BACKEND, default "opengles" (Mesa llvmpipe through
// EGL surfaceless, a compatibility-mode adapter); "vulkan" takes whatever
// Vulkan driver the loader finds (SwiftShader here, NVIDIA's on the GPU machine).
import fs from 'node:fs';
import path from 'node:path';
import { create, globals } from 'webgpu';
import { WebGPUDevice } from '../web/webgpu.mjs';

const GUARD = 256, CANARY = 0xc3;
const dir = process.argv[2];
const call = JSON.parse(fs.readFileSync(path.join(dir, 'call.json'), 'utf8'));
const backend = process.env.KILN_DAWN_BACKEND || 'opengles';
if (backend === 'opengles' && !process.env.EGL_PLATFORM) process.env.EGL_PLATFORM = 'surfaceless';
Object.assign(globalThis, globals);

async function main() {
  const dev = await WebGPUDevice.open(create([`backend=${backend}`]), { compatibility: backend === 'opengles' });
  const source = fs.readFileSync(path.join(dir, call.source), 'utf8');
  const pipelines = await dev.compile(source);
  // each argument is followed by a guard zone holding a canary; the whole
  // buffer is bound, so a write past the argument lands there and shows
  const args = call.args.map((a) => {
    const b = dev.alloc(a.bytes + GUARD);
    const data = new Uint8Array(Math.ceil((a.bytes + GUARD) / 4) * 4).fill(CANARY);
    data.set(fs.readFileSync(path.join(dir, a.file)).subarray(0, a.bytes));
    dev.upload(b, data);
    return b;
  });
  const temps = call.temps.map((n) => dev.alloc(n));
  await dev.run(pipelines, call.launches, args, temps);
  // every argument goes back, inputs too (testutil checks they are unchanged)
  for (let i = 0; i < call.args.length; i++) {
    const a = call.args[i];
    const all = new Uint8Array(await dev.download(args[i], a.bytes + GUARD));
    const bad = all.subarray(a.bytes, a.bytes + GUARD).findIndex((v) => v !== CANARY);
    if (bad >= 0) throw new Error(`a kernel wrote past the end of argument ${i} (byte ${bad} of its guard zone)`);
    fs.writeFileSync(path.join(dir, a.file), all.subarray(0, a.bytes));
  }
  fs.writeFileSync(path.join(dir, 'used.txt'), dev.name + '\n');
  dev.device.destroy();
}

main().then(() => process.exit(0), (e) => {
  console.error(`webgpu_call: ${e.message}`);
  process.exit(1);
});
