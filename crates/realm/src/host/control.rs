//! `realm host`'s control commands (`realm ctl`, docs/ctl.md): snapshots of
//! the engine (`status`, `bindings`), answered at once through
//! [`crate::ctl::Handler`], and requests to the gateway (`query`, `assign`,
//! `listen`, `extend`, `free`), handed to the engine's library API and
//! answered when the engine reports the gateway's answer. No protocol logic:
//! the engine builds, sends, retransmits and matches every message.
//!
//! Limits (STYLE 9): the answers waiting for the gateway are bounded by the
//! engine's `max_queued_requests` (a request it refuses is answered at once)
//! plus one extend or free per binding held; a client that gave up (its
//! connection closed, `realm ctl`'s 30 s timeout) is simply not answered.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use realm_rsip::host::{
    Binding, BindingRequest, Host, HostError, HostEvent, ListenRequest, QueryAnswer, RequestError,
    RequestId, RevokeReason,
};
use realm_wire::rsip::{
    Address, BindId, Method, Ports, QueryTuple, RsipMethod, Spis, TunnelKind, TunnelType,
};
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;

use crate::ctl::server::Incoming;
use crate::ctl::{ARG, CommandInfo, CtlError, Handler, Response, expect_args};

const COMMANDS: &[CommandInfo] = &[
    CommandInfo {
        name: "status",
        args: "",
        summary: "registration (client ID, flow policy, methods, tunnels), bindings, counters",
    },
    CommandInfo {
        name: "bindings",
        args: "",
        summary: "bindings held: bind ID, kind, method, public address and ports, remote, lease left",
    },
    CommandInfo {
        name: "query",
        args: "ADDRESS | NETWORK/PREFIX",
        summary: "QUERY_REQUEST (RFC 3103 9.14): is it local? The gateway's tuples",
    },
    CommandInfo {
        name: "assign",
        args: "[method=rsap-ip|rsa-ip|rsipsec] [ports=N | local_ports=P|FIRST-LAST|P,Q] \
               [spis=N] [local_address=IP] [remote_address=IP|FQDN] [remote_port=P] \
               [lease=SECS] [tunnel=ip-ip|gre|l2tp]",
        summary: "ASSIGN_REQUEST_* (RFC 3103 9.6, 9.8; RFC 3104 6.2): the binding granted",
    },
    CommandInfo {
        name: "listen",
        args: "[port=P | local_ports=...] [local_address=IP] [remote_address=IP|FQDN] \
               [remote_port=P] [lease=SECS] [tunnel=ip-ip|gre|l2tp]",
        summary: "LISTEN_REQUEST (RFC 3103 9.16): the listening binding granted",
    },
    CommandInfo {
        name: "extend",
        args: "bind=ID [lease=SECS]",
        summary: "EXTEND_REQUEST (RFC 3103 9.10) now: the lease granted",
    },
    CommandInfo {
        name: "free",
        args: "bind=ID",
        summary: "FREE_REQUEST (RFC 3103 9.12): the binding ended",
    },
];

/// What an answer waiting on a binding is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BindOp {
    Extend,
    Free,
}

/// The control side of the daemon: answers waiting for the gateway.
#[derive(Debug)]
pub(crate) struct Control {
    started: Instant,
    /// `query`, `assign`, `listen`, by the engine's request ID.
    by_request: HashMap<RequestId, oneshot::Sender<Response>>,
    /// `extend` and `free`, by bind ID (several clients may wait on one).
    by_bind: Vec<(BindId, BindOp, oneshot::Sender<Response>)>,
}

impl Control {
    pub(crate) fn new(started: Instant) -> Control {
        Control {
            started,
            by_request: HashMap::new(),
            by_bind: Vec::new(),
        }
    }

    /// Answers waiting for the gateway.
    pub(crate) fn pending(&self) -> usize {
        self.by_request.len() + self.by_bind.len()
    }

