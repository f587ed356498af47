// rpc_tab.mjs — a headless Chromium tab as an RPC device for the tests:
// opens the proxy's device page (http://127.0.0.1:PORT/#key=KEY), waits
// until it has registered, prints "tab registered: <backends>" and stays.
// SIGUSR1 closes the tab (a user closing it mid-call) and opens a fresh
// one; SIGTERM closes the browser and exits.
//
//   node tests/rpc_tab.mjs WEB_PORT KEY
import fs from 'node:fs';

const [port, key] = process.argv.slice(2);
const { chromium } = await import('playwright-core');
const profile = fs.mkdtempSync('/tmp/kiln-chromium-');
const ctx = await chromium.launchPersistentContext(profile, {
  headless: true,
  executablePath: process.env.KILN_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--no-first-run', '--disable-quic', '--enable-unsafe-webgpu'],
});
const url = `http://127.0.0.1:${port}/#key=${encodeURIComponent(key)}`;

async function openTab() {
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.error(`tab: page error: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && console.error(`tab: ${m.text()}`));
  await page.goto(url);
  await page.waitForFunction(() => /registered/.test(window.kilnRpc?.state?.status ?? ''), null, { timeout: 60000 });
  const devices = await page.evaluate(() => window.kilnRpc.state.devices.map((d) => `${d.target} (${d.description})`).join(', '));
  console.log(`tab registered: ${devices}`);
  return page;
}

let page = await openTab();
let busy = Promise.resolve();
process.on('SIGUSR1', () => {
  busy = busy.then(async () => {
    await page.close();
    console.log('tab closed');
    page = await openTab();
  });
});
const quit = async () => {
  await ctx.close();
  fs.rmSync(profile, { recursive: true, force: true });
  process.exit(0);
};
process.on('SIGTERM', quit);
process.on('SIGINT', quit);
setInterval(() => {}, 1 << 30);
