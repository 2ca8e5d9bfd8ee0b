//! Command line: the `slblur-client` subcommands, their options and the value parsers.
//!
//! Durations accept plain seconds (`0`, `1.5`) or units (`500ms`, `2m`, `1m30s`), so think
//! times can be written the way the original experiments named them ("0, 1, 5 seconds").

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use reqwest::Url;
use slblur_protocol::{ImageKind, Wire};

pub use crate::rig::plan::TargetSpec;

/// Where the function listens when run locally (`scripts/demo`, `cargo run -p slblur`).
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080/";

#[derive(Debug, Parser)]
#[command(
    name = "slblur-client",
    version,
    about = "Load-test client for the slblur face-blur function",
    long_about = "Load-test client for the slblur face-blur function.\n\n\
        It decodes a video once, sends its frames to the function as HTTP requests and records \
        one CSV row per request (round trip, handler and ML time, faces, status, errors). \
        See client/SCHEMA.md for the CSV columns.",
    after_help = "Examples:\n  \
        slblur-client frames --video samples/astronaut.mp4 --out-dir /tmp/frames\n  \
        slblur-client run --video samples/astronaut.mp4 --think 1 --out results.csv\n  \
        slblur-client run --video samples/astronaut.mp4 --save-video blurred.mp4\n  \
        slblur-client sweep --video samples/astronaut.mp4 --users 1,2,4 --think 0,1,5 --out results/grid\n  \
        slblur-client sweep --video samples/astronaut.mp4 --rate 2,5 --target a=http://h:8080/ --target b=http://h:9000/"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decode a video and write its frames as numbered JPEG or PNG files.
    Frames(FramesArgs),
    /// Send a video's frames to the function as one user, one request per frame.
    Run(RunArgs),
    /// Run one load cell (N users with think time Z, or a request rate) with goose.
    Load(SweepArgs),
    /// Run every target × users × think (or × rate) cell, one after another, with goose.
    Sweep(SweepArgs),
    /// Combine the run folders of distributed workers into one dataset and summary.
    Merge(MergeArgs),
    /// Convert a JMeter results file (JTL) from jmeter/*.jmx into the results dataset.
    ImportJtl(crate::jtl::ImportJtlArgs),
    /// Turn results into summary.csv, summary.md, PNG plots and index.html, with the model's fit.
    Report(crate::report::ReportArgs),
    /// Predict throughput and response time for users (closed) or request rates (open).
    Model(crate::model::command::ModelArgs),
}

/// `--wire`: the protocol's three request/response formats, each explained in `--help`.
fn wire_parser() -> impl TypedValueParser<Value = Wire> {
    PossibleValuesParser::new([
        PossibleValue::new(Wire::Binary.name())
            .help("Raw JPEG/PNG body; timings come back in the Server-Timing header"),
        PossibleValue::new(Wire::Json.name())
            .help("`{\"image\": \"<base64>\"}`; the response is JSON with faces and timings"),
        PossibleValue::new(Wire::Seed.name())
            .help("The original Python system's format: base64 text in, text lines out"),
    ])
    .try_map(|name| name.parse::<Wire>())
}

/// `--format`: the image format of the frames sent (and of `frames` output files).
fn image_kind_parser() -> impl TypedValueParser<Value = ImageKind> {
    PossibleValuesParser::new(ImageKind::ALL.map(ImageKind::name))
        .try_map(|name| name.parse::<ImageKind>())
}

