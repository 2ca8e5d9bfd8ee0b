//! `load` and `sweep` end to end: check the options, plan the cells, prepare the frames, run
//! the cells one after another into the run folder (waiting for each cell's time slot in a
//! distributed run), and print the summary table and the JSON line.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::cli::SweepArgs;
use crate::record::{self, CsvSink};
use crate::summary::{RunSummary, table};
use crate::token::Token;

use super::exchange::pause;
use super::plan::{self, Budget, Cell, Load, Share};
use super::rundir::{CellRecord, RunDir, RunManifest, TargetRecord};
use super::{Ramp, Rig, run_cell};
use crate::app::{AppError, Finish, format_name, prepare_workload};

/// Slack added to a derived time slot, for starting and stopping a cell.
const SLOT_MARGIN: Duration = Duration::from_secs(5);

/// Which command is running: `load` allows one load point, `sweep` a grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Load,
    Sweep,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Load => "load",
            Mode::Sweep => "sweep",
        }
    }
}

/// The load points the options ask for, with each command's defaults.
pub fn loads(args: &SweepArgs, mode: Mode) -> Result<Vec<Load>, AppError> {
    let loads = if let Some(rates) = &args.rates {
        rates
            .0
            .iter()
            .map(|&rate_per_s| Load::Open { rate_per_s })
            .collect()
    } else {
        let (default_users, default_think): (&[u32], &[Duration]) = match mode {
            Mode::Load => (&[1], &[Duration::ZERO]),
            Mode::Sweep => (
                &[1, 2, 4],
                &[
                    Duration::ZERO,
                    Duration::from_secs(1),
                    Duration::from_secs(5),
                ],
            ),
        };
        let users = args.users.as_ref().map_or(default_users, |u| &u.0);
        let think = args.think.as_ref().map_or(default_think, |t| &t.0);
        plan::closed_loads(users, think)
    };
    if mode == Mode::Load && loads.len() != 1 {
        return Err(AppError::Usage(format!(
            "load runs one cell, but the options ask for {} (users × think or rates); use sweep",
            loads.len()
        )));
    }
    Ok(loads)
}

