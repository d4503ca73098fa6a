//! Sessions' history steps in rows of their own, apart from the session record.
//!
//! Why: with the console's 32 steps a session record is 2 to 5 KB, and every event
//! changes it; written whole, each event wrote the whole history again (most of the
//! engine's time and of the bytes written). Here a commit carries the steps added
//! since the last one (and a trim of those the history dropped), the session row
//! holds its history without the steps, and a fold writes one row a session for all
//! its new steps. [`Histories`] remembers per session what the log already holds;
//! `load` puts the steps back.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use ::redb::{ReadableTable, TableDefinition};
use autoclose_core::history::History;
use autoclose_core::records::SessionRecord;

use super::{RedbStore, encode};
use crate::StoreError;
use crate::fold::Steps;
use crate::log::{Key, Op};

/// Sessions' history steps, a run of them a row, by tenant, session, the first
/// step's number and one past the last's; the value is the JSON array of the steps.
/// A session record holds its history without the steps, so that a change writes
/// the new steps only, and a fold writes one row a session for all its new steps.
pub(super) const STEPS: TableDefinition<(&str, &str, u64, u64), &[u8]> =
    TableDefinition::new("history_steps");

/// What the log holds of a session's history, so that a commit writes only the
/// steps added since (and removes those dropped since).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Written {
    /// The session was written without a history.
    Off,
    /// Steps from `dropped` up to `end` (exclusive) are written.
    Steps {
        /// The first step kept.
        dropped: u64,
        /// One past the last step written.
        end: u64,
        /// The host time of the last step written: a history that has another step
        /// there is not the one written (it was replaced), and is written whole.
        last_at: Option<u64>,
    },
}

/// What the log holds of each session's history, by tenant and session.
#[derive(Debug, Default)]
pub(super) struct Histories(HashMap<String, HashMap<String, Written>>);

impl Histories {
    /// The ops of a session forgotten: the record and all its steps go.
    pub(super) fn forget(&mut self, tenant: &str, session: &str, ops: &mut Vec<Op>) {
        ops.push((Key::Session(tenant.to_owned(), session.to_owned()), None));
        ops.push(trim(tenant, session, u64::MAX));
        if let Some(sessions) = self.0.get_mut(tenant) {
            sessions.remove(session);
        }
    }

    /// The ops of one session record: its steps added since the last write (all
    /// the kept ones the first time this process writes the session), a trim when
    /// steps were dropped, and the record without its steps.
    pub(super) fn ops(&mut self, record: &SessionRecord, ops: &mut Vec<Op>) {
        let (tenant, session) = (&record.tenant, &record.session);
        let known = self
            .0
            .get(tenant)
            .and_then(|sessions| sessions.get(session))
            .copied();
        let now = match &record.history {
            None => {
                if known != Some(Written::Off) {
                    ops.push(trim(tenant, session, u64::MAX));
                }
                ops.push((
                    Key::Session(tenant.clone(), session.clone()),
                    Some(encode(record)),
                ));
                Written::Off
            }
            Some(history) => {
                let end = history.dropped + history.steps.len() as u64;
                let start = match known {
                    Some(Written::Steps {
                        dropped,
                        end: was,
                        last_at,
                    }) if dropped <= history.dropped
                        && was <= end
                        && step_at(history, was) == last_at.filter(|_| was > history.dropped) =>
                    {
                        if history.dropped > dropped {
                            ops.push(trim(tenant, session, history.dropped));
                        }
                        was.max(history.dropped)
                    }
                    _ => {
                        // Not written by this process yet (or not as it is now):
                        // every kept step is written again, so the rows there are go.
                        ops.push(trim(tenant, session, u64::MAX));
                        history.dropped
                    }
                };
                for (n, step) in (history.dropped..).zip(&history.steps) {
                    if n >= start {
                        ops.push((
                            Key::Step(tenant.clone(), session.clone(), n),
                            Some(encode(step)),
                        ));
                    }
                }
                ops.push((
                    Key::Session(tenant.clone(), session.clone()),
                    Some(encode(&without_steps(record, history))),
                ));
                Written::Steps {
                    dropped: history.dropped,
                    end,
                    last_at: history.steps.back().map(|step| step.at),
                }
            }
        };
        match self.0.get_mut(tenant) {
            Some(sessions) => {
                sessions.insert(session.clone(), now);
            }
            None => {
                self.0
                    .insert(tenant.clone(), HashMap::from([(session.clone(), now)]));
            }
        }
    }
}