#[derive(Debug, Args)]
pub struct FramesArgs {
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

/// Options shared by `run`, `load` and `sweep`: targets, video, wire format, limits.
#[derive(Debug, Args, Clone)]
pub struct LoadArgs {
    /// Function URL (on OpenFaaS: http://GATEWAY:8080/function/slblur); the target `default`.
    #[arg(long, env = "SLBLUR_URL", value_parser = parse_url, conflicts_with = "targets")]
    pub url: Option<Url>,
    /// A named deployment to load, NAME=URL; repeat it to compare deployments
    /// (e.g. --target serverless=http://gw:8080/function/slblur --target serverful=http://svc/).
    #[arg(long = "target", value_name = "NAME=URL", value_parser = parse_target)]
    pub targets: Vec<TargetSpec>,
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
    /// Send the token in this file (e.g. the function's OpenFaaS secret) as
    /// `Authorization: Bearer <token>` on every request; read once, never printed.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
}

impl LoadArgs {
    /// The targets to load: `--target`s, or `--url` (or the local default) named `default`.
    pub fn target_list(&self) -> Vec<TargetSpec> {
        if !self.targets.is_empty() {
            return self.targets.clone();
        }
        let url = self
            .url
            .clone()
            .unwrap_or_else(|| Url::parse(DEFAULT_URL).expect("DEFAULT_URL is a valid URL"));
        vec![TargetSpec {
            name: DEFAULT_TARGET.to_string(),
            url,
        }]
    }
}

/// The target name `--url` stands for.
pub const DEFAULT_TARGET: &str = "default";

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub load: LoadArgs,
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

/// `load` (one cell per target) and `sweep` (a grid of cells per target).
#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    /// Concurrent users per cell: a comma list, ranges allowed (1,2,4 or 1-9)
    /// [default: sweep 1,2,4; load 1].
    #[arg(long, value_name = "LIST", value_parser = parse_users, conflicts_with = "rates")]
    pub users: Option<UserList>,
    /// Think times per cell: a comma list of durations (0,1,5 or 0,500ms,2s)
    /// [default: sweep 0,1,5; load 0].
    #[arg(long, value_name = "LIST", value_parser = parse_think_list, conflicts_with = "rates")]
    pub think: Option<ThinkList>,
    /// Open loop instead of users: Poisson arrivals at these rates (requests per second,
    /// a comma list such as 2,5,10), frames taken from the video in turn.
    #[arg(long = "rate", value_name = "LIST", value_parser = parse_rate_list)]
    pub rates: Option<RateList>,
    /// Open loop: at most this many requests outstanding; an arrival that finds them all busy
    /// becomes a failed row instead of a silent slowdown.
    #[arg(long, default_value_t = 64, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_outstanding: u32,
    /// Open loop: seed of the arrival times, so a run (and every worker of it) can be repeated
    /// [default: derived from the run id].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Start a cell's users evenly over this long (JMeter's ramp-up period).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with = "ramp_rate")]
    pub ramp_up: Option<Duration>,
    /// Start this many users per second (goose's increase rate) [default: 0.25, as the
    /// original JMeter plans].
    #[arg(long, value_name = "USERS_PER_S", value_parser = parse_rate)]
    pub ramp_rate: Option<f64>,
    /// Fail the run (exit 3) when a rule fails in any cell: goose's thresholds, e.g.
    /// 'p95<2s' or 'error-rate<5%'. A rule without ' for REQUEST' judges the round trip.
    #[arg(long = "threshold", value_name = "RULE", value_parser = parse_threshold)]
    pub thresholds: Vec<String>,
    /// Folder for results.csv, summary.csv, run.json and goose's reports
    /// [default: results/<run id>].
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue an interrupted sweep in --out: cells already complete are skipped.
    #[arg(long, requires = "out")]
    pub resume: bool,
    /// Run id shared by all workers of a distributed run [default: from --start-at, else new].
    #[arg(long, value_name = "ID", value_parser = parse_run_id)]
    pub run_id: Option<String>,
    /// Distributed: how many worker processes share every cell.
    #[arg(long, default_value_t = 1, value_name = "W", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub workers: u32,
    /// Distributed: this worker's index, 0..W (a Kubernetes Indexed Job sets
    /// JOB_COMPLETION_INDEX).
    #[arg(
        long,
        env = "JOB_COMPLETION_INDEX",
        default_value_t = 0,
        value_name = "I"
    )]
    pub worker_index: u32,
    /// Start the first cell at this time (RFC 3339, e.g. 2026-01-31T12:00:00Z), so that all
    /// workers start together.
    #[arg(long, value_name = "TIME", value_parser = parse_start_at)]
    pub start_at: Option<std::time::SystemTime>,
    /// Distributed: the wall time reserved for each cell; cell i starts at --start-at + i × slot
    /// on every worker [default: ramp-up + --duration + --timeout + 5 s, with --duration].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub slot: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Worker run folders (each with run.json and results.csv).
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Folder for the merged results.csv, summary.csv and run.json.
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
}

/// Parsed `--rate` list (requests per second).
#[derive(Debug, Clone, PartialEq)]
pub struct RateList(pub Vec<f64>);

/// Parsed `--users` list (a newtype so clap does not treat it as a repeated option).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserList(pub Vec<u32>);

/// Parsed `--think` list for `sweep`.
#[derive(Debug, Clone, PartialEq)]
pub struct ThinkList(pub Vec<Duration>);

/// Seconds (`1.5`) or a duration with units (`500ms`, `2m`, `1m30s`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("'{s}' is not a non-negative number of seconds"));
    }
    humantime::parse_duration(s).map_err(|e| {
        format!("'{s}' is not a duration ({e}); use seconds like 1.5 or units like 500ms, 2m")
    })
}

