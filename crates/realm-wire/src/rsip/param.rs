//! RSIP parameters (RFC 3103 8, RFC 3104 6.2): type (1) | length (2, value
//! bytes only) | value. Reading checks each value's own layout (BAD_PARAM);
//! where a parameter may appear is the business of [`super::grammar`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use super::error::{DecodeError, DecodeErrorKind};
use super::types::{
    AddrType, BindId, ClientId, ErrorCode, LocalFlowPolicy, ParamType, RemoteFlowPolicy,
    RsipMethod, Spi, TunnelType,
};
use crate::codec::{Reader, Writer};

/// Bytes of a parameter header: type (1) and length (2).
pub const PARAM_HEADER_LEN: usize = 3;

/// The largest value a parameter's 16-bit length field can describe.
const MAX_VALUE_LEN: usize = u16::MAX as usize;

/// An Address parameter (RFC 3103 8.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum Address {
    /// Addrtype 1: an IPv4 address.
    Ipv4(Ipv4Addr),
    /// Addrtype 2: an IPv4 netmask.
    Ipv4Netmask(Ipv4Addr),
    /// Addrtype 3: an IPv6 address.
    Ipv6(Ipv6Addr),
    /// Addrtype 4: a fully qualified domain name, ASCII, non-empty.
    Fqdn(String),
    /// "Don't care" (RFC 3103 8.1): length 1, the Addrtype alone.
    DontCare(AddrType),
}

impl Address {
    /// The IPv4 "don't care" value, as RFC 3103 Appendix C writes "Address = 0".
    pub const DONT_CARE_V4: Address = Address::DontCare(AddrType::Ipv4);

    /// The Addrtype field.
    pub fn addr_type(&self) -> AddrType {
        match self {
            Address::Ipv4(_) => AddrType::Ipv4,
            Address::Ipv4Netmask(_) => AddrType::Ipv4Netmask,
            Address::Ipv6(_) => AddrType::Ipv6,
            Address::Fqdn(_) => AddrType::Fqdn,
            Address::DontCare(t) => *t,
        }
    }

    /// True for the "don't care" form, and for the all-zero IPv4/IPv6
    /// addresses that RFC 3103 9.8.3 lets a host send instead ("a value of all
    /// 0's"). Realm always emits the length-1 form itself.
    pub fn is_dont_care(&self) -> bool {
        match self {
            Address::DontCare(_) => true,
            Address::Ipv4(a) => a.is_unspecified(),
            Address::Ipv6(a) => a.is_unspecified(),
            Address::Ipv4Netmask(_) | Address::Fqdn(_) => false,
        }
    }

    /// The IP address, for the IPv4 and IPv6 forms.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Address::Ipv4(a) => Some(IpAddr::V4(*a)),
            Address::Ipv6(a) => Some(IpAddr::V6(*a)),
            _ => None,
        }
    }

    fn value_len(&self) -> usize {
        1 + match self {
            Address::Ipv4(_) | Address::Ipv4Netmask(_) => 4,
            Address::Ipv6(_) => 16,
            Address::Fqdn(name) => name.len(),
            Address::DontCare(_) => 0,
        }
    }

    fn emit_value(&self, out: &mut Vec<u8>) {
        out.put_u8(self.addr_type().code());
        match self {
            Address::Ipv4(a) | Address::Ipv4Netmask(a) => out.put_slice(&a.octets()),
            Address::Ipv6(a) => out.put_slice(&a.octets()),
            Address::Fqdn(name) => out.put_slice(name.as_bytes()),
            Address::DontCare(_) => {}
        }
    }

    /// Decodes the value `v`, found at absolute offset `at`.
    fn read_value(v: &[u8], at: usize) -> Result<Address, Fault> {
        const P: ParamType = ParamType::Address;
        let Some((&code, addr)) = v.split_first() else {
            return Err(Fault::bad_param(P, "value too short for its Addrtype", at));
        };
        let Some(addr_type) = AddrType::from_code(code) else {
            // RFC 3103 8.1: Addrtype 0 is reserved; 5-255 have no defined layout.
            let reason = if code == 0 {
                "Addrtype 0 is reserved"
            } else {
                "unknown Addrtype"
            };
            return Err(Fault::bad_param(P, reason, at));
        };
        if addr.is_empty() {
            // RFC 3103 8.1: "don't care" is length 1, the value field omitted.
            return Ok(Address::DontCare(addr_type));
        }
        let wrong_len = || Fault::bad_param(P, "wrong length for its Addrtype", at);
        Ok(match addr_type {
            AddrType::Ipv4 => {
                Address::Ipv4(Ipv4Addr::from(array::<4>(addr).ok_or_else(wrong_len)?))
            }
            AddrType::Ipv4Netmask => {
                Address::Ipv4Netmask(Ipv4Addr::from(array::<4>(addr).ok_or_else(wrong_len)?))
            }
            AddrType::Ipv6 => {
                Address::Ipv6(Ipv6Addr::from(array::<16>(addr).ok_or_else(wrong_len)?))
            }
            AddrType::Fqdn => {
                // RFC 3103 8.1: "represented as an ASCII string (no terminating character)".
                if !addr.is_ascii() {
                    return Err(Fault::bad_param(P, "FQDN is not ASCII", at + 1));
                }
                Address::Fqdn(String::from_utf8_lossy(addr).into_owned())
            }
        })
    }

    fn check(&self) -> Result<(), &'static str> {
        match self {
            Address::Fqdn(name) if name.is_empty() => {
                Err("an empty FQDN is the \"don't care\" form: use Address::DontCare")
            }
            Address::Fqdn(name) if !name.is_ascii() => Err("FQDN is not ASCII"),
            Address::Fqdn(name) if name.len() + 1 > MAX_VALUE_LEN => Err("FQDN too long"),
            _ => Ok(()),
        }
    }
}

