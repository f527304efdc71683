//! `aws:sqs:Queue`: an SQS queue.

use crate::aws::Aws;
use crate::provider::{Created, Observed, Ownership, Progress, Provider, ProviderError, ProviderResult, ReadRequest};
use crate::schema::{Change, Property, Props, ResourceSchema, Type, Violation, is_unknown, key_path, normalize_props};
use async_trait::async_trait;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// The type token.
pub const TOKEN: &str = "aws:sqs:Queue";

/// How long AWS keeps a deleted queue's name from being used again.
const NAME_QUARANTINE: Duration = Duration::from_secs(70);

/// Each property that is a queue attribute, with the attribute's name.
const ATTRIBUTES: &[(&str, &str)] = &[
    ("visibilityTimeoutSeconds", "VisibilityTimeout"),
    ("messageRetentionSeconds", "MessageRetentionPeriod"),
    ("maxMessageSize", "MaximumMessageSize"),
    ("delaySeconds", "DelaySeconds"),
    ("receiveWaitTimeSeconds", "ReceiveMessageWaitTimeSeconds"),
    ("redrivePolicy", "RedrivePolicy"),
    ("sqsManagedSseEnabled", "SqsManagedSseEnabled"),
    ("kmsMasterKeyId", "KmsMasterKeyId"),
    ("fifoQueue", "FifoQueue"),
    ("contentBasedDeduplication", "ContentBasedDeduplication"),
];

/// The schema of `aws:sqs:Queue`.
pub fn schema() -> ResourceSchema {
    let int = |min, max| Type::Integer { min: Some(min), max: Some(max) };
    ResourceSchema {
        token: TOKEN,
        doc: "An SQS queue.",
        properties: vec![
            Property::new(
                "name",
                Type::String,
                "The queue's name; a FIFO queue's ends in `.fifo`. Generated from the logical name when absent.",
            )
            .replaces(),
            Property::new(
                "fifoQueue",
                Type::Bool,
                "Whether the queue is FIFO, keeping order and exactly-once delivery.",
            )
            .default(json!(false))
            .replaces(),
            Property::new(
                "contentBasedDeduplication",
                Type::Bool,
                "For a FIFO queue: deduplicate by a hash of the body.",
            )
            .default(json!(false)),
            Property::new(
                "visibilityTimeoutSeconds",
                int(0, 43_200),
                "How long a received message stays hidden, 0 to 43200 seconds.",
            )
            .default(json!(30)),
            Property::new(
                "messageRetentionSeconds",
                int(60, 1_209_600),
                "How long a message is kept, 60 seconds to 14 days.",
            )
            .default(json!(345_600)),
            Property::new("maxMessageSize", int(1024, 1_048_576), "The largest message, 1 KiB to 1 MiB, in bytes.")
                .default(json!(262_144)),
            Property::new("delaySeconds", int(0, 900), "How long new messages wait before delivery, up to 900 s.")
                .default(json!(0)),
            Property::new(
                "receiveWaitTimeSeconds",
                int(0, 20),
                "How long a receive waits for a message (long polling), up to 20 s.",
            )
            .default(json!(0)),
            Property::new(
                "redrivePolicy",
                Type::Json,
                "Where messages go after too many receives: {deadLetterTargetArn, maxReceiveCount}.",
            ),
            Property::new(
                "sqsManagedSseEnabled",
                Type::Bool,
                "Server-side encryption with SQS-owned keys; on by default unless kmsMasterKeyId is set.",
            ),
            Property::new("kmsMasterKeyId", Type::String, "The KMS key for server-side encryption."),
            crate::schema::tags_property("Tags on the queue."),
            crate::schema::region_property(),
        ],
        outputs: vec!["name", "arn", "url"],
        name_property: "name",
        not_yet: vec![
            (
                "policy",
                "a queue's policy is its own resource in rinfra, aws:sqs:QueuePolicy, so two owners never fight",
            ),
            ("namePrefix", "auto-naming from the logical name takes its place"),
            ("redriveAllowPolicy", "it is not needed for alerting and LocalStack's support is partial"),
        ],
    }
}

/// The SQS queue provider.
pub struct SqsQueue {
    aws: Arc<Aws>,
    schema: ResourceSchema,
    regional: crate::aws::Regional<SqsQueue>,
}

impl SqsQueue {
    /// A provider that talks to AWS through `aws`.
    pub fn new(aws: Arc<Aws>) -> Self {
        SqsQueue { aws, schema: schema(), regional: crate::aws::Regional::default() }
    }

