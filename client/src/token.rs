//! The bearer token for a function that requires one (`--token-file`): read once at start from
//! a file (an OpenFaaS secret, a local copy of it), sent as `Authorization: Bearer …` on every
//! request. Its value never appears in output, logs or run records: `Debug` hides it.

use std::path::{Path, PathBuf};

use reqwest::header::HeaderValue;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read the token file '{path}'")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the token file '{path}' is empty")]
    Empty { path: PathBuf },
    #[error(
        "the token in '{path}' must be printable ASCII without spaces (as the function requires)"
    )]
    Invalid { path: PathBuf },
}

/// The `Authorization` header value, marked sensitive so HTTP libraries do not print it.
#[derive(Clone)]
pub struct Token(HeaderValue);

impl Token {
    /// Reads `path`; the token is its content without surrounding whitespace (as the function
    /// reads its secret file).
    pub fn read(path: &Path) -> Result<Token, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(TokenError::Empty {
                path: path.to_path_buf(),
            });
        }
        let invalid = || TokenError::Invalid {
            path: path.to_path_buf(),
        };
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid());
        }
        let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| invalid())?;
        value.set_sensitive(true);
        Ok(Token(value))
    }

    /// `Bearer <token>`, for the `Authorization` header.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }

    /// Reads the optional `--token-file`.
    pub fn from_option(path: Option<&Path>) -> Result<Option<Token>, TokenError> {
        path.map(Token::read).transpose()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<hidden>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(content: &[u8]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(f.path(), content).expect("write");
        f
    }

    #[test]
    fn token_is_trimmed_and_hidden() {
        let f = file(b"  s3cret-Token_1\n");
        let token = Token::read(f.path()).expect("a token");
        assert_eq!(token.header_value(), "Bearer s3cret-Token_1");
        assert!(token.header_value().is_sensitive());
        assert!(!format!("{token:?}").contains("s3cret"));
    }

    #[test]
    fn bad_files_name_the_file() {
        let empty = file(b" \n\t");
        let e = Token::read(empty.path()).unwrap_err().to_string();
        assert!(
            e.contains("is empty") && e.contains(&*empty.path().to_string_lossy()),
            "{e}"
        );
        for bad in [&b"one\x01two"[..], b"two words", "caf\u{e9}".as_bytes()] {
            let f = file(bad);
            assert!(
                matches!(Token::read(f.path()), Err(TokenError::Invalid { .. })),
                "{bad:?}"
            );
        }
        let missing = Path::new("/nonexistent/slblur-token");
        let e = Token::read(missing).unwrap_err().to_string();
        assert!(
            e.contains("cannot read the token file '/nonexistent/slblur-token'"),
            "{e}"
        );
    }
}
