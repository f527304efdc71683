//! The connection to AWS: configuration, clients, timeouts, retries, and a
//! count of every API call made.

use aws_config::BehaviorVersion;
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::OnceCell;

/// Where and how to reach AWS, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    /// Calls per second by operation (`kinesis:CreateStream`), replacing
    /// the defaults; a rate of 0 lifts the limit.
    pub rates: BTreeMap<String, f64>,
    /// The region; when absent the standard environment and profile chain
    /// decides, and `us-east-1` is the last resort.
    pub region: Option<String>,
    /// An endpoint that replaces every service's, such as a LocalStack URL.
    /// `AWS_ENDPOINT_URL` is honoured by the SDK itself when this is unset.
    pub endpoint_url: Option<String>,
    /// The named profile; `AWS_PROFILE` is honoured when unset.
    pub profile: Option<String>,
}

/// Counts API calls by `service:Operation`, one per attempt, retries included.
#[derive(Debug, Default)]
pub struct CallStats {
    calls: Mutex<BTreeMap<String, u64>>,
}

impl CallStats {
    /// Records one attempt of `operation`.
    pub fn record(&self, operation: &str) {
        if let Ok(mut m) = self.calls.lock() {
            *m.entry(operation.to_string()).or_insert(0) += 1;
        }
    }

    /// A copy of the counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.calls.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// The number of attempts so far.
    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }
}

#[derive(Debug)]
struct CountCalls(Arc<CallStats>);

impl Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "rinfra-count-calls"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let name = cfg
            .load::<Metadata>()
            .map(|m| format!("{}:{}", m.service().to_lowercase(), m.name()))
            .unwrap_or_else(|| "unknown".to_string());
        self.0.record(&name);
        Ok(())
    }
}

/// AWS's documented per-account request quotas, in calls per second, for
/// the operations rinfra makes. Staying under them keeps a large stack from
/// being throttled, which costs far more in retries and backoff.
pub const DEFAULT_RATES: &[(&str, f64)] = &[
    ("kinesis:DescribeStreamSummary", 20.0),
    ("kinesis:CreateStream", 5.0),
    ("kinesis:DeleteStream", 5.0),
    ("kinesis:AddTagsToStream", 5.0),
    ("kinesis:RemoveTagsFromStream", 5.0),
    ("kinesis:ListTagsForStream", 5.0),
    ("kinesis:IncreaseStreamRetentionPeriod", 5.0),
    ("kinesis:DecreaseStreamRetentionPeriod", 5.0),
    ("kinesis:EnableEnhancedMonitoring", 5.0),
    ("kinesis:DisableEnhancedMonitoring", 5.0),
    ("kinesis:UpdateShardCount", 5.0),
    ("kinesis:UpdateStreamMode", 5.0),
    ("kinesis:StartStreamEncryption", 5.0),
    ("kinesis:StopStreamEncryption", 5.0),
    ("cloudwatch:DescribeAlarms", 9.0),
    ("cloudwatch:PutMetricAlarm", 3.0),
    ("cloudwatch:DeleteAlarms", 3.0),
    ("cloudwatch:ListTagsForResource", 10.0),
    ("cloudwatch:TagResource", 10.0),
    ("cloudwatch:UntagResource", 10.0),
];

/// How much looser the limits are against an endpoint on this machine,
/// where the account quotas do not apply.
pub const LOCAL_RATE_FACTOR: f64 = 50.0;

/// The smallest rate `--api-rate` accepts besides 0, in calls per second:
/// one call every 1000 seconds. Anything slower is surely a typo, and far
/// smaller rates ask for waits longer than a `Duration` can hold.
pub const MIN_RATE: f64 = 1e-3;

/// Checks a rate given for `operation`: 0 (no limit) or a finite number of
/// calls per second no smaller than [`MIN_RATE`]. The error says why not.
pub fn check_rate(operation: &str, rate: f64) -> Result<(), String> {
    if !rate.is_finite() || rate < 0.0 {
        return Err(format!("the rate of {operation} must be a number of calls per second, 0 or more; got {rate}"));
    }
    if rate > 0.0 && rate < MIN_RATE {
        return Err(format!(
            "the rate of {operation} is {rate} calls per second; the smallest is {MIN_RATE}, and 0 lifts the limit"
        ));
    }
    Ok(())
}

