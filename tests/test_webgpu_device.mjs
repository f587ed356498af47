// test_webgpu_device.mjs — web/webgpu.mjs on its own, in node on Dawn (node:test,
// TAP output for meson): how a module's source splits into kernels, how a big
// grid folds, WGSL errors reported with the line and a caret, f16 kernels
// refused clearly on an adapter without shader-f16 (run where it has it), a
// missing kernel and a missing WebGPU named.
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { create, globals } from 'webgpu';
import { WebGPUDevice, splitKernels, dispatchSize } from '../web/webgpu.mjs';

if (!process.env.EGL_PLATFORM) process.env.EGL_PLATFORM = 'surfaceless';
Object.assign(globalThis, globals);
const backend = process.env.KILN_DAWN_BACKEND || 'opengles';
let dev = null; // the device keeps the GPU object alive itself
const device = async () => dev || (dev = await WebGPUDevice.open(create([`backend=${backend}`]),
  { compatibility: backend === 'opengles' }));

test('splitKernels cuts the source at //@kernel lines', () => {
  const ks = splitKernels('// header\n//@kernel a\nfn a() {}\n//@kernel b_1\nfn b_1() {}\n');
  assert.deepEqual(ks.map((k) => [k.name, k.line]), [['a', 2], ['b_1', 4]]);
  assert.equal(ks[1].code, '//@kernel b_1\nfn b_1() {}\n\n');
});

test('dispatchSize folds grids over 65535 workgroups', () => {
  assert.deepEqual(dispatchSize([100, 7, 3]), [100, 7, 3]);
  assert.deepEqual(dispatchSize([93750, 1, 1]), [65535, 2, 1]);
  assert.deepEqual(dispatchSize([70000, 2, 1]), [65535, 3, 1]);
});

test('a WGSL error names the kernel and line, with a caret', async () => {
  const d = await device();
  const src = '//@kernel k\n@compute @workgroup_size(1)\nfn k() {\n  let x: i32 = 1.5f;\n}\n';
  await assert.rejects(d.compile(src), (e) => {
    assert.match(e.message, /kernel k, line 4:\d+: error: .*'i32'/);
    assert.match(e.message, /\n {4}let x: i32 = 1\.5f;\n {2,}\^/);
    return true;
  });
});

test('a launch of a kernel the module lacks is refused', async () => {
  const d = await device();
  const src = '//@kernel k\n@group(0) @binding(0) var<storage, read_write> y: array<f32>;\n' +
    '@compute @workgroup_size(4)\nfn k(@builtin(local_invocation_id) i: vec3<u32>) { y[i.x] = f32(i.x) * 2.0; }\n';
  const p = await d.compile(src);
  const y = d.alloc(16);
  await assert.rejects(d.run(p, [{ kernel: 'nope', grid: [1, 1, 1], block: [4, 1, 1], args: [0] }], [y], []),
    /the module has no kernel 'nope'/);
  await d.run(p, [{ kernel: 'k', grid: [1, 1, 1], block: [4, 1, 1], args: [0] }], [y], []);
  assert.deepEqual([...new Float32Array((await d.download(y, 16)).buffer)], [0, 2, 4, 6]);
});

test('bind groups are made once per pipeline and buffers; staging buffers are kept', async () => {
  const d = await device();
  const src = '//@kernel twice\n@group(0) @binding(0) var<storage, read_write> x: array<f32>;\n' +
    '@group(0) @binding(1) var<storage, read_write> y: array<f32>;\n' +
    '@compute @workgroup_size(4)\nfn twice(@builtin(local_invocation_id) i: vec3<u32>) { y[i.x] = x[i.x] * 2.0; }\n';
  const p = await d.compile(src);
  const made = { groups: 0, buffers: 0 };
  const dev = d.device, createBindGroup = dev.createBindGroup.bind(dev), createBuffer = dev.createBuffer.bind(dev);
  dev.createBindGroup = (desc) => (made.groups++, createBindGroup(desc));
  dev.createBuffer = (desc) => (made.buffers++, createBuffer(desc));
  try {
    const launch = [{ kernel: 'twice', grid: [1, 1, 1], block: [4, 1, 1], args: [0, 1] }];
    const read = async (b) => [...new Float32Array((await d.download(b, 16)).buffer)];
    const x = d.alloc(16), y = d.alloc(16);
    d.upload(x, new Float32Array([1, 2, 3, 4]));
    await d.run(p, launch, [x, y], []);
    assert.deepEqual(await read(y), [2, 4, 6, 8]);
    const first = { ...made };
    d.upload(x, new Float32Array([5, 6, 7, 8]));
    await d.run(p, launch, [x, y], []);
    assert.deepEqual(await read(y), [10, 12, 14, 16]);
    assert.deepEqual(made, first); // the second run and readback made nothing new
    assert.equal(made.groups, 1);
    // the same pipeline over other buffers: a group of its own; a freed buffer's groups are gone
    const y2 = d.alloc(16);
    await d.run(p, launch, [x, y2], []);
    assert.deepEqual(await read(y2), [10, 12, 14, 16]);
    d.free(y);
    assert.equal(d.groups.get(p.get('twice')), undefined); // every group that might hold y is gone
    const y3 = d.alloc(16);
    d.upload(x, new Float32Array([0, 1, 0, 1]));
    await d.run(p, launch, [x, y3], []);
    assert.deepEqual(await read(y3), [0, 2, 0, 2]);
    assert.equal(made.groups, 3);
  } finally {
    dev.createBindGroup = createBindGroup;
    dev.createBuffer = createBuffer;
  }
});

test('f16 kernels need shader-f16', async () => {
  const d = await device();
  const src = '//@kernel h\nenable f16;\n@group(0) @binding(0) var<storage, read_write> y: array<f16>;\n' +
    '@compute @workgroup_size(2)\nfn h(@builtin(local_invocation_id) i: vec3<u32>) { y[i.x] = f16(i.x) + 0.5h; }\n';
  if (!d.device.features.has('shader-f16')) {
    await assert.rejects(d.compile(src), /kernel h computes in f16, but this adapter has no 'shader-f16'/);
    return;
  }
  const p = await d.compile(src);
  const y = d.alloc(4);
  await d.run(p, [{ kernel: 'h', grid: [1, 1, 1], block: [2, 1, 1], args: [0] }], [y], []);
  assert.deepEqual([...new Uint16Array((await d.download(y, 4)).buffer)], [0x3800, 0x3e00]); // 0.5, 1.5
});

test('no WebGPU in the host is an error that says so', async () => {
  await assert.rejects(WebGPUDevice.open(undefined), /no WebGPU in this host/);
});

after(() => {
  if (dev) dev.device.destroy();
  dev = null; // dawn.node keeps node alive while its objects are reachable (TOOLCHAIN.md)
});
