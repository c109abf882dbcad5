//! Random batch sequences applied to the store and to a `BTreeMap` model give
//! the same contents, expiry counts included, after every reopen. Batches are
//! queued several at a time so that group commits mix them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use realm_lease::Timestamp;
use realm_store::{Batch, Durability, Kind, KindCount, Options, Store};

#[derive(Clone, Debug)]
enum ModelOp {
    Put {
        kind: Kind,
        id: u64,
        value: Vec<u8>,
        expires_at: Option<u64>,
    },
    Delete {
        kind: Kind,
        id: u64,
    },
}

#[derive(Clone, Debug)]
enum Step {
    /// Queued together, then all awaited.
    Batches(Vec<Vec<ModelOp>>),
    /// Close and reopen, then compare.
    Reopen,
}

type Model = BTreeMap<(Kind, u64), (Vec<u8>, Option<u64>)>;

/// The expiry counting reference time (ms).
const NOW: u64 = 1_000;

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::REGISTRATION),
        Just(Kind::BINDING),
        Just(Kind::QUARANTINE),
        Just(Kind(u16::MAX)),
    ]
}

fn id() -> impl Strategy<Value = u64> {
    // Mostly a few IDs (so that ops collide), sometimes the extremes.
    prop_oneof![8 => 0u64..12, 1 => Just(u64::MAX), 1 => Just(1u64 << 63), 1 => any::<u64>()]
}

fn op() -> impl Strategy<Value = ModelOp> {
    prop_oneof![
        3 => (
            kind(),
            id(),
            proptest::collection::vec(any::<u8>(), 0..16),
            proptest::option::of(prop_oneof![0u64..2 * NOW, Just(u64::MAX)]),
        )
            .prop_map(|(kind, id, value, expires_at)| ModelOp::Put {
                kind,
                id,
                value,
                expires_at
            }),
        1 => (kind(), id()).prop_map(|(kind, id)| ModelOp::Delete { kind, id }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => proptest::collection::vec(proptest::collection::vec(op(), 0..6), 1..8)
            .prop_map(Step::Batches),
        1 => Just(Step::Reopen),
    ]
}

fn options() -> Options {
    Options {
        now: Some(Timestamp::from_millis(NOW)),
        ..Options::new(Durability::Normal)
    }
}

fn apply(model: &mut Model, ops: &[ModelOp]) {
    for op in ops {
        match op {
            ModelOp::Put {
                kind,
                id,
                value,
                expires_at,
            } => {
                model.insert((*kind, *id), (value.clone(), *expires_at));
            }
            ModelOp::Delete { kind, id } => {
                model.remove(&(*kind, *id));
            }
        }
    }
}

fn to_batch(ops: &[ModelOp]) -> Batch {
    let mut b = Batch::new();
    for op in ops {
        match op {
            ModelOp::Put {
                kind,
                id,
                value,
                expires_at,
            } => {
                b.put(
                    *kind,
                    *id,
                    value.clone(),
                    expires_at.map(Timestamp::from_millis),
                );
            }
            ModelOp::Delete { kind, id } => {
                b.delete(*kind, *id);
            }
        }
    }
    b
}

fn check(store: &Store, model: &Model) -> Result<(), TestCaseError> {
    for k in [
        Kind::REGISTRATION,
        Kind::BINDING,
        Kind::QUARANTINE,
        Kind(u16::MAX),
    ] {
        let want: Vec<(u64, Vec<u8>)> = model
            .range((k, 0)..=(k, u64::MAX))
            .map(|((_, id), (v, _))| (*id, v.clone()))
            .collect();
        prop_assert_eq!(store.load_all(k).unwrap(), want, "{}", k);
    }
    Ok(())
}

fn counts(model: &Model) -> BTreeMap<Kind, KindCount> {
    let mut c: BTreeMap<Kind, KindCount> = BTreeMap::new();
    for ((kind, _), (_, expires_at)) in model {
        let e = c.entry(*kind).or_default();
        e.rows += 1;
        // Stored expiries saturate at i64::MAX ms: still far in the future.
        if expires_at.is_some_and(|t| t <= NOW) {
            e.expired += 1;
        }
    }
    c
}

/// A scratch directory on tmpfs if there is one: this test checks contents,
/// not durability, and fsyncs on a shared disk would dominate its run time.
fn scratch() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap()
}

proptest! {
    // Each case opens SQLite files a few times (~10 ms): fewer cases than the
    // pure-data property tests elsewhere in the workspace.
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn store_matches_a_btreemap(steps in proptest::collection::vec(step(), 1..12)) {
        let dir = scratch();
        let path = dir.path().join("leases.db");
        let mut model = Model::new();
        let (mut store, _) = Store::open_with(&path, &options()).unwrap();
        for step in &steps {
            match step {
                Step::Batches(batches) => {
                    let pending: Vec<_> = batches
                        .iter()
                        .map(|ops| store.submit_blocking(to_batch(ops)).unwrap())
                        .collect();
                    for p in pending {
                        p.wait().unwrap();
                    }
                    for ops in batches {
                        apply(&mut model, ops);
                    }
                    check(&store, &model)?;
                }
                Step::Reopen => {
                    store.close().unwrap();
                    let (s, report) = Store::open_with(&path, &options()).unwrap();
                    store = s;
                    let got: BTreeMap<Kind, KindCount> = report
                        .kinds
                        .into_iter()
                        .filter(|(_, c)| c.rows > 0)
                        .collect();
                    prop_assert_eq!(got, counts(&model));
                    check(&store, &model)?;
                }
            }
        }
        store.close().unwrap();
        let (store, report) = Store::open_with(&path, &options()).unwrap();
        let got: BTreeMap<Kind, KindCount> =
            report.kinds.into_iter().filter(|(_, c)| c.rows > 0).collect();
        prop_assert_eq!(got, counts(&model));
        check(&store, &model)?;
    }
}
