//! Secrets in Pulumi's passphrase format, and sealing them in a state.
//!
//! The format is Pulumi's own (`pkg/secrets/passphrase` and
//! `sdk/go/common/resource/config/crypt.go`), so that a stack file written
//! by `pulumi config set --secret` is read here and the reverse:
//!
//! - the key is PBKDF2-HMAC-SHA256 of the passphrase over an 8-byte random
//!   salt, 1,000,000 iterations, 32 bytes;
//! - a value is `v1:<base64 nonce>:<base64 AES-256-GCM ciphertext and tag>`
//!   with a 12-byte random nonce and no associated data;
//! - the stack file's `encryptionsalt:` is `v1:<base64 salt>:` followed by
//!   the encryption of the text `pulumi`, which tells a wrong passphrase
//!   from a right one.
//!
//! In a state, a secret value is replaced by Pulumi's secret object: the
//! signature key and value below, and `ciphertext` holding the encryption
//! of the value's JSON text.

use crate::StateFile;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Map, Value};
use std::num::NonZeroU32;

/// Pulumi's PBKDF2 iteration count.
pub const PBKDF2_ITERATIONS: u32 = 1_000_000;
/// The key of the signature field that marks a secret object in a state.
pub const SECRET_SIG_KEY: &str = "4dabf18193072939515e22adb298388d";
/// The value of the signature field of a secret object.
pub const SECRET_SIG: &str = "1b47061264138c4ac30d75fd1eb44270";
/// The text Pulumi encrypts into `encryptionsalt` to check a passphrase.
const CHECK_TEXT: &str = "pulumi";

/// Why a secret could not be encrypted or decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptError {
    /// The text is not in the `v1:…` format.
    #[error("not a valid encrypted value ({0})")]
    Malformed(String),
    /// The authentication tag does not match: another key encrypted it.
    #[error("the value cannot be decrypted with this passphrase")]
    WrongKey,
    /// The passphrase does not open the stack's `encryptionsalt`.
    #[error("incorrect passphrase")]
    WrongPassphrase,
    /// The system's random source failed.
    #[error("the system random source failed")]
    Random,
}

/// Encrypts and decrypts values with one stack's key.
pub struct Crypter {
    key: LessSafeKey,
}

impl std::fmt::Debug for Crypter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key itself is never printed.
        f.write_str("Crypter(AES-256-GCM)")
    }
}

fn random<const N: usize>() -> Result<[u8; N], CryptError> {
    let mut out = [0u8; N];
    SystemRandom::new().fill(&mut out).map_err(|_| CryptError::Random)?;
    Ok(out)
}

impl Crypter {
    /// The crypter for `passphrase` over `salt`, as Pulumi derives it.
    pub fn from_passphrase(passphrase: &str, salt: &[u8]) -> Result<Crypter, CryptError> {
        Self::derive(passphrase, salt, PBKDF2_ITERATIONS)
    }

    fn derive(passphrase: &str, salt: &[u8], iterations: u32) -> Result<Crypter, CryptError> {
        let mut key = [0u8; 32];
        let n = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
        ring::pbkdf2::derive(ring::pbkdf2::PBKDF2_HMAC_SHA256, n, salt, passphrase.as_bytes(), &mut key);
        // ring refuses only a key of the wrong length, and this one is 32 bytes.
        let unbound = UnboundKey::new(&AES_256_GCM, &key).map_err(|_| CryptError::Malformed("key length".into()))?;
        Ok(Crypter { key: LessSafeKey::new(unbound) })
    }

    /// A new random salt for `passphrase`: the crypter and the
    /// `encryptionsalt` line to write in the stack file.
    pub fn new_salt(passphrase: &str) -> Result<(Crypter, String), CryptError> {
        let salt: [u8; 8] = random()?;
        let c = Crypter::from_passphrase(passphrase, &salt)?;
        let check = c.encrypt(CHECK_TEXT)?;
        Ok((c, format!("v1:{}:{check}", B64.encode(salt))))
    }

    /// The crypter for `passphrase` and a stack file's `encryptionsalt`,
    /// checked against the text the salt line carries.
    pub fn from_salt(passphrase: &str, encryptionsalt: &str) -> Result<Crypter, CryptError> {
        let parts: Vec<&str> = encryptionsalt.split(':').collect();
        let [v, salt, rest @ ..] = parts.as_slice() else {
            return Err(CryptError::Malformed("encryptionsalt must be v1:SALT:v1:NONCE:CIPHERTEXT".into()));
        };
        if *v != "v1" || rest.len() != 3 {
            return Err(CryptError::Malformed("encryptionsalt must be v1:SALT:v1:NONCE:CIPHERTEXT".into()));
        }
        let salt = B64.decode(salt).map_err(|e| CryptError::Malformed(format!("salt: {e}")))?;
        let c = Crypter::from_passphrase(passphrase, &salt)?;
        match c.decrypt(&rest.join(":")) {
            Ok(t) if t == CHECK_TEXT => Ok(c),
            Ok(_) | Err(CryptError::WrongKey) => Err(CryptError::WrongPassphrase),
            Err(e) => Err(e),
        }
    }

