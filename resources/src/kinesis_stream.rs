//! `aws:kinesis:Stream`: a Kinesis data stream.

use crate::aws::{Aws, WaitPolicy};
use crate::provider::{Created, Observed, Ownership, Progress, Provider, ProviderError, ProviderResult, ReadRequest};
use crate::schema::{Change, Property, Props, ResourceSchema, Type, Violation, is_unknown, key_path, normalize_props};
use async_trait::async_trait;
use aws_sdk_kinesis::types::{
    EncryptionType, MetricsName, ScalingType, StreamDescriptionSummary, StreamMode, StreamModeDetails, StreamStatus,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// The type token.
pub const TOKEN: &str = "aws:kinesis:Stream";

/// The shard-level metrics Kinesis knows, besides `ALL`.
pub const METRICS: &[&str] = &[
    "IncomingBytes",
    "IncomingRecords",
    "IteratorAgeMilliseconds",
    "OutgoingBytes",
    "OutgoingRecords",
    "ReadProvisionedThroughputExceeded",
    "WriteProvisionedThroughputExceeded",
];

const METRICS_AND_ALL: &[&str] = &[
    "ALL",
    "IncomingBytes",
    "IncomingRecords",
    "IteratorAgeMilliseconds",
    "OutgoingBytes",
    "OutgoingRecords",
    "ReadProvisionedThroughputExceeded",
    "WriteProvisionedThroughputExceeded",
];

/// Kinesis lets an account have at most this many streams in CREATING at
/// once, and answers LimitExceededException beyond it.
const CREATING_AT_ONCE: usize = 5;

/// How many UpdateShardCount calls AWS allows per stream in a rolling day.
const SCALINGS_PER_DAY: usize = 10;

/// The shard counts UpdateShardCount goes through from `from` to `to`: at
/// most double, and at least half (rounded up), of the count before each
/// call. 1 → 8 is 2, 4, 8; 8 → 1 is 4, 2, 1.
pub fn shard_steps(from: i32, to: i32) -> Vec<i32> {
    let mut steps = Vec::new();
    let mut at = from.max(1);
    // Each step at least halves the distance, so 64 steps reach any i32.
    while at != to && steps.len() < 64 {
        at = if to > at { to.min(at.saturating_mul(2)) } else { to.max(at / 2 + at % 2) };
        steps.push(at);
    }
    steps
}

/// Kinesis accepts at most this many tags in one AddTagsToStream call.
const TAGS_PER_CALL: usize = 10;

/// The schema of `aws:kinesis:Stream`.
pub fn schema() -> ResourceSchema {
    ResourceSchema {
        token: TOKEN,
        doc: "A Kinesis data stream.",
        properties: vec![
            Property::new(
                "name",
                Type::String,
                "The stream's name, unique in the account and region. Generated from the logical name when absent.",
            )
            .replaces(),
            Property::new(
                "shardCount",
                Type::Integer { min: Some(1), max: Some(10_000) },
                "The number of shards; required for PROVISIONED streams, absent for ON_DEMAND.",
            ),
            Property::new(
                "retentionPeriod",
                Type::Integer { min: Some(24), max: Some(8760) },
                "How many hours records are kept, from 24 to 8760.",
            )
            .default(json!(24)),
            Property::new(
                "shardLevelMetrics",
                Type::List { item: Box::new(Type::Enum(METRICS_AND_ALL)), set: true, max_items: None },
                "The shard-level CloudWatch metrics to enable, or ALL.",
            )
            .default(json!([])),
            Property::new(
                "streamModeDetails",
                Type::Object(vec![
                    Property::new(
                        "streamMode",
                        Type::Enum(&["PROVISIONED", "ON_DEMAND"]),
                        "PROVISIONED (fixed shards) or ON_DEMAND.",
                    )
                    .required(),
                ]),
                "The capacity mode of the stream.",
            )
            .default(json!({"streamMode": "PROVISIONED"})),
            Property::new("encryptionType", Type::Enum(&["NONE", "KMS"]), "Server-side encryption: NONE or KMS.")
                .default(json!("NONE")),
            Property::new("kmsKeyId", Type::String, "The KMS key for KMS encryption."),
            Property::new(
                "enforceConsumerDeletion",
                Type::Bool,
                "Delete the stream even when it has registered consumers.",
            )
            .default(json!(false))
            .state_only(),
            crate::schema::tags_property("Tags on the stream, at most 50."),
            crate::schema::region_property(),
        ],
        outputs: vec!["name", "arn"],
        name_property: "name",
        not_yet: vec![(
            "maxRecordSizeInKiB",
            "UpdateMaxRecordSize is new in the Kinesis API, and LocalStack, which rinfra is tested against, lacks it",
        )],
    }
}

/// The Kinesis stream provider.
pub struct KinesisStream {
    aws: Arc<Aws>,
    schema: ResourceSchema,
    wait: WaitPolicy,
    creating: tokio::sync::Semaphore,
    regional: crate::aws::Regional<KinesisStream>,
}

impl KinesisStream {
    /// A provider that talks to AWS through `aws`.
    pub fn new(aws: Arc<Aws>) -> Self {
        KinesisStream {
            aws,
            schema: schema(),
            wait: WaitPolicy::default(),
            creating: tokio::sync::Semaphore::new(CREATING_AT_ONCE),
            regional: crate::aws::Regional::default(),
        }
    }

    /// The provider for the region `props` name, when it is not this one's.
    fn elsewhere(&self, props: &Props) -> Option<Arc<KinesisStream>> {
        self.regional.get(&self.aws, crate::aws::region_of(props), KinesisStream::new)
    }

    async fn read_here(&self, requests: &[ReadRequest]) -> Vec<ProviderResult<Option<Observed>>> {
        use futures::StreamExt;
        // Many reads at once, in order, but not thousands of connections.
        let reads: Vec<_> = requests.iter().map(|r| self.read_one(r)).collect();
        futures::stream::iter(reads).buffered(64).collect().await
    }
}

fn api<E, R>(operation: &str, err: aws_smithy_runtime_api::client::result::SdkError<E, R>) -> ProviderError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    crate::aws::api_error("kinesis", operation, err)
}

