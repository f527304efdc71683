//! `aws:sns:Topic`: an SNS topic.

use crate::aws::Aws;
use crate::provider::{Created, Observed, Ownership, Progress, Provider, ProviderError, ProviderResult, ReadRequest};
use crate::schema::{Change, Property, Props, ResourceSchema, Type, Violation, is_unknown, key_path, normalize_props};
use async_trait::async_trait;
use aws_sdk_sns::types::Tag;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The type token.
pub const TOKEN: &str = "aws:sns:Topic";

/// Each property that is a topic attribute, with the attribute's name.
const ATTRIBUTES: &[(&str, &str)] = &[
    ("displayName", "DisplayName"),
    ("policy", "Policy"),
    ("deliveryPolicy", "DeliveryPolicy"),
    ("kmsMasterKeyId", "KmsMasterKeyId"),
    ("fifoTopic", "FifoTopic"),
    ("contentBasedDeduplication", "ContentBasedDeduplication"),
];

/// The schema of `aws:sns:Topic`.
pub fn schema() -> ResourceSchema {
    ResourceSchema {
        token: TOKEN,
        doc: "An SNS topic.",
        properties: vec![
            Property::new(
                "name",
                Type::String,
                "The topic's name; a FIFO topic's ends in `.fifo`. Generated from the logical name when absent.",
            )
            .replaces(),
            Property::new("displayName", Type::String, "The name shown in SMS and email notifications.")
                .default(json!("")),
            // AWS gives every topic a policy of its own; it is compared only
            // when the stack sets one.
            Property::new("policy", Type::Json, "Who may publish and subscribe; AWS's default when absent.")
                .read_when_managed(),
            Property::new("deliveryPolicy", Type::Json, "Retry policy for HTTP/S endpoints.").read_when_managed(),
            Property::new("kmsMasterKeyId", Type::String, "The KMS key that encrypts messages at rest."),
            Property::new("fifoTopic", Type::Bool, "Whether the topic is FIFO.").default(json!(false)).replaces(),
            Property::new(
                "contentBasedDeduplication",
                Type::Bool,
                "For a FIFO topic: deduplicate by a hash of the body.",
            )
            .default(json!(false)),
            crate::schema::tags_property("Tags on the topic."),
            crate::schema::region_property(),
        ],
        outputs: vec!["name", "arn"],
        name_property: "name",
        not_yet: vec![("namePrefix", "auto-naming from the logical name takes its place")],
    }
}

/// The SNS topic provider.
pub struct SnsTopic {
    aws: Arc<Aws>,
    schema: ResourceSchema,
    regional: crate::aws::Regional<SnsTopic>,
}

impl SnsTopic {
    /// A provider that talks to AWS through `aws`.
    pub fn new(aws: Arc<Aws>) -> Self {
        SnsTopic { aws, schema: schema(), regional: crate::aws::Regional::default() }
    }

    fn elsewhere(&self, props: &Props) -> Option<Arc<SnsTopic>> {
        self.regional.get(&self.aws, crate::aws::region_of(props), SnsTopic::new)
    }
}

fn api<E, R>(operation: &str, err: aws_smithy_runtime_api::client::result::SdkError<E, R>) -> ProviderError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    crate::aws::api_error("sns", operation, err)
}

