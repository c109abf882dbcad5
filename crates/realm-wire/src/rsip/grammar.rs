//! The section 9 BNF of every message type (RFC 3103 9, RFC 3104 6.2) and the
//! validator shared by [`super::Message::parse`] and [`super::Message::new`].
//!
//! Rules (RFC 3103 9 unless noted):
//! - required parameters MUST appear in the exact order of the BNF, before any
//!   optional one; optional parameters MAY appear in any order after them;
//! - "Most parameters are only allowed to appear once"; the exceptions are the
//!   repeated Address/Ports of the required part, `[RSIP Method]...` and
//!   `[Tunnel Type]...` in REGISTER_RESPONSE, `[Tunnel Type]...` in
//!   LISTEN_REQUEST, and the Indicator + Address tuples of QUERY_*;
//! - Vendor Specific (8.12) is in no BNF; Realm accepts any number of them
//!   among the optional parameters of every message (see docs/deviations.md).
//! - Realm's Authentication parameter (private-use type 241) is accepted at
//!   most once, anywhere among the optional parameters of every message.
//!
//! Error mapping, checked per parameter in wire order: an unknown type is
//! ILLEGAL_PARAM (204); a known type absent from this message's BNF is
//! EXTRA_PARAM (203); a type the BNF has, found where a required parameter
//! belongs, is MISSING_PARAM (201) for the required one; a type the BNF has,
//! beyond the number of times it allows, is DUPLICATE_PARAM (202); a value its
//! position forbids is BAD_PARAM (205); the message ending before its required
//! parameters is MISSING_PARAM (201).

use super::error::DecodeErrorKind;
use super::param::{Address, Fault, Parameter, Ports};
use super::types::{AddrType, MessageType, ParamType};

/// What a parameter stands for at its place in a BNF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Error,
    ClientId,
    BindId,
    LocalAddress,
    LocalPorts,
    RemoteAddress,
    RemotePorts,
    TunnelEndpoint,
    LeaseTime,
    TunnelType,
    RsipMethod,
    FlowPolicy,
    MessageCounter,
    Spi,
}

impl Role {
    fn param_type(self) -> ParamType {
        match self {
            Role::Error => ParamType::Error,
            Role::ClientId => ParamType::ClientId,
            Role::BindId => ParamType::BindId,
            Role::LocalAddress | Role::RemoteAddress | Role::TunnelEndpoint => ParamType::Address,
            Role::LocalPorts | Role::RemotePorts => ParamType::Ports,
            Role::LeaseTime => ParamType::LeaseTime,
            Role::TunnelType => ParamType::TunnelType,
            Role::RsipMethod => ParamType::RsipMethod,
            Role::FlowPolicy => ParamType::FlowPolicy,
            Role::MessageCounter => ParamType::MessageCounter,
            Role::Spi => ParamType::Spi,
        }
    }

    /// The name the BNF gives the parameter at this place.
    fn name(self) -> &'static str {
        match self {
            Role::Error => "Error",
            Role::ClientId => "Client ID",
            Role::BindId => "Bind ID",
            Role::LocalAddress => "Address (local)",
            Role::LocalPorts => "Ports (local)",
            Role::RemoteAddress => "Address (remote)",
            Role::RemotePorts => "Ports (remote)",
            Role::TunnelEndpoint => "Address (tunnel endpoint)",
            Role::LeaseTime => "Lease Time",
            Role::TunnelType => "Tunnel Type",
            Role::RsipMethod => "RSIP Method",
            Role::FlowPolicy => "Flow Policy",
            Role::MessageCounter => "Message Counter",
            Role::Spi => "SPI",
        }
    }
}

/// How many times an optional parameter may appear.
#[derive(Debug, Clone, Copy)]
enum Max {
    Once,
    Many,
}

