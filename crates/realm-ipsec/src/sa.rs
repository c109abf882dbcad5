//! Security Associations (RFC 2401 s4.4.3): parameters, keyed state, and the
//! per-packet ESP (RFC 4303) and AH (RFC 4302) transforms in transport and
//! tunnel mode, with optional UDP encapsulation (RFC 3948).
//!
//! An SA never reads the clock; the engine ([`crate::Ipsec`]) passes `now`
//! and owns lookups, timers and events.

use std::net::Ipv4Addr;
use std::time::Instant;

use serde::{Deserialize, Deserializer};

use crate::crypto::{EncryptionAlgorithm, IntegrityAlgorithm, RandomSource, SecretKey, Transform};
use crate::error::{ConfigError, CryptoError, DropReason, SealError};
use crate::replay::{MAX_WINDOW, MIN_WINDOW, ReplayWindow};
use crate::selector::{Direction, Selector};
use crate::wire;
use realm_wire::{ah, ipv4, udp};

/// Security Parameters Index: the one type the RSIP lease pool, the SPI
/// parameter and the SAD share.
pub use realm_wire::rsip::Spi;

/// ESP or AH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IpsecProtocol {
    /// Encapsulating Security Payload, IP protocol 50.
    #[default]
    Esp,
    /// Authentication Header, IP protocol 51.
    Ah,
}

impl IpsecProtocol {
    /// IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Self::Esp => wire::PROTO_ESP,
            Self::Ah => wire::PROTO_AH,
        }
    }
}

/// Transport or tunnel mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Protects the payload of the packet; its IP header is kept.
    Transport,
    /// Protects the whole packet inside a new IPv4 header from `src` to `dst`.
    #[default]
    Tunnel,
}

/// How the tunnel header's DF bit is set (RFC 2401 s6.1.1.1: per SA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DfPolicy {
    /// Copy DF from the inner header.
    #[default]
    Copy,
    /// Always set.
    Set,
    /// Always clear.
    Clear,
}

/// RFC 3948 UDP encapsulation ports of an SA (source, destination as sent
/// by the SA's `src`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct UdpEncap {
    /// UDP source port.
    pub src_port: u16,
    /// UDP destination port.
    pub dst_port: u16,
}

/// One set of lifetime limits; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifetimeLimits {
    /// Seconds since the SA was installed.
    pub seconds: Option<u64>,
    /// Bytes of (inner) traffic.
    pub bytes: Option<u64>,
    /// Packets.
    pub packets: Option<u64>,
}

/// Soft (rekey) and hard (delete) lifetimes (RFC 2401 s4.4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Lifetime {
    /// Reaching it raises [`crate::Event::SoftLifetimeExpired`] (time to rekey).
    pub soft: LifetimeLimits,
    /// Reaching it deletes the SA ([`crate::Event::HardLifetimeExpired`]).
    pub hard: LifetimeLimits,
}

/// The SAD key (RFC 2401 s4.4.3 / s4.7: SPI, destination, protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SadKey {
    /// SPI.
    pub spi: Spi,
    /// Destination (outer) address.
    pub dst: Ipv4Addr,
    /// ESP or AH.
    pub protocol: IpsecProtocol,
}

/// Everything needed to install an SA (from IKE or manual keying).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaConfig {
    /// SPI (RFC 4303 s2.1: 1..=255 reserved, 0 invalid).
    pub spi: Spi,
    /// Inbound (we open) or outbound (we seal).
    pub direction: Direction,
    /// ESP or AH.
    #[serde(default)]
    pub protocol: IpsecProtocol,
    /// Transport or tunnel.
    #[serde(default)]
    pub mode: Mode,
    /// Sender's address (outer source in tunnel mode).
    pub src: Ipv4Addr,
    /// Receiver's address (outer destination in tunnel mode; SAD key).
    pub dst: Ipv4Addr,
    /// Encryption (ESP only; `null` for AH).
    #[serde(default = "default_encryption")]
    pub encryption: EncryptionAlgorithm,
    /// Encryption keying material (with the 4-byte salt for AEADs), hex in config.
    #[serde(default, deserialize_with = "de_key")]
    pub encryption_key: SecretKey,
    /// Integrity (`none` with an AEAD).
    #[serde(default = "default_integrity")]
    pub integrity: IntegrityAlgorithm,
    /// Integrity key, hex in config.
    #[serde(default, deserialize_with = "de_key")]
    pub integrity_key: SecretKey,
    /// Extended (64-bit) sequence numbers (RFC 4303 s2.2.1).
    #[serde(default)]
    pub esn: bool,
    /// Anti-replay window in packets: 0 (off) or 32..=4096. Inbound only.
    #[serde(default = "default_window")]
    pub replay_window: u32,
    /// Soft and hard lifetimes.
    #[serde(default)]
    pub lifetime: Lifetime,
    /// RFC 3948 UDP encapsulation (ESP only).
    #[serde(default)]
    pub udp_encap: Option<UdpEncap>,
    /// Path MTU toward `dst` (RFC 2401 s6.1.2), updated by ICMP.
    #[serde(default = "default_mtu")]
    pub path_mtu: u16,
    /// DF bit of the tunnel header.
    #[serde(default)]
    pub df: DfPolicy,
    /// TTL of the tunnel header (RFC 2401 s5.1.2.1: constructed).
    #[serde(default = "default_ttl")]
    pub ttl: u8,
    /// Selectors the (decapsulated) traffic must match (RFC 2401 s5.2.1 step 4).
    #[serde(default)]
    pub selector: Selector,
}

