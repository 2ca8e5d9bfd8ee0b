//! Reading the report's inputs: results CSV files, or run folders holding `results.csv` (and
//! perhaps `run.json`). Every row becomes a compact [`Sample`] in its cell; a foreign or
//! garbled file fails with its path and line.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::record::{HEADER, Invocation, Row, is_known_header};

use super::ReportError;
use super::cells::{CellKey, Sample};

/// Files above this size get progress lines while they are read.
const PROGRESS_BYTES: u64 = 8 << 20;
const PROGRESS_EVERY_ROWS: u64 = 100_000;

/// Everything read from the inputs.
#[derive(Debug, Default)]
pub struct Dataset {
    pub cells: BTreeMap<CellKey, Vec<Sample>>,
    /// Instance names; [`Sample::instance`] indexes this list.
    pub instances: Vec<String>,
    /// Run ids; [`Sample::run`] indexes this list.
    pub runs: Vec<String>,
    /// Servers per target from `run.json` (`servers`: a number for all, or `{target: n}`).
    pub servers_from_runs: BTreeMap<String, u32>,
    pub servers_for_all: Option<u32>,
    /// Targets called through OpenFaaS's asynchronous path.
    pub async_targets: BTreeSet<String>,
    /// Seconds of the run one trace minute took, from `run.json` (`trace.speedup`).
    pub trace_minute_s: Option<f64>,
    pub rows: u64,
    /// Rows cut short (a client killed mid-row), skipped with a warning.
    pub torn_rows: Vec<String>,
    pub files: Vec<PathBuf>,
}

/// Reads every input: files are results CSVs, folders hold `results.csv` or several CSVs.
pub fn read_inputs(inputs: &[PathBuf]) -> Result<Dataset, ReportError> {
    let mut data = Dataset::default();
    for input in inputs {
        let meta = fs::metadata(input).map_err(|source| ReportError::Open {
            path: input.clone(),
            source,
        })?;
        if meta.is_dir() {
            for file in csv_files_in(input)? {
                read_csv(&file, &mut data)?;
            }
            read_run_json(&input.join("run.json"), &mut data)?;
        } else {
            read_csv(input, &mut data)?;
        }
    }
    if data.rows == 0 {
        return Err(ReportError::NoRows {
            inputs: inputs.to_vec(),
        });
    }
    Ok(data)
}

/// `results.csv` if the folder has one, else every `*.csv` with the results header.
fn csv_files_in(dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let results = dir.join("results.csv");
    if results.is_file() {
        return Ok(vec![results]);
    }
    let entries = fs::read_dir(dir).map_err(|source| ReportError::Open {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv") && has_results_header(p))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(ReportError::EmptyFolder {
            path: dir.to_path_buf(),
        });
    }
    Ok(files)
}

fn has_results_header(path: &Path) -> bool {
    csv::Reader::from_path(path)
        .and_then(|mut r| r.headers().cloned())
        .is_ok_and(|h| is_known_header(&h.iter().collect::<Vec<_>>().join(",")))
}

fn read_csv(path: &Path, data: &mut Dataset) -> Result<(), ReportError> {
    let open_err = |source| ReportError::Open {
        path: path.to_path_buf(),
        source,
    };
    let size = fs::metadata(path).map_err(open_err)?.len();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| bad_line(path, 1, &e.to_string()))?;
    let headers = reader
        .headers()
        .map_err(|e| bad_line(path, 1, &e.to_string()))?
        .clone();
    let found = headers.iter().collect::<Vec<_>>().join(",");
    if !is_known_header(&found) {
        let shown: String = found.chars().take(80).collect();
        return Err(bad_line(
            path,
            1,
            &format!(
                "not a slblur results CSV: the header is '{shown}', expected '{}…' \
                 (client/SCHEMA.md)",
                HEADER[..4].join(",")
            ),
        ));
    }
    let progress = size > PROGRESS_BYTES;
    let live = std::io::stderr().is_terminal();
    let mut record = csv::StringRecord::new();
    let mut rows_here = 0u64;
    loop {
        let more = reader.read_record(&mut record).map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            bad_line(path, line, &e.to_string())
        })?;
        if !more {
            break;
        }
        let line = record.position().map_or(0, |p| p.line());
        if record.len() < headers.len() {
            data.torn_rows.push(format!(
                "{}: line {line}: {} of {} fields (a row cut short), skipped",
                path.display(),
                record.len(),
                headers.len()
            ));
            continue;
        }
        let row: Row = record
            .deserialize(Some(&headers))
            .map_err(|e| bad_line(path, line, &e.to_string()))?;
        let (key, sample) =
            sample_of(&row, data).map_err(|reason| bad_line(path, line, &reason))?;
        data.cells.entry(key).or_default().push(sample);
        rows_here += 1;
        if progress && rows_here.is_multiple_of(PROGRESS_EVERY_ROWS) {
            let text = format!("reading {}: {rows_here} rows", path.display());
            if live {
                eprint!("\r{text}");
            } else {
                eprintln!("{text}");
            }
        }
    }
    if progress {
        let text = format!("reading {}: {rows_here} rows, done", path.display());
        if live {
            eprintln!("\r{text}")
        } else {
            eprintln!("{text}")
        }
    }
    data.rows += rows_here;
    data.files.push(path.to_path_buf());
    Ok(())
}

