//! An RSIP message (RFC 3103 9): version (1) | message type (1) | overall
//! length (2, the whole message) | parameters, always valid against its BNF.

use serde::Serialize;

use super::error::{DecodeError, DecodeErrorKind};
use super::grammar::{self, TupleShape};
use super::param::{
    Address, Authentication, Fault, FlowPolicy, Indicator, Parameter, Ports, Spis, VendorSpecific,
};
use super::types::{BindId, ClientId, ErrorCode, MessageType, ParamType, RsipMethod, TunnelType};
use super::{HEADER_LEN, VERSION};
use crate::codec::{Reader, Writer};

/// An RSIP message: its type and its parameters in wire order.
///
/// A `Message` always satisfies the section 9 BNF of its type (it can only be
/// made by [`Message::parse`], [`Message::new`] or the typed constructors,
/// which validate or cannot build anything invalid), and `emit` reproduces
/// the parsed bytes exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    msg_type: MessageType,
    params: Vec<Parameter>,
}

/// The four positional flow parameters of ASSIGN_*_RSAP-IP, LISTEN_* and
/// ASSIGN_*_RSIPSEC (RFC 3103 9.8.1): the first Address/Ports pair is the
/// local side (what the gateway lends the host), the second the remote peer
/// the binding may reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flow {
    /// Address (local).
    pub local_address: Address,
    /// Ports (local).
    pub local_ports: Ports,
    /// Address (remote).
    pub remote_address: Address,
    /// Ports (remote).
    pub remote_ports: Ports,
}

/// The optional parameters of the ASSIGN requests (RFC 3103 9.6.2, 9.8.2;
/// RFC 3104 6.2), emitted in BNF order: `[Message Counter] [Lease Time] [Tunnel Type]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RequestOptions {
    /// Message Counter (required over UDP, RFC 3103 8.11).
    pub message_counter: Option<u32>,
    /// Suggested lease, seconds.
    pub lease_time: Option<u32>,
    /// Requested tunnel type (IP-IP is assumed when absent).
    pub tunnel_type: Option<TunnelType>,
}

/// What a gateway grants in ASSIGN_RESPONSE_* and LISTEN_RESPONSE (RFC 3103
/// 9.7.2, 9.9.2, 9.17.2; RFC 3104 6.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    /// Lease Time, seconds.
    pub lease_time: u32,
    /// Tunnel Type.
    pub tunnel_type: TunnelType,
    /// Address (tunnel endpoint), when not the gateway itself.
    pub tunnel_endpoint: Option<Address>,
    /// Message Counter (echoing the request's over UDP).
    pub message_counter: Option<u32>,
}

/// A QUERY_REQUEST / QUERY_RESPONSE tuple (RFC 3103 9.14.2, 9.15.2):
/// `<Indicator> <Address>` or `<Indicator> <Address (network)> <Address (netmask)>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueryTuple {
    /// The indicator: in a request 1 address, 2 network; in a response 1 local
    /// address, 2 local network, 3 remote address, 4 remote network.
    pub indicator: Indicator,
    /// The address, or the network address.
    pub address: Address,
    /// The netmask, for a network tuple.
    pub netmask: Option<Address>,
}

impl QueryTuple {
    /// Request indicator 1: "is this address local?".
    pub fn address(address: Address) -> QueryTuple {
        QueryTuple {
            indicator: Indicator::new(1),
            address,
            netmask: None,
        }
    }
    /// Request indicator 2: "is this network local?".
    pub fn network(network: Address, netmask: Address) -> QueryTuple {
        QueryTuple {
            indicator: Indicator::new(2),
            address: network,
            netmask: Some(netmask),
        }
    }
    /// Response indicator 1: a local address.
    pub fn local_address(address: Address) -> QueryTuple {
        QueryTuple {
            indicator: Indicator::new(1),
            address,
            netmask: None,
        }
    }
    /// Response indicator 2: a local network.
    pub fn local_network(network: Address, netmask: Address) -> QueryTuple {
        QueryTuple {
            indicator: Indicator::new(2),
            address: network,
            netmask: Some(netmask),
        }
    }
    /// Response indicator 3: a remote address.
    pub fn remote_address(address: Address) -> QueryTuple {
        QueryTuple {
            indicator: Indicator::new(3),
            address,
            netmask: None,
        }
    }
    /// Response indicator 4: a remote network.
    pub fn remote_network(network: Address, netmask: Address) -> QueryTuple {
        QueryTuple {
            indicator: Indicator::new(4),
            address: network,
            netmask: Some(netmask),
        }
    }

    fn push_into(&self, params: &mut Vec<Parameter>) {
        params.push(Parameter::Indicator(self.indicator));
        params.push(Parameter::Address(self.address.clone()));
        if let Some(mask) = &self.netmask {
            params.push(Parameter::Address(mask.clone()));
        }
    }
}

impl Message {
    /// Parses exactly one message (one UDP datagram, or one frame from
    /// [`super::StreamDecoder`]).
    ///
    /// Checks, in this order: version = 1 (106), header and overall length =
    /// the bytes given (207), a known message type (206), the parameter
    /// framing (207), each parameter's value (205), then the BNF (201-205).
    /// The error carries the message type, counter, client ID and bind ID
    /// that could be salvaged.
    pub fn parse(bytes: &[u8]) -> Result<Message, DecodeError> {
        parse_inner(bytes).map_err(|fault| salvage_bytes(fault, bytes))
    }

    /// Decodes a message without checking it against its BNF, for diagnostics
    /// (`realm decode` shows what is there even when a gateway would refuse
    /// it): the header and each parameter's layout are checked as by
    /// [`Message::parse`], but unknown message and parameter types are kept
    /// and the parameters may be in any order. Never use it to act on a message.
    pub fn parse_lenient(bytes: &[u8]) -> Result<(MessageType, Vec<Parameter>), DecodeError> {
        parse_frame(bytes, true).map_err(|fault| salvage_bytes(fault, bytes))
    }

