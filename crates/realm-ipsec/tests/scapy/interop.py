#!/usr/bin/env python3
"""Scapy side of the realm-ipsec interop test (tests/scapy.rs).

Reads a JSON list of cases on stdin. For each case it builds a scapy
SecurityAssociation with the same SPI, algorithms, keys, mode and NAT-T header
as Realm's SA, then
  - encrypts the plaintext packet (`plain`) -> `scapy_sealed` (Realm opens it),
  - decrypts Realm's sealed packet (`realm_sealed`) -> `scapy_opened`
    (the test compares it with `plain`).
Writes a JSON list of results on stdout. Any failure raises: the test fails.
"""
import json
import sys

from scapy.layers.inet import IP, UDP
from scapy.layers.ipsec import AH, ESP, SecurityAssociation


def sa_for(case):
    kw = dict(spi=case["spi"])
    if case["proto"] == "esp":
        kw["crypt_algo"] = case["crypt_algo"]
        kw["crypt_key"] = bytes.fromhex(case["crypt_key"]) or None
        kw["auth_algo"] = case["auth_algo"]
        kw["auth_key"] = bytes.fromhex(case["auth_key"]) or None
        if case["esn"]:
            kw["esn_en"] = True
            # High-order 32 bits of the ESN (RFC 4303 s2.2.1): the AAD of
            # Realm's packet carries them, and scapy's must match.
            kw["esn"] = case.get("esn_high", 0)
    else:
        kw["auth_algo"] = case["auth_algo"]
        kw["auth_key"] = bytes.fromhex(case["auth_key"])
    if case["mode"] == "tunnel":
        kw["tunnel_header"] = IP(src=case["outer_src"], dst=case["outer_dst"])
    if case["nat_t"]:
        kw["nat_t_header"] = UDP(sport=4500, dport=4500)
    return SecurityAssociation(ESP if case["proto"] == "esp" else AH, **kw)


def main():
    cases = json.load(sys.stdin)
    out = []
    for case in cases:
        plain = IP(bytes.fromhex(case["plain"]))
        sealed = sa_for(case).encrypt(plain)
        opened = sa_for(case).decrypt(IP(bytes.fromhex(case["realm_sealed"])))
        out.append(
            {
                "name": case["name"],
                "scapy_sealed": bytes(sealed).hex(),
                "scapy_opened": bytes(opened).hex(),
            }
        )
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
