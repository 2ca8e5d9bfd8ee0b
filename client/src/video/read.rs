//! Decoding a video with FFmpeg (ffmpeg-next) into RGB frames, once per run.
//!
//! Frames are streamed to a callback, so a long video never sits in memory as raw RGB; the
//! callers keep only the encoded request bodies. [`for_each_frame_parallel`] runs the per-frame
//! work (JPEG/PNG encoding) on worker threads while this thread keeps decoding.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once, mpsc};

use ffmpeg::format::Pixel;
use ffmpeg::media::Type;
use ffmpeg::software::scaling;
use ffmpeg_next as ffmpeg;

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
    #[error("cannot open video '{path}': {source} (is it a video file FFmpeg can read?)")]
    Open {
        path: PathBuf,
        source: ffmpeg::Error,
    },
    #[error("'{0}' has no video stream")]
    NoVideoStream(PathBuf),
    #[error("cannot decode video '{path}': {source}")]
    Decode {
        path: PathBuf,
        source: ffmpeg::Error,
    },
    #[error("'{0}' contains no decodable frames")]
    Empty(PathBuf),
    #[error("cannot write video '{path}': {message}")]
    Write { path: PathBuf, message: String },
    #[error("{0}")]
    Frame(String),
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

/// Output size for an optional target width: aspect kept, both sides even (yuv420p needs it).
pub fn scaled_size(width: u32, height: u32, target: Option<u32>) -> (u32, u32) {
    let (w, h) = match target {
        Some(tw) if tw != width => {
            let th = (f64::from(height) * f64::from(tw) / f64::from(width)).round() as u32;
            (tw, th)
        }
        _ => (width, height),
    };
    ((w & !1).max(2), (h & !1).max(2))
}

