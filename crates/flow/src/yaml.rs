//! YAML into a tree of nodes that remember where they start (line and column, both from 1),
//! so every problem found later can name its place. Built on yaml-rust2's event parser, with
//! bounds on the document's size, nesting and node count and on what aliases copy.

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A place in the source: line and column, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Pos {
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1.
    pub column: usize,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// A YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts.
    pub pos: Pos,
    /// What it is.
    pub kind: NodeKind,
}

/// The three kinds of YAML node (aliases are resolved into copies).
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A scalar; `plain` is false when it was quoted or a block scalar (always a string).
    Scalar {
        /// The scalar's text.
        text: String,
        /// Whether it was unquoted (so `true`, `3` or `null` are not strings).
        plain: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// Keys keep their own positions.
    Map(Vec<(Key, Node)>),
}

/// A mapping's key (always a scalar's text) with its own position.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The key's text.
    pub name: String,
    /// Where it is written.
    pub pos: Pos,
}

/// Why a source is not YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// Where the parser stopped.
    pub pos: Pos,
    /// What it found there.
    pub message: String,
}

/// The largest flow source accepted (bytes).
pub const MAX_SOURCE_BYTES: usize = 512 * 1024;
/// The deepest nesting of lists and mappings, aliases' contents included.
pub const MAX_DEPTH: usize = 64;
/// The most nodes a document may make, aliases' copies included.
pub const MAX_NODES: usize = 100_000;
/// The most nodes aliases (`*name`) may copy, all together: what keeps a "billion laughs"
/// document (anchors that repeat anchors) from growing without end.
pub const MAX_ALIAS_NODES: usize = 10_000;

/// Parses one YAML document (a second one in the same source is ignored), within the bounds
/// above. yaml-rust2's parser is driven event by event here (its own `load` recurses once per
/// level of nesting), so nothing recurses deeper than [`MAX_DEPTH`].
pub fn parse(source: &str) -> Result<Node, YamlError> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(YamlError {
            pos: Pos { line: 1, column: 1 },
            message: format!(
                "the document is {} bytes long; a flow may have at most {MAX_SOURCE_BYTES} bytes",
                source.len()
            ),
        });
    }
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(source);
    loop {
        let (event, mark) = parser.next_token().map_err(|e| YamlError {
            pos: pos_of(e.marker()),
            message: e.info().to_string(),
        })?;
        let last = matches!(event, Event::DocumentEnd | Event::StreamEnd);
        builder.on_event(event, mark);
        if let Some(message) = builder.error.take() {
            return Err(YamlError {
                pos: builder.error_pos,
                message,
            });
        }
        if last {
            break;
        }
    }
    builder.root.ok_or(YamlError {
        pos: Pos { line: 1, column: 1 },
        message: "the document is empty".to_string(),
    })
}

fn pos_of(mark: &Marker) -> Pos {
    Pos {
        line: mark.line(),
        column: mark.col() + 1,
    }
}

/// A list or mapping being read, with the number of nodes in it so far and the depth of its
/// deepest content (0 for an empty one).
enum Open {
    Seq(Pos, Vec<Node>, Size),
    Map(Pos, Vec<(Key, Node)>, Option<Key>, Size),
}

/// How big a node is: how many nodes it holds (itself included) and how deep it goes.
#[derive(Debug, Clone, Copy, Default)]
struct Size {
    nodes: usize,
    depth: usize,
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    root: Option<Node>,
    /// Anchored nodes, with their size (what an alias to them copies).
    anchors: std::collections::HashMap<usize, (Node, Size)>,
    anchor_stack: Vec<usize>,
    /// Nodes made so far, aliases' copies included.
    nodes: usize,
    /// Nodes copied by aliases so far.
    alias_nodes: usize,
    error: Option<String>,
    error_pos: Pos,
}

impl Builder {
    fn fail(&mut self, pos: Pos, message: String) {
        if self.error.is_none() {
            self.error = Some(message);
            self.error_pos = pos;
        }
    }

    /// Counts `size` more nodes at the current depth; false (and an error) past a bound.
    fn admit(&mut self, pos: Pos, size: Size) -> bool {
        self.nodes += size.nodes;
        if self.nodes > MAX_NODES {
            self.fail(
                pos,
                format!("the document has more than {MAX_NODES} nodes (aliases' copies counted)"),
            );
            return false;
        }
        if self.stack.len() + size.depth > MAX_DEPTH {
            self.fail(
                pos,
                format!("the document nests deeper than {MAX_DEPTH} levels of lists and mappings"),
            );
            return false;
        }
        true
    }

