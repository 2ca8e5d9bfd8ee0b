//! `import-jtl`: turns a JMeter results file (CSV JTL) from `jmeter/http.jmx` or
//! `jmeter/client.jmx` into rows of the shared results dataset (`client/SCHEMA.md`), so every
//! report treats JMeter runs like the other load tools' runs.
//!
//! An HTTP-plan line is one frame and becomes one row. A client-plan line is one whole
//! `slblur-client run`; its rows are the per-frame CSV that client wrote (`client_csv`), given
//! the JMeter run's identity. Lines that cannot be converted are reported with their line number
//! and skipped.

mod properties;
mod samples;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::record::{self, CsvSink, RecordError, Row};
use crate::summary::{CellTally, table};

pub use properties::RunProperties;
pub use samples::Sample;

#[derive(Debug, thiserror::Error)]
pub enum JtlError {
    #[error("cannot read '{path}'")]
    Open { path: PathBuf, source: io::Error },
    #[error("'{path}' is not a JMeter CSV results file: {reason}")]
    Header { path: PathBuf, reason: String },
    #[error("{path}:{line}: {reason}")]
    Properties {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error(transparent)]
    Record(#[from] RecordError),
}

/// A JTL line that was not converted, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct BadLine {
    pub line: u64,
    pub reason: String,
}

impl BadLine {
    fn new(line: u64, reason: String) -> BadLine {
        BadLine { line, reason }
    }
}

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// What a conversion produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted {
    pub rows: Vec<Row>,
    /// JTL lines converted (one per frame for the HTTP plan, per client run for the client plan).
    pub samples: usize,
    pub bad_lines: Vec<BadLine>,
}

/// Converts `jtl` and appends its rows to `out/results.csv`; prints a summary table, and
/// every skipped line on stderr. `properties` is the run's properties file [default:
/// `run.properties` beside the JTL, if any].
pub fn import(jtl: &Path, properties: Option<&Path>, out: &Path) -> Result<(), JtlError> {
    let properties = match properties
        .map(Path::to_path_buf)
        .or_else(|| properties::beside(jtl))
    {
        Some(path) => RunProperties::read(&path)?,
        None => RunProperties::default(),
    };
    let converted = convert(jtl, &properties)?;
    for bad in &converted.bad_lines {
        eprintln!("{}:{}: {} (skipped)", jtl.display(), bad.line, bad.reason);
    }
    let mut sink = CsvSink::open(&out.join("results.csv"))?;
    for row in &converted.rows {
        sink.write(row)?;
    }
    print!("{}", table(&cell_summaries(&converted.rows)));
    eprintln!(
        "{} rows from {} JTL lines appended to {}{}",
        sink.rows(),
        converted.samples,
        sink.path().display(),
        match converted.bad_lines.len() {
            0 => String::new(),
            n => format!("; skipped {n} (listed above)"),
        }
    );
    Ok(())
}

/// Converts every line of a JTL. Client-plan CSVs are looked up relative to the JTL's folder.
pub fn convert(jtl: &Path, properties: &RunProperties) -> Result<Converted, JtlError> {
    let (samples, mut bad_lines) = samples::read(jtl)?;
    let run = RunIdentity::new(properties);
    let folder = jtl.parent().unwrap_or(Path::new(""));
    let mut rows = Vec::new();
    let mut converted = 0;
    for sample in &samples {
        let result = run
            .identify(sample)
            .and_then(|who| match sample.var("client_csv") {
                Some(csv) => client_rows(sample, &who, &folder.join(csv)),
                None => frame_row(sample, &who).map(|row| vec![row]),
            });
        match result {
            Ok(mut more) => {
                converted += 1;
                rows.append(&mut more);
            }
            Err(bad) => bad_lines.push(bad),
        }
    }
    bad_lines.sort_by_key(|b| b.line);
    Ok(Converted {
        rows,
        samples: converted,
        bad_lines,
    })
}

/// What every row of the run shares.
struct RunIdentity<'a> {
    run_id: String,
    properties: &'a RunProperties,
}

/// Who sent a sample, in the dataset's terms.
struct Who {
    run_id: String,
    users: u32,
    think_s: f64,
    user_id: u32,
    worker: u32,
    iteration: u64,
    target: String,
}

impl Who {
    /// The row of one frame, before its measurements.
    fn row(&self, frame: u64) -> Row {
        let mut row = Row::pending(
            &self.run_id,
            self.users,
            self.think_s,
            self.user_id,
            frame,
            self.iteration,
        );
        row.target = self.target.clone();
        row.worker = self.worker;
        row
    }
}

impl<'a> RunIdentity<'a> {
    fn new(properties: &'a RunProperties) -> Self {
        RunIdentity {
            run_id: properties.run_id.clone().unwrap_or_else(record::new_run_id),
            properties,
        }
    }

