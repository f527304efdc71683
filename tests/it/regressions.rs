//! Regression tests of the defects a review found, each named after the
//! bug it pins, run through the real binary.

use crate::support::{Cloud, Env};

/// A stream and an output that carries a secret config value.
const SECRET_STACK: &str = r#"name: secretive
config:
  token: { type: String, secret: true, default: s3cr3tTOKENvalue }
resources:
  stream:
    type: aws:kinesis:Stream
    properties:
      name: PREFIX-stream
      shardCount: 1
outputs:
  tagged: ${stream.name}-${token}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn secrets_leak_in_json() {
    let env = Env::new("leak");
    env.stack(SECRET_STACK);
    let first = env.rinfra(&["up", "--yes", "--json"]).expect_code(0);
    assert!(!first.stdout.contains("s3cr3tTOKENvalue"), "{}", first.stdout);
    // The run with no changes printed the raw outputs before the fix.
    let second = env.rinfra(&["up", "--yes", "--json"]).expect_code(0);
    assert!(second.stdout.contains("[secret]"), "{}", second.stdout);
    assert!(!second.stdout.contains("s3cr3tTOKENvalue"), "{}", second.stdout);
    let destroy = env.rinfra(&["destroy", "--yes", "--json"]).expect_code(0);
    assert!(!destroy.stdout.contains("s3cr3tTOKENvalue"), "{}", destroy.stdout);
}

#[test]
fn refresh_json_writes_without_yes() {
    let env = Env::with_endpoint("refresh-json", "http://127.0.0.1:9");
    env.stack(SECRET_STACK);
    let r = env.rinfra(&["refresh", "--json"]).expect_code(1);
    assert!(r.stderr.contains("needs confirmation"), "{}", r.stderr);
    assert!(!env.dir.path().join(".rinfra").exists(), "nothing was written");
}

#[test]
fn drift_with_no_state_reports_in_sync() {
    let env = Env::with_endpoint("drift-none", "http://127.0.0.1:9");
    env.stack(SECRET_STACK);
    let r = env.rinfra(&["drift"]).expect_code(1);
    assert!(r.stderr.contains("never deployed"), "{}", r.stderr);
    let j = env.rinfra(&["drift", "--json"]).expect_code(1);
    assert!(j.stdout.contains("\"status\": \"error\""), "{}", j.stdout);
}

#[test]
fn numeric_flags_panic_or_wrap() {
    let env = Env::with_endpoint("numbers", "http://127.0.0.1:9");
    env.stack(SECRET_STACK);
    for every in ["18446744073709551615s1s", "5124095576030432h"] {
        let r = env.rinfra(&["drift", "--every", every]).expect_code(1);
        assert!(r.stderr.contains("--every"), "{}", r.stderr);
    }
    let r = env.rinfra(&["preview", "--api-rate", "kinesis:DescribeStreamSummary=1e-20"]).expect_code(1);
    assert!(r.stderr.contains("--api-rate"), "{}", r.stderr);
}

#[test]
fn a_lock_that_cannot_be_removed() {
    let env = Env::with_endpoint("garbled-lock", "http://127.0.0.1:9");
    env.stack(SECRET_STACK);
    let dir = env.dir.path().join(".rinfra");
    std::fs::create_dir_all(&dir).unwrap();
    // What a SIGKILL between creating and writing the lock used to leave.
    std::fs::write(dir.join("secretive.json.lock"), "").unwrap();
    let up = env.rinfra(&["up", "--yes"]).expect_code(1);
    assert!(!up.stderr.contains("pid 0"), "{}", up.stderr);
    assert!(up.stderr.contains("unlock --force"), "{}", up.stderr);
    env.rinfra(&["unlock", "--force"]).expect_code(0);
    assert!(!dir.join("secretive.json.lock").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_deleted_underneath_costs_ten_minutes() {
    let env = Env::new("underneath");
    let stack = SECRET_STACK.replace("      shardCount: 1\n", "      shardCount: 1\n      retentionPeriod: RET\n");
    env.stack(&stack.replace("RET", "24"));
    env.rinfra(&["up", "--yes"]).expect_code(0);
    let cloud = Cloud::new().await;
    cloud.kinesis.delete_stream().stream_name(env.name("stream")).send().await.unwrap();
    while cloud.stream(&env.name("stream")).await.is_some() {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Without a refresh the plan is an update; the update must fail at once
    // on "not found" instead of waiting the whole ACTIVE bound.
    env.stack(&stack.replace("RET", "48"));
    let r = env.rinfra(&["up", "--yes", "--refresh=false"]).expect_code(1);
    assert!(r.stderr.contains("does not exist"), "{}", r.stderr);
    assert!(!r.stderr.contains("timed out"), "{}", r.stderr);
    // The state tells the truth afterwards: the stream is gone from it.
    let state = std::fs::read_to_string(env.dir.path().join(".rinfra/secretive.json")).unwrap();
    assert!(!state.contains("\"aws:kinesis:Stream\""), "{state}");
}
