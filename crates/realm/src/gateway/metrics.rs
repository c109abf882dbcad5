//! Prometheus metrics: `GET /metrics` on `metrics.listen` (hyper), text
//! exposition by `prometheus-client`. Each scrape asks the engine task for a
//! [`Snapshot`] (a copy of its counters and pool use: O(1), no per-binding
//! work) and encodes it with the socket tasks' counters. Names and meanings:
//! `docs/metrics.md` (a test checks that every name is documented there).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::{Registry, Unit};
use realm_store::LATENCY_BUCKETS_US;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use super::engine::{ENGINE_ANSWER_TIMEOUT, Snapshot};
use super::net::NetCounters;

type Labels = Vec<(&'static str, String)>;

/// The store's commit latency histogram, from its (non-cumulative) buckets.
#[derive(Debug)]
struct CommitHistogram {
    sum: f64,
    count: u64,
    buckets: Vec<(f64, u64)>,
}

impl EncodeMetric for CommitHistogram {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.encode_histogram::<NoLabelSet>(self.sum, self.count, &self.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

fn counter(v: u64) -> ConstCounter<u64> {
    ConstCounter::new(v)
}

fn gauge(v: u64) -> ConstGauge<i64> {
    ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX))
}

fn labelled_counters(
    rows: impl IntoIterator<Item = (Labels, u64)>,
) -> Family<Labels, prometheus_client::metrics::counter::Counter> {
    let family = Family::<Labels, prometheus_client::metrics::counter::Counter>::default();
    for (labels, v) in rows {
        family.get_or_create(&labels).inc_by(v);
    }
    family
}

fn labelled_gauges(rows: impl IntoIterator<Item = (Labels, u64)>) -> Family<Labels, Gauge> {
    let family = Family::<Labels, Gauge>::default();
    for (labels, v) in rows {
        family
            .get_or_create(&labels)
            .set(i64::try_from(v).unwrap_or(i64::MAX));
    }
    family
}

fn state(s: &str) -> Labels {
    vec![("state", s.to_owned())]
}

/// The text exposition of one snapshot.
pub(crate) fn render(s: &Snapshot, net: &NetCounters) -> String {
    let mut r = Registry::with_prefix("realm_gateway");
    let c = &s.status.counters;
    let pool = &s.status.pool;

    r.register("hosts", "Registered hosts", gauge(s.status.hosts as u64));
    r.register("bindings", "Live bindings", gauge(s.status.bindings as u64));
    r.register(
        "udp_sessions",
        "UDP \"last message\" buffers held (RFC 3103 10.1)",
        gauge(s.status.udp_sessions as u64),
    );
    let addresses = u64::from(pool.addresses);
    let addr_used = u64::from(pool.addresses_leased);
    let addr_held = u64::from(pool.addresses_held);
    r.register(
        "pool_addresses",
        "Public addresses of the pool: leased whole (RSA-IP), held in TIME_WAIT, free",
        labelled_gauges([
            (state("in_use"), addr_used),
            (state("held"), addr_held),
            (
                state("free"),
                addresses.saturating_sub(addr_used + addr_held),
            ),
        ]),
    );
    r.register(
        "pool_ports",
        "Leasable (address, port) tuples: leased, held in TIME_WAIT, free",
        labelled_gauges([
            (state("in_use"), pool.ports_leased),
            (state("held"), pool.ports_held),
            (
                state("free"),
                pool.ports_leasable
                    .saturating_sub(pool.ports_leased + pool.ports_held),
            ),
        ]),
    );
    r.register(
        "pool_spis",
        "(address, SPI) tuples: leased, held in TIME_WAIT, free",
        labelled_gauges([
            (state("in_use"), pool.spis_leased),
            (state("held"), pool.spis_held),
            (
                state("free"),
                s.spis_total
                    .saturating_sub(pool.spis_leased + pool.spis_held),
            ),
        ]),
    );

    r.register(
        "lease_state_bytes",
        "Approximate heap bytes of the lease manager's state (realm-lease's estimate)",
        gauge(s.lease_heap_bytes),
    );
    r.register("messages", "RSIP messages received", counter(c.messages));
    r.register(
        "malformed_messages",
        "Messages that failed to decode (answered with ERROR_RESPONSE)",
        counter(c.malformed),
    );
    r.register(
        "duplicates_answered",
        "UDP duplicates answered from the last message buffer",
        counter(c.duplicates_answered),
    );
    r.register(
        "registrations",
        "Registrations granted",
        counter(c.registrations),
    );
    r.register(
        "deregistrations",
        "Registrations ended, by reason",
        labelled_counters(
            c.deregistrations
                .iter()
                .map(|(k, v)| (vec![("reason", k.clone())], *v)),
        ),
    );
    r.register(
        "grants",
        "Bindings granted, by method",
        labelled_counters(
            c.grants
                .iter()
                .map(|(k, v)| (vec![("method", k.clone())], *v)),
        ),
    );
    r.register("extensions", "Leases extended", counter(c.extensions));
    r.register(
        "frees",
        "Bindings ended, by reason",
        labelled_counters(
            c.frees
                .iter()
                .map(|(k, v)| (vec![("reason", k.clone())], *v)),
        ),
    );
    r.register(
        "binding_expiries",
        "Binding leases that ran out",
        counter(c.binding_expiries),
    );
    r.register(
        "registration_expiries",
        "Registrations that lapsed",
        counter(c.registration_expiries),
    );
    r.register(
        "errors",
        "ERROR_RESPONSEs sent, by RFC 3103 Appendix A code",
        labelled_counters(c.errors.iter().map(|(code, v)| {
            let name = realm_wire::rsip::ErrorCode::from(*code).as_str().to_owned();
            (vec![("code", code.to_string()), ("name", name)], *v)
        })),
    );
    r.register(
        "auth_failures",
        "Messages refused by signalling authentication",
        counter(c.auth_failures),
    );
    r.register(
        "registrations_sent_to_tcp",
        "UDP REGISTER_REQUESTs answered USE_TCP under registration pressure",
        counter(c.use_tcp_pressure),
    );
    r.register(
        "undeliverable",
        "Messages for a host or connection that is gone",
        counter(c.undeliverable + s.engine.tcp_undeliverable),
    );

    let st = &s.store;
    r.register(
        "store_commits",
        "Store transactions committed",
        counter(st.commits),
    );
    r.register(
        "store_failed_commits",
        "Store transactions that failed",
        counter(st.failed_commits),
    );
    r.register(
        "store_batches",
        "Batches committed (one per engine wake-up with events)",
        counter(st.batches),
    );
    r.register("store_rows", "Rows put or deleted", counter(st.rows));
    let mut buckets: Vec<(f64, u64)> = LATENCY_BUCKETS_US
        .iter()
        .zip(st.commit_latency_buckets.iter())
        .map(|(us, n)| (*us as f64 / 1e6, *n))
        .collect();
    buckets.push((
        f64::MAX,
        st.commit_latency_buckets.last().copied().unwrap_or(0),
    ));
    r.register_with_unit(
        "store_commit",
        "Store commit latency (BEGIN to COMMIT, sync included)",
        Unit::Seconds,
        CommitHistogram {
            sum: st.commit_latency_sum.as_secs_f64(),
            count: st.commits,
            buckets,
        },
    );
    r.register_with_unit(
        "store_ack_wait",
        "Total time answers waited for their batch's commit (divide by store_acks)",
        Unit::Seconds,
        ConstCounter::new(s.engine.commit_wait_us_sum as f64 / 1e6),
    );
    r.register(
        "store_acks",
        "Batches acknowledged to the engine",
        counter(s.engine.commit_waits),
    );
    r.register(
        "store_queued",
        "Batches waiting for the store's writer",
        gauge(s.store_queued as u64),
    );
    r.register(
        "store_in_flight",
        "Batches submitted whose answers wait for their commit",
        gauge(s.in_flight as u64),
    );
    r.register(
        "alloc_log_lines",
        "Allocation log lines written",
        counter(st.log_lines),
    );
    r.register(
        "alloc_log_errors",
        "Allocation log write, flush or sync failures",
        counter(st.log_errors),
    );

    let n = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed);
    r.register(
        "connections",
        "Open TCP connections",
        gauge(n(&net.connections_open)),
    );
    r.register(
        "connections_accepted",
        "TCP connections accepted",
        counter(n(&net.connections_accepted)),
    );
    r.register(
        "connections_refused",
        "TCP connections closed at once (over max_connections or max_connections_per_address)",
        counter(n(&net.connections_refused)),
    );
    r.register(
        "connections_closed",
        "TCP connections the gateway closed, by reason",
        labelled_counters([
            (
                vec![("reason", "slow_reader".to_owned())],
                s.engine.slow_readers_closed,
            ),
            (
                vec![("reason", "frame_error".to_owned())],
                n(&net.frame_errors),
            ),
            (
                vec![("reason", "message_timeout".to_owned())],
                n(&net.message_timeouts),
            ),
            (
                vec![("reason", "idle_timeout".to_owned())],
                n(&net.idle_timeouts),
            ),
        ]),
    );
    r.register(
        "tcp_throttled",
        "TCP messages delayed by the per-connection rate limit",
        counter(n(&net.tcp_throttled)),
    );
    r.register(
        "udp_datagrams",
        "UDP datagrams received",
        counter(n(&net.udp_received)),
    );
    r.register(
        "udp_dropped",
        "UDP datagrams dropped, by reason",
        labelled_counters([
            (
                vec![("reason", "rate".to_owned())],
                n(&net.udp_dropped_rate),
            ),
            (
                vec![("reason", "size".to_owned())],
                n(&net.udp_dropped_size),
            ),
            (
                vec![("reason", "port_share".to_owned())],
                n(&net.udp_dropped_port),
            ),
        ]),
    );
    r.register(
        "udp_socket_drops",
        "UDP datagrams the kernel dropped at the gateway's sockets (receive buffer full)",
        counter(n(&net.udp_socket_drops)),
    );
    r.register(
        "udp_limiter_evictions",
        "UDP source addresses the rate limiter evicted to make room",
        counter(n(&net.udp_limiter_evictions)),
    );
    r.register(
        "udp_send_errors",
        "UDP sends that failed",
        counter(s.engine.udp_send_errors),
    );

    if let Some(d) = &s.data_plane {
        render_data_plane(&mut r, d);
    }

    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &r).is_err() {
        out.clear();
    }
    out
}