/// A Ports parameter (RFC 3103 8.2; RFC 3104 6.2 adds "don't need").
///
/// The four forms are kept apart so that emit reproduces the bytes read: a
/// single port is `Range { first, count: 1 }`; `List` always holds 2 or more.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum Ports {
    /// RFC 3104 6.2 "don't need": length 0, no number, no port field. Only in
    /// ASSIGN_REQUEST/RESPONSE_RSIPSEC.
    DontNeed,
    /// RFC 3103 8.2 "don't care": length 1, the number field alone (count >= 1).
    DontCare {
        /// How many ports are wanted.
        count: u8,
    },
    /// One port field with number N: the N contiguous ports `first..first+N-1`
    /// (N = 1: the single port `first`).
    Range {
        /// The first port.
        first: u16,
        /// How many ports (>= 1; the range must end at or before 65535).
        count: u8,
    },
    /// N port fields with number N (N >= 2): exactly these ports.
    List(Vec<u16>),
}

impl Ports {
    /// A single port.
    pub fn single(port: u16) -> Ports {
        Ports::Range {
            first: port,
            count: 1,
        }
    }

    /// "Don't care" about one port, as RFC 3103 Appendix C writes "Ports = 0".
    pub const DONT_CARE_ONE: Ports = Ports::DontCare { count: 1 };

    /// How many ports this parameter stands for (0 for "don't need").
    pub fn count(&self) -> usize {
        match self {
            Ports::DontNeed => 0,
            Ports::DontCare { count } | Ports::Range { count, .. } => usize::from(*count),
            Ports::List(ports) => ports.len(),
        }
    }

    /// True for "don't care", and for the port 0 that RFC 3103 9.8.3 lets a
    /// host send instead ("a value of all 0's").
    pub fn is_dont_care(&self) -> bool {
        match self {
            Ports::DontCare { .. } | Ports::Range { first: 0, .. } => true,
            Ports::List(ports) => ports.iter().all(|&p| p == 0),
            Ports::DontNeed | Ports::Range { .. } => false,
        }
    }

    /// True when `port` is one of the ports given (never for "don't care").
    pub fn contains(&self, port: u16) -> bool {
        match self {
            Ports::DontNeed | Ports::DontCare { .. } => false,
            Ports::Range { first, count } => {
                port >= *first && u32::from(port) < u32::from(*first) + u32::from(*count)
            }
            Ports::List(ports) => ports.contains(&port),
        }
    }

    /// The ports given, ranges expanded (empty for "don't care"/"don't need").
    pub fn to_vec(&self) -> Vec<u16> {
        match self {
            Ports::DontNeed | Ports::DontCare { .. } => Vec::new(),
            Ports::Range { first, count } => (0..*count)
                .filter_map(|i| first.checked_add(u16::from(i)))
                .collect(),
            Ports::List(ports) => ports.clone(),
        }
    }

