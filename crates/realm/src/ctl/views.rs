//! `realm ctl`'s text views: each daemon's answers (their JSON, unchanged
//! for `--json`, `docs/ctl.md`) printed for people with [`super::text`].
//! A command without a view here prints through the generic renderer.
//! Every view is a pure function of the answer and `now` (milliseconds
//! since the UNIX epoch, what the gateway's lease times count in).

use serde_json::{Map, Value};

use super::text::{
    ABSENT, Table, fields, hex32, nonzero, ports, relative_ms, rsip_name, runs, seconds, yes_no,
};

/// The view of `command`'s answer `v` from daemon `daemon`; `None` when
/// there is no view for it (or the answer has an unexpected shape).
pub(crate) fn render(daemon: &str, command: &str, v: &Value, now: u64) -> Option<String> {
    match (daemon, command) {
        (_, "help") => Some(help(v)),
        ("gateway", "status") => Some(gateway_status(v, now)),
        ("gateway", "hosts") => v.as_array().map(|h| gateway_hosts(h, now)),
        ("gateway", "bindings") => v.as_array().map(|b| gateway_bindings(b, now)),
        ("gateway", "dataplane") => Some(gateway_dataplane(v)),
        ("host", "status") => Some(host_status(v)),
        ("host", "bindings") => v.as_array().map(|b| host_bindings(b)),
        ("host", "assign" | "listen") => Some(host_bindings(std::slice::from_ref(v))),
        ("host", "query") => Some(host_query(v)),
        ("peer", "status") => Some(peer_status(v)),
        ("peer", "sas") => v.as_array().map(|s| peer_sas(s)),
        ("peer", "policies") => v.as_array().map(|p| peer_policies(p)),
        (_, "ike") => v.as_array().map(|sas| ike_sas(sas)),
        _ => None,
    }
}

// ---- reading the JSON -----------------------------------------------------------

