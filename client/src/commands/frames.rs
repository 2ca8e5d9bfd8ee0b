//! `slblur-client frames`: a video's frames as numbered JPEG or PNG files, and what the
//! decode found (size, frame rate, codec, audio).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use slblur_protocol::ImageKind;

use crate::cli::values::{image_kind_parser, parse_count, parse_width};
use crate::video::{self, DecodeOptions, VideoError};
use crate::wire;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Video to decode (any format FFmpeg reads).
    #[arg(long, value_name = "PATH")]
    pub video: PathBuf,
    /// Folder for the frame files (created if missing).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out_dir: PathBuf,
    /// File format of the frames.
    #[arg(long, value_parser = image_kind_parser(), default_value_t = ImageKind::Jpeg)]
    pub format: ImageKind,
    /// JPEG quality (1-100).
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: u8,
    /// Scale frames to this width in pixels, keeping the aspect ratio.
    #[arg(long, value_name = "PX", value_parser = parse_width)]
    pub width: Option<u32>,
    /// Stop after this many frames.
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub frames: Option<u64>,
}

/// A frame file that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write '{path}'")]
struct FrameFileError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("cannot create frame folder '{}'", args.out_dir.display()))?;
    let ext = args.format.extension();
    let started = Instant::now();
    let opts = DecodeOptions {
        width: args.width,
        max_frames: args.frames,
    };
    let info = video::for_each_frame_parallel(&args.video, opts, |index, frame| {
        let bytes = wire::encode_image(&frame, args.format, args.quality)
            .map_err(|e| VideoError::frame(index, e))?;
        let path = args.out_dir.join(format!("frame_{index:06}.{ext}"));
        std::fs::write(&path, bytes)
            .map_err(|source| VideoError::frame(index, FrameFileError { path, source }))
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
