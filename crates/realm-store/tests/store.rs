//! The store's behaviour through its public API: round trips, reopen, expiry
//! counting, corrupt files moved aside, locking, group commit, the allocation
//! log, async use.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use realm_lease::{
    BindId, BindingRecord, ClientId, Method, PortSet, QuarantineRecord, RegistrationRecord, SpiSet,
    Timestamp,
};
use realm_store::{
    AllocEvent, AllocEventKind, Batch, CommitError, CorruptReason, Durability, Kind, KindCount,
    OpenStatus, Options, PreviousShutdown, Store, StoreError, SubmitError,
};

fn db(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("leases.db")
}

fn put(kind: Kind, id: u64, value: &[u8], expires_at: Option<u64>) -> Batch {
    let mut b = Batch::new();
    b.put(
        kind,
        id,
        value.to_vec(),
        expires_at.map(Timestamp::from_millis),
    );
    b
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn round_trip_puts_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let (store, report) = Store::open(db(&dir), Durability::Normal).unwrap();
    assert_eq!(report.status, OpenStatus::New);
    assert!(report.started_empty());
    assert_eq!(report.generation, 1);
    assert_eq!(report.previous_shutdown, PreviousShutdown::None);

    let mut b = Batch::new();
    b.put(Kind::BINDING, 2, b"two".to_vec(), None)
        .put(Kind::BINDING, 1, b"one".to_vec(), Some(Timestamp::MAX))
        .put(Kind::BINDING, u64::MAX, b"max".to_vec(), None)
        .put(Kind::REGISTRATION, 1, b"reg".to_vec(), None)
        .put(Kind(999), 5, Vec::new(), None);
    store.commit_blocking(b).unwrap();
    assert_eq!(
        store.load_all(Kind::BINDING).unwrap(),
        vec![
            (1, b"one".to_vec()),
            (2, b"two".to_vec()),
            (u64::MAX, b"max".to_vec())
        ]
    );
    assert_eq!(store.load_all(Kind(999)).unwrap(), vec![(5, vec![])]);

    // Later ops in a batch win; deletes of absent rows are fine.
    let mut b = Batch::new();
    b.put(Kind::BINDING, 2, b"2a".to_vec(), None)
        .delete(Kind::BINDING, 1)
        .delete(Kind::BINDING, 42)
        .put(Kind::BINDING, 2, b"2b".to_vec(), None)
        .delete(Kind::REGISTRATION, 1)
        .put(Kind::QUARANTINE, 1, b"q".to_vec(), None);
    store.commit_blocking(b).unwrap();
    assert_eq!(
        store.load_all(Kind::BINDING).unwrap(),
        vec![(2, b"2b".to_vec()), (u64::MAX, b"max".to_vec())]
    );
    assert!(store.load_all(Kind::REGISTRATION).unwrap().is_empty());
    assert_eq!(store.load_all(Kind::QUARANTINE).unwrap().len(), 1);

    let stats = store.stats();
    assert_eq!(stats.batches, 2);
    assert_eq!(stats.commits, 2);
    assert_eq!(stats.rows, 11);
    assert_eq!(stats.bytes, 3 + 3 + 3 + 3 + 2 + 2 + 1);
    assert_eq!(stats.commit_latency_buckets.iter().sum::<u64>(), 2);
    store.close().unwrap();
}

#[test]
fn reopen_keeps_everything_and_reports_a_clean_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (store, first) = Store::open(db(&dir), Durability::Full).unwrap();
    for id in 0..100 {
        store
            .commit_blocking(put(Kind::BINDING, id, &id.to_be_bytes(), None))
            .unwrap();
    }
    store.close().unwrap();
    // A clean close checkpoints and removes the WAL.
    assert_eq!(files_in(dir.path()), vec!["leases.db"]);

    let (store, report) = Store::open(db(&dir), Durability::Normal).unwrap();
    assert_eq!(report.status, OpenStatus::Existing);
    assert!(!report.started_empty());
    assert_eq!(report.instance_id, first.instance_id);
    assert_ne!(report.instance_id, 0);
    assert_eq!(report.generation, 2);
    assert!(matches!(
        report.previous_shutdown,
        PreviousShutdown::Clean(_)
    ));
    assert_eq!(
        report.kinds.get(&Kind::BINDING),
        Some(&KindCount {
            rows: 100,
            expired: 0
        })
    );
    let rows = store.load_all(Kind::BINDING).unwrap();
    assert_eq!(rows.len(), 100);
    assert!(
        rows.iter()
            .enumerate()
            .all(|(i, (id, v))| *id == i as u64 && v == &id.to_be_bytes())
    );
    // Dropping closes too.
    drop(store);
    let (_store, report) = Store::open(db(&dir), Durability::Normal).unwrap();
    assert_eq!(report.generation, 3);
    assert!(matches!(
        report.previous_shutdown,
        PreviousShutdown::Clean(_)
    ));
    println!("{report}");
}

