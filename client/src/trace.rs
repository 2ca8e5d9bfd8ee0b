//! Function invocation traces in the format of the Azure Functions public traces (2019):
//! `HashOwner,HashApp,HashFunction,Trigger,1,2,…,1440`, one row per function, each minute
//! column the function's invocations in that minute. [`Trace::read`] reads such a file (the
//! real ones, or the project's `samples/traces/`) and checks every cell; [`Selection`] picks
//! the functions and minutes to replay and scales their counts.

use std::path::{Path, PathBuf};

/// The four columns before the minutes.
const NAMES: [&str; 4] = ["HashOwner", "HashApp", "HashFunction", "Trigger"];

/// Largest count read in one cell: far above any function's invocations in a minute.
const MAX_COUNT: u64 = 100_000_000;

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("cannot read trace '{path}'")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: line {line}, column {column}: {reason}")]
    Cell {
        path: PathBuf,
        line: u64,
        column: String,
        reason: String,
    },
    #[error("{path}: {reason}")]
    Selection { path: PathBuf, reason: String },
}

/// One function's row.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionCounts {
    pub owner: String,
    pub app: String,
    pub function: String,
    pub trigger: String,
    /// Invocations per minute, minute 1 first.
    pub per_minute: Vec<u64>,
}

/// A whole trace file.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub path: PathBuf,
    pub functions: Vec<FunctionCounts>,
    /// Minute columns in the file.
    pub minutes: usize,
}

/// What to replay of a trace: `--trace-function`, `--trace-minutes`, `--trace-scale`.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Prefixes of `HashFunction`; empty = every function.
    pub functions: Vec<String>,
    /// First and last minute, 1-based and inclusive; `None` = all.
    pub minutes: Option<(usize, usize)>,
    /// Each count is multiplied by this (the fraction drawn, seeded, when the product is not
    /// whole).
    pub scale: f64,
}

impl Trace {
    /// Reads and checks a trace file: its header, then every cell of every row.
    pub fn read(path: &Path) -> Result<Trace, TraceError> {
        let text = std::fs::read_to_string(path).map_err(|source| TraceError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let cell = |line: u64, column: &str, reason: String| TraceError::Cell {
            path: path.to_path_buf(),
            line,
            column: column.to_string(),
            reason,
        };
        let mut lines = text.lines().enumerate().map(|(i, l)| (i as u64 + 1, l));
        let (_, header) = lines
            .next()
            .ok_or_else(|| cell(1, "1", "the file is empty".into()))?;
        let names: Vec<&str> = header.trim_end_matches('\r').split(',').collect();
        let minutes = check_header(&names).map_err(|(column, reason)| cell(1, &column, reason))?;
        let mut functions = Vec::new();
        for (line, text) in lines {
            let text = text.trim_end_matches('\r');
            if text.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = text.split(',').collect();
            if fields.len() != names.len() {
                return Err(cell(
                    line,
                    &(fields.len().min(names.len()) + 1).to_string(),
                    format!(
                        "{} fields, but the header has {}",
                        fields.len(),
                        names.len()
                    ),
                ));
            }
            let mut per_minute = Vec::with_capacity(minutes);
            for (i, field) in fields[NAMES.len()..].iter().enumerate() {
                let count = field
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|&c| c <= MAX_COUNT)
                    .ok_or_else(|| {
                        cell(
                            line,
                            &format!("{} (minute {})", NAMES.len() + i + 1, i + 1),
                            format!("{:?} is not a count of invocations", clip(field)),
                        )
                    })?;
                per_minute.push(count);
            }
            functions.push(FunctionCounts {
                owner: fields[0].to_string(),
                app: fields[1].to_string(),
                function: fields[2].to_string(),
                trigger: fields[3].to_string(),
                per_minute,
            });
        }
        Ok(Trace {
            path: path.to_path_buf(),
            functions,
            minutes,
        })
    }

