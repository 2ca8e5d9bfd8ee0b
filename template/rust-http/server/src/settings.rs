//! The server's environment: `<NAME>_ADDR`, `_MAX_BODY_BYTES`, `_WORKERS`, `_QUEUE`, `_TIMEOUT`,
//! `_GRACE`, `_LOCK_FILE`, the connection limits (`_HEADER_TIMEOUT`, `_BODY_TIMEOUT`,
//! `_WRITE_TIMEOUT`, `_MAX_CONNECTIONS`, `_MAX_BUFFERED_BYTES`, `_DRAIN_TIMEOUT`) and
//! `_TOKEN_FILE` (NAME is the function's name in upper case), and of-watchdog's own
//! variables where they say the same thing: the address from `upstream_url`, the grace from
//! `healthcheck_interval` (else `write_timeout`, as the watchdog itself falls back).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::auth::Token;

/// What every function's server can be told at start-up. `Default` gives the documented
/// defaults except the lock file, which only [`Settings::from_lookup`] turns on.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address (`_ADDR`; else the host and port of `upstream_url`; else 127.0.0.1:8080).
    pub addr: SocketAddr,
    /// Largest request body accepted, in bytes (`_MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// Requests handled at once (`_WORKERS`).
    pub workers: usize,
    /// Requests that may wait for a worker; beyond that, 429 (`_QUEUE`).
    pub queue: usize,
    /// Per-request deadline, body read to response; past it, 504 (`_TIMEOUT`; else 1 s under
    /// of-watchdog's `exec_timeout`, whose bare 504 would otherwise answer first; else 25 s).
    pub request_timeout: Duration,
    /// After SIGTERM, how long to keep serving with health failing before the drain (`_GRACE`;
    /// else `healthcheck_interval`, else `write_timeout`; else none).
    pub grace: Duration,
    /// Created when ready, for of-watchdog's `suppress_lock=true` (`_LOCK_FILE`, empty = none;
    /// default `$TMPDIR/.lock`, where the watchdog's `/_/health` looks).
    pub lock_file: Option<PathBuf>,
    /// Whether of-watchdog removes the lock file on SIGTERM (`suppress_lock=true`: it still
    /// removes the file it no longer writes). The watchdog then owns removal, the function only
    /// creates the file; removing it from both sides made the watchdog log a failure.
    pub watchdog_removes_lock: bool,
    /// Name reported in responses (`HOSTNAME`, which Kubernetes sets to the pod name).
    pub instance: String,
    /// A request head must arrive within this of the connection opening or of its previous
    /// response; idle keep-alive connections close after it too (`_HEADER_TIMEOUT`).
    pub header_timeout: Duration,
    /// The whole body must arrive within this of its head; past it, 408 (`_BODY_TIMEOUT`).
    pub body_timeout: Duration,
    /// A response write that makes no progress for this long drops the connection
    /// (`_WRITE_TIMEOUT`), so clients that never read cannot pin memory.
    pub write_timeout: Duration,
    /// Connections open at once; beyond it, new ones get 503 and are closed
    /// (`_MAX_CONNECTIONS`; default 512, kept below the open-file limit).
    pub max_connections: usize,
    /// Request bodies held at once (being read, queued or being handled), in bytes; beyond it,
    /// 429 (`_MAX_BUFFERED_BYTES`).
    pub max_buffered_bytes: usize,
    /// After the grace, how long requests in flight may take before the process exits anyway
    /// (`_DRAIN_TIMEOUT`; default: the request deadline, past which their clients have a 504).
    pub drain_timeout: Duration,
    /// When set, function requests must carry `Authorization: Bearer <token>`; the token is
    /// read from the file `_TOKEN_FILE` names (unset = open).
    pub token: Option<Token>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 48 << 20,
            workers: 1,
            queue: 16,
            request_timeout: Duration::from_secs(25),
            grace: Duration::ZERO,
            lock_file: None,
            watchdog_removes_lock: false,
            instance: format!("fn-{}", std::process::id()),
            header_timeout: Duration::from_secs(15),
            body_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            max_connections: default_max_connections(),
            max_buffered_bytes: 256 << 20,
            drain_timeout: Duration::from_secs(25),
            token: None,
        }
    }
}

