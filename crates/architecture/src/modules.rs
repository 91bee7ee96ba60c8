//! A crate's module graph, read from its source with `syn`: which module refers to which.
//!
//! Files are found the way rustc finds them (`mod x;` is `x.rs` or `x/mod.rs` beside a `mod.rs`
//! or crate root, under `name/` beside another file, or what `#[path]` says), every `cfg`
//! included. References are `use` declarations and paths in code, types and macro bodies that
//! start with `crate::`, `super::` or `self::` (or, in a `use`, with a child module's name),
//! followed through `use` re-exports (`crate::Foo` where the root has `pub use pool::Foo` is a
//! reference to `pool`). A reference from `a::x::…` to `b::…` is an edge `a → b` among the
//! children of the modules' common parent, at every level; references to an ancestor or a
//! descendant are no edge. Paths through names brought into scope by a `use` count once, at
//! the `use`. Crates named without `crate::` (other crates) are not looked at. Items under
//! `#[cfg(test)]` (unit test modules and helpers) are left out: the graph is the shipped code's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use proc_macro2::{Spacing, TokenStream, TokenTree};
use syn::visit::Visit;

use crate::graph;

/// A module's path from the crate root: empty for the root, `["api", "flows"]` for
/// `crate::api::flows`.
type ModulePath = Vec<String>;

/// What one module declares and brings into scope.
#[derive(Default, Debug)]
struct Module {
    /// Its child modules' names.
    children: BTreeSet<String>,
    /// Names of the items declared in it (functions, types, traits, constants, macros).
    items: BTreeSet<String>,
    /// Names its `use` declarations bring in, with the in-crate path each one stands for.
    uses: BTreeMap<String, ModulePath>,
    /// The in-crate paths of its glob imports (`use crate::x::*`).
    globs: Vec<ModulePath>,
}

/// A `use` leaf: `name` (or a glob when `None`) standing for `segments`, still relative.
#[derive(Debug)]
struct UseLeaf {
    module: ModulePath,
    segments: Vec<String>,
    name: Option<String>,
    at: String,
}

/// A path in code that starts with `crate`, `super` or `self`, still relative.
#[derive(Debug)]
struct PathRef {
    module: ModulePath,
    segments: Vec<String>,
    at: String,
}

/// One crate's module graph: the edges between sibling modules.
#[derive(Debug, Default)]
pub struct ModuleGraph {
    /// (common parent, from, to) → where the first reference making that edge is
    /// (`crates/x/src/a.rs:12`).
    edges: BTreeMap<(ModulePath, String, String), String>,
}

/// A cycle among the children of one module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    /// The modules' parent, written `crate` or `crate::api`.
    pub parent: String,
    /// The modules that reach one another, sorted.
    pub modules: Vec<String>,
    /// The edges inside the cycle, each with the first place that makes it:
    /// `pool -> metrics (crates/server/src/pool.rs:40)`.
    pub edges: Vec<String>,
}

impl ModuleGraph {
    /// Reads the crate whose root file is `root_file` (`src/lib.rs`, `src/main.rs`). Places in
    /// messages are relative to `base` (the workspace root).
    pub fn read(root_file: &Path, base: &Path) -> Result<Self, String> {
        let mut reader = Reader {
            base: base.to_owned(),
            modules: BTreeMap::new(),
            uses: Vec::new(),
            paths: Vec::new(),
        };
        let dir = root_file
            .parent()
            .ok_or_else(|| format!("{} has no parent directory", root_file.display()))?
            .to_owned();
        reader.load_file(root_file, Vec::new(), dir.clone(), dir)?;
        Ok(reader.into_graph())
    }

    /// Every edge, written `parent: from -> to (place)`, sorted: for messages and debugging.
    pub fn edges(&self) -> Vec<String> {
        self.edges
            .iter()
            .map(|((parent, from, to), at)| format!("{}: {from} -> {to} ({at})", label(parent)))
            .collect()
    }

