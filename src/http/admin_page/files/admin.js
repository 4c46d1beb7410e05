// The admin page: reads snapshots from /admin/live (Server-Sent Events, one a second), fills
// the tables and draws the two charts on <canvas> by hand. No libraries, nothing fetched from
// elsewhere.
"use strict";

const HISTORY = 90; // points kept per chart (a minute and a half)
const rate = [];
const p50 = [];
const p99 = [];

function push(series, v) {
  series.push(v);
  if (series.length > HISTORY) series.shift();
}

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// A line chart of one or more series sharing a y axis that starts at 0.
function draw(canvas, lines) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, left = 48, bottom = 18, top = 8;
  ctx.clearRect(0, 0, w, h);
  let max = 0;
  for (const l of lines) for (const v of l.data) if (v != null && v > max) max = v;
  max = niceCeil(max || 1);
  ctx.font = "11px system-ui, sans-serif";
  ctx.strokeStyle = "#e3e6ec";
  ctx.fillStyle = "#6b7385";
  ctx.textAlign = "right";
  for (let i = 0; i <= 4; i++) {
    const y = top + (h - top - bottom) * (1 - i / 4);
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(w - 4, y); ctx.stroke();
    ctx.fillText(short(max * i / 4), left - 6, y + 4);
  }
  ctx.textAlign = "left";
  ctx.fillText(`last ${HISTORY} s`, left, h - 4);
  const dx = (w - left - 4) / (HISTORY - 1);
  for (const l of lines) {
    ctx.strokeStyle = l.color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    let started = false;
    const offset = HISTORY - l.data.length;
    l.data.forEach((v, i) => {
      if (v == null) { started = false; return; }
      const x = left + (offset + i) * dx;
      const y = top + (h - top - bottom) * (1 - v / max);
      if (started) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      started = true;
    });
    ctx.stroke();
    ctx.lineWidth = 1;
  }
}

function niceCeil(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function short(v) {
  if (v >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (v >= 1e3) return (v / 1e3).toFixed(1) + "k";
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + units[i];
}

// Fills a table body with rows of cells; numbers are right-aligned.
function fill(id, rows, empty) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren();
  if (rows.length === 0) {
    const tr = body.insertRow();
    const td = tr.insertCell();
    td.colSpan = document.querySelectorAll(`#${id} th`).length;
    td.className = "empty";
    td.textContent = empty;
    return;
  }
  for (const row of rows) {
    const tr = body.insertRow();
    for (const cell of row) {
      const td = tr.insertCell();
      if (cell && typeof cell === "object") {
        td.textContent = cell.text;
        td.className = cell.cls || "";
      } else {
        td.textContent = cell;
        if (typeof cell === "number") td.className = "num";
      }
    }
  }
}

function state(s) {
  const v = (s && s.state) || "none";
  return { text: v, cls: "state-" + v };
}

function show(snap) {
  const n = snap.node;
  document.getElementById("node").textContent =
    `node ${n.id} · v${n.version} · ${snap.shards.length} shard(s) · ${n.partitions} partitions · ` +
    `durability ${n.durability} · up ${Math.round(n.uptime_ms / 1000)} s`;
  const r = snap.requests;
  push(rate, r.per_sec);
  push(p50, r.p50_us);
  push(p99, r.p99_us);
  draw(document.getElementById("rate"), [{ data: rate, color: css("--rate") }]);
  draw(document.getElementById("latency"), [
    { data: p50, color: css("--p50") },
    { data: p99, color: css("--p99") },
  ]);
  fill("shards", snap.shards.map(s => [s.shard, s.core, s.http_connections, s.in_flight, s.requests,
    s.records, s.writes, s.write_queue, s.mqtt_connections, bytes(s.storage_bytes)]), "no shards");
  fill("tables", snap.tables.map(t => [t.name, t.primary_key, t.indexes.join(", ")]), "no tables");
  fill("classes", Object.entries(r.by_class).filter(([, v]) => v > 0).map(([k, v]) => [k, v]), "no requests yet");
  const m = snap.mqtt;
  document.getElementById("mqtt-sum").textContent =
    `${m.connections} connected · ${m.sessions} sessions · ${m.subscriptions} subscriptions · ` +
    `${m.messages_in} in · ${m.messages_out} out · ${m.dropped} dropped`;
  fill("clients", m.clients.map(c => [c.client_id, c.shard, c.connected ? "yes" : "no",
    c.persistent ? "yes" : "no", c.subscriptions, c.queued]), "no MQTT clients");
  const links = snap.replication;
  fill("links", (links || []).map(p => [p.node_id ?? "?", p.addr || "(dialed us)", state(p.inbound),
    state(p.outbound), p.inbound.lag_entries, p.inbound.lag_ms]),
    links ? "no peers" : "replication is off");
}

function connect() {
  const feed = document.getElementById("feed");
  const source = new EventSource("/admin/live");
  source.addEventListener("snapshot", e => {
    feed.textContent = "live feed: " + new Date().toLocaleTimeString();
    feed.className = "feed ok";
    show(JSON.parse(e.data));
  });
  source.onerror = () => {
    feed.textContent = "live feed: disconnected, retrying";
    feed.className = "feed bad";
    if (source.readyState === EventSource.CLOSED) {
      // Refused (e.g. too many viewers): try again later.
      setTimeout(connect, 5000);
    }
  };
}

connect();
