//! `slblur-client report`: results → pictures. Reads results CSVs and run folders, computes
//! per-cell statistics, fits the performance model, and writes `summary.csv`, `summary.md`, PNG
//! plots and a self-contained `index.html` that links only files beside it.
//!
//! - [`input`] — files and folders to samples grouped by cell; errors name file and line.
//! - [`cells`] — per-cell statistics (success, throughput, distributions, CI, breakdown).
//! - [`quantiles`] — distribution-free confidence intervals of percentiles.
//! - [`fit`] — the model's parameters per target and its prediction per cell.
//! - [`windows`] — the model per time window of bursts, ramps and traces.
//! - [`tables`] — `summary.csv` and `summary.md`.
//! - [`plots`] — the PNG files, drawn with an embedded font.
//! - [`html`] — `index.html`.

pub mod cells;
pub mod fit;
pub mod html;
pub mod input;
pub mod plots;
pub mod quantiles;
pub mod tables;
pub mod windows;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use cells::{CellKey, CellStats};
use fit::{Fit, Prediction};
use input::Dataset;

use crate::record::Invocation;

/// What the analysis takes besides the data (`report`'s options).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `--servers`: the servers the model assumes.
    pub servers: Vec<ServersSpec>,
    /// `--window`: the model's time windows for bursts, ramps and traces [default: one trace
    /// minute of the run's replay, else 10 s].
    pub window: Option<std::time::Duration>,
}

/// Windows when neither `--window` nor a trace replay says how long.
const DEFAULT_WINDOW_S: f64 = 10.0;

