//! A shard's HTTP context: the runtime shard it runs on, the shard's broker (real-time
//! streams ride on it), its components, the replication status (`None` when clustering
//! is off), its authentication state, its admission limits, the host names it serves, the
//! origins it answers and its metrics. Derefs to the runtime shard.

use crate::app::AppShard;
use crate::cluster::state::ClusterState;
use crate::mqtt::MqttShard;
use crate::runtime::shard::Shard;
use crate::security::limits::ShardLimits;
use crate::security::ShardSecurity;
use std::ops::Deref;
use std::rc::Rc;
use std::sync::Arc;

pub struct HttpShard {
    pub base: Rc<Shard>,
    pub mqtt: Rc<MqttShard>,
    /// The shard's components (their routes are served before tables).
    pub app: Rc<AppShard>,
    pub cluster: Option<Arc<ClusterState>>,
    /// Authentication: the users and roles, the credential cache.
    pub security: Rc<ShardSecurity>,
    /// This shard's admission limits (the broker's, shared).
    pub limits: Rc<ShardLimits>,
    /// The names requests may address this node by (`http.allowed_hosts`).
    pub hosts: super::hosts::AllowedHosts,
    /// The pages of other origins it answers (`http.cors`).
    pub cors: super::cors::Cors,
    /// The files of `http.static_dir` (shared by every shard).
    pub statics: Arc<super::statics::StaticFiles>,
    /// This shard's request counters and the way to every shard's (`/metrics`).
    pub metrics: super::metrics::ShardMetrics,
    /// Admin page live streams open on this shard (bounded: `admin_page::live`).
    pub live_streams: std::cell::Cell<usize>,
}

impl Deref for HttpShard {
    type Target = Shard;

    fn deref(&self) -> &Shard {
        &self.base
    }
}
