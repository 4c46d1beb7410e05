//! Client addresses as the limits see them: the key one address is counted under (an IPv4
//! address, or the /64 network of an IPv6 address, since one IPv6 host commonly holds a whole
//! /64) and the CIDR blocks of `limits.exempt`.

use std::net::{IpAddr, Ipv6Addr};

/// The key a client address is counted under: IPv4 addresses (also when written as
/// IPv4-mapped IPv6) as the mapped 128-bit value, IPv6 addresses as their /64 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpKey(u128);

impl IpKey {
    pub fn of(ip: IpAddr) -> IpKey {
        match ip {
            IpAddr::V4(v4) => IpKey(v4.to_ipv6_mapped().to_bits()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpKey(v4.to_ipv6_mapped().to_bits()),
                None => IpKey(v6.to_bits() & !((1u128 << 64) - 1)),
            },
        }
    }
}

/// An address block (`10.0.0.0/8`, `::1/128`, or a bare address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network as a 128-bit value (IPv4 mapped into IPv6) and the prefix length in
    /// those 128 bits.
    net: u128,
    bits: u32,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u32>().ok()?)),
            None => (s, None),
        };
        let ip: IpAddr = addr.trim().parse().ok()?;
        let (value, max, offset) = match ip {
            IpAddr::V4(v4) => (v4.to_ipv6_mapped().to_bits(), 32, 96),
            IpAddr::V6(v6) => (v6.to_bits(), 128, 0),
        };
        let len = len.unwrap_or(max);
        if len > max {
            return None;
        }
        let bits = len + offset;
        Some(Cidr {
            net: value & mask(bits),
            bits,
        })
    }

    /// Whether the block holds `ip` (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let value = match ip {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().to_bits(),
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map_or(v6.to_bits(), |v4| v4.to_ipv6_mapped().to_bits()),
        };
        value & mask(self.bits) == self.net
    }
}

/// The top `bits` bits set.
fn mask(bits: u32) -> u128 {
    if bits == 0 {
        0
    } else {
        u128::MAX << (128 - bits)
    }
}

/// `::` — the key of a connection whose peer address could not be read.
pub const UNKNOWN: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_hosts_of_one_network_share_a_key_and_ipv4_stays_whole() {
        assert_eq!(
            IpKey::of(ip("2001:db8::1")),
            IpKey::of(ip("2001:db8::ffff:2"))
        );
        assert_ne!(
            IpKey::of(ip("2001:db8::1")),
            IpKey::of(ip("2001:db8:0:1::1"))
        );
        assert_ne!(IpKey::of(ip("10.0.0.1")), IpKey::of(ip("10.0.0.2")));
        assert_eq!(IpKey::of(ip("10.0.0.1")), IpKey::of(ip("::ffff:10.0.0.1")));
    }

    #[test]
    fn blocks_hold_their_addresses() {
        let lo = Cidr::parse("127.0.0.0/8").unwrap();
        assert!(lo.contains(ip("127.1.2.3")));
        assert!(lo.contains(ip("::ffff:127.0.0.1")));
        assert!(!lo.contains(ip("128.0.0.1")));
        assert!(!lo.contains(ip("::1")));
        let v6 = Cidr::parse("::1/128").unwrap();
        assert!(v6.contains(ip("::1")));
        assert!(!v6.contains(ip("::2")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(!Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains(ip("2001:db8::1")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("2001:db8::1")));
        assert_eq!(Cidr::parse("10.0.0.1"), Cidr::parse("10.0.0.1/32"));
        for bad in ["10.0.0.0/33", "::/129", "nope", "10.0.0.0/x", ""] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }
}