    /// Builds a message from parameters in wire order, validated exactly as
    /// [`Message::parse`] would validate their bytes.
    pub fn new(msg_type: MessageType, params: Vec<Parameter>) -> Result<Message, DecodeError> {
        check_built(msg_type, &params).map_err(|fault| salvage_params(fault, msg_type, &params))?;
        Ok(Message { msg_type, params })
    }

    /// The message type.
    pub fn msg_type(&self) -> MessageType {
        self.msg_type
    }

    /// The parameters, in wire order.
    pub fn params(&self) -> &[Parameter] {
        &self.params
    }

    /// The parameters, in wire order.
    pub fn into_params(self) -> Vec<Parameter> {
        self.params
    }

    /// Bytes of the emitted message (= its overall length field).
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.params.iter().map(Parameter::buffer_len).sum::<usize>()
    }

    /// Appends the message to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.reserve(HEADER_LEN + 8 * self.params.len());
        // The overall length is patched in once the parameters are written, so
        // their lengths are computed once.
        out.put_slice(&[VERSION, u8::from(self.msg_type), 0, 0]);
        for p in &self.params {
            p.emit(out);
        }
        // Validation refused anything longer than 65535 bytes.
        let len = u16::try_from(out.len() - start).unwrap_or(u16::MAX);
        if let Some(field) = out.get_mut(start + 2..start + HEADER_LEN) {
            field.copy_from_slice(&len.to_be_bytes());
        }
    }

    /// The emitted message.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.emit(&mut out);
        out
    }

    // ---- typed accessors --------------------------------------------------

    fn find<'a, T>(&'a self, f: impl FnMut(&'a Parameter) -> Option<T>) -> Option<T> {
        self.params.iter().find_map(f)
    }

    /// The Client ID.
    pub fn client_id(&self) -> Option<ClientId> {
        self.find(|p| match p {
            Parameter::ClientId(id) => Some(*id),
            _ => None,
        })
    }

    /// The Bind ID.
    pub fn bind_id(&self) -> Option<BindId> {
        self.find(|p| match p {
            Parameter::BindId(id) => Some(*id),
            _ => None,
        })
    }

    /// The Lease Time, seconds.
    pub fn lease_time(&self) -> Option<u32> {
        self.find(|p| match p {
            Parameter::LeaseTime(t) => Some(*t),
            _ => None,
        })
    }

    /// The Message Counter.
    pub fn message_counter(&self) -> Option<u32> {
        self.find(|p| match p {
            Parameter::MessageCounter(c) => Some(*c),
            _ => None,
        })
    }

    /// The Error of an ERROR_RESPONSE.
    pub fn error(&self) -> Option<ErrorCode> {
        self.find(|p| match p {
            Parameter::Error(e) => Some(*e),
            _ => None,
        })
    }

    /// The Flow Policy of a REGISTER_RESPONSE.
    pub fn flow_policy(&self) -> Option<FlowPolicy> {
        self.find(|p| match p {
            Parameter::FlowPolicy(fp) => Some(*fp),
            _ => None,
        })
    }

    /// Realm's Authentication parameter, if present.
    pub fn authentication(&self) -> Option<Authentication> {
        self.find(|p| match p {
            Parameter::Authentication(a) => Some(*a),
            _ => None,
        })
    }

    /// The same message with `param` appended (validated like [`Message::new`]),
    /// e.g. an Authentication parameter.
    pub fn with_param(&self, param: Parameter) -> Result<Message, DecodeError> {
        let mut params = self.params.clone();
        params.push(param);
        Message::new(self.msg_type, params)
    }

    /// The SPI parameter of an RSIPSEC message.
    pub fn spis(&self) -> Option<&Spis> {
        self.find(|p| match p {
            Parameter::Spi(s) => Some(s),
            _ => None,
        })
    }

    /// Every Address parameter, in wire order (their meaning is positional:
    /// see [`Message::view`]).
    pub fn addresses(&self) -> impl Iterator<Item = &Address> {
        self.params.iter().filter_map(|p| match p {
            Parameter::Address(a) => Some(a),
            _ => None,
        })
    }

    /// Every Ports parameter, in wire order (local first where there are two).
    pub fn ports(&self) -> impl Iterator<Item = &Ports> {
        self.params.iter().filter_map(|p| match p {
            Parameter::Ports(ports) => Some(ports),
            _ => None,
        })
    }

    /// The RSIP Methods of a REGISTER_RESPONSE (RSAP-IP is assumed when none, 9.3.3).
    pub fn methods(&self) -> impl Iterator<Item = RsipMethod> + '_ {
        self.params.iter().filter_map(|p| match p {
            Parameter::RsipMethod(m) => Some(*m),
            _ => None,
        })
    }

    /// The Tunnel Types (IP-IP is assumed when none, 9.3.3).
    pub fn tunnel_types(&self) -> impl Iterator<Item = TunnelType> + '_ {
        self.params.iter().filter_map(|p| match p {
            Parameter::TunnelType(t) => Some(*t),
            _ => None,
        })
    }

    /// The Vendor Specific parameters.
    pub fn vendor_specific(&self) -> impl Iterator<Item = &VendorSpecific> {
        self.params.iter().filter_map(|p| match p {
            Parameter::VendorSpecific(v) => Some(v),
            _ => None,
        })
    }

    /// The tuples of a QUERY_REQUEST / QUERY_RESPONSE, in wire order (empty
    /// for other messages).
    pub fn query_tuples(&self) -> Vec<QueryTuple> {
        let response = match self.msg_type {
            MessageType::QueryRequest => false,
            MessageType::QueryResponse => true,
            _ => return Vec::new(),
        };
        let mut out = Vec::new();
        let mut rest = self.params.as_slice();
        while let Some((p, tail)) = rest.split_first() {
            rest = tail;
            let Parameter::Indicator(indicator) = p else {
                continue;
            };
            let shape = grammar::tuple_shape(response, indicator.value);
            match (shape, rest) {
                (Some(TupleShape::Address), [Parameter::Address(a), tail @ ..]) => {
                    out.push(QueryTuple {
                        indicator: *indicator,
                        address: a.clone(),
                        netmask: None,
                    });
                    rest = tail;
                }
                (
                    Some(TupleShape::Network),
                    [Parameter::Address(net), Parameter::Address(mask), tail @ ..],
                ) => {
                    out.push(QueryTuple {
                        indicator: *indicator,
                        address: net.clone(),
                        netmask: Some(mask.clone()),
                    });
                    rest = tail;
                }
                _ => {}
            }
        }
        out
    }

    /// The message with its positional parameters named (local vs remote
    /// address and ports, ...). Repeated optional parameters are read with
    /// [`Message::methods`], [`Message::tunnel_types`],
    /// [`Message::query_tuples`] and [`Message::vendor_specific`]; the
    /// counter with [`Message::message_counter`].
    pub fn view(&self) -> View<'_> {
        view(self)
    }

    // ---- typed constructors, parameters in BNF order -----------------------

    /// ERROR_RESPONSE (RFC 3103 9.1.2): `<Error> [Message Counter] [Client ID] [Bind ID]`.
    /// 9.1.1: when the error is about a client or binding, its IDs MUST be given.
    pub fn error_response(
        error: ErrorCode,
        message_counter: Option<u32>,
        client_id: Option<ClientId>,
        bind_id: Option<BindId>,
    ) -> Message {
        let mut params = vec![Parameter::Error(error)];
        params.extend(message_counter.map(Parameter::MessageCounter));
        params.extend(client_id.map(Parameter::ClientId));
        params.extend(bind_id.map(Parameter::BindId));
        Message {
            msg_type: MessageType::ErrorResponse,
            params,
        }
    }

    /// REGISTER_REQUEST (RFC 3103 9.2.2): `[Message Counter]`.
    pub fn register_request(message_counter: Option<u32>) -> Message {
        let params = message_counter
            .map(Parameter::MessageCounter)
            .into_iter()
            .collect();
        Message {
            msg_type: MessageType::RegisterRequest,
            params,
        }
    }

    /// REGISTER_RESPONSE (RFC 3103 9.3.2):
    /// ```text
    /// <Client ID> <Lease time> <Flow Policy> [Message Counter] [RSIP Method]...
    /// [Tunnel Type]...
    /// ```
    pub fn register_response(
        client_id: ClientId,
        lease_time: u32,
        flow_policy: FlowPolicy,
        message_counter: Option<u32>,
        methods: &[RsipMethod],
        tunnel_types: &[TunnelType],
    ) -> Result<Message, DecodeError> {
        let mut params = vec![
            Parameter::ClientId(client_id),
            Parameter::LeaseTime(lease_time),
            Parameter::FlowPolicy(flow_policy),
        ];
        params.extend(message_counter.map(Parameter::MessageCounter));
        params.extend(methods.iter().copied().map(Parameter::RsipMethod));
        params.extend(tunnel_types.iter().copied().map(Parameter::TunnelType));
        Message::new(MessageType::RegisterResponse, params)
    }

    /// DE-REGISTER_REQUEST (RFC 3103 9.4.2): `<Client ID> [Message Counter]`.
    pub fn deregister_request(client_id: ClientId, message_counter: Option<u32>) -> Message {
        Message::client_only(MessageType::DeregisterRequest, client_id, message_counter)
    }

    /// DE-REGISTER_RESPONSE (RFC 3103 9.5.2): `<Client ID> [Message Counter]`.
    pub fn deregister_response(client_id: ClientId, message_counter: Option<u32>) -> Message {
        Message::client_only(MessageType::DeregisterResponse, client_id, message_counter)
    }

    fn client_only(msg_type: MessageType, client_id: ClientId, counter: Option<u32>) -> Message {
        let mut params = vec![Parameter::ClientId(client_id)];
        params.extend(counter.map(Parameter::MessageCounter));
        Message { msg_type, params }
    }

    /// ASSIGN_REQUEST_RSA-IP (RFC 3103 9.6.2):
    /// ```text
    /// <Client ID> <Address (local)> <Address (remote)> <Ports (remote)> [Message Counter]
    /// [Lease Time] [Tunnel Type]
    /// ```
    pub fn assign_request_rsa_ip(
        client_id: ClientId,
        local_address: Address,
        remote_address: Address,
        remote_ports: Ports,
        options: RequestOptions,
    ) -> Result<Message, DecodeError> {
        let mut params = vec![
            Parameter::ClientId(client_id),
            Parameter::Address(local_address),
            Parameter::Address(remote_address),
            Parameter::Ports(remote_ports),
        ];
        options.push_into(&mut params);
        Message::new(MessageType::AssignRequestRsaIp, params)
    }

    /// ASSIGN_RESPONSE_RSA-IP (RFC 3103 9.7.2):
    /// ```text
    /// <Client ID> <Bind ID> <Address (local)> <Address (remote)> <Ports (remote)> <Lease Time>
    /// <Tunnel Type> [Address (tunnel endpoint)] [Message Counter]
    /// ```
    pub fn assign_response_rsa_ip(
        client_id: ClientId,
        bind_id: BindId,
        local_address: Address,
        remote_address: Address,
        remote_ports: Ports,
        grant: Grant,
    ) -> Result<Message, DecodeError> {
        let mut params = vec![
            Parameter::ClientId(client_id),
            Parameter::BindId(bind_id),
            Parameter::Address(local_address),
            Parameter::Address(remote_address),
            Parameter::Ports(remote_ports),
            Parameter::LeaseTime(grant.lease_time),
            Parameter::TunnelType(grant.tunnel_type),
        ];
        grant.push_tail(&mut params);
        Message::new(MessageType::AssignResponseRsaIp, params)
    }

    /// ASSIGN_REQUEST_RSAP-IP (RFC 3103 9.8.2):
    /// ```text
    /// <Client ID> <Address (local)> <Ports (local)> <Address (remote)> <Ports (remote)>
    /// [Message Counter] [Lease Time] [Tunnel Type]
    /// ```
    pub fn assign_request_rsap_ip(
        client_id: ClientId,
        flow: Flow,
        options: RequestOptions,
    ) -> Result<Message, DecodeError> {
        let mut params = Vec::with_capacity(8);
        params.push(Parameter::ClientId(client_id));
        flow.push_into(&mut params);
        options.push_into(&mut params);
        Message::new(MessageType::AssignRequestRsapIp, params)
    }

    /// ASSIGN_RESPONSE_RSAP-IP (RFC 3103 9.9.2):
    /// ```text
    /// <Client ID> <Bind ID> <Address (local)> <Ports (local)> <Address (remote)>
    /// <Ports (remote)> <Lease Time> <Tunnel Type> [Address (tunnel endpoint)]
    /// [Message Counter]
    /// ```
    pub fn assign_response_rsap_ip(
        client_id: ClientId,
        bind_id: BindId,
        flow: Flow,
        grant: Grant,
    ) -> Result<Message, DecodeError> {
        let mut params = Vec::with_capacity(10);
        params.push(Parameter::ClientId(client_id));
        params.push(Parameter::BindId(bind_id));
        flow.push_into(&mut params);
        params.push(Parameter::LeaseTime(grant.lease_time));
        params.push(Parameter::TunnelType(grant.tunnel_type));
        grant.push_tail(&mut params);
        Message::new(MessageType::AssignResponseRsapIp, params)
    }

    /// EXTEND_REQUEST (RFC 3103 9.10.2): `<Client ID> <Bind ID> [Lease Time] [Message Counter]`.
    pub fn extend_request(
        client_id: ClientId,
        bind_id: BindId,
        lease_time: Option<u32>,
        message_counter: Option<u32>,
    ) -> Message {
        let mut params = vec![Parameter::ClientId(client_id), Parameter::BindId(bind_id)];
        params.extend(lease_time.map(Parameter::LeaseTime));
        params.extend(message_counter.map(Parameter::MessageCounter));
        Message {
            msg_type: MessageType::ExtendRequest,
            params,
        }
    }

    /// EXTEND_RESPONSE (RFC 3103 9.11.2): `<Client ID> <Bind ID> <Lease Time> [Message Counter]`.
    pub fn extend_response(
        client_id: ClientId,
        bind_id: BindId,
        lease_time: u32,
        message_counter: Option<u32>,
    ) -> Message {
        let mut params = vec![
            Parameter::ClientId(client_id),
            Parameter::BindId(bind_id),
            Parameter::LeaseTime(lease_time),
        ];
        params.extend(message_counter.map(Parameter::MessageCounter));
        Message {
            msg_type: MessageType::ExtendResponse,
            params,
        }
    }

    /// FREE_REQUEST (RFC 3103 9.12.2): `<Client ID> <Bind ID> [Message Counter]`.
    pub fn free_request(client_id: ClientId, bind_id: BindId, counter: Option<u32>) -> Message {
        Message::client_bind(MessageType::FreeRequest, client_id, bind_id, counter)
    }

    /// FREE_RESPONSE (RFC 3103 9.13.2): `<Client ID> <Bind ID> [Message Counter]`.
    pub fn free_response(client_id: ClientId, bind_id: BindId, counter: Option<u32>) -> Message {
        Message::client_bind(MessageType::FreeResponse, client_id, bind_id, counter)
    }

    fn client_bind(
        msg_type: MessageType,
        client_id: ClientId,
        bind_id: BindId,
        counter: Option<u32>,
    ) -> Message {
        let mut params = vec![Parameter::ClientId(client_id), Parameter::BindId(bind_id)];
        params.extend(counter.map(Parameter::MessageCounter));
        Message { msg_type, params }
    }

    /// QUERY_REQUEST (RFC 3103 9.14.2):
    /// ```text
    /// <Client ID> [Message Counter] [Address Tuple]... [Network Tuple]...
    /// ```
    pub fn query_request(
        client_id: ClientId,
        message_counter: Option<u32>,
        tuples: &[QueryTuple],
    ) -> Result<Message, DecodeError> {
        Message::query(
            MessageType::QueryRequest,
            client_id,
            message_counter,
            tuples,
        )
    }

    /// QUERY_RESPONSE (RFC 3103 9.15.2):
    /// ```text
    /// <Client ID> [Message Counter] [Local Address Tuple]... [Local Network Tuple]...
    /// [Remote Address Tuple]... [Remote Network Tuple]...
    /// ```
    pub fn query_response(
        client_id: ClientId,
        message_counter: Option<u32>,
        tuples: &[QueryTuple],
    ) -> Result<Message, DecodeError> {
        Message::query(
            MessageType::QueryResponse,
            client_id,
            message_counter,
            tuples,
        )
    }

    fn query(
        msg_type: MessageType,
        client_id: ClientId,
        counter: Option<u32>,
        tuples: &[QueryTuple],
    ) -> Result<Message, DecodeError> {
        let mut params = vec![Parameter::ClientId(client_id)];
        params.extend(counter.map(Parameter::MessageCounter));
        for t in tuples {
            t.push_into(&mut params);
        }
        Message::new(msg_type, params)
    }

    /// LISTEN_REQUEST (RFC 3103 9.16.2):
    /// ```text
    /// <Client ID> <Address (local)> <Ports (local)> <Address (remote)> <Ports (remote)>
    /// [Message Counter] [Lease Time] [Tunnel Type]...
    /// ```
    pub fn listen_request(
        client_id: ClientId,
        flow: Flow,
        message_counter: Option<u32>,
        lease_time: Option<u32>,
        tunnel_types: &[TunnelType],
    ) -> Result<Message, DecodeError> {
        let mut params = Vec::with_capacity(8);
        params.push(Parameter::ClientId(client_id));
        flow.push_into(&mut params);
        params.extend(message_counter.map(Parameter::MessageCounter));
        params.extend(lease_time.map(Parameter::LeaseTime));
        params.extend(tunnel_types.iter().copied().map(Parameter::TunnelType));
        Message::new(MessageType::ListenRequest, params)
    }

    /// LISTEN_RESPONSE (RFC 3103 9.17.2):
    /// ```text
    /// <Client ID> <Bind ID> <Address (local)> <Ports (local)> <Address (remote)>
    /// <Ports (remote)> <Tunnel Type> <Lease Time> [Address (tunnel endpoint)]
    /// [Message Counter]
    /// ```
    /// (Tunnel Type before Lease Time, as the BNF has it).
    pub fn listen_response(
        client_id: ClientId,
        bind_id: BindId,
        flow: Flow,
        grant: Grant,
    ) -> Result<Message, DecodeError> {
        let mut params = Vec::with_capacity(10);
        params.push(Parameter::ClientId(client_id));
        params.push(Parameter::BindId(bind_id));
        flow.push_into(&mut params);
        params.push(Parameter::TunnelType(grant.tunnel_type));
        params.push(Parameter::LeaseTime(grant.lease_time));
        grant.push_tail(&mut params);
        Message::new(MessageType::ListenResponse, params)
    }

    /// ASSIGN_REQUEST_RSIPSEC (RFC 3104 6.2):
    /// ```text
    /// <Client ID> <Address (local)> <Ports (local)> <Address (remote)> <Ports (remote)> <SPI>
    /// [Message Counter] [Lease Time] [Tunnel Type]
    /// ```
    pub fn assign_request_rsipsec(
        client_id: ClientId,
        flow: Flow,
        spis: Spis,
        options: RequestOptions,
    ) -> Result<Message, DecodeError> {
        let mut params = Vec::with_capacity(9);
        params.push(Parameter::ClientId(client_id));
        flow.push_into(&mut params);
        params.push(Parameter::Spi(spis));
        options.push_into(&mut params);
        Message::new(MessageType::AssignRequestRsipsec, params)
    }

    /// ASSIGN_RESPONSE_RSIPSEC (RFC 3104 6.2):
    /// ```text
    /// <Client ID> <Bind ID> <Address (local)> <Ports (local)> <Address (remote)>
    /// <Ports (remote)> <SPI> <Lease Time> <Tunnel Type> [Address (tunnel endpoint)]
    /// [Message Counter]
    /// ```
    pub fn assign_response_rsipsec(
        client_id: ClientId,
        bind_id: BindId,
        flow: Flow,
        spis: Spis,
        grant: Grant,
    ) -> Result<Message, DecodeError> {
        let mut params = Vec::with_capacity(11);
        params.push(Parameter::ClientId(client_id));
        params.push(Parameter::BindId(bind_id));
        flow.push_into(&mut params);
        params.push(Parameter::Spi(spis));
        params.push(Parameter::LeaseTime(grant.lease_time));
        params.push(Parameter::TunnelType(grant.tunnel_type));
        grant.push_tail(&mut params);
        Message::new(MessageType::AssignResponseRsipsec, params)
    }
}

