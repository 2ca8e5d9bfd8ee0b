//! The two image formats frames travel in.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An encoded image format the function reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageKind {
    Jpeg,
    Png,
}

impl ImageKind {
    pub const ALL: [ImageKind; 2] = [ImageKind::Jpeg, ImageKind::Png];

    /// The name in options, flags and JSON: `jpeg`, `png`.
    pub fn name(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "jpeg",
            ImageKind::Png => "png",
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::Png => "image/png",
        }
    }

    /// The usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "jpg",
            ImageKind::Png => "png",
        }
    }

    /// The format `bytes` start with, by magic number.
    pub fn sniff(bytes: &[u8]) -> Option<ImageKind> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(ImageKind::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(ImageKind::Png)
        } else {
            None
        }
    }
}

impl FromStr for ImageKind {
    type Err = String;

    /// `jpeg` or `png`, any case.
    fn from_str(s: &str) -> Result<ImageKind, String> {
        ImageKind::ALL
            .into_iter()
            .find(|kind| kind.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| "expected one of: jpeg, png".to_string())
    }
}

impl fmt::Display for ImageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_magic_bytes_sniff() {
        assert_eq!("PNG".parse(), Ok(ImageKind::Png));
        assert_eq!("jpeg".parse(), Ok(ImageKind::Jpeg));
        assert!("gif".parse::<ImageKind>().is_err());
        assert_eq!(
            ImageKind::sniff(b"\xFF\xD8\xFF\xE0rest"),
            Some(ImageKind::Jpeg)
        );
        assert_eq!(
            ImageKind::sniff(b"\x89PNG\r\n\x1a\nrest"),
            Some(ImageKind::Png)
        );
        assert_eq!(ImageKind::sniff(b"iVBORw0KGgo="), None);
    }
}
