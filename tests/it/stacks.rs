//! Projects with several stacks, their config files and secrets, end to
//! end against LocalStack.

use crate::support::{Cloud, Env, SEED, counting_endpoint};

const NO_CHANGES: &str = "No changes. Your infrastructure matches the configuration.";

/// The seed as a project whose names come from per-stack config, with a
/// secret that reaches the alarm's description and an output.
const PROJECT: &str = r#"name: proj
runtime: yaml
config:
  prefix:
    type: String
  token:
    type: String
    secret: true
    default: no-token-set
resources:
  stream:
    type: aws:kinesis:Stream
    properties:
      name: ${prefix}-kinesis-stream
      shardCount: 1
  alarm:
    type: aws:cloudwatch:MetricAlarm
    properties:
      name: ${prefix}-kinesis-alarm
      comparisonOperator: GreaterThanThreshold
      evaluationPeriods: 1
      metricName: WriteProvisionedThroughputExceeded
      namespace: AWS/Kinesis
      period: 60
      statistic: Sum
      threshold: 1
      alarmDescription: "paged with ${token}"
      dimensions:
        StreamName: ${stream.name}
outputs:
  streamName: ${stream.name}
  description: ${alarm.alarmDescription}
"#;

const PASS: &str = "correct horse";

#[tokio::test(flavor = "multi_thread")]
async fn two_stacks_of_one_project_coexist_and_are_destroyed_apart() {
    let env = Env::new("stacks");
    env.project(PROJECT);
    let cloud = Cloud::new().await;
    let (dev, prod) = (env.name("dev"), env.name("prod"));
    let run = |args: &[&str]| env.project_rinfra_with(PASS, args);

    run(&["stack", "init", "dev"]).expect_code(0);
    run(&["config", "set", "prefix", &dev]).expect_code(0);
    run(&["stack", "init", "prod"]).expect_code(0);
    run(&["config", "set", "proj:prefix", &prod]).expect_code(0);
    let file = std::fs::read_to_string(env.dir.path().join("Pulumi.dev.yaml")).unwrap();
    assert!(file.contains(&format!("proj:prefix: {dev}")), "{file}");

    // `prod` is selected: the last one created.
    let up = run(&["up", "--yes"]).expect_code(0);
    assert!(up.stdout.contains("2 created"), "{}", up.stdout);
    run(&["up", "-s", "dev", "--yes"]).expect_code(0);
    assert!(cloud.stream(&format!("{dev}-kinesis-stream")).await.is_some());
    assert!(cloud.stream(&format!("{prod}-kinesis-stream")).await.is_some());

    // Each stack remembers its own config: no `-c`, no changes.
    assert_eq!(run(&["preview", "-s", "dev"]).expect_code(0).stdout.trim(), NO_CHANGES);
    assert_eq!(run(&["preview", "-s", "prod"]).expect_code(0).stdout.trim(), NO_CHANGES);

    // `-c` overrides for one run, says so, and saves nothing.
    let over = run(&["preview", "-s", "dev", "-c", "prefix=elsewhere"]).expect_code(0);
    assert!(over.stderr.contains("--config overrides `prefix` for this run only"), "{}", over.stderr);
    assert!(over.stdout.contains("must be replaced"), "{}", over.stdout);
    assert_eq!(std::fs::read_to_string(env.dir.path().join("Pulumi.dev.yaml")).unwrap(), file);

    let ls = run(&["stack", "ls", "--json"]).expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&ls.stdout).unwrap();
    assert_eq!(v["project"], "proj");
    assert_eq!(v["stacks"][0]["name"], "dev");
    assert_eq!(v["stacks"][0]["resourceCount"], 2);
    assert_eq!(v["stacks"][1]["current"], true);
    let text = run(&["stack", "ls"]).expect_code(0).stdout;
    assert!(text.lines().any(|l| l.starts_with("prod*")), "{text}");

    let out = run(&["stack", "output", "-s", "prod", "--json"]).expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["streamName"], format!("{prod}-kinesis-stream"));
    let history = run(&["stack", "history", "-s", "prod", "--json"]).expect_code(0);
    let h: serde_json::Value = serde_json::from_str(&history.stdout).unwrap();
    assert_eq!(h["updates"][0]["command"], "up");
    assert_eq!(h["updates"][0]["summary"]["create"], 2);

    // The states are apart, each naming its project and stack.
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.dir.path().join(".rinfra/dev.json")).unwrap()).unwrap();
    assert_eq!((state["project"].as_str(), state["stack"].as_str()), (Some("proj"), Some("dev")));
    assert_eq!(state["resources"]["stream"]["urn"], "urn:rinfra:dev::proj::aws:kinesis:Stream::stream");

    // Drift across every stack: one report and one history line each.
    cloud.raise_retention(&format!("{prod}-kinesis-stream"), 48).await;
    let drift = run(&["drift", "--all-stacks", "--every", "1s", "--max-runs", "1", "--json"]).expect_code(2);
    let reports: Vec<serde_json::Value> = drift.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let statuses: Vec<(&str, &str)> =
        reports.iter().map(|r| (r["stack"].as_str().unwrap(), r["status"].as_str().unwrap())).collect();
    assert_eq!(statuses, [("proj/dev", "in-sync"), ("proj/prod", "drifted")], "{}", drift.stdout);
    for stack in ["dev", "prod"] {
        let h = std::fs::read_to_string(env.dir.path().join(format!(".rinfra/{stack}.drift.jsonl"))).unwrap();
        assert_eq!(h.lines().count(), 1, "{stack}: {h}");
    }
    run(&["up", "-s", "prod", "--yes"]).expect_code(0);

    // A stack with resources is not removed without --force.
    let refused = run(&["stack", "rm", "dev", "--yes"]).expect_code(1);
    assert!(refused.stderr.contains("still has 2 resources"), "{}", refused.stderr);
    // `-s` names the stack to remove, not the selected one (prod).
    let refused = run(&["stack", "rm", "-s", "dev", "--yes"]).expect_code(1);
    assert!(refused.stderr.contains("stack `dev` still has 2 resources"), "{}", refused.stderr);

    run(&["destroy", "-s", "dev", "--yes"]).expect_code(0);
    assert!(cloud.stream(&format!("{dev}-kinesis-stream")).await.is_none());
    assert!(cloud.stream(&format!("{prod}-kinesis-stream")).await.is_some(), "prod is untouched");
    assert_eq!(run(&["preview", "-s", "prod"]).expect_code(0).stdout.trim(), NO_CHANGES);
    run(&["stack", "rm", "dev", "--yes"]).expect_code(0);
    assert!(!env.dir.path().join("Pulumi.dev.yaml").exists());
    let unknown = run(&["preview", "-s", "dev"]).expect_code(1);
    assert!(unknown.stderr.contains("has no stack `dev` (it has: prod); create it with `rinfra stack init dev`"));

    run(&["destroy", "--yes"]).expect_code(0);
    assert!(cloud.stream(&format!("{prod}-kinesis-stream")).await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_stay_encrypted_in_the_stack_file_and_the_state() {
    let env = Env::new("secret");
    env.project(PROJECT);
    let cloud = Cloud::new().await;
    let secret = format!("tok-{}", env.prefix);
    let run = |args: &[&str]| env.project_rinfra_with(PASS, args);

    run(&["stack", "init", "dev"]).expect_code(0);
    run(&["config", "set", "prefix", &env.prefix]).expect_code(0);
    // Without a passphrase a secret cannot be stored.
    let nopass = env.project_rinfra(&["config", "set", "--secret", "token", &secret]).expect_code(1);
    assert!(nopass.stderr.contains("needs a passphrase"), "{}", nopass.stderr);
    run(&["config", "set", "--secret", "token", &secret]).expect_code(0);
    let file = std::fs::read_to_string(env.dir.path().join("Pulumi.dev.yaml")).unwrap();
    assert!(file.starts_with("encryptionsalt: v1:") && file.contains("secure: v1:"), "{file}");
    assert!(!file.contains(&secret), "{file}");
    assert_eq!(run(&["config", "get", "token"]).expect_code(0).stdout.trim(), "[secret]");
    assert_eq!(run(&["config", "get", "token", "--show-secrets"]).expect_code(0).stdout.trim(), secret);

    let up = run(&["up", "--yes"]).expect_code(0);
    assert!(!up.stdout.contains(&secret), "{}", up.stdout);
    let alarm = cloud.alarm(&format!("{}-kinesis-alarm", env.prefix)).await.unwrap();
    assert_eq!(alarm.alarm_description(), Some(format!("paged with {secret}").as_str()), "the cloud gets the value");

    // The state holds ciphertext for every value derived from the secret.
    let state = std::fs::read_to_string(env.dir.path().join(".rinfra/dev.json")).unwrap();
    assert!(!state.contains(&secret), "{state}");
    assert!(state.contains("\"ciphertext\": \"v1:"), "{state}");
    assert!(!std::fs::read_to_string(env.dir.path().join(".rinfra/dev.json.bak")).unwrap().contains(&secret));

    assert_eq!(run(&["output", "description"]).expect_code(0).stdout.trim(), "paged with [secret]");
    let shown = run(&["output", "description", "--show-secrets"]).expect_code(0);
    assert_eq!(shown.stdout.trim(), format!("paged with {secret}"));
    assert_eq!(run(&["preview"]).expect_code(0).stdout.trim(), NO_CHANGES);
    // Pulumi's variable works too.
    let pulumi = env.in_project(&["preview"]).env("PULUMI_CONFIG_PASSPHRASE", PASS).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&pulumi.stdout).trim(), NO_CHANGES);

    // A wrong or missing passphrase stops before any API call.
    let (url, count) = counting_endpoint();
    for (pass, message) in [(Some("wrong"), "incorrect passphrase"), (None, "no passphrase is set")] {
        let mut cmd = env.in_project_via(&url, &["up", "--yes"]);
        if let Some(p) = pass {
            cmd.env("RINFRA_CONFIG_PASSPHRASE", p);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(message), "{stderr}");
    }
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 0, "a refused passphrase reached the cloud");

    // A secret that changes stays encrypted in its old form too, for as
    // long as the state holds values made from it.
    let old = format!("paged with {secret}");
    run(&["config", "set", "--secret", "token", "rotated"]).expect_code(0);
    run(&["state", "mv", "alarm", "pager"]).expect_code(0);
    let state = std::fs::read_to_string(env.dir.path().join(".rinfra/dev.json")).unwrap();
    assert!(!state.contains(&old) && !state.contains(&secret), "{state}");
    run(&["state", "mv", "pager", "alarm"]).expect_code(0);

    // An export holds ciphertext; one with the secret in clear is sealed
    // on the way in.
    let export = run(&["stack", "export"]).expect_code(0).stdout;
    assert!(!export.contains(&secret), "{export}");
    let mut clear: serde_json::Value = serde_json::from_str(&export).unwrap();
    clear["outputs"]["description"] = serde_json::Value::String(old.clone());
    let mut doc: rinfra_state::StateFile = serde_json::from_value(clear).unwrap();
    doc.checksum = doc.compute_checksum();
    std::fs::write(env.dir.path().join("clear.json"), serde_json::to_string(&doc).unwrap()).unwrap();
    run(&["stack", "import", "--file", "clear.json", "--force"]).expect_code(0);
    let state = std::fs::read_to_string(env.dir.path().join(".rinfra/dev.json")).unwrap();
    assert!(!state.contains(&secret), "{state}");

    run(&["config", "set", "--secret", "token", &secret]).expect_code(0);
    run(&["destroy", "--yes"]).expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_single_file_state_moves_into_the_first_stack_of_the_project() {
    let env = Env::new("migrate");
    env.stack(SEED);
    let cloud = Cloud::new().await;
    env.rinfra(&["up", "--yes"]).expect_code(0);
    assert!(env.dir.path().join(".rinfra/seed.json").exists());

    // The same program becomes a project with a `dev` stack. A preview
    // reads the old state in its place and moves nothing.
    env.project(SEED);
    std::fs::write(env.dir.path().join("Pulumi.dev.yaml"), "config: {}\n").unwrap();
    let p = env.project_rinfra(&["preview", "-s", "dev"]).expect_code(0);
    assert_eq!(p.stdout.trim(), NO_CHANGES, "{}", p.stderr);
    assert!(p.stderr.contains("is read in its place"), "{}", p.stderr);
    assert!(env.dir.path().join(".rinfra/seed.json").exists(), "a preview writes nothing");
    assert!(!env.dir.path().join(".rinfra/dev.json").exists());

    // The first command that writes moves it, once.
    let up = env.project_rinfra(&["up", "-s", "dev", "--yes"]).expect_code(0);
    assert_eq!(up.stdout.trim(), NO_CHANGES, "{}", up.stderr);
    assert!(up.stderr.contains("moved the state of `seed/dev` from"), "{}", up.stderr);
    assert!(!env.dir.path().join(".rinfra/seed.json").exists(), "never two live copies");
    assert!(env.dir.path().join(".rinfra/seed.json.migrated").exists());
    let again = env.project_rinfra(&["preview", "-s", "dev"]).expect_code(0);
    assert!(!again.stderr.contains("moved") && !again.stderr.contains("in its place"), "{}", again.stderr);
    env.project_rinfra(&["destroy", "-s", "dev", "--yes"]).expect_code(0);
    assert!(cloud.stream(&env.name("kinesis-stream")).await.is_none());
}