    fn value_len(&self) -> usize {
        match self {
            Ports::DontNeed => 0,
            Ports::DontCare { .. } => 1,
            Ports::Range { .. } => 3,
            Ports::List(ports) => 1 + 2 * ports.len(),
        }
    }

    fn emit_value(&self, out: &mut Vec<u8>) {
        match self {
            Ports::DontNeed => {}
            Ports::DontCare { count } => out.put_u8(*count),
            Ports::Range { first, count } => {
                out.put_u8(*count);
                out.put_u16(*first);
            }
            Ports::List(ports) => {
                out.put_u8(u8::try_from(ports.len()).unwrap_or(u8::MAX));
                for &p in ports {
                    out.put_u16(p);
                }
            }
        }
    }

    /// Decodes the value `v`, found at absolute offset `at`.
    fn read_value(v: &[u8], at: usize) -> Result<Ports, Fault> {
        const P: ParamType = ParamType::Ports;
        let Some((&count, fields)) = v.split_first() else {
            // RFC 3104 6.2: "don't need" is length 0 (where it is allowed is
            // checked with the message).
            return Ok(Ports::DontNeed);
        };
        // RFC 3103 8.2: "The value of the number field MUST be greater than or equal to one."
        if count == 0 {
            return Err(Fault::bad_param(P, "number of ports is 0", at));
        }
        if !fields.len().is_multiple_of(2) {
            return Err(Fault::bad_param(
                P,
                "port fields are not a whole number of 2 bytes",
                at,
            ));
        }
        match fields.len() / 2 {
            0 => Ok(Ports::DontCare { count }),
            1 => {
                let first = array::<2>(fields).map(u16::from_be_bytes).unwrap_or(0);
                if u32::from(first) + u32::from(count) - 1 > u32::from(u16::MAX) {
                    return Err(Fault::bad_param(
                        P,
                        "contiguous port range runs past 65535",
                        at,
                    ));
                }
                Ok(Ports::Range { first, count })
            }
            n if n == usize::from(count) => Ok(Ports::List(
                fields
                    .chunks_exact(2)
                    .filter_map(array::<2>)
                    .map(u16::from_be_bytes)
                    .collect(),
            )),
            _ => Err(Fault::bad_param(
                P,
                "number of ports disagrees with the port fields",
                at,
            )),
        }
    }

    fn check(&self) -> Result<(), &'static str> {
        match self {
            Ports::DontCare { count: 0 } | Ports::Range { count: 0, .. } => {
                Err("number of ports is 0")
            }
            Ports::Range { first, count }
                if u32::from(*first) + u32::from(*count) - 1 > u32::from(u16::MAX) =>
            {
                Err("contiguous port range runs past 65535")
            }
            Ports::List(ports) if ports.len() < 2 => {
                Err("a list needs 2 or more ports: use Ports::Range for one")
            }
            Ports::List(ports) if ports.len() > usize::from(u8::MAX) => {
                Err("more than 255 ports in a list")
            }
            _ => Ok(()),
        }
    }
}

/// An SPI parameter (RFC 3104 6.2): like Ports, but a 2-byte number and
/// 4-byte SPIs. `List` always holds 2 or more.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum Spis {
    /// "Don't care": length 2, the number field alone (count >= 1).
    DontCare {
        /// How many SPIs are wanted.
        count: u16,
    },
    /// One SPI field with number N: the N contiguous SPIs `first..first+N-1`.
    Range {
        /// The first SPI.
        first: Spi,
        /// How many SPIs (>= 1; the range must end at or before 2^32-1).
        count: u16,
    },
    /// N SPI fields with number N (N >= 2).
    List(Vec<Spi>),
}

impl Spis {
    /// A single SPI.
    pub fn single(spi: Spi) -> Spis {
        Spis::Range {
            first: spi,
            count: 1,
        }
    }

    /// How many SPIs this parameter stands for.
    pub fn count(&self) -> usize {
        match self {
            Spis::DontCare { count } | Spis::Range { count, .. } => usize::from(*count),
            Spis::List(spis) => spis.len(),
        }
    }

    /// True for "don't care".
    pub fn is_dont_care(&self) -> bool {
        matches!(self, Spis::DontCare { .. })
    }

