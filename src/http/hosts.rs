//! Which names a request may address this node by (`Host`) and which pages may open a
//! WebSocket to it (`Origin`): the defence against DNS rebinding (a page whose own name the
//! attacker points at this node's address) and against cross-site WebSockets, which browsers
//! open without asking the server first.
//!
//! Always allowed: loopback (`localhost`, 127.0.0.0/8, `[::1]`) and, for `Host`, any IP
//! address (a browser sends one only when the page's own origin is that address, so it cannot
//! be a rebound name) and any name without a dot (a local name: a container's service name, a
//! machine on the LAN; a public name, which an attacker could point at this node, has a dot).
//! Besides those, the names of `http.allowed_hosts`: `example.com`, `*.example.com` (its
//! subdomains), or `*` (any name: the check is off). An `Origin` is stricter: a page may open
//! a WebSocket only from the node's own origin, loopback, or a configured name.

use std::net::IpAddr;

/// The configured names, ready for matching (lowercase, without a trailing dot).
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    any: bool,
    exact: Vec<String>,
    /// `.example.com` for `*.example.com`.
    suffixes: Vec<String>,
}

impl AllowedHosts {
    pub fn new(list: &[String]) -> AllowedHosts {
        let mut a = AllowedHosts::default();
        for h in list {
            let h = h.trim_end_matches('.').to_ascii_lowercase();
            if h == "*" {
                a.any = true;
            } else if let Some(rest) = h.strip_prefix('*') {
                a.suffixes.push(rest.to_string());
            } else {
                a.exact.push(h);
            }
        }
        a
    }

    /// Whether a request may name `host` (a `Host` header: a name or address, and a port).
    pub fn host(&self, host: &str) -> bool {
        if self.any {
            return true;
        }
        match hostname(host) {
            Some(name) => {
                let local = !name.trim_end_matches('.').contains('.');
                local || name.parse::<IpAddr>().is_ok() || self.name(name)
            }
            None => false,
        }
    }

    /// Whether a page from `origin` (an `Origin` header) may open a WebSocket to this node,
    /// reached as `host`: its own origin (same name and port), loopback, or a configured name.
    pub fn origin(&self, origin: &str, host: Option<&str>) -> bool {
        if self.any {
            return true;
        }
        // "null" (sandboxed pages, files) and anything without a scheme is foreign.
        let Some((_, authority)) = origin.split_once("://") else {
            return false;
        };
        if host.is_some_and(|h| same_authority(h, authority)) {
            return true;
        }
        hostname(authority).is_some_and(|n| self.name(n))
    }

    /// Loopback or a configured name.
    fn name(&self, name: &str) -> bool {
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.eq_ignore_ascii_case("localhost")
            || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        {
            return true;
        }
        let b = name.as_bytes();
        self.exact
            .iter()
            .any(|e| b.eq_ignore_ascii_case(e.as_bytes()))
            || self.suffixes.iter().any(|s| {
                b.len() > s.len() && b[b.len() - s.len()..].eq_ignore_ascii_case(s.as_bytes())
            })
    }
}

/// The name or address of an authority (`name[:port]`, `[v6][:port]`), without the port and
/// the brackets; `None` when it is malformed.
fn hostname(authority: &str) -> Option<&str> {
    if authority.is_empty() || authority.contains(['@', '/', ' ']) {
        return None;
    }
    let (name, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        (v6, after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (authority, None),
        }
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit())) {
        return None;
    }
    (!name.is_empty()).then_some(name)
}

/// The Host header and an Origin's authority name the same server: same name, same port
/// (an Origin leaves out a default port, and so may Host).
fn same_authority(host: &str, origin_authority: &str) -> bool {
    host.eq_ignore_ascii_case(origin_authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(list: &[&str]) -> AllowedHosts {
        AllowedHosts::new(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn loopback_and_addresses_are_always_allowed_names_only_when_configured() {
        let a = allowed(&[]);
        for ok in [
            "localhost",
            "LOCALHOST:9926",
            "localhost.",
            "127.0.0.1:9926",
            "127.3.4.5",
            "[::1]:9926",
            "[::1]",
            "10.0.0.5:9926",
            "[2001:db8::1]:80",
            "node1:9926",
            "x",
        ] {
            assert!(a.host(ok), "{ok}");
        }
        for bad in [
            "example.com",
            "evil.test:9926",
            "localhost.evil.test",
            "",
            "a:b",
            "[::1",
            "x@127.0.0.1",
            "127.0.0.1:",
        ] {
            assert!(!a.host(bad), "{bad}");
        }
        let a = allowed(&["example.com", "*.apps.test"]);
        assert!(a.host("Example.COM:443"));
        assert!(a.host("example.com."));
        assert!(a.host("x.apps.test"));
        assert!(a.host("a.b.apps.test:1"));
        assert!(
            !a.host("apps.test"),
            "a wildcard covers subdomains, not the name itself"
        );
        assert!(!a.host("evilapps.test"));
        assert!(!a.host("sub.example.com"));
        assert!(allowed(&["*"]).host("anything.at.all"));
    }

    #[test]
    fn origins_are_the_node_itself_loopback_or_configured() {
        let a = allowed(&["app.example.com"]);
        assert!(
            a.origin("http://10.0.0.5:9926", Some("10.0.0.5:9926")),
            "same origin"
        );
        assert!(
            !a.origin("http://10.0.0.6:9926", Some("10.0.0.5:9926")),
            "another address"
        );
        assert!(
            !a.origin("http://10.0.0.5:8080", Some("10.0.0.5:9926")),
            "another port"
        );
        assert!(a.origin("http://localhost:3000", Some("node:9926")));
        assert!(
            !a.origin("http://intranet-app", Some("node:9926")),
            "a local name is not trusted as a page"
        );
        assert!(a.origin("https://app.example.com", Some("10.0.0.5:9926")));
        assert!(!a.origin("https://evil.test", Some("10.0.0.5:9926")));
        assert!(!a.origin("null", Some("127.0.0.1:9926")));
        assert!(!a.origin("https://evil.test", None));
        assert!(allowed(&["*"]).origin("null", None));
    }
}
