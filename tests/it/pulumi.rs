//! Pulumi YAML programs run unchanged: the Registry's examples, functions,
//! `get`, options, providers and regions, and auto-naming, end to end
//! against LocalStack.

use crate::support::{Cloud, Env, proxy, repo_root};

/// A Registry example as `pulumi new` would lay it out: a project header,
/// then the example's text as published.
fn project_of(example: &str) -> String {
    let body = std::fs::read_to_string(repo_root().join("tests/pulumi").join(example)).expect("example");
    format!("name: {}\nruntime: yaml\n{body}", example.trim_end_matches(".yaml").replace('_', "-"))
}

/// The examples that use only rinfra's types.
const DEPLOYABLE: &[&str] = &[
    "kinesis_stream_basic.yaml",
    "metric_alarm_basic.yaml",
    "metric_alarm_metrics_math_expression.yaml",
    "metric_alarm_anomaly_detection.yaml",
    "metric_alarm_metrics_insights_query.yaml",
];

/// The examples that need what the example does not declare, or what
/// rinfra lacks, with what the error must name.
const REFUSED: &[(&str, &str)] = &[
    ("metric_alarm_scaling_policies.yaml", "unknown resource type `aws:autoscaling:Policy`"),
    ("metric_alarm_nlb_healthy_hosts.yaml", "`logstashServersCount` is not defined"),
    ("metric_alarm_promql.yaml", "`evaluationCriteria` of aws:cloudwatch:MetricAlarm is not supported yet"),
];