fn is_in_use<E, R>(err: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code()) == Some("ResourceInUseException")
}

/// The kind of resource, for messages.
const KIND: &str = "Kinesis stream";

/// What a wait for ACTIVE makes of a stream that is not there.
#[derive(Debug, Clone, Copy)]
enum Missing {
    /// Keep waiting: CreateStream was just called, and some endpoints list
    /// a new stream only after a moment.
    Wait,
    /// Fail at once: the stream was deleted underneath.
    Fail,
}

/// Whether the SDK error is Kinesis's typed ResourceNotFoundException.
fn is_not_found<E, R>(err: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code()) == Some("ResourceNotFoundException")
}

fn str_prop<'a>(p: &'a Props, k: &str) -> Option<&'a str> {
    p.get(k).and_then(Value::as_str)
}

fn int_prop(p: &Props, k: &str) -> Option<i32> {
    p.get(k).and_then(crate::schema::integer_of).and_then(|i| i32::try_from(i).ok())
}

fn mode_of(p: &Props) -> &str {
    p.get("streamModeDetails").and_then(|m| m.get("streamMode")).and_then(Value::as_str).unwrap_or("PROVISIONED")
}

fn metric_set(p: &Props) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for m in p.get("shardLevelMetrics").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        if m == "ALL" {
            out.extend(METRICS.iter().map(|s| s.to_string()));
        } else {
            out.insert(m.to_string());
        }
    }
    out
}

fn tag_map(p: &Props) -> BTreeMap<String, String> {
    crate::schema::string_map(p, "tags")
}

impl KinesisStream {
    /// Reads one stream, or `None` when it does not exist or is being deleted.
    async fn read_one(&self, req: &ReadRequest) -> ProviderResult<Option<Observed>> {
        let Some(s) = self.describe(&req.id).await? else { return Ok(None) };
        if *s.stream_status() == StreamStatus::Deleting {
            return Ok(None);
        }
        let mode = s
            .stream_mode_details()
            .map(|m| m.stream_mode().as_str().to_string())
            .unwrap_or_else(|| "PROVISIONED".into());
        let mut inputs = Props::new();
        inputs.insert("name".into(), json!(s.stream_name()));
        if mode == "PROVISIONED" {
            inputs.insert("shardCount".into(), json!(s.open_shard_count()));
        }
        inputs.insert("retentionPeriod".into(), json!(s.retention_period_hours()));
        let mut metrics: Vec<String> = s
            .enhanced_monitoring()
            .iter()
            .flat_map(|m| m.shard_level_metrics())
            .map(|m| m.as_str().to_string())
            .filter(|m| m != "ALL")
            .collect();
        metrics.sort();
        metrics.dedup();
        inputs.insert("shardLevelMetrics".into(), json!(metrics));
        inputs.insert("streamModeDetails".into(), json!({"streamMode": mode}));
        let enc = s.encryption_type().map(|e| e.as_str().to_string()).unwrap_or_else(|| "NONE".into());
        if enc == "KMS" {
            if let Some(k) = s.key_id() {
                inputs.insert("kmsKeyId".into(), json!(k));
            }
        }
        inputs.insert("encryptionType".into(), json!(enc));
        let owner = if req.needs_tags() { req.take_tags(self.read_tags(&req.id).await?, &mut inputs) } else { None };
        let outputs = Props::from([("name".into(), json!(s.stream_name())), ("arn".into(), json!(s.stream_arn()))]);
        Ok(Some(Observed { inputs, outputs, owner }))
    }

