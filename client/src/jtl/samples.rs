//! Reading a JTL (JMeter's CSV results, with a header line) into [`Sample`]s, one per line.
//! A line that cannot be read (torn by a killed JMeter, a missing field, a value that is not
//! what its column holds) becomes a [`BadLine`] with its line number instead of a sample.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use super::{BadLine, JtlError};

/// Columns without which a line says nothing useful.
const REQUIRED: [&str; 4] = ["timeStamp", "elapsed", "success", "threadName"];

/// One JTL line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Line number in the file (the header is line 1).
    pub line: u64,
    /// When the sample started, milliseconds since the Unix epoch (master.properties sets
    /// `sampleresult.timestamp.start=true`).
    pub started_ms: u64,
    /// JMeter's `elapsed`: from just before sending to the end of the response, in ms.
    pub elapsed_ms: f64,
    pub success: bool,
    /// `responseCode`: an HTTP status, a process exit code, or JMeter's text for no response.
    pub code: String,
    /// Why it failed: the assertion's message, else the response message; empty when it passed.
    pub error: String,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    /// `threadName`: `users 1-2` locally, `HOST:PORT-users 1-2` from a remote server.
    pub thread: String,
    /// Sample variables (see `sample_variables` in jmeter/master.properties) that have a value.
    vars: HashMap<String, String>,
}

impl Sample {
    /// A sample variable's text, `None` when JMeter wrote it empty or as `null` (never set).
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// A sample variable parsed as `T`; a value that does not parse is a bad line.
    pub fn parsed<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, BadLine> {
        self.var(name)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|_| BadLine::new(self.line, format!("{name} '{v}' is not valid")))
            })
            .transpose()
    }
}

/// Every line of the JTL: the samples, and the lines that could not be read.
pub fn read(path: &Path) -> Result<(Vec<Sample>, Vec<BadLine>), JtlError> {
    let file = File::open(path).map_err(|source| JtlError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(file);
    let header = reader
        .headers()
        .map_err(|e| JtlError::Header {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?
        .clone();
    let columns: HashMap<&str, usize> = header.iter().enumerate().map(|(i, h)| (h, i)).collect();
    let missing: Vec<&str> = REQUIRED
        .into_iter()
        .filter(|c| !columns.contains_key(c))
        .collect();
    if !missing.is_empty() {
        return Err(JtlError::Header {
            path: path.to_path_buf(),
            reason: format!(
                "no column {} (is it a CSV JTL with a header line? jmeter/master.properties \
                 sets jmeter.save.saveservice.output_format=csv and print_field_names=true)",
                missing.join(", ")
            ),
        });
    }
    let mut samples = Vec::new();
    let mut bad = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => match sample(&header, &columns, &record, line) {
                Ok(s) => samples.push(s),
                Err(b) => bad.push(b),
            },
            Err(e) => bad.push(BadLine::new(
                e.position().map_or(line, |p| p.line()),
                format!("unreadable: {e}"),
            )),
        }
    }
    Ok((samples, bad))
}

fn sample(
    header: &csv::StringRecord,
    columns: &HashMap<&str, usize>,
    record: &csv::StringRecord,
    line: u64,
) -> Result<Sample, BadLine> {
    if record.len() != header.len() {
        return Err(BadLine::new(
            line,
            format!(
                "{} fields where the header has {} (a torn or hand-edited line)",
                record.len(),
                header.len()
            ),
        ));
    }
    let field = |name: &str| columns.get(name).map_or("", |&i| &record[i]);
    let number = |name: &str| -> Result<u64, BadLine> {
        let v = field(name);
        if v.is_empty() && !REQUIRED.contains(&name) {
            return Ok(0);
        }
        v.parse()
            .map_err(|_| BadLine::new(line, format!("{name} '{v}' is not a whole number")))
    };
    let success = match field("success") {
        "true" => true,
        "false" => false,
        other => {
            return Err(BadLine::new(
                line,
                format!("success '{other}' is not true or false"),
            ));
        }
    };
    let error = if success {
        String::new()
    } else {
        [
            field("failureMessage"),
            field("responseMessage"),
            field("responseCode"),
        ]
        .into_iter()
        .find(|m| !m.is_empty())
        .unwrap_or("failed")
        .to_string()
    };
    let vars = header
        .iter()
        .zip(record.iter())
        .filter(|(name, value)| !REQUIRED.contains(name) && !value.is_empty() && *value != "null")
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    Ok(Sample {
        line,
        started_ms: number("timeStamp")?,
        elapsed_ms: number("elapsed")? as f64,
        success,
        code: field("responseCode").to_string(),
        error,
        bytes_received: number("bytes")?,
        bytes_sent: number("sentBytes")?,
        thread: field("threadName").to_string(),
        vars,
    })
}
