//! The `autoclose` command line: replay conversations through a chat-gateway plugin on
//! virtual time, check configurations, and generate scenarios.
//!
//! Lives in the library (the binary is one line) so that integration tests can build
//! the very same CLI as a binary of their own package and run it as a real process.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::config::HostConfig;
use crate::gateway::Gateway;
use crate::outbound::ScriptedReceiver;
use crate::runtime::{PluginComponent, Runtime};
use crate::{DEFAULT_PLUGIN, generate, replay, scenario};

/// Warn idle chat users, then close the chat: the reference host of the auto-close
/// chat-gateway plugin.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay a scenario (JSON Lines of events) on virtual time and print the
    /// transcript (JSON Lines of actions) on stdout.
    Replay {
        /// The operator configuration (JSON).
        #[arg(long)]
        config: PathBuf,
        /// A component to run instead of the built-in auto-close plugin.
        #[arg(long)]
        plugin: Option<PathBuf>,
        /// After the last event, keep firing timers for this many virtual ms.
        #[arg(long, default_value_t = replay::DEFAULT_TAIL_MS)]
        tail_ms: u64,
        /// Print counts and timings to stderr when done.
        #[arg(long)]
        stats: bool,
        /// The scenario file.
        scenario: PathBuf,
    },
    /// Check a configuration: parse it and configure every tenant's component.
    CheckConfig {
        /// The operator configuration (JSON).
        config: PathBuf,
        /// A component to check against instead of the built-in plugin.
        #[arg(long)]
        plugin: Option<PathBuf>,
    },
    /// Write a generated scenario (for load figures) to stdout or a file.
    Generate {
        /// Number of sessions.
        #[arg(long, default_value_t = 10_000)]
        sessions: usize,
        /// Comma-separated tenant names.
        #[arg(long, default_value = "acme,globex", value_delimiter = ',')]
        tenants: Vec<String>,
        /// Comma-separated channel names.
        #[arg(long, default_value = "web_chat,http_api", value_delimiter = ',')]
        channels: Vec<String>,
        /// Seed; the same arguments give the same file.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Sessions start spread over this many virtual ms.
        #[arg(long, default_value_t = 3_600_000)]
        spread_ms: u64,
        /// Output file (default stdout).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

/// Runs the CLI with the process's arguments; logs go to stderr (`AUTOCLOSE_LOG`
/// filters them, default `info`), errors too, with a non-zero exit code.
pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AUTOCLOSE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Replay {
            config,
            plugin,
            tail_ms,
            stats,
            scenario: path,
        } => {
            let started = Instant::now();
            let receiver = ScriptedReceiver::default();
            let (mut gateway, config) = start(&config, plugin.as_deref(), receiver.clone())?;
            let loaded = started.elapsed();
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("{}: cannot read scenario", path.display()))?;
            let lines = scenario::parse(&text).with_context(|| format!("{}", path.display()))?;
            let replay_started = Instant::now();
            let stdout = std::io::stdout().lock();
            let mut out = BufWriter::with_capacity(1 << 16, stdout);
            let summary = replay::replay(&mut gateway, &receiver, &lines, tail_ms, &mut out)
                .with_context(|| {
                    format!(
                        "{}: replay stopped; the transcript is incomplete",
                        path.display()
                    )
                })?;
            let replayed = replay_started.elapsed();
            if stats {
                eprintln!(
                    "replayed {} events of {} sessions ({} tenants) into {} actions in {:.3}s ({:.0} events/s); load and start {:.3}s; virtual end {} ms",
                    summary.events,
                    gateway.sessions_seen(),
                    config.tenants.len(),
                    summary.actions,
                    replayed.as_secs_f64(),
                    summary.events as f64 / replayed.as_secs_f64().max(1e-9),
                    loaded.as_secs_f64(),
                    summary.end_ms,
                );
            }
            Ok(())
        }
        Command::CheckConfig { config, plugin } => {
            let (_, config) = start(&config, plugin.as_deref(), ScriptedReceiver::default())?;
            println!(
                "ok: {} tenant(s), {} webhook(s)",
                config.tenants.len(),
                config.webhooks.len()
            );
            for tenant in &config.tenants {
                let component = tenant
                    .component
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "built-in auto-close".to_owned());
                println!("  {}: configured ({component})", tenant.name);
            }
            Ok(())
        }
        Command::Generate {
            sessions,
            tenants,
            channels,
            seed,
            spread_ms,
            output,
        } => {
            anyhow::ensure!(
                !tenants.is_empty() && !channels.is_empty(),
                "--tenants and --channels must not be empty"
            );
            let spec = generate::Spec {
                sessions,
                tenants,
                channels,
                seed,
                spread_ms,
            };
            let mut out: Box<dyn Write> = match &output {
                Some(path) => Box::new(BufWriter::new(
                    File::create(path)
                        .with_context(|| format!("{}: cannot create", path.display()))?,
                )),
                None => Box::new(BufWriter::new(std::io::stdout().lock())),
            };
            generate::generate(&spec, &mut out).context("cannot write the scenario")?;
            out.flush().context("cannot write the scenario")?;
            Ok(())
        }
    }
}

/// Loads the configuration and the component, and starts every tenant.
fn start(
    config_path: &Path,
    plugin: Option<&Path>,
    receiver: ScriptedReceiver,
) -> Result<(Gateway, HostConfig)> {
    let config = HostConfig::load(config_path)?;
    let runtime = Arc::new(Runtime::new(config.limits)?);
    let component: Arc<PluginComponent> = match plugin {
        Some(path) => runtime.load_file(path)?,
        None => runtime.load_bytes("built-in auto-close plugin", DEFAULT_PLUGIN)?,
    };
    let gateway = Gateway::new(runtime, &config, component, Box::new(receiver))
        .with_context(|| format!("{}", config_path.display()))?;
    Ok((gateway, config))
}
