//! The results CSV: one [`Row`] per request, appended and flushed as it happens.
//!
//! Every tool of the project (this client, the goose driver, the JMeter converter, the report)
//! writes and reads this schema; `client/SCHEMA.md` documents it. Flushing after each row means
//! Ctrl-C, a crash or a killed server never loses a finished row, and a file that ends mid-row
//! (a killed client) is repaired by starting the next row on a new line.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use slblur_protocol::Precision;

/// Column names, in file order. Must match the fields of [`Row`].
pub const HEADER: [&str; 34] = [
    "run_id",
    "users",
    "think_s",
    "user_id",
    "frame",
    "iteration",
    "started_at",
    "rtt_ms",
    "total_ms",
    "ml_ms",
    "faces",
    "status",
    "bytes_sent",
    "bytes_received",
    "cold",
    "ok",
    "error",
    "target",
    "instance",
    "queue_ms",
    "worker",
    "intended_at",
    "rate_per_s",
    "smooth",
    "hints",
    "masked",
    "masked_area",
    "invocation",
    "accepted_ms",
    "call_id",
    "async_queue_ms",
    "arrival",
    "late_ms",
    "precision",
];

/// Earlier schemas: the first columns, as files written before the later ones existed have
/// them (17: up to `error`; 23: up to `rate_per_s`; 33: up to `late_ms`). Readers accept such
/// files; the missing columns read as unknown (`smooth` and `hints` as 0, `invocation` as
/// sync).
pub const LEGACY_COLUMNS: [usize; 3] = [17, 23, 33];

/// One request. `None` fields are written as empty cells ("unknown").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub run_id: String,
    pub users: u32,
    pub think_s: f64,
    pub user_id: u32,
    pub frame: u64,
    pub iteration: u64,
    /// RFC 3339 UTC with milliseconds, taken when the request was sent (after the think sleep).
    pub started_at: String,
    pub rtt_ms: f64,
    pub total_ms: Option<f64>,
    pub ml_ms: Option<f64>,
    pub faces: Option<u32>,
    pub status: Option<u16>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub cold: Option<bool>,
    pub ok: bool,
    pub error: String,
    /// Name of the deployment the request went to (`--target NAME=URL`; `default` for `--url`).
    #[serde(default)]
    pub target: String,
    /// Which replica answered (`X-Slblur-Instance`, JSON `instance`); empty if unknown.
    #[serde(default)]
    pub instance: String,
    /// The server's queue wait (`Server-Timing` `queue`, JSON `timings_ms.queue`).
    #[serde(default)]
    pub queue_ms: Option<f64>,
    /// Which load-generator worker sent it (0 when one process ran the load).
    #[serde(default)]
    pub worker: u32,
    /// Open-loop cells: when the request was scheduled (latency counts from here); empty for
    /// closed-loop users.
    #[serde(default)]
    pub intended_at: String,
    /// Open-loop cells: the offered request rate (Poisson arrivals per second); empty for
    /// closed-loop users.
    #[serde(default)]
    pub rate_per_s: Option<f64>,
    /// `--smooth N`: how many earlier replies' faces the user sent as hints (0: none).
    #[serde(default)]
    pub smooth: u32,
    /// Boxes this request carried as hints (`X-Slblur-Hints`).
    #[serde(default)]
    pub hints: u32,
    /// Regions the reply masked, detected faces and kept hints (`X-Slblur-Masked`, or the
    /// length of JSON `faces`); empty if unknown.
    #[serde(default)]
    pub masked: Option<u32>,
    /// The masked boxes' union as a share of the frame (0–1); empty if unknown.
    #[serde(default)]
    pub masked_area: Option<f64>,
    /// How the function was called: directly, or through OpenFaaS's asynchronous path (then
    /// `rtt_ms` runs to the callback).
    #[serde(default)]
    pub invocation: Invocation,
    /// Asynchronous calls: the round trip of the `202 Accepted`.
    #[serde(default)]
    pub accepted_ms: Option<f64>,
    /// Asynchronous calls: OpenFaaS's `X-Call-Id`, to find the call in the gateway's and queue
    /// worker's logs.
    #[serde(default)]
    pub call_id: String,
    /// Asynchronous calls: `rtt_ms` minus the queue worker's `X-Duration-Seconds`, the time
    /// spent before the queue worker took the call (the accept, the queue, the callback's
    /// trip back).
    #[serde(default)]
    pub async_queue_ms: Option<f64>,
    /// Open-loop cells: how the requests arrived (`poisson`, `burst:…`, `ramp:…`, `trace`; the
    /// option syntax); empty for closed loops.
    #[serde(default)]
    pub arrival: String,
    /// Open-loop cells: how long after its intended time the request was sent (the load
    /// generator's lateness, already part of `rtt_ms`).
    #[serde(default)]
    pub late_ms: Option<f64>,
    /// The precision the function ran the network at (`X-Slblur-Precision`, JSON
    /// `inference.precision`): `fp32` or `int8`; empty if unknown.
    #[serde(default)]
    pub precision: Option<Precision>,
}

