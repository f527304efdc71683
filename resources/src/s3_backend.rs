//! Team state in S3: one object per stack, a lock object taken with
//! `If-None-Match: *`, and every state write a compare-and-swap on the
//! object's ETag (`If-Match`), so that no write is ever lost, even when a
//! lock was broken or expired.
//!
//! Layout under `s3://<bucket>/<prefix>`: `<project>/<stack>.json` and
//! `<project>/<stack>.json.lock` (a single-file program's are
//! `<name>.json` and `<name>.json.lock`). With bucket versioning on, the
//! object's versions are the stack's history.

use crate::aws::Aws;
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use rinfra_state::backend::{Backend, History, Lease, Version};
use rinfra_state::crypt::Sealer;
use rinfra_state::history::Update;
use rinfra_state::{LockInfo, LockStatus, StackId, StateError, StateFile};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

/// The largest state or lock object read, so that a wrong object cannot
/// make rinfra allocate without bound.
const MAX_OBJECT_BYTES: i64 = 64 * 1024 * 1024;

/// Runs an SDK future from the blocking backend calls. Commands run on a
/// multi-threaded runtime, where `block_in_place` hands this worker's other
/// tasks to the rest of the pool while it waits. Anywhere else (no runtime,
/// or a current-thread one, as in some tests) the future runs on a
/// one-off runtime in a thread of its own, instead of panicking.
pub(crate) fn block<F>(f: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(|| h.block_on(f)),
        _ => std::thread::scope(|s| {
            s.spawn(|| match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => Some(rt.block_on(f)),
                Err(_) => None,
            })
            .join()
            .ok()
            .flatten()
        })
        .unwrap_or_else(fallback),
    }
}

/// Reached only when no runtime can be built at all; the caller's future
/// is then lost, and the process cannot go on safely.
fn fallback<T>() -> T {
    tracing::error!("cannot build a runtime for an S3 call; stopping");
    std::process::exit(1)
}

fn status<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// An object's bytes and its ETag.
type Object = (Vec<u8>, Option<String>);

/// A stack's state in S3.
#[derive(Debug)]
pub struct S3Backend {
    bucket: String,
    prefix: String,
    url: String,
    aws: OnceLock<Arc<Aws>>,
    /// What this run knows of each state object, from its last read or write.
    etags: Mutex<BTreeMap<StackId, Tag>>,
    /// Where a state that could not be written is kept.
    recovery_dir: PathBuf,
    /// The recovery file of each stack in this run: one per run, rewritten
    /// by every refused save, so it always holds the run's latest state.
    recovery: Mutex<BTreeMap<StackId, PathBuf>>,
}

/// What a run knows of a state object.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tag {
    /// It did not exist: the first write must create it.
    Absent,
    /// It had this ETag: a write must replace exactly that version.
    Known(String),
}

