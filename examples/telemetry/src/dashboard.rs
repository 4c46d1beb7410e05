//! What people look at: one device (its metadata from the caching table, its stats, its last
//! reading), the fleet's summary, and a live page that follows every device's stats.

use super::{DEVICE, READING, STATS, SUMMARY};
use microlith::app::{Ctx, Error, Request, Response};
use serde_json::{json, Value};

/// `GET /telemetry/devices/{id}`.
pub async fn device(ctx: Ctx, req: Request) -> Result<Response, Error> {
    let id = req.required("id")?;
    let stats = ctx.table(STATS)?.get(id)?.map(|r| r.doc()).transpose()?;
    let reading = ctx.table(READING)?.get(id)?.map(|r| r.doc()).transpose()?;
    if stats.is_none() && reading.is_none() {
        return Err(Error::not_found(format!("no readings of device {id:?}")));
    }
    // Metadata comes from the origin (through the cache) when one is configured; a device the
    // origin does not know, or an origin that is down with nothing cached, leaves it null.
    let device = match ctx.table(DEVICE)?.get_cached(id).await {
        Ok(found) => found.map(|c| c.doc()).transpose()?,
        Err(e) if e.status == 404 || e.status >= 500 => None,
        Err(e) => return Err(e),
    };
    let mean = stats.as_ref().and_then(|s| {
        let count = s.get("count")?.as_f64()?;
        let sum = s.get("sum")?.as_f64()?;
        (count > 0.0).then(|| sum / count)
    });
    Response::json(
        200,
        &json!({ "id": id, "device": device, "stats": stats, "mean": mean, "last": reading }),
    )
}

/// `GET /telemetry/summary`: what the fleet-summary job wrote last.
pub async fn summary(ctx: Ctx, _req: Request) -> Result<Response, Error> {
    match ctx.table(SUMMARY)?.get("fleet")? {
        Some(r) => Ok(Response::raw_json(200, r.body().to_vec())),
        None => Response::json(200, &Value::Null),
    }
}

/// `GET /telemetry/stream`: every device's stats as they change (SSE, or a WebSocket).
pub async fn stream(_ctx: Ctx, _req: Request) -> Result<Response, Error> {
    Ok(Response::stream(STATS, None))
}

/// `GET /telemetry/dashboard`: a page that follows the stream.
pub async fn page(_ctx: Ctx, _req: Request) -> Result<Response, Error> {
    Ok(Response::html(200, PAGE))
}

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Telemetry</title>
<style>body{font:14px system-ui;margin:2em}td,th{padding:.3em 1em;text-align:right}</style>
</head><body><h1>Devices</h1>
<table><thead><tr><th>device</th><th>readings</th><th>mean</th></tr></thead><tbody id="rows"></tbody></table>
<script>
const rows = {};
const events = new EventSource('/telemetry/stream');
events.onmessage = (e) => {
  const change = JSON.parse(e.data);
  if (change.type !== 'put') return;
  const s = change.value;
  let tr = rows[s.id];
  if (!tr) { tr = rows[s.id] = document.createElement('tr'); document.getElementById('rows').append(tr); }
  tr.innerHTML = `<td>${s.id}</td><td>${s.count}</td><td>${(s.sum / s.count).toFixed(2)}</td>`;
};
</script></body></html>
"#;
