//! Cells and their statistics: a cell is (target, users, think time) for closed-loop users or
//! (target, arrival process and mean rate) for open-loop ones; its requests become counts,
//! success rate, throughput, latency distributions, confidence intervals (of the mean, the
//! median, p95 and p99) and the round-trip breakdown.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::rig::arrivals::Process;
use crate::summary::Dist;

use super::quantiles;

/// Which cell a request belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct CellKey {
    /// Deployment name (`default` when the file has none).
    pub target: String,
    pub users: u32,
    pub think_s: f64,
    /// Open-loop cells only.
    pub rate_per_s: Option<f64>,
    /// `--smooth N` (hints change the work per request, so they make another cell).
    pub smooth: u32,
    /// Open-loop cells: the arrival process (the `arrival` column; `poisson` when empty).
    pub arrival: Process,
}

impl CellKey {
    pub fn is_open(&self) -> bool {
        self.rate_per_s.is_some()
    }

    /// Short label for axes and tables: `4u 1s` (4 users thinking 1 s), `2.5/s` (Poisson),
    /// `burst 20/1 5s/15s`, `ramp 1-20/s 60s` or `trace 3.40/s`, with ` smooth N` when the
    /// users sent hints.
    pub fn load_label(&self) -> String {
        let load = match self.rate_per_s {
            None => format!("{}u {}s", self.users, self.think_s),
            Some(rate) => self.arrival.label(rate),
        };
        match self.smooth {
            0 => load,
            n => format!("{load} smooth {n}"),
        }
    }
}

impl Eq for CellKey {}

impl Ord for CellKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.target
            .cmp(&other.target)
            .then(self.rate_per_s.is_some().cmp(&other.rate_per_s.is_some()))
            .then(self.users.cmp(&other.users))
            .then(self.think_s.total_cmp(&other.think_s))
            .then(
                self.rate_per_s
                    .unwrap_or(0.0)
                    .total_cmp(&other.rate_per_s.unwrap_or(0.0)),
            )
            .then(self.smooth.cmp(&other.smooth))
            .then(self.arrival.key().cmp(&other.arrival.key()))
    }
}

impl PartialOrd for CellKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// One request, reduced to what the report uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Index into the dataset's run ids.
    pub run: u32,
    /// (load-generator worker, user id): a user's identity across merged workers.
    pub user: (u32, u32),
    /// Position in the user's sequence: iteration × 1 000 000 + frame.
    pub seq: u64,
    /// When the request started (or was scheduled, for open-loop cells), ms since the epoch.
    pub start_ms: f64,
    pub rtt_ms: f64,
    pub total_ms: Option<f64>,
    pub ml_ms: Option<f64>,
    pub queue_ms: Option<f64>,
    /// Asynchronous calls: the time before the queue worker took the call (`async_queue_ms`).
    pub async_queue_ms: Option<f64>,
    /// Asynchronous calls: the round trip of the `202 Accepted`.
    pub accepted_ms: Option<f64>,
    /// Open-loop cells: how late the request was sent.
    pub late_ms: Option<f64>,
    pub ok: bool,
    pub cold: bool,
    /// Index into the dataset's instance names.
    pub instance: Option<u32>,
}

#[cfg(test)]
impl Sample {
    /// A successful warm request of the first run, with only its start and round trip known.
    pub fn at(start_ms: f64, rtt_ms: f64) -> Sample {
        Sample {
            run: 0,
            user: (0, 0),
            seq: 0,
            start_ms,
            rtt_ms,
            total_ms: None,
            ml_ms: None,
            queue_ms: None,
            async_queue_ms: None,
            accepted_ms: None,
            late_ms: None,
            ok: true,
            cold: false,
            instance: None,
        }
    }
}

/// Mean parts of a successful round trip; they add up to the mean round trip of the requests
/// that report both handler and ML time.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Breakdown {
    /// rtt − total − async queue: client, network and gateway.
    pub network_ms: f64,
    /// Asynchronous calls: before the queue worker took the call (0 for synchronous ones).
    pub async_queue_ms: f64,
    pub queue_ms: f64,
    /// total − ml − queue: decoding, blurring, encoding.
    pub handler_other_ms: f64,
    pub ml_ms: f64,
}

