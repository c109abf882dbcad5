//! Security Policy Database (RFC 2401 s4.4.1): ordered entries with
//! selectors (s4.4.2) and an action, looked up separately for inbound and
//! outbound traffic; the first matching entry wins.
//!
//! Limit: lookups are a linear scan, bounded by [`MAX_POLICIES`] per direction.

use std::net::Ipv4Addr;

use crate::crypto::{EncryptionAlgorithm, IntegrityAlgorithm};
use crate::error::ConfigError;
use crate::sa::{IpsecProtocol, Mode, SadKey};
use crate::selector::{Direction, PacketSelector, Selector};

/// Largest number of policies per direction.
pub const MAX_POLICIES: usize = 4096;

/// The SA template of an APPLY policy (what IKE must negotiate if no SA is bound).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaTemplate {
    /// ESP or AH.
    pub protocol: IpsecProtocol,
    /// Transport or tunnel.
    pub mode: Mode,
    /// Tunnel endpoints (local, remote) for tunnel mode.
    pub tunnel: Option<(Ipv4Addr, Ipv4Addr)>,
    /// Encryption (ESP only).
    pub encryption: EncryptionAlgorithm,
    /// Integrity.
    pub integrity: IntegrityAlgorithm,
}

/// Policy action (RFC 2401 s4.4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyAction {
    /// Let the packet through without IPsec.
    Bypass,
    /// Drop the packet.
    Discard,
    /// Apply IPsec: an SA bundle, innermost first.
    Apply(ApplySpec),
}

/// An SA bundle: the templates (for IKE) and the SAs bound to them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApplySpec {
    /// Templates, innermost (applied first outbound) first.
    pub templates: Vec<SaTemplate>,
    /// SAs bound to the templates, same order. For outbound policies these
    /// are the SAs used; empty (or short) means IKE must acquire them.
    pub sas: Vec<SadKey>,
}

/// Identifies a policy entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyId(pub u32);

/// One SPD entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpdEntry {
    /// Which packets.
    pub selector: Selector,
    /// What to do with them.
    pub action: PolicyAction,
}

/// The ordered SPD, one list per direction.
#[derive(Debug, Default)]
pub struct Spd {
    inbound: Vec<(PolicyId, SpdEntry)>,
    outbound: Vec<(PolicyId, SpdEntry)>,
    next_id: u32,
}

impl Spd {
    /// An empty SPD (everything is discarded: RFC 2401 s4.4.1 default).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an entry (lowest priority so far). Fails past [`MAX_POLICIES`].
    pub fn push(&mut self, direction: Direction, entry: SpdEntry) -> Result<PolicyId, ConfigError> {
        let list = self.list_mut(direction);
        if list.len() >= MAX_POLICIES {
            return Err(ConfigError::Parse {
                what: "policy count",
                text: MAX_POLICIES.to_string(),
            });
        }
        self.next_id += 1;
        let id = PolicyId(self.next_id);
        self.list_mut(direction).push((id, entry));
        Ok(id)
    }

    /// Inserts an entry at `index` (0 = highest priority).
    pub fn insert(&mut self, direction: Direction, index: usize, entry: SpdEntry) -> PolicyId {
        self.next_id += 1;
        let id = PolicyId(self.next_id);
        let list = self.list_mut(direction);
        list.insert(index.min(list.len()), (id, entry));
        id
    }

    /// Removes an entry.
    pub fn remove(&mut self, id: PolicyId) -> Option<SpdEntry> {
        for list in [&mut self.inbound, &mut self.outbound] {
            if let Some(i) = list.iter().position(|(x, _)| *x == id) {
                return Some(list.remove(i).1);
            }
        }
        None
    }

    /// The entry with this id, mutable (e.g. to bind SAs after IKE).
    pub fn get_mut(&mut self, id: PolicyId) -> Option<&mut SpdEntry> {
        self.inbound
            .iter_mut()
            .chain(self.outbound.iter_mut())
            .find(|(x, _)| *x == id)
            .map(|e| &mut e.1)
    }

    /// First matching entry for a packet in `direction`.
    pub fn lookup(
        &self,
        direction: Direction,
        p: &PacketSelector,
    ) -> Option<(PolicyId, &SpdEntry)> {
        let list = match direction {
            Direction::Inbound => &self.inbound,
            Direction::Outbound => &self.outbound,
        };
        list.iter()
            .find(|(_, e)| e.selector.matches(p))
            .map(|(id, e)| (*id, e))
    }

    /// Entries in `direction`, in priority order.
    pub fn entries(&self, direction: Direction) -> impl Iterator<Item = (PolicyId, &SpdEntry)> {
        let list = match direction {
            Direction::Inbound => &self.inbound,
            Direction::Outbound => &self.outbound,
        };
        list.iter().map(|(id, e)| (*id, e))
    }

    fn list_mut(&mut self, direction: Direction) -> &mut Vec<(PolicyId, SpdEntry)> {
        match direction {
            Direction::Inbound => &mut self.inbound,
            Direction::Outbound => &mut self.outbound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selector::ProtocolSelector;

    fn pkt(src: [u8; 4], dst: [u8; 4], proto: u8, ports: Option<(u16, u16)>) -> PacketSelector {
        PacketSelector {
            src: src.into(),
            dst: dst.into(),
            protocol: proto,
            src_port: ports.map(|p| p.0),
            dst_port: ports.map(|p| p.1),
        }
    }

    #[test]
    fn first_match_wins_per_direction() {
        let mut spd = Spd::new();
        let web = Selector {
            dst: "192.0.2.0/24".parse().unwrap(),
            protocol: ProtocolSelector::Is(6),
            dst_port: "443".parse().unwrap(),
            ..Selector::default()
        };
        let a = spd
            .push(
                Direction::Outbound,
                SpdEntry {
                    selector: web,
                    action: PolicyAction::Bypass,
                },
            )
            .unwrap();
        let b = spd
            .push(
                Direction::Outbound,
                SpdEntry {
                    selector: Selector::default(),
                    action: PolicyAction::Discard,
                },
            )
            .unwrap();
        let p1 = pkt([10, 0, 0, 1], [192, 0, 2, 7], 6, Some((5555, 443)));
        let p2 = pkt([10, 0, 0, 1], [192, 0, 2, 7], 6, Some((5555, 80)));
        assert_eq!(spd.lookup(Direction::Outbound, &p1).unwrap().0, a);
        assert_eq!(spd.lookup(Direction::Outbound, &p2).unwrap().0, b);
        assert!(spd.lookup(Direction::Inbound, &p1).is_none());
        let top = spd.insert(
            Direction::Outbound,
            0,
            SpdEntry {
                selector: Selector::default(),
                action: PolicyAction::Discard,
            },
        );
        assert_eq!(spd.lookup(Direction::Outbound, &p1).unwrap().0, top);
        spd.remove(top);
        assert_eq!(spd.lookup(Direction::Outbound, &p1).unwrap().0, a);
    }
}