/// A scalar as text: strings bare, null as `-`.
fn s(v: &Value) -> String {
    match v {
        Value::Null => ABSENT.to_owned(),
        Value::String(x) => x.clone(),
        Value::Bool(b) => yes_no(*b),
        other => other.to_string(),
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// A number of seconds as a span; `-` when absent.
fn span(v: &Value) -> String {
    v.as_u64().map_or_else(|| ABSENT.to_owned(), seconds)
}

/// Seconds left of a lease: `29m58s left`; `-` when absent.
fn left(v: &Value) -> String {
    v.as_u64()
        .map_or_else(|| ABSENT.to_owned(), |l| format!("{} left", seconds(l)))
}

/// A moment (ms since the epoch) relative to `now`; `-` when absent.
fn when(v: &Value, now: u64) -> String {
    v.as_u64()
        .map_or_else(|| ABSENT.to_owned(), |t| relative_ms(t, now))
}

/// A client ID (a number, or already text) in hex.
fn client(v: &Value) -> String {
    v.as_u64().map_or_else(|| s(v), hex32)
}

fn numbers(v: &Value) -> Vec<u64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

/// A `realm-lease` set (`"None"`, `{"Range": {"first", "count"}}`,
/// `{"List": [..]}`; in any case) as its values.
fn lease_set(v: &Value) -> Vec<u64> {
    let Some((kind, body)) = v.as_object().and_then(|m| m.iter().next()) else {
        return Vec::new();
    };
    match kind.to_ascii_lowercase().as_str() {
        "range" => {
            let first = u(&body["first"]);
            (first..first + u(&body["count"])).collect()
        }
        "list" => numbers(body),
        _ => Vec::new(),
    }
}

/// Counters of an object: numbers as they are, maps of counters as their
/// non-zero entries.
fn counter_fields(m: &Map<String, Value>) -> Vec<(&str, String)> {
    m.iter()
        .map(|(k, v)| {
            let text = match v {
                Value::Object(inner) => nonzero(inner.iter().map(|(k, v)| (k.as_str(), u(v)))),
                other => s(other),
            };
            (k.as_str(), text)
        })
        .collect()
}

/// A map of counters (drops by reason) as its non-zero entries.
fn map_counts(v: &Value) -> String {
    nonzero(
        object(v)
            .iter()
            .map(|(k, n)| (k.as_str(), u(n)))
            .collect::<Vec<_>>(),
    )
}

fn object(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// The built-in `help`: the daemon, then its commands as a table.
fn help(v: &Value) -> String {
    let mut out = fields(
        &[("daemon", s(&v["daemon"])), ("protocol", s(&v["protocol"]))],
        0,
    );
    let mut t = Table::new(&["command", "args", "summary"]);
    for c in v["commands"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        t.row(vec![s(&c["command"]), s(&c["args"]), s(&c["summary"])]);
    }
    out.push_str(&t.render(0));
    out
}

// ---- realm gateway ----------------------------------------------------------------

fn gateway_status(v: &Value, now: u64) -> String {
    let pool = &v["pool"];
    let mut out = fields(
        &[
            ("hosts", s(&v["hosts"])),
            ("bindings", s(&v["bindings"])),
            ("udp sessions", s(&v["udp_sessions"])),
            ("next timeout", when(&v["next_timeout"], now)),
        ],
        0,
    );
    let n = |k: &str| u(&pool[k]);
    let addresses = format!(
        "{} ({} leased whole, {} held)",
        n("addresses"),
        n("addresses_leased"),
        n("addresses_held")
    );
    let ports = format!(
        "{} of {} leased, {} held",
        n("ports_leased"),
        n("ports_leasable"),
        n("ports_held")
    );
    let spis = format!("{} leased, {} held", n("spis_leased"), n("spis_held"));
    out.push_str("pool:\n");
    out.push_str(&fields(
        &[("addresses", addresses), ("ports", ports), ("spis", spis)],
        2,
    ));
    out.push_str("counters:\n");
    let mut counters = object(&v["counters"]);
    // Error codes by their Appendix A names.
    if let Some(Value::Object(errors)) = counters.get_mut("errors") {
        let named: Map<String, Value> = errors
            .iter()
            .map(|(code, n)| {
                let name = code.parse::<u16>().map_or_else(
                    |_| code.clone(),
                    |c| format!("{}({c})", realm_wire::rsip::ErrorCode::from(c)),
                );
                (name, n.clone())
            })
            .collect();
        *errors = named;
    }
    out.push_str(&fields(&counter_fields(&counters), 2));
    out
}

fn gateway_hosts(hosts: &[Value], now: u64) -> String {
    let mut t = Table::new(&[
        "client",
        "host",
        "transport",
        "connected",
        "registered",
        "expires",
        "ports",
        "addresses",
        "spis",
        "bindings",
    ]);
    for h in hosts {
        let r = &h["record"];
        let transport = s(&r["transport"]);
        let host = match r["udp_port"].as_u64() {
            Some(p) => format!("{}:{p}", s(&r["private_address"])),
            None => s(&r["private_address"]),
        };
        let usage = &h["usage"];
        t.row(vec![
            client(&r["client"]),
            host,
            transport.clone(),
            if transport == "tcp" {
                s(&h["connected"])
            } else {
                ABSENT.to_owned()
            },
            when(&r["registered_at"], now),
            when(&r["expires_at"], now),
            s(&usage["ports"]),
            s(&usage["addresses"]),
            s(&usage["spis"]),
            runs(&numbers(&h["bindings"]), |b| b.to_string()),
        ]);
    }
    table_or_none(&t)
}

/// The remote side of a gateway binding: `any`, an address, or an address
/// and ports.
fn gateway_remote(r: &Value) -> String {
    let address = match &r["address"] {
        Value::String(a) if a == "any" => None,
        Value::Object(m) => m.values().next().map(s),
        other => Some(s(other)),
    };
    let ports = match &r["ports"] {
        Value::Object(m) => m.iter().next().and_then(|(k, b)| match k.as_str() {
            "range" => {
                let first = u(&b["first"]);
                Some(ports(&(first..first + u(&b["count"])).collect::<Vec<_>>()))
            }
            "list" => Some(ports(&numbers(b))),
            _ => None,
        }),
        _ => None,
    };
    match (address, ports) {
        (None, None) => "any".to_owned(),
        (Some(a), None) => a,
        (None, Some(p)) => format!("any:{p}"),
        (Some(a), Some(p)) => format!("{a}:{p}"),
    }
}

fn gateway_bindings(bindings: &[Value], now: u64) -> String {
    let mut t = Table::new(&[
        "bind", "client", "host", "method", "kind", "public", "ports", "spis", "remote", "tunnel",
        "lease", "expires",
    ]);
    for b in bindings {
        t.row(vec![
            s(&b["bind"]),
            client(&b["client"]),
            s(&b["private_address"]),
            rsip_name(&s(&b["method"])),
            s(&b["kind"]),
            s(&b["public_address"]),
            ports(&lease_set(&b["ports"])),
            runs(&lease_set(&b["spis"]), hex32),
            gateway_remote(&b["remote"]),
            rsip_name(&s(&b["tunnel"])),
            span(&b["lease_secs"]),
            when(&b["expires_at"], now),
        ]);
    }
    table_or_none(&t)
}

fn gateway_dataplane(v: &Value) -> String {
    let c = &v["counters"];
    let mut t = Table::new(&[
        "direction",
        "packets",
        "bytes",
        "passed",
        "to gateway",
        "buffered",
        "dropped",
    ]);
    for dir in ["outbound", "inbound"] {
        let d = &c[dir];
        t.row(vec![
            dir.to_owned(),
            s(&d["packets"]),
            s(&d["bytes"]),
            s(&d["passed"]),
            s(&d["local"]),
            s(&d["buffered"]),
            map_counts(&d["drops"]),
        ]);
    }
    let mut out = fields(&[("bindings", s(&v["bindings"]))], 0);
    out.push_str(&t.render(0));
    out.push_str("reassembly:\n");
    out.push_str(&fields(&counter_fields(&object(&c["reassembly"])), 2));
    out.push_str("violations:\n");
    out.push_str(&fields(&counter_fields(&object(&c["violations"])), 2));
    let rest: Map<String, Value> = object(v)
        .into_iter()
        .filter(|(k, _)| k != "counters" && k != "bindings")
        .collect();
    out.push_str(&fields(&counter_fields(&rest), 0));
    out
}

// ---- realm host -------------------------------------------------------------------

/// What a host's or peer's `status` starts with: the daemon, its version,
/// its uptime; then `more`.
fn daemon_fields(v: &Value, more: Vec<(&'static str, String)>) -> String {
    let mut all = vec![
        ("daemon", s(&v["daemon"])),
        ("version", s(&v["version"])),
        ("uptime", span(&v["uptime_seconds"])),
    ];
    all.extend(more);
    fields(&all, 0)
}

fn host_status(v: &Value) -> String {
    let mut out = daemon_fields(
        v,
        vec![
            ("gateway", s(&v["gateway"])),
            ("transport", s(&v["transport"])),
            ("bindings", s(&v["bindings"])),
            ("queued requests", s(&v["queued_requests"])),
            ("pending answers", s(&v["pending_answers"])),
        ],
    );
    let r = &v["registration"];
    if r.is_null() {
        out.push_str(&fields(&[("registration", ABSENT.to_owned())], 0));
    } else {
        let names = |v: &Value| {
            v.as_array()
                .map(|a| a.iter().map(|m| rsip_name(&s(m))).collect::<Vec<_>>())
                .filter(|a| !a.is_empty())
                .map_or_else(|| ABSENT.to_owned(), |a| a.join(", "))
        };
        out.push_str("registration:\n");
        out.push_str(&fields(
            &[
                ("client", client(&r["client"])),
                (
                    "flow policy",
                    format!(
                        "local {}, remote {}",
                        s(&r["flow_policy"]["local"]).to_ascii_lowercase(),
                        s(&r["flow_policy"]["remote"]).to_ascii_lowercase()
                    ),
                ),
                ("methods", names(&r["methods"])),
                ("tunnel types", names(&r["tunnel_types"])),
                ("lease", left(&r["lease_secs"])),
            ],
            2,
        ));
    }
    let d = &v["data_plane"];
    if d.is_null() {
        out.push_str(&fields(&[("data plane", ABSENT.to_owned())], 0));
    } else {
        let offload = &d["kernel_offload"];
        out.push_str("data plane:\n");
        out.push_str(&fields(
            &[
                ("tun", s(&d["tun"])),
                ("underlay", s(&d["underlay"])),
                ("tunnelled out", s(&d["outbound"])),
                ("received", s(&d["inbound"])),
                ("dropped", map_counts(&d["drops"])),
                (
                    "kernel offload",
                    if offload.is_null() {
                        "off".to_owned()
                    } else {
                        format!(
                            "{} sources, {} superpackets, {} bytes",
                            u(&offload["sources"]),
                            u(&offload["superpackets"]),
                            u(&offload["bytes"])
                        )
                    },
                ),
            ],
            2,
        ));
    }
    out.push_str("counters:\n");
    out.push_str(&fields(&counter_fields(&object(&v["counters"])), 2));
    out
}

/// An address the host engine prints (`null`: "don't care").
fn any(v: &Value) -> String {
    if v.is_null() { "any".to_owned() } else { s(v) }
}

fn host_bindings(bindings: &[Value]) -> String {
    let mut t = Table::new(&[
        "bind", "request", "kind", "method", "local", "ports", "spis", "remote", "tunnel",
        "endpoint", "lease",
    ]);
    for b in bindings {
        let remote_ports = numbers(&b["remote_ports"]);
        let remote = if remote_ports.is_empty() {
            any(&b["remote_address"])
        } else {
            format!("{}:{}", any(&b["remote_address"]), ports(&remote_ports))
        };
        t.row(vec![
            s(&b["bind"]),
            s(&b["request"]),
            s(&b["kind"]),
            rsip_name(&s(&b["method"])),
            s(&b["local_address"]),
            ports(&numbers(&b["ports"])),
            runs(&numbers(&b["spis"]), hex32),
            remote,
            rsip_name(&s(&b["tunnel"])),
            s(&b["tunnel_endpoint"]),
            left(&b["lease_secs"]),
        ]);
    }
    table_or_none(&t)
}

fn host_query(v: &Value) -> String {
    let mut out = fields(&[("local", s(&v["local"]))], 0);
    let mut t = Table::new(&["indicator", "kind", "address", "netmask"]);
    for tuple in v["tuples"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        t.row(vec![
            s(&tuple["indicator"]),
            s(&tuple["kind"]),
            s(&tuple["address"]),
            s(&tuple["netmask"]),
        ]);
    }
    if !t.is_empty() {
        out.push_str(&t.render(0));
    }
    out
}

// ---- realm peer -------------------------------------------------------------------

fn peer_status(v: &Value) -> String {
    let mut out = daemon_fields(v, vec![("sas", s(&v["sas"]))]);
    let config = object(&v["config"]);
    out.push_str("config:\n");
    let config: Vec<(&str, String)> = config
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::Array(a) => a.iter().map(s).collect::<Vec<_>>().join(", "),
                other => s(other),
            };
            (k.as_str(), text)
        })
        .collect();
    out.push_str(&fields(&config, 2));
    out.push_str("counters:\n");
    out.push_str(&fields(&counter_fields(&object(&v["counters"])), 2));
    out.push_str(&fields(
        &[("engine drops", map_counts(&v["engine_drops"]))],
        0,
    ));
    out
}

/// A lifetime limit: `-` when unlimited.
fn limit(l: &Value, key: &str) -> Vec<String> {
    let mut parts = Vec::new();
    if let Some(secs) = l[format!("{key}_seconds")].as_u64() {
        parts.push(seconds(secs));
    }
    if let Some(b) = l[format!("{key}_bytes")].as_u64() {
        parts.push(format!("{b} bytes"));
    }
    if let Some(p) = l[format!("{key}_packets")].as_u64() {
        parts.push(format!("{p} packets"));
    }
    parts
}

fn peer_sas(sas: &[Value]) -> String {
    let mut t = Table::new(&[
        "spi",
        "direction",
        "protocol",
        "mode",
        "encryption",
        "integrity",
        "src",
        "dst",
        "udp encap",
        "packets",
        "bytes",
        "sequence",
        "dropped",
        "age",
        "soft",
        "hard",
    ]);
    for sa in sas {
        let l = &sa["lifetime"];
        let lim = |key| {
            let parts = limit(l, key);
            if parts.is_empty() {
                ABSENT.to_owned()
            } else {
                parts.join(", ")
            }
        };
        t.row(vec![
            s(&sa["spi"]),
            s(&sa["direction"]),
            s(&sa["protocol"]),
            s(&sa["mode"]),
            s(&sa["encryption"]),
            s(&sa["integrity"]),
            s(&sa["src"]),
            s(&sa["dst"]),
            s(&sa["udp_encap"]),
            s(&sa["packets"]),
            s(&sa["bytes"]),
            s(&sa["sequence"]),
            map_counts(&sa["drops"]),
            span(&l["age_seconds"]),
            lim("soft"),
            lim("hard"),
        ]);
    }
    table_or_none(&t)
}

fn peer_policies(policies: &[Value]) -> String {
    let mut t = Table::new(&[
        "direction",
        "priority",
        "src",
        "dst",
        "protocol",
        "src port",
        "dst port",
        "action",
        "sas",
    ]);
    for p in policies {
        let sel = &p["selector"];
        let sas: Vec<String> = p["sas"]
            .as_array()
            .map(|a| a.iter().map(s).collect())
            .unwrap_or_default();
        t.row(vec![
            s(&p["direction"]),
            s(&p["priority"]),
            s(&sel["src"]),
            s(&sel["dst"]),
            s(&sel["protocol"]),
            s(&sel["src_port"]),
            s(&sel["dst_port"]),
            s(&p["action"]),
            if sas.is_empty() {
                ABSENT.to_owned()
            } else {
                sas.join(",")
            },
        ]);
    }
    table_or_none(&t)
}

// ---- the IKE runtime (realm peer, realm host) ----------------------------------------

/// `realm ctl ike`, shaped like `swanctl --list-sas`: one block per ISAKMP SA, a line per
/// child SA pair.
fn ike_sas(sas: &[Value]) -> String {
    if sas.is_empty() {
        return "(none)\n".to_owned();
    }
    let mut out = String::new();
    for sa in sas {
        let role = if sa["initiator"] == Value::Bool(true) {
            "initiator"
        } else {
            "responder"
        };
        out += &format!(
            "{}: #{}, {}, IKEv1, {role}, {} ... {} [{}]\n",
            s(&sa["connection"]),
            s(&sa["id"]),
            s(&sa["state"]),
            s(&sa["local"]),
            s(&sa["remote"]),
            s(&sa["peer_id"]),
        );
        out += &format!(
            "  cookies {}_i {}_r, {}, up {}, expires in {}\n",
            s(&sa["initiator_cookie"]),
            s(&sa["responder_cookie"]),
            s(&sa["proposal"]),
            span(&sa["age_seconds"]),
            span(&sa["expires_in_seconds"]),
        );
        for c in sa["children"].as_array().into_iter().flatten() {
            let rekey = match c["rekey_in_seconds"].as_u64() {
                Some(r) => format!(", rekey in {}", seconds(r)),
                None => String::new(),
            };
            out += &format!(
                "  {}: {}_i {}_o, {}, {} === {}, up {}{rekey}, expires in {}\n",
                s(&c["name"]),
                s(&c["spi_in"]),
                s(&c["spi_out"]),
                s(&c["description"]),
                s(&c["local_ts"]),
                s(&c["remote_ts"]),
                span(&c["age_seconds"]),
                span(&c["expires_in_seconds"]),
            );
        }
    }
    out
}

fn table_or_none(t: &Table) -> String {
    if t.is_empty() {
        "(none)\n".to_owned()
    } else {
        t.render(0)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn ike_view_reads_like_swanctl() {
        let sa = json!({"id": 1, "connection": "ss", "state": "ESTABLISHED", "initiator": true,
            "local": "192.0.2.1:4500", "remote": "192.0.2.2:4500",
            "initiator_cookie": "0011223344556677", "responder_cookie": "8899aabbccddeeff",
            "proposal": "aes128-sha256-modp2048", "peer_id": "strongswan.example",
            "age_seconds": 20, "expires_in_seconds": 14380,
            "children": [{"name": "net", "spi_in": "17ea4159", "spi_out": "c0d3f369",
                "description": "aes128gcm16 tunnel udp-encap", "local_ts": "203.0.113.0/24",
                "remote_ts": "198.51.100.0/24", "age_seconds": 20, "rekey_in_seconds": 3580,
                "expires_in_seconds": 3940}]});
        let text = super::render("peer", "ike", &json!([sa]), 0).unwrap();
        assert_eq!(
            text,
            "ss: #1, ESTABLISHED, IKEv1, initiator, 192.0.2.1:4500 ... 192.0.2.2:4500 [strongswan.example]\n\
             \x20 cookies 0011223344556677_i 8899aabbccddeeff_r, aes128-sha256-modp2048, up 20s, expires in 3h59m\n\
             \x20 net: 17ea4159_i c0d3f369_o, aes128gcm16 tunnel udp-encap, 203.0.113.0/24 === 198.51.100.0/24, up 20s, rekey in 59m40s, expires in 1h05m\n"
        );
        assert_eq!(
            super::render("peer", "ike", &json!([]), 0).unwrap(),
            "(none)\n"
        );
    }

    use super::*;

    /// 2023-11-14T22:13:20Z, in ms.
    const NOW: u64 = 1_700_000_000_000;

    fn view(daemon: &str, command: &str, v: &Value) -> String {
        render(daemon, command, v, NOW).unwrap_or_else(|| panic!("no view for {command}"))
    }

    #[test]
    fn gateway_bindings_read_like_the_lab() {
        let v = json!([
            {"bind": 1, "client": 0x5eed_1234u32, "private_address": "10.0.0.2",
             "method": "RsapIp", "kind": "assign", "public_address": "192.0.2.1",
             "ports": {"Range": {"first": 20000, "count": 8}}, "spis": "None",
             "remote": {"address": "any", "ports": {"any": {"count": 1}}},
             "tunnel": "ip-ip", "lease_secs": 600, "expires_at": NOW + 598_000},
            {"bind": 2, "client": 7, "private_address": "10.0.0.3",
             "method": "Rsipsec", "kind": "assign", "public_address": "192.0.2.1",
             "ports": "None", "spis": {"List": [256, 257]},
             "remote": {"address": {"ipv4": "198.51.100.7"},
                        "ports": {"list": [80, 443]}},
             "tunnel": "gre", "lease_secs": 3600, "expires_at": NOW - 5_000},
        ]);
        assert_eq!(
            view("gateway", "bindings", &v),
            "\
bind  client      host      method   kind    public     ports        spis                   remote               tunnel  lease   expires
1     0x5eed1234  10.0.0.2  rsap-ip  assign  192.0.2.1  20000-20007  -                      any                  ip-ip   10m00s  in 9m58s
2     0x00000007  10.0.0.3  rsipsec  assign  192.0.2.1  -            0x00000100-0x00000101  198.51.100.7:80,443  gre     1h00m   5s ago
"
        );
        assert_eq!(view("gateway", "bindings", &json!([])), "(none)\n");
    }

    #[test]
    fn gateway_hosts_and_status() {
        let hosts = json!([{
            "record": {"client": 0x10, "private_address": "10.0.0.2", "transport": "tcp",
                       "udp_port": null, "registered_at": NOW - 180_000,
                       "expires_at": NOW + 3_420_000, "auth_counter": 0},
            "connected": true,
            "usage": {"ports": 8, "addresses": 0, "spis": 0, "bindings": 1},
            "bindings": [1],
        }, {
            "record": {"client": 0x11, "private_address": "10.0.0.3", "transport": "udp",
                       "udp_port": 4555, "registered_at": NOW, "expires_at": NOW + 60_000,
                       "auth_counter": 0},
            "connected": false,
            "usage": {"ports": 0, "addresses": 0, "spis": 0, "bindings": 0},
            "bindings": [],
        }]);
        assert_eq!(
            view("gateway", "hosts", &hosts),
            "\
client      host           transport  connected  registered  expires    ports  addresses  spis  bindings
0x00000010  10.0.0.2       tcp        yes        3m00s ago   in 57m00s  8      0          0     1
0x00000011  10.0.0.3:4555  udp        -          now         in 1m00s   0      0          0     -
"
        );
        let status = json!({
            "hosts": 2, "bindings": 1, "udp_sessions": 1,
            "pool": {"hosts": 2, "bindings": 1, "addresses": 1, "addresses_leased": 0,
                     "addresses_held": 0, "ports_leasable": 48127, "ports_leased": 8,
                     "ports_held": 0, "spis_leased": 0, "spis_held": 0},
            "counters": {"messages": 5, "errors": {"207": 1}, "grants": {"rsap-ip": 1},
                         "frees": {}},
            "next_timeout": NOW + 60_000,
        });
        assert_eq!(
            view("gateway", "status", &status),
            "\
hosts:        2
bindings:     1
udp sessions: 1
next timeout: in 1m00s
pool:
  addresses: 1 (0 leased whole, 0 held)
  ports:     8 of 48127 leased, 0 held
  spis:      0 leased, 0 held
counters:
  messages: 5
  errors:   BAD_MESSAGE(207)=1
  grants:   rsap-ip=1
  frees:    none
"
        );
    }

    #[test]
    fn gateway_dataplane_table() {
        let dir = |p: u64, drop: u64| {
            json!({"packets": p, "bytes": p * 100, "passed": p - drop, "local": 0,
                   "buffered": 0, "drops": {"malformed": 0, "no_binding": drop}})
        };
        let v = json!({
            "bindings": 1,
            "counters": {"outbound": dir(10, 0), "inbound": dir(4, 1),
                         "reassembly": {"fragments": 0}, "violations": {"reported": 0}},
            "learned_cookies": 0, "send_errors": 2,
        });
        assert_eq!(
            view("gateway", "dataplane", &v),
            "\
bindings: 1
direction  packets  bytes  passed  to gateway  buffered  dropped
outbound   10       1000   10      0           0         none
inbound    4        400    3       0           0         no_binding=1
reassembly:
  fragments: 0
violations:
  reported: 0
learned_cookies: 0
send_errors:     2
"
        );
    }

    #[test]
    fn host_views() {
        let b = json!({"bind": 2, "request": 5, "kind": "assign", "method": "rsap-ip",
            "local_address": "149.112.240.156",
            "ports": [1238, 1239, 1240, 1241, 1242, 1243, 1244, 1245],
            "spis": [], "remote_address": null, "remote_ports": null,
            "tunnel": "ip-ip", "tunnel_endpoint": null, "lease_secs": 1798});
        let table = "\
bind  request  kind    method   local            ports      spis  remote  tunnel  endpoint  lease
2     5        assign  rsap-ip  149.112.240.156  1238-1245  -     any     ip-ip   -         29m58s left
";
        assert_eq!(view("host", "bindings", &json!([b])), table);
        assert_eq!(view("host", "assign", &b), table);
        let s = json!({"daemon": "host", "version": "0.1.0", "uptime_seconds": 192,
            "gateway": "10.0.0.1:4555", "transport": "tcp",
            "registration": {"client": 0x5eed_1234u32,
                "flow_policy": {"local": "macro", "remote": "none"},
                "methods": ["rsap-ip", "rsa-ip"], "tunnel_types": ["ip-ip"],
                "lease_secs": 3540},
            "bindings": 1, "queued_requests": 0, "pending_answers": 0,
            "data_plane": null,
            "counters": {"malformed": 0, "retransmissions": 2}});
        assert_eq!(
            view("host", "status", &s),
            "\
daemon:          host
version:         0.1.0
uptime:          3m12s
gateway:         10.0.0.1:4555
transport:       tcp
bindings:        1
queued requests: 0
pending answers: 0
registration:
  client:       0x5eed1234
  flow policy:  local macro, remote none
  methods:      rsap-ip, rsa-ip
  tunnel types: ip-ip
  lease:        59m00s left
data plane: -
counters:
  malformed:       0
  retransmissions: 2
"
        );
        let q = json!({"local": true, "tuples": [{"indicator": 2, "kind": "local network",
            "local": true, "address": "10.20.60.0", "netmask": "255.255.255.0"}]});
        assert_eq!(
            view("host", "query", &q),
            "\
local: yes
indicator  kind           address     netmask
2          local network  10.20.60.0  255.255.255.0
"
        );
    }

    #[test]
    fn peer_views() {
        let sa = json!({"spi": "0x00001001", "direction": "outbound", "protocol": "esp",
            "mode": "tunnel", "encryption": "aes-gcm-128", "integrity": "none",
            "src": "192.0.2.1", "dst": "192.0.2.2", "udp_encap": null, "packets": 812,
            "bytes": 1_093_120, "drops": {"malformed": 0, "replay": 3}, "sequence": 812,
            "lifetime": {"age_seconds": 42, "soft_seconds": null, "soft_bytes": null,
                "soft_packets": null, "hard_seconds": 3600, "hard_bytes": null,
                "hard_packets": null}});
        assert_eq!(
            view("peer", "sas", &json!([sa])),
            "\
spi         direction  protocol  mode    encryption   integrity  src        dst        udp encap  packets  bytes    sequence  dropped   age  soft  hard
0x00001001  outbound   esp       tunnel  aes-gcm-128  none       192.0.2.1  192.0.2.2  -          812      1093120  812       replay=3  42s  -     1h00m
"
        );
        let p = json!([{"direction": "outbound", "priority": 0,
            "selector": {"src": "10.0.0.0/24", "dst": "any", "protocol": "tcp",
                         "src_port": "any", "dst_port": "443"},
            "action": "apply", "sas": ["0x00001001"]}]);
        assert_eq!(
            view("peer", "policies", &p),
            "\
direction  priority  src          dst  protocol  src port  dst port  action  sas
outbound   0         10.0.0.0/24  any  tcp       any       443       apply   0x00001001
"
        );
        let s = json!({"daemon": "peer", "version": "0.1.0", "uptime_seconds": 42,
            "config": {"tun": "realm0", "sockets": ["raw 255 (send)", "raw 50 (ESP)"]},
            "sas": 2, "counters": {"protected": 5},
            "engine_drops": {"malformed": 0, "unknown_spi": 1}});
        assert_eq!(
            view("peer", "status", &s),
            "\
daemon:  peer
version: 0.1.0
uptime:  42s
sas:     2
config:
  tun:     realm0
  sockets: raw 255 (send), raw 50 (ESP)
counters:
  protected: 5
engine drops: unknown_spi=1
"
        );
    }

    #[test]
    fn help_lists_commands() {
        let v = crate::ctl::help(
            "gateway",
            &[crate::ctl::CommandInfo {
                name: "free",
                args: "bind=ID",
                summary: "ends a binding",
            }],
        );
        assert_eq!(
            view("gateway", "help", &v),
            "\
daemon:   gateway
protocol: 1
command  args     summary
help              this list
free     bind=ID  ends a binding
"
        );
    }

    #[test]
    fn commands_without_a_view_use_the_generic_renderer() {
        assert!(render("gateway", "free", &json!({"freed": 3}), NOW).is_none());
        assert!(render("nobody", "status", &json!({}), NOW).is_none());
    }
}
