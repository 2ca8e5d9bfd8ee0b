//! The options `run`, `load` and `sweep` share: where to send, what to send and for how long.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;
use slblur_protocol::{ImageKind, Wire};

use super::UsageError;
use crate::cli::values::{
    DEFAULT_URL, image_kind_parser, parse_async_target, parse_count, parse_duration, parse_target,
    parse_url, parse_width, wire_parser,
};
use crate::record::Invocation;
use crate::rig::Smoothing;
use crate::rig::plan::{CallbackSpec, FrameSource, Limits, TargetSpec};

/// The target name `--url` stands for.
pub const DEFAULT_TARGET: &str = "default";

/// Options shared by `run`, `load` and `sweep`: targets, video, wire format, limits.
#[derive(Debug, clap::Args, Clone)]
pub struct SendArgs {
    /// Function URL (on OpenFaaS: http://GATEWAY:8080/function/slblur); the target `default`.
    #[arg(long, env = "SLBLUR_URL", value_parser = parse_url, conflicts_with = "targets")]
    pub url: Option<Url>,
    /// A named deployment to load, NAME=URL; repeat it to compare deployments
    /// (e.g. --target serverless=http://gw:8080/function/slblur --target serverful=http://svc/).
    #[arg(long = "target", value_name = "NAME=URL", value_parser = parse_target)]
    pub targets: Vec<TargetSpec>,
    /// A named deployment called asynchronously, NAME=URL with OpenFaaS's
    /// /async-function/NAME: each request gets 202 Accepted at once and the function's answer
    /// later at a callback this client receives (--callback-listen); its round trip runs to
    /// the callback. Repeat it, and mix it with --target, to compare sync, async and
    /// serverful in one run.
    #[arg(long = "async-target", value_name = "NAME=URL", value_parser = parse_async_target, conflicts_with = "url")]
    pub async_targets: Vec<TargetSpec>,
    /// Call --url asynchronously (give OpenFaaS's http://GATEWAY:8080/async-function/NAME).
    #[arg(long = "async", requires = "url")]
    pub call_async: bool,
    /// Where to receive asynchronous targets' callbacks [default: 127.0.0.1 on a port the
    /// system gives]. For a cluster, listen on an address its pods reach (e.g. 0.0.0.0:9000)
    /// and give --callback-url.
    #[arg(long, value_name = "ADDR")]
    pub callback_listen: Option<std::net::SocketAddr>,
    /// The URL the platform posts callbacks to, when it reaches this machine by another name
    /// than --callback-listen (e.g. http://10.0.0.5:9000/ from inside a cluster).
    #[arg(long, value_name = "URL", value_parser = parse_url)]
    pub callback_url: Option<Url>,
    /// Video whose frames are sent (any format FFmpeg reads).
    #[arg(long, value_name = "PATH")]
    pub video: PathBuf,
    /// Request format: binary (image body), json (base64 in JSON) or seed (the original system's).
    #[arg(long, value_parser = wire_parser(), default_value_t = Wire::Binary)]
    pub wire: Wire,
    /// Image format of the frames [default: jpeg, png for --wire seed].
    #[arg(long, value_parser = image_kind_parser())]
    pub format: Option<ImageKind>,
    /// JPEG quality (1-100).
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: u8,
    /// Scale frames to this width in pixels before sending, keeping the aspect ratio.
    #[arg(long, value_name = "PX", value_parser = parse_width)]
    pub width: Option<u32>,
    /// Give up on a request after this long (the whole round trip); it becomes a failed row.
    #[arg(long, default_value = "25", value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Requests per user: the first N frames (with --loop, N requests wrapping around the video).
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub frames: Option<u64>,
    /// Start again at frame 0 after the last frame (until --frames, --duration or Ctrl-C).
    #[arg(long = "loop")]
    pub looping: bool,
    /// Stop each user after this long (no new request starts after it).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Do not draw the progress bar (it is only drawn when stdout is a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
    /// Temporal smoothing: each user sends the faces its last N replies detected as hints
    /// with its next frame (X-Slblur-Hints), so a face missed in a frame stays masked if it was
    /// seen within N frames; 0 turns it off. Hints change the work per request, so a load test
    /// records N in every row [default: 2 for run --save-video, else 0].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=100))]
    pub smooth: Option<u32>,
    /// With --smooth: send remembered boxes where they were, not moved by the face's motion
    /// between the two frames before.
    #[arg(long)]
    pub no_motion: bool,
    /// Send the token in this file (e.g. the function's OpenFaaS secret) as
    /// `Authorization: Bearer <token>` on every request; read once, never printed.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
}