    /// One request from the control socket: answered now (snapshots, bad
    /// arguments, requests the engine refuses) or when the gateway answers.
    /// `data_plane`: the data plane's counters for `status` (None without one).
    pub(crate) fn handle(
        &mut self,
        host: &mut Host,
        now: Instant,
        incoming: Incoming,
        data_plane: Option<Value>,
    ) {
        let Incoming {
            command,
            args,
            reply,
        } = incoming;
        match command.as_str() {
            "query" => self.start_request(reply, query(host, now, &args)),
            "assign" => self.start_request(reply, assign(host, now, &args)),
            "listen" => self.start_request(reply, listen(host, now, &args)),
            "extend" => {
                let r = extend(host, now, &args);
                self.start_bind(reply, BindOp::Extend, r);
            }
            "free" => {
                let r = free(host, now, &args);
                self.start_bind(reply, BindOp::Free, r);
            }
            _ => {
                let mut snapshot = Snapshot {
                    host,
                    now,
                    started: self.started,
                    pending: self.pending(),
                    data_plane,
                };
                crate::ctl::answer(
                    &mut snapshot,
                    Incoming {
                        command,
                        args,
                        reply,
                    },
                );
            }
        }
    }

    fn start_request(
        &mut self,
        reply: oneshot::Sender<Response>,
        started: Result<RequestId, CtlError>,
    ) {
        match started {
            Ok(request) => {
                self.by_request.insert(request, reply);
            }
            Err(e) => {
                let _ = reply.send(Response::error(e.to_string()));
            }
        }
    }

    fn start_bind(
        &mut self,
        reply: oneshot::Sender<Response>,
        op: BindOp,
        started: Result<BindId, CtlError>,
    ) {
        match started {
            Ok(bind) => self.by_bind.push((bind, op, reply)),
            Err(e) => {
                let _ = reply.send(Response::error(e.to_string()));
            }
        }
    }

    /// Answers what `event` settles.
    pub(crate) fn on_event(&mut self, event: &HostEvent, now: Instant) {
        match event {
            HostEvent::BindingGranted(b) => {
                self.reply_request(b.request, Response::ok(binding_json(b, now)));
            }
            HostEvent::QueryAnswered { request, answer } => {
                self.reply_request(*request, Response::ok(answer_json(answer)));
            }
            HostEvent::RequestFailed { request, error } => {
                self.reply_request(*request, Response::error(request_error(*error)));
            }
            HostEvent::BindingExtended { bind_id, expires } => {
                let lease = lease_secs(*expires, now);
                self.reply_bind(*bind_id, |op| match op {
                    BindOp::Extend => Some(Response::ok(json!({
                        "bind": bind_id.0,
                        "lease_secs": lease,
                    }))),
                    BindOp::Free => None,
                });
            }
            HostEvent::GatewayError {
                code,
                bind_id: Some(bind_id),
            } => {
                // RFC 3103 9.10.3: a refused extension leaves the binding
                // to its lease.
                self.reply_bind(*bind_id, |op| match op {
                    BindOp::Extend => Some(Response::error(format!(
                        "{} ({}): the gateway refused; the binding runs until its lease ends",
                        code,
                        u16::from(*code)
                    ))),
                    BindOp::Free => None,
                });
            }
            HostEvent::BindingRevoked { binding, reason } => {
                let bind = binding.bind_id;
                self.reply_bind(bind, |op| {
                    Some(match (op, reason) {
                        (BindOp::Free, _) => Response::ok(json!({
                            "freed": bind.0,
                            "reason": revoke_reason(*reason),
                        })),
                        (BindOp::Extend, reason) => Response::error(format!(
                            "binding {} ended: {}",
                            bind.0,
                            revoke_reason(*reason)
                        )),
                    })
                });
            }
            HostEvent::Closed => {
                for (_, reply) in self.by_request.drain() {
                    let _ = reply.send(Response::error("the host shut down"));
                }
                for (_, _, reply) in self.by_bind.drain(..) {
                    let _ = reply.send(Response::error("the host shut down"));
                }
            }
            _ => {}
        }
    }

