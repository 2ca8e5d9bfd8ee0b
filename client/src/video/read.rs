//! Decoding a video into RGB frames, once per run.
//!
//! Frames are streamed to a callback, so a long video never sits in memory as raw RGB; the
//! callers keep only the encoded request bodies. [`for_each_frame_parallel`] runs the per-frame
//! work (JPEG/PNG encoding) on worker threads while this thread keeps decoding.

use std::path::Path;
use std::sync::{Mutex, mpsc};

use ffmpeg::format::Pixel;
use ffmpeg::media::Type;
use ffmpeg::software::scaling;
use ffmpeg_next as ffmpeg;

use super::{DecodeOptions, RgbFrame, VideoError, VideoInfo, init};

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

/// What the container says of a video, without decoding it (`frames` is 0).
pub fn probe(path: &Path) -> Result<VideoInfo, VideoError> {
    init();
    Source::open(path, None).map(|source| source.info)
}

/// Decodes `path` and calls `on_frame(index, frame)` for every frame, in order.
pub fn read_frames<F>(
    path: &Path,
    opts: DecodeOptions,
    mut on_frame: F,
) -> Result<VideoInfo, VideoError>
where
    F: FnMut(u64, RgbFrame) -> Result<(), VideoError>,
{
    init();
    let mut source = Source::open(path, opts.width)?;
    let limit = opts.max_frames.unwrap_or(u64::MAX);
    let mut frames = Frames::new(path, source.info.width, source.info.height);
    let mut more = true;
    for (stream, packet) in source.input.packets() {
        if stream.index() != source.stream_index {
            continue;
        }
        // A corrupt packet is skipped like ffmpeg does; the decoder resyncs on the next one.
        if source.decoder.send_packet(&packet).is_err() {
            continue;
        }
        more = frames.drain(&mut source.decoder, &mut source.info, limit, &mut on_frame)?;
        if !more {
            break;
        }
    }
    if more {
        source
            .decoder
            .send_eof()
            .map_err(|e| decode_error(path, e))?;
        frames.drain(&mut source.decoder, &mut source.info, limit, &mut on_frame)?;
    }
    if source.info.frames == 0 {
        return Err(VideoError::Empty(path.to_path_buf()));
    }
    Ok(source.info)
}

fn decode_error(path: &Path, source: ffmpeg::Error) -> VideoError {
    VideoError::Decode {
        path: path.to_path_buf(),
        source,
    }
}

/// An opened video: its container, the video stream's decoder and what is known of it.
struct Source {
    input: ffmpeg::format::context::Input,
    stream_index: usize,
    decoder: ffmpeg::decoder::Video,
    info: VideoInfo,
}

impl Source {
    fn open(path: &Path, width: Option<u32>) -> Result<Source, VideoError> {
        if !path.exists() {
            return Err(VideoError::Missing(path.to_path_buf()));
        }
        let input = ffmpeg::format::input(path).map_err(|source| VideoError::Open {
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
            .map_err(|e| decode_error(path, e))?;
        let decoder = context
            .decoder()
            .video()
            .map_err(|e| decode_error(path, e))?;
        let codec = decoder
            .codec()
            .map(|c| c.name().to_string())
            .unwrap_or_default();
        let (source_width, source_height) = (decoder.width(), decoder.height());
        if source_width == 0 || source_height == 0 {
            return Err(VideoError::NoVideoStream(path.to_path_buf()));
        }
        let (width, height) = scaled_size(source_width, source_height, width);
        let info = VideoInfo {
            path: path.to_path_buf(),
            width,
            height,
            source_width,
            source_height,
            fps_num,
            fps_den,
            frames: 0,
            has_audio,
            codec,
        };
        Ok(Source {
            input,
            stream_index,
            decoder,
            info,
        })
    }
}

/// Turns decoded frames into packed RGB at the output size.
struct Frames<'a> {
    path: &'a Path,
    width: u32,
    height: u32,
    scaler: Option<scaling::Context>,
    decoded: ffmpeg::frame::Video,
    rgb: ffmpeg::frame::Video,
}

impl<'a> Frames<'a> {
    fn new(path: &'a Path, width: u32, height: u32) -> Self {
        Frames {
            path,
            width,
            height,
            scaler: None,
            decoded: ffmpeg::frame::Video::empty(),
            rgb: ffmpeg::frame::Video::empty(),
        }
    }

    /// Hands every frame the decoder has ready to `on_frame`; `false` once `limit` is reached.
    fn drain<F>(
        &mut self,
        decoder: &mut ffmpeg::decoder::Video,
        info: &mut VideoInfo,
        limit: u64,
        on_frame: &mut F,
    ) -> Result<bool, VideoError>
    where
        F: FnMut(u64, RgbFrame) -> Result<(), VideoError>,
    {
        while info.frames < limit && decoder.receive_frame(&mut self.decoded).is_ok() {
            self.convert().map_err(|e| decode_error(self.path, e))?;
            on_frame(info.frames, packed_rgb(&self.rgb, self.width, self.height))?;
            info.frames += 1;
        }
        Ok(info.frames < limit)
    }

    /// Scales the decoded frame into `rgb`; frame size or pixel format may change mid-stream,
    /// and the scaler is rebuilt then.
    fn convert(&mut self) -> Result<(), ffmpeg::Error> {
        let decoded = &self.decoded;
        let fits = self.scaler.as_ref().is_some_and(|s| {
            s.input().width == decoded.width()
                && s.input().height == decoded.height()
                && s.input().format == decoded.format()
        });
        if !fits {
            self.scaler = Some(scaling::Context::get(
                decoded.format(),
                decoded.width(),
                decoded.height(),
                Pixel::RGB24,
                self.width,
                self.height,
                scaling::Flags::BILINEAR,
            )?);
        }
        match self.scaler.as_mut() {
            Some(s) => s.run(decoded, &mut self.rgb),
            None => Ok(()),
        }
    }
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
        let result = read_frames(path, opts, |index, frame| {
            if failed() {
                return Err(VideoError::Stopped);
            }
            tx.send((index, frame)).map_err(|_| VideoError::Stopped)
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
