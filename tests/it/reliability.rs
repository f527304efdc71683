//! Tests that try to break rinfra: locks, interrupts, SIGKILL at random
//! moments, injected network faults, and leaked secrets. All against
//! LocalStack through the real binary.

use crate::support::{Cloud, Env, proxy};
use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

/// A stack of `n` streams, each with an alarm on it, and the alerting
/// types: a topic, a queue, the queue's policy and its subscription to the
/// topic, so that every type is killed and faulted too.
pub(crate) fn pairs(n: usize) -> String {
    let mut s = String::from("name: pairs\nresources:\n");
    s.push_str(concat!(
        "  topic:\n    type: aws:sns:Topic\n    properties:\n      name: PREFIX-topic\n",
        "  queue:\n    type: aws:sqs:Queue\n    properties:\n      name: PREFIX-queue\n",
        "  queuePolicy:\n    type: aws:sqs:QueuePolicy\n    properties:\n      queueUrl: ${queue.url}\n",
        "      policy: {Statement: {Effect: Allow, Principal: {Service: sns.amazonaws.com}, Action: sqs:SendMessage, Resource: '${queue.arn}'}}\n",
        "  sub:\n    type: aws:sns:TopicSubscription\n    properties:\n      topic: ${topic.arn}\n      protocol: sqs\n      endpoint: ${queue.arn}\n",
    ));
    for i in 0..n {
        s.push_str(&format!(
            "  s{i}:\n    type: aws:kinesis:Stream\n    properties:\n      name: PREFIX-s{i}\n      shardCount: 1\n      retentionPeriod: 48\n      shardLevelMetrics: [IncomingBytes, WriteProvisionedThroughputExceeded]\n      tags:\n        index: \"{i}\"\n"
        ));
        s.push_str(&format!(
            "  a{i}:\n    type: aws:cloudwatch:MetricAlarm\n    properties:\n      name: PREFIX-a{i}\n      comparisonOperator: GreaterThanThreshold\n      evaluationPeriods: 1\n      metricName: WriteProvisionedThroughputExceeded\n      namespace: AWS/Kinesis\n      period: 60\n      statistic: Sum\n      threshold: 1\n      dimensions:\n        StreamName: ${{s{i}.name}}\n"
        ));
    }
    s.push_str("outputs:\n  first: ${s0.arn}\n");
    s
}

/// [`pairs`] with a stream consumer on the first stream too. The kill
/// trials leave it out: LocalStack keeps a consumer registered after a
/// killed destroy deletes its stream, and refuses the name when the
/// stream is made again, which real AWS (whose stream deletion takes its
/// consumers) never does.
pub(crate) fn pairs_and_consumer(n: usize) -> String {
    pairs(n).replace(
        "outputs:\n",
        "  reader:\n    type: aws:kinesis:StreamConsumer\n    properties:\n      name: PREFIX-reader\n      streamArn: ${s0.arn}\noutputs:\n",
    )
}

/// The topic, queue, queue policy, subscriptions and stream consumers in
/// the cloud for this test's prefix, as the state would name them (names,
/// the queue's URL, subscription and consumer ARNs).
pub(crate) async fn alerting_in_cloud(env: &Env, cloud: &Cloud) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Some(s0) = cloud.stream(&env.name("s0")).await {
        let consumers = cloud.kinesis.list_stream_consumers().stream_arn(s0.stream_arn()).send().await.unwrap();
        out.extend(
            consumers
                .consumers()
                .iter()
                .filter(|c| c.consumer_status().as_str() != "DELETING")
                .map(|c| c.consumer_arn().to_string()),
        );
    }
    let topic_name = env.name("topic");
    let topics = cloud.sns.list_topics().send().await.unwrap();
    let topic_arn =
        topics.topics().iter().filter_map(|t| t.topic_arn()).find(|a| a.ends_with(&format!(":{topic_name}")));
    if let Some(arn) = topic_arn {
        out.insert(topic_name);
        let subs = cloud.sns.list_subscriptions_by_topic().topic_arn(arn).send().await.unwrap();
        out.extend(subs.subscriptions().iter().filter_map(|s| s.subscription_arn().map(str::to_string)));
    }
    if let Ok(q) = cloud.sqs.get_queue_url().queue_name(env.name("queue")).send().await {
        out.insert(env.name("queue"));
        let url = q.queue_url().unwrap_or_default().to_string();
        let policy = cloud
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::Policy)
            .send()
            .await
            .unwrap();
        if policy.attributes().is_some_and(|a| a.contains_key(&aws_sdk_sqs::types::QueueAttributeName::Policy)) {
            out.insert(url);
        }
    }
    out
}

