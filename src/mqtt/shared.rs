//! Shared subscriptions (`$share/{group}/{filter}`, §4.8.2): each message matching the filter
//! goes to one member of the group, not to every member. A group is named by its whole
//! subscription string (the share key): the same group name with another filter is another
//! group. A shard keeps its own members of each group and, like the subscription summary,
//! its copy of how many members each shard has; the shard that routes a message picks a shard
//! in turn, each as often as it has members, and tells it which groups it serves for that
//! message, and that shard picks one of its members in turn, preferring connected ones. So
//! members get even shares however they are spread over the shards.

use super::trie::Trie;
use std::collections::{BTreeMap, HashMap};

/// Members of one group per shard.
type Members = BTreeMap<u16, u32>;
use std::sync::Arc;

/// A shard's view of the shared subscriptions.
#[derive(Default)]
pub struct Shared {
    /// Inner filter → share key → this shard's members (client ids), in the order they joined.
    local: Trie<BTreeMap<Arc<str>, Vec<Arc<str>>>>,
    /// Inner filter → share key → shard → its members (this shard's copy).
    summary: Trie<BTreeMap<Arc<str>, Members>>,
    /// Share key → how many shards were picked (turns), on this shard.
    shard_turns: HashMap<Arc<str>, usize>,
    /// Share key → how many of this shard's members were picked (turns).
    member_turns: HashMap<Arc<str>, usize>,
    /// Share key → how many nodes were picked (turns), for groups with members on peers.
    node_turns: HashMap<Arc<str>, usize>,
}

/// Groups whose node turns a shard remembers; past it they start over (bounded memory).
const MAX_NODE_TURNS: usize = 4096;

impl Shared {
    /// Adds a member on this shard; true when it is the group's first here.
    pub fn join(&mut self, key: &str, inner: &str, client: &Arc<str>) -> bool {
        let groups = self.local.get_or_insert_with(inner, BTreeMap::new);
        let members = groups.entry(Arc::from(key)).or_default();
        if !members.contains(client) {
            members.push(client.clone());
        }
        members.len() == 1
    }

    /// Removes a member on this shard; true when it was the group's last here.
    pub fn leave(&mut self, key: &str, inner: &str, client: &str) -> bool {
        let mut last = false;
        self.local.update(inner, |groups| {
            if let Some(members) = groups.get_mut(key) {
                members.retain(|c| &**c != client);
                if members.is_empty() {
                    groups.remove(key);
                    last = true;
                }
            }
            groups.is_empty()
        });
        if last {
            self.member_turns.remove(key);
        }
        last
    }