    fn reply_request(&mut self, request: RequestId, response: Response) {
        if let Some(reply) = self.by_request.remove(&request) {
            // The client may have gone: nothing to do then.
            let _ = reply.send(response);
        }
    }

    /// Sends `answer(op)` to every client waiting on `bind` for which it
    /// gives one.
    fn reply_bind(&mut self, bind: BindId, answer: impl Fn(BindOp) -> Option<Response>) {
        let mut i = 0;
        while let Some((b, op, _)) = self.by_bind.get(i) {
            let response = if *b == bind { answer(*op) } else { None };
            match response {
                Some(r) => {
                    let (_, _, reply) = self.by_bind.swap_remove(i);
                    let _ = reply.send(r);
                }
                None => i += 1,
            }
        }
    }
}

/// The commands answered from a snapshot of the engine.
struct Snapshot<'a> {
    host: &'a Host,
    now: Instant,
    started: Instant,
    pending: usize,
    data_plane: Option<Value>,
}

impl Handler for Snapshot<'_> {
    fn daemon(&self) -> &'static str {
        "host"
    }

    fn commands(&self) -> &'static [CommandInfo] {
        COMMANDS
    }

    fn handle(&mut self, command: &str, args: &Map<String, Value>) -> Result<Value, CtlError> {
        match command {
            "status" => {
                expect_args(args, &[])?;
                Ok(status_json(self))
            }
            "bindings" => {
                expect_args(args, &[])?;
                Ok(Value::Array(
                    self.host
                        .bindings()
                        .map(|b| binding_json(b, self.now))
                        .collect(),
                ))
            }
            other => Err(CtlError::UnknownCommand(other.to_owned())),
        }
    }
}

fn status_json(s: &Snapshot<'_>) -> Value {
    let host = s.host;
    let config = host.config();
    let stats = host.stats();
    let registration = host.registration().map(|r| {
        json!({
            "client": r.client_id.0,
            "flow_policy": {
                "local": r.flow_policy.local.to_string(),
                "remote": r.flow_policy.remote.to_string(),
            },
            "methods": r.methods.iter().map(|m| method_name(*m)).collect::<Vec<_>>(),
            "tunnel_types": r.tunnel_types.iter().map(|t| tunnel_name(*t)).collect::<Vec<_>>(),
            "lease_secs": lease_secs(r.expires, s.now),
        })
    });
    json!({
        "daemon": "host",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": s.now.saturating_duration_since(s.started).as_secs(),
        "gateway": config.gateway.to_string(),
        "transport": config.transport,
        "registration": registration,
        "bindings": host.bindings().count(),
        "queued_requests": host.queued_requests(),
        "pending_answers": s.pending,
        "data_plane": s.data_plane,
        "counters": {
            "malformed": stats.malformed,
            "ignored": stats.ignored,
            "retransmissions": stats.retransmissions,
            "resyncs": stats.resyncs,
            "unauthenticated": stats.unauthenticated,
        },
    })
}

// ---- requests ---------------------------------------------------------------

fn engine_error(e: HostError) -> CtlError {
    CtlError::Failed(e.to_string())
}

/// `query 10.20.60.7` (RFC 3103 9.14 indicator 1) or `query 10.20.60.0/24`
/// (indicator 2, the prefix as a netmask).
fn query(host: &mut Host, now: Instant, args: &Map<String, Value>) -> Result<RequestId, CtlError> {
    expect_args(args, &["address", ARG])?;
    let text = args
        .get("address")
        .or_else(|| args.get(ARG))
        .and_then(Value::as_str)
        .ok_or_else(|| CtlError::BadArgs("missing address=IP or IP/PREFIX".into()))?;
    let bad = || CtlError::BadArgs(format!("{text:?} is not IP or IPv4/PREFIX"));
    let tuple = match text.split_once('/') {
        None => QueryTuple::address(ip_param(text.parse().map_err(|_| bad())?)),
        Some((net, len)) => {
            let net: Ipv4Addr = net.parse().map_err(|_| bad())?;
            let len: u32 = len.parse().map_err(|_| bad())?;
            if len > 32 {
                return Err(bad());
            }
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            QueryTuple::network(
                Address::Ipv4(net),
                Address::Ipv4Netmask(Ipv4Addr::from(mask)),
            )
        }
    };
    host.query_tuples(now, vec![tuple]).map_err(engine_error)
}

