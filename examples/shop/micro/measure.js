// Counts the internal HTTP calls behind each page: reads every service's request count
// (GET /_stats) before and after one page request to the gateway, twice per page (in the
// fair design the first request of a page may fill its cache, the second one hits it).
// Usage: node measure.js PORT   (the instance run.sh started on that gateway port)
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const SERVICES = ['catalog', 'inventory', 'pricing', 'reviews'];
const PAGES = ['/shop/api/home', '/shop/api/c/cat-3', '/shop/api/p/p-0042', '/shop/', '/shop/c/cat-3', '/shop/p/p-0042'];

function instanceEnv(port) {
  const file = path.join(process.env.SHOP_MICRO_DIR || '/tmp/shop-micro', String(port), 'env');
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  return Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

async function counts(env) {
  const out = {};
  for (const s of SERVICES) {
    const res = await fetch(`http://127.0.0.1:${env[`${s.toUpperCase()}_PORT`]}/_stats`);
    out[s] = (await res.json()).requests;
  }
  return out;
}

async function callsFor(env, port, page) {
  const before = await counts(env);
  const res = await fetch(`http://127.0.0.1:${port}${page}`);
  await res.text();
  const after = await counts(env);
  const per = SERVICES.map((s) => after[s] - before[s]);
  return { total: per.reduce((a, b) => a + b, 0), per };
}

async function main() {
  const port = Number(process.argv[2] || 3000);
  const env = instanceEnv(port);
  console.log(`MODE=${env.MODE}: internal calls per page (catalog/inventory/pricing/reviews)`);
  for (const page of PAGES) {
    const first = await callsFor(env, port, page);
    const second = await callsFor(env, port, page);
    console.log(`${page.padEnd(20)} first ${String(first.total).padStart(3)} (${first.per.join('/')})`
      + `  again ${String(second.total).padStart(3)} (${second.per.join('/')})`);
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
