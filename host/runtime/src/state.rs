//! What a store holds for one instance: the sandbox's WASI context (which grants
//! nothing), its limits, and the record of what the running call asked for.

use std::sync::Arc;

use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::command::Command;
use crate::ids::{SessionId, TenantId};
use crate::limits::Limits;
use crate::world::{SessionView, World};

/// Most bytes of a plugin's stderr kept for the log when its instance traps.
const STDERR_CAPTURE: usize = 4 * 1024;

/// Everything a store holds for one instance.
pub struct InstanceState<W> {
    wasi: WasiCtx,
    table: ResourceTable,
    stderr: MemoryOutputPipe,
    pub(crate) limiter: StoreLimits,
    /// The bounds of this tenant's instance.
    pub(crate) limits: Limits,
    pub(crate) tenant: TenantId,
    pub(crate) tenant_name: Arc<str>,
    /// The webhooks this tenant may call.
    pub(crate) allowed_webhooks: Arc<[String]>,
    /// Log records written in the running call.
    pub(crate) logs_this_call: u32,
    /// The sessions of the running call's events, in order: each action counts
    /// against the event of the session it names.
    pub(crate) call_sessions: Vec<SessionId>,
    /// The event of the running call's latest action so far: a plugin handles the
    /// events in order, acting on each event's session, so this never goes back.
    last_event_acted: usize,
    /// An action of the running call, which has several events, named a session of an
    /// earlier event than the previous action did, or of no event of the call: the
    /// plugin acts across sessions, and the host cannot say which event it belongs to.
    acted_outside: bool,
    /// The host's state while a call runs; empty otherwise.
    pub(crate) lent: Box<W>,
    /// What the running call asked for.
    pub(crate) commands: Vec<Command>,
    /// The sessions whose close the running call reports: the plugin may still send a
    /// webhook for them (a last notice), though it may not act on them in the chat.
    pub(crate) closing: Vec<SessionId>,
}

impl<W: World> InstanceState<W> {
    /// A fresh state for `tenant`: a WASI context that grants nothing (no files, no
    /// environment, no network) and stderr captured for trap reports.
    pub fn new(
        tenant: TenantId,
        tenant_name: Arc<str>,
        allowed_webhooks: Arc<[String]>,
        limits: Limits,
    ) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .stderr(stderr.clone())
            .build();
        InstanceState {
            wasi,
            table: ResourceTable::new(),
            stderr,
            limiter: StoreLimits::default(),
            limits,
            tenant,
            tenant_name,
            allowed_webhooks,
            logs_this_call: 0,
            call_sessions: Vec::new(),
            last_event_acted: 0,
            acted_outside: false,
            lent: Box::default(),
            commands: Vec::new(),
            closing: Vec::new(),
        }
    }

    /// What the plugin wrote to stderr (a panic message, usually), for the log.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_owned()
    }

    /// Prepares the coming call, which carries `sessions`' events in order and reports
    /// the close of the `closing` sessions.
    pub fn begin_call(
        &mut self,
        sessions: impl IntoIterator<Item = SessionId>,
        closing: impl IntoIterator<Item = SessionId>,
    ) {
        self.call_sessions.clear();
        self.call_sessions.extend(sessions);
        self.closing.clear();
        self.closing.extend(closing);
        self.last_event_acted = 0;
        self.acted_outside = false;
        self.logs_this_call = 0;
    }

    /// What the call asked for, in order, leaving an empty buffer (with its capacity
    /// if [`InstanceState::give_back`] returned it).
    pub fn take_commands(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.commands)
    }

    /// Hands an emptied command buffer back, so that the next call records into it
    /// without allocating.
    pub fn give_back(&mut self, mut commands: Vec<Command>) {
        commands.clear();
        self.commands = commands;
    }

    /// The world lent to the store: during a call, the host's state; outside one, an
    /// empty world. Lets a host test its capabilities' checks against a state it set
    /// up, without a component.
    pub fn world_mut(&mut self) -> &mut W {
        &mut self.lent
    }

    /// What the running (or last) call asked for so far, in order.
    pub fn commands(&self) -> &[Command] {
        &self.commands
    }

    /// Whether the call that just ran acted across its events' sessions (see
    /// `hooks.on-events`).
    pub fn acted_outside(&self) -> bool {
        self.acted_outside
    }

    /// Records `command`, counting it against the event of the session it names (in a
    /// call with one event, against that event whatever the session).
    #[inline]
    pub(crate) fn push(&mut self, command: Command) -> wasmtime::Result<()> {
        let limit = self.limits.actions_per_event;
        let counted = if self.call_sessions.len() <= 1 {
            self.commands.len()
        } else {
            let session = command.session();
            match self.call_sessions.iter().position(|s| *s == session) {
                Some(event) if event >= self.last_event_acted => {
                    self.last_event_acted = event;
                    self.commands
                        .iter()
                        .filter(|c| c.session() == session)
                        .count()
                }
                _ => {
                    self.acted_outside = true;
                    self.commands.len() / self.call_sessions.len()
                }
            }
        };
        if counted >= limit {
            wasmtime::bail!("plugin exceeded limits.actions_per_event ({limit}) for one event");
        }
        self.commands.push(command);
        Ok(())
    }

    /// This tenant's session `session`, open or closed.
    #[inline]
    pub(crate) fn session(&self, session: SessionId) -> Option<SessionView<'_>> {
        self.lent.session(self.tenant, session)
    }

    /// Whether `session` is this tenant's, open, and not closed earlier in this call.
    #[inline]
    pub(crate) fn may_act_on(&self, session: SessionId) -> bool {
        self.session(session).is_some_and(|s| !s.closed)
            && !self
                .commands
                .iter()
                .any(|c| matches!(c, Command::Close { session: s, .. } if *s == session))
    }

    /// The gateway's id of this tenant's session `session`.
    #[inline]
    pub(crate) fn external(&self, session: SessionId) -> Option<&str> {
        self.session(session).map(|s| s.external)
    }
}

impl<W: Send + 'static> WasiView for InstanceState<W> {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
