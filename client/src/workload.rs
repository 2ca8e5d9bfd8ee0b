//! The frames of one video, decoded once and encoded once into request bodies before any load
//! starts, so encoding never sits in a measured round trip.

use std::path::Path;
use std::sync::Mutex;

use slblur_protocol::{ImageKind, Wire};

use crate::video::{self, DecodeOptions, VideoError, VideoInfo};
use crate::wire::{self, Body};

/// Every frame of a video as a request body in one wire format.
#[derive(Debug)]
pub struct Workload {
    pub wire: Wire,
    pub format: ImageKind,
    pub bodies: Vec<Body>,
    pub info: VideoInfo,
}

impl Workload {
    /// Decodes `path` and encodes every frame for `wire` (in parallel, off the request path).
    pub fn prepare(
        path: &Path,
        opts: DecodeOptions,
        wire: Wire,
        format: ImageKind,
        quality: u8,
    ) -> Result<Self, VideoError> {
        let bodies: Mutex<Vec<Option<Body>>> = Mutex::new(Vec::new());
        let info = video::for_each_frame_parallel(path, opts, |index, frame| {
            let body = wire::request_body(&frame, wire, format, quality)
                .map_err(|e| VideoError::Frame(e.to_string()))?;
            let mut all = bodies
                .lock()
                .map_err(|_| VideoError::Frame("frame encoder panicked".into()))?;
            let i =
                usize::try_from(index).map_err(|_| VideoError::Frame("too many frames".into()))?;
            if all.len() <= i {
                all.resize(i + 1, None);
            }
            all[i] = Some(body);
            Ok(())
        })?;
        let bodies: Vec<Body> = bodies
            .into_inner()
            .map_err(|_| VideoError::Frame("frame encoder panicked".into()))?
            .into_iter()
            .collect::<Option<_>>()
            .ok_or_else(|| VideoError::Frame("a frame was decoded but not encoded".into()))?;
        Ok(Self {
            wire,
            format,
            bodies,
            info,
        })
    }

    /// Frames in the video (each user's default budget).
    pub fn frames(&self) -> u64 {
        self.bodies.len() as u64
    }

    pub fn mean_body_bytes(&self) -> u64 {
        let total: usize = self.bodies.iter().map(|b| b.bytes.len()).sum();
        (total / self.bodies.len().max(1)) as u64
    }
}