/// 512, or fewer when the open-file limit is low: each connection is a descriptor, and the
/// process needs some of its own (model, logs, accept, the overflow connections of
/// [`crate::listen`]) so that `accept()` never fails.
fn default_max_connections() -> usize {
    let soft_limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("Max open files"))?;
            line.split_whitespace().nth(3)?.parse::<usize>().ok()
        });
    match soft_limit {
        Some(limit) => 512.min(limit.saturating_sub(64)).max(16),
        None => 512,
    }
}

/// A variable that is set but cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{var}={value:?}: {reason}")]
pub struct SettingError {
    pub var: String,
    pub value: String,
    pub reason: String,
}

/// Variables read through a lookup function, so tests need not touch the process environment.
pub struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Env<'a> {
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Env<'a> {
        Env { lookup }
    }

    pub fn raw(&self, var: &str) -> Option<String> {
        (self.lookup)(var)
    }

    /// `var` parsed by `parser`, or `None` when unset; an unusable value names the variable.
    pub fn parse<T>(
        &self,
        var: &str,
        parser: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, SettingError> {
        let Some(value) = self.raw(var) else {
            return Ok(None);
        };
        parser(value.trim())
            .map(Some)
            .map_err(|reason| SettingError {
                var: var.to_string(),
                value,
                reason,
            })
    }

    /// `var` parsed by `parser`, or `default` when unset.
    pub fn get<T>(
        &self,
        var: &str,
        parser: impl Fn(&str) -> Result<T, String>,
        default: T,
    ) -> Result<T, SettingError> {
        Ok(self.parse(var, parser)?.unwrap_or(default))
    }
}

/// What of-watchdog's own variables (set in the same environment) say the defaults should be.
struct Watchdog {
    /// `upstream_url`: where the watchdog forwards, so where to listen.
    addr: Option<SocketAddr>,
    /// `healthcheck_interval` (else `write_timeout`): how long it keeps forwarding after SIGTERM.
    grace: Option<Duration>,
    /// 1 s under `exec_timeout`, so the function's JSON 504 arrives before the watchdog's own.
    deadline: Option<Duration>,
    /// `suppress_lock=true`: the watchdog removes the lock file at SIGTERM itself.
    removes_lock: bool,
}

impl Watchdog {
    fn from_env(env: &Env) -> Result<Watchdog, SettingError> {
        let grace = match env.parse("healthcheck_interval", parse_duration)? {
            Some(grace) => Some(grace),
            None => env.parse("write_timeout", parse_duration)?,
        };
        let deadline = env
            .parse("exec_timeout", parse_duration)?
            .filter(|exec| *exec > Duration::from_secs(2))
            .map(|exec| exec - Duration::from_secs(1));
        Ok(Watchdog {
            addr: env.parse("upstream_url", parse_upstream_url)?,
            grace,
            deadline,
            removes_lock: env.raw("suppress_lock").is_some_and(|v| v == "true"),
        })
    }
}

/// One environment variable as `--help` and the docs list it: its name after the function's
/// prefix (`WORKERS` is `SLBLUR_WORKERS` for slblur), its default and what it sets. Every
/// variable is named once, here or in the function's own list, and read by that name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variable {
    pub name: &'static str,
    pub default: &'static str,
    pub what: &'static str,
}

impl Variable {
    /// The full name for the function called `function`: `SLBLUR_WORKERS`.
    pub fn for_function(&self, function: &str) -> String {
        format!("{}_{}", env_prefix(function), self.name)
    }
}

macro_rules! variables {
    ($($id:ident = $name:literal, $default:literal, $what:literal;)+) => {
        /// The server's variables, each prefixed with the function's name.
        pub mod var {
            use super::Variable;
            $(pub const $id: Variable = Variable { name: $name, default: $default, what: $what };)+
        }
        /// Every server variable, in `--help` order.
        pub const SERVER_VARIABLES: &[Variable] = &[$(var::$id),+];
    };
}