    /// The cycles among the children of each module, sorted by parent and members.
    pub fn cycles(&self) -> Vec<Cycle> {
        let mut by_parent: BTreeMap<&ModulePath, Vec<(&str, &str)>> = BTreeMap::new();
        for (parent, from, to) in self.edges.keys() {
            by_parent
                .entry(parent)
                .or_default()
                .push((from.as_str(), to.as_str()));
        }
        let mut found = Vec::new();
        for (parent, edges) in by_parent {
            for modules in graph::cycles(edges.iter().copied()) {
                let edges = self
                    .edges
                    .iter()
                    .filter(|((p, from, to), _)| {
                        p == parent && modules.contains(from) && modules.contains(to)
                    })
                    .map(|((_, from, to), at)| format!("{from} -> {to} ({at})"))
                    .collect();
                found.push(Cycle {
                    parent: label(parent),
                    modules,
                    edges,
                });
            }
        }
        found
    }
}

/// `crate` for the root, `crate::a::b` for a module.
fn label(path: &[String]) -> String {
    std::iter::once("crate")
        .chain(path.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("::")
}

/// Collects modules, `use` leaves and paths file by file, then resolves them.
struct Reader {
    base: PathBuf,
    modules: BTreeMap<ModulePath, Module>,
    uses: Vec<UseLeaf>,
    paths: Vec<PathRef>,
}

impl Reader {
    /// Loads the module in `file`. `children_dir` is where its `mod x;` files are,
    /// `path_dir` what its `#[path]` attributes are relative to.
    fn load_file(
        &mut self,
        file: &Path,
        module: ModulePath,
        children_dir: PathBuf,
        path_dir: PathBuf,
    ) -> Result<(), String> {
        let source = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let parsed = syn::parse_file(&source)
            .map_err(|e| format!("cannot parse {}: {e}", file.display()))?;
        let shown = file
            .strip_prefix(&self.base)
            .unwrap_or(file)
            .display()
            .to_string();
        self.load_items(&parsed.items, module, &children_dir, &path_dir, &shown)
    }

    fn load_items(
        &mut self,
        items: &[syn::Item],
        module: ModulePath,
        children_dir: &Path,
        path_dir: &Path,
        file: &str,
    ) -> Result<(), String> {
        self.modules.entry(module.clone()).or_default();
        for item in items {
            if is_test_only(item) {
                continue;
            }
            if let syn::Item::Mod(declared) = item {
                let name = declared.ident.to_string();
                self.module_mut(&module).children.insert(name.clone());
                let mut child = module.clone();
                child.push(name.clone());
                if let Some((_, content)) = &declared.content {
                    let dir = children_dir.join(&name);
                    self.load_items(content, child, &dir, &dir, file)?;
                    continue;
                }
                let named = path_attribute(&declared.attrs);
                let path = match &named {
                    Some(path) => path_dir.join(path),
                    None => {
                        let flat = children_dir.join(format!("{name}.rs"));
                        let nested = children_dir.join(&name).join("mod.rs");
                        if flat.exists() {
                            flat
                        } else if nested.exists() {
                            nested
                        } else {
                            return Err(format!(
                                "{file}: `mod {name};` has neither {} nor {}",
                                flat.display(),
                                nested.display()
                            ));
                        }
                    }
                };
                let parent = path.parent().unwrap_or(Path::new(".")).to_owned();
                // A `mod.rs`, or a file named by `#[path]`, keeps its children beside it;
                // another file `x.rs` keeps them in `x/`.
                let is_mod_rs = named.is_some() || path.file_name().is_some_and(|n| n == "mod.rs");
                let child_dir = if is_mod_rs {
                    parent.clone()
                } else {
                    parent.join(path.file_stem().unwrap_or_default())
                };
                self.load_file(&path, child, child_dir, parent)?;
                continue;
            }
            if let Some(name) = item_name(item) {
                self.module_mut(&module).items.insert(name);
            }
            let mut visitor = RefVisitor {
                module: &module,
                file,
                uses: &mut self.uses,
                paths: &mut self.paths,
            };
            visitor.visit_item(item);
        }
        Ok(())
    }

    fn module_mut(&mut self, path: &ModulePath) -> &mut Module {
        self.modules.entry(path.clone()).or_default()
    }

    /// `segments` as seen from `module`, made absolute; `None` for another crate's path.
    fn absolute(&self, module: &[String], segments: &[String], in_use: bool) -> Option<ModulePath> {
        let first = segments.first()?;
        match first.as_str() {
            "crate" => Some(segments[1..].to_vec()),
            "self" => Some(module.iter().chain(&segments[1..]).cloned().collect()),
            "super" => {
                let ups = segments.iter().take_while(|s| *s == "super").count();
                let kept = module.len().checked_sub(ups)?;
                Some(
                    module[..kept]
                        .iter()
                        .chain(&segments[ups..])
                        .cloned()
                        .collect(),
                )
            }
            _ if in_use
                && self
                    .modules
                    .get(module)
                    .is_some_and(|m| m.children.contains(first)) =>
            {
                Some(module.iter().chain(segments).cloned().collect())
            }
            _ => None,
        }
    }

    /// The module an absolute path ends in, following `use` re-exports and globs.
    fn locate(&self, path: &[String], depth: usize) -> ModulePath {
        let mut module = Vec::new();
        for (i, segment) in path.iter().enumerate() {
            let Some(here) = self.modules.get(&module) else {
                break;
            };
            if here.children.contains(segment) {
                module.push(segment.clone());
                continue;
            }
            if depth < 16 && !here.items.contains(segment) {
                let rest = &path[i + 1..];
                if let Some(target) = here.uses.get(segment) {
                    let next: ModulePath = target.iter().chain(rest).cloned().collect();
                    return self.locate(&next, depth + 1);
                }
                for glob in &here.globs {
                    let source = self.locate(glob, depth + 1);
                    if self.modules.get(&source).is_some_and(|m| {
                        m.children.contains(segment)
                            || m.items.contains(segment)
                            || m.uses.contains_key(segment)
                    }) {
                        let next: ModulePath = source
                            .iter()
                            .chain(std::iter::once(segment))
                            .chain(rest)
                            .cloned()
                            .collect();
                        return self.locate(&next, depth + 1);
                    }
                }
            }
            break;
        }
        module
    }

    fn into_graph(mut self) -> ModuleGraph {
        let mut targets: Vec<(ModulePath, ModulePath, String)> = Vec::new();
        let uses = std::mem::take(&mut self.uses);
        for leaf in &uses {
            let Some(absolute) = self.absolute(&leaf.module, &leaf.segments, true) else {
                continue;
            };
            let module = self.module_mut(&leaf.module);
            match &leaf.name {
                Some(name) => {
                    module.uses.insert(name.clone(), absolute.clone());
                }
                None => module.globs.push(absolute.clone()),
            }
            targets.push((leaf.module.clone(), absolute, leaf.at.clone()));
        }
        for path in &self.paths {
            if let Some(absolute) = self.absolute(&path.module, &path.segments, false) {
                targets.push((path.module.clone(), absolute, path.at.clone()));
            }
        }
        let mut graph = ModuleGraph::default();
        for (from, absolute, at) in targets {
            let to = self.locate(&absolute, 0);
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common == from.len() || common == to.len() {
                continue; // the module itself, an ancestor or a descendant
            }
            graph
                .edges
                .entry((
                    from[..common].to_vec(),
                    from[common].clone(),
                    to[common].clone(),
                ))
                .or_insert(at);
        }
        graph
    }
}

/// Whether the item is compiled for the crate's unit tests only (`#[cfg(test)]`): tests may
/// reach across modules without making the shipped code a knot.
fn is_test_only(item: &syn::Item) -> bool {
    let attrs: &[syn::Attribute] = match item {
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Macro(i) => &i.attrs,
        syn::Item::Mod(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        _ => return false,
    };
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg")
            && attr
                .parse_args::<syn::Ident>()
                .is_ok_and(|predicate| predicate == "test")
    })
}

