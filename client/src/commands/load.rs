//! `slblur-client load` (one load point per target) and `sweep` (a grid of them): the options
//! into a checked plan of cells, run by the driver into a run folder.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::{Finish, SendArgs, UsageError};
use crate::cli::values::{
    RateList, ThinkList, UserList, parse_duration, parse_factor, parse_minutes, parse_rate,
    parse_rate_list, parse_run_id, parse_start_at, parse_think_list, parse_threshold, parse_users,
};
use crate::record;
use crate::rig::arrivals::{Process, Spread, TraceReplay, parse_burst, parse_ramp};
use crate::rig::plan::{self, Load, Output, Plan, Ramp, Share};
use crate::rig::{Smoothing, drive};
use crate::trace::{Selection, Trace, TraceError};

/// What tells `load` and `sweep` apart: the name, the default grid, and whether one cell is
/// all that may run.
#[derive(Debug)]
pub struct Grid {
    pub command: &'static str,
    users: &'static [u32],
    think: &'static [Duration],
    one_cell: bool,
}

pub const LOAD: Grid = Grid {
    command: "load",
    users: &[1],
    think: &[Duration::ZERO],
    one_cell: true,
};

pub const SWEEP: Grid = Grid {
    command: "sweep",
    users: &[1, 2, 4],
    think: &[
        Duration::ZERO,
        Duration::from_secs(1),
        Duration::from_secs(5),
    ],
    one_cell: false,
};

