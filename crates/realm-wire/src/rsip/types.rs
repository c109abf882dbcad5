//! Codes and identifiers of RSIP: message types (RFC 3103 Appendix B, RFC 3104
//! Appendix C), parameter types (RFC 3103 8, RFC 3104 6.2), the small enumerated
//! parameter values (8.1, 8.6, 8.7, 8.9) and error codes (RFC 3103 Appendix A,
//! RFC 3104 Appendix B).
//!
//! Every enum but [`AddrType`] keeps the codes it does not know (`Unknown`), so
//! that parse-then-emit loses nothing and an error can name the exact code.

use core::fmt;

use serde::{Deserialize, Serialize};

enum_with_unknown! {
    /// RSIP message type (RFC 3103 Appendix B; RFC 3104 Appendix C adds 22 and 23).
    pub enum MessageType(u8), unknown = "unknown message type" {
        /// Gateway to host: an error (RFC 3103 9.1).
        ErrorResponse = 1 => "ERROR_RESPONSE",
        /// Host to gateway: register (RFC 3103 9.2).
        RegisterRequest = 2 => "REGISTER_REQUEST",
        /// Gateway to host: registration granted (RFC 3103 9.3).
        RegisterResponse = 3 => "REGISTER_RESPONSE",
        /// Host to gateway: de-register (RFC 3103 9.4).
        DeregisterRequest = 4 => "DE-REGISTER_REQUEST",
        /// Gateway to host: de-registered (RFC 3103 9.5).
        DeregisterResponse = 5 => "DE-REGISTER_RESPONSE",
        /// Host to gateway: ask for an address (RFC 3103 9.6).
        AssignRequestRsaIp = 6 => "ASSIGN_REQUEST_RSA-IP",
        /// Gateway to host: an address granted (RFC 3103 9.7).
        AssignResponseRsaIp = 7 => "ASSIGN_RESPONSE_RSA-IP",
        /// Host to gateway: ask for an address and ports (RFC 3103 9.8).
        AssignRequestRsapIp = 8 => "ASSIGN_REQUEST_RSAP-IP",
        /// Gateway to host: an address and ports granted (RFC 3103 9.9).
        AssignResponseRsapIp = 9 => "ASSIGN_RESPONSE_RSAP-IP",
        /// Host to gateway: extend a binding's lease (RFC 3103 9.10).
        ExtendRequest = 10 => "EXTEND_REQUEST",
        /// Gateway to host: lease extended (RFC 3103 9.11).
        ExtendResponse = 11 => "EXTEND_RESPONSE",
        /// Host to gateway: free a binding (RFC 3103 9.12).
        FreeRequest = 12 => "FREE_REQUEST",
        /// Gateway to host: binding freed (RFC 3103 9.13).
        FreeResponse = 13 => "FREE_RESPONSE",
        /// Host to gateway: is this address or network local? (RFC 3103 9.14).
        QueryRequest = 14 => "QUERY_REQUEST",
        /// Gateway to host: locality answers (RFC 3103 9.15).
        QueryResponse = 15 => "QUERY_RESPONSE",
        /// Host to gateway: listen on an address and port (RFC 3103 9.16).
        ListenRequest = 16 => "LISTEN_REQUEST",
        /// Gateway to host: listen granted (RFC 3103 9.17).
        ListenResponse = 17 => "LISTEN_RESPONSE",
        /// Host to gateway: ask for an address, ports and SPIs (RFC 3104 6.2).
        AssignRequestRsipsec = 22 => "ASSIGN_REQUEST_RSIPSEC",
        /// Gateway to host: an address, ports and SPIs granted (RFC 3104 6.2).
        AssignResponseRsipsec = 23 => "ASSIGN_RESPONSE_RSIPSEC",
    }
}

enum_with_unknown! {
    /// RSIP parameter type (RFC 3103 8; RFC 3104 6.2 adds SPI = 22; Realm uses the
    /// private-use type 241 for [`super::Authentication`]).
    pub enum ParamType(u8), unknown = "unknown parameter" {
        /// RFC 3103 8.1.
        Address = 1 => "Address",
        /// RFC 3103 8.2.
        Ports = 2 => "Ports",
        /// RFC 3103 8.3.
        LeaseTime = 3 => "Lease Time",
        /// RFC 3103 8.4.
        ClientId = 4 => "Client ID",
        /// RFC 3103 8.5.
        BindId = 5 => "Bind ID",
        /// RFC 3103 8.6.
        TunnelType = 6 => "Tunnel Type",
        /// RFC 3103 8.7.
        RsipMethod = 7 => "RSIP Method",
        /// RFC 3103 8.8.
        Error = 8 => "Error",
        /// RFC 3103 8.9.
        FlowPolicy = 9 => "Flow Policy",
        /// RFC 3103 8.10.
        Indicator = 10 => "Indicator",
        /// RFC 3103 8.11.
        MessageCounter = 11 => "Message Counter",
        /// RFC 3103 8.12.
        VendorSpecific = 12 => "Vendor Specific",
        /// RFC 3104 6.2.
        Spi = 22 => "SPI",
        /// Realm's signalling authentication (a private-use type, RFC 3103 12;
        /// `docs/signalling-auth.md`).
        Authentication = 241 => "Authentication",
    }
}

