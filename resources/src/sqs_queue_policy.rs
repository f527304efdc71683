//! `aws:sqs:QueuePolicy`: the access policy of an SQS queue, such as the
//! one that lets an SNS topic deliver to it.

use crate::aws::Aws;
use crate::provider::{Created, Observed, Ownership, Progress, Provider, ProviderError, ProviderResult, ReadRequest};
use crate::schema::{Property, Props, ResourceSchema, Type, Violation, is_unknown, key_path};
use async_trait::async_trait;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The type token.
pub const TOKEN: &str = "aws:sqs:QueuePolicy";

/// The schema of `aws:sqs:QueuePolicy`.
pub fn schema() -> ResourceSchema {
    ResourceSchema {
        token: TOKEN,
        doc: "The access policy of an SQS queue.",
        properties: vec![
            Property::new("queueUrl", Type::String, "The queue's URL, usually `${queue.url}`.").required().replaces(),
            Property::new("policy", Type::Json, "The policy document.").required(),
            crate::schema::region_property(),
        ],
        outputs: vec![],
        name_property: "queueUrl",
        not_yet: vec![],
    }
}

/// The SQS queue policy provider.
pub struct SqsQueuePolicy {
    aws: Arc<Aws>,
    schema: ResourceSchema,
    regional: crate::aws::Regional<SqsQueuePolicy>,
}

impl SqsQueuePolicy {
    /// A provider that talks to AWS through `aws`.
    pub fn new(aws: Arc<Aws>) -> Self {
        SqsQueuePolicy { aws, schema: schema(), regional: crate::aws::Regional::default() }
    }

    fn here_or_elsewhere(&self, region: Option<&str>) -> Option<Arc<SqsQueuePolicy>> {
        self.regional.get(&self.aws, region, SqsQueuePolicy::new)
    }

    async fn read_one(&self, req: &ReadRequest) -> ProviderResult<Option<Observed>> {
        let client = self.aws.sqs().await;
        self.aws.limit("sqs:GetQueueAttributes").await;
        let out = match client
            .get_queue_attributes()
            .queue_url(&req.id)
            .attribute_names(QueueAttributeName::Policy)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) if crate::sqs_queue::is_missing(&e) => return Ok(None),
            Err(e) => return Err(crate::aws::api_error("sqs", "GetQueueAttributes", e)),
        };
        // A queue without a policy has no policy resource.
        let Some(policy) = out.attributes().and_then(|m| m.get(&QueueAttributeName::Policy)).filter(|p| !p.is_empty())
        else {
            return Ok(None);
        };
        let inputs = Props::from([("queueUrl".to_string(), json!(req.id)), ("policy".to_string(), json!(policy))]);
        Ok(Some(Observed { inputs, outputs: Props::new(), owner: None }))
    }

    async fn put(&self, url: &str, policy: &str) -> ProviderResult<()> {
        let client = self.aws.sqs().await;
        self.aws.limit("sqs:SetQueueAttributes").await;
        client
            .set_queue_attributes()
            .queue_url(url)
            .attributes(QueueAttributeName::Policy, policy)
            .send()
            .await
            .map_err(|e| crate::aws::api_error("sqs", "SetQueueAttributes", e))?;
        Ok(())
    }
}

fn policy_text(props: &Props) -> ProviderResult<String> {
    match props.get("policy") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
        None => Err(ProviderError::Invalid("policy is required".into())),
    }
}

fn url_of(props: &Props) -> ProviderResult<String> {
    props
        .get("queueUrl")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ProviderError::Invalid("queueUrl is required".into()))
}

#[async_trait]
impl Provider for SqsQueuePolicy {
    fn schema(&self) -> &ResourceSchema {
        &self.schema
    }

    fn check(&self, props: &Props) -> Vec<Violation> {
        let mut out: Vec<Violation> = crate::schema::region_violation(props).into_iter().collect();
        if let Some(url) = props.get("queueUrl").and_then(Value::as_str).filter(|u| !is_unknown(&json!(u))) {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                out.push(Violation::new(
                    key_path("queueUrl"),
                    format!("`{url}` is not a queue URL"),
                    Some("write `${queue.url}`".into()),
                ));
            }
        }
        out
    }

    fn predict_outputs(&self, _props: &Props) -> Props {
        Props::new()
    }

    async fn read(&self, requests: &[ReadRequest]) -> Vec<ProviderResult<Option<Observed>>> {
        crate::aws::read_by_region(requests, |region, group| async move {
            let here = self.here_or_elsewhere(region);
            let p = here.as_deref().unwrap_or(self);
            futures::future::join_all(group.iter().map(|r| p.read_one(r))).await
        })
        .await
    }

    async fn create(&self, props: &Props, _owner: &Ownership, progress: &dyn Progress) -> ProviderResult<Created> {
        let here = self.here_or_elsewhere(crate::aws::region_of(props));
        let p = here.as_deref().unwrap_or(self);
        let url = url_of(props)?;
        // A policy someone else set is theirs: it is imported, not
        // overwritten.
        if p.read_one(&ReadRequest::new(url.clone(), BTreeSet::new())).await?.is_some() {
            return Err(ProviderError::AlreadyExists { kind: "SQS queue policy", name: url });
        }
        progress.status("setting the policy");
        p.put(&url, &policy_text(props)?).await?;
        Ok(Created { id: url, outputs: Props::new() })
    }

    async fn update(
        &self,
        id: &str,
        _old: &Props,
        new: &Props,
        _changed: &BTreeSet<String>,
        progress: &dyn Progress,
    ) -> ProviderResult<Props> {
        let here = self.here_or_elsewhere(crate::aws::region_of(new));
        let p = here.as_deref().unwrap_or(self);
        progress.status("setting the policy");
        p.put(id, &policy_text(new)?).await?;
        Ok(Props::new())
    }

    async fn delete(&self, id: &str, props: &Props, progress: &dyn Progress) -> ProviderResult<()> {
        let here = self.here_or_elsewhere(crate::aws::region_of(props));
        let p = here.as_deref().unwrap_or(self);
        progress.status("removing the policy");
        match p.put(id, "").await {
            // The queue is gone, and its policy with it.
            Err(ProviderError::Api { message, .. })
                if message.contains("NonExistentQueue") || message.contains("QueueDoesNotExist") =>
            {
                Ok(())
            }
            other => other,
        }
    }
}