    /// The SPIs given, ranges expanded (empty for "don't care").
    pub fn to_vec(&self) -> Vec<Spi> {
        match self {
            Spis::DontCare { .. } => Vec::new(),
            Spis::Range { first, count } => (0..*count)
                .filter_map(|i| first.0.checked_add(u32::from(i)).map(Spi))
                .collect(),
            Spis::List(spis) => spis.clone(),
        }
    }

    fn value_len(&self) -> usize {
        match self {
            Spis::DontCare { .. } => 2,
            Spis::Range { .. } => 6,
            Spis::List(spis) => 2 + 4 * spis.len(),
        }
    }

    fn emit_value(&self, out: &mut Vec<u8>) {
        match self {
            Spis::DontCare { count } => out.put_u16(*count),
            Spis::Range { first, count } => {
                out.put_u16(*count);
                out.put_u32(first.0);
            }
            Spis::List(spis) => {
                out.put_u16(u16::try_from(spis.len()).unwrap_or(u16::MAX));
                for spi in spis {
                    out.put_u32(spi.0);
                }
            }
        }
    }

    /// Decodes the value `v`, found at absolute offset `at`.
    fn read_value(v: &[u8], at: usize) -> Result<Spis, Fault> {
        const P: ParamType = ParamType::Spi;
        let Some((count, fields)) = v.split_first_chunk::<2>() else {
            return Err(Fault::bad_param(
                P,
                "value too short for its number field",
                at,
            ));
        };
        let count = u16::from_be_bytes(*count);
        // RFC 3104 6.2: "The value of the number field MUST be greater than or equal to one."
        if count == 0 {
            return Err(Fault::bad_param(P, "number of SPIs is 0", at));
        }
        if !fields.len().is_multiple_of(4) {
            return Err(Fault::bad_param(
                P,
                "SPI fields are not a whole number of 4 bytes",
                at,
            ));
        }
        match fields.len() / 4 {
            0 => Ok(Spis::DontCare { count }),
            1 => {
                let first = array::<4>(fields).map(u32::from_be_bytes).unwrap_or(0);
                if u64::from(first) + u64::from(count) - 1 > u64::from(u32::MAX) {
                    return Err(Fault::bad_param(
                        P,
                        "contiguous SPI range runs past 2^32-1",
                        at,
                    ));
                }
                Ok(Spis::Range {
                    first: Spi(first),
                    count,
                })
            }
            n if n == usize::from(count) => Ok(Spis::List(
                fields
                    .chunks_exact(4)
                    .filter_map(array::<4>)
                    .map(|b| Spi(u32::from_be_bytes(b)))
                    .collect(),
            )),
            _ => Err(Fault::bad_param(
                P,
                "number of SPIs disagrees with the SPI fields",
                at,
            )),
        }
    }

    fn check(&self) -> Result<(), &'static str> {
        match self {
            Spis::DontCare { count: 0 } | Spis::Range { count: 0, .. } => {
                Err("number of SPIs is 0")
            }
            Spis::Range { first, count }
                if u64::from(first.0) + u64::from(*count) - 1 > u64::from(u32::MAX) =>
            {
                Err("contiguous SPI range runs past 2^32-1")
            }
            Spis::List(spis) if spis.len() < 2 => {
                Err("a list needs 2 or more SPIs: use Spis::Range for one")
            }
            Spis::List(spis) if 2 + 4 * spis.len() > MAX_VALUE_LEN => Err("too many SPIs"),
            _ => Ok(()),
        }
    }
}

/// A Flow Policy parameter (RFC 3103 8.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct FlowPolicy {
    /// Local flow policy.
    pub local: LocalFlowPolicy,
    /// Remote flow policy.
    pub remote: RemoteFlowPolicy,
}

/// An Indicator parameter (RFC 3103 8.10): a value whose meaning the message
/// defines (QUERY_REQUEST 9.14, QUERY_RESPONSE 9.15).
///
/// The 8.10 figure shows a 2-byte value, the text of 9.14/9.15 "a 1-byte
/// value field": both are read, and the width read is kept so that emit
/// reproduces the bytes. [`Indicator::new`] makes the 2-byte form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Indicator {
    /// The value.
    pub value: u16,
    /// True for the 1-byte form (then `value` <= 255).
    pub one_byte: bool,
}

impl Indicator {
    /// A 2-byte indicator, the form of the RFC 3103 8.10 figure.
    pub fn new(value: u16) -> Indicator {
        Indicator {
            value,
            one_byte: false,
        }
    }
}

