//! A function spec as `PUT …/functions/{name}` takes it: the JSON parse into
//! `FunctionSpec`, its validation, and its input template's check must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = serde_json::from_slice::<faasbox_server::FunctionSpec>(data) else {
        return;
    };
    let _ = spec.problems();
    let _ = spec.effective_contract();
    if let Some(template) = &spec.input {
        let _ = faasbox_expr::check(template);
    }
    let _ = serde_json::to_string(&spec);
});