/// One message type's BNF.
#[derive(Debug)]
pub(crate) struct Grammar {
    pub(crate) required: &'static [Role],
    optional: &'static [(Role, Max)],
    /// QUERY_REQUEST / QUERY_RESPONSE: Indicator + Address tuples may follow.
    query: Option<Query>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Query {
    Request,
    Response,
}

use Max::{Many, Once};
use Role as R;

const MC: (Role, Max) = (R::MessageCounter, Once);

/// The BNF of `msg_type`, or `None` for a message type this crate does not know.
pub(crate) fn grammar(msg_type: MessageType) -> Option<&'static Grammar> {
    use MessageType as M;
    Some(match msg_type {
        // RFC 3103 9.1.2
        M::ErrorResponse => &Grammar {
            required: &[R::Error],
            optional: &[MC, (R::ClientId, Once), (R::BindId, Once)],
            query: None,
        },
        // 9.2.2
        M::RegisterRequest => &Grammar {
            required: &[],
            optional: &[MC],
            query: None,
        },
        // 9.3.2
        M::RegisterResponse => &Grammar {
            required: &[R::ClientId, R::LeaseTime, R::FlowPolicy],
            optional: &[MC, (R::RsipMethod, Many), (R::TunnelType, Many)],
            query: None,
        },
        // 9.4.2, 9.5.2
        M::DeregisterRequest | M::DeregisterResponse => &Grammar {
            required: &[R::ClientId],
            optional: &[MC],
            query: None,
        },
        // 9.6.2
        M::AssignRequestRsaIp => &Grammar {
            required: &[
                R::ClientId,
                R::LocalAddress,
                R::RemoteAddress,
                R::RemotePorts,
            ],
            optional: &[MC, (R::LeaseTime, Once), (R::TunnelType, Once)],
            query: None,
        },
        // 9.7.2
        M::AssignResponseRsaIp => &Grammar {
            required: &[
                R::ClientId,
                R::BindId,
                R::LocalAddress,
                R::RemoteAddress,
                R::RemotePorts,
                R::LeaseTime,
                R::TunnelType,
            ],
            optional: &[(R::TunnelEndpoint, Once), MC],
            query: None,
        },
        // 9.8.2
        M::AssignRequestRsapIp => &Grammar {
            required: &[
                R::ClientId,
                R::LocalAddress,
                R::LocalPorts,
                R::RemoteAddress,
                R::RemotePorts,
            ],
            optional: &[MC, (R::LeaseTime, Once), (R::TunnelType, Once)],
            query: None,
        },
        // 9.9.2
        M::AssignResponseRsapIp => &Grammar {
            required: &[
                R::ClientId,
                R::BindId,
                R::LocalAddress,
                R::LocalPorts,
                R::RemoteAddress,
                R::RemotePorts,
                R::LeaseTime,
                R::TunnelType,
            ],
            optional: &[(R::TunnelEndpoint, Once), MC],
            query: None,
        },
        // 9.10.2
        M::ExtendRequest => &Grammar {
            required: &[R::ClientId, R::BindId],
            optional: &[(R::LeaseTime, Once), MC],
            query: None,
        },
        // 9.11.2
        M::ExtendResponse => &Grammar {
            required: &[R::ClientId, R::BindId, R::LeaseTime],
            optional: &[MC],
            query: None,
        },
        // 9.12.2, 9.13.2
        M::FreeRequest | M::FreeResponse => &Grammar {
            required: &[R::ClientId, R::BindId],
            optional: &[MC],
            query: None,
        },
        // 9.14.2
        M::QueryRequest => &Grammar {
            required: &[R::ClientId],
            optional: &[MC],
            query: Some(Query::Request),
        },
        // 9.15.2
        M::QueryResponse => &Grammar {
            required: &[R::ClientId],
            optional: &[MC],
            query: Some(Query::Response),
        },
        // 9.16.2
        M::ListenRequest => &Grammar {
            required: &[
                R::ClientId,
                R::LocalAddress,
                R::LocalPorts,
                R::RemoteAddress,
                R::RemotePorts,
            ],
            optional: &[MC, (R::LeaseTime, Once), (R::TunnelType, Many)],
            query: None,
        },
        // 9.17.2: Tunnel Type comes before Lease Time here, unlike the ASSIGN responses.
        M::ListenResponse => &Grammar {
            required: &[
                R::ClientId,
                R::BindId,
                R::LocalAddress,
                R::LocalPorts,
                R::RemoteAddress,
                R::RemotePorts,
                R::TunnelType,
                R::LeaseTime,
            ],
            optional: &[(R::TunnelEndpoint, Once), MC],
            query: None,
        },
        // RFC 3104 6.2
        M::AssignRequestRsipsec => &Grammar {
            required: &[
                R::ClientId,
                R::LocalAddress,
                R::LocalPorts,
                R::RemoteAddress,
                R::RemotePorts,
                R::Spi,
            ],
            optional: &[MC, (R::LeaseTime, Once), (R::TunnelType, Once)],
            query: None,
        },
        // RFC 3104 6.2
        M::AssignResponseRsipsec => &Grammar {
            required: &[
                R::ClientId,
                R::BindId,
                R::LocalAddress,
                R::LocalPorts,
                R::RemoteAddress,
                R::RemotePorts,
                R::Spi,
                R::LeaseTime,
                R::TunnelType,
            ],
            optional: &[(R::TunnelEndpoint, Once), MC],
            query: None,
        },
        M::Unknown(_) => return None,
    })
}

