//! What `realm ctl` sees of a running peer: the control commands and the
//! JSON they answer with (documented in docs/ctl.md).

use std::time::Duration;

use realm_ipsec::{AddressSelector, PortSelector, ProtocolSelector};
use realm_ipsec::{
    Direction, DropReason, IpsecProtocol, LifetimeLimits, Mode, PolicyAction, SecurityAssociation,
    Selector,
};
use serde_json::{Map, Value, json};

use super::daemon::Peer;
use crate::ctl::{CommandInfo, CtlError, Handler, expect_args};

const COMMANDS: &[CommandInfo] = &[
    CommandInfo {
        name: "status",
        args: "",
        summary: "daemon, TUN and socket summary, packet counters, engine-wide drops",
    },
    CommandInfo {
        name: "sas",
        args: "",
        summary: "every SA with algorithms, endpoints, counters, drops by reason, lifetimes",
    },
    CommandInfo {
        name: "policies",
        args: "",
        summary: "the SPD, inbound then outbound, in priority order",
    },
    crate::ike::IKE,
    crate::ike::INITIATE,
    crate::ike::TERMINATE,
];

/// The counter key of a drop reason.
pub(crate) fn reason_name(r: DropReason) -> &'static str {
    match r {
        DropReason::Malformed => "malformed",
        DropReason::UnknownSpi => "unknown_spi",
        DropReason::Replay => "replay",
        DropReason::IcvMismatch => "icv_mismatch",
        DropReason::BadPadding => "bad_padding",
        DropReason::BadNextHeader => "bad_next_header",
        DropReason::DummyPacket => "dummy_packet",
        DropReason::PolicyMismatch => "policy_mismatch",
        DropReason::PolicyDiscard => "policy_discard",
        DropReason::LifetimeExpired => "lifetime_expired",
        DropReason::Fragment => "fragment",
        DropReason::TooDeep => "too_deep",
        _ => "other",
    }
}

fn direction(d: Direction) -> &'static str {
    match d {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
    }
}

fn limits(prefix: &str, l: &LifetimeLimits, out: &mut Map<String, Value>) {
    out.insert(format!("{prefix}_seconds"), json!(l.seconds));
    out.insert(format!("{prefix}_bytes"), json!(l.bytes));
    out.insert(format!("{prefix}_packets"), json!(l.packets));
}

fn sa_json(sa: &SecurityAssociation, age: Duration) -> Value {
    let c = sa.config();
    let k = sa.counters();
    let mut drops = Map::new();
    for r in DropReason::ALL {
        drops.insert(reason_name(r).into(), json!(k.drops(r)));
    }
    let mut lifetime = Map::new();
    lifetime.insert("age_seconds".into(), json!(age.as_secs()));
    limits("soft", &c.lifetime.soft, &mut lifetime);
    limits("hard", &c.lifetime.hard, &mut lifetime);
    let (protocol, encryption) = match c.protocol {
        IpsecProtocol::Esp => ("esp", c.encryption.name()),
        IpsecProtocol::Ah => ("ah", "-"),
    };
    json!({
        "spi": format!("0x{:08x}", c.spi.0),
        "direction": direction(c.direction),
        "protocol": protocol,
        "mode": match c.mode { Mode::Tunnel => "tunnel", Mode::Transport => "transport" },
        "encryption": encryption,
        "integrity": c.integrity.name(),
        "src": c.src.to_string(),
        "dst": c.dst.to_string(),
        "udp_encap": c.udp_encap.map(|u| format!("{}->{}", u.src_port, u.dst_port)),
        "packets": k.packets,
        "bytes": k.bytes,
        "drops": drops,
        "sequence": match c.direction {
            Direction::Outbound => sa.sequence(),
            Direction::Inbound => sa.replay_window().map_or(0, |w| w.top()),
        },
        "lifetime": lifetime,
    })
}

fn address(a: &AddressSelector) -> String {
    match a {
        AddressSelector::Any => "any".into(),
        AddressSelector::Single(x) => x.to_string(),
        AddressSelector::Range(lo, hi) => format!("{lo}-{hi}"),
        AddressSelector::Prefix(n, l) => format!("{n}/{l}"),
    }
}

