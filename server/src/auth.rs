//! Signed identities: `hello` carries a JWT (compact form, HS256) signed
//! with the server's `--auth-secret`; its `sub` claim is the user id, `exp`
//! its end (Unix seconds, against the server's clock, no leeway), `name`
//! an optional display name. Verification is the `jsonwebtoken` crate's
//! (no hand-rolled crypto); this module only names every refusal so that
//! a client learns why ([`AuthError`]). Pure: the caller passes the time.

use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;
use thiserror::Error;

/// The secret tokens are signed with (`--auth-secret`, `--auth-secret-file`).
#[derive(Clone)]
pub struct AuthSecret(Vec<u8>);

impl fmt::Debug for AuthSecret {
    /// Never prints the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthSecret({} bytes)", self.0.len())
    }
}

/// Shortest secret accepted, bytes: HS256 with fewer is guessable.
pub const MIN_SECRET: usize = 16;

impl AuthSecret {
    /// A secret from its bytes.
    ///
    /// # Errors
    /// A message when it is shorter than [`MIN_SECRET`] bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, String> {
        let bytes = bytes.into();
        if bytes.len() < MIN_SECRET {
            return Err(format!("{} bytes is too short: use at least {MIN_SECRET}", bytes.len()));
        }
        Ok(Self(bytes))
    }

    /// The content of `path`, one trailing newline (`\n` or `\r\n`) trimmed.
    ///
    /// # Errors
    /// A message when the file cannot be read or the secret is too short.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let mut bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read it: {e}", path.display()))?;
        if bytes.ends_with(b"\n") {
            bytes.pop();
            if bytes.ends_with(b"\r") {
                bytes.pop();
            }
        }
        Self::new(bytes).map_err(|e| format!("{}: {e}", path.display()))
    }
}

impl AuthSecret {
    /// The secret's bytes (the fuzz checks sign with it).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Who a verified token names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The `sub` claim.
    pub user_id: String,
    /// The `name` claim, when present.
    pub name: Option<String>,
}

/// The claims tickforge reads (others are ignored).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// A display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Why a token was refused; the text is the `rej unauthorized` reason.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AuthError {
    /// `hello` came without a token.
    #[error("missing token: this server requires hello with a signed token (JWT, HS256)")]
    Missing,
    /// Not a compact JWT (three base64url parts, JSON header and claims).
    #[error("malformed token: {0}")]
    Malformed(String),
    /// Signed with another algorithm than HS256 (`none` included).
    #[error("wrong algorithm: the token is signed {alg}; this server takes HS256 only")]
    WrongAlgorithm {
        /// The token's `alg`.
        alg: String,
    },
    /// The signature is not the secret's.
    #[error("bad signature: the token was not signed with this server's secret")]
    BadSignature,
    /// Past its `exp`.
    #[error("expired token: exp {exp} is before now ({now})")]
    Expired {
        /// The token's `exp`.
        exp: u64,
        /// The server's clock, Unix seconds.
        now: u64,
    },
    /// A required claim is missing or of the wrong type.
    #[error("malformed token: claim {0:?} is missing (sub and exp are required)")]
    MissingClaim(String),
}

/// The `alg` of a token's header, read without trusting it.
fn header_alg(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("alg")?.as_str().map(str::to_owned)
}

/// Verifies `token` with `secret` at `now` (Unix seconds).
///
/// # Errors
/// [`AuthError`] saying why: malformed, wrong algorithm, bad signature,
/// expired, a missing claim.
pub fn verify(secret: &AuthSecret, token: &str, now: u64) -> Result<Identity, AuthError> {
    if token.is_empty() {
        return Err(AuthError::Missing);
    }
    if token.split('.').count() != 3 {
        return Err(AuthError::Malformed("not a compact JWT (header.claims.signature)".into()));
    }
    match header_alg(token) {
        Some(alg) if alg != "HS256" => return Err(AuthError::WrongAlgorithm { alg }),
        Some(_) => {}
        None => return Err(AuthError::Malformed("the header is not base64url JSON with an alg".into())),
    }
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.validate_exp = false; // checked below, against `now`
    validation.required_spec_claims = ["sub".to_owned()].into_iter().collect();
    let data = jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(&secret.0), &validation).map_err(
        |e| match e.into_kind() {
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                AuthError::WrongAlgorithm { alg: "another algorithm".into() }
            }
            ErrorKind::MissingRequiredClaim(c) => AuthError::MissingClaim(c),
            ErrorKind::Json(e) => match missing_field(&e.to_string()) {
                Some(field) => AuthError::MissingClaim(field),
                None => AuthError::Malformed(format!("the claims are not what tickforge reads: {e}")),
            },
            other => AuthError::Malformed(format!("{other:?}")),
        },
    )?;
    let claims = data.claims;
    if claims.exp <= now {
        return Err(AuthError::Expired { exp: claims.exp, now });
    }
    Ok(Identity { user_id: claims.sub, name: claims.name })
}

