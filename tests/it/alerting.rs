//! The alerting loop, end to end against LocalStack: metric data drives
//! the alarm to ALARM, and the notification reaches the queue through the
//! topic. Then a preview shows no changes, and a destroy leaves nothing.

use crate::support::{Cloud, Env, repo_root};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn a_throttled_stream_alarms_and_the_notification_reaches_the_queue() {
    let env = Env::new("alerting");
    let program = std::fs::read_to_string(repo_root().join("stacks/alerting/Pulumi.yaml")).unwrap();
    env.project(&program);
    env.project_rinfra(&["stack", "init", "dev"]).expect_code(0);
    env.project_rinfra(&["config", "set", "prefix", &env.prefix]).expect_code(0);
    // LocalStack evaluates an alarm once per period.
    env.project_rinfra(&["config", "set", "period", "10"]).expect_code(0);
    env.project_rinfra(&["up", "--yes"]).expect_code(0);
    assert!(env.project_rinfra(&["preview"]).expect_code(0).stdout.contains("No changes."));

    let cloud = Cloud::new().await;
    let state = env.state("dev");
    let url = state["outputs"]["inbox"].as_str().unwrap().to_string();
    let stream = env.name("kinesis-stream");
    let alarm = env.name("kinesis-alarm");

    // What Kinesis would publish when writes are throttled: LocalStack
    // never throttles and publishes no Kinesis metrics of its own.
    let started = Instant::now();
    let mut arrived = None;
    'wait: while started.elapsed() < Duration::from_secs(90) {
        let datum = aws_sdk_cloudwatch::types::MetricDatum::builder()
            .metric_name("WriteProvisionedThroughputExceeded")
            .dimensions(aws_sdk_cloudwatch::types::Dimension::builder().name("StreamName").value(&stream).build())
            .value(5.0)
            .unit(aws_sdk_cloudwatch::types::StandardUnit::Count)
            .build();
        cloud.cloudwatch.put_metric_data().namespace("AWS/Kinesis").metric_data(datum).send().await.unwrap();
        let got =
            cloud.sqs.receive_message().queue_url(&url).wait_time_seconds(5).max_number_of_messages(10).send().await;
        for m in got.unwrap().messages() {
            // Raw delivery: the body is CloudWatch's notification itself.
            let body: serde_json::Value = serde_json::from_str(m.body().unwrap_or_default()).unwrap();
            if body["AlarmName"] == alarm.as_str() && body["NewStateValue"] == "ALARM" {
                arrived = Some(started.elapsed());
                break 'wait;
            }
        }
    }
    let arrived = arrived.expect("the ALARM notification, naming the alarm, reached the queue within 90 s");
    println!("PutMetricData to the message in the queue: {:.1}s", arrived.as_secs_f64());
    let state_of = cloud.cloudwatch.describe_alarms().alarm_names(&alarm).send().await.unwrap();
    assert_eq!(state_of.metric_alarms()[0].state_value().map(|s| s.as_str()), Some("ALARM"));

    assert!(env.project_rinfra(&["preview"]).expect_code(0).stdout.contains("No changes."));
    let topic = state["outputs"]["topic"].as_str().unwrap().to_string();
    env.project_rinfra(&["destroy", "--yes"]).expect_code(0);
    assert!(cloud.alarm(&alarm).await.is_none());
    cloud.wait_gone(&stream).await;
    let topics = cloud.sns.list_topics().send().await.unwrap();
    assert!(!topics.topics().iter().any(|t| t.topic_arn() == Some(topic.as_str())), "the topic is gone");
    let subs = cloud.sns.list_subscriptions().send().await.unwrap();
    assert!(!subs.subscriptions().iter().any(|s| s.topic_arn() == Some(topic.as_str())), "the subscription is gone");
    let queue = cloud.sqs.get_queue_url().queue_name(env.name("alert-inbox")).send().await;
    assert!(queue.is_err(), "the queue is gone");
}
