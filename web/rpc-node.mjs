// rpc-node.mjs — kiln's RPC server as a node process: registers at a proxy
// and runs uploaded modules on wasm and on WebGPU (Dawn, npm `webgpu`).
//
//   node --experimental-websocket rpc-node.mjs ws://127.0.0.1:9091/ [KEY] [--sessions N]
//
// The key comes from the command line or KILN_RPC_KEY. With --sessions N it
// exits after serving N sessions (tests); otherwise it serves until killed.
import { fileURLToPath } from 'node:url';
import { RpcServer } from './rpc.mjs';

const args = process.argv.slice(2);
let sessions = 0;
const i = args.indexOf('--sessions');
if (i >= 0) {
  sessions = Number(args[i + 1]);
  args.splice(i, 2);
}
const [url, key = process.env.KILN_RPC_KEY] = args;
if (!url || !key || !Number.isInteger(sessions) || sessions < 0) {
  console.error('usage: node --experimental-websocket rpc-node.mjs ws://HOST:PORT/ [KEY] [--sessions N] (or KILN_RPC_KEY)');
  process.exit(2);
}
const base = process.env.KILN_WEB_RUNTIME_DIR ?? fileURLToPath(new URL('.', import.meta.url));
let last = '';
const server = new RpcServer({
  url, key, base, sessions,
  onState: (s) => {
    const line = `kiln rpc node: ${s.status}${s.last ? ` (last: ${s.last})` : ''}`;
    if (line !== last) console.log((last = line));
    if (s.status === 'disconnected' && sessions && server.sessions >= sessions) process.exit(0);
  },
});
try {
  await server.start();
  console.log(`kiln rpc node: devices: ${server.state.devices.map((d) => `${d.target} (${d.description})`).join(', ')}`);
} catch (e) {
  console.error(`kiln rpc node: ${e.message}`);
  process.exit(1);
}