#[test]
fn expired_rows_are_counted_and_optionally_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(db(&dir), Durability::Normal).unwrap();
    let mut b = Batch::new();
    b.put(
        Kind::BINDING,
        1,
        b"a".to_vec(),
        Some(Timestamp::from_secs(100)),
    )
    .put(
        Kind::BINDING,
        2,
        b"b".to_vec(),
        Some(Timestamp::from_secs(200)),
    )
    .put(Kind::BINDING, 3, b"c".to_vec(), None)
    .put(
        Kind::REGISTRATION,
        1,
        b"r".to_vec(),
        Some(Timestamp::from_secs(150)),
    )
    .put(Kind::QUARANTINE, 9, b"q".to_vec(), Some(Timestamp::MAX));
    store.commit_blocking(b).unwrap();
    store.close().unwrap();

    let at = |secs, prune| Options {
        now: Some(Timestamp::from_secs(secs)),
        prune_expired: prune,
        ..Options::default()
    };
    let (store, report) = Store::open_with(db(&dir), &at(150, false)).unwrap();
    let count = |rows, expired| Some(KindCount { rows, expired });
    assert_eq!(report.kinds.get(&Kind::BINDING).copied(), count(3, 1));
    assert_eq!(report.kinds.get(&Kind::REGISTRATION).copied(), count(1, 1));
    assert_eq!(report.kinds.get(&Kind::QUARANTINE).copied(), count(1, 0));
    assert!(!report.pruned);
    assert_eq!(store.load_all(Kind::BINDING).unwrap().len(), 3);
    store.close().unwrap();

    let (store, report) = Store::open_with(db(&dir), &at(150, true)).unwrap();
    assert!(report.pruned);
    assert_eq!(report.kinds.get(&Kind::BINDING).copied(), count(2, 1));
    assert_eq!(report.kinds.get(&Kind::REGISTRATION).copied(), count(0, 1));
    let ids: Vec<u64> = store
        .load_all(Kind::BINDING)
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, vec![2, 3]);
    assert!(report.to_string().contains("binding: 2 rows, 1 expired"));
}

/// Opens a store at `path`, which must have been replaced by a bad file, and
/// checks it was moved aside intact and a new empty store started.
fn assert_recovers(dir: &tempfile::TempDir, bad: &[u8]) -> CorruptReason {
    let path = db(dir);
    let (store, report) = Store::open(&path, Durability::Normal).unwrap();
    let OpenStatus::Recovered { reason } = report.status.clone() else {
        panic!("not recovered: {report}");
    };
    assert!(report.started_empty());
    assert_eq!(report.previous_shutdown, PreviousShutdown::None);
    assert!(report.kinds.is_empty());
    let moved = &report.moved_aside[0];
    let name = moved.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("leases.db.corrupt-"), "{name}");
    // Never silently lost: the bytes are all there.
    assert!(fs::read(moved).unwrap() == bad, "moved-aside file differs");
    assert!(store.load_all(Kind::BINDING).unwrap().is_empty());
    store
        .commit_blocking(put(Kind::BINDING, 1, b"new", None))
        .unwrap();
    store.close().unwrap();
    let (store, report) = Store::open(&path, Durability::Normal).unwrap();
    assert_eq!(report.status, OpenStatus::Existing);
    assert_eq!(store.load_all(Kind::BINDING).unwrap().len(), 1);
    println!("{reason}");
    reason
}

