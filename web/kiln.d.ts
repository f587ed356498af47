// Types of kiln.mjs, kiln's JavaScript API (node and browsers).

/** The backends a bundle can run on, in the order `load` tries them. */
export type Backend = 'webgpu' | 'webgl' | 'wasm';
export declare const BACKENDS: readonly Backend[];

export type DType = 'bool' | 'int8' | 'int16' | 'int32' | 'int64' | 'uint8' | 'uint16' | 'uint32' | 'uint64'
  | 'float16' | 'float32' | 'float64';

/** The typed array that holds each dtype's elements (float16: raw IEEE half bits). */
export type TypedArrayOf<D extends DType> =
  D extends 'float32' ? Float32Array : D extends 'float64' ? Float64Array : D extends 'int8' ? Int8Array
  : D extends 'int16' ? Int16Array : D extends 'int32' ? Int32Array : D extends 'int64' ? BigInt64Array
  : D extends 'uint64' ? BigUint64Array : D extends 'uint32' ? Uint32Array
  : D extends 'uint16' | 'float16' ? Uint16Array : Uint8Array;

/** The typed array class holding a dtype's elements. */
export declare function arrayType<D extends DType>(dtype: D): { new(buffer: ArrayBufferLike, byteOffset?: number, length?: number): TypedArrayOf<D> };

export interface ArgInfo {
  name: string;
  dtype: DType;
  shape: number[];
  /** true for what the function writes */
  output: boolean;
}

export interface FunctionInfo {
  name: string;
  args: ArgInfo[];
  /** device kernel launches per call (0 for wasm) */
  launches: number;
}

export interface Timing {
  medianMs: number;
  meanMs: number;
  minMs: number;
  /** calls averaged in each sample */
  number: number;
  /** samples taken */
  repeat: number;
  /** each sample's milliseconds per call */
  samples: number[];
}

export interface TimeOptions {
  /** calls before timing (default 1) */
  warmup?: number;
  /** calls per sample; 0 (default) grows it until a sample takes minRepeatMs */
  number?: number;
  /** samples (default 10) */
  repeat?: number;
  /** default 50 */
  minRepeatMs?: number;
}

export interface LoadOptions {
  /** 'auto' (default): webgpu, then webgl, then wasm; or one backend, or a list in order */
  backend?: 'auto' | Backend | Backend[];
  /** a GPU object to use instead of navigator.gpu (in node: Dawn's, from npm `webgpu`) */
  gpu?: GPU;
  /** with `gpu`: ask for a compatibility-mode adapter */
  compatibility?: boolean;
  /** the canvas the webgl backend draws with (default: a new OffscreenCanvas) */
  canvas?: HTMLCanvasElement | OffscreenCanvas;
  /**
   * which of the bundle's WebGPU kernels run: 'auto' (default) takes its "webgpu-cpu" module
   * (no shared memory, register tiles) when the adapter is a CPU underneath (SwiftShader,
   * llvmpipe / lavapipe, or a fallback adapter), else "webgpu"; 'gpu' or 'cpu' insist
   */
  webgpuKernels?: 'auto' | 'gpu' | 'cpu';
}

/** An n-d array on its session's backend. */
export declare class KilnArray<D extends DType = DType> {
  readonly session: Session;
  readonly shape: number[];
  readonly dtype: D;
  /** elements */
  readonly size: number;
  readonly bytes: number;
  /** Copies values in (their count must equal size). */
  /** Any array of numbers, converted to the array's dtype (a Float64Array into float32 too). */
  write(values: TypedArrayOf<D> | ArrayLike<number>): this;
  /** A copy of the contents, once every launch that writes them has finished. */
  read(): Promise<TypedArrayOf<D>>;
  dispose(): void;
}

