#!/usr/bin/env python3
"""Produces a test vector in Pulumi's passphrase secrets format.

It follows Pulumi's Go source step by step (pkg/secrets/passphrase:
symmetricCrypterFromPhraseAndState, and sdk/go/common/resource/config/crypt.go:
NewSymmetricCrypterFromPassphrase, EncryptValue), with an independent
implementation of the primitives (Python's hashlib and `cryptography`):

  key            = PBKDF2-HMAC-SHA256(passphrase, salt[8 bytes], 1_000_000, 32)
  EncryptValue   = "v1:" + b64(nonce[12]) + ":" + b64(AES-256-GCM(key, nonce, text, aad=None))
  encryptionsalt = "v1:" + b64(salt) + ":" + EncryptValue("pulumi")

Run it to regenerate encryptionsalt.txt and secret.txt beside it; the Rust
test in state/src/crypt.rs decrypts them.
"""
import base64, hashlib, os, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PASSPHRASE = "correct horse battery staple"
SECRET = "s3cr3t-from-pulumi"

def encrypt_value(key, text):
    nonce = os.urandom(12)
    ct = AESGCM(key).encrypt(nonce, text.encode(), None)
    return "v1:%s:%s" % (base64.b64encode(nonce).decode(), base64.b64encode(ct).decode())

salt = os.urandom(8)
key = hashlib.pbkdf2_hmac("sha256", PASSPHRASE.encode(), salt, 1_000_000, 32)
here = os.path.dirname(os.path.abspath(sys.argv[0]))
with open(os.path.join(here, "encryptionsalt.txt"), "w") as f:
    f.write("v1:%s:%s\n" % (base64.b64encode(salt).decode(), encrypt_value(key, "pulumi")))
with open(os.path.join(here, "secret.txt"), "w") as f:
    f.write(encrypt_value(key, SECRET) + "\n")
