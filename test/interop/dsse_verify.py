#!/usr/bin/env python3
"""An independent DSSE verifier, for cross-checking Custody's envelopes.

Reads {"envelope": <DSSE JSON envelope>, "keys": {keyid: <securesystemslib key dict>}}
on stdin. Computes PAE itself from the DSSE protocol (securesystemslib 0.26 has no
DSSE module) and verifies each signature with securesystemslib's SSlibKey.
Prints {"verified": [keyid, ...]} and exits 0 when at least one key verified, 1 otherwise.
"""
import base64
import binascii
import json
import sys

from securesystemslib.signer import Signature, SSlibKey


def b64decode(s):
    # DSSE allows the standard or the URL-safe alphabet.
    try:
        return base64.b64decode(s, validate=True)
    except binascii.Error:
        return base64.urlsafe_b64decode(s)


def pae(payload_type, payload):
    # protocol.md: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(t), t, len(payload), payload)


def main():
    request = json.load(sys.stdin)
    envelope = request["envelope"]
    message = pae(envelope["payloadType"], b64decode(envelope["payload"]))
    verified = []
    for sig in envelope["signatures"]:
        for keyid, key_dict in request["keys"].items():
            key = SSlibKey.from_dict(keyid, dict(key_dict))
            try:
                key.verify_signature(Signature(keyid, b64decode(sig["sig"]).hex()), message)
            except Exception:  # UnverifiedSignatureError, or a signature the key cannot parse
                continue
            if keyid not in verified:
                verified.append(keyid)
    json.dump({"verified": verified}, sys.stdout)
    return 0 if verified else 1


if __name__ == "__main__":
    sys.exit(main())
