//! Per-cell statistics and how they are shown: a table for people, one JSON line for tools
//! (JMeter's OS Process Sampler extracts it from the last line of stdout).
//!
//! Latency statistics cover successful requests only: a timed-out request's "round trip" is
//! the timeout, which says nothing about the function. Failures show in the success rate.

use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::record::{Row, round_ms};

/// Distribution of one metric in milliseconds. Percentiles interpolate linearly between the
/// closest ranks (numpy's default), so small samples give sensible values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Dist {
    pub mean: f64,
    pub median: f64,
    pub p95: f64,
    pub p99: f64,
    pub min: f64,
    pub max: f64,
}

impl Dist {
    /// `None` for an empty sample.
    pub fn of(values: &[f64]) -> Option<Dist> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            let rank = p * (v.len() - 1) as f64;
            let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
            v[lo] + (v[hi] - v[lo]) * (rank - lo as f64)
        };
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        Some(Dist {
            mean: round_ms(mean),
            median: round_ms(pct(0.5)),
            p95: round_ms(pct(0.95)),
            p99: round_ms(pct(0.99)),
            min: round_ms(v[0]),
            max: round_ms(v[v.len() - 1]),
        })
    }
}

/// The summary of one (users, think time) cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellSummary {
    /// The deployment loaded (`default` for `--url`).
    pub target: String,
    /// 0 for an open-loop cell.
    pub users: u32,
    pub think_s: f64,
    /// Open-loop cells: the offered rate (the mean, for bursts, ramps and traces).
    pub rate_per_s: Option<f64>,
    /// Open-loop cells: the load's label (`2.5/s`, `burst 20/1 5s/15s`, …).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub load: String,
    pub requests: u64,
    pub ok: u64,
    pub failed: u64,
    /// ok / requests (0 when nothing was sent).
    pub success_rate: f64,
    /// Responses flagged as a cold start by the function.
    pub cold: u64,
    pub wall_s: f64,
    /// Successful requests per second of the cell's wall time.
    pub throughput_rps: f64,
    pub rtt_ms: Option<Dist>,
    pub total_ms: Option<Dist>,
    pub ml_ms: Option<Dist>,
    /// The most frequent error text, to point at the cause of failures.
    pub top_error: Option<String>,
}

/// Counts the rows of one cell as they arrive, for its [`CellSummary`].
#[derive(Debug, Default)]
pub struct CellTally {
    target: String,
    users: u32,
    think_s: f64,
    rate_per_s: Option<f64>,
    load: String,
    requests: u64,
    ok: u64,
    cold: u64,
    rtt: Vec<f64>,
    total: Vec<f64>,
    ml: Vec<f64>,
    errors: Vec<(String, u64)>,
}

impl CellTally {
    pub fn new(users: u32, think: Duration) -> Self {
        Self {
            users,
            think_s: think.as_secs_f64(),
            ..Self::default()
        }
    }

    /// The cell's target and, for an open-loop cell, its rate and label.
    pub fn for_target(mut self, target: &str, open: Option<(f64, String)>) -> Self {
        self.target = target.to_string();
        if let Some((rate, label)) = open {
            self.rate_per_s = Some(rate);
            self.load = label;
        }
        self
    }

    pub fn add(&mut self, row: &Row) {
        self.requests += 1;
        if row.cold == Some(true) {
            self.cold += 1;
        }
        if row.ok {
            self.ok += 1;
            self.rtt.push(row.rtt_ms);
            self.total.extend(row.total_ms);
            self.ml.extend(row.ml_ms);
        } else {
            // Group by the text before any detail that varies per request.
            let key = row
                .error
                .split(" (")
                .next()
                .unwrap_or(&row.error)
                .to_string();
            match self.errors.iter_mut().find(|(e, _)| *e == key) {
                Some((_, n)) => *n += 1,
                None => self.errors.push((key, 1)),
            }
        }
    }

    pub fn ok(&self) -> u64 {
        self.ok
    }

    pub fn failed(&self) -> u64 {
        self.requests - self.ok
    }

    pub fn finish(&self, wall: Duration) -> CellSummary {
        let wall_s = wall.as_secs_f64();
        CellSummary {
            target: self.target.clone(),
            users: self.users,
            think_s: self.think_s,
            rate_per_s: self.rate_per_s,
            load: self.load.clone(),
            requests: self.requests,
            ok: self.ok,
            failed: self.requests - self.ok,
            success_rate: if self.requests == 0 {
                0.0
            } else {
                self.ok as f64 / self.requests as f64
            },
            cold: self.cold,
            wall_s: round_ms(wall_s),
            throughput_rps: if wall_s > 0.0 {
                round_ms(self.ok as f64 / wall_s)
            } else {
                0.0
            },
            rtt_ms: Dist::of(&self.rtt),
            total_ms: Dist::of(&self.total),
            ml_ms: Dist::of(&self.ml),
            top_error: self
                .errors
                .iter()
                .max_by_key(|(_, n)| *n)
                .map(|(e, n)| format!("{e} (×{n})")),
        }
    }
}

