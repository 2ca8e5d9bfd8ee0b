//! Value parsers for the command line: durations (plain seconds `1.5`, or units `500ms`, `2m`,
//! `1m30s`, so think times can be written the way the original experiments named them:
//! "0, 1, 5 seconds"), comma lists with ranges, targets, URLs, rates and counts. Each error
//! says what was expected; clap prints it with exit status 2.

use std::time::Duration;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use reqwest::Url;
use slblur_protocol::{ImageKind, Wire};

use crate::record::Invocation;
use crate::report::ServersSpec;
use crate::rig::plan::TargetSpec;

/// Where the function listens when run locally (`scripts/demo`, `cargo run -p slblur`).
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080/";

/// `--wire`: the protocol's three request/response formats, each explained in `--help`.
pub fn wire_parser() -> impl TypedValueParser<Value = Wire> {
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
pub fn image_kind_parser() -> impl TypedValueParser<Value = ImageKind> {
    PossibleValuesParser::new(ImageKind::ALL.map(ImageKind::name))
        .try_map(|name| name.parse::<ImageKind>())
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
    target(s, Invocation::Sync)
}

/// `NAME=URL` of an asynchronous target (OpenFaaS's `/async-function/NAME`).
pub fn parse_async_target(s: &str) -> Result<TargetSpec, String> {
    target(s, Invocation::Async)
}

fn target(s: &str, invocation: Invocation) -> Result<TargetSpec, String> {
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
        invocation,
    })
}

/// A positive factor up to 1,000,000 (`--trace-scale`, `--trace-speedup`).
pub fn parse_factor(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 && f <= 1_000_000.0 => Ok(f),
        _ => Err(format!("'{s}' is not a factor above 0 (at most 1000000)")),
    }
}

/// `A-B`: minutes of a trace, 1-based and inclusive.
pub fn parse_minutes(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("'{s}' is not a range of minutes A-B (e.g. 1-60)");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let (a, b) = (
        a.trim().parse::<usize>().map_err(|_| bad())?,
        b.trim().parse::<usize>().map_err(|_| bad())?,
    );
    if a == 0 || a > b {
        return Err(format!("'{s}': minutes start at 1 and A is at most B"));
    }
    Ok((a, b))
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

/// `--servers`: `C` for every target or `NAME=C`, C from 1 to 100000.
pub fn parse_servers(s: &str) -> Result<ServersSpec, String> {
    let (target, count) = match s.split_once('=') {
        Some((name, count)) if !name.trim().is_empty() => (Some(name.trim().to_string()), count),
        Some(_) => return Err(format!("'{s}' has no target name before '='")),
        None => (None, s),
    };
    match count.trim().parse::<u32>() {
        Ok(n @ 1..=100_000) => Ok(ServersSpec { target, servers: n }),
        _ => Err(format!(
            "'{count}' is not a number of servers (1 to 100000); write C or NAME=C"
        )),
    }
}

/// A positive, finite number of milliseconds.
pub fn parse_positive_ms(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a positive number of milliseconds")),
    }
}

/// Zero or a positive, finite number of milliseconds.
pub fn parse_non_negative_ms(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a number of milliseconds (0 or more)")),
    }
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
        assert!(parse_rate_list("1,,2").is_err());
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
    fn milliseconds_and_servers() {
        assert_eq!(parse_positive_ms("150"), Ok(150.0));
        assert!(parse_positive_ms("0").is_err());
        assert!(parse_positive_ms("NaN").is_err());
        assert_eq!(parse_non_negative_ms("0"), Ok(0.0));
        assert!(parse_non_negative_ms("-1").is_err());
        assert_eq!(
            parse_servers("b=3"),
            Ok(ServersSpec {
                target: Some("b".into()),
                servers: 3
            })
        );
        assert!(parse_servers("=3").is_err());
        assert!(parse_servers("0").is_err());
    }
}