fn default_encryption() -> EncryptionAlgorithm {
    EncryptionAlgorithm::Null
}
fn default_integrity() -> IntegrityAlgorithm {
    IntegrityAlgorithm::None
}
fn default_window() -> u32 {
    64
}
fn default_mtu() -> u16 {
    1500
}
fn default_ttl() -> u8 {
    64
}

fn de_key<'de, D: Deserializer<'de>>(d: D) -> Result<SecretKey, D::Error> {
    let s = zeroize::Zeroizing::new(String::deserialize(d)?);
    SecretKey::from_hex(&s).map_err(serde::de::Error::custom)
}

impl Default for SaConfig {
    fn default() -> Self {
        Self {
            spi: Spi(0),
            direction: Direction::Outbound,
            protocol: IpsecProtocol::Esp,
            mode: Mode::Tunnel,
            src: Ipv4Addr::UNSPECIFIED,
            dst: Ipv4Addr::UNSPECIFIED,
            encryption: EncryptionAlgorithm::Null,
            encryption_key: SecretKey::default(),
            integrity: IntegrityAlgorithm::None,
            integrity_key: SecretKey::default(),
            esn: false,
            replay_window: 64,
            lifetime: Lifetime::default(),
            udp_encap: None,
            path_mtu: 1500,
            df: DfPolicy::Copy,
            ttl: 64,
            selector: Selector::default(),
        }
    }
}

impl SaConfig {
    /// The SAD key of this SA.
    pub fn key(&self) -> SadKey {
        SadKey {
            spi: self.spi,
            dst: self.dst,
            protocol: self.protocol,
        }
    }
}

/// Per-SA counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SaCounters {
    /// Packets sealed or opened successfully.
    pub packets: u64,
    /// Inner bytes sealed or opened successfully (what byte lifetimes count).
    pub bytes: u64,
    /// Drops by [`DropReason`] (index with `DropReason::index`).
    pub drops: [u64; DropReason::COUNT],
}

impl SaCounters {
    /// Drops for one reason.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }
}

/// Headroom that always suffices in front of a packet for
/// [`crate::Ipsec::seal_in_place`]: outer IPv4 (20), UDP (8), ESP header (8)
/// and the largest IV (16), or outer IPv4 and the largest AH (12 + 16).
pub const MAX_HEADROOM: usize = 64;

/// Identifies an installed SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SaId(pub u64);

/// An installed SA.
#[derive(Debug)]
pub struct SecurityAssociation {
    pub(crate) id: SaId,
    pub(crate) config: SaConfig,
    transform: Transform,
    /// Last sequence number sent (outbound).
    seq: u64,
    replay: Option<ReplayWindow>,
    pub(crate) created: Instant,
    pub(crate) last_sent: Instant,
    pub(crate) soft_fired: bool,
    pub(crate) exhausted_fired: bool,
    pub(crate) counters: SaCounters,
}

/// Result of one inbound decapsulation.
#[derive(Debug)]
pub(crate) struct Opened {
    /// The full sequence number (with ESN high bits).
    pub(crate) seq: u64,
    pub(crate) inner_len: usize,
}

