//! Dependency graphs of named nodes: order and cycles.
//!
//! The graph knows nothing of what a node is (a resource, a variable, a
//! state record): callers give names and edges. Cycles are refused when a
//! stack is loaded, so orders of a stack always exist. Orders are
//! deterministic: among nodes that are ready at the same time, names sort
//! alphabetically.

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

/// A cycle: its members, sorted, and the edges between them, each with
/// the label its caller gave it, in the order they were given.
#[derive(Debug, Clone, PartialEq)]
pub struct Cycle<'a, L> {
    /// The nodes on the cycle, sorted by name.
    pub members: Vec<&'a str>,
    /// Every edge `(from, to, label)` whose ends are both on the cycle.
    pub edges: Vec<(&'a str, &'a str, L)>,
}

/// The cycles among `nodes` through `edges` (`from` depends on `to`):
/// every strongly connected component of two or more nodes, and every
/// node that depends on itself. Edges to names outside `nodes` are
/// ignored.
pub fn cycles<'a, L: Clone>(nodes: &[&'a str], edges: &[(&'a str, &'a str, L)]) -> Vec<Cycle<'a, L>> {
    use petgraph::graph::DiGraph;
    let mut g: DiGraph<&str, usize> = DiGraph::new();
    let idx: BTreeMap<&str, _> = nodes.iter().map(|n| (*n, g.add_node(*n))).collect();
    for (i, (from, to, _)) in edges.iter().enumerate() {
        if let (Some(a), Some(b)) = (idx.get(from), idx.get(to)) {
            g.add_edge(*a, *b, i);
        }
    }
    let mut out = Vec::new();
    for scc in petgraph::algo::tarjan_scc(&g) {
        let self_loop = scc.len() == 1 && g.find_edge(scc[0], scc[0]).is_some();
        if scc.len() < 2 && !self_loop {
            continue;
        }
        let mut members: Vec<&str> = scc.iter().map(|n| g[*n]).collect();
        members.sort();
        let on: BTreeSet<&str> = members.iter().copied().collect();
        let edges = edges.iter().filter(|(a, b, _)| on.contains(a) && on.contains(b)).cloned().collect();
        out.push(Cycle { members, edges });
    }
    out
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

    #[test]
    fn cycles_name_their_members_and_edges_and_include_self_loops() {
        let edges = [("a", "b", 1), ("b", "a", 2), ("c", "c", 3), ("d", "a", 4), ("a", "zz", 5)];
        let found = cycles(&["a", "b", "c", "d"], &edges);
        assert_eq!(found.len(), 2, "{found:?}");
        let ab = found.iter().find(|c| c.members == ["a", "b"]).expect("a-b cycle");
        assert_eq!(ab.edges, vec![("a", "b", 1), ("b", "a", 2)]);
        assert!(found.iter().any(|c| c.members == ["c"] && c.edges == [("c", "c", 3)]));
    }
}
