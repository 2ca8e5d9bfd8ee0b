//! What a run will do, decided before any load starts: the [`Plan`] the `run`, `load` and
//! `sweep` commands build from their options, the cells in order (targets alternating within
//! each load point), each user's request budget, which users or arrivals belong to this worker
//! and when each cell may start. Open-loop arrival times are [`super::arrivals`]'.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use slblur_protocol::{ImageKind, Wire};

use super::arrivals::{Process, TraceReplay};

/// goose's increase rate that starts every user of a cell at once.
pub const ALL_AT_ONCE: f64 = 10_000.0;

/// Slack added to a derived time slot, for starting and stopping a cell.
const SLOT_MARGIN: Duration = Duration::from_secs(5);

/// Everything a `run`, `load` or `sweep` will do, checked before any request is sent.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The command, as run.json records it.
    pub command: &'static str,
    pub targets: Vec<TargetSpec>,
    /// The load points, in run order; every target runs each of them.
    pub loads: Vec<Load>,
    pub frames: FrameSource,
    pub limits: Limits,
    /// Give up on a request after this long (the whole round trip).
    pub timeout: Duration,
    pub ramp: Ramp,
    /// Open loop: at most this many requests outstanding.
    pub max_outstanding: u32,
    /// Open loop: the arrivals' seed [default: derived from the run id].
    pub seed: Option<u64>,
    /// goose threshold rules, judged at the end of each cell.
    pub thresholds: Vec<String>,
    pub share: Share,
    /// Start the first cell at this time (distributed runs), each next one a slot later.
    pub start_at: Option<SystemTime>,
    pub slot: Option<Duration>,
    pub output: Output,
    /// Sent as `Authorization: Bearer` on every request (`--token-file`).
    pub token_file: Option<PathBuf>,
    pub show_progress: bool,
    /// Keep the images the first pass gets back (`run --save-video`).
    pub keep_images: bool,
    /// Closed-loop users send the faces of their last replies as hints (`--smooth`).
    pub smooth: super::Smoothing,
    /// Where asynchronous targets' callbacks are received (`--callback-listen`) and the URL
    /// the platform posts them to (`--callback-url`); set when the plan has such a target.
    pub callback: Option<CallbackSpec>,
    /// The trace replayed by trace cells (`--trace`).
    pub trace: Option<TraceReplay>,
}

/// `--callback-listen` and `--callback-url`.
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackSpec {
    pub listen: std::net::SocketAddr,
    pub url: Option<reqwest::Url>,
}

/// Where a plan's rows go.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// `run`: appended to one CSV file.
    Csv(PathBuf),
    /// `load` and `sweep`: a run folder (results.csv, cells.csv, run.json, goose's reports),
    /// resumed when `resume` and the folder holds the same plan. `run_id` is a new run's id.
    RunDir {
        path: PathBuf,
        resume: bool,
        run_id: String,
    },
}

impl Output {
    /// The CSV file, or the run folder.
    pub fn path(&self) -> &std::path::Path {
        match self {
            Output::Csv(path) | Output::RunDir { path, .. } => path,
        }
    }
}

/// The frames every request carries: a video, encoded once for the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameSource {
    pub video: PathBuf,
    pub wire: Wire,
    pub format: ImageKind,
    pub quality: u8,
    /// Scale frames to this width, keeping the aspect ratio.
    pub width: Option<u32>,
}

/// How long each user (or open cell) sends: `--frames`, `--loop`, `--duration`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub frames: Option<u64>,
    pub looping: bool,
    pub duration: Option<Duration>,
}

impl Plan {
    /// The cells in run order.
    pub fn cells(&self) -> Vec<Cell> {
        cells(&self.targets, &self.loads)
    }

    /// The wall time reserved per cell when cells must start at fixed times (a start time with
    /// several cells): `--slot`, or derived from `--duration`. `Err` says what is missing.
    pub fn time_slot(&self) -> Result<Option<Duration>, String> {
        let cells = self.targets.len() * self.loads.len();
        if self.start_at.is_none() || cells <= 1 || self.slot.is_some() {
            return Ok(self.slot);
        }
        let Some(duration) = self.limits.duration else {
            return Err("with --start-at and several cells, give --slot (the wall time reserved per cell) or --duration, \
                 so that every worker starts each cell at the same time"
                .into());
        };
        let most_users = self.loads.iter().map(|l| l.users()).max().unwrap_or(1);
        let ramp_time = match self.ramp {
            Ramp::Over(d) => d,
            Ramp::Rate(r) => Duration::from_secs_f64(f64::from(most_users.saturating_sub(1)) / r),
        };
        Ok(Some(ramp_time + duration + self.timeout + SLOT_MARGIN))
    }
}

/// How a cell's users start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ramp {
    /// This many users per second (goose's increase rate).
    Rate(f64),
    /// Evenly over this long (JMeter's ramp-up period).
    Over(Duration),
}