    fn push_node(&mut self, node: Node, size: Size, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Open::Seq(_, items, open_size)) => {
                open_size.nodes += size.nodes;
                open_size.depth = open_size.depth.max(size.depth);
                items.push(node);
            }
            Some(Open::Map(_, entries, pending, open_size)) => {
                open_size.nodes += size.nodes;
                open_size.depth = open_size.depth.max(size.depth);
                match pending.take() {
                    None => {
                        let name = match &node.kind {
                            NodeKind::Scalar { text, .. } => text.clone(),
                            _ => {
                                if self.error.is_none() {
                                    self.error = Some("a mapping key must be a plain value".into());
                                    self.error_pos = node.pos;
                                }
                                String::new()
                            }
                        };
                        *pending = Some(Key {
                            name,
                            pos: node.pos,
                        });
                    }
                    Some(key) => {
                        if entries.iter().any(|(k, _)| k.name == key.name) && self.error.is_none() {
                            self.error = Some(format!("the key '{}' appears twice", key.name));
                            self.error_pos = key.pos;
                        }
                        entries.push((key, node));
                    }
                }
            }
        }
    }

    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = pos_of(&mark);
        let leaf = Size { nodes: 1, depth: 0 };
        match ev {
            Event::Scalar(text, style, anchor, _) => {
                if !self.admit(pos, leaf) {
                    return;
                }
                let plain = style == TScalarStyle::Plain;
                self.push_node(
                    Node {
                        pos,
                        kind: NodeKind::Scalar { text, plain },
                    },
                    leaf,
                    anchor,
                );
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                // The list or mapping itself is one node, one level deeper.
                if !self.admit(pos, Size { nodes: 1, depth: 1 }) {
                    return;
                }
                self.anchor_stack.push(anchor);
                self.stack.push(match ev {
                    Event::SequenceStart(..) => Open::Seq(pos, Vec::new(), Size::default()),
                    _ => Open::Map(pos, Vec::new(), None, Size::default()),
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let anchor = self.anchor_stack.pop().unwrap_or(0);
                let (node, inner) = match self.stack.pop() {
                    Some(Open::Seq(pos, items, inner)) => (
                        Node {
                            pos,
                            kind: NodeKind::Seq(items),
                        },
                        inner,
                    ),
                    Some(Open::Map(pos, entries, _, inner)) => (
                        Node {
                            pos: entries.first().map_or(pos, |(k, _)| k.pos),
                            kind: NodeKind::Map(entries),
                        },
                        inner,
                    ),
                    None => return,
                };
                let size = Size {
                    nodes: inner.nodes + 1,
                    depth: inner.depth + 1,
                };
                self.push_node(node, size, anchor);
            }
            Event::Alias(id) => {
                let (node, size) = self.anchors.get(&id).cloned().unwrap_or((
                    Node {
                        pos,
                        kind: NodeKind::Scalar {
                            text: String::new(),
                            plain: true,
                        },
                    },
                    leaf,
                ));
                self.alias_nodes += size.nodes;
                if self.alias_nodes > MAX_ALIAS_NODES {
                    self.fail(
                        pos,
                        format!(
                            "aliases copy more than {MAX_ALIAS_NODES} nodes in all; write the \
                             repeated parts out or repeat them less"
                        ),
                    );
                    return;
                }
                if !self.admit(pos, size) {
                    return;
                }
                self.push_node(node, size, 0);
            }
            _ => {}
        }
    }
}

impl Node {
    /// The node as JSON: plain scalars become null, booleans or numbers when they read as
    /// such (YAML 1.2 core schema), everything else a string.
    pub fn to_json(&self) -> Value {
        match &self.kind {
            NodeKind::Scalar { text, plain } => {
                if *plain {
                    plain_scalar(text)
                } else {
                    Value::String(text.clone())
                }
            }
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => {
                let mut map = Map::new();
                for (k, v) in entries {
                    map.insert(k.name.clone(), v.to_json());
                }
                Value::Object(map)
            }
        }
    }

    /// The text of a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// A short name for the node's kind, for messages.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar { .. } => "a value",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    /// Calls `f` on every string scalar in the tree, with its position.
    pub fn visit_strings(&self, f: &mut impl FnMut(&str, Pos)) {
        match &self.kind {
            NodeKind::Scalar { text, .. } => f(text, self.pos),
            NodeKind::Seq(items) => items.iter().for_each(|n| n.visit_strings(f)),
            NodeKind::Map(entries) => entries.iter().for_each(|(_, n)| n.visit_strings(f)),
        }
    }
}