/// Decodes `path` and calls `on_frame(index, frame)` for every frame, in order.
pub fn decode<F>(path: &Path, opts: DecodeOptions, mut on_frame: F) -> Result<VideoInfo, VideoError>
where
    F: FnMut(u64, RgbFrame) -> Result<(), VideoError>,
{
    init();
    if !path.exists() {
        return Err(VideoError::Missing(path.to_path_buf()));
    }
    let decode_err = |source| VideoError::Decode {
        path: path.to_path_buf(),
        source,
    };
    let mut input = ffmpeg::format::input(path).map_err(|source| VideoError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let stream = input
        .streams()
        .best(Type::Video)
        .ok_or_else(|| VideoError::NoVideoStream(path.to_path_buf()))?;
    let stream_index = stream.index();
    let rate = Some(stream.avg_frame_rate())
        .filter(|r| r.numerator() > 0 && r.denominator() > 0)
        .unwrap_or(stream.rate());
    let (fps_num, fps_den) = if rate.numerator() > 0 && rate.denominator() > 0 {
        (rate.numerator(), rate.denominator())
    } else {
        (25, 1)
    };
    let has_audio = input.streams().best(Type::Audio).is_some();
    let context = ffmpeg::codec::context::Context::from_parameters(stream.parameters())
        .map_err(decode_err)?;
    let mut decoder = context.decoder().video().map_err(decode_err)?;
    let codec = decoder
        .codec()
        .map(|c| c.name().to_string())
        .unwrap_or_default();
    let (src_w, src_h) = (decoder.width(), decoder.height());
    if src_w == 0 || src_h == 0 {
        return Err(VideoError::NoVideoStream(path.to_path_buf()));
    }
    let (width, height) = scaled_size(src_w, src_h, opts.width);
    let mut scaler: Option<scaling::Context> = None;
    let mut info = VideoInfo {
        path: path.to_path_buf(),
        width,
        height,
        source_width: src_w,
        source_height: src_h,
        fps_num,
        fps_den,
        frames: 0,
        has_audio,
        codec,
    };
    let limit = opts.max_frames.unwrap_or(u64::MAX);
    let mut decoded = ffmpeg::frame::Video::empty();
    let mut rgb = ffmpeg::frame::Video::empty();
    // Pulls every frame the decoder has ready; returns false once `limit` is reached.
    let mut drain =
        |decoder: &mut ffmpeg::decoder::Video, info: &mut VideoInfo| -> Result<bool, VideoError> {
            while info.frames < limit && decoder.receive_frame(&mut decoded).is_ok() {
                // Frame size or pixel format may change mid-stream: rebuild the scaler then.
                let fits = scaler.as_ref().is_some_and(|s| {
                    s.input().width == decoded.width()
                        && s.input().height == decoded.height()
                        && s.input().format == decoded.format()
                });
                if !fits {
                    let s = scaling::Context::get(
                        decoded.format(),
                        decoded.width(),
                        decoded.height(),
                        Pixel::RGB24,
                        width,
                        height,
                        scaling::Flags::BILINEAR,
                    )
                    .map_err(decode_err)?;
                    scaler = Some(s);
                }
                if let Some(s) = scaler.as_mut() {
                    s.run(&decoded, &mut rgb).map_err(decode_err)?;
                }
                on_frame(info.frames, packed_rgb(&rgb, width, height))?;
                info.frames += 1;
            }
            Ok(info.frames < limit)
        };
    let mut more = true;
    for (stream, packet) in input.packets() {
        if stream.index() != stream_index {
            continue;
        }
        // A corrupt packet is skipped like ffmpeg does; the decoder resyncs on the next one.
        if decoder.send_packet(&packet).is_err() {
            continue;
        }
        more = drain(&mut decoder, &mut info)?;
        if !more {
            break;
        }
    }
    if more {
        decoder.send_eof().map_err(decode_err)?;
        drain(&mut decoder, &mut info)?;
    }
    if info.frames == 0 {
        return Err(VideoError::Empty(path.to_path_buf()));
    }
    Ok(info)
}

/// Copies an RGB24 frame row by row, dropping FFmpeg's line padding.
fn packed_rgb(frame: &ffmpeg::frame::Video, width: u32, height: u32) -> RgbFrame {
    let row = width as usize * 3;
    let stride = frame.stride(0);
    let src = frame.data(0);
    let mut data = Vec::with_capacity(row * height as usize);
    for y in 0..height as usize {
        data.extend_from_slice(&src[y * stride..y * stride + row]);
    }
    RgbFrame {
        width,
        height,
        data,
    }
}

/// Decodes on this thread and runs `work(index, frame)` on worker threads (one per core).
/// The first error from either side stops the decode and is returned.
pub fn for_each_frame_parallel<W>(
    path: &Path,
    opts: DecodeOptions,
    work: W,
) -> Result<VideoInfo, VideoError>
where
    W: Fn(u64, RgbFrame) -> Result<(), VideoError> + Sync,
{
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8);
    let (tx, rx) = mpsc::sync_channel::<(u64, RgbFrame)>(workers * 2);
    let rx = Mutex::new(rx);
    let failure: Mutex<Option<VideoError>> = Mutex::new(None);
    let failed = || failure.lock().map(|f| f.is_some()).unwrap_or(true);
    let result = std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let next = rx.lock().ok().and_then(|r| r.recv().ok());
                    let Some((index, frame)) = next else { break };
                    if let Err(e) = work(index, frame)
                        && let Ok(mut f) = failure.lock()
                    {
                        f.get_or_insert(e);
                    }
                }
            });
        }
        let result = decode(path, opts, |index, frame| {
            if failed() {
                return Err(VideoError::Frame("stopped after a frame failed".into()));
            }
            tx.send((index, frame))
                .map_err(|_| VideoError::Frame("frame workers stopped".into()))
        });
        drop(tx);
        result
    });
    // A worker's error explains a stopped decode better than the decode's own error.
    match failure.into_inner().ok().flatten() {
        Some(e) => Err(e),
        None => result,
    }
}
