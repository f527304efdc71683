//! `rinfra state …`: inspect and edit the state.

use super::EXIT_OK;
use crate::args::{Global, JsonArgs, StateMvArgs, StateNameArgs, StateShowArgs};
use crate::context;
use crate::error::CliError;
use crate::output;
use rinfra_engine::ops;
use serde_json::{Value, json};

/// `state verify`: integrity, version, and that it belongs to the stack.
pub fn verify(g: &Global) -> Result<i32, CliError> {
    let mut c = context::open(g)?;
    let st = c.s.existing_state()?;
    output::line(&format!(
        "{} is valid: stack `{}`, serial {}, lineage {}, {} resources.",
        c.s.backend.location(&c.s.id),
        st.stack,
        st.serial,
        st.lineage,
        st.resources.len()
    ));
    Ok(EXIT_OK)
}

/// `state list`.
pub fn list(g: &Global, a: JsonArgs) -> Result<i32, CliError> {
    let mut c = context::open(g)?;
    let state = c.s.existing_state()?;
    if a.json {
        let resources: Vec<Value> = state
            .resources
            .iter()
            .map(|(name, r)| json!({"name": name, "type": r.type_, "id": r.id, "urn": r.urn, "dependencies": r.dependencies}))
            .collect();
        output::json(
            &json!({"version": output::JSON_VERSION, "stack": state.stack, "serial": state.serial, "resources": resources}),
        );
    } else {
        let width = state.resources.keys().map(String::len).max().unwrap_or(0);
        for (name, r) in &state.resources {
            output::line(&format!("{name:<width$}  {:<28}  {}", r.type_, r.id));
        }
    }
    Ok(EXIT_OK)
}

/// `state show NAME`, with secrets masked.
pub fn show(g: &Global, a: StateShowArgs) -> Result<i32, CliError> {
    let mut c = context::open(g)?;
    let state = c.s.existing_state()?;
    let Some(r) = state.resources.get(&a.name) else {
        let known = state.resources.keys().cloned().collect();
        return Err(rinfra_engine::Error::from(rinfra_engine::ops::StateEditError::NoSuchResource {
            name: a.name,
            known,
        })
        .into());
    };
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("version".into(), json!(output::JSON_VERSION));
        m.insert("name".into(), json!(a.name));
    }
    output::resource(&c.s.secrets().value(&v), a.json);
    Ok(EXIT_OK)
}

/// `state rm NAME`: forget it, keep it in the cloud.
pub fn rm(g: &Global, a: StateNameArgs) -> Result<i32, CliError> {
    let mut c = context::open(g)?;
    let _lock = c.lock("state rm")?;
    let mut state = c.s.existing_state()?;
    let (r, dependents) = ops::state_rm(&mut state, &a.name).map_err(rinfra_engine::Error::from)?;
    if !dependents.is_empty() {
        let list: Vec<String> = dependents.iter().map(|d| format!("`{d}`")).collect();
        output::warn(c.color_err, &format!("{} still depend on `{}`", list.join(", "), a.name));
    }
    c.s.save(&mut state)?;
    c.s.record(&state, "state rm", true, Default::default())?;
    output::line(&format!("Removed `{}` ({} {}) from the state; it still exists in the cloud.", a.name, r.type_, r.id));
    Ok(EXIT_OK)
}

/// `state mv OLD NEW`: rename without replacing.
pub fn mv(g: &Global, a: StateMvArgs) -> Result<i32, CliError> {
    let mut c = context::open(g)?;
    let _lock = c.lock("state mv")?;
    let mut state = c.s.existing_state()?;
    ops::state_mv(&mut state, &a.old, &a.new).map_err(rinfra_engine::Error::from)?;
    c.s.save(&mut state)?;
    c.s.record(&state, "state mv", true, Default::default())?;
    output::line(&format!("Renamed `{}` to `{}` in the state; nothing in the cloud changed.", a.old, a.new));
    Ok(EXIT_OK)
}