enum_with_unknown! {
    /// Tunnel between host and gateway (RFC 3103 8.6). 0 is reserved (kept as `Unknown(0)`).
    pub enum TunnelType(u8), unknown = "unknown tunnel type" {
        /// IP-in-IP.
        IpIp = 1 => "IP-IP",
        /// GRE.
        Gre = 2 => "GRE",
        /// L2TP.
        L2tp = 3 => "L2TP",
    }
}

enum_with_unknown! {
    /// RSIP method (RFC 3103 8.7; RFC 3104 6 adds RSIPSEC = 3). 0 is reserved.
    pub enum RsipMethod(u8), unknown = "unknown RSIP method" {
        /// Realm-Specific Address IP.
        RsaIp = 1 => "RSA-IP",
        /// Realm-Specific Address and Port IP.
        RsapIp = 2 => "RSAP-IP",
        /// RSIP with end-to-end IPsec (RFC 3104).
        Rsipsec = 3 => "RSIPSEC",
    }
}

enum_with_unknown! {
    /// Local flow policy (RFC 3103 8.9). 0 is reserved.
    pub enum LocalFlowPolicy(u8), unknown = "unknown local flow policy" {
        /// Macro-flow based policy.
        Macro = 1 => "macro",
        /// Micro-flow based policy.
        Micro = 2 => "micro",
    }
}

enum_with_unknown! {
    /// Remote flow policy (RFC 3103 8.9). 0 is reserved.
    pub enum RemoteFlowPolicy(u8), unknown = "unknown remote flow policy" {
        /// Macro-flow based policy.
        Macro = 1 => "macro",
        /// Micro-flow based policy.
        Micro = 2 => "micro",
        /// No remote policy.
        None = 3 => "no policy",
    }
}

