//! `aws:sns:TopicPolicy`: the access policy of an SNS topic.

use crate::aws::Aws;
use crate::provider::{Created, Observed, Ownership, Progress, Provider, ProviderError, ProviderResult, ReadRequest};
use crate::schema::{Property, Props, ResourceSchema, Type, Violation, is_unknown, key_path};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The type token.
pub const TOKEN: &str = "aws:sns:TopicPolicy";

/// The schema of `aws:sns:TopicPolicy`.
pub fn schema() -> ResourceSchema {
    ResourceSchema {
        token: TOKEN,
        doc: "The access policy of an SNS topic.",
        properties: vec![
            Property::new("arn", Type::String, "The topic's ARN, usually `${topic.arn}`.").required().replaces(),
            Property::new("policy", Type::Json, "The policy document.").required(),
            crate::schema::region_property(),
        ],
        outputs: vec!["owner"],
        name_property: "arn",
        not_yet: vec![],
    }
}

/// Whether `text` is the policy AWS gives a new topic: its one default
/// statement and nothing added (AddPermission keeps the default policy's
/// Id but adds statements).
fn is_default_policy(text: &str) -> bool {
    let Ok(doc) = serde_json::from_str::<Value>(text) else { return text.is_empty() };
    let statements = match doc.get("Statement") {
        Some(Value::Array(s)) => s.clone(),
        Some(one) => vec![one.clone()],
        None => Vec::new(),
    };
    statements.len() == 1 && statements[0].get("Sid").and_then(Value::as_str) == Some("__default_statement_ID")
}

/// The policy AWS gives a new topic, which a deleted policy resource
/// leaves behind: the owner's account may do everything.
pub(crate) fn default_policy(arn: &str) -> String {
    let account = arn.split(':').nth(4).unwrap_or_default();
    json!({
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [{
            "Sid": "__default_statement_ID",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": [
                "SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission", "SNS:RemovePermission",
                "SNS:DeleteTopic", "SNS:Subscribe", "SNS:ListSubscriptionsByTopic", "SNS:Publish"
            ],
            "Resource": arn,
            "Condition": {"StringEquals": {"AWS:SourceOwner": account}}
        }]
    })
    .to_string()
}

/// The SNS topic policy provider.
pub struct SnsTopicPolicy {
    aws: Arc<Aws>,
    schema: ResourceSchema,
    regional: crate::aws::Regional<SnsTopicPolicy>,
}

impl SnsTopicPolicy {
    /// A provider that talks to AWS through `aws`.
    pub fn new(aws: Arc<Aws>) -> Self {
        SnsTopicPolicy { aws, schema: schema(), regional: crate::aws::Regional::default() }
    }

    fn here_or_elsewhere(&self, region: Option<&str>) -> Option<Arc<SnsTopicPolicy>> {
        self.regional.get(&self.aws, region, SnsTopicPolicy::new)
    }

    async fn read_one(&self, req: &ReadRequest) -> ProviderResult<Option<Observed>> {
        let client = self.aws.sns().await;
        self.aws.limit("sns:GetTopicAttributes").await;
        let out = match client.get_topic_attributes().topic_arn(&req.id).send().await {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => return Ok(None),
            Err(e) => return Err(crate::aws::api_error("sns", "GetTopicAttributes", e)),
        };
        let attrs = out.attributes();
        let policy = attrs.and_then(|m| m.get("Policy")).cloned().unwrap_or_default();
        let owner = attrs.and_then(|m| m.get("Owner")).cloned().unwrap_or_default();
        let inputs = Props::from([("arn".to_string(), json!(req.id)), ("policy".to_string(), json!(policy))]);
        Ok(Some(Observed { inputs, outputs: Props::from([("owner".to_string(), json!(owner))]), owner: None }))
    }

    async fn put(&self, arn: &str, policy: &str) -> ProviderResult<()> {
        let client = self.aws.sns().await;
        self.aws.limit("sns:SetTopicAttributes").await;
        client
            .set_topic_attributes()
            .topic_arn(arn)
            .attribute_name("Policy")
            .attribute_value(policy)
            .send()
            .await
            .map_err(|e| crate::aws::api_error("sns", "SetTopicAttributes", e))?;
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

#[async_trait]
impl Provider for SnsTopicPolicy {
    fn schema(&self) -> &ResourceSchema {
        &self.schema
    }

    fn check(&self, props: &Props) -> Vec<Violation> {
        let mut out: Vec<Violation> = crate::schema::region_violation(props).into_iter().collect();
        if let Some(arn) = props.get("arn").and_then(Value::as_str).filter(|a| !is_unknown(&json!(a))) {
            if arn.split(':').nth(2) != Some("sns") {
                out.push(Violation::new(
                    key_path("arn"),
                    format!("`{arn}` is not a topic's ARN"),
                    Some("write `${topic.arn}`".into()),
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
        let arn = props
            .get("arn")
            .and_then(Value::as_str)
            .ok_or_else(|| ProviderError::Invalid("arn is required".into()))?
            .to_string();
        // Every topic has a policy: AWS's default one may be replaced, one
        // someone else set may not.
        if let Some(current) = p.read_one(&ReadRequest::new(arn.clone(), BTreeSet::new())).await? {
            let text = current.inputs.get("policy").and_then(Value::as_str).unwrap_or_default().to_string();
            if !is_default_policy(&text) {
                return Err(ProviderError::AlreadyExists { kind: "SNS topic policy", name: arn });
            }
        }
        progress.status("setting the policy");
        p.put(&arn, &policy_text(props)?).await?;
        let owner = arn.split(':').nth(4).unwrap_or_default().to_string();
        Ok(Created { id: arn, outputs: Props::from([("owner".to_string(), json!(owner))]) })
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
        Ok(Props::from([("owner".to_string(), json!(id.split(':').nth(4).unwrap_or_default()))]))
    }

    async fn delete(&self, id: &str, props: &Props, progress: &dyn Progress) -> ProviderResult<()> {
        let here = self.here_or_elsewhere(crate::aws::region_of(props));
        let p = here.as_deref().unwrap_or(self);
        progress.status("restoring the topic's default policy");
        match p.put(id, &default_policy(id)).await {
            // The topic is gone, and its policy with it.
            Err(ProviderError::Api { message, .. }) if message.starts_with("NotFound") => Ok(()),
            other => other,
        }
    }
}
