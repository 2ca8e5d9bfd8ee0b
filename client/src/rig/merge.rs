//! `merge`: the run folders of distributed workers (one per worker, same run id) into one
//! dataset. Rows are concatenated in cell order; each cell's summary is computed again from
//! all its rows, over the longest wall time any worker spent on it (the workers ran it at the
//! same time). Folders of another run or schema are refused; missing workers and cells that a
//! worker did not complete are reported.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::record::{self, CsvSink, Row};
use crate::summary::CellTally;

use super::plan::{Load, Share};
use super::rundir::{self, CellRecord, RunDir, RunDirError, RunManifest, cell_identity};

/// What was merged and what was missing.
#[derive(Debug)]
pub struct MergeReport {
    pub run_id: String,
    pub rows: usize,
    pub cells: usize,
    pub missing_workers: Vec<u32>,
    /// Cell keys with the workers that did not complete them.
    pub incomplete_cells: Vec<(String, Vec<u32>)>,
}

/// One worker's folder: its run.json and its rows.
type Worker = (RunManifest, Vec<Row>);

pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<MergeReport, RunDirError> {
    let workers = read_workers(dirs)?;
    let Some((first, _)) = workers.first() else {
        return Err(RunDirError::Mismatch("no worker folders given".into()));
    };
    let count = first.share.workers;
    let present: BTreeSet<u32> = workers.iter().map(|(m, _)| m.share.index).collect();
    let missing_workers: Vec<u32> = (0..count).filter(|i| !present.contains(i)).collect();

    // Every cell any worker planned, by index.
    let mut plan: BTreeMap<usize, CellRecord> = BTreeMap::new();
    for (manifest, _) in &workers {
        for cell in &manifest.cells {
            plan.entry(cell.index).or_insert_with(|| cell.clone());
        }
    }
    let mut merged = RunManifest {
        share: Share {
            index: 0,
            workers: count,
        },
        cells: Vec::new(),
        interrupted: false,
        ..first.clone()
    };
    let dir = RunDir::create(out)?;
    let results = dir.results();
    let _ = std::fs::remove_file(&results);
    let mut sink = CsvSink::open(&results)?;
    let mut rows = 0;
    let mut incomplete_cells = Vec::new();
    for planned in plan.values() {
        let (record, written, not_done) = merge_cell(planned, &workers, &mut sink)?;
        rows += written;
        if !not_done.is_empty() {
            incomplete_cells.push((planned.key.clone(), not_done));
        }
        merged.record(CellRecord {
            complete: record.complete && missing_workers.is_empty(),
            ..record
        });
    }
    dir.save(&merged)?;
    Ok(MergeReport {
        run_id: merged.run_id,
        rows,
        cells: plan.len(),
        missing_workers,
        incomplete_cells,
    })
}

/// Reads every worker folder, refusing folders of another run or schema and repeated workers.
fn read_workers(dirs: &[PathBuf]) -> Result<Vec<Worker>, RunDirError> {
    let mut workers: Vec<Worker> = Vec::new();
    for dir in dirs {
        let manifest = rundir::read_manifest(&dir.join(rundir::MANIFEST))?;
        let results = dir.join(rundir::RESULTS);
        // Only this schema: a legacy file would have no target or worker to merge by.
        record::check_header(&results)?;
        let rows = record::read_rows(&results)?;
        if let Some((first, _)) = workers.first() {
            check_same_run(first, &manifest, dir)?;
        }
        if workers
            .iter()
            .any(|(m, _)| m.share.index == manifest.share.index)
        {
            return Err(RunDirError::Mismatch(format!(
                "{} is worker {} again: each worker folder may be given once",
                dir.display(),
                manifest.share.index
            )));
        }
        workers.push((manifest, rows));
    }
    Ok(workers)
}

/// Writes one cell's rows of every worker in time order and summarises them again; returns
/// the cell's record, the rows written and the workers that did not complete it.
fn merge_cell(
    planned: &CellRecord,
    workers: &[Worker],
    sink: &mut CsvSink,
) -> Result<(CellRecord, usize, Vec<u32>), RunDirError> {
    let identity = cell_identity(&planned.target, planned.load);
    let mut tally = CellTally::new(
        planned.load.users(),
        Duration::from_secs_f64(planned.load.think_s()),
    )
    .for_target(&planned.target, planned.load.open_label());
    let mut rows: Vec<&Row> = workers
        .iter()
        .flat_map(|(_, rows)| rows.iter())
        .filter(|r| cell_identity(&r.target, Load::of_row(r)) == identity)
        .collect();
    rows.sort_by(|a, b| a.started_at.cmp(&b.started_at));
    for row in &rows {
        sink.write(row)?;
        tally.add(row);
    }
    let records: Vec<Option<&CellRecord>> = workers
        .iter()
        .map(|(m, _)| m.cells.iter().find(|c| c.index == planned.index))
        .collect();
    let not_done: Vec<u32> = workers
        .iter()
        .zip(&records)
        .filter(|(_, r)| !r.is_some_and(|r| r.complete))
        .map(|((m, _), _)| m.share.index)
        .collect();
    // The workers ran the cell at the same time: its wall time is the longest of theirs.
    let wall = records
        .iter()
        .flatten()
        .map(|r| r.summary.wall_s)
        .fold(0.0, f64::max);
    let record = CellRecord {
        summary: tally.finish(Duration::from_secs_f64(wall)),
        instances: records
            .iter()
            .flatten()
            .flat_map(|r| r.instances.iter().cloned())
            .collect(),
        thresholds_failed: records
            .iter()
            .flatten()
            .flat_map(|r| r.thresholds_failed.iter().cloned())
            .collect(),
        complete: not_done.is_empty(),
        ..planned.clone()
    };
    Ok((record, rows.len(), not_done))
}

fn check_same_run(first: &RunManifest, other: &RunManifest, dir: &Path) -> Result<(), RunDirError> {
    if other.run_id != first.run_id {
        return Err(RunDirError::Mismatch(format!(
            "{} holds run {}, not {}: only workers of one run can be merged",
            dir.display(),
            other.run_id,
            first.run_id
        )));
    }
    if other.share.workers != first.share.workers {
        return Err(RunDirError::Mismatch(format!(
            "{} was one of {} workers, the others of {}",
            dir.display(),
            other.share.workers,
            first.share.workers
        )));
    }
    first
        .same_plan(&RunManifest {
            share: first.share,
            ..other.clone()
        })
        .map_err(|why| {
            RunDirError::Mismatch(format!("{} is not the same sweep: {why}", dir.display()))
        })
}
