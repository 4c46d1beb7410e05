// Loads the admin page in headless Chromium, waits until its live charts have drawn at least
// MIN_POINTS snapshots with requests in them, checks the tables filled in, and saves a
// screenshot. Exit 0 when all of that happened, 1 otherwise.
//
//   node screenshot.js BASE_URL OUT.png [MIN_POINTS]
// playwright-core comes from scripts/shop/browser (npm ci there).
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

async function main() {
  const [base, out, min] = process.argv.slice(2);
  const minPoints = Number(min || 20);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${base}/admin/`, { waitUntil: 'load' });
    // `rate` is the page script's history of requests per second, one point per snapshot.
    await page.waitForFunction(
      (n) => rate.length >= n && rate.filter((v) => v > 0).length >= n / 2,
      minPoints,
      { timeout: (minPoints + 30) * 1000, polling: 500 },
    );
    const filled = await page.evaluate(() => ({
      shards: document.querySelectorAll('#shards tbody tr').length,
      tables: document.querySelector('#tables tbody').textContent,
      clients: document.querySelector('#clients tbody').textContent,
      feed: document.getElementById('feed').className,
      peak: Math.max(...rate),
    }));
    await page.screenshot({ path: out, fullPage: true });
    console.log(JSON.stringify({ ...filled, errors }));
    if (errors.length || filled.shards === 0 || filled.feed !== 'feed ok') process.exit(1);
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
