//! Parse and emit of a typical gateway answer: an ASSIGN_RESPONSE_RSAP-IP with
//! client ID, bind ID, local address and a block of 8 ports, remote address
//! and port, lease time, tunnel type and message counter.
//!
//! `CARGO_TARGET_DIR=/work/target-rsip cargo bench -p realm-wire --bench rsip`

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{Criterion, criterion_group, criterion_main};
use realm_wire::rsip::{Address, BindId, ClientId, Flow, Grant, Message, Ports, TunnelType};

fn assign_response() -> Message {
    let flow = Flow {
        local_address: Address::Ipv4(Ipv4Addr::new(149, 112, 240, 156)),
        local_ports: Ports::Range {
            first: 1234,
            count: 8,
        },
        remote_address: Address::Ipv4(Ipv4Addr::new(38, 196, 73, 6)),
        remote_ports: Ports::single(21),
    };
    let grant = Grant {
        lease_time: 1800,
        tunnel_type: TunnelType::IpIp,
        tunnel_endpoint: None,
        message_counter: Some(42),
    };
    // A fixed, valid message: the bench cannot run without it.
    #[allow(clippy::expect_used)]
    Message::assign_response_rsap_ip(ClientId(5), BindId(1), flow, grant)
        .expect("valid ASSIGN_RESPONSE_RSAP-IP")
}

fn bench(c: &mut Criterion) {
    let msg = assign_response();
    let bytes = msg.to_bytes();
    let mut group = c.benchmark_group("rsip/assign_response_rsap_ip");
    group.bench_function("parse", |b| b.iter(|| Message::parse(black_box(&bytes))));
    let mut out = Vec::with_capacity(bytes.len());
    group.bench_function("emit", |b| {
        b.iter(|| {
            out.clear();
            black_box(&msg).emit(&mut out);
            black_box(out.len())
        })
    });
    group.bench_function("to_bytes", |b| b.iter(|| black_box(&msg).to_bytes()));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
