// A page's HTML rendered once without its live values: the fair gateway caches it and
// fills in price and stock on each request. Slots are marked with NUL characters, which
// escaped page text never contains.
'use strict';

const { render, formatLive } = require('./html');

const MARK = '\u0000';

// Renders `kind` with a marker per live value; answers the static strings between them
// and the slots ({ kind, id }) that go between those strings.
function compile(kind, page) {
  const html = render(kind, page, (k, id) => `${MARK}${k}:${id}${MARK}`);
  const parts = html.split(MARK);
  const statics = parts.filter((_, i) => i % 2 === 0);
  const slots = parts.filter((_, i) => i % 2 === 1).map((s) => {
    const at = s.indexOf(':');
    return { kind: s.slice(0, at), id: s.slice(at + 1) };
  });
  return { statics, slots };
}

function fill(template, live) {
  const { statics, slots } = template;
  let out = statics[0];
  for (let i = 0; i < slots.length; i++) {
    out += formatLive(slots[i].kind, live.get(slots[i].id)) + statics[i + 1];
  }
  return out;
}

module.exports = { compile, fill };
