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

use crate::settings::{SERVER_VARIABLES, Variable, env_prefix, render_variables, var};
use crate::{Function, InitError, Settings};

/// What `--help` and `--version` print.
pub struct About {
    /// The function's name: log and metric prefix, and the `<NAME>_` of its variables.
    pub name: &'static str,
    pub version: &'static str,
    /// One line saying what the function does.
    pub summary: &'static str,
    /// The function's own variables (names after its prefix), for `--help`.
    pub variables: &'static [Variable],
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
    match serve_process(about.name, init) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line; no backtrace, even when RUST_BACKTRACE is set.
            say(
                &mut std::io::stderr(),
                &format!("error: {}", crate::chain(&e)),
            );
            ExitCode::FAILURE
        }
    }
}

/// Writes one line, ignoring a closed pipe (`println!` would panic on it).
fn say(out: &mut dyn Write, line: &str) {
    let _ = writeln!(out, "{line}");
}

/// Why the process could not serve.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error("invalid configuration")]
    Config(#[source] crate::settings::SettingError),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot listen on {addr} ({prefix}_ADDR)")]
    Listen {
        addr: std::net::SocketAddr,
        prefix: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Serve(#[from] crate::ServeError),
}

fn serve_process<F, I, E>(name: &'static str, init: I) -> Result<(), StartError>
where
    F: Function,
    I: FnOnce(&dyn Fn(&str) -> Option<String>, &mut Registry) -> Result<F, E> + Send + 'static,
    E: Into<InitError>,
{
    let lookup = |var: &str| std::env::var(var).ok();
    let settings = Settings::from_lookup(name, &lookup).map_err(StartError::Config)?;
    for conflict in settings.watchdog_conflicts(&lookup) {
        tracing::warn!("{conflict}");
    }
    // Handlers run on the runtime's blocking threads, one per worker: a worker that finishes
    // takes the next queued request itself, and no more threads than workers ever hold a
    // handler's buffers (a thread per queued request held about 40 MB more at saturation).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(settings.workers)
        .build()
        .map_err(StartError::Runtime)?;
    runtime.block_on(async move {
        let listen_error = |source| StartError::Listen {
            addr: settings.addr,
            prefix: env_prefix(name),
            source,
        };
        let listener = tokio::net::TcpListener::bind(settings.addr)
            .await
            .map_err(listen_error)?;
        let addr = listener.local_addr().map_err(listen_error)?;
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
        .await?;
        tracing::info!("stopped");
        Ok(())
    })
}

fn help(about: &About) -> String {
    format!(
        "{name} {version}: {summary}\n\n\
         Usage: {name} [--help | --version]\n\
         Serves the function over HTTP until SIGTERM; everything else comes from the environment.\n\n\
         Server variables:\n{server}\n\
         Function variables:\n{function}",
        name = about.name,
        version = about.version,
        summary = about.summary,
        server = render_variables(about.name, SERVER_VARIABLES),
        function = render_variables(about.name, about.variables),
    )
}

/// Logs to stderr; `<NAME>_LOG` (or `RUST_LOG`) filters.
fn init_logging(name: &str) {
    let read = |v: Variable| std::env::var(v.for_function(name));
    let filter = read(var::LOG)
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    // A failed log write is dropped: tracing's default reports it with `eprintln!`, which
    // panics when stderr is a closed pipe.
    let builder = tracing_subscriber::fmt()
        .log_internal_errors(false)
        .with_env_filter(EnvFilter::new(filter))
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let json = read(var::LOG_FORMAT)
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
