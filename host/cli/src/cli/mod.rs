//! The `autoclose` command line: replay conversations through a chat-gateway plugin on
//! virtual time, check configurations, and generate scenarios.
//!
//! Lives in the library (the binary is one line) so that integration tests can build
//! the very same CLI as a binary of their own package and run it as a real process.

mod check_config;
mod replay;
mod tenants;
mod test_webhook;
mod whatif;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use autoclose_config::HostConfig;
use autoclose_core::{Core, Runtime, start};
use autoclose_webhook::outbound::{Outbound, ScriptedReceiver};
use clap::{Parser, Subcommand};

use crate::{DEFAULT_PLUGIN, generate};

/// Warn idle chat users, then close the chat: the reference host of the auto-close
/// chat-gateway plugin.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// How logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for log collectors).
    Json,
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
        #[arg(long, default_value_t = crate::replay::DEFAULT_TAIL_MS)]
        tail_ms: u64,
        /// Let consecutive events of a tenant share one call into its component. The
        /// transcript is the same either way; it is faster only where one tenant's
        /// events come in long runs.
        #[arg(long)]
        batch: bool,
        /// Worker threads, each with its own plugin instances, sessions split among
        /// them; the transcript is the same, byte for byte. Default: one per core for
        /// the built-in plugin, one for a tenant's own component (which may keep state
        /// across sessions). A scenario read from a pipe, with `webhook_response`
        /// lines, or with --batch replays on one thread.
        #[arg(long)]
        threads: Option<usize>,
        /// Print counts and timings to stderr when done.
        #[arg(long)]
        stats: bool,
        /// The scenario file.
        scenario: PathBuf,
    },
    /// Run the sidecar: take events over HTTP, fire timers on the wall clock, send
    /// chat actions to the gateway's callback and pushes to the webhooks, and keep
    /// all of it in a store that survives a crash. SIGHUP reloads; SIGTERM stops.
    Serve {
        /// The operator configuration (JSON); needs a `gateway` section.
        #[arg(long)]
        config: PathBuf,
        /// A component to run instead of the built-in auto-close plugin.
        #[arg(long)]
        plugin: Option<PathBuf>,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Data directory for the store (default: $STATE_DIRECTORY, else
        /// $XDG_STATE_HOME/autoclose, else ~/.local/state/autoclose).
        #[arg(long)]
        data: Option<PathBuf>,
        /// How long a shutdown waits for deliveries under way, e.g. 10s.
        #[arg(long, default_value = "10s")]
        shutdown_grace: humantime::Duration,
        /// How long a closed session is remembered (events for it are ignored until
        /// then; afterwards its id starts a new session), e.g. 1d.
        #[arg(long, default_value = "1d")]
        forget_closed_after: humantime::Duration,
        /// Engines that sessions are split across (each with its own store file, so
        /// fixed for a data directory).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
        shards: u16,
        /// Refuse to start when a tenant fails to start (for deploy pipelines). Without
        /// it such a tenant is held failed, its events kept, while the others run.
        #[arg(long)]
        strict: bool,
        /// Steps of history each session keeps for the console at /ui (what came in,
        /// what was done and why, every delivery attempt); 0 keeps none. Kept in the
        /// store with the session and forgotten with it.
        #[arg(long, default_value_t = autoclose_core::history::DEFAULT_HISTORY_STEPS as u16,
              value_parser = clap::value_parser!(u16).range(0..=256))]
        history_steps: u16,
    },
    /// Check a configuration: parse it, configure every tenant's component, and have
    /// each component explain its tenant's settings (auto-close: the timeline of every
    /// channel and group and where each setting came from).
    CheckConfig {
        /// The operator configuration (JSON).
        config: PathBuf,
        /// A component to check against instead of the built-in plugin.
        #[arg(long)]
        plugin: Option<PathBuf>,
        /// Only say whether it is valid, without the explanation.
        #[arg(long)]
        quiet: bool,
    },
    /// Read and change tenant settings through a running `serve`'s admin API, one
    /// tenant at a time (checked by the tenant's component, versioned, audited).
    Tenants {
        /// The server's base URL.
        #[arg(long, env = "AUTOCLOSE_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// The bearer token: the operator's, or one tenant's. Prefer the environment
        /// variable: a command-line argument shows in the process list.
        #[arg(long, env = "AUTOCLOSE_TOKEN", hide_env_values = true)]
        token: Option<String>,
        #[command(subcommand)]
        command: tenants::TenantsCommand,
    },
    /// Print the OpenAPI document of `serve`'s HTTP interface (what it serves at
    /// /v1/openapi.json; docs/openapi.json holds it).
    Openapi,
    /// Print the JSON Schema of the configuration file, for editors that validate it,
    /// with the settings of a component (default: the built-in plugin) as it describes
    /// them.
    Schema {
        /// The component whose settings tenants without a `component` key have.
        #[arg(long)]
        plugin: Option<PathBuf>,
    },
    /// Send the push a tenant's channel would send, for real, with the webhook's
    /// signing and retry policy, printing each attempt. Exits 0 only if delivered.
    TestWebhook {
        /// The operator configuration (JSON).
        #[arg(long)]
        config: PathBuf,
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The channel (widget kind), e.g. web_chat.
        #[arg(long)]
        channel: String,
        /// Which notice to send.
        #[arg(long, value_enum, default_value_t = Notice::Warning)]
        event: Notice,
        /// A component to run instead of the built-in plugin.
        #[arg(long)]
        plugin: Option<PathBuf>,
    },
    /// Precompile a component (default: the built-in plugin) into a `.cwasm` artifact
    /// that `--plugin` and tenants' `component` load without compiling. Only load
    /// artifacts made by this same build.
    Compile {
        /// The `.wasm` component (default: the built-in auto-close plugin).
        input: Option<PathBuf>,
        /// Where to write the artifact (name it `*.cwasm`).
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Replay one conversation log under two or more configurations and compare them:
    /// chats closed, warned, pushed, rescued, closed on someone who came back, the
    /// time to each close and the hour of day, per tenant and channel, and the
    /// sessions that end differently with their timelines side by side. Writes one
    /// self-contained HTML report (and, with --summary, the numbers as JSON).
    Whatif {
        /// A configuration; give it twice or more, in the order to compare.
        #[arg(long = "config", required = true)]
        configs: Vec<PathBuf>,
        /// A label per configuration, in the same order (default: the file names).
        #[arg(long = "label")]
        labels: Vec<String>,
        /// A component to run instead of the built-in auto-close plugin.
        #[arg(long)]
        plugin: Option<PathBuf>,
        /// Where the HTML report goes.
        #[arg(long, default_value = "whatif.html")]
        report: PathBuf,
        /// Where the JSON summary goes.
        #[arg(long)]
        summary: Option<PathBuf>,
        /// How many differing sessions the report shows with their timelines.
        #[arg(long, default_value_t = 20)]
        examples: usize,
        /// The conversation log (the JSON Lines of `replay`).
        scenario: PathBuf,
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
        /// Most agent-and-end-user exchanges per session.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1000))]
        max_rounds: u64,
        /// Chance in percent that the end user answers a round.
        #[arg(long, default_value_t = 65, value_parser = clap::value_parser!(u64).range(0..=100))]
        reply_percent: u64,
        /// How long an answer takes: `uniform` (5 s to 4 minutes) or `realistic` (most
        /// within a minute, a long tail to 20 minutes).
        #[arg(long, value_enum, default_value = "uniform")]
        reply_times: generate::Replies,
        /// Start sessions mostly in business hours of the virtual day (use with a
        /// `--spread-ms` of a day or more).
        #[arg(long)]
        business_hours: bool,
        /// Output file (default stdout).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

/// Which push `test-webhook` sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Notice {
    /// The warning before the close.
    Warning,
    /// The close.
    Close,
}

/// Runs the CLI with the process's arguments; logs go to stderr (`AUTOCLOSE_LOG`
/// filters them, default `info`), errors too, with a non-zero exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("AUTOCLOSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    match run(cli) {
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
            batch,
            threads,
            stats,
            scenario: path,
        } => replay::run(
            &config,
            plugin.as_deref(),
            &path,
            replay::Flags {
                tail_ms,
                batch,
                threads,
                stats,
            },
        ),
        Command::Serve {
            config,
            plugin,
            listen,
            data,
            shutdown_grace,
            forget_closed_after,
            shards,
            strict,
            history_steps,
        } => {
            let options = autoclose_serve::ServeOptions {
                sources: autoclose_serve::reload::Sources {
                    config,
                    plugin,
                    built_in: DEFAULT_PLUGIN,
                },
                listen,
                data: data.unwrap_or_else(autoclose_serve::default_data_dir),
                shutdown_grace: shutdown_grace.into(),
                forget_closed_after: forget_closed_after.into(),
                shards: usize::from(shards),
                strict,
                history_steps: usize::from(history_steps),
            };
            autoclose_serve::run(options).context("serve")
        }
        Command::CheckConfig {
            config,
            plugin,
            quiet,
        } => {
            let (core, config) = start(&config, plugin.as_deref(), ScriptedReceiver::default())?;
            println!(
                "ok: {} tenant(s), {} webhook(s)",
                config.tenants.len(),
                config.webhooks.len()
            );
            check_config::explain_tenants(&core, quiet)
        }
        Command::Tenants {
            url,
            token,
            command,
        } => tenants::run(&tenants::Target { url, token }, command),
        Command::Openapi => {
            let document = autoclose_serve::api::openapi()
                .to_pretty_json()
                .context("cannot write the OpenAPI document")?;
            println!("{document}");
            Ok(())
        }
        Command::Schema { plugin } => {
            let runtime = Runtime::new(Default::default())?;
            let component = start::default_component(&runtime, plugin.as_deref(), DEFAULT_PLUGIN)?;
            let info = runtime.info(&component)?;
            let settings = info
                .settings_schema
                .as_deref()
                .map(serde_json::from_str::<serde_json::Value>)
                .transpose()
                .with_context(|| {
                    format!(
                        "{}: about.info gave a settings schema that is not JSON",
                        component.name()
                    )
                })?;
            let schema = serde_json::to_string_pretty(&autoclose_config::schema(settings.as_ref()))
                .context("serialising the schema")?;
            println!("{schema}");
            Ok(())
        }
        Command::TestWebhook {
            config,
            tenant,
            channel,
            event,
            plugin,
        } => test_webhook::run(
            &config,
            plugin.as_deref(),
            &tenant,
            &channel,
            event == Notice::Warning,
        ),
        Command::Compile { input, output } => {
            anyhow::ensure!(
                output.extension().is_some_and(|e| e == "cwasm"),
                "{}: the output must be named *.cwasm (that is how it is recognised when loaded)",
                output.display()
            );
            let runtime = Runtime::new(Default::default())?;
            let (name, bytes) = match &input {
                Some(path) => (
                    path.display().to_string(),
                    std::fs::read(path)
                        .with_context(|| format!("{}: cannot read", path.display()))?,
                ),
                None => (
                    "built-in auto-close plugin".to_owned(),
                    DEFAULT_PLUGIN.to_vec(),
                ),
            };
            let artifact = runtime.precompile(&name, &bytes)?;
            std::fs::write(&output, &artifact)
                .with_context(|| format!("{}: cannot write", output.display()))?;
            println!("{}: {} bytes from {name}", output.display(), artifact.len());
            Ok(())
        }
        Command::Whatif {
            configs,
            labels,
            plugin,
            report,
            summary,
            examples,
            scenario,
        } => whatif::run(&whatif::Request {
            configs: &configs,
            labels: &labels,
            plugin: plugin.as_deref(),
            scenario: &scenario,
            report: &report,
            summary: summary.as_deref(),
            examples,
        }),
        Command::Generate {
            sessions,
            tenants,
            channels,
            seed,
            spread_ms,
            max_rounds,
            reply_percent,
            reply_times,
            business_hours,
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
                max_rounds,
                reply_percent,
                replies: reply_times,
                business_hours,
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
) -> Result<(Core, HostConfig)> {
    start_with(config_path, plugin, Box::new(receiver))
}