/// Pulumi YAML's built-in functions, end to end: every one shapes a value
/// that reaches the cloud or an output.
#[tokio::test(flavor = "multi_thread")]
async fn builtin_functions_evaluate_end_to_end() {
    let env = Env::new("fns");
    env.project(
        r#"name: fns
runtime: yaml
config:
  parts: {type: String, default: "PREFIX,built"}
variables:
  name:
    fn::join: ['-', {fn::split: [',', '${parts}']}]
resources:
  stream:
    type: aws:kinesis:Stream
    properties:
      name: ${name}
      shardCount: {fn::select: [0, [1, 2]]}
      shardLevelMetrics: [IncomingBytes]
      retentionPeriod: '48'    # quoted, as Pulumi programs often write it
      tags: {team: data}
  stream.alarm:
    type: aws:cloudwatch:MetricAlarm
    properties:
      name: ${name}-alarm
      comparisonOperator: GreaterThanThreshold
      evaluationPeriods: 1
      metricName: WriteProvisionedThroughputExceeded
      namespace: AWS/Kinesis
      period: 60
      statistic: Sum
      threshold: 1
      alarmDescription:
        fn::readFile: description.txt
      dimensions:
        StreamName: ${stream.name}
outputs:
  dims:
    fn::toJSON: {stream: '${stream.name}'}
  encoded:
    fn::toBase64: ${name}
  decoded:
    fn::fromBase64:
      fn::toBase64: ${name}
  token:
    fn::secret: hush-PREFIX
  metric: ${stream.shardLevelMetrics[0]}
  dimension: ${["stream.alarm"].dimensions["StreamName"]}
  where: ${pulumi.organization}/${pulumi.project}/${pulumi.stack}
  id: ${stream.id}
  urn: ${stream.urn}
  team: ${stream.tagsAll["team"]}
"#,
    );
    std::fs::write(env.dir.path().join("description.txt"), "Paged when writes are throttled").unwrap();
    let cloud = Cloud::new().await;
    let run = |args: &[&str]| env.project_rinfra_with(PASS, args);
    run(&["stack", "init", "dev"]).expect_code(0);
    run(&["up", "--yes"]).expect_code(0);
    let name = format!("{}-built", env.prefix);
    let stream = cloud.stream(&name).await.expect("fn::join of fn::split named the stream");
    assert_eq!(stream.retention_period_hours(), 48, "a quoted integer is an integer");
    let alarm = cloud.alarm(&format!("{name}-alarm")).await.unwrap();
    assert_eq!(alarm.alarm_description(), Some("Paged when writes are throttled"));
    let out: serde_json::Value = serde_json::from_str(&run(&["output", "--json"]).expect_code(0).stdout).unwrap();
    assert_eq!(out["dims"], format!(r#"{{"stream":"{name}"}}"#));
    assert_eq!(out["decoded"], name.as_str());
    assert_eq!(out["token"], "[secret]");
    // References index lists and quote keys.
    assert_eq!(out["metric"], "IncomingBytes");
    assert_eq!(out["dimension"], name.as_str());
    assert_eq!(out["where"], "organization/fns/dev");
    assert_eq!(out["id"], name.as_str());
    assert_eq!(out["urn"], "urn:rinfra:dev::fns::aws:kinesis:Stream::stream");
    assert_eq!(out["team"], "data");
    let state = std::fs::read_to_string(env.dir.path().join(".rinfra/dev.json")).unwrap();
    assert!(!state.contains(&format!("hush-{}", env.prefix)), "fn::secret is sealed in the state");
    assert_eq!(run(&["preview"]).expect_code(0).stdout.trim(), NO_CHANGES);
    run(&["destroy", "--yes"]).expect_code(0);
}