impl Flow {
    fn push_into(self, params: &mut Vec<Parameter>) {
        params.push(Parameter::Address(self.local_address));
        params.push(Parameter::Ports(self.local_ports));
        params.push(Parameter::Address(self.remote_address));
        params.push(Parameter::Ports(self.remote_ports));
    }
}

impl RequestOptions {
    fn push_into(self, params: &mut Vec<Parameter>) {
        params.extend(self.message_counter.map(Parameter::MessageCounter));
        params.extend(self.lease_time.map(Parameter::LeaseTime));
        params.extend(self.tunnel_type.map(Parameter::TunnelType));
    }
}

impl Grant {
    /// `[Address (tunnel endpoint)] [Message Counter]`.
    fn push_tail(self, params: &mut Vec<Parameter>) {
        params.extend(self.tunnel_endpoint.map(Parameter::Address));
        params.extend(self.message_counter.map(Parameter::MessageCounter));
    }
}

impl DecodeError {
    /// The ERROR_RESPONSE a gateway sends back for this failure (RFC 3103
    /// 9.1): the code, and the message counter, client ID and bind ID salvaged
    /// from the faulty message (9.1.1: they MUST be included when the error
    /// is about that client or binding).
    pub fn error_response(&self) -> Message {
        Message::error_response(
            self.code(),
            self.message_counter,
            self.client_id,
            self.bind_id,
        )
    }
}