    async fn read_tags(&self, name: &str) -> ProviderResult<BTreeMap<String, String>> {
        let client = self.aws.kinesis().await;
        let mut tags = BTreeMap::new();
        let mut start: Option<String> = None;
        loop {
            self.aws.limit("kinesis:ListTagsForStream").await;
            let out = client
                .list_tags_for_stream()
                .stream_name(name)
                .set_exclusive_start_tag_key(start.clone())
                .send()
                .await
                .map_err(|e| api("ListTagsForStream", e))?;
            for t in out.tags() {
                tags.insert(t.key().to_string(), t.value().unwrap_or_default().to_string());
            }
            match out.tags().last() {
                Some(last) if out.has_more_tags() => start = Some(last.key().to_string()),
                _ => break,
            }
        }
        Ok(tags)
    }

    /// Describes the stream, or `None` when there is no stream of this name.
    async fn describe(&self, name: &str) -> ProviderResult<Option<StreamDescriptionSummary>> {
        let client = self.aws.kinesis().await;
        self.aws.limit("kinesis:DescribeStreamSummary").await;
        match client.describe_stream_summary().stream_name(name).send().await {
            Ok(out) => out.stream_description_summary().cloned().map(Some).ok_or_else(|| {
                ProviderError::api("kinesis:DescribeStreamSummary", "the answer had no stream description")
            }),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(None),
            Err(e) => Err(api("DescribeStreamSummary", e)),
        }
    }

    /// Describes the stream until `done` returns a value, polling fast at
    /// first and backing off, within the wait bound. `what` completes
    /// "stream NAME …" in the timeout message.
    async fn poll<T>(
        &self,
        name: &str,
        what: &str,
        mut done: impl FnMut(Option<&StreamDescriptionSummary>) -> Option<T> + Send,
    ) -> ProviderResult<T> {
        let start = Instant::now();
        let mut delay = self.wait.first;
        loop {
            if let Some(v) = done(self.describe(name).await?.as_ref()) {
                return Ok(v);
            }
            if start.elapsed() > self.wait.timeout {
                return Err(ProviderError::Timeout {
                    what: format!("stream {name} {what}"),
                    seconds: self.wait.timeout.as_secs(),
                });
            }
            tokio::time::sleep(delay).await;
            delay = self.wait.next(delay);
        }
    }

    /// Polls until the stream is ACTIVE. Returns the stream's ARN.
    ///
    /// Only right after CreateStream may "not found" mean "not listed yet"
    /// (`Missing::Wait`); anywhere else the stream was deleted underneath,
    /// and waiting the whole bound for it would only waste ten minutes.
    async fn wait_active(&self, name: &str, missing: Missing, progress: &dyn Progress) -> ProviderResult<String> {
        let mut said = false;
        let found = self
            .poll(name, "to become ACTIVE", |s| {
                let Some(s) = s else {
                    return match missing {
                        Missing::Wait => None,
                        Missing::Fail => Some(None),
                    };
                };
                if *s.stream_status() == StreamStatus::Active {
                    return Some(Some(s.stream_arn().to_string()));
                }
                if !said {
                    progress.status(&format!("waiting for ACTIVE (now {})", s.stream_status().as_str()));
                    said = true;
                }
                None
            })
            .await?;
        found.ok_or_else(|| ProviderError::NotFound { kind: KIND, id: name.to_string() })
    }

    /// The status of the stream of this name, or `None` when there is none.
    async fn status_of(&self, name: &str) -> ProviderResult<Option<StreamStatus>> {
        Ok(self.describe(name).await?.map(|s| s.stream_status().clone()))
    }

    /// Polls until the stream no longer exists.
    async fn wait_gone(&self, name: &str, progress: &dyn Progress) -> ProviderResult<()> {
        progress.status("waiting for the stream to be deleted");
        self.poll(name, "to be deleted", |s| s.is_none().then_some(())).await
    }