enum_with_unknown! {
    /// The value of an Error parameter (RFC 3103 Appendix A; RFC 3104 Appendix B).
    ///
    /// Note the two "unknowns": [`ErrorCode::UnknownError`] is the RFC's code
    /// 101 UNKNOWN_ERROR; [`ErrorCode::Unknown`] is a code no RFC assigns.
    pub enum ErrorCode(u16), unknown = "UNASSIGNED" {
        /// 101: an error that cannot be identified.
        UnknownError = 101 => "UNKNOWN_ERROR",
        /// 102: UDP used on a TCP-only server.
        UseTcp = 102 => "USE_TCP",
        /// 103: address or port not detailed enough for the flow policy.
        FlowPolicyViolation = 103 => "FLOW_POLICY_VIOLATION",
        /// 104: unrecoverable error within the server.
        InternalServerError = 104 => "INTERNAL_SERVER_ERROR",
        /// 105: a message counter was required but absent.
        MessageCounterRequired = 105 => "MESSAGE_COUNTER_REQUIRED",
        /// 106: RSIP version not supported.
        UnsupportedRsipVersion = 106 => "UNSUPPORTED_RSIP_VERSION",
        /// 201: a required parameter is missing.
        MissingParam = 201 => "MISSING_PARAM",
        /// 202: an illegal duplicate parameter.
        DuplicateParam = 202 => "DUPLICATE_PARAM",
        /// 203: a parameter the message should not contain.
        ExtraParam = 203 => "EXTRA_PARAM",
        /// 204: a parameter type the gateway does not understand.
        IllegalParam = 204 => "ILLEGAL_PARAM",
        /// 205: a malformed parameter.
        BadParam = 205 => "BAD_PARAM",
        /// 206: a message type the gateway does not understand.
        IllegalMessage = 206 => "ILLEGAL_MESSAGE",
        /// 207: a malformed message.
        BadMessage = 207 => "BAD_MESSAGE",
        /// 208: an optional message the gateway does not support.
        UnsupportedMessage = 208 => "UNSUPPORTED_MESSAGE",
        /// 301: resources requested without registering.
        RegisterFirst = 301 => "REGISTER_FIRST",
        /// 302: registered again without de-registering.
        AlreadyRegistered = 302 => "ALREADY_REGISTERED",
        /// 303: de-registered while unregistered.
        AlreadyUnregistered = 303 => "ALREADY_UNREGISTERED",
        /// 304: registration refused by policy.
        RegistrationDenied = 304 => "REGISTRATION_DENIED",
        /// 305: wrong client ID.
        BadClientId = 305 => "BAD_CLIENT_ID",
        /// 306: bind ID not valid for the host.
        BadBindId = 306 => "BAD_BIND_ID",
        /// 307: tunnel type not valid for the host.
        BadTunnelType = 307 => "BAD_TUNNEL_TYPE",
        /// 308: no local address can be allocated now.
        LocalAddrUnavailable = 308 => "LOCAL_ADDR_UNAVAILABLE",
        /// 309: no local address/port tuple of that magnitude now.
        LocalAddrportUnavailable = 309 => "LOCAL_ADDRPORT_UNAVAILABLE",
        /// 310: requested local address in use.
        LocalAddrInuse = 310 => "LOCAL_ADDR_INUSE",
        /// 311: requested local address/port tuple in use.
        LocalAddrportInuse = 311 => "LOCAL_ADDRPORT_INUSE",
        /// 312: requested local address refused by policy.
        LocalAddrUnallowed = 312 => "LOCAL_ADDR_UNALLOWED",
        /// 313: requested local address/port pair refused by policy.
        LocalAddrportUnallowed = 313 => "LOCAL_ADDRPORT_UNALLOWED",
        /// 314: remote address refused by policy.
        RemoteAddrUnallowed = 314 => "REMOTE_ADDR_UNALLOWED",
        /// 315: remote address/port tuple refused by policy.
        RemoteAddrportUnallowed = 315 => "REMOTE_ADDRPORT_UNALLOWED",
        /// 401 (RFC 3104): end-to-end IPsec not allowed for this client.
        IpsecUnallowed = 401 => "IPSEC_UNALLOWED",
        /// 402 (RFC 3104): no SPI available.
        IpsecSpiUnavailable = 402 => "IPSEC_SPI_UNAVAILABLE",
        /// 403 (RFC 3104): requested SPI used by another client.
        IpsecSpiInuse = 403 => "IPSEC_SPI_INUSE",
    }
}

/// The Addrtype field of an Address parameter (RFC 3103 8.1). Code 0 is
/// reserved and other codes have no defined layout: both are rejected
/// (BAD_PARAM), so this enum has no `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum AddrType {
    /// 1: IPv4 address (4 bytes).
    Ipv4,
    /// 2: IPv4 netmask (4 bytes).
    Ipv4Netmask,
    /// 3: IPv6 address (16 bytes).
    Ipv6,
    /// 4: fully qualified domain name (ASCII, no terminator).
    Fqdn,
}

impl AddrType {
    /// The Addrtype code, 1 to 4.
    pub fn code(self) -> u8 {
        match self {
            AddrType::Ipv4 => 1,
            AddrType::Ipv4Netmask => 2,
            AddrType::Ipv6 => 3,
            AddrType::Fqdn => 4,
        }
    }

    /// The Addrtype for `code`, or `None` for 0 (reserved) and unassigned codes.
    pub fn from_code(code: u8) -> Option<AddrType> {
        match code {
            1 => Some(AddrType::Ipv4),
            2 => Some(AddrType::Ipv4Netmask),
            3 => Some(AddrType::Ipv6),
            4 => Some(AddrType::Fqdn),
            _ => None,
        }
    }
}

macro_rules! id_newtype {
    ($(#[$attr:meta])* $name:ident) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        pub struct $name(pub u32);

        impl From<u32> for $name {
            fn from(v: u32) -> Self {
                $name(v)
            }
        }

        impl From<$name> for u32 {
            fn from(v: $name) -> Self {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

id_newtype! {
    /// An RSIP client ID (RFC 3103 8.4): the gateway's name for a registered host.
    #[derive(Deserialize)]
    #[serde(transparent)]
    ClientId
}

id_newtype! {
    /// An RSIP bind ID (RFC 3103 8.5): a host's name for one of its bindings.
    #[derive(Deserialize)]
    #[serde(transparent)]
    BindId
}

id_newtype! {
    /// An IPsec Security Parameters Index (RFC 4303 2.1), as an SPI parameter
    /// carries it (RFC 3104 6.2) and as the SAD and the lease pool hold it.
    /// Read from a number, or a decimal or `0x` hex string.
    Spi
}