/// `load` (one cell per target) and `sweep` (a grid of cells per target).
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("open").multiple(true)))]
pub struct Args {
    #[command(flatten)]
    pub send: SendArgs,
    /// Concurrent users per cell: a comma list, ranges allowed (1,2,4 or 1-9)
    /// [default: sweep 1,2,4; load 1].
    #[arg(long, value_name = "LIST", value_parser = parse_users, conflicts_with = "open")]
    pub users: Option<UserList>,
    /// Think times per cell: a comma list of durations (0,1,5 or 0,500ms,2s)
    /// [default: sweep 0,1,5; load 0].
    #[arg(long, value_name = "LIST", value_parser = parse_think_list, conflicts_with = "open")]
    pub think: Option<ThinkList>,
    /// Open loop instead of users: Poisson arrivals at these rates (requests per second,
    /// a comma list such as 2,5,10), frames taken from the video in turn.
    #[arg(long = "rate", value_name = "LIST", value_parser = parse_rate_list, group = "open")]
    pub rates: Option<RateList>,
    /// Open loop, in bursts: Poisson arrivals at ON requests/s for on periods of MEAN_ON
    /// seconds on average, then at OFF requests/s for MEAN_OFF seconds (exponential periods: a
    /// two-state Markov-modulated Poisson process), e.g. 20:1:5:15. Repeat for more cells;
    /// bound each with --frames or --duration.
    #[arg(long = "burst", value_name = "ON:OFF:MEAN_ON:MEAN_OFF", value_parser = parse_burst, group = "open")]
    pub bursts: Vec<Process>,
    /// Open loop, a ramp: Poisson arrivals whose rate goes linearly from FROM to TO requests/s
    /// over SECONDS, e.g. 1:20:60 (not the users' --ramp-up). Repeat for more cells.
    #[arg(long = "ramp", value_name = "FROM:TO:SECONDS", value_parser = parse_ramp, group = "open")]
    pub ramps: Vec<Process>,
    /// Open loop, replaying a function trace in the Azure Functions 2019 invocation-count
    /// format (HashOwner,HashApp,HashFunction,Trigger,1,…,1440: invocations per minute), e.g.
    /// samples/traces/azure-sample.csv. Each minute's invocations are spread within it.
    #[arg(long, value_name = "FILE", group = "open")]
    pub trace: Option<PathBuf>,
    /// Trace: the functions to replay, by (a prefix of) HashFunction, comma-separated
    /// [default: every function, summed].
    #[arg(long, value_name = "HASH,…", value_delimiter = ',', requires = "trace")]
    pub trace_function: Vec<String>,
    /// Trace: the minutes to replay, A-B (1-based, inclusive) [default: all].
    #[arg(long, value_name = "A-B", value_parser = parse_minutes, requires = "trace")]
    pub trace_minutes: Option<(usize, usize)>,
    /// Trace: multiply every minute's invocations by this (the fraction drawn, seeded).
    #[arg(long, default_value_t = 1.0, value_name = "F", value_parser = parse_factor, requires = "trace")]
    pub trace_scale: f64,
    /// Trace: time compression, trace minutes per minute of the run (60 replays a minute of
    /// the trace in a second).
    #[arg(long, default_value_t = 1.0, value_name = "F", value_parser = parse_factor, requires = "trace")]
    pub trace_speedup: f64,
    /// Trace: how a minute's invocations are placed within it.
    #[arg(long, value_enum, default_value_t = Spread::Poisson, requires = "trace")]
    pub trace_spread: Spread,
    /// Open loop: at most this many requests outstanding; an arrival that finds them all busy
    /// becomes a failed row instead of a silent slowdown.
    #[arg(long, default_value_t = 64, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_outstanding: u32,
    /// Open loop: seed of the arrival times, so a run (and every worker of it) can be repeated
    /// [default: derived from the run id].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Start a cell's users evenly over this long (JMeter's ramp-up period).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with = "ramp_rate")]
    pub ramp_up: Option<Duration>,
    /// Start this many users per second (goose's increase rate) [default: 0.25, as the
    /// original JMeter plans].
    #[arg(long, value_name = "USERS_PER_S", value_parser = parse_rate)]
    pub ramp_rate: Option<f64>,
    /// Fail the run (exit 3) when a rule fails in any cell: goose's thresholds, e.g.
    /// 'p95<2s' or 'error-rate<5%'. A rule without ' for REQUEST' judges the round trip.
    #[arg(long = "threshold", value_name = "RULE", value_parser = parse_threshold)]
    pub thresholds: Vec<String>,
    /// Folder for results.csv, cells.csv, run.json and goose's reports
    /// [default: results/<run id>].
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue an interrupted sweep in --out: cells already complete are skipped.
    #[arg(long, requires = "out")]
    pub resume: bool,
    /// Run id shared by all workers of a distributed run [default: from --start-at, else new].
    #[arg(long, value_name = "ID", value_parser = parse_run_id)]
    pub run_id: Option<String>,
    /// Distributed: how many worker processes share every cell.
    #[arg(long, default_value_t = 1, value_name = "W", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub workers: u32,
    /// Distributed: this worker's index, 0..W (a Kubernetes Indexed Job sets
    /// JOB_COMPLETION_INDEX).
    #[arg(
        long,
        env = "JOB_COMPLETION_INDEX",
        default_value_t = 0,
        value_name = "I"
    )]
    pub worker_index: u32,
    /// Start the first cell at this time (RFC 3339, e.g. 2026-01-31T12:00:00Z), so that all
    /// workers start together.
    #[arg(long, value_name = "TIME", value_parser = parse_start_at)]
    pub start_at: Option<std::time::SystemTime>,
    /// Distributed: the wall time reserved for each cell; cell i starts at --start-at + i × slot
    /// on every worker [default: ramp-up + --duration + --timeout + 5 s, with --duration].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub slot: Option<Duration>,
}

pub async fn run(args: &Args, grid: &Grid) -> anyhow::Result<Finish> {
    let driven = drive::drive(&plan(args, grid)?).await?;
    driven.conclude();
    Ok(driven.finish)
}

