//! Example component: device telemetry, using every part of the component API.
//!
//! - **MQTT ingest** (`on_publish`): devices publish `{"value": 21.5}` to
//!   `devices/{id}/telemetry`. The handler stores the reading as record `{id}` of `Reading`;
//!   a payload that is not such JSON is not delivered (MQTT 5.0 clients get reason 0x83).
//! - **Validation** (`validate`, on the owner's writer): a reading outside `min_value` ..
//!   `max_value` is refused (422), through MQTT, REST or any other path; an accepted one gets
//!   `received_ms` when it has none.
//! - **Aggregates** (`on_change`): each committed reading adds to its device's `DeviceStats`
//!   record (`count`, `sum`) with `add_to`, an exact counter on the owner.
//! - **Dashboard** (resources): `GET /telemetry/dashboard` is an HTML page that follows
//!   `GET /telemetry/stream` (the `DeviceStats` changes as SSE); `GET /telemetry/devices/{id}`
//!   joins the device's metadata, its stats and its last reading in one JSON document.
//! - **Caching table**: with `device_origin` set, `Device` is filled from that HTTP service
//!   (`{id}` in the URL template) and kept `device_expiration_secs`.
//! - **Job**: every `summary_every_secs`, once per cluster, the fleet's totals go to
//!   `FleetSummary/fleet`.
//!
//! ```toml
//! [components.telemetry]
//! min_value = -50.0
//! max_value = 150.0
//! device_origin = "http://127.0.0.1:8080/devices/{id}"   # optional
//! device_expiration_secs = 3600
//! summary_every_secs = 10
//! ```
//!
//! Aggregates count the readings stored on each node: with replication on, two nodes adding
//! to one device's stats at the same moment converge last-writer-wins, not to the sum.

#[path = "dashboard.rs"]
mod dashboard;
#[path = "ingest.rs"]
mod ingest;

use microlith::app::{CacheSpec, Component, Schedule, Scope, Setup};
use serde::Deserialize;
use std::time::Duration;

/// The component.
pub struct Telemetry;

/// The `[components.telemetry]` section.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Config {
    pub min_value: f64,
    pub max_value: f64,
    pub device_origin: Option<String>,
    pub device_expiration_secs: u64,
    pub summary_every_secs: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            min_value: -50.0,
            max_value: 150.0,
            device_origin: None,
            device_expiration_secs: 3600,
            summary_every_secs: 10,
        }
    }
}

pub(crate) const READING: &str = "Reading";
pub(crate) const STATS: &str = "DeviceStats";
pub(crate) const DEVICE: &str = "Device";
pub(crate) const SUMMARY: &str = "FleetSummary";

impl Component for Telemetry {
    fn name(&self) -> &'static str {
        "telemetry"
    }

    fn setup(&self, s: &mut Setup<'_>) -> Result<(), String> {
        let config: Config = s.config()?;
        if config.min_value >= config.max_value {
            return Err("`components.telemetry`: min_value must be below max_value".into());
        }
        s.table(READING, "id", &[]);
        s.table(STATS, "id", &["count"]);
        s.table(SUMMARY, "id", &[]);
        match &config.device_origin {
            Some(url) => {
                let expiration = Duration::from_secs(config.device_expiration_secs.max(1));
                s.caching_table(CacheSpec::http(DEVICE, url, expiration).stale_if_error(true))?;
            }
            None => s.table(DEVICE, "id", &[]),
        }
        let (min, max) = (config.min_value, config.max_value);
        s.validate(READING, move |check| ingest::check_reading(check, min, max));
        s.on_publish("devices/+/telemetry", ingest::on_reading)?;
        s.on_change(READING, ingest::add_to_stats);
        let every = Duration::from_secs(config.summary_every_secs.max(1));
        s.job(
            "fleet-summary",
            Schedule::every(every),
            Scope::OncePerCluster,
            ingest::summarize,
        )?;
        s.get("/telemetry/devices/:id", dashboard::device)?;
        s.get("/telemetry/summary", dashboard::summary)?;
        s.get("/telemetry/stream", dashboard::stream)?;
        s.get("/telemetry/dashboard", dashboard::page)?;
        Ok(())
    }
}