    fn elsewhere(&self, props: &Props) -> Option<Arc<SqsQueue>> {
        self.regional.get(&self.aws, crate::aws::region_of(props), SqsQueue::new)
    }
}

fn api<E, R>(operation: &str, err: aws_smithy_runtime_api::client::result::SdkError<E, R>) -> ProviderError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    crate::aws::api_error("sqs", operation, err)
}

/// Whether an SQS error says the queue does not exist.
pub(crate) fn is_missing<E, R>(err: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|c| c.contains("NonExistentQueue") || c.contains("QueueDoesNotExist"))
}

/// An attribute's value as the API takes it.
fn attribute_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The stack-shaped property of an attribute's text.
fn property_value(prop: &str, text: &str) -> Value {
    match prop {
        "redrivePolicy" | "kmsMasterKeyId" => json!(text),
        "fifoQueue" | "contentBasedDeduplication" | "sqsManagedSseEnabled" => json!(text == "true"),
        _ => text.parse::<i64>().map_or_else(|_| json!(text), |n| json!(n)),
    }
}

impl SqsQueue {
    async fn url_of(&self, name: &str) -> ProviderResult<Option<String>> {
        let client = self.aws.sqs().await;
        self.aws.limit("sqs:GetQueueUrl").await;
        match client.get_queue_url().queue_name(name).send().await {
            Ok(out) => Ok(out.queue_url().map(str::to_string)),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(api("GetQueueUrl", e)),
        }
    }

    async fn read_one(&self, req: &ReadRequest) -> ProviderResult<Option<Observed>> {
        let client = self.aws.sqs().await;
        let Some(url) = self.url_of(&req.id).await? else { return Ok(None) };
        self.aws.limit("sqs:GetQueueAttributes").await;
        let out =
            match client.get_queue_attributes().queue_url(&url).attribute_names(QueueAttributeName::All).send().await {
                Ok(o) => o,
                Err(e) if is_missing(&e) => return Ok(None),
                Err(e) => return Err(api("GetQueueAttributes", e)),
            };
        let attrs: BTreeMap<String, String> = out
            .attributes()
            .map(|m| m.iter().map(|(k, v)| (k.as_str().to_string(), v.clone())).collect())
            .unwrap_or_default();
        let mut inputs = Props::from([("name".to_string(), json!(req.id))]);
        for (prop, attr) in ATTRIBUTES {
            match attrs.get(*attr).filter(|t| !t.is_empty()) {
                Some(text) => {
                    inputs.insert(prop.to_string(), property_value(prop, text));
                }
                // What the queue does not report is at its default.
                None => {
                    if let Some(d) = self.schema.property(prop).and_then(|p| p.default.clone()) {
                        inputs.insert(prop.to_string(), d);
                    }
                }
            }
        }
        let owner = if req.needs_tags() {
            self.aws.limit("sqs:ListQueueTags").await;
            let tags = client.list_queue_tags().queue_url(&url).send().await.map_err(|e| api("ListQueueTags", e))?;
            let tags: BTreeMap<String, String> =
                tags.tags().map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
            req.take_tags(tags, &mut inputs)
        } else {
            None
        };
        let arn = attrs.get("QueueArn").cloned().unwrap_or_default();
        let outputs =
            Props::from([("name".into(), json!(req.id)), ("arn".into(), json!(arn)), ("url".into(), json!(url))]);
        Ok(Some(Observed { inputs, outputs, owner }))
    }

    async fn outputs_of(&self, name: &str) -> ProviderResult<Props> {
        let observed = self.read_one(&ReadRequest::new(name, BTreeSet::new())).await?.ok_or_else(|| {
            ProviderError::api("sqs:GetQueueUrl", format!("queue {name} was not found after it was written"))
        })?;
        Ok(observed.outputs)
    }