/// Writes a fold's `pending` steps of `session`: the trim first (a step written after
/// a trim in the log is written after it here), then a row a run.
pub(super) fn write(
    table: &mut ::redb::Table<(&str, &str, u64, u64), &[u8]>,
    (tenant, session): (&str, &str),
    pending: &Steps,
) -> Result<(), ::redb::StorageError> {
    if pending.trim > 0 {
        // A run that ends at or below the bound goes; one across it stays (its
        // steps below the bound are skipped when read).
        let below = pending.trim;
        table.retain_in(
            (tenant, session, 0, 0)..(tenant, session, below, 0),
            |(_, _, _, end), _| end > below,
        )?;
    }
    for run in runs(&pending.written) {
        let (first, end) = (run[0].0, run[run.len() - 1].0 + 1);
        let mut value = Vec::with_capacity(run.iter().map(|(_, v)| v.len() + 1).sum::<usize>() + 1);
        value.push(b'[');
        for (i, (_, step)) in run.iter().enumerate() {
            if i > 0 {
                value.push(b',');
            }
            value.extend_from_slice(step);
        }
        value.push(b']');
        table.insert((tenant, session, first, end), value.as_slice())?;
    }
    Ok(())
}

/// `written` (in order) cut where numbers are not consecutive: each part is a row.
fn runs(written: &[(u64, Vec<u8>)]) -> impl Iterator<Item = &[(u64, Vec<u8>)]> {
    written.chunk_by(|a, b| b.0 == a.0 + 1)
}

/// The host time of the step before step `end` of `history`, if it is kept.
fn step_at(history: &History, end: u64) -> Option<u64> {
    let index = end.checked_sub(history.dropped)?.checked_sub(1)?;
    history
        .steps
        .get(usize::try_from(index).ok()?)
        .map(|step| step.at)
}

/// A trim of `session`'s steps below `below`.
fn trim(tenant: &str, session: &str, below: u64) -> Op {
    (
        Key::Trim(tenant.to_owned(), session.to_owned()),
        Some(below.to_le_bytes().to_vec()),
    )
}

/// `record` with its history's steps left out (they are rows of their own).
fn without_steps(record: &SessionRecord, history: &History) -> SessionRecord {
    SessionRecord {
        history: Some(Arc::new(History {
            steps: VecDeque::new(),
            dropped: history.dropped,
            user_wrote_at: history.user_wrote_at,
            timers: history.timers.clone(),
        })),
        ..record.clone()
    }
}

impl RedbStore {
    /// Puts each session's history steps back into its record (`sessions` is in key
    /// order, as the table gives it). Steps below a history's `dropped` are left over
    /// from a trim and skipped; a gap in the kept ones is damage.
    pub(super) fn load_steps(
        &self,
        txn: &::redb::ReadTransaction,
        sessions: &mut [SessionRecord],
    ) -> Result<(), StoreError> {
        let table = txn
            .open_table(STEPS)
            .map_err(|e| self.io("open history steps", e))?;
        let mut at = 0;
        for row in table.iter().map_err(|e| self.io("read history steps", e))? {
            let (key, value) = row.map_err(|e| self.io("read history steps", e))?;
            let (tenant, session, first, end) = key.value();
            while at < sessions.len()
                && (sessions[at].tenant.as_str(), sessions[at].session.as_str()) < (tenant, session)
            {
                at += 1;
            }
            let name = || format!("{tenant}/{session}/{first}..{end}");
            let Some(record) = sessions
                .get_mut(at)
                .filter(|r| r.tenant == tenant && r.session == session)
            else {
                // Steps of a session the record of which is gone: nothing reads them.
                continue;
            };
            let Some(history) = record.history.as_mut() else {
                continue;
            };
            let run: Vec<autoclose_core::history::Step> =
                self.decode("history_steps", &name(), value.value())?;
            if run.len() as u64 != end.saturating_sub(first) {
                return Err(self.corrupt(
                    "history_steps",
                    &name(),
                    format_args!(
                        "{} steps where the key says {}",
                        run.len(),
                        end.saturating_sub(first)
                    ),
                ));
            }
            for (n, step) in (first..).zip(run) {
                if n < history.dropped {
                    continue;
                }
                let expected = history.dropped + history.steps.len() as u64;
                if n != expected {
                    return Err(self.corrupt(
                        "history_steps",
                        &name(),
                        format_args!("step {expected} is missing"),
                    ));
                }
                Arc::make_mut(history).steps.push_back(step);
            }
        }
        Ok(())
    }
}
