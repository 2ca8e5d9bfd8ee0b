//! `summary.csv` (one row per target and cell, for tools and the notebook) and `summary.md`
//! (the same numbers for people, with the model's fitted parameters).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::record::{Invocation, round_ms};
use crate::summary::Dist;

use super::fit::error_pct;
use super::quantiles;
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
    /// Open-loop cells: the arrival process (`poisson`, `burst:…`, `ramp:…`, `trace`).
    pub arrival: Option<String>,
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
    /// 95 % intervals of the median, p95 and p99 (order statistics); empty where the cell has
    /// too few requests (fewer than 6, 72 and 368).
    pub rtt_median_ci95_low_ms: Option<f64>,
    pub rtt_median_ci95_high_ms: Option<f64>,
    pub rtt_p95_ci95_low_ms: Option<f64>,
    pub rtt_p95_ci95_high_ms: Option<f64>,
    pub rtt_p99_ci95_low_ms: Option<f64>,
    pub rtt_p99_ci95_high_ms: Option<f64>,
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
    /// Open-loop cells: how late the load generator sent requests (median, p99).
    pub late_p50_ms: Option<f64>,
    pub late_p99_ms: Option<f64>,
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
            arrival: cell.key.is_open().then(|| cell.key.arrival.to_string()),
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
            rtt_median_ci95_low_ms: ms(s.rtt_quantile_ci95[0].map(|c| c.0)),
            rtt_median_ci95_high_ms: ms(s.rtt_quantile_ci95[0].map(|c| c.1)),
            rtt_p95_ci95_low_ms: ms(s.rtt_quantile_ci95[1].map(|c| c.0)),
            rtt_p95_ci95_high_ms: ms(s.rtt_quantile_ci95[1].map(|c| c.1)),
            rtt_p99_ci95_low_ms: ms(s.rtt_quantile_ci95[2].map(|c| c.0)),
            rtt_p99_ci95_high_ms: ms(s.rtt_quantile_ci95[2].map(|c| c.1)),
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
            late_p50_ms: part(|d| d.median, s.late),
            late_p99_ms: part(|d| d.p99, s.late),
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
    let mut files = vec![csv_path, md_path];
    if !analysis.windows.is_empty() {
        files.push(write_windows(analysis, out)?);
    }
    Ok(files)
}

/// One line of `windows.csv`: the cell, then the window.
#[derive(Debug, Serialize)]
struct WindowRow<'a> {
    target: &'a str,
    load: String,
    width_s: f64,
    start_s: f64,
    arrivals: u64,
    rate_per_s: f64,
    ok: u64,
    measured_rtt_ms: Option<f64>,
    predicted_rtt_ms: Option<f64>,
    unstable: bool,
    error_pct: Option<f64>,
}

/// `windows.csv`: the model per time window of every burst, ramp and trace cell.
fn write_windows(analysis: &Analysis, out: &Path) -> Result<PathBuf, ReportError> {
    let path = out.join("windows.csv");
    let err = |e: csv::Error| ReportError::Write {
        path: path.clone(),
        source: std::io::Error::other(e),
    };
    let mut writer = csv::Writer::from_path(&path).map_err(err)?;
    for cell in &analysis.windows {
        for window in &cell.windows {
            let row = WindowRow {
                target: &cell.key.target,
                load: cell.key.load_label(),
                width_s: cell.width_s,
                start_s: window.start_s,
                arrivals: window.arrivals,
                rate_per_s: window.rate_per_s,
                ok: window.ok,
                measured_rtt_ms: window.measured_rtt_ms,
                predicted_rtt_ms: window.predicted_rtt_ms,
                unstable: window.unstable,
                error_pct: window.error_pct,
            };
            writer.serialize(row).map_err(err)?;
        }
    }
    writer.flush().map_err(|source| ReportError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// The Markdown section on the model per window: one line per windowed cell.
fn windows_text(analysis: &Analysis) -> String {
    let mut text = String::new();
    if analysis.windows.is_empty() {
        return text;
    }
    let _ = writeln!(
        text,
        "\n## The model per time window\n\nEach window's rate predicts its mean round trip (M/M/c); `windows.csv` has every window.\n"
    );
    for cell in &analysis.windows {
        let predicted = cell
            .windows
            .iter()
            .filter(|w| w.error_pct.is_some())
            .count();
        let unstable = cell.windows.iter().filter(|w| w.unstable).count();
        let _ = writeln!(
            text,
            "- **{}** {}: {} windows of {} s; mean |error| {} over the {predicted} predicted; {unstable} past capacity (no steady state).",
            cell.key.target,
            cell.key.load_label(),
            cell.windows.len(),
            cell.width_s,
            cell.mean_abs_error_pct()
                .map_or("–".to_string(), |e| format!("{e:.1} %")),
        );
    }
    text
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or("–".to_string(), |v| format!("{v:.decimals$}"))
}

/// A percentile and its interval, `120.3 (110–131)`, or `120.3 (n<72)` when the cell has
/// too few requests for one.
fn with_interval(value: Option<f64>, interval: Option<(f64, f64)>, q: f64) -> String {
    let Some(value) = value else {
        return "–".to_string();
    };
    match interval {
        Some((lo, hi)) => format!("{value:.1} ({lo:.0}–{hi:.0})"),
        None => format!("{value:.1} (n<{})", quantiles::min_values(q)),
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or("–".to_string(), |v| format!("{v:+.1} %"))
}

/// Column titles of the table people read (`summary.md`, `index.html`).
pub const TABLE_HEADER: [&str; 17] = [
    "target",
    "load",
    "requests",
    "success",
    "req/s",
    "rtt mean (95 % CI)",
    "median (95 % CI)",
    "p95 (95 % CI)",
    "p99 (95 % CI)",
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
    open-loop Poisson rate; `burst`, `ramp` and `trace` = the other open-loop arrivals (mean \
    rate for traces); `smooth N` = users sent the faces of their last N replies as hints. \
    Percentile intervals are distribution-free (order statistics); `n<72` means the cell has \
    too few requests for one. Model errors are (predicted − measured) / measured; the round \
    trip is compared with the warm requests' mean.";

/// One cell's row of that table, as text.
pub fn table_cells(cell: &CellReport, invocation: Invocation) -> [String; 17] {
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
        with_interval(row.rtt_median_ms, cell.stats.rtt_quantile_ci95[0], 0.5),
        with_interval(row.rtt_p95_ms, cell.stats.rtt_quantile_ci95[1], 0.95),
        with_interval(row.rtt_p99_ms, cell.stats.rtt_quantile_ci95[2], 0.99),
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
    md.push_str(&windows_text(analysis));
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
                     c = {} server(s) ({}), from {} {}.{}",
                    f.service_ms,
                    f.delay_ms,
                    f.servers,
                    f.servers_source,
                    f.samples,
                    f.basis,
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
