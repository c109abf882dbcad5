//! What an IKE [`ChildSaUp`] becomes in the IPsec engine: two SAD entries (inbound, outbound)
//! and two SPD entries that apply them, inserted ahead of older ones so that a rekeyed pair
//! takes over at once (make-before-break); and their removal. Translation only: the rules are
//! realm-ike's (what was negotiated) and realm-ipsec's (how packets are processed).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use realm_ike::config::{Child, Mode as ChildMode};
use realm_ike::engine::{ChildSaUp, TrafficRange};
use realm_ike::ikev1::quick_mode::EspSaKeys;
use realm_ike::proposal::{AesKeySize, EspCipher, EspIntegrity, IpsecMode, UdpEncapsulation};
use realm_ipsec::{
    AddressSelector, ApplySpec, Direction, EncryptionAlgorithm, IntegrityAlgorithm, Ipsec,
    IpsecProtocol, Mode, PolicyAction, PolicyId, PortSelector, ProtocolSelector, SaConfig, SaId,
    SaTemplate, SecretKey, Selector, SpdEntry, Spi, UdpEncap,
};

/// The engine entries one child SA pair occupies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Installed {
    pub(crate) inbound: SaId,
    pub(crate) outbound: SaId,
    pub(crate) policies: [PolicyId; 2],
}

