//! The load rig: goose drives every load. A cell (one target under N closed users or one
//! open-loop rate) is one `GooseAttack` whose users behave like the video client; each request
//! becomes one CSV row, written and flushed as it finishes by the single writer here, and goose
//! keeps its own reports of the same requests.
//!
//! - [`plan`]: cells, budgets, worker shares, time slots;
//! - [`arrivals`]: open-loop arrival processes (Poisson, bursts, ramps, traces) and their
//!   schedules;
//! - [`exchange`]: one request, its row and its goose custom metrics;
//! - [`callback`]: the receiver of asynchronous targets' callbacks;
//! - [`users`]: the closed-loop video user and the open-loop arrival taker;
//! - [`smooth`]: a user's memory of the faces it was sent back, for `--smooth`;
//! - [`rundir`]: a run's folder (run.json, cells.csv, resume);
//! - [`drive`]: a plan end to end, for `run`, `load` and `sweep` alike;
//! - [`merge`]: distributed workers' folders into one.

pub mod arrivals;
pub mod callback;
pub mod drive;
pub mod exchange;
pub mod merge;
pub mod plan;
pub mod rundir;
pub mod smooth;
pub mod users;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use goose::prelude::*;
use reqwest::Url;
use tokio::sync::mpsc;

use crate::progress::Progress;
use crate::record::{CsvSink, Invocation, RecordError, Row};
use crate::summary::{CellSummary, CellTally};
use crate::token::Token;
use crate::token::TokenError;
use crate::video::VideoError;
use crate::wire::ReplyImage;
use crate::workload::Workload;
use rundir::RunDirError;
use slblur_protocol::Wire;

use callback::{CallbackCounts, Callbacks};
pub use exchange::Outcome;
pub use plan::Ramp;
use plan::{ALL_AT_ONCE, Budget, Cell, Load, Share};
pub use smooth::Smoothing;