    /// Runs a mutating call, waiting for ACTIVE and trying again while
    /// Kinesis answers ResourceInUseException ("busy with another change").
    async fn mutate<T, E, R, F, Fut>(
        &self,
        name: &str,
        operation: &str,
        progress: &dyn Progress,
        mut call: F,
    ) -> ProviderResult<T>
    where
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>> + Send,
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
        T: Send,
    {
        let mut tries = 0;
        loop {
            self.aws.limit(&format!("kinesis:{operation}")).await;
            match call().await {
                Ok(v) => return Ok(v),
                Err(e) if is_in_use(&e) && tries < 10 => {
                    tries += 1;
                    self.wait_active(name, Missing::Fail, progress).await?;
                }
                Err(e) if is_not_found(&e) => {
                    return Err(ProviderError::NotFound { kind: KIND, id: name.to_string() });
                }
                Err(e) => return Err(api(operation, e)),
            }
        }
    }

    async fn set_retention(&self, name: &str, from: i32, to: i32, progress: &dyn Progress) -> ProviderResult<()> {
        let client = self.aws.kinesis().await;
        progress.status(&format!("retention {from} → {to} hours"));
        if to > from {
            self.mutate(name, "IncreaseStreamRetentionPeriod", progress, || {
                client.increase_stream_retention_period().stream_name(name).retention_period_hours(to).send()
            })
            .await?;
        } else if to < from {
            self.mutate(name, "DecreaseStreamRetentionPeriod", progress, || {
                client.decrease_stream_retention_period().stream_name(name).retention_period_hours(to).send()
            })
            .await?;
        }
        self.wait_active(name, Missing::Fail, progress).await?;
        Ok(())
    }

    async fn set_metrics(
        &self,
        name: &str,
        from: &BTreeSet<String>,
        to: &BTreeSet<String>,
        progress: &dyn Progress,
    ) -> ProviderResult<()> {
        let client = self.aws.kinesis().await;
        let enable: Vec<MetricsName> = to.difference(from).map(|m| MetricsName::from(m.as_str())).collect();
        let disable: Vec<MetricsName> = from.difference(to).map(|m| MetricsName::from(m.as_str())).collect();
        if !enable.is_empty() {
            progress.status("enabling shard-level metrics");
            self.mutate(name, "EnableEnhancedMonitoring", progress, || {
                client
                    .enable_enhanced_monitoring()
                    .stream_name(name)
                    .set_shard_level_metrics(Some(enable.clone()))
                    .send()
            })
            .await?;
            self.wait_active(name, Missing::Fail, progress).await?;
        }
        if !disable.is_empty() {
            progress.status("disabling shard-level metrics");
            self.mutate(name, "DisableEnhancedMonitoring", progress, || {
                client
                    .disable_enhanced_monitoring()
                    .stream_name(name)
                    .set_shard_level_metrics(Some(disable.clone()))
                    .send()
            })
            .await?;
            self.wait_active(name, Missing::Fail, progress).await?;
        }
        Ok(())
    }

    async fn set_encryption(
        &self,
        name: &str,
        old: &Props,
        new: &Props,
        progress: &dyn Progress,
    ) -> ProviderResult<()> {
        let client = self.aws.kinesis().await;
        let old_type = str_prop(old, "encryptionType").unwrap_or("NONE");
        let new_type = str_prop(new, "encryptionType").unwrap_or("NONE");
        let old_key = str_prop(old, "kmsKeyId");
        let new_key = str_prop(new, "kmsKeyId");
        if old_type == new_type && old_key == new_key {
            return Ok(());
        }
        if new_type == "KMS" {
            let key =
                new_key.ok_or_else(|| ProviderError::Invalid("KMS encryption needs kmsKeyId".into()))?.to_string();
            progress.status("starting encryption");
            self.mutate(name, "StartStreamEncryption", progress, || {
                client
                    .start_stream_encryption()
                    .stream_name(name)
                    .encryption_type(EncryptionType::Kms)
                    .key_id(&key)
                    .send()
            })
            .await?;
        } else if let Some(key) = old_key {
            let key = key.to_string();
            progress.status("stopping encryption");
            self.mutate(name, "StopStreamEncryption", progress, || {
                client
                    .stop_stream_encryption()
                    .stream_name(name)
                    .encryption_type(EncryptionType::Kms)
                    .key_id(&key)
                    .send()
            })
            .await?;
        }
        self.wait_active(name, Missing::Fail, progress).await?;
        Ok(())
    }

