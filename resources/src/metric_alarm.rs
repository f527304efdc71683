//! `aws:cloudwatch:MetricAlarm`: a CloudWatch alarm on one metric.

use crate::aws::Aws;
use crate::provider::{Created, Observed, Ownership, Progress, Provider, ProviderError, ProviderResult, ReadRequest};
use crate::schema::{
    Change, PathSeg, Property, Props, ResourceSchema, Type, Violation, integer_of, is_unknown, key_path,
    normalize_props,
};
use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, Metric, MetricAlarm, MetricDataQuery, MetricStat, StandardUnit, Statistic, Tag,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The type token.
pub const TOKEN: &str = "aws:cloudwatch:MetricAlarm";

/// DescribeAlarms accepts at most this many names in one call.
const NAMES_PER_DESCRIBE: usize = 100;

const OPERATORS: &[&str] = &[
    "GreaterThanOrEqualToThreshold",
    "GreaterThanThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
    "LessThanLowerOrGreaterThanUpperThreshold",
    "LessThanLowerThreshold",
    "GreaterThanUpperThreshold",
];

/// The operators of anomaly-detection alarms, which compare with a band
/// named by `thresholdMetricId` instead of a fixed threshold.
const BAND_OPERATORS: &[&str] =
    &["LessThanLowerOrGreaterThanUpperThreshold", "LessThanLowerThreshold", "GreaterThanUpperThreshold"];

/// The properties that describe a single metric, which an alarm on
/// `metricQueries` must leave out.
const SINGLE_METRIC: &[&str] = &["metricName", "namespace", "period", "statistic", "extendedStatistic", "unit"];
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
            Property::new(
                "name",
                Type::String,
                "The alarm's name, unique in the account and region. Generated from the logical name when absent.",
            )
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
                "The metric to watch, such as WriteProvisionedThroughputExceeded; not with metricQueries.",
            ),
            Property::new("namespace", Type::String, "The metric's namespace, such as AWS/Kinesis."),
            Property::new(
                "period",
                Type::Integer { min: Some(10), max: Some(86_400) },
                "The length of a period in seconds: 10, 20, 30 or a multiple of 60.",
            ),
            Property::new(
                "statistic",
                Type::Enum(STATISTICS),
                "The statistic to apply; exclusive with extendedStatistic.",
            ),
            Property::new("extendedStatistic", Type::String, "A percentile such as p99; exclusive with statistic."),
            Property::new(
                "threshold",
                Type::Number,
                "The value the statistic is compared with; not with an anomaly-detection operator.",
            ),
            Property::new(
                "thresholdMetricId",
                Type::String,
                "The id of the ANOMALY_DETECTION_BAND query an anomaly-detection alarm compares with.",
            ),
            Property::new(
                "evaluateLowSampleCountPercentiles",
                Type::Enum(&["evaluate", "ignore"]),
                "Whether a percentile alarm changes state when too few data points make the percentile meaningless.",
            ),
            Property::new(
                "metricQueries",
                Type::List { item: Box::new(Type::Object(metric_query())), set: true, max_items: Some(20) },
                "Metrics and math expressions to alarm on, instead of metricName and its statistic.",
            )
            .default(json!([])),
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
            crate::schema::region_property(),
        ],
        outputs: vec!["name", "arn"],
        name_property: "name",
        not_yet: vec![
            (
                "evaluationCriteria",
                "PromQL alarms are new in CloudWatch, and LocalStack, which rinfra is tested against, lacks them",
            ),
            ("evaluationInterval", "it goes with evaluationCriteria (PromQL alarms)"),
            ("warmUpConfiguration", "alarm warm-up periods are new in CloudWatch, and LocalStack lacks them"),
        ],
    }
}

/// The properties of one entry of `metricQueries`.
fn metric_query() -> Vec<Property> {
    vec![
        Property::new("id", Type::String, "A short id, starting with a lower-case letter, unique in the alarm.")
            .required(),
        Property::new("expression", Type::String, "A metric math expression; exclusive with metric."),
        Property::new("label", Type::String, "A label for the result."),
        Property::new(
            "metric",
            Type::Object(vec![
                Property::new("metricName", Type::String, "The metric's name.").required(),
                Property::new("namespace", Type::String, "The metric's namespace."),
                Property::new(
                    "period",
                    Type::Integer { min: Some(1), max: None },
                    "The period in seconds: 10, 20, 30 or a multiple of 60.",
                )
                .required(),
                Property::new("stat", Type::String, "The statistic, such as Sum or p90.").required(),
                Property::new("unit", Type::Enum(UNITS), "The unit of the metric."),
                Property::new(
                    "dimensions",
                    Type::Map { value: Box::new(Type::String), max_entries: Some(30) },
                    "The metric's dimensions.",
                ),
            ]),
            "A metric to read; exclusive with expression.",
        ),
        Property::new("period", Type::Integer { min: Some(1), max: None }, "The period of an expression's result."),
        Property::new("returnData", Type::Bool, "Whether this query's result is what the alarm watches."),
        Property::new("accountId", Type::String, "The account the metric is in, for cross-account alarms."),
    ]
}