/// The data plane's counters (present only when it runs).
fn render_data_plane(r: &mut Registry, d: &super::dataplane::DataPlaneSnapshot) {
    let c = &d.counters;
    let dir = |name: &str| vec![("direction", name.to_owned())];
    let both = |f: &dyn Fn(&realm_rsip::dataplane::DirectionCounters) -> u64| {
        labelled_counters([
            (dir("outbound"), f(&c.outbound)),
            (dir("inbound"), f(&c.inbound)),
        ])
    };
    r.register(
        "dataplane_bindings",
        "Bindings in the data plane's table",
        gauge(d.bindings as u64),
    );
    r.register(
        "dataplane_packets",
        "Packets handed to the data plane, by direction (outbound: from hosts)",
        both(&|x| x.packets),
    );
    r.register(
        "dataplane_bytes",
        "Bytes handed to the data plane, by direction",
        both(&|x| x.bytes),
    );
    r.register(
        "dataplane_passed",
        "Packets forwarded (outbound) or tunnelled to a host (inbound)",
        both(&|x| x.passed),
    );
    r.register(
        "dataplane_local",
        "Inbound packets handed to the gateway's own stack",
        counter(c.inbound.local),
    );
    r.register(
        "dataplane_drops",
        "Packets dropped, by direction and reason",
        labelled_counters(
            [("outbound", &c.outbound), ("inbound", &c.inbound)]
                .into_iter()
                .flat_map(|(name, x)| {
                    x.drops_by_reason()
                        .filter(|(_, v)| *v > 0)
                        .map(move |(reason, v)| {
                            (
                                vec![
                                    ("direction", name.to_owned()),
                                    ("reason", reason.label().to_owned()),
                                ],
                                v,
                            )
                        })
                })
                .collect::<Vec<_>>(),
        ),
    );
    r.register(
        "dataplane_fragments",
        "Inbound fragments received for reassembly",
        counter(c.reassembly.fragments),
    );
    r.register(
        "dataplane_reassembled",
        "Datagrams reassembled",
        counter(c.reassembly.reassembled),
    );
    r.register(
        "dataplane_reassembly_timeouts",
        "Datagrams dropped incomplete at the reassembly timeout",
        counter(c.reassembly.timeouts),
    );
    r.register(
        "dataplane_violations",
        "Lease misuse by hosts: reported with ERROR_RESPONSE, or suppressed by the rate limit",
        labelled_counters([
            (
                vec![("outcome", "reported".to_owned())],
                c.violations.reported,
            ),
            (
                vec![("outcome", "suppressed".to_owned())],
                c.violations.suppressed,
            ),
        ]),
    );
    r.register(
        "dataplane_learned",
        "Learned demultiplexing state: IKE cookies, ICMP query identifiers, ESP flows",
        labelled_gauges([
            (
                vec![("kind", "ike_cookie".to_owned())],
                d.learned_cookies as u64,
            ),
            (
                vec![("kind", "icmp_query".to_owned())],
                d.learned_queries as u64,
            ),
            (
                vec![("kind", "esp_flow".to_owned())],
                d.learned_esp_flows as u64,
            ),
        ]),
    );
    r.register(
        "dataplane_too_big",
        "Packets for hosts above the tunnel MTU: fragmented (outer DF clear), or answered with ICMP fragmentation needed",
        labelled_counters([
            (vec![("outcome", "fragmented".to_owned())], d.fragmented),
            (vec![("outcome", "frag_needed".to_owned())], d.frag_needed_sent),
        ]),
    );
    r.register(
        "dataplane_gso_forwarded",
        "Hosts' TCP superpackets forwarded whole, as GSO packets, through the GSO TUN",
        counter(d.gso_forwarded),
    );
    r.register(
        "dataplane_io_errors",
        "Packet I/O trouble: frames without the expected link header, sends the kernel refused, violations lost to a full queue",
        labelled_counters([
            (vec![("kind", "bad_frame".to_owned())], d.bad_frames),
            (vec![("kind", "send".to_owned())], d.send_errors),
            (vec![("kind", "violation_queue".to_owned())], d.violations_dropped),
        ]),
    );
}

