//! Predictions for a list of user counts (closed) or arrival rates (open), optionally with the
//! servers and replicas needed to stay under a target response: what `slblur-client model`
//! prints.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::{closed, cold, open};

/// What to predict, and for what station.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Closed system: these user counts.
    pub users: Option<Vec<u32>>,
    /// Closed system: think time between a response and the user's next request.
    pub think: Duration,
    /// Open system: these arrival rates (requests per second).
    pub rates: Option<Vec<f64>>,
    /// Mean service time of one request at one worker (the handler's total).
    pub service_ms: f64,
    /// Servers at the station: replicas × workers per replica.
    pub servers: u32,
    /// Fixed delay outside the function on every request (network, gateway).
    pub network_ms: f64,
    /// Also find the servers (and replicas) each load needs for this mean response.
    pub target_ms: Option<f64>,
    pub workers_per_replica: u32,
    /// Cold starts on a scale-to-zero platform: the delay and the idle time before removal.
    pub cold: Option<(f64, Duration)>,
}

/// One predicted load point, as printed with `--json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelPoint {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    pub throughput_per_s: f64,
    /// `null` in JSON when the load is past capacity (unstable).
    pub response_ms: Option<f64>,
    pub utilisation: f64,
    /// Open systems: the probability a request waits for a server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_probability: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cold_share: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_with_cold_ms: Option<f64>,
    /// With `--target-ms`: the fewest servers whose mean response meets the target (`null` when
    /// no number of servers can, the service time alone being longer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub servers_for_target: Option<Option<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas_for_target: Option<Option<u32>>,
}

/// Evaluates the model for every load of the query.
pub fn evaluate(args: &Query) -> Vec<ModelPoint> {
    let think_ms = args.think.as_secs_f64() * 1000.0;
    let closed_at = |servers: u32| closed::ClosedParams {
        service_ms: args.service_ms,
        servers,
        think_ms,
        delay_ms: args.network_ms,
    };
    let mut points = Vec::new();
    if let Some(users) = &args.users {
        let max = users.iter().copied().max().unwrap_or(0);
        let curve = closed::mva(&closed_at(args.servers), max);
        for &n in users {
            let p = curve[n as usize - 1];
            let response = |servers| closed::predict(&closed_at(servers), n).map(|q| q.response_ms);
            points.push(ModelPoint {
                users: Some(n),
                rate: None,
                throughput_per_s: p.throughput_per_s,
                response_ms: Some(p.response_ms),
                utilisation: p.utilisation,
                wait_probability: None,
                cold_share: None,
                response_with_cold_ms: None,
                servers_for_target: args.target_ms.map(|t| servers_needed(t, n, response)),
                replicas_for_target: None,
            });
        }
    }
    if let Some(rates) = &args.rates {
        for &rate in rates {
            let p = open::predict(rate, args.service_ms, args.servers, args.network_ms);
            let response = |servers| {
                Some(open::predict(rate, args.service_ms, servers, args.network_ms).response_ms)
            };
            points.push(ModelPoint {
                users: None,
                rate: Some(rate),
                throughput_per_s: p.throughput_per_s,
                response_ms: p.stable.then_some(p.response_ms),
                utilisation: p.utilisation,
                wait_probability: Some(p.wait_probability),
                cold_share: None,
                response_with_cold_ms: None,
                servers_for_target: args
                    .target_ms
                    .map(|t| servers_needed(t, u32::MAX, response)),
                replicas_for_target: None,
            });
        }
    }
    for point in &mut points {
        if let Some((cold_ms, keep_alive)) = args.cold {
            let platform = cold::Platform::ScaleToZero {
                keep_alive_s: keep_alive.as_secs_f64(),
            };
            let share = cold::cold_share(platform, point.throughput_per_s);
            point.cold_share = Some(share);
            point.response_with_cold_ms = point
                .response_ms
                .map(|r| cold::mean_with_cold(r, share, cold_ms));
        }
        if let Some(servers) = point.servers_for_target {
            point.replicas_for_target = Some(servers.map(|s| s.div_ceil(args.workers_per_replica)));
        }
    }
    points
}

/// The fewest servers (up to `limit`, at most 100 000) whose mean response is within `target_ms`.
/// Response falls as servers are added, so a binary search finds the boundary.
fn servers_needed(
    target_ms: f64,
    limit: u32,
    response_ms: impl Fn(u32) -> Option<f64>,
) -> Option<u32> {
    let meets = |c: u32| response_ms(c).is_some_and(|r| r <= target_ms);
    // Beyond one server per user (closed) nothing more can help.
    let (mut lo, mut hi) = (1, limit.min(100_000));
    if !meets(hi) {
        return None;
    }
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if meets(mid) { hi = mid } else { lo = mid + 1 }
    }
    Some(lo)
}

/// The predictions as a table for people.
pub fn table(args: &Query, points: &[ModelPoint]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "service {} ms, {} server(s), network {} ms, think {} s",
        args.service_ms,
        args.servers,
        args.network_ms,
        args.think.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "{:>10} {:>12} {:>13} {:>8} {:>8}{}",
        "load",
        "throughput/s",
        "response ms",
        "util",
        "P(wait)",
        if args.target_ms.is_some() {
            "  servers (replicas) for target"
        } else {
            ""
        }
    );
    for p in points {
        let load = match (p.users, p.rate) {
            (Some(n), _) => format!("{n} users"),
            (None, Some(r)) => format!("{r}/s"),
            (None, None) => String::new(),
        };
        let response = p
            .response_ms
            .map_or("unstable".to_string(), |r| format!("{r:.1}"));
        let wait = p
            .wait_probability
            .map_or("-".to_string(), |w| format!("{w:.3}"));
        let target = match (p.servers_for_target, p.replicas_for_target) {
            (Some(Some(s)), Some(Some(r))) => format!("  {s} ({r})"),
            (Some(None), _) => "  unreachable (service time alone is longer)".to_string(),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{load:>10} {:>12.3} {response:>13} {:>8.3} {wait:>8}{target}",
            p.throughput_per_s, p.utilisation
        );
        if let (Some(share), Some(with_cold)) = (p.cold_share, p.response_with_cold_ms) {
            let _ = writeln!(
                out,
                "{:>10} cold share {:.4}, mean with cold starts {with_cold:.1} ms",
                "", share
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_needed_is_the_smallest_that_meets_the_target() {
        // Response = 1000 / c: 250 ms needs 4 servers.
        let response = |c: u32| Some(1000.0 / f64::from(c));
        assert_eq!(servers_needed(250.0, 64, response), Some(4));
        assert_eq!(servers_needed(249.0, 64, response), Some(5));
        assert_eq!(servers_needed(1.0, 64, response), None);
    }
}