variables! {
    ADDR = "ADDR", "from upstream_url, else 127.0.0.1:8080", "listen address";
    MAX_BODY_BYTES = "MAX_BODY_BYTES", "50331648", "largest request body";
    WORKERS = "WORKERS", "1", "requests handled at once";
    QUEUE = "QUEUE", "16", "requests waiting for a worker before 429";
    TIMEOUT = "TIMEOUT", "1 s under exec_timeout, else 25", "per-request deadline in seconds before 504";
    GRACE = "GRACE", "healthcheck_interval, else write_timeout, else 0", "serving time after SIGTERM";
    LOCK_FILE = "LOCK_FILE", "$TMPDIR/.lock; empty = none", "created when ready";
    HEADER_TIMEOUT = "HEADER_TIMEOUT", "15", "seconds for a request head, and for an idle connection";
    BODY_TIMEOUT = "BODY_TIMEOUT", "10", "seconds for a whole body before 408";
    WRITE_TIMEOUT = "WRITE_TIMEOUT", "10", "seconds a response write may stall before the connection drops";
    MAX_CONNECTIONS = "MAX_CONNECTIONS", "512, below the open-file limit", "connections at once; more get 503";
    MAX_BUFFERED_BYTES = "MAX_BUFFERED_BYTES", "256 MiB, or twice the body limit", "request body bytes held at once before 429";
    DRAIN_TIMEOUT = "DRAIN_TIMEOUT", "the TIMEOUT", "seconds requests in flight may take after the grace";
    TOKEN_FILE = "TOKEN_FILE", "none", "file holding the bearer token requests must send";
    LOG = "LOG", "RUST_LOG, else info", "log filter";
    LOG_FORMAT = "LOG_FORMAT", "LOG_FORMAT, else text", "log format: json for JSON lines";
}

/// `  SLBLUR_WORKERS   requests handled at once (default 1)` lines, names aligned.
pub fn render_variables(function: &str, variables: &[Variable]) -> String {
    let names: Vec<String> = variables.iter().map(|v| v.for_function(function)).collect();
    let width = names.iter().map(String::len).max().unwrap_or(0);
    names
        .iter()
        .zip(variables)
        .map(|(name, v)| format!("  {name:<width$}  {} (default: {})\n", v.what, v.default))
        .collect()
}

/// `my-fn` → `MY_FN`: the prefix of a function's variables.
pub fn env_prefix(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

impl Settings {
    /// Reads the variables of the function called `name` through `lookup`.
    pub fn from_lookup(
        name: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, SettingError> {
        let env = Env::new(lookup);
        let named = |v: Variable| v.for_function(name);
        let d = Settings::default();
        let watchdog = Watchdog::from_env(&env)?;
        let lock_file = match env.raw(&named(var::LOCK_FILE)) {
            Some(v) if v.is_empty() => None,
            Some(v) => Some(PathBuf::from(v)),
            None => Some(std::env::temp_dir().join(".lock")),
        };
        let max_body_bytes = env.get(&named(var::MAX_BODY_BYTES), positive, d.max_body_bytes)?;
        let request_timeout = env.get(
            &named(var::TIMEOUT),
            parse_seconds,
            watchdog.deadline.unwrap_or(d.request_timeout),
        )?;
        let token = env.parse(&named(var::TOKEN_FILE), |path| {
            Token::from_file(std::path::Path::new(path))
        })?;
        Ok(Settings {
            addr: env.get(
                &named(var::ADDR),
                parse_addr,
                watchdog.addr.unwrap_or(d.addr),
            )?,
            max_body_bytes,
            workers: env.get(&named(var::WORKERS), positive, d.workers)?,
            queue: env.get(&named(var::QUEUE), parse_count, d.queue)?,
            request_timeout,
            grace: env.get(
                &named(var::GRACE),
                parse_duration,
                watchdog.grace.unwrap_or(d.grace),
            )?,
            lock_file,
            watchdog_removes_lock: watchdog.removes_lock,
            instance: env
                .raw("HOSTNAME")
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| format!("{name}-{}", std::process::id())),
            header_timeout: env.get(
                &named(var::HEADER_TIMEOUT),
                parse_seconds,
                d.header_timeout,
            )?,
            body_timeout: env.get(&named(var::BODY_TIMEOUT), parse_seconds, d.body_timeout)?,
            write_timeout: env.get(&named(var::WRITE_TIMEOUT), parse_seconds, d.write_timeout)?,
            max_connections: env.get(&named(var::MAX_CONNECTIONS), positive, d.max_connections)?,
            max_buffered_bytes: env.get(
                &named(var::MAX_BUFFERED_BYTES),
                positive,
                d.max_buffered_bytes.max(2 * max_body_bytes),
            )?,
            drain_timeout: env.get(&named(var::DRAIN_TIMEOUT), parse_seconds, request_timeout)?,
            token,
        })
    }

    /// Requests admitted at once: working plus waiting.
    pub fn capacity(&self) -> usize {
        self.workers + self.queue
    }

    /// Settings that fight of-watchdog's (set in the same environment): its `exec_timeout`
    /// answers an empty 504 before our JSON one, its `max_inflight` a bare 429 before ours.
    pub fn watchdog_conflicts(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
        let env = Env::new(lookup);
        let mut found = Vec::new();
        if let Ok(Some(exec)) = env.parse("exec_timeout", parse_duration)
            && !exec.is_zero()
            && self.request_timeout >= exec
        {
            found.push(format!(
                "the deadline ({:?}) is not below of-watchdog's exec_timeout ({exec:?}): clients \
                 get the watchdog's empty 504 instead of the function's",
                self.request_timeout
            ));
        }
        if let Ok(Some(max)) = env.parse("max_inflight", parse_count)
            && max > 0
            && max < self.capacity()
        {
            found.push(format!(
                "of-watchdog's max_inflight ({max}) is below workers + queue ({}): its plain 429 \
                 without Retry-After answers first",
                self.capacity()
            ));
        }
        found
    }
}

pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    SocketAddr::from_str(s).map_err(|_| "expected HOST:PORT, e.g. 0.0.0.0:8080".into())
}

