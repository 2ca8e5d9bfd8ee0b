//! `slblur-client import-jtl`: a JMeter results file into the results dataset
//! ([`crate::jtl`]).

use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// JMeter results file: CSV with a header line, from jmeter/http.jmx or jmeter/client.jmx.
    #[arg(value_name = "FILE.jtl")]
    pub jtl: PathBuf,
    /// Folder for results.csv (created if missing; rows are appended to an existing one).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
    /// The run's properties (run_id, target, users, think, remote), as jmeter/run writes them
    /// [default: run.properties next to the JTL, if any].
    #[arg(long, value_name = "FILE")]
    pub properties: Option<PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    crate::jtl::import(&args.jtl, args.properties.as_deref(), &args.out)?;
    Ok(())
}