/// The streams and the alarms in the cloud whose names carry this test's prefix.
pub(crate) async fn in_cloud(env: &Env, cloud: &Cloud) -> (BTreeSet<String>, BTreeSet<String>) {
    let prefix = format!("{}-", env.prefix);
    let streams = cloud
        .kinesis
        .list_streams()
        .limit(1000)
        .send()
        .await
        .unwrap()
        .stream_names()
        .iter()
        .filter(|s| s.starts_with(&prefix))
        .cloned()
        .collect();
    let alarms = cloud
        .cloudwatch
        .describe_alarms()
        .alarm_name_prefix(&prefix)
        .send()
        .await
        .unwrap()
        .metric_alarms()
        .iter()
        .filter_map(|a| a.alarm_name().map(str::to_string))
        .collect();
    (streams, alarms)
}

/// Checks that the cloud holds exactly the stack's resources and that the
/// state records each of them once, with its real id.
pub(crate) async fn assert_converged(env: &Env, cloud: &Cloud, n: usize) {
    let want_streams: BTreeSet<String> = (0..n).map(|i| env.name(&format!("s{i}"))).collect();
    let want_alarms: BTreeSet<String> = (0..n).map(|i| env.name(&format!("a{i}"))).collect();
    let (streams, alarms) = in_cloud(env, cloud).await;
    assert_eq!(streams, want_streams, "no orphaned or missing stream");
    assert_eq!(alarms, want_alarms, "no orphaned or missing alarm");
    let alerting = alerting_in_cloud(env, cloud).await;
    let consumer = std::fs::read_to_string(env.stack_path()).is_ok_and(|s| s.contains("StreamConsumer"));
    let want = 4 + usize::from(consumer);
    assert_eq!(
        alerting.len(),
        want,
        "one topic, queue, policy and subscription (and consumer), no orphan: {alerting:?}"
    );
    let state = env.stored_state(cloud, "pairs").await.expect("a state");
    let ids: BTreeSet<String> =
        state["resources"].as_object().unwrap().values().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    let want: BTreeSet<String> = want_streams.union(&want_alarms).chain(alerting.iter()).cloned().collect();
    assert_eq!(ids, want, "the state records each resource once");
    assert!(state.get("pending").is_none(), "nothing is left pending: {state}");
    env.rinfra(&["state", "verify"]).expect_code(0);
}

/// Checks that the state records exactly what the cloud holds under this
/// test's prefix: nothing orphaned, nothing invented.
async fn assert_truthful(env: &Env, cloud: &Cloud) {
    let (streams, alarms) = in_cloud(env, cloud).await;
    let alerting = alerting_in_cloud(env, cloud).await;
    let in_cloud: BTreeSet<String> = streams.union(&alarms).chain(alerting.iter()).cloned().collect();
    let state = env.state("pairs");
    let in_state: BTreeSet<String> =
        state["resources"].as_object().unwrap().values().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(in_state, in_cloud, "the state tells the truth");
    assert!(state.get("pending").is_none(), "nothing is left pending: {state}");
}

pub(crate) fn kill(child: &std::process::Child, signal: i32) {
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(pid, signal) };
}