/// The longest single sleep of a bucket. A slower rate just sleeps again,
/// so this only keeps the wait far inside what a `Duration` and the timer
/// can hold.
const MAX_WAIT: Duration = Duration::from_secs(3600);

#[derive(Debug)]
struct Bucket {
    rate: f64,
    tokens: f64,
    last: tokio::time::Instant,
}

/// Client-side token buckets, one per operation. A bucket holds one
/// second of calls, so short bursts go out at once.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<BTreeMap<String, Bucket>>,
}

impl RateLimiter {
    /// Buckets for the default rates, overridden by `rates`, scaled by
    /// `factor`. A rate of 0 means no limit.
    pub fn new(rates: &BTreeMap<String, f64>, factor: f64) -> Self {
        let mut all: BTreeMap<String, f64> = DEFAULT_RATES.iter().map(|(k, v)| (k.to_string(), v * factor)).collect();
        all.extend(rates.iter().map(|(k, v)| (k.clone(), *v)));
        let now = tokio::time::Instant::now();
        let buckets = all
            .into_iter()
            .filter(|(_, r)| *r > 0.0)
            .map(|(k, rate)| (k, Bucket { rate, tokens: rate.max(1.0), last: now }))
            .collect();
        RateLimiter { buckets: Mutex::new(buckets) }
    }

