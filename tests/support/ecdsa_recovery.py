"""Recover the P-384 public key that signed ES384 JWTs, from the tokens alone.

The sandbox's published key is data this repository may not hold, but every captured sandbox
token carries a signature by it. Each signature admits two candidate keys (the two points with
x = r); the key common to the candidates of several independent tokens is the signer's key, so
recovering it is not circular: a token signed by anyone else would not share it. Test code only.
"""

from __future__ import annotations

import base64
import hashlib

P = 2**384 - 2**128 - 2**96 + 2**32 - 1
A = P - 3
B = int("b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875a"
        "c656398d8a2ed19d2a85c8edd3ec2aef", 16)
N = int("ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf"
        "581a0db248b0a77aecec196accc52973", 16)
G = (int("aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a38"
         "5502f25dbf55296c3a545e3872760ab7", 16),
     int("3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c0"
         "0a60b1ce1d7e819d7a431d7c90ea0e5f", 16))
Point = tuple[int, int] | None


def _add(p1: Point, p2: Point) -> Point:
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2 and (y1 + y2) % P == 0:
        return None
    if p1 == p2:
        slope = (3 * x1 * x1 + A) * pow(2 * y1, -1, P) % P
    else:
        slope = (y2 - y1) * pow(x2 - x1, -1, P) % P
    x3 = (slope * slope - x1 - x2) % P
    return x3, (slope * (x1 - x3) - y1) % P


def multiply(k: int, point: Point) -> Point:
    result: Point = None
    addend = point
    while k:
        if k & 1:
            result = _add(result, addend)
        addend = _add(addend, addend)
        k >>= 1
    return result


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def candidates(token: str) -> set[tuple[int, int]]:
    """The (at most two) public keys that make this ES384 signature valid."""
    header, payload, signature = token.split(".")
    raw = _b64(signature)
    r, s = int.from_bytes(raw[:48], "big"), int.from_bytes(raw[48:], "big")
    e = int.from_bytes(hashlib.sha384(f"{header}.{payload}".encode()).digest(), "big")
    alpha = (pow(r, 3, P) + A * r + B) % P
    beta = pow(alpha, (P + 1) // 4, P)  # P = 3 mod 4
    found = set()
    r_inverse = pow(r, -1, N)
    for y in (beta, P - beta):
        if (y * y - alpha) % P:
            continue
        s_r = multiply(s, (r, y))
        minus_e_g = multiply((N - e) % N, G)
        q = multiply(r_inverse, _add(s_r, minus_e_g))
        if q is not None:
            found.add(q)
    return found


def recover(tokens: list[str]) -> tuple[int, int]:
    """The one key common to every token's candidates; ValueError unless exactly one."""
    common: set[tuple[int, int]] | None = None
    for token in tokens:
        common = candidates(token) if common is None else common & candidates(token)
    if not common or len(common) != 1:
        raise ValueError(f"{len(common or ())} keys fit all the signatures")
    return next(iter(common))


def jwk(point: tuple[int, int], kid: str) -> dict[str, str]:
    def encode(value: int) -> str:
        return base64.urlsafe_b64encode(value.to_bytes(48, "big")).rstrip(b"=").decode()

    return {"kty": "EC", "crv": "P-384", "x": encode(point[0]), "y": encode(point[1]),
            "kid": kid, "alg": "ES384", "use": "sig"}
