//! `slblur-client report`: results into tables, plots and a page ([`crate::report`]).

use std::path::PathBuf;

use crate::cli::values::parse_servers;
use crate::report::ServersSpec;

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
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let output = crate::report::write(&args.inputs, &args.servers, &args.out)?;
    print!("{}", output.describe());
    Ok(())
}