    /// Waits until a call of `operation` may go out.
    pub async fn acquire(&self, operation: &str) {
        loop {
            let wait = {
                let Ok(mut buckets) = self.buckets.lock() else { return };
                let Some(b) = buckets.get_mut(operation) else { return };
                let now = tokio::time::Instant::now();
                b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * b.rate).min(b.rate.max(1.0));
                b.last = now;
                if b.tokens >= 1.0 {
                    b.tokens -= 1.0;
                    return;
                }
                // A tiny rate gives a wait too large for a Duration; the
                // conversion is checked and the wait capped rather than
                // allowed to panic.
                Duration::try_from_secs_f64((1.0 - b.tokens) / b.rate).map_or(MAX_WAIT, |w| w.min(MAX_WAIT))
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// Whether `url` points at this machine.
pub fn is_local_endpoint(url: &str) -> bool {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let name = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host).trim_matches(['[', ']']);
    name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Lazily built AWS clients shared by every provider.
///
/// Nothing is loaded and no connection is made until a provider makes its
/// first call, so validating a stack never needs credentials or a network.
#[derive(Debug)]
pub struct Aws {
    settings: AwsSettings,
    config: OnceCell<aws_types::SdkConfig>,
    kinesis: OnceCell<aws_sdk_kinesis::Client>,
    cloudwatch: OnceCell<aws_sdk_cloudwatch::Client>,
    s3: OnceCell<aws_sdk_s3::Client>,
    sts: OnceCell<aws_sdk_sts::Client>,
    sns: OnceCell<aws_sdk_sns::Client>,
    sqs: OnceCell<aws_sdk_sqs::Client>,
    stats: Arc<CallStats>,
    limiter: RateLimiter,
    /// The same connection in other regions, for resources whose provider
    /// names one; they share the call counter.
    regional: Mutex<BTreeMap<String, Arc<Aws>>>,
}

impl Aws {
    /// Prepares clients for `settings` without touching the network.
    pub fn new(settings: AwsSettings) -> Arc<Aws> {
        let endpoint = settings.endpoint_url.clone().or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
        let factor = if endpoint.as_deref().is_some_and(is_local_endpoint) { LOCAL_RATE_FACTOR } else { 1.0 };
        let limiter = RateLimiter::new(&settings.rates, factor);
        Arc::new(Aws {
            limiter,
            settings,
            config: OnceCell::new(),
            kinesis: OnceCell::new(),
            cloudwatch: OnceCell::new(),
            s3: OnceCell::new(),
            sts: OnceCell::new(),
            sns: OnceCell::new(),
            sqs: OnceCell::new(),
            stats: Arc::new(CallStats::default()),
            regional: Mutex::new(BTreeMap::new()),
        })
    }

    /// The region these clients use when the settings name one.
    pub fn region(&self) -> Option<&str> {
        self.settings.region.as_deref()
    }

    /// These clients in `region`: `None` when they already are there (or
    /// no region is asked for), else a connection built once per region,
    /// with its own rate limits (AWS's quotas are per region) and the
    /// shared call counter.
    pub fn in_region(&self, region: Option<&str>) -> Option<Arc<Aws>> {
        let region = region?;
        if self.settings.region.as_deref() == Some(region) {
            return None;
        }
        // A poisoned lock still holds a sound map: entries are inserted
        // whole. Going on is right; falling back to this region is not.
        let mut regional = self.regional.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let made = regional.entry(region.to_string()).or_insert_with(|| {
            let settings = AwsSettings { region: Some(region.to_string()), ..self.settings.clone() };
            let factor = if self.limiter_is_local() { LOCAL_RATE_FACTOR } else { 1.0 };
            Arc::new(Aws {
                limiter: RateLimiter::new(&settings.rates, factor),
                settings,
                config: OnceCell::new(),
                kinesis: OnceCell::new(),
                cloudwatch: OnceCell::new(),
                s3: OnceCell::new(),
                sts: OnceCell::new(),
                sns: OnceCell::new(),
                sqs: OnceCell::new(),
                stats: self.stats.clone(),
                regional: Mutex::new(BTreeMap::new()),
            })
        });
        Some(made.clone())
    }

    fn limiter_is_local(&self) -> bool {
        let endpoint = self.settings.endpoint_url.clone().or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
        endpoint.as_deref().is_some_and(is_local_endpoint)
    }

    /// Waits until the client-side rate limit lets `operation` go out.
    pub async fn limit(&self, operation: &str) {
        self.limiter.acquire(operation).await;
    }

    /// The call counter.
    pub fn stats(&self) -> &CallStats {
        &self.stats
    }

    async fn config(&self) -> &aws_types::SdkConfig {
        self.config
            .get_or_init(|| async {
                // The default region chain ends with the EC2 metadata
                // service, which costs seconds off EC2; we stop at the
                // environment and profile, then fall back to us-east-1.
                let region = RegionProviderChain::first_try(self.settings.region.clone().map(aws_config::Region::new))
                    .or_else(aws_config::environment::EnvironmentVariableRegionProvider::new())
                    .or_else(aws_config::profile::ProfileFileRegionProvider::new())
                    .or_else(aws_config::Region::from_static("us-east-1"));
                let mut loader = aws_config::defaults(BehaviorVersion::latest())
                    .region(region)
                    .retry_config(RetryConfig::standard().with_max_attempts(5))
                    .timeout_config(
                        TimeoutConfig::builder()
                            .connect_timeout(Duration::from_secs(5))
                            .operation_attempt_timeout(Duration::from_secs(30))
                            .operation_timeout(Duration::from_secs(120))
                            .build(),
                    );
                if let Some(url) = &self.settings.endpoint_url {
                    loader = loader.endpoint_url(url);
                }
                if let Some(p) = &self.settings.profile {
                    loader = loader.profile_name(p);
                }
                loader.load().await
            })
            .await
    }

    /// The Kinesis client.
    pub async fn kinesis(&self) -> &aws_sdk_kinesis::Client {
        self.kinesis
            .get_or_init(|| async {
                let conf = aws_sdk_kinesis::config::Builder::from(self.config().await)
                    .interceptor(CountCalls(self.stats.clone()))
                    .build();
                aws_sdk_kinesis::Client::from_conf(conf)
            })
            .await
    }

    /// The S3 client, for the state backend. Against an endpoint URL it
    /// addresses buckets by path, as LocalStack and most S3 emulators need.
    pub async fn s3(&self) -> &aws_sdk_s3::Client {
        self.s3
            .get_or_init(|| async {
                let conf = aws_sdk_s3::config::Builder::from(self.config().await)
                    .force_path_style(
                        self.settings.endpoint_url.is_some() || std::env::var_os("AWS_ENDPOINT_URL").is_some(),
                    )
                    .interceptor(CountCalls(self.stats.clone()))
                    .build();
                aws_sdk_s3::Client::from_conf(conf)
            })
            .await
    }

    /// The STS client, for the caller's identity.
    pub async fn sts(&self) -> &aws_sdk_sts::Client {
        self.sts
            .get_or_init(|| async {
                let conf = aws_sdk_sts::config::Builder::from(self.config().await)
                    .interceptor(CountCalls(self.stats.clone()))
                    .build();
                aws_sdk_sts::Client::from_conf(conf)
            })
            .await
    }

    /// The SNS client.
    pub async fn sns(&self) -> &aws_sdk_sns::Client {
        self.sns
            .get_or_init(|| async {
                let conf = aws_sdk_sns::config::Builder::from(self.config().await)
                    .interceptor(CountCalls(self.stats.clone()))
                    .build();
                aws_sdk_sns::Client::from_conf(conf)
            })
            .await
    }

    /// The SQS client.
    pub async fn sqs(&self) -> &aws_sdk_sqs::Client {
        self.sqs
            .get_or_init(|| async {
                let conf = aws_sdk_sqs::config::Builder::from(self.config().await)
                    .interceptor(CountCalls(self.stats.clone()))
                    .build();
                aws_sdk_sqs::Client::from_conf(conf)
            })
            .await
    }

    /// The region the clients use, once the configuration is loaded.
    pub async fn resolved_region(&self) -> String {
        self.config().await.region().map_or_else(|| "us-east-1".to_string(), |r| r.to_string())
    }

    /// The CloudWatch client.
    pub async fn cloudwatch(&self) -> &aws_sdk_cloudwatch::Client {
        self.cloudwatch
            .get_or_init(|| async {
                let conf = aws_sdk_cloudwatch::config::Builder::from(self.config().await)
                    .interceptor(CountCalls(self.stats.clone()))
                    .build();
                aws_sdk_cloudwatch::Client::from_conf(conf)
            })
            .await
    }
}

/// The region `settings` lead to, found as the SDK would find it but
/// without the EC2 metadata service: the settings, then `AWS_REGION` and
/// `AWS_DEFAULT_REGION`, then the profile's `region`, then `us-east-1`.
/// Only the environment and the local profile files are read.
pub fn resolve_region(settings: &AwsSettings) -> String {
    use aws_config::meta::region::ProvideRegion;
    if let Some(r) = &settings.region {
        return r.clone();
    }
    for var in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
        if let Some(r) = std::env::var(var).ok().filter(|r| !r.trim().is_empty()) {
            return r.trim().to_string();
        }
    }
    let mut builder = aws_config::profile::ProfileFileRegionProvider::builder();
    if let Some(p) = &settings.profile {
        builder = builder.profile_name(p);
    }
    let provider = builder.build();
    crate::s3_backend::block(async move { provider.region().await })
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".to_string())
}

/// Renders an SDK error with the service's code and message when there is
/// one, instead of the SDK's generic "service error".
pub fn describe_sdk_error<E, R>(err: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> String
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    match err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            match (e.code(), e.message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_string(),
                _ => e.to_string(),
            }
        }
        SdkError::TimeoutError(_) => "the request timed out".to_string(),
        SdkError::DispatchFailure(d) => {
            let mut msg = "could not reach the endpoint".to_string();
            if let Some(c) = d.as_connector_error() {
                msg = format!("{msg}: {c}");
            }
            msg
        }
        other => {
            // Walk the source chain so the root cause is visible.
            let mut msg = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(s) = src {
                msg = format!("{msg}: {s}");
                src = s.source();
            }
            msg
        }
    }
}