impl Grammar {
    /// True when the BNF mentions `param` anywhere (tuples included).
    fn mentions(&self, param: ParamType) -> bool {
        param == ParamType::VendorSpecific
            || param == ParamType::Authentication
            || self.required.iter().any(|r| r.param_type() == param)
            || self.optional.iter().any(|(r, _)| r.param_type() == param)
            || (self.query.is_some() && matches!(param, ParamType::Indicator | ParamType::Address))
    }
}

/// Validates `params` against the BNF of `msg_type`. Offsets in the error are
/// those the parameters have (or would have) on the wire; they are computed
/// only on failure, so the accepting path never sums lengths.
pub(crate) fn validate(msg_type: MessageType, params: &[Parameter]) -> Result<(), Fault> {
    let Some(g) = grammar(msg_type) else {
        return Err(Fault {
            kind: DecodeErrorKind::IllegalMessage(msg_type.into()),
            offset: 1,
        });
    };
    let fail = |index: usize, kind: DecodeErrorKind| Fault {
        kind,
        offset: offset_of(params, index),
    };
    let bad = |index: usize, p: &Parameter, reason| {
        fail(
            index,
            DecodeErrorKind::BadParam {
                param: p.param_type(),
                reason,
            },
        )
    };

    // RFC 3103 9: "all required parameters MUST appear in the exact order specified".
    for (i, &role) in g.required.iter().enumerate() {
        let Some(p) = params.get(i) else {
            let expected = role.name();
            return Err(fail(
                i,
                DecodeErrorKind::MissingParam {
                    msg_type,
                    expected,
                    found: None,
                },
            ));
        };
        let found = p.param_type();
        if found != role.param_type() {
            return Err(fail(i, misplaced(g, msg_type, role, found)));
        }
        if let Some(reason) = forbidden_value(msg_type, role, p) {
            return Err(bad(i, p, reason));
        }
    }

    // RFC 3103 9: "Optional parameters MAY appear in any order."
    let mut seen = [0usize; 4];
    let mut authenticated = false;
    let mut i = g.required.len();
    while let Some(p) = params.get(i) {
        let found = p.param_type();
        if let ParamType::Unknown(code) = found {
            return Err(fail(i, DecodeErrorKind::IllegalParam(code)));
        }
        if found == ParamType::VendorSpecific {
            // RFC 3103 8.12: usable in any message (see module doc).
            i += 1;
            continue;
        }
        if found == ParamType::Authentication {
            // Realm's private-use parameter: at most once, anywhere among the
            // optional parameters of every message (docs/signalling-auth.md).
            if authenticated {
                return Err(fail(
                    i,
                    DecodeErrorKind::DuplicateParam {
                        msg_type,
                        param: found,
                    },
                ));
            }
            authenticated = true;
            i += 1;
            continue;
        }
        if let (Some(query), Parameter::Indicator(_) | Parameter::Address(_)) = (g.query, p) {
            i += query_tuple(msg_type, query, params, i).map_err(|(at, kind)| fail(at, kind))?;
            continue;
        }
        let slot = g.optional.iter().position(|(r, _)| r.param_type() == found);
        let Some(((role, max), count)) =
            slot.and_then(|k| Some((g.optional.get(k)?, seen.get_mut(k)?)))
        else {
            let kind = if g.mentions(found) {
                DecodeErrorKind::DuplicateParam {
                    msg_type,
                    param: found,
                }
            } else {
                DecodeErrorKind::ExtraParam {
                    msg_type,
                    param: found,
                }
            };
            return Err(fail(i, kind));
        };
        *count += 1;
        if matches!(max, Once) && *count > 1 {
            return Err(fail(
                i,
                DecodeErrorKind::DuplicateParam {
                    msg_type,
                    param: found,
                },
            ));
        }
        if let Some(reason) = forbidden_value(msg_type, *role, p) {
            return Err(bad(i, p, reason));
        }
        i += 1;
    }
    Ok(())
}

/// The wire offset of `params[index]` (or of the end, past the last one).
fn offset_of(params: &[Parameter], index: usize) -> usize {
    super::HEADER_LEN
        + params
            .iter()
            .take(index)
            .map(Parameter::buffer_len)
            .sum::<usize>()
}

/// The error for parameter type `found` sitting where `role` is required.
fn misplaced(g: &Grammar, msg_type: MessageType, role: Role, found: ParamType) -> DecodeErrorKind {
    match found {
        ParamType::Unknown(code) => DecodeErrorKind::IllegalParam(code),
        _ if !g.mentions(found) => DecodeErrorKind::ExtraParam {
            msg_type,
            param: found,
        },
        _ => DecodeErrorKind::MissingParam {
            msg_type,
            expected: role.name(),
            found: Some(found),
        },
    }
}

