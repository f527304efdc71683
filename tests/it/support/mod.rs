//! The end-to-end test harness: one LocalStack per test process, a scratch
//! directory per test, and the real `rinfra` binary.
#![allow(dead_code)]

pub mod proxy;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// The endpoint of this test process's LocalStack, started on first use.
///
/// `RINFRA_TEST_ENDPOINT` points the tests at a LocalStack that is already
/// running instead. Otherwise `scripts/localstack run-with-parent` starts
/// one on a free port with a watchdog that stops it when this process
/// exits, however it exits.
pub fn endpoint() -> &'static str {
    static EP: OnceLock<String> = OnceLock::new();
    EP.get_or_init(|| {
        if let Ok(ep) = std::env::var("RINFRA_TEST_ENDPOINT") {
            return ep;
        }
        let script = repo_root().join("scripts/localstack");
        let port = free_port().to_string();
        let out = Command::new(&script)
            .args(["run-with-parent", &std::process::id().to_string(), "--port", &port])
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/localstack");
        assert!(out.status.success(), "LocalStack did not start");
        let ep = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let warm =
            Command::new(&script).args(["warm", "--port", &port]).stderr(Stdio::inherit()).status().expect("warm");
        assert!(warm.success(), "LocalStack Kinesis did not warm up");
        ep
    })
}

/// Accepts connections on a loopback port and counts them, standing in for
/// a cloud that must not be called.
pub fn counting_endpoint() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::Read;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            c.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
        }
    });
    (url, count)
}

/// Checks `doc` against the JSON Schema `docs/schemas/<name>.json`,
/// panicking with every violation.
pub fn assert_matches_schema(name: &str, doc: &serde_json::Value) {
    let path = repo_root().join(format!("docs/schemas/{name}.json"));
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("schema")).expect("schema JSON");
    let validator = jsonschema::draft7::new(&schema).expect("a valid schema");
    let errors: Vec<String> = validator.iter_errors(doc).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{name}: {errors:?}\n{doc:#}");
}

/// The result of one run of the binary.
#[derive(Debug)]
pub struct Run {
    /// The exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Panics with both streams unless the exit code is `code`.
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(self.code, code, "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }

    /// The number of API calls of `operation` that `--stats` reported;
    /// panics when the run printed no statistics, so "0 calls" can never
    /// hold for want of a stats line.
    pub fn calls(&self, operation: &str) -> u64 {
        assert!(
            self.stderr.lines().any(|l| l.trim().starts_with("API calls: ")),
            "no --stats output to count {operation} in\n--- stderr\n{}",
            self.stderr
        );
        self.stderr
            .lines()
            .find_map(|l| {
                let mut parts = l.split_whitespace();
                (parts.next() == Some(operation)).then(|| parts.next().and_then(|n| n.parse().ok())).flatten()
            })
            .unwrap_or(0)
    }

    /// The total of API calls that `--stats` reported.
    pub fn total_calls(&self) -> u64 {
        self.stderr.lines().find_map(|l| l.trim().strip_prefix("API calls: ").and_then(|n| n.parse().ok())).unwrap_or(0)
    }
}

/// A scratch directory with one stack file, and the names that keep this
/// test's resources apart from every other test's.
pub struct Env {
    /// The directory; the state goes to `.rinfra/` inside it.
    pub dir: tempfile::TempDir,
    /// A prefix unique to this test, used in every cloud name.
    pub prefix: String,
    /// The endpoint.
    pub endpoint: String,
    /// The state backend (`s3://…`), when not the local default.
    pub backend: Option<String>,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl Env {
    /// A new environment; `tag` names the test in cloud names.
    pub fn new(tag: &str) -> Env {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        Env {
            dir: tempfile::tempdir().expect("tempdir"),
            prefix: format!("{tag}-{}-{n}", std::process::id()),
            endpoint: endpoint().to_string(),
            backend: None,
        }
    }

    /// An environment whose endpoint is `endpoint` (for tests that must not
    /// reach LocalStack).
    pub fn with_endpoint(tag: &str, endpoint: &str) -> Env {
        Env {
            dir: tempfile::tempdir().expect("tempdir"),
            prefix: tag.to_string(),
            endpoint: endpoint.to_string(),
            backend: None,
        }
    }

    /// Writes the stack file, replacing `PREFIX` with this test's prefix.
    pub fn stack(&self, yaml: &str) -> &Env {
        std::fs::write(self.stack_path(), yaml.replace("PREFIX", &self.prefix)).expect("write stack");
        self
    }

    /// Where the stack file is.
    pub fn stack_path(&self) -> PathBuf {
        self.dir.path().join("stack.yaml")
    }

    /// A command for `rinfra` with the stack, the endpoint and test
    /// credentials, for tests that spawn and signal it.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rinfra"));
        cmd.current_dir(self.dir.path())
            .args(args)
            .arg("-s")
            .arg(self.stack_path())
            .arg("--endpoint-url")
            .arg(&self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("NO_COLOR", "1")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_PROFILE")
            .env_remove("RINFRA_BACKEND_URL")
            .env_remove("PULUMI_BACKEND_URL")
            .stdin(Stdio::null());
        if let Some(b) = &self.backend {
            cmd.env("RINFRA_BACKEND_URL", b);
        }
        cmd
    }

    /// Writes a project's program, `Pulumi.yaml`, replacing `PREFIX`.
    pub fn project(&self, yaml: &str) -> &Env {
        std::fs::write(self.dir.path().join("Pulumi.yaml"), yaml.replace("PREFIX", &self.prefix)).expect("write");
        self
    }

    /// A command run in the project directory, with the endpoint and test
    /// credentials but no `-s`: the project and stack are found as a user's
    /// would be. No passphrase is set unless the test sets one.
    pub fn in_project(&self, args: &[&str]) -> Command {
        self.in_project_via(&self.endpoint, args)
    }

    /// As [`Env::in_project`], against another endpoint (such as one that
    /// counts connections that must not happen).
    pub fn in_project_via(&self, endpoint: &str, args: &[&str]) -> Command {
        project_command(self.dir.path(), endpoint, args)
    }

    /// Runs `rinfra` in the project directory (see [`Env::in_project`]).
    pub fn project_rinfra(&self, args: &[&str]) -> Run {
        Run::from(self.in_project(args).output().expect("run rinfra"))
    }

    /// Runs `rinfra` in the project directory with a passphrase set.
    pub fn project_rinfra_with(&self, pass: &str, args: &[&str]) -> Run {
        Run::from(self.in_project(args).env("RINFRA_CONFIG_PASSPHRASE", pass).output().expect("run rinfra"))
    }

    /// Runs `rinfra` with the stack, the endpoint and test credentials.
    pub fn rinfra(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run rinfra"))
    }

    /// The name of a cloud resource for this test.
    pub fn name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.prefix)
    }