impl SecurityAssociation {
    pub(crate) fn new(id: SaId, config: SaConfig, now: Instant) -> Result<Self, ConfigError> {
        if config.spi.0 < 256 {
            return Err(ConfigError::ReservedSpi(config.spi.0));
        }
        if config.protocol == IpsecProtocol::Ah {
            if config.encryption != EncryptionAlgorithm::Null {
                return Err(ConfigError::AhWithEncryption);
            }
            if config.udp_encap.is_some() {
                return Err(ConfigError::AhWithUdpEncap);
            }
        }
        if config.integrity == IntegrityAlgorithm::None && config.protocol == IpsecProtocol::Ah {
            return Err(ConfigError::NoIntegrity);
        }
        let w = config.replay_window;
        if (w != 0 && !(MIN_WINDOW..=MAX_WINDOW).contains(&w)) || (w == 0 && config.esn) {
            return Err(ConfigError::ReplayWindow(w));
        }
        if config.path_mtu < 68 {
            return Err(ConfigError::PathMtu(config.path_mtu));
        }
        let transform = if config.protocol == IpsecProtocol::Ah {
            // AH: integrity only; Transform::new wants a non-AEAD cipher + MAC.
            Transform::new(
                EncryptionAlgorithm::Null,
                &SecretKey::default(),
                config.integrity,
                &config.integrity_key,
            )?
        } else {
            Transform::new(
                config.encryption,
                &config.encryption_key,
                config.integrity,
                &config.integrity_key,
            )?
        };
        let replay = (config.direction == Direction::Inbound && w != 0)
            .then(|| ReplayWindow::new(w, config.esn));
        Ok(Self {
            id,
            config,
            transform,
            seq: 0,
            replay,
            created: now,
            last_sent: now,
            soft_fired: false,
            exhausted_fired: false,
            counters: SaCounters::default(),
        })
    }

    /// True once the hard time lifetime has passed.
    pub(crate) fn hard_time_passed(&self, now: Instant) -> bool {
        self.config
            .lifetime
            .hard
            .seconds
            .is_some_and(|s| now >= self.created + std::time::Duration::from_secs(s))
    }

    /// True if byte or packet lifetimes are configured.
    pub(crate) fn has_volume_limits(&self) -> bool {
        let l = &self.config.lifetime;
        l.soft.bytes.is_some()
            || l.soft.packets.is_some()
            || l.hard.bytes.is_some()
            || l.hard.packets.is_some()
    }

    /// The SA's id.
    pub fn id(&self) -> SaId {
        self.id
    }

    /// The SA's parameters (keys included; `Debug` redacts them).
    pub fn config(&self) -> &SaConfig {
        &self.config
    }

    /// The SAD key.
    pub fn key(&self) -> SadKey {
        self.config.key()
    }

    /// Counters.
    pub fn counters(&self) -> &SaCounters {
        &self.counters
    }

    /// Last sequence number sent (outbound).
    pub fn sequence(&self) -> u64 {
        self.seq
    }

    /// Sets the outbound counter (next packet gets `seq + 1`). For tests and
    /// SA migration only: reusing numbers with the same key breaks AEAD nonces.
    pub fn set_sequence(&mut self, seq: u64) {
        self.seq = seq;
    }

    /// The inbound replay window, if anti-replay is on.
    pub fn replay_window(&self) -> Option<&ReplayWindow> {
        self.replay.as_ref()
    }

    /// Records `seq` in the inbound window as if a packet with that number
    /// had been authenticated (RFC 4303 s3.4.3). For tests and SA migration
    /// only, like [`Self::set_sequence`]: with ESN the receiver infers the
    /// high 32 bits of a sequence number from its window (RFC 4303 Appendix
    /// A2.2), and traffic moves a window at most into the next 2^32
    /// subspace. False without anti-replay, or if `seq` is a replay.
    pub fn mark_received(&mut self, seq: u64) -> bool {
        self.replay.as_mut().is_some_and(|w| w.update(seq))
    }

    /// Updates the path MTU (RFC 2401 s6.1.2: from ICMP), floor 68.
    pub fn set_path_mtu(&mut self, mtu: u16) {
        self.config.path_mtu = mtu.max(68);
    }

    fn udp_len(&self) -> usize {
        if self.config.udp_encap.is_some() {
            wire::UDP_HEADER
        } else {
            0
        }
    }