/// Comma list of durations, e.g. `0,1,5`.
pub fn parse_think_list(s: &str) -> Result<ThinkList, String> {
    let items: Vec<Duration> = split_list(s)?
        .into_iter()
        .map(parse_duration)
        .collect::<Result<_, _>>()?;
    Ok(ThinkList(items))
}

/// Comma list of positive user counts with optional ranges, e.g. `1,2,4` or `1-3,8`.
pub fn parse_users(s: &str) -> Result<UserList, String> {
    let mut users = Vec::new();
    for item in split_list(s)? {
        let parse_one = |v: &str| -> Result<u32, String> {
            match v.trim().parse::<u32>() {
                Ok(0) => Err("user counts must be at least 1".to_string()),
                Ok(n) if n > 10_000 => Err(format!(
                    "{n} users is more than this client supports (10000)"
                )),
                Ok(n) => Ok(n),
                Err(_) => Err(format!("'{v}' is not a user count")),
            }
        };
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (parse_one(a)?, parse_one(b)?);
                if a > b {
                    return Err(format!("range '{item}' goes backwards"));
                }
                users.extend(a..=b);
            }
            None => users.push(parse_one(item)?),
        }
    }
    Ok(UserList(users))
}

/// `NAME=URL`: a name of letters, digits, `-`, `_` or `.`, and an http(s) URL.
pub fn parse_target(s: &str) -> Result<TargetSpec, String> {
    let (name, url) = s.split_once('=').ok_or_else(|| {
        format!("'{s}' is not NAME=URL (e.g. serverless=http://127.0.0.1:8080/function/slblur)")
    })?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("'{s}' has no target name before '='"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!(
            "target name '{name}' may only hold letters, digits, '-', '_' and '.'"
        ));
    }
    Ok(TargetSpec {
        name: name.to_string(),
        url: parse_url(url)?,
    })
}

/// A positive, finite rate (users or requests per second).
pub fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= 1_000_000.0 => Ok(r),
        Ok(_) => Err(format!(
            "rate '{s}' must be more than 0 (and at most 1000000) per second"
        )),
        Err(_) => Err(format!("'{s}' is not a rate per second")),
    }
}

/// Comma list of rates, e.g. `2,5,10`.
pub fn parse_rate_list(s: &str) -> Result<RateList, String> {
    Ok(RateList(
        split_list(s)?
            .into_iter()
            .map(parse_rate)
            .collect::<Result<_, _>>()?,
    ))
}

/// A goose threshold rule, checked before any load starts.
pub fn parse_threshold(s: &str) -> Result<String, String> {
    s.parse::<goose::threshold::Threshold>()
        .map(|_| s.trim().to_string())
        .map_err(|e| format!("'{s}' is not a threshold rule such as p95<2s or error-rate<5%: {e}"))
}

/// RFC 3339 time, e.g. `2026-01-31T12:00:00Z`.
pub fn parse_start_at(s: &str) -> Result<std::time::SystemTime, String> {
    humantime::parse_rfc3339_weak(s.trim())
        .map_err(|e| format!("'{s}' is not an RFC 3339 time such as 2026-01-31T12:00:00Z ({e})"))
}

/// A run id usable as a folder name.
pub fn parse_run_id(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty()
        || s.len() > 64
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!(
            "run id '{s}' must be 1-64 letters, digits, '-', '_' or '.'"
        ));
    }
    Ok(s.to_string())
}

/// An http(s) URL with a host.
pub fn parse_url(s: &str) -> Result<Url, String> {
    let url =
        Url::parse(s.trim()).map_err(|e| format!("'{s}' is not a URL ({e}); try {DEFAULT_URL}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("'{s}' must start with http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("'{s}' has no host"));
    }
    Ok(url)
}

/// A frame count of at least 1.
pub fn parse_count(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("'{s}' is not a positive whole number")),
    }
}

/// A width in pixels within what FFmpeg scales (the height follows the aspect ratio, made even).
pub fn parse_width(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(w) if (16..=8192).contains(&w) => Ok(w),
        Ok(w) => Err(format!("width {w} is outside 16..8192")),
        Err(_) => Err(format!("'{s}' is not a width in pixels")),
    }
}

