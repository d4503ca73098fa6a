//! The data of the core's step log ([`crate::steps`]), apart from the code that
//! writes it, so that the core's struct imports no stage (as `gathered` and
//! `changes`).

use std::ops::Range;

use autoclose_runtime::TenantId;

/// What a step was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepKind {
    /// An event handed to [`Core::handle`].
    Event,
    /// A timer due at `due`, set `seq`-th by this core (its place among timers due at
    /// the same instant).
    Timer {
        /// When it was due.
        due: u64,
        /// The core's set order of the timer.
        seq: u64,
    },
    /// A webhook retry or a backed-off tenant coming back: steps whose order depends
    /// on deliveries and tenants shared by sessions.
    Shared {
        /// When it was due.
        due: u64,
    },
}

/// One step and what it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// What it was.
    pub kind: StepKind,
    /// How many actions it took: the next ones of [`Core::drain_actions`].
    pub actions: usize,
    /// The set order of the timers it set (and re-set), in order.
    pub timers_set: Range<u64>,
    /// The tenant whose plugin it called, if any.
    pub tenant: Option<TenantId>,
    /// That tenant's pending timers after the step.
    pub tenant_timers: usize,
    /// Whether a hook of that tenant failed in it: the tenant's back-off then holds
    /// the tenant's other sessions too.
    pub failed: bool,
}

/// The step being taken and the steps taken since the last drain.
#[derive(Debug, Default)]
pub(crate) struct StepLog {
    pub(crate) steps: Vec<Step>,
    pub(crate) open: Option<Open>,
}

/// The step being taken: where its actions and timers start.
#[derive(Debug)]
pub(crate) struct Open {
    pub(crate) kind: StepKind,
    pub(crate) actions_from: usize,
    pub(crate) seq_from: u64,
    /// The tenant called, and its failed hooks when it was first called.
    pub(crate) tenant: Option<(TenantId, u64)>,
}
