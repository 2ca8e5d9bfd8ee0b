//! The subcommands end to end: check options, prepare the frames, run the cells, save the
//! video and print the summary (table, then the JSON line last on stdout). `load` and `sweep`
//! live in [`crate::rig::sweep`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use slblur_protocol::ImageKind;

use crate::cli::{FramesArgs, LoadArgs, MergeArgs, RunArgs};
use crate::record::{self, CsvSink, RecordError};
use crate::rig::plan::{Budget, Cell, Load, Share};
use crate::rig::rundir::RunDirError;
use crate::rig::{self, Ramp, Rig, RigError, run_cell};
use crate::savevideo::VideoWriter;
use crate::summary::{RunSummary, table};
use crate::token::{Token, TokenError};
use crate::video::{self, DecodeOptions, VideoError};
use crate::wire::{self, ReplyImage};
use crate::workload::Workload;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Video(#[from] VideoError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Rig(#[from] RigError),
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("cannot create frame folder '{path}': {reason}")]
    FrameFile {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error("cannot write summary '{path}': {reason}")]
    Summary {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
}

/// How a run or sweep ended, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Completed,
    /// Ctrl-C: every finished row is kept.
    Interrupted,
    /// Every cell ran, but a `--threshold` rule failed.
    ThresholdsFailed,
}