    async fn set_tags(
        &self,
        name: &str,
        from: &BTreeMap<String, String>,
        to: &BTreeMap<String, String>,
        progress: &dyn Progress,
    ) -> ProviderResult<()> {
        let client = self.aws.kinesis().await;
        let (removed, set) = crate::schema::map_changes(from, to);
        let changed: Vec<(&String, &String)> = set.iter().collect();
        for chunk in removed.chunks(TAGS_PER_CALL) {
            self.mutate(name, "RemoveTagsFromStream", progress, || {
                client.remove_tags_from_stream().stream_name(name).set_tag_keys(Some(chunk.to_vec())).send()
            })
            .await?;
        }
        for chunk in changed.chunks(TAGS_PER_CALL) {
            let tags: std::collections::HashMap<String, String> =
                chunk.iter().map(|(k, v)| ((*k).clone(), (*v).clone())).collect();
            self.mutate(name, "AddTagsToStream", progress, || {
                client.add_tags_to_stream().stream_name(name).set_tags(Some(tags.clone())).send()
            })
            .await?;
        }
        Ok(())
    }

    /// Brings an existing stream from `old` to `new`, one API call per
    /// changed aspect, waiting for ACTIVE after each.
    async fn converge(
        &self,
        name: &str,
        arn: &str,
        old: &Props,
        new: &Props,
        progress: &dyn Progress,
    ) -> ProviderResult<()> {
        let client = self.aws.kinesis().await;
        let (old_mode, new_mode) = (mode_of(old), mode_of(new));
        if old_mode != new_mode {
            progress.status(&format!("stream mode {old_mode} → {new_mode}"));
            let details = StreamModeDetails::builder()
                .stream_mode(StreamMode::from(new_mode))
                .build()
                .map_err(|e| ProviderError::Invalid(e.to_string()))?;
            self.mutate(name, "UpdateStreamMode", progress, || {
                client.update_stream_mode().stream_arn(arn).stream_mode_details(details.clone()).send()
            })
            .await?;
            self.wait_active(name, Missing::Fail, progress).await?;
        }
        if new_mode == "PROVISIONED" {
            let changed =
                int_prop(new, "shardCount").filter(|t| Some(*t) != int_prop(old, "shardCount") || old_mode != new_mode);
            if let Some(target) = changed {
                // Legal steps from the count the stream has now (a stream
                // that was ON_DEMAND, or moved since the plan, has its own),
                // each waited out: a stream interrupted between two is
                // ACTIVE at the count of the last one, and the next plan
                // goes on from there.
                let from = self.describe(name).await?.map(|s| s.open_shard_count()).unwrap_or(target);
                let steps = shard_steps(from, target);
                let count = steps.len();
                for (i, step) in steps.into_iter().enumerate() {
                    progress.status(&format!("resharding to {step} (step {} of {count})", i + 1));
                    self.mutate(name, "UpdateShardCount", progress, || {
                        client
                            .update_shard_count()
                            .stream_name(name)
                            .target_shard_count(step)
                            .scaling_type(ScalingType::UniformScaling)
                            .send()
                    })
                    .await?;
                    self.wait_active(name, Missing::Fail, progress).await?;
                }
            }
        }
        let (from, to) =
            (int_prop(old, "retentionPeriod").unwrap_or(24), int_prop(new, "retentionPeriod").unwrap_or(24));
        if from != to {
            self.set_retention(name, from, to, progress).await?;
        }
        self.set_metrics(name, &metric_set(old), &metric_set(new), progress).await?;
        self.set_encryption(name, old, new, progress).await?;
        if old.contains_key("tags") || new.contains_key("tags") {
            self.set_tags(name, &tag_map(old), &tag_map(new), progress).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Provider for KinesisStream {
    fn schema(&self) -> &ResourceSchema {
        &self.schema
    }

    fn check(&self, props: &Props) -> Vec<Violation> {
        let mut out: Vec<Violation> = crate::schema::region_violation(props).into_iter().collect();
        let mode = props.get("streamModeDetails").and_then(|m| m.get("streamMode"));
        let on_demand = mode.and_then(Value::as_str) == Some("ON_DEMAND");
        let mode_known = !mode.is_some_and(is_unknown);
        match props.get("shardCount") {
            Some(_) if on_demand => out.push(Violation::new(
                key_path("shardCount"),
                "shardCount cannot be set for an ON_DEMAND stream",
                Some("remove shardCount, or use streamMode: PROVISIONED".into()),
            )),
            None if !on_demand && mode_known => out.push(Violation::new(
                vec![],
                "a PROVISIONED stream needs shardCount",
                Some("add `shardCount: 1` (or more), or set streamModeDetails.streamMode to ON_DEMAND".into()),
            )),
            _ => {}
        }
        let enc = props.get("encryptionType").and_then(Value::as_str).unwrap_or("NONE");
        match (enc, props.get("kmsKeyId")) {
            ("KMS", None) => out.push(Violation::new(
                key_path("encryptionType"),
                "KMS encryption needs kmsKeyId",
                Some("add `kmsKeyId: alias/aws/kinesis` or the ARN of your key".into()),
            )),
            ("NONE", Some(_)) => out.push(Violation::new(
                key_path("kmsKeyId"),
                "kmsKeyId is only used with encryptionType: KMS",
                Some("set `encryptionType: KMS`, or remove kmsKeyId".into()),
            )),
            _ => {}
        }
        if let Some(name) = props.get("name").and_then(Value::as_str).filter(|n| !is_unknown(&json!(n))) {
            let valid = !name.is_empty()
                && name.len() <= 128
                && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !valid {
                out.push(Violation::new(
                    key_path("name"),
                    format!("`{name}` is not a valid stream name"),
                    Some("use 1 to 128 letters, digits, `_`, `.` or `-`".into()),
                ));
            }
        }
        if let Some(tags) = props.get("tags").and_then(Value::as_object) {
            for (k, v) in tags {
                let value_len = v.as_str().map_or(0, str::len);
                if k.is_empty() || k.len() > 128 || value_len > 256 {
                    out.push(Violation::new(
                        vec![crate::schema::PathSeg::Key("tags".into()), crate::schema::PathSeg::Key(k.clone())],
                        "tag keys must have 1 to 128 characters and values at most 256",
                        None,
                    ));
                }
            }
        }
        out
    }

    fn change_note(&self, property: &str, current: Option<&Value>, desired: Option<&Value>) -> Option<String> {
        let (from, to) = (current?.as_i64()?, desired?.as_i64()?);
        let steps = shard_steps(i32::try_from(from).ok()?, i32::try_from(to).ok()?);
        (property == "shardCount" && steps.len() > 1).then(|| {
            let path: Vec<String> = std::iter::once(from.to_string()).chain(steps.iter().map(i32::to_string)).collect();
            format!("in {} UpdateShardCount steps: {}", steps.len(), path.join(" → "))
        })
    }

    fn check_change(&self, current: &Props, desired: &Props) -> Vec<Violation> {
        // UpdateShardCount goes at most to double or half in one call, and
        // AWS allows ten calls per stream in a rolling day; a change that
        // needs more is refused before anything is sent, rather than fail
        // half way.
        let (Some(from), Some(to)) = (int_prop(current, "shardCount"), int_prop(desired, "shardCount")) else {
            return Vec::new();
        };
        if mode_of(current) != "PROVISIONED" || mode_of(desired) != "PROVISIONED" || from == to {
            return Vec::new();
        }
        let steps = shard_steps(from, to);
        if steps.len() > SCALINGS_PER_DAY {
            return vec![Violation::new(
                key_path("shardCount"),
                format!("shardCount {from} → {to} needs {} UpdateShardCount calls", steps.len()),
                Some(format!(
                    "AWS allows {SCALINGS_PER_DAY} per stream in 24 hours; change it in smaller moves on different days"
                )),
            )];
        }
        Vec::new()
    }

    fn normalize(&self, props: &Props) -> Props {
        let mut n = normalize_props(&self.schema.properties, props);
        // `ALL` is shorthand for every metric, which is what AWS reports back.
        let metrics: Vec<Value> = metric_set(&n).into_iter().map(Value::String).collect();
        n.insert("shardLevelMetrics".into(), Value::Array(metrics));
        n
    }

    async fn read(&self, requests: &[ReadRequest]) -> Vec<ProviderResult<Option<Observed>>> {
        crate::aws::read_by_region(requests, |region, group| async move {
            match self.regional.get(&self.aws, region, KinesisStream::new) {
                Some(p) => p.read_here(&group).await,
                None => self.read_here(&group).await,
            }
        })
        .await
    }

    async fn create(&self, props: &Props, owner: &Ownership, progress: &dyn Progress) -> ProviderResult<Created> {
        if let Some(p) = self.elsewhere(props) {
            return p.create(props, owner, progress).await;
        }
        let client = self.aws.kinesis().await;
        let name =
            str_prop(props, "name").ok_or_else(|| ProviderError::Invalid("name is required".into()))?.to_string();
        let mode = mode_of(props).to_string();
        let details = StreamModeDetails::builder()
            .stream_mode(StreamMode::from(mode.as_str()))
            .build()
            .map_err(|e| ProviderError::Invalid(e.to_string()))?;
        // Ownership tags go on at creation where the API takes them (AWS
        // does; LocalStack drops them silently, so they are added again
        // below), so a create interrupted right after it can be adopted.
        let mut tags = tag_map(props);
        tags.extend(owner.tags());
        let mut req = client
            .create_stream()
            .stream_name(&name)
            .stream_mode_details(details)
            .set_tags(Some(tags.clone().into_iter().collect()));
        if mode == "PROVISIONED" {
            req = req.set_shard_count(int_prop(props, "shardCount"));
        }
        // Hold a place among the streams being created until this one is
        // ACTIVE, rather than be refused and retried with backoff.
        let permit = self.creating.acquire().await.map_err(|e| ProviderError::Invalid(e.to_string()))?;
        // A stream of this name that is still being deleted (after a
        // replace, or an interrupted destroy) blocks the name for a while:
        // wait for it to go, then create. A stream that is gone by the time
        // we look has freed the name. Only a live stream of this name
        // belongs to someone else.
        let mut attempts = 0;
        loop {
            attempts += 1;
            self.aws.limit("kinesis:CreateStream").await;
            match req.clone().send().await {
                Ok(_) => break,
                Err(e) if is_in_use(&e) && attempts < 5 => match self.status_of(&name).await? {
                    None => {}
                    Some(StreamStatus::Deleting) => self.wait_gone(&name, progress).await?,
                    Some(_) => return Err(ProviderError::AlreadyExists { kind: "Kinesis stream", name }),
                },
                Err(e) => return Err(api("CreateStream", e)),
            }
        }
        // From here on the stream exists: any failure must still let the
        // engine record it, or it would be orphaned.
        let partial = |arn: Option<String>, e: ProviderError| {
            let mut outputs = Props::from([("name".to_string(), json!(name))]);
            if let Some(a) = arn {
                outputs.insert("arn".into(), json!(a));
            }
            ProviderError::Partial { id: name.clone(), outputs, source: Box::new(e) }
        };
        let arn = self.wait_active(&name, Missing::Wait, progress).await.map_err(|e| partial(None, e))?;
        drop(permit);
        // Tags first: the sooner the ownership tags are there, the smaller
        // the window in which an interrupted create leaves no evidence.
        self.set_tags(&name, &BTreeMap::new(), &tags, progress).await.map_err(|e| partial(Some(arn.clone()), e))?;
        // Compare against what CreateStream leaves behind, so only the
        // remaining differences cost a call.
        let mut base = Props::from([
            ("retentionPeriod".to_string(), json!(24)),
            ("streamModeDetails".to_string(), json!({"streamMode": mode})),
            ("tags".to_string(), json!(tag_map(props))),
        ]);
        if let Some(n) = props.get("shardCount") {
            base.insert("shardCount".into(), n.clone());
        }
        self.converge(&name, &arn, &base, props, progress).await.map_err(|e| partial(Some(arn.clone()), e))?;
        let outputs = Props::from([("name".into(), json!(name)), ("arn".into(), json!(arn))]);
        Ok(Created { id: name, outputs })
    }

    async fn update(
        &self,
        id: &str,
        old: &Props,
        new: &Props,
        changed: &BTreeSet<String>,
        progress: &dyn Progress,
    ) -> ProviderResult<Props> {
        if let Some(p) = self.elsewhere(new) {
            return p.update(id, old, new, changed, progress).await;
        }
        let arn = self.wait_active(id, Missing::Fail, progress).await?;
        let cloud_changes =
            changed.iter().any(|c| self.schema.property(c).is_none_or(|p| p.change != Change::StateOnly));
        if cloud_changes {
            self.converge(id, &arn, old, new, progress).await?;
        }
        Ok(Props::from([("name".into(), json!(id)), ("arn".into(), json!(arn))]))
    }

    async fn delete(&self, id: &str, props: &Props, progress: &dyn Progress) -> ProviderResult<()> {
        if let Some(p) = self.elsewhere(props) {
            return p.delete(id, props, progress).await;
        }
        let client = self.aws.kinesis().await;
        let enforce = props.get("enforceConsumerDeletion").and_then(Value::as_bool).unwrap_or(false);
        let res = self
            .mutate(id, "DeleteStream", progress, || {
                client.delete_stream().stream_name(id).enforce_consumer_deletion(enforce).send()
            })
            .await;
        match res {
            // Already gone is what a delete wants.
            Ok(_) | Err(ProviderError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        self.wait_gone(id, progress).await
    }
}
/// `aws:kinesis/getStream:getStream`: reads a stream by name, as Pulumi's
/// function of that name does.
pub struct GetStream {
    streams: Arc<KinesisStream>,
}

impl GetStream {
    /// The function, reading through `streams`' connection.
    pub fn new(streams: Arc<KinesisStream>) -> Self {
        GetStream { streams }
    }
}

#[async_trait]
impl crate::provider::Function for GetStream {
    fn token(&self) -> &'static str {
        "aws:kinesis/getStream:getStream"
    }

    fn arguments(&self) -> &'static [(&'static str, bool)] {
        &[("name", true), ("region", false), ("tags", false)]
    }

    fn returns(&self) -> &'static [&'static str] {
        &[
            "arn",
            "closedShards",
            "creationTimestamp",
            "encryptionType",
            "id",
            "kmsKeyId",
            "name",
            "openShards",
            "region",
            "retentionPeriod",
            "shardLevelMetrics",
            "status",
            "streamModeDetails",
            "tags",
        ]
    }

    async fn invoke(&self, args: &Props) -> ProviderResult<Props> {
        let name = args
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| ProviderError::Invalid("getStream needs `name`".into()))?;
        let streams = self.streams.elsewhere(args).unwrap_or_else(|| self.streams.clone());
        streams.get_stream(name).await
    }
}

