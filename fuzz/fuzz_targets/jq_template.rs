//! The jq front end: finding `jq(…)` in template strings, the bounds scan, jaq's parser and
//! compiler behind them (what deploy checks), and the in-place path lookup. Expressions are
//! not evaluated here: evaluation is bounded by the sandbox's worker processes, not in-process.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = faasbox_expr::bounds::nesting(text);
    let bare = faasbox_expr::bounds::check(text).is_ok();
    // As a bare expression (switch conditions, foreach arrays) and as a template string.
    if bare {
        let _ = faasbox_expr::Program::compile(text);
    }
    let _ = faasbox_expr::split(text);
    let template = Value::String(text.to_string());
    let _ = faasbox_expr::check(&template);
    let sample = json!({"input": {"a": [1, {"b": null}], "s": "x"}, "secrets": {"t": "v"}});
    let _ = faasbox_expr::fast::render(&template, &sample);
    let _ = faasbox_expr::fast::evaluate(&template, &sample);
    // A whole JSON template, as a function's `input`.
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        let _ = faasbox_expr::check(&value);
        let _ = faasbox_expr::fast::render(&value, &sample);
    }
});