    /// Shard `shard` gained (`add`) or lost a member of a group; true when it was its first
    /// or its last there.
    pub fn apply_summary(&mut self, key: &str, inner: &str, shard: u16, add: bool) -> bool {
        if add {
            let groups = self.summary.get_or_insert_with(inner, BTreeMap::new);
            let n = groups
                .entry(Arc::from(key))
                .or_default()
                .entry(shard)
                .or_default();
            *n += 1;
            return *n == 1;
        }
        let (mut edge, mut gone) = (false, false);
        self.summary.update(inner, |groups| {
            if let Some(shards) = groups.get_mut(key) {
                if let Some(n) = shards.get_mut(&shard) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        shards.remove(&shard);
                        edge = true;
                    }
                }
                if shards.is_empty() {
                    groups.remove(key);
                    gone = true;
                }
            }
            groups.is_empty()
        });
        if gone {
            self.shard_turns.remove(key);
        }
        edge
    }

    /// Whether this shard has members of any group.
    pub fn has_members_here(&self) -> bool {
        !self.local.is_empty()
    }

    /// The groups this shard serves for a record change with the given `seed` (from its
    /// version): for each group whose filter matches `topic`, the node is picked from this
    /// one (`node`) and the peers with members (`peers`), then the shard by members, all from
    /// the seed alone, so every shard of every node makes the same choice and one member in
    /// the cluster gets the change (while their views of the members agree).
    pub fn serves_change(
        &self,
        topic: &str,
        seed: u64,
        here: u16,
        node: u16,
        peers: &[(Arc<str>, Vec<u16>)],
    ) -> Vec<Arc<str>> {
        let mut out = Vec::new();
        self.summary.for_each_match(topic, |groups| {
            for (key, shards) in groups {
                let mut nodes: Vec<u16> = peers
                    .iter()
                    .filter(|(k, _)| k == key)
                    .flat_map(|(_, n)| n.iter().copied())
                    .chain([node])
                    .collect();
                nodes.sort_unstable();
                nodes.dedup();
                let chosen = nodes[(seed % nodes.len() as u64) as usize];
                let t = (seed / nodes.len() as u64) as usize;
                if chosen == node && weighted(shards, t) == Some(here) {
                    out.push(key.clone());
                }
            }
        });
        out
    }

    /// Whether any group may match a topic (a cheap test before picking).
    pub fn is_empty(&self) -> bool {
        self.summary.is_empty()
    }

    /// For each group whose filter matches `topic`: the shard that serves it this time.
    pub fn pick_shards(&mut self, topic: &str) -> Vec<(Arc<str>, u16)> {
        let (summary, turns) = (&self.summary, &mut self.shard_turns);
        let mut picks = Vec::new();
        summary.for_each_match(topic, |groups| {
            for (key, shards) in groups {
                if let Some(shard) = weighted(shards, turn(turns, key)) {
                    picks.push((key.clone(), shard));
                }
            }
        });
        picks
    }

    /// The member of the group `key` (filter `inner`) on this shard that gets the next
    /// message: the next connected one in turn, else the next one in turn (it queues).
    pub fn pick_member(
        &mut self,
        key: &str,
        inner: &str,
        exclude: Option<&str>,
        connected: impl Fn(&str) -> bool,
    ) -> Option<Arc<str>> {
        let members = self.local.get_mut(inner)?.get(key)?;
        let n = members.len();
        let eligible = members.iter().filter(|m| Some(&***m) != exclude).count();
        if eligible == 0 {
            return None;
        }
        let t = turn(&mut self.member_turns, key);
        let order = (0..n)
            .map(|i| &members[(t + i) % n])
            .filter(|m| Some(&***m) != exclude);
        let online = order.clone().find(|c| connected(c));
        online.or_else(|| order.clone().next()).cloned()
    }

    /// Whether the group has a member other than `client` on any shard of this node.
    pub fn has_other_member(&mut self, key: &str, inner: &str, here: u16, client: &str) -> bool {
        let elsewhere = self
            .summary
            .get_mut(inner)
            .and_then(|g| g.get(key))
            .is_some_and(|s| s.keys().any(|x| *x != here));
        let local = self
            .local
            .get_mut(inner)
            .and_then(|g| g.get(key))
            .is_some_and(|m| m.iter().any(|c| &**c != client));
        elsewhere || local
    }

    /// Which node serves group `key` for the next message, in turn among `peers` (which have
    /// members) and this node (when `here`, it has members): `None` is this node.
    pub fn pick_node(&mut self, key: &str, peers: &[u16], here: bool) -> Option<u16> {
        if self.node_turns.len() > MAX_NODE_TURNS {
            self.node_turns.clear();
        }
        let n = peers.len() + here as usize;
        if n == 0 {
            return None;
        }
        let t = turn(&mut self.node_turns, key) % n;
        peers.get(t).copied()
    }

    /// The shard of this node that serves group `key` for the next message, in turn.
    pub fn pick_shard_of(&mut self, key: &str) -> Option<u16> {
        let (_, inner) = super::topic::parse_shared(key)?;
        let shards = self.summary.get_mut(inner)?.get(key)?.clone();
        let t = turn(&mut self.shard_turns, key);
        weighted(&shards, t)
    }

    /// The shard that takes over a message of group `key` from `client` on shard `here`: in
    /// turn among the shards with members, `here` only if it has another member.
    pub fn pick_shard_for(
        &mut self,
        key: &str,
        inner: &str,
        here: u16,
        client: &str,
    ) -> Option<u16> {
        let others_here = self
            .local
            .get_mut(inner)
            .and_then(|g| g.get(key))
            .is_some_and(|m| m.iter().any(|c| &**c != client));
        let mut shards = self
            .summary
            .get_mut(inner)
            .and_then(|g| g.get(key))?
            .clone();
        if !others_here {
            shards.remove(&here);
        }
        let t = turn(&mut self.shard_turns, key);
        weighted(&shards, t)
    }
}

/// The shard whose turn `t` is, each shard taking as many turns as it has members.
fn weighted(shards: &Members, t: usize) -> Option<u16> {
    let total: usize = shards.values().map(|n| *n as usize).sum();
    if total == 0 {
        return None;
    }
    let mut at = t % total;
    for (shard, n) in shards {
        if at < *n as usize {
            return Some(*shard);
        }
        at -= *n as usize;
    }
    None
}

