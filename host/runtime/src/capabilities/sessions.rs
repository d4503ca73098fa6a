//! `sessions`: on-demand reads of a session, and the bytes a plugin keeps for it.

use super::clamp_u32;
use crate::bindings::chat_gateway::plugin::sessions::{self, StateError};
use crate::bindings::chat_gateway::plugin::types::Presence;
use crate::command::Command;
use crate::ids::{ChannelId, SessionId};
use crate::state::InstanceState;
use crate::world::World;

impl<W: World> sessions::Host for InstanceState<W> {
    fn external_id(&mut self, session: u64) -> wasmtime::Result<Option<String>> {
        Ok(self.external(SessionId(session)).map(str::to_owned))
    }

    fn channel_name(&mut self, channel: u32) -> wasmtime::Result<Option<String>> {
        Ok(self
            .lent
            .channel_name(self.tenant, ChannelId(channel))
            .map(str::to_owned))
    }

    fn attribute(&mut self, session: u64, name: String) -> wasmtime::Result<Option<String>> {
        Ok(self
            .session(SessionId(session))
            .and_then(|s| s.attributes.iter().find(|(k, _)| *k == name))
            .map(|(_, v)| v.clone()))
    }

    fn attributes(&mut self, session: u64) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self
            .session(SessionId(session))
            .map(|s| s.attributes.to_vec())
            .unwrap_or_default())
    }

    fn state(&mut self, session: u64) -> wasmtime::Result<Vec<u8>> {
        let session = SessionId(session);
        let written = self.commands.iter().rev().find_map(|c| match c {
            Command::SetState { session: s, state } if *s == session => Some(state.clone()),
            _ => None,
        });
        if let Some(state) = written {
            return Ok(state);
        }
        Ok(self
            .session(session)
            .map(|s| s.state.to_vec())
            .unwrap_or_default())
    }

    fn set_state(
        &mut self,
        session: u64,
        state: Vec<u8>,
    ) -> wasmtime::Result<Result<(), StateError>> {
        let session = SessionId(session);
        if !self.may_act_on(session) {
            return Ok(Err(StateError::NoSession));
        }
        if state.len() > self.limits.max_session_state_bytes {
            return Ok(Err(StateError::TooLarge(clamp_u32(
                self.limits.max_session_state_bytes,
            ))));
        }
        self.push(Command::SetState { session, state })?;
        Ok(Ok(()))
    }

    fn last_presence(&mut self, session: u64) -> wasmtime::Result<Presence> {
        Ok(self
            .session(SessionId(session))
            .map(|s| s.presence)
            .unwrap_or(Presence::Unknown))
    }
}
