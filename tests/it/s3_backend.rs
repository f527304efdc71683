//! Team state in S3 (LocalStack), end to end: two runners racing for one
//! state, a broken lock that must not lose a write, SIGKILL trials, and a
//! fault rate on S3 calls.

use crate::reliability::{assert_converged, kill_trials, pairs};
use crate::support::{Cloud, Env, proxy};
use std::process::Stdio;
use std::time::{Duration, Instant};

const NO_CHANGES: &str = "No changes. Your infrastructure matches the configuration.";

/// A bucket name for this test, unique in this LocalStack.
fn bucket(env: &Env) -> String {
    env.prefix.to_lowercase().replace('_', "-")
}

/// An environment whose state is in a fresh bucket.
async fn s3_env(tag: &str, cloud: &Cloud, versioned: bool) -> Env {
    let mut env = Env::new(tag);
    let b = bucket(&env);
    cloud.bucket(&b, versioned).await;
    env.backend = Some(format!("s3://{b}/team"));
    env
}

#[tokio::test(flavor = "multi_thread")]
async fn two_runners_start_up_at_once_and_exactly_one_proceeds() {
    let cloud = Cloud::new().await;
    let a = s3_env("race", &cloud, true).await;
    a.stack(&pairs(2));
    // A second runner: another directory, the same program and bucket.
    let mut b = Env::new("race-b");
    b.prefix = a.prefix.clone();
    b.backend = a.backend.clone();
    b.stack(&pairs(2));

    let started = Instant::now();
    let ca = a.command(&["up", "--yes"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let cb = b.command(&["up", "--yes"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (oa, ob) = (ca.wait_with_output().unwrap(), cb.wait_with_output().unwrap());
    let codes = [oa.status.code(), ob.status.code()];
    assert!(codes.contains(&Some(0)) && codes.contains(&Some(1)), "exactly one proceeds: {codes:?}");
    let loser = if oa.status.success() { &ob } else { &oa };
    let msg = String::from_utf8_lossy(&loser.stderr);
    assert!(msg.contains("is locked by pid") && msg.contains("s3://"), "the loser names the holder: {msg}");
    assert!(loser.stdout.is_empty(), "the loser changed nothing");
    eprintln!("race: both done in {:?}", started.elapsed());

    // Either runner now sees the one state.
    for env in [&a, &b] {
        assert_eq!(env.rinfra(&["preview"]).expect_code(0).stdout.trim(), NO_CHANGES);
    }
    assert_converged(&a, &cloud, 2).await;
    // Versioning keeps every write; `stack history` lists them.
    let history = a.rinfra(&["stack", "history", "--json"]).expect_code(0);
    let h: serde_json::Value = serde_json::from_str(&history.stdout).unwrap();
    let versions = h["versions"].as_array().unwrap();
    assert!(versions.len() >= 4, "{history:?}", history = history.stdout);
    let first = a.rinfra(&["stack", "export", "--version", "1"]).expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&first.stdout).unwrap();
    assert_eq!(v["serial"], 1, "version 1 is the first state written");
    a.rinfra(&["destroy", "--yes"]).expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_loser_of_a_race_fails_within_a_second() {
    let cloud = Cloud::new().await;
    let env = s3_env("lockwait", &cloud, false).await;
    env.stack(&pairs(1));
    // Hold the lock as another runner would.
    let (b, key) = (bucket(&env), "team/pairs.json.lock");
    let holder = r#"{"pid":1,"host":"ci-runner-7","command":"up","started":0}"#;
    cloud.s3.put_object().bucket(&b).key(key).body(holder.as_bytes().to_vec().into()).send().await.unwrap();
    let t = Instant::now();
    let r = env.rinfra(&["up", "--yes"]).expect_code(1);
    let took = t.elapsed();
    assert!(r.stderr.contains("locked by pid 1 on ci-runner-7 (up)"), "{}", r.stderr);
    assert!(took < Duration::from_secs(1), "refused in {took:?}");
    // Unlock reads the holder first and names it.
    let u = env.rinfra(&["unlock", "--force"]).expect_code(0);
    assert!(u.stdout.contains("pid 1 on ci-runner-7"), "{}", u.stdout);
    assert!(cloud.object(&b, key).await.is_none());
    let h = env.rinfra(&["stack", "history"]).expect_code(0);
    assert!(h.stdout.contains("has versioning off"), "{}", h.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_lock_never_loses_a_write() {
    let cloud = Cloud::new().await;
    let mut a = s3_env("broken", &cloud, true).await;
    a.stack(&pairs(1));
    let b = {
        let mut b = Env::new("broken-b");
        b.prefix = a.prefix.clone();
        b.backend = a.backend.clone();
        b.stack(&pairs(1));
        b
    };
    // Runner A's calls pass a proxy that holds its PutMetricAlarm for a
    // while: A is slowed in the middle of `up`, with its stream created
    // and the alarm's create recorded as pending.
    let slow = proxy::start(crate::support::endpoint(), 0, 1).await;
    *slow.delay.lock().unwrap() = Some(("PutMetricAlarm".to_string(), Duration::from_secs(12)));
    a.endpoint = slow.url.clone();
    let ca = a.command(&["up", "--yes"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let t = Instant::now();
    while slow.delayed.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(t.elapsed() < Duration::from_secs(60), "A never reached PutMetricAlarm");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Runner B breaks A's lock and completes its own `up`.
    b.rinfra(&["unlock", "--force"]).expect_code(0);
    b.rinfra(&["up", "--yes"]).expect_code(0);
    let (bk, key) = (bucket(&a), "team/pairs.json");
    let after_b = cloud.object(&bk, key).await.unwrap();

    // A's next save is refused by the ETag check: it exits 1 and keeps its
    // state in a recovery file; the state in S3 is still B's.
    let oa = ca.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&oa.stderr);
    assert_eq!(oa.status.code(), Some(1), "{err}");
    assert!(err.contains("was changed by another run since this one read it"), "{err}");
    let recovery = err.split("kept in ").nth(1).and_then(|r| r.split(". ").next()).unwrap().to_string();
    let kept = a.dir.path().join(&recovery);
    let kept = if kept.exists() { kept } else { std::path::PathBuf::from(&recovery) };
    assert!(kept.exists(), "the recovery file {recovery} exists");
    assert_eq!(cloud.object(&bk, key).await.unwrap(), after_b, "B's state was not overwritten");

    // Then refresh and up converge, with no orphan.
    a.endpoint = crate::support::endpoint().to_string();
    a.rinfra(&["refresh", "--yes"]).expect_code(0);
    a.rinfra(&["up", "--yes"]).expect_code(0);
    assert_eq!(b.rinfra(&["preview"]).expect_code(0).stdout.trim(), NO_CHANGES);
    assert_converged(&a, &cloud, 1).await;
    a.rinfra(&["destroy", "--yes"]).expect_code(0);
}

/// SIGKILL `up` and `destroy` with the state in S3, as the local trials
/// do. `RINFRA_S3_KILL_TRIALS` raises the number (8 by default).
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_with_state_in_s3_never_orphans_a_resource() {
    let trials: u64 = std::env::var("RINFRA_S3_KILL_TRIALS").ok().and_then(|t| t.parse().ok()).unwrap_or(8);
    let cloud = Cloud::new().await;
    let env = s3_env("s3kill", &cloud, false).await;
    env.stack(&pairs(2));
    let outcomes = kill_trials(&env, &cloud, trials, 0x53_2026).await;
    eprintln!("s3 kill test: {trials} trials, {outcomes:?}");
    env.rinfra(&["destroy", "--yes"]).expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn up_converges_through_a_twenty_percent_fault_rate_on_s3() {
    let cloud = Cloud::new().await;
    let mut env = s3_env("s3fault", &cloud, false).await;
    env.stack(&pairs(3));
    let faulty = proxy::start(crate::support::endpoint(), 200, 2026).await;
    // Only the bucket's requests fail; Kinesis and CloudWatch pass.
    *faulty.only.lock().unwrap() = Some(format!("/{}", bucket(&env)));
    env.endpoint = faulty.url.clone();
    env.rinfra(&["up", "--yes"]).expect_code(0);
    env.rinfra(&["state", "verify"]).expect_code(0);
    // More writes through the faults: an edit, applied, and back.
    let edited = pairs(3).replace("retentionPeriod: 48", "retentionPeriod: 72");
    env.stack(&edited);
    env.rinfra(&["up", "--yes"]).expect_code(0);
    env.stack(&pairs(3));
    env.rinfra(&["up", "--yes"]).expect_code(0);
    env.rinfra(&["state", "verify"]).expect_code(0);
    let faults = faulty.stats.faults.lock().unwrap().clone();
    assert!(faults.values().sum::<u64>() >= 5, "too few faults were injected: {faults:?}");
    eprintln!("s3 faults: {faults:?}");
    assert_eq!(env.rinfra(&["preview"]).expect_code(0).stdout.trim(), NO_CHANGES);
    env.endpoint = crate::support::endpoint().to_string();
    assert_converged(&env, &cloud, 3).await;
    env.rinfra(&["destroy", "--yes"]).expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_local_stack_moves_to_s3_by_export_and_import() {
    let cloud = Cloud::new().await;
    let mut env = Env::new("move");
    env.stack(&pairs(1));
    env.rinfra(&["up", "--yes"]).expect_code(0);
    let export = env.rinfra(&["stack", "export", "--file", "moved.json"]).expect_code(0);
    assert!(export.stdout.is_empty());
    let b = bucket(&env);
    cloud.bucket(&b, false).await;
    env.backend = Some(format!("s3://{b}/team"));
    env.rinfra(&["stack", "import", "--file", "moved.json"]).expect_code(0);
    assert_eq!(env.rinfra(&["preview"]).expect_code(0).stdout.trim(), NO_CHANGES);
    assert!(cloud.object(&b, "team/pairs.json").await.is_some());
    env.rinfra(&["destroy", "--yes"]).expect_code(0);
}
