// Page load in a real browser: loads each given page of a shop LOADS times in headless
// Chromium (the Debian `chromium`; caches warm: one browser context for all loads, after one
// unmeasured load per page) and prints, per page, the median and p95 of the time from
// navigation start to the load event, as JSON.
//
//   node pageload.js BASE_URL LOADS PATH...
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function loadTimes(page, url, loads) {
  const times = [];
  await page.goto(url, { waitUntil: 'load' });
  for (let n = 0; n < loads; n++) {
    await page.goto(url, { waitUntil: 'load' });
    const t = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      return nav.loadEventEnd - nav.startTime;
    });
    times.push(t);
  }
  return times.sort((a, b) => a - b);
}

async function main() {
  const [base, loadsText, ...paths] = process.argv.slice(2);
  const loads = Number(loadsText);
  if (!base || !(loads > 0) || paths.length === 0) {
    console.error('usage: node pageload.js BASE_URL LOADS PATH...');
    process.exit(2);
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const page = await (await browser.newContext()).newPage();
  const result = {};
  try {
    for (const path of paths) {
      const times = await loadTimes(page, base.replace(/\/$/, '') + path, loads);
      result[path] = { loads, median_ms: quantile(times, 0.5), p95_ms: quantile(times, 0.95) };
    }
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(result));
}

main().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