// ---- parsing ----------------------------------------------------------------

fn parse_inner(bytes: &[u8]) -> Result<Message, Fault> {
    let (msg_type, params) = parse_frame(bytes, false)?;
    grammar::validate(msg_type, &params)?;
    Ok(Message { msg_type, params })
}

/// The header and every parameter's layout; the BNF is left to the caller.
fn parse_frame(bytes: &[u8], lenient: bool) -> Result<(MessageType, Vec<Parameter>), Fault> {
    let mut r = Reader::new(bytes);
    let header_fault = |have| Fault {
        kind: DecodeErrorKind::TruncatedHeader { have },
        offset: 0,
    };
    let version = r.u8("version").map_err(|_| header_fault(bytes.len()))?;
    // RFC 3103 9: "The current RSIP version number is 1."
    if version != VERSION {
        return Err(Fault {
            kind: DecodeErrorKind::UnsupportedVersion(version),
            offset: 0,
        });
    }
    let code = r
        .u8("message type")
        .map_err(|_| header_fault(bytes.len()))?;
    let declared = r
        .u16("overall length")
        .map_err(|_| header_fault(bytes.len()))?;
    // RFC 3103 9: the overall length counts the whole message, header
    // included; "There may be only one message per packet."
    if usize::from(declared) != bytes.len() {
        let kind = DecodeErrorKind::LengthMismatch {
            declared,
            actual: bytes.len(),
        };
        return Err(Fault { kind, offset: 2 });
    }
    let msg_type = MessageType::from(code);
    if let (MessageType::Unknown(code), false) = (msg_type, lenient) {
        return Err(Fault {
            kind: DecodeErrorKind::IllegalMessage(code),
            offset: 1,
        });
    }
    let mut params = Vec::with_capacity((r.remaining() / PARAM_MIN).min(16));
    while !r.is_empty() {
        match Parameter::read_fault(&mut r) {
            Ok(p) => params.push(p),
            // A framing failure further on outranks a malformed value: the
            // message as a whole is broken (BAD_MESSAGE before BAD_PARAM).
            Err(fault) => return Err(framing_fault(&mut r).unwrap_or(fault)),
        }
    }
    Ok((msg_type, params))
}

