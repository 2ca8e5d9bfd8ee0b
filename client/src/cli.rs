//! Command line: the `slblur-client` subcommands, their options and the value parsers.
//!
//! Durations accept plain seconds (`0`, `1.5`) or units (`500ms`, `2m`, `1m30s`), so think
//! times can be written the way the original experiments named them ("0, 1, 5 seconds").

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use reqwest::Url;

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
        slblur-client sweep --video samples/astronaut.mp4 --users 1,2,4 --think 0,1,5 --frames 20"
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
    /// Run every (users × think time) cell of a grid, one cell after another, into one CSV.
    Sweep(SweepArgs),
    /// Turn results into summary.csv, summary.md, PNG plots and index.html, with the model's fit.
    Report(crate::report::ReportArgs),
    /// Predict throughput and response time for users (closed) or request rates (open).
    Model(crate::model::command::ModelArgs),
    /// Convert a JMeter results file (JTL) from jmeter/*.jmx into the results dataset.
    ImportJtl(crate::jtl::ImportJtlArgs),
}

/// Image format of the frames sent to the function (and of `frames` output files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImageFormat {
    Jpeg,
    Png,
}

/// The three request/response formats the function speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Wire {
    /// Raw JPEG/PNG body; timings come back in the Server-Timing header.
    Binary,
    /// `{"image": "<base64>"}`; the response is JSON with faces and timings.
    Json,
    /// The original Python system's format: base64 text in, text lines out.
    Seed,
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
    #[arg(long, value_enum, default_value_t = ImageFormat::Jpeg)]
    pub format: ImageFormat,
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

/// Options shared by `run` and `sweep`: target, video, wire format, limits, output.
#[derive(Debug, Args, Clone)]
pub struct LoadArgs {
    /// Function URL (on OpenFaaS: http://GATEWAY:8080/function/slblur).
    #[arg(long, env = "SLBLUR_URL", default_value = DEFAULT_URL, value_parser = parse_url)]
    pub url: Url,
    /// Video whose frames are sent (any format FFmpeg reads).
    #[arg(long, value_name = "PATH")]
    pub video: PathBuf,
    /// Request format: binary (image body), json (base64 in JSON) or seed (the original system's).
    #[arg(long, value_enum, default_value_t = Wire::Binary)]
    pub wire: Wire,
    /// Image format of the frames [default: jpeg, png for --wire seed].
    #[arg(long, value_enum)]
    pub format: Option<ImageFormat>,
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
    /// CSV file the rows are appended to (created with a header if missing).
    #[arg(long, short = 'o', default_value = "results.csv", value_name = "PATH")]
    pub out: PathBuf,
    /// Also write the one-line JSON summary (the last stdout line) to this file.
    #[arg(long, value_name = "PATH")]
    pub summary_json: Option<PathBuf>,
    /// Do not draw the progress bar (it is only drawn when stdout is a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    /// Sleep this long before each request, the first one included (like client.py).
    #[arg(long, default_value = "0", value_name = "DURATION", value_parser = parse_duration)]
    pub think: Duration,
    /// Put the returned (blurred) frames back together into this video, at the input's frame
    /// rate and with its audio.
    #[arg(long, value_name = "PATH")]
    pub save_video: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    /// Concurrent users per cell: a comma list, ranges allowed (1,2,4 or 1-9).
    #[arg(long, default_value = "1,2,4", value_name = "LIST", value_parser = parse_users)]
    pub users: UserList,
    /// Think times per cell: a comma list of durations (0,1,5 or 0,500ms,2s).
    #[arg(long, default_value = "0,1,5", value_name = "LIST", value_parser = parse_think_list)]
    pub think: ThinkList,
    /// Spread the start of a cell's users evenly over this long (JMeter's ramp-up).
    #[arg(long, default_value = "0", value_name = "DURATION", value_parser = parse_duration)]
    pub ramp_up: Duration,
}

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
        assert_eq!(run.load.url.as_str(), DEFAULT_URL);
    }
}
