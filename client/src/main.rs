//! `slblur-client`: see `slblur-client --help` and the README.

use std::process::ExitCode;

use clap::Parser;
use slblur_client::app::{self, Finish};
use slblur_client::cli::{Cli, Command};
use slblur_client::runner::Interrupt;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(Finish::Completed) => ExitCode::SUCCESS,
        // 128 + SIGINT, as shells report a Ctrl-C'd program.
        Ok(Finish::Interrupted) => ExitCode::from(130),
        Err(e) => {
            // Library errors carry their causes in their messages.
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<Finish> {
    match cli.command {
        Command::Frames(args) => {
            app::frames(&args)?;
            Ok(Finish::Completed)
        }
        Command::Run(args) => {
            runtime()?.block_on(async { Ok(app::run(&args, interrupt()).await?) })
        }
        Command::Sweep(args) => {
            runtime()?.block_on(async { Ok(app::sweep(&args, interrupt()).await?) })
        }
        Command::Report(args) => {
            print!("{}", slblur_client::report::run(&args)?.describe());
            Ok(Finish::Completed)
        }
        Command::Model(args) => {
            print!("{}", slblur_client::model::command::run(&args));
            Ok(Finish::Completed)
        }
        Command::ImportJtl(args) => {
            slblur_client::jtl::run(&args)?;
            Ok(Finish::Completed)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))
}

/// Resolves on Ctrl-C; finished rows are already on disk, so the run stops and summarises.
fn interrupt() -> Interrupt {
    Box::pin(async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No signal handler: never interrupt.
            std::future::pending::<()>().await;
        }
    })
}