impl S3Backend {
    /// The backend at `url` (`s3://bucket` or `s3://bucket/prefix`). A run
    /// whose save fails keeps its state in `recovery_dir`. Nothing is
    /// called until [`S3Backend::connect`] gives it its AWS settings.
    pub fn parse(url: &str, recovery_dir: PathBuf) -> Result<S3Backend, String> {
        let rest = url.strip_prefix("s3://").ok_or("only s3://BUCKET[/PREFIX] backends are supported")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !valid_bucket {
            return Err(format!("`{bucket}` is not a valid S3 bucket name"));
        }
        if url.contains(['?', '#']) {
            return Err(
                "query parameters such as `?region=` are not supported; set the region with --region or AWS_REGION"
                    .into(),
            );
        }
        let prefix = prefix.trim_end_matches('/').to_string();
        if !prefix.is_empty() && prefix.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
            return Err("the prefix may not contain empty, `.` or `..` segments".into());
        }
        Ok(S3Backend {
            bucket: bucket.to_string(),
            prefix,
            url: url.trim_end_matches('/').to_string(),
            aws: OnceLock::new(),
            etags: Mutex::new(BTreeMap::new()),
            recovery_dir,
            recovery: Mutex::new(BTreeMap::new()),
        })
    }

    /// Gives the backend the AWS connection to use (credentials, region,
    /// endpoint), shared with the resource providers.
    pub fn connect(&self, aws: Arc<Aws>) {
        let _ = self.aws.set(aws);
    }

    fn client(&self) -> Result<&aws_sdk_s3::Client, StateError> {
        let aws = self.aws.get().ok_or_else(|| StateError::Remote {
            operation: "s3",
            location: self.url.clone(),
            message: "the backend was used before it was connected".into(),
            source: None,
        })?;
        Ok(block(aws.s3()))
    }

    fn key(&self, id: &StackId) -> String {
        let name = match &id.project {
            Some(p) => format!("{p}/{}.json", id.stack),
            None => format!("{}.json", id.stack),
        };
        if self.prefix.is_empty() { name } else { format!("{}/{name}", self.prefix) }
    }

    fn lock_key(&self, id: &StackId) -> String {
        format!("{}.lock", self.key(id))
    }

    fn url_of(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    fn remote<E>(&self, operation: &'static str, key: &str, e: SdkError<E, HttpResponse>) -> StateError
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let message = crate::aws::describe_sdk_error(&e);
        StateError::Remote { operation, location: self.url_of(key), message, source: Some(Box::new(e)) }
    }

    /// The object's bytes and ETag, or `None` when there is none. A
    /// connection dropped while the body streams is retried here, as the
    /// SDK retries one dropped before the answer began.
    fn get(&self, key: &str, version: Option<&str>) -> Result<Option<Object>, StateError> {
        let mut last = None;
        for attempt in 0..3u64 {
            if attempt > 0 {
                std::thread::sleep(std::time::Duration::from_millis(200 * attempt));
            }
            match self.get_once(key, version) {
                Ok(found) => return Ok(found),
                Err(e) => match *e {
                    (true, e) => last = Some(e),
                    (false, e) => return Err(e),
                },
            }
        }
        Err(last.unwrap_or_else(|| StateError::Remote {
            operation: "s3:GetObject",
            location: self.url_of(key),
            message: "no attempt was made".into(),
            source: None,
        }))
    }

    /// One GetObject; an error says whether trying again may help.
    fn get_once(&self, key: &str, version: Option<&str>) -> Result<Option<Object>, Box<(bool, StateError)>> {
        use tokio::io::AsyncReadExt;
        let client = self.client().map_err(|e| Box::new((false, e)))?;
        let url = self.url_of(key);
        let read = |message: String, source: Option<Box<dyn std::error::Error + Send + Sync>>| StateError::Remote {
            operation: "s3:GetObject",
            location: url.clone(),
            message,
            source,
        };
        let too_big = || read("the object is larger than 64 MiB; it is not a rinfra state".into(), None);
        let out =
            block(client.get_object().bucket(&self.bucket).key(key).set_version_id(version.map(str::to_string)).send());
        let out = match out {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) || status(&e) == Some(404) => {
                return Ok(None);
            }
            Err(e) => return Err(Box::new((false, self.remote("s3:GetObject", key, e)))),
        };
        if out.content_length().unwrap_or(0) > MAX_OBJECT_BYTES {
            return Err(Box::new((false, too_big())));
        }
        let etag = out.e_tag().map(str::to_string);
        // The body is read with a bound whether or not a length was given.
        let limit = u64::try_from(MAX_OBJECT_BYTES).unwrap_or(u64::MAX);
        let mut bytes = Vec::new();
        let body = out.body.into_async_read().take(limit + 1);
        let got = block(async move {
            let mut body = body;
            body.read_to_end(&mut bytes).await.map(|_| bytes)
        });
        match got {
            Ok(b) if b.len() as u64 > limit => Err(Box::new((false, too_big()))),
            Ok(b) => Ok(Some((b, etag))),
            Err(e) => {
                Err(Box::new((true, read(format!("the connection broke while reading: {e}"), Some(Box::new(e))))))
            }
        }
    }

    /// Keeps `bytes`, a state that could not be written, in this run's
    /// recovery file for `id`; says where, or why it could not.
    fn keep(&self, id: &StackId, bytes: &[u8]) -> Result<PathBuf, String> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = {
            let mut files = self.recovery.lock().map_err(|_| "the recovery table is poisoned".to_string())?;
            files
                .entry(id.clone())
                .or_insert_with(|| {
                    let when = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0);
                    let project = id.project.as_deref().unwrap_or("single");
                    self.recovery_dir.join(format!("{project}-{}-{when}-{}.json", id.stack, std::process::id()))
                })
                .clone()
        };
        std::fs::create_dir_all(&self.recovery_dir)
            .and_then(|()| {
                let mut f =
                    std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path)?;
                std::io::Write::write_all(&mut f, bytes)?;
                f.sync_all()
            })
            .map_err(|e| format!("it could not be kept in {}: {e}", path.display()))?;
        Ok(path)
    }

    fn no_etag(&self, key: &str) -> StateError {
        StateError::Remote {
            operation: "s3:PutObject",
            location: self.url_of(key),
            message: "the store returned no ETag, without which a write cannot be made safely".into(),
            source: None,
        }
    }

    fn lock_body(&self, id: &StackId) -> Result<Option<LockStatus>, StateError> {
        let key = self.lock_key(id);
        Ok(self.get(&key, None)?.map(|(bytes, _)| LockStatus::of_bytes(&bytes)))
    }
}