    /// Encrypts `plaintext` as `v1:<nonce>:<ciphertext>`.
    pub fn encrypt(&self, plaintext: &str) -> Result<String, CryptError> {
        let nonce: [u8; 12] = random()?;
        let mut buf = plaintext.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
            .map_err(|_| CryptError::Random)?;
        Ok(format!("v1:{}:{}", B64.encode(nonce), B64.encode(buf)))
    }

    /// Decrypts a `v1:<nonce>:<ciphertext>` value.
    pub fn decrypt(&self, value: &str) -> Result<String, CryptError> {
        let mut parts = value.split(':');
        let (Some("v1"), Some(nonce), Some(ct), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(CryptError::Malformed("expected v1:NONCE:CIPHERTEXT".into()));
        };
        let nonce = B64.decode(nonce).map_err(|e| CryptError::Malformed(format!("nonce: {e}")))?;
        let nonce: [u8; 12] =
            nonce.try_into().map_err(|_| CryptError::Malformed("the nonce is not 12 bytes".into()))?;
        let mut buf = B64.decode(ct).map_err(|e| CryptError::Malformed(format!("ciphertext: {e}")))?;
        let plain = self
            .key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
            .map_err(|_| CryptError::WrongKey)?;
        String::from_utf8(plain.to_vec()).map_err(|_| CryptError::Malformed("the plaintext is not UTF-8".into()))
    }
}

/// Seals the values of a state that are derived from secrets: every leaf
/// whose text contains a secret's text is replaced by a secret object.
#[derive(Debug)]
pub struct Sealer {
    crypter: std::sync::Arc<Crypter>,
    texts: Vec<String>,
}

impl Sealer {
    /// A sealer hiding every value that contains one of `texts`.
    pub fn new(crypter: std::sync::Arc<Crypter>, texts: Vec<String>) -> Sealer {
        let texts = texts.into_iter().filter(|t| !t.is_empty()).collect();
        Sealer { crypter, texts }
    }

    /// The same sealer hiding `more` texts too.
    pub fn with_more(&self, more: &[String]) -> Sealer {
        let mut texts = self.texts.clone();
        texts.extend(more.iter().filter(|t| !t.is_empty()).cloned());
        Sealer { crypter: self.crypter.clone(), texts }
    }

