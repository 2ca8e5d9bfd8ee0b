//! Open-loop arrival processes and their schedules. A cell's schedule (each arrival's offset
//! from the cell's start) is drawn before the cell runs, from a seed every worker shares, so
//! two runs of the same plan send the same intended times and the workers of a distributed run
//! split it exactly once (arrival k is worker k mod W's). Every schedule is bounded.
//!
//! - Poisson (`--rate`): exponential gaps.
//! - Bursts (`--burst ON:OFF:MEAN_ON:MEAN_OFF`): a two-state Markov-modulated Poisson process,
//!   Poisson at the on rate for exponentially distributed on periods, then at the off rate.
//! - Ramp (`--ramp FROM:TO:SECONDS`): Poisson whose rate goes linearly from FROM to TO.
//! - Trace (`--trace FILE`): the invocations per minute of a function trace ([`crate::trace`]),
//!   each minute's arrivals spread within the minute (never all at its start: firing a minute's
//!   invocations at once inflates what a platform sees), minutes compressed by a speed-up.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Most arrivals one cell may schedule.
pub const MAX_ARRIVALS: usize = 2_000_000;

/// The busiest second a schedule may have, per core of the load generator: well inside what
/// the rig drives (`cargo bench --bench rig`: above 5,000 requests/s on 2 cores).
pub const MAX_RATE_PER_CORE: f64 = 1_000.0;

/// How an open-loop cell's requests arrive (the trace itself is the plan's [`TraceReplay`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Process {
    #[default]
    Poisson,
    Burst {
        rate_on: f64,
        rate_off: f64,
        mean_on_s: f64,
        mean_off_s: f64,
    },
    Ramp {
        from: f64,
        to: f64,
        seconds: f64,
    },
    Trace,
}

impl Process {
    /// The mean offered rate, given the Poisson rate or the trace's.
    pub fn mean_rate(self, poisson_or_trace: f64) -> f64 {
        match self {
            Process::Poisson | Process::Trace => poisson_or_trace,
            Process::Burst {
                rate_on,
                rate_off,
                mean_on_s,
                mean_off_s,
            } => (rate_on * mean_on_s + rate_off * mean_off_s) / (mean_on_s + mean_off_s),
            Process::Ramp { from, to, .. } => (from + to) / 2.0,
        }
    }

    /// Whether the process ends by itself (a ramp, a trace window) or needs a bound.
    pub fn ends(self) -> bool {
        matches!(self, Process::Ramp { .. } | Process::Trace)
    }

    /// A label for tables and axes: `2.5/s` (Poisson), `burst 20/1 5s/15s`, `ramp 1-20/s 60s`,
    /// `trace 3.40/s` (its mean rate).
    pub fn label(self, rate_per_s: f64) -> String {
        match self {
            Process::Poisson => format!("{rate_per_s}/s"),
            Process::Burst {
                rate_on,
                rate_off,
                mean_on_s,
                mean_off_s,
            } => format!("burst {rate_on}/{rate_off} {mean_on_s}s/{mean_off_s}s"),
            Process::Ramp { from, to, seconds } => format!("ramp {from}-{to}/s {seconds}s"),
            Process::Trace => format!("trace {rate_per_s:.2}/s"),
        }
    }

    /// A short name for cell keys (file names).
    pub fn key(self) -> String {
        match self {
            Process::Poisson => "poisson".into(),
            Process::Burst {
                rate_on,
                rate_off,
                mean_on_s,
                mean_off_s,
            } => format!("burst{rate_on}-{rate_off}-{mean_on_s}-{mean_off_s}"),
            Process::Ramp { from, to, seconds } => format!("ramp{from}-{to}-{seconds}"),
            Process::Trace => "trace".into(),
        }
    }
}

/// The `arrival` column: `poisson`, `burst:ON:OFF:MEAN_ON:MEAN_OFF`, `ramp:FROM:TO:SECONDS`,
/// `trace` (the option syntax, so a row names its process exactly).
impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Poisson => f.write_str("poisson"),
            Process::Burst {
                rate_on,
                rate_off,
                mean_on_s,
                mean_off_s,
            } => write!(f, "burst:{rate_on}:{rate_off}:{mean_on_s}:{mean_off_s}"),
            Process::Ramp { from, to, seconds } => write!(f, "ramp:{from}:{to}:{seconds}"),
            Process::Trace => f.write_str("trace"),
        }
    }
}

impl std::str::FromStr for Process {
    type Err = String;