/// A Vendor Specific parameter (RFC 3103 8.12).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct VendorSpecific {
    /// IANA-assigned vendor ID.
    pub vendor_id: u16,
    /// Vendor-defined subtype.
    pub subtype: u16,
    /// Vendor-defined value.
    pub value: Vec<u8>,
}

/// Realm's Authentication parameter (private-use type 241, RFC 3103 12): a
/// message hash and a replay counter (RFC 3102 3.3), see
/// `docs/signalling-auth.md`. Value: key ID (4) | replay counter (8) | MAC (16).
///
/// The MAC is HMAC-SHA-256, truncated to 16 bytes, over the whole emitted
/// message with the MAC field set to zeros (`realm-rsip::auth` signs and
/// verifies). At most one may appear, anywhere among the optional
/// parameters of any message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Authentication {
    /// Which shared key signed the message.
    pub key_id: u32,
    /// The sender's replay counter: strictly increasing per sender and key.
    pub counter: u64,
    /// The truncated HMAC.
    pub mac: [u8; 16],
}

impl Authentication {
    /// Bytes of the value field.
    pub const VALUE_LEN: usize = 28;
    /// Offset of the MAC within the value field.
    pub const MAC_OFFSET: usize = 12;
}

/// One RSIP parameter (RFC 3103 8; RFC 3104 6.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum Parameter {
    /// Type 1 (8.1).
    Address(Address),
    /// Type 2 (8.2).
    Ports(Ports),
    /// Type 3 (8.3): seconds.
    LeaseTime(u32),
    /// Type 4 (8.4).
    ClientId(ClientId),
    /// Type 5 (8.5).
    BindId(BindId),
    /// Type 6 (8.6).
    TunnelType(TunnelType),
    /// Type 7 (8.7).
    RsipMethod(RsipMethod),
    /// Type 8 (8.8).
    Error(ErrorCode),
    /// Type 9 (8.9).
    FlowPolicy(FlowPolicy),
    /// Type 10 (8.10).
    Indicator(Indicator),
    /// Type 11 (8.11).
    MessageCounter(u32),
    /// Type 12 (8.12).
    VendorSpecific(VendorSpecific),
    /// Type 22 (RFC 3104 6.2).
    Spi(Spis),
    /// Type 241 (private use): Realm's signalling authentication.
    Authentication(Authentication),
    /// A type this crate does not know, with its raw value. Kept so parse then
    /// emit loses nothing; a message containing one is refused (ILLEGAL_PARAM).
    Unknown {
        /// The type code.
        param_type: u8,
        /// The raw value.
        value: Vec<u8>,
    },
}

impl Parameter {
    /// The parameter's type code.
    pub fn param_type(&self) -> ParamType {
        match self {
            Parameter::Address(_) => ParamType::Address,
            Parameter::Ports(_) => ParamType::Ports,
            Parameter::LeaseTime(_) => ParamType::LeaseTime,
            Parameter::ClientId(_) => ParamType::ClientId,
            Parameter::BindId(_) => ParamType::BindId,
            Parameter::TunnelType(_) => ParamType::TunnelType,
            Parameter::RsipMethod(_) => ParamType::RsipMethod,
            Parameter::Error(_) => ParamType::Error,
            Parameter::FlowPolicy(_) => ParamType::FlowPolicy,
            Parameter::Indicator(_) => ParamType::Indicator,
            Parameter::MessageCounter(_) => ParamType::MessageCounter,
            Parameter::VendorSpecific(_) => ParamType::VendorSpecific,
            Parameter::Spi(_) => ParamType::Spi,
            Parameter::Authentication(_) => ParamType::Authentication,
            Parameter::Unknown { param_type, .. } => ParamType::from(*param_type),
        }
    }

    /// Bytes of the value field.
    pub fn value_len(&self) -> usize {
        match self {
            Parameter::Address(a) => a.value_len(),
            Parameter::Ports(p) => p.value_len(),
            Parameter::LeaseTime(_)
            | Parameter::ClientId(_)
            | Parameter::BindId(_)
            | Parameter::MessageCounter(_) => 4,
            Parameter::TunnelType(_) | Parameter::RsipMethod(_) => 1,
            Parameter::Error(_) | Parameter::FlowPolicy(_) => 2,
            Parameter::Indicator(i) => {
                if i.one_byte {
                    1
                } else {
                    2
                }
            }
            Parameter::VendorSpecific(v) => 4 + v.value.len(),
            Parameter::Spi(s) => s.value_len(),
            Parameter::Authentication(_) => Authentication::VALUE_LEN,
            Parameter::Unknown { value, .. } => value.len(),
        }
    }