/// The topic name of an ARN (`arn:aws:sns:us-east-1:123:alerts`).
fn name_of(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

impl SnsTopic {
    /// Every topic's ARN by name, following ListTopics' pages.
    async fn topics(&self) -> ProviderResult<BTreeMap<String, String>> {
        let client = self.aws.sns().await;
        let mut found = BTreeMap::new();
        let mut token: Option<String> = None;
        loop {
            self.aws.limit("sns:ListTopics").await;
            let out =
                client.list_topics().set_next_token(token.clone()).send().await.map_err(|e| api("ListTopics", e))?;
            for t in out.topics() {
                if let Some(arn) = t.topic_arn() {
                    found.insert(name_of(arn).to_string(), arn.to_string());
                }
            }
            match out.next_token() {
                Some(t) if !t.is_empty() && token.as_deref() != Some(t) => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(found)
    }

    async fn read_one(&self, req: &ReadRequest, arn: Option<&String>) -> ProviderResult<Option<Observed>> {
        let Some(arn) = arn else { return Ok(None) };
        let client = self.aws.sns().await;
        self.aws.limit("sns:GetTopicAttributes").await;
        let out = match client.get_topic_attributes().topic_arn(arn).send().await {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => return Ok(None),
            Err(e) => return Err(api("GetTopicAttributes", e)),
        };
        let attrs: BTreeMap<String, String> =
            out.attributes().map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
        let mut inputs = Props::from([("name".to_string(), json!(req.id))]);
        for (prop, attr) in ATTRIBUTES {
            let managed_only = matches!(*prop, "policy" | "deliveryPolicy");
            if managed_only && !req.managed.contains(*prop) {
                continue;
            }
            match attrs.get(*attr).filter(|t| !t.is_empty()) {
                Some(text) => {
                    let v = match *prop {
                        "fifoTopic" | "contentBasedDeduplication" => json!(text == "true"),
                        _ => json!(text),
                    };
                    inputs.insert(prop.to_string(), v);
                }
                None => {
                    if let Some(d) = self.schema.property(prop).and_then(|p| p.default.clone()) {
                        inputs.insert(prop.to_string(), d);
                    }
                }
            }
        }
        let owner = if req.needs_tags() {
            self.aws.limit("sns:ListTagsForResource").await;
            let tags = client
                .list_tags_for_resource()
                .resource_arn(arn)
                .send()
                .await
                .map_err(|e| api("ListTagsForResource", e))?;
            let tags: BTreeMap<String, String> =
                tags.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
            req.take_tags(tags, &mut inputs)
        } else {
            None
        };
        let outputs = Props::from([("name".into(), json!(req.id)), ("arn".into(), json!(arn))]);
        Ok(Some(Observed { inputs, outputs, owner }))
    }

    async fn read_here(&self, requests: &[ReadRequest]) -> Vec<ProviderResult<Option<Observed>>> {
        let topics = match self.topics().await {
            Ok(t) => t,
            Err(e) => {
                let message = e.to_string();
                return requests.iter().map(|_| Err(ProviderError::api("sns:ListTopics", message.clone()))).collect();
            }
        };
        futures::future::join_all(requests.iter().map(|r| self.read_one(r, topics.get(&r.id)))).await
    }

    async fn arn_of(&self, name: &str) -> ProviderResult<String> {
        self.topics()
            .await?
            .remove(name)
            .ok_or_else(|| ProviderError::NotFound { kind: "SNS topic", id: name.to_string() })
    }

    async fn create_here(&self, props: &Props, owner: &Ownership, progress: &dyn Progress) -> ProviderResult<Created> {
        let client = self.aws.sns().await;
        let name = props
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| ProviderError::Invalid("name is required".into()))?
            .to_string();
        // CreateTopic answers with the ARN of an existing topic of the same
        // name: without this check a create would take over someone else's.
        progress.status("checking that the name is free");
        if self.topics().await?.contains_key(&name) {
            return Err(ProviderError::AlreadyExists { kind: "SNS topic", name });
        }
        let full = normalize_props(&self.schema.properties, props);
        let fifo = full.get("fifoTopic") == Some(&json!(true));
        let mut attributes = BTreeMap::new();
        for (prop, attr) in ATTRIBUTES {
            let Some(v) = full.get(*prop) else { continue };
            // A standard topic refuses the FIFO attributes.
            if matches!(*prop, "fifoTopic" | "contentBasedDeduplication") && !fifo {
                continue;
            }
            if *prop == "displayName" && v == &json!("") {
                continue;
            }
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            attributes.insert(attr.to_string(), text);
        }
        let mut tags = crate::schema::string_map(props, "tags");
        tags.extend(owner.tags());
        let tags: Vec<Tag> =
            tags.into_iter().filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok()).collect();
        self.aws.limit("sns:CreateTopic").await;
        let out = client
            .create_topic()
            .name(&name)
            .set_attributes(Some(attributes.into_iter().collect()))
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| api("CreateTopic", e))?;
        let arn = out.topic_arn().unwrap_or_default().to_string();
        Ok(Created {
            id: name.clone(),
            outputs: Props::from([("name".into(), json!(name)), ("arn".into(), json!(arn))]),
        })
    }

    async fn update_here(
        &self,
        id: &str,
        old: &Props,
        new: &Props,
        changed: &BTreeSet<String>,
    ) -> ProviderResult<Props> {
        let client = self.aws.sns().await;
        let arn = self.arn_of(id).await?;
        let full = normalize_props(&self.schema.properties, new);
        // SetTopicAttributes takes one attribute a call.
        for (prop, attr) in ATTRIBUTES.iter().filter(|(p, _)| changed.contains(*p)) {
            let text = match (new.get(*prop).or_else(|| full.get(*prop)), *prop) {
                (Some(Value::String(s)), _) => s.clone(),
                (Some(other), _) => other.to_string(),
                // A policy taken away is AWS's default again, not none.
                (None, "policy") => crate::sns_topic_policy::default_policy(&arn),
                (None, _) => String::new(),
            };
            self.aws.limit("sns:SetTopicAttributes").await;
            client
                .set_topic_attributes()
                .topic_arn(&arn)
                .attribute_name(*attr)
                .attribute_value(text)
                .send()
                .await
                .map_err(|e| api("SetTopicAttributes", e))?;
        }
        if changed.contains("tags") {
            let (removed, set) = crate::schema::tag_changes(old, new);
            if !removed.is_empty() {
                self.aws.limit("sns:UntagResource").await;
                client
                    .untag_resource()
                    .resource_arn(&arn)
                    .set_tag_keys(Some(removed))
                    .send()
                    .await
                    .map_err(|e| api("UntagResource", e))?;
            }
            let added: Vec<Tag> =
                set.into_iter().filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok()).collect();
            if !added.is_empty() {
                self.aws.limit("sns:TagResource").await;
                client
                    .tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(added))
                    .send()
                    .await
                    .map_err(|e| api("TagResource", e))?;
            }
        }
        Ok(Props::from([("name".into(), json!(id)), ("arn".into(), json!(arn))]))
    }

    async fn delete_here(&self, id: &str, progress: &dyn Progress) -> ProviderResult<()> {
        let client = self.aws.sns().await;
        let Some(arn) = self.topics().await?.remove(id) else { return Ok(()) };
        progress.status("deleting");
        self.aws.limit("sns:DeleteTopic").await;
        client.delete_topic().topic_arn(&arn).send().await.map_err(|e| api("DeleteTopic", e))?;
        Ok(())
    }
}

