//! Server configuration: every `SLBLUR_*` environment variable, its default and its parser.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::options::{MaskShape, Mode};

/// Everything the server can be told at start-up. `Default` gives the documented defaults
/// except the lock file, which only [`Config::from_env`] turns on (library users opt in).
#[derive(Debug, Clone)]
pub struct Config {
    /// CenterFace ONNX file (`SLBLUR_MODEL`).
    pub model: PathBuf,
    /// Listen address (`SLBLUR_ADDR`).
    pub addr: SocketAddr,
    /// Largest request body accepted, in bytes (`SLBLUR_MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// Largest decoded image accepted, in pixels (`SLBLUR_MAX_PIXELS`).
    pub max_pixels: u64,
    /// Frames wider than this are downscaled for detection; 0 = full resolution (`SLBLUR_INFERENCE_WIDTH`).
    pub inference_width: u32,
    /// Detection score threshold (`SLBLUR_THRESHOLD`).
    pub threshold: f32,
    /// Default anonymization (`SLBLUR_MODE`).
    pub mode: Mode,
    /// Default mask shape (`SLBLUR_MASK`).
    pub mask: MaskShape,
    /// Default mask scale around each face box (`SLBLUR_MASK_SCALE`).
    pub mask_scale: f32,
    /// JPEG output quality (`SLBLUR_JPEG_QUALITY`).
    pub jpeg_quality: u8,
    /// Frames processed at once (`SLBLUR_WORKERS`).
    pub workers: usize,
    /// Threads one inference may use (`SLBLUR_ML_THREADS`).
    pub ml_threads: usize,
    /// Requests that may wait for a worker; beyond that, 429 (`SLBLUR_QUEUE`).
    pub queue: usize,
    /// Per-request deadline, body read to response; past it, 504 (`SLBLUR_TIMEOUT`, seconds).
    pub request_timeout: Duration,
    /// File created when ready, for of-watchdog's `suppress_lock=true` (`SLBLUR_LOCK_FILE`, empty = none).
    pub lock_file: Option<PathBuf>,
    /// Name reported in responses (`HOSTNAME`, as Kubernetes sets it to the pod name).
    pub instance: String,
}

impl Default for Config {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Config {
            model: PathBuf::from("models/centerface.onnx"),
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 48 << 20,
            max_pixels: 8192 * 4320,
            inference_width: 640,
            threshold: 0.2,
            mode: Mode::Blur,
            mask: MaskShape::Ellipse,
            mask_scale: 1.3,
            jpeg_quality: 90,
            workers: 1,
            ml_threads: cores,
            queue: 16,
            request_timeout: Duration::from_secs(25),
            lock_file: None,
            instance: format!("slblur-{}", std::process::id()),
        }
    }
}

/// A variable that is set but cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{var}={value:?}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub value: String,
    pub reason: String,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let d = Config::default();
        let env = Vars(&lookup);
        Ok(Config {
            model: env.get("SLBLUR_MODEL", |s| Ok(PathBuf::from(s)), d.model)?,
            addr: env.get("SLBLUR_ADDR", parse_addr, d.addr)?,
            max_body_bytes: env.get("SLBLUR_MAX_BODY_BYTES", positive, d.max_body_bytes)?,
            max_pixels: env.get("SLBLUR_MAX_PIXELS", positive, d.max_pixels)?,
            inference_width: env.get(
                "SLBLUR_INFERENCE_WIDTH",
                parse_inference_width,
                d.inference_width,
            )?,
            threshold: env.get("SLBLUR_THRESHOLD", parse_threshold, d.threshold)?,
            mode: env.get("SLBLUR_MODE", str::parse, d.mode)?,
            mask: env.get("SLBLUR_MASK", str::parse, d.mask)?,
            mask_scale: env.get("SLBLUR_MASK_SCALE", parse_mask_scale, d.mask_scale)?,
            jpeg_quality: env.get("SLBLUR_JPEG_QUALITY", parse_quality, d.jpeg_quality)?,
            workers: env.get("SLBLUR_WORKERS", positive, d.workers)?,
            ml_threads: env.get("SLBLUR_ML_THREADS", positive, d.ml_threads)?,
            queue: env.get("SLBLUR_QUEUE", parse_count, d.queue)?,
            request_timeout: env.get("SLBLUR_TIMEOUT", parse_seconds, d.request_timeout)?,
            // of-watchdog's lock path by default; an empty value turns the lock file off.
            lock_file: match lookup("SLBLUR_LOCK_FILE") {
                Some(v) if v.is_empty() => None,
                Some(v) => Some(PathBuf::from(v)),
                None => Some(std::env::temp_dir().join(".lock")),
            },
            instance: lookup("HOSTNAME")
                .filter(|h| !h.is_empty())
                .unwrap_or(d.instance),
        })
    }
}

