//! The `autoclose` binary; see [`autoclose::cli`].

fn main() -> std::process::ExitCode {
    autoclose::cli::main()
}
