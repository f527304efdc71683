//! `aws:kinesis:StreamConsumer`: an enhanced fan-out consumer of a stream.

use crate::aws::Aws;
use crate::provider::{Created, Observed, Ownership, Progress, Provider, ProviderError, ProviderResult, ReadRequest};
use crate::schema::{Property, Props, ResourceSchema, Type, Violation, is_unknown, key_path};
use async_trait::async_trait;
use aws_sdk_kinesis::types::ConsumerStatus;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// The type token.
pub const TOKEN: &str = "aws:kinesis:StreamConsumer";

/// The schema of `aws:kinesis:StreamConsumer`.
pub fn schema() -> ResourceSchema {
    ResourceSchema {
        token: TOKEN,
        doc: "An enhanced fan-out consumer of a Kinesis stream.",
        properties: vec![
            Property::new(
                "name",
                Type::String,
                "The consumer's name, unique for its stream. Generated from the logical name when absent.",
            )
            .replaces(),
            Property::new("streamArn", Type::String, "The stream's ARN, usually `${stream.arn}`.")
                .required()
                .replaces(),
            crate::schema::region_property(),
        ],
        outputs: vec!["arn", "creationTimestamp"],
        name_property: "name",
        not_yet: vec![("tags", "LocalStack does not tag consumers")],
    }
}

/// The stream consumer provider. A consumer's id is its ARN, which AWS
/// chooses; the stream and name find it again.
pub struct StreamConsumer {
    aws: Arc<Aws>,
    schema: ResourceSchema,
    regional: crate::aws::Regional<StreamConsumer>,
}

impl StreamConsumer {
    /// A provider that talks to AWS through `aws`.
    pub fn new(aws: Arc<Aws>) -> Self {
        StreamConsumer { aws, schema: schema(), regional: crate::aws::Regional::default() }
    }

    fn at(&self, region: Option<&str>) -> Option<Arc<StreamConsumer>> {
        self.regional.get(&self.aws, region, StreamConsumer::new)
    }

