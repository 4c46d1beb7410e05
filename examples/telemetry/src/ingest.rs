//! From a device's MQTT publish to its aggregates: the publish handler stores the reading,
//! the validator checks it on the owner's writer, the change handler adds it to the device's
//! stats, and the job sums up the fleet.

use super::{READING, STATS, SUMMARY};
use microlith::app::{ChangeEvent, Check, Ctx, Doc, Error, Publish, PublishAction};
use serde_json::{json, Value};

/// `devices/{id}/telemetry` with `{"value": n}`: stored as record `{id}` of `Reading`, then
/// delivered as it is (so live MQTT subscribers see it too).
pub async fn on_reading(ctx: Ctx, p: Publish) -> Result<PublishAction, Error> {
    let device = p
        .topic
        .split('/')
        .nth(1)
        .ok_or_else(|| Error::bad_request("the topic names no device"))?;
    let body: Value = serde_json::from_slice(&p.payload)?;
    let value = body
        .get("value")
        .and_then(Value::as_f64)
        .ok_or_else(|| Error::bad_request("a reading is {\"value\": number}"))?;
    let mut doc = Doc::new();
    doc.insert("value".into(), json!(value));
    ctx.table(READING)?.put(device, doc).await?;
    Ok(PublishAction::Deliver)
}

/// A reading must be a number within bounds; it gets `received_ms` when it has none.
pub fn check_reading(check: &mut Check<'_>, min: f64, max: f64) -> Result<(), Error> {
    let Some(doc) = check.doc_mut() else {
        return Ok(()); // deleting a reading is fine
    };
    let value = doc
        .get("value")
        .and_then(Value::as_f64)
        .ok_or_else(|| Error::new(422, "a reading needs a numeric `value`"))?;
    if !(min..=max).contains(&value) {
        return Err(Error::new(
            422,
            format!("reading {value} is outside {min} .. {max}"),
        ));
    }
    if !doc.contains_key("received_ms") {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        doc.insert("received_ms".into(), json!(now));
    }
    Ok(())
}

/// Each reading stored on this node counts once in its device's stats.
pub async fn add_to_stats(ctx: Ctx, change: ChangeEvent) -> Result<(), Error> {
    let (Some(doc), true) = (change.doc, change.local) else {
        return Ok(());
    };
    let Some(value) = doc.get("value").and_then(Value::as_f64) else {
        return Ok(());
    };
    let stats = ctx.table(STATS)?;
    let mut delta = Doc::new();
    delta.insert("count".into(), json!(1));
    delta.insert("sum".into(), json!(value));
    if stats.get(&change.id)?.is_none() {
        // The first reading of a device creates its stats; a lost race with another first
        // reading only means this one adds instead.
        let mut first = delta.clone();
        first.insert("device".into(), json!(change.id));
        let created = stats
            .put_if(&change.id, first, microlith::app::Precondition::IfAbsent)
            .await;
        if created.is_ok() {
            return Ok(());
        }
    }
    stats.add_to(&change.id, delta).await?;
    Ok(())
}

/// The fleet's totals, from every device's stats.
pub async fn summarize(ctx: Ctx) -> Result<(), Error> {
    let rows = ctx.table(STATS)?.search("count=ge=1&limit(100000)").await?;
    let (mut readings, mut sum) = (0u64, 0f64);
    for r in &rows {
        readings += r.get("count").and_then(Value::as_u64).unwrap_or(0);
        sum += r.get("sum").and_then(Value::as_f64).unwrap_or(0.0);
    }
    let mean = if readings > 0 {
        sum / readings as f64
    } else {
        0.0
    };
    let summary = json!({ "devices": rows.len(), "readings": readings, "mean": mean });
    let Value::Object(doc) = summary else {
        return Err(Error::new(500, "summary is not an object"));
    };
    ctx.table(SUMMARY)?.put("fleet", doc).await?;
    Ok(())
}