fn split_list(s: &str) -> Result<Vec<&str>, String> {
    let items: Vec<&str> = s.split(',').map(str::trim).collect();
    if items.iter().any(|i| i.is_empty()) {
        return Err(format!(
            "'{s}' has an empty item; write a comma list like 0,1,5"
        ));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_seconds_and_units() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(" 25 "), Ok(Duration::from_secs(25)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("NaN").is_err());
    }

    #[test]
    fn think_lists() {
        let ThinkList(t) = parse_think_list("0,1,5").expect("test input");
        assert_eq!(t, [0, 1, 5].map(Duration::from_secs));
        let ThinkList(t) = parse_think_list("0, 250ms").expect("test input");
        assert_eq!(t, vec![Duration::ZERO, Duration::from_millis(250)]);
        assert!(parse_think_list("0,,1").is_err());
        assert!(parse_think_list("1,x").is_err());
    }

    #[test]
    fn user_lists_with_ranges() {
        assert_eq!(parse_users("1,2,4"), Ok(UserList(vec![1, 2, 4])));
        assert_eq!(parse_users("1-3, 8"), Ok(UserList(vec![1, 2, 3, 8])));
        assert!(parse_users("0").is_err());
        assert!(parse_users("3-1").is_err());
        assert!(parse_users("two").is_err());
        assert!(parse_users("").is_err());
    }

    #[test]
    fn urls_must_be_http() {
        assert_eq!(
            parse_url("http://127.0.0.1:8080/")
                .expect("test input")
                .port(),
            Some(8080)
        );
        assert!(parse_url("https://gw.example/function/slblur").is_ok());
        assert!(parse_url("ftp://x/").is_err());
        assert!(parse_url("127.0.0.1:8080").is_err());
        assert!(parse_url("not a url").is_err());
    }

    #[test]
    fn counts_and_widths() {
        assert_eq!(parse_count("3"), Ok(3));
        assert!(parse_count("0").is_err());
        assert!(parse_count("-2").is_err());
        assert_eq!(parse_width("640"), Ok(640));
        assert!(parse_width("8").is_err());
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn run_defaults_match_the_original_client() {
        let cli =
            Cli::try_parse_from(["slblur-client", "run", "--video", "v.mp4"]).expect("test input");
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.think, Duration::ZERO);
        assert_eq!(run.load.timeout, Duration::from_secs(25));
        assert_eq!(run.load.wire, Wire::Binary);
        assert_eq!(run.load.target_list()[0].url.as_str(), DEFAULT_URL);
        assert_eq!(run.load.target_list()[0].name, DEFAULT_TARGET);
    }

    #[test]
    fn targets_need_a_name_and_a_url() {
        let t = parse_target("serverful=http://127.0.0.1:9000/").expect("test input");
        assert_eq!((t.name.as_str(), t.url.port()), ("serverful", Some(9000)));
        assert!(parse_target("=http://x/").is_err());
        assert!(parse_target("http://x/").is_err());
        assert!(parse_target("a b=http://x/").is_err());
        assert!(parse_target("a=ftp://x/").is_err());
    }

    #[test]
    fn rates_thresholds_and_times() {
        assert_eq!(parse_rate_list("2, 0.5"), Ok(RateList(vec![2.0, 0.5])));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("-1").is_err());
        assert!(parse_rate("inf").is_err());
        assert_eq!(parse_threshold(" p95<2s "), Ok("p95<2s".to_string()));
        assert!(parse_threshold("error-rate<5%").is_ok());
        assert!(parse_threshold("p95<").is_err());
        assert!(parse_threshold("fast").is_err());
        assert!(parse_start_at("2026-01-31T12:00:00Z").is_ok());
        assert!(parse_start_at("tomorrow").is_err());
        assert!(parse_run_id("run-1").is_ok());
        assert!(parse_run_id("../x").is_err());
    }

    #[test]
    fn sweep_axes_exclude_each_other() {
        let parse = |args: &[&str]| {
            let mut all = vec!["slblur-client", "sweep", "--video", "v.mp4"];
            all.extend_from_slice(args);
            Cli::try_parse_from(all)
        };
        assert!(parse(&["--users", "1,2", "--think", "0,1"]).is_ok());
        assert!(parse(&["--rate", "2,4"]).is_ok());
        assert!(parse(&["--rate", "2", "--users", "1"]).is_err());
        assert!(parse(&["--users", "0"]).is_err());
        assert!(parse(&["--think", "-1"]).is_err());
        assert!(parse(&["--target", "=http://x/"]).is_err());
        assert!(parse(&["--url", "http://x/", "--target", "a=http://y/"]).is_err());
        assert!(parse(&["--ramp-up", "4s", "--ramp-rate", "1"]).is_err());
        assert!(parse(&["--resume"]).is_err(), "--resume needs --out");
    }
}
