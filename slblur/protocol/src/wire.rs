//! The three wire formats on the function's one route, and how a request says which it uses.

use std::fmt;
use std::str::FromStr;

use crate::ImageKind;

/// A request's wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wire {
    /// Image bytes in, image bytes out, timings and facts in headers.
    Binary,
    /// `{"image": base64, ...options}` in, [`crate::JsonReply`] out.
    Json,
    /// The original Python function's format: base64 text in (no Content-Type), the text of
    /// [`crate::seed`] out.
    Seed,
}

/// What a request's Content-Type says about its wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declared {
    Wire(Wire),
    /// No Content-Type, or one that says nothing about the content (text/plain, form,
    /// octet-stream): the original client sent base64 with none, and `curl --data-binary` adds
    /// a form type. The body's first bytes decide ([`Wire::of_untyped`]).
    Untyped,
    /// A type the function does not read (answered 415).
    Unsupported,
}

impl Wire {
    pub const ALL: [Wire; 3] = [Wire::Binary, Wire::Json, Wire::Seed];

    /// The name in flags, metrics and result rows: `binary`, `json`, `seed`.
    pub fn name(self) -> &'static str {
        match self {
            Wire::Binary => "binary",
            Wire::Json => "json",
            Wire::Seed => "seed",
        }
    }

    /// What a Content-Type value (parameters and case ignored) declares.
    pub fn declared(content_type: Option<&str>) -> Declared {
        let Some(value) = content_type else {
            return Declared::Untyped;
        };
        let essence = value.split(';').next().unwrap_or("").trim();
        match essence.to_ascii_lowercase().as_str() {
            "image/jpeg" | "image/jpg" | "image/png" => Declared::Wire(Wire::Binary),
            "application/json" => Declared::Wire(Wire::Json),
            ""
            | "text/plain"
            | "application/x-www-form-urlencoded"
            | "application/octet-stream" => Declared::Untyped,
            _ => Declared::Unsupported,
        }
    }

    /// An untyped body is an image if it starts like one, else the seed format's base64.
    pub fn of_untyped(body: &[u8]) -> Wire {
        match ImageKind::sniff(body) {
            Some(_) => Wire::Binary,
            None => Wire::Seed,
        }
    }

    /// The Content-Type a client sends with an image of `kind`; none for seed, as the
    /// original client sent none.
    pub fn request_content_type(self, kind: ImageKind) -> Option<&'static str> {
        match self {
            Wire::Binary => Some(kind.mime()),
            Wire::Json => Some("application/json"),
            Wire::Seed => None,
        }
    }

    /// The image format a frame travels in when nobody chose one: PNG for seed (what the
    /// original client sent and read), JPEG otherwise.
    pub fn default_image(self) -> ImageKind {
        match self {
            Wire::Seed => ImageKind::Png,
            Wire::Binary | Wire::Json => ImageKind::Jpeg,
        }
    }
}

impl FromStr for Wire {
    type Err = String;

    fn from_str(s: &str) -> Result<Wire, String> {
        Wire::ALL
            .into_iter()
            .find(|wire| wire.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| "expected one of: binary, json, seed".to_string())
    }
}

impl fmt::Display for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_declare_wires() {
        assert_eq!(
            Wire::declared(Some("image/png")),
            Declared::Wire(Wire::Binary)
        );
        assert_eq!(
            Wire::declared(Some("Application/JSON; charset=utf-8")),
            Declared::Wire(Wire::Json)
        );
        assert_eq!(Wire::declared(None), Declared::Untyped);
        assert_eq!(Wire::declared(Some("text/plain")), Declared::Untyped);
        assert_eq!(Wire::declared(Some("video/mp4")), Declared::Unsupported);
    }

    #[test]
    fn untyped_bodies_are_sniffed() {
        assert_eq!(Wire::of_untyped(b"\x89PNG\r\n\x1a\nrest"), Wire::Binary);
        assert_eq!(Wire::of_untyped(b"iVBORw0KGgo="), Wire::Seed);
    }

    #[test]
    fn requests_carry_what_each_format_sends() {
        assert_eq!(
            Wire::Binary.request_content_type(ImageKind::Png),
            Some("image/png")
        );
        assert_eq!(Wire::Seed.request_content_type(ImageKind::Png), None);
        assert_eq!(Wire::Seed.default_image(), ImageKind::Png);
        assert_eq!("JSON".parse(), Ok(Wire::Json));
    }
}