#[derive(Debug, thiserror::Error)]
pub enum RigError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    #[error(transparent)]
    Video(#[from] VideoError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Callbacks(#[from] callback::ListenError),
    #[error("goose could not run cell {cell}")]
    Goose {
        cell: String,
        #[source]
        source: goose::GooseError,
    },
    #[error("cannot run cell {cell}: {why}")]
    Unrunnable { cell: String, why: String },
    #[error("{0} already holds a run; add --resume to continue it, or choose another --out")]
    Occupied(PathBuf),
    #[error("cannot resume {path}: {why} from this command's")]
    NotResumable { path: PathBuf, why: String },
    /// A blocking step (preparing frames, writing the video) panicked.
    #[error("{0} stopped unexpectedly")]
    Panicked(&'static str),
}

/// What every cell of a run shares.
#[derive(Debug, Clone)]
pub struct Rig {
    pub run_id: String,
    pub wire: Wire,
    pub timeout: Duration,
    pub workload: Arc<Workload>,
    pub budget: Budget,
    pub share: Share,
    pub ramp: Ramp,
    pub max_outstanding: u32,
    pub seed: u64,
    /// goose `--threshold` rules, judged at the end of each cell.
    pub thresholds: Vec<String>,
    /// Where goose writes its HTML, JSON and Markdown report of each cell.
    pub reports_dir: Option<PathBuf>,
    /// Keep the images user 0 gets back on its first pass (`run --save-video`).
    pub keep_images: bool,
    /// Closed-loop users send the faces of their last replies as hints.
    pub smooth: Smoothing,
    pub show_progress: bool,
    /// Sent as `Authorization` on every request (`--token-file`).
    pub token: Option<Token>,
    /// The receiver of asynchronous targets' callbacks (when the plan has such a target).
    pub callbacks: Option<Arc<Callbacks>>,
    /// `--frames`, `--loop`, `--duration` as given (a ramp or a trace is cut only by them).
    pub limits: plan::Limits,
    /// The trace trace cells replay.
    pub trace: Option<arrivals::TraceReplay>,
}

/// What one cell's goose users share.
pub struct CellContext {
    pub run_id: String,
    pub url: Url,
    pub target: String,
    pub wire: Wire,
    pub timeout: Duration,
    pub workload: Arc<Workload>,
    pub load: Load,
    pub budget: Budget,
    pub share: Share,
    pub keep_images: bool,
    pub smooth: Smoothing,
    pub max_outstanding: u32,
    /// Open loop: this worker's arrivals (global number, offset from the cell's start).
    pub arrivals: Vec<(u64, Duration)>,
    pub next_arrival: AtomicUsize,
    pub open_start: OnceLock<(Instant, SystemTime)>,
    /// When the first user began: the cell's wall time (for throughput) counts from here, not
    /// from goose's own start-up.
    pub first_user: OnceLock<Instant>,
    pub token: Option<Token>,
    invocation: Invocation,
    /// Every row's `arrival` (the open-loop process; empty for closed loops).
    arrival: String,
    /// Asynchronous targets only: where their callbacks arrive.
    pub callbacks: Option<Arc<Callbacks>>,
    tx: mpsc::UnboundedSender<Outcome>,
}

impl CellContext {
    fn new(
        rig: &Rig,
        cell: &Cell,
        arrivals: Vec<(u64, Duration)>,
        tx: mpsc::UnboundedSender<Outcome>,
    ) -> Self {
        CellContext {
            run_id: rig.run_id.clone(),
            url: cell.target.url.clone(),
            target: cell.target.name.clone(),
            wire: rig.wire,
            timeout: rig.timeout,
            workload: Arc::clone(&rig.workload),
            load: cell.load,
            budget: rig.budget,
            share: rig.share,
            keep_images: rig.keep_images,
            smooth: rig.smooth,
            max_outstanding: rig.max_outstanding,
            arrivals,
            next_arrival: AtomicUsize::new(0),
            open_start: OnceLock::new(),
            first_user: OnceLock::new(),
            token: rig.token.clone(),
            invocation: cell.target.invocation,
            arrival: cell.load.process().map_or(String::new(), |p| p.to_string()),
            callbacks: match cell.target.invocation {
                Invocation::Sync => None,
                Invocation::Async => rig.callbacks.clone(),
            },
            tx,
        }
    }

    /// The row of a request before it is sent.
    pub fn row(&self, user_id: u32, frame: u64, iteration: u64) -> Row {
        Row {
            target: self.target.clone(),
            worker: self.share.index,
            rate_per_s: self.load.rate_per_s(),
            arrival: self.arrival.clone(),
            invocation: self.invocation,
            smooth: self.smooth.frames,
            ..Row::pending(
                &self.run_id,
                self.load.users(),
                self.load.think_s(),
                user_id,
                frame,
                iteration,
            )
        }
    }

    /// Hands a finished request to the writer; `false` once the cell is over.
    pub fn report(&self, outcome: Outcome) -> bool {
        self.tx.send(outcome).is_ok()
    }

    /// The cell's writer, for rows that come after their request finished (a duplicate
    /// callback).
    pub fn writer(&self) -> &mpsc::UnboundedSender<Outcome> {
        &self.tx
    }
}

/// How a cell ended.
#[derive(Debug)]
pub struct CellOutcome {
    pub summary: CellSummary,
    pub interrupted: bool,
    /// Threshold rules that failed, with what was observed.
    pub thresholds_failed: Vec<String>,
    pub instances: BTreeSet<String>,
    /// Asynchronous cells: the callbacks taken and refused during the cell.
    pub callbacks: Option<CallbackCounts>,
}

/// Runs one cell to its end (or Ctrl-C), writing every row to `sink` as it arrives. Returned
/// images (when kept) land in `images` by frame index.
pub async fn run_cell(
    rig: &Rig,
    cell: &Cell,
    sink: &mut CsvSink,
    images: &mut [Option<ReplyImage>],
) -> Result<CellOutcome, RigError> {
    let (arrivals, local_users, expected) = share_of(rig, cell);
    let mut collector = Collector {
        tally: CellTally::new(
            cell.load.users(),
            Duration::from_secs_f64(cell.load.think_s()),
        )
        .for_target(&cell.target.name, cell.load.open_label()),
        progress: Progress::new(rig.show_progress, &cell.label(), expected),
        sink,
        images,
        instances: BTreeSet::new(),
        started: Instant::now(),
        last_end: None,
        callbacks: match cell.target.invocation {
            Invocation::Sync => None,
            Invocation::Async => rig.callbacks.as_ref().map(|c| (Arc::clone(c), c.counts())),
        },
    };
    if local_users == 0 {
        // This worker has no share of the cell (fewer users than workers).
        return Ok(collector.finish(None, false, Vec::new()));
    }
    let (tx, rx) = mpsc::unbounded_channel::<Outcome>();
    let context = Arc::new(CellContext::new(rig, cell, arrivals, tx));
    let first_user = Arc::clone(&context);
    let attack = attack(rig, cell, local_users, context).map_err(|e| goose_error(cell, e))?;
    if !stagger(rig, cell).await {
        return Ok(collector.finish(None, true, Vec::new()));
    }
    let result = collector.collect(attack.execute(), rx).await?;
    let began = first_user.first_user.get().copied();
    drop(first_user);
    let thresholds_failed = match result {
        Ok(_) => Vec::new(),
        Err(goose::GooseError::ThresholdsFailed { failed, .. }) => failed
            .iter()
            .map(|r| format!("{} (observed {})", r.rule, r.observed))
            .collect(),
        Err(e) => return Err(goose_error(cell, e)),
    };
    Ok(collector.finish(began, goose::is_killswitch_triggered(), thresholds_failed))
}

/// This worker's part of a cell: its open-loop arrivals (global number, offset), how many goose
/// users it starts, and how many requests it expects (for the progress bar).
fn share_of(rig: &Rig, cell: &Cell) -> (Vec<(u64, Duration)>, usize, Option<u64>) {
    match cell.load {
        Load::Closed { users, .. } => {
            let n = rig.share.users(users).len();
            (Vec::new(), n, rig.budget.requests.map(|r| r * n as u64))
        }
        Load::Open { .. } => {
            let arrivals: Vec<(u64, Duration)> = schedule_of(rig, cell)
                .into_iter()
                .enumerate()
                .map(|(k, at)| (k as u64, at))
                .filter(|&(k, _)| rig.share.owns(k))
                .collect();
            let users = arrivals.len().min(rig.max_outstanding as usize);
            let expected = Some(arrivals.len() as u64);
            (arrivals, users, expected)
        }
    }
}

/// The whole schedule of an open-loop cell (every worker's arrivals), from the run's seed:
/// `--frames` arrivals (the video wraps around) and none after `--duration`; without either,
/// a ramp or a trace runs to its end, a Poisson or bursty cell to one pass over the video.
pub fn schedule_of(rig: &Rig, cell: &Cell) -> Vec<Duration> {
    let Load::Open {
        rate_per_s,
        process,
    } = cell.load
    else {
        return Vec::new();
    };
    let seed = rig.seed ^ plan::seed_from(&cell.key());
    let count = match (rig.limits.frames, rig.limits.duration) {
        (Some(n), _) => Some(n),
        (None, Some(_)) => None,
        (None, None) if process.ends() => None,
        (None, None) => rig.budget.requests,
    };
    arrivals::schedule(
        seed,
        rate_per_s,
        process,
        rig.trace.as_ref(),
        count,
        rig.budget.duration,
    )
}

/// Worker i of W starts its users i/r seconds in, at r/W: together they start as one process
/// would (user u at u/r). `false` on Ctrl-C during the wait.
async fn stagger(rig: &Rig, cell: &Cell) -> bool {
    let Load::Closed { users, .. } = cell.load else {
        return true;
    };
    let offset = f64::from(rig.share.index) / rig.ramp.users_per_s(users);
    offset <= 0.0 || exchange::pause(Duration::from_secs_f64(offset)).await
}

/// The single writer of a cell: every finished request becomes a row on disk, a count in the
/// tally and a tick of the progress bar, as it arrives.
struct Collector<'a> {
    sink: &'a mut CsvSink,
    tally: CellTally,
    progress: Progress,
    images: &'a mut [Option<ReplyImage>],
    instances: BTreeSet<String>,
    started: Instant,
    last_end: Option<Instant>,
    /// Asynchronous cells: the receiver, and its counts when the cell began.
    callbacks: Option<(Arc<Callbacks>, CallbackCounts)>,
}