fn assign(host: &mut Host, now: Instant, args: &Map<String, Value>) -> Result<RequestId, CtlError> {
    expect_args(
        args,
        &[
            "method",
            "ports",
            "local_ports",
            "spis",
            "local_address",
            "remote_address",
            "remote_port",
            "remote_ports",
            "lease",
            "tunnel",
        ],
    )?;
    let name = opt_str(args, "method")?.unwrap_or("rsap-ip");
    let method = Method::from_name(name)
        .map(RsipMethod::from)
        .ok_or_else(|| CtlError::BadArgs(format!("method {name:?}: rsap-ip, rsa-ip or rsipsec")))?;
    let local_ports = local_ports(args, method == RsipMethod::RsapIp)?;
    let mut request = match method {
        RsipMethod::RsaIp => {
            if local_ports.is_some() || args.contains_key("spis") {
                return Err(CtlError::BadArgs(
                    "rsa-ip leases a whole address: no ports or spis".into(),
                ));
            }
            BindingRequest::address()
        }
        RsipMethod::Rsipsec => {
            let count = opt_u64(args, "spis")?.unwrap_or(1);
            let count = u16::try_from(count)
                .ok()
                .filter(|c| *c > 0)
                .ok_or_else(|| CtlError::BadArgs("spis must be 1..=65535".into()))?;
            BindingRequest::spis(Spis::DontCare { count })
                .with_ipsec_ports(local_ports.unwrap_or(Ports::DontNeed))
        }
        _ => {
            if args.contains_key("spis") {
                return Err(CtlError::BadArgs("spis is for rsipsec".into()));
            }
            BindingRequest::specific_ports(local_ports.unwrap_or(Ports::DONT_CARE_ONE))
        }
    };
    if let Some(a) = opt_str(args, "local_address")? {
        request = request.with_local_address(ip_param(parse_ip(a)?));
    }
    let (remote_address, remote_ports) = remote(args)?;
    request = request.with_remote(remote_address, remote_ports);
    if let Some(lease) = lease(args)? {
        request = request.with_lease(lease);
    }
    if let Some(t) = tunnel(args)? {
        request = request.with_tunnel(t);
    }
    host.request(now, request).map_err(engine_error)
}

fn listen(host: &mut Host, now: Instant, args: &Map<String, Value>) -> Result<RequestId, CtlError> {
    expect_args(
        args,
        &[
            "port",
            "local_ports",
            "local_address",
            "remote_address",
            "remote_port",
            "remote_ports",
            "lease",
            "tunnel",
        ],
    )?;
    let local_ports = match (opt_u64(args, "port")?, local_ports(args, false)?) {
        (Some(_), Some(_)) => {
            return Err(CtlError::BadArgs(
                "give port or local_ports, not both".into(),
            ));
        }
        (Some(p), None) => Ports::single(port_number(p)?),
        (None, Some(p)) => p,
        (None, None) => Ports::DONT_CARE_ONE,
    };
    let local_address = match opt_str(args, "local_address")? {
        Some(a) => ip_param(parse_ip(a)?),
        None => Address::DONT_CARE_V4,
    };
    let (remote_address, remote_ports) = remote(args)?;
    let request = ListenRequest {
        local_address,
        local_ports,
        remote_address,
        remote_ports,
        lease_time: lease(args)?,
        tunnel_types: tunnel(args)?.into_iter().collect(),
    };
    host.listen(now, request).map_err(engine_error)
}

