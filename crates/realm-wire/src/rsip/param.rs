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

    fn read_value(r: &mut Reader<'_>) -> Result<Address, Fault> {
        let at = r.offset();
        let code = r.u8("Addrtype").map_err(bad(ParamType::Address))?;
        let Some(addr_type) = AddrType::from_code(code) else {
            // RFC 3103 8.1: Addrtype 0 is reserved; 5-255 have no defined layout.
            let reason = if code == 0 {
                "Addrtype 0 is reserved"
            } else {
                "unknown Addrtype"
            };
            return Err(Fault::bad_param(ParamType::Address, reason, at));
        };
        if r.is_empty() {
            // RFC 3103 8.1: "don't care" is length 1, the value field omitted.
            return Ok(Address::DontCare(addr_type));
        }
        let fixed = |r: &mut Reader<'_>, n: usize| {
            if r.remaining() == n {
                Ok(())
            } else {
                Err(Fault::bad_param(
                    ParamType::Address,
                    "wrong length for its Addrtype",
                    at,
                ))
            }
        };
        let addr = match addr_type {
            AddrType::Ipv4 | AddrType::Ipv4Netmask => {
                fixed(r, 4)?;
                let a = Ipv4Addr::from(
                    r.array::<4>("IPv4 address")
                        .map_err(bad(ParamType::Address))?,
                );
                if addr_type == AddrType::Ipv4 {
                    Address::Ipv4(a)
                } else {
                    Address::Ipv4Netmask(a)
                }
            }
            AddrType::Ipv6 => {
                fixed(r, 16)?;
                Address::Ipv6(Ipv6Addr::from(
                    r.array::<16>("IPv6 address")
                        .map_err(bad(ParamType::Address))?,
                ))
            }
            AddrType::Fqdn => {
                let at = r.offset();
                let name = r.rest();
                // RFC 3103 8.1: "represented as an ASCII string (no terminating character)".
                if !name.is_ascii() {
                    return Err(Fault::bad_param(
                        ParamType::Address,
                        "FQDN is not ASCII",
                        at,
                    ));
                }
                Address::Fqdn(String::from_utf8_lossy(name).into_owned())
            }
        };
        Ok(addr)
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

    fn read_value(r: &mut Reader<'_>) -> Result<Ports, Fault> {
        const P: ParamType = ParamType::Ports;
        if r.is_empty() {
            // RFC 3104 6.2: "don't need" is length 0 (where it is allowed is
            // checked with the message).
            return Ok(Ports::DontNeed);
        }
        let at = r.offset();
        let count = r.u8("Ports number").map_err(bad(P))?;
        // RFC 3103 8.2: "The value of the number field MUST be greater than or equal to one."
        if count == 0 {
            return Err(Fault::bad_param(P, "number of ports is 0", at));
        }
        let fields = r.remaining();
        if !fields.is_multiple_of(2) {
            return Err(Fault::bad_param(
                P,
                "port fields are not a whole number of 2 bytes",
                at,
            ));
        }
        match fields / 2 {
            0 => Ok(Ports::DontCare { count }),
            1 => {
                let first = r.u16("port").map_err(bad(P))?;
                if u32::from(first) + u32::from(count) - 1 > u32::from(u16::MAX) {
                    return Err(Fault::bad_param(
                        P,
                        "contiguous port range runs past 65535",
                        at,
                    ));
                }
                Ok(Ports::Range { first, count })
            }
            n if n == usize::from(count) => {
                let mut ports = Vec::with_capacity(n);
                for _ in 0..n {
                    ports.push(r.u16("port").map_err(bad(P))?);
                }
                Ok(Ports::List(ports))
            }
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

    fn read_value(r: &mut Reader<'_>) -> Result<Spis, Fault> {
        const P: ParamType = ParamType::Spi;
        let at = r.offset();
        let count = r.u16("SPI number").map_err(bad(P))?;
        // RFC 3104 6.2: "The value of the number field MUST be greater than or equal to one."
        if count == 0 {
            return Err(Fault::bad_param(P, "number of SPIs is 0", at));
        }
        let fields = r.remaining();
        if !fields.is_multiple_of(4) {
            return Err(Fault::bad_param(
                P,
                "SPI fields are not a whole number of 4 bytes",
                at,
            ));
        }
        match fields / 4 {
            0 => Ok(Spis::DontCare { count }),
            1 => {
                let first = r.u32("SPI").map_err(bad(P))?;
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
            n if n == usize::from(count) => {
                let mut spis = Vec::with_capacity(n);
                for _ in 0..n {
                    spis.push(Spi(r.u32("SPI").map_err(bad(P))?));
                }
                Ok(Spis::List(spis))
            }
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
        out.put_u8(u8::from(self.param_type()));
        out.put_u16(u16::try_from(self.value_len()).unwrap_or(u16::MAX));
        match self {
            Parameter::Address(a) => a.emit_value(out),
            Parameter::Ports(p) => p.emit_value(out),
            Parameter::LeaseTime(v) | Parameter::MessageCounter(v) => out.put_u32(*v),
            Parameter::ClientId(id) => out.put_u32(id.0),
            Parameter::BindId(id) => out.put_u32(id.0),
            Parameter::TunnelType(t) => out.put_u8(u8::from(*t)),
            Parameter::RsipMethod(m) => out.put_u8(u8::from(*m)),
            Parameter::Error(code) => out.put_u16(u16::from(*code)),
            Parameter::FlowPolicy(fp) => {
                out.put_u8(u8::from(fp.local));
                out.put_u8(u8::from(fp.remote));
            }
            Parameter::Indicator(i) => {
                if i.one_byte {
                    out.put_u8(u8::try_from(i.value).unwrap_or(u8::MAX));
                } else {
                    out.put_u16(i.value);
                }
            }
            Parameter::VendorSpecific(v) => {
                out.put_u16(v.vendor_id);
                out.put_u16(v.subtype);
                out.put_slice(&v.value);
            }
            Parameter::Spi(s) => s.emit_value(out),
            Parameter::Unknown { value, .. } => out.put_slice(value),
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

    pub(crate) fn read_fault(r: &mut Reader<'_>) -> Result<Parameter, Fault> {
        let start = r.offset();
        // Length errors of fixed-size values point at the length field.
        let length_field = start + 1;
        if r.remaining() < PARAM_HEADER_LEN {
            let kind = DecodeErrorKind::TruncatedParamHeader {
                have: r.remaining(),
            };
            return Err(Fault {
                kind,
                offset: start,
            });
        }
        let header = r
            .take(PARAM_HEADER_LEN, "parameter header")
            .map_err(|e| Fault {
                kind: DecodeErrorKind::TruncatedParamHeader { have: 0 },
                offset: e.offset().unwrap_or(start),
            })?;
        let (code, len) = match header {
            [code, hi, lo] => (*code, u16::from_be_bytes([*hi, *lo])),
            _ => (0, 0),
        };
        let param = ParamType::from(code);
        let have = r.remaining();
        let mut v = r
            .sub(usize::from(len), "parameter value")
            .map_err(|_| Fault {
                kind: DecodeErrorKind::TruncatedParamValue {
                    param,
                    declared: len,
                    have,
                },
                offset: start,
            })?;
        let fixed = |v: &Reader<'_>, n: usize| {
            if v.remaining() == n {
                Ok(())
            } else {
                Err(Fault::bad_param(
                    param,
                    "wrong length for this parameter type",
                    length_field,
                ))
            }
        };
        let b = bad(param);
        let p = match param {
            ParamType::Address => Parameter::Address(Address::read_value(&mut v)?),
            ParamType::Ports => Parameter::Ports(Ports::read_value(&mut v)?),
            ParamType::LeaseTime => {
                fixed(&v, 4)?;
                Parameter::LeaseTime(v.u32("Lease Time").map_err(b)?)
            }
            ParamType::ClientId => {
                fixed(&v, 4)?;
                Parameter::ClientId(ClientId(v.u32("Client ID").map_err(b)?))
            }
            ParamType::BindId => {
                fixed(&v, 4)?;
                Parameter::BindId(BindId(v.u32("Bind ID").map_err(b)?))
            }
            ParamType::TunnelType => {
                fixed(&v, 1)?;
                Parameter::TunnelType(TunnelType::from(v.u8("Tunnel Type").map_err(b)?))
            }
            ParamType::RsipMethod => {
                fixed(&v, 1)?;
                Parameter::RsipMethod(RsipMethod::from(v.u8("RSIP Method").map_err(b)?))
            }
            ParamType::Error => {
                fixed(&v, 2)?;
                Parameter::Error(ErrorCode::from(v.u16("Error").map_err(b)?))
            }
            ParamType::FlowPolicy => {
                fixed(&v, 2)?;
                let local = LocalFlowPolicy::from(v.u8("local flow policy").map_err(b)?);
                let remote = RemoteFlowPolicy::from(v.u8("remote flow policy").map_err(b)?);
                Parameter::FlowPolicy(FlowPolicy { local, remote })
            }
            ParamType::Indicator => match v.remaining() {
                // RFC 3103 9.14/9.15 speak of a 1-byte value, the 8.10 figure of 2 bytes.
                1 => Parameter::Indicator(Indicator {
                    value: u16::from(v.u8("Indicator").map_err(b)?),
                    one_byte: true,
                }),
                2 => Parameter::Indicator(Indicator::new(v.u16("Indicator").map_err(b)?)),
                _ => {
                    return Err(Fault::bad_param(
                        param,
                        "Indicator is neither 1 nor 2 bytes",
                        length_field,
                    ));
                }
            },
            ParamType::MessageCounter => {
                fixed(&v, 4)?;
                Parameter::MessageCounter(v.u32("Message Counter").map_err(b)?)
            }
            ParamType::VendorSpecific => {
                if v.remaining() < 4 {
                    return Err(Fault::bad_param(
                        param,
                        "shorter than its vendor ID and subtype (4 bytes)",
                        length_field,
                    ));
                }
                let vendor_id = v.u16("vendor ID").map_err(b)?;
                let subtype = v.u16("subtype").map_err(b)?;
                let value = v.rest().to_vec();
                Parameter::VendorSpecific(VendorSpecific {
                    vendor_id,
                    subtype,
                    value,
                })
            }
            ParamType::Spi => Parameter::Spi(Spis::read_value(&mut v)?),
            ParamType::Unknown(param_type) => Parameter::Unknown {
                param_type,
                value: v.rest().to_vec(),
            },
        };
        // Every branch consumed the value exactly; this is a belt-and-braces check.
        v.expect_end("parameter value").map_err(b)?;
        Ok(p)
    }

    /// Checks that a parameter built by hand can be emitted and read back as
    /// itself: counts >= 1, ranges within bounds, lists of 2 or more, a value
    /// that fits 65535 bytes, no `Unknown` spelling a known code. Parsed
    /// parameters always pass.
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

/// Maps a [`Reader`] failure inside a parameter value to BAD_PARAM.
fn bad(param: ParamType) -> impl Fn(crate::Error) -> Fault + Copy {
    move |e| {
        let reason = match e {
            crate::Error::Truncated { .. } => "value too short for its fields",
            crate::Error::Trailing { .. } => "bytes left over after the value's fields",
            _ => "malformed value",
        };
        Fault::bad_param(param, reason, e.offset().unwrap_or(0))
    }
}
