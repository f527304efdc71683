//! `rinfra config …`: the selected stack's config file, `Pulumi.<stack>.yaml`.

use super::EXIT_OK;
use crate::args::{ConfigGetArgs, ConfigKeyArg, ConfigLsArgs, ConfigSetArgs, Global};
use crate::error::CliError;
use crate::output;
use rinfra_engine::config::{Editor, Shown, StackConfig};
use rinfra_engine::load::LoadError;
use serde_json::{Value, json};

/// An editor of the config of the stack `-s` names or the selected one.
fn editor(g: &Global) -> Result<Editor, CliError> {
    let (project, stack) = super::stack::stack_target(g)?;
    let backend = crate::context::backend_for(g, &project)?;
    project.existing(&stack, backend.as_ref()).map_err(rinfra_engine::Error::from)?;
    let bytes = std::fs::read(&project.program)
        .map_err(|source| rinfra_engine::Error::from(LoadError::Io { path: project.program.clone(), source }))?;
    let decls = rinfra_engine::stack::declared_config(&bytes).map_err(|diagnostics| {
        rinfra_engine::Error::from(LoadError::Invalid {
            path: project.program.clone(),
            source_text: String::from_utf8_lossy(&bytes).into_owned(),
            diagnostics,
        })
    })?;
    let path = project.config_path(&stack);
    let file = StackConfig::read(&path).map_err(|(source_text, p)| {
        rinfra_engine::Error::from(LoadError::InvalidConfig {
            path: path.clone(),
            source_text,
            diagnostics: rinfra_engine::diag::Diagnostics(p.0),
        })
    })?;
    Ok(Editor::new(&project.name, &stack, file, decls))
}

fn shown_value(s: &Shown) -> Value {
    s.value.clone().unwrap_or_else(|| Value::String("[secret]".into()))
}

/// `config set KEY VALUE [--secret]`.
pub fn set(g: &Global, a: ConfigSetArgs) -> Result<i32, CliError> {
    let mut e = editor(g)?;
    e.set(&a.key, &a.value, a.secret).map_err(rinfra_engine::Error::from)?;
    Ok(EXIT_OK)
}

/// `config get KEY`.
pub fn get(g: &Global, a: ConfigGetArgs) -> Result<i32, CliError> {
    let e = editor(g)?;
    let (_, s) = e.get(&a.key, a.show_secrets).map_err(rinfra_engine::Error::from)?;
    if a.json {
        output::json(&json!({"value": shown_value(&s), "secret": s.secret}));
    } else {
        match shown_value(&s) {
            Value::String(t) => output::line(&t),
            other => output::line(&other.to_string()),
        }
    }
    Ok(EXIT_OK)
}

/// `config rm KEY`.
pub fn rm(g: &Global, a: ConfigKeyArg) -> Result<i32, CliError> {
    let mut e = editor(g)?;
    e.rm(&a.key).map_err(rinfra_engine::Error::from)?;
    Ok(EXIT_OK)
}

/// `config ls`.
pub fn ls(g: &Global, a: ConfigLsArgs) -> Result<i32, CliError> {
    let e = editor(g)?;
    let all = e.list(a.show_secrets).map_err(rinfra_engine::Error::from)?;
    if a.json {
        let m: serde_json::Map<String, Value> =
            all.iter().map(|(k, s)| (k.clone(), json!({"value": shown_value(s), "secret": s.secret}))).collect();
        output::json(&Value::Object(m));
        return Ok(EXIT_OK);
    }
    let width = all.keys().map(String::len).max().unwrap_or(3).max(3);
    output::line(&format!("{:<width$}  VALUE", "KEY"));
    for (k, s) in &all {
        let v = match shown_value(s) {
            Value::String(t) => t,
            other => other.to_string(),
        };
        output::line(&format!("{k:<width$}  {v}"));
    }
    Ok(EXIT_OK)
}
