//! `aws:cloudwatch:MetricAlarm`: a CloudWatch alarm on one metric.

use crate::aws::Aws;
use crate::provider::{Created, Observed, Ownership, Progress, Provider, ProviderError, ProviderResult, ReadRequest};
use crate::schema::{
    Change, PathSeg, Property, Props, ResourceSchema, Type, Violation, integer_of, is_unknown, key_path,
    normalize_props,
};
use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, MetricAlarm, StandardUnit, Statistic, Tag};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The type token.
pub const TOKEN: &str = "aws:cloudwatch:MetricAlarm";

/// DescribeAlarms accepts at most this many names in one call.
const NAMES_PER_DESCRIBE: usize = 100;

const OPERATORS: &[&str] =
    &["GreaterThanOrEqualToThreshold", "GreaterThanThreshold", "LessThanThreshold", "LessThanOrEqualToThreshold"];
const STATISTICS: &[&str] = &["SampleCount", "Average", "Sum", "Minimum", "Maximum"];
const MISSING_DATA: &[&str] = &["breaching", "notBreaching", "ignore", "missing"];
const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// The schema of `aws:cloudwatch:MetricAlarm`.
pub fn schema() -> ResourceSchema {
    let actions = |doc| {
        Property::new("", Type::List { item: Box::new(Type::String), set: true, max_items: Some(5) }, doc)
            .default(json!([]))
    };
    let named = |mut p: Property, name| {
        p.name = name;
        p
    };
    ResourceSchema {
        token: TOKEN,
        doc: "A CloudWatch alarm that watches one metric.",
        properties: vec![
            Property::new("name", Type::String, "The alarm's name, unique in the account and region.")
                .required()
                .replaces(),
            Property::new(
                "comparisonOperator",
                Type::Enum(OPERATORS),
                "How the statistic is compared with the threshold.",
            )
            .required(),
            Property::new(
                "evaluationPeriods",
                Type::Integer { min: Some(1), max: None },
                "The number of periods over which data is compared with the threshold.",
            )
            .required(),
            Property::new(
                "metricName",
                Type::String,
                "The metric to watch, such as WriteProvisionedThroughputExceeded.",
            )
            .required(),
            Property::new("namespace", Type::String, "The metric's namespace, such as AWS/Kinesis.").required(),
            Property::new(
                "period",
                Type::Integer { min: Some(10), max: Some(86_400) },
                "The length of a period in seconds: 10, 20, 30 or a multiple of 60.",
            )
            .required(),
            Property::new(
                "statistic",
                Type::Enum(STATISTICS),
                "The statistic to apply; exclusive with extendedStatistic.",
            ),
            Property::new("extendedStatistic", Type::String, "A percentile such as p99; exclusive with statistic."),
            Property::new("threshold", Type::Number, "The value the statistic is compared with.").required(),
            Property::new(
                "datapointsToAlarm",
                Type::Integer { min: Some(1), max: None },
                "How many breaching datapoints trigger the alarm; at most evaluationPeriods.",
            ),
            Property::new(
                "dimensions",
                Type::Map { value: Box::new(Type::String), max_entries: Some(30) },
                "The metric's dimensions, such as StreamName.",
            )
            .default(json!({})),
            Property::new("treatMissingData", Type::Enum(MISSING_DATA), "How periods without data are treated.")
                .default(json!("missing")),
            Property::new("alarmDescription", Type::String, "A description of the alarm.").default(json!("")),
            Property::new("actionsEnabled", Type::Bool, "Whether actions run on state changes.").default(json!(true)),
            named(actions("ARNs to notify when the alarm enters ALARM."), "alarmActions"),
            named(actions("ARNs to notify when the alarm returns to OK."), "okActions"),
            named(actions("ARNs to notify on INSUFFICIENT_DATA."), "insufficientDataActions"),
            Property::new("unit", Type::Enum(UNITS), "The unit of the metric."),
            crate::schema::tags_property("Tags on the alarm."),
        ],
        outputs: vec!["name", "arn"],
        name_property: "name",
    }
}

/// The CloudWatch metric alarm provider.
pub struct MetricAlarmProvider {
    aws: Arc<Aws>,
    schema: ResourceSchema,
}

