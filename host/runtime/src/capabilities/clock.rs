//! `clock`: the host's time (virtual under replay).

use crate::bindings::chat_gateway::plugin::clock;
use crate::state::InstanceState;
use crate::world::World;

impl<W: World> clock::Host for InstanceState<W> {
    fn now(&mut self) -> wasmtime::Result<u64> {
        Ok(self.lent.now())
    }
}