    /// The `arrival` column back, or an option's value after its name (`burst:` + `--burst`).
    fn from_str(s: &str) -> Result<Process, String> {
        let s = s.trim();
        if s.is_empty() || s == "poisson" {
            return Ok(Process::Poisson);
        }
        if s == "trace" {
            return Ok(Process::Trace);
        }
        let (kind, rest) = s
            .split_once(':')
            .ok_or_else(|| format!("'{s}' is not an arrival process"))?;
        match kind {
            "burst" => parse_burst(rest),
            "ramp" => parse_ramp(rest),
            _ => Err(format!("'{s}' is not an arrival process")),
        }
    }
}

/// `--burst ON:OFF:MEAN_ON:MEAN_OFF` (rates per second, mean periods in seconds).
pub fn parse_burst(s: &str) -> Result<Process, String> {
    let [rate_on, rate_off, mean_on_s, mean_off_s] = numbers(s, "ON:OFF:MEAN_ON:MEAN_OFF")?;
    if rate_on <= 0.0 || rate_off < 0.0 || rate_off > rate_on {
        return Err(format!(
            "'{s}': the on rate must be above 0 and at least the off rate (0 or more)"
        ));
    }
    if mean_on_s <= 0.0 || mean_off_s <= 0.0 {
        return Err(format!("'{s}': the mean periods must be above 0 seconds"));
    }
    Ok(Process::Burst {
        rate_on,
        rate_off,
        mean_on_s,
        mean_off_s,
    })
}

/// `--ramp FROM:TO:SECONDS` (rates per second).
pub fn parse_ramp(s: &str) -> Result<Process, String> {
    let [from, to, seconds] = numbers(s, "FROM:TO:SECONDS")?;
    if from < 0.0 || to < 0.0 || from + to <= 0.0 || seconds <= 0.0 {
        return Err(format!(
            "'{s}': the rates must be 0 or more (not both 0) and the length above 0 seconds"
        ));
    }
    Ok(Process::Ramp { from, to, seconds })
}

fn numbers<const N: usize>(s: &str, form: &str) -> Result<[f64; N], String> {
    let parts: Vec<&str> = s.split(':').map(str::trim).collect();
    let values: Vec<f64> = parts
        .iter()
        .map(|p| p.parse::<f64>().ok().filter(|v| v.is_finite() && *v <= 1e6))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("'{s}' is not {form} (numbers up to 1000000)"))?;
    values
        .try_into()
        .map_err(|_| format!("'{s}' is not {form}: {N} numbers separated by ':'"))
}

/// How a trace minute's invocations are placed within it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Spread {
    /// Uniformly at random (a Poisson process given the minute's count).
    #[default]
    Poisson,
    /// Evenly spaced, from a random phase.
    Even,
}

/// The trace a plan replays: the selected invocations per minute and how to replay them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceReplay {
    /// What was selected, for run.json and the report: file, functions, minutes.
    pub source: String,
    /// Invocations per minute of the selection, unscaled.
    pub per_minute: Vec<u64>,
    pub scale: f64,
    /// Trace minutes per minute of the run.
    pub speedup: f64,
    pub spread: Spread,
}

impl TraceReplay {
    /// Seconds of the run one trace minute takes.
    pub fn minute_s(&self) -> f64 {
        60.0 / self.speedup
    }

    /// The replay's mean rate: the scaled invocations over the replay's length.
    pub fn mean_rate(&self) -> f64 {
        let total: u64 = self.per_minute.iter().sum();
        total as f64 * self.scale / (self.per_minute.len() as f64 * self.minute_s())
    }
}

/// A cell's arrival offsets, sorted: `count` at most, none past `duration`.
pub fn schedule(
    seed: u64,
    rate_per_s: f64,
    process: Process,
    trace: Option<&TraceReplay>,
    count: Option<u64>,
    duration: Option<Duration>,
) -> Vec<Duration> {
    let mut rng = SplitMix64(seed);
    let limit = duration.map_or(f64::INFINITY, |d| d.as_secs_f64());
    let most = count.map_or(MAX_ARRIVALS, |n| n.min(MAX_ARRIVALS as u64) as usize);
    let times = match (process, trace) {
        (Process::Trace, Some(trace)) => traced(&mut rng, trace, limit, most),
        (Process::Trace, None) => Vec::new(),
        _ => modulated(&mut rng, rate_per_s, process, limit, most),
    };
    times.into_iter().map(Duration::from_secs_f64).collect()
}