impl Collector<'_> {
    /// Writes outcomes until the attack ends, then those still queued; the attack's result.
    async fn collect<F: std::future::Future>(
        &mut self,
        execution: F,
        mut rx: mpsc::UnboundedReceiver<Outcome>,
    ) -> Result<F::Output, RecordError> {
        tokio::pin!(execution);
        let result = loop {
            tokio::select! {
                Some(outcome) = rx.recv() => self.write(outcome)?,
                result = &mut execution => break result,
            }
        };
        while let Ok(outcome) = rx.try_recv() {
            self.write(outcome)?;
        }
        Ok(result)
    }

    fn write(&mut self, outcome: Outcome) -> Result<(), RecordError> {
        self.last_end = Some(Instant::now());
        self.sink.write(&outcome.row)?;
        self.tally.add(&outcome.row);
        self.progress
            .record(&outcome.row, self.tally.ok(), self.tally.failed());
        if !outcome.row.instance.is_empty() {
            self.instances.insert(outcome.row.instance.clone());
        }
        let frame = usize::try_from(outcome.row.frame).ok();
        if let Some(image) = outcome.image
            && let Some(slot) = frame.and_then(|i| self.images.get_mut(i))
        {
            *slot = Some(image);
        }
        Ok(())
    }

    /// The cell's outcome. Its wall time (for throughput) runs from the first user's start
    /// (`began`), not goose's own start-up, to the last answer.
    fn finish(
        self,
        began: Option<Instant>,
        interrupted: bool,
        thresholds_failed: Vec<String>,
    ) -> CellOutcome {
        self.progress.finish();
        let wall = match began {
            Some(began) => self
                .last_end
                .unwrap_or(self.started)
                .saturating_duration_since(began),
            None => self.started.elapsed(),
        };
        CellOutcome {
            summary: self.tally.finish(wall),
            interrupted,
            thresholds_failed,
            instances: self.instances,
            callbacks: self
                .callbacks
                .map(|(callbacks, before)| callbacks.counts().since(before)),
        }
    }
}