/// Serves `GET /metrics` on `listener` until the task is aborted.
pub(crate) async fn serve(
    listener: TcpListener,
    scrape: mpsc::Sender<oneshot::Sender<Snapshot>>,
    net: Arc<NetCounters>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        let scrape = scrape.clone();
        let net = Arc::clone(&net);
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let scrape = scrape.clone();
                let net = Arc::clone(&net);
                async move { Ok::<_, Infallible>(answer(req, scrape, &net).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    scrape: mpsc::Sender<oneshot::Sender<Snapshot>>,
    net: &NetCounters,
) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: String, ctype: &'static str| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        if let Ok(v) = hyper::header::HeaderValue::from_str(ctype) {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        r
    };
    if req.uri().path() != "/metrics" {
        return reply(StatusCode::NOT_FOUND, "try /metrics\n".into(), "text/plain");
    }
    let (tx, rx) = oneshot::channel();
    let snapshot = async {
        scrape.send(tx).await.ok()?;
        rx.await.ok()
    };
    match tokio::time::timeout(ENGINE_ANSWER_TIMEOUT, snapshot).await {
        Ok(Some(s)) => reply(
            StatusCode::OK,
            render(&s, net),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
        _ => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "engine busy\n".into(),
            "text/plain",
        ),
    }
}

