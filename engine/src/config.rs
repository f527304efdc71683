//! A stack's config file, `Pulumi.<stack>.yaml`, in Pulumi's format:
//!
//! ```yaml
//! encryptionsalt: v1:…            # present once the stack has a secret
//! config:
//!   datacenter:prefix: dev        # keys are namespaced by the project
//!   datacenter:alertToken:
//!     secure: v1:…                # AES-256-GCM ciphertext
//! ```
//!
//! Reading keeps the span of every entry, so a wrong value is reported in
//! this file, with a caret. Writing regenerates the file in Pulumi's shape.

use crate::diag::{Diagnostic, Span};
use crate::yaml::{Kind, Node, parse_bytes};
use rinfra_provider::schema::did_you_mean;
use rinfra_state::crypt::{CryptError, Crypter};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The environment variables a passphrase is read from, in order.
pub const PASSPHRASE_VARS: &[&str] = &["RINFRA_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE"];
/// The environment variables naming a file that holds the passphrase.
pub const PASSPHRASE_FILE_VARS: &[&str] = &["RINFRA_CONFIG_PASSPHRASE_FILE", "PULUMI_CONFIG_PASSPHRASE_FILE"];

const TOP_KEYS: &[&str] = &["config", "encryptionsalt", "secretsprovider", "encryptedkey"];

/// The passphrase from the environment, if one is set: the first of
/// [`PASSPHRASE_VARS`], then of [`PASSPHRASE_FILE_VARS`]. An empty
/// passphrase is a passphrase, as in Pulumi.
pub fn passphrase() -> Result<Option<String>, String> {
    for var in PASSPHRASE_VARS {
        if let Ok(p) = std::env::var(var) {
            return Ok(Some(p));
        }
    }
    for var in PASSPHRASE_FILE_VARS {
        // An empty variable is unset, as Pulumi reads it.
        if let Some(path) = std::env::var(var).ok().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()) {
            let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {var}={path}: {e}"))?;
            // Pulumi trims surrounding whitespace from a passphrase file.
            return Ok(Some(text.trim().to_string()));
        }
    }
    Ok(None)
}

/// A config value as the file holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    /// A value in clear: a scalar, list or mapping.
    Plain(Value),
    /// `secure: <ciphertext>`.
    Secure(String),
}

/// One entry of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The value.
    pub value: Stored,
    /// Where the key is.
    pub key_span: Span,
    /// Where the value is.
    pub span: Span,
}

/// A stack's config file.
#[derive(Debug, Clone, Default)]
pub struct StackConfig {
    /// Where it is.
    pub path: PathBuf,
    /// Its text as read, for carets (empty for a new file).
    pub source_text: String,
    /// The `encryptionsalt:` line, and where it is.
    pub salt: Option<(String, Span)>,
    /// Entries by their full key (`project:key`, `aws:region`).
    pub entries: BTreeMap<String, Entry>,
}

/// A problem in a stack config file, located in it.
#[derive(Debug)]
pub struct ConfigProblem(pub Vec<Diagnostic>);

