//! What every shard of the node shares about the shop: its config, its counters, the clock
//! that stamps each render, and where seeding stands. Handlers, hooks and the job hold it
//! through an `Arc`; everything in it is an atomic, so no shard waits on another.

use super::config::Config;
use super::counters::Counters;
use microlith::app::{ChangeEvent, Error};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// Where seeding stands; pages are served only once it is `Ready`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Seeding is on and the job has not decided yet.
    Pending = 0,
    /// The job is writing the seed.
    Seeding = 1,
    Ready = 2,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Pending => "pending",
            Phase::Seeding => "seeding",
            Phase::Ready => "ready",
        }
    }
}

pub struct State {
    pub config: Config,
    pub counters: Counters,
    /// The next render's stamp. It starts at the node's start time in microseconds, so
    /// stamps keep growing across restarts (stored pages keep theirs).
    stamps: AtomicU64,
    phase: AtomicU8,
    /// Changes whose version is older than this (Unix ms) are the seed's own writes.
    seeded_before_ms: AtomicU64,
}

impl State {
    pub fn new(config: Config) -> State {
        let phase = if config.seed {
            Phase::Pending
        } else {
            Phase::Ready
        };
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        State {
            config,
            counters: Counters::default(),
            stamps: AtomicU64::new(micros),
            phase: AtomicU8::new(phase as u8),
            seeded_before_ms: AtomicU64::new(0),
        }
    }

    /// A new render's stamp: greater than every stamp handed out before.
    pub fn next_stamp(&self) -> u64 {
        self.stamps.fetch_add(1, Ordering::SeqCst)
    }

    /// Every render stamped from now on gets at least this.
    pub fn stamp_floor(&self) -> u64 {
        self.stamps.load(Ordering::SeqCst)
    }

    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Pending,
            1 => Phase::Seeding,
            _ => Phase::Ready,
        }
    }

    pub fn set_phase(&self, p: Phase) {
        self.phase.store(p as u8, Ordering::Release);
    }

    /// Marks the changes older than `ms` (Unix ms) as the seed's.
    pub fn set_seeded_before(&self, ms: u64) {
        self.seeded_before_ms.store(ms, Ordering::Release);
    }

    /// 503 until the shop is ready (seeding done).
    pub fn ready(&self) -> Result<(), Error> {
        match self.phase() {
            Phase::Ready => Ok(()),
            p => Err(Error {
                retry_after: Some(1),
                ..Error::new(503, format!("the shop is starting ({})", p.name()))
            }),
        }
    }

    /// Whether a change needs no page refresh: the seed's own writes (nothing is served
    /// before seeding ends), and changes made on a peer (the peer refreshes the pages and
    /// they replicate here).
    pub fn ignores(&self, change: &ChangeEvent) -> bool {
        !change.local
            || self.phase() == Phase::Seeding
            || change.version.millis() < self.seeded_before_ms.load(Ordering::Acquire)
    }
}
