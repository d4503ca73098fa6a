//! What the sandbox takes away from a plugin beyond WASI's empty context: the calls
//! that would block the host thread.

use crate::state::InstanceState;
use crate::world::World;
use wasmtime::component::Linker;

/// The WASI monotonic-clock interface as wasmtime-wasi links it.
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// Replaces the WASI calls that would block the host thread (a guest's
/// `std::thread::sleep` becomes `subscribe-duration` + `block`) with traps.
/// Epoch interruption only stops wasm code, never a host call, so a sleeping plugin
/// would otherwise hold up every tenant for as long as it likes. Plugins wait with
/// `timers.set`, which returns at once.
pub(crate) fn forbid_blocking<W: World>(
    linker: &mut Linker<InstanceState<W>>,
) -> wasmtime::Result<()> {
    use wasmtime::StoreContextMut;
    use wasmtime::component::Resource;
    use wasmtime_wasi::p2::DynPollable;

    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    for name in ["subscribe-duration", "subscribe-instant"] {
        clock.func_wrap(
            name,
            move |_: StoreContextMut<'_, InstanceState<W>>, _: (u64,)| -> wasmtime::Result<(Resource<DynPollable>,)> {
                wasmtime::bail!(
                    "plugin called {MONOTONIC_CLOCK}#{name}: blocking and sleeping are not allowed (use timers.set)"
                )
            },
        )?;
    }
    linker.allow_shadowing(false);
    Ok(())
}
