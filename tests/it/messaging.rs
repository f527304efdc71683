//! SNS, SQS and stream consumers end to end against LocalStack: each type
//! is created, updated in place with the narrowest call, replaced, read
//! for drift, imported and deleted; policies compare as JSON; shard counts
//! move in legal steps.

use crate::support::{Cloud, Env};

#[tokio::test(flavor = "multi_thread")]
async fn a_queue_is_created_updated_in_place_drifts_imports_and_is_replaced() {
    let env = Env::new("queue");
    let program = r#"name: queue
runtime: yaml
config:
  visibility:
    type: integer
    default: 30
resources:
  inbox:
    type: aws:sqs:Queue
    properties:
      name: PREFIX-inbox
      visibilityTimeoutSeconds: ${visibility}
      tags:
        team: data
  dead:
    type: aws:sqs:Queue
    properties:
      name: PREFIX-dead
  withRedrive:
    type: aws:sqs:Queue
    properties:
      name: PREFIX-redrive
      redrivePolicy:
        fn::toJSON:
          deadLetterTargetArn: ${dead.arn}
          maxReceiveCount: 5
outputs:
  url: ${inbox.url}
"#;
    env.project(program);
    env.project_rinfra(&["stack", "init", "dev"]).expect_code(0);
    env.project_rinfra(&["up", "--yes"]).expect_code(0);
    assert!(
        env.project_rinfra(&["preview"]).expect_code(0).stdout.contains("No changes."),
        "the redrive policy compares as JSON"
    );
    let cloud = Cloud::new().await;
    let url =
        cloud.sqs.get_queue_url().queue_name(env.name("inbox")).send().await.unwrap().queue_url().unwrap().to_string();

    env.project_rinfra(&["config", "set", "visibility", "120"]).expect_code(0);
    let up = env.project_rinfra(&["up", "--yes", "--stats"]).expect_code(0);
    assert_eq!(up.calls("sqs:SetQueueAttributes"), 1, "one call updates the attribute in place\n{}", up.stderr);
    assert_eq!(up.calls("sqs:CreateQueue"), 0);
    // Every other attribute at once is still one call, and tags one more.
    let many = program.replace(
        "      tags:\n        team: data\n",
        "      messageRetentionSeconds: 86400\n      maxMessageSize: 131072\n      delaySeconds: 5\n      receiveWaitTimeSeconds: 10\n      sqsManagedSseEnabled: false\n      tags:\n        team: data\n        tier: gold\n",
    );
    env.project(&many);
    let up = env.project_rinfra(&["up", "--yes", "--stats"]).expect_code(0);
    assert_eq!((up.calls("sqs:SetQueueAttributes"), up.calls("sqs:TagQueue")), (1, 1), "{}", up.stderr);
    assert!(env.project_rinfra(&["preview"]).expect_code(0).stdout.contains("No changes."));
    env.project(program);
    env.project_rinfra(&["up", "--yes"]).expect_code(0);

    // Drift: an attribute changed behind rinfra's back.
    cloud
        .sqs
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(aws_sdk_sqs::types::QueueAttributeName::DelaySeconds, "15")
        .send()
        .await
        .unwrap();
    let drift = env.project_rinfra(&["drift"]);
    assert_eq!(drift.code, 2, "{}\n{}", drift.stdout, drift.stderr);
    assert!(drift.stdout.contains("delaySeconds"), "{}", drift.stdout);
    env.project_rinfra(&["up", "--yes"]).expect_code(0);

    // Import: forget the queue, then adopt it again by name.
    env.project_rinfra(&["state", "rm", "inbox"]).expect_code(0);
    env.project_rinfra(&["import", "inbox", &env.name("inbox")]).expect_code(0);
    assert!(env.project_rinfra(&["preview"]).expect_code(0).stdout.contains("No changes."));

    // A FIFO queue is another queue: a replace.
    let fifo = program.replace("      name: PREFIX-inbox\n", "      name: PREFIX-inbox.fifo\n      fifoQueue: true\n");
    env.project(&fifo);
    let plan = env.project_rinfra(&["preview"]).expect_code(0);
    assert!(plan.stdout.contains("must be replaced"), "{}", plan.stdout);
    env.project_rinfra(&["up", "--yes"]).expect_code(0);
    assert!(cloud.sqs.get_queue_url().queue_name(env.name("inbox.fifo")).send().await.is_ok());
    assert!(cloud.sqs.get_queue_url().queue_name(env.name("inbox")).send().await.is_err(), "the old queue is deleted");

    env.project_rinfra(&["destroy", "--yes"]).expect_code(0);
    for q in ["inbox.fifo", "dead", "redrive"] {
        assert!(cloud.sqs.get_queue_url().queue_name(env.name(q)).send().await.is_err(), "{q} is left");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_topic_its_policy_and_a_subscription_update_in_place_and_compare_policies_as_json() {
    let env = Env::new("topic");
    let program = r#"name: topic
runtime: yaml
config:
  display:
    type: string
    default: Alerts
  raw:
    type: boolean
    default: false
resources:
  alerts:
    type: aws:sns:Topic
    properties:
      name: PREFIX-alerts
      displayName: ${display}
      tags:
        audience: ${display}
  alertsPolicy:
    type: aws:sns:TopicPolicy
    properties:
      arn: ${alerts.arn}
      policy:
        Version: "2012-10-17"
        Statement:
          Effect: Allow
          Principal: {AWS: "*"}
          Action: [SNS:Publish]
          Resource: ${alerts.arn}
  inbox:
    type: aws:sqs:Queue
    properties:
      name: PREFIX-inbox
  sub:
    type: aws:sns:TopicSubscription
    properties:
      topic: ${alerts.arn}
      protocol: sqs
      endpoint: ${inbox.arn}
      rawMessageDelivery: ${raw}
"#;
    env.project(program);
    env.project_rinfra(&["stack", "init", "dev"]).expect_code(0);
    env.project_rinfra(&["up", "--yes"]).expect_code(0);
    let again = env.project_rinfra(&["preview"]).expect_code(0);
    assert!(
        again.stdout.contains("No changes."),
        "a one-statement policy and AWS's list form are one policy\n{}",
        again.stdout
    );

    env.project_rinfra(&["config", "set", "display", "Pager"]).expect_code(0);
    env.project_rinfra(&["config", "set", "raw", "true"]).expect_code(0);
    let up = env.project_rinfra(&["up", "--yes", "--stats"]).expect_code(0);
    assert_eq!(up.calls("sns:SetTopicAttributes"), 1, "{}", up.stderr);
    assert_eq!(up.calls("sns:TagResource"), 1, "{}", up.stderr);
    assert_eq!(up.calls("sns:SetSubscriptionAttributes"), 1, "{}", up.stderr);
    assert_eq!(up.calls("sns:Subscribe") + up.calls("sns:CreateTopic"), 0, "nothing is replaced");
    let cloud = Cloud::new().await;
    let arn = env.state("dev")["resources"]["sub"]["id"].as_str().unwrap().to_string();
    let attrs = cloud.sns.get_subscription_attributes().subscription_arn(&arn).send().await.unwrap();
    assert_eq!(attrs.attributes().unwrap().get("RawMessageDelivery").map(String::as_str), Some("true"));
    assert!(env.project_rinfra(&["preview"]).expect_code(0).stdout.contains("No changes."));

    // A filter policy is one more attribute call; its JSON compares as JSON.
    let filtered = program.replace(
        "      rawMessageDelivery: ${raw}\n",
        "      rawMessageDelivery: ${raw}\n      filterPolicy: {severity: [critical]}\n",
    );
    env.project(&filtered);
    let up = env.project_rinfra(&["up", "--yes", "--stats"]).expect_code(0);
    // SNS sets one attribute a call: the policy, and its scope.
    assert_eq!(up.calls("sns:SetSubscriptionAttributes"), 2, "{}", up.stderr);
    assert!(env.project_rinfra(&["preview"]).expect_code(0).stdout.contains("No changes."));

    // Drift on the topic and on its policy, both read where they live.
    let topic_arn = env.state("dev")["resources"]["alerts"]["outputs"]["arn"].as_str().unwrap().to_string();
    cloud
        .sns
        .set_topic_attributes()
        .topic_arn(&topic_arn)
        .attribute_name("DisplayName")
        .attribute_value("Changed")
        .send()
        .await
        .unwrap();
    let open = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"SNS:Subscribe","Resource":"*"}]}"#;
    cloud
        .sns
        .set_topic_attributes()
        .topic_arn(&topic_arn)
        .attribute_name("Policy")
        .attribute_value(open)
        .send()
        .await
        .unwrap();
    cloud
        .sns
        .set_subscription_attributes()
        .subscription_arn(&arn)
        .attribute_name("RawMessageDelivery")
        .attribute_value("false")
        .send()
        .await
        .unwrap();
    let drift = env.project_rinfra(&["drift"]);
    assert_eq!(drift.code, 2, "{}\n{}", drift.stdout, drift.stderr);
    for changed in ["displayName", "policy", "rawMessageDelivery"] {
        assert!(drift.stdout.contains(changed), "{changed}\n{}", drift.stdout);
    }
    env.project_rinfra(&["up", "--yes"]).expect_code(0);

    // Import: forget the topic and the subscription, and adopt them again.
    env.project_rinfra(&["state", "rm", "sub"]).expect_code(0);
    env.project_rinfra(&["state", "rm", "alerts"]).expect_code(0);
    env.project_rinfra(&["import", "alerts", &env.name("alerts")]).expect_code(0);
    env.project_rinfra(&["import", "sub", &arn]).expect_code(0);
    assert!(env.project_rinfra(&["preview"]).expect_code(0).stdout.contains("No changes."));

    env.project_rinfra(&["destroy", "--yes"]).expect_code(0);
    let topics = cloud.sns.list_topics().send().await.unwrap();
    assert!(!topics.topics().iter().any(|t| t.topic_arn().is_some_and(|a| a.ends_with(&env.name("alerts")))));
    assert!(cloud.sns.get_subscription_attributes().subscription_arn(&arn).send().await.is_err(), "unsubscribed");
}