/// The first framing failure (truncated header or value) in the rest of `r`.
fn framing_fault(r: &mut Reader<'_>) -> Option<Fault> {
    while !r.is_empty() {
        let start = r.offset();
        let have = r.remaining();
        let (Ok(code), Ok(len)) = (r.u8("type"), r.u16("length")) else {
            let kind = DecodeErrorKind::TruncatedParamHeader { have };
            return Some(Fault {
                kind,
                offset: start,
            });
        };
        if r.take(usize::from(len), "value").is_err() {
            let kind = DecodeErrorKind::TruncatedParamValue {
                param: ParamType::from(code),
                declared: len,
                have: have.saturating_sub(PARAM_MIN),
            };
            return Some(Fault {
                kind,
                offset: start,
            });
        }
    }
    None
}

/// The smallest parameter: a header with an empty value.
const PARAM_MIN: usize = super::param::PARAM_HEADER_LEN;

fn check_built(msg_type: MessageType, params: &[Parameter]) -> Result<(), Fault> {
    if let MessageType::Unknown(code) = msg_type {
        return Err(Fault {
            kind: DecodeErrorKind::IllegalMessage(code),
            offset: 1,
        });
    }
    let mut offset = HEADER_LEN;
    for p in params {
        p.check_reason()
            .map_err(|reason| Fault::bad_param(p.param_type(), reason, offset))?;
        offset += p.buffer_len();
    }
    if offset > usize::from(u16::MAX) {
        return Err(Fault {
            kind: DecodeErrorKind::MessageTooLong { len: offset },
            offset: 2,
        });
    }
    grammar::validate(msg_type, params)
}

