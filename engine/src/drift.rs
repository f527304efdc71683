//! Drift: how the cloud differs from what the state recorded.
//!
//! The report has a stable, versioned JSON form (`rinfra.drift/v1`),
//! documented in the README, for history files and hooks.

use crate::conventions::current_inputs;
use crate::plan::Observations;
use rinfra_provider::Registry;
use rinfra_state::StateFile;
use serde::Serialize;
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The schema name and version of [`Report`] in JSON.
pub const SCHEMA: &str = "rinfra.drift/v1";

/// How one resource compares with the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The cloud matches the state.
    InSync,
    /// Some properties differ.
    Modified,
    /// The resource is gone from the cloud.
    Deleted,
}

/// One property that differs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PropertyDrift {
    /// The property.
    pub property: String,
    /// The value the state recorded (absent means unset).
    pub recorded: Option<Value>,
    /// The value the cloud holds (absent means unset).
    pub actual: Option<Value>,
}

/// How one resource compares.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceDrift {
    /// The logical name.
    pub name: String,
    /// The type token.
    #[serde(rename = "type")]
    pub type_: String,
    /// The cloud id.
    pub id: String,
    /// The verdict.
    pub status: Status,
    /// The differing properties (for `modified`).
    pub changes: Vec<PropertyDrift>,
}

/// Counts by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Resources that match.
    pub in_sync: usize,
    /// Resources with changed properties.
    pub modified: usize,
    /// Resources that are gone.
    pub deleted: usize,
}

/// One drift run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// The stack's name.
    pub stack: String,
    /// When the run started, RFC 3339 in UTC.
    pub time: String,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// `in-sync`, `drifted` or `error`.
    pub status: &'static str,
    /// Counts by resource status.
    pub summary: Counts,
    /// Every resource in the state, by name.
    pub resources: Vec<ResourceDrift>,
    /// What went wrong, when `status` is `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Report {
    /// A report of a finished comparison.
    pub fn new(stack: &str, started: SystemTime, took: Duration, resources: Vec<ResourceDrift>) -> Report {
        let mut summary = Counts::default();
        for r in &resources {
            match r.status {
                Status::InSync => summary.in_sync += 1,
                Status::Modified => summary.modified += 1,
                Status::Deleted => summary.deleted += 1,
            }
        }
        let status = if summary.modified + summary.deleted > 0 { "drifted" } else { "in-sync" };
        Report {
            schema: SCHEMA,
            stack: stack.to_string(),
            time: rfc3339(started),
            duration_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            status,
            summary,
            resources,
            error: None,
        }
    }

    /// A report of a run that could not compare.
    pub fn failed(stack: &str, started: SystemTime, took: Duration, error: String) -> Report {
        let mut r = Report::new(stack, started, took, Vec::new());
        r.status = "error";
        r.error = Some(error);
        r
    }

    /// Whether anything drifted.
    pub fn drifted(&self) -> bool {
        self.status == "drifted"
    }

    /// A one-line summary for logs.
    pub fn one_line(&self) -> String {
        match &self.error {
            Some(e) => format!("{} {}: error: {e}", self.time, self.stack),
            None => {
                let mut s = format!(
                    "{} {}: {}: {} in sync, {} modified, {} deleted ({} ms)",
                    self.time,
                    self.stack,
                    self.status,
                    self.summary.in_sync,
                    self.summary.modified,
                    self.summary.deleted,
                    self.duration_ms
                );
                let changed: Vec<String> = self
                    .resources
                    .iter()
                    .filter(|r| r.status != Status::InSync)
                    .map(|r| match r.status {
                        Status::Deleted => format!("{} deleted", r.name),
                        _ => format!(
                            "{}: {}",
                            r.name,
                            r.changes.iter().map(|c| c.property.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    })
                    .collect();
                if !changed.is_empty() {
                    s.push_str(&format!(" [{}]", changed.join("; ")));
                }
                s
            }
        }
    }
}

/// Compares every resource of the state with what the cloud holds.
pub fn compare(state: &StateFile, observed: &Observations, registry: &Registry) -> Vec<ResourceDrift> {
    let mut out = Vec::new();
    for (name, rec) in &state.resources {
        let Some(provider) = registry.get(&rec.type_) else { continue };
        let Some(found) = observed.get(name) else { continue };
        let mut r = ResourceDrift {
            name: name.clone(),
            type_: rec.type_.clone(),
            id: rec.id.clone(),
            status: Status::InSync,
            changes: Vec::new(),
        };
        match found {
            None => r.status = Status::Deleted,
            Some(obs) => {
                let current = current_inputs(provider.as_ref(), Some(obs), &rec.inputs);
                let (nr, nc) = (provider.normalize(&rec.inputs), provider.normalize(&current));
                for p in &provider.schema().properties {
                    let (a, b) = (nr.get(p.name), nc.get(p.name));
                    if a != b {
                        r.changes.push(PropertyDrift {
                            property: p.name.to_string(),
                            recorded: a.cloned(),
                            actual: b.cloned(),
                        });
                    }
                }
                if !r.changes.is_empty() {
                    r.status = Status::Modified;
                }
            }
        }
        out.push(r);
    }
    out
}

/// Formats a time as RFC 3339 in UTC, to the second.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil-from-days algorithm.
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_as_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_308_645)), "2026-11-22T00:50:45Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
    }
}
