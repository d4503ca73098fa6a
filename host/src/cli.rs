//! The `autoclose` command line: replay conversations through a chat-gateway plugin on
//! virtual time, check configurations, and generate scenarios.
//!
//! Lives in the library (the binary is one line) so that integration tests can build
//! the very same CLI as a binary of their own package and run it as a real process.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
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
use crate::scenario::{ScenarioError, ScenarioLine};
use crate::{DEFAULT_PLUGIN, generate, replay, scenario};

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
        #[arg(long, default_value_t = replay::DEFAULT_TAIL_MS)]
        tail_ms: u64,
        /// Let consecutive events of a tenant share one call into its component. The
        /// transcript is the same either way; it is faster only where one tenant's
        /// events come in long runs.
        #[arg(long)]
        batch: bool,
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
        /// Output file (default stdout).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

/// Lines from which a replay shows a progress bar.
const PROGRESS_FROM_LINES: usize = 100_000;

/// A progress bar on stderr for a replay of `lines` lines, when stderr is a terminal
/// and the replay is long enough to want one. Never on stdout: that is the transcript.
fn progress_bar(lines: usize) -> Option<indicatif::ProgressBar> {
    if lines < PROGRESS_FROM_LINES || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return None;
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(lines as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {human_pos}/{human_len} lines, {rate}, {eta} left",
    ) {
        bar.set_style(style.with_key(
            "rate",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0} lines/s", state.per_sec());
            },
        ));
    }
    Some(bar)
}