impl StackConfig {
    /// Reads the file at `path`; a missing file is an empty config.
    pub fn read(path: &Path) -> Result<StackConfig, (String, ConfigProblem)> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(StackConfig { path: path.to_path_buf(), ..StackConfig::default() });
            }
            Err(e) => {
                return Err((
                    String::new(),
                    ConfigProblem(vec![Diagnostic::new(format!("cannot read {}: {e}", path.display()))]),
                ));
            }
        };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Self::parse(path, &bytes).map_err(|d| (text, d))
    }

    fn parse(path: &Path, bytes: &[u8]) -> Result<StackConfig, ConfigProblem> {
        let mut out = StackConfig {
            path: path.to_path_buf(),
            source_text: String::from_utf8_lossy(bytes).into_owned(),
            ..StackConfig::default()
        };
        // An empty file is an empty config, as Pulumi reads it.
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(out);
        }
        let root = parse_bytes(bytes).map_err(|d| ConfigProblem(vec![d]))?;
        let mut diags = Vec::new();
        if matches!(root.kind, Kind::Null) {
            return Ok(out);
        }
        let Some(top) = root.as_map() else {
            return Err(ConfigProblem(vec![
                Diagnostic::new(format!("a stack config file must be a mapping, found {}", root.kind_name()))
                    .at(root.span, "expected `config:` here"),
            ]));
        };
        for (k, v) in top {
            match k.text.as_str() {
                "config" if matches!(v.kind, Kind::Null) => {}
                "config" => {
                    let Some(m) = v.as_map() else {
                        diags.push(
                            Diagnostic::new(format!("`config` must be a mapping, found {}", v.kind_name()))
                                .at(v.span, "expected `key: value` entries here"),
                        );
                        continue;
                    };
                    for (ck, cv) in m {
                        match stored(cv) {
                            Ok(value) => {
                                out.entries.insert(ck.text.clone(), Entry { value, key_span: ck.span, span: cv.span });
                            }
                            Err(d) => diags.push(d),
                        }
                    }
                }
                "encryptionsalt" => match &v.kind {
                    Kind::Str(s) => out.salt = Some((s.clone(), v.span)),
                    _ => diags
                        .push(Diagnostic::new("`encryptionsalt` must be a string").at(v.span, "expected v1:SALT:…")),
                },
                "environment" => diags.push(
                    Diagnostic::new("`environment` (Pulumi ESC environments) is not supported by rinfra")
                        .at(k.span, "not supported")
                        .with_hint("set the values with `rinfra config set` instead"),
                ),
                "secretsprovider" | "encryptedkey" => match &v.kind {
                    Kind::Str(s) if k.text == "secretsprovider" && s != "passphrase" && !s.is_empty() => diags.push(
                        Diagnostic::new(format!("secrets provider `{s}` is not supported"))
                            .at(v.span, "not supported")
                            .with_hint("rinfra reads secrets of the passphrase provider only"),
                    ),
                    _ => {}
                },
                _ => {
                    let hint = match did_you_mean(&k.text, TOP_KEYS.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("a stack config file accepts: {}", TOP_KEYS.join(", ")),
                    };
                    diags.push(
                        Diagnostic::new(format!("unknown key `{}` in a stack config file", k.text))
                            .at(k.span, "not recognised")
                            .with_hint(hint),
                    );
                }
            }
        }
        if diags.is_empty() { Ok(out) } else { Err(ConfigProblem(diags)) }
    }

    /// Whether any entry is a secret.
    pub fn has_secure(&self) -> bool {
        self.entries.values().any(|e| matches!(e.value, Stored::Secure(_)))
    }

    /// The crypter for this stack: checks the passphrase against the salt.
    /// `None` when the file has no salt yet.
    pub fn crypter(&self, passphrase: &str) -> Result<Option<Crypter>, Diagnostic> {
        let Some((salt, span)) = &self.salt else { return Ok(None) };
        match Crypter::from_salt(passphrase, salt) {
            Ok(c) => Ok(Some(c)),
            Err(CryptError::WrongPassphrase) => {
                Err(Diagnostic::new(format!("incorrect passphrase for the secrets of {}", self.path.display()))
                    .at(*span, "the passphrase does not open this salt")
                    .with_hint(format!("set {} to the passphrase this stack was created with", PASSPHRASE_VARS[0])))
            }
            Err(e) => Err(Diagnostic::new(format!("`encryptionsalt` is not valid: {e}")).at(*span, "not valid")),
        }
    }

    /// Makes sure the file has a salt, creating one for `passphrase`, and
    /// returns its crypter. Writes nothing.
    pub fn ensure_salt(&mut self, passphrase: &str) -> Result<Crypter, Diagnostic> {
        if let Some(c) = self.crypter(passphrase)? {
            return Ok(c);
        }
        let (c, line) = Crypter::new_salt(passphrase).map_err(|e| Diagnostic::new(e.to_string()))?;
        self.salt = Some((line, Span::point(1, 1)));
        Ok(c)
    }

    /// The file's text, in Pulumi's layout: the salt, then the config
    /// sorted by key.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Some((salt, _)) = &self.salt {
            out.push_str(&format!("encryptionsalt: {salt}\n"));
        }
        if !self.entries.is_empty() {
            out.push_str("config:\n");
            for (k, e) in &self.entries {
                match &e.value {
                    Stored::Secure(ct) => out.push_str(&format!("  {}:\n    secure: {ct}\n", yaml_str(k))),
                    Stored::Plain(v) => out.push_str(&format!("  {}: {}\n", yaml_str(k), yaml_value(v))),
                }
            }
        }
        out
    }

    /// Writes the file atomically.
    pub fn write(&self) -> std::io::Result<()> {
        let mut tmp = self.path.as_os_str().to_owned();
        tmp.push(format!(".tmp.{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, self.render())?;
        std::fs::rename(&tmp, &self.path)
    }

    /// Sets `key` to a plain or encrypted value.
    pub fn set(&mut self, key: &str, value: Stored) {
        let span = Span::point(1, 1);
        self.entries.insert(key.to_string(), Entry { value, key_span: span, span });
    }
}

/// A value as YAML flow text: plain when YAML reads it back as the same
/// string, double-quoted (JSON's escapes, which YAML shares) otherwise.
fn yaml_str(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:@".contains(c))
        && !s.starts_with(['-', ':', '.', '@'])
        && !s.ends_with(':')
        && !s.contains(": ")
        && crate::yaml::parse_str(s).map(|n| matches!(n.kind, Kind::Str(ref t) if t == s)).unwrap_or(false);
    if plain { s.to_string() } else { Value::String(s.to_string()).to_string() }
}

fn yaml_value(v: &Value) -> String {
    match v {
        // Pulumi keeps config values as text; so does this file.
        Value::String(s) => yaml_str(s),
        // JSON is YAML's flow syntax.
        other => other.to_string(),
    }
}

fn stored(node: &Node) -> Result<Stored, Diagnostic> {
    if let Some([(k, v)]) = node.as_map() {
        if k.text == "secure" {
            return match &v.kind {
                Kind::Str(s) => Ok(Stored::Secure(s.clone())),
                _ => Err(Diagnostic::new("a `secure:` value must be a string of ciphertext")
                    .at(v.span, "expected v1:NONCE:CIPHERTEXT")),
            };
        }
    }
    Ok(Stored::Plain(node.to_json()))
}

/// Why a config command cannot do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The key is not declared by the program.
    #[error("config `{key}` is not declared by the program{}", match .suggestion { Some(s) => format!("; did you mean `{s}`?"), None => "; declare it under `config:` in Pulumi.yaml first".to_string() })]
    Undeclared {
        /// The key given.
        key: String,
        /// The nearest declared key.
        suggestion: Option<String>,
    },
    /// The value does not fit the declared type.
    #[error("`{value}` is not a valid {ty} for config `{key}`")]
    BadValue {
        /// The key.
        key: String,
        /// The declared type, in lower case.
        ty: String,
        /// The value given.
        value: String,
    },
    /// The stack's config has no such key.
    #[error("stack `{stack}` has no config `{key}`")]
    NotSet {
        /// The stack.
        stack: String,
        /// The key.
        key: String,
    },
    /// A secret could not be read.
    #[error("config `{key}` cannot be decrypted: {source}")]
    Decrypt {
        /// The key.
        key: String,
        /// Why.
        source: CryptError,
    },
    /// The file could not be written.
    #[error("cannot write {}: {source}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The stack has secrets and no passphrase is set.
    #[error("{0}")]
    Passphrase(String),
}