fn port(p: &PortSelector) -> String {
    match p {
        PortSelector::Any => "any".into(),
        PortSelector::Opaque => "opaque".into(),
        PortSelector::Range(lo, hi) if lo == hi => lo.to_string(),
        PortSelector::Range(lo, hi) => format!("{lo}-{hi}"),
    }
}

fn selector(s: &Selector) -> Value {
    json!({
        "src": address(&s.src),
        "dst": address(&s.dst),
        "protocol": match s.protocol {
            ProtocolSelector::Any => "any".to_string(),
            ProtocolSelector::Is(6) => "tcp".to_string(),
            ProtocolSelector::Is(17) => "udp".to_string(),
            ProtocolSelector::Is(1) => "icmp".to_string(),
            ProtocolSelector::Is(n) => n.to_string(),
        },
        "src_port": port(&s.src_port),
        "dst_port": port(&s.dst_port),
    })
}

impl Peer {
    fn sas(&self) -> Value {
        let age = realm_io::now().saturating_duration_since(self.started);
        let mut sas: Vec<&SecurityAssociation> = self.engine.sas().collect();
        sas.sort_by_key(|s| s.id());
        Value::Array(sas.into_iter().map(|s| sa_json(s, age)).collect())
    }

    fn policies(&self) -> Value {
        let mut rows = Vec::new();
        for d in [Direction::Inbound, Direction::Outbound] {
            for (i, (_, entry)) in self.engine.spd().entries(d).enumerate() {
                let (action, sas) = match &entry.action {
                    PolicyAction::Bypass => ("bypass", Vec::new()),
                    PolicyAction::Discard => ("discard", Vec::new()),
                    PolicyAction::Apply(spec) => (
                        "apply",
                        spec.sas
                            .iter()
                            .map(|k| format!("0x{:08x}", k.spi.0))
                            .collect(),
                    ),
                };
                rows.push(json!({
                    "direction": direction(d),
                    "priority": i,
                    "selector": selector(&entry.selector),
                    "action": action,
                    "sas": sas,
                }));
            }
        }
        Value::Array(rows)
    }

    fn status(&self) -> Value {
        let mut drops = Map::new();
        for r in DropReason::ALL {
            drops.insert(reason_name(r).into(), json!(self.engine.drops(r)));
        }
        json!({
            "daemon": "peer",
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_seconds": realm_io::now().saturating_duration_since(self.started).as_secs(),
            "config": self.config_summary,
            "sas": self.engine.sas().count(),
            "counters": self.counters,
            "engine_drops": drops,
        })
    }
}

impl Handler for Peer {
    fn daemon(&self) -> &'static str {
        "peer"
    }

    fn commands(&self) -> &'static [CommandInfo] {
        COMMANDS
    }

    fn handle(&mut self, command: &str, args: &Map<String, Value>) -> Result<Value, CtlError> {
        match command {
            "status" => expect_args(args, &[]).map(|()| self.status()),
            "sas" => expect_args(args, &[]).map(|()| self.sas()),
            "policies" => expect_args(args, &[]).map(|()| self.policies()),
            other => match &mut self.ike {
                Some(ike) => ike
                    .handle_ctl(other, args)
                    .unwrap_or_else(|| Err(CtlError::UnknownCommand(other.to_string()))),
                None if crate::ike::COMMANDS.iter().any(|c| c.name == other) => Err(
                    CtlError::BadArgs("no IKE connections are configured ([connections])".into()),
                ),
                None => Err(CtlError::UnknownCommand(other.to_string())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_drop_reason_has_its_own_counter_name() {
        let names: Vec<&str> = DropReason::ALL.iter().map(|r| reason_name(*r)).collect();
        assert!(!names.contains(&"other"), "{names:?}");
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
    }

    #[test]
    fn selectors_print_as_configured() {
        let s = Selector {
            src: "198.51.100.0/24".parse().unwrap(),
            dst: "192.0.2.1-192.0.2.9".parse().unwrap(),
            protocol: "tcp".parse().unwrap(),
            src_port: "any".parse().unwrap(),
            dst_port: "443".parse().unwrap(),
            name: None,
        };
        assert_eq!(
            selector(&s),
            json!({"src": "198.51.100.0/24", "dst": "192.0.2.1-192.0.2.9", "protocol": "tcp",
                   "src_port": "any", "dst_port": "443"})
        );
    }
}