fn extend(host: &mut Host, now: Instant, args: &Map<String, Value>) -> Result<BindId, CtlError> {
    expect_args(args, &["bind", "lease", ARG])?;
    let bind = bind_arg(args)?;
    host.extend(now, bind, lease(args)?).map_err(engine_error)?;
    Ok(bind)
}

fn free(host: &mut Host, now: Instant, args: &Map<String, Value>) -> Result<BindId, CtlError> {
    expect_args(args, &["bind", ARG])?;
    let bind = bind_arg(args)?;
    host.free(now, bind).map_err(engine_error)?;
    Ok(bind)
}

// ---- arguments --------------------------------------------------------------

fn opt_str<'a>(args: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, CtlError> {
    match args.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(CtlError::BadArgs(format!("{key} must be a string"))),
    }
}

fn opt_u64(args: &Map<String, Value>, key: &str) -> Result<Option<u64>, CtlError> {
    match args.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| CtlError::BadArgs(format!("{key} must be a number"))),
    }
}

fn bind_arg(args: &Map<String, Value>) -> Result<BindId, CtlError> {
    let v = args
        .get("bind")
        .or_else(|| args.get(ARG))
        .ok_or_else(|| CtlError::BadArgs("missing bind=ID".into()))?;
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .map(BindId)
        .ok_or_else(|| CtlError::BadArgs("bind must be a 32-bit bind ID".into()))
}

fn lease(args: &Map<String, Value>) -> Result<Option<u32>, CtlError> {
    opt_u64(args, "lease")?
        .map(|l| u32::try_from(l).map_err(|_| CtlError::BadArgs("lease must fit 32 bits".into())))
        .transpose()
}

fn port_number(p: u64) -> Result<u16, CtlError> {
    u16::try_from(p)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| CtlError::BadArgs(format!("port {p} is not 1..=65535")))
}

/// `ports=N` ("don't care", only where `count_allowed`) or `local_ports=`
/// one port, `FIRST-LAST` or `P,Q,...` (RFC 3103 8.2).
fn local_ports(args: &Map<String, Value>, count_allowed: bool) -> Result<Option<Ports>, CtlError> {
    let count = if count_allowed {
        opt_u64(args, "ports")?
    } else {
        None
    };
    match (count, args.get("local_ports")) {
        (Some(_), Some(_)) => Err(CtlError::BadArgs(
            "give ports=N or local_ports=..., not both".into(),
        )),
        (Some(n), None) => u8::try_from(n)
            .ok()
            .filter(|n| *n > 0)
            .map(|count| Some(Ports::DontCare { count }))
            .ok_or_else(|| CtlError::BadArgs("ports must be 1..=255".into())),
        (None, Some(v)) => ports_value(v).map(Some),
        (None, None) => Ok(None),
    }
}

fn ports_value(v: &Value) -> Result<Ports, CtlError> {
    let bad = || CtlError::BadArgs(format!("ports {v}: P, FIRST-LAST or P,Q,..."));
    if let Some(p) = v.as_u64() {
        return Ok(Ports::single(port_number(p)?));
    }
    let text = v.as_str().ok_or_else(bad)?;
    if let Some((first, last)) = text.split_once('-') {
        let first: u16 = first.trim().parse().map_err(|_| bad())?;
        let last: u16 = last.trim().parse().map_err(|_| bad())?;
        let count = last
            .checked_sub(first)
            .and_then(|d| u8::try_from(u32::from(d) + 1).ok())
            .filter(|_| first > 0)
            .ok_or_else(bad)?;
        return Ok(Ports::Range { first, count });
    }
    let list: Vec<u16> = text
        .split(',')
        .map(|p| p.trim().parse::<u16>().ok().filter(|p| *p > 0))
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    match list.as_slice() {
        [one] => Ok(Ports::single(*one)),
        _ if (2..=255).contains(&list.len()) => Ok(Ports::List(list)),
        _ => Err(bad()),
    }
}

