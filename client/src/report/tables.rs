//! `summary.csv` (one row per target and cell, for tools and the notebook) and `summary.md`
//! (the same numbers for people, with the model's fitted parameters).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::record::{Invocation, round_ms};
use crate::summary::Dist;

use super::fit::error_pct;
use super::{Analysis, CellReport, ReportError};

/// One line of `summary.csv`. Names follow the load rig's summary (`users`, `think_s`,
/// `requests`, `ok`, `failed`, `success_rate`, `throughput_rps`); empty cells are unknown.
#[derive(Debug, Serialize)]
pub struct SummaryRow {
    pub target: String,
    /// `async` for a target called through OpenFaaS's asynchronous path (its round trip runs
    /// to the callback).
    pub invocation: &'static str,
    pub users: u32,
    pub think_s: f64,
    pub rate_per_s: Option<f64>,
    pub smooth: u32,
    pub requests: u64,
    pub ok: u64,
    pub failed: u64,
    pub success_rate: f64,
    pub throughput_rps: f64,
    pub wall_s: f64,
    pub cold: u64,
    pub rtt_mean_ms: Option<f64>,
    pub rtt_median_ms: Option<f64>,
    pub rtt_p95_ms: Option<f64>,
    pub rtt_p99_ms: Option<f64>,
    pub rtt_ci95_low_ms: Option<f64>,
    pub rtt_ci95_high_ms: Option<f64>,
    pub warm_rtt_mean_ms: Option<f64>,
    pub cold_rtt_mean_ms: Option<f64>,
    pub total_mean_ms: Option<f64>,
    pub total_median_ms: Option<f64>,
    pub total_p95_ms: Option<f64>,
    pub total_p99_ms: Option<f64>,
    pub ml_mean_ms: Option<f64>,
    pub ml_median_ms: Option<f64>,
    pub ml_p95_ms: Option<f64>,
    pub ml_p99_ms: Option<f64>,
    pub network_mean_ms: Option<f64>,
    pub queue_mean_ms: Option<f64>,
    pub handler_other_mean_ms: Option<f64>,
    /// Asynchronous cells: the mean `202 Accepted` round trip, the mean time before the queue
    /// worker took a call, and that time's share of the mean round trip.
    pub accepted_mean_ms: Option<f64>,
    pub async_queue_mean_ms: Option<f64>,
    pub async_queue_share: Option<f64>,
    pub instances: usize,
    pub predicted_rtt_ms: Option<f64>,
    pub predicted_throughput_rps: Option<f64>,
    pub rtt_prediction_error_pct: Option<f64>,
    pub throughput_prediction_error_pct: Option<f64>,
    pub ratio_baseline: Option<String>,
    pub rtt_mean_ratio: Option<f64>,
    pub throughput_ratio: Option<f64>,
}

/// Prediction error of the mean round trip, against the warm requests' mean (the model has no
/// cold starts).
pub fn rtt_error_pct(cell: &CellReport) -> Option<f64> {
    error_pct(cell.prediction?.rtt_ms?, cell.stats.warm_rtt_mean_ms?)
}

fn throughput_error_pct(cell: &CellReport) -> Option<f64> {
    error_pct(cell.prediction?.throughput_rps, cell.stats.throughput_rps)
}

fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