#[async_trait]
impl Provider for SnsTopic {
    fn schema(&self) -> &ResourceSchema {
        &self.schema
    }

    fn check(&self, props: &Props) -> Vec<Violation> {
        let mut out: Vec<Violation> = crate::schema::region_violation(props).into_iter().collect();
        let fifo = props.get("fifoTopic") == Some(&json!(true));
        if let Some(name) = props.get("name").and_then(Value::as_str).filter(|n| !is_unknown(&json!(n))) {
            let base = name.strip_suffix(".fifo").unwrap_or(name);
            let valid = !base.is_empty()
                && name.len() <= 256
                && base.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid {
                out.push(Violation::new(
                    key_path("name"),
                    format!("`{name}` is not a valid topic name"),
                    Some("use 1 to 256 letters, digits, `-` and `_` (and `.fifo` at the end of a FIFO topic's)".into()),
                ));
            } else if fifo != name.ends_with(".fifo") {
                let hint = if fifo { "end the name with `.fifo`" } else { "set `fifoTopic: true`, or drop `.fifo`" };
                out.push(Violation::new(
                    key_path("name"),
                    format!("a FIFO topic's name, and only its name, ends in `.fifo`: `{name}`"),
                    Some(hint.into()),
                ));
            }
        }
        if !fifo && props.get("contentBasedDeduplication") == Some(&json!(true)) {
            out.push(Violation::new(
                key_path("contentBasedDeduplication"),
                "contentBasedDeduplication is for FIFO topics",
                Some("set `fifoTopic: true`, or remove it".into()),
            ));
        }
        if props.get("displayName").and_then(Value::as_str).is_some_and(|d| d.len() > 100) {
            out.push(Violation::new(key_path("displayName"), "display names have at most 100 characters", None));
        }
        out
    }

    async fn read(&self, requests: &[ReadRequest]) -> Vec<ProviderResult<Option<Observed>>> {
        crate::aws::read_by_region(requests, |region, group| async move {
            match self.regional.get(&self.aws, region, SnsTopic::new) {
                Some(p) => p.read_here(&group).await,
                None => self.read_here(&group).await,
            }
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