    /// Per-packet overhead around the payload, excluding padding.
    fn fixed_overhead(&self) -> usize {
        match self.config.protocol {
            IpsecProtocol::Esp => {
                self.udp_len()
                    + wire::ESP_HEADER
                    + self.config.encryption.iv_len()
                    + 2
                    + self.transform.icv_len()
            }
            IpsecProtocol::Ah => wire::AH_FIXED + self.transform.icv_len(),
        }
    }

    /// RFC 2401 s6.1.2.4: the effective MTU for inner packets, the largest
    /// packet (with a 20-byte IPv4 header in transport mode) that still fits
    /// the path MTU once protected by this SA.
    pub fn effective_mtu(&self) -> u16 {
        // Tunnel: the whole inner packet is protected behind a new 20-byte
        // header. Transport: the packet's own header (assumed 20 bytes) stays
        // in front, outside the encrypted part.
        let avail = usize::from(self.config.path_mtu)
            .saturating_sub(wire::IPV4_MIN_HEADER + self.fixed_overhead());
        let protected = match self.config.protocol {
            IpsecProtocol::Esp => {
                let b = self.config.encryption.block_len();
                // payload + 2 (trailer) must fit a multiple of the block within avail + 2.
                ((avail + 2) / b * b).saturating_sub(2)
            }
            IpsecProtocol::Ah => avail,
        };
        let mtu = match self.config.mode {
            Mode::Tunnel => protected,
            Mode::Transport => protected + wire::IPV4_MIN_HEADER,
        };
        mtu.min(usize::from(u16::MAX)) as u16
    }

    fn next_seq(&self) -> Result<u64, SealError> {
        // RFC 4303 s3.3.3: without ESN the counter MUST NOT cycle: the last
        // packet sent carries 2^32 - 1; with ESN the limit is 2^64 - 1.
        let limit = if self.config.esn {
            u64::MAX
        } else {
            u64::from(u32::MAX)
        };
        if self.seq >= limit {
            return Err(SealError::SequenceExhausted);
        }
        Ok(self.seq + 1)
    }

    /// Bytes the protected packet needs in front of the original one, for a
    /// packet whose IPv4 header is `header_len` bytes (tunnel mode adds a
    /// header; transport mode moves the original header forward).
    fn headroom_for(&self) -> usize {
        let outer = if self.config.mode == Mode::Tunnel {
            wire::IPV4_MIN_HEADER
        } else {
            0
        };
        outer
            + match self.config.protocol {
                IpsecProtocol::Esp => {
                    self.udp_len() + wire::ESP_HEADER + self.config.encryption.iv_len()
                }
                IpsecProtocol::Ah => wire::AH_FIXED + self.transform.icv_len(),
            }
    }

    /// Protects the IPv4 `packet` into `out` (cleared first): one copy of
    /// the packet, then the same in-place path as [`Self::seal_in_place`].
    /// Returns the inner bytes counted against lifetimes.
    pub(crate) fn seal_into(
        &mut self,
        packet: &[u8],
        out: &mut Vec<u8>,
        rng: &mut dyn RandomSource,
    ) -> Result<usize, SealError> {
        let ip = wire::parse_ipv4(packet).ok_or(SealError::Malformed)?;
        let total_len = ip.total_len();
        let head = self.headroom_for();
        out.clear();
        out.reserve(head + total_len + 2 + 15 + 16 + wire::UDP_HEADER);
        out.resize(head, 0);
        out.extend_from_slice(&packet[..total_len]);
        let (start, bytes) = self.seal_in_place(out, head, rng)?;
        debug_assert_eq!(start, 0);
        Ok(bytes)
    }

