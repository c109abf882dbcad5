//! The RSIP vocabulary every layer shares: the closed sets a lease, a
//! configuration, a stored record or a control answer holds (the method, the
//! tunnel type, the signalling transport, the kind of binding), each defined
//! once with its one serde spelling, and the one checked conversion from the
//! wire's open codes ([`RsipMethod`], [`TunnelType`] keep unknown codes; these
//! cannot hold one). The identifiers ([`super::ClientId`], [`super::BindId`],
//! [`super::Spi`]) are in the codes module beside the parameters that carry
//! them.
//!
//! Spellings are lower-case and kebab, as in the config files: `"rsap-ip"`,
//! `"ip-ip"`, `"udp"`, `"listen"`. Records stored by earlier versions spelled
//! the method in Rust (`"RsapIp"`): those spellings are still read.

use core::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::{RsipMethod, Spi, TunnelType};

/// The RSIP method of a binding (RFC 3103 8.7, RFC 3104 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Method {
    /// RSA-IP: a whole public address, exclusively one host's
    /// (ASSIGN_REQUEST_RSA-IP, RFC 3103 9.6).
    #[serde(rename = "rsa-ip", alias = "RsaIp")]
    RsaIp,
    /// RSAP-IP: a shared public address and a set of its ports
    /// (ASSIGN_REQUEST_RSAP-IP, RFC 3103 9.8; LISTEN_REQUEST, 9.16).
    #[serde(rename = "rsap-ip", alias = "RsapIp")]
    RsapIp,
    /// RSIPSEC: a shared public address, SPIs on it and optionally ports
    /// (ASSIGN_REQUEST_RSIPSEC, RFC 3104 6.2).
    #[serde(rename = "rsipsec", alias = "Rsipsec")]
    Rsipsec,
}

impl Method {
    /// The spelling of configs, records, logs and metrics: `"rsa-ip"`,
    /// `"rsap-ip"` or `"rsipsec"`.
    pub fn name(self) -> &'static str {
        match self {
            Method::RsaIp => "rsa-ip",
            Method::RsapIp => "rsap-ip",
            Method::Rsipsec => "rsipsec",
        }
    }

    /// The method [`Method::name`] spells `name`.
    pub fn from_name(name: &str) -> Option<Method> {
        [Method::RsaIp, Method::RsapIp, Method::Rsipsec]
            .into_iter()
            .find(|m| m.name() == name)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<Method> for RsipMethod {
    fn from(m: Method) -> RsipMethod {
        match m {
            Method::RsaIp => RsipMethod::RsaIp,
            Method::RsapIp => RsipMethod::RsapIp,
            Method::Rsipsec => RsipMethod::Rsipsec,
        }
    }
}

impl TryFrom<RsipMethod> for Method {
    /// The code, reserved (0) or unassigned.
    type Error = RsipMethod;

    fn try_from(m: RsipMethod) -> Result<Method, RsipMethod> {
        match m {
            RsipMethod::RsaIp => Ok(Method::RsaIp),
            RsipMethod::RsapIp => Ok(Method::RsapIp),
            RsipMethod::Rsipsec => Ok(Method::Rsipsec),
            other @ RsipMethod::Unknown(_) => Err(other),
        }
    }
}

/// A tunnel type between host and gateway (RFC 3103 8.6), as configured,
/// granted and stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TunnelKind {
    /// IP-in-IP (RFC 2003), assumed when none is named (RFC 3103 9.3.3).
    #[serde(rename = "ip-ip")]
    IpIp,
    /// GRE (RFC 2784).
    #[serde(rename = "gre")]
    Gre,
    /// L2TP (listed in RFC 3103 8.6; Realm's data plane does not carry it).
    #[serde(rename = "l2tp")]
    L2tp,
}

impl TunnelKind {
    /// The spelling of configs and records: `"ip-ip"`, `"gre"` or `"l2tp"`.
    pub fn name(self) -> &'static str {
        match self {
            TunnelKind::IpIp => "ip-ip",
            TunnelKind::Gre => "gre",
            TunnelKind::L2tp => "l2tp",
        }
    }

    /// The tunnel type [`TunnelKind::name`] spells `name`.
    pub fn from_name(name: &str) -> Option<TunnelKind> {
        [TunnelKind::IpIp, TunnelKind::Gre, TunnelKind::L2tp]
            .into_iter()
            .find(|t| t.name() == name)
    }
}

impl From<TunnelKind> for TunnelType {
    fn from(t: TunnelKind) -> TunnelType {
        match t {
            TunnelKind::IpIp => TunnelType::IpIp,
            TunnelKind::Gre => TunnelType::Gre,
            TunnelKind::L2tp => TunnelType::L2tp,
        }
    }
}

impl TryFrom<TunnelType> for TunnelKind {
    /// The code, reserved (0) or unassigned.
    type Error = TunnelType;

