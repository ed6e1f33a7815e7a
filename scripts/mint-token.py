#!/usr/bin/env python3
"""Mints test tokens for a tickforge started with --auth-secret: JWTs in
compact form, signed HS256 (Python's standard library only), with claims
`sub`, `exp` and optionally `name`.

    scripts/mint-token.py --secret SECRET --sub alice [--name Alice] [--ttl 3600]
    scripts/mint-token.py --secret-file FILE --sub-prefix bot- --count 1000 > tokens.txt

One token per line on stdout: with --count N, the users PREFIX0..PREFIX(N-1)
(one per load-test client). --ttl is the lifetime in seconds (default one
hour); a negative --ttl mints an expired token, for tests.
"""
import argparse
import base64
import hashlib
import hmac
import json
import sys
import time


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(secret: bytes, sub: str, exp: int, name=None) -> str:
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = {"sub": sub, "exp": exp}
    if name is not None:
        claims["name"] = name
    body = b64(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{body}".encode()
    signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return f"{header}.{body}.{b64(signature)}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--secret", help="the server's --auth-secret")
    g.add_argument("--secret-file", help="the server's --auth-secret-file (one trailing newline trimmed)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--sub", help="the user id")
    who.add_argument("--sub-prefix", help="with --count: users PREFIX0, PREFIX1, ...")
    p.add_argument("--count", type=int, default=1, help="tokens to mint (with --sub-prefix)")
    p.add_argument("--name", help="a display name claim")
    p.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (negative: already expired)")
    a = p.parse_args()
    if a.secret is not None:
        secret = a.secret.encode()
    else:
        with open(a.secret_file, "rb") as f:
            secret = f.read()
        if secret.endswith(b"\n"):
            secret = secret[:-1]
            if secret.endswith(b"\r"):
                secret = secret[:-1]
    if len(secret) < 16:
        print(f"mint-token: the secret is {len(secret)} bytes; tickforge takes at least 16", file=sys.stderr)
        return 2
    if a.count < 1 or (a.count > 1 and a.sub_prefix is None):
        print("mint-token: --count N > 1 needs --sub-prefix", file=sys.stderr)
        return 2
    exp = int(time.time()) + a.ttl
    subs = [a.sub] if a.sub is not None else [f"{a.sub_prefix}{i}" for i in range(a.count)]
    for sub in subs:
        print(mint(secret, sub, exp, a.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