/// A config value as a command shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown {
    /// The value, or `None` for a secret not revealed.
    pub value: Option<Value>,
    /// Whether it is stored encrypted.
    pub secret: bool,
}

/// Reads and edits one stack's config file, checking keys and values
/// against what the program declares.
#[derive(Debug)]
pub struct Editor {
    /// The project's name, the namespace of its keys.
    pub namespace: String,
    /// The stack.
    pub stack: String,
    /// The file.
    pub file: StackConfig,
    decls: BTreeMap<String, crate::stack::ConfigDecl>,
}

/// Provider settings a stack's config may hold besides the program's keys.
pub const PROVIDER_KEYS: &[&str] = &["aws:region", "aws:profile", "aws:defaultTags"];

/// Settings of Pulumi's AWS provider that only skip checks rinfra never
/// makes; a stack file may hold them, and rinfra ignores them.
pub const IGNORED_PROVIDER_KEYS: &[&str] = &[
    "aws:skipCredentialsValidation",
    "aws:skipMetadataApiCheck",
    "aws:skipRegionValidation",
    "aws:skipRequestingAccountId",
];

/// `aws:defaultTags` as text: its `tags` map as JSON. Pulumi writes it as
/// a mapping (`{tags: {team: data}}`) or as that mapping's JSON text.
pub fn default_tags_text(v: &Value) -> Option<String> {
    let parsed;
    let v = match v {
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s).ok()?;
            &parsed
        }
        other => other,
    };
    let tags = v.as_object().filter(|m| m.len() == 1)?.get("tags")?.as_object()?;
    tags.values().all(Value::is_string).then(|| Value::Object(tags.clone()).to_string())
}