    /// Where the state of `stack` lives in S3 when the backend is a bucket.
    fn s3_key(&self, stack: &str) -> Option<(String, String)> {
        let rest = self.backend.as_deref()?.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let key = if prefix.is_empty() { format!("{stack}.json") } else { format!("{prefix}/{stack}.json") };
        Some((bucket.to_string(), key))
    }

    /// The stored state of the single-file program `stack`, wherever the
    /// backend keeps it, or `None` when there is none.
    pub async fn stored_state(&self, cloud: &Cloud, stack: &str) -> Option<serde_json::Value> {
        let bytes = match self.s3_key(stack) {
            Some((bucket, key)) => cloud.object(&bucket, &key).await?,
            None => std::fs::read(self.dir.path().join(".rinfra").join(format!("{stack}.json"))).ok()?,
        };
        Some(serde_json::from_slice(&bytes).expect("state JSON"))
    }

    /// Whether the lock of the single-file program `stack` is held.
    pub async fn lock_held(&self, cloud: &Cloud, stack: &str) -> bool {
        match self.s3_key(stack) {
            Some((bucket, key)) => cloud.object(&bucket, &format!("{key}.lock")).await.is_some(),
            None => self.dir.path().join(".rinfra").join(format!("{stack}.json.lock")).exists(),
        }
    }

    /// The state file of a stack named `stack`.
    pub fn state(&self, stack: &str) -> serde_json::Value {
        let text =
            std::fs::read_to_string(self.dir.path().join(".rinfra").join(format!("{stack}.json"))).expect("state");
        serde_json::from_str(&text).expect("state JSON")
    }
}

