//! `chat`: posts and closes in the chat itself.

use super::{MAX_KIND_BYTES, clamp_u32};
use crate::bindings::chat_gateway::plugin::chat::{self, ActionError};
use crate::command::Command;
use crate::ids::SessionId;
use crate::state::InstanceState;
use crate::world::World;

impl<W: World> chat::Host for InstanceState<W> {
    fn post_message(
        &mut self,
        session: u64,
        kind: String,
        text: String,
    ) -> wasmtime::Result<Result<(), ActionError>> {
        let session = SessionId(session);
        let max = self.limits.max_post_bytes;
        if text.len() > max || kind.len() > MAX_KIND_BYTES {
            return Ok(Err(ActionError::TooLong(clamp_u32(max))));
        }
        if !self.may_act_on(session) {
            return Ok(Err(ActionError::NoSession));
        }
        self.push(Command::Post {
            session,
            kind,
            text,
        })?;
        Ok(Ok(()))
    }

    fn close_session(
        &mut self,
        session: u64,
        reason: String,
    ) -> wasmtime::Result<Result<(), ActionError>> {
        let session = SessionId(session);
        if reason.len() > MAX_KIND_BYTES {
            return Ok(Err(ActionError::TooLong(clamp_u32(MAX_KIND_BYTES))));
        }
        if !self.may_act_on(session) {
            return Ok(Err(ActionError::NoSession));
        }
        self.push(Command::Close { session, reason })?;
        Ok(Ok(()))
    }
}
