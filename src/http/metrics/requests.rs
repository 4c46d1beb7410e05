//! A shard's request counters: per route class, the answers by status class and a latency
//! histogram (HDR, microseconds). Owned by the shard and touched only by its thread, so
//! recording a request is a few plain integer increments — no atomics, no locks, no
//! allocation. `/metrics` and `/admin/live` copy them out through the metrics mesh (`gather`).

use hdrhistogram::Histogram;
use std::cell::{Cell, RefCell};
use std::time::Duration;

/// What kind of resource a request was for (the `class` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteClass {
    /// `/health`, `/status`, `/metrics`.
    Status,
    /// `/admin/…`, `/auth/…`.
    Admin,
    /// `/cluster/…`.
    Cluster,
    /// A component's route.
    Component,
    /// `/{Table}`: the table's description.
    Table,
    /// `/{Table}/`: queries and inserts.
    Query,
    /// `/{Table}/{id}`.
    Record,
    /// SSE and WebSocket streams (counted when they open), MQTT over WebSocket.
    Stream,
    /// Requests that could not be parsed.
    Invalid,
}

impl RouteClass {
    pub const ALL: [RouteClass; 9] = [
        RouteClass::Status,
        RouteClass::Admin,
        RouteClass::Cluster,
        RouteClass::Component,
        RouteClass::Table,
        RouteClass::Query,
        RouteClass::Record,
        RouteClass::Stream,
        RouteClass::Invalid,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RouteClass::Status => "status",
            RouteClass::Admin => "admin",
            RouteClass::Cluster => "cluster",
            RouteClass::Component => "component",
            RouteClass::Table => "table",
            RouteClass::Query => "query",
            RouteClass::Record => "record",
            RouteClass::Stream => "stream",
            RouteClass::Invalid => "invalid",
        }
    }

    /// The class of a path by its shape (a component's route is told apart by the router).
    pub fn of_path(path: &str) -> RouteClass {
        let under = |root: &str| {
            path.strip_prefix(root)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        match path {
            "/health" | "/status" | "/metrics" => return RouteClass::Status,
            "/mqtt" => return RouteClass::Stream,
            _ => {}
        }
        if under("/admin") || under("/auth") {
            return RouteClass::Admin;
        }
        if under("/cluster") {
            return RouteClass::Cluster;
        }
        match path.get(1..).and_then(|p| p.split_once('/')) {
            None => RouteClass::Table,
            Some((_, "")) => RouteClass::Query,
            Some(_) => RouteClass::Record,
        }
    }
}

/// Status classes counted: 1xx to 5xx.
pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Latencies are kept from 1 µs to a minute, to 2 significant digits.
const MAX_MICROS: u64 = 60_000_000;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 2).expect("static histogram bounds")
}

/// One class's counters.
struct ClassCounters {
    by_status: [Cell<u64>; 5],
    micros_sum: Cell<u64>,
    latency: RefCell<Histogram<u64>>,
}

/// One shard's request counters.
pub struct ShardRequests {
    classes: [ClassCounters; 9],
}

impl Default for ShardRequests {
    fn default() -> Self {
        ShardRequests {
            classes: std::array::from_fn(|_| ClassCounters {
                by_status: Default::default(),
                micros_sum: Cell::new(0),
                latency: RefCell::new(histogram()),
            }),
        }
    }
}

impl ShardRequests {
    /// Counts one answered request.
    pub fn record(&self, class: RouteClass, status: u16, took: Duration) {
        let c = &self.classes[class as usize];
        let s = &c.by_status[(status / 100).clamp(1, 5) as usize - 1];
        s.set(s.get() + 1);
        let micros = took.as_micros().min(MAX_MICROS as u128) as u64;
        c.micros_sum.set(c.micros_sum.get() + micros);
        c.latency.borrow_mut().saturating_record(micros.max(1));
    }

    /// A copy of every class's counters, to send to another shard.
    pub fn snapshot(&self) -> RequestCounts {
        RequestCounts {
            classes: self
                .classes
                .iter()
                .map(|c| ClassCounts {
                    by_status: std::array::from_fn(|i| c.by_status[i].get()),
                    micros_sum: c.micros_sum.get(),
                    latency: c.latency.borrow().clone(),
                })
                .collect(),
        }
    }
}

/// One class's counters, copied.
#[derive(Clone)]
pub struct ClassCounts {
    /// Answers by status class, in `STATUS_CLASSES` order.
    pub by_status: [u64; 5],
    pub micros_sum: u64,
    pub latency: Histogram<u64>,
}

impl ClassCounts {
    pub fn total(&self) -> u64 {
        self.by_status.iter().sum()
    }
}

/// Every class's counters of one shard, in `RouteClass::ALL` order.
#[derive(Clone)]
pub struct RequestCounts {
    pub classes: Vec<ClassCounts>,
}

impl RequestCounts {
    /// Requests of every class together.
    pub fn total(&self) -> u64 {
        self.classes.iter().map(ClassCounts::total).sum()
    }

    /// Every class's latencies in one histogram.
    pub fn all_latency(&self) -> Histogram<u64> {
        let mut all = histogram();
        for c in &self.classes {
            let _ = all.add(&c.latency);
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_fall_in_their_class() {
        let cases = [
            ("/health", RouteClass::Status),
            ("/metrics", RouteClass::Status),
            ("/admin/", RouteClass::Admin),
            ("/admin/tables/Dog", RouteClass::Admin),
            ("/auth/login", RouteClass::Admin),
            ("/administrator", RouteClass::Table),
            ("/cluster/digest", RouteClass::Cluster),
            ("/Dog", RouteClass::Table),
            ("/Dog/", RouteClass::Query),
            ("/Dog/1", RouteClass::Record),
            ("/mqtt", RouteClass::Stream),
        ];
        for (path, class) in cases {
            assert_eq!(RouteClass::of_path(path), class, "{path}");
        }
    }

    #[test]
    fn requests_count_by_class_and_status_class() {
        let r = ShardRequests::default();
        r.record(RouteClass::Record, 200, Duration::from_micros(100));
        r.record(RouteClass::Record, 404, Duration::from_micros(300));
        r.record(RouteClass::Query, 503, Duration::from_micros(5));
        r.record(RouteClass::Invalid, 0, Duration::ZERO);
        let s = r.snapshot();
        let record = &s.classes[RouteClass::Record as usize];
        assert_eq!(record.by_status, [0, 1, 0, 1, 0]);
        assert_eq!(record.micros_sum, 400);
        assert_eq!(record.latency.len(), 2);
        assert_eq!(s.classes[RouteClass::Query as usize].by_status[4], 1);
        assert_eq!(s.classes[RouteClass::Invalid as usize].by_status[0], 1);
        assert_eq!(s.total(), 4);
        assert_eq!(s.all_latency().len(), 4);
    }
}