impl SendArgs {
    /// The targets to load: `--target`s and `--async-target`s, or `--url` (or the local
    /// default) named `default`.
    pub fn target_list(&self) -> Vec<TargetSpec> {
        if !self.targets.is_empty() || !self.async_targets.is_empty() {
            return self
                .targets
                .iter()
                .chain(&self.async_targets)
                .cloned()
                .collect();
        }
        let url = self
            .url
            .clone()
            .unwrap_or_else(|| Url::parse(DEFAULT_URL).expect("DEFAULT_URL is a valid URL"));
        vec![TargetSpec {
            name: DEFAULT_TARGET.to_string(),
            url,
            invocation: if self.call_async {
                Invocation::Async
            } else {
                Invocation::Sync
            },
        }]
    }

    /// Where callbacks are received, when a target is asynchronous.
    pub fn callback(&self) -> Result<Option<CallbackSpec>, UsageError> {
        let any_async = self
            .target_list()
            .iter()
            .any(|t| t.invocation == Invocation::Async);
        if !any_async {
            if self.callback_listen.is_some() || self.callback_url.is_some() {
                return Err(UsageError(
                    "--callback-listen and --callback-url need an asynchronous target (--async-target or --async)"
                        .into(),
                ));
            }
            return Ok(None);
        }
        let listen = self
            .callback_listen
            .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        if listen.ip().is_unspecified() && self.callback_url.is_none() {
            return Err(UsageError(format!(
                "--callback-listen {listen} needs --callback-url: the platform cannot post to {}; give the URL it reaches this machine by (e.g. http://HOST:{}/)",
                listen.ip(),
                listen.port()
            )));
        }
        Ok(Some(CallbackSpec {
            listen,
            url: self.callback_url.clone(),
        }))
    }

    /// The frames to send: the video, encoded for the wire in `--format` (the wire's default
    /// image format unless given).
    pub fn frame_source(&self) -> FrameSource {
        FrameSource {
            video: self.video.clone(),
            wire: self.wire,
            format: self.format.unwrap_or_else(|| self.wire.default_image()),
            quality: self.quality,
            width: self.width,
        }
    }

    pub fn limits(&self) -> Limits {
        Limits {
            frames: self.frames,
            looping: self.looping,
            duration: self.duration,
        }
    }

    /// `--smooth` and `--no-motion`, `default` when `--smooth` is not given.
    pub fn smoothing(&self, default: Smoothing) -> Smoothing {
        match self.smooth {
            None => default,
            Some(frames) => Smoothing {
                frames,
                motion: !self.no_motion,
            },
        }
    }

    /// The checks clap cannot make on one option alone.
    pub fn check(&self) -> Result<(), UsageError> {
        if self.timeout.is_zero() {
            return Err(UsageError("--timeout must be more than 0".into()));
        }
        let targets = self.target_list();
        if let Some(t) = targets
            .iter()
            .enumerate()
            .find_map(|(i, t)| targets[..i].iter().any(|u| u.name == t.name).then_some(t))
        {
            return Err(UsageError(format!(
                "two targets are named '{}': give each its own name",
                t.name
            )));
        }
        if self.smooth.is_some_and(|n| n > 0) && self.wire == Wire::Seed {
            return Err(UsageError(
                "--smooth needs the faces of each reply: the seed format has none (use --wire binary or json)"
                    .into(),
            ));
        }
        Ok(())
    }
}
