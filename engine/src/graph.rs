//! Dependency order of resources.
//!
//! Cycles are refused when the stack is loaded, so these orders always
//! exist. Orders are deterministic: among resources that are ready at the
//! same time, names sort alphabetically.

use crate::stack::ResourceDecl;
use std::collections::{BTreeMap, BTreeSet};

/// Orders `nodes` (name → dependencies) so that every node follows all of
/// its dependencies. Dependencies outside `nodes` are ignored. Kahn's
/// algorithm, linear in nodes and edges. Stacks are checked for cycles, but
/// a state written by an older stack may still hold one; its members come
/// last, by name, rather than being dropped.
pub fn order_by_deps(nodes: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut remaining: BTreeMap<&str, usize> = BTreeMap::new();
    let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (n, deps) in nodes {
        let inside: Vec<&str> = deps.iter().map(String::as_str).filter(|d| nodes.contains_key(*d) && *d != n).collect();
        remaining.insert(n, inside.len());
        for d in inside {
            dependents.entry(d).or_default().push(n);
        }
    }
    let mut ready: BTreeSet<&str> = remaining.iter().filter(|(_, c)| **c == 0).map(|(n, _)| *n).collect();
    let mut out = Vec::with_capacity(nodes.len());
    while let Some(n) = ready.pop_first() {
        out.push(n.to_string());
        for d in dependents.get(n).into_iter().flatten() {
            if let Some(c) = remaining.get_mut(d) {
                *c -= 1;
                if *c == 0 {
                    ready.insert(d);
                }
            }
        }
    }
    if out.len() < nodes.len() {
        let placed: BTreeSet<String> = out.iter().cloned().collect();
        out.extend(nodes.keys().filter(|k| !placed.contains(*k)).cloned());
    }
    out
}

/// The resources of a stack in dependency order.
pub fn topo_order(resources: &BTreeMap<String, ResourceDecl>) -> Vec<String> {
    let nodes = resources.iter().map(|(k, r)| (k.clone(), r.dependencies.clone())).collect();
    order_by_deps(&nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_come_first_and_ties_sort_by_name() {
        let nodes = BTreeMap::from([
            ("alarm".to_string(), BTreeSet::from(["stream".to_string()])),
            ("stream".to_string(), BTreeSet::new()),
            ("b".to_string(), BTreeSet::new()),
        ]);
        assert_eq!(order_by_deps(&nodes), vec!["b", "stream", "alarm"]);
    }

    #[test]
    fn a_cycle_left_in_an_old_state_keeps_every_node() {
        let nodes = BTreeMap::from([
            ("a".to_string(), BTreeSet::from(["b".to_string()])),
            ("b".to_string(), BTreeSet::from(["a".to_string()])),
            ("c".to_string(), BTreeSet::new()),
        ]);
        assert_eq!(order_by_deps(&nodes), vec!["c", "a", "b"]);
    }
}