/// The value of a `#[path = "…"]` attribute.
fn path_attribute(attrs: &[syn::Attribute]) -> Option<String> {
    attrs.iter().find_map(|attr| match &attr.meta {
        syn::Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(s.value()),
            _ => None,
        },
        _ => None,
    })
}

/// The name an item declares in its module's namespace, if any.
fn item_name(item: &syn::Item) -> Option<String> {
    let ident = match item {
        syn::Item::Const(i) => &i.ident,
        syn::Item::Enum(i) => &i.ident,
        syn::Item::Fn(i) => &i.sig.ident,
        syn::Item::Macro(i) => i.ident.as_ref()?,
        syn::Item::Static(i) => &i.ident,
        syn::Item::Struct(i) => &i.ident,
        syn::Item::Trait(i) => &i.ident,
        syn::Item::TraitAlias(i) => &i.ident,
        syn::Item::Type(i) => &i.ident,
        syn::Item::Union(i) => &i.ident,
        _ => return None,
    };
    Some(ident.to_string())
}

/// Collects the `use` leaves and `crate`/`super`/`self` paths of one item.
struct RefVisitor<'r> {
    module: &'r ModulePath,
    file: &'r str,
    uses: &'r mut Vec<UseLeaf>,
    paths: &'r mut Vec<PathRef>,
}

