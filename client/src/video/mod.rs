//! Videos through FFmpeg (ffmpeg-next): [`read`] decodes a video into RGB frames once per run,
//! [`write`] puts returned frames back together into a video (`run --save-video`).

pub mod read;
pub mod write;

use std::path::PathBuf;
use std::sync::Once;

use ffmpeg_next as ffmpeg;

pub use read::{for_each_frame_parallel, probe, read_frames, scaled_size};
pub use write::{VideoWriter, count_frames};

/// The cause under a frame or write failure: FFmpeg's, the system's or a frame encoder's.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// A tightly packed RGB24 image (no row padding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbFrame {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

/// What a decode found out about the video.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    pub path: PathBuf,
    /// Size of the frames handed out (after `--width` scaling).
    pub width: u32,
    pub height: u32,
    pub source_width: u32,
    pub source_height: u32,
    /// Frame rate as a fraction (e.g. 30000/1001); output videos use it too.
    pub fps_num: i32,
    pub fps_den: i32,
    /// Frames decoded (bounded by `max_frames`).
    pub frames: u64,
    pub has_audio: bool,
    pub codec: String,
}

impl VideoInfo {
    pub fn fps(&self) -> f64 {
        f64::from(self.fps_num) / f64::from(self.fps_den.max(1))
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct DecodeOptions {
    /// Scale to this width, keeping the aspect ratio (height rounded to even).
    pub width: Option<u32>,
    /// Stop after this many frames.
    pub max_frames: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error("video file '{0}' does not exist")]
    Missing(PathBuf),
    #[error("cannot open video '{path}' (is it a video file FFmpeg can read?)")]
    Open {
        path: PathBuf,
        #[source]
        source: ffmpeg::Error,
    },
    #[error("'{0}' has no video stream")]
    NoVideoStream(PathBuf),
    #[error("cannot decode video '{path}'")]
    Decode {
        path: PathBuf,
        #[source]
        source: ffmpeg::Error,
    },
    #[error("'{0}' contains no decodable frames")]
    Empty(PathBuf),
    #[error("cannot write video '{path}'")]
    Write {
        path: PathBuf,
        #[source]
        source: Cause,
    },
    #[error("cannot write video '{0}': FFmpeg has neither libx264 nor mpeg4 encoders")]
    NoEncoder(PathBuf),
    /// The work on one decoded frame failed.
    #[error("frame {index}")]
    Frame {
        index: u64,
        #[source]
        source: Cause,
    },
    /// The frame workers stopped early (after one of them failed, or panicked).
    #[error("the frame workers stopped")]
    Stopped,
}

impl VideoError {
    /// Frame `index`'s work failed with `cause`.
    pub fn frame(index: u64, cause: impl Into<Cause>) -> VideoError {
        VideoError::Frame {
            index,
            source: cause.into(),
        }
    }
}

/// Initialises FFmpeg once and silences its log: our errors already say what went wrong.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // Registration cannot fail on FFmpeg >= 4; the call only exists for old versions.
        let _ = ffmpeg::init();
        ffmpeg::log::set_level(ffmpeg::log::Level::Fatal);
    });
}