/// Statistics of one cell.
#[derive(Debug, Clone, PartialEq)]
pub struct CellStats {
    pub requests: u64,
    pub ok: u64,
    pub success_rate: f64,
    /// Sum over runs of each run's span from first start to last finish.
    pub wall_s: f64,
    /// Successful requests per second of wall time.
    pub throughput_rps: f64,
    pub rtt: Option<Dist>,
    pub total: Option<Dist>,
    pub ml: Option<Dist>,
    /// 95 % confidence interval of the mean round trip (Student's t).
    pub rtt_ci95: Option<(f64, f64)>,
    /// 95 % confidence intervals of the round trip's median, p95 and p99 ([`quantiles`]);
    /// `None` where the cell has too few requests for one.
    pub rtt_quantile_ci95: [Option<(f64, f64)>; 3],
    /// Open-loop cells: how late the requests were sent.
    pub late: Option<Dist>,
    pub cold: u64,
    pub warm_rtt_mean_ms: Option<f64>,
    pub cold_rtt_mean_ms: Option<f64>,
    pub breakdown: Option<Breakdown>,
    /// Asynchronous cells: the mean round trip of the `202 Accepted`.
    pub accepted_mean_ms: Option<f64>,
    /// Requests per instance name index.
    pub per_instance: BTreeMap<u32, u64>,
}

impl CellStats {
    pub fn of(samples: &[Sample]) -> CellStats {
        let ok: Vec<&Sample> = samples.iter().filter(|s| s.ok).collect();
        let values =
            |f: fn(&Sample) -> Option<f64>| ok.iter().filter_map(|s| f(s)).collect::<Vec<f64>>();
        let rtt = values(|s| Some(s.rtt_ms));
        let rtt_sorted = sorted(&rtt);
        let warm = ok
            .iter()
            .filter(|s| !s.cold)
            .map(|s| s.rtt_ms)
            .collect::<Vec<_>>();
        let cold = ok
            .iter()
            .filter(|s| s.cold)
            .map(|s| s.rtt_ms)
            .collect::<Vec<_>>();
        let wall_s = wall_seconds(samples);
        let requests = samples.len() as u64;
        let mut per_instance = BTreeMap::new();
        for s in samples {
            if let Some(i) = s.instance {
                *per_instance.entry(i).or_insert(0) += 1;
            }
        }
        CellStats {
            requests,
            ok: ok.len() as u64,
            success_rate: if requests == 0 {
                0.0
            } else {
                ok.len() as f64 / requests as f64
            },
            wall_s,
            throughput_rps: if wall_s > 0.0 {
                ok.len() as f64 / wall_s
            } else {
                0.0
            },
            rtt: Dist::of(&rtt),
            total: Dist::of(&values(|s| s.total_ms)),
            ml: Dist::of(&values(|s| s.ml_ms)),
            rtt_ci95: confidence_interval(&rtt),
            rtt_quantile_ci95: QUANTILES.map(|q| quantiles::quantile_ci95(&rtt_sorted, q)),
            late: Dist::of(&samples.iter().filter_map(|s| s.late_ms).collect::<Vec<_>>()),
            cold: samples.iter().filter(|s| s.cold).count() as u64,
            warm_rtt_mean_ms: mean(&warm),
            cold_rtt_mean_ms: mean(&cold),
            breakdown: breakdown(&ok),
            accepted_mean_ms: mean(&values(|s| s.accepted_ms)),
            per_instance,
        }
    }
}

/// The percentiles given confidence intervals: median, p95, p99.
pub const QUANTILES: [f64; 3] = [0.5, 0.95, 0.99];

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// For each run: last finish − first start; summed, since runs do not overlap in time.
fn wall_seconds(samples: &[Sample]) -> f64 {
    let mut spans: BTreeMap<u32, (f64, f64)> = BTreeMap::new();
    for s in samples {
        let span = spans
            .entry(s.run)
            .or_insert((f64::INFINITY, f64::NEG_INFINITY));
        span.0 = span.0.min(s.start_ms);
        span.1 = span.1.max(s.start_ms + s.rtt_ms);
    }
    spans.values().map(|(a, b)| (b - a).max(0.0)).sum::<f64>() / 1000.0
}

