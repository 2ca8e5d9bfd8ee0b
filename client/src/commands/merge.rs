//! `slblur-client merge`: the run folders of distributed workers into one
//! ([`crate::rig::merge`]), with a warning for every missing share.

use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Worker run folders (each with run.json and results.csv).
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Folder for the merged results.csv, cells.csv and run.json.
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let report = crate::rig::merge::merge(&args.dirs, &args.out)?;
    eprintln!(
        "merged run {}: {} rows in {} cells from {} folders into {}",
        report.run_id,
        report.rows,
        report.cells,
        args.dirs.len(),
        args.out.display()
    );
    for worker in &report.missing_workers {
        eprintln!(
            "warning: worker {worker} is missing: its share of every cell is not in the dataset"
        );
    }
    for (cell, workers) in &report.incomplete_cells {
        let list: Vec<String> = workers.iter().map(u32::to_string).collect();
        eprintln!(
            "warning: cell {cell} was not completed by worker(s) {}",
            list.join(", ")
        );
    }
    Ok(())
}