/// Variables read through a lookup function.
struct Vars<F>(F);

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    /// `var` parsed by `parser`, or `default` when unset; an unusable value names the variable.
    fn get<T>(
        &self,
        var: &'static str,
        parser: impl Fn(&str) -> Result<T, String>,
        default: T,
    ) -> Result<T, ConfigError> {
        let Some(value) = (self.0)(var) else {
            return Ok(default);
        };
        parser(value.trim()).map_err(|reason| ConfigError { var, value, reason })
    }
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    SocketAddr::from_str(s).map_err(|_| "expected HOST:PORT, e.g. 0.0.0.0:8080".into())
}

fn parse_count(s: &str) -> Result<usize, String> {
    s.parse().map_err(|_| "expected a whole number".into())
}

fn positive<T: FromStr + PartialOrd + Default>(s: &str) -> Result<T, String> {
    match s.parse::<T>() {
        Ok(n) if n > T::default() => Ok(n),
        _ => Err("expected a whole number above 0".into()),
    }
}

/// Detection width: 0 (full resolution) or 32..=8192 pixels.
pub fn parse_inference_width(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(0) => Ok(0),
        Ok(w) if (32..=8192).contains(&w) => Ok(w),
        _ => Err("expected 0 (full resolution) or a width from 32 to 8192 pixels".into()),
    }
}

/// Score threshold strictly between 0 and 1.
pub fn parse_threshold(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(t) if t > 0.0 && t < 1.0 => Ok(t),
        _ => Err("expected a number between 0 and 1 (exclusive), e.g. 0.2".into()),
    }
}

/// Mask scale from 1 (the box itself) to 3.
pub fn parse_mask_scale(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(m) if (1.0..=3.0).contains(&m) => Ok(m),
        _ => Err("expected a number from 1.0 to 3.0, e.g. 1.3".into()),
    }
}

/// JPEG quality 1..=100.
pub fn parse_quality(s: &str) -> Result<u8, String> {
    match s.parse::<u8>() {
        Ok(q) if (1..=100).contains(&q) => Ok(q),
        _ => Err("expected a whole number from 1 to 100".into()),
    }
}

/// Seconds as a positive decimal, e.g. `25` or `0.5`.
pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(x) if x > 0.0 && x <= 86_400.0 => Ok(Duration::from_secs_f64(x)),
        _ => Err("expected seconds above 0, e.g. 25 or 0.5".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let c = from(&[]).expect("defaults");
        assert_eq!(c.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(c.model, PathBuf::from("models/centerface.onnx"));
        assert_eq!(c.inference_width, 640);
        assert_eq!(c.lock_file, Some(std::env::temp_dir().join(".lock")));
    }

    #[test]
    fn reads_every_variable() {
        let c = from(&[
            ("SLBLUR_ADDR", "0.0.0.0:8082"),
            ("SLBLUR_MODEL", "/m.onnx"),
            ("SLBLUR_MODE", "mosaic"),
            ("SLBLUR_MASK", "box"),
            ("SLBLUR_MASK_SCALE", "1.5"),
            ("SLBLUR_THRESHOLD", "0.4"),
            ("SLBLUR_INFERENCE_WIDTH", "0"),
            ("SLBLUR_TIMEOUT", "0.5"),
            ("SLBLUR_QUEUE", "0"),
            ("SLBLUR_LOCK_FILE", ""),
            ("HOSTNAME", "pod-1"),
        ])
        .expect("valid");
        assert_eq!(c.addr.port(), 8082);
        assert_eq!(c.mode, Mode::Mosaic);
        assert_eq!(c.mask, MaskShape::Box);
        assert_eq!(c.inference_width, 0);
        assert_eq!(c.request_timeout, Duration::from_millis(500));
        assert_eq!(c.queue, 0);
        assert_eq!(c.lock_file, None);
        assert_eq!(c.instance, "pod-1");
    }

    #[test]
    fn rejects_bad_values_naming_the_variable() {
        for (var, value) in [
            ("SLBLUR_ADDR", "8080"),
            ("SLBLUR_WORKERS", "0"),
            ("SLBLUR_THRESHOLD", "1.5"),
            ("SLBLUR_MODE", "pixelate"),
            ("SLBLUR_INFERENCE_WIDTH", "16"),
            ("SLBLUR_TIMEOUT", "-1"),
            ("SLBLUR_JPEG_QUALITY", "101"),
        ] {
            let err = from(&[(var, value)]).expect_err(var);
            assert_eq!(err.var, var);
            assert!(err.to_string().contains(value), "{err}");
        }
    }

    #[test]
    fn value_parsers_accept_their_ranges() {
        assert_eq!(parse_inference_width("32"), Ok(32));
        assert!(parse_inference_width("31").is_err());
        assert_eq!(parse_quality("1"), Ok(1));
        assert!(parse_quality("0").is_err());
        assert_eq!(parse_mask_scale("3"), Ok(3.0));
        assert!(parse_mask_scale("0.9").is_err());
        assert!(parse_threshold("0").is_err());
        assert_eq!(parse_seconds("25"), Ok(Duration::from_secs(25)));
        assert!(parse_seconds("abc").is_err());
    }
}