/// One `--servers` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServersSpec {
    /// `None`: every target.
    pub target: Option<String>,
    pub servers: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read '{path}'")]
    Open { path: PathBuf, source: io::Error },
    #[error("{path}: line {line}: {reason}")]
    BadLine {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    #[error(
        "folder '{path}' holds no results CSV (results.csv, or *.csv with the header of client/SCHEMA.md)"
    )]
    EmptyFolder { path: PathBuf },
    #[error("{path}: {reason}")]
    BadRunJson { path: PathBuf, reason: String },
    #[error("no result rows in {inputs:?}")]
    NoRows { inputs: Vec<PathBuf> },
    #[error("cannot write '{path}'")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot draw '{path}'")]
    Plot {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// One cell of the report: its statistics, the model's prediction and the cross-target ratio.
#[derive(Debug, Clone)]
pub struct CellReport {
    pub key: CellKey,
    pub stats: CellStats,
    pub prediction: Option<Prediction>,
    /// (baseline target, this mean rtt / baseline's, this throughput / baseline's).
    pub ratio: Option<(String, Option<f64>, Option<f64>)>,
}

/// Everything the writers need.
#[derive(Debug)]
pub struct Analysis {
    pub data: Dataset,
    pub cells: Vec<CellReport>,
    pub fits: BTreeMap<String, Fit>,
    pub targets: Vec<String>,
    /// Bursts, ramps and traces: the model per time window.
    pub windows: Vec<windows::CellWindows>,
}

/// What `run` wrote.
#[derive(Debug)]
pub struct ReportOutput {
    pub index: PathBuf,
    pub files: Vec<PathBuf>,
    pub rows: u64,
    pub cells: usize,
    pub warnings: Vec<String>,
    /// (target, fit) pairs, for the command's closing lines.
    pub fits: Vec<(String, Fit)>,
    /// Mean absolute prediction error of the mean round trip over the closed cells, per target.
    pub mean_abs_rtt_error_pct: Vec<(String, f64)>,
    /// The model per time window: one line per burst, ramp and trace cell.
    pub window_lines: Vec<String>,
}

impl ReportOutput {
    /// What the command prints: warnings, the model's fit and error, and the index last.
    pub fn describe(&self) -> String {
        let mut text = String::new();
        for w in &self.warnings {
            let _ = writeln!(text, "warning: {w}");
        }
        let _ = writeln!(
            text,
            "report: {} requests in {} cells, {} files written",
            self.rows,
            self.cells,
            self.files.len()
        );
        for (target, fit) in &self.fits {
            let _ = writeln!(
                text,
                "model {target}: S = {:.1} ms, D = {:.1} ms, c = {} ({})",
                fit.service_ms, fit.delay_ms, fit.servers, fit.servers_source
            );
        }
        for (target, err) in &self.mean_abs_rtt_error_pct {
            let _ = writeln!(
                text,
                "model {target}: mean |error| of the predicted mean round trip {err:.1} %"
            );
        }
        for line in &self.window_lines {
            let _ = writeln!(text, "{line}");
        }
        let _ = writeln!(text, "open {}", self.index.display());
        text
    }
}

/// Reads the inputs (results CSVs or run folders) and writes the whole report into `out`.
pub fn write(
    inputs: &[PathBuf],
    settings: &Settings,
    out: &Path,
) -> Result<ReportOutput, ReportError> {
    let data = input::read_inputs(inputs)?;
    let analysis = analyse(data, settings);
    fs::create_dir_all(out).map_err(|source| ReportError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    let mut files = tables::write(&analysis, out)?;
    let plots = plots::draw_all(&analysis, out)?;
    files.extend(plots.iter().map(|p| out.join(&p.file)));
    let index = html::write(&analysis, &plots, out)?;
    files.push(index.clone());
    let mean_abs_rtt_error_pct = analysis
        .targets
        .iter()
        .filter_map(|t| {
            let errors: Vec<f64> = analysis
                .cells
                .iter()
                .filter(|c| &c.key.target == t)
                .filter_map(tables::rtt_error_pct)
                .map(f64::abs)
                .collect();
            cells::mean(&errors).map(|e| (t.clone(), e))
        })
        .collect();
    let window_lines = analysis
        .windows
        .iter()
        .map(|cell| {
            let unstable = cell.windows.iter().filter(|w| w.unstable).count();
            format!(
                "model per window, {} {}: mean |error| {} over {} windows of {} s ({unstable} past capacity)",
                cell.key.target,
                cell.key.load_label(),
                cell.mean_abs_error_pct()
                    .map_or("–".to_string(), |e| format!("{e:.1} %")),
                cell.windows.len(),
                cell.width_s
            )
        })
        .collect();
    Ok(ReportOutput {
        index,
        files,
        rows: analysis.data.rows,
        cells: analysis.cells.len(),
        warnings: analysis.data.torn_rows.clone(),
        fits: analysis.fits.into_iter().collect(),
        mean_abs_rtt_error_pct,
        window_lines,
    })
}

impl Analysis {
    /// How the target was called.
    pub fn invocation(&self, target: &str) -> Invocation {
        if self.data.async_targets.contains(target) {
            Invocation::Async
        } else {
            Invocation::Sync
        }
    }
}

/// Statistics, fits, predictions, ratios and windows for a dataset.
pub fn analyse(data: Dataset, settings: &Settings) -> Analysis {
    let servers = &settings.servers;
    let cli_named: BTreeMap<String, u32> = servers
        .iter()
        .filter_map(|s| Some((s.target.clone()?, s.servers)))
        .collect();
    let cli_all = servers
        .iter()
        .find(|s| s.target.is_none())
        .map(|s| s.servers);
    let mut targets: Vec<String> = data.cells.keys().map(|k| k.target.clone()).collect();
    targets.dedup();
    let mut fits = BTreeMap::new();
    for target in &targets {
        let of_target = || data.cells.iter().filter(|(k, _)| &k.target == target);
        let instances: std::collections::BTreeSet<u32> = of_target()
            .flat_map(|(_, s)| s.iter().filter_map(|s| s.instance))
            .collect();
        let servers = fit::servers_for(
            target,
            &cli_named,
            cli_all,
            &data.servers_from_runs,
            data.servers_for_all,
        );
        // The asynchronous path is one queue whose worker makes a fixed number of calls at a
        // time, whatever the replicas behind it.
        let servers = servers.or(data.async_targets.contains(target).then_some((
            1,
            "the queue worker's calls at a time (OpenFaaS CE: 1; --servers NAME=C)",
        )));
        if let Some(f) = fit::fit_target(of_target(), servers, instances.len()) {
            fits.insert(target.clone(), f);
        }
    }
    let mut cells: Vec<CellReport> = data
        .cells
        .iter()
        .map(|(key, samples)| CellReport {
            key: key.clone(),
            stats: CellStats::of(samples),
            prediction: fits.get(&key.target).map(|f| fit::predict(f, key)),
            ratio: None,
        })
        .collect();
    add_ratios(&mut cells, &targets);
    let width_s = settings
        .window
        .map(|w| w.as_secs_f64())
        .or(data.trace_minute_s)
        .unwrap_or(DEFAULT_WINDOW_S);
    let windows = windows::of_cells(&data.cells, &fits, width_s);
    Analysis {
        data,
        cells,
        fits,
        targets,
        windows,
    }
}

/// With several targets, each cell gets its ratio to the same cell of the baseline: the
/// target named `serverful` if there is one (so ratios read serverless/serverful), else the
/// first target by name.
fn add_ratios(cells: &mut [CellReport], targets: &[String]) {
    if targets.len() < 2 {
        return;
    }
    let baseline = targets
        .iter()
        .find(|t| *t == "serverful")
        .unwrap_or(&targets[0])
        .clone();
    let base: Vec<(CellKey, Option<f64>, f64)> = cells
        .iter()
        .filter(|c| c.key.target == baseline)
        .map(|c| {
            (
                c.key.clone(),
                c.stats.rtt.map(|d| d.mean),
                c.stats.throughput_rps,
            )
        })
        .collect();
    for cell in cells.iter_mut().filter(|c| c.key.target != baseline) {
        let same_load = |k: &CellKey| {
            k.users == cell.key.users
                && k.think_s == cell.key.think_s
                && k.rate_per_s == cell.key.rate_per_s
                && k.smooth == cell.key.smooth
                && k.arrival == cell.key.arrival
        };
        if let Some((_, base_rtt, base_x)) = base.iter().find(|(k, _, _)| same_load(k)) {
            let rtt = match (cell.stats.rtt, base_rtt) {
                (Some(d), Some(b)) if *b > 0.0 => Some(d.mean / b),
                _ => None,
            };
            let x = (*base_x > 0.0).then(|| cell.stats.throughput_rps / base_x);
            cell.ratio = Some((baseline.clone(), rtt, x));
        }
    }
}