/// A lock object this process holds.
struct S3Lease {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    body: Vec<u8>,
}

/// Deletes the lock, after reading it back to check it is still ours: S3
/// (and LocalStack) cannot delete conditionally, and a lock broken by
/// `unlock --force` and taken by another run must stay. The body carries a
/// random nonce, so no other holder's lock reads the same.
async fn release(client: aws_sdk_s3::Client, bucket: String, key: String, body: Vec<u8>) {
    let read = async {
        let out = client.get_object().bucket(&bucket).key(&key).send().await.ok()?;
        Some(out.body.collect().await.ok()?.into_bytes())
    };
    if read.await.is_some_and(|held| held.as_ref() == body.as_slice()) {
        if let Err(e) = client.delete_object().bucket(&bucket).key(&key).send().await {
            tracing::warn!("cannot release the lock s3://{bucket}/{key}: {}", crate::aws::describe_sdk_error(&e));
        }
    }
}

impl Lease for S3Lease {
    fn releaser(&self) -> Box<dyn Fn() + Send + Sync> {
        let (client, bucket, key, body) =
            (self.client.clone(), self.bucket.clone(), self.key.clone(), self.body.clone());
        // An interrupt must exit at once, even when S3 does not answer: the
        // release gets three seconds, on the runtime the lease was taken
        // on, from a thread of its own.
        let handle = tokio::runtime::Handle::try_current().ok();
        Box::new(move || {
            let Some(handle) = handle.clone() else { return };
            let fut = release(client.clone(), bucket.clone(), key.clone(), body.clone());
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                handle.block_on(fut);
                let _ = tx.send(());
            });
            let _ = rx.recv_timeout(std::time::Duration::from_secs(3));
        })
    }
}

impl Drop for S3Lease {
    fn drop(&mut self) {
        block(release(self.client.clone(), self.bucket.clone(), self.key.clone(), std::mem::take(&mut self.body)));
    }
}

fn rfc3339(t: Option<&aws_sdk_s3::primitives::DateTime>) -> String {
    t.and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok()).unwrap_or_default()
}

impl Backend for S3Backend {
    fn location(&self, id: &StackId) -> String {
        self.url_of(&self.key(id))
    }

    fn load(&self, id: &StackId) -> Result<Option<StateFile>, StateError> {
        let key = self.key(id);
        let found = self.get(&key, None)?;
        let tag = match &found {
            None => Tag::Absent,
            Some((_, Some(etag))) => Tag::Known(etag.clone()),
            Some((_, None)) => return Err(self.no_etag(&key)),
        };
        if let Ok(mut etags) = self.etags.lock() {
            etags.insert(id.clone(), tag);
        }
        let Some((bytes, _)) = found else { return Ok(None) };
        let location = PathBuf::from(self.url_of(&key));
        let state = rinfra_state::verify_bytes(&location, &bytes)?;
        rinfra_state::check_owner(&location, &state, id)?;
        Ok(Some(state))
    }

