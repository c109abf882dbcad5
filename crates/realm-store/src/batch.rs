//! What a caller asks the store to make durable: a [`Batch`] of puts and
//! deletes of opaque values keyed by ([`Kind`], `u64` ID), plus the
//! allocation log lines that go with them.

use realm_lease::{BindId, ClientId, QuarantineRecord, Timestamp};
use serde::Serialize;

use crate::alloclog::AllocEvent;
use crate::{Kind, StoreError};

/// One change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Insert or replace the row (`kind`, `id`).
    Put {
        /// The table.
        kind: Kind,
        /// The row's ID.
        id: u64,
        /// The serialized value (the store never looks inside).
        value: Vec<u8>,
        /// When the row's lease ends, if it has one: expired rows are counted
        /// (and optionally pruned) when the store opens.
        expires_at: Option<Timestamp>,
    },
    /// Delete the row (`kind`, `id`) if it exists.
    Delete {
        /// The table.
        kind: Kind,
        /// The row's ID.
        id: u64,
    },
}

/// Changes that become durable together, in one transaction, in order: a later
/// op on the same key wins. Batches are applied in the order they were
/// queued.
///
/// A grant is [`Batch::put_json`] of the binding and the registration (+ a
/// log line); a free is `delete_binding` + `put_quarantine`; the end of
/// quarantine is `delete_quarantine`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// The changes, applied in order.
    pub ops: Vec<Op>,
    /// Allocation log lines, written (and flushed) after the transaction
    /// commits and before the batch is acknowledged. Ignored when the store has
    /// no allocation log.
    pub log: Vec<AllocEvent>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Whether the batch changes nothing and logs nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.log.is_empty()
    }

    /// Puts raw bytes.
    pub fn put(
        &mut self,
        kind: Kind,
        id: u64,
        value: Vec<u8>,
        expires_at: Option<Timestamp>,
    ) -> &mut Batch {
        self.ops.push(Op::Put {
            kind,
            id,
            value,
            expires_at,
        });
        self
    }

    /// Puts a value serialized as JSON (self-describing: a record that gains
    /// a `#[serde(default)]` field still reads rows written before).
    pub fn put_json<T: Serialize + ?Sized>(
        &mut self,
        kind: Kind,
        id: u64,
        value: &T,
        expires_at: Option<Timestamp>,
    ) -> Result<&mut Batch, StoreError> {
        let bytes =
            serde_json::to_vec(value).map_err(|source| StoreError::Encode { kind, id, source })?;
        Ok(self.put(kind, id, bytes, expires_at))
    }

    /// Deletes a row.
    pub fn delete(&mut self, kind: Kind, id: u64) -> &mut Batch {
        self.ops.push(Op::Delete { kind, id });
        self
    }

    /// Adds an allocation log line.
    pub fn log(&mut self, event: AllocEvent) -> &mut Batch {
        self.log.push(event);
        self
    }

    /// Deletes a registration.
    pub fn delete_registration(&mut self, client: ClientId) -> &mut Batch {
        self.delete(Kind::REGISTRATION, u64::from(client.0))
    }

    /// Deletes a binding.
    pub fn delete_binding(&mut self, bind: BindId) -> &mut Batch {
        self.delete(Kind::BINDING, u64::from(bind.0))
    }

    /// Puts a quarantine record (keyed by bind ID, expiring at `until`).
    pub fn put_quarantine(&mut self, q: &QuarantineRecord) -> Result<&mut Batch, StoreError> {
        self.put_json(Kind::QUARANTINE, u64::from(q.bind.0), q, Some(q.until))
    }

    /// Deletes a quarantine record.
    pub fn delete_quarantine(&mut self, bind: BindId) -> &mut Batch {
        self.delete(Kind::QUARANTINE, u64::from(bind.0))
    }

    /// Rows touched and value bytes written (for the stats).
    pub(crate) fn weight(&self) -> (u64, u64) {
        let bytes = self
            .ops
            .iter()
            .map(|op| match op {
                Op::Put { value, .. } => value.len() as u64,
                Op::Delete { .. } => 0,
            })
            .sum();
        (self.ops.len() as u64, bytes)
    }
}
