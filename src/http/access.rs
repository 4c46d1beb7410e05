//! The access log (`[log] access`, off by default): one info line for one request in
//! `log.access_sample`, with its client, user, method, path, status and duration. The count
//! is per shard thread; a request that is not sampled costs a counter and a branch, nothing
//! is formatted for it.

use super::request::{Method, Request};
use crate::config::LogConfig;
use std::cell::Cell;
use std::net::IpAddr;
use std::time::Instant;

thread_local! {
    /// Requests this shard has seen since it started, for sampling.
    static SEEN: Cell<u64> = const { Cell::new(0) };
}

/// What a sampled request's line needs from the request, taken before it is answered.
pub struct Sampled {
    client: IpAddr,
    user: Option<String>,
    method: Method,
    path: String,
    started: Instant,
}

/// `Some` when this request is to be logged.
pub fn sample(config: &LogConfig, client: IpAddr, req: &Request<'_>) -> Option<Sampled> {
    if !config.access {
        return None;
    }
    let n = SEEN.with(|c| {
        let n = c.get();
        c.set(n.wrapping_add(1));
        n
    });
    if !n.is_multiple_of(config.access_sample.max(1)) {
        return None;
    }
    Some(Sampled {
        client,
        user: None,
        method: req.method,
        path: req.path.to_string(),
        started: Instant::now(),
    })
}

impl Sampled {
    /// Records who the request authenticated as.
    pub fn user(&mut self, req: &Request<'_>) {
        self.user = req.user.as_ref().map(|u| u.name.clone());
    }

    /// Writes the line for the answer's status.
    pub fn log(self, shard: usize, status: u16) {
        tracing::info!(
            shard,
            client = %self.client,
            user = %self.user.as_deref().unwrap_or("-"),
            method = %self.method.as_str(),
            path = %self.path,
            status,
            duration_us = self.started.elapsed().as_micros() as u64,
            "access"
        );
    }
}
