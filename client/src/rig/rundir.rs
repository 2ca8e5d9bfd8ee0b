//! A run's folder: `results.csv` (every row), `cells.csv` (one row per cell), `run.json`
//! (the parameters and, cell by cell, what is complete) and `goose/` (goose's reports of each
//! cell). run.json is rewritten atomically after every cell, so an interrupted sweep can be
//! resumed: complete cells are kept, the rows of an unfinished cell move to
//! `interrupted.csv` (kept, not lost) and the cell runs again.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::record::{self, CsvSink, RecordError, Row};
use crate::summary::{CellSummary, Dist};

use super::Smoothing;
use super::arrivals::TraceReplay;
use super::callback::CallbackCounts;
use super::plan::{Budget, Load, Share};
use crate::record::Invocation;

pub const RESULTS: &str = "results.csv";
pub const CELLS: &str = "cells.csv";
pub const MANIFEST: &str = "run.json";
pub const REPORTS: &str = "goose";
pub const INTERRUPTED: &str = "interrupted.csv";

#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    #[error("cannot write '{path}'")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read '{path}'")]
    Read { path: PathBuf, source: io::Error },
    #[error("'{path}' is not a run.json of slblur-client")]
    Manifest {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("{0}")]
    Mismatch(String),
}

/// A deployment as run.json records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetRecord {
    pub name: String,
    pub url: String,
    /// `async` for an asynchronous target (`--async-target`, `--async`).
    #[serde(default)]
    pub invocation: Invocation,
}

/// One cell as run.json records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellRecord {
    pub key: String,
    pub index: usize,
    pub target: String,
    pub load: Load,
    pub complete: bool,
    pub summary: CellSummary,
    /// Replicas that answered in this cell (`X-Slblur-Instance`).
    pub instances: BTreeSet<String>,
    pub thresholds_failed: Vec<String>,
    /// Asynchronous cells: the callbacks the receiver took and refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callbacks: Option<CallbackCounts>,
}

/// run.json: what was run, by which tool, where, and how far it got.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunManifest {
    pub run_id: String,
    pub tool: String,
    pub version: String,
    /// `sweep` or `load`.
    pub command: String,
    pub created_at: String,
    pub targets: Vec<TargetRecord>,
    pub wire: String,
    pub format: String,
    pub video: String,
    pub video_frames: u64,
    pub budget: Budget,
    pub timeout_s: f64,
    /// `--smooth`: the faces of each user's last replies sent as hints.
    #[serde(default)]
    pub smooth: Smoothing,
    /// The trace trace cells replay (`--trace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceReplay>,
    /// The cells' load points, in run order (targets alternate within each).
    pub loads: Vec<Load>,
    /// Users started per second (`--ramp-rate`, or users / `--ramp-up`).
    pub ramp: String,
    pub max_outstanding: u32,
    pub seed: u64,
    pub thresholds: Vec<String>,
    pub share: Share,
    pub start_at: Option<String>,
    pub slot_s: Option<f64>,
    /// CPU cores of the load-generator machine.
    pub cores: usize,
    pub cells: Vec<CellRecord>,
    pub interrupted: bool,
    /// Whether requests carried a bearer token (`--token-file`); never the token itself.
    #[serde(default)]
    pub token: bool,
}

impl RunManifest {
    /// Every replica that answered in any cell.
    pub fn instances_seen(&self) -> BTreeSet<String> {
        self.cells
            .iter()
            .flat_map(|c| c.instances.iter().cloned())
            .collect()
    }

    pub fn complete(&self, key: &str) -> bool {
        self.cells.iter().any(|c| c.key == key && c.complete)
    }

    /// Records a cell's outcome, replacing an earlier record of it.
    pub fn record(&mut self, cell: CellRecord) {
        self.cells.retain(|c| c.key != cell.key);
        self.cells.push(cell);
        self.cells.sort_by_key(|c| c.index);
    }

    /// The parameters that must match for `--resume` (everything but progress and times).
    pub fn same_plan(&self, other: &RunManifest) -> Result<(), String> {
        let check = |what: &str, same: bool| {
            if same {
                Ok(())
            } else {
                Err(format!("its {what} differ"))
            }
        };
        check("targets", self.targets == other.targets)?;
        check("load points (users/think/rate)", self.loads == other.loads)?;
        check(
            "wire format",
            self.wire == other.wire && self.format == other.format,
        )?;
        check(
            "frame budget",
            self.budget == other.budget && self.video_frames == other.video_frames,
        )?;
        check("smoothing (--smooth)", self.smooth == other.smooth)?;
        check("trace (--trace and its options)", self.trace == other.trace)?;
        check("worker share", self.share == other.share)
    }
}

