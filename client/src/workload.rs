//! The frames of one video, decoded once and encoded once into request bodies before any load
//! starts, so encoding never sits in a measured round trip.

use std::path::Path;
use std::sync::Mutex;

use slblur_protocol::{ImageKind, Wire};

use crate::video::{self, DecodeOptions, VideoError, VideoInfo};
use crate::wire::{self, RequestBody};

/// Every frame of a video as a request body in one wire format.
#[derive(Debug)]
pub struct Workload {
    pub wire: Wire,
    pub format: ImageKind,
    pub bodies: Vec<RequestBody>,
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
        let bodies: Mutex<Vec<Option<RequestBody>>> = Mutex::new(Vec::new());
        let info = video::for_each_frame_parallel(path, opts, |index, frame| {
            let body = wire::request_body(&frame, wire, format, quality)
                .map_err(|e| VideoError::frame(index, e))?;
            // A frame index always fits in memory's address range: the frames are in memory.
            let i = index as usize;
            let mut all = bodies.lock().map_err(|_| VideoError::Stopped)?;
            if all.len() <= i {
                all.resize(i + 1, None);
            }
            all[i] = Some(body);
            Ok(())
        })?;
        // Every index below the count was handed to a worker that stored its body or failed.
        let bodies: Vec<RequestBody> = bodies
            .into_inner()
            .map_err(|_| VideoError::Stopped)?
            .into_iter()
            .collect::<Option<_>>()
            .ok_or(VideoError::Stopped)?;
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