/// The reason a value is forbidden at its place in the BNF (BAD_PARAM), if it is.
#[inline]
fn forbidden_value(msg_type: MessageType, role: Role, p: &Parameter) -> Option<&'static str> {
    match p {
        Parameter::Address(a) => match (role, a.addr_type()) {
            // RFC 3103 8.1: "It is not valid for a host to request an address with an
            // FQDN type as its local address"; Realm applies it to every local
            // address, and keeps netmasks for QUERY network tuples (9.14.3).
            (Role::LocalAddress, AddrType::Ipv4Netmask | AddrType::Fqdn) => {
                Some("a local address must be IPv4, IPv6 or \"don't care\" of those")
            }
            (Role::RemoteAddress, AddrType::Ipv4Netmask) => {
                Some("a netmask is not a remote address")
            }
            (Role::TunnelEndpoint, t)
                if t == AddrType::Ipv4Netmask || matches!(a, Address::DontCare(_)) =>
            {
                Some("a tunnel endpoint must be an address")
            }
            _ => None,
        },
        // RFC 3104 6.2: "don't need" (length 0) is defined for the RSIPSEC messages only.
        Parameter::Ports(Ports::DontNeed)
            if !matches!(
                msg_type,
                MessageType::AssignRequestRsipsec | MessageType::AssignResponseRsipsec
            ) =>
        {
            Some("the \"don't need\" form (length 0) exists only in RSIPSEC messages")
        }
        _ => None,
    }
}

/// Indicator meanings (RFC 3103 9.14.1, 9.15.1): the shape of the tuple that follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TupleShape {
    /// `<Indicator> <Address>`.
    Address,
    /// `<Indicator> <Address (network)> <Address (netmask)>`.
    Network,
}

/// The tuple shape an indicator value announces in a QUERY_REQUEST
/// (`response == false`: 1 address, 2 network) or QUERY_RESPONSE (1 local
/// address, 2 local network, 3 remote address, 4 remote network).
pub(crate) fn tuple_shape(response: bool, value: u16) -> Option<TupleShape> {
    match (response, value) {
        (_, 1) | (true, 3) => Some(TupleShape::Address),
        (_, 2) | (true, 4) => Some(TupleShape::Network),
        _ => None,
    }
}

/// Validates the QUERY tuple starting at `params[first]` and returns how many
/// parameters it spans, or the index of the faulty parameter and the failure.
fn query_tuple(
    msg_type: MessageType,
    query: Query,
    params: &[Parameter],
    first: usize,
) -> Result<usize, (usize, DecodeErrorKind)> {
    const A: ParamType = ParamType::Address;
    let bad = |at: usize, param, reason| Err((at, DecodeErrorKind::BadParam { param, reason }));
    let missing = |at: usize, expected| {
        let kind = match params.get(at).map(Parameter::param_type) {
            Some(ParamType::Unknown(code)) => DecodeErrorKind::IllegalParam(code),
            found => DecodeErrorKind::MissingParam {
                msg_type,
                expected,
                found,
            },
        };
        Err((at, kind))
    };
    let Some(Parameter::Indicator(ind)) = params.get(first) else {
        // RFC 3103 9.14.2: an Address belongs to a tuple led by its Indicator.
        return missing(first, "Indicator");
    };
    let Some(shape) = tuple_shape(query == Query::Response, ind.value) else {
        return bad(
            first,
            ParamType::Indicator,
            "indicator value not defined for this message",
        );
    };
    let Some(Parameter::Address(addr)) = params.get(first + 1) else {
        return missing(first + 1, "Address");
    };
    if shape == TupleShape::Address {
        if matches!(addr, Address::DontCare(_)) || addr.addr_type() == AddrType::Ipv4Netmask {
            return bad(first + 1, A, "a queried address must be an address");
        }
        return Ok(2);
    }
    // RFC 3103 9.14.3: "the FQDN form of the address parameter cannot be used to
    // specify the address of a network, and only the netmask form of the address
    // parameter can be used to specify the netmask of a network."
    let v6 = match addr {
        Address::Ipv4(_) => false,
        Address::Ipv6(_) => true,
        _ => return bad(first + 1, A, "a network must be an IPv4 or IPv6 address"),
    };
    match params.get(first + 2) {
        Some(Parameter::Address(Address::Ipv4Netmask(_))) if !v6 => Ok(3),
        Some(Parameter::Address(Address::Ipv6(_))) if v6 => Ok(3),
        Some(Parameter::Address(_)) => bad(
            first + 2,
            A,
            "a netmask must be an IPv4 netmask (or IPv6 for an IPv6 network)",
        ),
        _ => missing(first + 2, "Address (netmask)"),
    }
}
