//! Fitting the model to a target's measurements and predicting every cell.
//!
//! From the target's single-user closed cells (warm, successful requests only):
//! S = mean handler `total_ms` (the time a worker is busy with one request, measured inside the
//! function, so network noise stays out of it) and D = mean (`rtt_ms` − `total_ms`), the fixed
//! delay of client, network and gateway. Files without handler timings (converted JMeter runs)
//! fall back to S = mean round trip, D = 0. The number of servers c comes from `--servers`,
//! else the run's `run.json`, else the distinct instances seen × 1 worker (the function's
//! `SLBLUR_WORKERS` default).
//!
//! A target with no single-user cell (an open-loop-only run: a trace, bursts) is fitted from
//! all its successful requests instead: S = mean (`total_ms` − `queue_ms`), the handler's time
//! without its wait for a worker, and D = the 10th percentile of (`rtt_ms` − `total_ms`), the
//! delay when nothing waits outside the function.

use std::collections::BTreeMap;

use crate::model::{closed, open};

use super::cells::{CellKey, Sample, mean};

/// A target's fitted parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    pub service_ms: f64,
    pub delay_ms: f64,
    pub servers: u32,
    /// Where `servers` came from, for the report's text.
    pub servers_source: &'static str,
    /// Requests the fit used.
    pub samples: usize,
    /// Which requests: the warm single-user ones, or every successful one.
    pub basis: &'static str,
}

/// A cell's prediction and how far the measurement is from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// `None` when the offered rate is past capacity.
    pub rtt_ms: Option<f64>,
    pub throughput_rps: f64,
}

/// Fits one target from its cells; `None` without successful requests with timings.
pub fn fit_target<'a>(
    cells: impl Iterator<Item = (&'a CellKey, &'a Vec<Sample>)>,
    servers: Option<(u32, &'static str)>,
    instances_seen: usize,
) -> Option<Fit> {
    let cells: Vec<(&CellKey, &Vec<Sample>)> = cells.collect();
    let warm: Vec<&Sample> = cells
        .iter()
        .filter(|(k, _)| k.users == 1 && !k.is_open())
        .flat_map(|(_, samples)| samples.iter())
        .filter(|s| s.ok && !s.cold)
        .collect();
    let (servers, servers_source) =
        servers.unwrap_or((instances_seen.max(1) as u32, "instances seen × 1 worker"));
    if warm.is_empty() {
        return fit_without_single_user(&cells, servers, servers_source);
    }
    let with_total: Vec<(f64, f64)> = warm
        .iter()
        .filter_map(|s| s.total_ms.map(|t| (s.rtt_ms, t)))
        .collect();
    let (service_ms, delay_ms) = if with_total.is_empty() {
        (
            mean(&warm.iter().map(|s| s.rtt_ms).collect::<Vec<_>>())?,
            0.0,
        )
    } else {
        let totals: Vec<f64> = with_total.iter().map(|(_, t)| *t).collect();
        let gaps: Vec<f64> = with_total.iter().map(|(r, t)| (r - t).max(0.0)).collect();
        (mean(&totals)?, mean(&gaps)?)
    };
    Some(Fit {
        service_ms,
        delay_ms,
        servers,
        servers_source,
        samples: warm.len(),
        basis: "warm single-user requests",
    })
}

/// The fit from every successful request with handler timings, when no single-user cell ran.
fn fit_without_single_user(
    cells: &[(&CellKey, &Vec<Sample>)],
    servers: u32,
    servers_source: &'static str,
) -> Option<Fit> {
    let timed: Vec<(f64, f64, f64)> = cells
        .iter()
        .flat_map(|(_, samples)| samples.iter())
        .filter(|s| s.ok)
        .filter_map(|s| Some((s.rtt_ms, s.total_ms?, s.queue_ms.unwrap_or(0.0))))
        .collect();
    let busy: Vec<f64> = timed.iter().map(|(_, t, q)| (t - q).max(0.0)).collect();
    let mut gaps: Vec<f64> = timed.iter().map(|(r, t, _)| (r - t).max(0.0)).collect();
    gaps.sort_by(f64::total_cmp);
    let delay_ms = *gaps.get(gaps.len() / 10)?;
    Some(Fit {
        service_ms: mean(&busy)?,
        delay_ms,
        servers,
        servers_source,
        samples: timed.len(),
        basis: "successful requests (no single-user cell: S without the queue wait)",
    })
}