    /// Protects the IPv4 packet at `buf[offset..]` in place: headers are
    /// written into the headroom `buf[..offset]` (at least [`MAX_HEADROOM`]
    /// bytes always suffice), trailer and ICV are appended, the payload is
    /// encrypted where it lies. Returns (offset of the protected packet in
    /// `buf`, inner bytes). On error `buf` may hold a partial packet.
    pub(crate) fn seal_in_place(
        &mut self,
        buf: &mut Vec<u8>,
        offset: usize,
        rng: &mut dyn RandomSource,
    ) -> Result<(usize, usize), SealError> {
        if self.config.direction != Direction::Outbound {
            return Err(SealError::NotOutbound);
        }
        let ip = wire::parse_ipv4(buf.get(offset..).ok_or(SealError::Malformed)?)
            .ok_or(SealError::Malformed)?;
        let ip_total = ip.total_len();
        buf.truncate(offset + ip_total);
        let transport = self.config.mode == Mode::Transport;
        // RFC 4303 s3.3.1 / RFC 4302 s3.3.1: transport mode applies to whole
        // datagrams only.
        if transport && ip.is_fragment() {
            return Err(SealError::Malformed);
        }
        let seq = self.next_seq()?;
        let head = self.headroom_for();
        let Some(new_start) = offset.checked_sub(head) else {
            return Err(SealError::Headroom { need: head });
        };
        // Protected region: the payload (transport) or whole packet (tunnel).
        let (hdr_len, next_header) = if transport {
            (ip.buffer_len(), u8::from(ip.protocol))
        } else {
            (0, wire::PROTO_IPIP)
        };
        let payload_len = ip_total - hdr_len;
        let b = self.config.encryption.block_len();
        let total = match self.config.protocol {
            IpsecProtocol::Esp => {
                head + hdr_len + (payload_len + 2).div_ceil(b) * b + self.transform.icv_len()
            }
            IpsecProtocol::Ah => head + ip_total,
        };
        if total > usize::from(self.config.path_mtu) && ip.dont_frag {
            // RFC 2401 s6.1.2.1: DF set, too big after IPsec: the source must
            // be told the effective MTU.
            let mtu = self.effective_mtu().max(68);
            let icmp = wire::icmp_frag_needed(self.config.src, &buf[offset..], mtu);
            return Err(SealError::FragmentationNeeded { mtu, icmp });
        }
        if total > usize::from(u16::MAX) {
            return Err(SealError::Malformed);
        }
        let proto_on_wire = match (self.config.protocol, self.config.udp_encap) {
            (IpsecProtocol::Esp, Some(_)) => wire::PROTO_UDP,
            (p, _) => p.number(),
        };
        // The IPv4 header of the protected packet, at new_start.
        let mut at = new_start;
        if transport {
            buf.copy_within(offset..offset + hdr_len, new_start);
            wire::rewrite_ipv4(
                &mut buf[new_start..new_start + hdr_len],
                total as u16,
                proto_on_wire,
            );
            at += hdr_len;
        } else {
            // RFC 2401 s5.1.2.1: tunnel header. TOS copied (DSCP, and ECN per
            // RFC 6040 normal mode), DF per SA, TTL constructed, new ID,
            // no options copied.
            let df = match self.config.df {
                DfPolicy::Copy => ip.dont_frag,
                DfPolicy::Set => true,
                DfPolicy::Clear => false,
            };
            ipv4::Repr::new(
                self.config.src,
                self.config.dst,
                ipv4::IpProtocol::from(proto_on_wire),
                total - wire::IPV4_MIN_HEADER,
            )
            .with_tos(ip.tos())
            .with_ident(seq as u16)
            .with_dont_frag(df)
            .with_ttl(self.config.ttl)
            .emit_header(&mut buf[at..at + wire::IPV4_MIN_HEADER])
            .map_err(|_| SealError::Malformed)?;
            at += wire::IPV4_MIN_HEADER;
        }
        match self.config.protocol {
            IpsecProtocol::Esp => {
                self.esp_seal(seq, buf, new_start, at, next_header, total, rng)?;
            }
            IpsecProtocol::Ah => self.ah_seal(seq, buf, new_start, at, next_header)?,
        }
        debug_assert_eq!(buf.len() - new_start, total);
        self.seq = seq;
        Ok((new_start, ip_total))
    }