    async fn set_attributes(&self, url: &str, changes: BTreeMap<QueueAttributeName, String>) -> ProviderResult<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let client = self.aws.sqs().await;
        self.aws.limit("sqs:SetQueueAttributes").await;
        client
            .set_queue_attributes()
            .queue_url(url)
            .set_attributes(Some(changes.into_iter().collect()))
            .send()
            .await
            .map_err(|e| api("SetQueueAttributes", e))?;
        Ok(())
    }

    async fn create_here(&self, props: &Props, owner: &Ownership, progress: &dyn Progress) -> ProviderResult<Created> {
        let client = self.aws.sqs().await;
        let name = props
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| ProviderError::Invalid("name is required".into()))?
            .to_string();
        // CreateQueue answers with the URL of an existing queue of the same
        // name and attributes: without this check a create would take over
        // someone else's queue.
        progress.status("checking that the name is free");
        if self.url_of(&name).await?.is_some() {
            return Err(ProviderError::AlreadyExists { kind: "SQS queue", name });
        }
        let full = self.normalize(props);
        let mut attributes = BTreeMap::new();
        for (prop, attr) in ATTRIBUTES {
            if let Some(v) = full.get(*prop) {
                // A standard queue refuses the FIFO attributes altogether.
                let fifo_only = matches!(*prop, "fifoQueue" | "contentBasedDeduplication");
                if fifo_only && full.get("fifoQueue") != Some(&json!(true)) {
                    continue;
                }
                attributes.insert(QueueAttributeName::from(*attr), attribute_text(v));
            }
        }
        let mut tags = crate::schema::string_map(props, "tags");
        tags.extend(owner.tags());
        let started = std::time::Instant::now();
        loop {
            self.aws.limit("sqs:CreateQueue").await;
            let sent = client
                .create_queue()
                .queue_name(&name)
                .set_attributes(Some(attributes.clone().into_iter().collect()))
                .set_tags(Some(tags.clone().into_iter().collect()))
                .send()
                .await;
            match sent {
                Ok(_) => break,
                // AWS keeps a deleted queue's name for 60 seconds: a replace
                // of a queue with a fixed name waits that out.
                Err(e)
                    if e.as_service_error().is_some_and(|s| s.is_queue_deleted_recently())
                        && started.elapsed() < NAME_QUARANTINE =>
                {
                    let left = NAME_QUARANTINE.saturating_sub(started.elapsed()).as_secs();
                    progress.status(&format!("the name was freed less than a minute ago; waiting (up to {left}s)"));
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
                Err(e) => return Err(api("CreateQueue", e)),
            }
        }
        let outputs = self.outputs_of(&name).await.map_err(|e| ProviderError::Partial {
            id: name.clone(),
            outputs: Props::from([("name".into(), json!(name))]),
            source: Box::new(e),
        })?;
        Ok(Created { id: name, outputs })
    }

    async fn update_here(
        &self,
        id: &str,
        old: &Props,
        new: &Props,
        changed: &BTreeSet<String>,
    ) -> ProviderResult<Props> {
        let client = self.aws.sqs().await;
        let url = self.url_of(id).await?.ok_or_else(|| ProviderError::NotFound { kind: "SQS queue", id: id.into() })?;
        let full = self.normalize(new);
        let mut changes = BTreeMap::new();
        for (prop, attr) in ATTRIBUTES.iter().filter(|(p, _)| changed.contains(*p)) {
            // An attribute left out is set back to nothing (a redrive
            // policy removed) or its default.
            let text = full.get(*prop).map(attribute_text).unwrap_or_default();
            changes.insert(QueueAttributeName::from(*attr), text);
        }
        self.set_attributes(&url, changes).await?;
        if changed.contains("tags") {
            let (removed, added) = crate::schema::tag_changes(old, new);
            if !removed.is_empty() {
                self.aws.limit("sqs:UntagQueue").await;
                client
                    .untag_queue()
                    .queue_url(&url)
                    .set_tag_keys(Some(removed))
                    .send()
                    .await
                    .map_err(|e| api("UntagQueue", e))?;
            }
            if !added.is_empty() {
                self.aws.limit("sqs:TagQueue").await;
                client
                    .tag_queue()
                    .queue_url(&url)
                    .set_tags(Some(added.into_iter().collect()))
                    .send()
                    .await
                    .map_err(|e| api("TagQueue", e))?;
            }
        }
        self.outputs_of(id).await
    }

    async fn delete_here(&self, id: &str, progress: &dyn Progress) -> ProviderResult<()> {
        let client = self.aws.sqs().await;
        let Some(url) = self.url_of(id).await? else { return Ok(()) };
        progress.status("deleting");
        self.aws.limit("sqs:DeleteQueue").await;
        match client.delete_queue().queue_url(&url).send().await {
            Ok(_) => {}
            Err(e) if is_missing(&e) => return Ok(()),
            Err(e) => return Err(api("DeleteQueue", e)),
        }
        // AWS takes up to a minute to delete a queue, answering for its
        // name meanwhile; a replace creates only once it is gone.
        let started = std::time::Instant::now();
        while self.url_of(id).await?.is_some() && started.elapsed() < NAME_QUARANTINE {
            progress.status("waiting for the queue to be deleted");
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        Ok(())
    }
}

