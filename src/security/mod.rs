//! What the front ends (HTTP and MQTT) check before they serve a client: admission limits
//! (`limits`: request and publish rates, connections per address). Below the front ends and
//! above the runtime: it knows neither HTTP nor MQTT, only addresses, keys and counters.

pub mod limits;