/// Poisson arrivals whose rate the process sets: constant, switching between the on and off
/// rates after exponential periods, or rising linearly (by inverting the cumulative rate).
fn modulated(
    rng: &mut SplitMix64,
    rate: f64,
    process: Process,
    limit: f64,
    most: usize,
) -> Vec<f64> {
    let mut out = Vec::new();
    let end = match process {
        Process::Ramp { seconds, .. } => limit.min(seconds),
        _ => limit,
    };
    match process {
        Process::Poisson | Process::Trace => {
            let mut t = 0.0;
            while out.len() < most && rate > 0.0 {
                t += rng.exponential() / rate;
                if t > end {
                    break;
                }
                out.push(t);
            }
        }
        Process::Burst {
            rate_on,
            rate_off,
            mean_on_s,
            mean_off_s,
        } => {
            // Start in the on state with its long-run share of time.
            let mut on = rng.uniform() < mean_on_s / (mean_on_s + mean_off_s);
            let (mut t, mut switch) = (0.0, 0.0);
            while out.len() < most && t <= end {
                let (rate, mean) = if on {
                    (rate_on, mean_on_s)
                } else {
                    (rate_off, mean_off_s)
                };
                switch += rng.exponential() * mean;
                // Memoryless: the gaps restart at each switch.
                while rate > 0.0 && out.len() < most {
                    let next = t + rng.exponential() / rate;
                    if next > switch || next > end {
                        break;
                    }
                    t = next;
                    out.push(t);
                }
                t = switch;
                on = !on;
            }
        }
        Process::Ramp { from, to, seconds } => {
            // Λ(t) = from·t + (to − from)·t²/(2·seconds); each arrival is one unit of Λ on.
            let slope = (to - from) / seconds;
            let mut s = 0.0;
            while out.len() < most {
                s += rng.exponential();
                let t = if slope.abs() < 1e-12 {
                    s / from
                } else {
                    (-from + (from * from + 2.0 * slope * s).max(0.0).sqrt()) / slope
                };
                if !t.is_finite() || t > end {
                    break;
                }
                out.push(t);
            }
        }
    }
    out
}

/// A trace's arrivals: each minute's scaled count, spread within the minute's slot.
fn traced(rng: &mut SplitMix64, trace: &TraceReplay, limit: f64, most: usize) -> Vec<f64> {
    let width = trace.minute_s();
    let mut out = Vec::new();
    for (m, &count) in trace.per_minute.iter().enumerate() {
        let start = m as f64 * width;
        if start > limit || out.len() >= most {
            break;
        }
        let scaled = count as f64 * trace.scale;
        let k = scaled.floor() as usize + usize::from(rng.uniform() < scaled.fract());
        let mut times: Vec<f64> = match trace.spread {
            Spread::Poisson => (0..k).map(|_| start + rng.uniform() * width).collect(),
            Spread::Even => {
                let phase = rng.uniform();
                (0..k)
                    .map(|i| start + (i as f64 + phase) / k as f64 * width)
                    .collect()
            }
        };
        times.sort_by(f64::total_cmp);
        out.extend(times.into_iter().filter(|&t| t <= limit));
    }
    out.truncate(most);
    out
}

/// The most arrivals any one second of the schedule holds, and where that second starts.
pub fn busiest_second(schedule: &[Duration]) -> (usize, Duration) {
    let (mut best, mut at, mut first) = (0, Duration::ZERO, 0);
    for (last, &t) in schedule.iter().enumerate() {
        while t - schedule[first] >= Duration::from_secs(1) {
            first += 1;
        }
        if last + 1 - first > best {
            (best, at) = (last + 1 - first, schedule[first]);
        }
    }
    (best, at)
}