impl MetricAlarmProvider {
    /// A provider that talks to AWS through `aws`.
    pub fn new(aws: Arc<Aws>) -> Self {
        MetricAlarmProvider { aws, schema: schema() }
    }
}

fn api<E, R>(operation: &str, err: aws_smithy_runtime_api::client::result::SdkError<E, R>) -> ProviderError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    crate::aws::api_error("cloudwatch", operation, err)
}

fn strings(p: &Props, k: &str) -> Option<Vec<String>> {
    p.get(k).and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
}

use crate::schema::string_map;

/// The stack-shaped properties of an alarm as CloudWatch describes it.
fn observed_inputs(a: &MetricAlarm) -> Props {
    let mut p = Props::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            p.insert(k.to_string(), v);
        }
    };
    put("name", a.alarm_name().map(|s| json!(s)));
    put("comparisonOperator", a.comparison_operator().map(|c| json!(c.as_str())));
    put("evaluationPeriods", a.evaluation_periods().map(|n| json!(n)));
    put("metricName", a.metric_name().map(|s| json!(s)));
    put("namespace", a.namespace().map(|s| json!(s)));
    put("period", a.period().map(|n| json!(n)));
    put("statistic", a.statistic().map(|s| json!(s.as_str())));
    put("extendedStatistic", a.extended_statistic().map(|s| json!(s)));
    put("threshold", a.threshold().map(|n| json!(n)));
    put("datapointsToAlarm", a.datapoints_to_alarm().map(|n| json!(n)));
    let dims: serde_json::Map<String, Value> = a
        .dimensions()
        .iter()
        .filter_map(|d| Some((d.name()?.to_string(), json!(d.value().unwrap_or_default()))))
        .collect();
    put("dimensions", Some(Value::Object(dims)));
    put("treatMissingData", a.treat_missing_data().map(|s| json!(s)));
    put("alarmDescription", a.alarm_description().map(|s| json!(s)));
    put("actionsEnabled", a.actions_enabled().map(|b| json!(b)));
    put("alarmActions", Some(json!(a.alarm_actions())));
    put("okActions", Some(json!(a.ok_actions())));
    put("insufficientDataActions", Some(json!(a.insufficient_data_actions())));
    put("unit", a.unit().map(|u| json!(u.as_str())));
    p
}

impl MetricAlarmProvider {
    /// Describes up to 100 alarms by name in one call (following pages).
    async fn describe(&self, names: &[String]) -> ProviderResult<BTreeMap<String, MetricAlarm>> {
        let client = self.aws.cloudwatch().await;
        let mut found = BTreeMap::new();
        let mut token: Option<String> = None;
        loop {
            self.aws.limit("cloudwatch:DescribeAlarms").await;
            let out = client
                .describe_alarms()
                .set_alarm_names(Some(names.to_vec()))
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| api("DescribeAlarms", e))?;
            for a in out.metric_alarms() {
                if let Some(n) = a.alarm_name() {
                    found.insert(n.to_string(), a.clone());
                }
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(found)
    }

    async fn read_tags(&self, arn: &str) -> ProviderResult<BTreeMap<String, String>> {
        let client = self.aws.cloudwatch().await;
        self.aws.limit("cloudwatch:ListTagsForResource").await;
        let out = client
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| api("ListTagsForResource", e))?;
        Ok(out
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
            .collect())
    }

