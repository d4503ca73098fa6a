//! The `autoclose` binary; see [`autoclose_host::cli`].

fn main() -> std::process::ExitCode {
    autoclose_host::cli::main()
}
