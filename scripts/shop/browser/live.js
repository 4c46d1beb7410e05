// Live updates in a real browser: opens a product page in headless Chromium, changes the
// product's price and stock through the shop's REST writes, and waits until the open page
// shows both new values without a reload. Exit 0 when it does (within 5 s), 1 otherwise.
//
//   node live.js BASE_URL PRODUCT_ID
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

async function put(base, path, body) {
  const r = await fetch(base + path, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (r.status >= 300) throw new Error(`PUT ${path}: ${r.status}`);
}

async function main() {
  const [base, id] = process.argv.slice(2);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    await page.goto(`${base}/shop/p/${id}`, { waitUntil: 'load' });
    const before = await page.$eval('.product', (el) => [el.dataset.priceCents, el.dataset.stock]);
    await page.waitForTimeout(500); // the page's streams connect
    await put(base, `/Price/${id}`, { id, amount_cents: 12345, currency: 'USD' });
    await put(base, `/Inventory/${id}`, { id, quantity: 7 });
    await page.waitForFunction(() => {
      const el = document.querySelector('.product');
      return el.dataset.priceCents === '12345' && el.dataset.stock === '7' && el.textContent.includes('$123.45');
    }, null, { timeout: 5000 });
    console.log(`live: ${id} went from ${before.join('/')} to 12345/7 in the open page, no reload`);
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(`live: ${e.message}`);
  process.exit(1);
});
