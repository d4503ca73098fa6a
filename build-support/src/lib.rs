//! Compiles guest crates of this workspace into WebAssembly components from a build
//! script, so that `cargo run` and `cargo test` always use components built from the
//! current sources.
//!
//! Modelled on wasmtime's `crates/test-programs/artifacts/build.rs`: a nested cargo
//! for the `wasm32-wasip2` target, with its own target directory (sharing the outer one
//! would deadlock on cargo's lock) and without the outer build's `RUSTFLAGS`, which are
//! meant for the host. Unlike there, a missing `wasm32-wasip2` target is installed with
//! rustup, as cargo-component does, because a fresh machine has only the native target.

#![warn(missing_docs)]

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The target every guest is built for.
pub const TARGET: &str = "wasm32-wasip2";

/// The cargo profile guests are built with (see the workspace `Cargo.toml`).
pub const PROFILE: &str = "guest";

/// Builds the workspace package `package` as a component and returns the path of the
/// `.wasm` file. Emits `rerun-if-changed` for the package's sources and `watch`.
///
/// Panics with a readable message on failure: this runs in a build script, where a
/// panic is how an error reaches the person running cargo.
pub fn build_component(package: &str, package_dir: &Path, watch: &[&Path]) -> PathBuf {
    build(package, None, package_dir, watch)
}

/// Builds the example `example` of the workspace package `package` (an example whose
/// `crate-type` is `cdylib`) as a component, as [`build_component`] builds a package.
pub fn build_example(package: &str, example: &str, package_dir: &Path, watch: &[&Path]) -> PathBuf {
    build(package, Some(example), package_dir, watch)
}

fn build(package: &str, example: Option<&str>, package_dir: &Path, watch: &[&Path]) -> PathBuf {
    ensure_target();
    let workspace = workspace_root();
    let target_dir = guest_target_dir(&workspace);
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(&workspace).args([
        "build",
        "--package",
        package,
        "--target",
        TARGET,
        "--profile",
        PROFILE,
    ]);
    if let Some(example) = example {
        command.args(["--example", example]);
    }
    let status = command
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .status()
        .unwrap_or_else(|e| panic!("could not run cargo to build guest {package}: {e}"));
    assert!(
        status.success(),
        "building guest {package} for {TARGET} failed ({status})"
    );

    for dir in [package_dir].iter().copied().chain(watch.iter().copied()) {
        println!("cargo:rerun-if-changed={}", dir.display());
    }
    // The lock file pins the guests' dependencies; the workspace manifest holds the
    // `guest` profile they are compiled with.
    for file in ["Cargo.lock", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", workspace.join(file).display());
    }
    let output = target_dir.join(TARGET).join(PROFILE);
    let wasm = match example {
        None => output.join(format!("{}.wasm", package.replace('-', "_"))),
        Some(example) => output.join("examples").join(format!("{example}.wasm")),
    };
    assert!(
        wasm.exists(),
        "cargo built guest {package} but {} is missing",
        wasm.display()
    );
    wasm
}

/// The workspace root: the parent of the directory holding the calling package.
fn workspace_root() -> PathBuf {
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("run from a build script"));
    manifest
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").exists() || dir.join("rust-toolchain.toml").exists())
        .map(Path::to_path_buf)
        .unwrap_or(manifest)
}

/// Guests get a target directory of their own beside the outer one, shared by every
/// build script so dependencies such as wit-bindgen are compiled once.
fn guest_target_dir(workspace: &Path) -> PathBuf {
    env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("guests")
}

/// Installs the wasm target through rustup when the active toolchain lacks it.
fn ensure_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let installed = sysroot.is_some_and(|root| root.join("lib/rustlib").join(TARGET).exists());
    if installed {
        return;
    }
    println!(
        "cargo:warning=the {TARGET} target is missing: installing it with `rustup target add {TARGET}`"
    );
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .unwrap_or_else(|e| {
            panic!("the {TARGET} target is missing and rustup could not be run ({e}); install it with `rustup target add {TARGET}`")
        });
    assert!(
        status.success(),
        "`rustup target add {TARGET}` failed ({status})"
    );
}