    fn try_from(t: TunnelType) -> Result<TunnelKind, TunnelType> {
        match t {
            TunnelType::IpIp => Ok(TunnelKind::IpIp),
            TunnelType::Gre => Ok(TunnelKind::Gre),
            TunnelType::L2tp => Ok(TunnelKind::L2tp),
            other @ TunnelType::Unknown(_) => Err(other),
        }
    }
}

/// The signalling transport (RFC 3103 5: every gateway serves TCP; a host
/// registered over one may not switch).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// TCP: reliable; one stream, framed by the overall length field.
    #[default]
    Tcp,
    /// UDP: message counters and retransmissions (RFC 3103 5, 10.1).
    Udp,
}

/// Which request made (or makes) a binding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BindingKind {
    /// ASSIGN_REQUEST_RSA-IP, _RSAP-IP or _RSIPSEC (RFC 3103 9.6, 9.8; RFC
    /// 3104 6.2), per the method.
    #[default]
    Assign,
    /// LISTEN_REQUEST (RFC 3103 9.16): the gateway forwards what the remote
    /// side sends to the leased public address and port, even if the host
    /// never sent to it.
    Listen,
}

impl<'de> Deserialize<'de> for Spi {
    /// A number, or a string in decimal or `0x` hex (`spi = "0x1000"` in a
    /// config file).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Text {
            N(u32),
            S(String),
        }
        match Text::deserialize(d)? {
            Text::N(n) => Ok(Spi(n)),
            Text::S(s) => {
                let s = s.trim();
                let v = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                    Some(h) => u32::from_str_radix(h, 16),
                    None => s.parse(),
                };
                v.map(Spi).map_err(serde::de::Error::custom)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::de::IntoDeserializer;
    use serde::de::value::Error;

    use super::*;

    fn from<'de, T: Deserialize<'de>>(text: &'de str) -> Result<T, Error> {
        T::deserialize(text.into_deserializer())
    }

    #[test]
    fn config_spellings_and_old_record_spellings_parse() {
        for m in [Method::RsaIp, Method::RsapIp, Method::Rsipsec] {
            assert_eq!(from::<Method>(m.name()), Ok(m));
            assert_eq!(Method::from_name(m.name()), Some(m));
            assert_eq!(m.to_string(), m.name());
        }
        assert_eq!(from::<Method>("RsapIp"), Ok(Method::RsapIp));
        assert_eq!(from::<Method>("RsaIp"), Ok(Method::RsaIp));
        assert_eq!(from::<Method>("Rsipsec"), Ok(Method::Rsipsec));
        assert!(from::<Method>("rsap_ip").is_err());
        assert_eq!(Method::from_name("RsapIp"), None);
        for t in [TunnelKind::IpIp, TunnelKind::Gre, TunnelKind::L2tp] {
            assert_eq!(from::<TunnelKind>(t.name()), Ok(t));
            assert_eq!(TunnelKind::from_name(t.name()), Some(t));
        }
        assert!(from::<TunnelKind>("ip-in-ip").is_err());
        assert_eq!(from::<Transport>("udp"), Ok(Transport::Udp));
        assert_eq!(from::<Transport>("tcp"), Ok(Transport::Tcp));
        assert_eq!(from::<BindingKind>("listen"), Ok(BindingKind::Listen));
        assert_eq!(from::<BindingKind>("assign"), Ok(BindingKind::Assign));
        assert_eq!(Transport::default(), Transport::Tcp);
        assert_eq!(BindingKind::default(), BindingKind::Assign);
    }

    #[test]
    fn wire_codes_convert_once_checked() {
        for m in [Method::RsaIp, Method::RsapIp, Method::Rsipsec] {
            assert_eq!(Method::try_from(RsipMethod::from(m)), Ok(m));
        }
        assert_eq!(
            Method::try_from(RsipMethod::from(0)),
            Err(RsipMethod::Unknown(0))
        );
        assert_eq!(u8::from(RsipMethod::from(Method::Rsipsec)), 3);
        for t in [TunnelKind::IpIp, TunnelKind::Gre, TunnelKind::L2tp] {
            assert_eq!(TunnelKind::try_from(TunnelType::from(t)), Ok(t));
        }
        assert_eq!(
            TunnelKind::try_from(TunnelType::from(9)),
            Err(TunnelType::Unknown(9))
        );
    }

    #[test]
    fn spi_reads_numbers_and_hex_text() {
        use serde::de::value::U32Deserializer;
        let n: U32Deserializer<Error> = 4096u32.into_deserializer();
        assert_eq!(Spi::deserialize(n), Ok(Spi(4096)));
        assert_eq!(from::<Spi>("0x1000"), Ok(Spi(0x1000)));
        assert_eq!(from::<Spi>("0X1000"), Ok(Spi(0x1000)));
        assert_eq!(from::<Spi>(" 4096 "), Ok(Spi(4096)));
        assert!(from::<Spi>("0x1_0000_0000").is_err());
        assert!(from::<Spi>("spi").is_err());
    }
}
