//! A shard's HTTP context: the runtime shard it runs on, the shard's broker (real-time
//! streams ride on it), its components, and the replication status (`None` when clustering
//! is off), and its authentication state. Derefs to the runtime shard.

use crate::app::AppShard;
use crate::cluster::state::ClusterState;
use crate::mqtt::MqttShard;
use crate::runtime::shard::Shard;
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
}

impl Deref for HttpShard {
    type Target = Shard;

    fn deref(&self) -> &Shard {
        &self.base
    }
}
