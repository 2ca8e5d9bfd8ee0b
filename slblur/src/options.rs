//! Per-request options (anonymization mode, mask, threshold, output format …): names, values,
//! and how query parameters and JSON fields override the server's defaults.

use std::fmt;
use std::str::FromStr;

/// How a face region is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Box filter as strong as deface's (kernel = half the mask size).
    Blur,
    /// 20-pixel cells of the cell's mean colour.
    Mosaic,
    /// Solid black.
    Solid,
    /// Detect only; the frame is returned unchanged.
    None,
}

/// Which pixels of the (scaled) face box are replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskShape {
    Ellipse,
    Box,
}

pub use slblur_protocol::ImageKind;

macro_rules! keyword_enum {
    ($ty:ident { $($word:literal => $variant:ident),+ $(,)? }) => {
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s.to_ascii_lowercase().as_str() {
                    $($word => Ok($ty::$variant),)+
                    _ => Err(format!("expected one of: {}", [$($word),+].join(", "))),
                }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $($ty::$variant => $word,)+ })
            }
        }
    };
}
keyword_enum!(Mode { "blur" => Blur, "mosaic" => Mosaic, "solid" => Solid, "none" => None });
keyword_enum!(MaskShape { "ellipse" => Ellipse, "box" => Box });

/// The options one frame is processed with, defaults already applied.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameOptions {
    pub mode: Mode,
    pub mask: MaskShape,
    pub mask_scale: f32,
    pub threshold: f32,
    /// 0 = detect at full resolution.
    pub inference_width: u32,
    /// The network area bound (the server's, not a request's to choose).
    pub max_inference_pixels: u64,
    /// `None` = answer in the input's format.
    pub format: Option<ImageKind>,
    pub quality: u8,
}

/// An option name or value the function does not know. Both quote client input, clipped
/// (see [`quote`]), so a huge name or value never becomes a huge message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("option `{name}`: {reason}")]
pub struct OptionError {
    pub name: String,
    pub reason: String,
}

impl OptionError {
    pub fn new(name: &str, reason: impl Into<String>) -> OptionError {
        OptionError {
            name: clip(name),
            reason: reason.into(),
        }
    }
}

/// Longest client text quoted in an error, in bytes.
pub const MAX_QUOTED_BYTES: usize = 64;

/// Client text as an error quotes it: at most [`MAX_QUOTED_BYTES`] (on a char boundary), then
/// `…(N bytes)` with the full length.
pub fn clip(text: &str) -> String {
    if text.len() <= MAX_QUOTED_BYTES {
        return text.to_string();
    }
    let mut end = MAX_QUOTED_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…({} bytes)", &text[..end], text.len())
}

/// `text` in double quotes, clipped and with control characters escaped.
pub fn quote(text: &str) -> String {
    format!("{:?}", clip(text))
}

/// Option names, as accepted in query strings and JSON bodies.
pub const OPTION_NAMES: [&str; 7] = [
    "mode",
    "mask",
    "mask_scale",
    "threshold",
    "inference_width",
    "format",
    "quality",
];

impl FrameOptions {
    /// Overrides one option from its textual value.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), OptionError> {
        let value = value.trim();
        // Every option's value is a short word or number: longer ones need no parsing.
        if value.len() > MAX_QUOTED_BYTES && OPTION_NAMES.contains(&name) {
            return Err(OptionError::new(
                name,
                format!("the value is too long (got {})", quote(value)),
            ));
        }
        let result = match name {
            "mode" => value.parse().map(|v| self.mode = v),
            "mask" => value.parse().map(|v| self.mask = v),
            "mask_scale" => parse_mask_scale(value).map(|v| self.mask_scale = v),
            "threshold" => parse_threshold(value).map(|v| self.threshold = v),
            "inference_width" => parse_inference_width(value).map(|v| self.inference_width = v),
            "format" => value.parse().map(|v| self.format = Some(v)),
            "quality" => parse_quality(value).map(|v| self.quality = v),
            _ => Err(format!(
                "unknown option; known: {}",
                OPTION_NAMES.join(", ")
            )),
        };
        result.map_err(|reason| OptionError::new(name, format!("{reason} (got {})", quote(value))))
    }

    /// Applies a URL query string such as `mode=mosaic&format=png`.
    pub fn apply_query(&mut self, query: &str) -> Result<(), OptionError> {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            self.set(&percent_decode(name), &percent_decode(value))?;
        }
        Ok(())
    }

    /// Applies option fields already read from a JSON request, as text (see `wire::json`).
    pub fn apply_pairs(&mut self, pairs: &[(String, String)]) -> Result<(), OptionError> {
        for (name, value) in pairs {
            self.set(name, value)?;
        }
        Ok(())
    }
}

/// Decodes `%XX` escapes and `+` in a query component; malformed escapes stay as they are.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Detection width: 0 (full resolution) or 32..=8192 pixels.
pub fn parse_inference_width(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(0) => Ok(0),
        Ok(w) if (32..=8192).contains(&w) => Ok(w),
        _ => Err("expected 0 (full resolution) or a width from 32 to 8192 pixels".into()),
    }
}

/// The default network area bound: 1280×736, deface's input for a 720p frame at full resolution.
pub const DEFAULT_MAX_INFERENCE_PIXELS: u64 = 1280 * 736;

/// Network area bound: from 32×32 to 8192×8192 pixels.
pub fn parse_inference_pixels(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if (1024..=8192 * 8192).contains(&n) => Ok(n),
        _ => Err("expected a pixel count from 1024 (32x32) to 67108864 (8192x8192)".into()),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> FrameOptions {
        crate::config::Config::default().frame_options()
    }

    #[test]
    fn query_overrides_defaults() {
        let mut o = defaults();
        o.apply_query("mode=mosaic&mask=box&format=png&threshold=0.5&inference_width=0")
            .expect("valid query");
        assert_eq!(o.mode, Mode::Mosaic);
        assert_eq!(o.mask, MaskShape::Box);
        assert_eq!(o.format, Some(ImageKind::Png));
        assert_eq!(o.threshold, 0.5);
        assert_eq!(o.inference_width, 0);
    }

    #[test]
    fn huge_names_and_values_are_clipped_in_errors() {
        let mut o = defaults();
        let long = "x".repeat(1 << 20);
        for query in [format!("mode={long}"), format!("{long}=1")] {
            let e = o.apply_query(&query).expect_err("refused");
            let text = e.to_string();
            assert!(text.len() < 400, "{} bytes", text.len());
            assert!(text.contains("(1048576 bytes)"), "{text}");
        }
        assert_eq!(
            clip("é".repeat(40).as_str()).len(),
            64 + "…(80 bytes)".len()
        );
        assert_eq!(quote("a\nb"), r#""a\nb""#);
    }

    #[test]
    fn unknown_names_and_values_are_named_in_the_error() {
        let mut o = defaults();
        let e = o.apply_query("mode=pixelate").expect_err("bad value");
        assert_eq!(e.name, "mode");
        assert!(e.to_string().contains("blur, mosaic, solid, none"), "{e}");
        assert!(e.to_string().contains("pixelate"), "{e}");
        let e = o.apply_query("colour=red").expect_err("bad name");
        assert!(e.to_string().contains("unknown option"), "{e}");
        assert_eq!(
            o,
            defaults(),
            "failed overrides leave the options unchanged"
        );
    }

    #[test]
    fn percent_escapes_are_decoded() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