    /// Writes UDP (NAT-T), ESP header and IV at `buf[at..]`, appends the
    /// trailer, encrypts the payload in place and appends the ICV.
    #[allow(clippy::too_many_arguments)]
    fn esp_seal(
        &self,
        seq: u64,
        buf: &mut Vec<u8>,
        packet_start: usize,
        mut at: usize,
        next_header: u8,
        total: usize,
        rng: &mut dyn RandomSource,
    ) -> Result<(), SealError> {
        let enc = self.config.encryption;
        if let Some(u) = self.config.udp_encap {
            let esp_len = total - (at - packet_start) - wire::UDP_HEADER;
            udp::Repr::without_checksum(u.src_port, u.dst_port, esp_len)
                .emit_header(&mut buf[at..at + wire::UDP_HEADER])
                .map_err(|_| SealError::Malformed)?;
            at += wire::UDP_HEADER;
        }
        let esp_start = at;
        let spi = self.config.spi.0.to_be_bytes();
        let seq_low = (seq as u32).to_be_bytes();
        let seq_hi = ((seq >> 32) as u32).to_be_bytes();
        // RFC 4303 s2: SPI, Sequence Number (low 32 bits on the wire).
        buf[at..at + 4].copy_from_slice(&spi);
        buf[at + 4..at + 8].copy_from_slice(&seq_low);
        at += wire::ESP_HEADER;
        let mut iv16 = [0u8; 16];
        let iv8 = seq.to_be_bytes();
        match enc.iv_len() {
            0 => {}
            // RFC 4106 s3.1: the 64-bit counter is a never-repeating IV.
            8 => buf[at..at + 8].copy_from_slice(&iv8),
            _ => {
                rng.fill(&mut iv16)?; // RFC 3602 s2.1: random, unpredictable IV
                buf[at..at + 16].copy_from_slice(&iv16);
            }
        }
        let data_start = at + enc.iv_len();
        // RFC 4303 s2.4: padding 1, 2, 3, ... up to the cipher block and
        // 4-byte alignment; then Pad Length and Next Header.
        let trailer =
            realm_wire::esp::TrailerRepr::new(buf.len() - data_start, enc.block_len(), next_header)
                .map_err(|_| SealError::Malformed)?;
        trailer.append_to(buf);
        let data_end = buf.len();
        let icv_len = self.transform.icv_len();
        if enc.is_aead() {
            // RFC 4106 s5 / RFC 7634 s2.1: AAD = SPI | seq (| seq-hi first with ESN).
            let mut aad = [0u8; 12];
            aad[..4].copy_from_slice(&spi);
            let aad = if self.config.esn {
                aad[4..8].copy_from_slice(&seq_hi);
                aad[8..].copy_from_slice(&seq_low);
                &aad[..]
            } else {
                aad[4..8].copy_from_slice(&seq_low);
                &aad[..8]
            };
            let tag = self
                .transform
                .aead_seal(&iv8, aad, &mut buf[data_start..data_end])?;
            buf.extend_from_slice(&tag);
        } else {
            if enc != EncryptionAlgorithm::Null {
                self.transform
                    .cbc_encrypt(&iv16, &mut buf[data_start..data_end])?;
            }
            // RFC 4303 s3.3.2.1 / s2.2.1: ICV over ESP header..trailer, with
            // the ESN high bits appended implicitly.
            let mut icv = [0u8; 16];
            let icv = &mut icv[..icv_len];
            if self.config.esn {
                self.transform
                    .mac_into(&[&buf[esp_start..], &seq_hi], icv)?;
            } else {
                self.transform.mac_into(&[&buf[esp_start..]], icv)?;
            }
            buf.extend_from_slice(icv);
        }
        Ok(())
    }

    /// Writes the AH at `buf[at..]` and fills its ICV.
    fn ah_seal(
        &self,
        seq: u64,
        buf: &mut [u8],
        packet_start: usize,
        at: usize,
        next_header: u8,
    ) -> Result<(), SealError> {
        let icv_len = self.transform.icv_len();
        // RFC 4302 s2.2: Payload Length = AH length in 32-bit words minus 2.
        let ah_len = wire::AH_FIXED + icv_len;
        buf[at..at + 4].copy_from_slice(&[next_header, (ah_len / 4 - 2) as u8, 0, 0]);
        buf[at + 4..at + 8].copy_from_slice(&self.config.spi.0.to_be_bytes());
        buf[at + 8..at + 12].copy_from_slice(&(seq as u32).to_be_bytes());
        buf[at + 12..at + ah_len].iter_mut().for_each(|b| *b = 0);
        let mut icv = [0u8; 16];
        let icv = &mut icv[..icv_len];
        // RFC 4302 s3.3.3: ICV over the IP header (mutable fields and options
        // zeroed), AH (ICV zeroed) and payload; s2.5.1: ESN high bits appended.
        let mut image = Vec::with_capacity(buf.len() - packet_start);
        ah::ipv4_icv_input(
            &buf[packet_start..],
            icv_len,
            ah::Direction::Outbound,
            &mut image,
        )
        .map_err(|_| SealError::Malformed)?;
        let seq_hi = ((seq >> 32) as u32).to_be_bytes();
        if self.config.esn {
            self.transform.mac_into(&[&image, &seq_hi], icv)?;
        } else {
            self.transform.mac_into(&[&image], icv)?;
        }
        buf[at + wire::AH_FIXED..at + ah_len].copy_from_slice(icv);
        Ok(())
    }

