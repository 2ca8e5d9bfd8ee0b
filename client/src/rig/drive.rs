//! One driver for `run`, `load` and `sweep`: open the plan's output (a CSV file, or a run
//! folder, new or resumed), prepare the frames, run the cells one after another (each in its
//! time slot in a distributed run), and say how it went: the table, the warnings and the JSON
//! line last on stdout.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::record::{self, CsvSink};
use crate::summary::{RunSummary, table};
use crate::token::Token;
use crate::video::DecodeOptions;
use crate::wire::ReplyImage;
use crate::workload::Workload;

use super::callback::{self, Receiver};
use super::exchange::pause;
use super::plan::{self, Budget, CallbackSpec, Cell, Output, Plan};
use super::rundir::{self, CellRecord, RunDir, RunManifest, TargetRecord};
use super::{Rig, RigError, arrivals, run_cell};

/// How a run ended, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Completed,
    /// Ctrl-C: every finished row is kept.
    Interrupted,
    /// Every cell ran, but a `--threshold` rule failed.
    ThresholdsFailed,
    /// `leaks` found a face left unmasked.
    LeaksFound,
}

/// A plan that has run: what the command prints, and what `run --save-video` needs.
#[derive(Debug)]
pub struct Driven {
    pub finish: Finish,
    pub manifest: RunManifest,
    pub workload: Arc<Workload>,
    /// The returned images by frame (with [`Plan::keep_images`]).
    pub images: Vec<Option<ReplyImage>>,
    /// The CSV the rows went to, and goose's reports folder (run folders only).
    pub results: PathBuf,
    pub reports: Option<PathBuf>,
    pub rows: u64,
}

/// Runs every cell of the plan that is not complete yet.
pub async fn drive(plan: &Plan) -> Result<Driven, RigError> {
    let token = Token::from_option(plan.token_file.as_deref())?;
    let (dir, previous, run_id) = open_output(plan)?;
    let results = match &dir {
        Some(dir) => dir.results(),
        None => plan.output.path().to_path_buf(),
    };
    // Refuse a foreign results file before spending time on the video.
    record::check_header(&results)?;
    let workload = Arc::new(prepare_workload(plan).await?);
    let receiver = match &plan.callback {
        Some(spec) => Some(start_receiver(spec, &workload).await?),
        None => None,
    };
    let mut manifest = manifest(plan, &run_id, &workload, token.is_some());
    if let (Some(dir), Some(previous)) = (&dir, previous) {
        resume(dir, previous, &mut manifest)?;
    }
    if let Some(dir) = &dir {
        dir.save(&manifest)?;
    }
    let rig = Rig {
        run_id,
        wire: plan.frames.wire,
        timeout: plan.timeout,
        workload: Arc::clone(&workload),
        budget: manifest.budget,
        share: plan.share,
        ramp: plan.ramp,
        max_outstanding: plan.max_outstanding,
        seed: manifest.seed,
        thresholds: plan.thresholds.clone(),
        reports_dir: dir.as_ref().map(RunDir::reports),
        keep_images: plan.keep_images,
        smooth: plan.smooth,
        show_progress: plan.show_progress,
        token,
        callbacks: receiver.as_ref().map(|r| Arc::clone(&r.callbacks)),
        limits: plan.limits,
        trace: plan.trace.clone(),
    };
    check_schedules(&rig, &plan.cells())?;
    let mut sink = CsvSink::open(&results)?;
    let cells = plan.cells();
    announce(plan, &rig.run_id, cells.len());
    let mut images = vec![
        None;
        if plan.keep_images {
            workload.bodies.len()
        } else {
            0
        }
    ];
    let mut run = Cells {
        rig: &rig,
        sink: &mut sink,
        images: &mut images,
        dir: dir.as_ref(),
        manifest: &mut manifest,
    };
    let mut finish = run.all(plan, &cells).await?;
    if finish == Finish::Completed
        && manifest
            .cells
            .iter()
            .any(|c| !c.thresholds_failed.is_empty())
    {
        finish = Finish::ThresholdsFailed;
    }
    Ok(Driven {
        finish,
        manifest,
        workload,
        images,
        results,
        reports: dir.as_ref().map(RunDir::reports),
        rows: sink.rows(),
    })
}