/// The next turn of a group in `turns` (round robin over its shards or its members).
fn turn(turns: &mut HashMap<Arc<str>, usize>, key: &str) -> usize {
    if let Some(t) = turns.get_mut(key) {
        *t = t.wrapping_add(1);
        return *t;
    }
    turns.insert(Arc::from(key), 0);
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    #[test]
    fn members_take_turns_and_connected_ones_come_first() {
        let mut sh = Shared::default();
        assert!(sh.join("$share/g/a/+", "a/+", &c("x")));
        assert!(!sh.join("$share/g/a/+", "a/+", &c("y")));
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(
                sh.pick_member("$share/g/a/+", "a/+", None, |_| true)
                    .unwrap(),
            );
        }
        assert_eq!(got.iter().filter(|m| &***m == "x").count(), 2, "{got:?}");
        for _ in 0..3 {
            let m = sh
                .pick_member("$share/g/a/+", "a/+", None, |m| m == "y")
                .unwrap();
            assert_eq!(&*m, "y");
        }
    }

    #[test]
    fn shards_take_turns_per_group_and_groups_are_independent() {
        let mut sh = Shared::default();
        sh.apply_summary("$share/g/a/+", "a/+", 0, true);
        sh.apply_summary("$share/g/a/+", "a/+", 1, true);
        sh.apply_summary("$share/h/a/#", "a/#", 1, true);
        let picks: Vec<_> = (0..4).map(|_| sh.pick_shards("a/b")).collect();
        for p in &picks {
            assert_eq!(p.len(), 2, "one pick per group: {p:?}");
        }
        let g: Vec<u16> = picks
            .iter()
            .flatten()
            .filter(|(k, _)| &**k == "$share/g/a/+")
            .map(|(_, s)| *s)
            .collect();
        assert_eq!(g.iter().filter(|s| **s == 0).count(), 2, "{g:?}");
        sh.apply_summary("$share/g/a/+", "a/+", 0, false);
        sh.apply_summary("$share/g/a/+", "a/+", 1, false);
        assert_eq!(sh.pick_shards("a/b").len(), 1);
    }

    #[test]
    fn a_shard_takes_as_many_turns_as_it_has_members() {
        let mut sh = Shared::default();
        assert!(sh.apply_summary("$share/g/t", "t", 0, true));
        assert!(
            !sh.apply_summary("$share/g/t", "t", 0, true),
            "not shard 0's first"
        );
        assert!(sh.apply_summary("$share/g/t", "t", 1, true));
        let picks: Vec<u16> = (0..30).map(|_| sh.pick_shards("t")[0].1).collect();
        assert_eq!(picks.iter().filter(|s| **s == 0).count(), 20, "{picks:?}");
        assert!(
            !sh.apply_summary("$share/g/t", "t", 0, false),
            "shard 0 keeps one"
        );
        assert!(
            sh.apply_summary("$share/g/t", "t", 0, false),
            "shard 0's last"
        );
    }

    #[test]
    fn every_shard_of_every_node_agrees_on_who_serves_a_record_change() {
        // Node 1 has members on shards 0 and 1, node 2 (a peer) has some too.
        let mut views: Vec<Shared> = (0..2).map(|_| Shared::default()).collect();
        for v in &mut views {
            v.apply_summary("$share/g/T/+", "T/+", 0, true);
            v.apply_summary("$share/g/T/+", "T/+", 1, true);
        }
        let peers = vec![(Arc::from("$share/g/T/+"), vec![2u16])];
        let mut here = 0;
        for seed in 0..100u64 {
            let servers: Vec<u16> = (0..2u16)
                .filter(|s| {
                    !views[*s as usize]
                        .serves_change("T/1", seed, *s, 1, &peers)
                        .is_empty()
                })
                .collect();
            assert!(servers.len() <= 1, "seed {seed}: {servers:?}");
            here += servers.len();
        }
        assert!(
            here > 30 && here < 70,
            "about half stay on this node: {here}"
        );
    }

    #[test]
    fn the_last_member_leaving_ends_the_group_here() {
        let mut sh = Shared::default();
        sh.join("$share/g/t", "t", &c("x"));
        sh.join("$share/g/t", "t", &c("y"));
        assert!(!sh.leave("$share/g/t", "t", "x"));
        assert!(sh.has_other_member("$share/g/t", "t", 0, "x"));
        assert!(!sh.has_other_member("$share/g/t", "t", 0, "y"));
        assert!(sh.leave("$share/g/t", "t", "y"));
        assert_eq!(sh.pick_member("$share/g/t", "t", None, |_| true), None);
    }
}