/// Why a negotiated pair could not be installed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InstallError {
    /// The IPsec engine has no such algorithm.
    #[error("realm-ipsec has no {0}")]
    Unsupported(&'static str),
    /// IPv6 endpoints.
    #[error("IPv6 endpoints are not supported")]
    Ipv6,
    /// The engine refused the SA.
    #[error("SA refused: {0}")]
    Refused(#[from] realm_ipsec::ConfigError),
}

/// Installs `up` into `engine` at `now`.
pub(crate) fn install(
    engine: &mut Ipsec,
    now: Instant,
    up: &ChildSaUp,
) -> Result<Installed, InstallError> {
    let (IpAddr::V4(local), IpAddr::V4(remote)) = (up.local.ip(), up.remote.ip()) else {
        return Err(InstallError::Ipv6);
    };
    let (encryption, integrity) = algorithms(up.pair.proposal.cipher)?;
    let mode = match up.pair.encapsulation.mode {
        IpsecMode::Tunnel => Mode::Tunnel,
        IpsecMode::Transport => Mode::Transport,
    };
    let encapsulated = up.pair.encapsulation.udp != UdpEncapsulation::None;
    let (lp, rp) = (up.local.port(), up.remote.port());
    let sa = |direction, keys: &EspSaKeys, src, dst, selector, encap| SaConfig {
        spi: Spi(keys.spi),
        direction,
        protocol: IpsecProtocol::Esp,
        mode,
        src,
        dst,
        encryption,
        encryption_key: SecretKey::new(
            [
                keys.encryption_key.expose(),
                keys.salt.as_ref().map_or(&[][..], |s| s.expose()),
            ]
            .concat(),
        ),
        integrity,
        integrity_key: SecretKey::new(
            keys.integrity_key
                .as_ref()
                .map_or(Vec::new(), |k| k.expose().to_vec()),
        ),
        // IKE owns the lifetimes: it rekeys and removes the pair (ChildSaDown).
        selector,
        udp_encap: encap,
        ..SaConfig::default()
    };
    let outbound_selector = selector(&up.local_ts, &up.remote_ts);
    let inbound_selector = selector(&up.remote_ts, &up.local_ts);
    let inbound = sa(
        Direction::Inbound,
        &up.pair.inbound,
        remote,
        local,
        inbound_selector.clone(),
        encapsulated.then_some(UdpEncap {
            src_port: rp,
            dst_port: lp,
        }),
    );
    let outbound = sa(
        Direction::Outbound,
        &up.pair.outbound,
        local,
        remote,
        outbound_selector.clone(),
        encapsulated.then_some(UdpEncap {
            src_port: lp,
            dst_port: rp,
        }),
    );
    let template = |src: Ipv4Addr, dst: Ipv4Addr| SaTemplate {
        protocol: IpsecProtocol::Esp,
        mode,
        tunnel: (mode == Mode::Tunnel).then_some((src, dst)),
        encryption,
        integrity,
    };
    let (in_key, out_key) = (inbound.key(), outbound.key());
    let inbound = engine.add_sa(now, inbound)?;
    let outbound = match engine.add_sa(now, outbound) {
        Ok(id) => id,
        Err(e) => {
            engine.remove_sa(inbound);
            return Err(e.into());
        }
    };
    let out_policy = engine.spd_mut().insert(
        Direction::Outbound,
        0,
        SpdEntry {
            selector: outbound_selector,
            action: PolicyAction::Apply(ApplySpec {
                templates: vec![template(local, remote)],
                sas: vec![out_key],
            }),
        },
    );
    let in_policy = engine.spd_mut().insert(
        Direction::Inbound,
        0,
        SpdEntry {
            selector: inbound_selector,
            action: PolicyAction::Apply(ApplySpec {
                templates: vec![template(remote, local)],
                sas: vec![in_key],
            }),
        },
    );
    Ok(Installed {
        inbound,
        outbound,
        policies: [in_policy, out_policy],
    })
}

/// A trap policy for `child`: outbound traffic from `ours` to `theirs` is to be protected by
/// an SA that does not exist yet (APPLY with a template and no SA), appended after every other
/// entry. Returns its id.
pub(crate) fn trap(
    engine: &mut Ipsec,
    child: &Child,
    ours: &TrafficRange,
    theirs: &TrafficRange,
    local: Ipv4Addr,
    remote: Ipv4Addr,
) -> Result<PolicyId, InstallError> {
    let first = child
        .esp_proposals
        .as_slice()
        .first()
        .ok_or(InstallError::Unsupported("an empty esp_proposals"))?;
    let (encryption, integrity) = algorithms(first.cipher)?;
    let mode = match child.mode {
        ChildMode::Tunnel => Mode::Tunnel,
        ChildMode::Transport => Mode::Transport,
    };
    let entry = SpdEntry {
        selector: selector(ours, theirs),
        action: PolicyAction::Apply(ApplySpec {
            templates: vec![SaTemplate {
                protocol: IpsecProtocol::Esp,
                mode,
                tunnel: (mode == Mode::Tunnel).then_some((local, remote)),
                encryption,
                integrity,
            }],
            sas: Vec::new(),
        }),
    };
    let at = engine.spd().entries(Direction::Outbound).count();
    Ok(engine.spd_mut().insert(Direction::Outbound, at, entry))
}

/// Removes what [`install`] added.
pub(crate) fn uninstall(engine: &mut Ipsec, installed: &Installed) {
    for p in installed.policies {
        engine.spd_mut().remove(p);
    }
    engine.remove_sa(installed.inbound);
    engine.remove_sa(installed.outbound);
}

fn algorithms(
    cipher: EspCipher,
) -> Result<(EncryptionAlgorithm, IntegrityAlgorithm), InstallError> {
    Ok(match cipher {
        EspCipher::AesGcm16(AesKeySize::Bits128) => {
            (EncryptionAlgorithm::AesGcm128, IntegrityAlgorithm::None)
        }
        EspCipher::AesGcm16(AesKeySize::Bits256) => {
            (EncryptionAlgorithm::AesGcm256, IntegrityAlgorithm::None)
        }
        EspCipher::AesCbc(size, integrity) => (
            match size {
                AesKeySize::Bits128 => EncryptionAlgorithm::AesCbc128,
                AesKeySize::Bits256 => EncryptionAlgorithm::AesCbc256,
            },
            match integrity {
                EspIntegrity::HmacSha1_96 => IntegrityAlgorithm::HmacSha1_96,
                EspIntegrity::HmacSha256_128 => IntegrityAlgorithm::HmacSha256_128,
                EspIntegrity::HmacSha384_192 => {
                    return Err(InstallError::Unsupported("HMAC-SHA-384-192"));
                }
            },
        ),
    })
}

/// The SPD selector for traffic from `src` to `dst`.
fn selector(src: &TrafficRange, dst: &TrafficRange) -> Selector {
    let address = |r: &TrafficRange| match r.prefix_len() {
        Some(0) => AddressSelector::Any,
        Some(32) => AddressSelector::Single(r.start),
        Some(len) => AddressSelector::Prefix(r.start, len),
        None => AddressSelector::Range(r.start, r.end),
    };
    // One protocol for the pair: IKEv1 IDs carry one each, and a peer narrowing to a protocol
    // narrows both sides.
    let protocol = match src.protocol.max(dst.protocol) {
        0 => ProtocolSelector::Any,
        p => ProtocolSelector::Is(p),
    };
    let port = |p: Option<u16>| p.map_or(PortSelector::Any, |p| PortSelector::Range(p, p));
    Selector {
        src: address(src),
        dst: address(dst),
        protocol,
        src_port: port(src.port),
        dst_port: port(dst.port),
        name: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_from_ranges() {
        let net = TrafficRange {
            start: "10.1.0.0".parse().unwrap(),
            end: "10.1.255.255".parse().unwrap(),
            protocol: 0,
            port: None,
        };
        let host = TrafficRange {
            protocol: 6,
            port: Some(80),
            ..TrafficRange::host("10.2.0.7".parse().unwrap())
        };
        let s = selector(&net, &host);
        assert_eq!(
            s.src,
            AddressSelector::Prefix("10.1.0.0".parse().unwrap(), 16)
        );
        assert_eq!(s.dst, AddressSelector::Single("10.2.0.7".parse().unwrap()));
        assert_eq!(s.protocol, ProtocolSelector::Is(6));
        assert_eq!(s.src_port, PortSelector::Any);
        assert_eq!(s.dst_port, PortSelector::Range(80, 80));
        let all = TrafficRange {
            start: Ipv4Addr::UNSPECIFIED,
            end: Ipv4Addr::BROADCAST,
            protocol: 0,
            port: None,
        };
        assert_eq!(selector(&all, &all).src, AddressSelector::Any);
    }

    #[test]
    fn sha384_is_refused_not_mistranslated() {
        assert!(matches!(
            algorithms(EspCipher::AesCbc(
                AesKeySize::Bits128,
                EspIntegrity::HmacSha384_192
            )),
            Err(InstallError::Unsupported(_))
        ));
        assert_eq!(
            algorithms(EspCipher::AesGcm16(AesKeySize::Bits256)).unwrap(),
            (EncryptionAlgorithm::AesGcm256, IntegrityAlgorithm::None)
        );
    }
}
