//! Builds the auto-close component from `plugin/` so that the CLI and the tests always
//! run a component compiled from the current sources, with plain `cargo`.

use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let wasm = autoclose_guest_build::build_component(
        "autoclose-plugin",
        &root.join("plugin"),
        &[&root.join("wit"), &root.join("sdk")],
    );
    println!("cargo:rustc-env=AUTOCLOSE_PLUGIN_WASM={}", wasm.display());
}