impl SummaryRow {
    pub fn of(cell: &CellReport, invocation: Invocation) -> SummaryRow {
        let s = &cell.stats;
        let part = |f: fn(&Dist) -> f64, d: Option<Dist>| d.as_ref().map(f);
        let ms = |v: Option<f64>| v.map(round_ms);
        let asynchronous = invocation == Invocation::Async;
        SummaryRow {
            target: cell.key.target.clone(),
            invocation: invocation.name(),
            users: cell.key.users,
            think_s: cell.key.think_s,
            rate_per_s: cell.key.rate_per_s,
            smooth: cell.key.smooth,
            requests: s.requests,
            ok: s.ok,
            failed: s.requests - s.ok,
            success_rate: round4(s.success_rate),
            throughput_rps: round_ms(s.throughput_rps),
            wall_s: round_ms(s.wall_s),
            cold: s.cold,
            rtt_mean_ms: part(|d| d.mean, s.rtt),
            rtt_median_ms: part(|d| d.median, s.rtt),
            rtt_p95_ms: part(|d| d.p95, s.rtt),
            rtt_p99_ms: part(|d| d.p99, s.rtt),
            rtt_ci95_low_ms: ms(s.rtt_ci95.map(|c| c.0)),
            rtt_ci95_high_ms: ms(s.rtt_ci95.map(|c| c.1)),
            warm_rtt_mean_ms: ms(s.warm_rtt_mean_ms),
            cold_rtt_mean_ms: ms(s.cold_rtt_mean_ms),
            total_mean_ms: part(|d| d.mean, s.total),
            total_median_ms: part(|d| d.median, s.total),
            total_p95_ms: part(|d| d.p95, s.total),
            total_p99_ms: part(|d| d.p99, s.total),
            ml_mean_ms: part(|d| d.mean, s.ml),
            ml_median_ms: part(|d| d.median, s.ml),
            ml_p95_ms: part(|d| d.p95, s.ml),
            ml_p99_ms: part(|d| d.p99, s.ml),
            network_mean_ms: ms(s.breakdown.map(|b| b.network_ms)),
            queue_mean_ms: ms(s.breakdown.map(|b| b.queue_ms)),
            handler_other_mean_ms: ms(s.breakdown.map(|b| b.handler_other_ms)),
            accepted_mean_ms: ms(s.accepted_mean_ms),
            async_queue_mean_ms: asynchronous
                .then(|| ms(s.breakdown.map(|b| b.async_queue_ms)))
                .flatten(),
            async_queue_share: asynchronous
                .then(|| {
                    let (b, rtt) = (s.breakdown?, s.rtt?.mean);
                    (rtt > 0.0).then(|| round4(b.async_queue_ms / rtt))
                })
                .flatten(),
            instances: s.per_instance.len(),
            predicted_rtt_ms: ms(cell.prediction.and_then(|p| p.rtt_ms)),
            predicted_throughput_rps: ms(cell.prediction.map(|p| p.throughput_rps)),
            rtt_prediction_error_pct: rtt_error_pct(cell).map(round4),
            throughput_prediction_error_pct: throughput_error_pct(cell).map(round4),
            ratio_baseline: cell.ratio.as_ref().map(|r| r.0.clone()),
            rtt_mean_ratio: cell.ratio.as_ref().and_then(|r| r.1).map(round4),
            throughput_ratio: cell.ratio.as_ref().and_then(|r| r.2).map(round4),
        }
    }
}

/// Writes `summary.csv` and `summary.md`; returns their paths.
pub fn write(analysis: &Analysis, out: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let csv_path = out.join("summary.csv");
    let write_err = |path: &Path, e: std::io::Error| ReportError::Write {
        path: path.to_path_buf(),
        source: e,
    };
    let mut writer = csv::Writer::from_path(&csv_path)
        .map_err(|e| write_err(&csv_path, std::io::Error::other(e)))?;
    for cell in &analysis.cells {
        writer
            .serialize(SummaryRow::of(cell, analysis.invocation(&cell.key.target)))
            .map_err(|e| write_err(&csv_path, std::io::Error::other(e)))?;
    }
    writer.flush().map_err(|e| write_err(&csv_path, e))?;
    let md_path = out.join("summary.md");
    fs::write(&md_path, markdown(analysis)).map_err(|e| write_err(&md_path, e))?;
    Ok(vec![csv_path, md_path])
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or("–".to_string(), |v| format!("{v:.decimals$}"))
}

fn pct(v: Option<f64>) -> String {
    v.map_or("–".to_string(), |v| format!("{v:+.1} %"))
}