    fn save(&self, id: &StackId, state: &mut StateFile, sealer: Option<&Sealer>) -> Result<(), StateError> {
        let key = self.key(id);
        let location = self.url_of(&key);
        let bytes = rinfra_state::encode(&PathBuf::from(&location), state, sealer)?;
        // A save with no read before it knows nothing of the object, and
        // may only create it.
        let expected = self.etags.lock().ok().and_then(|e| e.get(id).cloned()).unwrap_or(Tag::Absent);
        let client = self.client()?;
        let put = client.put_object().bucket(&self.bucket).key(&key).body(ByteStream::from(bytes.clone()));
        // The first state of a stack must not exist yet; every later one
        // must replace exactly the version this run last read or wrote.
        let put = match &expected {
            Tag::Known(etag) => put.if_match(etag),
            Tag::Absent => put.if_none_match("*"),
        };
        let result = block(put.content_type("application/json").send());
        let remember = |etag: Option<String>| -> Result<(), StateError> {
            let tag = Tag::Known(etag.ok_or_else(|| self.no_etag(&key))?);
            if let Ok(mut etags) = self.etags.lock() {
                etags.insert(id.clone(), tag);
            }
            Ok(())
        };
        let failure = match result {
            Ok(out) => return remember(out.e_tag().map(str::to_string)),
            Err(e) => e,
        };
        let conflict = matches!(status(&failure), Some(409 | 412));
        if conflict {
            // A retried write whose first attempt landed fails its own
            // condition; then the object already holds exactly these bytes.
            if let Ok(Some((now, etag))) = self.get(&key, None) {
                if now == bytes {
                    return remember(etag);
                }
            }
        }
        state.serial = state.serial.saturating_sub(1);
        let kept = self.keep(id, &bytes);
        match (conflict, kept) {
            (true, Ok(recovery)) => Err(StateError::Conflict { location, recovery }),
            (true, Err(why)) => Err(StateError::Remote {
                operation: "s3:PutObject",
                location,
                message: format!(
                    "the state was changed by another run since this one read it, so it was not overwritten; this run's state was lost because {why}"
                ),
                source: None,
            }),
            (false, kept) => {
                let kept = match kept {
                    Ok(p) => format!("this run's state is kept in {}", p.display()),
                    Err(why) => format!("this run's state was lost because {why}"),
                };
                let message = format!("{}; {kept}", crate::aws::describe_sdk_error(&failure));
                Err(StateError::Remote {
                    operation: "s3:PutObject",
                    location,
                    message,
                    source: Some(Box::new(failure)),
                })
            }
        }
    }

    fn lock(&self, id: &StackId, command: &str) -> Result<Box<dyn Lease>, StateError> {
        let key = self.lock_key(id);
        let info = LockInfo::here(command);
        let body = serde_json::to_vec(&info).unwrap_or_default();
        let client = self.client()?.clone();
        // A lock released between a refused create and the read of it is
        // tried again; a few attempts are plenty, as each needs another run
        // to win a race.
        for _ in 0..3 {
            let put = client
                .put_object()
                .bucket(&self.bucket)
                .key(&key)
                .if_none_match("*")
                .content_type("application/json")
                .body(ByteStream::from(body.clone()));
            match block(put.send()) {
                Ok(_) => return Ok(Box::new(S3Lease { client, bucket: self.bucket.clone(), key, body })),
                Err(e) if matches!(status(&e), Some(409 | 412)) => match self.get(&key, None)? {
                    // A retry of our own create that had landed.
                    Some((held, _)) if held == body => {
                        return Ok(Box::new(S3Lease { client, bucket: self.bucket.clone(), key, body }));
                    }
                    Some((held, _)) => {
                        if let Some(refused) = LockStatus::of_bytes(&held).refusal(PathBuf::from(self.url_of(&key))) {
                            return Err(refused);
                        }
                    }
                    None => continue,
                },
                Err(e) => return Err(self.remote("s3:PutObject", &key, e)),
            }
        }
        Err(StateError::Remote {
            operation: "s3:PutObject",
            location: self.url_of(&key),
            message: "the lock was taken and released repeatedly by other runs".into(),
            source: None,
        })
    }

    fn lock_status(&self, id: &StackId) -> Result<LockStatus, StateError> {
        Ok(self.lock_body(id)?.unwrap_or(LockStatus::Free))
    }

    fn force_unlock(&self, id: &StackId) -> Result<bool, StateError> {
        let key = self.lock_key(id);
        if self.get(&key, None)?.is_none() {
            return Ok(false);
        }
        let client = self.client()?;
        block(client.delete_object().bucket(&self.bucket).key(&key).send())
            .map_err(|e| self.remote("s3:DeleteObject", &key, e))?;
        Ok(true)
    }

    fn exists(&self, id: &StackId) -> Result<bool, StateError> {
        let key = self.key(id);
        let client = self.client()?;
        match block(client.head_object().bucket(&self.bucket).key(&key).send()) {
            Ok(_) => Ok(true),
            Err(e) if status(&e) == Some(404) => Ok(false),
            Err(e) => Err(self.remote("s3:HeadObject", &key, e)),
        }
    }