/// The remote side: `remote_address` (IP or FQDN, RFC 3103 8.1) and
/// `remote_port` / `remote_ports`.
fn remote(args: &Map<String, Value>) -> Result<(Address, Ports), CtlError> {
    let address = match opt_str(args, "remote_address")? {
        None => Address::DONT_CARE_V4,
        Some(a) => match a.parse::<IpAddr>() {
            Ok(ip) => ip_param(ip),
            Err(_) if !a.is_empty() && a.is_ascii() && a.len() < 256 => Address::Fqdn(a.into()),
            Err(_) => return Err(CtlError::BadArgs(format!("remote_address {a:?}"))),
        },
    };
    let ports = match (args.get("remote_port"), args.get("remote_ports")) {
        (Some(_), Some(_)) => {
            return Err(CtlError::BadArgs(
                "give remote_port or remote_ports, not both".into(),
            ));
        }
        (Some(v), None) | (None, Some(v)) => ports_value(v)?,
        (None, None) => Ports::DONT_CARE_ONE,
    };
    if !matches!(ports, Ports::DontCare { .. }) && address.is_dont_care() {
        return Err(CtlError::BadArgs("remote_port needs remote_address".into()));
    }
    Ok((address, ports))
}

fn tunnel(args: &Map<String, Value>) -> Result<Option<TunnelType>, CtlError> {
    let Some(name) = opt_str(args, "tunnel")? else {
        return Ok(None);
    };
    match TunnelKind::from_name(name) {
        Some(t) => Ok(Some(TunnelType::from(t))),
        None => Err(CtlError::BadArgs(format!(
            "tunnel {name:?}: ip-ip, gre or l2tp"
        ))),
    }
}

fn parse_ip(s: &str) -> Result<IpAddr, CtlError> {
    s.parse()
        .map_err(|_| CtlError::BadArgs(format!("{s:?} is not an IP address")))
}

fn ip_param(ip: IpAddr) -> Address {
    match ip {
        IpAddr::V4(a) => Address::Ipv4(a),
        IpAddr::V6(a) => Address::Ipv6(a),
    }
}

// ---- answers ----------------------------------------------------------------

/// A request the engine reports failed: the gateway's error code by name and
/// number (RFC 3103 Appendix A), or why the engine gave up.
fn request_error(e: RequestError) -> String {
    match e {
        RequestError::Gateway(code) => {
            format!("{} ({}): the gateway refused", code, u16::from(code))
        }
        RequestError::BadResponse => {
            "the gateway's answer was unusable; the host freed what it granted (RFC 3103 9.9.3)"
                .into()
        }
        RequestError::Shutdown => "the host shut down".into(),
    }
}

fn revoke_reason(r: RevokeReason) -> String {
    match r {
        RevokeReason::Freed => "freed".into(),
        RevokeReason::RevokedByGateway => "revoked by the gateway".into(),
        RevokeReason::ExtendRefused(code) => {
            format!("extension refused: {} ({})", code, u16::from(code))
        }
        RevokeReason::Expired => "lease expired".into(),
        RevokeReason::Deregistered => "de-registered".into(),
        RevokeReason::Resync => "resynchronising with the gateway".into(),
    }
}

/// Seconds left until `expires`, to the nearest second (right after a grant
/// or an extension: the lease the gateway gave).
fn lease_secs(expires: Instant, now: Instant) -> u64 {
    let left = expires.saturating_duration_since(now);
    (left.as_millis() as u64 + 500) / 1000
}

fn method_name(m: RsipMethod) -> String {
    Method::try_from(m).map_or_else(|other| other.to_string(), |m| m.name().into())
}

fn tunnel_name(t: TunnelType) -> String {
    TunnelKind::try_from(t).map_or_else(|other| other.to_string(), |t| t.name().into())
}

