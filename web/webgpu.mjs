// webgpu.mjs — kiln's WebGPU device: opens an adapter, compiles the WGSL a
// webgpu module carries (one shader module per kernel), owns buffers and
// runs a function's launches. The same file serves node (npm `webgpu`, Dawn)
// and a browser (navigator.gpu).
//
// The WGSL source holds one module per kernel, each introduced by a line
// "//@kernel NAME" (codegen/wgsl). A launch is {kernel, grid[3], block[3],
// args[]}: args[i] >= 0 is the function's argument, < 0 its temporary -1-i.

const MAX_GROUPS = 65535; // maxComputeWorkgroupsPerDimension (codegen/wgsl/wgsl.h)
const STAGING_KEEP = 16 << 20; // readback buffers larger than this are not kept for the next one

// The limits kiln asks for: the adapter's own, where it grants more than the
// defaults (a compatibility-mode adapter starts at 4 storage buffers and
// 128 invocations per workgroup).
const WANTED_LIMITS = [
  'maxStorageBuffersPerShaderStage', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY', 'maxComputeWorkgroupSizeZ', 'maxComputeWorkgroupStorageSize',
  'maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupsPerDimension',
];

// Splits a module's source into its kernels: [{name, code, line}], line being
// where the kernel's text starts in the whole source (for messages).
export function splitKernels(source) {
  const out = [];
  const lines = source.split('\n');
  let cur = null;
  lines.forEach((text, i) => {
    const m = /^\/\/@kernel (\S+)/.exec(text);
    if (m) {
      cur = { name: m[1], lines: [], line: i + 1 };
      out.push(cur);
    }
    if (cur) cur.lines.push(text);
  });
  return out.map((k) => ({ name: k.name, code: k.lines.join('\n') + '\n', line: k.line }));
}

// The workgroups to dispatch for a kernel's grid: as is, or folded into
// (min(total, 65535), ceil(total / 65535), 1) when a dimension exceeds 65535;
// the kernel unfolds it from num_workgroups.
export function dispatchSize(grid) {
  if (grid.every((g) => g <= MAX_GROUPS)) return grid.slice(0, 3);
  const total = grid[0] * grid[1] * grid[2];
  const x = Math.min(total, MAX_GROUPS);
  return [x, Math.ceil(total / x), 1];
}

// A WGSL compilation message with the offending line and a caret under it.
function describe(kernel, msg) {
  const lines = kernel.code.split('\n');
  const src = lines[msg.lineNum - 1];
  let text = `kernel ${kernel.name}, line ${msg.lineNum}:${msg.linePos}: ${msg.type}: ${msg.message}`;
  if (src !== undefined && msg.lineNum > 0)
    text += `\n  ${src}\n  ${' '.repeat(Math.max(0, msg.linePos - 1))}^`;
  return text;
}

export class WebGPUDevice {
  // Opens the first adapter gpu offers (core first, then compatibility mode).
  // Throws an Error saying why when there is none.
  static async open(gpu, { compatibility = false } = {}) {
    if (!gpu) throw new Error('webgpu: no WebGPU in this host (navigator.gpu is missing)');
    let adapter = compatibility ? null : await gpu.requestAdapter();
    if (!adapter) adapter = await gpu.requestAdapter({ featureLevel: 'compatibility' });
    if (!adapter) throw new Error('webgpu: requestAdapter found no adapter');
    const requiredLimits = {};
    for (const l of WANTED_LIMITS) if (adapter.limits[l] !== undefined) requiredLimits[l] = adapter.limits[l];
    const requiredFeatures = ['shader-f16', 'timestamp-query'].filter((f) => adapter.features.has(f));
    const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
    return new WebGPUDevice(adapter, device, gpu);
  }

  constructor(adapter, device, gpu = null) {
    this.gpu = gpu; // Dawn in node aborts when the GPU object is collected before its devices
    this.adapter = adapter;
    this.device = device;
    this.pipelines = new Map(); // source text -> Map(kernel name -> GPUComputePipeline)
    // A model runs the same launches over the same buffers every time: their
    // bind groups are made once (pipeline -> Map(buffer ids -> GPUBindGroup)),
    // and dropped whole when any buffer is freed (a group holding a destroyed
    // buffer fails validation).
    this.groups = new WeakMap();
    this.bufferIds = new WeakMap(); // GPUBuffer -> its number in the groups' keys
    this.nextId = 1;
    this.staging = new Map(); // size -> [idle MAP_READ buffers] for download()
    this.lost = null;
    this.pending = null; // {encoder, pass} while launches are being recorded
    device.lost.then((info) => { this.lost = info.message || info.reason || 'lost'; });
  }

  // Whether the adapter is a CPU underneath: kernels tiled for a real GPU
  // (shared memory, barriers) run slower there than plain register tiles.
  get emulated() {
    const i = this.adapter.info || {};
    return !!(i.isFallbackAdapter || this.adapter.isFallbackAdapter ||
      /swiftshader|llvmpipe|lavapipe/i.test([i.vendor, i.architecture, i.device, i.description].join(' ')));
  }

  get name() {
    const i = this.adapter.info || {};
    return [i.vendor, i.architecture, i.device, i.description].filter((s) => s).join(' ') || 'WebGPU adapter';
  }