    fn identify(&self, sample: &Sample) -> Result<Who, BadLine> {
        let unknown = |what: &str| {
            BadLine::new(
                sample.line,
                format!("{what} unknown: no {what} column in the JTL and none in run.properties"),
            )
        };
        let threads = sample
            .parsed::<u32>("users")?
            .or(self.properties.users)
            .ok_or_else(|| unknown("users"))?;
        let think_s = sample
            .parsed::<f64>("think_s")?
            .or(self.properties.think_s)
            .ok_or_else(|| unknown("think_s"))?;
        // A remote server prefixes its threads' names with the HOST:PORT the master used.
        let remote = &self.properties.remote;
        let worker = match remote
            .iter()
            .position(|r| sample.thread.starts_with(&format!("{r}-")))
        {
            Some(index) => index as u32,
            None => sample.parsed::<u32>("worker")?.unwrap_or(0),
        };
        let thread = match sample.parsed::<u32>("user_id")? {
            Some(t) => t,
            None => thread_index(&sample.thread).ok_or_else(|| {
                BadLine::new(
                    sample.line,
                    format!(
                        "no user_id and thread name '{}' has no number",
                        sample.thread
                    ),
                )
            })?,
        };
        Ok(Who {
            run_id: self.run_id.clone(),
            users: threads * remote.len().max(1) as u32,
            think_s,
            user_id: worker * threads + thread,
            worker,
            iteration: sample.parsed::<u64>("iteration")?.unwrap_or(0),
            target: sample
                .var("target")
                .map(str::to_string)
                .or_else(|| self.properties.target.clone())
                .unwrap_or_else(|| "default".to_string()),
        })
    }
}

/// `users 1-2` (or `HOST:PORT-users 1-2`) → 1: JMeter numbers a group's threads from 1.
fn thread_index(thread_name: &str) -> Option<u32> {
    let (_, number) = thread_name.rsplit_once('-')?;
    number.trim().parse::<u32>().ok()?.checked_sub(1)
}

/// The row of one HTTP-plan line (one frame).
fn frame_row(sample: &Sample, who: &Who) -> Result<Row, BadLine> {
    let frame = sample.parsed::<u64>("frame")?.ok_or_else(|| {
        BadLine::new(
            sample.line,
            "neither a frame (HTTP plan) nor a client_csv (client plan) column".to_string(),
        )
    })?;
    let mut row = who.row(frame);
    row.started_at = record::timestamp(UNIX_EPOCH + Duration::from_millis(sample.started_ms));
    row.rtt_ms = sample.elapsed_ms;
    row.total_ms = sample.parsed("total_ms")?;
    row.ml_ms = sample.parsed("ml_ms")?;
    row.queue_ms = sample.parsed("queue_ms")?;
    row.faces = sample.parsed("faces")?;
    row.cold = sample.parsed("cold")?;
    row.instance = sample.var("instance").unwrap_or_default().to_string();
    row.precision = sample.parsed("precision")?;
    // Only an HTTP status is a status; JMeter writes its own text when nothing came back.
    row.status = sample.code.parse().ok();
    // Body sizes as the dataset counts them; JMeter's own counts include the headers.
    row.bytes_sent = sample.parsed("body_sent")?.unwrap_or(sample.bytes_sent);
    row.bytes_received = sample
        .parsed("body_received")?
        .unwrap_or(sample.bytes_received);
    row.ok = sample.success;
    row.error = truncate(&sample.error, 200);
    Ok(row)
}

/// The rows a client-plan line's `slblur-client run` wrote, as this run's rows.
fn client_rows(sample: &Sample, who: &Who, csv: &Path) -> Result<Vec<Row>, BadLine> {
    let rows = record::read_rows(csv).map_err(|e| {
        let outcome = if sample.success {
            String::new()
        } else {
            format!(" (the client run failed: {})", sample.error)
        };
        BadLine::new(sample.line, format!("{e}{outcome}"))
    })?;
    // Measurements as the client took them; identity of this JMeter run. Each JMeter loop runs
    // the client once over the video, so the loop is the iteration.
    Ok(rows
        .into_iter()
        .map(|client| Row {
            run_id: who.run_id.clone(),
            users: who.users,
            think_s: who.think_s,
            user_id: who.user_id,
            iteration: who.iteration,
            target: who.target.clone(),
            worker: who.worker,
            ..client
        })
        .collect())
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

/// One summary per (target, users, think) cell in the rows; the wall time of a cell runs from
/// its first request's start to its last response.
fn cell_summaries(rows: &[Row]) -> Vec<crate::summary::CellSummary> {
    type Cell = ((String, u32, u64), CellTally, SystemTime, SystemTime);
    let mut cells: Vec<Cell> = Vec::new();
    for row in rows {
        let Ok(start) = humantime::parse_rfc3339(&row.started_at) else {
            continue;
        };
        let end = start + Duration::from_secs_f64(row.rtt_ms.max(0.0) / 1000.0);
        let key = (row.target.clone(), row.users, row.think_s.to_bits());
        match cells.iter_mut().find(|cell| cell.0 == key) {
            Some((_, stats, first, last)) => {
                stats.add(row);
                *first = (*first).min(start);
                *last = (*last).max(end);
            }
            None => {
                let think = Duration::from_secs_f64(row.think_s);
                let mut stats = CellTally::new(row.users, think);
                stats.add(row);
                cells.push((key, stats, start, end));
            }
        }
    }
    cells
        .iter()
        .map(|(_, stats, first, last)| {
            stats.finish(last.duration_since(*first).unwrap_or_default())
        })
        .collect()
}

#[cfg(test)]
mod tests;
