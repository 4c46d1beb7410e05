//! Safe by default: a node whose storage holds no user (a fresh install) serves HTTP and MQTT
//! on loopback only, whatever `http.listen`, `mqtt.listen` and the `[tls]` listeners say, and without
//! authentication, so that `microlith serve` works at once on the machine it runs on and
//! nobody else can reach it. Once a user exists the configured addresses are used, and every
//! request must authenticate. A node that gets its first user while running (through
//! `/admin/users` or from a peer) enforces authentication at once and keeps its loopback
//! listeners until it restarts.

use super::directory::Directory;
use crate::storage::shard_db::ShardDb;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `addr` on the loopback interface of its family (unchanged if it is on loopback already).
pub fn loopback(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_loopback() {
        return addr;
    }
    let ip = match addr.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    SocketAddr::new(ip, addr.port())
}

/// Moves the listeners' addresses (HTTP, MQTT and their TLS twins) to loopback unless a user
/// exists, with a warning that says why and what to do.
pub fn restrict_listeners<'a>(
    dbs: &[ShardDb],
    addrs: impl IntoIterator<Item = &'a mut SocketAddr>,
) {
    if Directory::load(dbs, 0).auth_required() {
        return;
    }
    let moved: Vec<String> = addrs
        .into_iter()
        .map(|a| {
            *a = loopback(*a);
            a.to_string()
        })
        .collect();
    tracing::warn!(
        listeners = %moved.join(" "),
        "no users exist: serving HTTP and MQTT on loopback only and without authentication. \
         To serve the configured addresses with authentication, add a user: stop the server and run \
         `microlith user add admin --role super_user` (or POST /admin/users from this host), then restart"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_move_to_loopback_of_their_family() {
        let a: SocketAddr = "0.0.0.0:9926".parse().unwrap();
        assert_eq!(loopback(a), "127.0.0.1:9926".parse::<SocketAddr>().unwrap());
        let b: SocketAddr = "[::]:1883".parse().unwrap();
        assert_eq!(loopback(b), "[::1]:1883".parse::<SocketAddr>().unwrap());
        let c: SocketAddr = "10.1.2.3:0".parse().unwrap();
        assert_eq!(loopback(c), "127.0.0.1:0".parse::<SocketAddr>().unwrap());
        let d: SocketAddr = "127.0.0.2:80".parse().unwrap();
        assert_eq!(loopback(d), d);
    }
}
