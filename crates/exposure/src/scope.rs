//! Who or what a report covers: everything, one organization, one user's sessions, or sessions from a
//! network (CIDR, IPv4 or IPv6).

use std::fmt;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    /// Organization by name, or by numeric id.
    Org(String),
    User(String),
    Ip(Cidr),
}

impl Scope {
    /// `all`, `org:ID`, `user:NAME`, `ip:CIDR` (a bare address is a /32 or /128).
    pub fn parse(s: &str) -> Result<Scope, String> {
        let s = s.trim();
        if s == "all" {
            return Ok(Scope::All);
        }
        let (kind, value) = s
            .split_once(':')
            .ok_or_else(|| format!("scope {s:?}: expected all, org:ID, user:NAME or ip:CIDR"))?;
        if value.is_empty() {
            return Err(format!("scope {s:?} has no value"));
        }
        match kind {
            "org" => Ok(Scope::Org(value.to_owned())),
            "user" => Ok(Scope::User(value.to_owned())),
            "ip" => Ok(Scope::Ip(Cidr::parse(value)?)),
            _ => Err(format!(
                "scope {s:?}: expected all, org:ID, user:NAME or ip:CIDR"
            )),
        }
    }

    /// Whether an audit record's session (actor, organization, source address) is in scope.
    pub fn matches_session(
        &self,
        actor: &str,
        org: &str,
        org_id: Option<i64>,
        source: &str,
    ) -> bool {
        match self {
            Scope::All => true,
            Scope::Org(o) => org == o || org_id.is_some_and(|id| o.parse::<i64>() == Ok(id)),
            Scope::User(u) => actor == u,
            Scope::Ip(c) => source.parse::<IpAddr>().is_ok_and(|ip| c.contains(ip)),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::All => f.write_str("all"),
            Scope::Org(o) => write!(f, "org:{o}"),
            Scope::User(u) => write!(f, "user:{u}"),
            Scope::Ip(c) => write!(f, "ip:{c}"),
        }
    }
}

/// An address block. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) match IPv4 blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr = canonical(
            a.parse::<IpAddr>()
                .map_err(|_| format!("{s:?} is not an IP address or CIDR block"))?,
        );
        let (_, width) = bits(addr);
        let prefix = match p {
            None => width,
            Some(p) => {
                let n: u8 = p
                    .parse()
                    .map_err(|_| format!("{s:?}: the prefix length is not a number"))?;
                // A mapped IPv6 prefix (::ffff:10.0.0.0/104) becomes the IPv4 prefix.
                let n = if a.contains(':') && width == 32 {
                    n.checked_sub(96).ok_or_else(|| {
                        format!("{s:?}: prefix too short for an IPv4-mapped block")
                    })?
                } else {
                    n
                };
                if n > width {
                    return Err(format!("{s:?}: prefix longer than {width} bits"));
                }
                n
            }
        };
        Ok(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        let (net, w1) = bits(self.addr);
        let (x, w2) = bits(ip);
        if w1 != w2 {
            return false;
        }
        if self.prefix == 0 {
            return true;
        }
        let shift = u32::from(w1 - self.prefix);
        (net >> shift) == (x >> shift)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_blocks() {
        let c = Cidr::parse("203.0.113.0/24").unwrap();
        assert!(c.contains(ip("203.0.113.7")));
        assert!(c.contains(ip("::ffff:203.0.113.9")));
        assert!(!c.contains(ip("203.0.114.1")));
        assert!(!c.contains(ip("2001:db8::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("10.1.2.3").unwrap().contains(ip("10.1.2.3")));
        assert!(!Cidr::parse("10.1.2.3").unwrap().contains(ip("10.1.2.4")));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("10.0.0/8").is_err());
        assert!(Cidr::parse("10.0.0.0/x").is_err());
    }

    #[test]
    fn ipv6_blocks() {
        let c = Cidr::parse("2001:db8::/32").unwrap();
        assert!(c.contains(ip("2001:db8:1::5")));
        assert!(!c.contains(ip("2001:db9::5")));
        assert!(!c.contains(ip("192.0.2.1")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("::1")));
        assert!(Cidr::parse("2001:db8::/129").is_err());
        assert!(Cidr::parse("::ffff:10.0.0.0/104")
            .unwrap()
            .contains(ip("10.200.0.1")));
    }

    #[test]
    fn scopes() {
        assert_eq!(Scope::parse("all").unwrap(), Scope::All);
        assert_eq!(
            Scope::parse("user:mallory").unwrap(),
            Scope::User("mallory".into())
        );
        let s = Scope::parse("ip:198.51.100.0/24").unwrap();
        assert!(s.matches_session("x", "acme", None, "198.51.100.20"));
        assert!(!s.matches_session("x", "acme", None, "local"));
        let o = Scope::parse("org:7").unwrap();
        assert!(o.matches_session("x", "acme", Some(7), ""));
        assert!(Scope::parse("org:").is_err());
        assert!(Scope::parse("host:x").is_err());
    }
}
