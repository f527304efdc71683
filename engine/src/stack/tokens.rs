//! Type token spellings: Pulumi writes each type two ways.

/// A type token in Pulumi's canonical form: `aws:kinesis:Stream` becomes
/// `aws:kinesis/stream:Stream`.
pub fn canonical_token(token: &str) -> String {
    let parts: Vec<&str> = token.split(':').collect();
    if let [pkg, module, name] = parts.as_slice() {
        if !module.contains('/') {
            return format!("{pkg}:{module}/{}:{name}", lower_first(name));
        }
    }
    token.to_string()
}

/// `MetricAlarm` as the member of a canonical token spells it: `metricAlarm`.
fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map(|c| c.to_lowercase().chain(chars).collect()).unwrap_or_default()
}

/// A type token in its short form. Pulumi writes each type two ways:
/// `aws:kinesis:Stream`, and the canonical `aws:kinesis/stream:Stream`
/// (the module, then the type's name with a lower-case first letter).
pub fn short_token(token: &str) -> String {
    let parts: Vec<&str> = token.split(':').collect();
    if let [pkg, module, name] = parts.as_slice() {
        if let Some((module, member)) = module.split_once('/') {
            if member == lower_first(name) {
                return format!("{pkg}:{module}:{name}");
            }
        }
    }
    token.to_string()
}
