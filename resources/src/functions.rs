//! The functions of the `aws` package's index that `fn::invoke` may call:
//! `getCallerIdentity`, `getRegion` and `getPartition`. A type's own
//! functions (`aws:kinesis/getStream:getStream`) live in its file.

use crate::aws::Aws;
use crate::provider::{Function, ProviderResult};
use crate::schema::Props;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;

/// `aws:index/getCallerIdentity:getCallerIdentity`: who the credentials
/// are, from STS GetCallerIdentity.
pub struct GetCallerIdentity {
    aws: Arc<Aws>,
}

impl GetCallerIdentity {
    /// The function, asking through `aws`.
    pub fn new(aws: Arc<Aws>) -> Self {
        GetCallerIdentity { aws }
    }
}

#[async_trait]
impl Function for GetCallerIdentity {
    fn token(&self) -> &'static str {
        "aws:index/getCallerIdentity:getCallerIdentity"
    }

    fn arguments(&self) -> &'static [(&'static str, bool)] {
        &[]
    }

    fn returns(&self) -> &'static [&'static str] {
        &["accountId", "arn", "id", "userId"]
    }

    async fn invoke(&self, _args: &Props) -> ProviderResult<Props> {
        let client = self.aws.sts().await;
        let out = client
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| crate::aws::api_error("sts", "GetCallerIdentity", e))?;
        let account = out.account().unwrap_or_default();
        Ok(Props::from([
            ("accountId".into(), json!(account)),
            ("arn".into(), json!(out.arn().unwrap_or_default())),
            ("id".into(), json!(account)),
            ("userId".into(), json!(out.user_id().unwrap_or_default())),
        ]))
    }
}

/// The partition a region belongs to, with its DNS suffix, as AWS
/// publishes them.
fn partition_of(region: &str) -> (&'static str, &'static str) {
    if region.starts_with("cn-") {
        ("aws-cn", "amazonaws.com.cn")
    } else if region.starts_with("us-gov-") {
        ("aws-us-gov", "amazonaws.com")
    } else if region.starts_with("us-iso-") {
        ("aws-iso", "c2s.ic.gov")
    } else if region.starts_with("us-isob-") {
        ("aws-iso-b", "sc2s.sgov.gov")
    } else if region.starts_with("eusc-") {
        ("aws-eusc", "amazonaws.eu")
    } else {
        ("aws", "amazonaws.com")
    }
}

/// The region an index function is asked about: its `region` (or the
/// older `name`) argument, else the provider's.
async fn region_arg(aws: &Aws, args: &Props) -> String {
    match args.get("region").or_else(|| args.get("name")).and_then(Value::as_str) {
        Some(r) => r.to_string(),
        None => aws.resolved_region().await,
    }
}

/// `aws:index/getRegion:getRegion`: the provider's region. It makes no
/// call, as Terraform's `aws_region` makes none.
pub struct GetRegion {
    aws: Arc<Aws>,
}

impl GetRegion {
    /// The function for `aws`'s region.
    pub fn new(aws: Arc<Aws>) -> Self {
        GetRegion { aws }
    }
}

#[async_trait]
impl Function for GetRegion {
    fn token(&self) -> &'static str {
        "aws:index/getRegion:getRegion"
    }

    fn arguments(&self) -> &'static [(&'static str, bool)] {
        &[("endpoint", false), ("id", false), ("name", false), ("region", false)]
    }

    fn returns(&self) -> &'static [&'static str] {
        &["description", "endpoint", "id", "name", "region"]
    }

    async fn invoke(&self, args: &Props) -> ProviderResult<Props> {
        let region = region_arg(&self.aws, args).await;
        let (_, suffix) = partition_of(&region);
        Ok(Props::from([
            ("endpoint".into(), json!(format!("ec2.{region}.{suffix}"))),
            ("id".into(), json!(region)),
            ("name".into(), json!(region)),
            ("region".into(), json!(region)),
        ]))
    }
}

/// `aws:index/getPartition:getPartition`: the partition of the provider's
/// region.
pub struct GetPartition {
    aws: Arc<Aws>,
}

impl GetPartition {
    /// The function for `aws`'s region.
    pub fn new(aws: Arc<Aws>) -> Self {
        GetPartition { aws }
    }
}

#[async_trait]
impl Function for GetPartition {
    fn token(&self) -> &'static str {
        "aws:index/getPartition:getPartition"
    }

    fn arguments(&self) -> &'static [(&'static str, bool)] {
        &[("id", false), ("region", false)]
    }

    fn returns(&self) -> &'static [&'static str] {
        &["dnsSuffix", "id", "partition", "reverseDnsPrefix"]
    }

    async fn invoke(&self, args: &Props) -> ProviderResult<Props> {
        let region = region_arg(&self.aws, args).await;
        let (partition, suffix) = partition_of(&region);
        let reverse: Vec<&str> = suffix.split('.').rev().collect();
        Ok(Props::from([
            ("dnsSuffix".into(), json!(suffix)),
            ("id".into(), json!(partition)),
            ("partition".into(), json!(partition)),
            ("reverseDnsPrefix".into(), json!(reverse.join("."))),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::AwsSettings;

    fn settings(region: &str) -> Arc<Aws> {
        Aws::new(AwsSettings { region: Some(region.into()), ..AwsSettings::default() })
    }

    #[tokio::test]
    async fn partition_and_region_follow_the_provider_region_or_the_argument() {
        let p = GetPartition::new(settings("cn-north-1")).invoke(&Props::new()).await.unwrap();
        assert_eq!(p["partition"], json!("aws-cn"));
        assert_eq!(p["dnsSuffix"], json!("amazonaws.com.cn"));
        assert_eq!(p["reverseDnsPrefix"], json!("cn.com.amazonaws"));
        let args = Props::from([("region".to_string(), json!("eu-west-1"))]);
        let r = GetRegion::new(settings("us-west-2")).invoke(&args).await.unwrap();
        assert_eq!(r["name"], json!("eu-west-1"));
        assert_eq!(r["endpoint"], json!("ec2.eu-west-1.amazonaws.com"));
        let own = GetRegion::new(settings("us-west-2")).invoke(&Props::new()).await.unwrap();
        assert_eq!(own["region"], json!("us-west-2"));
    }
}
