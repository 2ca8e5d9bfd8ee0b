//! `slblur-client run`: one user over the video, like the original client — a one-cell plan
//! for the same driver as `sweep`, with its rows appended to one CSV file — and, with
//! `--save-video`, the returned frames put back together into a video.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::{Finish, SendArgs, UsageError};
use crate::cli::values::parse_duration;
use crate::rig::drive::{self, Driven};
use crate::rig::plan::{Load, Output, Plan, Ramp, Share};
use crate::rig::{RigError, Smoothing};
use crate::video::VideoWriter;
use crate::wire::{self, ReplyImage};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub send: SendArgs,
    /// CSV file the rows are appended to (created with a header if missing).
    #[arg(long, short = 'o', default_value = "results.csv", value_name = "PATH")]
    pub out: PathBuf,
    /// Also write the one-line JSON summary (the last stdout line) to this file.
    #[arg(long, value_name = "PATH")]
    pub summary_json: Option<PathBuf>,
    /// Sleep this long before each request, the first one included (like client.py).
    #[arg(long, default_value = "0", value_name = "DURATION", value_parser = parse_duration)]
    pub think: Duration,
    /// Put the returned (blurred) frames back together into this video, at the input's frame
    /// rate and with its audio.
    #[arg(long, value_name = "PATH")]
    pub save_video: Option<PathBuf>,
}

/// The plan of a run: one user on one target, no ramp, every frame once (or as limited).
pub fn plan(args: &Args) -> Result<Plan, UsageError> {
    let send = &args.send;
    send.check()?;
    let targets = send.target_list();
    if targets.len() != 1 {
        return Err(UsageError(
            "run loads one target: give one --target (or --url); use sweep to compare".into(),
        ));
    }
    Ok(Plan {
        command: "run",
        targets,
        loads: vec![Load::Closed {
            users: 1,
            think_s: args.think.as_secs_f64(),
        }],
        frames: send.frame_source(),
        limits: send.limits(),
        timeout: send.timeout,
        ramp: Ramp::Over(Duration::ZERO),
        max_outstanding: 1,
        seed: Some(0),
        thresholds: Vec::new(),
        share: Share::WHOLE,
        start_at: None,
        slot: None,
        output: Output::Csv(args.out.clone()),
        token_file: send.token_file.clone(),
        show_progress: !send.no_progress,
        keep_images: args.save_video.is_some(),
        callback: send.callback()?,
        trace: None,
        smooth: send.smoothing(match args.save_video {
            // Anonymising a video: a face missed in a frame or two stays masked.
            Some(_) if send.wire != slblur_protocol::Wire::Seed => Smoothing::VIDEO,
            // Measuring: every request the same work, as the original client sent.
            _ => Smoothing::OFF,
        }),
    })
}

pub async fn run(args: &Args) -> anyhow::Result<Finish> {
    let mut driven = drive::drive(&plan(args)?).await?;
    if let Some(path) = &args.save_video {
        save_video(path.clone(), &mut driven).await?;
    }
    let json = driven.conclude();
    if let Some(path) = &args.summary_json {
        write_summary(path, &json)?;
    }
    Ok(driven.finish)
}

async fn save_video(path: PathBuf, driven: &mut Driven) -> anyhow::Result<()> {
    let workload = std::sync::Arc::clone(&driven.workload);
    let images = std::mem::take(&mut driven.images);
    tokio::task::spawn_blocking(move || write_video(&path, &workload, &images))
        .await
        .map_err(|_| RigError::Panicked("saving the video"))?
}

/// Re-encodes the returned frames; frames whose request failed (or was never sent before an
/// interrupt, up to the last one that was) fall back to the original frame, with a warning.
fn write_video(
    path: &Path,
    workload: &crate::workload::Workload,
    images: &[Option<ReplyImage>],
) -> anyhow::Result<()> {
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
        let frame = match image.as_ref().map(ReplyImage::to_frame) {
            Some(Ok(frame)) => frame,
            _ => {
                originals += 1;
                wire::body_image(&workload.bodies[i], workload.wire)
                    .with_context(|| format!("frame {i} of the video sent"))?
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

fn write_summary(path: &Path, json: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot write summary '{}'", path.display()))?;
    }
    std::fs::write(path, format!("{json}\n"))
        .with_context(|| format!("cannot write summary '{}'", path.display()))
}