impl KinesisStream {
    /// Everything getStream returns about stream `name`.
    async fn get_stream(&self, name: &str) -> ProviderResult<Props> {
        let Some(s) = self.describe(name).await? else {
            return Err(ProviderError::api("kinesis:DescribeStreamSummary", format!("stream `{name}` does not exist")));
        };
        let observed =
            self.read_one(&ReadRequest::new(name, BTreeSet::from(["tags".to_string()]))).await?.ok_or_else(|| {
                ProviderError::api("kinesis:DescribeStreamSummary", format!("stream `{name}` does not exist"))
            })?;
        let (mut open, mut closed) = (Vec::new(), Vec::new());
        let client = self.aws.kinesis().await;
        let mut token: Option<String> = None;
        loop {
            self.aws.limit("kinesis:ListShards").await;
            let mut req = client.list_shards();
            req = match &token {
                Some(t) => req.next_token(t),
                None => req.stream_name(name),
            };
            let out = req.send().await.map_err(|e| api("ListShards", e))?;
            for shard in out.shards() {
                let is_closed = shard.sequence_number_range().and_then(|r| r.ending_sequence_number()).is_some();
                if is_closed { &mut closed } else { &mut open }.push(json!(shard.shard_id()));
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        let mut out = observed.inputs;
        out.remove("shardCount");
        out.extend(observed.outputs);
        out.insert("id".into(), json!(s.stream_arn()));
        out.insert("status".into(), json!(s.stream_status().as_str()));
        out.insert("openShards".into(), Value::Array(open));
        out.insert("closedShards".into(), Value::Array(closed));
        out.insert("creationTimestamp".into(), json!(s.stream_creation_timestamp().secs() * 1000));
        if let Some(r) = self.aws.region() {
            out.insert("region".into(), json!(r));
        }
        out.entry("tags".to_string()).or_insert_with(|| json!({}));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_counts_move_in_legal_steps() {
        assert_eq!(shard_steps(1, 8), [2, 4, 8]);
        assert_eq!(shard_steps(8, 1), [4, 2, 1]);
        assert_eq!(shard_steps(3, 10), [6, 10]);
        assert_eq!(shard_steps(5, 1), [3, 2, 1], "half of 5 rounds up");
        assert_eq!(shard_steps(4, 4), Vec::<i32>::new());
        assert_eq!(shard_steps(1, 10_000).len(), 14);
        for (from, to) in [(1, 8), (8, 1), (7, 100), (100, 7), (13, 14)] {
            let mut at = from;
            for s in shard_steps(from, to) {
                assert!(s <= at * 2 && s * 2 >= at, "{at} → {s} is not a legal step");
                at = s;
            }
            assert_eq!(at, to);
        }
    }
}
