#!/usr/bin/env node
// wasm_call.js DIR — runs one kernel of a kiln wasm module in node, for the
// Check suites (tests/testutil.c writes DIR, reads the outputs back).
//
// DIR holds call.json {func, variants: [file...], args: [{file, bytes, output}]}
// and the argument arrays as raw little-endian files. The first variant the
// engine validates runs (relaxed-simd first when offered); every argument is
// written back over its file (after its guard zone was checked) and the
// variant used goes to used.txt, which testutil checks.
'use strict';
const fs = require('fs');
const path = require('path');
// node 20's V8 (11.3) validates relaxed-simd only behind this flag; later engines
// (Chromium 114+) have it on. Unknown to an engine, the flag is ignored.
require('v8').setFlagsFromString('--experimental-wasm-relaxed-simd');

const dir = process.argv[2];
const call = JSON.parse(fs.readFileSync(path.join(dir, 'call.json'), 'utf8'));
let bytes = null, used = null;
for (const v of call.variants) {
  const b = fs.readFileSync(path.join(dir, v));
  if (WebAssembly.validate(b)) { bytes = b; used = v; break; }
}
if (!bytes) {
  console.error(`wasm_call: this engine validates none of ${call.variants.join(', ')}`);
  process.exit(2);
}
const mod = new WebAssembly.Module(bytes);
const align = (n, a) => Math.ceil(n / a) * a;
const memory = new WebAssembly.Memory({ initial: 1 });
let top = 0; // set once the instance says where its static data ends
const grow = (end) => {
  const need = Math.ceil(end / 65536) - memory.buffer.byteLength / 65536;
  if (need > 0) memory.grow(need);
};
// What kernels may import: the runtime's workspace and libm's functions.
const env = {
  memory,
  kiln_workspace_alloc(n) {
    const p = align(top, 64);
    top = p + Number(n);
    grow(top);
    return p;
  },
  kiln_workspace_free() {},
};
for (const [c, js] of [['exp', Math.exp], ['log', Math.log], ['pow', Math.pow], ['tanh', Math.tanh],
  ['sqrt', Math.sqrt], ['fmod', (a, b) => a % b]]) {
  env[c] = js;
  env[c + 'f'] = js;
}
for (const imp of WebAssembly.Module.imports(mod)) {
  if (imp.module !== 'env' || !(imp.name in env)) {
    console.error(`wasm_call: the kernel imports ${imp.module}.${imp.name}, which this host does not provide`);
    process.exit(2);
  }
}
// the kernel's static data and stack lie below __heap_base (a few pages
// more than its 1 MiB stack); the arrays go above
let inst;
try {
  grow(4 << 20);
  inst = new WebAssembly.Instance(mod, { env });
} catch (e) {
  console.error(`wasm_call: instantiation failed: ${e.message}`);
  process.exit(2);
}
top = inst.exports.__heap_base.value;
// each array is followed by a guard zone holding a canary
const GUARD = 256, CANARY = 0xc3;
const ptrs = call.args.map((a) => {
  const p = align(top, 64);
  top = p + a.bytes + GUARD;
  return p;
});
grow(top);
call.args.forEach((a, i) => {
  const data = fs.readFileSync(path.join(dir, a.file));
  new Uint8Array(memory.buffer, ptrs[i], a.bytes).set(data.subarray(0, a.bytes));
  new Uint8Array(memory.buffer, ptrs[i] + a.bytes, GUARD).fill(CANARY);
});
const rc = inst.exports[call.func](...ptrs);
if (rc !== 0) {
  console.error(`wasm_call: ${call.func} returned ${rc}`);
  process.exit(1);
}
// every argument goes back, inputs too (testutil checks they are unchanged)
call.args.forEach((a, i) => {
  const bad = new Uint8Array(memory.buffer, ptrs[i] + a.bytes, GUARD).findIndex((v) => v !== CANARY);
  if (bad >= 0) {
    console.error(`wasm_call: ${call.func} wrote past the end of argument ${i} (byte ${bad} of its guard zone)`);
    process.exit(1);
  }
  fs.writeFileSync(path.join(dir, a.file), new Uint8Array(memory.buffer, ptrs[i], a.bytes));
});
fs.writeFileSync(path.join(dir, 'used.txt'), used);
