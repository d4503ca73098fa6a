//! Builds the test components the integration tests load into the host.

use std::path::Path;

fn main() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let wasm = autoclose_guest_build::build_component(
        "misbehaving-plugin",
        &here.join("guests/misbehaving"),
        &[&here.join("../wit"), &here.join("../sdk")],
    );
    println!("cargo:rustc-env=MISBEHAVING_PLUGIN_WASM={}", wasm.display());
    let csat = autoclose_guest_build::build_component(
        "csat-component",
        &here.join("../examples/components/csat"),
        &[&here.join("../wit"), &here.join("../sdk")],
    );
    println!("cargo:rustc-env=CSAT_COMPONENT_WASM={}", csat.display());
    let greeter = autoclose_guest_build::build_example(
        "chat-gateway-sdk",
        "greeter",
        &here.join("../sdk"),
        &[&here.join("../wit")],
    );
    println!(
        "cargo:rustc-env=GREETER_COMPONENT_WASM={}",
        greeter.display()
    );
}
