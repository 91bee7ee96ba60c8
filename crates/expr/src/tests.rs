//! Template rendering: whole-string and spliced expressions, errors.

use serde_json::json;

use super::*;

fn data() -> Value {
    json!({"input": {"name": "world", "n": 2, "list": [1, 2]}, "secrets": {"token": "abc(def)"}})
}

#[test]
fn whole_strings_become_values_and_others_are_spliced() {
    let template = json!({
        "auth": "bearer jq(.secrets.token)",
        "data": "jq(.input)",
        "n": "jq(.input.n + 1)",
        "text": "n=jq(.input.n), list=jq(.input.list), s=jq(\"a)b\")",
        "plain": "no expression",
        "nested": ["jq(.input.name)", 5, null, {"k": "jq(.input.list | length)"}]
    });
    let out = render(&template, &data()).unwrap();
    assert_eq!(
        out,
        json!({
            "auth": "bearer abc(def)",
            "data": {"name": "world", "n": 2, "list": [1, 2]},
            "n": 3,
            "text": "n=2, list=[1,2], s=a)b",
            "plain": "no expression",
            "nested": ["world", 5, null, {"k": 2}]
        })
    );
    assert!(check(&template).is_ok());
}

#[test]
fn bad_expressions_are_errors() {
    for bad in [
        "jq(.input.list[])",
        "jq(empty)",
        "jq(.input | error(\"x\"))",
        "jq(.input.",
        "jq(nosuchfunction(1))",
        "jq()",
        "jq(.input",
    ] {
        let err = render(&json!({ "x": bad }), &data());
        assert!(err.is_err(), "{bad} rendered");
    }
    assert!(check(&json!(["jq(.a | nosuch)"])).is_err());
    assert!(check(&json!(["jq(.a"])).is_err());
    assert!(check(&json!(["jq(.a[])"])).is_ok());
}