    /// The consumer with this ARN, or `None` when it is gone.
    async fn describe(&self, arn: &str) -> ProviderResult<Option<aws_sdk_kinesis::types::ConsumerDescription>> {
        let client = self.aws.kinesis().await;
        self.aws.limit("kinesis:DescribeStreamConsumer").await;
        match client.describe_stream_consumer().consumer_arn(arn).send().await {
            Ok(o) => Ok(o.consumer_description().cloned()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(None),
            Err(e) => Err(crate::aws::api_error("kinesis", "DescribeStreamConsumer", e)),
        }
    }

    async fn read_one(&self, req: &ReadRequest) -> ProviderResult<Option<Observed>> {
        let Some(c) = self.describe(&req.id).await? else { return Ok(None) };
        if *c.consumer_status() == ConsumerStatus::Deleting {
            return Ok(None);
        }
        let inputs = Props::from([
            ("name".to_string(), json!(c.consumer_name())),
            ("streamArn".to_string(), json!(c.stream_arn())),
        ]);
        let outputs = Props::from([
            ("arn".to_string(), json!(c.consumer_arn())),
            ("creationTimestamp".to_string(), json!(c.consumer_creation_timestamp().to_string())),
        ]);
        Ok(Some(Observed { inputs, outputs, owner: None }))
    }

    async fn wait_for(&self, arn: &str, done: impl Fn(Option<&ConsumerStatus>) -> bool) -> ProviderResult<()> {
        let started = std::time::Instant::now();
        let mut delay = Duration::from_millis(100);
        loop {
            let status = self.describe(arn).await?.map(|c| c.consumer_status().clone());
            if done(status.as_ref()) {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(300) {
                return Err(ProviderError::Timeout { what: format!("consumer {arn}"), seconds: 300 });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    async fn create_here(&self, props: &Props, progress: &dyn Progress) -> ProviderResult<Created> {
        let client = self.aws.kinesis().await;
        let s = |k: &str| props.get(k).and_then(Value::as_str).map(str::to_string);
        let name = s("name").ok_or_else(|| ProviderError::Invalid("name is required".into()))?;
        let mut attempts = 0;
        let out = loop {
            attempts += 1;
            self.aws.limit("kinesis:RegisterStreamConsumer").await;
            match client.register_stream_consumer().set_stream_arn(s("streamArn")).consumer_name(&name).send().await {
                Ok(out) => break out,
                Err(e) if e.as_service_error().is_some_and(|x| x.is_resource_in_use_exception()) && attempts < 5 => {
                    // A consumer of this name that is still being
                    // deregistered (after a replace, or an interrupted
                    // destroy) frees the name once it is gone; a live one
                    // belongs to someone else.
                    let existing = self.find_created(props).await?;
                    let Some(arn) = existing else { continue };
                    let deleting =
                        self.describe(&arn).await?.is_some_and(|c| *c.consumer_status() == ConsumerStatus::Deleting);
                    if !deleting {
                        return Err(ProviderError::AlreadyExists { kind: "Kinesis stream consumer", name });
                    }
                    progress.status("waiting for a consumer of this name to be deregistered");
                    self.wait_for(&arn, |st| st.is_none()).await?;
                }
                Err(e) => return Err(crate::aws::api_error("kinesis", "RegisterStreamConsumer", e)),
            }
        };
        let c = out.consumer().ok_or_else(|| ProviderError::api("kinesis:RegisterStreamConsumer", "no consumer"))?;
        let arn = c.consumer_arn().to_string();
        progress.status("waiting for ACTIVE");
        self.wait_for(&arn, |s| s == Some(&ConsumerStatus::Active)).await.map_err(|e| ProviderError::Partial {
            id: arn.clone(),
            outputs: Props::from([("arn".to_string(), json!(arn))]),
            source: Box::new(e),
        })?;
        let outputs = Props::from([
            ("arn".to_string(), json!(arn)),
            ("creationTimestamp".to_string(), json!(c.consumer_creation_timestamp().to_string())),
        ]);
        Ok(Created { id: arn, outputs })
    }

    async fn delete_here(&self, id: &str, progress: &dyn Progress) -> ProviderResult<()> {
        let client = self.aws.kinesis().await;
        progress.status("deregistering");
        self.aws.limit("kinesis:DeregisterStreamConsumer").await;
        match client.deregister_stream_consumer().consumer_arn(id).send().await {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => return Ok(()),
            Err(e) => return Err(crate::aws::api_error("kinesis", "DeregisterStreamConsumer", e)),
        }
        self.wait_for(id, |s| s.is_none()).await
    }
}

#[async_trait]
impl Provider for StreamConsumer {
    fn schema(&self) -> &ResourceSchema {
        &self.schema
    }

    fn check(&self, props: &Props) -> Vec<Violation> {
        let mut out: Vec<Violation> = crate::schema::region_violation(props).into_iter().collect();
        if let Some(name) = props.get("name").and_then(Value::as_str).filter(|n| !is_unknown(&json!(n))) {
            let valid = !name.is_empty()
                && name.len() <= 128
                && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !valid {
                out.push(Violation::new(
                    key_path("name"),
                    format!("`{name}` is not a valid consumer name"),
                    Some("use 1 to 128 letters, digits, `_`, `.` or `-`".into()),
                ));
            }
        }
        if let Some(arn) = props.get("streamArn").and_then(Value::as_str).filter(|a| !is_unknown(&json!(a))) {
            if !(arn.starts_with("arn:") && arn.split(':').nth(2) == Some("kinesis") && arn.contains(":stream/")) {
                out.push(Violation::new(
                    key_path("streamArn"),
                    format!("`{arn}` is not a stream's ARN"),
                    Some("write `${stream.arn}`".into()),
                ));
            }
        }
        out
    }

    fn id_from_inputs(&self, _props: &Props) -> Option<String> {
        // AWS chooses the consumer's ARN.
        None
    }

    async fn find_created(&self, props: &Props) -> ProviderResult<Option<String>> {
        let here = self.at(crate::aws::region_of(props));
        let p = here.as_deref().unwrap_or(self);
        let s = |k: &str| props.get(k).and_then(Value::as_str).map(str::to_string);
        let client = p.aws.kinesis().await;
        p.aws.limit("kinesis:DescribeStreamConsumer").await;
        match client.describe_stream_consumer().set_stream_arn(s("streamArn")).set_consumer_name(s("name")).send().await
        {
            Ok(o) => Ok(o.consumer_description().map(|c| c.consumer_arn().to_string())),
            Err(e) if e.as_service_error().is_some_and(|x| x.is_resource_not_found_exception()) => Ok(None),
            Err(e) => Err(crate::aws::api_error("kinesis", "DescribeStreamConsumer", e)),
        }
    }

    fn predict_outputs(&self, _props: &Props) -> Props {
        Props::new()
    }

    async fn read(&self, requests: &[ReadRequest]) -> Vec<ProviderResult<Option<Observed>>> {
        crate::aws::read_by_region(requests, |region, group| async move {
            let here = self.at(region);
            let p = here.as_deref().unwrap_or(self);
            futures::future::join_all(group.iter().map(|r| p.read_one(r))).await
        })
        .await
    }

    async fn create(&self, props: &Props, _owner: &Ownership, progress: &dyn Progress) -> ProviderResult<Created> {
        // Consumers take no tags in LocalStack, so they carry no
        // ownership tags; RegisterStreamConsumer refuses a taken name.
        let here = self.at(crate::aws::region_of(props));
        here.as_deref().unwrap_or(self).create_here(props, progress).await
    }

    async fn update(
        &self,
        id: &str,
        _old: &Props,
        _new: &Props,
        _changed: &BTreeSet<String>,
        _progress: &dyn Progress,
    ) -> ProviderResult<Props> {
        // Every property replaces: an update only records state.
        Ok(Props::from([("arn".to_string(), json!(id))]))
    }

    async fn delete(&self, id: &str, props: &Props, progress: &dyn Progress) -> ProviderResult<()> {
        let here = self.at(crate::aws::region_of(props));
        here.as_deref().unwrap_or(self).delete_here(id, progress).await
    }
}
