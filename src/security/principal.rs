//! An authenticated user with its roles resolved, and the permission checks every front end
//! asks: table operations, MQTT publish and subscribe. A user's permissions are the union of
//! its roles'; a role with `super_user` allows everything. Topic rules follow MQTT matching:
//! `+` is one level, `#` the rest (the parent level included), and a wildcard at the first
//! level never matches a topic that starts with `$`.

use super::model::{Role, TableOp};
use std::sync::Arc;

/// Who made a request, as far as permissions go.
#[derive(Debug, Clone)]
pub struct Principal {
    pub name: String,
    /// The role names the user holds (as stored; a name no role has is kept but grants nothing).
    pub roles: Vec<String>,
    super_user: bool,
    grants: Vec<Arc<Role>>,
}

impl Principal {
    /// A user holding `roles` (the ones that exist), named `name`.
    pub fn new(name: &str, role_names: Vec<String>, grants: Vec<Arc<Role>>) -> Principal {
        Principal {
            name: name.to_string(),
            roles: role_names,
            super_user: grants.iter().any(|r| r.super_user),
            grants,
        }
    }

    pub fn is_super_user(&self) -> bool {
        self.super_user
    }

    /// Whether the user may do `op` on `table`.
    pub fn can(&self, table: &str, op: TableOp) -> bool {
        self.super_user || self.grants.iter().any(|r| r.table(table).allows(op))
    }

    /// Whether the user may publish to `topic` (a topic name, no wildcards).
    pub fn can_publish(&self, topic: &str) -> bool {
        self.super_user
            || self.grants.iter().any(|r| {
                r.topics
                    .iter()
                    .any(|t| t.publish && filter_covers(&t.filter, topic))
            })
    }

    /// Whether the user may subscribe to `filter`: some rule allowing subscribe must match
    /// every topic the filter can match.
    pub fn can_subscribe(&self, filter: &str) -> bool {
        self.super_user
            || self.grants.iter().any(|r| {
                r.topics
                    .iter()
                    .any(|t| t.subscribe && filter_covers(&t.filter, filter))
            })
    }
}

/// Whether every topic that `inner` (a topic or a filter) matches is matched by `rule`.
pub fn filter_covers(rule: &str, inner: &str) -> bool {
    if inner.starts_with('$') && (rule.starts_with('+') || rule.starts_with('#')) {
        return false;
    }
    let mut r = rule.split('/');
    let mut i = inner.split('/');
    loop {
        match (r.next(), i.next()) {
            (Some("#"), _) => return true,
            (None, None) => return true,
            (Some(_), None) | (None, Some(_)) => return false,
            // `+` in the rule takes any single level except a multi-level wildcard.
            (Some("+"), Some(level)) => {
                if level == "#" {
                    return false;
                }
            }
            (Some(a), Some(b)) => {
                if a != b || b == "+" || b == "#" {
                    return false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::model::{TablePerms, TopicRule};

    fn role(name: &str, tables: &[(&str, TablePerms)], topics: &[(&str, bool, bool)]) -> Arc<Role> {
        Arc::new(Role {
            name: name.into(),
            super_user: false,
            tables: tables.iter().map(|(t, p)| (t.to_string(), *p)).collect(),
            topics: topics
                .iter()
                .map(|(f, p, s)| TopicRule {
                    filter: f.to_string(),
                    publish: *p,
                    subscribe: *s,
                })
                .collect(),
        })
    }

    #[test]
    fn filters_cover_topics_and_narrower_filters() {
        assert!(filter_covers("a/#", "a"));
        assert!(filter_covers("a/#", "a/b/c"));
        assert!(filter_covers("a/#", "a/+/c"));
        assert!(filter_covers("a/#", "a/#"));
        assert!(filter_covers("a/+", "a/b"));
        assert!(filter_covers("a/+", "a/+"));
        assert!(!filter_covers("a/+", "a/#"));
        assert!(!filter_covers("a/+", "a/b/c"));
        assert!(!filter_covers("a/b", "a/+"));
        assert!(!filter_covers("a/b", "a/#"));
        assert!(!filter_covers("a/b", "a"));
        assert!(filter_covers("#", "x/y"));
        assert!(!filter_covers("#", "$SYS/x"));
        assert!(!filter_covers("+/x", "$SYS/x"));
        assert!(filter_covers("$SYS/#", "$SYS/x"));
    }

    #[test]
    fn permissions_are_the_union_of_roles() {
        let read = TablePerms {
            read: true,
            ..TablePerms::default()
        };
        let write = TablePerms {
            insert: true,
            update: true,
            ..TablePerms::default()
        };
        let p = Principal::new(
            "u",
            vec!["r".into(), "w".into(), "gone".into()],
            vec![
                role("r", &[("*", read)], &[("sensors/#", false, true)]),
                role("w", &[("Dog", write)], &[("sensors/+/cmd", true, false)]),
            ],
        );
        assert!(p.can("Cat", TableOp::Read));
        assert!(p.can("Dog", TableOp::Insert));
        assert!(!p.can("Cat", TableOp::Insert));
        assert!(!p.can("Dog", TableOp::Delete));
        assert!(p.can_subscribe("sensors/+/temp"));
        assert!(!p.can_subscribe("#"));
        assert!(p.can_publish("sensors/7/cmd"));
        assert!(!p.can_publish("sensors/7/temp"));
        assert!(!p.is_super_user());
        let admin = Principal::new(
            "a",
            vec!["super_user".into()],
            vec![Arc::new(Role::super_user())],
        );
        assert!(admin.can("Any", TableOp::Delete) && admin.can_subscribe("#"));
    }
}