/// How a request reached the function.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Invocation {
    /// The response is the function's answer.
    #[default]
    Sync,
    /// `202 Accepted` now, the function's answer later at the callback URL.
    Async,
}

impl Invocation {
    pub fn name(self) -> &'static str {
        match self {
            Invocation::Sync => "sync",
            Invocation::Async => "async",
        }
    }
}

impl Row {
    /// The row of one request, before anything is known of its outcome.
    pub fn pending(
        run_id: &str,
        users: u32,
        think_s: f64,
        user_id: u32,
        frame: u64,
        iteration: u64,
    ) -> Row {
        Row {
            run_id: run_id.to_string(),
            users,
            think_s,
            user_id,
            frame,
            iteration,
            started_at: String::new(),
            rtt_ms: 0.0,
            total_ms: None,
            ml_ms: None,
            faces: None,
            status: None,
            bytes_sent: 0,
            bytes_received: 0,
            cold: None,
            ok: false,
            error: String::new(),
            target: String::new(),
            instance: String::new(),
            queue_ms: None,
            worker: 0,
            intended_at: String::new(),
            rate_per_s: None,
            smooth: 0,
            hints: 0,
            masked: None,
            masked_area: None,
            invocation: Invocation::Sync,
            accepted_ms: None,
            call_id: String::new(),
            async_queue_ms: None,
            arrival: String::new(),
            late_ms: None,
            precision: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot open results file '{path}'")]
    Open { path: PathBuf, source: io::Error },
    #[error(
        "results file '{path}' has a different header (found: {found}); \
         choose another --out or move the old file away"
    )]
    HeaderMismatch { path: PathBuf, found: String },
    #[error("cannot write to results file '{path}'")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read results file '{path}'")]
    Read { path: PathBuf, source: csv::Error },
}

/// Appends rows to a results CSV, flushing each one.
pub struct CsvSink {
    path: PathBuf,
    writer: csv::Writer<File>,
    rows: u64,
}

