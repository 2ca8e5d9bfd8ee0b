//! `index.html`: the summary table, the model's fit and every plot with how to read it. It
//! references only the PNG files beside it (no scripts, fonts or styles from elsewhere), so the
//! folder opens offline and can be copied as a whole.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use super::plots::Plot;
use super::tables::{TABLE_HEADER, TABLE_NOTE, table_cells};
use super::{Analysis, ReportError};

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:1400px;color:#222}\
table{border-collapse:collapse;font-size:0.9em}td,th{border:1px solid #ccc;padding:3px 7px;\
text-align:right}th{background:#f2f2f2}td:first-child,td:nth-child(2){text-align:left}\
img{max-width:100%;border:1px solid #ddd}figure{margin:1.5em 0}figcaption{max-width:60em;\
color:#444}";

pub fn write(analysis: &Analysis, plots: &[Plot], out: &Path) -> Result<PathBuf, ReportError> {
    let path = out.join("index.html");
    fs::write(&path, page(analysis, plots)).map_err(|source| ReportError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Text made safe inside HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn page(analysis: &Analysis, plots: &[Plot]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>slblur load test report</title><style>{STYLE}</style></head><body>\n\
         <h1>slblur load test report</h1>\n<p>{} requests from {} file(s), {} cell(s), \
         target(s): {}. Latency statistics cover successful requests; a request past the \
         timeout counts as a failure. Files: <a href=\"summary.csv\">summary.csv</a>, \
         <a href=\"summary.md\">summary.md</a>.</p>\n",
        analysis.data.rows,
        analysis.data.files.len(),
        analysis.cells.len(),
        escape(&analysis.targets.join(", "))
    );
    h.push_str(
        "<h2>Model</h2>\n<p>Closed cells: exact multi-server MVA; open cells: M/M/c. \
        Parameters fitted from the single-user cells:</p>\n<ul>\n",
    );
    for line in super::tables::fit_text(analysis).lines() {
        let text = escape(line.trim_start_matches("- "));
        let _ = writeln!(
            h,
            "<li>{}</li>",
            text.replacen("**", "<b>", 1).replacen("**", "</b>", 1)
        );
    }
    h.push_str("</ul>\n<h2>Summary</h2>\n<table>\n<tr>");
    for title in TABLE_HEADER {
        let _ = write!(h, "<th>{}</th>", escape(title));
    }
    h.push_str("</tr>\n");
    for cell in &analysis.cells {
        h.push_str("<tr>");
        for text in table_cells(cell, analysis.invocation(&cell.key.target)) {
            let _ = write!(h, "<td>{}</td>", escape(&text));
        }
        h.push_str("</tr>\n");
    }
    let note = escape(TABLE_NOTE).replace('`', "");
    let _ = writeln!(h, "</table>\n<p>{note}</p>\n<h2>Plots</h2>");
    for p in plots {
        let _ = writeln!(
            h,
            "<figure><h3>{}</h3><img src=\"{}\" width=\"{}\" height=\"{}\" alt=\"{}\">\
             <figcaption>{}</figcaption></figure>",
            escape(&p.title),
            escape(&p.file),
            p.width,
            p.height,
            escape(&p.title),
            escape(&p.caption)
        );
    }
    if !analysis.data.torn_rows.is_empty() {
        h.push_str("<h2>Skipped rows</h2>\n<ul>\n");
        for w in &analysis.data.torn_rows {
            let _ = writeln!(h, "<li>{}</li>", escape(w));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("</body></html>\n");
    h
}