/// Binds the metrics listener.
pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::engine::EngineCounters;

    const DOC: &str = include_str!("../../../../docs/metrics.md");

    fn snapshot() -> Snapshot {
        let cfg: realm_rsip::gateway::GatewayConfig =
            serde_json::from_value(serde_json::json!({"pool": [{"addresses": "192.0.2.1"}]}))
                .unwrap();
        let gw = realm_rsip::gateway::Gateway::new(cfg, [3; 32]).unwrap();
        let mut status = gw.status();
        status.counters.errors.insert(205, 2);
        status.counters.grants.insert("rsap-ip".into(), 5);
        Snapshot {
            status,
            store: realm_store::StatsSnapshot::default(),
            store_queued: 0,
            engine: EngineCounters::default(),
            in_flight: 0,
            spis_total: 10,
            lease_heap_bytes: 0,
            data_plane: Some(data_plane()),
        }
    }

    /// A real data plane's counters after one packet that is not tunnelled.
    fn data_plane() -> crate::gateway::dataplane::DataPlaneSnapshot {
        let mut dp = realm_rsip::dataplane::DataPlane::new(realm_rsip::dataplane::Config::new(
            "10.0.0.1".parse().unwrap(),
        ));
        let now = realm_lease::Timestamp::from_secs(1_700_000_000);
        // A valid IPv4 header (checksum 0xb861) of protocol 17, not a tunnel.
        let mut udp = vec![
            0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 2, 192, 0, 2, 9,
        ];
        let sum = realm_wire::checksum::checksum(&udp);
        udp[10..12].copy_from_slice(&sum.to_be_bytes());
        udp.extend_from_slice(&[0; 8]);
        let _ = dp.outbound(now, &udp);
        crate::gateway::dataplane::DataPlaneSnapshot {
            bindings: dp.len(),
            counters: dp.counters().clone(),
            learned_cookies: 0,
            learned_queries: 0,
            learned_esp_flows: 0,
            bad_frames: 1,
            send_errors: 0,
            to_local: 0,
            fragmented: 0,
            frag_needed_sent: 0,
            violations_dropped: 0,
            gso_forwarded: 0,
        }
    }

    #[test]
    fn every_metric_is_documented_and_named_realm_gateway() {
        let text = render(&snapshot(), &NetCounters::default());
        let names: Vec<(&str, &str)> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_once(' '))
            .collect();
        assert!(names.len() > 35, "{text}");
        for (name, kind) in names {
            assert!(name.starts_with("realm_gateway_"), "{name}");
            let documented = match kind {
                "counter" => format!("`{name}_total`"),
                _ => format!("`{name}`"),
            };
            assert!(
                DOC.contains(&documented),
                "{documented} ({kind}) missing from docs/metrics.md"
            );
        }
        assert!(text.contains(r#"realm_gateway_errors_total{code="205",name="BAD_PARAM"} 2"#));
        assert!(text.contains(r#"realm_gateway_grants_total{method="rsap-ip"} 5"#));
        assert!(text.contains(r#"realm_gateway_store_commit_seconds_bucket{le="+Inf"} 0"#));
        assert!(
            text.contains(
                r#"realm_gateway_dataplane_drops_total{direction="outbound",reason="not_tunnelled"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"realm_gateway_dataplane_io_errors_total{kind="bad_frame"} 1"#));
        assert!(text.ends_with("# EOF\n"));
    }
}