    /// Sends the whole alarm definition: PutMetricAlarm replaces every field.
    /// `owner` is given on create only: PutMetricAlarm ignores tags when
    /// it updates an existing alarm, so updates tag with TagResource.
    async fn put(&self, props: &Props, owner: Option<&Ownership>) -> ProviderResult<()> {
        let client = self.aws.cloudwatch().await;
        let s = |k: &str| props.get(k).and_then(Value::as_str).map(str::to_string);
        let i = |k: &str| props.get(k).and_then(integer_of).and_then(|n| i32::try_from(n).ok());
        let mut dims = Vec::new();
        for (k, v) in string_map(props, "dimensions") {
            dims.push(Dimension::builder().name(k).value(v).build());
        }
        let mut req = client
            .put_metric_alarm()
            .set_alarm_name(s("name"))
            .set_comparison_operator(s("comparisonOperator").map(|c| ComparisonOperator::from(c.as_str())))
            .set_evaluation_periods(i("evaluationPeriods"))
            .set_metric_name(s("metricName"))
            .set_namespace(s("namespace"))
            .set_period(i("period"))
            .set_statistic(s("statistic").map(|c| Statistic::from(c.as_str())))
            .set_extended_statistic(s("extendedStatistic"))
            .set_threshold(props.get("threshold").and_then(Value::as_f64))
            .set_datapoints_to_alarm(i("datapointsToAlarm"))
            .set_dimensions(Some(dims))
            .set_treat_missing_data(s("treatMissingData"))
            .set_alarm_description(s("alarmDescription"))
            .set_actions_enabled(props.get("actionsEnabled").and_then(Value::as_bool))
            .set_alarm_actions(strings(props, "alarmActions"))
            .set_ok_actions(strings(props, "okActions"))
            .set_insufficient_data_actions(strings(props, "insufficientDataActions"))
            .set_unit(s("unit").map(|u| StandardUnit::from(u.as_str())));
        if let Some(owner) = owner {
            let mut all = string_map(props, "tags");
            all.extend(owner.tags());
            let tags = all.into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
            req = req.set_tags(Some(tags));
        }
        self.aws.limit("cloudwatch:PutMetricAlarm").await;
        req.send().await.map_err(|e| api("PutMetricAlarm", e))?;
        Ok(())
    }

    /// The alarm's ARN, read back after a write. CloudWatch reads can lag
    /// writes for a moment, so a miss is retried briefly before it counts.
    async fn arn_of(&self, name: &str) -> ProviderResult<String> {
        let mut delay = std::time::Duration::from_millis(100);
        for _ in 0..8 {
            let found = self.describe(&[name.to_string()]).await?;
            if let Some(arn) = found.get(name).and_then(|a| a.alarm_arn()) {
                return Ok(arn.to_string());
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(2));
        }
        Err(ProviderError::api("cloudwatch:DescribeAlarms", format!("alarm {name} was not found after it was written")))
    }
}

#[async_trait]
impl Provider for MetricAlarmProvider {
    fn schema(&self) -> &ResourceSchema {
        &self.schema
    }