#[async_trait]
impl Provider for SqsQueue {
    fn schema(&self) -> &ResourceSchema {
        &self.schema
    }

    fn check(&self, props: &Props) -> Vec<Violation> {
        let mut out: Vec<Violation> = crate::schema::region_violation(props).into_iter().collect();
        let fifo = props.get("fifoQueue") == Some(&json!(true));
        if let Some(name) = props.get("name").and_then(Value::as_str).filter(|n| !is_unknown(&json!(n))) {
            let base = name.strip_suffix(".fifo").unwrap_or(name);
            let valid = !base.is_empty()
                && name.len() <= 80
                && base.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid {
                out.push(Violation::new(
                    key_path("name"),
                    format!("`{name}` is not a valid queue name"),
                    Some("use 1 to 80 letters, digits, `-` and `_` (and `.fifo` at the end of a FIFO queue's)".into()),
                ));
            } else if fifo != name.ends_with(".fifo") {
                let hint = if fifo { "end the name with `.fifo`" } else { "set `fifoQueue: true`, or drop `.fifo`" };
                out.push(Violation::new(
                    key_path("name"),
                    format!("a FIFO queue's name, and only its name, ends in `.fifo`: `{name}`"),
                    Some(hint.into()),
                ));
            }
        }
        if !fifo && props.get("contentBasedDeduplication") == Some(&json!(true)) {
            out.push(Violation::new(
                key_path("contentBasedDeduplication"),
                "contentBasedDeduplication is for FIFO queues",
                Some("set `fifoQueue: true`, or remove it".into()),
            ));
        }
        if props.get("sqsManagedSseEnabled") == Some(&json!(true)) && props.contains_key("kmsMasterKeyId") {
            out.push(Violation::new(
                key_path("sqsManagedSseEnabled"),
                "a queue is encrypted with SQS-owned keys or with KMS, not both",
                Some("remove sqsManagedSseEnabled, or kmsMasterKeyId".into()),
            ));
        }
        if let Some(Value::String(text)) = props.get("redrivePolicy").filter(|v| !is_unknown(v)) {
            if let Ok(Value::Object(p)) = serde_json::from_str::<Value>(text) {
                if !p.contains_key("deadLetterTargetArn") || !p.contains_key("maxReceiveCount") {
                    out.push(Violation::new(
                        key_path("redrivePolicy"),
                        "a redrive policy names deadLetterTargetArn and maxReceiveCount",
                        Some("write `{\"deadLetterTargetArn\": \"arn:…\", \"maxReceiveCount\": 5}`".into()),
                    ));
                }
            }
        }
        out
    }

    fn normalize(&self, props: &Props) -> Props {
        let mut n = normalize_props(&self.schema.properties, props);
        // SSE-SQS is AWS's default for a queue without a KMS key.
        if !n.contains_key("sqsManagedSseEnabled") {
            n.insert("sqsManagedSseEnabled".into(), json!(!n.contains_key("kmsMasterKeyId")));
        }
        n
    }

    async fn read(&self, requests: &[ReadRequest]) -> Vec<ProviderResult<Option<Observed>>> {
        crate::aws::read_by_region(requests, |region, group| async move {
            let here = self.regional.get(&self.aws, region, SqsQueue::new);
            let p = here.as_deref().unwrap_or(self);
            futures::future::join_all(group.iter().map(|r| p.read_one(r))).await
        })
        .await
    }

    async fn create(&self, props: &Props, owner: &Ownership, progress: &dyn Progress) -> ProviderResult<Created> {
        match self.elsewhere(props) {
            Some(p) => p.create_here(props, owner, progress).await,
            None => self.create_here(props, owner, progress).await,
        }
    }

    async fn update(
        &self,
        id: &str,
        old: &Props,
        new: &Props,
        changed: &BTreeSet<String>,
        progress: &dyn Progress,
    ) -> ProviderResult<Props> {
        progress.status("setting attributes");
        let cloud: BTreeSet<String> = changed
            .iter()
            .filter(|c| self.schema.property(c).is_none_or(|p| p.change != Change::StateOnly))
            .cloned()
            .collect();
        match self.elsewhere(new) {
            Some(p) => p.update_here(id, old, new, &cloud).await,
            None => self.update_here(id, old, new, &cloud).await,
        }
    }

    async fn delete(&self, id: &str, props: &Props, progress: &dyn Progress) -> ProviderResult<()> {
        match self.elsewhere(props) {
            Some(p) => p.delete_here(id, progress).await,
            None => self.delete_here(id, progress).await,
        }
    }
}