/// The run folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    pub fn create(path: &Path) -> Result<Self, RunDirError> {
        fs::create_dir_all(path.join(REPORTS)).map_err(|source| RunDirError::Write {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    pub fn results(&self) -> PathBuf {
        self.path.join(RESULTS)
    }

    pub fn reports(&self) -> PathBuf {
        self.path.join(REPORTS)
    }

    /// The run.json already there, if any.
    pub fn load_manifest(&self) -> Result<Option<RunManifest>, RunDirError> {
        read_manifest(&self.path.join(MANIFEST))
            .map(Some)
            .or_else(|e| match e {
                RunDirError::Read { ref source, .. }
                    if source.kind() == io::ErrorKind::NotFound =>
                {
                    Ok(None)
                }
                e => Err(e),
            })
    }

    /// Writes run.json and cells.csv (atomically: a crash leaves the previous version).
    pub fn save(&self, manifest: &RunManifest) -> Result<(), RunDirError> {
        let json = serde_json::to_string_pretty(manifest).map_err(|e| RunDirError::Write {
            path: self.path.join(MANIFEST),
            source: io::Error::other(e),
        })?;
        write_atomically(&self.path.join(MANIFEST), json.as_bytes())?;
        let cells: Vec<&CellSummary> = manifest.cells.iter().map(|c| &c.summary).collect();
        write_cells_csv(&self.path.join(CELLS), &cells)
    }

    /// Before a resume: keeps the rows of complete cells in results.csv and moves every other
    /// row to interrupted.csv. Returns how many rows moved.
    pub fn set_aside_unfinished(&self, manifest: &RunManifest) -> Result<usize, RunDirError> {
        let results = self.results();
        if !results.exists() {
            return Ok(0);
        }
        let rows = record::read_rows(&results)?;
        let complete: BTreeSet<(String, u32, u64, Option<u64>)> = manifest
            .cells
            .iter()
            .filter(|c| c.complete)
            .map(|c| cell_identity(&c.target, c.load))
            .collect();
        let (kept, moved): (Vec<Row>, Vec<Row>) = rows
            .into_iter()
            .partition(|r| complete.contains(&cell_identity(&r.target, Load::of_row(r))));
        if !moved.is_empty() {
            let mut aside = CsvSink::open(&self.path.join(INTERRUPTED))?;
            for row in &moved {
                aside.write(row)?;
            }
        }
        let tmp = self.path.join(format!("{RESULTS}.tmp"));
        let _ = fs::remove_file(&tmp);
        let mut sink = CsvSink::open(&tmp)?;
        for row in &kept {
            sink.write(row)?;
        }
        drop(sink);
        fs::rename(&tmp, &results).map_err(|source| RunDirError::Write {
            path: results.clone(),
            source,
        })?;
        Ok(moved.len())
    }
}

/// The columns that tell a cell's rows apart.
pub fn cell_identity(target: &str, load: Load) -> (String, u32, u64, Option<u64>) {
    (
        target.to_string(),
        load.users(),
        load.think_s().to_bits(),
        load.rate_per_s().map(f64::to_bits),
    )
}

pub fn read_manifest(path: &Path) -> Result<RunManifest, RunDirError> {
    let text = fs::read_to_string(path).map_err(|source| RunDirError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| RunDirError::Manifest {
        path: path.to_path_buf(),
        source,
    })
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), RunDirError> {
    let tmp = path.with_extension("tmp");
    let err = |source| RunDirError::Write {
        path: path.to_path_buf(),
        source,
    };
    fs::write(&tmp, bytes).map_err(err)?;
    fs::rename(&tmp, path).map_err(err)
}

/// cells.csv: one row per cell (target × users × think, or target × rate).
pub fn write_cells_csv(path: &Path, cells: &[&CellSummary]) -> Result<(), RunDirError> {
    let mut header = vec![
        "target",
        "users",
        "think_s",
        "rate_per_s",
        "requests",
        "ok",
        "failed",
        "success_rate",
        "cold",
        "wall_s",
        "throughput_rps",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    for metric in ["rtt", "total", "ml"] {
        for stat in ["mean", "median", "p95", "p99"] {
            header.push(format!("{metric}_{stat}_ms"));
        }
    }
    header.push("top_error".into());
    let mut out = csv::Writer::from_writer(Vec::new());
    let write_err = |e: csv::Error| RunDirError::Write {
        path: path.to_path_buf(),
        source: io::Error::other(e),
    };
    out.write_record(&header).map_err(write_err)?;
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    for c in cells {
        let mut record = vec![
            c.target.clone(),
            c.users.to_string(),
            c.think_s.to_string(),
            opt(c.rate_per_s),
            c.requests.to_string(),
            c.ok.to_string(),
            c.failed.to_string(),
            c.success_rate.to_string(),
            c.cold.to_string(),
            c.wall_s.to_string(),
            c.throughput_rps.to_string(),
        ];
        for dist in [c.rtt_ms, c.total_ms, c.ml_ms] {
            let d: Option<Dist> = dist;
            record.extend([
                opt(d.map(|d| d.mean)),
                opt(d.map(|d| d.median)),
                opt(d.map(|d| d.p95)),
                opt(d.map(|d| d.p99)),
            ]);
        }
        record.push(c.top_error.clone().unwrap_or_default());
        out.write_record(&record).map_err(write_err)?;
    }
    let bytes = out.into_inner().map_err(|e| RunDirError::Write {
        path: path.to_path_buf(),
        source: io::Error::other(e.to_string()),
    })?;
    write_atomically(path, &bytes)
}