impl RefVisitor<'_> {
    fn at(&self, span: proc_macro2::Span) -> String {
        format!("{}:{}", self.file, span.start().line)
    }

    fn add_path(&mut self, segments: Vec<String>, span: proc_macro2::Span) {
        let at = self.at(span);
        self.paths.push(PathRef {
            module: self.module.clone(),
            segments,
            at,
        });
    }

    /// Flattens a use tree into its leaves, `prefix` being the segments above `tree`.
    fn use_tree(&mut self, tree: &syn::UseTree, prefix: &mut Vec<String>) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(&p.tree, prefix);
                prefix.pop();
            }
            syn::UseTree::Name(n) => self.use_leaf(prefix, &n.ident, &n.ident),
            syn::UseTree::Rename(r) => self.use_leaf(prefix, &r.ident, &r.rename),
            syn::UseTree::Glob(g) => {
                let at = self.at(g.star_token.span);
                self.uses.push(UseLeaf {
                    module: self.module.clone(),
                    segments: prefix.clone(),
                    name: None,
                    at,
                });
            }
            syn::UseTree::Group(g) => {
                for tree in &g.items {
                    self.use_tree(tree, prefix);
                }
            }
        }
    }

    fn use_leaf(&mut self, prefix: &[String], ident: &syn::Ident, name: &syn::Ident) {
        let mut segments = prefix.to_vec();
        let name = if ident == "self" {
            // `use a::b::{self}` names `b` itself.
            match (name == "self", prefix.last()) {
                (true, Some(last)) => last.clone(),
                (true, None) => return,
                (false, _) => name.to_string(),
            }
        } else {
            segments.push(ident.to_string());
            name.to_string()
        };
        let at = self.at(ident.span());
        self.uses.push(UseLeaf {
            module: self.module.clone(),
            segments,
            // `use x::Trait as _` brings no name into scope, but still refers to `x`.
            name: Some(name).filter(|n| n != "_"),
            at,
        });
    }

    /// Finds `crate::a::b`, `super::x`, `self::y` (and `$crate::…`) in a macro's tokens.
    fn scan_tokens(&mut self, tokens: TokenStream) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < tokens.len() {
            match &tokens[i] {
                TokenTree::Group(group) => self.scan_tokens(group.stream()),
                TokenTree::Ident(ident)
                    if ident == "crate" || ident == "super" || ident == "self" =>
                {
                    let mut segments = vec![ident.to_string()];
                    let mut j = i + 1;
                    while let (
                        Some(TokenTree::Punct(a)),
                        Some(TokenTree::Punct(b)),
                        Some(TokenTree::Ident(next)),
                    ) = (tokens.get(j), tokens.get(j + 1), tokens.get(j + 2))
                    {
                        if a.as_char() != ':' || a.spacing() != Spacing::Joint || b.as_char() != ':'
                        {
                            break;
                        }
                        segments.push(next.to_string());
                        j += 3;
                    }
                    if segments.len() > 1 {
                        self.add_path(segments, ident.span());
                        i = j;
                        continue;
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
}

impl<'ast> Visit<'ast> for RefVisitor<'_> {
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        if item.leading_colon.is_none() {
            self.use_tree(&item.tree, &mut Vec::new());
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.leading_colon.is_none() {
            if let Some(first) = path.segments.first() {
                let first = &first.ident;
                if first == "crate" || first == "super" || first == "self" {
                    let segments = path.segments.iter().map(|s| s.ident.to_string()).collect();
                    self.add_path(segments, first.span());
                }
            }
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.scan_tokens(mac.tokens.clone());
        syn::visit::visit_macro(self, mac);
    }

    // `pub(in crate::x)` and `pub(super)` say who may see an item, not what it uses.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    // Attributes (`#[cfg]`, `#[serde(…)]`, doc comments) refer to no module.
    fn visit_attribute(&mut self, _: &'ast syn::Attribute) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `files` (path, source) under a fresh directory and reads the crate at `lib.rs`.
    fn graph_of(files: &[(&str, &str)]) -> ModuleGraph {
        let dir = tempfile::tempdir().expect("a temporary directory");
        for (path, source) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("create dir");
            std::fs::write(&path, source).expect("write source");
        }
        ModuleGraph::read(&dir.path().join("lib.rs"), dir.path()).expect("read the crate")
    }

    #[test]
    fn references_of_every_form_become_edges_between_siblings() {
        let graph = graph_of(&[
            (
                "lib.rs",
                "mod a; mod b; mod c; mod d; mod e; pub use c::Thing; pub use d::*;",
            ),
            ("a.rs", "use crate::b::x; fn f() { super::Thing::new(); }"),
            (
                "b.rs",
                "pub mod inner { pub fn g() { crate::DThing::go(); } } pub fn x() {}",
            ),
            (
                "c.rs",
                "pub struct Thing; fn h() { format!(\"{}\", crate::e::y()); }",
            ),
            ("d/mod.rs", "mod deep; pub struct DThing;"),
            ("d/deep.rs", "use super::DThing; use crate::a as _;"),
            (
                "e.rs",
                "pub fn y() {} fn z() -> self::Local { todo!() } struct Local;",
            ),
        ]);
        assert_eq!(
            graph.edges(),
            vec![
                "crate: a -> b (a.rs:1)",
                "crate: a -> c (a.rs:1)",
                "crate: b -> d (b.rs:1)",
                "crate: c -> e (c.rs:1)",
                "crate: d -> a (d/deep.rs:1)",
            ]
        );
        assert_eq!(
            graph.cycles(),
            vec![Cycle {
                parent: "crate".into(),
                modules: vec!["a".into(), "b".into(), "d".into()],
                edges: vec![
                    "a -> b (a.rs:1)".into(),
                    "b -> d (b.rs:1)".into(),
                    "d -> a (d/deep.rs:1)".into(),
                ],
            }]
        );
    }

    #[test]
    fn nested_modules_give_edges_under_their_parent() {
        let graph = graph_of(&[
            ("lib.rs", "mod api; mod store;"),
            ("api.rs", "mod one; mod two; use crate::store::Db;"),
            ("api/one.rs", "use super::two::helper; pub fn run() {}"),
            (
                "api/two.rs",
                "pub fn helper() { super::one::run() } mod t { use super::*; }",
            ),
            (
                "store.rs",
                "pub struct Db; #[cfg(test)] mod tests { use crate::api::x; }",
            ),
        ]);
        assert_eq!(
            graph.edges(),
            vec![
                "crate: api -> store (api.rs:1)",
                "crate::api: one -> two (api/one.rs:1)",
                "crate::api: two -> one (api/two.rs:1)",
            ]
        );
        let cycles = graph.cycles();
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        assert_eq!(cycles[0].parent, "crate::api");
        assert_eq!(cycles[0].modules, vec!["one", "two"]);
    }

    #[test]
    fn path_attributes_and_inline_modules_are_followed_as_rustc_does() {
        // A file named by `#[path]` keeps its children beside it (like a `mod.rs`); an inline
        // module's children are in a directory of its name.
        let graph = graph_of(&[
            (
                "lib.rs",
                "#[path = \"elsewhere/imp.rs\"] mod a; mod b { pub mod c; }",
            ),
            ("elsewhere/imp.rs", "mod child;"),
            ("elsewhere/child.rs", "fn f() { crate::b::c::g(); }"),
            (
                "b/c.rs",
                "pub fn g() {} fn h() { super::super::a::child::f(); }",
            ),
        ]);
        assert_eq!(
            graph.edges(),
            vec![
                "crate: a -> b (elsewhere/child.rs:1)",
                "crate: b -> a (b/c.rs:1)"
            ]
        );
        assert_eq!(graph.cycles().len(), 1);
    }

    #[test]
    fn a_missing_module_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("lib.rs"), "mod gone;").expect("write");
        let err =
            ModuleGraph::read(&dir.path().join("lib.rs"), dir.path()).expect_err("a missing file");
        assert!(err.contains("`mod gone;` has neither"), "{err}");
    }
}
