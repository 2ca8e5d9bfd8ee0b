//! `slblur-client`: see `slblur-client --help` and docs/client.md.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use slblur_client::cli::{Cli, Command};
use slblur_client::commands::{self, Finish, UsageError, load};

fn main() -> ExitCode {
    let cli = Cli::parse();
    catch_ctrl_c();
    let name = cli.command.name();
    match run(cli.command) {
        Ok(Finish::Completed) => ExitCode::SUCCESS,
        // 128 + SIGINT, as shells report a Ctrl-C'd program.
        Ok(Finish::Interrupted) => ExitCode::from(130),
        // A check failed: a threshold rule, or a face left unmasked.
        Ok(Finish::ThresholdsFailed | Finish::LeaksFound) => ExitCode::from(3),
        Err(e) => match e.downcast_ref::<UsageError>() {
            Some(usage) => usage_error(name, usage),
            None => {
                // Each error names what failed; `:#` adds its causes, once each.
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn run(command: Command) -> anyhow::Result<Finish> {
    let done = |result: anyhow::Result<()>| result.map(|()| Finish::Completed);
    match command {
        Command::Frames(args) => done(commands::frames::run(&args)),
        Command::Run(args) => commands::runtime()?.block_on(commands::run::run(&args)),
        Command::Load(args) => commands::runtime()?.block_on(load::run(&args, &load::LOAD)),
        Command::Sweep(args) => commands::runtime()?.block_on(load::run(&args, &load::SWEEP)),
        Command::Leaks(args) => commands::runtime()?.block_on(commands::leaks::run(&args)),
        Command::AsyncStandin(args) => {
            commands::runtime()?.block_on(commands::async_standin::run(&args))
        }
        Command::Merge(args) => done(commands::merge::run(&args)),
        Command::ImportJtl(args) => done(commands::import_jtl::run(&args)),
        Command::Report(args) => done(commands::report::run(&args)),
        Command::Model(args) => done(commands::model::run(&args)),
    }
}

/// Options that do not go together, told the way clap tells any usage error (status 2).
fn usage_error(subcommand: &str, usage: &UsageError) -> ExitCode {
    let kind = clap::error::ErrorKind::ArgumentConflict;
    let mut cli = Cli::command();
    cli.build();
    let error = match cli.find_subcommand_mut(subcommand) {
        Some(command) => command.error(kind, usage),
        None => cli.error(kind, usage),
    };
    let _ = error.print();
    ExitCode::from(2)
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