/// The cell as a goose attack: one scenario whose single transaction is a whole user (a pass
/// over the video, or taking open-loop arrivals), run once by each user.
fn attack(
    rig: &Rig,
    cell: &Cell,
    local_users: usize,
    context: Arc<CellContext>,
) -> Result<GooseAttack, goose::GooseError> {
    let mut config = goose::config::GooseConfiguration::default();
    config.host = Some(cell.target.url.origin().ascii_serialization());
    config.users = Some(local_users);
    config.increase_rate = Some(match cell.load {
        Load::Closed { users, .. } => {
            format!(
                "{}",
                rig.ramp.users_per_s(users) / f64::from(rig.share.workers)
            )
        }
        Load::Open { .. } => format!("{ALL_AT_ONCE}"),
    });
    config.iterations = Some(1);
    config.quiet = 1;
    config.no_print_metrics = true;
    config.no_error_summary = true;
    config.no_telnet = true;
    if let Some(dir) = &rig.reports_dir {
        config.report_file = ["html", "json", "md"]
            .iter()
            .map(|ext| {
                dir.join(format!("{}.{ext}", cell.key()))
                    .display()
                    .to_string()
            })
            .collect();
    }
    if !rig.thresholds.is_empty() {
        config.threshold = rig.thresholds.iter().map(|r| judged_rule(r)).collect();
        // Judge at the end: a cell's dataset is complete even when it misses a goal.
        config.no_threshold_abort = true;
    }
    let user: TransactionFunction = Arc::new(move |user| {
        let context = Arc::clone(&context);
        Box::pin(async move {
            match context.load {
                Load::Closed { .. } => users::video_user(user, &context).await,
                Load::Open { .. } => users::arrival_taker(user, &context).await,
            }
            Ok(())
        })
    });
    let scenario = scenario!("video").register_transaction(Transaction::new(user).set_name("user"));
    Ok(GooseAttack::initialize_with_config(config)?.register_scenario(scenario))
}

/// A rule without ` for REQUEST` judges the round trip (goose would mix in the server times).
pub fn judged_rule(rule: &str) -> String {
    if rule.contains(" for ") {
        rule.to_string()
    } else {
        format!("{rule} for rtt {}", exchange::REQUEST_NAME)
    }
}

fn goose_error(cell: &Cell, source: goose::GooseError) -> RigError {
    RigError::Goose {
        cell: cell.label(),
        source,
    }
}