/// The process's peak resident memory in MiB (`VmHWM`), where the system reports it
/// (Linux).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
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
            stats,
            scenario: path,
        } => {
            let started = Instant::now();
            let receiver = ScriptedReceiver::default();
            let (mut gateway, config) = start(&config, plugin.as_deref(), receiver.clone())?;
            let loaded = started.elapsed();
            // A bad line stops the run before any output: the whole scenario is checked
            // first. A regular file is then read a second time and replayed line by
            // line, so memory grows with the sessions, not the lines; anything else (a
            // pipe, `/dev/stdin`) can be read only once and is held in memory.
            let open = || {
                File::open(&path)
                    .map(|file| std::io::BufReader::with_capacity(1 << 16, file))
                    .with_context(|| format!("{}: cannot read scenario", path.display()))
            };
            let regular = std::fs::metadata(&path).is_ok_and(|m| m.is_file());
            let check_started = Instant::now();
            let (lines, held) = if regular {
                let lines =
                    scenario::check(open()?).with_context(|| format!("{}", path.display()))?;
                (lines, None)
            } else {
                let mut text = String::new();
                open()?
                    .read_to_string(&mut text)
                    .with_context(|| format!("{}: cannot read scenario", path.display()))?;
                let held = scenario::parse(&text).with_context(|| format!("{}", path.display()))?;
                (held.len(), Some(held))
            };
            let checked = check_started.elapsed();
            let source: Box<dyn Iterator<Item = Result<ScenarioLine, ScenarioError>>> = match held {
                Some(held) => Box::new(held.into_iter().map(Ok)),
                None => Box::new(scenario::read_again(open()?)),
            };
            let replay_started = Instant::now();
            let stdout = std::io::stdout().lock();
            let mut out = BufWriter::with_capacity(1 << 16, stdout);
            let bar = progress_bar(lines);
            let summary = replay::replay_with_progress(
                &mut gateway,
                &receiver,
                source,
                replay::ReplayOptions { tail_ms, batch },
                &mut out,
                |done| {
                    if let Some(bar) = &bar {
                        bar.set_position(done as u64);
                    }
                },
            )
            .with_context(|| {
                format!(
                    "{}: replay stopped; the transcript is incomplete",
                    path.display()
                )
            })?;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            let replayed = replay_started.elapsed();
            if stats {
                eprintln!(
                    "replayed {} events of {} sessions ({} tenants) into {} actions in {:.3}s ({:.0} events/s, reading and parsing included); checked {} lines in {:.3}s ({:.0} lines/s); load and start {:.3}s; virtual end {} ms{}",
                    summary.events,
                    gateway.sessions_seen(),
                    config.tenants.len(),
                    summary.actions,
                    replayed.as_secs_f64(),
                    summary.events as f64 / replayed.as_secs_f64().max(1e-9),
                    lines,
                    checked.as_secs_f64(),
                    lines as f64 / checked.as_secs_f64().max(1e-9),
                    loaded.as_secs_f64(),
                    summary.end_ms,
                    peak_rss_mib()
                        .map(|mib| format!("; peak RSS {mib:.0} MiB"))
                        .unwrap_or_default(),
                );
            }
            Ok(())
        }
        Command::Serve {
            config,
            plugin,
            listen,
            data,
            shutdown_grace,
            forget_closed_after,
            shards,
        } => {
            let options = crate::serve::ServeOptions {
                sources: crate::serve::reload::Sources { config, plugin },
                listen,
                data: data.unwrap_or_else(crate::serve::default_data_dir),
                shutdown_grace: shutdown_grace.into(),
                forget_closed_after: forget_closed_after.into(),
                shards: usize::from(shards),
            };
            crate::serve::run(options).context("serve")
        }
        Command::CheckConfig {
            config,
            plugin,
            quiet,
        } => {
            let (gateway, config) = start(&config, plugin.as_deref(), ScriptedReceiver::default())?;
            println!(
                "ok: {} tenant(s), {} webhook(s)",
                config.tenants.len(),
                config.webhooks.len()
            );
            check_config::explain_tenants(&gateway, quiet)
        }
        Command::Schema { plugin } => {
            let runtime = Runtime::new(Default::default())?;
            let component = default_component(&runtime, plugin.as_deref())?;
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
            let schema = serde_json::to_string_pretty(&crate::config::schema(settings.as_ref()))
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
        Command::Generate {
            sessions,
            tenants,
            channels,
            seed,
            spread_ms,
            max_rounds,
            reply_percent,
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
    start_with(config_path, plugin, Box::new(receiver))
}

/// [`start`] with any outbound transport.
fn start_with(
    config_path: &Path,
    plugin: Option<&Path>,
    outbound: Box<dyn crate::outbound::Outbound + Send>,
) -> Result<(Gateway, HostConfig)> {
    let config = HostConfig::load(config_path)?;
    let runtime = Arc::new(Runtime::with_options(
        config.limits,
        config.runtime_options(),
    )?);
    let component = default_component(&runtime, plugin)?;
    let gateway = Gateway::new(runtime, &config, component, outbound)
        .with_context(|| format!("{}", config_path.display()))?;
    Ok((gateway, config))
}

/// The component of tenants that name none: `plugin`, or the built-in auto-close.
fn default_component(runtime: &Runtime, plugin: Option<&Path>) -> Result<Arc<PluginComponent>> {
    Ok(match plugin {
        Some(path) => runtime.load_file(path)?,
        None => runtime.load_bytes(BUILT_IN, DEFAULT_PLUGIN)?,
    })
}

/// How the built-in auto-close component is labelled in errors and reports.
const BUILT_IN: &str = "built-in";

/// `autoclose check-config`: every tenant's component explains its settings.
mod check_config {
    use anyhow::{Result, anyhow};

    use crate::gateway::Gateway;

    /// Prints, per tenant, which component runs it (as it says who it is) and, unless
    /// `quiet`, what its settings make it do, indented.
    pub fn explain_tenants(gateway: &Gateway, quiet: bool) -> Result<()> {
        let runtime = gateway.runtime();
        for (tenant, component, setup) in gateway.tenant_setups() {
            let info = runtime.info(component)?;
            println!(
                "  {tenant}: configured ({} {}, {})",
                info.name,
                info.version,
                component.name()
            );
            if quiet {
                continue;
            }
            let text = runtime
                .explain(component, &setup)?
                .map_err(|e| anyhow!("tenants.{tenant}.{}: {}", e.path, e.reason))?;
            if text.trim().is_empty() {
                println!("    (the component gives no explanation)");
            }
            for line in text.lines() {
                println!("    {line}");
            }
        }
        Ok(())
    }
}

/// `autoclose test-webhook`: the "send test event" button.
mod test_webhook {
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use anyhow::{Context, Result, bail};

    use crate::event::{GatewayEvent, MessageEvent, OpenedEvent, Sender};
    use crate::http::HttpSender;
    use crate::outbound::Capture;
    use crate::webhook::retry::{self, Decision};

    /// The session id the simulated conversation uses.
    const SESSION: &str = "autoclose-test-webhook";

    fn now_ms() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    /// Renders the push by running the tenant's component on a simulated conversation
    /// (an agent message, then silence), then delivers it for real.
    pub fn run(
        config_path: &Path,
        plugin: Option<&Path>,
        tenant: &str,
        channel: &str,
        warning: bool,
    ) -> Result<()> {
        let capture = Capture::default();
        let (mut gateway, config) =
            super::start_with(config_path, plugin, Box::new(capture.clone()))?;
        if !config.tenants.iter().any(|t| t.name == tenant) {
            bail!("{}: no tenant {tenant:?}", config_path.display());
        }
        let start = now_ms();
        let opened = GatewayEvent::SessionOpened(OpenedEvent {
            tenant: tenant.to_owned(),
            session: SESSION.to_owned(),
            channel: channel.to_owned(),
            attributes: BTreeMap::from([("locale".to_owned(), "en".to_owned())]),
        });
        let message = GatewayEvent::Message(MessageEvent {
            tenant: tenant.to_owned(),
            session: SESSION.to_owned(),
            sender: Sender::Agent,
            id: None,
            text: None,
            channel: None,
            origin: None,
            attachment: false,
            sender_name: None,
        });
        gateway.handle(start, &opened)?;
        gateway.handle(start, &message)?;
        let suffix = if warning { ".warning" } else { ".closed" };
        let horizon = start + 15 * 24 * 60 * 60 * 1000;
        let attempt = loop {
            if let Some(found) = capture
                .attempts()
                .into_iter()
                .find(|a| a.event_type.ends_with(suffix))
            {
                break found;
            }
            match gateway.next_due() {
                Some(due) if due <= horizon => gateway.advance_to(due),
                _ => bail!(
                    "tenant {tenant:?} sends no {} push on channel {channel:?}: check its push.webhook and {}",
                    if warning { "warning" } else { "close" },
                    if warning {
                        "the push switch of its warnings (warnings[i].push)"
                    } else {
                        "close.push"
                    }
                ),
            }
        };
        let webhook = config
            .webhooks
            .get(&attempt.webhook)
            .with_context(|| format!("webhook {:?} is not configured", attempt.webhook))?;
        println!(
            "{} via webhook {:?}: {} {}://{}{}",
            attempt.event_type,
            attempt.webhook,
            attempt.method,
            attempt.url.scheme(),
            attempt.url.host_str().unwrap_or(""),
            attempt.url.path()
        );
        println!("webhook-id: {}", attempt.id);
        println!(
            "signed: {}",
            if webhook.secrets.is_empty() {
                "no (no secret configured)".to_owned()
            } else {
                format!("yes, {} signature(s)", webhook.secrets.len())
            }
        );
        println!("body: {}", String::from_utf8_lossy(&attempt.body));
        let sender = HttpSender::new()?;
        let queued = now_ms();
        let deadline = queued + webhook.retry.deadline_ms;
        let mut number = 1;
        loop {
            let mut this = attempt.clone();
            this.number = number;
            let result = sender.send(&this);
            let now = now_ms();
            match retry::decide(&webhook.retry, number, &result, now, deadline, &attempt.id) {
                Decision::Delivered => {
                    println!("attempt {number}: {result} -> delivered after {number} attempt(s)");
                    return Ok(());
                }
                Decision::Retry { at } => {
                    let wait = at.saturating_sub(now);
                    println!(
                        "attempt {number}: {result} -> retry in {:.1}s",
                        wait as f64 / 1000.0
                    );
                    std::thread::sleep(Duration::from_millis(wait));
                    number += 1;
                }
                Decision::GiveUp { reason } => {
                    println!("attempt {number}: {result} -> gave up: {reason}");
                    bail!("not delivered: {reason}");
                }
                Decision::Gone => {
                    println!("attempt {number}: {result} -> gave up: 410 Gone");
                    bail!("not delivered: the receiver answered 410 Gone");
                }
            }
        }
    }
}