/// The model's mean round trip and throughput for one cell.
pub fn predict(fit: &Fit, key: &CellKey) -> Prediction {
    match key.rate_per_s {
        Some(rate) => {
            let p = open::predict(rate, fit.service_ms, fit.servers, fit.delay_ms);
            Prediction {
                rtt_ms: p.stable.then_some(p.response_ms),
                throughput_rps: p.throughput_per_s,
            }
        }
        None => {
            let params = closed::ClosedParams {
                service_ms: fit.service_ms,
                servers: fit.servers,
                think_ms: key.think_s * 1000.0,
                delay_ms: fit.delay_ms,
            };
            match closed::predict(&params, key.users) {
                Some(p) => Prediction {
                    rtt_ms: Some(p.response_ms),
                    throughput_rps: p.throughput_per_s,
                },
                None => Prediction {
                    rtt_ms: None,
                    throughput_rps: 0.0,
                },
            }
        }
    }
}

/// (predicted − measured) / measured, in percent.
pub fn error_pct(predicted: f64, measured: f64) -> Option<f64> {
    (measured > 0.0 && predicted.is_finite()).then(|| (predicted - measured) / measured * 100.0)
}

/// Servers per target: `--servers NAME=C` first, then a plain `--servers C`, then `run.json`.
pub fn servers_for(
    target: &str,
    cli: &BTreeMap<String, u32>,
    cli_all: Option<u32>,
    runs: &BTreeMap<String, u32>,
    runs_all: Option<u32>,
) -> Option<(u32, &'static str)> {
    cli.get(target)
        .map(|&c| (c, "--servers"))
        .or(cli_all.map(|c| (c, "--servers")))
        .or(runs.get(target).map(|&c| (c, "run.json")))
        .or(runs_all.map(|c| (c, "run.json")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(users: u32, think_s: f64) -> CellKey {
        CellKey {
            target: "t".into(),
            users,
            think_s,
            rate_per_s: None,
            smooth: 0,
            arrival: Default::default(),
        }
    }

    fn sample(rtt_ms: f64, total_ms: Option<f64>, cold: bool) -> Sample {
        Sample {
            total_ms,
            cold,
            ..Sample::at(0.0, rtt_ms)
        }
    }

    #[test]
    fn fit_uses_warm_single_user_requests() {
        let one = key(1, 0.0);
        let four = key(4, 0.0);
        let cells = BTreeMap::from([
            (
                one.clone(),
                vec![
                    sample(120.0, Some(100.0), false),
                    sample(130.0, Some(110.0), false),
                    sample(5000.0, Some(4000.0), true),
                ],
            ),
            (four.clone(), vec![sample(900.0, Some(800.0), false)]),
        ]);
        let fit = fit_target(cells.iter(), None, 2).expect("single-user cell");
        assert_eq!(
            (fit.service_ms, fit.delay_ms, fit.servers, fit.samples),
            (105.0, 20.0, 2, 2)
        );
        assert_eq!(predict(&fit, &one).rtt_ms, Some(125.0));
        // No delay, two servers, four users without think time: each request waits for one.
        let no_delay = Fit {
            delay_ms: 0.0,
            ..fit
        };
        let p4 = predict(&no_delay, &four).rtt_ms.expect("closed");
        assert!((p4 - 2.0 * 105.0).abs() < 1e-9, "{p4}");
    }

    #[test]
    fn without_handler_timings_the_round_trip_is_the_service() {
        let cells = BTreeMap::from([(key(1, 1.0), vec![sample(200.0, None, false)])]);
        let fit = fit_target(cells.iter(), Some((3, "--servers")), 1).expect("fit");
        assert_eq!((fit.service_ms, fit.delay_ms, fit.servers), (200.0, 0.0, 3));
        assert!(fit_target(BTreeMap::<CellKey, Vec<Sample>>::new().iter(), None, 1).is_none());
    }

    #[test]
    fn servers_prefer_the_command_line() {
        let cli = BTreeMap::from([("a".to_string(), 4)]);
        let runs = BTreeMap::from([("b".to_string(), 2)]);
        assert_eq!(
            servers_for("a", &cli, Some(9), &runs, None),
            Some((4, "--servers"))
        );
        assert_eq!(
            servers_for("b", &cli, None, &runs, Some(7)),
            Some((2, "run.json"))
        );
        assert_eq!(servers_for("c", &cli, None, &runs, None), None);
        assert!((error_pct(110.0, 100.0).expect("measured") - 10.0).abs() < 1e-9);
        assert_eq!(error_pct(1.0, 0.0), None);
    }
}
