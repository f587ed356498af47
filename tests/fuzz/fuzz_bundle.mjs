// fuzz_bundle.mjs KILN [ITERATIONS] [SEED] — a fuzz of the JS API's bundle
// loader (web/kiln.mjs) in node: each iteration copies a small wasm bundle,
// mutates its kiln.json (bytes flipped, cut, or a field replaced by a hostile
// value) or its module container or runtime binary (bytes flipped or cut),
// then loads it and runs it. Every failure must be an Error whose message
// starts with "kiln:"; anything else (a raw TypeError, a SyntaxError, an
// Emscripten abort, an uncaught exception or rejection) fails the run.
// kiln_runtime.js is not mutated: it is code, and running mutated code proves
// nothing about kiln.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [kilnBin, itersArg = '200', seedArg = '1'] = process.argv.slice(2);
if (!kilnBin) {
  console.error('usage: fuzz_bundle.mjs KILN [ITERATIONS] [SEED]');
  process.exit(2);
}
let x = Number(seedArg) >>> 0 || 1;
const rnd = (n) => {
  x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
  return (x >>> 0) % n;
};
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-fuzz-bundle-'));
let raw = 0, ok = 0, refused = 0;
process.on('uncaughtException', (e) => { console.error(`uncaught: ${e.stack}`); raw++; });
process.on('unhandledRejection', (e) => { console.error(`unhandled rejection: ${e?.stack ?? e}`); raw++; });
try {
  const src = path.join(work, 'src') + '/';
  execFileSync(kilnBin, ['build', 'relu', '--shape', '64', '--target', 'wasm', '-o', src], { stdio: 'ignore' });
  const kiln = await import(pathToFileURL(path.join(src, 'kiln.mjs')).href);
  const hostile = [null, 0, -1, 1e308, 'x', '../../etc/passwd', '/etc/passwd', 'relu.wasm.kmod/..', [], {}, true,
    'a'.repeat(5000), '\u0000', 999, 'kiln-bundle'];
  const files = ['kiln.json', 'kiln.json', 'kiln.json', 'relu.wasm.kmod', 'kiln_runtime.wasm'];
  for (let i = 0; i < Number(itersArg); i++) {
    const dir = path.join(work, `b${i}`) + '/';
    fs.cpSync(src, dir, { recursive: true });
    const file = path.join(dir, files[rnd(files.length)]);
    let bytes = fs.readFileSync(file);
    const how = rnd(3);
    if (file.endsWith('kiln.json') && how === 0) { // structure: a field made hostile
      const m = JSON.parse(bytes);
      const v = hostile[rnd(hostile.length)];
      const which = rnd(4);
      if (which === 0) m.version = v;
      else if (which === 1) m.format = v;
      else if (which === 2) m.modules = v;
      else m.modules = { wasm: v };
      bytes = Buffer.from(JSON.stringify(m));
    } else if (how === 1) { // cut
      bytes = bytes.subarray(0, rnd(bytes.length + 1));
    } else { // flip a few bytes
      bytes = Buffer.from(bytes);
      for (let k = 0, n = 1 + rnd(4); k < n && bytes.length; k++) bytes[rnd(bytes.length)] = rnd(256);
    }
    fs.writeFileSync(file, bytes);
    let s;
    try {
      s = await kiln.load(dir, { backend: 'wasm' });
      const xa = s.array(Float32Array.from({ length: 64 }, (_, k) => k - 32), [64]), ya = s.empty([64]);
      await s.run('relu', [xa, ya]);
      await ya.read();
      ok++;
    } catch (e) {
      if (e instanceof Error && e.message.startsWith('kiln:')) refused++;
      else {
        raw++;
        console.error(`iteration ${i} (${path.basename(file)}, mutation ${how}): raw error: ${e?.stack ?? e}`);
      }
    }
    try {
      s?.dispose();
    } catch (e) {
      if (!(e instanceof Error && e.message.startsWith('kiln:'))) {
        raw++;
        console.error(`iteration ${i} (${path.basename(file)}): dispose threw: ${e?.stack ?? e}`);
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
console.log(`fuzz_bundle: ${Number(itersArg)} mutated bundles: ${ok} ran, ${refused} refused with kiln: errors, ${raw} raw`);
console.log(`${ok + refused} passed, ${raw} failed`);
process.exit(raw ? 1 : 0);
