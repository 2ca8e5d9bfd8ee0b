//! `slblur-client`: see `slblur-client --help` and docs/client.md.

use std::process::ExitCode;

use clap::Parser;
use slblur_client::app::{self, Finish};
use slblur_client::cli::{Cli, Command};
use slblur_client::rig::sweep::{self, Mode};

fn main() -> ExitCode {
    let cli = Cli::parse();
    catch_ctrl_c();
    match run(cli) {
        Ok(Finish::Completed) => ExitCode::SUCCESS,
        // 128 + SIGINT, as shells report a Ctrl-C'd program.
        Ok(Finish::Interrupted) => ExitCode::from(130),
        Ok(Finish::ThresholdsFailed) => ExitCode::from(3),
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
        Command::Run(args) => runtime()?.block_on(async { Ok(app::run(&args).await?) }),
        Command::Load(args) => {
            runtime()?.block_on(async { Ok(sweep::run(&args, Mode::Load).await?) })
        }
        Command::Sweep(args) => {
            runtime()?.block_on(async { Ok(sweep::run(&args, Mode::Sweep).await?) })
        }
        Command::Merge(args) => {
            app::merge(&args)?;
            Ok(Finish::Completed)
        }
        Command::ImportJtl(args) => {
            slblur_client::jtl::run(&args)?;
            Ok(Finish::Completed)
        }
        Command::Report(args) => {
            print!("{}", slblur_client::report::run(&args)?.describe());
            Ok(Finish::Completed)
        }
        Command::Model(args) => {
            print!("{}", slblur_client::model::command::run(&args));
            Ok(Finish::Completed)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))
}

/// The first Ctrl-C stops the load through goose's kill switch (finished rows are already on
/// disk, and the run still summarises); a second one exits at once.
fn catch_ctrl_c() {
    let _ = ctrlc::set_handler(|| {
        if goose::is_killswitch_triggered() {
            std::process::exit(130);
        }
        goose::trigger_killswitch("Ctrl-C");
    });
}
