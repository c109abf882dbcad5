//! Durable grants per second: each batch is one binding upsert and one
//! registration upsert (the records a grant persists, as JSON), committed by
//! 1 or 16 concurrent submitters that each wait for their own
//! acknowledgement (like hosts waiting for their ASSIGN_RESPONSE), in both
//! durability modes. Prints batches/s, the mean commit size (batches per
//! transaction: the group commit factor) and commit latency.
//!
//! `CARGO_TARGET_DIR=/work/target-store cargo bench -p realm-store`
//! (`REALM_STORE_BENCH_SECS` sets each run's length, default 3; the store
//! lives in `TMPDIR`, which must be a real disk for `Full` to mean anything).

#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use realm_lease::{
    BindId, BindingRecord, ClientId, Method, PortSet, RegistrationRecord, SpiSet, Timestamp,
};
use realm_store::{
    AllocEvent, AllocEventKind, Batch, Durability, Kind, Options, Pending, Store, Submitter,
};

/// The allocation log line of `binding`.
fn alloc_event(
    time: Timestamp,
    event: AllocEventKind,
    binding: &BindingRecord,
    lease: Option<Duration>,
) -> AllocEvent {
    AllocEvent {
        time,
        event,
        client: binding.client,
        private: Some(Ipv4Addr::new(10, 0, 0, 2)),
        public: binding.address,
        ports: binding.ports.clone(),
        spis: binding.spis.clone(),
        lease,
        bind: binding.bind,
        method: binding.method,
    }
}

fn grant(host: u32, bind: u32, with_log: bool) -> Batch {
    let expires_at = Timestamp::from_secs(1_800_000_000);
    let binding = BindingRecord {
        bind: BindId(bind),
        client: ClientId(host),
        method: Method::RsapIp,
        address: Ipv4Addr::new(192, 0, 2, 1),
        ports: PortSet::Range {
            first: 40_000 + (bind % 3000) as u16 * 8,
            count: 8,
        },
        spis: SpiSet::None,
        expires_at,
    };
    let mut b = Batch::new();
    b.put_json(Kind::BINDING, u64::from(bind), &binding, Some(expires_at))
        .unwrap()
        .put_json(
            Kind::REGISTRATION,
            u64::from(host),
            &RegistrationRecord {
                client: ClientId(host),
                expires_at,
            },
            Some(expires_at),
        )
        .unwrap();
    if with_log {
        b.log(alloc_event(
            expires_at,
            AllocEventKind::Grant,
            &binding,
            Some(Duration::from_secs(3600)),
        ));
    }
    b
}

struct Run {
    durability: Durability,
    submitters: u32,
    /// Batches each submitter keeps in flight (1: wait for each ack).
    in_flight: usize,
    with_log: bool,
}

fn run(r: &Run, secs: f64) {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        alloc_log: r.with_log.then(|| dir.path().join("alloc.log")),
        ..Options::new(r.durability)
    };
    let (store, _) = Store::open_with(dir.path().join("leases.db"), &options).unwrap();
    let next_bind = Arc::new(AtomicU64::new(1));
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));

    let threads: Vec<_> = (0..r.submitters)
        .map(|host| {
            let sub: Submitter = store.submitter();
            let (next_bind, done, stop, measuring) = (
                Arc::clone(&next_bind),
                Arc::clone(&done),
                Arc::clone(&stop),
                Arc::clone(&measuring),
            );
            let (in_flight, with_log) = (r.in_flight, r.with_log);
            std::thread::spawn(move || {
                let mut window: std::collections::VecDeque<Pending<_>> = Default::default();
                while !stop.load(Ordering::Relaxed) {
                    while window.len() < in_flight {
                        let bind = next_bind.fetch_add(1, Ordering::Relaxed) as u32;
                        window.push_back(sub.submit_blocking(grant(host, bind, with_log)).unwrap());
                    }
                    if let Some(p) = window.pop_front() {
                        p.wait().unwrap();
                        if measuring.load(Ordering::Relaxed) {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                for p in window {
                    p.wait().unwrap();
                }
            })
        })
        .collect();

    // Warm up, then measure.
    std::thread::sleep(Duration::from_millis(300));
    let before = store.stats();
    let start = Instant::now();
    measuring.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs_f64(secs));
    measuring.store(false, Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    let after = store.stats();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    store.close().unwrap();

    let batches = done.load(Ordering::Relaxed);
    let commits = after.commits - before.commits;
    let committed = after.batches - before.batches;
    let latency = (after.commit_latency_sum - before.commit_latency_sum)
        .checked_div(commits.max(1) as u32)
        .unwrap_or_default();
    println!(
        "{:<6} {:>3} submitters x {} in flight{:<10} {:>9.0} batches/s   mean commit {:>6.1} batches   mean commit latency {:>7.1} µs   max {:>6.1} ms",
        format!("{:?}", r.durability),
        r.submitters,
        r.in_flight,
        if r.with_log { " +alloclog" } else { "" },
        batches as f64 / elapsed,
        committed as f64 / commits.max(1) as f64,
        latency.as_secs_f64() * 1e6,
        after.commit_latency_max.as_secs_f64() * 1e3,
    );
}

/// The disk's fsync latency (4 KiB overwrite + fdatasync), which bounds
/// `Full` commits: print it so the figures below can be read.
fn fsync_latency() {
    use std::io::{Seek, SeekFrom, Write};
    let dir = tempfile::tempdir().unwrap();
    let mut f = std::fs::File::create(dir.path().join("probe")).unwrap();
    let mut times = Vec::new();
    for _ in 0..100 {
        let start = Instant::now();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.write_all(&[0x5a; 4096]).unwrap();
        f.sync_data().unwrap();
        times.push(start.elapsed());
    }
    times.sort();
    println!(
        "disk: 4 KiB write + fdatasync: median {:.2} ms, p90 {:.2} ms, max {:.2} ms",
        times[50].as_secs_f64() * 1e3,
        times[90].as_secs_f64() * 1e3,
        times[99].as_secs_f64() * 1e3
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test` runs benches as tests with
    // no flag: run one short round there so the code stays exercised.
    let benching = std::env::args().any(|a| a == "--bench");
    let secs: f64 = std::env::var("REALM_STORE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if benching { 3.0 } else { 0.2 });
    let config = |durability, submitters, in_flight, with_log| Run {
        durability,
        submitters,
        in_flight,
        with_log,
    };
    let (normal, full) = (Durability::Normal, Durability::Full);
    let mut runs = vec![
        config(normal, 1, 1, false),
        config(normal, 16, 1, false),
        config(full, 1, 1, false),
        config(full, 16, 1, false),
        config(normal, 16, 1, true),
        config(full, 16, 1, true),
        config(full, 16, 8, false),
    ];
    if !benching {
        runs.truncate(1);
    }
    if benching {
        fsync_latency();
    }
    println!(
        "realm-store: durable grant batches (binding + registration upsert) per second, {secs} s per run"
    );
    for r in &runs {
        run(r, secs);
    }
}
