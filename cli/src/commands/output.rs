//! `rinfra output`: the stack's outputs from the state.

use super::EXIT_OK;
use crate::args::{Global, OutputArgs};
use crate::context;
use crate::error::CliError;
use crate::output;
use rinfra_engine::render::Shown;
use serde_json::Value;

/// Runs `output`.
pub fn exec(g: &Global, a: OutputArgs) -> Result<i32, CliError> {
    let mut c = context::open(g)?;
    let state = c.s.existing_state()?;
    let shown =
        if a.show_secrets { Shown::revealed(state.outputs.clone()) } else { c.s.secrets().outputs(&state.outputs) };
    let Some(name) = a.name else {
        if a.json {
            output::json(&Value::Object(shown.get().clone().into_iter().collect()));
        } else {
            output::outputs(&shown);
        }
        return Ok(EXIT_OK);
    };
    let Some(v) = shown.get().get(&name) else {
        let known = state.outputs.keys().cloned().collect();
        return Err(rinfra_engine::Error::NoSuchOutput { name, known }.into());
    };
    match v {
        _ if a.json => output::json(v),
        Value::String(text) => output::line(text),
        other => output::line(&rinfra_engine::render::value(other, 0)),
    }
    Ok(EXIT_OK)
}
