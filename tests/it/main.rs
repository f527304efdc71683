//! Every end-to-end test of the real `rinfra` binary, as one test binary
//! (cargo's own testsuite is laid out this way): the AWS SDK the tests use
//! to change the cloud behind rinfra's back is linked once, not once per
//! file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::arithmetic_side_effects, clippy::cast_possible_truncation, missing_docs)]

mod alerting;
mod cli;
mod drift;
mod e2e;
mod messaging;
mod project_errors;
mod pulumi;
mod regressions;
mod reliability;
mod s3_backend;
mod stack_errors;
mod stacks;
mod support;
