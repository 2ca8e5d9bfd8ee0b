//! `slblur-client model`: predictions for a list of user counts (closed) or arrival rates
//! (open), optionally with the servers and replicas needed to stay under a target response.

use std::fmt::Write as _;
use std::time::Duration;

use clap::{ArgGroup, Args};
use serde::Serialize;

use super::{closed, cold, open};
use crate::cli::{UserList, parse_duration, parse_users};

#[derive(Debug, Args, Clone)]
#[command(group(ArgGroup::new("load").required(true).args(["users", "rate"])))]
pub struct ModelArgs {
    /// Closed system: user counts (a comma list, ranges allowed: 1,2,9 or 1-9).
    #[arg(long, value_name = "LIST", value_parser = parse_users)]
    pub users: Option<UserList>,
    /// Closed system: think time between a response and the user's next request.
    #[arg(long, default_value = "0", value_name = "DURATION", value_parser = parse_duration)]
    pub think: Duration,
    /// Open system: arrival rates in requests per second (a comma list: 1,2.5,4).
    #[arg(long, value_name = "LIST", value_parser = parse_rates)]
    pub rate: Option<RateList>,
    /// Mean service time of one request at one worker, in milliseconds (the handler's total).
    #[arg(long, value_name = "MS", value_parser = parse_positive_ms)]
    pub service_ms: f64,
    /// Servers at the station: replicas × workers per replica.
    #[arg(long, default_value_t = 1, value_name = "C", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub servers: u32,
    /// Fixed delay outside the function on every request (network, gateway), in milliseconds.
    #[arg(long, default_value_t = 0.0, value_name = "MS", value_parser = parse_non_negative_ms)]
    pub network_ms: f64,
    /// Also find the servers (and replicas) each load needs for this mean response, in ms.
    #[arg(long, value_name = "MS", value_parser = parse_positive_ms)]
    pub target_ms: Option<f64>,
    /// Workers per replica, to turn servers into replicas for --target-ms (SLBLUR_WORKERS).
    #[arg(long, default_value_t = 1, value_name = "W", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub workers_per_replica: u32,
    /// Cold-start delay in milliseconds; with --keep-alive, adds the scale-to-zero cold share.
    #[arg(long, value_name = "MS", value_parser = parse_non_negative_ms, requires = "keep_alive")]
    pub cold_ms: Option<f64>,
    /// Idle time before an instance is removed (scale-to-zero platforms; OpenFaaS CE never does).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "cold_ms")]
    pub keep_alive: Option<Duration>,
    /// Print a JSON list instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Parsed `--rate` list.
#[derive(Debug, Clone, PartialEq)]
pub struct RateList(pub Vec<f64>);

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

/// The command's output: the table, or the JSON list with `--json`.
pub fn run(args: &ModelArgs) -> String {
    render(args, &evaluate(args))
}

/// Evaluates the model for every load of `args`.
pub fn evaluate(args: &ModelArgs) -> Vec<ModelPoint> {
    let think_ms = args.think.as_secs_f64() * 1000.0;
    let closed_at = |servers: u32| closed::ClosedParams {
        service_ms: args.service_ms,
        servers,
        think_ms,
        delay_ms: args.network_ms,
    };
    let mut points = Vec::new();
    if let Some(UserList(users)) = &args.users {
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
    if let Some(RateList(rates)) = &args.rate {
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
        if let (Some(cold_ms), Some(keep_alive)) = (args.cold_ms, args.keep_alive) {
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

/// The table or JSON list printed by the command.
pub fn render(args: &ModelArgs, points: &[ModelPoint]) -> String {
    if args.json {
        return serde_json::to_string_pretty(points)
            .unwrap_or_else(|e| format!("{{\"error\":\"not serialisable: {e}\"}}"));
    }
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

/// Comma list of positive request rates.
pub fn parse_rates(s: &str) -> Result<RateList, String> {
    s.split(',')
        .map(|item| match item.trim().parse::<f64>() {
            Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
            _ => Err(format!(
                "'{}' is not a positive rate per second (list: 1,2.5,4)",
                item.trim()
            )),
        })
        .collect::<Result<_, _>>()
        .map(RateList)
}

/// A positive, finite number of milliseconds.
pub fn parse_positive_ms(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a positive number of milliseconds")),
    }
}

/// Zero or a positive, finite number of milliseconds.
pub fn parse_non_negative_ms(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a number of milliseconds (0 or more)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_parsers_reject_bad_numbers() {
        assert_eq!(parse_rates("1, 2.5"), Ok(RateList(vec![1.0, 2.5])));
        assert!(parse_rates("1,,2").is_err());
        assert!(parse_rates("0").is_err());
        assert!(parse_rates("inf").is_err());
        assert_eq!(parse_positive_ms("150"), Ok(150.0));
        assert!(parse_positive_ms("0").is_err());
        assert!(parse_positive_ms("NaN").is_err());
        assert_eq!(parse_non_negative_ms("0"), Ok(0.0));
        assert!(parse_non_negative_ms("-1").is_err());
    }

    #[test]
    fn servers_needed_is_the_smallest_that_meets_the_target() {
        // Response = 1000 / c: 250 ms needs 4 servers.
        let response = |c: u32| Some(1000.0 / f64::from(c));
        assert_eq!(servers_needed(250.0, 64, response), Some(4));
        assert_eq!(servers_needed(249.0, 64, response), Some(5));
        assert_eq!(servers_needed(1.0, 64, response), None);
    }
}