/// Salvages what an ERROR_RESPONSE needs from the bytes of a faulty message:
/// the type byte, then the first well-formed Message Counter, Client ID and
/// Bind ID among the parameters, scanning until the parameter framing fails
/// (bytes after that are not trusted). Nothing beyond the type byte for a
/// foreign version, whose layout is unknown.
fn salvage_bytes(fault: Fault, bytes: &[u8]) -> DecodeError {
    let mut err = DecodeError::new(fault.kind, fault.offset);
    let mut r = Reader::new(bytes);
    let (Ok(version), Ok(code)) = (r.u8("version"), r.u8("message type")) else {
        return err;
    };
    err.msg_type = Some(MessageType::from(code));
    let Ok(declared) = r.u16("overall length") else {
        return err;
    };
    if version != VERSION {
        return err;
    }
    let end = usize::from(declared).clamp(HEADER_LEN, bytes.len());
    let mut r = Reader::new(bytes.get(HEADER_LEN..end).unwrap_or(&[]));
    while let (Ok(t), Ok(len)) = (r.u8("type"), r.u16("length")) {
        let Ok(mut v) = r.sub(usize::from(len), "value") else {
            break;
        };
        let Ok(value) = v.u32("value") else { continue };
        if !v.is_empty() {
            continue;
        }
        match t {
            11 => err.message_counter = err.message_counter.or(Some(value)),
            4 => err.client_id = err.client_id.or(Some(ClientId(value))),
            5 => err.bind_id = err.bind_id.or(Some(BindId(value))),
            _ => {}
        }
    }
    err
}

fn salvage_params(fault: Fault, msg_type: MessageType, params: &[Parameter]) -> DecodeError {
    let mut err = DecodeError::new(fault.kind, fault.offset);
    err.msg_type = Some(msg_type);
    for p in params {
        match p {
            Parameter::MessageCounter(c) => err.message_counter = err.message_counter.or(Some(*c)),
            Parameter::ClientId(id) => err.client_id = err.client_id.or(Some(*id)),
            Parameter::BindId(id) => err.bind_id = err.bind_id.or(Some(*id)),
            _ => {}
        }
    }
    err
}

// ---- typed view -------------------------------------------------------------