#[tokio::test]
async fn registry_examples_validate_deploy_and_then_show_no_changes() {
    let listed: Vec<&str> = DEPLOYABLE.iter().copied().chain(REFUSED.iter().map(|(f, _)| *f)).collect();
    let mut found: Vec<String> = std::fs::read_dir(repo_root().join("tests/pulumi"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    found.sort();
    let mut expected: Vec<String> = listed.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(found, expected, "every example is run");

    let cloud = Cloud::new().await;
    for example in DEPLOYABLE {
        let env = Env::new("registry");
        env.project(&project_of(example));
        env.project_rinfra(&["stack", "init", "dev"]).expect_code(0);
        env.project_rinfra(&["validate"]).expect_code(0);
        let up = env.project_rinfra(&["up", "--yes"]).expect_code(0);
        assert!(up.stdout.contains("Apply complete!"), "{example}\n{}", up.stdout);
        let again = env.project_rinfra(&["preview"]).expect_code(0);
        assert!(again.stdout.contains("No changes."), "{example} previews a change after up:\n{}", again.stdout);
        let state = env.state("dev");
        env.project_rinfra(&["destroy", "--yes"]).expect_code(0);
        for r in state["resources"].as_object().unwrap().values() {
            let id = r["id"].as_str().unwrap();
            match r["type"].as_str().unwrap() {
                "aws:kinesis:Stream" => cloud.wait_gone(id).await,
                _ => assert!(cloud.alarm(id).await.is_none(), "{example}: {id} is left"),
            }
        }
    }
    for (example, names) in REFUSED {
        let env = Env::with_endpoint("registry", "http://127.0.0.1:9");
        env.project(&project_of(example));
        env.project_rinfra(&["stack", "init", "dev"]).expect_code(0);
        let run = env.project_rinfra(&["validate"]).expect_code(1);
        assert!(run.stderr.contains(names), "{example}\n{}", run.stderr);
        assert!(run.stderr.contains("--> Pulumi.yaml:"), "{example}: the error is located\n{}", run.stderr);
        insta::assert_snapshot!(example.trim_end_matches(".yaml"), run.stderr);
    }
}

// The proxy serves on this runtime while the test waits for rinfra.
#[tokio::test(flavor = "multi_thread")]
async fn an_auto_named_stream_is_replaced_create_before_delete_and_its_alarm_follows_first() {
    let px = proxy::start(crate::support::endpoint(), 0, 7).await;
    let env = Env::with_endpoint("autoname", &px.url);
    let program = r#"name: autoname
runtime: yaml
config:
  shards:
    type: integer
    default: 1
resources:
  events:
    type: aws:kinesis:Stream
    properties:
      shardCount: ${shards}
    options:
      replaceOnChanges: [shardCount]
  events-alarm:
    type: aws:cloudwatch:MetricAlarm
    properties:
      comparisonOperator: GreaterThanThreshold
      evaluationPeriods: 1
      metricName: WriteProvisionedThroughputExceeded
      namespace: AWS/Kinesis
      period: 60
      statistic: Sum
      threshold: 0
      dimensions:
        StreamName: ${events.name}
outputs:
  stream: ${events.name}
"#;
    env.project(program);
    env.project_rinfra(&["stack", "init", "dev"]).expect_code(0);
    let preview = env.project_rinfra(&["preview"]).expect_code(0);
    env.project_rinfra(&["up", "--yes"]).expect_code(0);
    let first = env.state("dev")["resources"]["events"]["id"].as_str().unwrap().to_string();
    assert!(first.starts_with("events-") && first.len() == "events-".len() + 7, "{first}");
    assert!(preview.stdout.contains(&first), "the preview showed the name `up` then gave\n{}", preview.stdout);
    let cloud = Cloud::new().await;
    assert!(cloud.stream(&first).await.is_some());
    assert!(env.project_rinfra(&["preview"]).expect_code(0).stdout.contains("No changes."));

    env.project_rinfra(&["config", "set", "shards", "2"]).expect_code(0);
    let plan = env.project_rinfra(&["preview"]).expect_code(0);
    assert!(plan.stdout.contains("+/- events"), "create before delete:\n{}", plan.stdout);
    px.stats.operations.lock().unwrap().clear();
    env.project_rinfra(&["up", "--yes"]).expect_code(0);
    let second = env.state("dev")["resources"]["events"]["id"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    let ops = px.stats.operations.lock().unwrap().clone();
    let at = |op: &str| ops.iter().position(|o| o == op).unwrap_or_else(|| panic!("no {op} in {ops:?}"));
    assert!(at("CreateStream") < at("PutMetricAlarm"), "{ops:?}");
    assert!(at("PutMetricAlarm") < at("DeleteStream"), "the alarm moves to the new stream first: {ops:?}");
    let alarm_name = env.state("dev")["resources"]["events-alarm"]["id"].as_str().unwrap().to_string();
    let alarm = cloud.alarm(&alarm_name).await.unwrap();
    assert_eq!(alarm.dimensions()[0].value(), Some(second.as_str()));
    cloud.wait_gone(&first).await;
    assert!(cloud.stream(&second).await.is_some());
    assert!(env.project_rinfra(&["preview"]).expect_code(0).stdout.contains("No changes."));
    env.project_rinfra(&["destroy", "--yes"]).expect_code(0);
    cloud.wait_gone(&second).await;
}

#[tokio::test]
async fn a_stack_in_us_west_2_and_an_explicit_provider_put_each_resource_in_its_region() {
    let env = Env::new("regions");
    let program = r#"name: regions
runtime: yaml
resources:
  east:
    type: pulumi:providers:aws
    properties:
      region: us-east-1
      defaultTags:
        tags:
          owner: platform
          env: east
  home:
    type: aws:kinesis:Stream
    properties:
      name: PREFIX-home
      shardCount: 1
  away:
    type: aws:kinesis:Stream
    properties:
      name: PREFIX-away
      shardCount: 1
      tags:
        env: override
    options:
      provider: ${east}
  away-alarm:
    type: aws:cloudwatch:MetricAlarm
    properties:
      name: PREFIX-away-alarm
      comparisonOperator: GreaterThanThreshold
      evaluationPeriods: 1
      metricName: IncomingRecords
      namespace: AWS/Kinesis
      period: 60
      extendedStatistic: p99.9
      threshold: 0
      dimensions:
        StreamName: ${away.name}
    options:
      provider: ${east}
outputs:
  homeRegion: ${home.region}
  awayTags: ${away.tagsAll}
  here:
    fn::invoke:
      function: aws:index/getRegion:getRegion
      return: name
"#;
    env.project(program);
    std::fs::write(env.dir.path().join("Pulumi.dev.yaml"), "config:\n  aws:region: us-west-2\n").unwrap();
    env.project_rinfra(&["stack", "select", "dev", "--create"]).expect_code(0);
    let up = env.project_rinfra(&["up", "--yes"]).expect_code(0);
    assert!(up.stdout.contains("homeRegion = \"us-west-2\""), "{}", up.stdout);
    assert!(up.stdout.contains("here       = \"us-west-2\""), "{}", up.stdout);
    let (west, east) = (Cloud::in_region("us-west-2").await, Cloud::new().await);
    let (home, away) = (env.name("home"), env.name("away"));
    assert!(west.stream(&home).await.is_some(), "aws:region puts the stack's resources in us-west-2");
    assert!(east.stream(&home).await.is_none());
    assert!(east.stream(&away).await.is_some(), "the explicit provider's region wins");
    assert!(west.stream(&away).await.is_none());
    assert!(east.alarm(&env.name("away-alarm")).await.is_some());
    let tags = east.kinesis.list_tags_for_stream().stream_name(&away).send().await.unwrap();
    let tag = |k: &str| tags.tags().iter().find(|t| t.key() == k).and_then(|t| t.value()).map(str::to_string);
    assert_eq!((tag("owner"), tag("env")), (Some("platform".into()), Some("override".into())));
    let state = env.state("dev");
    assert_eq!(state["resources"]["home"]["inputs"]["region"], "us-west-2", "the state records each region");
    assert_eq!(state["resources"]["away"]["inputs"]["region"], "us-east-1");
    assert!(env.project_rinfra(&["preview"]).expect_code(0).stdout.contains("No changes."));

    // Drift is read where the resource lives.
    west.kinesis.add_tags_to_stream().stream_name(&home).tags("changed", "outside").send().await.unwrap();
    let program_with_tags = program.replace("      name: PREFIX-home\n", "      name: PREFIX-home\n      tags: {}\n");
    env.project(&program_with_tags);
    let drift = env.project_rinfra(&["drift"]);
    assert!(drift.stdout.contains("changed"), "{}\n{}", drift.stdout, drift.stderr);

    env.project_rinfra(&["destroy", "--yes"]).expect_code(0);
    west.wait_gone(&home).await;
    east.wait_gone(&away).await;
    assert!(east.alarm(&env.name("away-alarm")).await.is_none());
}

#[tokio::test]
async fn functions_get_and_options_work_end_to_end() {
    let env = Env::new("compat");
    let cloud = Cloud::new().await;
    let shared = env.name("shared");
    cloud.kinesis.create_stream().stream_name(&shared).shard_count(2).send().await.unwrap();
    cloud.wait_active(&shared).await;
    let program = r#"name: compat
runtime: yaml
variables:
  account:
    fn::invoke:
      function: aws:index/getCallerIdentity:getCallerIdentity
      return: accountId
  partition:
    fn::aws:getPartition: {}
resources:
  existing:
    type: aws:kinesis:Stream
    get:
      id: PREFIX-shared
  mine:
    type: aws:kinesis:Stream
    properties:
      name: PREFIX-${partition.partition}-${account}
      shardCount: ${existing.shardCount}
    options:
      customTimeouts:
        create: 5m
        delete: 5m
      additionalSecretOutputs: [arn]
      version: 7.0.0
outputs:
  existingArn: ${existing.arn}
  status:
    fn::invoke:
      function: aws:kinesis/getStream:getStream
      arguments:
        name: ${mine.name}
      return: status
  mineArn: ${mine.arn}
"#;
    env.project(program);
    env.project_rinfra_with("pw", &["stack", "init", "dev"]).expect_code(0);
    let up = env.project_rinfra_with("pw", &["up", "--yes"]).expect_code(0);
    assert!(up.stderr.contains("option `version` is ignored"), "{}", up.stderr);
    let mine = env.name("aws-000000000000");
    let made = cloud.stream(&mine).await.expect("the name used getPartition and getCallerIdentity");
    assert_eq!(made.open_shard_count(), 2, "the shard count came from the stream read with get");
    assert!(up.stdout.contains("status      = \"ACTIVE\""), "{}", up.stdout);
    assert!(up.stdout.contains(&format!("stream/{shared}")), "{}", up.stdout);
    assert!(!up.stdout.contains(&format!("stream/{mine}")), "additionalSecretOutputs masks the ARN\n{}", up.stdout);
    let state_text = std::fs::read_to_string(env.dir.path().join(".rinfra/dev.json")).expect("state in the project");
    assert!(!state_text.contains(&format!("stream/{mine}")), "the ARN is sealed in the state");
    let state = env.state("dev");
    assert!(state["resources"].get("existing").is_none(), "a resource read with get is not managed");

    // A rename with an alias keeps the stream.
    let renamed = program
        .replace("  mine:\n", "  renamed:\n")
        .replace("      version: 7.0.0\n", "      version: 7.0.0\n      aliases: [mine]\n")
        .replace("${mine.", "${renamed.");
    env.project(&renamed);
    let preview = env.project_rinfra_with("pw", &["preview"]).expect_code(0);
    assert!(preview.stderr.contains("renamed from mine"), "{}", preview.stderr);
    assert!(preview.stdout.contains("No changes."), "{}", preview.stdout);
    env.project_rinfra_with("pw", &["up", "--yes"]).expect_code(0);
    assert!(env.project_rinfra_with("pw", &["preview"]).expect_code(0).stdout.contains("No changes."));

    env.project_rinfra_with("pw", &["destroy", "--yes"]).expect_code(0);
    cloud.wait_gone(&mine).await;
    assert!(cloud.stream(&shared).await.is_some(), "what get read is never deleted");
    cloud.kinesis.delete_stream().stream_name(&shared).send().await.unwrap();
}

#[test]
fn a_program_in_the_directory_main_names_is_run_with_the_projects_name() {
    let env = Env::new("main");
    env.project("name: mainproj\nruntime: yaml\nmain: infra/\n");
    std::fs::create_dir(env.dir.path().join("infra")).unwrap();
    std::fs::write(env.dir.path().join("infra/note.txt"), "from infra").unwrap();
    let program = "config:\n  shards: 1\nresources:\n  s:\n    type: aws:kinesis:Stream\n    properties:\n      name: PREFIX-s\n      shardCount: ${shards}\n      tags:\n        note: {fn::readFile: note.txt}\n";
    std::fs::write(env.dir.path().join("infra/Main.yaml"), program.replace("PREFIX", &env.prefix)).unwrap();
    env.project_rinfra(&["stack", "init", "dev"]).expect_code(0);
    let plan = env.project_rinfra(&["preview"]).expect_code(0);
    assert!(plan.stdout.contains("\"note\" = \"from infra\""), "readFile is relative to the program\n{}", plan.stdout);
    // Errors are located in the program's own file.
    std::fs::write(env.dir.path().join("infra/Main.yaml"), "resources:\n  s:\n    type: aws:kinesis:Strem\n").unwrap();
    let bad = env.project_rinfra(&["validate"]).expect_code(1);
    assert!(bad.stderr.contains("--> infra/Main.yaml:3:11"), "{}", bad.stderr);
}
