//! Maps keyed by small integer IDs use rustc's Fx hash (the `rustc-hash` crate).
//!
//! The keys stored are Bind IDs from the manager's own counter and client IDs
//! from the engine's generator, never chosen by the network, so a keyed
//! (DoS-resistant) hash buys nothing on insertion; a network-supplied ID is
//! only ever looked up. Fx is several times cheaper than SipHash.

/// A `HashMap` keyed by an ID newtype.
pub(crate) type IdMap<K, V> = rustc_hash::FxHashMap<K, V>;

/// A `HashSet` of ID newtypes.
pub(crate) type IdSet<K> = rustc_hash::FxHashSet<K>;
