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

/// The deepest expression of each nesting shape that the bounds accept still compiles on a
/// thread with a quarter of the stack the server gives compiling ([`crate::COMPILE_STACK`]).
#[test]
fn expressions_at_the_nesting_bound_compile_on_a_small_stack() {
    type Shape = fn(usize) -> String;
    let shapes: [(&str, Shape); 12] = [
        ("parens", |n| format!("{}1{}", "(".repeat(n), ")".repeat(n))),
        ("sum", |n| format!("1{}", " + 1".repeat(n))),
        ("pipe", |n| format!(".{}", " | .".repeat(n))),
        ("if", |n| {
            format!("{}1{}", "if . then ".repeat(n), " else 2 end".repeat(n))
        }),
        ("neg", |n| format!("{}1", "-".repeat(n))),
        ("try", |n| format!("{}1", "try ".repeat(n))),
        ("catch", |n| format!("1{}", " | try 1 catch 1".repeat(n))),
        ("def", |n| {
            format!("{}1{}", "def f: ".repeat(n), "; 1".repeat(n))
        }),
        ("as", |n| format!("{}.", ". as $x | ".repeat(n))),
        ("interpolation", |n| {
            format!("{}1{}", "\"\\(".repeat(n), ")\"".repeat(n))
        }),
        ("reduce", |n| {
            format!("{}.{}", "reduce . as $x (0; ".repeat(n), ")".repeat(n))
        }),
        ("array", |n| format!("[1{}]", ", 1".repeat(n))),
    ];
    for (name, shape) in shapes {
        let deepest = (1..2000)
            .take_while(|&n| crate::bounds::check(&shape(n)).is_ok())
            .last()
            .unwrap_or(0);
        assert!(deepest > 10, "{name}: only {deepest} levels accepted");
        let expr = shape(deepest);
        let compiled = std::thread::Builder::new()
            .stack_size(crate::COMPILE_STACK / 4)
            .spawn(move || Program::compile(&expr).is_ok())
            .expect("thread")
            .join()
            .expect("compiling did not crash");
        assert!(compiled, "{name} at {deepest} levels does not compile");
        assert!(crate::bounds::check(&shape(deepest + 1)).is_err());
    }
}

#[test]
fn check_names_the_place_in_the_template() {
    let deep = format!("jq({}1{})", "(".repeat(200), ")".repeat(200));
    let err = check(&json!({"a": {"b": ["ok", deep]}})).unwrap_err().0;
    assert!(err.starts_with("at .a.b[1]: jq("), "{err}");
    assert!(err.contains("nests too deeply at character 129"), "{err}");
    let err = check(&json!("jq(.a | )")).unwrap_err().0;
    assert!(
        err.starts_with("jq(.a | ) cannot be parsed: expected term"),
        "{err}"
    );
}
