//! Grant throughput and memory per binding.
//!
//! `cargo bench -p realm-lease` (with `CARGO_TARGET_DIR=/work/target-lease`
//! in the shared workspace). Each scenario runs in a fresh child process (this
//! binary re-run with the scenario's name) so that its memory figures start
//! from a clean heap, and prints:
//! - grants per second (wall clock, one core);
//! - bytes per binding, two ways: the crate's structural estimate
//!   (`LeaseManager::heap_estimate`: table capacities and B-tree entries times
//!   their sizes), and the growth of the process's resident set (VmRSS from
//!   /proc/self/status, an upper bound: it includes allocator slack and the
//!   freed tables of hash-map growth).
//!
//! Why not a counting global allocator: that needs `unsafe impl GlobalAlloc`,
//! and the workspace `forbid`s `unsafe_code` for every target of the crate
//! (a `#![allow(unsafe_code)]` in this file is a hard error under `-F`).
// A bench reads the clock and may unwrap.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use realm_lease::{
    AddressConfig, AddressRequest, ClientId, Config, LeaseManager, PortRequest, Quota, Timestamp,
};

const HOSTS: u32 = 1000;

struct Scenario {
    name: &'static str,
    addresses: u8,
    ports_per_binding: u16,
    /// Bindings to grant (stops early, and says so, when the pool is full).
    bindings: u32,
    /// Then free this many and grant as many again after TIME_WAIT.
    churn: u32,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "1-port",
        addresses: 4,
        ports_per_binding: 1,
        bindings: 100_000,
        churn: 20_000,
    },
    Scenario {
        name: "8-port-4-addr",
        addresses: 4,
        ports_per_binding: 8,
        bindings: 100_000,
        churn: 0,
    },
    Scenario {
        name: "8-port-13-addr",
        addresses: 13,
        ports_per_binding: 8,
        bindings: 100_000,
        churn: 20_000,
    },
];

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn config(addresses: u8) -> Config {
    let pool = (0..addresses)
        .map(|i| AddressConfig::dedicated(Ipv4Addr::new(192, 0, 2, i + 1)))
        .collect();
    let mut c = Config::new(pool);
    c.quota = Quota {
        ports: u32::MAX,
        addresses: 1,
        spis: 64,
        bindings: u32::MAX,
    };
    c.max_hosts = HOSTS;
    c.max_lease = Duration::from_secs(86_400);
    c.default_lease = Duration::from_secs(3_600);
    c
}

fn run(s: &Scenario) {
    let rss0 = rss_bytes();
    let mut m = LeaseManager::new(config(s.addresses)).unwrap();
    let t0 = Timestamp::from_secs(1_700_000_000);
    for h in 0..HOSTS {
        m.register(ClientId(0x9e37_79b9_u32.wrapping_mul(h + 1)), t0)
            .unwrap();
    }
    let req = PortRequest::DontCare {
        count: s.ports_per_binding,
    };
    let start = Instant::now();
    let mut binds = Vec::with_capacity(s.bindings as usize);
    for i in 0..s.bindings {
        let client = ClientId(0x9e37_79b9_u32.wrapping_mul(i % HOSTS + 1));
        match m.assign_rsap_ip(client, AddressRequest::DontCare, req.clone(), None, t0) {
            Ok(g) => binds.push((client, g.binding.bind)),
            Err(e) => {
                println!("  pool full after {i} grants: {e}");
                break;
            }
        }
    }
    let elapsed = start.elapsed();
    let n = binds.len() as u64;
    let rss = rss_bytes().saturating_sub(rss0);
    let est = m.heap_estimate() as u64;
    println!(
        "{:<15} {:>7} bindings x {} port(s) on {:>2} addresses: {:>10.0} grants/s; \
         {:>4} B/binding (structural), {:>4} B/binding (RSS growth)",
        s.name,
        n,
        s.ports_per_binding,
        s.addresses,
        n as f64 / elapsed.as_secs_f64(),
        est / n.max(1),
        (rss - (binds.capacity() * 8) as u64) / n.max(1),
    );
    // Crash recovery: rebuild the state from its records.
    let records = m.records();
    let start = Instant::now();
    let mut restored = LeaseManager::new(config(s.addresses)).unwrap();
    restored.restore(&records).unwrap();
    println!(
        "{:<15} restore of {} records: {:.0} ms",
        "",
        records.registrations.len() + records.bindings.len() + records.quarantine.len(),
        start.elapsed().as_secs_f64() * 1000.0
    );
    drop((restored, records));
    if s.churn > 0 {
        let t1 = t0 + Duration::from_secs(1);
        let start = Instant::now();
        for &(client, bind) in binds.iter().take(s.churn as usize) {
            m.free(client, bind, t1).unwrap();
        }
        let freed = start.elapsed();
        // After TIME_WAIT the freed ports are reused, oldest first.
        let t2 = t1 + Duration::from_secs(121);
        let start = Instant::now();
        for i in 0..s.churn {
            let client = ClientId(0x9e37_79b9_u32.wrapping_mul(i % HOSTS + 1));
            m.assign_rsap_ip(client, AddressRequest::DontCare, req.clone(), None, t2)
                .unwrap();
        }
        let regrant = start.elapsed();
        println!(
            "{:<15} churn: {} frees at {:.0}/s, {} re-grants after TIME_WAIT at {:.0}/s",
            "",
            s.churn,
            f64::from(s.churn) / freed.as_secs_f64(),
            s.churn,
            f64::from(s.churn) / regrant.as_secs_f64(),
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a child gets the scenario name.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    // A name from `cargo bench -- <filter>` that is no scenario is a filter.
    if let Some(name) = args.first()
        && let Some(s) = SCENARIOS.iter().find(|s| s.name == name)
    {
        run(s);
        return;
    }
    let exe = std::env::current_exe().unwrap();
    for s in SCENARIOS
        .iter()
        .filter(|s| args.first().is_none_or(|f| s.name.contains(f.as_str())))
    {
        let out = Command::new(&exe).arg(s.name).output().unwrap();
        print!("{}", String::from_utf8_lossy(&out.stdout));
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
    }
}
