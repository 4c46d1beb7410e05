//! A topic-filter trie: one node per filter level, a value at each node that ends a filter.
//! Matching a topic walks only the branches that can match (exact level, `+`, `#`), so its
//! cost depends on the topic's depth and the matching filters, not on the number of filters.
//! Used for a shard's local subscriptions and for its copy of the cross-shard summary.

use std::collections::HashMap;

pub struct Trie<V> {
    root: Node<V>,
    len: usize,
}

struct Node<V> {
    children: HashMap<Box<str>, Node<V>>,
    value: Option<V>,
}

impl<V> Default for Node<V> {
    fn default() -> Self {
        Node {
            children: HashMap::new(),
            value: None,
        }
    }
}

impl<V> Default for Trie<V> {
    fn default() -> Self {
        Trie {
            root: Node::default(),
            len: 0,
        }
    }
}

impl<V> Trie<V> {
    /// Filters that hold a value.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value of `filter`, created with `make` if absent.
    pub fn get_or_insert_with(&mut self, filter: &str, make: impl FnOnce() -> V) -> &mut V {
        let mut node = &mut self.root;
        for level in filter.split('/') {
            node = node.children.entry(level.into()).or_default();
        }
        if node.value.is_none() {
            self.len += 1;
        }
        node.value.get_or_insert_with(make)
    }

    pub fn get_mut(&mut self, filter: &str) -> Option<&mut V> {
        let mut node = &mut self.root;
        for level in filter.split('/') {
            node = node.children.get_mut(level)?;
        }
        node.value.as_mut()
    }

    /// Runs `edit` on the value of `filter`; removes the value when `edit` returns true, and
    /// prunes the nodes left empty.
    pub fn update(&mut self, filter: &str, edit: impl FnOnce(&mut V) -> bool) {
        let levels: Vec<&str> = filter.split('/').collect();
        if Self::update_at(&mut self.root, &levels, edit) {
            self.len -= 1;
        }
    }

    fn update_at(node: &mut Node<V>, levels: &[&str], edit: impl FnOnce(&mut V) -> bool) -> bool {
        let Some((first, rest)) = levels.split_first() else {
            let remove = node.value.as_mut().is_some_and(edit);
            if remove {
                node.value = None;
            }
            return remove;
        };
        let Some(child) = node.children.get_mut(*first) else {
            return false;
        };
        let removed = Self::update_at(child, rest, edit);
        if child.value.is_none() && child.children.is_empty() {
            node.children.remove(*first);
        }
        removed
    }

    /// Calls `f` with the value of every filter that matches `topic`.
    pub fn for_each_match(&self, topic: &str, mut f: impl FnMut(&V)) {
        let levels: Vec<&str> = topic.split('/').collect();
        let dollar = topic.starts_with('$');
        Self::walk(&self.root, &levels, dollar, &mut f);
    }

    fn walk(node: &Node<V>, levels: &[&str], dollar_first: bool, f: &mut impl FnMut(&V)) {
        if !dollar_first {
            if let Some(v) = node.children.get("#").and_then(|n| n.value.as_ref()) {
                f(v);
            }
        }
        let Some((first, rest)) = levels.split_first() else {
            if let Some(v) = &node.value {
                f(v);
            }
            return;
        };
        if let Some(child) = node.children.get(*first) {
            Self::walk(child, rest, false, f);
        }
        if !dollar_first {
            if let Some(child) = node.children.get("+") {
                Self::walk(child, rest, false, f);
            }
        }
    }

    /// Every (filter, value), for status and persistence.
    pub fn for_each(&self, mut f: impl FnMut(&str, &V)) {
        let mut path = Vec::new();
        Self::each(&self.root, &mut path, &mut f);
    }

    fn each<'a>(node: &'a Node<V>, path: &mut Vec<&'a str>, f: &mut impl FnMut(&str, &V)) {
        for (level, child) in &node.children {
            path.push(level);
            if let Some(v) = &child.value {
                f(&path.join("/"), v);
            }
            Self::each(child, path, f);
            path.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matched(t: &Trie<&'static str>, topic: &str) -> Vec<&'static str> {
        let mut out = Vec::new();
        t.for_each_match(topic, |v| out.push(*v));
        out.sort();
        out
    }

    #[test]
    fn trie_agrees_with_the_matcher() {
        let filters = [
            "a/b", "a/+", "a/#", "#", "+/b", "+/+", "a/b/c", "$SYS/#", "$SYS/+", "+/#", "/",
        ];
        let mut t = Trie::default();
        for f in filters {
            *t.get_or_insert_with(f, || f) = f;
        }
        for topic in ["a/b", "a", "x/b", "a/b/c", "$SYS/x", "$SYS", "/", "a/b/c/d"] {
            let mut want: Vec<&str> = filters
                .iter()
                .copied()
                .filter(|f| crate::mqtt::topic::matches(topic, f))
                .collect();
            want.sort();
            assert_eq!(matched(&t, topic), want, "topic {topic}");
        }
    }

    #[test]
    fn removal_prunes() {
        let mut t = Trie::default();
        *t.get_or_insert_with("a/b/c", || 0) += 1;
        *t.get_or_insert_with("a/b", || 0) += 1;
        assert_eq!(t.len(), 2);
        t.update("a/b/c", |_| true);
        assert_eq!(t.len(), 1);
        assert!(t.get_mut("a/b/c").is_none());
        t.update("a/b", |_| true);
        assert!(t.is_empty());
        assert!(t.root.children.is_empty());
    }
}