fn plain_scalar(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Value::Number(i.into());
    }
    if let Some(octal) = text.strip_prefix("0o") {
        if let Ok(i) = i64::from_str_radix(octal, 8) {
            return Value::Number(i.into());
        }
    }
    if let Some(hex) = text.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Value::Number(i.into());
        }
    }
    let looks_numeric = text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    if looks_numeric && text.chars().any(|c| c.is_ascii_digit()) {
        if let Some(n) = text.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_values() {
        let node = parse("a: 1\nb:\n  - 'x'\n  - true\n  - 0755\n").unwrap();
        let NodeKind::Map(entries) = &node.kind else {
            panic!("not a map")
        };
        assert_eq!(entries[1].0.pos, Pos { line: 2, column: 1 });
        let NodeKind::Seq(items) = &entries[1].1.kind else {
            panic!("not a seq")
        };
        assert_eq!(items[0].pos, Pos { line: 3, column: 5 });
        assert_eq!(
            node.to_json(),
            serde_json::json!({"a": 1, "b": ["x", true, 755]})
        );
    }

    #[test]
    fn aliases_copy_their_anchor() {
        let node = parse("a: &x {k: [1, 2]}\nb: *x\n").unwrap();
        assert_eq!(
            node.to_json(),
            serde_json::json!({"a": {"k": [1, 2]}, "b": {"k": [1, 2]}})
        );
    }

    /// Ten levels of anchors, each listing the previous one ten times: 10^10 nodes if expanded.
    fn alias_bomb() -> String {
        let mut text = String::from("x0: &a0 [x,x,x,x,x,x,x,x,x,x]\n");
        for i in 1..10 {
            let items = vec![format!("*a{}", i - 1); 10].join(",");
            text.push_str(&format!("x{i}: &a{i} [{items}]\n"));
        }
        text
    }

    #[test]
    fn alias_expansion_is_bounded() {
        let started = std::time::Instant::now();
        let err = parse(&alias_bomb()).unwrap_err();
        assert!(err.message.contains("aliases copy more than"), "{err:?}");
        assert_eq!(err.pos.line, 4, "{err:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn nesting_size_and_node_count_are_bounded() {
        let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        let err = parse(&deep).unwrap_err();
        assert!(err.message.contains("deeper than 64"), "{err:?}");
        assert_eq!(
            err.pos,
            Pos {
                line: 1,
                column: 65
            }
        );
        // Block style too; far deeper flow style is refused by yaml-rust2's scanner itself.
        let block: String = (0..100)
            .map(|i| format!("{}a:\n", "  ".repeat(i)))
            .collect();
        assert!(parse(&block)
            .unwrap_err()
            .message
            .contains("deeper than 64"));
        let far = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(&far).is_err());
        let ok = format!("{}1{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        // An alias to a deep node counts its depth where it is placed.
        let via_alias = format!(
            "a: &d {}1{}\nb: [[*d]]\n",
            "[".repeat(MAX_DEPTH - 2),
            "]".repeat(MAX_DEPTH - 2)
        );
        assert!(parse(&via_alias)
            .unwrap_err()
            .message
            .contains("deeper than"));
        let big = "x".repeat(MAX_SOURCE_BYTES + 1);
        assert!(parse(&big).unwrap_err().message.contains("at most"));
        let many = format!("[{}]", vec!["1"; MAX_NODES].join(","));
        assert!(parse(&many)
            .unwrap_err()
            .message
            .contains("more than 100000 nodes"));
    }

    #[test]
    fn bad_yaml_has_a_position() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.pos.line >= 1, "{err:?}");
        let err = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(err.pos, Pos { line: 2, column: 1 });
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    fn depth(node: &Node) -> usize {
        match &node.kind {
            NodeKind::Scalar { .. } => 0,
            NodeKind::Seq(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
            NodeKind::Map(entries) => 1 + entries.iter().map(|(_, n)| depth(n)).max().unwrap_or(0),
        }
    }

    fn count(node: &Node) -> usize {
        match &node.kind {
            NodeKind::Scalar { .. } => 1,
            NodeKind::Seq(items) => 1 + items.iter().map(count).sum::<usize>(),
            NodeKind::Map(entries) => 1 + entries.iter().map(|(_, n)| 1 + count(n)).sum::<usize>(),
        }
    }

    const PIECES: &[&str] = &[
        "- ", "a: ", "b: ", "&x ", "&y ", "*x", "*y", "[", "]", "{", "}", ", ", "\n", "  ", "1",
        "'q'", "\"d\"", "? ", "--- ", "|\n  t", "!!str ", "#c",
    ];

    /// Ten levels of anchors, each listing the previous one `fan` times.
    fn anchors(levels: usize, fan: usize) -> String {
        let mut text = String::from("l0: &a0 [x]\n");
        for i in 1..levels {
            let items = vec![format!("*a{}", i - 1); fan].join(", ");
            text.push_str(&format!("l{i}: &a{i} [{items}]\n"));
        }
        text
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn whatever_parses_is_within_the_bounds(
            pieces in prop::collection::vec(prop::sample::select(PIECES), 0..300)
        ) {
            if let Ok(node) = parse(&pieces.concat()) {
                prop_assert!(depth(&node) <= MAX_DEPTH);
                prop_assert!(count(&node) <= MAX_NODES);
            }
        }

        #[test]
        fn anchors_of_anchors_stop_at_the_alias_bound(levels in 1usize..14, fan in 1usize..14) {
            let started = std::time::Instant::now();
            match parse(&anchors(levels, fan)) {
                Ok(node) => prop_assert!(count(&node) <= MAX_NODES),
                Err(e) => prop_assert!(e.message.contains("aliases copy more than"), "{:?}", e),
            }
            // Milliseconds of work; the margin is for a loaded machine.
            prop_assert!(started.elapsed() < std::time::Duration::from_secs(5));
        }
    }
}
