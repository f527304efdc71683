//! `aws:sns:TopicSubscription`: a subscription of an endpoint (a queue, a
//! function, an address) to an SNS topic.

use crate::aws::Aws;
use crate::provider::{Created, Observed, Ownership, Progress, Provider, ProviderError, ProviderResult, ReadRequest};
use crate::schema::{Change, Property, Props, ResourceSchema, Type, Violation, is_unknown, key_path};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The type token.
pub const TOKEN: &str = "aws:sns:TopicSubscription";

const PROTOCOLS: &[&str] = &["sqs", "lambda", "email", "email-json", "http", "https", "sms", "firehose", "application"];

/// The properties that are subscription attributes, which an update sets
/// one by one.
const ATTRIBUTES: &[(&str, &str)] = &[
    ("rawMessageDelivery", "RawMessageDelivery"),
    ("filterPolicy", "FilterPolicy"),
    ("filterPolicyScope", "FilterPolicyScope"),
    ("redrivePolicy", "RedrivePolicy"),
];

/// The schema of `aws:sns:TopicSubscription`.
pub fn schema() -> ResourceSchema {
    ResourceSchema {
        token: TOKEN,
        doc: "A subscription of an endpoint to an SNS topic.",
        properties: vec![
            Property::new("topic", Type::String, "The topic's ARN, usually `${topic.arn}`.").required().replaces(),
            Property::new("protocol", Type::Enum(PROTOCOLS), "How messages are delivered.").required().replaces(),
            Property::new("endpoint", Type::String, "Where: a queue's ARN, an address, a URL.").required().replaces(),
            Property::new("rawMessageDelivery", Type::Bool, "Deliver the message body as is, without SNS's envelope.")
                .default(json!(false)),
            Property::new("filterPolicy", Type::Json, "Which messages this subscription receives."),
            Property::new(
                "filterPolicyScope",
                Type::Enum(&["MessageAttributes", "MessageBody"]),
                "What the filter policy looks at.",
            ),
            Property::new("redrivePolicy", Type::Json, "The dead-letter queue for messages that cannot be delivered."),
            crate::schema::region_property(),
        ],
        outputs: vec!["arn", "pendingConfirmation"],
        name_property: "",
        not_yet: vec![
            ("confirmationTimeoutInMinutes", "rinfra does not wait for confirmations"),
            ("endpointAutoConfirms", "rinfra does not wait for confirmations"),
            ("subscriptionRoleArn", "Firehose subscriptions are not tested yet"),
            ("deliveryPolicy", "HTTP delivery policies are not tested yet"),
            ("replayPolicy", "message replay is not supported by LocalStack"),
        ],
    }
}

/// The SNS subscription provider.
pub struct SnsSubscription {
    aws: Arc<Aws>,
    schema: ResourceSchema,
    regional: crate::aws::Regional<SnsSubscription>,
}

impl SnsSubscription {
    /// A provider that talks to AWS through `aws`.
    pub fn new(aws: Arc<Aws>) -> Self {
        SnsSubscription { aws, schema: schema(), regional: crate::aws::Regional::default() }
    }

    fn elsewhere(&self, props: &Props) -> Option<Arc<SnsSubscription>> {
        self.regional.get(&self.aws, crate::aws::region_of(props), SnsSubscription::new)
    }
}

