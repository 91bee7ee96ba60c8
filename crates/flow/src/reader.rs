//! Reading a YAML mapping field by field, recording every problem with its position instead
//! of stopping at the first one.

use serde_json::Value;

use crate::yaml::{Key, Node, NodeKind, Pos};
use crate::Problem;

/// Where problems are collected.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn add(&mut self, pos: Pos, message: impl Into<String>) {
        self.0.push(Problem {
            pos,
            message: message.into(),
        });
    }
}

/// A mapping being read; `what` names it in messages ("state 'a'", "function 'f'").
pub struct Obj<'a> {
    pub pos: Pos,
    pub what: String,
    entries: &'a [(Key, Node)],
}

impl<'a> Obj<'a> {
    /// Reads `node` as a mapping whose fields must be among `allowed`.
    pub fn new(node: &'a Node, what: &str, allowed: &[&str], p: &mut Problems) -> Option<Obj<'a>> {
        let NodeKind::Map(entries) = &node.kind else {
            p.add(
                node.pos,
                format!("{what} must be a mapping, not {}", node.kind_name()),
            );
            return None;
        };
        for (key, _) in entries {
            if !allowed.contains(&key.name.as_str()) {
                p.add(
                    key.pos,
                    format!(
                        "unknown field '{}' in {what}; allowed fields: {}",
                        key.name,
                        allowed.join(", ")
                    ),
                );
            }
        }
        Some(Obj {
            pos: node.pos,
            what: what.to_string(),
            entries,
        })
    }

    pub fn get(&self, name: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == name)
            .map(|(_, v)| v)
    }

    /// An optional scalar field as text.
    pub fn str(&self, name: &str, p: &mut Problems) -> Option<String> {
        let node = self.get(name)?;
        match node.as_str() {
            Some(text) => Some(text.to_string()),
            None => {
                p.add(
                    node.pos,
                    format!(
                        "'{name}' in {} must be a value, not {}",
                        self.what,
                        node.kind_name()
                    ),
                );
                None
            }
        }
    }

    /// A required scalar field as text.
    pub fn req_str(&self, name: &str, p: &mut Problems) -> Option<String> {
        if self.get(name).is_none() {
            p.add(self.pos, format!("{} needs '{name}'", self.what));
            return None;
        }
        self.str(name, p).filter(|s| {
            if s.is_empty() {
                p.add(
                    self.pos,
                    format!("'{name}' in {} must not be empty", self.what),
                );
            }
            !s.is_empty()
        })
    }

    pub fn json(&self, name: &str) -> Option<Value> {
        self.get(name).map(Node::to_json)
    }

    pub fn duration(&self, name: &str, p: &mut Problems) -> Option<std::time::Duration> {
        let node = self.get(name)?;
        let text = self.str(name, p)?;
        let parsed = crate::duration::parse(&text);
        if parsed.is_none() {
            p.add(
                node.pos,
                format!(
                    "'{name}' in {} is '{text}', not an ISO 8601 duration such as PT30S or PT5M",
                    self.what
                ),
            );
        }
        parsed
    }

    pub fn bool(&self, name: &str, p: &mut Problems) -> bool {
        match self.json(name) {
            None => false,
            Some(Value::Bool(b)) => b,
            Some(_) => {
                let pos = self.get(name).map_or(self.pos, |n| n.pos);
                p.add(
                    pos,
                    format!("'{name}' in {} must be true or false", self.what),
                );
                false
            }
        }
    }

    /// An optional list field; a problem if it is present and not a list.
    pub fn list(&self, name: &str, p: &mut Problems) -> &'a [Node] {
        match self.get(name) {
            None => &[],
            Some(Node {
                kind: NodeKind::Seq(items),
                ..
            }) => items,
            Some(node) => {
                p.add(
                    node.pos,
                    format!(
                        "'{name}' in {} must be a list, not {}",
                        self.what,
                        node.kind_name()
                    ),
                );
                &[]
            }
        }
    }

    /// A required, non-empty list field.
    pub fn req_list(&self, name: &str, p: &mut Problems) -> &'a [Node] {
        if self.get(name).is_none() {
            p.add(self.pos, format!("{} needs '{name}' (a list)", self.what));
            return &[];
        }
        let items = self.list(name, p);
        if items.is_empty()
            && matches!(
                self.get(name),
                Some(Node {
                    kind: NodeKind::Seq(_),
                    ..
                })
            )
        {
            p.add(
                self.pos,
                format!("'{name}' in {} must not be empty", self.what),
            );
        }
        items
    }

    /// Reads each mapping of list field `name` (`item` names one in messages, fields among
    /// `allowed`) with `read`; items with problems are left out (the problems are recorded).
    pub fn each<T>(
        &self,
        name: &str,
        required: bool,
        item: &str,
        allowed: &[&str],
        p: &mut Problems,
        mut read: impl FnMut(&Obj<'a>, &mut Problems) -> Option<T>,
    ) -> Vec<T> {
        let nodes = if required {
            self.req_list(name, p)
        } else {
            self.list(name, p)
        };
        let what = format!("{item} of {}", self.what);
        nodes
            .iter()
            .filter_map(|n| {
                let o = Obj::new(n, &what, allowed, p)?;
                read(&o, p)
            })
            .collect()
    }
}
