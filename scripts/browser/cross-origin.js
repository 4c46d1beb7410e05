// Loads scripts/browser/cross-origin.html from PAGE_URL (another origin than the node) in
// headless Chromium; the page writes through fetch and follows the Note table over an
// EventSource and a WebSocket. Writes from the page and from outside must all show in both
// streams, with no console error (a CORS refusal is one). Saves a screenshot.
//
//   node cross-origin.js PAGE_URL NODE_URL SCREENSHOT
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

async function main() {
  const [pageUrl, node, shot] = process.argv.slice(2);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const errors = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 520 } });
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${pageUrl}?node=${encodeURIComponent(node)}`, { waitUntil: 'load' });
    await page.waitForFunction(() => window.streams.sse && window.streams.ws, null, { timeout: 5000 });
    for (let i = 1; i <= 3; i++) {
      await page.evaluate(([id, text]) => window.write(id, text), [`n${i}`, `note ${i} from the page`]);
    }
    // From outside the page: a write and a delete.
    const put = await fetch(`${node}/Note/n4`, {
      method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: '{"text":"note 4 from curl"}',
    });
    const del = await fetch(`${node}/Note/n1`, { method: 'DELETE' });
    if (put.status >= 300 || del.status >= 300) throw new Error(`outside writes: ${put.status} ${del.status}`);
    await page.waitForFunction(() => ['sse', 'ws'].every(
      (l) => document.querySelectorAll(`#${l} li`).length >= 5), null, { timeout: 5000 });
    const seen = await page.evaluate(() => ({
      fetch: [...document.querySelectorAll('#fetch li')].map((li) => li.textContent),
      sse: [...document.querySelectorAll('#sse li')].map((li) => li.textContent),
      ws: [...document.querySelectorAll('#ws li')].map((li) => li.textContent),
    }));
    await page.screenshot({ path: shot });
    if (errors.length) throw new Error(`console errors: ${errors.join(' | ')}`);
    const want = ['put n1', 'put n2', 'put n3', 'put n4', 'delete n1'];
    for (const l of ['sse', 'ws']) {
      const kinds = seen[l].map((t) => t.split(' ').slice(0, 2).join(' '));
      if (JSON.stringify(kinds) !== JSON.stringify(want)) throw new Error(`${l} saw ${JSON.stringify(seen[l])}`);
    }
    console.log(JSON.stringify(seen, null, 1));
    console.log(`cross-origin: fetch ${seen.fetch.length}, EventSource ${seen.sse.length}, WebSocket ${seen.ws.length} changes; screenshot ${shot}`);
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(`cross-origin: ${e.message}`);
  process.exit(1);
});