fn api<E, R>(operation: &str, err: aws_smithy_runtime_api::client::result::SdkError<E, R>) -> ProviderError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    crate::aws::api_error("sns", operation, err)
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl SnsSubscription {
    async fn read_one(&self, req: &ReadRequest) -> ProviderResult<Option<Observed>> {
        let client = self.aws.sns().await;
        self.aws.limit("sns:GetSubscriptionAttributes").await;
        let out = match client.get_subscription_attributes().subscription_arn(&req.id).send().await {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => return Ok(None),
            Err(e) => return Err(api("GetSubscriptionAttributes", e)),
        };
        let attrs: BTreeMap<String, String> =
            out.attributes().map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
        let mut inputs = Props::new();
        for (prop, attr) in [("topic", "TopicArn"), ("protocol", "Protocol"), ("endpoint", "Endpoint")] {
            if let Some(v) = attrs.get(attr) {
                inputs.insert(prop.into(), json!(v));
            }
        }
        inputs.insert("rawMessageDelivery".into(), json!(attrs.get("RawMessageDelivery").is_some_and(|v| v == "true")));
        for (prop, attr) in &ATTRIBUTES[1..] {
            if let Some(v) = attrs.get(*attr).filter(|v| !v.is_empty()) {
                inputs.insert(prop.to_string(), json!(v));
            }
        }
        // A scope is reported only once a filter policy is set.
        if !inputs.contains_key("filterPolicy") {
            inputs.remove("filterPolicyScope");
        }
        let pending = attrs.get("PendingConfirmation").is_some_and(|v| v == "true");
        let outputs = Props::from([("arn".into(), json!(req.id)), ("pendingConfirmation".into(), json!(pending))]);
        Ok(Some(Observed { inputs, outputs, owner: None }))
    }

    /// The ARN of the topic's subscription with this protocol and
    /// endpoint, if there is one.
    async fn find(&self, props: &Props) -> ProviderResult<Option<String>> {
        let client = self.aws.sns().await;
        let s = |k: &str| props.get(k).and_then(Value::as_str).map(str::to_string);
        let (topic, protocol, endpoint) = (s("topic").unwrap_or_default(), s("protocol"), s("endpoint"));
        let mut token: Option<String> = None;
        loop {
            self.aws.limit("sns:ListSubscriptionsByTopic").await;
            let page =
                match client.list_subscriptions_by_topic().topic_arn(&topic).set_next_token(token.clone()).send().await
                {
                    Ok(p) => p,
                    // No topic, no subscription.
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => return Ok(None),
                    Err(e) => return Err(api("ListSubscriptionsByTopic", e)),
                };
            let found = page
                .subscriptions()
                .iter()
                .find(|x| x.protocol() == protocol.as_deref() && x.endpoint() == endpoint.as_deref())
                .and_then(|x| x.subscription_arn());
            // An unconfirmed subscription is listed with the ARN
            // `PendingConfirmation`: it exists, but has no id to record.
            if let Some(arn) = found {
                return Ok(Some(arn.to_string()));
            }
            match page.next_token() {
                Some(t) if !t.is_empty() && token.as_deref() != Some(t) => token = Some(t.to_string()),
                _ => return Ok(None),
            }
        }
    }

    async fn create_here(&self, props: &Props, progress: &dyn Progress) -> ProviderResult<Created> {
        let client = self.aws.sns().await;
        let s = |k: &str| props.get(k).and_then(Value::as_str).map(str::to_string);
        let mut attributes = BTreeMap::new();
        for (prop, attr) in ATTRIBUTES {
            if let Some(v) = props.get(*prop) {
                attributes.insert(attr.to_string(), text_of(v));
            }
        }
        // Subscribe answers with the ARN of an existing subscription of the
        // same topic, protocol and endpoint: without this check a create
        // would take over someone else's.
        progress.status("checking that the endpoint is not subscribed already");
        if self.find(props).await?.is_some() {
            let name = format!("{} → {}", s("topic").unwrap_or_default(), s("endpoint").unwrap_or_default());
            return Err(ProviderError::AlreadyExists { kind: "SNS subscription", name });
        }
        progress.status("subscribing");
        self.aws.limit("sns:Subscribe").await;
        let out = client
            .subscribe()
            .set_topic_arn(s("topic"))
            .set_protocol(s("protocol"))
            .set_endpoint(s("endpoint"))
            .set_attributes(Some(attributes.into_iter().collect()))
            .return_subscription_arn(true)
            .send()
            .await
            .map_err(|e| api("Subscribe", e))?;
        let arn = out.subscription_arn().unwrap_or_default().to_string();
        let observed = self.read_one(&ReadRequest::new(arn.clone(), BTreeSet::new())).await.ok().flatten();
        let pending = observed.and_then(|o| o.outputs.get("pendingConfirmation").cloned()).unwrap_or_else(|| {
            json!(matches!(s("protocol").as_deref(), Some("email" | "email-json" | "http" | "https")))
        });
        if pending == json!(true) {
            progress.status("pending until the endpoint confirms the subscription");
        }
        Ok(Created {
            id: arn.clone(),
            outputs: Props::from([("arn".into(), json!(arn)), ("pendingConfirmation".into(), pending)]),
        })
    }

    async fn update_here(&self, id: &str, new: &Props, changed: &BTreeSet<String>) -> ProviderResult<Props> {
        let client = self.aws.sns().await;
        let full = self.normalize(new);
        // A policy on the message body needs that scope first; any other
        // change sets the policy first.
        let mut order: Vec<&(&str, &str)> = ATTRIBUTES.iter().filter(|(p, _)| changed.contains(*p)).collect();
        if full.get("filterPolicyScope") == Some(&json!("MessageBody")) {
            order.sort_by_key(|(p, _)| *p != "filterPolicyScope");
        }
        for (prop, attr) in order {
            // A scope goes with its policy: removing the policy removes it.
            if *prop == "filterPolicyScope" && !full.contains_key(*prop) {
                continue;
            }
            // Documents go as written: their canonical form is for
            // comparing only.
            let text = new.get(*prop).or_else(|| full.get(*prop)).map(text_of).unwrap_or_default();
            self.aws.limit("sns:SetSubscriptionAttributes").await;
            client
                .set_subscription_attributes()
                .subscription_arn(id)
                .attribute_name(*attr)
                .attribute_value(text)
                .send()
                .await
                .map_err(|e| api("SetSubscriptionAttributes", e))?;
        }
        let observed = self
            .read_one(&ReadRequest::new(id, BTreeSet::new()))
            .await?
            .ok_or_else(|| ProviderError::NotFound { kind: "SNS subscription", id: id.into() })?;
        Ok(observed.outputs)
    }

    async fn delete_here(&self, id: &str, progress: &dyn Progress) -> ProviderResult<()> {
        let client = self.aws.sns().await;
        let Some(current) = self.read_one(&ReadRequest::new(id, BTreeSet::new())).await? else { return Ok(()) };
        let pending = current.outputs.get("pendingConfirmation") == Some(&json!(true));
        progress.status("unsubscribing");
        self.aws.limit("sns:Unsubscribe").await;
        match client.unsubscribe().subscription_arn(id).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => Ok(()),
            // AWS cannot delete a subscription nobody has confirmed; it
            // removes it by itself within three days. That is a delete
            // that will happen, not a failure.
            Err(e) if pending && e.as_service_error().is_some_and(|s| s.is_invalid_parameter_exception()) => {
                progress
                    .status("not confirmed, so AWS cannot delete it now; it removes it by itself within three days");
                Ok(())
            }
            Err(e) => Err(api("Unsubscribe", e)),
        }
    }
}

