//! Untrusted bytes as a signed identity token (`auth::verify`, the JWT of
//! `hello`), raw or as a header and claims signed with the server's
//! secret: never a panic; a token taken carries the secret's HS256
//! signature, names its claims' `sub` and is not expired; a correctly
//! signed token is never refused as a bad signature (see
//! `fuzzing::check_token`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tickforge_server::fuzzing::check_token(data));