/// A provider error for a failed call of `service:operation`, keeping the
/// SDK's error as its source.
pub fn api_error<E, R>(
    service: &str,
    operation: &str,
    err: aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> crate::ProviderError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let operation = format!("{service}:{operation}");
    let message = describe_sdk_error(&err);
    tracing::debug!(%operation, error = %message, "call failed");
    crate::ProviderError::Api { operation, message, source: Some(Box::new(err)) }
}

/// How long to wait for a resource to settle, and how to poll.
#[derive(Debug, Clone, Copy)]
pub struct WaitPolicy {
    /// The first delay between polls.
    pub first: Duration,
    /// The largest delay between polls.
    pub max: Duration,
    /// The total time allowed.
    pub timeout: Duration,
}

impl Default for WaitPolicy {
    fn default() -> Self {
        // A stream usually settles within a second on an emulator and within
        // tens of seconds on AWS; polling starts fast and backs off.
        WaitPolicy { first: Duration::from_millis(150), max: Duration::from_secs(5), timeout: Duration::from_secs(600) }
    }
}

impl WaitPolicy {
    /// The delay after `delay`, grown by half, capped at `max`.
    pub fn next(&self, delay: Duration) -> Duration {
        (delay + delay / 2).min(self.max)
    }
}

/// Providers of one type in regions other than the default one, each
/// built on first use around [`Aws::in_region`].
pub struct Regional<P> {
    made: Mutex<BTreeMap<String, Arc<P>>>,
}

impl<P> Default for Regional<P> {
    fn default() -> Self {
        Regional { made: Mutex::new(BTreeMap::new()) }
    }
}

