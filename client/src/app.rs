//! The subcommands end to end: check options, prepare the frames, run the cells, save the
//! video and print the summary (table, then the JSON line last on stdout).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::{FramesArgs, ImageFormat, LoadArgs, RunArgs, SweepArgs, Wire};
use crate::progress::Progress;
use crate::record::{self, CsvSink, RecordError};
use crate::runner::{CellSpec, Interrupt, RunContext, Target, Workload, run_cell};
use crate::savevideo::VideoWriter;
use crate::summary::{RunSummary, table};
use crate::video::{self, DecodeOptions, VideoError};
use crate::wire::{self, ReplyImage};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Video(#[from] VideoError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("cannot set up the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
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
    Interrupted,
}

/// `frames`: decode and write numbered image files; prints what was found.
pub fn frames(args: &FramesArgs) -> Result<(), AppError> {
    std::fs::create_dir_all(&args.out_dir).map_err(|reason| AppError::FrameFile {
        path: args.out_dir.clone(),
        reason,
    })?;
    let ext = match args.format {
        ImageFormat::Jpeg => "jpg",
        ImageFormat::Png => "png",
    };
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

/// `run`: one user over the video; optionally saves the blurred video.
pub async fn run(args: &RunArgs, interrupt: Interrupt) -> Result<Finish, AppError> {
    let spec = cell(&args.load, 1, args.think, Duration::ZERO);
    execute(
        &args.load,
        vec![spec],
        args.save_video.as_deref(),
        interrupt,
    )
    .await
}

/// `sweep`: every users × think cell, one after another, into one CSV.
pub async fn sweep(args: &SweepArgs, interrupt: Interrupt) -> Result<Finish, AppError> {
    if args.load.looping && args.load.frames.is_none() && args.load.duration.is_none() {
        return Err(AppError::Usage(
            "sweep --loop needs --frames or --duration, so that each cell ends".into(),
        ));
    }
    let cells = args
        .users
        .0
        .iter()
        .flat_map(|&users| args.think.0.iter().map(move |&think| (users, think)))
        .map(|(users, think)| cell(&args.load, users, think, args.ramp_up))
        .collect();
    execute(&args.load, cells, None, interrupt).await
}

fn cell(load: &LoadArgs, users: u32, think: Duration, ramp_up: Duration) -> CellSpec {
    CellSpec {
        users,
        think,
        requests: load.frames,
        looping: load.looping,
        duration: load.duration,
        ramp_up,
    }
}

async fn execute(
    load: &LoadArgs,
    cells: Vec<CellSpec>,
    save_video: Option<&Path>,
    mut interrupt: Interrupt,
) -> Result<Finish, AppError> {
    if load.timeout.is_zero() {
        return Err(AppError::Usage("--timeout must be more than 0".into()));
    }
    // Refuse a foreign results file before spending time on the video.
    record::check_header(&load.out)?;
    let format = load
        .format
        .unwrap_or_else(|| wire::default_format(load.wire));
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
        wire_name(load.wire),
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
    let frames = info.frames;
    let ctx = RunContext {
        run_id: record::new_run_id(),
        target: Target::new(load.url.clone(), load.timeout)?,
        workload: Arc::new(workload),
        keep_images: save_video.is_some(),
    };
    let mut sink = CsvSink::open(&load.out)?;
    eprintln!(
        "run {} -> {} ({} cell{})",
        ctx.run_id,
        load.url,
        cells.len(),
        if cells.len() == 1 { "" } else { "s" }
    );
    let mut images: Vec<Option<ReplyImage>> = vec![
        None;
        if save_video.is_some() {
            frames as usize
        } else {
            0
        }
    ];
    let mut summaries = Vec::new();
    let mut finish = Finish::Completed;
    for (i, spec) in cells.iter().enumerate() {
        let label = format!(
            "[{}/{}] users={} think={}s",
            i + 1,
            cells.len(),
            spec.users,
            spec.think.as_secs_f64()
        );
        let total = spec
            .requests_per_user(frames)
            .map(|n| n * u64::from(spec.users));
        let progress = Progress::new(!load.no_progress, &label, total);
        let result = run_cell(
            &ctx,
            spec,
            &mut sink,
            &mut images,
            &progress,
            &mut interrupt,
        )
        .await?;
        summaries.push(result.summary);
        if result.interrupted {
            eprintln!(
                "interrupted: stopping after {} cell(s); every finished request is in {}",
                summaries.len(),
                load.out.display()
            );
            finish = Finish::Interrupted;
            break;
        }
    }
    if let Some(path) = save_video {
        let (path, workload) = (path.to_path_buf(), Arc::clone(&ctx.workload));
        tokio::task::spawn_blocking(move || write_video(&path, &workload, &images))
            .await
            .map_err(|e| VideoError::Frame(format!("saving the video failed: {e}")))??;
    }
    let summary = RunSummary {
        run_id: ctx.run_id.clone(),
        url: load.url.to_string(),
        wire: wire_name(load.wire).into(),
        video: load.video.display().to_string(),
        csv: load.out.display().to_string(),
        interrupted: finish == Finish::Interrupted,
        cells: summaries,
    };
    if summary.cells.iter().all(|c| c.ok == 0) {
        eprintln!(
            "warning: no request succeeded; is the function running at {}? (see the error column of {})",
            load.url,
            load.out.display()
        );
    }
    print!("{}", table(&summary.cells));
    eprintln!("{} rows appended to {}", sink.rows(), sink.path().display());
    let json = summary.json_line();
    if let Some(path) = &load.summary_json {
        write_summary(path, &json)?;
    }
    println!("{json}");
    Ok(finish)
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

fn wire_name(wire: Wire) -> &'static str {
    match wire {
        Wire::Binary => "binary",
        Wire::Json => "json",
        Wire::Seed => "seed",
    }
}

fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "JPEG",
        ImageFormat::Png => "PNG",
    }
}
