//! The seed format's reply, as the original Python function wrote it: plain text whose lines the
//! original client read with regexes — `Elapsed ML time: <s>`, `Total time: <s>`, then
//! `{'text': 'serveRR', 'img': '<base64>'}`. Here `img` carries the anonymized PNG (the
//! original's last version left it empty). The request is the base64 text of a PNG, with no
//! Content-Type.

/// The reply's Content-Type.
pub const CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// The reply text for a frame's ML and handler times (milliseconds; written in seconds) and
/// its base64 image.
pub fn render(ml_ms: f64, total_ms: f64, image_base64: &[u8]) -> Vec<u8> {
    let mut text = format!(
        "Elapsed ML time: {:.6}\nTotal time: {:.6}\n{{'text': 'serveRR', 'img': '",
        ml_ms / 1000.0,
        total_ms / 1000.0
    )
    .into_bytes();
    text.reserve(image_base64.len() + 3);
    text.extend_from_slice(image_base64);
    text.extend_from_slice(b"'}\n");
    text
}

/// What a seed reply says, times in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedReply<'a> {
    pub ml_ms: f64,
    pub total_ms: f64,
    /// The base64 image, when `img` is not empty.
    pub image: Option<&'a str>,
}

/// Reads a seed reply like the original regexes did: each label anywhere in the text, the
/// number after it. `None` when either time is missing.
pub fn parse(text: &str) -> Option<SeedReply<'_>> {
    let seconds = |label: &str| -> Option<f64> {
        let rest = &text[text.find(label)? + label.len()..];
        let rest = rest.trim_start_matches([':', ' ', '\t']);
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+')))
            .unwrap_or(rest.len());
        rest[..end].parse::<f64>().ok()
    };
    let ml = seconds("Elapsed ML time")?;
    let total = seconds("Total time")?;
    let image = text.find("'img'").and_then(|at| {
        let rest = &text[at + 5..];
        let start = rest.find('\'')? + 1;
        let len = rest[start..].find('\'')?;
        Some(&rest[start..start + len]).filter(|s| !s.is_empty())
    });
    Some(SeedReply {
        ml_ms: ml * 1000.0,
        total_ms: total * 1000.0,
        image,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rendered_reply_parses_back() {
        let text = render(2450.0, 3600.0, b"aGk=");
        let text = String::from_utf8(text).expect("ascii");
        assert!(text.starts_with("Elapsed ML time: 2.450000\nTotal time: 3.600000\n"));
        let reply = parse(&text).expect("parses");
        assert_eq!(
            (reply.ml_ms, reply.total_ms, reply.image),
            (2450.0, 3600.0, Some("aGk="))
        );
    }

    #[test]
    fn the_original_systems_replies_parse() {
        let reply = parse("Elapsed ML time: 1e-1\nTotal time:0.2\n{'text': 'serveRR', 'img': ''}")
            .expect("parses");
        assert_eq!(
            (reply.ml_ms, reply.total_ms, reply.image),
            (100.0, 200.0, None)
        );
        assert_eq!(parse("hello"), None);
    }
}