    /// Bytes of the whole parameter: header and value.
    pub fn buffer_len(&self) -> usize {
        PARAM_HEADER_LEN + self.value_len()
    }

    /// Appends the parameter. A parameter inside a [`super::Message`] always
    /// fits; on its own, a value longer than 65535 bytes (refused by
    /// [`Parameter::check`]) would get a saturated length field.
    pub fn emit(&self, out: &mut Vec<u8>) {
        use self::code::*;
        // Fixed-size parameters go out as one slice, header and value.
        match self {
            Parameter::LeaseTime(v) => put4(out, LEASE_TIME, *v),
            Parameter::ClientId(id) => put4(out, CLIENT_ID, id.0),
            Parameter::BindId(id) => put4(out, BIND_ID, id.0),
            Parameter::MessageCounter(v) => put4(out, MESSAGE_COUNTER, *v),
            Parameter::TunnelType(t) => out.put_slice(&[TUNNEL_TYPE, 0, 1, u8::from(*t)]),
            Parameter::RsipMethod(m) => out.put_slice(&[RSIP_METHOD, 0, 1, u8::from(*m)]),
            Parameter::Error(e) => {
                let [a, b] = u16::from(*e).to_be_bytes();
                out.put_slice(&[ERROR, 0, 2, a, b]);
            }
            Parameter::FlowPolicy(fp) => {
                out.put_slice(&[FLOW_POLICY, 0, 2, u8::from(fp.local), u8::from(fp.remote)]);
            }
            Parameter::Indicator(i) if i.one_byte => {
                out.put_slice(&[INDICATOR, 0, 1, u8::try_from(i.value).unwrap_or(u8::MAX)]);
            }
            Parameter::Indicator(i) => {
                let [a, b] = i.value.to_be_bytes();
                out.put_slice(&[INDICATOR, 0, 2, a, b]);
            }
            Parameter::Address(Address::Ipv4(a)) => {
                let [a, b, c, d] = a.octets();
                out.put_slice(&[ADDRESS, 0, 5, AddrType::Ipv4.code(), a, b, c, d]);
            }
            Parameter::Ports(Ports::Range { first, count }) => {
                let [a, b] = first.to_be_bytes();
                out.put_slice(&[PORTS, 0, 3, *count, a, b]);
            }
            Parameter::Ports(Ports::DontCare { count }) => out.put_slice(&[PORTS, 0, 1, *count]),
            // Variable-size values: header, then value.
            other => {
                let len = u16::try_from(other.value_len())
                    .unwrap_or(u16::MAX)
                    .to_be_bytes();
                out.put_slice(&[u8::from(other.param_type()), len[0], len[1]]);
                match other {
                    Parameter::Address(a) => a.emit_value(out),
                    Parameter::Ports(p) => p.emit_value(out),
                    Parameter::Spi(s) => s.emit_value(out),
                    Parameter::Authentication(a) => {
                        out.put_u32(a.key_id);
                        out.put_slice(&a.counter.to_be_bytes());
                        out.put_slice(&a.mac);
                    }
                    Parameter::VendorSpecific(v) => {
                        out.put_u16(v.vendor_id);
                        out.put_u16(v.subtype);
                        out.put_slice(&v.value);
                    }
                    Parameter::Unknown { value, .. } => out.put_slice(value),
                    // Fixed-size ones were written above.
                    _ => {}
                }
            }
        }
    }

    /// Reads one parameter, whatever its type (an unknown type is kept as
    /// [`Parameter::Unknown`]; whether it may appear in a message is checked
    /// with the message). A header or value cut short by the end of `r` is
    /// BAD_MESSAGE (the message's framing is wrong); a value whose layout is
    /// wrong for its type is BAD_PARAM. Offsets are `r`'s absolute offsets.
    pub fn read(r: &mut Reader<'_>) -> Result<Parameter, DecodeError> {
        Parameter::read_fault(r).map_err(|f| DecodeError::new(f.kind, f.offset))
    }

