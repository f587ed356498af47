#!/usr/bin/env node
// webgpu_call.mjs DIR — runs one function of a kiln webgpu module in node on
// Dawn (npm `webgpu`), for the Check suites (tests/testutil.c writes DIR and
// reads the outputs back).
//
// DIR holds call.json {source, launches: [{kernel, grid, block, args}],
// temps: [bytes...], args: [{file, bytes, output}]}, the WGSL source and the
// argument arrays as raw little-endian files. Outputs are written back over
// their files; the adapter used goes to used.txt.
//
// Dawn's backend: KILN_DAWN_BACKEND, default "opengles" (Mesa llvmpipe through
// EGL surfaceless, a compatibility-mode adapter); "vulkan" takes whatever
// Vulkan driver the loader finds (SwiftShader here, NVIDIA's on the GPU machine).
import fs from 'node:fs';
import path from 'node:path';
import { create, globals } from 'webgpu';
import { WebGPUDevice } from '../web/webgpu.mjs';

const dir = process.argv[2];
const call = JSON.parse(fs.readFileSync(path.join(dir, 'call.json'), 'utf8'));
const backend = process.env.KILN_DAWN_BACKEND || 'opengles';
if (backend === 'opengles' && !process.env.EGL_PLATFORM) process.env.EGL_PLATFORM = 'surfaceless';
Object.assign(globalThis, globals);

async function main() {
  const dev = await WebGPUDevice.open(create([`backend=${backend}`]), { compatibility: backend === 'opengles' });
  const source = fs.readFileSync(path.join(dir, call.source), 'utf8');
  const pipelines = await dev.compile(source);
  const args = call.args.map((a) => {
    const b = dev.alloc(a.bytes);
    dev.upload(b, fs.readFileSync(path.join(dir, a.file)).subarray(0, a.bytes));
    return b;
  });
  const temps = call.temps.map((n) => dev.alloc(n));
  await dev.run(pipelines, call.launches, args, temps);
  for (let i = 0; i < call.args.length; i++) {
    const a = call.args[i];
    if (a.output) fs.writeFileSync(path.join(dir, a.file), await dev.download(args[i], a.bytes));
  }
  fs.writeFileSync(path.join(dir, 'used.txt'), dev.name + '\n');
  dev.device.destroy();
}

main().then(() => process.exit(0), (e) => {
  console.error(`webgpu_call: ${e.message}`);
  process.exit(1);
});
