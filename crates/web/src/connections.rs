//! Connection slots for the HTTPS listener: a global cap, a cap per source, and a fair share of the
//! global cap when it is full. Without the per-source cap one address could hold every slot (1,024
//! slow TLS connections shut the door for everyone); without the fair share a handful of addresses
//! could. When the table is full, a newcomer takes the oldest slot of the source holding the most
//! connections, as long as that source holds more than the newcomer's source would; otherwise the
//! newcomer is refused. Either way a refusal costs an accept and a close, never a wait in the
//! kernel's backlog behind the flood.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Connections served at once. Each costs a task and TLS state (~50 KiB), so this bounds memory
/// under a connection flood.
pub const MAX_CONNECTIONS: usize = 1024;
/// Connections one source may hold. A browser opens about 6, a partner's NAT address carries a
/// team's browsers and scripts; 64 leaves room for that while 16 sources are needed to fill the
/// table (and then the fair share applies).
pub const MAX_CONNECTIONS_PER_SOURCE: usize = 64;

/// Who counts as one source: an IPv4 address, or an IPv6 /64 (one host or one site's prefix; a
/// single host can pick any address in its /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceKey(u128);

impl SourceKey {
    pub fn of(ip: IpAddr) -> SourceKey {
        match ip {
            IpAddr::V4(v4) => SourceKey(u128::from(u32::from(v4))),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => SourceKey(u128::from(u32::from(v4))),
                // The /64 prefix, with the low bit set so it never equals an IPv4 key.
                None => SourceKey((u128::from(v6) & (u128::MAX << 64)) | 1),
            },
        }
    }
}

#[derive(Default)]
struct Table {
    next_id: u64,
    total: usize,
    /// Per source, its connections by id; ids grow with time, so the first is the oldest.
    by_source: HashMap<SourceKey, BTreeMap<u64, Arc<Notify>>>,
}

#[derive(Clone)]
pub struct ConnectionTable {
    table: Arc<Mutex<Table>>,
    global: usize,
    per_source: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    SourceAtCap,
    TableFull,
}

/// A held slot; dropping it frees the slot. `evicted()` completes when a newcomer took it.
pub struct Slot {
    table: Arc<Mutex<Table>>,
    source: SourceKey,
    id: u64,
    evict: Arc<Notify>,
}

impl Slot {
    pub async fn evicted(&self) {
        self.evict.notified().await
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        remove(&mut t, self.source, self.id);
    }
}

fn remove(t: &mut Table, source: SourceKey, id: u64) -> bool {
    let Some(conns) = t.by_source.get_mut(&source) else {
        return false;
    };
    let removed = conns.remove(&id).is_some();
    if conns.is_empty() {
        t.by_source.remove(&source);
    }
    if removed {
        t.total -= 1;
    }
    removed
}

impl ConnectionTable {
    pub fn new(global: usize, per_source: usize) -> ConnectionTable {
        ConnectionTable {
            table: Arc::default(),
            global,
            per_source,
        }
    }

    pub fn admit(&self, ip: IpAddr) -> Result<Slot, Refused> {
        let source = SourceKey::of(ip);
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let mine = t.by_source.get(&source).map_or(0, BTreeMap::len);
        if mine >= self.per_source {
            return Err(Refused::SourceAtCap);
        }
        if t.total >= self.global {
            let heaviest = t
                .by_source
                .iter()
                .max_by_key(|(_, conns)| conns.len())
                .map(|(s, conns)| (*s, conns.len()));
            match heaviest {
                // Taking a slot from a source that would still hold at least as many as the
                // newcomer's source is fair; anything else would just move the unfairness.
                Some((victim, held)) if held > mine + 1 => {
                    let oldest = t
                        .by_source
                        .get(&victim)
                        .and_then(|c| c.iter().next())
                        .map(|(id, n)| (*id, n.clone()));
                    if let Some((id, notify)) = oldest {
                        remove(&mut t, victim, id);
                        notify.notify_one();
                    }
                }
                _ => return Err(Refused::TableFull),
            }
        }
        let id = t.next_id;
        t.next_id += 1;
        let evict = Arc::new(Notify::new());
        t.by_source
            .entry(source)
            .or_default()
            .insert(id, evict.clone());
        t.total += 1;
        Ok(Slot {
            table: self.table.clone(),
            source,
            id,
            evict,
        })
    }

    #[cfg(test)]
    fn held_by(&self, ip: IpAddr) -> usize {
        let t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        t.by_source.get(&SourceKey::of(ip)).map_or(0, BTreeMap::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse()
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn one_source_is_capped() {
        let t = ConnectionTable::new(100, 3);
        let held: Vec<_> = (0..3)
            .filter_map(|_| t.admit(ip("10.0.0.1")).ok())
            .collect();
        assert_eq!(held.len(), 3);
        assert_eq!(t.admit(ip("10.0.0.1")).err(), Some(Refused::SourceAtCap));
        assert!(t.admit(ip("10.0.0.2")).is_ok());
        drop(held);
        assert!(t.admit(ip("10.0.0.1")).is_ok());
    }

    #[tokio::test]
    async fn a_full_table_gives_the_newcomer_a_slot_of_the_heaviest_source() {
        let t = ConnectionTable::new(4, 4);
        let flood: Vec<_> = (0..4)
            .filter_map(|_| t.admit(ip("10.0.0.1")).ok())
            .collect();
        assert_eq!(flood.len(), 4);
        let newcomer = t.admit(ip("10.0.0.2"));
        assert!(newcomer.is_ok());
        assert_eq!(t.held_by(ip("10.0.0.1")), 3);
        // The oldest of the flood was told to go.
        if let Some(first) = flood.first() {
            assert!(
                tokio::time::timeout(Duration::from_secs(5), first.evicted())
                    .await
                    .is_ok()
            );
        }
        // Once the shares are even, the next newcomer is refused rather than evicting.
        let a = t.admit(ip("10.0.0.2"));
        assert!(a.is_ok());
        assert_eq!(t.held_by(ip("10.0.0.1")), 2);
        assert_eq!(t.admit(ip("10.0.0.2")).err(), Some(Refused::TableFull));
        // Dropping an evicted slot later does not free someone else's.
        drop(flood);
        assert_eq!(t.held_by(ip("10.0.0.1")), 0);
        assert_eq!(t.held_by(ip("10.0.0.2")), 2);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        assert_eq!(
            SourceKey::of(ip("2001:db8::1")),
            SourceKey::of(ip("2001:db8::ffff:1"))
        );
        assert_ne!(
            SourceKey::of(ip("2001:db8::1")),
            SourceKey::of(ip("2001:db8:0:1::1"))
        );
        assert_eq!(
            SourceKey::of(ip("::ffff:10.0.0.1")),
            SourceKey::of(ip("10.0.0.1"))
        );
    }
}