impl<P> Regional<P> {
    /// The provider for `region`, or `None` when `aws` is already there
    /// (or no region is asked for) and the caller should do the work.
    pub fn get(&self, aws: &Aws, region: Option<&str>, make: impl FnOnce(Arc<Aws>) -> P) -> Option<Arc<P>> {
        let other = aws.in_region(region)?;
        let mut made = self.made.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = other.region().unwrap_or_default().to_string();
        Some(made.entry(key).or_insert_with(|| Arc::new(make(other))).clone())
    }
}

/// The region a resource's properties name, if any.
pub fn region_of(props: &crate::schema::Props) -> Option<&str> {
    props.get("region").and_then(serde_json::Value::as_str)
}

/// Reads `requests` region by region, each group with `read`, and returns
/// the results in the order of the requests.
pub async fn read_by_region<'a, F, Fut>(
    requests: &'a [crate::provider::ReadRequest],
    read: F,
) -> Vec<crate::provider::ProviderResult<Option<crate::provider::Observed>>>
where
    F: Fn(Option<&'a str>, Vec<crate::provider::ReadRequest>) -> Fut,
    Fut: std::future::Future<Output = Vec<crate::provider::ProviderResult<Option<crate::provider::Observed>>>>,
{
    let mut groups: BTreeMap<Option<&str>, Vec<usize>> = BTreeMap::new();
    for (i, r) in requests.iter().enumerate() {
        groups.entry(r.region()).or_default().push(i);
    }
    let jobs = groups.iter().map(|(region, idx)| read(*region, idx.iter().map(|i| requests[*i].clone()).collect()));
    let results = futures::future::join_all(jobs).await;
    let mut out: Vec<Option<crate::provider::ProviderResult<Option<crate::provider::Observed>>>> =
        (0..requests.len()).map(|_| None).collect();
    for (idx, res) in groups.values().zip(results) {
        for (i, r) in idx.iter().zip(res) {
            out[*i] = Some(r);
        }
    }
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(crate::provider::ProviderError::api("read", "no result for this resource"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_bucket_lets_a_burst_through_then_paces_calls() {
        let limiter = RateLimiter::new(&BTreeMap::from([("x:Op".to_string(), 5.0)]), 1.0);
        let start = tokio::time::Instant::now();
        for _ in 0..5 {
            limiter.acquire("x:Op").await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "one second of calls goes out at once");
        for _ in 0..5 {
            limiter.acquire("x:Op").await;
        }
        let paced = start.elapsed();
        assert!(paced >= Duration::from_millis(990) && paced <= Duration::from_millis(1100), "{paced:?}");
        let other = tokio::time::Instant::now();
        limiter.acquire("x:Unlimited").await;
        assert_eq!(other.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_tiny_api_rate_waits_instead_of_panicking() {
        // 1e-20 calls per second asks for a wait of 1e20 seconds, more than
        // a Duration holds.
        let limiter = RateLimiter::new(&BTreeMap::from([("kinesis:DescribeStreamSummary".to_string(), 1e-20)]), 1.0);
        limiter.acquire("kinesis:DescribeStreamSummary").await;
        let second = tokio::time::timeout(Duration::from_secs(60), limiter.acquire("kinesis:DescribeStreamSummary"));
        assert!(second.await.is_err(), "the second call must wait, not go out");
    }

    #[test]
    fn a_tiny_or_non_finite_api_rate_is_refused_by_check_rate() {
        for bad in [1e-20, f64::MIN_POSITIVE, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let e = check_rate("kinesis:DescribeStreamSummary", bad).unwrap_err();
            assert!(e.contains("kinesis:DescribeStreamSummary"), "{bad}: {e}");
        }
        for good in [0.0, MIN_RATE, 0.5, 20.0, 1e6] {
            assert_eq!(check_rate("kinesis:DescribeStreamSummary", good), Ok(()), "{good}");
        }
    }

    #[test]
    fn loopback_endpoints_are_recognised() {
        assert!(is_local_endpoint("http://127.0.0.1:4566"));
        assert!(is_local_endpoint("http://localhost:4566/"));
        assert!(is_local_endpoint("http://[::1]:4566"));
        assert!(!is_local_endpoint("https://kinesis.us-east-1.amazonaws.com"));
        assert!(!is_local_endpoint("http://10.0.0.1:4566"));
    }
}