fn breakdown(ok: &[&Sample]) -> Option<Breakdown> {
    let parts: Vec<Breakdown> = ok
        .iter()
        .filter_map(|s| {
            let (total, ml) = (s.total_ms?, s.ml_ms?);
            let queue = s.queue_ms.unwrap_or(0.0);
            let waited = s.async_queue_ms.unwrap_or(0.0);
            Some(Breakdown {
                network_ms: s.rtt_ms - total - waited,
                async_queue_ms: waited,
                queue_ms: queue,
                handler_other_ms: total - ml - queue,
                ml_ms: ml,
            })
        })
        .collect();
    let n = parts.len() as f64;
    (!parts.is_empty()).then(|| Breakdown {
        network_ms: parts.iter().map(|p| p.network_ms).sum::<f64>() / n,
        async_queue_ms: parts.iter().map(|p| p.async_queue_ms).sum::<f64>() / n,
        queue_ms: parts.iter().map(|p| p.queue_ms).sum::<f64>() / n,
        handler_other_ms: parts.iter().map(|p| p.handler_other_ms).sum::<f64>() / n,
        ml_ms: parts.iter().map(|p| p.ml_ms).sum::<f64>() / n,
    })
}

/// Mean ± t(0.975, n−1)·s/√n; `None` below two values.
pub fn confidence_interval(values: &[f64]) -> Option<(f64, f64)> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let m = mean(values)?;
    let var = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = t_975(n - 1) * (var / n as f64).sqrt();
    Some((m - half, m + half))
}

/// The 97.5 % quantile of Student's t with `df` degrees of freedom: a table to 30, then the
/// Cornish–Fisher expansion around the normal quantile (error below 1e-4 from 30 on).
pub fn t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    if (1..=30).contains(&df) {
        return TABLE[df - 1];
    }
    let z: f64 = 1.959_964;
    let v = df.max(1) as f64;
    z + (z.powi(3) + z) / (4.0 * v)
        + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * v * v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(run: u32, start_ms: f64, rtt_ms: f64, ok: bool, cold: bool) -> Sample {
        Sample {
            run,
            total_ms: ok.then_some(rtt_ms - 10.0),
            ml_ms: ok.then_some(rtt_ms - 40.0),
            queue_ms: ok.then_some(5.0),
            ok,
            cold,
            instance: Some(0),
            ..Sample::at(start_ms, rtt_ms)
        }
    }

    #[test]
    fn t_quantiles_follow_the_table_and_the_normal_limit() {
        assert_eq!(t_975(1), 12.706);
        assert_eq!(t_975(30), 2.042);
        // Published: t(0.975, 40) = 2.021, t(0.975, 120) = 1.980.
        assert!((t_975(40) - 2.021).abs() < 1e-3);
        assert!((t_975(120) - 1.980).abs() < 1e-3);
        assert!((t_975(1_000_000) - 1.96).abs() < 1e-3);
    }

    #[test]
    fn confidence_interval_of_a_small_sample() {
        // mean 2, s = 1, n = 3: 2 ± 4.303/√3.
        let (lo, hi) = confidence_interval(&[1.0, 2.0, 3.0]).expect("three values");
        let half = 4.303 / 3f64.sqrt();
        assert!((lo - (2.0 - half)).abs() < 1e-12 && (hi - (2.0 + half)).abs() < 1e-12);
        assert_eq!(confidence_interval(&[5.0]), None);
    }

    #[test]
    fn stats_split_cold_warm_and_sum_run_spans() {
        let samples = [
            sample(0, 0.0, 100.0, true, true),
            sample(0, 100.0, 50.0, true, false),
            sample(0, 150.0, 25_000.0, false, false),
            // A second run of the same cell, an hour later: its span adds, the gap does not.
            sample(1, 3_600_000.0, 70.0, true, false),
        ];
        let s = CellStats::of(&samples);
        assert_eq!((s.requests, s.ok, s.cold), (4, 3, 1));
        assert!((s.wall_s - (25.15 + 0.07)).abs() < 1e-9, "{}", s.wall_s);
        assert_eq!(s.warm_rtt_mean_ms, Some(60.0));
        assert_eq!(s.cold_rtt_mean_ms, Some(100.0));
        let b = s.breakdown.expect("timings known");
        let parts = b.network_ms + b.queue_ms + b.handler_other_ms + b.ml_ms;
        assert!((parts - s.rtt.expect("ok rows").mean).abs() < 1e-3);
        assert_eq!(s.per_instance.get(&0), Some(&4));
    }
}
