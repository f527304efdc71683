//! Commands that need no cloud and no state: `validate`, `graph`,
//! `schema` and `completions`.

use super::EXIT_OK;
use crate::args::{Cli, CompletionsArgs, Global, GraphArgs, JsonArgs};
use crate::context;
use crate::error::CliError;
use crate::output;
use rinfra_engine::plan::PlanMode;
use rinfra_engine::session::PlanRequest;
use serde_json::json;

/// Runs `validate`.
pub fn exec(g: &Global, a: JsonArgs) -> Result<i32, CliError> {
    let c = context::open(g)?;
    let st = &c.s.stack;
    if a.json {
        output::json(&json!({"version": output::JSON_VERSION, "valid": true, "stack": st.name, "resources": st.order}));
    } else {
        output::line(&format!("The stack `{}` is valid: {} resources.", st.name, st.resources.len()));
    }
    Ok(EXIT_OK)
}

/// Runs `graph`: the dependency graph as DOT, with `--plan` each node
/// marked with its planned operation.
pub async fn graph(g: &Global, a: GraphArgs) -> Result<i32, CliError> {
    let mut c = context::open(g)?;
    let plan = if a.plan {
        let mut state = c.s.load_state()?;
        let req = PlanRequest { mode: PlanMode::Normal, refresh: true, persist: false, targets: Vec::new() };
        Some(c.s.prepare(&mut state, &req).await?.plan)
    } else {
        None
    };
    output::text(&rinfra_engine::render::dot(&c.s.stack, plan.as_ref()));
    Ok(EXIT_OK)
}

/// Runs `schema`: the editor JSON Schema of stack files.
pub fn schema() -> Result<i32, CliError> {
    let registry = rinfra_resources::registry(rinfra_resources::Aws::new(Default::default()));
    output::json(&rinfra_engine::stack_schema::stack_schema(&registry));
    Ok(EXIT_OK)
}

/// Runs `completions`.
pub fn completions(a: CompletionsArgs) -> Result<i32, CliError> {
    use clap::CommandFactory;
    output::completions(a.shell, &mut Cli::command());
    Ok(EXIT_OK)
}