impl Ramp {
    /// The original JMeter plans' pace.
    pub const DEFAULT: Ramp = Ramp::Rate(0.25);

    /// Users per second for a cell of `users`.
    pub fn users_per_s(self, users: u32) -> f64 {
        match self {
            Ramp::Rate(r) => r,
            Ramp::Over(d) if d.is_zero() || users <= 1 => ALL_AT_ONCE,
            // JMeter starts user i at i × period / N.
            Ramp::Over(d) => f64::from(users) / d.as_secs_f64(),
        }
    }

    /// As run.json records it.
    pub fn describe(self) -> String {
        match self {
            Ramp::Rate(r) => format!("{r} users/s"),
            Ramp::Over(d) => format!("over {}", humantime::format_duration(d)),
        }
    }
}

/// A deployment to load: `NAME=URL` (`--target`, `--async-target`, or `--url` as the target
/// `default`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    pub name: String,
    pub url: reqwest::Url,
    /// Called directly, or through OpenFaaS's asynchronous path (`--async-target`, `--async`).
    pub invocation: crate::record::Invocation,
}

/// How a cell loads its target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Load {
    /// Closed loop: this many users, each sleeping `think_s` before every frame.
    Closed { users: u32, think_s: f64 },
    /// Open loop: arrivals at a mean of this many requests per second, by `process`.
    Open {
        rate_per_s: f64,
        #[serde(default)]
        process: Process,
    },
}

impl Load {
    /// The `users` column: 0 for open-loop cells, which have no closed users.
    pub fn users(self) -> u32 {
        match self {
            Load::Closed { users, .. } => users,
            Load::Open { .. } => 0,
        }
    }

    pub fn think_s(self) -> f64 {
        match self {
            Load::Closed { think_s, .. } => think_s,
            Load::Open { .. } => 0.0,
        }
    }

    /// The load a row was sent under, from its columns.
    pub fn of_row(row: &crate::record::Row) -> Load {
        match row.rate_per_s {
            Some(rate_per_s) => Load::Open {
                rate_per_s,
                process: row.arrival.parse().unwrap_or_default(),
            },
            None => Load::Closed {
                users: row.users,
                think_s: row.think_s,
            },
        }
    }

    /// Open-loop cells: the mean rate and the load's label, for the cell's summary.
    pub fn open_label(self) -> Option<(f64, String)> {
        match self {
            Load::Closed { .. } => None,
            Load::Open {
                rate_per_s,
                process,
            } => Some((rate_per_s, process.label(rate_per_s))),
        }
    }

    pub fn rate_per_s(self) -> Option<f64> {
        match self {
            Load::Closed { .. } => None,
            Load::Open { rate_per_s, .. } => Some(rate_per_s),
        }
    }

    /// How an open-loop cell's requests arrive (`None` for closed loops).
    pub fn process(self) -> Option<Process> {
        match self {
            Load::Closed { .. } => None,
            Load::Open { process, .. } => Some(process),
        }
    }
}

/// One cell of a run: a target under one load.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Position in the run, fixed however much of it is resumed (it picks the time slot).
    pub index: usize,
    pub target: TargetSpec,
    pub load: Load,
}

impl Cell {
    /// A stable name: the key in run.json and the stem of goose's report files.
    pub fn key(&self) -> String {
        let load = match self.load {
            Load::Closed { users, think_s } => format!("u{users}-z{think_s}"),
            Load::Open {
                rate_per_s,
                process: Process::Poisson,
            } => format!("r{rate_per_s}"),
            Load::Open { process, .. } => process.key(),
        };
        format!("{}-{load}", self.target.name)
    }

    /// For progress lines: `serverless users=2 think=1s` or `serverless rate=5/s`.
    pub fn label(&self) -> String {
        match self.load {
            Load::Closed { users, think_s } => {
                format!("{} users={users} think={think_s}s", self.target.name)
            }
            Load::Open {
                rate_per_s,
                process: Process::Poisson,
            } => format!("{} rate={rate_per_s}/s", self.target.name),
            Load::Open {
                rate_per_s,
                process,
            } => format!("{} {process} (mean {rate_per_s:.3}/s)", self.target.name),
        }
    }
}

/// Every cell: for each load point, each target in turn (A, B, A, B …), so that the drift of
/// a noisy machine falls on every target alike.
pub fn cells(targets: &[TargetSpec], loads: &[Load]) -> Vec<Cell> {
    loads
        .iter()
        .flat_map(|&load| targets.iter().map(move |t| (t.clone(), load)))
        .enumerate()
        .map(|(index, (target, load))| Cell {
            index,
            target,
            load,
        })
        .collect()
}

/// Closed-loop load points: users × think, users outermost.
pub fn closed_loads(users: &[u32], think: &[Duration]) -> Vec<Load> {
    users
        .iter()
        .flat_map(|&users| {
            think.iter().map(move |t| Load::Closed {
                users,
                think_s: t.as_secs_f64(),
            })
        })
        .collect()
}

