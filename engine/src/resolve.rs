//! What a run learns beyond the program before it plans: the results of
//! provider functions (`fn::invoke`) and the attributes of resources read
//! with `get:`. Both only read the cloud.

use crate::plan::PlanError;
use crate::stack::{Resolved, Stack};
use rinfra_provider::{ReadRequest, Registry};
use rinfra_state::StateFile;
use std::collections::{BTreeMap, BTreeSet};

/// Whether `e` reads a resource, directly or through variables.
fn reads_resources(stack: &Stack, e: &crate::expr::Expr) -> bool {
    let mut todo = Vec::new();
    e.collect_refs(&mut todo);
    let mut seen = BTreeSet::new();
    while let Some(r) = todo.pop() {
        if stack.resources.contains_key(&r.root) {
            return true;
        }
        if let Some(v) = stack.variables.get(&r.root) {
            if seen.insert(r.root.clone()) {
                v.collect_refs(&mut todo);
            }
        }
    }
    false
}

/// What resolving a stack's function calls did.
#[derive(Debug, Default)]
pub struct Invoked {
    /// How many calls were made.
    pub made: usize,
    /// Calls that failed although their arguments read no resource: the
    /// program is wrong, whatever the state says.
    pub failed: Vec<PlanError>,
    /// Calls that failed with arguments read from resources, which may be
    /// stale (a resource deleted outside rinfra): their values stay
    /// unknown, and apply calls them again once those resources are done.
    pub deferred: Vec<PlanError>,
}

/// Calls every provider function of `stack` whose arguments are known
/// from config, literals, `attrs` (resources in the state or done by now)
/// and earlier calls, each distinct call once, and keeps the results in
/// the stack. Calls whose arguments are still unknown stay unknown.
pub async fn resolve_invokes(
    stack: &Stack,
    resolved: &mut Resolved,
    attrs: &BTreeMap<String, rinfra_provider::Props>,
    registry: &Registry,
) -> Invoked {
    let invokes = stack.invoke_calls();
    let mut out = Invoked::default();
    let mut failed_keys = BTreeSet::new();
    // A call's arguments may use another call's result: go round until a
    // round makes no call, which takes at most one round per call.
    for _ in 0..=invokes.len() {
        let mut todo = Vec::new();
        {
            let lookup = |res: &str, path: &[String]| {
                crate::conventions::lookup_attribute(attrs, res, path)
                    .or_else(|| stack.read_attribute(resolved, res, path))
            };
            let ctx = stack.context(resolved, &lookup);
            for i in &invokes {
                let Ok(args) = ctx.eval(&i.arguments) else { continue };
                let args = resolved.invokes.arguments(&i.function, args);
                if rinfra_provider::schema::is_unknown(&args) {
                    continue;
                }
                let key = i.key(&args);
                let new = resolved.invokes.get(&key).is_none() && !failed_keys.contains(&key);
                if new && !todo.iter().any(|(k, _, _)| *k == key) {
                    todo.push((key, i, args));
                }
            }
        }
        if todo.is_empty() {
            break;
        }
        let calls = todo.iter().map(|(_, i, args)| async move {
            let f = registry.function(&i.function).ok_or_else(|| PlanError::Invoke {
                function: i.function.clone(),
                message: "no such function".into(),
            })?;
            let args: rinfra_provider::Props = match args {
                serde_json::Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                _ => rinfra_provider::Props::new(),
            };
            f.invoke(&args)
                .await
                .map_err(|e| PlanError::Invoke { function: i.function.clone(), message: e.to_string() })
        });
        let results = futures::future::join_all(calls).await;
        for ((key, i, _), r) in todo.into_iter().zip(results) {
            match r {
                Ok(result) => {
                    resolved.invokes.insert(key, serde_json::Value::Object(result.into_iter().collect()));
                    out.made += 1;
                }
                Err(e) => {
                    failed_keys.insert(key);
                    if reads_resources(stack, &i.arguments) {
                        out.deferred.push(e);
                    } else {
                        out.failed.push(e);
                    }
                }
            }
        }
    }
    out
}

/// Reads the resources `stack` declares with `get`, by their ids, in
/// dependency order, and keeps their attributes in the stack for
/// references. An id that waits on a function call is left for a later
/// round unless `last`; in the last round every id must be known.
pub async fn resolve_gets(
    stack: &Stack,
    resolved: &mut Resolved,
    state: &StateFile,
    registry: &Registry,
    last: bool,
) -> Result<usize, PlanError> {
    let mut read = 0;
    for name in &stack.order {
        let Some(decl) = stack.resources.get(name) else { continue };
        if resolved.reads.contains_key(name) {
            continue;
        }
        let Some(id_expr) = &decl.get else { continue };
        let none = |res: &str, path: &[String]| stack.read_attribute(resolved, res, path);
        let id = match stack.context(resolved, &none).eval(id_expr) {
            Ok(serde_json::Value::String(id)) if !rinfra_provider::schema::is_unknown(&serde_json::json!(id)) => id,
            Ok(v) if !last && rinfra_provider::schema::is_unknown(&v) => continue,
            Ok(_) => {
                return Err(PlanError::Get {
                    resource: name.clone(),
                    id: String::new(),
                    message: "its id must be text known before apply".into(),
                });
            }
            Err(d) => return Err(PlanError::Get { resource: name.clone(), id: String::new(), message: d.message }),
        };
        let provider = registry
            .get(&decl.type_)
            .ok_or_else(|| PlanError::UnknownType { resource: name.clone(), type_: decl.type_.clone() })?;
        let managed: BTreeSet<String> = provider.schema().properties.iter().map(|p| p.name.to_string()).collect();
        let region = crate::conventions::where_it_lives(&decl.provider_defaults, provider.as_ref(), registry);
        let found = provider.read(&[ReadRequest::new(id.clone(), managed).with_recorded(&region)]).await.pop();
        let observed = match found {
            Some(Ok(Some(o))) => o,
            Some(Ok(None)) => {
                return Err(PlanError::Get { resource: name.clone(), id, message: "it does not exist".into() });
            }
            Some(Err(e)) => return Err(PlanError::Get { resource: name.clone(), id, message: e.to_string() }),
            None => return Err(PlanError::Get { resource: name.clone(), id, message: "no answer".into() }),
        };
        let mut inputs = provider.normalize(&observed.inputs);
        inputs.extend(region);
        let attrs = crate::conventions::with_common_attributes(
            crate::conventions::attributes(&inputs, &observed.outputs),
            Some(&id),
            &state.urn(&decl.type_, &decl.logical),
        );
        resolved.reads.insert(name.clone(), attrs);
        read += 1;
    }
    Ok(read)
}