#[tokio::test(flavor = "multi_thread")]
async fn shards_scale_one_to_eight_and_back_in_legal_steps_with_a_consumer() {
    let env = Env::new("shards");
    let program = r#"name: shards
runtime: yaml
config:
  shards:
    type: integer
    default: 1
resources:
  stream:
    type: aws:kinesis:Stream
    properties:
      name: PREFIX-stream
      shardCount: ${shards}
  reader:
    type: aws:kinesis:StreamConsumer
    properties:
      name: PREFIX-reader
      streamArn: ${stream.arn}
"#;
    env.project(program);
    env.project_rinfra(&["stack", "init", "dev"]).expect_code(0);
    env.project_rinfra(&["up", "--yes"]).expect_code(0);
    assert!(env.project_rinfra(&["preview"]).expect_code(0).stdout.contains("No changes."));
    let cloud = Cloud::new().await;
    let stream = env.name("stream");

    env.project_rinfra(&["config", "set", "shards", "8"]).expect_code(0);
    let plan = env.project_rinfra(&["preview"]).expect_code(0);
    assert!(plan.stdout.contains("in 3 UpdateShardCount steps: 1 → 2 → 4 → 8"), "{}", plan.stdout);
    let up = env.project_rinfra(&["up", "--yes", "--stats"]).expect_code(0);
    assert_eq!(up.calls("kinesis:UpdateShardCount"), 3, "{}", up.stderr);
    assert_eq!(cloud.stream(&stream).await.unwrap().open_shard_count(), 8);
    assert!(env.project_rinfra(&["preview"]).expect_code(0).stdout.contains("No changes."));

    env.project_rinfra(&["config", "set", "shards", "1"]).expect_code(0);
    let up = env.project_rinfra(&["up", "--yes", "--stats"]).expect_code(0);
    assert_eq!(up.calls("kinesis:UpdateShardCount"), 3, "{}", up.stderr);
    assert_eq!(cloud.stream(&stream).await.unwrap().open_shard_count(), 1);
    assert!(env.project_rinfra(&["preview"]).expect_code(0).stdout.contains("No changes."));

    // More calls than AWS allows in a day is refused before any is made.
    env.project_rinfra(&["config", "set", "shards", "5000"]).expect_code(0);
    let refused = env.project_rinfra(&["preview"]).expect_code(1);
    assert!(refused.stderr.contains("needs 13 UpdateShardCount calls"), "{}", refused.stderr);
    env.project_rinfra(&["config", "set", "shards", "1"]).expect_code(0);

    let consumer = env.state("dev")["resources"]["reader"]["id"].as_str().unwrap().to_string();
    assert!(consumer.contains(&env.name("reader")), "{consumer}");
    env.project_rinfra(&["state", "rm", "reader"]).expect_code(0);
    env.project_rinfra(&["import", "reader", &consumer]).expect_code(0);
    assert!(env.project_rinfra(&["preview"]).expect_code(0).stdout.contains("No changes."));
    env.project_rinfra(&["destroy", "--yes"]).expect_code(0);
    cloud.wait_gone(&stream).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unconfirmed_email_subscription_is_planned_and_destroyed_with_a_note() {
    let env = Env::new("email");
    env.project(
        r#"name: email
runtime: yaml
resources:
  alerts:
    type: aws:sns:Topic
    properties:
      name: PREFIX-alerts
  oncall:
    type: aws:sns:TopicSubscription
    properties:
      topic: ${alerts.arn}
      protocol: email
      endpoint: oncall@example.com
outputs:
  pending: ${oncall.pendingConfirmation}
"#,
    );
    env.project_rinfra(&["stack", "init", "dev"]).expect_code(0);
    let up = env.project_rinfra(&["up", "--yes"]).expect_code(0);
    assert!(up.stdout.contains("pending = true"), "{}", up.stdout);
    let destroy = env.project_rinfra(&["destroy", "--yes"]).expect_code(0);
    assert!(
        destroy.stdout.contains("oncall will be deleted (not confirmed: AWS cannot delete it"),
        "{}",
        destroy.stdout
    );
    assert_eq!(env.state("dev")["resources"], serde_json::json!({}));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_alerting_type_is_replaced_when_a_replacing_property_changes_and_policies_drift_and_import() {
    let env = Env::new("replace");
    let program = r#"name: replace
runtime: yaml
config:
  v:
    type: string
    default: one
  attempts:
    type: integer
    default: 3
resources:
  stream:
    type: aws:kinesis:Stream
    properties:
      name: PREFIX-stream
      shardCount: 1
  reader:
    type: aws:kinesis:StreamConsumer
    properties:
      name: PREFIX-reader-${v}
      streamArn: ${stream.arn}
  topic:
    type: aws:sns:Topic
    properties:
      name: PREFIX-topic-${v}
      displayName: Alerts
      tags: {v: "${v}"}
  queue:
    type: aws:sqs:Queue
    properties:
      name: PREFIX-queue-${v}
      delaySeconds: 0
  queuePolicy:
    type: aws:sqs:QueuePolicy
    properties:
      queueUrl: ${queue.url}
      policy:
        Statement:
          - Effect: Allow
            Principal: {Service: sns.amazonaws.com}
            Action: sqs:SendMessage
            Resource: ${queue.arn}
            Condition: {ArnEquals: {aws:SourceArn: "${topic.arn}"}}
  topicPolicy:
    type: aws:sns:TopicPolicy
    properties:
      arn: ${topic.arn}
      policy:
        Statement:
          Effect: Allow
          Principal: {AWS: "*"}
          Action: SNS:Publish
          Resource: ${topic.arn}
  sub:
    type: aws:sns:TopicSubscription
    properties:
      topic: ${topic.arn}
      protocol: sqs
      endpoint: ${queue.arn}
      redrivePolicy:
        fn::toJSON: {deadLetterTargetArn: "${queue.arn}"}
"#;
    env.project(program);
    env.project_rinfra(&["stack", "init", "dev"]).expect_code(0);
    env.project_rinfra(&["up", "--yes"]).expect_code(0);
    assert!(env.project_rinfra(&["preview"]).expect_code(0).stdout.contains("No changes."));
    let cloud = Cloud::new().await;

    // The queue's policy, changed behind rinfra's back, is drift; `up`
    // puts it back with one call.
    let url = env.state("dev")["resources"]["queue"]["outputs"]["url"].as_str().unwrap().to_string();
    cloud
        .sqs
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::Policy,
            r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"sqs:*","Resource":"*"}]}"#,
        )
        .send()
        .await
        .unwrap();
    let drift = env.project_rinfra(&["drift"]);
    assert_eq!(drift.code, 2, "{}\n{}", drift.stdout, drift.stderr);
    let up = env.project_rinfra(&["up", "--yes", "--stats"]).expect_code(0);
    assert_eq!(up.calls("sqs:SetQueueAttributes"), 1, "{}", up.stderr);
    env.project_rinfra(&["state", "rm", "queuePolicy"]).expect_code(0);
    env.project_rinfra(&["import", "queuePolicy", &url]).expect_code(0);
    let topic_arn = env.state("dev")["resources"]["topic"]["outputs"]["arn"].as_str().unwrap().to_string();
    env.project_rinfra(&["state", "rm", "topicPolicy"]).expect_code(0);
    env.project_rinfra(&["import", "topicPolicy", &topic_arn]).expect_code(0);
    assert!(env.project_rinfra(&["preview"]).expect_code(0).stdout.contains("No changes."));

    // New names: the consumer, topic and queue are replaced, and so are
    // what hangs on them (policies, the subscription).
    env.project_rinfra(&["config", "set", "v", "two"]).expect_code(0);
    let plan = env.project_rinfra(&["preview"]).expect_code(0);
    for r in ["reader", "topic", "queue", "queuePolicy", "topicPolicy", "sub"] {
        assert!(plan.stdout.contains(&format!("# {r} must be replaced")), "{r}\n{}", plan.stdout);
    }
    env.project_rinfra(&["up", "--yes"]).expect_code(0);
    assert!(env.project_rinfra(&["preview"]).expect_code(0).stdout.contains("No changes."));
    assert!(cloud.sqs.get_queue_url().queue_name(env.name("queue-one")).send().await.is_err(), "the old queue is gone");
    let topics = cloud.sns.list_topics().send().await.unwrap();
    let names: Vec<&str> = topics.topics().iter().filter_map(|t| t.topic_arn()).collect();
    assert!(
        names.iter().any(|a| a.ends_with(&env.name("topic-two")))
            && !names.iter().any(|a| a.ends_with(&env.name("topic-one")))
    );
    env.project_rinfra(&["destroy", "--yes"]).expect_code(0);
    assert_eq!(env.state("dev")["resources"], serde_json::json!({}));
}
