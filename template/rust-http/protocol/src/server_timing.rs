//! The `Server-Timing` header (W3C): `name;dur=ms` entries, comma-separated, in the order the
//! stages ran. [`write`] is what the server sends; [`parse`] reads it back tolerantly (other
//! servers add `desc` parameters, quotes or entries without a duration).

/// `[("queue", 0.0), ("ml", 12.3456)]` → `queue;dur=0.000, ml;dur=12.346`.
pub fn write(stages: &[(&str, f64)]) -> String {
    stages
        .iter()
        .map(|(name, ms)| format!("{name};dur={ms:.3}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `queue;dur=0.01, ml;dur=150.2;desc="x"` → `[("queue", 0.01), ("ml", 150.2)]`. Entries with no
/// name or no numeric `dur` are skipped.
pub fn parse(value: &str) -> Vec<(String, f64)> {
    value
        .split(',')
        .filter_map(|metric| {
            let mut parts = metric.split(';').map(str::trim);
            let name = parts.next().filter(|n| !n.is_empty())?;
            let dur = parts.find_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("dur")
                    .then(|| v.trim().trim_matches('"').parse::<f64>().ok())?
            })?;
            Some((name.to_string(), dur))
        })
        .collect()
}

/// The duration of stage `name` (names compare case-insensitively).
pub fn find(timing: &[(String, f64)], name: &str) -> Option<f64> {
    timing
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_stages_parse_back_in_order() {
        let header = write(&[("queue", 0.0), ("ml", 12.3456), ("total", 20.0)]);
        assert_eq!(header, "queue;dur=0.000, ml;dur=12.346, total;dur=20.000");
        let parsed = parse(&header);
        assert_eq!(
            parsed,
            [
                ("queue".to_string(), 0.0),
                ("ml".to_string(), 12.346),
                ("total".to_string(), 20.0)
            ]
        );
        assert_eq!(find(&parsed, "ML"), Some(12.346));
        assert_eq!(find(&parsed, "blur"), None);
    }

    #[test]
    fn foreign_headers_are_parsed_tolerantly() {
        let t = parse(
            "queue;dur=0.01, decode;dur=3.1, ml;dur=150.2, blur;desc=\"b\";dur=1, total;dur=160.0, bad, x;dur=y",
        );
        assert_eq!(t[2], ("ml".to_string(), 150.2));
        assert_eq!(t[3], ("blur".to_string(), 1.0));
        assert_eq!(t.last(), Some(&("total".to_string(), 160.0)));
        assert_eq!(t.len(), 5);
    }
}