    fn check(&self, props: &Props) -> Vec<Violation> {
        let mut out = Vec::new();
        let known = |k: &str| props.get(k).filter(|v| !is_unknown(v));
        match (props.get("statistic"), props.get("extendedStatistic")) {
            (Some(_), Some(_)) => out.push(Violation::new(
                key_path("extendedStatistic"),
                "statistic and extendedStatistic cannot both be set",
                Some("keep exactly one of them".into()),
            )),
            (None, None) => out.push(Violation::new(
                vec![],
                "one of statistic or extendedStatistic is required",
                Some(
                    "add `statistic: Sum` (or Average, Minimum, Maximum, SampleCount), or `extendedStatistic: p99`"
                        .into(),
                ),
            )),
            _ => {}
        }
        if let Some(p) = known("period").and_then(integer_of) {
            if !(p == 10 || p == 20 || p == 30 || p % 60 == 0) {
                out.push(Violation::new(
                    key_path("period"),
                    format!("period {p} is not allowed"),
                    Some("use 10, 20, 30 or a multiple of 60 seconds".into()),
                ));
            }
        }
        if let (Some(d), Some(e)) =
            (known("datapointsToAlarm").and_then(integer_of), known("evaluationPeriods").and_then(integer_of))
        {
            if d > e {
                out.push(Violation::new(
                    key_path("datapointsToAlarm"),
                    format!("datapointsToAlarm ({d}) is greater than evaluationPeriods ({e})"),
                    Some("datapointsToAlarm must be at most evaluationPeriods".into()),
                ));
            }
        }
        if let (Some(e), Some(p)) =
            (known("evaluationPeriods").and_then(integer_of), known("period").and_then(integer_of))
        {
            // CloudWatch looks back at most one day, or seven days for
            // periods of an hour or more.
            let limit = if p >= 3600 { 7 * 86_400 } else { 86_400 };
            // The product of two i64 always fits an i128, so the message
            // shows the true figure however large the inputs are.
            let lookback = i128::from(e) * i128::from(p);
            if lookback > limit {
                out.push(Violation::new(
                    key_path("evaluationPeriods"),
                    format!(
                        "evaluationPeriods × period is {lookback} seconds, more than CloudWatch evaluates ({limit})"
                    ),
                    Some("use fewer evaluation periods or a shorter period".into()),
                ));
            }
        }
        if let Some(x) = known("extendedStatistic").and_then(Value::as_str) {
            // Percentiles (p99), trimmed and winsorized means (tm90, wm90),
            // trimmed counts and sums (tc90, ts90), and the range forms
            // such as TM(10%:90%) or PR(:300).
            let lower = x.to_lowercase();
            let ok = ["tm", "wm", "tc", "ts", "pr", "p"].iter().find_map(|pre| lower.strip_prefix(pre)).is_some_and(
                |rest| {
                    rest.parse::<f64>().is_ok_and(|n| (0.0..=100.0).contains(&n))
                        || (rest.starts_with('(') && rest.ends_with(')'))
                },
            );
            if !ok {
                out.push(Violation::new(
                    key_path("extendedStatistic"),
                    format!("`{x}` is not a percentile"),
                    Some("use a percentile such as p90 or p99.9".into()),
                ));
            }
        }
        if let Some(name) = known("name").and_then(Value::as_str) {
            if name.is_empty() || name.len() > 255 {
                out.push(Violation::new(key_path("name"), "alarm names have 1 to 255 characters", None));
            }
        }
        if let Some(d) = known("alarmDescription").and_then(Value::as_str) {
            if d.len() > 1024 {
                out.push(Violation::new(
                    key_path("alarmDescription"),
                    "descriptions have at most 1024 characters",
                    None,
                ));
            }
        }
        if let Some(dims) = props.get("dimensions").and_then(Value::as_object) {
            for (k, v) in dims {
                if v.as_str().is_some_and(|s| s.is_empty()) {
                    out.push(Violation::new(
                        vec![PathSeg::Key("dimensions".into()), PathSeg::Key(k.clone())],
                        "dimension values cannot be empty",
                        None,
                    ));
                }
            }
        }
        out
    }

    fn normalize(&self, props: &Props) -> Props {
        let mut n = normalize_props(&self.schema.properties, props);
        // CloudWatch treats an absent datapointsToAlarm as "all evaluation
        // periods", and some endpoints report it back filled in.
        if !n.contains_key("datapointsToAlarm") {
            if let Some(e) = n.get("evaluationPeriods").cloned() {
                n.insert("datapointsToAlarm".into(), e);
            }
        }
        n
    }

    async fn read(&self, requests: &[ReadRequest]) -> Vec<ProviderResult<Option<Observed>>> {
        let names: Vec<String> = requests.iter().map(|r| r.id.clone()).collect();
        let batches = futures::future::join_all(names.chunks(NAMES_PER_DESCRIBE).map(|c| self.describe(c))).await;
        let mut found = BTreeMap::new();
        let mut failure: Option<String> = None;
        for b in batches {
            match b {
                Ok(m) => found.extend(m),
                Err(e) => failure = Some(e.to_string()),
            }
        }
        let one = |r: &ReadRequest| {
            let failure = failure.clone();
            let alarm = found.get(&r.id).cloned();
            let r = r.clone();
            async move {
                if let Some(f) = failure {
                    return Err(ProviderError::api("cloudwatch:DescribeAlarms", f));
                }
                let Some(a) = alarm else { return Ok(None) };
                let mut inputs = observed_inputs(&a);
                let arn = a.alarm_arn().unwrap_or_default().to_string();
                let owner = if r.needs_tags() { r.take_tags(self.read_tags(&arn).await?, &mut inputs) } else { None };
                let outputs = Props::from([("name".into(), json!(r.id)), ("arn".into(), json!(arn))]);
                Ok(Some(Observed { inputs, outputs, owner }))
            }
        };
        futures::future::join_all(requests.iter().map(one)).await
    }

