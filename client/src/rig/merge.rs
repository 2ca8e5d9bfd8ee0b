//! `merge`: the run folders of distributed workers (one per worker, same run id) into one
//! dataset. Rows are concatenated in cell order; each cell's summary is computed again from
//! all its rows, over the longest wall time any worker spent on it (the workers ran it at the
//! same time). Folders of another run or schema are refused; missing workers and cells that a
//! worker did not complete are reported.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::record::{self, CsvSink, Row};
use crate::summary::CellStats;

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

pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<MergeReport, RunDirError> {
    let mut workers: Vec<(RunManifest, Vec<Row>)> = Vec::new();
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
    let mut incomplete_cells = Vec::new();
    let mut merged = first.clone();
    merged.share = Share {
        index: 0,
        workers: count,
    };
    merged.cells.clear();
    merged.interrupted = false;
    let dir = RunDir::create(out)?;
    let results = dir.results();
    let _ = std::fs::remove_file(&results);
    let mut sink = CsvSink::open(&results)?;
    let mut rows_written = 0;
    for (index, planned) in &plan {
        let identity = cell_identity(&planned.target, planned.load);
        let mut stats = CellStats::new(
            planned.load.users(),
            Duration::from_secs_f64(planned.load.think_s()),
        )
        .for_target(&planned.target, planned.load.rate_per_s());
        let mut rows: Vec<&Row> = workers
            .iter()
            .flat_map(|(_, rows)| rows.iter())
            .filter(|r| cell_identity(&r.target, Load::of_row(r)) == identity)
            .collect();
        rows.sort_by(|a, b| a.started_at.cmp(&b.started_at));
        for row in &rows {
            sink.write(row)?;
            stats.add(row);
        }
        rows_written += rows.len();
        let records: Vec<Option<&CellRecord>> = workers
            .iter()
            .map(|(m, _)| m.cells.iter().find(|c| c.index == *index))
            .collect();
        let not_done: Vec<u32> = workers
            .iter()
            .zip(&records)
            .filter(|(_, r)| !r.is_some_and(|r| r.complete))
            .map(|((m, _), _)| m.share.index)
            .collect();
        if !not_done.is_empty() {
            incomplete_cells.push((planned.key.clone(), not_done.clone()));
        }
        let wall = records
            .iter()
            .flatten()
            .map(|r| r.summary.wall_s)
            .fold(0.0, f64::max);
        merged.record(CellRecord {
            summary: stats.finish(Duration::from_secs_f64(wall)),
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
            complete: not_done.is_empty() && missing_workers.is_empty(),
            ..planned.clone()
        });
    }
    dir.save(&merged)?;
    Ok(MergeReport {
        run_id: merged.run_id,
        rows: rows_written,
        cells: plan.len(),
        missing_workers,
        incomplete_cells,
    })
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