/// `frames`: decode and write numbered image files; prints what was found.
pub fn frames(args: &FramesArgs) -> Result<(), AppError> {
    std::fs::create_dir_all(&args.out_dir).map_err(|reason| AppError::FrameFile {
        path: args.out_dir.clone(),
        reason,
    })?;
    let ext = args.format.extension();
    let started = Instant::now();
    let opts = DecodeOptions {
        width: args.width,
        max_frames: args.frames,
    };
    let info = video::for_each_frame_parallel(&args.video, opts, |index, frame| {
        let bytes = wire::encode_image(&frame, args.format, args.quality)
            .map_err(|e| VideoError::Frame(e.to_string()))?;
        let path = args.out_dir.join(format!("frame_{index:06}.{ext}"));
        std::fs::write(&path, bytes)
            .map_err(|e| VideoError::Frame(format!("cannot write '{}': {e}", path.display())))
    })?;
    println!("video:  {}", info.path.display());
    println!("frames: {}", info.frames);
    println!(
        "fps:    {:.3} ({}/{})",
        info.fps(),
        info.fps_num,
        info.fps_den
    );
    println!(
        "size:   {}x{} (source {}x{}, {})",
        info.width, info.height, info.source_width, info.source_height, info.codec
    );
    println!("audio:  {}", if info.has_audio { "yes" } else { "no" });
    println!(
        "wrote {} {ext} files to {} in {:.1} s",
        info.frames,
        args.out_dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `run`: one user over the video (a one-user goose cell); optionally saves the blurred video.
pub async fn run(args: &RunArgs) -> Result<Finish, AppError> {
    let load = &args.load;
    if load.timeout.is_zero() {
        return Err(AppError::Usage("--timeout must be more than 0".into()));
    }
    let token = Token::from_option(load.token_file.as_deref())?;
    let targets = load.target_list();
    let [target] = targets.as_slice() else {
        return Err(AppError::Usage(
            "run loads one target: give one --target (or --url); use sweep to compare".into(),
        ));
    };
    // Refuse a foreign results file before spending time on the video.
    record::check_header(&args.out)?;
    let workload = Arc::new(prepare_workload(load).await?);
    let frames = workload.frames();
    let rig = Rig {
        run_id: record::new_run_id(),
        wire: load.wire,
        timeout: load.timeout,
        budget: Budget::new(frames, load.frames, load.looping, load.duration),
        workload: Arc::clone(&workload),
        share: Share::WHOLE,
        ramp: Ramp::Over(Duration::ZERO),
        max_outstanding: 1,
        seed: 0,
        thresholds: Vec::new(),
        reports_dir: None,
        keep_images: args.save_video.is_some(),
        show_progress: !load.no_progress,
        token,
    };
    let cell = Cell {
        index: 0,
        target: target.clone(),
        load: Load::Closed {
            users: 1,
            think_s: args.think.as_secs_f64(),
        },
    };
    let mut sink = CsvSink::open(&args.out)?;
    eprintln!("run {} -> {}", rig.run_id, target.url);
    let mut images: Vec<Option<ReplyImage>> = vec![
        None;
        if args.save_video.is_some() {
            frames as usize
        } else {
            0
        }
    ];
    let outcome = run_cell(&rig, &cell, &mut sink, &mut images).await?;
    let finish = if outcome.interrupted {
        eprintln!(
            "interrupted: every finished request is in {}",
            args.out.display()
        );
        Finish::Interrupted
    } else {
        Finish::Completed
    };
    if let Some(path) = &args.save_video {
        let (path, workload) = (path.clone(), Arc::clone(&workload));
        tokio::task::spawn_blocking(move || write_video(&path, &workload, &images))
            .await
            .map_err(|e| VideoError::Frame(format!("saving the video failed: {e}")))??;
    }
    let summary = RunSummary {
        run_id: rig.run_id.clone(),
        url: target.url.to_string(),
        wire: load.wire.name().into(),
        video: load.video.display().to_string(),
        csv: args.out.display().to_string(),
        interrupted: finish == Finish::Interrupted,
        cells: vec![outcome.summary],
    };
    if summary.cells.iter().all(|c| c.ok == 0) {
        eprintln!(
            "warning: no request succeeded; is the function running at {}? (see the error column of {})",
            target.url,
            args.out.display()
        );
    }
    print!("{}", table(&summary.cells));
    eprintln!("{} rows appended to {}", sink.rows(), sink.path().display());
    let json = summary.json_line();
    if let Some(path) = &args.summary_json {
        write_summary(path, &json)?;
    }
    println!("{json}");
    Ok(finish)
}

/// `merge`: worker folders into one run folder.
pub fn merge(args: &MergeArgs) -> Result<(), AppError> {
    let report = rig::merge::merge(&args.dirs, &args.out)?;
    eprintln!(
        "merged run {}: {} rows in {} cells from {} folders into {}",
        report.run_id,
        report.rows,
        report.cells,
        args.dirs.len(),
        args.out.display()
    );
    for worker in &report.missing_workers {
        eprintln!(
            "warning: worker {worker} is missing: its share of every cell is not in the dataset"
        );
    }
    for (cell, workers) in &report.incomplete_cells {
        let list: Vec<String> = workers.iter().map(u32::to_string).collect();
        eprintln!(
            "warning: cell {cell} was not completed by worker(s) {}",
            list.join(", ")
        );
    }
    Ok(())
}

/// Decodes the video and encodes its frames for the wire, off the async threads.
pub async fn prepare_workload(load: &LoadArgs) -> Result<Workload, AppError> {
    let format = load.format.unwrap_or_else(|| load.wire.default_image());
    let prepared = Instant::now();
    let opts = DecodeOptions {
        width: load.width,
        max_frames: load.frames,
    };
    let (path, wire, quality) = (load.video.clone(), load.wire, load.quality);
    let workload =
        tokio::task::spawn_blocking(move || Workload::prepare(&path, opts, wire, format, quality))
            .await
            .map_err(|e| VideoError::Frame(format!("frame preparation failed: {e}")))??;
    let info = &workload.info;
    eprintln!(
        "video {}: {}x{} at {:.2} fps, {} frames{} -> {} {} bodies of ~{} KB ({:.1} s)",
        info.path.display(),
        info.width,
        info.height,
        info.fps(),
        info.frames,
        if info.has_audio { ", with audio" } else { "" },
        load.wire.name(),
        format_name(format),
        workload.mean_body_bytes() / 1024,
        prepared.elapsed().as_secs_f64()
    );
    if let Some(n) = load.frames.filter(|&n| !load.looping && n > info.frames) {
        eprintln!(
            "note: --frames {n} but the video has {} frames; sending {} (add --loop to repeat)",
            info.frames, info.frames
        );
    }
    Ok(workload)
}

/// Re-encodes the returned frames; frames whose request failed (or was never sent before an
/// interrupt, up to the last one that was) fall back to the original frame, with a warning.
fn write_video(
    path: &Path,
    workload: &Workload,
    images: &[Option<ReplyImage>],
) -> Result<(), AppError> {
    let Some(last) = images.iter().rposition(Option::is_some) else {
        eprintln!(
            "warning: no frame came back; {} was not written",
            path.display()
        );
        return Ok(());
    };
    let started = Instant::now();
    let mut writer = VideoWriter::create(path, &workload.info, true)?;
    let mut originals = 0;
    for (i, image) in images[..=last].iter().enumerate() {
        let frame = match image.as_ref().map(ReplyImage::decode) {
            Some(Ok(frame)) => frame,
            _ => {
                originals += 1;
                wire::body_image(&workload.bodies[i], workload.wire)
                    .map_err(|e| VideoError::Frame(e.to_string()))?
            }
        };
        writer.write(&frame)?;
    }
    let written = writer.finish()?;
    if originals > 0 {
        eprintln!(
            "warning: {originals} of {written} frames in {} are NOT anonymized (their request failed; the original frame was used)",
            path.display()
        );
    }
    eprintln!(
        "saved {written} frames to {} ({:.1} s)",
        path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn write_summary(path: &Path, json: &str) -> Result<(), AppError> {
    let err = |reason| AppError::Summary {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    std::fs::write(path, format!("{json}\n")).map_err(err)
}

pub fn format_name(format: ImageKind) -> &'static str {
    match format {
        ImageKind::Jpeg => "JPEG",
        ImageKind::Png => "PNG",
    }
}