/// The plan of a load or sweep, every option checked against the others.
pub fn plan(args: &Args, grid: &Grid) -> Result<Plan, UsageError> {
    let send = &args.send;
    send.check()?;
    let trace = trace(args)?;
    let loads = loads(args, grid, trace.as_ref())?;
    if loads.iter().any(|l| l.process().is_some()) && send.smooth.is_some_and(|n| n > 0) {
        return Err(UsageError(
            "--smooth needs closed-loop users (each sends its frames in order); an open loop (--rate, --burst, --ramp, --trace) has none"
                .into(),
        ));
    }
    if args.worker_index >= args.workers {
        return Err(UsageError(format!(
            "--worker-index {} is not below --workers {}",
            args.worker_index, args.workers
        )));
    }
    if send.looping && send.frames.is_none() && send.duration.is_none() {
        return Err(UsageError(format!(
            "{} --loop needs --frames or --duration, so that each cell ends",
            grid.command
        )));
    }
    let mut plan = Plan {
        command: grid.command,
        targets: send.target_list(),
        loads,
        frames: send.frame_source(),
        limits: send.limits(),
        timeout: send.timeout,
        ramp: match (args.ramp_up, args.ramp_rate) {
            (Some(period), _) => Ramp::Over(period),
            (None, Some(rate)) => Ramp::Rate(rate),
            (None, None) => Ramp::DEFAULT,
        },
        max_outstanding: args.max_outstanding,
        seed: args.seed,
        thresholds: args.thresholds.clone(),
        share: Share {
            index: args.worker_index,
            workers: args.workers,
        },
        start_at: args.start_at,
        slot: args.slot,
        output: output(args),
        token_file: send.token_file.clone(),
        show_progress: !send.no_progress,
        keep_images: false,
        // Measuring: hints change the work per request, so they are asked for explicitly.
        callback: send.callback()?,
        smooth: send.smoothing(Smoothing::OFF),
        trace,
    };
    plan.slot = plan.time_slot().map_err(UsageError)?;
    Ok(plan)
}

/// The trace to replay (`--trace` and its options), read and checked.
fn trace(args: &Args) -> Result<Option<TraceReplay>, UsageError> {
    let Some(path) = &args.trace else {
        return Ok(None);
    };
    // The message with its causes, as the binary prints every error.
    let explain = |e: TraceError| UsageError(format!("{:#}", anyhow::Error::from(e)));
    let file = Trace::read(path).map_err(explain)?;
    let selection = Selection {
        functions: args.trace_function.clone(),
        minutes: args.trace_minutes,
        scale: args.trace_scale,
    };
    let per_minute = file.select(&selection).map_err(explain)?;
    let minutes = args.trace_minutes.unwrap_or((1, file.minutes));
    let functions = if args.trace_function.is_empty() {
        format!("all {} functions", file.functions.len())
    } else {
        args.trace_function.join(",")
    };
    Ok(Some(TraceReplay {
        source: format!(
            "{} ({functions}, minutes {}-{})",
            path.display(),
            minutes.0,
            minutes.1
        ),
        per_minute,
        scale: args.trace_scale,
        speedup: args.trace_speedup,
        spread: args.trace_spread,
    }))
}

/// The load points the options ask for, with the command's defaults.
fn loads(args: &Args, grid: &Grid, trace: Option<&TraceReplay>) -> Result<Vec<Load>, UsageError> {
    let open = |process: Process, rate: f64| Load::Open {
        rate_per_s: process.mean_rate(rate),
        process,
    };
    let mut loads: Vec<Load> = args
        .rates
        .iter()
        .flat_map(|RateList(rates)| rates.iter().map(|&r| open(Process::Poisson, r)))
        .chain(args.bursts.iter().chain(&args.ramps).map(|&p| open(p, 0.0)))
        .collect();
    if let Some(replay) = trace {
        loads.push(open(Process::Trace, replay.mean_rate()));
    }
    if loads.is_empty() {
        loads = plan::closed_loads(
            args.users.as_ref().map_or(grid.users, |UserList(u)| u),
            args.think.as_ref().map_or(grid.think, |ThinkList(t)| t),
        );
    }
    if grid.one_cell && loads.len() != 1 {
        return Err(UsageError(format!(
            "load runs one cell, but the options ask for {} (users × think or rates); use sweep",
            loads.len()
        )));
    }
    Ok(loads)
}

/// The run folder: `--out`, or `results/<run id>` of a new id (a resumed run keeps its own).
fn output(args: &Args) -> Output {
    let run_id = match (&args.run_id, args.start_at) {
        (Some(id), _) => id.clone(),
        (None, Some(start)) => format!("run-{}", compact_time(start)),
        (None, None) => record::new_run_id(),
    };
    Output::RunDir {
        path: args
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("results").join(&run_id)),
        resume: args.resume,
        run_id,
    }
}

/// `20260131T120000Z` from a time.
fn compact_time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}