#[test]
fn garbage_file_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let garbage: Vec<u8> = (0..10_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    fs::write(db(&dir), &garbage).unwrap();
    let reason = assert_recovers(&dir, &garbage);
    assert!(matches!(reason, CorruptReason::Unreadable(_)), "{reason:?}");
}

#[test]
fn truncated_file_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(db(&dir), Durability::Normal).unwrap();
    let mut b = Batch::new();
    for id in 0..400 {
        b.put(Kind::BINDING, id, vec![id as u8; 1000], None);
    }
    store.commit_blocking(b).unwrap();
    store.close().unwrap();
    let whole = fs::read(db(&dir)).unwrap();
    assert!(whole.len() > 200_000);
    let truncated = &whole[..whole.len() / 2];
    fs::write(db(&dir), truncated).unwrap();
    let reason = assert_recovers(&dir, truncated);
    assert!(
        matches!(
            reason,
            CorruptReason::QuickCheck(_) | CorruptReason::Unreadable(_)
        ),
        "{reason:?}"
    );
}

#[test]
fn unknown_schema_version_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(db(&dir), Durability::Normal).unwrap();
    store
        .commit_blocking(put(Kind::BINDING, 1, b"x", None))
        .unwrap();
    store.close().unwrap();
    {
        let conn = rusqlite::Connection::open(db(&dir)).unwrap();
        conn.execute(
            "UPDATE meta SET value = 99 WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
        conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
    }
    let bytes = fs::read(db(&dir)).unwrap();
    let reason = assert_recovers(&dir, &bytes);
    assert_eq!(reason, CorruptReason::UnknownSchema { found: Some(99) });
}

#[test]
fn foreign_database_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = rusqlite::Connection::open(db(&dir)).unwrap();
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
    }
    let bytes = fs::read(db(&dir)).unwrap();
    let reason = assert_recovers(&dir, &bytes);
    assert_eq!(reason, CorruptReason::Foreign { application_id: 0 });
}

#[test]
fn empty_file_becomes_a_new_store() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(db(&dir), b"").unwrap();
    let (store, report) = Store::open(db(&dir), Durability::Normal).unwrap();
    assert_eq!(report.status, OpenStatus::New);
    assert!(report.moved_aside.is_empty());
    store
        .commit_blocking(put(Kind::BINDING, 1, b"x", None))
        .unwrap();
}

#[test]
fn orphan_wal_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("leases.db-wal");
    fs::write(&wal, b"stale wal").unwrap();
    let (_store, report) = Store::open(db(&dir), Durability::Normal).unwrap();
    assert_eq!(report.status, OpenStatus::New);
    assert_eq!(report.moved_aside.len(), 1);
    let name = report.moved_aside[0].file_name().unwrap().to_string_lossy();
    assert!(
        name.starts_with("leases.db.orphan-") && name.ends_with("-wal"),
        "{name}"
    );
    assert_eq!(fs::read(&report.moved_aside[0]).unwrap(), b"stale wal");
}