/// How much each user (or each open-loop cell) sends: every cell is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// Requests per user (closed) or per cell (open); `None` = unbounded (`--loop` with only
    /// `--duration`).
    pub requests: Option<u64>,
    /// Stop sending after this long from the user's (or open cell's) start.
    pub duration: Option<Duration>,
}

impl Budget {
    /// `--frames N` (wrapping around the video only with `--loop`), else one pass.
    pub fn new(
        frames_in_video: u64,
        frames: Option<u64>,
        looping: bool,
        duration: Option<Duration>,
    ) -> Self {
        let requests = match (frames, looping) {
            (Some(n), true) => Some(n),
            (Some(n), false) => Some(n.min(frames_in_video)),
            (None, false) => Some(frames_in_video),
            (None, true) => None,
        };
        Self { requests, duration }
    }

    pub fn is_bounded(&self) -> bool {
        self.requests.is_some() || self.duration.is_some()
    }
}

/// Which of `workers` processes runs what: users `u` with `u % workers == index`, and the same
/// for open-loop arrivals, so that the workers' rows together are exactly one process's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    pub index: u32,
    pub workers: u32,
}

impl Share {
    pub const WHOLE: Share = Share {
        index: 0,
        workers: 1,
    };

    /// Whether the global user (or arrival) number `n` is this worker's.
    pub fn owns(self, n: u64) -> bool {
        n % u64::from(self.workers) == u64::from(self.index)
    }

    /// This worker's users of a cell of `users`, as global user ids.
    pub fn users(self, users: u32) -> Vec<u32> {
        (self.index..users).step_by(self.workers as usize).collect()
    }

    /// The global id of this worker's `local`-th user.
    pub fn global_user(self, local: usize) -> u32 {
        self.index + self.workers * local as u32
    }
}

/// When cell `index` may start: slot `index` after `start`, or at once without a start time.
pub fn slot_start(
    start: Option<SystemTime>,
    slot: Option<Duration>,
    index: usize,
) -> Option<SystemTime> {
    let start = start?;
    Some(match slot {
        Some(slot) => start + slot * index as u32,
        None => start,
    })
}

/// A seed from text (the run id), so every worker of a run draws the same arrivals.
pub fn seed_from(text: &str) -> u64 {
    // FNV-1a: stable across processes and machines (unlike the std hasher).
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::Url;

    fn target(name: &str) -> TargetSpec {
        TargetSpec {
            name: name.into(),
            url: Url::parse("http://127.0.0.1:1/").expect("test url"),
            invocation: crate::record::Invocation::Sync,
        }
    }

    #[test]
    fn targets_alternate_within_each_load_point() {
        let loads = closed_loads(&[1, 2], &[Duration::ZERO, Duration::from_secs(1)]);
        let cells = cells(&[target("a"), target("b")], &loads);
        let keys: Vec<String> = cells.iter().map(Cell::key).collect();
        assert_eq!(
            keys,
            [
                "a-u1-z0", "b-u1-z0", "a-u1-z1", "b-u1-z1", "a-u2-z0", "b-u2-z0", "a-u2-z1",
                "b-u2-z1"
            ]
        );
        assert!(cells.iter().enumerate().all(|(i, c)| c.index == i));
    }

    #[test]
    fn budgets_are_one_pass_unless_told() {
        assert_eq!(Budget::new(40, None, false, None).requests, Some(40));
        assert_eq!(Budget::new(40, Some(5), false, None).requests, Some(5));
        assert_eq!(Budget::new(40, Some(90), false, None).requests, Some(40));
        assert_eq!(Budget::new(40, Some(90), true, None).requests, Some(90));
        assert!(!Budget::new(40, None, true, None).is_bounded());
        assert!(Budget::new(40, None, true, Some(Duration::from_secs(1))).is_bounded());
    }

    #[test]
    fn worker_shares_partition_users() {
        let shares = [
            Share {
                index: 0,
                workers: 2,
            },
            Share {
                index: 1,
                workers: 2,
            },
        ];
        assert_eq!(shares[0].users(5), [0, 2, 4]);
        assert_eq!(shares[1].users(5), [1, 3]);
        assert_eq!(shares[1].users(1), Vec::<u32>::new());
        assert_eq!(shares[1].global_user(1), 3);
        assert_eq!(Share::WHOLE.users(3), [0, 1, 2]);
        for n in 0..10 {
            assert_eq!(shares.iter().filter(|s| s.owns(n)).count(), 1);
        }
    }

    #[test]
    fn slots_follow_the_start_time() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let slot = Some(Duration::from_secs(10));
        assert_eq!(
            slot_start(Some(t0), slot, 3),
            Some(t0 + Duration::from_secs(30))
        );
        assert_eq!(slot_start(Some(t0), None, 3), Some(t0));
        assert_eq!(slot_start(None, slot, 3), None);
        assert_eq!(seed_from("run-1"), seed_from("run-1"));
        assert_ne!(seed_from("run-1"), seed_from("run-2"));
    }
}