    /// Replay pre-check (RFC 4303 s3.4.3: before the ICV): the full sequence number.
    fn precheck(&self, seq_low: u32) -> Result<u64, DropReason> {
        match &self.replay {
            Some(w) => w.check(seq_low).ok_or(DropReason::Replay),
            None => Ok(u64::from(seq_low)),
        }
    }

    fn commit(&mut self, seq: u64) -> Result<(), DropReason> {
        match &mut self.replay {
            Some(w) => {
                if w.update(seq) {
                    Ok(())
                } else {
                    Err(DropReason::Replay)
                }
            }
            None => Ok(()),
        }
    }

    /// Opens the ESP packet at `esp_off` of the IPv4 datagram in `buf`
    /// (`outer` is its parsed header), in place. On success `buf` holds the
    /// decapsulated IPv4 packet.
    pub(crate) fn esp_open(
        &mut self,
        buf: &mut Vec<u8>,
        outer: &ipv4::Repr,
        esp_off: usize,
    ) -> Result<Opened, DropReason> {
        let enc = self.config.encryption;
        let iv_len = enc.iv_len();
        let icv_len = self.transform.icv_len();
        let end = outer.total_len();
        let esp_len = end.checked_sub(esp_off).ok_or(DropReason::Malformed)?;
        let ct_len = esp_len
            .checked_sub(wire::ESP_HEADER + iv_len + icv_len)
            .ok_or(DropReason::Malformed)?;
        // Framing, checked before the ICV: a ciphertext too short for a
        // trailer or not cipher-aligned (RFC 4303 s2.4) is a malformed
        // packet, whoever sent it. It says nothing about padding (which is
        // examined only once the ICV verified, below), so an unauthenticated
        // forgery is never counted against the keyed peer as bad padding.
        if ct_len < 4 || ct_len % enc.block_len() != 0 {
            return Err(DropReason::Malformed);
        }
        let esp = buf.get(esp_off..end).ok_or(DropReason::Malformed)?;
        let seq_low = u32::from_be_bytes([esp[4], esp[5], esp[6], esp[7]]);
        let seq = self.precheck(seq_low)?;
        let seq_hi = ((seq >> 32) as u32).to_be_bytes();
        let data_start = esp_off + wire::ESP_HEADER + iv_len;
        let data_end = data_start + ct_len;
        if enc.is_aead() {
            let mut aad = [0u8; 12];
            aad[..4].copy_from_slice(&esp[..4]);
            let aad = if self.config.esn {
                aad[4..8].copy_from_slice(&seq_hi);
                aad[8..].copy_from_slice(&esp[4..8]);
                &aad[..]
            } else {
                aad[4..8].copy_from_slice(&esp[4..8]);
                &aad[..8]
            };
            let mut iv = [0u8; 8];
            iv.copy_from_slice(&esp[8..16]);
            let mut tag = [0u8; 16];
            tag.copy_from_slice(&buf[data_end..end]);
            self.transform
                .aead_open(&iv, aad, &tag, &mut buf[data_start..data_end])
                .map_err(|_| DropReason::IcvMismatch)?;
        } else {
            let (authed, icv) = esp.split_at(esp_len - icv_len);
            let r = if self.config.esn {
                self.transform.mac_verify(&[authed, &seq_hi], icv)
            } else {
                self.transform.mac_verify(&[authed], icv)
            };
            r.map_err(|_| DropReason::IcvMismatch)?;
            if enc != EncryptionAlgorithm::Null {
                let mut iv = [0u8; 16];
                iv.copy_from_slice(&esp[8..24]);
                self.transform
                    .cbc_decrypt(&iv, &mut buf[data_start..data_end])
                    .map_err(|e| {
                        // Unreachable after the alignment check above; a
                        // length error is framing, not padding.
                        if e == CryptoError::BadLength {
                            DropReason::Malformed
                        } else {
                            DropReason::IcvMismatch
                        }
                    })?;
            }
        }
        // RFC 4303 s3.4.3: the window is updated only after the ICV verified.
        self.commit(seq)?;
        // RFC 4303 s2.4: the receiver inspects the padding (1, 2, 3, ...);
        // s2.6: next header 59 marks a dummy packet, discarded silently.
        let trailer = realm_wire::esp::Trailer::parse(&buf[data_start..data_end])
            .map_err(|_| DropReason::BadPadding)?;
        if trailer.is_dummy() {
            return Err(DropReason::DummyPacket);
        }
        let (payload_len, next_header) = (trailer.payload.len(), trailer.next_header);
        let inner_len = self.rebuild(buf, outer, data_start, payload_len, next_header)?;
        Ok(Opened { seq, inner_len })
    }