    async fn create(&self, props: &Props, owner: &Ownership, progress: &dyn Progress) -> ProviderResult<Created> {
        let name = props
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| ProviderError::Invalid("name is required".into()))?;
        // PutMetricAlarm is an upsert: without this check a create would
        // silently overwrite an alarm that someone else owns.
        progress.status("checking that the name is free");
        if !self.describe(&[name.to_string()]).await?.is_empty() {
            return Err(ProviderError::AlreadyExists { kind: "CloudWatch alarm", name: name.to_string() });
        }
        self.put(props, Some(owner)).await?;
        let arn = self.arn_of(name).await.map_err(|e| ProviderError::Partial {
            id: name.to_string(),
            outputs: Props::from([("name".into(), json!(name))]),
            source: Box::new(e),
        })?;
        Ok(Created {
            id: name.to_string(),
            outputs: Props::from([("name".into(), json!(name)), ("arn".into(), json!(arn))]),
        })
    }

    async fn update(
        &self,
        id: &str,
        old: &Props,
        new: &Props,
        changed: &BTreeSet<String>,
        progress: &dyn Progress,
    ) -> ProviderResult<Props> {
        let client = self.aws.cloudwatch().await;
        let needs_put = changed
            .iter()
            .any(|c| c != "tags" && self.schema.property(c).is_none_or(|p| p.change != Change::StateOnly));
        if needs_put {
            progress.status("writing the alarm");
            self.put(new, None).await?;
        }
        let arn = self.arn_of(id).await?;
        if changed.contains("tags") {
            let (from, to) = (string_map(old, "tags"), string_map(new, "tags"));
            let removed: Vec<String> = from.keys().filter(|k| !to.contains_key(*k)).cloned().collect();
            if !removed.is_empty() {
                self.aws.limit("cloudwatch:UntagResource").await;
                client
                    .untag_resource()
                    .resource_arn(&arn)
                    .set_tag_keys(Some(removed))
                    .send()
                    .await
                    .map_err(|e| api("UntagResource", e))?;
            }
            let mut added = Vec::new();
            for (k, v) in to.iter().filter(|(k, v)| from.get(*k) != Some(*v)) {
                added.push(Tag::builder().key(k).value(v).build());
            }
            if !added.is_empty() {
                self.aws.limit("cloudwatch:TagResource").await;
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

    async fn delete(&self, id: &str, _props: &Props, progress: &dyn Progress) -> ProviderResult<()> {
        let client = self.aws.cloudwatch().await;
        progress.status("deleting");
        // DeleteAlarms succeeds for names that do not exist, so a delete
        // that is retried after a crash is harmless.
        self.aws.limit("cloudwatch:DeleteAlarms").await;
        client.delete_alarms().alarm_names(id).send().await.map_err(|e| api("DeleteAlarms", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::AwsSettings;

    fn alarm(evaluation_periods: i64, period: i64) -> Props {
        Props::from([
            ("name".into(), json!("a")),
            ("comparisonOperator".into(), json!("GreaterThanThreshold")),
            ("evaluationPeriods".into(), json!(evaluation_periods)),
            ("metricName".into(), json!("IncomingRecords")),
            ("namespace".into(), json!("AWS/Kinesis")),
            ("period".into(), json!(period)),
            ("statistic".into(), json!("Sum")),
            ("threshold".into(), json!(1)),
        ])
    }

    #[test]
    fn huge_evaluation_periods_report_the_true_lookback_not_a_negative_one() {
        // Building the provider touches no network.
        let provider = MetricAlarmProvider::new(Aws::new(AwsSettings::default()));
        let violations = provider.check(&alarm(i64::MAX, 60));
        let v = violations.iter().find(|v| v.message.contains("evaluationPeriods × period")).unwrap();
        assert!(v.message.contains("553402322211286548420 seconds"), "{}", v.message);
        assert!(!v.message.contains('-'), "{}", v.message);
        let fine = provider.check(&alarm(5, 60));
        assert!(fine.is_empty(), "{:?}", fine.iter().map(|v| &v.message).collect::<Vec<_>>());
    }
}
