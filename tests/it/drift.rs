//! End-to-end tests of drift detection, remediation and import against
//! LocalStack.

use crate::support::{Cloud, Env, Run, SEED};
use serde_json::Value;

const NO_CHANGES: &str = "No changes. Your infrastructure matches the configuration.";

/// The seed stack with tags managed on the stream, so tag drift is read.
fn stack() -> String {
    SEED.replace("      retentionPeriod: 24\n", "      retentionPeriod: 24\n      tags:\n        team: streaming\n")
}

fn report(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", run.stdout, run.stderr))
}

/// The drift entry of `resource` in a report.
fn entry<'a>(r: &'a Value, resource: &str) -> &'a Value {
    r["resources"].as_array().unwrap().iter().find(|e| e["name"] == resource).unwrap()
}

/// Detects the drift, checks it, remediates, and checks the cloud is back.
async fn detect_and_remediate(env: &Env, resource: &str, status: &str, change: Option<(&str, Value, Value)>) {
    let run = env.rinfra(&["drift", "--json"]).expect_code(2);
    let r = report(&run);
    crate::support::assert_matches_schema("drift", &r);
    assert_eq!(r["schema"], "rinfra.drift/v1");
    assert_eq!(r["status"], "drifted");
    let e = entry(&r, resource);
    assert_eq!(e["status"], status, "{r:#}");
    if let Some((prop, recorded, actual)) = change {
        let c =
            e["changes"].as_array().unwrap().iter().find(|c| c["property"] == prop).unwrap_or_else(|| panic!("{r:#}"));
        assert_eq!((&c["recorded"], &c["actual"]), (&recorded, &actual), "{r:#}");
    }
    // The text report names the resource too.
    let text = env.rinfra(&["drift"]).expect_code(2);
    assert!(text.stdout.contains(&format!("# {resource} (")), "{}", text.stdout);
    env.rinfra(&["drift", "--remediate"]).expect_code(2);
    let after = env.rinfra(&["drift", "--json"]).expect_code(0);
    assert_eq!(report(&after)["status"], "in-sync");
    assert_eq!(env.rinfra(&["preview"]).expect_code(0).stdout.trim(), NO_CHANGES);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_mutation_outside_rinfra_is_detected_and_remediated() {
    let env = Env::new("mut");
    env.stack(&stack());
    let cloud = Cloud::new().await;
    env.rinfra(&["up", "--yes"]).expect_code(0);
    let (stream, alarm) = (env.name("kinesis-stream"), env.name("kinesis-alarm"));
    let in_sync = env.rinfra(&["drift", "--json"]).expect_code(0);
    assert_eq!(report(&in_sync)["summary"], serde_json::json!({"inSync": 2, "modified": 0, "deleted": 0}));

    cloud.raise_retention(&stream, 48).await;
    detect_and_remediate(&env, "stream", "modified", Some(("retentionPeriod", 24.into(), 48.into()))).await;
    assert_eq!(cloud.stream(&stream).await.unwrap().retention_period_hours(), 24);

    cloud
        .kinesis
        .disable_enhanced_monitoring()
        .stream_name(&stream)
        .shard_level_metrics(aws_sdk_kinesis::types::MetricsName::IncomingBytes)
        .send()
        .await
        .unwrap();
    cloud.wait_active(&stream).await;
    let all = serde_json::json!([
        "IncomingBytes",
        "IncomingRecords",
        "ReadProvisionedThroughputExceeded",
        "WriteProvisionedThroughputExceeded"
    ]);
    let fewer = serde_json::json!([
        "IncomingRecords",
        "ReadProvisionedThroughputExceeded",
        "WriteProvisionedThroughputExceeded"
    ]);
    detect_and_remediate(&env, "stream", "modified", Some(("shardLevelMetrics", all, fewer))).await;

    cloud
        .kinesis
        .update_shard_count()
        .stream_name(&stream)
        .target_shard_count(2)
        .scaling_type(aws_sdk_kinesis::types::ScalingType::UniformScaling)
        .send()
        .await
        .unwrap();
    cloud.wait_active(&stream).await;
    detect_and_remediate(&env, "stream", "modified", Some(("shardCount", 1.into(), 2.into()))).await;
    assert_eq!(cloud.stream(&stream).await.unwrap().open_shard_count(), 1);

    cloud.kinesis.add_tags_to_stream().stream_name(&stream).tags("owner", "someone").send().await.unwrap();
    detect_and_remediate(
        &env,
        "stream",
        "modified",
        Some((
            "tags",
            serde_json::json!({"team": "streaming"}),
            serde_json::json!({"owner": "someone", "team": "streaming"}),
        )),
    )
    .await;

    cloud.set_threshold(&alarm, 5.0).await;
    detect_and_remediate(&env, "alarm", "modified", Some(("threshold", 1.into(), 5.into()))).await;
    assert_eq!(cloud.alarm(&alarm).await.unwrap().threshold(), Some(1.0));

    cloud.cloudwatch.disable_alarm_actions().alarm_names(&alarm).send().await.unwrap();
    detect_and_remediate(&env, "alarm", "modified", Some(("actionsEnabled", true.into(), false.into()))).await;
    assert_eq!(cloud.alarm(&alarm).await.unwrap().actions_enabled(), Some(true));

    cloud.cloudwatch.delete_alarms().alarm_names(&alarm).send().await.unwrap();
    detect_and_remediate(&env, "alarm", "deleted", None).await;
    assert!(cloud.alarm(&alarm).await.is_some());

    cloud.kinesis.delete_stream().stream_name(&stream).send().await.unwrap();
    cloud.wait_gone(&stream).await;
    detect_and_remediate(&env, "stream", "deleted", None).await;
    assert!(cloud.stream(&stream).await.is_some());

    env.rinfra(&["destroy", "--yes"]).expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_writes_history_and_the_hook_gets_the_report() {
    let env = Env::new("sched");
    env.stack(&stack());
    let cloud = Cloud::new().await;
    env.rinfra(&["up", "--yes"]).expect_code(0);
    cloud.set_threshold(&env.name("kinesis-alarm"), 3.0).await;

    let run =
        env.rinfra(&["drift", "--every", "1s", "--max-runs", "3", "--on-drift", "cat >> hook.jsonl"]).expect_code(2);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert!(
        lines.iter().all(|l| l.contains("drifted: 1 in sync, 1 modified, 0 deleted") && l.contains("alarm: threshold"))
    );
    let history = std::fs::read_to_string(env.dir.path().join(".rinfra/seed.drift.jsonl")).unwrap();
    let reports: Vec<Value> = history.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(reports.len(), 3);
    assert!(reports.iter().all(|r| r["schema"] == "rinfra.drift/v1" && r["status"] == "drifted"));
    for r in &reports {
        crate::support::assert_matches_schema("drift", r);
    }
    let hook = std::fs::read_to_string(env.dir.path().join("hook.jsonl")).unwrap();
    let first: Value = serde_json::from_str(hook.lines().next().unwrap()).unwrap();
    assert_eq!(entry(&first, "alarm")["changes"][0]["property"], "threshold");
    assert_eq!(hook.lines().count(), 3);
    assert!(!env.dir.path().join(".rinfra/seed.json.lock").exists());
    env.rinfra(&["destroy", "--yes"]).expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_ends_a_schedule_after_the_current_run_without_a_lock() {
    let env = Env::new("term");
    env.stack(&stack());
    env.rinfra(&["up", "--yes"]).expect_code(0);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_rinfra"))
        .current_dir(env.dir.path())
        .args(["drift", "--every", "30s", "-s"])
        .arg(env.stack_path())
        .args(["--endpoint-url", &env.endpoint])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let history = env.dir.path().join(".rinfra/seed.drift.jsonl");
    for _ in 0..100 {
        if history.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let started = std::time::Instant::now();
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: sending SIGTERM to our own child process.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "the 30 s wait was cut short");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(std::fs::read_to_string(&history).unwrap().lines().count(), 1);
    assert!(!env.dir.path().join(".rinfra/seed.json.lock").exists());
    env.rinfra(&["destroy", "--yes"]).expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn remediation_never_touches_a_protected_resource() {
    let env = Env::new("prot");
    let protected = stack().replace(
        "      dimensions:\n        StreamName: ${stream.name}\n",
        "      dimensions:\n        StreamName: ${stream.name}\n    options:\n      protect: true\n",
    );
    env.stack(&protected);
    let cloud = Cloud::new().await;
    env.rinfra(&["up", "--yes"]).expect_code(0);
    let alarm = env.name("kinesis-alarm");
    cloud.set_threshold(&alarm, 5.0).await;
    let run = env.rinfra(&["drift", "--remediate"]).expect_code(2);
    assert!(run.stderr.contains("`alarm` is protected; rinfra leaves its drift as it is"), "{}", run.stderr);
    assert_eq!(cloud.alarm(&alarm).await.unwrap().threshold(), Some(5.0), "the protected alarm is untouched");
    // An explicit `up` is the user's decision and does update it.
    env.rinfra(&["up", "--yes"]).expect_code(0);
    assert_eq!(cloud.alarm(&alarm).await.unwrap().threshold(), Some(1.0));
    let unprotected = protected.replace("    options:\n      protect: true\n", "");
    env.stack(&unprotected);
    env.rinfra(&["up", "--yes"]).expect_code(0);
    env.rinfra(&["destroy", "--yes"]).expect_code(0);
}

/// Creates the seed's stream and alarm with the SDK, as another tool would.
async fn create_unmanaged(cloud: &Cloud, env: &Env) {
    let stream = env.name("kinesis-stream");
    cloud.kinesis.create_stream().stream_name(&stream).shard_count(1).send().await.unwrap();
    cloud.wait_active(&stream).await;
    cloud
        .kinesis
        .enable_enhanced_monitoring()
        .stream_name(&stream)
        .set_shard_level_metrics(Some(
            [
                "IncomingBytes",
                "IncomingRecords",
                "WriteProvisionedThroughputExceeded",
                "ReadProvisionedThroughputExceeded",
            ]
            .map(aws_sdk_kinesis::types::MetricsName::from)
            .to_vec(),
        ))
        .send()
        .await
        .unwrap();
    cloud.wait_active(&stream).await;
    cloud
        .cloudwatch
        .put_metric_alarm()
        .alarm_name(env.name("kinesis-alarm"))
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .evaluation_periods(1)
        .metric_name("WriteProvisionedThroughputExceeded")
        .namespace("AWS/Kinesis")
        .period(60)
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .threshold(1.0)
        .treat_missing_data("notBreaching")
        .dimensions(aws_sdk_cloudwatch::types::Dimension::builder().name("StreamName").value(&stream).build())
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn imported_resources_show_no_changes() {
    let env = Env::new("imp");
    env.stack(SEED);
    let cloud = Cloud::new().await;
    create_unmanaged(&cloud, &env).await;

    // Creating over them is refused: rinfra never takes over what exists.
    let r = env.rinfra(&["up", "--yes"]).expect_code(1);
    assert!(r.stderr.contains("already exists and is not managed by this stack"), "{}", r.stderr);
    assert!(env.state("seed")["resources"].as_object().unwrap().is_empty(), "nothing was adopted silently");

    let out = env.rinfra(&["import", "stream", &env.name("kinesis-stream")]).expect_code(0);
    assert!(out.stdout.contains("Imported"), "{}", out.stdout);
    env.rinfra(&["import", "alarm", &env.name("kinesis-alarm")]).expect_code(0);
    env.rinfra(&["import", "alarm", &env.name("kinesis-alarm")]).expect_code(1);
    env.rinfra(&["import", "nothing", "x"]).expect_code(1);
    // The import recorded the outputs too: nothing is left to do.
    assert_eq!(env.rinfra(&["preview"]).expect_code(0).stdout.trim(), NO_CHANGES);
    assert_eq!(env.rinfra(&["output", "kke_kinesis_alarm_name"]).stdout.trim(), env.name("kinesis-alarm"));
    env.rinfra(&["destroy", "--yes"]).expect_code(0);
    assert!(cloud.stream(&env.name("kinesis-stream")).await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn options_import_adopts_on_the_first_run() {
    let env = Env::new("optimp");
    let cloud = Cloud::new().await;
    create_unmanaged(&cloud, &env).await;
    let with_import = SEED.replace(
            "  alarm:\n    type: aws:cloudwatch:MetricAlarm\n",
            "    options:\n      import: PREFIX-kinesis-stream\n  alarm:\n    type: aws:cloudwatch:MetricAlarm\n    options:\n      import: PREFIX-kinesis-alarm\n",
        );
    env.stack(&with_import);
    // The import happens in memory for the preview, outputs and all.
    assert_eq!(env.rinfra(&["preview"]).expect_code(0).stdout.trim(), NO_CHANGES);
    assert!(!env.dir.path().join(".rinfra/seed.json").exists(), "a preview writes nothing");
    let up = env.rinfra(&["up", "--yes"]).expect_code(0);
    assert!(up.stderr.contains("stream: imported"), "{}", up.stderr);
    assert_eq!(env.rinfra(&["preview"]).expect_code(0).stdout.trim(), NO_CHANGES);
    env.rinfra(&["destroy", "--yes"]).expect_code(0);
}