/// Column titles of the table people read (`summary.md`, `index.html`).
pub const TABLE_HEADER: [&str; 16] = [
    "target",
    "load",
    "requests",
    "success",
    "req/s",
    "rtt mean (95 % CI)",
    "median",
    "p95",
    "total mean",
    "ML mean",
    "cold",
    "model rtt",
    "error",
    "model req/s",
    "error",
    "ratio",
];

/// What the table's load labels and errors mean.
pub const TABLE_NOTE: &str = "Load: `Nu Zs` = N closed-loop users thinking Z seconds; `R/s` = \
    open-loop rate; `smooth N` = users sent the faces of their last N replies as hints. Model errors are (predicted − measured) / measured; the round trip is \
    compared with the warm requests' mean.";

/// One cell's row of that table, as text.
pub fn table_cells(cell: &CellReport, invocation: Invocation) -> [String; 16] {
    let row = SummaryRow::of(cell, invocation);
    let ci = match (row.rtt_ci95_low_ms, row.rtt_ci95_high_ms) {
        (Some(lo), Some(hi)) => format!(" ({lo:.0}–{hi:.0})"),
        _ => String::new(),
    };
    let ratio = match (&row.ratio_baseline, row.rtt_mean_ratio) {
        (Some(base), Some(r)) => format!("{r:.2}× {base}"),
        _ => "–".to_string(),
    };
    let target = match invocation {
        Invocation::Sync => row.target,
        Invocation::Async => format!("{} (async)", row.target),
    };
    [
        target,
        cell.key.load_label(),
        row.requests.to_string(),
        format!("{:.1} %", row.success_rate * 100.0),
        format!("{:.2}", row.throughput_rps),
        opt(row.rtt_mean_ms, 1) + &ci,
        opt(row.rtt_median_ms, 1),
        opt(row.rtt_p95_ms, 1),
        opt(row.total_mean_ms, 1),
        opt(row.ml_mean_ms, 1),
        row.cold.to_string(),
        opt(row.predicted_rtt_ms, 1),
        pct(row.rtt_prediction_error_pct),
        opt(row.predicted_throughput_rps, 2),
        pct(row.throughput_prediction_error_pct),
        ratio,
    ]
}

/// The Markdown summary: model fits, then one table row per cell.
pub fn markdown(analysis: &Analysis) -> String {
    let mut md = String::from("# slblur load test summary\n\n");
    let _ = writeln!(
        md,
        "{} requests from {} file(s); latency statistics cover successful requests; \
         a request past the timeout is a failure.\n",
        analysis.data.rows,
        analysis.data.files.len()
    );
    md.push_str(&fit_text(analysis));
    let _ = writeln!(md, "\n| {} |", TABLE_HEADER.join(" | "));
    let _ = writeln!(md, "|---|---|{}", "--:|".repeat(TABLE_HEADER.len() - 2));
    for cell in &analysis.cells {
        let invocation = analysis.invocation(&cell.key.target);
        let _ = writeln!(md, "| {} |", table_cells(cell, invocation).join(" | "));
    }
    let _ = writeln!(md, "\n{TABLE_NOTE}");
    md
}

/// One line per target: the fitted S, D and c, or why there is no fit.
pub fn fit_text(analysis: &Analysis) -> String {
    let mut text = String::new();
    for target in &analysis.targets {
        match analysis.fits.get(target) {
            Some(f) => {
                let _ = writeln!(
                    text,
                    "- **{target}**: service S = {:.1} ms, network + gateway D = {:.1} ms, \
                     c = {} server(s) ({}), from {} warm single-user requests.{}",
                    f.service_ms,
                    f.delay_ms,
                    f.servers,
                    f.servers_source,
                    f.samples,
                    match analysis.invocation(target) {
                        Invocation::Sync => "",
                        Invocation::Async =>
                            " Called asynchronously: one queue in front of the replicas, its worker the c servers; D also holds the accept and the callback.",
                    }
                );
            }
            None => {
                let _ = writeln!(
                    text,
                    "- **{target}**: no model fit (no successful warm requests in a 1-user cell)."
                );
            }
        }
    }
    text
}