/// Whether `x` is an extended statistic as CloudWatch documents them:
/// `p99.9`; `tm90`, `wm90`, `tc90`, `ts90` (the upper bound of a
/// percentage range); `IQM`; and the range forms `TM(10%:90%)`,
/// `TM(150:1000)` with one end optional, and `PR(100:2000)`.
pub fn is_extended_statistic(x: &str) -> bool {
    let percent = |s: &str| s.parse::<f64>().is_ok_and(|n| (0.0..=100.0).contains(&n)) && !s.starts_with('+');
    let absolute = |s: &str| s.parse::<f64>().is_ok_and(f64::is_finite) && !s.starts_with('+');
    let lower = x.to_ascii_lowercase();
    if lower == "iqm" {
        return true;
    }
    if let Some(range) = lower.strip_prefix("pr(").and_then(|r| r.strip_suffix(')')) {
        // Percentile rank: the bounds are values of the metric.
        let Some((lo, hi)) = range.split_once(':') else { return false };
        return (!lo.is_empty() || !hi.is_empty())
            && (lo.is_empty() || absolute(lo))
            && (hi.is_empty() || absolute(hi));
    }
    for pre in ["tm", "wm", "tc", "ts"] {
        let Some(rest) = lower.strip_prefix(pre) else { continue };
        if let Some(range) = rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
            let Some((lo, hi)) = range.split_once(':') else { return false };
            if lo.is_empty() && hi.is_empty() {
                return false;
            }
            // Both ends are percentages, or both are values of the metric.
            let percents = [lo, hi].iter().filter(|s| !s.is_empty()).all(|s| s.ends_with('%'));
            let bound =
                |s: &str| s.is_empty() || if percents { s.strip_suffix('%').is_some_and(percent) } else { absolute(s) };
            return bound(lo) && bound(hi);
        }
        return percent(rest);
    }
    lower.strip_prefix('p').is_some_and(percent)
}

/// The rules CloudWatch applies to an alarm on `metricQueries`.
fn check_queries(props: &Props, queries: &[Value], out: &mut Vec<Violation>) {
    for k in SINGLE_METRIC {
        if props.contains_key(*k) {
            out.push(Violation::new(
                key_path(k),
                format!("{k} cannot be set with metricQueries"),
                Some("describe the metric inside `metricQueries` instead".into()),
            ));
        }
    }
    if props.get("dimensions").and_then(Value::as_object).is_some_and(|d| !d.is_empty()) {
        out.push(Violation::new(
            key_path("dimensions"),
            "dimensions cannot be set with metricQueries",
            Some("put them under the query's `metric.dimensions`".into()),
        ));
    }
    let at = |i: usize, k: &str| {
        let mut p = vec![PathSeg::Key("metricQueries".into()), PathSeg::Index(i)];
        if !k.is_empty() {
            p.push(PathSeg::Key(k.into()));
        }
        p
    };
    let mut ids = BTreeSet::new();
    for (i, q) in queries.iter().enumerate() {
        let Some(q) = q.as_object() else { continue };
        if let Some(id) = q.get("id").and_then(Value::as_str).filter(|id| !is_unknown(&json!(id))) {
            let mut chars = id.chars();
            let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                out.push(Violation::new(
                    at(i, "id"),
                    format!("query id `{id}` is not valid"),
                    Some("start with a lower-case letter; use letters, digits and `_`".into()),
                ));
            } else if !ids.insert(id.to_string()) {
                out.push(Violation::new(at(i, "id"), format!("query id `{id}` is used twice"), None));
            }
        }
        match (q.contains_key("expression"), q.contains_key("metric")) {
            (true, true) => {
                out.push(Violation::new(at(i, "expression"), "a query has an expression or a metric, not both", None))
            }
            (false, false) => out.push(Violation::new(
                at(i, ""),
                "a query needs an `expression` or a `metric`",
                Some("add `metric:` with metricName, namespace, period and stat, or `expression:`".into()),
            )),
            _ => {}
        }
        let metric = q.get("metric").and_then(Value::as_object);
        if let Some(p) = metric.and_then(|m| m.get("period")).and_then(integer_of) {
            if !(p == 10 || p == 20 || p == 30 || p % 60 == 0) {
                let mut path = at(i, "metric");
                path.push(PathSeg::Key("period".into()));
                out.push(Violation::new(
                    path,
                    format!("period {p} is not allowed"),
                    Some("use 10, 20, 30 or a multiple of 60 seconds".into()),
                ));
            }
        }
        if let Some(stat) = metric.and_then(|m| m.get("stat")).and_then(Value::as_str) {
            if !STATISTICS.contains(&stat) && !is_extended_statistic(stat) && !is_unknown(&json!(stat)) {
                let mut path = at(i, "metric");
                path.push(PathSeg::Key("stat".into()));
                out.push(Violation::new(
                    path,
                    format!("`{stat}` is not a statistic"),
                    Some(format!("use {} or an extended statistic such as p99", STATISTICS.join(", "))),
                ));
            }
        }
    }
    if let Some(t) = props.get("thresholdMetricId").and_then(Value::as_str) {
        if !is_unknown(&json!(t)) && !ids.is_empty() && !ids.contains(t) {
            out.push(Violation::new(
                key_path("thresholdMetricId"),
                format!("thresholdMetricId `{t}` names no query"),
                Some(format!("query ids: {}", ids.into_iter().collect::<Vec<_>>().join(", "))),
            ));
        }
    }
}