    fn stacks(&self, project: &str) -> Result<Vec<String>, StateError> {
        let dir = if self.prefix.is_empty() { format!("{project}/") } else { format!("{}/{project}/", self.prefix) };
        let client = self.client()?;
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = block(
                client.list_objects_v2().bucket(&self.bucket).prefix(&dir).set_continuation_token(token.take()).send(),
            )
            .map_err(|e| self.remote("s3:ListObjectsV2", &dir, e))?;
            for o in page.contents() {
                let name = o.key().and_then(|k| k.strip_prefix(&dir)).and_then(|k| k.strip_suffix(".json"));
                if let Some(stack) = name.filter(|s| !s.contains('/')) {
                    out.push(stack.to_string());
                }
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        out.sort();
        Ok(out)
    }

    fn remove(&self, id: &StackId) -> Result<(), StateError> {
        let client = self.client()?;
        let key = self.key(id);
        // S3 cannot delete conditionally: check that the state is still the
        // version this run read (under the lock), then delete it.
        let expected = self.etags.lock().ok().and_then(|e| e.get(id).cloned());
        let now = match block(client.head_object().bucket(&self.bucket).key(&key).send()) {
            Ok(h) => h.e_tag().map(|e| Tag::Known(e.to_string())),
            Err(e) if status(&e) == Some(404) => Some(Tag::Absent),
            Err(e) => return Err(self.remote("s3:HeadObject", &key, e)),
        };
        if expected.is_none() || now != expected {
            return Err(StateError::Remote {
                operation: "s3:DeleteObject",
                location: self.url_of(&key),
                message: "the state changed since it was read; nothing was removed".into(),
                source: None,
            });
        }
        for key in [key, self.lock_key(id)] {
            block(client.delete_object().bucket(&self.bucket).key(&key).send())
                .map_err(|e| self.remote("s3:DeleteObject", &key, e))?;
        }
        Ok(())
    }

    fn record(&self, _id: &StackId, _update: &Update) -> Result<(), StateError> {
        // The bucket's object versions are the history.
        Ok(())
    }

    fn history(&self, id: &StackId) -> Result<History, StateError> {
        let key = self.key(id);
        let client = self.client()?;
        let v = block(client.get_bucket_versioning().bucket(&self.bucket).send())
            .map_err(|e| self.remote("s3:GetBucketVersioning", &key, e))?;
        if v.status() != Some(&aws_sdk_s3::types::BucketVersioningStatus::Enabled) {
            return Ok(History::Unversioned(format!(
                "bucket {} has versioning off, so it keeps only the current state; turn it on (aws s3api put-bucket-versioning --bucket {} --versioning-configuration Status=Enabled) to keep every version",
                self.bucket, self.bucket
            )));
        }
        let mut versions = Vec::new();
        let (mut key_marker, mut version_marker) = (None, None);
        loop {
            let page = block(
                client
                    .list_object_versions()
                    .bucket(&self.bucket)
                    .prefix(&key)
                    .set_key_marker(key_marker.take())
                    .set_version_id_marker(version_marker.take())
                    .send(),
            )
            .map_err(|e| self.remote("s3:ListObjectVersions", &key, e))?;
            for o in page.versions().iter().filter(|o| o.key() == Some(key.as_str())) {
                versions.push(Version {
                    id: o.version_id().unwrap_or_default().to_string(),
                    time: rfc3339(o.last_modified()),
                    size: u64::try_from(o.size().unwrap_or(0)).unwrap_or(0),
                    latest: o.is_latest() == Some(true),
                });
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            version_marker = page.next_version_id_marker().map(str::to_string);
        }
        // S3 lists a key's versions newest first, whatever the resolution
        // of their times (whole seconds on AWS).
        versions.reverse();
        Ok(History::Versions(versions))
    }

    fn export(&self, id: &StackId, version: Option<&str>) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.get(&self.key(id), version)?.map(|(b, _)| b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_keys() {
        let b = S3Backend::parse("s3://team-state/rinfra/", PathBuf::from("r")).unwrap();
        assert_eq!(b.key(&StackId::of("datacenter", "dev")), "rinfra/datacenter/dev.json");
        assert_eq!(b.lock_key(&StackId::single("old")), "rinfra/old.json.lock");
        let root = S3Backend::parse("s3://team-state", PathBuf::from("r")).unwrap();
        assert_eq!(root.key(&StackId::of("p", "s")), "p/s.json");
        for bad in ["http://x/y", "s3://", "s3://A_b", "s3://ok-bucket/../x", "s3://-bad"] {
            assert!(S3Backend::parse(bad, PathBuf::from("r")).is_err(), "{bad}");
        }
    }
}
