//! Compiling and running one jq expression with jaq, on JSON converted to jaq's values.
//! Compiling first checks the expression's [bounds](crate::bounds); a parse error names the
//! character where jaq stopped.

use std::sync::LazyLock;

use jaq_core::load::parse::Def;
use jaq_core::load::{self, Arena, File, Loader};
use jaq_core::{data, unwrap_valr, Compiler, Ctx, Vars};
use jaq_json::Val;
use serde_json::Value;
use zeroize::Zeroizing;

use super::TemplateError;

/// jq's standard definitions, parsed once (parsing them is most of a compile's cost).
static PRELUDE: LazyLock<Vec<Def<&'static str>>> = LazyLock::new(|| {
    jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs())
        .collect()
});

type Filter = jaq_core::compile::Filter<jaq_core::Native<data::JustLut<Val>>>;

/// A compiled expression.
pub struct Program {
    expr: String,
    filter: Filter,
}

impl Program {
    /// Checks the expression's bounds, then parses and compiles it with jq's prelude.
    pub fn compile(expr: &str) -> Result<Program, TemplateError> {
        crate::bounds::check(expr)?;
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs());
        let loader = Loader::new(PRELUDE.iter().cloned());
        let arena = Arena::default();
        let modules = loader
            .load(
                &arena,
                File {
                    code: expr,
                    path: (),
                },
            )
            .map_err(|errors| {
                let details: Vec<String> = errors
                    .iter()
                    .flat_map(|(_, e)| load_error(expr, e))
                    .collect();
                TemplateError(format!(
                    "jq({expr}) cannot be parsed: {}",
                    details.join("; ")
                ))
            })?;
        let filter = Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errors| {
                let names: Vec<String> = errors
                    .iter()
                    .flat_map(|(_, undefined)| undefined.iter())
                    .map(|(name, kind)| format!("{} {name}", kind.as_str()))
                    .collect();
                TemplateError(format!(
                    "jq({expr}) uses what is not defined: {}",
                    names.join(", ")
                ))
            })?;
        Ok(Program {
            expr: expr.to_string(),
            filter,
        })
    }

    /// Runs on `input`; exactly one result is allowed.
    pub fn run_one(&self, input: &Val) -> Result<Value, TemplateError> {
        let ctx = Ctx::<data::JustLut<Val>>::new(&self.filter.lut, Vars::new([]));
        let mut results = self.filter.id.run((ctx, input.clone())).map(unwrap_valr);
        let first = match results.next() {
            None => {
                return Err(TemplateError(format!(
                    "jq({}) gave no result; it must give exactly one",
                    self.expr
                )))
            }
            Some(Err(e)) => return Err(TemplateError(format!("jq({}) failed: {e}", self.expr))),
            Some(Ok(value)) => value,
        };
        if results.next().is_some() {
            return Err(TemplateError(format!(
                "jq({}) gave more than one result; it must give exactly one",
                self.expr
            )));
        }
        from_jaq(&first)
    }
}

/// What jaq could not read, each with the character (from 1) where it stopped.
fn load_error(expr: &str, error: &load::Error<&str>) -> Vec<String> {
    let at = |found: &str| match offset_in(expr, found) {
        Some(offset) if offset < expr.len() => {
            format!("at character {}", expr[..offset].chars().count() + 1)
        }
        _ => "at the end".to_string(),
    };
    match error {
        load::Error::Lex(errors) => errors
            .iter()
            .map(|(expect, found)| format!("expected {} {}", expect.as_str(), at(found)))
            .collect(),
        load::Error::Parse(errors) => errors
            .iter()
            .map(|(expect, found)| format!("expected {} {}", expect.as_str(), at(found)))
            .collect(),
        load::Error::Io(errors) => errors
            .iter()
            .map(|(path, _)| format!("module '{path}' cannot be loaded: modules are not available"))
            .collect(),
    }
}

/// Where `part` (a slice of `whole`) starts in `whole`.
fn offset_in(whole: &str, part: &str) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (start <= whole.len()).then_some(start)
}

/// JSON to jaq's value, through text held in a wiped buffer (it may hold secrets).
pub fn to_jaq(value: &Value) -> Result<Val, TemplateError> {
    let text = Zeroizing::new(
        serde_json::to_vec(value).map_err(|e| TemplateError(format!("bad template data: {e}")))?,
    );
    jaq_json::read::parse_single(&text)
        .map_err(|e| TemplateError(format!("bad template data: {e:?}")))
}

/// jaq's value to JSON. Values JSON cannot hold (NaN, byte strings) are refused.
fn from_jaq(value: &Val) -> Result<Value, TemplateError> {
    let text = Zeroizing::new(value.to_string());
    serde_json::from_str(&text)
        .map_err(|_| TemplateError("a jq result is not representable as JSON".to_string()))
}
