//! Optional bearer-token access control: the token comes from a secret file (`<NAME>_TOKEN_FILE`,
//! e.g. an OpenFaaS secret under `/var/openfaas/secrets/`), is compared in constant time, and is
//! never printed — not even by `Debug`.

use std::path::Path;

use axum::http::{HeaderMap, header};

/// The token every function request must carry as `Authorization: Bearer <token>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Vec<u8>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// Reads the token from `path`; surrounding whitespace (a trailing newline) is not part of it.
    pub fn from_file(path: &Path) -> Result<Token, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read the token file: {e}"))?;
        Token::new(bytes.trim_ascii())
    }

    pub fn new(token: &[u8]) -> Result<Token, String> {
        if token.is_empty() {
            return Err("the token file is empty".into());
        }
        if !token.iter().all(|b| b.is_ascii_graphic()) {
            return Err("the token must be printable ASCII without spaces".into());
        }
        Ok(Token(token.to_vec()))
    }

    /// True when `headers` carry this token as a bearer credential.
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let presented = headers
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes())
            .and_then(|v| strip_bearer(v))
            .unwrap_or_default();
        constant_time_eq(&self.0, presented)
    }
}

/// The credential after a case-insensitive `Bearer ` scheme.
fn strip_bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
}

/// Compares without an early exit, so the time taken depends only on the expected token's
/// length, never on how much of a guess was right.
fn constant_time_eq(expected: &[u8], presented: &[u8]) -> bool {
    let mut diff = (expected.len() != presented.len()) as u8;
    for (i, &e) in expected.iter().enumerate() {
        diff |= e ^ presented.get(i).copied().unwrap_or(!e);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("valid header"),
        );
        h
    }

    #[test]
    fn admits_only_the_exact_bearer_token() {
        let token = Token::new(b"s3cret-token").expect("valid");
        assert!(token.admits(&with_auth("Bearer s3cret-token")));
        assert!(token.admits(&with_auth("bearer s3cret-token")));
        for wrong in [
            "Bearer s3cret-toke",
            "Bearer s3cret-token2",
            "Bearer ",
            "Basic s3cret-token",
            "s3cret-token",
            "Bearer S3cret-token",
        ] {
            assert!(!token.admits(&with_auth(wrong)), "{wrong}");
        }
        assert!(!token.admits(&HeaderMap::new()));
    }

    #[test]
    fn never_shows_itself_and_refuses_empty_files() {
        let token = Token::new(b"s3cret").expect("valid");
        assert!(!format!("{token:?}").contains("s3cret"));
        assert!(Token::new(b"").is_err());
        assert!(Token::new(b"two words").is_err());
        let dir = std::env::temp_dir().join(format!("faas-token-{}", std::process::id()));
        std::fs::write(&dir, b"  abc\n").expect("write");
        assert_eq!(Token::from_file(&dir), Token::new(b"abc"));
        let _ = std::fs::remove_file(&dir);
    }
}