impl Editor {
    /// An editor for `file`, with the program's declarations.
    pub fn new(
        namespace: &str,
        stack: &str,
        file: StackConfig,
        decls: BTreeMap<String, crate::stack::ConfigDecl>,
    ) -> Editor {
        Editor { namespace: namespace.to_string(), stack: stack.to_string(), file, decls }
    }

    /// The key as the file writes it, checked: `prefix` and
    /// `datacenter:prefix` are the program's `prefix`.
    pub fn full_key(&self, key: &str) -> Result<String, ConfigError> {
        if PROVIDER_KEYS.contains(&key) {
            return Ok(key.to_string());
        }
        let bare = key.strip_prefix(&format!("{}:", self.namespace)).unwrap_or(key);
        if self.decls.contains_key(bare) {
            return Ok(format!("{}:{bare}", self.namespace));
        }
        let suggestion = did_you_mean(bare, self.decls.keys().map(String::as_str).chain(PROVIDER_KEYS.iter().copied()))
            .map(str::to_string);
        Err(ConfigError::Undeclared { key: key.to_string(), suggestion })
    }

    fn find(&self, key: &str) -> Result<(String, &Entry), ConfigError> {
        // A key the file holds can be read and removed even when the
        // program no longer declares it.
        if let Some(e) = self.file.entries.get(key) {
            return Ok((key.to_string(), e));
        }
        let namespaced = format!("{}:{key}", self.namespace);
        if let Some(e) = self.file.entries.get(&namespaced) {
            return Ok((namespaced, e));
        }
        let full = self.full_key(key)?;
        // A bare key written by hand is the project's too.
        let bare = full.strip_prefix(&format!("{}:", self.namespace)).unwrap_or(&full).to_string();
        self.file
            .entries
            .get(&full)
            .map(|e| (full.clone(), e))
            .or_else(|| self.file.entries.get(&bare).map(|e| (bare.clone(), e)))
            .ok_or(ConfigError::NotSet { stack: self.stack.clone(), key: full })
    }

