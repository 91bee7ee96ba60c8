//! Cycles in a directed graph: its strongly connected components of more than one node
//! (Tarjan's algorithm), each a set of nodes that all reach one another.

use std::collections::{BTreeMap, BTreeSet};

/// The graph's cycles: every strongly connected component with two or more nodes, each sorted,
/// the list sorted. Self-loops are not cycles here (a module may refer to itself).
pub fn cycles<'a, I>(edges: I) -> Vec<Vec<String>>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut successors: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (from, to) in edges {
        successors.entry(to).or_default();
        if from != to {
            successors.entry(from).or_default().insert(to);
        }
    }
    let mut tarjan = Tarjan {
        successors: &successors,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        components: Vec::new(),
    };
    for node in successors.keys() {
        if !tarjan.index.contains_key(node) {
            tarjan.visit(node);
        }
    }
    let mut found: Vec<Vec<String>> = tarjan
        .components
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| {
            let mut names: Vec<String> = c.into_iter().map(str::to_owned).collect();
            names.sort();
            names
        })
        .collect();
    found.sort();
    found
}

/// Tarjan's strongly connected components (recursive: module graphs are small and shallow).
struct Tarjan<'g, 'a> {
    successors: &'g BTreeMap<&'a str, BTreeSet<&'a str>>,
    index: BTreeMap<&'a str, usize>,
    low: BTreeMap<&'a str, usize>,
    stack: Vec<&'a str>,
    on_stack: BTreeSet<&'a str>,
    next: usize,
    components: Vec<Vec<&'a str>>,
}

impl<'a> Tarjan<'_, 'a> {
    fn visit(&mut self, node: &'a str) {
        self.index.insert(node, self.next);
        self.low.insert(node, self.next);
        self.next += 1;
        self.stack.push(node);
        self.on_stack.insert(node);
        let successors = self.successors;
        for &next in successors.get(node).into_iter().flatten() {
            if !self.index.contains_key(next) {
                self.visit(next);
                let low = self.low[node].min(self.low[next]);
                self.low.insert(node, low);
            } else if self.on_stack.contains(next) {
                let low = self.low[node].min(self.index[next]);
                self.low.insert(node, low);
            }
        }
        if self.low[node] == self.index[node] {
            let mut component = Vec::new();
            while let Some(top) = self.stack.pop() {
                self.on_stack.remove(top);
                component.push(top);
                if top == node {
                    break;
                }
            }
            self.components.push(component);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cycles;

    #[test]
    fn finds_each_cycle_and_nothing_else() {
        // a → b → c → a is one ring, d ↔ e another; f hangs off both, g loops on itself,
        // and h → a does not join the ring (nothing leads back to h).
        let edges = [
            ("a", "b"),
            ("b", "c"),
            ("c", "a"),
            ("c", "d"),
            ("d", "e"),
            ("e", "d"),
            ("e", "f"),
            ("a", "f"),
            ("g", "g"),
            ("h", "a"),
        ];
        assert_eq!(
            cycles(edges),
            vec![vec!["a", "b", "c"], vec!["d", "e"]],
            "two rings: a-b-c and d-e"
        );
    }

    #[test]
    fn a_chain_and_a_diamond_have_no_cycle() {
        let edges = [("a", "b"), ("b", "c"), ("a", "d"), ("d", "c")];
        assert!(cycles(edges).is_empty());
    }

    #[test]
    fn one_back_edge_joins_a_chain_into_one_cycle() {
        let edges = [("a", "b"), ("b", "c"), ("c", "d"), ("d", "b")];
        assert_eq!(cycles(edges), vec![vec!["b", "c", "d"]]);
    }
}
