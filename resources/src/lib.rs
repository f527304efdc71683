//! The AWS resource providers of rinfra.
//!
//! This is the only crate that talks to the cloud; it implements
//! `rinfra-provider`'s [`Provider`] trait, one provider per file:
//!
//! - [`kinesis_stream`] provides `aws:kinesis:Stream`, and
//!   [`kinesis_consumer`] `aws:kinesis:StreamConsumer`;
//! - [`metric_alarm`] provides `aws:cloudwatch:MetricAlarm`;
//! - [`sns_topic`], [`sns_subscription`] and [`sns_topic_policy`] provide
//!   `aws:sns:Topic`, `aws:sns:TopicSubscription` and `aws:sns:TopicPolicy`;
//! - [`sqs_queue`] and [`sqs_queue_policy`] provide `aws:sqs:Queue` and
//!   `aws:sqs:QueuePolicy`.
//!
//! [`functions`] holds the index functions `fn::invoke` may call
//! (`getCallerIdentity`, `getRegion`, `getPartition`); a type's own
//! functions live in its file.
//!
//! [`registry`] lists them. Adding a type means adding a file and one line
//! there; the engine does not change. [`s3_backend`] keeps states in S3
//! for teams, behind `rinfra-state`'s `Backend` trait.

pub mod aws;
pub mod functions;
pub mod kinesis_consumer;
pub mod kinesis_stream;
pub mod metric_alarm;
pub mod s3_backend;
pub mod sns_subscription;
pub mod sns_topic;
pub mod sns_topic_policy;
pub mod sqs_queue;
pub mod sqs_queue_policy;

pub use aws::{Aws, AwsSettings, CallStats};
// The providers are written against these paths.
pub use rinfra_provider::{Provider, ProviderError, Registry, provider, schema};

use std::sync::Arc;

/// Every built-in AWS resource type and function, sharing one lazily
/// built `aws`.
pub fn registry(aws: Arc<Aws>) -> Registry {
    let mut r = Registry::new();
    let streams = Arc::new(kinesis_stream::KinesisStream::new(aws.clone()));
    r.register(streams.clone());
    r.register(Arc::new(kinesis_consumer::StreamConsumer::new(aws.clone())));
    r.register(Arc::new(metric_alarm::MetricAlarmProvider::new(aws.clone())));
    r.register(Arc::new(sns_topic::SnsTopic::new(aws.clone())));
    r.register(Arc::new(sns_subscription::SnsSubscription::new(aws.clone())));
    r.register(Arc::new(sns_topic_policy::SnsTopicPolicy::new(aws.clone())));
    r.register(Arc::new(sqs_queue::SqsQueue::new(aws.clone())));
    r.register(Arc::new(sqs_queue_policy::SqsQueuePolicy::new(aws.clone())));
    r.register_function(Arc::new(kinesis_stream::GetStream::new(streams)));
    r.register_function(Arc::new(functions::GetCallerIdentity::new(aws.clone())));
    r.register_function(Arc::new(functions::GetRegion::new(aws.clone())));
    r.register_function(Arc::new(functions::GetPartition::new(aws)));
    r
}