#[async_trait]
impl Provider for SnsSubscription {
    fn schema(&self) -> &ResourceSchema {
        &self.schema
    }

    fn check(&self, props: &Props) -> Vec<Violation> {
        let mut out: Vec<Violation> = crate::schema::region_violation(props).into_iter().collect();
        let known = |k: &str| props.get(k).and_then(Value::as_str).filter(|v| !is_unknown(&json!(v)));
        if let Some(topic) = known("topic") {
            if !(topic.starts_with("arn:") && topic.split(':').nth(2) == Some("sns")) {
                out.push(Violation::new(
                    key_path("topic"),
                    format!("`{topic}` is not a topic's ARN"),
                    Some("write `${topic.arn}`".into()),
                ));
            }
        }
        if let (Some(protocol), Some(endpoint)) = (known("protocol"), known("endpoint")) {
            let ok = match protocol {
                "sqs" => endpoint.starts_with("arn:") && endpoint.split(':').nth(2) == Some("sqs"),
                "lambda" => endpoint.starts_with("arn:") && endpoint.split(':').nth(2) == Some("lambda"),
                "firehose" => endpoint.starts_with("arn:") && endpoint.split(':').nth(2) == Some("firehose"),
                "email" | "email-json" => endpoint.contains('@'),
                "http" => endpoint.starts_with("http://"),
                "https" => endpoint.starts_with("https://"),
                _ => true,
            };
            if !ok {
                out.push(Violation::new(
                    key_path("endpoint"),
                    format!("`{endpoint}` is not an endpoint for protocol {protocol}"),
                    Some("an sqs endpoint is the queue's ARN (`${queue.arn}`); email an address; http(s) a URL".into()),
                ));
            }
        }
        if props.contains_key("filterPolicyScope") && !props.contains_key("filterPolicy") {
            out.push(Violation::new(
                key_path("filterPolicyScope"),
                "filterPolicyScope needs a filterPolicy",
                Some("add `filterPolicy`, or remove the scope".into()),
            ));
        }
        out
    }

    fn delete_note(&self, outputs: &Props) -> Option<String> {
        (outputs.get("pendingConfirmation") == Some(&json!(true)))
            .then(|| "not confirmed: AWS cannot delete it, and removes it by itself within three days".to_string())
    }

    fn normalize(&self, props: &Props) -> Props {
        let mut n = crate::schema::normalize_props(&self.schema.properties, props);
        // A filter policy looks at message attributes unless told
        // otherwise, and AWS reports the scope once a policy is set.
        if n.contains_key("filterPolicy") {
            n.entry("filterPolicyScope".to_string()).or_insert_with(|| json!("MessageAttributes"));
        } else {
            n.remove("filterPolicyScope");
        }
        n
    }

    fn id_from_inputs(&self, _props: &Props) -> Option<String> {
        // AWS chooses the subscription's ARN.
        None
    }

    async fn find_created(&self, props: &Props) -> ProviderResult<Option<String>> {
        let here = self.elsewhere(props);
        let found = here.as_deref().unwrap_or(self).find(props).await?;
        Ok(found.filter(|arn| arn.starts_with("arn:")))
    }

    fn predict_outputs(&self, _props: &Props) -> Props {
        Props::new()
    }

    async fn read(&self, requests: &[ReadRequest]) -> Vec<ProviderResult<Option<Observed>>> {
        crate::aws::read_by_region(requests, |region, group| async move {
            let here = self.regional.get(&self.aws, region, SnsSubscription::new);
            let p = here.as_deref().unwrap_or(self);
            futures::future::join_all(group.iter().map(|r| p.read_one(r))).await
        })
        .await
    }

    async fn create(&self, props: &Props, _owner: &Ownership, progress: &dyn Progress) -> ProviderResult<Created> {
        // Subscriptions take no tags, so they carry no ownership tags.
        match self.elsewhere(props) {
            Some(p) => p.create_here(props, progress).await,
            None => self.create_here(props, progress).await,
        }
    }

    async fn update(
        &self,
        id: &str,
        _old: &Props,
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
            Some(p) => p.update_here(id, new, &cloud).await,
            None => self.update_here(id, new, &cloud).await,
        }
    }

    async fn delete(&self, id: &str, props: &Props, progress: &dyn Progress) -> ProviderResult<()> {
        match self.elsewhere(props) {
            Some(p) => p.delete_here(id, progress).await,
            None => self.delete_here(id, progress).await,
        }
    }
}
