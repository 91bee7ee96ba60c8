//! A flow's YAML, as `PUT …/flows/{path}` takes it: parsing (bounded in size, depth, nodes and
//! alias copies) and validation (every jq expression checked) must never panic, overflow the
//! stack or take long.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(node) = faasbox_flow::yaml::parse(source) {
        let _ = node.to_json();
    }
    let _ = faasbox_flow::load(source);
});
