//! `slblur-client leaks VIDEO ORIGINAL`: how many frames of an anonymised video leave a face
//! unmasked, with their numbers. The function finds the faces in the original's frames; see
//! [`crate::leaks`] for which faces each frame is expected to hold and what counts as unmasked.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use reqwest::Url;
use slblur_protocol::boxes::BoxPx;
use slblur_protocol::{ImageKind, Wire};

use super::{Finish, UsageError};
use crate::cli::values::{DEFAULT_URL, parse_duration, parse_url};
use crate::leaks::{self, Check, Checker, Leaks, LeaksFile};
use crate::progress::Progress;
use crate::token::Token;
use crate::video::{self, DecodeOptions, RgbFrame, VideoError};
use crate::workload::Workload;

/// Frames decoded ahead of the comparison.
const DECODE_AHEAD: usize = 4;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The anonymised video (e.g. from run --save-video).
    #[arg(value_name = "VIDEO")]
    pub video: PathBuf,
    /// The video it was made from.
    #[arg(value_name = "ORIGINAL")]
    pub original: PathBuf,
    /// The function that finds the faces in the original's frames.
    #[arg(long, env = "SLBLUR_URL", value_parser = parse_url, default_value = DEFAULT_URL)]
    pub url: Url,
    /// A face the detector missed for at most this many frames in a row, between frames where
    /// it found it, is looked for in those frames too (at the box between).
    #[arg(long, default_value_t = 2, value_name = "FRAMES", value_parser = clap::value_parser!(u32).range(0..=100))]
    pub max_gap: u32,
    /// A face whose box kept at least this share of the original counts as unmasked, by two
    /// measures in the middle of the box: its detail (mean luma gradient) and how much more it
    /// looks like the original than like the original blurred. Masked faces keep about 0.1–0.3,
    /// untouched re-encoded ones 0.8–1.
    #[arg(long, default_value_t = 0.5, value_name = "SHARE", value_parser = parse_share)]
    pub kept_above: f64,
    /// Write every face looked for, masked or not, to this CSV (frame, face, seen, box,
    /// detail_kept, like_original, unmasked), as the frames are checked.
    #[arg(long, short = 'o', value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Give up on a detection request after this long.
    #[arg(long, default_value = "25", value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Send this file's token as `Authorization: Bearer <token>`.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Do not draw the progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

fn parse_share(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!("'{s}' is not a share between 0 (excluded) and 1")),
    }
}

/// Exit status 3 when a face was left unmasked.
pub async fn run(args: &Args) -> anyhow::Result<Finish> {
    if args.timeout.is_zero() {
        return Err(UsageError("--timeout must be more than 0".into()).into());
    }
    let token = Token::from_option(args.token_file.as_deref())?;
    let size = video::probe(&args.video)?;
    let workload = prepare(args, size.width).await?;
    if (workload.info.width, workload.info.height) != (size.width, size.height) {
        anyhow::bail!(
            "{} is {}x{} but {} scales to {}x{}: not the same video",
            args.video.display(),
            size.width,
            size.height,
            args.original.display(),
            workload.info.width,
            workload.info.height
        );
    }
    let progress = Progress::new(!args.no_progress, "faces", Some(workload.frames()));
    let faces = leaks::find_faces(
        &args.url,
        token.as_ref(),
        args.timeout,
        &workload.bodies,
        &progress,
    )
    .await
    .with_context(|| format!("finding the faces of {}", args.original.display()))?;
    progress.finish();
    let found: usize = faces.iter().map(Vec::len).sum();
    let frames = faces.len() as u64;
    eprintln!(
        "{found} faces in {frames} frames of {}",
        args.original.display()
    );
    let file = args.out.as_deref().map(LeaksFile::create).transpose()?;
    let check = Check {
        max_gap: args.max_gap,
        kept_above: args.kept_above,
    };
    let (video, original, width) = (args.video.clone(), args.original.clone(), size.width);
    let leaks =
        tokio::task::spawn_blocking(move || compare(&video, &original, width, &faces, check, file))
            .await
            .context("comparing the videos stopped unexpectedly")??;
    if leaks.frames < frames {
        eprintln!(
            "note: {} has {} frames, {} only {}: the rest were not checked",
            args.original.display(),
            frames,
            args.video.display(),
            leaks.frames
        );
    }
    print!("{}", leaks::summary(&leaks));
    println!("{}", leaks::json_line(&leaks));
    Ok(if leaks.leaked_frames.is_empty() {
        Finish::Completed
    } else {
        Finish::LeaksFound
    })
}

/// The original's frames as JPEG request bodies, at the anonymised video's width.
async fn prepare(args: &Args, width: u32) -> anyhow::Result<Workload> {
    let original = args.original.clone();
    let opts = DecodeOptions {
        width: Some(width),
        max_frames: None,
    };
    tokio::task::spawn_blocking(move || {
        Workload::prepare(&original, opts, Wire::Binary, ImageKind::Jpeg, 90)
    })
    .await
    .context("reading the original stopped unexpectedly")?
    .map_err(Into::into)
}

/// Decodes both videos side by side (the original scaled to the anonymised video's `width`) and
/// checks each frame pair; frames only one video has are left out, with a note.
fn compare(
    video: &std::path::Path,
    original: &std::path::Path,
    width: u32,
    faces: &[Vec<BoxPx>],
    check: Check,
    file: Option<LeaksFile>,
) -> anyhow::Result<Leaks> {
    let (tx, rx) = mpsc::sync_channel::<RgbFrame>(DECODE_AHEAD);
    let output = video.to_path_buf();
    let decoder = std::thread::spawn(move || {
        video::read_frames(&output, DecodeOptions::default(), |_, frame| {
            tx.send(frame).map_err(|_| VideoError::Stopped)
        })
    });
    let mut checker = Checker::new(check, faces, file);
    let opts = DecodeOptions {
        width: Some(width),
        max_frames: None,
    };
    let mut write_failed = None;
    let read = video::read_frames(original, opts, |index, frame| {
        let Ok(out) = rx.recv() else {
            return Err(VideoError::Stopped);
        };
        match checker.frame(index, &frame, &out) {
            Ok(unmasked) => {
                for face in unmasked {
                    println!(
                        "frame {index}: face {} at {},{},{},{} ({}) unmasked: detail kept {:.2}, like the original {:.2}",
                        face.face,
                        face.x1,
                        face.y1,
                        face.x2,
                        face.y2,
                        face.seen,
                        face.detail_kept,
                        face.like_original
                    );
                }
                Ok(())
            }
            Err(e) => {
                write_failed = Some(e);
                Err(VideoError::Stopped)
            }
        }
    });
    drop(rx);
    let decoded = decoder
        .join()
        .map_err(|_| anyhow::anyhow!("decoding {} stopped unexpectedly", video.display()))?;
    if let Some(e) = write_failed {
        return Err(e.into());
    }
    match (read, decoded) {
        // The original's decode stops early when the anonymised video has fewer frames.
        (Ok(_) | Err(VideoError::Stopped), Ok(_)) => {}
        (Ok(_), Err(VideoError::Stopped)) => eprintln!(
            "note: {} has more frames than {}: the rest were not checked",
            video.display(),
            original.display()
        ),
        (Err(e), _) | (_, Err(e)) => return Err(e.into()),
    }
    Ok(checker.leaks)
}