#[test]
fn missing_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/leases.db");
    match Store::open(&path, Durability::Normal) {
        Err(StoreError::MissingDirectory { dir: d }) => {
            assert_eq!(d, dir.path().join("no/such/dir"));
            let msg = StoreError::MissingDirectory { dir: d }.to_string();
            assert!(msg.contains("does not exist"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        Store::open(dir.path(), Durability::Normal),
        Err(StoreError::NotAFile { .. })
    ));
}

#[test]
fn a_second_opener_is_refused_and_nothing_moves() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(db(&dir), Durability::Normal).unwrap();
    store
        .commit_blocking(put(Kind::BINDING, 1, b"x", None))
        .unwrap();
    let before = files_in(dir.path());
    match Store::open(db(&dir), Durability::Normal) {
        Err(StoreError::Locked { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(files_in(dir.path()), before);
    // The first is unharmed.
    store
        .commit_blocking(put(Kind::BINDING, 2, b"y", None))
        .unwrap();
    assert_eq!(store.load_all(Kind::BINDING).unwrap().len(), 2);
}

#[test]
fn concurrent_batches_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(db(&dir), Durability::Full).unwrap();
    // Queue many without waiting: the writer groups them.
    let pending: Vec<_> = (0..2000)
        .map(|id| {
            store
                .submit_blocking(put(Kind::BINDING, id, b"v", None))
                .unwrap()
        })
        .collect();
    let mut largest = 0;
    for p in pending {
        largest = largest.max(p.wait().unwrap().batches);
    }
    let stats = store.stats();
    assert_eq!(stats.batches, 2000);
    assert!(stats.commits < 2000, "{stats:?}");
    assert!(largest > 1);
    assert_eq!(stats.largest_commit, largest as u64);

    // And from threads, each waiting for its own.
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let sub = store.submitter();
            s.spawn(move || {
                for i in 0..50 {
                    sub.commit_blocking(put(Kind::REGISTRATION, t * 1000 + i, b"r", None))
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(store.load_all(Kind::REGISTRATION).unwrap().len(), 400);
    println!("{:?}", store.stats());
}

#[test]
fn full_queue_pushes_back_and_closed_store_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        queue_capacity: 1,
        max_group: 1,
        durability: Durability::Full,
        ..Options::default()
    };
    let (store, _) = Store::open_with(db(&dir), &options).unwrap();
    let mut accepted = Vec::new();
    let mut full = None;
    for id in 0..100_000 {
        match store.try_submit(put(Kind::BINDING, id, b"v", None)) {
            Ok(p) => accepted.push(p),
            Err(e) => {
                full = Some(e);
                break;
            }
        }
    }
    let Some(SubmitError::Full(batch)) = full else {
        panic!("queue never filled");
    };
    assert_eq!(batch, put(Kind::BINDING, accepted.len() as u64, b"v", None));
    let sub = store.submitter();
    store.close().unwrap();
    // Everything accepted before close was committed.
    for p in accepted {
        p.wait().unwrap();
    }
    assert!(matches!(
        sub.try_submit(Batch::new()),
        Err(SubmitError::Closed(_))
    ));
    assert!(matches!(
        sub.commit_blocking(Batch::new()),
        Err(CommitError::Closed)
    ));
}

fn binding(bind: u32, client: u32) -> BindingRecord {
    BindingRecord {
        bind: BindId(bind),
        client: ClientId(client),
        method: Method::RsapIp,
        address: Ipv4Addr::new(192, 0, 2, 1),
        ports: PortSet::Range {
            first: 40000,
            count: 8,
        },
        spis: SpiSet::None,
        expires_at: Timestamp::from_secs(1_800_000_000),
    }
}

#[test]
fn lease_records_round_trip_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(db(&dir), Durability::Normal).unwrap();
    let mut grant = Batch::new();
    for (bind, client) in [(7, 0x5eed), (3, 0x1234)] {
        let b = binding(bind, client);
        let r = RegistrationRecord {
            client: ClientId(client),
            expires_at: Timestamp::from_secs(1_800_000_000),
        };
        grant
            .put_json(Kind::BINDING, u64::from(bind), &b, Some(b.expires_at))
            .unwrap()
            .put_json(
                Kind::REGISTRATION,
                u64::from(client),
                &r,
                Some(r.expires_at),
            )
            .unwrap();
    }
    store.commit_blocking(grant).unwrap();
    // Free bind 3: binding out, quarantine in.
    let q = |bind, until| QuarantineRecord {
        bind: BindId(bind),
        method: Method::RsapIp,
        address: Ipv4Addr::new(192, 0, 2, 1),
        ports: PortSet::None,
        spis: SpiSet::None,
        until: Timestamp::from_secs(until),
    };
    let mut free = Batch::new();
    free.delete_binding(BindId(3))
        .put_quarantine(&q(3, 500))
        .unwrap()
        .put_quarantine(&q(1, 900))
        .unwrap()
        .put_quarantine(&q(2, 100))
        .unwrap();
    store.commit_blocking(free).unwrap();
    store.close().unwrap();

    let (store, _) = Store::open(db(&dir), Durability::Normal).unwrap();
    let bindings: Vec<BindingRecord> = store
        .load_json(Kind::BINDING)
        .unwrap()
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    assert_eq!(bindings, vec![binding(7, 0x5eed)]);
    let registrations = store
        .load_json::<RegistrationRecord>(Kind::REGISTRATION)
        .unwrap();
    let clients: Vec<u32> = registrations.iter().map(|(_, r)| r.client.0).collect();
    assert_eq!(clients, vec![0x1234, 0x5eed]);
    let held = store
        .load_json::<QuarantineRecord>(Kind::QUARANTINE)
        .unwrap();
    let held: Vec<(u64, u64)> = held
        .iter()
        .map(|(id, q)| (*id, q.until.as_millis() / 1000))
        .collect();
    assert_eq!(held, vec![(1, 900), (2, 100), (3, 500)]);

    // A row that does not decode is named, not dropped.
    store
        .commit_blocking(put(Kind::BINDING, 9, b"not json", None))
        .unwrap();
    match store.load_json::<BindingRecord>(Kind::BINDING) {
        Err(StoreError::Decode { kind, id, .. }) => assert_eq!((kind, id), (Kind::BINDING, 9)),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.load_all(Kind::BINDING).unwrap().len(), 2);
}

#[test]
fn allocation_log_lines_are_written_before_the_ack() {
    // Fsynced every second (the default), before every ack, and every 10 ms.
    for sync in [1000, 0, 10] {
        allocation_log(Duration::from_millis(sync));
    }
}

fn allocation_log(sync: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("alloc.log");
    let options = Options {
        alloc_log: Some(log.clone()),
        alloc_log_sync: sync,
        ..Options::default()
    };
    let (store, _) = Store::open_with(db(&dir), &options).unwrap();
    let b = binding(7, 0x5eed_1234);
    let event = |event, lease| AllocEvent {
        time: Timestamp::from_millis(1_795_359_663_250),
        event,
        client: b.client,
        private: Some(Ipv4Addr::new(10, 0, 0, 2)),
        public: b.address,
        ports: b.ports.clone(),
        spis: b.spis.clone(),
        lease,
        bind: b.bind,
        method: b.method,
    };
    let mut grant = Batch::new();
    grant
        .put_json(Kind::BINDING, u64::from(b.bind.0), &b, Some(b.expires_at))
        .unwrap()
        .log(event(
            AllocEventKind::Grant,
            Some(Duration::from_secs(3600)),
        ));
    store.commit_blocking(grant).unwrap();
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        "time=2026-11-22T15:01:03.250Z event=grant client=0x5eed1234 private=10.0.0.2 \
         public=192.0.2.1 ports=40000-40007 spis= lease=3600 bind=7 method=rsap-ip\n"
    );

    // Rotation.
    let rotated = dir.path().join("alloc.log.1");
    fs::rename(&log, &rotated).unwrap();
    store.reopen_alloc_log().unwrap().wait().unwrap();
    let mut free = Batch::new();
    free.delete_binding(b.bind)
        .log(event(AllocEventKind::Free, None));
    store.commit_blocking(free).unwrap();
    assert_eq!(fs::read_to_string(&rotated).unwrap().lines().count(), 1);
    let new = fs::read_to_string(&log).unwrap();
    assert!(
        new.starts_with("time=") && new.contains(" event=free "),
        "{new}"
    );
    std::thread::sleep(2 * sync.min(Duration::from_millis(100)));
    assert_eq!(store.stats().log_lines, 2);
    assert_eq!(store.stats().log_errors, 0);
    store.close().unwrap();
}

#[test]
fn usable_from_async_code_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(db(&dir), Durability::Normal).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let store = std::sync::Arc::new(store);
    let committed = rt.block_on({
        let store = std::sync::Arc::clone(&store);
        async move {
            // 64 "hosts" on one runtime thread: none blocks it.
            let mut tasks = Vec::new();
            for id in 0..64u64 {
                let sub = store.submitter();
                tasks.push(tokio::task::spawn(async move {
                    let pending = sub.submit(put(Kind::BINDING, id, b"v", None)).await?;
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(pending.await?)
                }));
            }
            let mut n = 0;
            for t in tasks {
                t.await.unwrap().unwrap();
                n += 1;
            }
            n
        }
    });
    assert_eq!(committed, 64);
    assert_eq!(store.load_all(Kind::BINDING).unwrap().len(), 64);
    assert!(store.stats().commits < 64);
}