#[tokio::test(flavor = "multi_thread")]
async fn two_concurrent_ups_exactly_one_proceeds() {
    let env = Env::new("conc");
    env.stack(&pairs(3));
    let cloud = Cloud::new().await;
    let a = env.command(&["up", "--yes"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let b = env.command(&["up", "--yes"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let codes = [a.status.code(), b.status.code()];
    let loser = if a.status.success() { &b } else { &a };
    assert!(codes.contains(&Some(0)) && codes.contains(&Some(1)), "exactly one proceeds: {codes:?}");
    let msg = String::from_utf8_lossy(&loser.stderr);
    assert!(msg.contains("is locked by pid"), "{msg}");
    assert!(loser.stdout.is_empty(), "the loser changed nothing: {}", String::from_utf8_lossy(&loser.stdout));
    assert_converged(&env, &cloud, 3).await;
    env.rinfra(&["destroy", "--yes"]).expect_code(0);
}

#[test]
fn a_stale_lock_is_reported_and_can_be_forced() {
    let env = Env::new("stale");
    env.stack(&pairs(1));
    let lock = env.dir.path().join(".rinfra/pairs.json.lock");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
    // A pid above the kernel's maximum is never alive.
    std::fs::write(&lock, format!(r#"{{"pid":4194305,"host":"{host}","command":"up","started":0}}"#)).unwrap();
    let r = env.rinfra(&["up", "--yes"]).expect_code(1);
    assert!(r.stderr.contains("locked by pid 4194305") && r.stderr.contains("stale"), "{}", r.stderr);
    env.rinfra(&["unlock"]).expect_code(1);
    env.rinfra(&["unlock", "--force"]).expect_code(0);
    assert!(!lock.exists());
    env.rinfra(&["up", "--yes"]).expect_code(0);
    env.rinfra(&["destroy", "--yes"]).expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_up_releases_its_lock_and_the_next_up_finishes() {
    let env = Env::new("intr");
    env.stack(&pairs(3));
    let cloud = Cloud::new().await;
    for (delay, signal) in [(150, libc::SIGINT), (700, libc::SIGTERM)] {
        let child = env.command(&["up", "--yes"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        kill(&child, signal);
        let out = child.wait_with_output().unwrap();
        assert!(!env.dir.path().join(".rinfra/pairs.json.lock").exists(), "{}", String::from_utf8_lossy(&out.stderr));
        if env.dir.path().join(".rinfra/pairs.json").exists() {
            env.rinfra(&["state", "verify"]).expect_code(0);
        }
    }
    env.rinfra(&["up", "--yes"]).expect_code(0);
    assert_converged(&env, &cloud, 3).await;
    env.rinfra(&["destroy", "--yes"]).expect_code(0);
}

/// SIGKILL `up` and `destroy` at seeded random moments; after each, a plain
/// `up` must converge with no orphan, no duplicate and a valid state.
/// `RINFRA_KILL_TRIALS` raises the number of trials (20 by default).
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_random_moments_never_orphans_a_resource() {
    let trials: u64 = std::env::var("RINFRA_KILL_TRIALS").ok().and_then(|t| t.parse().ok()).unwrap_or(20);
    let env = Env::new("kill");
    env.stack(&pairs(2));
    let cloud = Cloud::new().await;
    let outcomes = kill_trials(&env, &cloud, trials, 0x5eed_2026).await;
    eprintln!("kill test: {trials} trials, {outcomes:?}");
    env.rinfra(&["destroy", "--yes"]).expect_code(0);
}

/// Kills `up` and `destroy` of the two-pair stack of `env` at seeded
/// random moments, `trials` times, wherever its backend keeps the state;
/// after each, a plain `up` must converge. Returns what happened.
pub(crate) async fn kill_trials(
    env: &Env,
    cloud: &Cloud,
    trials: u64,
    mut seed: u64,
) -> std::collections::BTreeMap<&'static str, u32> {
    let mut outcomes = std::collections::BTreeMap::<&str, u32>::new();
    for trial in 0..trials {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Every trial interrupts real work: an `up` from nothing, or a
        // `destroy` of everything, killed somewhere inside its duration.
        let command = if trial % 2 == 0 { "up" } else { "destroy" };
        let setup = if command == "up" { "destroy" } else { "up" };
        env.rinfra(&[setup, "--yes"]).expect_code(0);
        let delay = Duration::from_millis(seed % 1200);
        let child = env.command(&[command, "--yes"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(delay);
        kill(&child, libc::SIGKILL);
        let status = child.wait_with_output().unwrap().status;
        *outcomes.entry(if status.code().is_some() { "finished before the kill" } else { "killed" }).or_insert(0) += 1;
        // A killed process cannot remove its lock; the lock names a dead pid.
        if env.lock_held(cloud, "pairs").await {
            let r = env.rinfra(&["up", "--yes"]).expect_code(1);
            assert!(r.stderr.contains("stale"), "trial {trial}: {}", r.stderr);
            env.rinfra(&["unlock", "--force"]).expect_code(0);
        }
        if env.stored_state(cloud, "pairs").await.is_some() {
            env.rinfra(&["state", "verify"]).expect_code(0);
        }
        let mut up = env.rinfra(&["up", "--yes"]);
        // A kill between CreateStream and the ownership tags (LocalStack
        // drops CreateStream's tags) leaves a stream rinfra cannot prove it
        // made: it says which import to run, and a user runs it.
        let imports: Vec<Vec<String>> = up
            .stderr
            .lines()
            .filter_map(|l| l.split("run `rinfra import ").nth(1)?.split('`').next())
            .map(|cmd| cmd.split_whitespace().map(str::to_string).collect())
            .collect();
        if up.code != 0 && !imports.is_empty() {
            *outcomes.entry("adopted by the import rinfra named").or_insert(0) += 1;
            for args in &imports {
                let mut full = vec!["import"];
                full.extend(args.iter().map(String::as_str));
                env.rinfra(&full).expect_code(0);
            }
            up = env.rinfra(&["up", "--yes"]);
        }
        assert_eq!(up.code, 0, "trial {trial} ({command} killed after {delay:?}):\n{}\n{}", up.stdout, up.stderr);
        assert_converged(env, cloud, 2).await;
    }
    let killed = outcomes.get("killed").copied().unwrap_or(0);
    assert!(u64::from(killed) * 4 >= trials, "too few trials interrupted anything: {outcomes:?}");
    outcomes
}

#[tokio::test(flavor = "multi_thread")]
async fn up_converges_through_a_twenty_percent_fault_rate() {
    let mut env = Env::new("fault");
    env.stack(&pairs_and_consumer(10));
    let cloud = Cloud::new().await;
    let proxy = proxy::start(crate::support::endpoint(), 200, 42).await;
    env.endpoint = proxy.url.clone();
    // Retries inside one run absorb most faults; a call that fails five
    // times in a row fails the run, and the next run picks up from the
    // state, as a user would.
    let mut runs = 0;
    loop {
        runs += 1;
        let r = env.rinfra(&["up", "--yes"]);
        if r.code == 0 {
            break;
        }
        assert!(runs < 4, "no convergence after {runs} runs:\n{}", r.stderr);
        env.rinfra(&["state", "verify"]).expect_code(0);
    }
    let (requests, injected) = (proxy.stats.requests.load(std::sync::atomic::Ordering::SeqCst), proxy.stats.injected());
    eprintln!(
        "fault test: {runs} run(s), {requests} requests, {injected} faults {:?}",
        proxy.stats.faults.lock().unwrap()
    );
    assert!(injected > 10, "faults were injected: {injected}");
    assert_converged(&env, &cloud, 10).await;
    proxy.rate.store(0, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        env.rinfra(&["preview"]).expect_code(0).stdout.trim(),
        "No changes. Your infrastructure matches the configuration."
    );
    proxy.rate.store(200, std::sync::atomic::Ordering::SeqCst);
    let mut destroyed = false;
    for _ in 0..4 {
        if env.rinfra(&["destroy", "--yes"]).code == 0 {
            destroyed = true;
            break;
        }
    }
    assert!(destroyed, "destroy converges too");
    assert_eq!(env.state("pairs")["resources"], serde_json::json!({}));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_percent_fault_rate_fails_cleanly_with_a_true_state() {
    let mut env = Env::new("down");
    env.stack(&pairs(2));
    let cloud = Cloud::new().await;
    let proxy = proxy::start(crate::support::endpoint(), 1000, 7).await;
    env.endpoint = proxy.url.clone();
    let r = env.rinfra(&["up", "--yes"]).expect_code(1);
    assert!(r.stderr.contains("failed"), "{}", r.stderr);
    env.rinfra(&["state", "verify"]).expect_code(0);
    assert_truthful(&env, &cloud).await;
    assert_eq!(env.state("pairs")["resources"], serde_json::json!({}), "nothing reached the cloud");
    assert!(!env.dir.path().join(".rinfra/pairs.json.lock").exists());
    // When the cloud comes back, the same stack converges.
    proxy.rate.store(0, std::sync::atomic::Ordering::SeqCst);
    env.rinfra(&["up", "--yes"]).expect_code(0);
    assert_converged(&env, &cloud, 2).await;
    // A failing refresh changes nothing either.
    proxy.rate.store(1000, std::sync::atomic::Ordering::SeqCst);
    let before = std::fs::read(env.dir.path().join(".rinfra/pairs.json")).unwrap();
    env.rinfra(&["up", "--yes"]).expect_code(1);
    assert_eq!(std::fs::read(env.dir.path().join(".rinfra/pairs.json")).unwrap(), before);
    proxy.rate.store(0, std::sync::atomic::Ordering::SeqCst);
    env.rinfra(&["destroy", "--yes"]).expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_never_reach_output_state_or_logs() {
    const SECRET: &str = "rinfraFAKEsecretKEYdoNotLeak0123456789";
    const TOKEN: &str = "rinfraFAKEsessionTOKENdoNotLeak";
    let env = Env::new("secret");
    env.stack(&pairs(1));
    let run = |args: &[&str]| {
        let out = env
            .command(args)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_SESSION_TOKEN", TOKEN)
            .env("RUST_LOG", "trace")
            .output()
            .unwrap();
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    };
    let mut seen = String::new();
    seen += &run(&["up", "--yes", "--stats"]);
    seen += &run(&["preview", "--json"]);
    seen += &run(&["drift", "--json", "--every", "1s", "--max-runs", "1"]);
    seen += &run(&["preview", "--endpoint-url", "http://127.0.0.1:9"]);
    seen += &run(&["destroy", "--yes"]);
    for dir in [env.dir.path().to_path_buf(), env.dir.path().join(".rinfra")] {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            if entry.path().is_file() {
                seen += &String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap());
            }
        }
    }
    assert!(seen.contains("pairs"), "the runs produced output");
    // RUST_LOG=trace must really log (every API call), or this test proves
    // nothing about logs.
    assert!(seen.contains("TRACE") && seen.contains("DescribeStreamSummary"), "trace logging produced nothing");
    assert!(!seen.contains(SECRET) && !seen.contains(TOKEN), "a credential leaked");
}
