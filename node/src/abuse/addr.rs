//! Client addresses: address ranges (CIDR), the client behind trusted
//! proxies, and the key flood control counts an address under.
//!
//! IPv6 clients usually hold a whole /64, so flood control and "ban this
//! poster" work per /64 for IPv6 and per address for IPv4.

use std::fmt;
use std::net::IpAddr;

/// An address range: an address and a prefix length (`10.0.0.0/8`,
/// `2001:db8::/64`); a bare address is a /32 or /128.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `addr` or `addr/prefix`; host bits are cleared, so the text
    /// form ([`fmt::Display`]) is canonical.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or range"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix must be 0 to {max}"))?,
        };
        // `::ffff:a.b.c.d/120` is the IPv4 range `a.b.c.d/24`: stored and
        // matched as IPv4, since that is how its clients are keyed.
        let (ip, prefix) = match ip {
            IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => (IpAddr::V4(v4), prefix - 96),
                None => (ip, prefix),
            },
            _ => (ip, prefix),
        };
        Ok(Cidr {
            net: mask(ip, prefix),
            prefix,
        })
    }

    /// The range of one address: itself for IPv4, its /64 for IPv6.
    pub fn of_client(ip: IpAddr) -> Cidr {
        let ip = canonical(ip);
        let prefix = if ip.is_ipv4() { 32 } else { 64 };
        Cidr {
            net: mask(ip, prefix),
            prefix,
        }
    }

    /// Whether `ip` is in this range (never across address families; an
    /// IPv4-mapped IPv6 address is its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.net.is_ipv4() && mask(ip, self.prefix) == self.net
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix as u32)
            };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix as u32)
            };
            IpAddr::V6((bits & m).into())
        }
    }
}

/// An address as its client is: an IPv4 peer of a dual-stack listener
/// (`[::]:port`) arrives as `::ffff:a.b.c.d` and is `a.b.c.d`, so every
/// IPv4 client is keyed, stored, shown and banned as itself, not as the
/// one `::ffff:0:0/64` all of them would share.
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// One `X-Forwarded-For` entry: an address, with or without a port
/// (`1.2.3.4:5678`, `[2001:db8::1]:443`, `[2001:db8::1]`).
pub fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = hop.strip_prefix('[') {
        let (ip, tail) = rest.split_once(']')?;
        let port_ok = tail.is_empty()
            || tail
                .strip_prefix(':')
                .is_some_and(|p| p.parse::<u16>().is_ok());
        return port_ok.then(|| ip.parse().ok().map(canonical)).flatten();
    }
    let (ip, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    ip.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The client's address. `X-Forwarded-For` is believed only when the peer
/// is a trusted proxy; then the list is read from the right (the entries a
/// client wrote come first, so they cannot hide behind a proxy), skipping
/// trusted proxies, and the first untrusted entry is the client. Every
/// address is [`canonical`].
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[Cidr]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let Some(list) = forwarded_for else {
        return peer;
    };
    let mut client = peer;
    for hop in list.rsplit(',') {
        let Some(ip) = parse_hop(hop) else {
            // Garbage in the header: stop at the last address we could trust.
            break;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// The key flood control and cooldowns count a client under: the address
/// (IPv4) or its /64 (IPv6). Unparsable text is its own key.
pub fn client_key(ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(ip) => Cidr::of_client(ip).to_string(),
        Err(_) => ip.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_parse_canonically_and_match() {
        let c = Cidr::parse("10.1.2.3/8").unwrap();
        assert_eq!(c.to_string(), "10.0.0.0/8");
        assert!(c.contains(ip("10.200.0.1")));
        assert!(!c.contains(ip("11.0.0.1")));
        assert!(!c.contains(ip("::a01:203")), "families never match");
        assert_eq!(
            Cidr::parse("192.0.2.7").unwrap().to_string(),
            "192.0.2.7/32"
        );
        let v6 = Cidr::parse("2001:db8:1:2:3::1/64").unwrap();
        assert_eq!(v6.to_string(), "2001:db8:1:2::/64");
        assert!(v6.contains(ip("2001:db8:1:2:ffff::9")));
        assert!(!v6.contains(ip("2001:db8:1:3::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("bogus").is_err());
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_peers() {
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        let xff = Some("203.0.113.9");
        assert_eq!(
            client_ip(ip("198.51.100.1"), xff, &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(client_ip(ip("10.0.0.5"), xff, &trusted), ip("203.0.113.9"));
        assert_eq!(client_ip(ip("10.0.0.5"), None, &trusted), ip("10.0.0.5"));
        // A client-written first entry does not hide the real client.
        assert_eq!(
            client_ip(
                ip("10.0.0.5"),
                Some("1.1.1.1, 203.0.113.9, 10.0.0.7"),
                &trusted
            ),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(ip("10.0.0.5"), Some("junk"), &trusted),
            ip("10.0.0.5")
        );
        assert_eq!(client_ip(ip("10.0.0.5"), xff, &[]), ip("10.0.0.5"));
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        assert_eq!(client_key("2001:db8::1"), client_key("2001:db8::ffff:1"));
        assert_ne!(client_key("2001:db8::1"), client_key("2001:db8:0:1::1"));
        assert_eq!(client_key("192.0.2.1"), "192.0.2.1/32");
        assert_ne!(client_key("192.0.2.1"), client_key("192.0.2.2"));
    }

    #[test]
    fn ipv4_mapped_addresses_are_their_ipv4_clients() {
        assert_eq!(client_key("::ffff:192.0.2.1"), "192.0.2.1/32");
        assert_ne!(
            client_key("::ffff:192.0.2.1"),
            client_key("::ffff:192.0.2.2")
        );
        assert_eq!(
            client_ip(ip("::ffff:198.51.100.7"), None, &[]),
            ip("198.51.100.7")
        );
        let banned = Cidr::parse("::ffff:192.0.2.0/120").unwrap();
        assert_eq!(banned.to_string(), "192.0.2.0/24");
        assert!(banned.contains(ip("192.0.2.9")));
        assert!(banned.contains(ip("::ffff:192.0.2.9")));
        assert!(!banned.contains(ip("192.0.3.9")));
        let one = Cidr::of_client(ip("::ffff:192.0.2.9"));
        assert_eq!(one.to_string(), "192.0.2.9/32");
        assert!(!one.contains(ip("::ffff:192.0.2.10")));
        // A trusted proxy on the mapped form of a trusted IPv4 range.
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.5"), Some("203.0.113.9"), &trusted),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn forwarded_entries_with_ports_are_their_addresses() {
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        let via = |xff: &str| client_ip(ip("10.0.0.5"), Some(xff), &trusted);
        assert_eq!(via("1.2.3.4:5678"), ip("1.2.3.4"));
        assert_eq!(via("[2001:db8::1]:443"), ip("2001:db8::1"));
        assert_eq!(via("[2001:db8::1]"), ip("2001:db8::1"));
        assert_eq!(via("::ffff:1.2.3.4"), ip("1.2.3.4"));
        assert_eq!(via("9.9.9.9, 1.2.3.4:5678, 10.0.0.7:80"), ip("1.2.3.4"));
        assert_eq!(via("[2001:db8::1]:notaport"), ip("10.0.0.5"));
        assert_eq!(via("1.2.3.4:99999"), ip("10.0.0.5"));
    }
}