  // The pipelines of every kernel of source, compiled once (async pipeline
  // creation, so a page stays responsive). Throws with the compiler's messages.
  async compile(source) {
    const cached = this.pipelines.get(source);
    if (cached) return cached;
    const kernels = splitKernels(source);
    if (!kernels.length) throw new Error('webgpu: the module holds no kernels (no //@kernel line)');
    const made = await Promise.all(kernels.map(async (k) => {
      if (/^enable f16;/m.test(k.code) && !this.device.features.has('shader-f16'))
        throw new Error(`webgpu: kernel ${k.name} computes in f16, but this adapter has no 'shader-f16'`);
      // inside an error scope: the messages come back below, not as an uncaptured error
      this.device.pushErrorScope('validation');
      const module = this.device.createShaderModule({ code: k.code, label: k.name });
      await this.device.popErrorScope();
      const info = await module.getCompilationInfo();
      const errors = info.messages.filter((m) => m.type === 'error');
      if (errors.length) throw new Error('webgpu: WGSL does not compile:\n' + errors.map((m) => describe(k, m)).join('\n'));
      try {
        const p = await this.device.createComputePipelineAsync({
          layout: 'auto', compute: { module, entryPoint: k.name }, label: k.name,
        });
        return [k.name, p];
      } catch (e) {
        throw new Error(`webgpu: kernel ${k.name}: pipeline creation failed: ${e.message}`);
      }
    }));
    const map = new Map(made);
    this.pipelines.set(source, map);
    return map;
  }

  // A storage buffer of at least bytes (WebGPU sizes are multiples of 4).
  alloc(bytes) {
    return this.device.createBuffer({
      size: Math.max(4, Math.ceil(bytes / 4) * 4),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
  }

  // Destroys buf, and forgets the bind groups that might hold it.
  free(buf) {
    buf.destroy();
    this.groups = new WeakMap();
  }

  upload(buf, bytes) {
    const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (u8.byteLength % 4 === 0) {
      this.device.queue.writeBuffer(buf, 0, u8);
    } else { // writeBuffer wants multiples of 4
      const padded = new Uint8Array(Math.ceil(u8.byteLength / 4) * 4);
      padded.set(u8);
      this.device.queue.writeBuffer(buf, 0, padded);
    }
  }

  // The first bytes of buf, once every submitted launch is done. The staging
  // buffer is kept for the next download of that size (a model reads the same
  // outputs on every run; making and destroying one each time cost a buffer
  // allocation per run).
  async download(buf, bytes) {
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    const idle = this.staging.get(size) ?? [];
    const staging = idle.pop() ??
      this.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(buf, 0, staging, 0, size);
    this.device.queue.submit([enc.finish()]);
    try {
      await staging.mapAsync(GPUMapMode.READ);
    } catch (e) {
      staging.destroy();
      throw e;
    }
    const out = new Uint8Array(staging.getMappedRange().slice(0, bytes));
    staging.unmap();
    if (idle.length < 4 && size <= STAGING_KEEP) {
      idle.push(staging);
      this.staging.set(size, idle);
    } else {
      staging.destroy();
    }
    return out;
  }

  // The bind group of pipeline over buffers (binding i = buffers[i]), made on first use.
  bindGroup(pipeline, buffers) {
    let byKey = this.groups.get(pipeline);
    if (!byKey) this.groups.set(pipeline, (byKey = new Map()));
    const key = buffers.map((b, i) => {
      if (!b) throw new Error(`webgpu: binding ${i} of ${pipeline.label || 'a kernel'} has no buffer (freed, or never made)`);
      let id = this.bufferIds.get(b);
      if (!id) this.bufferIds.set(b, (id = this.nextId++));
      return id;
    }).join(',');
    let g = byKey.get(key);
    if (!g) {
      const entries = buffers.map((buffer, i) => ({ binding: i, resource: { buffer } }));
      g = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
      byKey.set(key, g);
    }
    return g;
  }

  // Records one launch of pipeline over buffers (bound in order) into the
  // pass being encoded; submit() sends every launch recorded since the last.
  dispatch(pipeline, buffers, grid) {
    this.record(pipeline, this.bindGroup(pipeline, buffers), dispatchSize(grid));
  }

  // dispatch() with its bind group and workgroup counts ([x, y, z]) at hand.
  record(pipeline, group, size) {
    if (!this.pending) {
      const encoder = this.device.createCommandEncoder();
      this.pending = { encoder, pass: encoder.beginComputePass(), count: 0 };
    }
    this.pending.count++;
    const { pass } = this.pending;
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(size[0], size[1], size[2]);
  }

  // Launches recorded and not yet submitted.
  get recorded() { return this.pending ? this.pending.count : 0; }

  submit() {
    if (!this.pending) return;
    const { encoder, pass } = this.pending;
    this.pending = null;
    pass.end();
    this.device.queue.submit([encoder.finish()]);
  }

  // Encodes and submits a function's launches; args and temps are GPUBuffers.
  // Validation errors come back as a rejected promise naming the kernel.
  async run(pipelines, launches, args, temps) {
    const dev = this.device;
    if (this.lost) throw new Error(`webgpu: the device was lost (${this.lost})`);
    dev.pushErrorScope('validation');
    for (const l of launches) {
      const p = pipelines.get(l.kernel);
      if (!p) {
        this.pending = null;
        await dev.popErrorScope();
        throw new Error(`webgpu: the module has no kernel '${l.kernel}'`);
      }
      this.dispatch(p, l.args.map((a) => (a >= 0 ? args[a] : temps[-1 - a])), l.grid);
    }
    this.submit();
    const err = await dev.popErrorScope();
    if (err) throw new Error(`webgpu: launching ${launches.map((l) => l.kernel).join(', ')}: ${err.message}`);
    await dev.queue.onSubmittedWorkDone();
  }
}
