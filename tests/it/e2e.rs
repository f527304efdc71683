//! End-to-end tests of the real `rinfra` binary against LocalStack.
//!
//! Each test has its own directory, state and cloud names, so they run in
//! parallel against one LocalStack.

use crate::support::{Cloud, Env, SEED, assert_matches_schema, counting_endpoint};

const NO_CHANGES: &str = "No changes. Your infrastructure matches the configuration.";

fn edit(env: &Env, from: &str, to: &str) {
    let path = env.stack_path();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "stack has no `{from}`");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_stack_up_preview_output_destroy() {
    let env = Env::new("seed");
    env.stack(SEED);
    let cloud = Cloud::new().await;

    let p = env.rinfra(&["preview", "--detailed-exitcode"]).expect_code(2);
    assert!(p.stdout.contains("Plan: 2 to create, 0 to update, 0 to replace, 0 to delete."), "{}", p.stdout);

    let up = env.rinfra(&["up", "--yes", "--stats"]).expect_code(0);
    assert!(up.stdout.contains("Apply complete! Resources: 2 created"), "{}", up.stdout);
    // The stream must exist before the alarm that names it.
    let (s, a) = (up.stdout.find("stream: Created").unwrap(), up.stdout.find("alarm: Creating").unwrap());
    assert!(s < a, "{}", up.stdout);

    let stream = cloud.stream(&env.name("kinesis-stream")).await.expect("stream exists");
    assert_eq!(stream.open_shard_count(), 1);
    assert_eq!(stream.retention_period_hours(), 24);
    let mut metrics: Vec<&str> =
        stream.enhanced_monitoring().iter().flat_map(|m| m.shard_level_metrics()).map(|m| m.as_str()).collect();
    metrics.sort();
    assert_eq!(
        metrics,
        ["IncomingBytes", "IncomingRecords", "ReadProvisionedThroughputExceeded", "WriteProvisionedThroughputExceeded"]
    );
    let alarm = cloud.alarm(&env.name("kinesis-alarm")).await.expect("alarm exists");
    assert_eq!(alarm.threshold(), Some(1.0));
    assert_eq!(alarm.comparison_operator().map(|c| c.as_str()), Some("GreaterThanThreshold"));
    assert_eq!(alarm.period(), Some(60));
    assert_eq!(alarm.statistic().map(|s| s.as_str()), Some("Sum"));
    assert_eq!(alarm.treat_missing_data(), Some("notBreaching"));
    assert_eq!(alarm.dimensions()[0].value(), Some(env.name("kinesis-stream").as_str()));

    // The no-change path: the exact message, exit 0, and reads only.
    let again = env.rinfra(&["preview", "--stats"]).expect_code(0);
    assert_eq!(again.stdout.trim(), NO_CHANGES);
    assert_eq!(again.total_calls(), 2, "{}", again.stderr);
    env.rinfra(&["preview", "--detailed-exitcode"]).expect_code(0);
    let up_again = env.rinfra(&["up", "--yes", "--stats"]).expect_code(0);
    assert_eq!(up_again.stdout.trim(), NO_CHANGES);
    assert_eq!(up_again.total_calls(), 2, "no write calls: {}", up_again.stderr);

    let text = env.rinfra(&["output"]).expect_code(0);
    assert_eq!(
        text.stdout,
        format!(
            "kke_kinesis_alarm_name  = \"{}\"\nkke_kinesis_stream_name = \"{}\"\n",
            env.name("kinesis-alarm"),
            env.name("kinesis-stream")
        )
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.rinfra(&["output", "--json"]).expect_code(0).stdout).unwrap();
    assert_eq!(json["kke_kinesis_stream_name"], env.name("kinesis-stream"));
    assert_eq!(json["kke_kinesis_alarm_name"], env.name("kinesis-alarm"));
    assert_eq!(env.rinfra(&["output", "kke_kinesis_alarm_name"]).stdout.trim(), env.name("kinesis-alarm"));

    // The state file is private.
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(env.dir.path().join(".rinfra/seed.json")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    let d = env.rinfra(&["destroy", "--yes"]).expect_code(0);
    assert!(d.stdout.contains("2 deleted"), "{}", d.stdout);
    assert!(cloud.stream(&env.name("kinesis-stream")).await.is_none());
    assert!(cloud.alarm(&env.name("kinesis-alarm")).await.is_none());
    assert_eq!(env.state("seed")["resources"], serde_json::json!({}));
    env.rinfra(&["destroy", "--yes"]).expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_updatable_property_changes_in_place_with_the_right_call() {
    let env = Env::new("upd");
    env.stack(SEED);
    let cloud = Cloud::new().await;
    env.rinfra(&["up", "--yes"]).expect_code(0);
    let stream_name = env.name("kinesis-stream");
    let before = cloud.stream(&stream_name).await.unwrap();

    edit(&env, "retentionPeriod: 24", "retentionPeriod: 48");
    edit(&env, "shardCount: 1", "shardCount: 2");
    edit(&env, "        - ReadProvisionedThroughputExceeded\n", "        - OutgoingBytes\n");
    edit(&env, "      retentionPeriod: 48\n", "      retentionPeriod: 48\n      tags:\n        team: streaming\n");
    edit(&env, "threshold: 1", "threshold: 5");
    edit(&env, "evaluationPeriods: 1", "evaluationPeriods: 3\n      datapointsToAlarm: 2");
    edit(
        &env,
        "      treatMissingData: notBreaching\n",
        "      treatMissingData: breaching\n      alarmDescription: |\n        Writes are throttled.\n        Add shards.\n      tags:\n        team: streaming\n",
    );

    let p = env.rinfra(&["preview"]).expect_code(0);
    assert!(p.stdout.contains("Plan: 0 to create, 2 to update, 0 to replace, 0 to delete."), "{}", p.stdout);
    assert!(p.stdout.contains("~ retentionPeriod   = 24 -> 48"), "{}", p.stdout);
    assert!(p.stdout.contains("- \"ReadProvisionedThroughputExceeded\""), "{}", p.stdout);

    let up = env.rinfra(&["up", "--yes", "--stats"]).expect_code(0);
    for (op, n) in [
        ("kinesis:IncreaseStreamRetentionPeriod", 1),
        ("kinesis:UpdateShardCount", 1),
        ("kinesis:EnableEnhancedMonitoring", 1),
        ("kinesis:DisableEnhancedMonitoring", 1),
        ("kinesis:AddTagsToStream", 1),
        ("cloudwatch:PutMetricAlarm", 1),
        ("cloudwatch:TagResource", 1),
        ("kinesis:CreateStream", 0),
        ("kinesis:DeleteStream", 0),
        ("cloudwatch:DeleteAlarms", 0),
    ] {
        assert_eq!(up.calls(op), n, "{op}\n{}", up.stderr);
    }
    let after = cloud.stream(&stream_name).await.unwrap();
    assert_eq!(after.stream_creation_timestamp(), before.stream_creation_timestamp(), "the stream was not recreated");
    assert_eq!(after.retention_period_hours(), 48);
    assert_eq!(after.open_shard_count(), 2);
    let metrics: Vec<&str> =
        after.enhanced_monitoring().iter().flat_map(|m| m.shard_level_metrics()).map(|m| m.as_str()).collect();
    assert!(
        metrics.contains(&"OutgoingBytes") && !metrics.contains(&"ReadProvisionedThroughputExceeded"),
        "{metrics:?}"
    );
    let tags = cloud.kinesis.list_tags_for_stream().stream_name(&stream_name).send().await.unwrap();
    // rinfra's ownership tags stay; the user's tags are exactly the stack's.
    let user: Vec<_> =
        tags.tags().iter().filter(|t| !t.key().starts_with("rinfra:")).map(|t| (t.key(), t.value())).collect();
    assert_eq!(user, [("team", Some("streaming"))]);
    assert!(tags.tags().iter().any(|t| t.key() == "rinfra:resource" && t.value() == Some("stream")), "ownership tags");
    let alarm = cloud.alarm(&env.name("kinesis-alarm")).await.unwrap();
    assert_eq!(alarm.threshold(), Some(5.0));
    assert_eq!(alarm.evaluation_periods(), Some(3));
    assert_eq!(alarm.datapoints_to_alarm(), Some(2));
    assert_eq!(alarm.treat_missing_data(), Some("breaching"));
    assert_eq!(alarm.alarm_description(), Some("Writes are throttled.\nAdd shards.\n"));

    assert_eq!(env.rinfra(&["preview"]).expect_code(0).stdout.trim(), NO_CHANGES);

    // And back down: the decreasing calls, and tag removal.
    edit(&env, "retentionPeriod: 48", "retentionPeriod: 24");
    edit(&env, "      tags:\n        team: streaming\n", "");
    edit(&env, "Add shards.", "Add more shards.");
    let p = env.rinfra(&["preview"]).expect_code(0);
    assert!(p.stdout.contains("  - Add shards.\n") && p.stdout.contains("  + Add more shards.\n"), "{}", p.stdout);
    let down = env.rinfra(&["up", "--yes", "--stats"]).expect_code(0);
    assert_eq!(down.calls("kinesis:DecreaseStreamRetentionPeriod"), 1, "{}", down.stderr);
    assert_eq!(down.calls("kinesis:RemoveTagsFromStream"), 1, "{}", down.stderr);
    assert_eq!(down.calls("cloudwatch:PutMetricAlarm"), 1, "{}", down.stderr);
    assert_eq!(cloud.stream(&stream_name).await.unwrap().retention_period_hours(), 24);
    assert_eq!(env.rinfra(&["preview"]).expect_code(0).stdout.trim(), NO_CHANGES);
    env.rinfra(&["destroy", "--yes"]).expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn stream_mode_and_encryption_change_in_place() {
    let env = Env::new("mode");
    env.stack(SEED);
    let cloud = Cloud::new().await;
    env.rinfra(&["up", "--yes"]).expect_code(0);
    let stream_name = env.name("kinesis-stream");

    edit(&env, "      shardCount: 1\n", "      streamModeDetails:\n        streamMode: ON_DEMAND\n");
    edit(
        &env,
        "retentionPeriod: 24",
        "retentionPeriod: 24\n      encryptionType: KMS\n      kmsKeyId: alias/aws/kinesis",
    );
    let up = env.rinfra(&["up", "--yes", "--stats"]).expect_code(0);
    assert_eq!(up.calls("kinesis:UpdateStreamMode"), 1, "{}", up.stderr);
    assert_eq!(up.calls("kinesis:StartStreamEncryption"), 1, "{}", up.stderr);
    assert_eq!(up.calls("kinesis:CreateStream"), 0);
    let s = cloud.stream(&stream_name).await.unwrap();
    assert_eq!(s.stream_mode_details().map(|m| m.stream_mode().as_str()), Some("ON_DEMAND"));
    assert_eq!(s.encryption_type().map(|e| e.as_str()), Some("KMS"));
    assert_eq!(env.rinfra(&["preview"]).expect_code(0).stdout.trim(), NO_CHANGES);

    edit(&env, "      encryptionType: KMS\n      kmsKeyId: alias/aws/kinesis\n", "");
    let up = env.rinfra(&["up", "--yes", "--stats"]).expect_code(0);
    assert_eq!(up.calls("kinesis:StopStreamEncryption"), 1, "{}", up.stderr);
    assert_eq!(env.rinfra(&["preview"]).expect_code(0).stdout.trim(), NO_CHANGES);
    env.rinfra(&["destroy", "--yes"]).expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn rename_replaces_the_stream_create_before_delete() {
    let env = Env::new("ren");
    env.stack(SEED);
    let cloud = Cloud::new().await;
    env.rinfra(&["up", "--yes"]).expect_code(0);

    edit(
        &env,
        "name: PREFIX-kinesis-stream".replace("PREFIX", &env.prefix).as_str(),
        &format!("name: {}-renamed", env.prefix),
    );
    let p = env.rinfra(&["preview"]).expect_code(0);
    assert!(p.stdout.contains("+/- stream"), "{}", p.stdout);
    assert!(p.stdout.contains("create replacement, then delete the old one"), "{}", p.stdout);
    assert!(p.stdout.contains("# forces replacement"), "{}", p.stdout);
    assert!(p.stdout.contains("Plan: 0 to create, 1 to update, 1 to replace, 0 to delete."), "{}", p.stdout);

    let up = env.rinfra(&["up", "--yes", "--stats"]).expect_code(0);
    assert_eq!(up.calls("kinesis:DeleteStream"), 1);
    assert_eq!(up.calls("kinesis:CreateStream"), 1);
    assert!(cloud.stream(&env.name("kinesis-stream")).await.is_none(), "the old stream is gone");
    assert!(cloud.stream(&env.name("renamed")).await.is_some(), "the new stream exists");
    let alarm = cloud.alarm(&env.name("kinesis-alarm")).await.unwrap();
    assert_eq!(alarm.dimensions()[0].value(), Some(env.name("renamed").as_str()), "the alarm follows the stream");
    assert_eq!(env.rinfra(&["output", "kke_kinesis_stream_name"]).stdout.trim(), env.name("renamed"));
    assert_eq!(env.rinfra(&["preview"]).expect_code(0).stdout.trim(), NO_CHANGES);
    env.rinfra(&["destroy", "--yes"]).expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn resource_removed_from_the_stack_is_deleted() {
    let env = Env::new("rm");
    env.stack(SEED);
    let cloud = Cloud::new().await;
    env.rinfra(&["up", "--yes"]).expect_code(0);

    let text = std::fs::read_to_string(env.stack_path()).unwrap();
    let start = text.find("  alarm:\n").unwrap();
    let end = text.find("outputs:").unwrap();
    let trimmed =
        format!("{}{}", &text[..start], &text[end..]).replace("  kke_kinesis_alarm_name: ${alarm.name}\n", "");
    std::fs::write(env.stack_path(), trimmed).unwrap();

    let p = env.rinfra(&["preview"]).expect_code(0);
    assert!(p.stdout.contains("# alarm will be deleted"), "{}", p.stdout);
    assert!(p.stdout.contains("- kke_kinesis_alarm_name"), "{}", p.stdout);
    env.rinfra(&["up", "--yes"]).expect_code(0);
    assert!(cloud.alarm(&env.name("kinesis-alarm")).await.is_none());
    assert!(cloud.stream(&env.name("kinesis-stream")).await.is_some());
    assert!(env.state("seed")["resources"].get("alarm").is_none());
    assert!(env.state("seed")["outputs"].get("kke_kinesis_alarm_name").is_none());
    env.rinfra(&["destroy", "--yes"]).expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn resources_deleted_outside_rinfra_are_recreated() {
    let env = Env::new("gone");
    env.stack(SEED);
    let cloud = Cloud::new().await;
    env.rinfra(&["up", "--yes"]).expect_code(0);

    cloud.cloudwatch.delete_alarms().alarm_names(env.name("kinesis-alarm")).send().await.unwrap();
    cloud.kinesis.delete_stream().stream_name(env.name("kinesis-stream")).send().await.unwrap();
    cloud.wait_gone(&env.name("kinesis-stream")).await;

    let p = env.rinfra(&["preview"]).expect_code(0);
    assert!(p.stdout.contains("# stream will be created (deleted outside rinfra)"), "{}", p.stdout);
    assert!(p.stdout.contains("# alarm will be created (deleted outside rinfra)"), "{}", p.stdout);
    assert!(p.stdout.contains("Objects have changed outside of rinfra"), "{}", p.stdout);
    env.rinfra(&["up", "--yes"]).expect_code(0);
    assert!(cloud.stream(&env.name("kinesis-stream")).await.is_some());
    assert!(cloud.alarm(&env.name("kinesis-alarm")).await.is_some());
    assert_eq!(env.rinfra(&["preview"]).expect_code(0).stdout.trim(), NO_CHANGES);
    env.rinfra(&["destroy", "--yes"]).expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_in_retention_and_threshold_is_shown_and_reverted() {
    let env = Env::new("drift");
    env.stack(SEED);
    let cloud = Cloud::new().await;
    env.rinfra(&["up", "--yes"]).expect_code(0);
    let (stream, alarm) = (env.name("kinesis-stream"), env.name("kinesis-alarm"));

    cloud.raise_retention(&stream, 48).await;
    cloud.set_threshold(&alarm, 5.0).await;

    let p = env.rinfra(&["preview", "--detailed-exitcode"]).expect_code(2);
    assert!(p.stdout.contains("Objects have changed outside of rinfra"), "{}", p.stdout);
    assert!(p.stdout.contains("~ retentionPeriod = 48 (was 24)"), "{}", p.stdout);
    assert!(p.stdout.contains("~ retentionPeriod = 48 -> 24 # changed outside rinfra"), "{}", p.stdout);
    assert!(p.stdout.contains("~ threshold = 5 -> 1 # changed outside rinfra"), "{}", p.stdout);

    // Without refresh, the state alone says nothing changed.
    assert_eq!(env.rinfra(&["preview", "--refresh=false"]).expect_code(0).stdout.trim(), NO_CHANGES);

    env.rinfra(&["up", "--yes"]).expect_code(0);
    assert_eq!(cloud.stream(&stream).await.unwrap().retention_period_hours(), 24);
    assert_eq!(cloud.alarm(&alarm).await.unwrap().threshold(), Some(1.0));
    assert_eq!(env.rinfra(&["preview"]).expect_code(0).stdout.trim(), NO_CHANGES);
    env.rinfra(&["destroy", "--yes"]).expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_writes_what_the_cloud_holds_into_the_state() {
    let env = Env::new("refresh");
    env.stack(SEED);
    let cloud = Cloud::new().await;
    env.rinfra(&["up", "--yes"]).expect_code(0);
    let stream = env.name("kinesis-stream");
    cloud.raise_retention(&stream, 72).await;

    let only = env.rinfra(&["refresh", "--preview-only"]).expect_code(0);
    assert!(only.stdout.contains("~ retentionPeriod = 24 -> 72"), "{}", only.stdout);
    assert_eq!(env.state("seed")["resources"]["stream"]["inputs"]["retentionPeriod"], 24);

    env.rinfra(&["refresh", "--yes"]).expect_code(0);
    assert_eq!(env.state("seed")["resources"]["stream"]["inputs"]["retentionPeriod"], 72);
    // Now the difference is an edit to be applied, not drift.
    let p = env.rinfra(&["preview"]).expect_code(0);
    assert!(p.stdout.contains("~ retentionPeriod = 72 -> 24\n"), "{}", p.stdout);
    assert!(!p.stdout.contains("changed outside rinfra"), "{}", p.stdout);
    env.rinfra(&["destroy", "--yes"]).expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn preview_json_describes_the_plan() {
    let env = Env::new("json");
    env.stack(SEED);
    let out = env.rinfra(&["preview", "--json"]).expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("valid JSON");
    assert_matches_schema("plan", &v);
    assert_eq!(v["version"], 1);
    assert_eq!(v["changes"], true);
    assert_eq!(v["summary"]["create"], 2);
    assert_eq!(v["steps"][0]["name"], "stream");
    assert_eq!(v["steps"][0]["op"], "create");
    assert_eq!(v["steps"][1]["inputs"]["dimensions"]["StreamName"], env.name("kinesis-stream"));
    assert_eq!(v["outputs"][0]["name"], "kke_kinesis_alarm_name");
}

#[test]
fn up_without_yes_and_without_a_terminal_refuses() {
    let env = Env::new("noyes");
    env.stack(SEED);
    let r = env.rinfra(&["up"]).expect_code(1);
    assert!(r.stderr.contains("pass --yes"), "{}", r.stderr);
    assert!(!env.dir.path().join(".rinfra").exists(), "nothing was written");
}

#[tokio::test(flavor = "multi_thread")]
async fn create_never_takes_over_an_existing_alarm() {
    let env = Env::new("taken");
    env.stack(SEED);
    let cloud = Cloud::new().await;
    let alarm = env.name("kinesis-alarm");
    cloud
        .cloudwatch
        .put_metric_alarm()
        .alarm_name(&alarm)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::LessThanThreshold)
        .evaluation_periods(4)
        .metric_name("Other")
        .namespace("Someone/Else")
        .period(300)
        .statistic(aws_sdk_cloudwatch::types::Statistic::Average)
        .threshold(7.0)
        .send()
        .await
        .unwrap();

    let r = env.rinfra(&["up", "--yes"]).expect_code(1);
    assert!(r.stderr.contains("already exists and is not managed by this stack"), "{}", r.stderr);
    let a = cloud.alarm(&alarm).await.unwrap();
    assert_eq!((a.threshold(), a.namespace()), (Some(7.0), Some("Someone/Else")), "the alarm is untouched");
    // The stream was created before the failure, and the state says so.
    let state = env.state("seed");
    assert!(state["resources"].get("stream").is_some());
    assert!(state["resources"].get("alarm").is_none());
    assert!(state.get("pending").is_none(), "no operation is left pending: {state}");
    env.rinfra(&["destroy", "--yes"]).expect_code(0);
    assert!(cloud.alarm(&alarm).await.is_some(), "destroy leaves the foreign alarm alone");
    cloud.cloudwatch.delete_alarms().alarm_names(&alarm).send().await.unwrap();
}

#[test]
fn an_invalid_stack_makes_no_api_call_and_writes_nothing() {
    let (url, count) = counting_endpoint();
    let env = Env::with_endpoint("bad", &url);
    env.stack(&SEED.replace("shardCount: 1", "shardCount: 0").replace("period: 60", "period: 45"));
    for cmd in [&["preview"][..], &["up", "--yes"], &["destroy", "--yes"], &["refresh", "--yes"], &["validate"]] {
        let r = env.rinfra(cmd).expect_code(1);
        assert!(r.stderr.contains("stack.yaml:8:19"), "{}", r.stderr);
        assert!(r.stderr.contains("0 is out of range"), "{}", r.stderr);
        assert!(r.stderr.contains("period 45 is not allowed"), "{}", r.stderr);
    }
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 0, "no connection reached the endpoint");
    assert!(!env.dir.path().join(".rinfra").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn up_and_destroy_json_lines_follow_their_schema() {
    let env = Env::new("events");
    env.stack(SEED);
    for (args, first_op) in
        [(&["up", "--yes", "--json"][..], "create"), (&["destroy", "--yes", "--json"][..], "delete")]
    {
        let run = env.rinfra(args).expect_code(0);
        let lines: Vec<serde_json::Value> =
            run.stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
        for l in &lines {
            assert_matches_schema("events", l);
        }
        assert_eq!(lines[0]["event"], "plan");
        assert_matches_schema("plan", &lines[0]["plan"]);
        assert_eq!(lines[1]["event"], "started");
        assert_eq!(lines[1]["op"], first_op);
        let last = lines.last().unwrap();
        assert_eq!((last["event"].as_str(), last["ok"].as_bool()), (Some("summary"), Some(true)));
    }
    // No changes is a plan and a summary too.
    env.rinfra(&["up", "--yes"]).expect_code(0);
    let quiet = env.rinfra(&["up", "--yes", "--json"]).expect_code(0);
    let lines: Vec<serde_json::Value> = quiet.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["changes"], false);
    let state = env.rinfra(&["state", "list", "--json"]).expect_code(0);
    assert_matches_schema("state-list", &serde_json::from_str(&state.stdout).unwrap());
    env.rinfra(&["destroy", "--yes"]).expect_code(0);
}