    /// Sets `key` to `value`, encrypted when `secret`, and writes the file.
    pub fn set(&mut self, key: &str, value: &str, secret: bool) -> Result<(), ConfigError> {
        let full = self.full_key(key)?;
        let bare = full.strip_prefix(&format!("{}:", self.namespace)).unwrap_or(&full).to_string();
        if let Some(d) = self.decls.get(&bare) {
            if !crate::stack::check_config_value(d.ty, value) {
                let ty = d.ty.to_string().to_lowercase();
                return Err(ConfigError::BadValue { key: full, ty, value: value.to_string() });
            }
        }
        // A value the program declares secret is stored encrypted, with or
        // without `--secret`: it must never sit in the file in clear.
        let secret = secret || self.decls.get(&bare).is_some_and(|d| d.secret);
        let stored = if secret {
            let c = self.crypter_for_write()?;
            Stored::Secure(c.encrypt(value).map_err(|source| ConfigError::Decrypt { key: full.clone(), source })?)
        } else {
            Stored::Plain(Value::String(value.to_string()))
        };
        self.file.entries.remove(&bare);
        self.file.set(&full, stored);
        self.write()
    }

    fn crypter_for_write(&mut self) -> Result<Crypter, ConfigError> {
        let pass = passphrase().map_err(ConfigError::Passphrase)?.ok_or_else(|| {
            ConfigError::Passphrase(format!(
                "storing a secret needs a passphrase; set {} (or PULUMI_CONFIG_PASSPHRASE)",
                PASSPHRASE_VARS[0]
            ))
        })?;
        self.file.ensure_salt(&pass).map_err(|d| ConfigError::Passphrase(d.message))
    }

    /// Removes `key` and writes the file.
    pub fn rm(&mut self, key: &str) -> Result<(), ConfigError> {
        let (found, _) = self.find(key)?;
        self.file.entries.remove(&found);
        self.write()
    }

    fn write(&self) -> Result<(), ConfigError> {
        self.file.write().map_err(|source| ConfigError::Write { path: self.file.path.clone(), source })
    }

    fn show(&self, key: &str, e: &Entry, reveal: bool, crypter: Option<&Crypter>) -> Result<Shown, ConfigError> {
        match (&e.value, reveal, crypter) {
            (Stored::Plain(v), _, _) => Ok(Shown { value: Some(v.clone()), secret: false }),
            (Stored::Secure(_), false, _) => Ok(Shown { value: None, secret: true }),
            (Stored::Secure(ct), true, Some(c)) => {
                let text = c.decrypt(ct).map_err(|source| ConfigError::Decrypt { key: key.to_string(), source })?;
                Ok(Shown { value: Some(Value::String(text)), secret: true })
            }
            (Stored::Secure(_), true, None) => Err(ConfigError::Passphrase(format!(
                "showing secrets needs the passphrase; set {} (or PULUMI_CONFIG_PASSPHRASE)",
                PASSPHRASE_VARS[0]
            ))),
        }
    }

    fn reader(&self, reveal: bool) -> Result<Option<Crypter>, ConfigError> {
        if !reveal || !self.file.has_secure() {
            return Ok(None);
        }
        let Some(pass) = passphrase().map_err(ConfigError::Passphrase)? else { return Ok(None) };
        self.file.crypter(&pass).map_err(|d| ConfigError::Passphrase(d.message))
    }

    /// The value of `key`; a secret's only when `reveal`.
    pub fn get(&self, key: &str, reveal: bool) -> Result<(String, Shown), ConfigError> {
        let (full, e) = self.find(key)?;
        let c = self.reader(reveal)?;
        let shown = self.show(&full, e, reveal, c.as_ref())?;
        Ok((full, shown))
    }

    /// Every value; secrets' only when `reveal`.
    pub fn list(&self, reveal: bool) -> Result<BTreeMap<String, Shown>, ConfigError> {
        let c = self.reader(reveal)?;
        self.file.entries.iter().map(|(k, e)| Ok((k.clone(), self.show(k, e, reveal, c.as_ref())?))).collect()
    }
}
