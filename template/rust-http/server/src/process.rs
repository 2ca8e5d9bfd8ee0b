//! The function binary's `main`: `--help` and `--version` without starting anything; logs to
//! stderr (JSON lines with `<NAME>_LOG_FORMAT=json` or `LOG_FORMAT=json`, as the template sets
//! for of-watchdog's `prefix_logs=false`); settings from the environment; SIGTERM and Ctrl-C;
//! exit 0 after a clean drain, 1 with one line naming the cause otherwise (2 for bad arguments).
//! Nothing it writes may panic: behind of-watchdog, stdout and stderr are pipes that close when
//! the watchdog exits, often before the function's last log line (a panic there exits 101).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use prometheus_client::registry::Registry;
use tracing_subscriber::EnvFilter;

use crate::settings::env_prefix;
use crate::{Function, InitError, Settings};

/// What `--help` and `--version` print.
pub struct About {
    /// The function's name: log and metric prefix, and the `<NAME>_` of its variables.
    pub name: &'static str,
    pub version: &'static str,
    /// One line saying what the function does.
    pub summary: &'static str,
    /// The function's own variables, one per line, for `--help`.
    pub variables: &'static str,
}

/// Runs the function's server for the whole process. `init` reads the function's own settings
/// through the lookup it is given, loads what it needs and registers its metrics.
pub fn run<F, I, E>(about: About, init: I) -> ExitCode
where
    F: Function,
    I: FnOnce(&dyn Fn(&str) -> Option<String>, &mut Registry) -> Result<F, E> + Send + 'static,
    E: Into<InitError>,
{
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => {}
        Some("--version" | "-V") => {
            say(
                &mut std::io::stdout(),
                &format!("{} {}", about.name, about.version),
            );
            return ExitCode::SUCCESS;
        }
        Some("--help" | "-h") => {
            say(&mut std::io::stdout(), help(&about).trim_end());
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            say(
                &mut std::io::stderr(),
                &format!(
                    "error: unexpected argument {other:?}; configure {} through its environment (see --help)",
                    about.name
                ),
            );
            return ExitCode::from(2);
        }
    }
    init_logging(about.name);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            say(
                &mut std::io::stderr(),
                &format!("error: cannot start the async runtime: {e}"),
            );
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve_process(about.name, init)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line; no backtrace, even when RUST_BACKTRACE is set.
            say(&mut std::io::stderr(), &format!("error: {e}"));
            ExitCode::FAILURE
        }
    }
}

/// Writes one line, ignoring a closed pipe (`println!` would panic on it).
fn say(out: &mut dyn Write, line: &str) {
    let _ = writeln!(out, "{line}");
}

async fn serve_process<F, I, E>(name: &'static str, init: I) -> Result<(), String>
where
    F: Function,
    I: FnOnce(&dyn Fn(&str) -> Option<String>, &mut Registry) -> Result<F, E> + Send + 'static,
    E: Into<InitError>,
{
    let lookup = |var: &str| std::env::var(var).ok();
    let settings =
        Settings::from_lookup(name, &lookup).map_err(|e| format!("invalid configuration: {e}"))?;
    for conflict in settings.watchdog_conflicts(&lookup) {
        tracing::warn!("{conflict}");
    }
    let listener = tokio::net::TcpListener::bind(settings.addr)
        .await
        .map_err(|e| {
            format!(
                "cannot listen on {} ({}_ADDR): {e}",
                settings.addr,
                env_prefix(name)
            )
        })?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(
        %addr,
        workers = settings.workers,
        queue = settings.queue,
        timeout_s = settings.request_timeout.as_secs_f64(),
        grace_s = settings.grace.as_secs_f64(),
        "listening; warming up"
    );
    crate::serve(
        listener,
        name,
        settings,
        move |registry: &mut Registry| init(&lookup, registry),
        shutdown_signal(),
    )
    .await
    .map_err(|e| e.to_string())?;
    tracing::info!("stopped");
    Ok(())
}

fn help(about: &About) -> String {
    let p = env_prefix(about.name);
    format!(
        "{name} {version}: {summary}\n\n\
         Usage: {name} [--help | --version]\n\
         Serves the function over HTTP until SIGTERM; everything else comes from the environment.\n\n\
         Server variables:\n  \
         {p}_ADDR             listen address (default: from upstream_url, else 127.0.0.1:8080)\n  \
         {p}_MAX_BODY_BYTES   largest request body (default 50331648)\n  \
         {p}_WORKERS          requests handled at once (default 1)\n  \
         {p}_QUEUE            requests waiting for a worker before 429 (default 16)\n  \
         {p}_TIMEOUT          per-request deadline in seconds before 504 (default: 1 s under exec_timeout, else 25)\n  \
         {p}_GRACE            serving time after SIGTERM (default: healthcheck_interval, else write_timeout, else 0)\n  \
         {p}_LOCK_FILE        created when ready (default $TMPDIR/.lock; empty = none)\n  \
         {p}_HEADER_TIMEOUT   seconds for a request head, and for an idle connection (default 15)\n  \
         {p}_BODY_TIMEOUT     seconds for a whole body before 408 (default 10)\n  \
         {p}_WRITE_TIMEOUT    seconds a response write may stall before the connection drops (default 10)\n  \
         {p}_MAX_CONNECTIONS  connections at once; more get 503 (default 512, below the open-file limit)\n  \
         {p}_MAX_BUFFERED_BYTES  request body bytes held at once before 429 (default 256 MiB)\n  \
         {p}_DRAIN_TIMEOUT    seconds requests in flight may take after the grace (default: {p}_TIMEOUT)\n  \
         {p}_TOKEN_FILE       file holding the bearer token requests must send (default: none)\n  \
         {p}_LOG, {p}_LOG_FORMAT   log filter (default info) and format (json for JSON lines)\n\n\
         Function variables:\n{variables}",
        name = about.name,
        version = about.version,
        summary = about.summary,
        variables = about.variables,
    )
}

/// Logs to stderr; `<NAME>_LOG` (or `RUST_LOG`) filters.
fn init_logging(name: &str) {
    let p = env_prefix(name);
    let var = |suffix: &str| std::env::var(format!("{p}_{suffix}"));
    let filter = var("LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    // A failed log write is dropped: tracing's default reports it with `eprintln!`, which
    // panics when stderr is a closed pipe.
    let builder = tracing_subscriber::fmt()
        .log_internal_errors(false)
        .with_env_filter(EnvFilter::new(filter))
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let json = var("LOG_FORMAT")
        .or_else(|_| std::env::var("LOG_FORMAT"))
        .is_ok_and(|f| f == "json");
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves on SIGTERM (Kubernetes, of-watchdog) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