/** A bundle loaded on one backend. */
export declare class Session {
  /** the backend that runs this session */
  readonly backend: Backend;
  /** the adapter or renderer behind it (with "kernels for CPU adapters" when the webgpu-cpu
   * module runs), or the wasm variant ("wasm (wasm-relaxed)") */
  readonly device: string;
  /** the backends tried before this one, and why each could not run */
  readonly skipped: { backend: Backend; reason: string }[];
  readonly functions: FunctionInfo[];
  /** WebGPU: a model run submits its recorded launches once this many are pending (default 16) */
  submitEvery: number;
  /** An array of shape (default [values.length]) holding values (or uninitialised when null). */
  array<D extends DType = 'float32'>(values: TypedArrayOf<D> | ArrayLike<number> | null, shape?: number[], dtype?: D): KilnArray<D>;
  empty<D extends DType = 'float32'>(shape: number[], dtype?: D): KilnArray<D>;
  /** A function of the bundle by name (rejects with the names it has). */
  fn(name: string): FunctionInfo;
  /** Arrays for every argument of a function; inputs[i] fills input i when given. */
  arraysFor(fn: string, inputs?: (ArrayLike<number> | null)[]): KilnArray[];
  /**
   * Runs fn once, after the C runtime has checked every argument's dtype and shape
   * (a mismatch rejects with a message naming the argument).
   */
  run(fn: string, args: KilnArray[] | Record<string, KilnArray>): Promise<void>;
  /**
   * One call, synchronously: checks the arguments, then runs it (wasm, webgl) or
   * submits its launches without waiting for them or for validation (webgpu).
   * For timing loops; run() is the checked, awaited form.
   */
  call(fn: string, args: KilnArray[] | Record<string, KilnArray>): void;
  /** The time evaluator: milliseconds per call, without transfers. */
  time(fn: string, args: KilnArray[] | Record<string, KilnArray>, opts?: TimeOptions): Promise<Timing>;
  dispose(): void;
}

/** In node: load()'s {gpu, compatibility} for Dawn from the imported npm `webgpu` package (KILN_DAWN_BACKEND). */
export declare function dawnGpu(pkg: unknown): { gpu: GPU; compatibility: boolean };

/**
 * Loads the bundle at base (a folder path in node, a URL in a page; default:
 * the folder kiln.mjs was loaded from). Rejects, listing each backend's reason,
 * when none can run here.
 */
export declare function load(base?: string | URL, opts?: LoadOptions): Promise<Session>;
/** One module container (kiln build -o M.kmod) on the backend its target names; base: where kiln_runtime.js/.wasm lie. */
export declare function openModule(bytes: Uint8Array, opts?: LoadOptions & { base?: string | URL; name?: string }): Promise<Session>;

/** One input or output of a model. */
export interface ModelIO {
  name: string;
  dtype: DType;
  shape: number[];
  bytes: number;
}

/**
 * A whole model (`kiln compile model.onnx --target web -o dir/`) on one
 * backend: the C graph executor runs its plan; intermediates stay where the
 * kernels run (wasm memory, GPUBuffers).
 */
export declare class Model {
  readonly backend: Backend;
  /** What runs it: the adapter or renderer, or the wasm variant. */
  readonly device: string;
  /** The backends passed over, and why. */
  readonly skipped: { backend: Backend; reason: string }[];
  readonly inputs: ModelIO[];
  readonly outputs: ModelIO[];
  readonly arenaBytes: number;
  /** The session that runs it (its submitEvery tunes WebGPU submission). */
  readonly session: Session;
  /** Runs once: inputs by name (or in order), outputs by name. */
  run(feeds: Record<string, ArrayLike<number>> | ArrayLike<number>[]): Promise<Record<string, TypedArrayOf<DType>>>;
  /** Times whole runs of the inputs fed last (WebGPU: until the work is done). */
  time(opts?: { warmup?: number; repeat?: number }): Promise<{ medianMs: number; meanMs: number; minMs: number; repeat: number; samples: number[] }>;
  /** Each kernel timed alone (median of repeat calls), or with inRuns inside repeat whole runs, in plan order; the wasm backend only. */
  profile(opts?: { repeat?: number; inRuns?: boolean }): { step: string; ms: number }[];
  dispose(): void;
}

/** Loads the model bundle at base on the first backend of opts.backend that opens (default webgpu, webgl, wasm). */
export declare function loadModel(base?: string | URL, opts?: LoadOptions): Promise<Model>;
