//! Topic names and topic filters: validation (MQTT 3.1.1 §4.7 / 5.0 §4.7) and matching,
//! including the rule that a filter starting with a wildcard never matches a `$` topic.

/// Longest topic or filter accepted, in bytes (also a bound on trie depth work).
pub const MAX_TOPIC_BYTES: usize = 1024;
/// Most levels in a topic or filter.
pub const MAX_LEVELS: usize = 32;

/// A topic name a client may publish to: non-empty, no wildcards, no NUL, bounded.
pub fn valid_topic(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= MAX_TOPIC_BYTES
        && !topic.contains(['+', '#', '\0'])
        && topic.split('/').count() <= MAX_LEVELS
}

/// A topic filter: `+` only as a whole level, `#` only as the whole last level.
pub fn valid_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.len() > MAX_TOPIC_BYTES || filter.contains('\0') {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    if levels.len() > MAX_LEVELS {
        return false;
    }
    let last = levels.len() - 1;
    levels.iter().enumerate().all(|(i, l)| match *l {
        "+" => true,
        "#" => i == last,
        l => !l.contains(['+', '#']),
    })
}

/// True if `topic` (a valid topic name) matches `filter` (a valid filter).
pub fn matches(topic: &str, filter: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut t = topic.split('/');
    for f in filter.split('/') {
        if f == "#" {
            return true;
        }
        match t.next() {
            Some(level) if f == "+" || f == level => {}
            _ => return false,
        }
    }
    t.next().is_none()
}

/// `$share/{group}/{filter}`: a shared subscription (§4.8.2).
pub fn is_shared(filter: &str) -> bool {
    filter.starts_with("$share/")
}

/// The group and the filter of a shared subscription, if `filter` is one and both are valid:
/// a non-empty group without `/`, `+` or `#`, then a valid filter (§4.8.2).
pub fn parse_shared(filter: &str) -> Option<(&str, &str)> {
    let rest = filter.strip_prefix("$share/")?;
    let (group, inner) = rest.split_once('/')?;
    let group_ok = !group.is_empty() && !group.contains(['+', '#']);
    (group_ok && valid_filter(inner)).then_some((group, inner))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_validated() {
        for ok in [
            "a", "a/b", "+", "#", "a/+/c", "a/#", "+/+", "/", "a//b", "$SYS/#",
        ] {
            assert!(valid_filter(ok), "{ok}");
        }
        for bad in ["", "a/#/b", "a#", "a/b#", "a+/b", "#/a", "a/+b", "x\0"] {
            assert!(!valid_filter(bad), "{bad}");
        }
    }

    #[test]
    fn shared_subscriptions_name_a_group_and_a_valid_filter() {
        assert_eq!(parse_shared("$share/g/a/+"), Some(("g", "a/+")));
        assert_eq!(parse_shared("$share/g/#"), Some(("g", "#")));
        for bad in [
            "$share/g",
            "$share//a",
            "$share/g+/a",
            "$share/#/a",
            "$share/g/a/#/b",
            "a/b",
        ] {
            assert_eq!(parse_shared(bad), None, "{bad}");
        }
    }

    #[test]
    fn topics_are_validated() {
        assert!(valid_topic("a/b"));
        assert!(valid_topic("/"));
        assert!(!valid_topic(""));
        assert!(!valid_topic("a/+"));
        assert!(!valid_topic("a/#"));
    }

    #[test]
    fn wildcards_match() {
        assert!(matches("a/b/c", "a/b/c"));
        assert!(matches("a/b/c", "a/+/c"));
        assert!(matches("a/b/c", "a/#"));
        assert!(matches("a", "a/#"), "# also matches the parent level");
        assert!(matches("a/b/c", "#"));
        assert!(!matches("a/b", "a/b/c"));
        assert!(!matches("a/b/c", "a/b"));
        assert!(!matches("a/b/c", "a/+"));
        assert!(matches("a//c", "a/+/c"));
    }

    #[test]
    fn dollar_topics_escape_leading_wildcards_only() {
        assert!(!matches("$SYS/x", "#"));
        assert!(!matches("$SYS/x", "+/x"));
        assert!(matches("$SYS/x", "$SYS/#"));
        assert!(matches("$SYS/x", "$SYS/+"));
        assert!(matches("$SYS/x", "$SYS/x"));
    }
}
