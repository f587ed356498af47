// chromium.mjs — headless Chromium for the browser tests: Debian's
// /usr/bin/chromium (KILN_CHROMIUM overrides) driven by npm playwright-core,
// on a page of root served by kiln's own web/serve.mjs on 127.0.0.1; WebGPU
// on SwiftShader (--enable-unsafe-webgpu), WebGL2 on ANGLE + SwiftShader.
import fs from 'node:fs';
import path from 'node:path';

// Runs fn(page, origin) on harness.html in root; closes everything after.
export async function withChromiumPage(root, fn) {
  const { chromium } = await import('playwright-core');
  const { serve } = await import('../web/serve.mjs');
  fs.writeFileSync(path.join(root, 'harness.html'), '<!doctype html><meta charset="utf-8"><title>kiln tests</title>\n');
  const server = await serve(root, { port: 0 });
  const profile = fs.mkdtempSync('/tmp/kiln-chromium-');
  let ctx;
  try {
    ctx = await chromium.launchPersistentContext(profile, {
      headless: true,
      executablePath: process.env.KILN_CHROMIUM || '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--no-first-run', '--disable-quic', '--enable-unsafe-webgpu'],
    });
    const page = await ctx.newPage();
    const origin = `http://127.0.0.1:${server.address().port}`;
    await page.goto(`${origin}/harness.html`);
    return await fn(page, origin);
  } finally {
    await ctx?.close();
    server.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}