/// A message with its positional parameters named, borrowed from a [`Message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum View<'a> {
    /// RFC 3103 9.1.
    ErrorResponse {
        /// Error.
        error: ErrorCode,
        /// Client ID, when the error is about a client.
        client_id: Option<ClientId>,
        /// Bind ID, when the error is about a binding.
        bind_id: Option<BindId>,
    },
    /// RFC 3103 9.2.
    RegisterRequest,
    /// RFC 3103 9.3 (methods and tunnel types: [`Message::methods`], [`Message::tunnel_types`]).
    RegisterResponse {
        /// Client ID.
        client_id: ClientId,
        /// Lease Time, seconds.
        lease_time: u32,
        /// Flow Policy.
        flow_policy: FlowPolicy,
    },
    /// RFC 3103 9.4.
    DeregisterRequest {
        /// Client ID.
        client_id: ClientId,
    },
    /// RFC 3103 9.5.
    DeregisterResponse {
        /// Client ID.
        client_id: ClientId,
    },
    /// RFC 3103 9.6.
    AssignRequestRsaIp {
        /// Client ID.
        client_id: ClientId,
        /// Address (local).
        local_address: &'a Address,
        /// Address (remote).
        remote_address: &'a Address,
        /// Ports (remote).
        remote_ports: &'a Ports,
        /// Suggested Lease Time.
        lease_time: Option<u32>,
        /// Requested Tunnel Type.
        tunnel_type: Option<TunnelType>,
    },
    /// RFC 3103 9.7.
    AssignResponseRsaIp {
        /// Client ID.
        client_id: ClientId,
        /// Bind ID.
        bind_id: BindId,
        /// Address (local).
        local_address: &'a Address,
        /// Address (remote).
        remote_address: &'a Address,
        /// Ports (remote).
        remote_ports: &'a Ports,
        /// Lease Time.
        lease_time: u32,
        /// Tunnel Type.
        tunnel_type: TunnelType,
        /// Address (tunnel endpoint).
        tunnel_endpoint: Option<&'a Address>,
    },
    /// RFC 3103 9.8.
    AssignRequestRsapIp {
        /// Client ID.
        client_id: ClientId,
        /// The four flow parameters.
        flow: FlowView<'a>,
        /// Suggested Lease Time.
        lease_time: Option<u32>,
        /// Requested Tunnel Type.
        tunnel_type: Option<TunnelType>,
    },
    /// RFC 3103 9.9.
    AssignResponseRsapIp {
        /// Client ID.
        client_id: ClientId,
        /// Bind ID.
        bind_id: BindId,
        /// The four flow parameters.
        flow: FlowView<'a>,
        /// Lease Time.
        lease_time: u32,
        /// Tunnel Type.
        tunnel_type: TunnelType,
        /// Address (tunnel endpoint).
        tunnel_endpoint: Option<&'a Address>,
    },
    /// RFC 3103 9.10.
    ExtendRequest {
        /// Client ID.
        client_id: ClientId,
        /// Bind ID.
        bind_id: BindId,
        /// Suggested Lease Time.
        lease_time: Option<u32>,
    },
    /// RFC 3103 9.11.
    ExtendResponse {
        /// Client ID.
        client_id: ClientId,
        /// Bind ID.
        bind_id: BindId,
        /// Lease Time.
        lease_time: u32,
    },
    /// RFC 3103 9.12.
    FreeRequest {
        /// Client ID.
        client_id: ClientId,
        /// Bind ID.
        bind_id: BindId,
    },
    /// RFC 3103 9.13.
    FreeResponse {
        /// Client ID.
        client_id: ClientId,
        /// Bind ID.
        bind_id: BindId,
    },
    /// RFC 3103 9.14 (tuples: [`Message::query_tuples`]).
    QueryRequest {
        /// Client ID.
        client_id: ClientId,
    },
    /// RFC 3103 9.15 (tuples: [`Message::query_tuples`]).
    QueryResponse {
        /// Client ID.
        client_id: ClientId,
    },
    /// RFC 3103 9.16 (tunnel types: [`Message::tunnel_types`]).
    ListenRequest {
        /// Client ID.
        client_id: ClientId,
        /// The four flow parameters.
        flow: FlowView<'a>,
        /// Suggested Lease Time.
        lease_time: Option<u32>,
    },
    /// RFC 3103 9.17.
    ListenResponse {
        /// Client ID.
        client_id: ClientId,
        /// Bind ID.
        bind_id: BindId,
        /// The four flow parameters.
        flow: FlowView<'a>,
        /// Tunnel Type.
        tunnel_type: TunnelType,
        /// Lease Time.
        lease_time: u32,
        /// Address (tunnel endpoint).
        tunnel_endpoint: Option<&'a Address>,
    },
    /// RFC 3104 6.2.
    AssignRequestRsipsec {
        /// Client ID.
        client_id: ClientId,
        /// The four flow parameters.
        flow: FlowView<'a>,
        /// SPI.
        spis: &'a Spis,
        /// Suggested Lease Time.
        lease_time: Option<u32>,
        /// Requested Tunnel Type.
        tunnel_type: Option<TunnelType>,
    },
    /// RFC 3104 6.2.
    AssignResponseRsipsec {
        /// Client ID.
        client_id: ClientId,
        /// Bind ID.
        bind_id: BindId,
        /// The four flow parameters.
        flow: FlowView<'a>,
        /// SPI.
        spis: &'a Spis,
        /// Lease Time.
        lease_time: u32,
        /// Tunnel Type.
        tunnel_type: TunnelType,
        /// Address (tunnel endpoint).
        tunnel_endpoint: Option<&'a Address>,
    },
    /// A message that does not match the BNF of a known type. Never returned
    /// for a [`Message`], whose construction validated it; present so that
    /// [`Message::view`] needs no panic path.
    Unknown(MessageType),
}

/// The four positional flow parameters, borrowed (see [`Flow`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FlowView<'a> {
    /// Address (local).
    pub local_address: &'a Address,
    /// Ports (local).
    pub local_ports: &'a Ports,
    /// Address (remote).
    pub remote_address: &'a Address,
    /// Ports (remote).
    pub remote_ports: &'a Ports,
}

impl FlowView<'_> {
    /// An owned copy.
    pub fn to_owned(&self) -> Flow {
        Flow {
            local_address: self.local_address.clone(),
            local_ports: self.local_ports.clone(),
            remote_address: self.remote_address.clone(),
            remote_ports: self.remote_ports.clone(),
        }
    }
}

/// The first Address among the optional parameters: the tunnel endpoint.
fn endpoint(tail: &[Parameter]) -> Option<&Address> {
    tail.iter().find_map(|p| match p {
        Parameter::Address(a) => Some(a),
        _ => None,
    })
}

