//! The engine's modules form layers: a module may use only modules of
//! lower layers, so there is no import cycle and each layer can be read,
//! tested and changed knowing only what is below it. This test reads the
//! sources and fails on any `crate::…` use that goes sideways or up, and
//! on a module that has no layer yet.

use std::collections::BTreeMap;
use std::path::Path;

/// Bottom to top. ARCHITECTURE.md states the same order.
const LAYERS: &[&[&str]] = &[
    &["diag", "duration", "graph"],
    &["yaml"],
    &["expr"],
    &["conventions"],
    &["stack"],
    &["config", "load", "stack_schema"],
    &["plan", "project"],
    &["resolve", "drift", "ops"],
    &["apply", "render"],
    &["error"],
    &["session"],
    &["schedule"],
];

/// Modules that only tests compile.
const TEST_ONLY: &[&str] = &["engine_tests", "layers_tests", "memory"];

/// Items the crate root re-exports, by the module that defines them.
const ROOT_REEXPORTS: &[(&str, &str)] = &[("Error", "error")];

/// The modules a source text uses through `crate::`, outside its tests.
fn uses(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a, b::c}`: the first segment of each entry.
            let inner = group.split('}').next().unwrap_or_default();
            out.extend(inner.split(',').map(|e| e.trim().split("::").next().unwrap_or_default().to_string()));
        } else {
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            out.push(name);
        }
    }
    out.retain(|n| !n.is_empty());
    for n in &mut out {
        if let Some((_, m)) = ROOT_REEXPORTS.iter().find(|(item, _)| item == n) {
            *n = (*m).to_string();
        }
    }
    out
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn engine_modules_use_only_modules_of_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layer_of: BTreeMap<&str, usize> =
        LAYERS.iter().enumerate().flat_map(|(i, ms)| ms.iter().map(move |m| (*m, i))).collect();
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut problems = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        if top == "lib" || TEST_ONLY.contains(&top.as_str()) {
            continue;
        }
        let Some(&mine) = layer_of.get(top.as_str()) else {
            problems.push(format!("{}: module `{top}` has no layer; add it to LAYERS", rel.display()));
            continue;
        };
        for used in uses(&std::fs::read_to_string(&file).unwrap()) {
            if used == top {
                continue;
            }
            match layer_of.get(used.as_str()) {
                Some(&theirs) if theirs < mine => {}
                Some(_) => problems.push(format!("{}: `{top}` uses `{used}`, which is not below it", rel.display())),
                None => problems.push(format!("{}: `{top}` uses unknown module `{used}`", rel.display())),
            }
        }
    }
    assert!(problems.is_empty(), "layering broken:\n{}", problems.join("\n"));
}

#[test]
fn the_layer_check_sees_grouped_and_root_uses() {
    let text = "use crate::{expr::Expr, plan};\nfn f() -> crate::Error { crate::stack::x() }\n#[cfg(test)]\nuse crate::session;";
    assert_eq!(uses(text), vec!["expr", "plan", "error", "stack"]);
}