/// The machine-readable summary printed as the last stdout line.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub url: String,
    pub wire: String,
    pub video: String,
    pub csv: String,
    pub interrupted: bool,
    pub cells: Vec<CellSummary>,
}

impl RunSummary {
    pub fn json_line(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|e| format!("{{\"error\":\"summary not serialisable: {e}\"}}"))
    }
}

/// The human-readable table: one line per cell and metric.
pub fn table(cells: &[CellSummary]) -> String {
    let mut out = String::new();
    let target_width = cells
        .iter()
        .map(|c| c.target.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let _ = writeln!(
        out,
        "{:<target_width$} {:>12} {:>8} {:>7} {:>7}  {:<6} {:>9} {:>9} {:>9} {:>9}",
        "target", "load", "requests", "ok", "req/s", "metric", "mean ms", "median", "p95", "p99"
    );
    let blank_head = " ".repeat(target_width + 39);
    for c in cells {
        let load = match c.rate_per_s {
            Some(_) if !c.load.is_empty() => c.load.clone(),
            Some(rate) => format!("{rate}/s"),
            None => format!("{}u {}s", c.users, c.think_s),
        };
        let metrics = [("rtt", c.rtt_ms), ("total", c.total_ms), ("ml", c.ml_ms)];
        for (i, (name, dist)) in metrics.iter().enumerate() {
            let head = if i == 0 {
                format!(
                    "{:<target_width$} {load:>12} {:>8} {:>6.1}% {:>7.2}",
                    c.target,
                    c.requests,
                    c.success_rate * 100.0,
                    c.throughput_rps
                )
            } else {
                blank_head.clone()
            };
            let values = match dist {
                Some(d) => format!(
                    "{:>9.1} {:>9.1} {:>9.1} {:>9.1}",
                    d.mean, d.median, d.p95, d.p99
                ),
                None => format!("{:>9} {:>9} {:>9} {:>9}", "-", "-", "-", "-"),
            };
            let _ = writeln!(out, "{head}  {name:<6} {values}");
        }
        if let Some(err) = &c.top_error {
            let _ = writeln!(
                out,
                "{blank_head}  failures: {} of {}, mostly: {err}",
                c.failed, c.requests
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate() {
        let d = Dist::of(&[4.0, 1.0, 3.0, 2.0]).expect("test input");
        assert_eq!((d.mean, d.median, d.min, d.max), (2.5, 2.5, 1.0, 4.0));
        assert!((d.p95 - 3.85).abs() < 1e-9);
        let one = Dist::of(&[7.0]).expect("test input");
        assert_eq!((one.median, one.p99), (7.0, 7.0));
        assert_eq!(Dist::of(&[]), None);
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        let d = Dist::of(&hundred).expect("test input");
        assert_eq!((d.median, d.p95, d.p99), (50.5, 95.05, 99.01));
    }

    fn row(ok: bool, rtt: f64, error: &str) -> Row {
        Row {
            rtt_ms: rtt,
            total_ms: ok.then_some(rtt - 2.0),
            ml_ms: ok.then_some(rtt - 5.0),
            status: ok.then_some(200),
            cold: Some(rtt > 100.0),
            ok,
            error: error.into(),
            ..Row::pending("r", 1, 0.0, 0, 0, 0)
        }
    }

    #[test]
    fn cells_count_only_successes_in_latency() {
        let mut s = CellTally::new(2, Duration::from_secs(1));
        for r in [
            row(true, 10.0, ""),
            row(true, 20.0, ""),
            row(false, 25000.0, "timeout after 25s"),
            row(false, 3.0, "HTTP 500 (x)"),
        ] {
            s.add(&r);
        }
        s.add(&row(false, 25000.0, "timeout after 25s"));
        let c = s.finish(Duration::from_secs(2));
        assert_eq!((c.requests, c.ok, c.failed, c.cold), (5, 2, 3, 2));
        assert_eq!(c.success_rate, 0.4);
        assert_eq!(c.throughput_rps, 1.0);
        assert_eq!(c.rtt_ms.expect("test input").max, 20.0);
        assert_eq!(c.ml_ms.expect("test input").mean, 10.0);
        assert_eq!(c.top_error.as_deref(), Some("timeout after 25s (×2)"));
        let text = table(std::slice::from_ref(&c));
        assert!(text.contains("40.0%"), "{text}");
        assert!(text.contains("mostly: timeout after 25s"), "{text}");
        let json = RunSummary {
            run_id: "r".into(),
            url: "u".into(),
            wire: "binary".into(),
            video: "v".into(),
            csv: "c".into(),
            interrupted: false,
            cells: vec![c],
        }
        .json_line();
        assert!(!json.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&json).expect("test input");
        assert_eq!(v["cells"][0]["rtt_ms"]["median"], 15.0);
    }
}