/// Refuses, before any request, open-loop cells whose schedule is empty or busier than the
/// rig drives on this machine.
fn check_schedules(rig: &Rig, cells: &[Cell]) -> Result<(), RigError> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let most = arrivals::MAX_RATE_PER_CORE * cores as f64;
    for cell in cells.iter().filter(|c| c.load.process().is_some()) {
        let schedule = super::schedule_of(rig, cell);
        let unrunnable = |why: String| RigError::Unrunnable {
            cell: cell.label(),
            why,
        };
        if schedule.is_empty() {
            return Err(unrunnable("its schedule has no arrivals".into()));
        }
        if schedule.len() >= arrivals::MAX_ARRIVALS {
            return Err(unrunnable(format!(
                "its schedule reaches the limit of {} arrivals: cut it with --frames, --duration or --trace-minutes",
                arrivals::MAX_ARRIVALS
            )));
        }
        let (peak, at) = arrivals::busiest_second(&schedule);
        if peak as f64 > most {
            return Err(unrunnable(format!(
                "its schedule sends {peak} requests in the second from {:.1} s, more than the {most:.0}/s this {cores}-core machine drives ({:.0} per core); lower the rate or --trace-scale, or spread the load over --workers",
                at.as_secs_f64(),
                arrivals::MAX_RATE_PER_CORE
            )));
        }
    }
    Ok(())
}

/// Starts the callback receiver, and warns when frames are too large for the platform's queue.
async fn start_receiver(spec: &CallbackSpec, workload: &Workload) -> Result<Receiver, RigError> {
    let receiver = Receiver::start(spec.listen, spec.url.clone()).await?;
    eprintln!(
        "callbacks: listening on {}, posted to {}",
        receiver.local_addr,
        receiver.callbacks.url_for("ID")
    );
    let largest = workload
        .bodies
        .iter()
        .map(|b| b.bytes.len())
        .max()
        .unwrap_or(0);
    let queued = callback::queued_bytes(largest);
    if queued > callback::QUEUE_MESSAGE_LIMIT {
        eprintln!(
            "warning: the largest frame is {} KB, about {} KB once queued: OpenFaaS's queue (NATS) takes about {} KB per message by default, so asynchronous calls of it will fail; shrink the frames with --format jpeg, a lower --quality or --width",
            largest / 1024,
            queued / 1024,
            callback::QUEUE_MESSAGE_LIMIT / 1024
        );
    }
    Ok(receiver)
}

/// The run folder (if the plan has one), the manifest of the run it already holds (only when
/// resuming), and the run id: a resumed run keeps its own.
fn open_output(plan: &Plan) -> Result<(Option<RunDir>, Option<RunManifest>, String), RigError> {
    let Output::RunDir {
        path,
        resume,
        run_id,
    } = &plan.output
    else {
        return Ok((None, None, record::new_run_id()));
    };
    let dir = RunDir::create(path)?;
    let previous = dir.load_manifest()?;
    if previous.is_some() && !resume {
        return Err(RigError::Occupied(dir.path.clone()));
    }
    let run_id = previous
        .as_ref()
        .map_or(run_id.clone(), |m| m.run_id.clone());
    Ok((Some(dir), previous, run_id))
}

/// Decodes the video and encodes its frames for the wire, off the async threads.
pub async fn prepare_workload(plan: &Plan) -> Result<Workload, RigError> {
    let source = plan.frames.clone();
    let opts = DecodeOptions {
        width: source.width,
        max_frames: plan.limits.frames,
    };
    let prepared = Instant::now();
    let workload = tokio::task::spawn_blocking(move || {
        Workload::prepare(
            &source.video,
            opts,
            source.wire,
            source.format,
            source.quality,
        )
    })
    .await
    .map_err(|_| RigError::Panicked("frame preparation"))??;
    let info = &workload.info;
    eprintln!(
        "video {}: {}x{} at {:.2} fps, {} frames{} -> {} {} bodies of ~{} KB ({:.1} s)",
        info.path.display(),
        info.width,
        info.height,
        info.fps(),
        info.frames,
        if info.has_audio { ", with audio" } else { "" },
        plan.frames.wire.name(),
        plan.frames.format.name().to_uppercase(),
        workload.mean_body_bytes() / 1024,
        prepared.elapsed().as_secs_f64()
    );
    let limits = plan.limits;
    if let Some(n) = limits
        .frames
        .filter(|&n| !limits.looping && n > info.frames)
    {
        eprintln!(
            "note: --frames {n} but the video has {} frames; sending {} (add --loop to repeat)",
            info.frames, info.frames
        );
    }
    Ok(workload)
}

