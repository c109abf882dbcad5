//! Typed errors. Inbound failures are [`DropReason`]s, each counted (per SA
//! when the SA is known, per engine otherwise); outbound failures are
//! [`SealError`]s; configuration failures are [`ConfigError`]s.

use thiserror::Error;

/// Why an inbound packet was dropped. Every drop is counted under its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
#[non_exhaustive]
pub enum DropReason {
    /// Headers too short or inconsistent (IPv4, UDP, ESP, AH framing).
    #[error("malformed packet")]
    Malformed,
    /// RFC 4303 s3.4.2 / RFC 4302 s3.4.2: no SA for (SPI, destination, protocol).
    #[error("unknown SPI")]
    UnknownSpi,
    /// RFC 4303 s3.4.3: duplicate, or left of the anti-replay window.
    #[error("replayed or too old sequence number")]
    Replay,
    /// ICV (HMAC or AEAD tag) did not verify.
    #[error("integrity check failed")]
    IcvMismatch,
    /// After the ICV verified: pad length longer than the payload, or pad
    /// bytes not 1, 2, 3, ... (RFC 4303 s2.4). A ciphertext of a length no
    /// trailer fits is [`DropReason::Malformed`], found before the ICV.
    #[error("bad padding")]
    BadPadding,
    /// Next header of the ESP trailer not allowed for the SA's mode.
    #[error("bad next header")]
    BadNextHeader,
    /// RFC 4303 s2.6: next header 59, a dummy packet, silently discarded.
    #[error("dummy packet")]
    DummyPacket,
    /// RFC 2401 s5.2.1: the decapsulated packet does not match the SA's
    /// selectors or the inbound SPD, or cleartext arrived where IPsec is required.
    #[error("policy mismatch")]
    PolicyMismatch,
    /// The inbound SPD says DISCARD.
    #[error("discarded by policy")]
    PolicyDiscard,
    /// The SA's hard lifetime was reached.
    #[error("SA lifetime expired")]
    LifetimeExpired,
    /// IP fragments must be reassembled before IPsec processing (RFC 4303 s3.4.1).
    #[error("fragment")]
    Fragment,
    /// Too many nested IPsec headers (bounded work).
    #[error("too many nested IPsec layers")]
    TooDeep,
}

impl DropReason {
    /// Number of reasons (size of counter arrays).
    pub const COUNT: usize = 12;

    /// Every reason, in counter order.
    pub const ALL: [DropReason; Self::COUNT] = [
        Self::Malformed,
        Self::UnknownSpi,
        Self::Replay,
        Self::IcvMismatch,
        Self::BadPadding,
        Self::BadNextHeader,
        Self::DummyPacket,
        Self::PolicyMismatch,
        Self::PolicyDiscard,
        Self::LifetimeExpired,
        Self::Fragment,
        Self::TooDeep,
    ];

    /// Index into counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Why a packet could not be protected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SealError {
    /// The packet handed in is not a well-formed IPv4 datagram.
    #[error("malformed outbound packet")]
    Malformed,
    /// No SA with this id.
    #[error("unknown SA")]
    UnknownSa,
    /// RFC 4303 s3.3.3: the counter would cycle; a new SA is needed.
    #[error("sequence number space exhausted; a new SA is needed")]
    SequenceExhausted,
    /// The SA's hard lifetime was reached.
    #[error("SA lifetime expired")]
    LifetimeExpired,
    /// RFC 2401 s6.1.2.1: the protected packet exceeds the path MTU and the
    /// original has DF set. `mtu` is the largest packet the source may send;
    /// report it with ICMP "fragmentation needed" (see `icmp` in the error).
    #[error("fragmentation needed: MTU {mtu}")]
    FragmentationNeeded {
        /// The MTU to report to the source.
        mtu: u16,
        /// The ICMP type 3 code 4 datagram to send back to the source.
        icmp: Vec<u8>,
    },
    /// `seal_in_place` was given less headroom than the SA needs.
    #[error("need {need} bytes of headroom")]
    Headroom {
        /// Bytes needed in front of the packet.
        need: usize,
    },
    /// The SA is inbound-only.
    #[error("SA is not outbound")]
    NotOutbound,
    /// The provider failed (randomness, cipher).
    #[error("crypto provider: {0}")]
    Crypto(#[from] CryptoError),
}

/// A failure inside a cryptographic primitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The ICV did not verify.
    #[error("ICV mismatch")]
    IcvMismatch,
    /// Ciphertext length invalid for the cipher.
    #[error("bad ciphertext length")]
    BadLength,
    /// The random source failed.
    #[error("random source failed")]
    Random,
    /// Any other provider failure.
    #[error("provider failure")]
    Provider,
}

/// An SA or policy that cannot be installed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Key of the wrong length for its algorithm.
    #[error("{algorithm}: key must be {expected} bytes, got {got}")]
    KeyLength {
        /// Algorithm name.
        algorithm: &'static str,
        /// Required length.
        expected: usize,
        /// Given length.
        got: usize,
    },
    /// RFC 4303 s3.2: combined-mode algorithm with a separate integrity algorithm.
    #[error("a combined-mode (AEAD) cipher takes no separate integrity algorithm")]
    AeadWithIntegrity,
    /// An SA without integrity protection.
    #[error("ESP without integrity is refused (NULL/NULL is forbidden by RFC 4303 s3.2)")]
    NoIntegrity,
    /// AH carries no encryption.
    #[error("AH takes no encryption algorithm")]
    AhWithEncryption,
    /// RFC 3948 defines UDP encapsulation for ESP only.
    #[error("UDP encapsulation is defined for ESP only (RFC 3948)")]
    AhWithUdpEncap,
    /// Key text was not hex.
    #[error("key is not valid hex")]
    BadHex,
    /// The provider refused the key.
    #[error("crypto provider refused the key")]
    Provider,
    /// SPI 0 and 1..=255 are reserved (RFC 4303 s2.1).
    #[error("SPI {0} is reserved")]
    ReservedSpi(u32),
    /// Another SA already has this (SPI, destination, protocol).
    #[error("duplicate SA (SPI {0:#010x})")]
    DuplicateSa(u32),
    /// Replay window size out of range.
    #[error("replay window must be 0 (off) or 32..=4096, got {0}; ESN needs a window")]
    ReplayWindow(u32),
    /// A selector, address or port text that does not parse.
    #[error("bad {what}: {text:?}")]
    Parse {
        /// What was being parsed.
        what: &'static str,
        /// The offending text.
        text: String,
    },
    /// A policy references an SA that is not configured.
    #[error("policy references unknown SA {0:#010x}")]
    UnknownSa(u32),
    /// Path MTU below the IPv4 minimum of 68.
    #[error("path MTU {0} is below 68")]
    PathMtu(u16),
}