/// `metricQueries` as the API takes them.
fn queries_to_api(props: &Props) -> Option<Vec<MetricDataQuery>> {
    let queries = props.get("metricQueries").and_then(Value::as_array)?;
    let mut out = Vec::new();
    for q in queries.iter().filter_map(Value::as_object) {
        let q: Props = q.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let s = |p: &Props, k: &str| p.get(k).and_then(Value::as_str).map(str::to_string);
        let i = |p: &Props, k: &str| p.get(k).and_then(integer_of).and_then(|n| i32::try_from(n).ok());
        let metric_stat = q.get("metric").and_then(Value::as_object).map(|m| {
            let m: Props = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            let dims = string_map(&m, "dimensions")
                .into_iter()
                .map(|(k, v)| Dimension::builder().name(k).value(v).build())
                .collect();
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .set_metric_name(s(&m, "metricName"))
                        .set_namespace(s(&m, "namespace"))
                        .set_dimensions(Some(dims))
                        .build(),
                )
                .set_period(i(&m, "period"))
                .set_stat(s(&m, "stat"))
                .set_unit(s(&m, "unit").map(|u| StandardUnit::from(u.as_str())))
                .build()
        });
        out.push(
            MetricDataQuery::builder()
                .set_id(s(&q, "id"))
                .set_expression(s(&q, "expression"))
                .set_label(s(&q, "label"))
                .set_metric_stat(metric_stat)
                .set_period(i(&q, "period"))
                .set_return_data(q.get("returnData").and_then(Value::as_bool))
                .set_account_id(s(&q, "accountId"))
                .build(),
        );
    }
    Some(out)
}

/// `metricQueries` as the stack writes them, from the API's form.
fn queries_from_api(queries: &[MetricDataQuery]) -> Value {
    let mut out = Vec::new();
    for q in queries {
        let mut m = serde_json::Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(k.to_string(), v);
            }
        };
        put("id", q.id().map(|s| json!(s)));
        put("expression", q.expression().map(|s| json!(s)));
        put("label", q.label().map(|s| json!(s)));
        put("period", q.period().map(|n| json!(n)));
        put("returnData", q.return_data().map(|b| json!(b)));
        put("accountId", q.account_id().map(|s| json!(s)));
        if let Some(ms) = q.metric_stat() {
            let mut metric = serde_json::Map::new();
            if let Some(mm) = ms.metric() {
                if let Some(n) = mm.metric_name() {
                    metric.insert("metricName".into(), json!(n));
                }
                if let Some(n) = mm.namespace() {
                    metric.insert("namespace".into(), json!(n));
                }
                let dims: serde_json::Map<String, Value> = mm
                    .dimensions()
                    .iter()
                    .filter_map(|d| Some((d.name()?.to_string(), json!(d.value().unwrap_or_default()))))
                    .collect();
                if !dims.is_empty() {
                    metric.insert("dimensions".into(), Value::Object(dims));
                }
            }
            if let Some(p) = ms.period() {
                metric.insert("period".into(), json!(p));
            }
            if let Some(st) = ms.stat() {
                metric.insert("stat".into(), json!(st));
            }
            if let Some(u) = ms.unit() {
                metric.insert("unit".into(), json!(u.as_str()));
            }
            m.insert("metric".into(), Value::Object(metric));
        }
        out.push(Value::Object(m));
    }
    Value::Array(out)
}

