//! NAT traversal negotiation in IKEv1 Main Mode (RFC 3947), with the
//! draft-ietf-ipsec-nat-t-ike-02/03 variant older peers still announce.
//!
//! - Support is announced with Vendor ID payloads in messages 1 and 2 (RFC 3947 section 3.1):
//!   the initiator sends every Vendor ID in [`NAT_T_VENDOR_IDS`] when NAT-T is enabled, the
//!   responder answers with the single best one the initiator sent ([`NatTVersion::select`]:
//!   RFC 3947 first, then draft -03, -02\n, -02).
//! - When both sides announced support, messages 3 and 4 carry NAT-D payloads (RFC 3947
//!   section 3.2): the first is the hash of the remote end's address and port (the datagram's
//!   destination), the second that of the local one, each
//!   `HASH(CKY-I | CKY-R | IP | Port)` with the negotiated phase 1 hash ([`nat_d_hash`]). The
//!   drafts use the same payload under type 130 ([`DRAFT_NAT_D_PAYLOAD_TYPE`]).
//! - The receiver compares: the first hash against its own address as the datagram's
//!   destination (a mismatch: **this** side is behind a NAT), the others against the sender's
//!   address as the datagram's source (no match: the **peer** is behind a NAT)
//!   ([`NatDetection`]).
//! - When either is behind a NAT, messages 5 and 6 and everything after move to port 4500 with
//!   the non-ESP marker (RFC 3947 section 4) and ESP is UDP-encapsulated (RFC 3948) with the
//!   Encapsulation Mode values of the negotiated version ([`NatDetection::udp_encapsulation`]).
//!   Moving ports is the caller's (the engine's) job: this crate is sans-IO.
//!
//! `force_encap` is strongSwan's `encap = yes`: our second NAT-D is the hash of random bytes,
//! which cannot match our address, so the peer believes we are behind a NAT, and we record the
//! same ([`NatDetection::local_behind_nat`]): both sides encapsulate.

use std::net::{IpAddr, SocketAddr};

use realm_wire::isakmp::{
    Cookie, NAT_T_RFC3947_VENDOR_ID, NatDiscovery, Payload, PayloadBody, PayloadType, VendorId,
};

use crate::crypto::{Crypto, CryptoError, Digest, HashAlgorithm};
use crate::proposal::UdpEncapsulation;

/// The RFC 3947 Vendor ID: MD5("RFC 3947") (RFC 3947 section 3.1).
pub const VENDOR_ID_RFC3947: [u8; 16] = NAT_T_RFC3947_VENDOR_ID;
/// MD5("draft-ietf-ipsec-nat-t-ike-02"), announced by strongSwan and older peers.
pub const VENDOR_ID_DRAFT_02: [u8; 16] = [
    0xcd, 0x60, 0x46, 0x43, 0x35, 0xdf, 0x21, 0xf8, 0x7c, 0xfd, 0xb2, 0xfc, 0x68, 0xb6, 0xa4, 0x48,
];
/// MD5("draft-ietf-ipsec-nat-t-ike-02\n"): the draft's own text had the trailing newline, and
/// implementations (strongSwan, Windows) send both spellings.
pub const VENDOR_ID_DRAFT_02_N: [u8; 16] = [
    0x90, 0xcb, 0x80, 0x91, 0x3e, 0xbb, 0x69, 0x6e, 0x08, 0x63, 0x81, 0xb5, 0xec, 0x42, 0x7b, 0x1f,
];
/// MD5("draft-ietf-ipsec-nat-t-ike-03").
pub const VENDOR_ID_DRAFT_03: [u8; 16] = [
    0x7d, 0x94, 0x19, 0xa6, 0x53, 0x10, 0xca, 0x6f, 0x2c, 0x17, 0x9d, 0x92, 0x15, 0x52, 0x9d, 0x56,
];

/// Every NAT-T Vendor ID Realm understands, most preferred first: what the initiator sends in
/// message 1, and the responder's order of preference.
pub const NAT_T_VENDOR_IDS: [[u8; 16]; 4] = [
    VENDOR_ID_RFC3947,
    VENDOR_ID_DRAFT_03,
    VENDOR_ID_DRAFT_02_N,
    VENDOR_ID_DRAFT_02,
];

/// The NAT-D payload type of the drafts (RFC 3947 assigned 20).
pub const DRAFT_NAT_D_PAYLOAD_TYPE: u8 = 130;
/// The NAT-OA payload type of the drafts (RFC 3947 assigned 21).
pub const DRAFT_NAT_OA_PAYLOAD_TYPE: u8 = 131;