    fn is_secret(&self, v: &Value) -> bool {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return false,
        };
        self.texts.iter().any(|t| text.contains(t.as_str()))
    }

    fn seal_value(&self, v: &mut Value) -> Result<(), CryptError> {
        match v {
            Value::Array(items) => items.iter_mut().try_for_each(|i| self.seal_value(i)),
            Value::Object(m) => m.values_mut().try_for_each(|i| self.seal_value(i)),
            leaf if self.is_secret(leaf) => {
                let ciphertext = self.crypter.encrypt(&leaf.to_string())?;
                let mut m = Map::new();
                m.insert(SECRET_SIG_KEY.into(), Value::String(SECRET_SIG.into()));
                m.insert("ciphertext".into(), Value::String(ciphertext));
                *leaf = Value::Object(m);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// A copy of `state` with its secret values encrypted.
    pub fn seal(&self, state: &StateFile) -> Result<StateFile, CryptError> {
        let mut s = state.clone();
        for_each_value(&mut s, |v| self.seal_value(v))?;
        Ok(s)
    }
}

/// Whether `state` holds any encrypted value.
pub fn has_secrets(state: &StateFile) -> bool {
    let mut found = false;
    let mut copy = state.clone();
    let _ = for_each_value(&mut copy, |v| {
        found |= contains_secret(v);
        Ok(())
    });
    found
}

fn contains_secret(v: &Value) -> bool {
    match v {
        Value::Object(m) if m.get(SECRET_SIG_KEY).and_then(Value::as_str) == Some(SECRET_SIG) => true,
        Value::Object(m) => m.values().any(contains_secret),
        Value::Array(a) => a.iter().any(contains_secret),
        _ => false,
    }
}

fn open_value(crypter: &Crypter, v: &mut Value, texts: &mut Vec<String>) -> Result<(), CryptError> {
    match v {
        Value::Object(m) if m.get(SECRET_SIG_KEY).and_then(Value::as_str) == Some(SECRET_SIG) => {
            let ct = m
                .get("ciphertext")
                .and_then(Value::as_str)
                .ok_or_else(|| CryptError::Malformed("a secret object without `ciphertext`".into()))?;
            let text = crypter.decrypt(ct)?;
            let plain: Value =
                serde_json::from_str(&text).map_err(|e| CryptError::Malformed(format!("the plaintext: {e}")))?;
            texts.push(match &plain {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            *v = plain;
            Ok(())
        }
        Value::Object(m) => m.values_mut().try_for_each(|i| open_value(crypter, i, texts)),
        Value::Array(items) => items.iter_mut().try_for_each(|i| open_value(crypter, i, texts)),
        _ => Ok(()),
    }
}

/// Decrypts every secret object of `state` in place, and returns the text
/// of each value it decrypted, so that a save can encrypt them again.
pub fn open(state: &mut StateFile, crypter: &Crypter) -> Result<Vec<String>, CryptError> {
    let mut texts = Vec::new();
    for_each_value(state, |v| open_value(crypter, v, &mut texts))?;
    texts.retain(|t| !t.is_empty());
    Ok(texts)
}

/// Calls `f` on every value a state holds: inputs, outputs, stack outputs,
/// pending inputs and replaced resources.
fn for_each_value(
    s: &mut StateFile,
    mut f: impl FnMut(&mut Value) -> Result<(), CryptError>,
) -> Result<(), CryptError> {
    let resources = s.resources.values_mut().chain(s.replaced.iter_mut().map(|r| &mut r.resource));
    for r in resources {
        r.inputs.values_mut().chain(r.outputs.values_mut()).try_for_each(&mut f)?;
    }
    s.outputs.values_mut().try_for_each(&mut f)?;
    s.pending.iter_mut().flat_map(|p| p.inputs.values_mut()).try_for_each(&mut f)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Produced by `state/tests/vector/pulumi_vector.py`, which follows Pulumi's
    /// algorithm step by step with Python's hashlib and `cryptography`.
    const VECTOR_PASSPHRASE: &str = "correct horse battery staple";
    const VECTOR_SALT: &str = include_str!("../tests/vector/encryptionsalt.txt");
    const VECTOR_VALUE: &str = include_str!("../tests/vector/secret.txt");

    #[test]
    fn pulumi_test_vector_decrypts() {
        let c = Crypter::from_salt(VECTOR_PASSPHRASE, VECTOR_SALT.trim()).unwrap();
        assert_eq!(c.decrypt(VECTOR_VALUE.trim()).unwrap(), "s3cr3t-from-pulumi");
    }

    /// Salts from Pulumi's own tests (pkg/secrets/passphrase/manager_test.go
    /// and its plugin's tests): the first opens with "password", the second
    /// with the empty passphrase.
    #[test]
    fn pulumis_own_test_vectors_open() {
        let salt = "v1:fozI5u6B030=:v1:F+6ZduKKd8G0/V7L:PGMFeIzwobWRKmEAzUdaQHqC5mMRIQ==";
        assert!(Crypter::from_salt("password", salt).is_ok());
        assert_eq!(Crypter::from_salt("password123", salt).unwrap_err(), CryptError::WrongPassphrase);
        let empty = "v1:LVuDkcjhUns=:v1:WPbL+tmbxnqWswQ2:lebZxStyHT3IZkmbN+3xCx9zqtoPog==";
        assert!(Crypter::from_salt("", empty).is_ok());
        // Pulumi's "broken" salt lacks its version and is refused as such.
        assert!(matches!(
            Crypter::from_salt("password", "fozI5u6B030=:v1:F+6ZduL:PGMFeIzwobWRKmEAzUdaQHqC5mMRIQ=="),
            Err(CryptError::Malformed(_))
        ));
    }

    #[test]
    fn wrong_passphrase_is_refused() {
        assert_eq!(Crypter::from_salt("nope", VECTOR_SALT.trim()).unwrap_err(), CryptError::WrongPassphrase);
    }

    #[test]
    fn round_trip_with_a_new_salt() {
        let (c, line) = Crypter::new_salt("pw").unwrap();
        let again = Crypter::from_salt("pw", &line).unwrap();
        let ct = c.encrypt("hello").unwrap();
        assert_eq!(again.decrypt(&ct).unwrap(), "hello");
        assert!(ct.starts_with("v1:"));
        assert_ne!(c.encrypt("hello").unwrap(), ct, "every encryption has its own nonce");
    }

    #[test]
    fn malformed_values_are_errors_not_panics() {
        let c = Crypter::derive("pw", b"12345678", 1).unwrap();
        for bad in ["", "v1", "v1:a:b:c", "v2:AAAA:AAAA", "v1:!!:AAAA", "v1:AAAA:AAAA", "v1:AAAAAAAAAAAAAAAA:AAAA"] {
            assert!(c.decrypt(bad).is_err(), "{bad}");
        }
        for bad in ["", "v1:x", "v2:AAAA:v1:a:b", "v1:!!:v1:a:b"] {
            assert!(Crypter::from_salt("pw", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn seal_and_open_a_state() {
        let c = std::sync::Arc::new(Crypter::derive("pw", b"12345678", 1).unwrap());
        let mut s = StateFile::new(&crate::StackId::single("demo"));
        s.outputs.insert("token".into(), Value::String("x-tok3n-y".into()));
        s.outputs.insert("plain".into(), Value::String("hello".into()));
        s.outputs.insert("list".into(), serde_json::json!(["a", "tok3n", 3]));
        let sealer = Sealer::new(c.clone(), vec!["tok3n".into(), String::new()]);
        let sealed = sealer.seal(&s).unwrap();
        let text = serde_json::to_string(&sealed).unwrap();
        assert!(!text.contains("tok3n"), "{text}");
        assert!(text.contains("hello"));
        assert!(has_secrets(&sealed));
        assert!(!has_secrets(&s));
        let mut opened = sealed.clone();
        open(&mut opened, &c).unwrap();
        assert_eq!(opened.outputs, s.outputs);
    }
}