/// The field serde named in "missing field `x`".
fn missing_field(message: &str) -> Option<String> {
    let rest = message.split("missing field `").nth(1)?;
    Some(rest.split('`').next()?.to_owned())
}

/// Mints a token for `sub` expiring at `exp` (for tests, benchmarks and
/// `scripts/mint-token.py`'s checks; a real deployment mints elsewhere).
///
/// # Panics
/// Never for HS256 with a byte secret.
#[must_use]
pub fn mint(secret: &AuthSecret, sub: &str, exp: u64, name: Option<&str>) -> String {
    let claims = Claims { sub: sub.to_owned(), exp, name: name.map(str::to_owned) };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(&secret.0))
        .expect("HS256 signing with a byte secret cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn secret() -> AuthSecret {
        AuthSecret::new("0123456789abcdef0123").unwrap()
    }

    fn sign(header: &str, claims: &str, key: &[u8]) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let input = format!("{}.{}", b64(header), b64(claims));
        let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), input.as_bytes());
        format!("{input}.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    #[test]
    fn a_good_token_names_its_user() {
        let t = mint(&secret(), "alice", NOW + 60, Some("Alice"));
        assert_eq!(verify(&secret(), &t, NOW), Ok(Identity { user_id: "alice".into(), name: Some("Alice".into()) }));
        // Hand-signed (no library on the signing side) verifies too.
        let t = sign(r#"{"alg":"HS256","typ":"JWT"}"#, &format!(r#"{{"sub":"bob","exp":{}}}"#, NOW + 1), &secret().0);
        assert_eq!(verify(&secret(), &t, NOW).unwrap().user_id, "bob");
    }

    #[test]
    fn every_refusal_says_why() {
        let s = secret();
        let cases = [
            (String::new(), "missing token"),
            ("abc".to_owned(), "not a compact JWT"),
            ("a.b.c".to_owned(), "malformed token"),
            (mint(&s, "alice", NOW, None), "expired token"),
            (mint(&AuthSecret::new("another secret, long").unwrap(), "alice", NOW + 60, None), "bad signature"),
            (
                sign(r#"{"alg":"HS512"}"#, r#"{"sub":"a","exp":1900000000}"#, &s.0),
                "wrong algorithm: the token is signed HS512",
            ),
            (sign(r#"{"alg":"none"}"#, r#"{"sub":"a","exp":1900000000}"#, &s.0), "signed none"),
            (sign(r#"{"alg":"HS256"}"#, r#"{"exp":1900000000}"#, &s.0), "claim \"sub\" is missing"),
            (sign(r#"{"alg":"HS256"}"#, r#"{"sub":"a"}"#, &s.0), "claim \"exp\" is missing"),
            (sign(r#"{"alg":"HS256"}"#, "not json", &s.0), "malformed token"),
        ];
        for (token, why) in cases {
            let err = verify(&s, &token, NOW).unwrap_err().to_string();
            assert!(err.contains(why), "{token:?}: {err:?} lacks {why:?}");
        }
    }

    #[test]
    fn secrets_are_bounded_and_read_from_files() {
        assert!(AuthSecret::new("short").is_err());
        let path = std::env::temp_dir().join(format!("tickforge-secret-{}", std::process::id()));
        std::fs::write(&path, "0123456789abcdef0123\n").unwrap();
        let from_file = AuthSecret::from_file(&path).unwrap();
        assert_eq!(from_file.0, secret().0);
        assert_eq!(format!("{from_file:?}"), "AuthSecret(20 bytes)");
        std::fs::remove_file(&path).unwrap();
        assert!(AuthSecret::from_file(&path).unwrap_err().contains("cannot read it"));
    }
}
