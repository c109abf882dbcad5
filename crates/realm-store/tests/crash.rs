//! `kill -9` durability: a child process (this test binary re-executed in
//! "writer" mode) commits batches from several threads and prints each ID only
//! after its completion resolved; the parent SIGKILLs it at a random moment,
//! reopens the store and checks that every acknowledged ID is there, intact.
//! Several rounds on the same file, in both durability modes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use realm_store::{Batch, Durability, Kind, OpenStatus, PreviousShutdown, Store};

const CHILD_ENV: &str = "REALM_STORE_CRASH_CHILD";
const DURABILITY_ENV: &str = "REALM_STORE_CRASH_DURABILITY";
const ROUND_ENV: &str = "REALM_STORE_CRASH_ROUND";
const WRITERS: u64 = 8;

/// The value stored for `id` (checked after the crash).
fn value(id: u64, kind: Kind) -> Vec<u8> {
    format!("{kind}:{id}:{}", "x".repeat((id % 97) as usize)).into_bytes()
}

/// The child: a no-op unless the parent set [`CHILD_ENV`].
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let durability = match std::env::var(DURABILITY_ENV).as_deref() {
        Ok("full") => Durability::Full,
        _ => Durability::Normal,
    };
    let round: u64 = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
    let (store, _) = Store::open(&path, durability).unwrap();
    std::thread::scope(|s| {
        for t in 0..WRITERS {
            let sub = store.submitter();
            s.spawn(move || {
                // Bounded, in case the parent never kills us.
                for i in 0..200_000u64 {
                    let id = round << 40 | t << 32 | i;
                    // Like a grant: a binding and a registration.
                    let mut b = Batch::new();
                    b.put(Kind::BINDING, id, value(id, Kind::BINDING), None)
                        .put(Kind::REGISTRATION, id, value(id, Kind::REGISTRATION), None);
                    sub.commit_blocking(b).unwrap();
                    // Only now is it acknowledged.
                    let mut out = std::io::stdout().lock();
                    if writeln!(out, "ACK {id}")
                        .and_then(|()| out.flush())
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
}

fn random_below(n: u64) -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        % n
}

/// Runs one child until killed; returns the IDs it acknowledged.
fn run_child(path: &std::path::Path, durability: &str, round: u64) -> BTreeSet<u64> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, path)
        .env(DURABILITY_ENV, durability)
        .env(ROUND_ENV, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                // A line cut by the kill is not an acknowledgement.
                Ok(_) if !line.ends_with('\n') => return,
                Ok(_) => {
                    if let Some(id) = line.trim_end().strip_prefix("ACK ") {
                        let _ = tx.send(id.parse::<u64>().unwrap());
                    }
                }
            }
        }
    });
    // Kill at a random moment once writes are flowing.
    let mut acked = BTreeSet::new();
    acked.insert(
        rx.recv_timeout(Duration::from_secs(60))
            .expect("child acknowledged nothing"),
    );
    std::thread::sleep(Duration::from_millis(random_below(400)));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap();
    acked.extend(rx.try_iter());
    acked
}

#[test]
fn kill_9_loses_no_acknowledged_batch() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leases.db");
    let mut acked = BTreeSet::new();
    for round in 0..8u64 {
        let durability = if round % 2 == 0 { "normal" } else { "full" };
        let new = run_child(&path, durability, round);
        assert!(!new.is_empty());
        acked.extend(&new);

        let (store, report) = Store::open(&path, Durability::Normal).unwrap();
        assert_eq!(report.status, OpenStatus::Existing, "{report}");
        assert_eq!(report.previous_shutdown, PreviousShutdown::Unclean);
        for kind in [Kind::BINDING, Kind::REGISTRATION] {
            let rows = store.load_all(kind).unwrap();
            for (id, v) in &rows {
                assert_eq!(v, &value(*id, kind), "{kind} {id} damaged");
            }
            let present: BTreeSet<u64> = rows.into_iter().map(|(id, _)| id).collect();
            let lost: Vec<&u64> = acked.difference(&present).collect();
            assert!(
                lost.is_empty(),
                "round {round}: {} acknowledged {kind} rows lost, e.g. {:?}",
                lost.len(),
                &lost[..lost.len().min(5)]
            );
            // A batch is whole or absent: extra (unacknowledged) rows are
            // fine, half batches are not (checked across kinds below).
        }
        let b: BTreeSet<u64> = store
            .load_all(Kind::BINDING)
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let r: BTreeSet<u64> = store
            .load_all(Kind::REGISTRATION)
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(b, r, "a batch was partly applied");
        println!(
            "round {round} ({durability}): {} acknowledged this round, {} rows, {} acknowledged in all",
            new.len(),
            b.len(),
            acked.len()
        );
        store.close().unwrap();
    }
}