/// run.json for this plan, before any cell ran.
fn manifest(plan: &Plan, run_id: &str, workload: &Workload, token: bool) -> RunManifest {
    let limits = plan.limits;
    RunManifest {
        run_id: run_id.to_string(),
        tool: "slblur-client".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        command: plan.command.into(),
        created_at: record::timestamp(SystemTime::now()),
        targets: plan
            .targets
            .iter()
            .map(|t| TargetRecord {
                name: t.name.clone(),
                url: t.url.to_string(),
                invocation: t.invocation,
            })
            .collect(),
        wire: plan.frames.wire.name().into(),
        format: plan.frames.format.name().to_uppercase(),
        video: plan.frames.video.display().to_string(),
        video_frames: workload.frames(),
        budget: Budget::new(
            workload.frames(),
            limits.frames,
            limits.looping,
            limits.duration,
        ),
        timeout_s: plan.timeout.as_secs_f64(),
        smooth: plan.smooth,
        trace: plan.trace.clone(),
        loads: plan.loads.clone(),
        ramp: plan.ramp.describe(),
        max_outstanding: plan.max_outstanding,
        seed: plan.seed.unwrap_or_else(|| plan::seed_from(run_id)),
        thresholds: plan.thresholds.clone(),
        share: plan.share,
        start_at: plan.start_at.map(record::timestamp),
        slot_s: plan.slot.map(|s| s.as_secs_f64()),
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        cells: Vec::new(),
        interrupted: false,
        token,
    }
}

/// Continues `previous` in `dir`: the plans must match; complete cells are kept and the rows
/// of unfinished ones are set aside (kept, not lost) to run again.
fn resume(dir: &RunDir, previous: RunManifest, manifest: &mut RunManifest) -> Result<(), RigError> {
    previous
        .same_plan(manifest)
        .map_err(|why| RigError::NotResumable {
            path: dir.path.clone(),
            why,
        })?;
    let moved = dir.set_aside_unfinished(&previous)?;
    if moved > 0 {
        eprintln!(
            "resume: {moved} rows of unfinished cells moved to {}",
            dir.path.join(rundir::INTERRUPTED).display()
        );
    }
    manifest.cells = previous.cells.into_iter().filter(|c| c.complete).collect();
    manifest.created_at = previous.created_at;
    Ok(())
}

fn announce(plan: &Plan, run_id: &str, cells: usize) {
    let destination = plan.output.path().display();
    let urls: Vec<String> = plan.targets.iter().map(|t| t.url.to_string()).collect();
    let share = plan.share;
    eprintln!(
        "{} {run_id}: {cells} cell{} of {} -> {destination}{}",
        plan.command,
        if cells == 1 { "" } else { "s" },
        urls.join(" "),
        if share.workers > 1 {
            format!(" (worker {} of {})", share.index, share.workers)
        } else {
            String::new()
        }
    );
}

/// The cells of one run and where their outcomes go.
struct Cells<'a> {
    rig: &'a Rig,
    sink: &'a mut CsvSink,
    images: &'a mut [Option<ReplyImage>],
    dir: Option<&'a RunDir>,
    manifest: &'a mut RunManifest,
}

