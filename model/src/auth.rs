//! Bearer tokens: the one check both the OTLP receivers and the API make.
//! It lives here, at the bottom of the workspace, because it is a pure
//! function both sides need and neither may depend on the other.

use subtle::ConstantTimeEq;

/// The tokens a listener accepts; none configured means no authentication.
#[derive(Debug, Clone, Default)]
pub struct BearerTokens(Vec<String>);

impl BearerTokens {
    pub fn new(tokens: impl IntoIterator<Item = String>) -> Self {
        Self(tokens.into_iter().filter(|t| !t.is_empty()).collect())
    }

    /// Whether any token is required.
    pub fn enabled(&self) -> bool {
        !self.0.is_empty()
    }

    /// Whether an `authorization` header value lets a request in. The
    /// comparison takes the same time whatever the header holds, so the
    /// token cannot be guessed byte by byte from response times.
    pub fn allows(&self, authorization: Option<&[u8]>) -> bool {
        if !self.enabled() {
            return true;
        }
        let Some(value) = authorization else {
            return false;
        };
        let Some(presented) = value
            .strip_prefix(b"Bearer ")
            .or_else(|| value.strip_prefix(b"bearer "))
        else {
            return false;
        };
        let mut ok = subtle::Choice::from(0);
        for token in &self.0 {
            ok |= token.as_bytes().ct_eq(presented);
        }
        ok.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_tokens_let_everything_in_and_tokens_must_match_exactly() {
        assert!(BearerTokens::default().allows(None));
        let t = BearerTokens::new(["s3cret".to_owned(), "other".to_owned(), String::new()]);
        assert!(t.allows(Some(b"Bearer s3cret")));
        assert!(t.allows(Some(b"bearer other")));
        for bad in [
            &b"Bearer s3cre"[..],
            b"Bearer s3crett",
            b"s3cret",
            b"Basic s3cret",
            b"Bearer ",
        ] {
            assert!(!t.allows(Some(bad)), "{}", String::from_utf8_lossy(bad));
        }
        assert!(!t.allows(None));
    }
}