/// `http://127.0.0.1:8082` → the address to listen on.
pub fn parse_upstream_url(s: &str) -> Result<SocketAddr, String> {
    let rest = s
        .strip_prefix("http://")
        .ok_or("expected http://HOST:PORT")?;
    let authority = rest.split('/').next().unwrap_or_default();
    authority
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| "expected http://HOST:PORT with a resolvable host".into())
}

pub fn parse_count(s: &str) -> Result<usize, String> {
    s.parse().map_err(|_| "expected a whole number".into())
}

pub fn positive<T: FromStr + PartialOrd + Default>(s: &str) -> Result<T, String> {
    match s.parse::<T>() {
        Ok(n) if n > T::default() => Ok(n),
        _ => Err("expected a whole number above 0".into()),
    }
}

/// Seconds as a positive decimal, e.g. `25` or `0.5`.
pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(x) if x > 0.0 && x <= 86_400.0 => Ok(Duration::from_secs_f64(x)),
        _ => Err("expected seconds above 0, e.g. 25 or 0.5".into()),
    }
}

/// A duration as of-watchdog writes them (Go: `5s`, `1m30s`, `500ms`), or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let invalid = || format!("expected a duration such as 5s, 1m30s, 500ms or 2.5, got {s:?}");
    if let Ok(seconds) = s.parse::<f64>() {
        return (0.0..=86_400.0)
            .contains(&seconds)
            .then(|| Duration::from_secs_f64(seconds))
            .ok_or_else(invalid);
    }
    let mut total = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let value: f64 = rest[..number_len].parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return Err(invalid()),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    if total > 86_400.0 {
        return Err(invalid());
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Settings, SettingError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup("my-fn", &|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let s = from(&[]).expect("defaults");
        assert_eq!(s.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.grace, Duration::ZERO);
        assert_eq!(s.lock_file, Some(std::env::temp_dir().join(".lock")));
        assert!(!s.watchdog_removes_lock);
        assert!(s.instance.starts_with("my-fn-"), "{}", s.instance);
    }

    #[test]
    fn of_watchdog_with_suppress_lock_removes_the_lock_itself() {
        assert!(
            from(&[("suppress_lock", "true")])
                .expect("valid")
                .watchdog_removes_lock
        );
        assert!(
            !from(&[("suppress_lock", "false")])
                .expect("valid")
                .watchdog_removes_lock
        );
    }

    #[test]
    fn reads_the_prefixed_variables() {
        let s = from(&[
            ("MY_FN_ADDR", "0.0.0.0:8082"),
            ("MY_FN_WORKERS", "2"),
            ("MY_FN_QUEUE", "0"),
            ("MY_FN_TIMEOUT", "0.5"),
            ("MY_FN_GRACE", "3s"),
            ("MY_FN_LOCK_FILE", ""),
            ("HOSTNAME", "pod-1"),
        ])
        .expect("valid");
        assert_eq!(s.addr.port(), 8082);
        assert_eq!((s.workers, s.queue), (2, 0));
        assert_eq!(s.request_timeout, Duration::from_millis(500));
        assert_eq!(s.grace, Duration::from_secs(3));
        assert_eq!(s.lock_file, None);
        assert_eq!(s.instance, "pod-1");
    }

    #[test]
    fn reads_the_connection_limits_and_the_token_file() {
        let s = from(&[]).expect("defaults");
        assert!(s.token.is_none(), "no token unless a file is named");
        assert_eq!(
            s.drain_timeout, s.request_timeout,
            "in flight at most its own deadline"
        );
        assert!(s.max_connections <= 512);
        assert!(
            s.max_buffered_bytes >= 2 * s.max_body_bytes,
            "room for two full bodies at least"
        );
        let token = std::env::temp_dir().join(format!("my-fn-token-{}", std::process::id()));
        std::fs::write(&token, "abc123\n").expect("write");
        let path = token.display().to_string();
        let s = from(&[
            ("MY_FN_HEADER_TIMEOUT", "2"),
            ("MY_FN_BODY_TIMEOUT", "3"),
            ("MY_FN_WRITE_TIMEOUT", "4"),
            ("MY_FN_DRAIN_TIMEOUT", "5"),
            ("MY_FN_MAX_CONNECTIONS", "64"),
            ("MY_FN_MAX_BUFFERED_BYTES", "1000"),
            ("MY_FN_TOKEN_FILE", &path),
        ])
        .expect("valid");
        let seconds = [
            s.header_timeout,
            s.body_timeout,
            s.write_timeout,
            s.drain_timeout,
        ]
        .map(|d| d.as_secs());
        assert_eq!(seconds, [2, 3, 4, 5]);
        assert_eq!((s.max_connections, s.max_buffered_bytes), (64, 1000));
        assert_eq!(s.token, Some(Token::new(b"abc123").expect("valid")));
        let _ = std::fs::remove_file(&token);
        let err = from(&[("MY_FN_TOKEN_FILE", &path)]).expect_err("gone");
        assert_eq!(err.var, "MY_FN_TOKEN_FILE");
        assert!(err.reason.contains("cannot read the token file"), "{err}");
        assert!(!err.to_string().contains("abc123"));
    }

    #[test]
    fn follows_the_watchdog_where_not_told_otherwise() {
        let s = from(&[
            ("upstream_url", "http://127.0.0.1:8082"),
            ("write_timeout", "30s"),
        ])
        .expect("valid");
        assert_eq!(s.addr.to_string(), "127.0.0.1:8082");
        assert_eq!(
            s.grace,
            Duration::from_secs(30),
            "grace falls back to write_timeout"
        );
        let s = from(&[("exec_timeout", "24s")]).expect("valid");
        assert_eq!(
            s.request_timeout,
            Duration::from_secs(23),
            "the deadline stays under exec_timeout"
        );
        let s = from(&[("healthcheck_interval", "5s"), ("write_timeout", "30s")]).expect("valid");
        assert_eq!(s.grace, Duration::from_secs(5));
        let s = from(&[("healthcheck_interval", "5s"), ("MY_FN_GRACE", "0")]).expect("valid");
        assert_eq!(s.grace, Duration::ZERO, "our own variable wins");
    }

    #[test]
    fn rejects_bad_values_naming_the_variable() {
        for (var, value) in [
            ("MY_FN_ADDR", "8080"),
            ("MY_FN_WORKERS", "0"),
            ("MY_FN_TIMEOUT", "-1"),
            ("MY_FN_GRACE", "5 minutes"),
            ("upstream_url", "127.0.0.1:8082"),
        ] {
            let err = from(&[(var, value)]).expect_err(var);
            assert_eq!(err.var, var);
            assert!(err.to_string().contains(value), "{err}");
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("-1").is_err());
    }

    #[test]
    fn names_settings_that_fight_the_watchdog() {
        let s = from(&[("MY_FN_TIMEOUT", "25"), ("MY_FN_QUEUE", "8")]).expect("valid");
        let env: HashMap<&str, &str> = [("exec_timeout", "25s"), ("max_inflight", "4")].into();
        let found = s.watchdog_conflicts(&|k| env.get(k).map(|v| v.to_string()));
        assert_eq!(found.len(), 2, "{found:?}");
        let env: HashMap<&str, &str> = [("exec_timeout", "26s")].into();
        assert!(
            s.watchdog_conflicts(&|k| env.get(k).map(|v| v.to_string()))
                .is_empty()
        );
    }
}
