//! The open-system model per time window, for open-loop cells whose rate changes (bursts,
//! ramps, traces): each window's arrivals (by intended time) give its rate λ, M/M/c with the
//! target's fitted S, D and c predicts the window's mean round trip from λ alone, or says the
//! window is past capacity (λ ≥ c/S: no steady state), and the measured mean of the requests
//! that arrived in it is set beside. A window's prediction ignores the queue left by the one
//! before, so it errs low just after a burst and high just after one ends; the report shows
//! where.

use std::collections::BTreeMap;

use crate::model::open;
use crate::record::round_ms;
use crate::rig::arrivals::Process;

use super::cells::{CellKey, Sample, mean};
use super::fit::{Fit, error_pct};

/// One window of one cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Seconds from the cell's first arrival to the window's start.
    pub start_s: f64,
    pub arrivals: u64,
    pub rate_per_s: f64,
    /// Successful requests that arrived in the window, and their mean round trip.
    pub ok: u64,
    pub measured_rtt_ms: Option<f64>,
    /// `None` without a fit or when the window is past capacity.
    pub predicted_rtt_ms: Option<f64>,
    /// λ ≥ c/S.
    pub unstable: bool,
    pub error_pct: Option<f64>,
}

/// A cell's windows.
#[derive(Debug, Clone, PartialEq)]
pub struct CellWindows {
    pub key: CellKey,
    pub width_s: f64,
    /// The cell's first arrival, ms since the epoch.
    pub t0_ms: f64,
    pub windows: Vec<Window>,
}

impl CellWindows {
    /// Mean |error| over the windows with both a prediction and a measurement.
    pub fn mean_abs_error_pct(&self) -> Option<f64> {
        let errors: Vec<f64> = self
            .windows
            .iter()
            .filter_map(|w| w.error_pct)
            .map(f64::abs)
            .collect();
        mean(&errors)
    }
}

/// Whether a cell gets windows: open loop with a rate that changes.
pub fn windowed(key: &CellKey) -> bool {
    key.is_open() && key.arrival != Process::Poisson
}

/// The windows of every windowed cell, `width_s` seconds each.
pub fn of_cells(
    cells: &BTreeMap<CellKey, Vec<Sample>>,
    fits: &BTreeMap<String, Fit>,
    width_s: f64,
) -> Vec<CellWindows> {
    cells
        .iter()
        .filter(|(key, _)| windowed(key))
        .filter_map(|(key, samples)| of_cell(key, samples, fits.get(&key.target), width_s))
        .collect()
}

fn of_cell(
    key: &CellKey,
    samples: &[Sample],
    fit: Option<&Fit>,
    width_s: f64,
) -> Option<CellWindows> {
    let t0_ms = samples
        .iter()
        .map(|s| s.start_ms)
        .fold(f64::INFINITY, f64::min);
    if !t0_ms.is_finite() {
        return None;
    }
    let slot = |s: &Sample| ((s.start_ms - t0_ms) / 1000.0 / width_s) as usize;
    let count = samples.iter().map(slot).max().unwrap_or(0) + 1;
    let mut arrivals = vec![0u64; count];
    let mut rtts: Vec<Vec<f64>> = vec![Vec::new(); count];
    for s in samples {
        arrivals[slot(s)] += 1;
        if s.ok {
            rtts[slot(s)].push(s.rtt_ms);
        }
    }
    let windows = (0..count)
        .map(|i| {
            let rate_per_s = arrivals[i] as f64 / width_s;
            let measured = mean(&rtts[i]).map(round_ms);
            let point = fit.map(|f| open::predict(rate_per_s, f.service_ms, f.servers, f.delay_ms));
            let predicted = point.filter(|p| p.stable).map(|p| round_ms(p.response_ms));
            Window {
                start_s: round_ms(i as f64 * width_s),
                arrivals: arrivals[i],
                rate_per_s: round_ms(rate_per_s),
                ok: rtts[i].len() as u64,
                measured_rtt_ms: measured,
                predicted_rtt_ms: predicted,
                unstable: point.is_some_and(|p| !p.stable),
                error_pct: predicted
                    .zip(measured)
                    .and_then(|(p, m)| error_pct(p, m))
                    .map(|e| (e * 10.0).round() / 10.0),
            }
        })
        .collect();
    Some(CellWindows {
        key: key.clone(),
        width_s,
        t0_ms,
        windows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_window_is_predicted_from_its_own_rate() {
        let key = CellKey {
            target: "t".into(),
            users: 0,
            think_s: 0.0,
            rate_per_s: Some(3.0),
            smooth: 0,
            arrival: Process::Trace,
        };
        // 2 arrivals in the first 10 s window, 30 in the second (past c/S = 2.5/s).
        let mut samples = vec![Sample::at(1000.0, 110.0), Sample::at(5000.0, 130.0)];
        samples.extend((0..30).map(|i| Sample::at(11_500.0 + f64::from(i) * 300.0, 900.0)));
        let fit = Fit {
            service_ms: 400.0,
            delay_ms: 10.0,
            servers: 1,
            servers_source: "test",
            samples: 10,
            basis: "test",
        };
        let cells = BTreeMap::from([(key.clone(), samples)]);
        let fits = BTreeMap::from([("t".to_string(), fit)]);
        let all = of_cells(&cells, &fits, 10.0);
        let w = &all[0].windows;
        assert_eq!(w.len(), 2);
        assert_eq!(
            (w[0].arrivals, w[0].rate_per_s, w[0].measured_rtt_ms),
            (2, 0.2, Some(120.0))
        );
        // M/M/1 at ρ = 0.08: 10 + 400 / (1 − 0.08).
        let p = w[0].predicted_rtt_ms.expect("stable");
        assert!((p - (10.0 + 400.0 / 0.92)).abs() < 0.01, "{p}");
        assert!(w[1].unstable && w[1].predicted_rtt_ms.is_none() && w[1].error_pct.is_none());
        assert_eq!(all[0].mean_abs_error_pct(), w[0].error_pct.map(f64::abs));
    }
}