/// The addresses of the datagrams of Main Mode messages 1 to 4 as this side sees them: our
/// address they are sent from and to, and the peer's address they come from and go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoints {
    /// Our address and port.
    pub local: SocketAddr,
    /// The peer's address and port as seen here (after any NAT).
    pub remote: SocketAddr,
}

/// Which NAT-T specification both sides announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatTVersion {
    /// RFC 3947: NAT-D 20, NAT-OA 21, Encapsulation Mode 3 and 4.
    Rfc3947,
    /// draft-ietf-ipsec-nat-t-ike-02, -02\n or -03: NAT-D 130, NAT-OA 131, Encapsulation Mode
    /// 61443 and 61444 ([`UdpEncapsulation::Draft`]).
    Draft02,
}

impl NatTVersion {
    /// The version a NAT-T Vendor ID announces, `None` for any other Vendor ID.
    pub fn from_vendor_id(vid: &[u8]) -> Option<Self> {
        if vid == VENDOR_ID_RFC3947 {
            Some(Self::Rfc3947)
        } else if [VENDOR_ID_DRAFT_02, VENDOR_ID_DRAFT_02_N, VENDOR_ID_DRAFT_03]
            .iter()
            .any(|d| vid == d)
        {
            Some(Self::Draft02)
        } else {
            None
        }
    }

    /// The best NAT-T Vendor ID among `vids` (in [`NAT_T_VENDOR_IDS`] order): the one the
    /// responder echoes in message 2.
    pub fn select<'a>(vids: impl IntoIterator<Item = &'a [u8]> + Clone) -> Option<[u8; 16]> {
        NAT_T_VENDOR_IDS
            .iter()
            .find(|known| vids.clone().into_iter().any(|v| v == known.as_slice()))
            .copied()
    }

    /// The NAT-D payload type of this version.
    pub fn nat_d_payload_type(self) -> PayloadType {
        match self {
            Self::Rfc3947 => PayloadType::NatDiscovery,
            Self::Draft02 => PayloadType::Unknown(DRAFT_NAT_D_PAYLOAD_TYPE),
        }
    }

    /// The NAT-OA payload type of this version.
    pub fn nat_oa_payload_type(self) -> PayloadType {
        match self {
            Self::Rfc3947 => PayloadType::NatOriginalAddress,
            Self::Draft02 => PayloadType::Unknown(DRAFT_NAT_OA_PAYLOAD_TYPE),
        }
    }

    /// The UDP encapsulation this version's Encapsulation Mode values spell.
    pub fn udp_encapsulation(self) -> UdpEncapsulation {
        match self {
            Self::Rfc3947 => UdpEncapsulation::Rfc3947,
            Self::Draft02 => UdpEncapsulation::Draft,
        }
    }
}

/// NAT traversal settings of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NatTConfig {
    /// Announce NAT-T and take part in NAT detection (default true). When false no NAT-T
    /// Vendor ID is sent or answered, and NAT-D payloads are refused.
    pub enabled: bool,
    /// strongSwan's `encap = yes`: pretend to be behind a NAT (our NAT-D for our own address
    /// is a hash of random bytes) so that both sides UDP-encapsulate. Needs `enabled`.
    pub force_encap: bool,
}

impl Default for NatTConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            force_encap: false,
        }
    }
}

/// What NAT detection found, from one side's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NatDetection {
    /// The NAT-T version both sides announced, `None` without NAT-T.
    pub version: Option<NatTVersion>,
    /// We are behind a NAT (the peer's hash of our address does not match it), or we force
    /// encapsulation.
    pub local_behind_nat: bool,
    /// The peer is behind a NAT (none of its hashes of its own addresses matches the address
    /// its datagram came from), or the peer forces encapsulation.
    pub remote_behind_nat: bool,
}

impl NatDetection {
    /// True when NAT-T was negotiated and a NAT is on the path: the caller moves to port 4500
    /// for messages 5 and 6 (RFC 3947 section 4) and ESP is UDP-encapsulated (RFC 3948).
    pub fn encapsulate(&self) -> bool {
        self.version.is_some() && (self.local_behind_nat || self.remote_behind_nat)
    }

    /// The UDP encapsulation Quick Mode offers or accepts: none without a NAT, otherwise the
    /// negotiated version's (RFC 3947 section 5.1).
    pub fn udp_encapsulation(&self) -> UdpEncapsulation {
        match self.version {
            Some(v) if self.encapsulate() => v.udp_encapsulation(),
            _ => UdpEncapsulation::None,
        }
    }
}

