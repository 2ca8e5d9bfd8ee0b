//! `slblur-client report`: results into tables, plots and a page ([`crate::report`]).

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::values::{parse_duration, parse_servers};
use crate::report::{ServersSpec, Settings};

#[derive(Debug, clap::Args, Clone)]
pub struct Args {
    /// Results CSV files or run folders (holding results.csv, and perhaps run.json).
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Folder for index.html, summary.csv, summary.md and the PNG plots (created if missing).
    #[arg(long, short = 'o', default_value = "report", value_name = "DIR")]
    pub out: PathBuf,
    /// Servers per target for the model (replicas × workers): C for every target, or NAME=C;
    /// repeatable. Default: run.json's `servers`, else the instances seen × 1 worker.
    #[arg(long, value_name = "[NAME=]C", value_parser = parse_servers)]
    pub servers: Vec<ServersSpec>,
    /// Bursts, ramps and traces: the model's time windows [default: one trace minute of the
    /// run's replay, else 10 s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub window: Option<Duration>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let settings = Settings {
        servers: args.servers.clone(),
        window: args.window,
    };
    let output = crate::report::write(&args.inputs, &settings, &args.out)?;
    print!("{}", output.describe());
    Ok(())
}