impl Cells<'_> {
    /// Runs the cells in order, skipping complete ones; stops at Ctrl-C.
    async fn all(&mut self, plan: &Plan, cells: &[Cell]) -> Result<Finish, RigError> {
        for cell in cells {
            let position = format!("[{}/{}] {}", cell.index + 1, cells.len(), cell.label());
            if self.manifest.complete(&cell.key()) {
                eprintln!("{position}: complete, skipped");
                continue;
            }
            if !wait_for_slot(plan, cell).await {
                return Ok(Finish::Interrupted);
            }
            if self.dir.is_some() {
                eprintln!("{position}");
            }
            if !self.one(plan, cell).await? {
                return Ok(Finish::Interrupted);
            }
        }
        Ok(Finish::Completed)
    }

    /// Runs one cell and records it; `false` when Ctrl-C ended it.
    async fn one(&mut self, plan: &Plan, cell: &Cell) -> Result<bool, RigError> {
        let outcome = run_cell(self.rig, cell, self.sink, self.images).await?;
        for failed in &outcome.thresholds_failed {
            eprintln!("threshold failed in {}: {failed}", cell.label());
        }
        if let Some(c) = outcome.callbacks.filter(|c| c.refused() > 0) {
            eprintln!(
                "callbacks in {}: {} matched; refused {} duplicate, {} late, {} unknown, {} oversized, {} malformed",
                cell.label(),
                c.matched,
                c.duplicate,
                c.late,
                c.unknown,
                c.oversized,
                c.malformed
            );
        }
        let wall_s = outcome.summary.wall_s;
        self.manifest.interrupted = outcome.interrupted;
        self.manifest.record(CellRecord {
            key: cell.key(),
            index: cell.index,
            target: cell.target.name.clone(),
            load: cell.load,
            complete: !outcome.interrupted,
            summary: outcome.summary,
            instances: outcome.instances,
            thresholds_failed: outcome.thresholds_failed,
            callbacks: outcome.callbacks,
        });
        if let Some(dir) = self.dir {
            dir.save(self.manifest)?;
        }
        if self.manifest.interrupted {
            let resume = self.dir.map_or(String::new(), |d| {
                format!("; continue with --resume --out {}", d.path.display())
            });
            eprintln!(
                "interrupted: every finished request is in {}{resume}",
                self.sink.path().display()
            );
            return Ok(false);
        }
        if let Some(slot) = plan.slot
            && wall_s > slot.as_secs_f64()
        {
            eprintln!(
                "warning: cell {} took {wall_s:.1} s, longer than its {:.1} s slot: later cells no longer start together on every worker",
                cell.label(),
                slot.as_secs_f64()
            );
        }
        Ok(true)
    }
}

/// Waits until the cell's slot opens; `false` on Ctrl-C.
async fn wait_for_slot(plan: &Plan, cell: &Cell) -> bool {
    let Some(at) = plan::slot_start(plan.start_at, plan.slot, cell.index) else {
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

impl Driven {
    /// Prints the end of a run: the table on stdout, the instances and warnings on stderr, and
    /// the JSON line last on stdout (JMeter's OS Process Sampler reads it); returns that line.
    pub fn conclude(&self) -> String {
        let summaries: Vec<_> = self
            .manifest
            .cells
            .iter()
            .map(|c| c.summary.clone())
            .collect();
        print!("{}", table(&summaries));
        let instances = self.manifest.instances_seen();
        if !instances.is_empty() {
            eprintln!(
                "instances that answered: {}",
                instances.into_iter().collect::<Vec<_>>().join(", ")
            );
        }
        if summaries.iter().all(|c| c.ok == 0) {
            eprintln!(
                "warning: no request succeeded; is the function running at {}? (see the error column of {})",
                self.manifest
                    .targets
                    .iter()
                    .map(|t| t.url.as_str())
                    .collect::<Vec<_>>()
                    .join(" and "),
                self.results.display()
            );
        }
        if self.finish == Finish::ThresholdsFailed {
            let failed: usize = self
                .manifest
                .cells
                .iter()
                .map(|c| c.thresholds_failed.len())
                .sum();
            eprintln!("{failed} threshold rule(s) failed: exit status 3");
        }
        eprintln!(
            "{} rows appended to {}{}",
            self.rows,
            self.results.display(),
            self.reports.as_ref().map_or(String::new(), |r| format!(
                "; goose reports in {}",
                r.display()
            ))
        );
        let json = RunSummary {
            run_id: self.manifest.run_id.clone(),
            url: self
                .manifest
                .targets
                .iter()
                .map(|t| t.url.clone())
                .collect::<Vec<_>>()
                .join(" "),
            wire: self.manifest.wire.clone(),
            video: self.manifest.video.clone(),
            csv: self.results.display().to_string(),
            interrupted: self.finish == Finish::Interrupted,
            cells: summaries,
        }
        .json_line();
        println!("{json}");
        json
    }
}