/// [`start`] with any outbound transport.
fn start_with(
    config_path: &Path,
    plugin: Option<&Path>,
    outbound: Box<dyn Outbound + Send>,
) -> Result<(Core, HostConfig)> {
    let loaded = Loaded::load(config_path, plugin)?;
    let core = loaded
        .core(outbound)
        .with_context(|| format!("{}", config_path.display()))?;
    Ok((core, loaded.config))
}

/// A configuration with its runtime and default component, compiled once: what
/// starts any number of cores (one per replay worker).
struct Loaded {
    config: HostConfig,
    runtime: std::sync::Arc<Runtime>,
    component: std::sync::Arc<autoclose_core::PluginComponent>,
}

impl Loaded {
    fn load(config_path: &Path, plugin: Option<&Path>) -> Result<Loaded> {
        let config = HostConfig::load(config_path)?;
        let runtime = start::runtime_for(&config)?;
        let component = start::default_component(&runtime, plugin, DEFAULT_PLUGIN)?;
        Ok(Loaded {
            config,
            runtime,
            component,
        })
    }

    /// A core with every tenant started.
    fn core(&self, outbound: Box<dyn Outbound + Send>) -> Result<Core, autoclose_core::CoreError> {
        Core::new(
            self.runtime.clone(),
            &self.config,
            self.component.clone(),
            outbound,
        )
    }
}