    #[inline]
    pub(crate) fn read_fault(r: &mut Reader<'_>) -> Result<Parameter, Fault> {
        let start = r.offset();
        let have = r.remaining();
        let [code, hi, lo] = r.array::<3>("parameter header").map_err(|_| Fault {
            kind: DecodeErrorKind::TruncatedParamHeader { have },
            offset: start,
        })?;
        let len = u16::from_be_bytes([hi, lo]);
        let value = r
            .take(usize::from(len), "parameter value")
            .map_err(|_| Fault {
                kind: DecodeErrorKind::TruncatedParamValue {
                    param: ParamType::from(code),
                    declared: len,
                    have: have.saturating_sub(PARAM_HEADER_LEN),
                },
                offset: start,
            })?;
        Parameter::decode(code, value, start)
    }

    /// Decodes the value of a parameter of type `code` whose header starts at
    /// absolute offset `start`. The value is a bounded slice: fixed-size
    /// layouts are taken by checked conversions (`array`, slice patterns),
    /// so nothing can index out of range.
    fn decode(code: u8, v: &[u8], start: usize) -> Result<Parameter, Fault> {
        use self::code::*;
        let at = start + PARAM_HEADER_LEN;
        // Fixed-size values: a wrong length is reported at the length field.
        let wrong_len = |reason| Fault::bad_param(ParamType::from(code), reason, start + 1);
        let fixed = || wrong_len("wrong length for this parameter type");
        let u32_value = || array::<4>(v).map(u32::from_be_bytes).ok_or_else(fixed);
        let u8_value = || array::<1>(v).map(|[b]| b).ok_or_else(fixed);
        Ok(match code {
            ADDRESS => Parameter::Address(Address::read_value(v, at)?),
            PORTS => Parameter::Ports(Ports::read_value(v, at)?),
            SPI => Parameter::Spi(Spis::read_value(v, at)?),
            LEASE_TIME => Parameter::LeaseTime(u32_value()?),
            CLIENT_ID => Parameter::ClientId(ClientId(u32_value()?)),
            BIND_ID => Parameter::BindId(BindId(u32_value()?)),
            MESSAGE_COUNTER => Parameter::MessageCounter(u32_value()?),
            TUNNEL_TYPE => Parameter::TunnelType(TunnelType::from(u8_value()?)),
            RSIP_METHOD => Parameter::RsipMethod(RsipMethod::from(u8_value()?)),
            ERROR => {
                let e = array::<2>(v).map(u16::from_be_bytes).ok_or_else(fixed)?;
                Parameter::Error(ErrorCode::from(e))
            }
            FLOW_POLICY => {
                let [local, remote] = array::<2>(v).ok_or_else(fixed)?;
                Parameter::FlowPolicy(FlowPolicy {
                    local: LocalFlowPolicy::from(local),
                    remote: RemoteFlowPolicy::from(remote),
                })
            }
            // RFC 3103 9.14/9.15 speak of a 1-byte value, the 8.10 figure of 2 bytes.
            INDICATOR => match *v {
                [b] => Parameter::Indicator(Indicator {
                    value: u16::from(b),
                    one_byte: true,
                }),
                [a, b] => Parameter::Indicator(Indicator::new(u16::from_be_bytes([a, b]))),
                _ => return Err(wrong_len("Indicator is neither 1 nor 2 bytes")),
            },
            VENDOR_SPECIFIC => {
                let Some((&[v0, v1, s0, s1], value)) = v.split_first_chunk::<4>() else {
                    return Err(wrong_len(
                        "shorter than its vendor ID and subtype (4 bytes)",
                    ));
                };
                Parameter::VendorSpecific(VendorSpecific {
                    vendor_id: u16::from_be_bytes([v0, v1]),
                    subtype: u16::from_be_bytes([s0, s1]),
                    value: value.to_vec(),
                })
            }
            AUTHENTICATION => {
                let Some((key_id, rest)) = v.split_first_chunk::<4>() else {
                    return Err(fixed());
                };
                let Some((counter, mac)) = rest.split_first_chunk::<8>() else {
                    return Err(fixed());
                };
                let mac = array::<16>(mac).ok_or_else(fixed)?;
                Parameter::Authentication(Authentication {
                    key_id: u32::from_be_bytes(*key_id),
                    counter: u64::from_be_bytes(*counter),
                    mac,
                })
            }
            param_type => Parameter::Unknown {
                param_type,
                value: v.to_vec(),
            },
        })
    }

