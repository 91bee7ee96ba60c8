//! YAML into a tree of nodes that remember where they start (line and column, both from 1),
//! so every problem found later can name its place. Built on yaml-rust2's event parser.

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A place in the source: line and column, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Pos {
    pub line: usize,
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
    pub pos: Pos,
    pub kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A scalar; `plain` is false when it was quoted or a block scalar (always a string).
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    /// Keys keep their own positions.
    Map(Vec<(Key, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub pos: Pos,
}

/// Why a source is not YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

/// Parses one YAML document.
pub fn parse(source: &str) -> Result<Node, YamlError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(source);
    parser.load(&mut builder, false).map_err(|e| YamlError {
        pos: pos_of(e.marker()),
        message: e.info().to_string(),
    })?;
    if let Some(message) = builder.error {
        return Err(YamlError {
            pos: builder.error_pos,
            message,
        });
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

enum Open {
    Seq(Pos, Vec<Node>),
    Map(Pos, Vec<(Key, Node)>, Option<Key>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    root: Option<Node>,
    anchors: std::collections::HashMap<usize, Node>,
    anchor_stack: Vec<usize>,
    error: Option<String>,
    error_pos: Pos,
}

impl Builder {
    fn push_node(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Open::Seq(_, items)) => items.push(node),
            Some(Open::Map(_, entries, pending)) => match pending.take() {
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
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = pos_of(&mark);
        match ev {
            Event::Scalar(text, style, anchor, _) => {
                let plain = style == TScalarStyle::Plain;
                self.push_node(
                    Node {
                        pos,
                        kind: NodeKind::Scalar { text, plain },
                    },
                    anchor,
                );
            }
            Event::SequenceStart(anchor, _) => {
                self.anchor_stack.push(anchor);
                self.stack.push(Open::Seq(pos, Vec::new()));
            }
            Event::MappingStart(anchor, _) => {
                self.anchor_stack.push(anchor);
                self.stack.push(Open::Map(pos, Vec::new(), None));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let anchor = self.anchor_stack.pop().unwrap_or(0);
                let node = match self.stack.pop() {
                    Some(Open::Seq(pos, items)) => Node {
                        pos,
                        kind: NodeKind::Seq(items),
                    },
                    Some(Open::Map(pos, entries, _)) => Node {
                        pos: entries.first().map_or(pos, |(k, _)| k.pos),
                        kind: NodeKind::Map(entries),
                    },
                    None => return,
                };
                self.push_node(node, anchor);
            }
            Event::Alias(id) => {
                let node = self.anchors.get(&id).cloned().unwrap_or(Node {
                    pos,
                    kind: NodeKind::Scalar {
                        text: String::new(),
                        plain: true,
                    },
                });
                self.push_node(node, 0);
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
    fn bad_yaml_has_a_position() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.pos.line >= 1, "{err:?}");
        let err = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(err.pos, Pos { line: 2, column: 1 });
    }
}
