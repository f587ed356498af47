#!/usr/bin/env node
// web_demo.mjs DIR — runs a bundle (kiln build ... --target web -o DIR/) on each
// backend it can: in node through the JS API (webgpu on Dawn, wasm), then in
// headless Chromium through the bundle's own index.html (webgpu, webgl, wasm).
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = path.resolve(process.argv[2] || '.');
const kiln = await import(pathToFileURL(path.join(dir, 'kiln.mjs')).href);
// Dawn from kiln's own node_modules, wherever the bundle lies
let opts = {};
try {
  opts = kiln.dawnGpu(await import('webgpu'));
} catch {
  // no npm webgpu: the JS API says so for the webgpu backend
}

for (const backend of ['webgpu', 'wasm']) {
  try {
    const s = await kiln.load(dir, { ...opts, backend });
    for (const f of s.functions) {
      const args = s.arraysFor(f.name, f.args.map((a) => Float32Array.from(
        { length: a.shape.reduce((x, y) => x * y, 1) }, () => Math.random() * 2 - 1)));
      const t = await s.time(f.name, args, { repeat: 5 });
      console.log(`node     ${backend.padEnd(7)} ${f.name}: median ${t.medianMs.toFixed(3)} ms  (${s.device})`);
      args.forEach((a) => a.dispose());
    }
    s.dispose();
  } catch (e) {
    console.log(`node     ${backend.padEnd(7)} cannot run: ${e.message.split('\n').pop().trim()}`);
  }
}

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch {
  console.log('chromium: npm playwright-core is not installed; skipped');
  process.exit(0);
}
const { serve } = await import(pathToFileURL(path.join(dir, 'serve.mjs')).href);
const server = await serve(dir, { port: 0 });
const profile = fs.mkdtempSync('/tmp/kiln-demo-');
try {
  const ctx = await chromium.launchPersistentContext(profile, {
    headless: true, executablePath: process.env.KILN_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-first-run', '--disable-quic', '--enable-unsafe-webgpu'],
  });
  const page = await ctx.newPage();
  for (const backend of ['webgpu', 'webgl', 'wasm']) {
    await page.goto(`http://127.0.0.1:${server.address().port}/?backend=${backend}`);
    await page.waitForFunction(() => document.title.startsWith('kiln:'), null, { timeout: 120000 });
    const text = (await page.textContent('#out')).trim().split('\n');
    const median = text.find((l) => l.includes('median')) || text.join(' ');
    const used = text.find((l) => l.startsWith('backend:')) || '';
    console.log(`chromium ${backend.padEnd(7)} ${median.trim()}  (${used.replace('backend: ', '')})`);
  }
  await ctx.close();
} catch (e) {
  console.log(`chromium: ${e.message.split('\n')[0]}`);
} finally {
  server.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
process.exit(0);
