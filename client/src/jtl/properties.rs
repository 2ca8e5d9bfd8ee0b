//! The run's properties (`run.properties`, written by `jmeter/run` and fed to JMeter with `-q`
//! or `-G`): what the converter needs to know that a JTL line does not say.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::JtlError;

/// What a run's properties tell the converter. Every field may be missing: the JTL's own sample
/// variables then have to say it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunProperties {
    pub run_id: Option<String>,
    pub target: Option<String>,
    /// Threads per JMeter engine (the plan's `users` property).
    pub users: Option<u32>,
    /// Seconds slept before each frame (the plan's `think` property).
    pub think_s: Option<f64>,
    /// The remote servers of a distributed run (`remote`, a comma list of HOST:PORT), in the
    /// order given to the master: a server's index is the dataset's `worker`.
    pub remote: Vec<String>,
}

impl RunProperties {
    /// Reads a Java-style properties file (`key=value` or `key: value`, `#`/`!` comments).
    pub fn read(path: &Path) -> Result<RunProperties, JtlError> {
        let text = fs::read_to_string(path).map_err(|source| JtlError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    fn parse(text: &str, path: &Path) -> Result<RunProperties, JtlError> {
        let bad = |line: usize, reason: String| JtlError::Properties {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let mut values = HashMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with(['#', '!']) {
                continue;
            }
            let Some((key, value)) = line.split_once(['=', ':']) else {
                return Err(bad(index + 1, format!("'{line}' is not key=value")));
            };
            values.insert(key.trim(), (index + 1, value.trim()));
        }
        let text_of = |key: &str| {
            values
                .get(key)
                .map(|(_, v)| v.to_string())
                .filter(|v| !v.is_empty())
        };
        let users = match values.get("users") {
            Some((line, v)) => Some(v.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
                bad(*line, format!("users '{v}' is not a positive whole number"))
            })?),
            None => None,
        };
        let think_s = match values.get("think") {
            Some((line, v)) => Some(
                v.parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .ok_or_else(|| bad(*line, format!("think '{v}' is not a number of seconds")))?,
            ),
            None => None,
        };
        let remote = text_of("remote")
            .map(|list| list.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default();
        Ok(RunProperties {
            run_id: text_of("run_id"),
            target: text_of("target"),
            users,
            think_s,
            remote,
        })
    }
}

/// `run.properties` next to the JTL, if there is one.
pub fn beside(jtl: &Path) -> Option<PathBuf> {
    let path = jtl.parent().unwrap_or(Path::new("")).join("run.properties");
    path.is_file().then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RunProperties, JtlError> {
        RunProperties::parse(text, Path::new("run.properties"))
    }

    #[test]
    fn reads_what_jmeter_run_writes() {
        let props = parse(
            "# written by jmeter/run\nrun_id=20260101T000000Z-abc\ntarget = serverless\n\
             users=3\nthink: 1.5\nremote=127.0.0.1:1099, 127.0.0.1:1100\nhost=127.0.0.1\n",
        )
        .expect("valid properties");
        assert_eq!(
            props,
            RunProperties {
                run_id: Some("20260101T000000Z-abc".into()),
                target: Some("serverless".into()),
                users: Some(3),
                think_s: Some(1.5),
                remote: vec!["127.0.0.1:1099".into(), "127.0.0.1:1100".into()],
            }
        );
        assert_eq!(parse("").expect("empty file"), RunProperties::default());
    }

    #[test]
    fn bad_values_name_their_line() {
        let err = parse("target=a\nusers=0\n").expect_err("0 users");
        assert!(
            err.to_string().contains("run.properties:2") && err.to_string().contains("users '0'"),
            "{err}"
        );
        let err = parse("\n\nthink=soon\n").expect_err("bad think");
        assert!(err.to_string().contains("run.properties:3"), "{err}");
        let err = parse("just words\n").expect_err("no key");
        assert!(err.to_string().contains("run.properties:1"), "{err}");
    }
}
