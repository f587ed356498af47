// test_serve.mjs — `kiln serve` and web/serve.mjs on hostile requests
// (node:test): NUL and control characters, traversal spelled every way,
// links out of the folder, a few thousand random paths on loopback; and
// `kiln serve DIR` runs kiln's own server, never the folder's serve.mjs.
// KILN names the kiln binary.
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { serve } from '../web/serve.mjs';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-serve-'));
const site = path.join(root, 'site'), outside = path.join(root, 'outside');
fs.mkdirSync(path.join(site, 'sub'), { recursive: true });
fs.mkdirSync(outside);
fs.writeFileSync(path.join(site, 'index.html'), 'inside\n');
fs.writeFileSync(path.join(site, 'sub', 'a.txt'), 'a\n');
fs.writeFileSync(path.join(outside, 'secret.txt'), 'TOP-SECRET-CONTENT\n');
fs.symlinkSync('/etc/passwd', path.join(site, 'passwd'));
fs.symlinkSync(outside, path.join(site, 'out'));
fs.symlinkSync(path.join(site, 'sub', 'a.txt'), path.join(site, 'link-inside.txt'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

// a raw GET (node's client would normalise the path): [status, body]
function get(port, rawPath) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: rawPath, method: 'GET', insecureHTTPParser: true });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve([res.statusCode, body]));
    });
    req.on('error', reject);
    req.end();
  });
}

test('hostile paths get 4xx and the server survives them', async () => {
  const server = await serve(site, { port: 0 });
  const port = server.address().port;
  try {
    assert.deepEqual(await get(port, '/'), [200, 'inside\n']);
    assert.deepEqual(await get(port, '/sub/a.txt'), [200, 'a\n']);
    assert.deepEqual(await get(port, '/link-inside.txt'), [200, 'a\n']); // a link that stays inside
    for (const p of ['/%00', '/index.html%00.txt', '/%0a', '/passwd', '/out/secret.txt', '/../outside/secret.txt',
      '/%2e%2e/outside/secret.txt', '/sub/..%2f..%2foutside/secret.txt', '/%2e%2e%2f%2e%2e%2fetc%2fpasswd', '/%',
      '/%zz', '//etc/passwd', '/sub', '/nonexistent']) {
      const [code, body] = await get(port, p);
      assert.ok(code >= 400 && code < 500, `${p}: status ${code}`);
      assert.ok(!body.includes('TOP-SECRET-CONTENT') && !body.includes('root:x:0:0'), `${p} leaked: ${body}`);
    }
    // a few thousand random paths: bytes percent-encoded, separators and dots favoured
    let x = 12345;
    const rnd = (n) => ((x = (x * 1103515245 + 12345) >>> 0) >>> 8) % n;
    const alphabet = ['/', '.', '..', '%2e', '%2f', '%00', '%5c', 'sub', 'passwd', 'out', 'a.txt', 'index.html', '\\', '~'];
    for (let i = 0; i < 3000; i++) {
      let p = '';
      for (let k = 0, n = 1 + rnd(8); k < n; k++)
        p += rnd(3) ? alphabet[rnd(alphabet.length)] : '%' + rnd(256).toString(16).padStart(2, '0');
      const [code, body] = await get(port, '/' + p);
      assert.ok(code < 500, `/${p}: status ${code}`);
      assert.ok(!body.includes('TOP-SECRET-CONTENT') && !body.includes('root:x:0:0'), `/${p} leaked`);
    }
    assert.deepEqual(await get(port, '/'), [200, 'inside\n']); // still serving
  } finally {
    server.close();
  }
});

test("kiln serve runs kiln's own server, never the folder's serve.mjs", async () => {
  const marker = path.join(root, 'ran');
  fs.writeFileSync(path.join(site, 'serve.mjs'), `import fs from 'node:fs'; fs.writeFileSync(${JSON.stringify(marker)}, 'x');`);
  const child = spawn(process.env.KILN, ['serve', site, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const line = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(out);
    });
    child.on('exit', (code) => reject(new Error(`kiln serve exited with ${code}`)));
  });
  const port = Number(/:(\d+)\//.exec(line)[1]);
  assert.deepEqual(await get(port, '/'), [200, 'inside\n']);
  child.kill();
  assert.ok(!fs.existsSync(marker), "the folder's serve.mjs ran");
});

test('kiln serve refuses a bad port and a missing folder', async () => {
  const run = (...args) => new Promise((resolve) => {
    const c = spawn(process.env.KILN, ['serve', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d) => (err += d));
    c.on('exit', (code) => resolve([code, err]));
  });
  const [c1, e1] = await run(site, '--port', '70000');
  assert.equal(c1, 2);
  assert.match(e1, /--port takes a whole number from 0 to 65535/);
  const [c2, e2] = await run(path.join(root, 'nope'));
  assert.equal(c2, 1);
  assert.match(e2, /is not a folder/);
});
