// tests/ort_reference.mjs MODEL.onnx INPUT.bin SHAPE OUTPUT.bin [THREADS]
// Runs one float32 input (raw little-endian, SHAPE like 1,3,224,224) through
// onnxruntime-node's CPU provider and writes the first output raw: the
// independent reference kiln's whole models are compared with.
// With BENCH=N in the environment it also times N runs and prints the median ms.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const ort = require('onnxruntime-node');
const [model, input, shape, output, threads] = process.argv.slice(2);
if (!output) {
	console.error('usage: ort_reference.mjs MODEL INPUT.bin SHAPE OUTPUT.bin [THREADS]');
	process.exit(2);
}
const dims = shape.split(',').map(Number);
const buf = readFileSync(input);
const data = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
const n = threads ? Number(threads) : 1;
const session = await ort.InferenceSession.create(model, {
	intraOpNumThreads: n, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
});
const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data.slice(), dims) };
const result = await session.run(feeds);
const y = result[session.outputNames[0]];
writeFileSync(output, Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
if (process.env.BENCH) {
	const times = [];
	for (let i = 0; i < 3; i++) await session.run(feeds);
	for (let i = 0; i < Number(process.env.BENCH); i++) {
		const t0 = process.hrtime.bigint();
		await session.run(feeds);
		times.push(Number(process.hrtime.bigint() - t0) / 1e6);
	}
	times.sort((a, b) => a - b);
	console.log(JSON.stringify({ peer: 'onnxruntime-node', threads: n, median_ms: times[times.length >> 1] }));
}