fn view(m: &Message) -> View<'_> {
    use MessageType as M;
    use Parameter as P;
    let lease = m.lease_time();
    let tunnel = || m.tunnel_types().next();
    let flow = |la, lp, ra, rp| FlowView {
        local_address: la,
        local_ports: lp,
        remote_address: ra,
        remote_ports: rp,
    };
    match (m.msg_type, m.params.as_slice()) {
        (M::ErrorResponse, [P::Error(error), ..]) => View::ErrorResponse {
            error: *error,
            client_id: m.client_id(),
            bind_id: m.bind_id(),
        },
        (M::RegisterRequest, _) => View::RegisterRequest,
        (M::RegisterResponse, [P::ClientId(c), P::LeaseTime(l), P::FlowPolicy(fp), ..]) => {
            View::RegisterResponse {
                client_id: *c,
                lease_time: *l,
                flow_policy: *fp,
            }
        }
        (M::DeregisterRequest, [P::ClientId(c), ..]) => View::DeregisterRequest { client_id: *c },
        (M::DeregisterResponse, [P::ClientId(c), ..]) => View::DeregisterResponse { client_id: *c },
        (
            M::AssignRequestRsaIp,
            [
                P::ClientId(c),
                P::Address(la),
                P::Address(ra),
                P::Ports(rp),
                ..,
            ],
        ) => View::AssignRequestRsaIp {
            client_id: *c,
            local_address: la,
            remote_address: ra,
            remote_ports: rp,
            lease_time: lease,
            tunnel_type: tunnel(),
        },
        (
            M::AssignResponseRsaIp,
            [
                P::ClientId(c),
                P::BindId(b),
                P::Address(la),
                P::Address(ra),
                P::Ports(rp),
                P::LeaseTime(l),
                P::TunnelType(t),
                tail @ ..,
            ],
        ) => View::AssignResponseRsaIp {
            client_id: *c,
            bind_id: *b,
            local_address: la,
            remote_address: ra,
            remote_ports: rp,
            lease_time: *l,
            tunnel_type: *t,
            tunnel_endpoint: endpoint(tail),
        },
        (
            M::AssignRequestRsapIp,
            [
                P::ClientId(c),
                P::Address(la),
                P::Ports(lp),
                P::Address(ra),
                P::Ports(rp),
                ..,
            ],
        ) => View::AssignRequestRsapIp {
            client_id: *c,
            flow: flow(la, lp, ra, rp),
            lease_time: lease,
            tunnel_type: tunnel(),
        },
        (
            M::AssignResponseRsapIp,
            [
                P::ClientId(c),
                P::BindId(b),
                P::Address(la),
                P::Ports(lp),
                P::Address(ra),
                P::Ports(rp),
                P::LeaseTime(l),
                P::TunnelType(t),
                tail @ ..,
            ],
        ) => View::AssignResponseRsapIp {
            client_id: *c,
            bind_id: *b,
            flow: flow(la, lp, ra, rp),
            lease_time: *l,
            tunnel_type: *t,
            tunnel_endpoint: endpoint(tail),
        },
        (M::ExtendRequest, [P::ClientId(c), P::BindId(b), ..]) => View::ExtendRequest {
            client_id: *c,
            bind_id: *b,
            lease_time: lease,
        },
        (M::ExtendResponse, [P::ClientId(c), P::BindId(b), P::LeaseTime(l), ..]) => {
            View::ExtendResponse {
                client_id: *c,
                bind_id: *b,
                lease_time: *l,
            }
        }
        (M::FreeRequest, [P::ClientId(c), P::BindId(b), ..]) => View::FreeRequest {
            client_id: *c,
            bind_id: *b,
        },
        (M::FreeResponse, [P::ClientId(c), P::BindId(b), ..]) => View::FreeResponse {
            client_id: *c,
            bind_id: *b,
        },
        (M::QueryRequest, [P::ClientId(c), ..]) => View::QueryRequest { client_id: *c },
        (M::QueryResponse, [P::ClientId(c), ..]) => View::QueryResponse { client_id: *c },
        (
            M::ListenRequest,
            [
                P::ClientId(c),
                P::Address(la),
                P::Ports(lp),
                P::Address(ra),
                P::Ports(rp),
                ..,
            ],
        ) => View::ListenRequest {
            client_id: *c,
            flow: flow(la, lp, ra, rp),
            lease_time: lease,
        },
        (
            M::ListenResponse,
            [
                P::ClientId(c),
                P::BindId(b),
                P::Address(la),
                P::Ports(lp),
                P::Address(ra),
                P::Ports(rp),
                P::TunnelType(t),
                P::LeaseTime(l),
                tail @ ..,
            ],
        ) => View::ListenResponse {
            client_id: *c,
            bind_id: *b,
            flow: flow(la, lp, ra, rp),
            tunnel_type: *t,
            lease_time: *l,
            tunnel_endpoint: endpoint(tail),
        },
        (
            M::AssignRequestRsipsec,
            [
                P::ClientId(c),
                P::Address(la),
                P::Ports(lp),
                P::Address(ra),
                P::Ports(rp),
                P::Spi(s),
                ..,
            ],
        ) => View::AssignRequestRsipsec {
            client_id: *c,
            flow: flow(la, lp, ra, rp),
            spis: s,
            lease_time: lease,
            tunnel_type: tunnel(),
        },
        (
            M::AssignResponseRsipsec,
            [
                P::ClientId(c),
                P::BindId(b),
                P::Address(la),
                P::Ports(lp),
                P::Address(ra),
                P::Ports(rp),
                P::Spi(s),
                P::LeaseTime(l),
                P::TunnelType(t),
                tail @ ..,
            ],
        ) => View::AssignResponseRsipsec {
            client_id: *c,
            bind_id: *b,
            flow: flow(la, lp, ra, rp),
            spis: s,
            lease_time: *l,
            tunnel_type: *t,
            tunnel_endpoint: endpoint(tail),
        },
        (other, _) => View::Unknown(other),
    }
}