/// `load` and `sweep`.
pub async fn run(args: &SweepArgs, mode: Mode) -> Result<Finish, AppError> {
    let load = &args.load;
    let loads = loads(args, mode)?;
    let targets = load.target_list();
    let cells = plan::cells(&targets, &loads);
    if load.timeout.is_zero() {
        return Err(AppError::Usage("--timeout must be more than 0".into()));
    }
    let token = Token::from_option(load.token_file.as_deref())?;
    if args.worker_index >= args.workers {
        return Err(AppError::Usage(format!(
            "--worker-index {} is not below --workers {}",
            args.worker_index, args.workers
        )));
    }
    if load.looping && load.frames.is_none() && load.duration.is_none() {
        return Err(AppError::Usage(format!(
            "{} --loop needs --frames or --duration, so that each cell ends",
            mode.name()
        )));
    }
    let ramp = match (args.ramp_up, args.ramp_rate) {
        (Some(period), _) => Ramp::Over(period),
        (None, Some(rate)) => Ramp::Rate(rate),
        (None, None) => Ramp::DEFAULT,
    };
    let slot = time_slot(args, ramp, &loads, cells.len())?;
    let share = Share {
        index: args.worker_index,
        workers: args.workers,
    };

    // The id a new run gets (a resumed one keeps its own); the default folder is named by it.
    let fresh_id = match (&args.run_id, args.start_at) {
        (Some(id), _) => id.clone(),
        (None, Some(start)) => format!("run-{}", compact_time(start)),
        (None, None) => record::new_run_id(),
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("results").join(&fresh_id));
    let dir = RunDir::create(&out)?;
    let existing = dir.load_manifest()?;
    if existing.is_some() && !args.resume {
        return Err(AppError::Usage(format!(
            "{} already holds a run; add --resume to continue it, or choose another --out",
            dir.path.display()
        )));
    }
    record::check_header(&dir.results())?;
    let run_id = existing.as_ref().map_or(fresh_id, |m| m.run_id.clone());
    let workload = Arc::new(prepare_workload(load).await?);
    let budget = Budget::new(workload.frames(), load.frames, load.looping, load.duration);
    let seed = args.seed.unwrap_or_else(|| plan::seed_from(&run_id));
    let mut manifest = RunManifest {
        run_id: run_id.clone(),
        tool: "slblur-client".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        command: mode.name().into(),
        created_at: record::timestamp(SystemTime::now()),
        targets: targets
            .iter()
            .map(|t| TargetRecord {
                name: t.name.clone(),
                url: t.url.to_string(),
            })
            .collect(),
        wire: load.wire.name().into(),
        format: format_name(workload.format).into(),
        video: load.video.display().to_string(),
        video_frames: workload.frames(),
        budget,
        timeout_s: load.timeout.as_secs_f64(),
        loads: loads.clone(),
        ramp: match ramp {
            Ramp::Rate(r) => format!("{r} users/s"),
            Ramp::Over(d) => format!("over {}", humantime::format_duration(d)),
        },
        max_outstanding: args.max_outstanding,
        seed,
        thresholds: args.thresholds.clone(),
        share,
        start_at: args.start_at.map(record::timestamp),
        slot_s: slot.map(|s| s.as_secs_f64()),
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        cells: Vec::new(),
        interrupted: false,
        token: token.is_some(),
    };
    if let Some(previous) = existing {
        previous.same_plan(&manifest).map_err(|why| {
            AppError::Usage(format!(
                "cannot resume {}: {why} from this command's",
                dir.path.display()
            ))
        })?;
        let moved = dir.set_aside_unfinished(&previous)?;
        if moved > 0 {
            eprintln!(
                "resume: {moved} rows of unfinished cells moved to {}",
                dir.path.join(super::rundir::INTERRUPTED).display()
            );
        }
        manifest.cells = previous.cells.into_iter().filter(|c| c.complete).collect();
        manifest.created_at = previous.created_at;
    }
    dir.save(&manifest)?;

    let rig = Rig {
        run_id,
        wire: load.wire,
        timeout: load.timeout,
        workload,
        budget,
        share,
        ramp,
        max_outstanding: args.max_outstanding,
        seed,
        thresholds: args.thresholds.clone(),
        reports_dir: Some(dir.reports()),
        keep_images: false,
        show_progress: !load.no_progress,
        token,
    };
    let mut sink = CsvSink::open(&dir.results())?;
    eprintln!(
        "{} {}: {} cell{} -> {}{}",
        mode.name(),
        rig.run_id,
        cells.len(),
        if cells.len() == 1 { "" } else { "s" },
        dir.path.display(),
        if share.workers > 1 {
            format!(" (worker {} of {})", share.index, share.workers)
        } else {
            String::new()
        }
    );
    let mut finish = Finish::Completed;
    for cell in &cells {
        if manifest.complete(&cell.key()) {
            eprintln!(
                "[{}/{}] {}: complete, skipped",
                cell.index + 1,
                cells.len(),
                cell.label()
            );
            continue;
        }
        if !wait_for_slot(args.start_at, slot, cell).await {
            finish = Finish::Interrupted;
            break;
        }
        eprintln!("[{}/{}] {}", cell.index + 1, cells.len(), cell.label());
        let outcome = run_cell(&rig, cell, &mut sink, &mut []).await?;
        for failed in &outcome.thresholds_failed {
            eprintln!("threshold failed in {}: {failed}", cell.label());
        }
        let wall_s = outcome.summary.wall_s;
        manifest.record(CellRecord {
            key: cell.key(),
            index: cell.index,
            target: cell.target.name.clone(),
            load: cell.load,
            complete: !outcome.interrupted,
            summary: outcome.summary,
            instances: outcome.instances,
            thresholds_failed: outcome.thresholds_failed,
        });
        manifest.interrupted = outcome.interrupted;
        dir.save(&manifest)?;
        if outcome.interrupted {
            eprintln!(
                "interrupted: every finished request is in {}; continue with --resume --out {}",
                dir.results().display(),
                dir.path.display()
            );
            finish = Finish::Interrupted;
            break;
        }
        if let Some(slot) = slot
            && wall_s > slot.as_secs_f64()
        {
            eprintln!(
                "warning: cell {} took {wall_s:.1} s, longer than its {:.1} s slot: later cells no longer start together on every worker",
                cell.label(),
                slot.as_secs_f64()
            );
        }
    }
    let failed_rules = manifest
        .cells
        .iter()
        .map(|c| c.thresholds_failed.len())
        .sum::<usize>();
    if finish == Finish::Completed && failed_rules > 0 {
        finish = Finish::ThresholdsFailed;
    }
    let summaries: Vec<_> = manifest.cells.iter().map(|c| c.summary.clone()).collect();
    print!("{}", table(&summaries));
    let instances = manifest.instances_seen();
    if !instances.is_empty() {
        eprintln!(
            "instances that answered: {}",
            instances.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    if summaries.iter().all(|c| c.ok == 0) {
        eprintln!(
            "warning: no request succeeded; are the targets up? (see the error column of {})",
            dir.results().display()
        );
    }
    if finish == Finish::ThresholdsFailed {
        eprintln!("{failed_rules} threshold rule(s) failed: exit status 3");
    }
    eprintln!(
        "{} rows appended to {}; goose reports in {}",
        sink.rows(),
        dir.results().display(),
        dir.reports().display()
    );
    let summary = RunSummary {
        run_id: manifest.run_id.clone(),
        url: targets
            .iter()
            .map(|t| t.url.to_string())
            .collect::<Vec<_>>()
            .join(" "),
        wire: load.wire.name().into(),
        video: load.video.display().to_string(),
        csv: dir.results().display().to_string(),
        interrupted: finish == Finish::Interrupted,
        cells: summaries,
    };
    println!("{}", summary.json_line());
    Ok(finish)
}

/// The wall time reserved per cell when cells must start at fixed times (a start time with
/// several cells): `--slot`, or derived from `--duration`.
fn time_slot(
    args: &SweepArgs,
    ramp: Ramp,
    loads: &[Load],
    cells: usize,
) -> Result<Option<Duration>, AppError> {
    if args.start_at.is_none() || cells <= 1 {
        return Ok(args.slot);
    }
    if let Some(slot) = args.slot {
        return Ok(Some(slot));
    }
    let Some(duration) = args.load.duration else {
        return Err(AppError::Usage(
            "with --start-at and several cells, give --slot (the wall time reserved per cell) or --duration, \
             so that every worker starts each cell at the same time"
                .into(),
        ));
    };
    let most_users = loads.iter().map(|l| l.users()).max().unwrap_or(1);
    let ramp_time = match ramp {
        Ramp::Over(d) => d,
        Ramp::Rate(r) => Duration::from_secs_f64(f64::from(most_users.saturating_sub(1)) / r),
    };
    Ok(Some(ramp_time + duration + args.load.timeout + SLOT_MARGIN))
}

/// Waits until the cell's slot opens; `false` on Ctrl-C.
async fn wait_for_slot(start: Option<SystemTime>, slot: Option<Duration>, cell: &Cell) -> bool {
    let Some(at) = plan::slot_start(start, slot, cell.index) else {
        return true;
    };
    match at.duration_since(SystemTime::now()) {
        Ok(wait) => {
            eprintln!(
                "waiting {:.1} s for the slot of {}",
                wait.as_secs_f64(),
                cell.label()
            );
            pause(wait).await
        }
        Err(_) => true,
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