/// An address as text; null for "don't care".
fn address_json(a: &Address) -> Value {
    match a {
        Address::Ipv4(ip) | Address::Ipv4Netmask(ip) => json!(ip.to_string()),
        Address::Ipv6(ip) => json!(ip.to_string()),
        Address::Fqdn(name) => json!(name),
        Address::DontCare(_) => Value::Null,
    }
}

/// Ports as a list; null for "don't care" and "don't need".
fn ports_json(p: &Ports) -> Value {
    if p.is_dont_care() || *p == Ports::DontNeed {
        Value::Null
    } else {
        json!(p.to_vec())
    }
}

fn binding_json(b: &Binding, now: Instant) -> Value {
    json!({
        "bind": b.bind_id.0,
        "request": b.request.0,
        "kind": if b.listen { "listen" } else { "assign" },
        "method": method_name(b.method),
        "local_address": address_json(&b.local_address),
        "ports": ports_json(&b.local_ports),
        "spis": b.spis.iter().map(|s| s.0).collect::<Vec<_>>(),
        "remote_address": address_json(&b.remote_address),
        "remote_ports": ports_json(&b.remote_ports),
        "tunnel": tunnel_name(b.tunnel_type),
        "tunnel_endpoint": b.tunnel_endpoint.as_ref().map_or(Value::Null, address_json),
        "lease_secs": lease_secs(b.expires, now),
    })
}

fn answer_json(a: &QueryAnswer) -> Value {
    // RFC 3103 9.15: 1 local address, 2 local network, 3 remote address, 4
    // remote network; without a tuple that applies, the host assumes remote
    // (9.15.3).
    let tuples: Vec<Value> = a
        .tuples
        .iter()
        .map(|t| {
            let (kind, local) = match t.indicator.value {
                1 => ("local address", true),
                2 => ("local network", true),
                3 => ("remote address", false),
                4 => ("remote network", false),
                _ => ("unknown", false),
            };
            json!({
                "indicator": t.indicator.value,
                "kind": kind,
                "local": local,
                "address": address_json(&t.address),
                "netmask": t.netmask.as_ref().map_or(Value::Null, address_json),
            })
        })
        .collect();
    let local = tuples.iter().any(|t| t["local"] == true);
    json!({ "local": local, "tuples": tuples })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn ports_forms() {
        assert_eq!(ports_value(&json!(2050)).unwrap(), Ports::single(2050));
        assert_eq!(
            ports_value(&json!("1238-1245")).unwrap(),
            Ports::Range {
                first: 1238,
                count: 8
            }
        );
        assert_eq!(
            ports_value(&json!("80,443")).unwrap(),
            Ports::List(vec![80, 443])
        );
        assert!(ports_value(&json!("9-1")).is_err());
        assert!(ports_value(&json!("1-300")).is_err());
        assert!(ports_value(&json!(0)).is_err());
        assert!(local_ports(&args(json!({"ports": 4, "local_ports": 5})), true).is_err());
        assert_eq!(
            local_ports(&args(json!({"ports": 4})), true).unwrap(),
            Some(Ports::DontCare { count: 4 })
        );
    }

    #[test]
    fn remote_takes_ip_or_fqdn() {
        let (a, p) = remote(&args(json!({"remote_address": "www.bar.com"}))).unwrap();
        assert_eq!(a, Address::Fqdn("www.bar.com".into()));
        assert_eq!(p, Ports::DONT_CARE_ONE);
        let (a, p) = remote(&args(
            json!({"remote_address": "38.196.73.6", "remote_port": 21}),
        ))
        .unwrap();
        assert_eq!(a, Address::Ipv4(Ipv4Addr::new(38, 196, 73, 6)));
        assert_eq!(p, Ports::single(21));
        assert!(remote(&args(json!({"remote_port": 21}))).is_err());
    }

    #[test]
    fn errors_name_the_code() {
        let e = request_error(RequestError::Gateway(
            realm_wire::rsip::ErrorCode::RemoteAddrUnallowed,
        ));
        assert!(e.starts_with("REMOTE_ADDR_UNALLOWED (314)"), "{e}");
    }
}