/// `HASH(CKY-I | CKY-R | IP | Port)` with the negotiated phase 1 hash (RFC 3947 section 3.2):
/// the address as 4 or 16 octets, the port in network byte order.
pub fn nat_d_hash<C: Crypto>(
    crypto: &C,
    hash: HashAlgorithm,
    [cky_i, cky_r]: [Cookie; 2],
    addr: SocketAddr,
) -> Result<Digest, CryptoError> {
    let port = addr.port().to_be_bytes();
    match addr.ip() {
        IpAddr::V4(ip) => crypto.hash(hash, &[&cky_i, &cky_r, &ip.octets(), &port]),
        IpAddr::V6(ip) => crypto.hash(hash, &[&cky_i, &cky_r, &ip.octets(), &port]),
    }
}

/// A NAT-T Vendor ID payload.
pub(crate) fn vendor_id_payload(vid: [u8; 16]) -> Payload {
    Payload::new(PayloadBody::VendorId(VendorId::new(vid.to_vec())))
}

/// A NAT-D payload of `version` holding `hash`.
pub(crate) fn nat_d_payload(version: NatTVersion, hash: Vec<u8>) -> Payload {
    match version {
        NatTVersion::Rfc3947 => Payload::new(PayloadBody::NatDiscovery(NatDiscovery::new(hash))),
        NatTVersion::Draft02 => Payload::new(PayloadBody::Raw {
            payload_type: version.nat_d_payload_type(),
            data: hash,
        }),
    }
}

/// The NAT-D payloads of message 3 or 4 (RFC 3947 section 3.2): the remote end's, then ours
/// (with `force_encap`, the hash of random bytes, which cannot match).
pub(crate) fn nat_d_payloads<C: Crypto>(
    crypto: &C,
    version: NatTVersion,
    hash: HashAlgorithm,
    cookies: [Cookie; 2],
    endpoints: Endpoints,
    force_encap: bool,
) -> Result<Vec<Payload>, CryptoError> {
    let remote = nat_d_hash(crypto, hash, cookies, endpoints.remote)?;
    let local = if force_encap {
        let mut noise = [0u8; 32];
        crypto.fill_random(&mut noise)?;
        crypto.hash(hash, &[&noise])?
    } else {
        nat_d_hash(crypto, hash, cookies, endpoints.local)?
    };
    Ok(vec![
        nat_d_payload(version, remote.as_bytes().to_vec()),
        nat_d_payload(version, local.as_bytes().to_vec()),
    ])
}

/// The hash a payload carries when it is a NAT-D of `version`.
pub(crate) fn nat_d_of(version: NatTVersion, body: &PayloadBody) -> Option<&[u8]> {
    match (version, body) {
        (NatTVersion::Rfc3947, PayloadBody::NatDiscovery(d)) => Some(&d.hash),
        (
            NatTVersion::Draft02,
            PayloadBody::Raw {
                payload_type: PayloadType::Unknown(DRAFT_NAT_D_PAYLOAD_TYPE),
                data,
            },
        ) => Some(data),
        _ => None,
    }
}

/// Compares the peer's NAT-D hashes (RFC 3947 section 3.2): `received[0]` is the peer's hash
/// of our address, the rest its hashes of its own. `None` when fewer than two arrived.
pub(crate) fn detect<C: Crypto>(
    crypto: &C,
    version: NatTVersion,
    hash: HashAlgorithm,
    cookies: [Cookie; 2],
    endpoints: Endpoints,
    force_encap: bool,
    received: &[&[u8]],
) -> Result<Option<NatDetection>, CryptoError> {
    let [ours, theirs @ ..] = received else {
        return Ok(None);
    };
    if theirs.is_empty() {
        return Ok(None);
    }
    let local = nat_d_hash(crypto, hash, cookies, endpoints.local)?;
    let remote = nat_d_hash(crypto, hash, cookies, endpoints.remote)?;
    // RFC 3947 3.2: "If the hashes do not match, a NAT exists": our address as the peer
    // addressed it differs from ours; none of the peer's own addresses is where it came from.
    let local_behind_nat = *ours != local.as_bytes() || force_encap;
    let remote_behind_nat = !theirs.iter().any(|h| *h == remote.as_bytes());
    Ok(Some(NatDetection {
        version: Some(version),
        local_behind_nat,
        remote_behind_nat,
    }))
}