    /// Checks that a parameter built by hand can be emitted and read back as
    /// itself: counts >= 1, ranges within bounds, lists of 2 or more, a value
    /// that fits 65535 bytes, no `Unknown` spelling a known code. Parsed
    /// parameters always pass. The error (BAD_PARAM) has offset 0: the
    /// parameter is not in a message yet ([`super::Message::new`] gives the
    /// offset it would have had).
    pub fn check(&self) -> Result<(), DecodeError> {
        self.check_reason().map_err(|reason| {
            DecodeError::new(
                DecodeErrorKind::BadParam {
                    param: self.param_type(),
                    reason,
                },
                0,
            )
        })
    }

    pub(crate) fn check_reason(&self) -> Result<(), &'static str> {
        if self.value_len() > MAX_VALUE_LEN {
            return Err("value longer than 65535 bytes");
        }
        match self {
            Parameter::Address(a) => a.check(),
            Parameter::Ports(p) => p.check(),
            Parameter::Spi(s) => s.check(),
            Parameter::TunnelType(t) if !t.is_canonical() => Err("Unknown spells a known code"),
            Parameter::RsipMethod(m) if !m.is_canonical() => Err("Unknown spells a known code"),
            Parameter::Error(c) if !c.is_canonical() => Err("Unknown spells a known code"),
            Parameter::FlowPolicy(fp) if !fp.local.is_canonical() || !fp.remote.is_canonical() => {
                Err("Unknown spells a known code")
            }
            Parameter::Indicator(i) if i.one_byte && i.value > 255 => {
                Err("a 1-byte Indicator holds at most 255")
            }
            Parameter::Unknown { param_type, .. }
                if !matches!(ParamType::from(*param_type), ParamType::Unknown(_)) =>
            {
                Err("Unknown spells a known parameter type")
            }
            _ => Ok(()),
        }
    }
}

/// A failure before salvage information is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fault {
    pub(crate) kind: DecodeErrorKind,
    pub(crate) offset: usize,
}

impl Fault {
    pub(crate) fn bad_param(param: ParamType, reason: &'static str, offset: usize) -> Fault {
        Fault {
            kind: DecodeErrorKind::BadParam { param, reason },
            offset,
        }
    }
}

/// Parameter type codes, for matching raw bytes (RFC 3103 8, RFC 3104 6.2).
mod code {
    pub(super) const ADDRESS: u8 = 1;
    pub(super) const PORTS: u8 = 2;
    pub(super) const LEASE_TIME: u8 = 3;
    pub(super) const CLIENT_ID: u8 = 4;
    pub(super) const BIND_ID: u8 = 5;
    pub(super) const TUNNEL_TYPE: u8 = 6;
    pub(super) const RSIP_METHOD: u8 = 7;
    pub(super) const ERROR: u8 = 8;
    pub(super) const FLOW_POLICY: u8 = 9;
    pub(super) const INDICATOR: u8 = 10;
    pub(super) const MESSAGE_COUNTER: u8 = 11;
    pub(super) const VENDOR_SPECIFIC: u8 = 12;
    pub(super) const SPI: u8 = 22;
    pub(super) const AUTHENTICATION: u8 = 241;

    #[cfg(test)]
    #[test]
    fn codes_agree_with_param_type() {
        use super::ParamType as P;
        let all = [
            (ADDRESS, P::Address),
            (PORTS, P::Ports),
            (LEASE_TIME, P::LeaseTime),
            (CLIENT_ID, P::ClientId),
            (BIND_ID, P::BindId),
            (TUNNEL_TYPE, P::TunnelType),
            (RSIP_METHOD, P::RsipMethod),
            (ERROR, P::Error),
            (FLOW_POLICY, P::FlowPolicy),
            (INDICATOR, P::Indicator),
            (MESSAGE_COUNTER, P::MessageCounter),
            (VENDOR_SPECIFIC, P::VendorSpecific),
            (SPI, P::Spi),
            (AUTHENTICATION, P::Authentication),
        ];
        for (code, param) in all {
            assert_eq!(P::from(code), param);
        }
    }
}

/// Appends a parameter with a 4-byte value.
fn put4(out: &mut Vec<u8>, code: u8, value: u32) {
    let [a, b, c, d] = value.to_be_bytes();
    out.put_slice(&[code, 0, 4, a, b, c, d]);
}

/// `v` as an array of exactly `N` bytes.
fn array<const N: usize>(v: &[u8]) -> Option<[u8; N]> {
    <[u8; N]>::try_from(v).ok()
}