/// The CloudWatch metric alarm provider.
pub struct MetricAlarmProvider {
    aws: Arc<Aws>,
    schema: ResourceSchema,
    regional: crate::aws::Regional<MetricAlarmProvider>,
}

impl MetricAlarmProvider {
    /// A provider that talks to AWS through `aws`.
    pub fn new(aws: Arc<Aws>) -> Self {
        MetricAlarmProvider { aws, schema: schema(), regional: crate::aws::Regional::default() }
    }

    /// The provider for the region `props` name, when it is not this one's.
    fn elsewhere(&self, props: &Props) -> Option<Arc<MetricAlarmProvider>> {
        self.regional.get(&self.aws, crate::aws::region_of(props), MetricAlarmProvider::new)
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
    put("thresholdMetricId", a.threshold_metric_id().map(|s| json!(s)));
    put("evaluateLowSampleCountPercentiles", a.evaluate_low_sample_count_percentile().map(|s| json!(s)));
    put("metricQueries", Some(queries_from_api(a.metrics())));
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
            .set_unit(s("unit").map(|u| StandardUnit::from(u.as_str())))
            .set_threshold_metric_id(s("thresholdMetricId"))
            .set_evaluate_low_sample_count_percentile(s("evaluateLowSampleCountPercentiles"))
            .set_metrics(queries_to_api(props).filter(|q| !q.is_empty()));
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
        let mut out: Vec<Violation> = crate::schema::region_violation(props).into_iter().collect();
        let known = |k: &str| props.get(k).filter(|v| !is_unknown(v));
        let queries = props.get("metricQueries").and_then(Value::as_array).filter(|q| !q.is_empty());
        if let Some(queries) = queries {
            check_queries(props, queries, &mut out);
        }
        let operator = known("comparisonOperator").and_then(Value::as_str);
        let band = operator.is_some_and(|o| BAND_OPERATORS.contains(&o));
        match (band, props.contains_key("threshold"), props.contains_key("thresholdMetricId")) {
            (true, true, _) => out.push(Violation::new(
                key_path("threshold"),
                "an anomaly-detection alarm compares with a band, not a threshold",
                Some("remove `threshold`, and set `thresholdMetricId` to the band's query id".into()),
            )),
            (true, false, false) => out.push(Violation::new(
                key_path("comparisonOperator"),
                format!("{} needs `thresholdMetricId`", operator.unwrap_or_default()),
                Some("set `thresholdMetricId` to the id of an ANOMALY_DETECTION_BAND query".into()),
            )),
            (false, _, true) if operator.is_some() => out.push(Violation::new(
                key_path("thresholdMetricId"),
                "thresholdMetricId is only for anomaly-detection operators",
                Some(format!("use one of {}, or remove it", BAND_OPERATORS.join(", "))),
            )),
            (false, false, false) if operator.is_some() => out.push(Violation::new(
                vec![],
                "missing required property `threshold`",
                Some("add `threshold:` (the value the statistic is compared with)".into()),
            )),
            _ => {}
        }
        if queries.is_none() {
            for k in ["metricName", "namespace", "period"] {
                if !props.contains_key(k) {
                    out.push(Violation::new(
                        vec![],
                        format!("missing required property `{k}`"),
                        Some(format!("add `{k}:`, or describe the metric with `metricQueries`")),
                    ));
                }
            }
        }
        match (props.get("statistic"), props.get("extendedStatistic")) {
            (Some(_), Some(_)) => out.push(Violation::new(
                key_path("extendedStatistic"),
                "statistic and extendedStatistic cannot both be set",
                Some("keep exactly one of them".into()),
            )),
            (None, None) if queries.is_none() => out.push(Violation::new(
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
            if !is_extended_statistic(x) {
                out.push(Violation::new(
                    key_path("extendedStatistic"),
                    format!("`{x}` is not an extended statistic"),
                    Some("use a percentile such as p99.9, a trimmed mean such as tm90 or TM(10%:90%), PR(100:2000) or IQM".into()),
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
        crate::aws::read_by_region(requests, |region, group| async move {
            match self.regional.get(&self.aws, region, MetricAlarmProvider::new) {
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
        self.create_here(props, owner, progress).await
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
        self.update_here(id, old, new, changed, progress).await
    }

    async fn delete(&self, id: &str, props: &Props, progress: &dyn Progress) -> ProviderResult<()> {
        if let Some(p) = self.elsewhere(props) {
            return p.delete(id, props, progress).await;
        }
        self.delete_here(id, progress).await
    }
}

impl MetricAlarmProvider {
    async fn read_here(&self, requests: &[ReadRequest]) -> Vec<ProviderResult<Option<Observed>>> {
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

    async fn create_here(&self, props: &Props, owner: &Ownership, progress: &dyn Progress) -> ProviderResult<Created> {
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

    async fn update_here(
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
            let (removed, set) = crate::schema::tag_changes(old, new);
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
            let added: Vec<Tag> = set.into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
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

    async fn delete_here(&self, id: &str, progress: &dyn Progress) -> ProviderResult<()> {
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
    fn every_documented_extended_statistic_is_accepted_and_malformed_ones_are_not() {
        for ok in [
            "p99",
            "p99.9",
            "p0",
            "p100",
            "tm90",
            "wm99",
            "tc90",
            "ts90",
            "TM(10%:90%)",
            "TM(150:1000)",
            "TM(:95%)",
            "WM(10%:)",
            "TC(5%:95%)",
            "TS(:300)",
            "PR(100:2000)",
            "PR(:300)",
            "PR(100:)",
            "IQM",
            "iqm",
        ] {
            assert!(is_extended_statistic(ok), "{ok} should be accepted");
        }
        for bad in
            ["pr50", "p(1)", "tm(abc)", "TM()", "TC(:)", "p101", "p", "tm", "PR()", "TM(10%:900)", "q99", "p-1", "IQM2"]
        {
            assert!(!is_extended_statistic(bad), "{bad} should be refused");
        }
    }

    fn messages(props: &Props) -> Vec<String> {
        let provider = MetricAlarmProvider::new(Aws::new(AwsSettings::default()));
        provider.check(props).into_iter().map(|v| v.message).collect()
    }

    fn anomaly() -> Props {
        Props::from([
            ("name".into(), json!("a")),
            ("comparisonOperator".into(), json!("GreaterThanUpperThreshold")),
            ("evaluationPeriods".into(), json!(2)),
            ("thresholdMetricId".into(), json!("e1")),
            (
                "metricQueries".into(),
                json!([
                    {"id": "e1", "expression": "ANOMALY_DETECTION_BAND(m1)", "returnData": true},
                    {"id": "m1", "returnData": true, "metric": {
                        "metricName": "CPUUtilization", "namespace": "AWS/EC2", "period": 120, "stat": "Average"}},
                ]),
            ),
        ])
    }

    #[test]
    fn an_anomaly_detection_alarm_needs_no_threshold_metric_or_statistic() {
        assert!(messages(&anomaly()).is_empty(), "{:?}", messages(&anomaly()));
    }

    #[test]
    fn metric_queries_rules_are_checked_offline() {
        let mut p = anomaly();
        p.insert("threshold".into(), json!(1));
        p.insert("metricName".into(), json!("X"));
        p.insert("thresholdMetricId".into(), json!("nope"));
        let m = messages(&p);
        assert!(m.iter().any(|m| m.contains("not a threshold")), "{m:?}");
        assert!(m.iter().any(|m| m.contains("metricName cannot be set with metricQueries")), "{m:?}");
        assert!(m.iter().any(|m| m.contains("`nope` names no query")), "{m:?}");
        let mut p = anomaly();
        p.insert(
            "metricQueries".into(),
            json!([{"id": "E1", "expression": "m1"}, {"id": "m1"}, {"id": "m1", "expression": "1", "metric": {}}]),
        );
        let m = messages(&p);
        assert!(m.iter().any(|m| m.contains("`E1` is not valid")), "{m:?}");
        assert!(m.iter().any(|m| m.contains("needs an `expression` or a `metric`")), "{m:?}");
        assert!(m.iter().any(|m| m.contains("`m1` is used twice")), "{m:?}");
        assert!(m.iter().any(|m| m.contains("not both")), "{m:?}");
        let mut plain = alarm(1, 60);
        plain.remove("threshold");
        plain.remove("period");
        let m = messages(&plain);
        assert!(m.iter().any(|m| m.contains("`threshold`")) && m.iter().any(|m| m.contains("`period`")), "{m:?}");
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
