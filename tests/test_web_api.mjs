// test_web_api.mjs — the JS API (web/kiln.mjs) in node (node:test, TAP for
// meson): the backend it picks and why it skips the others, the clear error
// when none can run, the C runtime's argument checks reaching JS, named
// arguments, the time evaluator, dispose, the choice between the bundle's two
// WebGPU modules, and malformed bundles (a manifest
// that is not kiln's, a truncated or corrupted module container).
//
// KILN names the kiln binary that writes the bundles; they go to a folder
// under the working directory, so that kiln.mjs finds npm `webgpu` from there.
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const kilnBin = process.env.KILN;
assert.ok(kilnBin, 'set KILN to the kiln binary');
const work = fs.mkdtempSync(path.join(process.cwd(), 'web-api-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

// kiln build ARGS -o work/NAME/; returns the bundle's folder
function bundle(name, ...args) {
  const dir = path.join(work, name) + '/';
  execFileSync(kilnBin, ['build', ...args, '-o', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  return dir;
}

const relu = bundle('relu', 'relu', '--shape', '1000', '--target', 'web');
const wasmOnly = bundle('relu-wasm', 'relu', '--shape', '1000', '--target', 'wasm,webgl');
const kiln = await import(pathToFileURL(relu + 'kiln.mjs').href);
// Dawn from this repository's node_modules, handed to load(): the bundles lie
// in the build folder, which may be anywhere (meson setup /tmp/b), where
// kiln.mjs's own import('webgpu') would find no package
const dawn = kiln.dawnGpu(await import('webgpu'));
const load = (dir, opts = {}) => kiln.load(dir, { ...dawn, ...opts });
const input = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i * 0.37) * 3);
const expected = input.map((v) => Math.max(0, v));

async function check(s) {
  const x = s.array(input, [1000]);
  const y = s.empty([1000]);
  await s.run('relu', [x, y]);
  assert.deepEqual(await y.read(), expected);
  x.dispose();
  y.dispose();
}

test('auto picks webgpu in node (Dawn) and says webgl was not needed', async () => {
  const s = await load(relu);
  assert.equal(s.backend, 'webgpu');
  assert.deepEqual(s.skipped, []);
  assert.deepEqual(s.functions.map((f) => f.name), ['relu']);
  assert.deepEqual(s.functions[0].args.map((a) => [a.name, a.dtype, a.shape, a.output]),
    [['X', 'float32', [1000], false], ['relu', 'float32', [1000], true]]);
  await check(s);
  s.dispose();
});

test('without webgpu in the bundle, auto skips it and webgl (node has none) and runs wasm', async () => {
  const s = await load(wasmOnly);
  assert.equal(s.backend, 'wasm');
  assert.match(s.device, /^wasm \(wasm-(relaxed|simd128)\)$/);
  assert.deepEqual(s.skipped.map((k) => k.backend), ['webgpu', 'webgl']);
  assert.match(s.skipped[0].reason, /the bundle has no webgpu module \(build it with --target webgpu\)/);
  assert.match(s.skipped[1].reason, /node has no WebGL2/);
  await check(s);
  s.dispose();
});

test('each backend on request; a list is tried in order', async () => {
  for (const b of ['webgpu', 'wasm']) {
    const s = await load(relu, { backend: b });
    assert.equal(s.backend, b);
    await check(s);
    s.dispose();
  }
  const s = await load(relu, { backend: ['webgl', 'wasm'] });
  assert.equal(s.backend, 'wasm');
  assert.deepEqual(s.skipped.map((k) => k.backend), ['webgl']);
  s.dispose();
});

test('no backend that can run: one error listing every reason', async () => {
  await assert.rejects(load(relu, { backend: 'webgl' }),
    /^Error: kiln: no backend can run this bundle here:\n {2}webgl: node has no WebGL2/);
  await assert.rejects(load(wasmOnly, { backend: ['webgpu'] }), /webgpu: the bundle has no webgpu module/);
  await assert.rejects(load(relu, { backend: 'cuda' }), /unknown backend 'cuda' \(one of webgpu, webgl, wasm/);
});

test('the C runtime checks every call: count, shape, dtype, foreign arrays', async () => {
  for (const b of ['wasm', 'webgpu']) {
    const s = await load(relu, { backend: b });
    const x = s.array(input, [1000]);
    const y = s.empty([1000]);
    await assert.rejects(s.run('relu', [x]), /kiln: relu expects 2 arguments \(X, relu\), got 1/);
    await assert.rejects(s.run('relu', [x, s.empty([10, 100])]), /argument 1 \(relu\) of relu has shape \[10, 100\], expected \[1000\]/);
    await assert.rejects(s.run('relu', [x, s.empty([1000], 'int32')]), /argument 1 \(relu\) of relu has dtype int32, expected float32/);
    await assert.rejects(s.run('nope', [x, y]), /no function 'nope' in the bundle \(it has: relu\)/);
    const other = await load(relu, { backend: 'wasm' });
    await assert.rejects(s.run('relu', [other.empty([1000]), y]), /argument 0 \(X\) of relu belongs to another session/);
    other.dispose();
    await assert.rejects(s.run('relu', { X: x }), /kiln: relu takes the arguments X, relu; missing: relu/);
    await assert.rejects(s.run('relu', { X: x, relu: y, Z: y }), /; unknown: Z/);
    await assert.rejects(s.run('relu', [x, null]), /argument 1 \(relu\) of relu is not a kiln array/);
    assert.throws(() => x.write(new Float32Array(5)), /5 values for an array of shape \[1000\]/);
    x.write(Float64Array.from(input)); // any numbers convert, as the .d.ts says
    assert.throws(() => s.empty([4], 'int64').write([1, 2, 3, 4]), /kiln: cannot write Array values to a int64 array/);
    await s.run('relu', { X: x, relu: y }); // by name
    assert.deepEqual(await y.read(), expected);
    y.dispose();
    await assert.rejects(y.read(), /disposed/);
    s.dispose();
  }
});

test('webgpu: a function called on other arrays uses them (launches are kept per buffers)', async () => {
  const s = await load(relu, { backend: 'webgpu' });
  const x = s.array(input, [1000]), y1 = s.empty([1000]), y2 = s.empty([1000]);
  await s.run('relu', [x, y1]);
  await s.run('relu', [x, y2]); // same launch, another output buffer
  assert.deepEqual(await y2.read(), expected);
  assert.deepEqual(await y1.read(), expected);
  const neg = s.array(input.map((v) => -v), [1000]);
  await s.run('relu', [neg, y1]);
  assert.deepEqual(await y1.read(), input.map((v) => Math.max(0, -v)));
  y2.dispose(); // a freed buffer: the launches made over it are forgotten
  const y3 = s.empty([1000]);
  await s.run('relu', [x, y3]);
  assert.deepEqual(await y3.read(), expected);
  s.dispose();
});

test('time: milliseconds per call from the C time evaluator (wasm) and around submits (webgpu)', async () => {
  for (const b of ['wasm', 'webgpu']) {
    const s = await load(relu, { backend: b });
    const args = s.arraysFor('relu', [input]);
    const t = await s.time('relu', args, { repeat: 3, number: 4 });
    assert.equal(t.repeat, 3);
    assert.equal(t.number, 4);
    assert.ok(t.medianMs > 0 && t.minMs <= t.medianMs && Number.isFinite(t.meanMs), JSON.stringify(t));
    s.dispose();
  }
});

test('malformed bundles: not a manifest, a truncated or corrupted module', async () => {
  const bad = bundle('bad', 'relu', '--shape', '1000', '--target', 'wasm');
  const kmod = path.join(bad, 'relu.wasm.kmod');
  const bytes = fs.readFileSync(kmod);
  fs.writeFileSync(kmod, bytes.subarray(0, bytes.length >> 1));
  await assert.rejects(load(bad, { backend: 'wasm' }), /wasm: kiln: relu\.wasm\.kmod: .*(truncated|ends|short)/i);
  const corrupt = Buffer.from(bytes);
  corrupt.write('NOTKILN!', 0);
  fs.writeFileSync(kmod, corrupt);
  await assert.rejects(load(bad, { backend: 'wasm' }), /wasm: kiln: relu\.wasm\.kmod: /);
  fs.writeFileSync(path.join(bad, 'kiln.json'), '{"hello": 1}');
  await assert.rejects(load(bad), /kiln\.json is not a kiln bundle manifest/);
  fs.rmSync(path.join(bad, 'kiln.json'));
  await assert.rejects(load(bad), /kiln: cannot read kiln\.json of the bundle .*ENOENT/);
});

test('hostile manifests and runtime files get kiln: errors, never raw ones', async () => {
  const src = bundle('hostile', 'relu', '--shape', '1000', '--target', 'wasm');
  const fresh = (name) => {
    const d = path.join(work, name) + '/';
    fs.cpSync(src, d, { recursive: true });
    return d;
  };
  const cases = [
    ['kiln.json', '{"format": "kiln-bundle", "version": 1, "modules": {"wasm": ', /kiln\.json is not valid JSON/],
    ['kiln.json', 'null', /is not a kiln bundle manifest/],
    ['kiln.json', '{"format": "kiln-bundle", "version": 999, "modules": {}}', /has version 999; this kiln\.mjs reads version 1/],
    ['kiln.json', '{"format": "kiln-bundle", "version": 1, "modules": {"wasm": "../relu.wasm.kmod"}}',
      /module files are plain names inside the bundle/],
    ['kiln.json', '{"format": "kiln-bundle", "version": 1, "modules": {"wasm": "/etc/passwd"}}', /plain names/],
    ['kiln_runtime.wasm', 'garbage', /kiln_runtime\.wasm .* is not valid WebAssembly/],
  ];
  for (const [i, [file, text, want]] of cases.entries()) {
    const d = fresh(`hostile-${i}`);
    fs.writeFileSync(path.join(d, file), text);
    await assert.rejects(load(d, { backend: 'wasm' }), (e) => e.message.startsWith('kiln:') && want.test(e.message),
      `${file} = ${text}`);
  }
  const d = fresh('hostile-missing');
  fs.rmSync(path.join(d, 'kiln_runtime.js'));
  await assert.rejects(load(d, { backend: 'wasm' }), /^Error: kiln: cannot read kiln_runtime\.js of the bundle/);
});

test('a failed wasm allocation leaves the session usable', async () => {
  const s = await load(relu, { backend: 'wasm' });
  assert.throws(() => s.empty([2 ** 31]), /kiln: cannot allocate/);
  assert.throws(() => s.array(null), /kiln: array\(values, shape\) needs values with a length, or a shape/);
  assert.throws(() => s.empty(null), /kiln: a shape is a list of at most 8 sizes/);
  assert.throws(() => s.empty([1, 1, 1, 1, 1, 1, 1, 1, 1]), /kiln: a shape is a list of at most 8 sizes/);
  await check(s); // the heap was left as it was
  s.dispose();
});

test('kiln refuses a bundle target the web cannot run', () => {
  assert.throws(() => execFileSync(kilnBin, ['build', 'relu', '--target', 'opencl,wasm', '-o', path.join(work, 'x') + '/'],
    { stdio: 'pipe' }), (e) => /a bundle holds webgpu, webgpu-cpu, webgl and wasm modules, not 'opencl'/.test(e.stderr));
});

test('webgpuKernels picks the bundle\'s GPU or CPU-adapter kernels, and auto follows the adapter', async () => {
  const manifest = JSON.parse(fs.readFileSync(relu + 'kiln.json', 'utf8'));
  assert.equal(manifest.modules['webgpu-cpu'], 'relu.webgpu-cpu.kmod');
  for (const kernels of ['gpu', 'cpu']) {
    const s = await load(relu, { backend: 'webgpu', webgpuKernels: kernels });
    assert.equal(s.device.endsWith('(kernels for CPU adapters)'), kernels === 'cpu');
    await check(s);
    s.dispose();
  }
  const s = await load(relu, { backend: 'webgpu' });
  assert.equal(s.device.endsWith('(kernels for CPU adapters)'), s.gpu.emulated);
  s.dispose();
  await assert.rejects(load(relu, { backend: 'webgpu', webgpuKernels: 'fast' }),
    /webgpu: webgpuKernels is 'auto', 'gpu' or 'cpu', not 'fast'/);
  const gpuOnly = bundle('relu-gpu', 'relu', '--shape', '1000', '--target', 'webgpu,wasm');
  await assert.rejects(load(gpuOnly, { backend: 'webgpu', webgpuKernels: 'cpu' }),
    /the bundle has no webgpu-cpu module/);
});