    /// Opens the AH packet following the IPv4 header of `buf`, in place.
    pub(crate) fn ah_open(
        &mut self,
        buf: &mut Vec<u8>,
        outer: &ipv4::Repr,
    ) -> Result<Opened, DropReason> {
        let hl = outer.buffer_len();
        let end = outer.total_len();
        let icv_len = self.transform.icv_len();
        let ah_bytes = buf.get(hl..end).ok_or(DropReason::Malformed)?;
        let ah_pkt = ah::Packet::new_checked(ah_bytes).map_err(|_| DropReason::Malformed)?;
        let next_header = ah_pkt.next_header();
        let ah_len = ah_pkt.header_len();
        // RFC 4302 s2.2: the ICV field is the SA's ICV length (no padding needed for 96/128 bits).
        if ah_len != wire::AH_FIXED + icv_len {
            return Err(DropReason::Malformed);
        }
        let mut icv = [0u8; 16];
        let icv = &mut icv[..icv_len];
        icv.copy_from_slice(ah_pkt.icv_for(icv_len).map_err(|_| DropReason::Malformed)?);
        let seq = self.precheck(ah_pkt.sequence_number())?;
        let seq_hi = ((seq >> 32) as u32).to_be_bytes();
        let mut image = Vec::with_capacity(end);
        ah::ipv4_icv_input(&buf[..end], icv_len, ah::Direction::Inbound, &mut image)
            .map_err(|_| DropReason::Malformed)?;
        let r = if self.config.esn {
            self.transform.mac_verify(&[&image, &seq_hi], icv)
        } else {
            self.transform.mac_verify(&[&image], icv)
        };
        r.map_err(|_| DropReason::IcvMismatch)?;
        self.commit(seq)?;
        let payload_start = hl + ah_len;
        let inner_len =
            self.rebuild(buf, outer, payload_start, end - payload_start, next_header)?;
        Ok(Opened { seq, inner_len })
    }

    /// Turns `buf` into the decapsulated packet: the inner datagram (tunnel)
    /// or the original header followed by the payload (transport).
    fn rebuild(
        &self,
        buf: &mut Vec<u8>,
        outer: &ipv4::Repr,
        payload_start: usize,
        payload_len: usize,
        next_header: u8,
    ) -> Result<usize, DropReason> {
        match self.config.mode {
            Mode::Tunnel => {
                if next_header != wire::PROTO_IPIP {
                    return Err(DropReason::BadNextHeader);
                }
                let inner = buf
                    .get(payload_start..payload_start + payload_len)
                    .ok_or(DropReason::Malformed)?;
                let inner_len = ipv4::Packet::new_checked(inner)
                    .map_err(|_| DropReason::Malformed)?
                    .total_len();
                let inner_len = usize::from(inner_len);
                buf.copy_within(payload_start..payload_start + inner_len, 0);
                buf.truncate(inner_len);
                // The checked inner packet, now at the start of `buf`.
                let mut inner = ipv4::Packet::new_unchecked(&mut buf[..]);
                // RFC 6040 s4.2 (normal mode): outer CE marks an ECN-capable inner packet CE.
                if outer.ecn == 3 && matches!(inner.ecn(), 1 | 2) {
                    inner.set_ecn(3);
                    inner.fill_checksum();
                }
                Ok(inner_len)
            }
            Mode::Transport => {
                let hl = outer.buffer_len();
                let total = hl + payload_len;
                if total > usize::from(u16::MAX) {
                    return Err(DropReason::Malformed);
                }
                buf.copy_within(payload_start..payload_start + payload_len, hl);
                buf.truncate(total);
                wire::rewrite_ipv4(buf, total as u16, next_header);
                if self.config.udp_encap.is_some() {
                    // RFC 3948 s3.1.2: NAT changed the addresses the transport
                    // checksum covers; recompute it.
                    wire::fix_transport_checksum(
                        buf,
                        hl,
                        next_header,
                        outer.src_addr,
                        outer.dst_addr,
                    );
                }
                Ok(total)
            }
        }
    }
}