/// A small, well-known generator (Steele et al.'s SplitMix64): enough for arrival times, and
/// the same sequence on every worker and every machine.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1]: never 0, so its logarithm is finite.
    fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// Exponential with mean 1.
    fn exponential(&mut self) -> f64 {
        -self.uniform().ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(schedule: &[Duration]) -> Vec<f64> {
        schedule.iter().map(Duration::as_secs_f64).collect()
    }

    #[test]
    fn poisson_arrivals_are_seeded_and_have_the_rate() {
        let a = schedule(7, 50.0, Process::Poisson, None, Some(20_000), None);
        assert_eq!(
            a,
            schedule(7, 50.0, Process::Poisson, None, Some(20_000), None)
        );
        assert_ne!(
            a[..10],
            schedule(8, 50.0, Process::Poisson, None, Some(10), None)[..]
        );
        assert_eq!(a.len(), 20_000);
        assert!(a.windows(2).all(|w| w[0] <= w[1]));
        let mean_gap = a[a.len() - 1].as_secs_f64() / a.len() as f64;
        assert!((mean_gap - 0.02).abs() < 0.001, "mean gap {mean_gap}");
        let gaps: Vec<f64> = std::iter::once(a[0].as_secs_f64())
            .chain(a.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()))
            .collect();
        let var = gaps.iter().map(|g| (g - mean_gap).powi(2)).sum::<f64>() / gaps.len() as f64;
        assert!(
            (var.sqrt() / mean_gap - 1.0).abs() < 0.05,
            "exponential gaps have CV 1"
        );
        let bounded = schedule(
            7,
            50.0,
            Process::Poisson,
            None,
            None,
            Some(Duration::from_secs(2)),
        );
        assert!(bounded.iter().all(|t| *t <= Duration::from_secs(2)));
        assert!((80..=120).contains(&bounded.len()), "{}", bounded.len());
    }

    #[test]
    fn bursts_alternate_between_the_two_rates() {
        let burst = parse_burst("40:2:2:8").expect("valid");
        assert_eq!(burst.mean_rate(0.0), (40.0 * 2.0 + 2.0 * 8.0) / 10.0);
        let long = Duration::from_secs(4_000);
        let a = secs(&schedule(3, 0.0, burst, None, None, Some(long)));
        let rate = a.len() as f64 / long.as_secs_f64();
        assert!(
            (rate / burst.mean_rate(0.0) - 1.0).abs() < 0.1,
            "rate {rate}"
        );
        // Bursty: counts per second vary far more than a Poisson process's (variance = mean).
        let mut per_second = vec![0.0f64; long.as_secs() as usize + 1];
        a.iter().for_each(|t| per_second[*t as usize] += 1.0);
        let mean = per_second.iter().sum::<f64>() / per_second.len() as f64;
        let var =
            per_second.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / per_second.len() as f64;
        assert!(var > 5.0 * mean, "index of dispersion {}", var / mean);
        assert_eq!(burst.to_string().parse::<Process>(), Ok(burst));
    }

    #[test]
    fn a_ramp_rises_linearly_and_ends() {
        let ramp = parse_ramp("0:20:100").expect("valid");
        let a = secs(&schedule(5, 0.0, ramp, None, None, None));
        assert!(a.iter().all(|&t| t <= 100.0));
        // Expected counts: ∫ rate = 1000 in all, 250 in the first half.
        assert!((900..1100).contains(&a.len()), "{}", a.len());
        let first_half = a.iter().filter(|&&t| t < 50.0).count();
        assert!((200..300).contains(&first_half), "{first_half}");
        assert_eq!(ramp.mean_rate(0.0), 10.0);
        let flat = parse_ramp("5:5:10").expect("valid");
        assert!((35..70).contains(&schedule(1, 0.0, flat, None, None, None).len()));
    }

    #[test]
    fn a_trace_spreads_each_minute_within_it() {
        let trace = TraceReplay {
            source: "t".into(),
            per_minute: vec![6, 0, 3],
            scale: 1.0,
            speedup: 60.0,
            spread: Spread::Even,
        };
        let a = secs(&schedule(9, 0.0, Process::Trace, Some(&trace), None, None));
        assert_eq!(a.len(), 9);
        let (first, last): (Vec<f64>, Vec<f64>) = a.iter().partition(|&&t| t < 1.0);
        assert_eq!((first.len(), last.len()), (6, 3));
        assert!(last.iter().all(|&t| (2.0..3.0).contains(&t)), "{last:?}");
        // Evenly spaced, and not all at the minute's start.
        let gaps: Vec<f64> = first.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.iter().all(|g| (g - 1.0 / 6.0).abs() < 1e-9),
            "{gaps:?}"
        );
        assert!(first[0] > 0.0);
        assert!((trace.mean_rate() - 3.0).abs() < 1e-9, "9 arrivals in 3 s");
        // Half the counts: each minute keeps half, the fraction drawn.
        let half = TraceReplay {
            scale: 0.5,
            spread: Spread::Poisson,
            ..trace
        };
        let n = schedule(9, 0.0, Process::Trace, Some(&half), None, None).len();
        assert!((4..=5).contains(&n), "{n}");
    }

    #[test]
    fn bad_processes_are_explained() {
        assert!(parse_burst("1:2:3").unwrap_err().contains("4 numbers"));
        assert!(
            parse_burst("1:2:3:4")
                .unwrap_err()
                .contains("at least the off rate")
        );
        assert!(parse_burst("5:1:0:4").unwrap_err().contains("mean periods"));
        assert!(parse_ramp("a:1:2").unwrap_err().contains("FROM:TO:SECONDS"));
        assert!(parse_ramp("0:0:2").unwrap_err().contains("not both 0"));
        assert!("wave:1".parse::<Process>().is_err());
    }

    #[test]
    fn the_busiest_second_is_found() {
        let at = |s: &[f64]| {
            s.iter()
                .map(|&t| Duration::from_secs_f64(t))
                .collect::<Vec<_>>()
        };
        assert_eq!(busiest_second(&at(&[0.1, 0.2, 1.5, 1.6, 1.7, 3.0])).0, 3);
        assert_eq!(busiest_second(&[]).0, 0);
    }
}