impl CsvSink {
    /// Opens `path` for appending. A missing or empty file gets the header; an existing file
    /// must already have exactly this header.
    pub fn open(path: &Path) -> Result<Self, RecordError> {
        let open_err = |source| RecordError::Open {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(open_err)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(open_err)?;
        let len = file.metadata().map_err(open_err)?.len();
        let header = HEADER.join(",");
        if len == 0 {
            writeln!(file, "{header}").map_err(|source| RecordError::Write {
                path: path.to_path_buf(),
                source,
            })?;
        } else {
            let mut first = String::new();
            BufReader::new(&mut file)
                .read_line(&mut first)
                .map_err(open_err)?;
            let found = first.trim_end_matches(['\r', '\n']);
            if found != header {
                return Err(RecordError::HeaderMismatch {
                    path: path.to_path_buf(),
                    found: found.to_string(),
                });
            }
            // A client killed mid-row leaves no final newline: start our rows on a fresh line.
            let mut last = [0u8; 1];
            file.seek(SeekFrom::End(-1)).map_err(open_err)?;
            file.read_exact(&mut last).map_err(open_err)?;
            if last[0] != b'\n' {
                file.write_all(b"\n").map_err(|source| RecordError::Write {
                    path: path.to_path_buf(),
                    source,
                })?;
            }
        }
        let writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(file);
        Ok(Self {
            path: path.to_path_buf(),
            writer,
            rows: 0,
        })
    }

    /// Writes one row and flushes it to the file.
    pub fn write(&mut self, row: &Row) -> Result<(), RecordError> {
        let write_err = |source| RecordError::Write {
            path: self.path.clone(),
            source,
        };
        self.writer
            .serialize(row)
            .map_err(|e| write_err(io::Error::other(e)))?;
        self.writer.flush().map_err(write_err)?;
        self.rows += 1;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows written through this sink.
    pub fn rows(&self) -> u64 {
        self.rows
    }
}

/// Fails if `path` exists, is not empty and has another header; creates nothing.
pub fn check_header(path: &Path) -> Result<(), RecordError> {
    let Ok(file) = File::open(path) else {
        return Ok(());
    };
    let mut first = String::new();
    BufReader::new(file)
        .read_line(&mut first)
        .map_err(|source| RecordError::Open {
            path: path.to_path_buf(),
            source,
        })?;
    let found = first.trim_end_matches(['\r', '\n']);
    if !found.is_empty() && found != HEADER.join(",") {
        return Err(RecordError::HeaderMismatch {
            path: path.to_path_buf(),
            found: found.to_string(),
        });
    }
    Ok(())
}

/// Reads every row of a results CSV (for tests and later tools).
pub fn read_rows(path: &Path) -> Result<Vec<Row>, RecordError> {
    let read_err = |source| RecordError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = csv::Reader::from_path(path).map_err(read_err)?;
    let found = reader
        .headers()
        .map_err(read_err)?
        .iter()
        .collect::<Vec<_>>()
        .join(",");
    if !is_known_header(&found) {
        return Err(RecordError::HeaderMismatch {
            path: path.to_path_buf(),
            found,
        });
    }
    reader
        .deserialize()
        .collect::<Result<Vec<Row>, _>>()
        .map_err(read_err)
}

/// This schema's header, or an earlier one (see [`LEGACY_COLUMNS`]).
pub fn is_known_header(line: &str) -> bool {
    line == HEADER.join(",")
        || LEGACY_COLUMNS
            .iter()
            .any(|&n| line == HEADER[..n].join(","))
}

/// `2025-01-31T12:00:00.123Z`: RFC 3339, UTC, milliseconds.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// A run id unique per invocation: UTC start time plus a random suffix, e.g.
/// `20250131T120000Z-3fa9c2`.
pub fn new_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let stamp: String = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    // RandomState is seeded from the OS, which is random enough to keep ids apart.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!("{stamp}-{:06x}", hasher.finish() & 0xff_ffff)
}

/// Rounds to microseconds so the CSV stays readable (`160.123` instead of 17 digits).
pub fn round_ms(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(frame: u64, ok: bool) -> Row {
        Row {
            run_id: "r".into(),
            users: 2,
            think_s: 0.5,
            user_id: 1,
            frame,
            iteration: 0,
            started_at: timestamp(SystemTime::UNIX_EPOCH),
            rtt_ms: 12.5,
            total_ms: ok.then_some(10.0),
            ml_ms: ok.then_some(8.25),
            faces: ok.then_some(2),
            status: ok.then_some(200),
            bytes_sent: 100,
            bytes_received: if ok { 90 } else { 0 },
            cold: ok.then_some(false),
            ok,
            error: if ok {
                String::new()
            } else {
                "timeout after 1s, \"quoted\"".into()
            },
            target: "serverless".into(),
            instance: if ok { "slblur-7".into() } else { String::new() },
            queue_ms: ok.then_some(0.25),
            worker: 1,
            intended_at: String::new(),
            rate_per_s: None,
            smooth: 2,
            hints: if ok { 1 } else { 0 },
            masked: ok.then_some(3),
            masked_area: ok.then_some(0.0125),
            invocation: Invocation::Async,
            accepted_ms: Some(1.5),
            call_id: "c-1".into(),
            async_queue_ms: ok.then_some(4.25),
            arrival: "burst:20:2:1:4".into(),
            late_ms: Some(0.25),
            precision: ok.then_some(Precision::Int8),
        }
    }

    #[test]
    fn header_matches_row_fields() {
        let mut w = csv::Writer::from_writer(vec![]);
        w.serialize(row(0, true)).expect("test input");
        let text = String::from_utf8(w.into_inner().expect("test input")).expect("test input");
        assert_eq!(text.lines().next().expect("test input"), HEADER.join(","));
    }

    #[test]
    fn rows_round_trip_with_empty_unknowns() {
        let dir = tempfile::tempdir().expect("test input");
        let path = dir.path().join("sub/results.csv");
        let mut sink = CsvSink::open(&path).expect("test input");
        sink.write(&row(0, true)).expect("test input");
        sink.write(&row(1, false)).expect("test input");
        drop(sink);
        let text = fs::read_to_string(&path).expect("test input");
        assert!(
            text.lines()
                .nth(2)
                .expect("test input")
                .contains("12.5,,,,,100,0,,false,\"timeout"),
            "{text}"
        );
        // Appending keeps one header.
        CsvSink::open(&path)
            .expect("test input")
            .write(&row(2, true))
            .expect("test input");
        let rows = read_rows(&path).expect("test input");
        assert_eq!(rows, vec![row(0, true), row(1, false), row(2, true)]);
        assert_eq!(
            timestamp(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn foreign_header_is_refused() {
        let dir = tempfile::tempdir().expect("test input");
        let path = dir.path().join("other.csv");
        fs::write(&path, "a,b\n1,2\n").expect("test input");
        assert!(matches!(
            CsvSink::open(&path),
            Err(RecordError::HeaderMismatch { .. })
        ));
    }

    #[test]
    fn torn_last_row_is_isolated() {
        let dir = tempfile::tempdir().expect("test input");
        let path = dir.path().join("torn.csv");
        fs::write(&path, format!("{}\nr,1,0", HEADER.join(","))).expect("test input");
        CsvSink::open(&path)
            .expect("test input")
            .write(&row(3, true))
            .expect("test input");
        let text = fs::read_to_string(&path).expect("test input");
        assert!(text.ends_with('\n'));
        assert_eq!(text.lines().count(), 3);
    }

    #[test]
    fn legacy_files_read_with_unknown_new_columns() {
        let dir = tempfile::tempdir().expect("test input");
        let path = dir.path().join("legacy.csv");
        let line = "r,2,0.5,1,3,0,1970-01-01T00:00:00.000Z,12.5,10,8.25,2,200,100,90,false,true,";
        fs::write(
            &path,
            format!("{}\n{line}\n", HEADER[..LEGACY_COLUMNS[0]].join(",")),
        )
        .expect("test input");
        let rows = read_rows(&path).expect("legacy file reads");
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!((r.frame, r.ml_ms, r.ok), (3, Some(8.25), true));
        assert_eq!((r.target.as_str(), r.queue_ms, r.worker), ("", None, 0));
        assert_eq!(
            (r.smooth, r.hints, r.masked, r.masked_area, r.invocation),
            (0, 0, None, None, Invocation::Sync)
        );
        // Appending new rows to a legacy file would mix two schemas: refused.
        assert!(matches!(
            CsvSink::open(&path),
            Err(RecordError::HeaderMismatch { .. })
        ));
    }

    #[test]
    fn run_ids_differ() {
        assert_ne!(new_run_id(), new_run_id());
    }
}
