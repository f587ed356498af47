#!/usr/bin/env node
// serve.mjs [DIR] [--port N] [--host H] — serves a kiln bundle (or any folder)
// over HTTP for a browser, with the headers that make the page cross-origin
// isolated (COOP/COEP: SharedArrayBuffer and fine timers). `kiln serve DIR`
// runs kiln's own copy of this file; the folder is only data (its own
// serve.mjs, if any, is never run). Files are served only when their real
// path lies inside the folder's real path: links out of it are refused, as
// are paths with NUL or control characters. Port 0 takes any free port; the
// URL is printed on stdout.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript',
  '.json': 'application/json', '.wasm': 'application/wasm', '.ts': 'text/plain; charset=utf-8',
  '.css': 'text/css', '.txt': 'text/plain; charset=utf-8',
};

export function serve(root, { port = 8080, host = '127.0.0.1' } = {}) {
  const base = path.resolve(root), realBase = fs.realpathSync(base);
  const server = http.createServer((req, res) => {
    const send = (code, body, type = 'text/plain; charset=utf-8') => {
      res.writeHead(code, {
        'Content-Type': type, 'Cross-Origin-Opener-Policy': 'same-origin',
        'Cross-Origin-Embedder-Policy': 'require-corp', 'Cross-Origin-Resource-Policy': 'same-origin',
        'Cache-Control': 'no-store',
      });
      res.end(body);
    };
    let rel;
    try {
      rel = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    } catch {
      return send(400, 'bad path\n');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'GET only\n');
    // a NUL makes fs throw: refuse it (and control characters) up front
    if (/[\0-\x1f]/.test(rel)) return send(400, 'bad path\n');
    let file = path.resolve(base, '.' + rel);
    if (file !== base && !file.startsWith(base + path.sep)) return send(403, 'outside the served folder\n');
    if (rel.endsWith('/')) file = path.join(file, 'index.html');
    // the real path must stay inside the real folder: a link out of it
    // (to /etc/passwd, say) is not followed
    fs.realpath(file, (err, real) => {
      if (err) return send(404, `not found: ${rel}\n`);
      if (!real.startsWith(realBase + path.sep)) return send(403, 'outside the served folder\n');
      fs.readFile(real, (err2, data) => {
        if (err2) return send(404, `not found: ${rel}\n`);
        send(200, req.method === 'HEAD' ? '' : data, TYPES[path.extname(real)] || 'application/octet-stream');
      });
    });
  });
  server.on('clientError', (e, socket) => socket.destroy());
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

const self = process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname);
if (self) {
  const args = process.argv.slice(2);
  let dir = '.', port = 8080, host = '127.0.0.1';
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--port') port = Number(args[++i]);
    else if (args[i] === '--host') host = args[++i];
    else if (args[i].startsWith('-')) {
      console.error(`serve: unknown option ${args[i]} (serve.mjs [DIR] [--port N] [--host H])`);
      process.exit(2);
    } else dir = args[i];
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error('serve: --port wants a number from 0 to 65535');
    process.exit(2);
  }
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    console.error(`serve: ${dir} is not a folder`);
    process.exit(1);
  }
  serve(dir, { port, host }).then((s) => {
    console.log(`serving ${path.resolve(dir)} at http://${host}:${s.address().port}/`);
  }, (e) => {
    console.error(`serve: cannot listen on ${host}:${port}: ${e.message}`);
    process.exit(1);
  });
}