fn bad_line(path: &Path, line: u64, reason: &str) -> ReportError {
    ReportError::BadLine {
        path: path.to_path_buf(),
        line,
        reason: reason.to_string(),
    }
}

/// The cell and compact sample of one row.
fn sample_of(row: &Row, data: &mut Dataset) -> Result<(CellKey, Sample), String> {
    let start_text = if row.intended_at.is_empty() {
        &row.started_at
    } else {
        &row.intended_at
    };
    let start_ms = epoch_ms(start_text)?;
    let instance = (!row.instance.is_empty()).then(|| intern(&mut data.instances, &row.instance));
    if !row.rtt_ms.is_finite() || row.rtt_ms < 0.0 {
        return Err(format!("rtt_ms {} is not a duration", row.rtt_ms));
    }
    if row.invocation == Invocation::Async {
        data.async_targets.insert(target_name(row));
    }
    let key = CellKey {
        target: target_name(row),
        users: row.users,
        think_s: row.think_s,
        rate_per_s: row.rate_per_s,
        smooth: row.smooth,
        arrival: row.arrival.parse().map_err(|e| format!("arrival: {e}"))?,
    };
    let sample = Sample {
        run: intern(&mut data.runs, &row.run_id),
        user: (row.worker, row.user_id),
        seq: row.iteration * 1_000_000 + row.frame,
        start_ms,
        rtt_ms: row.rtt_ms,
        total_ms: row.total_ms,
        ml_ms: row.ml_ms,
        queue_ms: row.queue_ms,
        async_queue_ms: row.async_queue_ms,
        accepted_ms: row.accepted_ms,
        late_ms: row.late_ms,
        ok: row.ok,
        cold: row.cold == Some(true),
        instance,
    };
    Ok((key, sample))
}

/// The row's target; rows from before targets existed went to `default`.
fn target_name(row: &Row) -> String {
    if row.target.is_empty() {
        "default".to_string()
    } else {
        row.target.clone()
    }
}

/// The index of `name` in `list`, added if new (instances and runs are few).
fn intern(list: &mut Vec<String>, name: &str) -> u32 {
    match list.iter().position(|i| i == name) {
        Some(i) => i as u32,
        None => {
            list.push(name.to_string());
            (list.len() - 1) as u32
        }
    }
}

fn epoch_ms(text: &str) -> Result<f64, String> {
    let t = humantime::parse_rfc3339_weak(text)
        .map_err(|e| format!("'{text}' is not an RFC 3339 time ({e})"))?;
    let since = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| format!("'{text}' is before 1970"))?;
    Ok(since.as_secs_f64() * 1000.0)
}

/// `servers` in a run folder's `run.json`, when the run recorded it.
fn read_run_json(path: &Path, data: &mut Dataset) -> Result<(), ReportError> {
    let Ok(text) = fs::read_to_string(path) else {
        return Ok(());
    };
    let bad = |reason: String| ReportError::BadRunJson {
        path: path.to_path_buf(),
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON ({e})")))?;
    if let Some(speedup) = value
        .pointer("/trace/speedup")
        .and_then(serde_json::Value::as_f64)
        .filter(|s| *s > 0.0)
    {
        data.trace_minute_s = Some(60.0 / speedup);
    }
    match value.get("servers") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Number(n)) => {
            data.servers_for_all = Some(positive_servers(n.as_u64()).map_err(bad)?);
        }
        Some(serde_json::Value::Object(map)) => {
            for (target, n) in map {
                let n = positive_servers(n.as_u64()).map_err(bad)?;
                data.servers_from_runs.insert(target.clone(), n);
            }
        }
        Some(other) => {
            return Err(bad(format!(
                "'servers' must be a number or {{\"target\": number}}, not {other}"
            )));
        }
    }
    Ok(())
}

fn positive_servers(n: Option<u64>) -> Result<u32, String> {
    match n {
        Some(n @ 1..=100_000) => Ok(n as u32),
        _ => Err("'servers' must be a whole number from 1 to 100000".to_string()),
    }
}