/// `rinfra ARGS` run in the project directory `dir` against `endpoint`,
/// with test credentials, no `-s`, and nothing from this environment that
/// would choose a stack, a backend or a passphrase.
pub fn project_command(dir: &Path, endpoint: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rinfra"));
    cmd.current_dir(dir)
        .args(args)
        .arg("--endpoint-url")
        .arg(endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("NO_COLOR", "1")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .env_remove("RINFRA_STACK")
        .env_remove("RINFRA_CONFIG_PASSPHRASE")
        .env_remove("PULUMI_CONFIG_PASSPHRASE")
        .env_remove("RINFRA_CONFIG_PASSPHRASE_FILE")
        .env_remove("PULUMI_CONFIG_PASSPHRASE_FILE")
        .env_remove("RINFRA_BACKEND_URL")
        .env_remove("PULUMI_BACKEND_URL")
        .env_remove("RINFRA_CWD")
        .stdin(Stdio::null());
    cmd
}

/// SDK clients for changing the cloud behind rinfra's back.
pub struct Cloud {
    /// Kinesis.
    pub kinesis: aws_sdk_kinesis::Client,
    /// CloudWatch.
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// S3, for state buckets.
    pub s3: aws_sdk_s3::Client,
    /// SNS.
    pub sns: aws_sdk_sns::Client,
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
}

impl Cloud {
    /// Clients for the test LocalStack.
    pub async fn new() -> Cloud {
        Cloud::in_region("us-east-1").await
    }

    /// Clients for the test LocalStack in `region`.
    pub async fn in_region(region: &str) -> Cloud {
        let creds = aws_sdk_kinesis::config::Credentials::new("test", "test", None, None, "tests");
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .endpoint_url(endpoint())
            .credentials_provider(creds)
            .load()
            .await;
        let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build());
        Cloud {
            kinesis: aws_sdk_kinesis::Client::new(&conf),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&conf),
            s3,
            sns: aws_sdk_sns::Client::new(&conf),
            sqs: aws_sdk_sqs::Client::new(&conf),
        }
    }

    /// Creates a state bucket for one test, with versioning when asked.
    pub async fn bucket(&self, name: &str, versioned: bool) {
        self.s3.create_bucket().bucket(name).send().await.expect("create bucket");
        if versioned {
            let on = aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build();
            self.s3.put_bucket_versioning().bucket(name).versioning_configuration(on).send().await.expect("versioning");
        }
    }

    /// The object's bytes, or `None` when there is none.
    pub async fn object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        match self.s3.get_object().bucket(bucket).key(key).send().await {
            Ok(o) => Some(o.body.collect().await.expect("read object").into_bytes().to_vec()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => None,
            Err(e) => panic!("get s3://{bucket}/{key}: {e:?}"),
        }
    }

    /// The stream's summary, or `None` when it does not exist.
    pub async fn stream(&self, name: &str) -> Option<aws_sdk_kinesis::types::StreamDescriptionSummary> {
        match self.kinesis.describe_stream_summary().stream_name(name).send().await {
            Ok(o) => o.stream_description_summary().cloned(),
            // Only "no such stream" means gone; any other error is a broken
            // test setup, not evidence.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => None,
            Err(e) => panic!("describe stream {name}: {e:?}"),
        }
    }

    /// The alarm, or `None` when it does not exist.
    pub async fn alarm(&self, name: &str) -> Option<aws_sdk_cloudwatch::types::MetricAlarm> {
        let out = self.cloudwatch.describe_alarms().alarm_names(name).send().await.expect("describe alarms");
        out.metric_alarms().first().cloned()
    }

    /// Raises the stream's retention behind rinfra's back, and waits until
    /// the stream is ACTIVE again.
    pub async fn raise_retention(&self, name: &str, hours: i32) {
        self.kinesis
            .increase_stream_retention_period()
            .stream_name(name)
            .retention_period_hours(hours)
            .send()
            .await
            .expect("increase retention");
        self.wait_active(name).await;
    }

    /// Rewrites the alarm with a new threshold, keeping everything else.
    pub async fn set_threshold(&self, name: &str, threshold: f64) {
        let a = self.alarm(name).await.expect("alarm exists");
        self.cloudwatch
            .put_metric_alarm()
            .alarm_name(name)
            .set_comparison_operator(a.comparison_operator().cloned())
            .set_evaluation_periods(a.evaluation_periods())
            .set_metric_name(a.metric_name().map(str::to_string))
            .set_namespace(a.namespace().map(str::to_string))
            .set_period(a.period())
            .set_statistic(a.statistic().cloned())
            .threshold(threshold)
            .set_treat_missing_data(a.treat_missing_data().map(str::to_string))
            .set_alarm_description(a.alarm_description().map(str::to_string))
            .set_actions_enabled(a.actions_enabled())
            .set_dimensions(Some(a.dimensions().to_vec()))
            .send()
            .await
            .expect("put alarm");
    }

    /// Waits until the stream is ACTIVE.
    pub async fn wait_active(&self, name: &str) {
        for _ in 0..100 {
            if let Some(s) = self.stream(name).await {
                if s.stream_status().as_str() == "ACTIVE" {
                    return;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("stream {name} never became ACTIVE");
    }

    /// Waits until the stream is gone.
    pub async fn wait_gone(&self, name: &str) {
        for _ in 0..100 {
            if self.stream(name).await.is_none() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("stream {name} was never deleted");
    }
}

/// The seed stack, parameterised by the test prefix.
pub const SEED: &str = r#"name: seed
runtime: yaml
resources:
  stream:
    type: aws:kinesis:Stream
    properties:
      name: PREFIX-kinesis-stream
      shardCount: 1
      retentionPeriod: 24
      shardLevelMetrics:
        - IncomingBytes
        - IncomingRecords
        - WriteProvisionedThroughputExceeded
        - ReadProvisionedThroughputExceeded
  alarm:
    type: aws:cloudwatch:MetricAlarm
    properties:
      name: PREFIX-kinesis-alarm
      comparisonOperator: GreaterThanThreshold
      evaluationPeriods: 1
      metricName: WriteProvisionedThroughputExceeded
      namespace: AWS/Kinesis
      period: 60
      statistic: Sum
      threshold: 1
      treatMissingData: notBreaching
      dimensions:
        StreamName: ${stream.name}
outputs:
  kke_kinesis_stream_name: ${stream.name}
  kke_kinesis_alarm_name: ${alarm.name}
"#;
