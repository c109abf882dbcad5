//! Realm's IPsec core (RFC 2401 architecture): Security Policy Database,
//! Security Association Database, ESP (RFC 4303), AH (RFC 4302), UDP
//! encapsulation (RFC 3948), anti-replay (RFC 4303 s3.4.3, Appendix A) and
//! SA lifetimes.
//!
//! **Sans-IO.** [`Ipsec`] takes whole IPv4 datagrams and `now` in, and hands
//! protected or decapsulated datagrams, [`Event`]s, [`Transmit`]s (NAT
//! keepalives) and a next timeout out. It never reads a clock, opens a
//! socket or a TUN device, and never panics on input.
//!
//! Cryptography is aws-lc-rs only (AES-GCM, ChaCha20-Poly1305, AES-CBC,
//! HMAC); keys are zeroized on drop; ICVs are compared in constant time.
#![forbid(unsafe_code)]

pub mod config;
pub mod crypto;
mod engine;
pub mod error;
pub mod replay;
pub mod sa;
pub mod selector;
pub mod spd;
mod wire;
pub mod wireshark;

pub use crypto::{
    EncryptionAlgorithm, IntegrityAlgorithm, RandomSource, SecretKey, SystemRandomSource,
};
pub use engine::{
    EngineConfig, Event, IkeDatagram, Inbound, InboundPacket, Ipsec, LifetimeKind, MAX_LAYERS,
    Outbound, OutboundInPlace, Transmit,
};
pub use error::{ConfigError, CryptoError, DropReason, SealError};
pub use sa::{
    DfPolicy, IpsecProtocol, Lifetime, LifetimeLimits, MAX_HEADROOM, Mode, SaConfig, SaCounters,
    SaId, SadKey, SecurityAssociation, Spi, UdpEncap,
};
pub use selector::{
    AddressSelector, Direction, PacketSelector, PortSelector, ProtocolSelector, Selector,
};
pub use spd::{ApplySpec, PolicyAction, PolicyId, SaTemplate, Spd, SpdEntry};
