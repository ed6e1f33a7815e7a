//! The `token` target: untrusted bytes as a signed identity token (a JWT in
//! `hello`, [`auth::verify`]).
//!
//! The first byte picks the mode:
//! - even: the rest is the token, as a client sends it. A token the server
//!   takes must carry this server's HS256 signature over its first two
//!   parts, name the `sub` of its claims and not be expired; and a token
//!   taken must stop being taken when its signature changes.
//! - odd: the rest is a header and claims (split at the first `0xff`),
//!   signed here with the server's secret, so that the fuzzer reaches past
//!   the signature into the header and claims. A token signed with the
//!   right secret is never refused as a bad signature, and what is taken
//!   is what the claims say.
//!
//! Every refusal has a reason (the `rej unauthorized` text).

use crate::auth::{self, AuthError, AuthSecret, Identity};
use base64::Engine as _;

/// The server's clock in the checks, Unix seconds.
pub(super) const NOW: u64 = 1_800_000_000;

/// The secret the checks' server holds.
#[must_use]
pub(super) fn secret() -> AuthSecret {
    AuthSecret::new("tickforge fuzz secret 0123456789").expect("a long enough secret")
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn hmac(input: &[u8]) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret().as_bytes());
    ring::hmac::sign(&key, input).as_ref().to_vec()
}

/// `header.claims.signature` with the checks' secret (no library on the
/// signing side but HMAC itself).
#[must_use]
pub(super) fn sign(header: &[u8], claims: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let tag = hmac(input.as_bytes());
    format!("{input}.{}", b64(&tag))
}

/// The `token` checks on one input (see the module's docs).
///
/// # Panics
/// On a finding.
pub fn check_token(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode & 1 == 0 {
        let token = String::from_utf8_lossy(rest);
        let verdict = auth::verify(&secret(), &token, NOW);
        check_verdict(&token, &verdict);
        if verdict.is_ok() {
            // The same token with the first character of its signature
            // changed (six significant bits; the last one's low bits are
            // not).
            let at = token.rfind('.').expect("a taken token has three parts") + 1;
            let mut forged = token.clone().into_owned();
            let first = if token[at..].starts_with('A') { "B" } else { "A" };
            forged.replace_range(at..=at, first);
            let tampered = auth::verify(&secret(), &forged, NOW);
            assert!(tampered.is_err(), "a token with another signature was taken: {forged:?}");
        }
    } else {
        let at = rest.iter().position(|&b| b == 0xff).unwrap_or(rest.len());
        let (header, claims) = (&rest[..at], rest.get(at + 1..).unwrap_or_default());
        let token = sign(header, claims);
        let verdict = auth::verify(&secret(), &token, NOW);
        assert_ne!(verdict, Err(AuthError::BadSignature), "a token signed with the secret: {token:?}");
        check_verdict(&token, &verdict);
    }
}

/// The header member the checks read.
#[derive(serde::Deserialize)]
struct HeaderView {
    alg: String,
}

/// The claims the checks read.
#[derive(serde::Deserialize)]
struct ClaimsView {
    sub: String,
    exp: u64,
    name: Option<String>,
}

/// A taken token is signed with the secret, names its claims' `sub` and
/// `name`, and is not expired; a refused one says why.
fn check_verdict(token: &str, verdict: &Result<Identity, AuthError>) {
    match verdict {
        Ok(identity) => {
            let parts: Vec<&str> = token.split('.').collect();
            assert_eq!(parts.len(), 3, "a taken token has three parts: {token:?}");
            let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let tag = engine.decode(parts[2].trim_end_matches('=')).expect("a taken token's signature is base64url");
            let input = format!("{}.{}", parts[0], parts[1]);
            assert_eq!(tag, hmac(input.as_bytes()), "a token taken without the secret's signature: {token:?}");
            // Read as the fields the checks need, as serde reads a struct:
            // other members are skipped unparsed, so a signed token may
            // carry anything there (a number past f64, a lone surrogate)
            // that a whole `serde_json::Value` refuses.
            let header: HeaderView =
                serde_json::from_slice(&engine.decode(parts[0].trim_end_matches('=')).expect("base64url header"))
                    .expect("a taken token's header is JSON with an alg");
            assert_eq!(header.alg, "HS256", "{token:?}");
            let claims: ClaimsView =
                serde_json::from_slice(&engine.decode(parts[1].trim_end_matches('=')).expect("base64url claims"))
                    .expect("a taken token's claims are JSON with a sub and an exp");
            assert_eq!(claims.sub, identity.user_id, "{token:?}");
            assert_eq!(claims.name, identity.name, "{token:?}");
            let exp = claims.exp;
            assert!(exp > NOW, "an expired token was taken: exp {exp}, now {NOW}");
        }
        Err(e) => assert!(!e.to_string().is_empty(), "a refusal without a reason"),
    }
}

/// Seeds: tokens a client sends (good, expired, unsigned, another
/// algorithm, another secret, not a JWT) and headers and claims to sign.
#[must_use]
pub(super) fn seeds() -> Vec<(String, Vec<u8>)> {
    let raw = |name: &str, token: &str| (format!("raw-{name}"), [&[0u8][..], token.as_bytes()].concat());
    let signed = |name: &str, header: &str, claims: &str| {
        (format!("signed-{name}"), [&[1u8][..], header.as_bytes(), &[0xff], claims.as_bytes()].concat())
    };
    let exp = NOW + 3600;
    let other = AuthSecret::new("another secret, long enough").expect("a long enough secret");
    vec![
        raw("good", &auth::mint(&secret(), "alice", exp, Some("Alice"))),
        raw("good-no-name", &auth::mint(&secret(), "bob", exp, None)),
        raw("expired", &auth::mint(&secret(), "alice", NOW, None)),
        raw("other-secret", &auth::mint(&other, "alice", exp, None)),
        raw("alg-none", &format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(br#"{"sub":"a","exp":1900000000}"#))),
        raw("not-a-jwt", "abc"),
        raw("empty", ""),
        signed("good", r#"{"alg":"HS256","typ":"JWT"}"#, &format!(r#"{{"sub":"carol","exp":{exp},"name":"C"}}"#)),
        signed("hs512", r#"{"alg":"HS512"}"#, &format!(r#"{{"sub":"a","exp":{exp}}}"#)),
        signed("no-sub", r#"{"alg":"HS256"}"#, &format!(r#"{{"exp":{exp}}}"#)),
        signed("exp-string", r#"{"alg":"HS256"}"#, r#"{"sub":"a","exp":"1900000000"}"#),
        signed(
            "extra-claims",
            r#"{"alg":"HS256","kid":"k1"}"#,
            &format!(r#"{{"sub":"a","exp":{exp},"aud":"x","iat":1}}"#),
        ),
        signed("not-json", r#"{"alg":"HS256"}"#, "not json"),
        // Found by CI's 15 s run: members the server skips unparsed, which
        // a whole `serde_json::Value` refuses.
        signed("huge-number", r#"{"alg":"HS256","x":1e400}"#, &format!(r#"{{"sub":"a","exp":{exp},"x":1e400}}"#)),
        signed("lone-surrogate", r#"{"alg":"HS256"}"#, &format!(r#"{{"sub":"a","exp":{exp},"x":"\ud800"}}"#)),
    ]
}
