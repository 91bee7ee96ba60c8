//! Property tests of the bounds and the fast path: whatever the expression, one that passes
//! the bounds compiles within a small stack, the scan never sees less nesting than jaq's
//! lexer builds, and plain paths resolved in place give what jaq gives.

use jaq_core::load::lex::{StrPart, Tok, Token};
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::bounds::{self, nesting};
use crate::Program;

/// Pieces of jq (and of things that are not jq) that nest, close, comment and quote.
const PIECES: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "\"",
    "\\(",
    "\\\"",
    "\\",
    "#",
    "\n",
    "\r",
    " ",
    ".",
    "..",
    ".a",
    "$x",
    "@base64 ",
    "1",
    "1.5e3",
    "a::b",
    ",",
    ";",
    ":",
    "?",
    "|",
    "|=",
    "+",
    "-",
    "*",
    "//",
    "==",
    "and ",
    "or ",
    "if ",
    " then ",
    " elif ",
    " else ",
    " end",
    "try ",
    " catch ",
    "def f: ",
    "reduce ",
    "foreach ",
    " as $x ",
    "label $l | ",
    "(0; . + 1)",
    "é",
    "&",
];

/// A soup of pieces (mostly not jq), or a well-formed program nested in every way jq nests.
fn program() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(prop::sample::select(PIECES), 0..400).prop_map(|p| p.concat()),
        term(),
    ]
}

/// A program nested by wrapping a term again and again in one of jq's nesting forms
/// (`{t}` the term so far, `{o}` a small other term).
fn term() -> impl Strategy<Value = String> {
    const FORMS: &[&str] = &[
        "({t})",
        "[{t}]",
        "{a: {t}}",
        "\"x\\({t})y\"",
        "@json \"\\({t})\"",
        "-{t}",
        "try {t}",
        "{t} + {o}",
        "{o} | {t}",
        "{o}, {t}",
        "if {o} then {t} else {o} end",
        "def f: {o}; {t}",
        "reduce {o} as $x (0; {t})",
        "{o} as $x | {t}",
        "try {o} catch {t}",
        "{t} # (((\n",
    ];
    const ATOMS: &[&str] = &[".", ".a", "1", "$__loc__", "\"s\"", "null", "..", ".[]"];
    let step = (prop::sample::select(FORMS), prop::sample::select(ATOMS));
    (
        prop::sample::select(ATOMS),
        prop::collection::vec(step, 0..160),
    )
        .prop_map(|(atom, steps)| {
            steps
                .into_iter()
                .fold(atom.to_string(), |t, (form, other)| {
                    form.replace("{o}", other).replace("{t}", &t)
                })
        })
}

/// How deeply jaq's lexer nests blocks and strings in `tokens`.
fn token_depth(tokens: &[Token<&str>]) -> usize {
    tokens
        .iter()
        .map(|Token(_, tok)| match tok {
            Tok::Block(inner) => 1 + token_depth(inner),
            Tok::Str(parts) => {
                1 + parts
                    .iter()
                    .map(|part| match part {
                        StrPart::Term(t) => token_depth(std::slice::from_ref(t)),
                        _ => 0,
                    })
                    .max()
                    .unwrap_or(0)
            }
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn what_passes_the_bounds_compiles_on_a_small_stack(expr in program()) {
        if bounds::check(&expr).is_ok() {
            let compiled = std::thread::Builder::new()
                .stack_size(crate::COMPILE_STACK / 4)
                .spawn(move || { let _ = Program::compile(&expr); })
                .expect("thread")
                .join();
            prop_assert!(compiled.is_ok());
        }
    }

    #[test]
    fn the_scan_sees_at_least_the_nesting_jaqs_lexer_builds(expr in program()) {
        let scanned = nesting(&expr).blocks;
        let lexed = crate::on_compile_stack(|| {
            jaq_core::load::Lexer::new(expr.as_str())
                .lex()
                .ok()
                .map(|tokens| token_depth(&tokens))
        });
        if let Some(depth) = lexed {
            prop_assert!(scanned >= depth, "scanned {} < lexed {}", scanned, depth);
        }
    }

    #[test]
    fn plain_paths_in_place_agree_with_jaq(
        data in json_value(3),
        path in prop::collection::vec(prop::sample::select(&["a", "b", "_c", "d1"][..]), 0..4),
    ) {
        let expr = if path.is_empty() { ".".to_string() } else { format!(".{}", path.join(".")) };
        let template = json!({"v": format!("jq({expr})"), "t": format!("x jq({expr}) y")});
        if let Some(fast) = crate::fast::render(&template, &data) {
            prop_assert_eq!(Ok(fast), crate::render(&template, &data));
        }
    }
}

/// Small JSON values whose objects use the keys the paths above walk.
fn json_value(depth: u32) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-1000i64..1000).prop_map(|n| json!(n)),
        "[a-z]{0,5}".prop_map(Value::String),
    ];
    leaf.prop_recursive(depth, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(&["a", "b", "_c", "d1", "e"][..]).prop_map(str::to_string),
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