    /// The selected functions' invocations per minute, summed, over the selected minutes
    /// (unscaled). An empty selection is an error that says what the file holds.
    pub fn select(&self, selection: &Selection) -> Result<Vec<u64>, TraceError> {
        let bad = |reason: String| TraceError::Selection {
            path: self.path.clone(),
            reason,
        };
        let (first, last) = selection.minutes.unwrap_or((1, self.minutes));
        if first == 0 || first > last || last > self.minutes {
            return Err(bad(format!(
                "minutes {first}-{last} are not within the file's 1-{}",
                self.minutes
            )));
        }
        let mut chosen: Vec<&FunctionCounts> = Vec::new();
        for prefix in &selection.functions {
            let matches: Vec<&FunctionCounts> = self
                .functions
                .iter()
                .filter(|f| f.function.starts_with(prefix.as_str()))
                .collect();
            match matches.len() {
                0 => {
                    return Err(bad(format!(
                        "no function's HashFunction starts with '{prefix}' ({} functions in the file)",
                        self.functions.len()
                    )));
                }
                1 => chosen.push(matches[0]),
                n => {
                    return Err(bad(format!(
                        "'{prefix}' starts {n} functions' HashFunction; give more of it"
                    )));
                }
            }
        }
        if selection.functions.is_empty() {
            chosen = self.functions.iter().collect();
        }
        let counts: Vec<u64> = (first - 1..last)
            .map(|m| chosen.iter().map(|f| f.per_minute[m]).sum())
            .collect();
        if counts.iter().all(|&c| c == 0) {
            return Err(bad(format!(
                "the selection has no invocations in minutes {first}-{last}"
            )));
        }
        Ok(counts)
    }
}

/// The minute columns a header has, after checking its names; `Err((column, why))`.
fn check_header(names: &[&str]) -> Result<usize, (String, String)> {
    for (i, want) in NAMES.iter().enumerate() {
        if names.get(i).map(|n| n.trim()) != Some(*want) {
            return Err((
                (i + 1).to_string(),
                format!(
                    "expected the header {},1,2,… (the Azure Functions invocation-count format), found {:?}",
                    NAMES.join(","),
                    clip(names.get(i).copied().unwrap_or(""))
                ),
            ));
        }
    }
    let minutes = &names[NAMES.len()..];
    if minutes.is_empty() {
        return Err(((NAMES.len() + 1).to_string(), "no minute columns".into()));
    }
    for (i, name) in minutes.iter().enumerate() {
        if name.trim() != (i + 1).to_string() {
            return Err((
                (NAMES.len() + i + 1).to_string(),
                format!("expected minute {}, found {:?}", i + 1, clip(name)),
            ));
        }
    }
    Ok(minutes.len())
}

fn clip(text: &str) -> std::borrow::Cow<'_, str> {
    slblur_protocol::faas_protocol::clip(text, 24)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("trace.csv");
        std::fs::write(&path, text).expect("write");
        (dir, path)
    }

    const GOOD: &str = "HashOwner,HashApp,HashFunction,Trigger,1,2,3\n\
        o1,a1,f00d,http,1,0,2\n\
        o1,a1,beef,timer,3,3,3\n";

    #[test]
    fn a_trace_reads_and_selects() {
        let (_dir, path) = write(GOOD);
        let trace = Trace::read(&path).expect("good trace");
        assert_eq!((trace.functions.len(), trace.minutes), (2, 3));
        let all = Selection {
            functions: Vec::new(),
            minutes: None,
            scale: 1.0,
        };
        assert_eq!(trace.select(&all).expect("all"), [4, 3, 5]);
        let one = Selection {
            functions: vec!["f0".into()],
            minutes: Some((2, 3)),
            ..all.clone()
        };
        assert_eq!(trace.select(&one).expect("one"), [0, 2]);
        let none = Selection {
            functions: vec!["zz".into()],
            ..all.clone()
        };
        assert!(
            trace
                .select(&none)
                .unwrap_err()
                .to_string()
                .contains("no function's HashFunction")
        );
        let outside = Selection {
            minutes: Some((2, 9)),
            ..all.clone()
        };
        assert!(
            trace
                .select(&outside)
                .unwrap_err()
                .to_string()
                .contains("within the file's 1-3")
        );
        let silent = Selection {
            functions: vec!["f0".into()],
            minutes: Some((2, 2)),
            ..all
        };
        assert!(
            trace
                .select(&silent)
                .unwrap_err()
                .to_string()
                .contains("no invocations")
        );
    }

    #[test]
    fn malformed_traces_name_file_line_and_column() {
        let cases = [
            ("Owner,HashApp,HashFunction,Trigger,1\n", "line 1, column 1"),
            (
                "HashOwner,HashApp,HashFunction,Trigger,1,3\n",
                "line 1, column 6: expected minute 2",
            ),
            (
                "HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f,http,1,x\n",
                "line 2, column 6 (minute 2)",
            ),
            (
                "HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f,http,1,-1\n",
                "is not a count",
            ),
            (
                "HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f,http,1\n",
                "line 2, column 6: 5 fields",
            ),
            ("", "the file is empty"),
        ];
        for (text, want) in cases {
            let (_dir, path) = write(text);
            let err = Trace::read(&path).expect_err(text).to_string();
            assert!(
                err.contains("trace.csv") && err.contains(want),
                "{err} (want {want})"
            );
        }
    }
}
