//! Which fields of a function's spec a deploy changed, as dotted paths (`envs.MODE`,
//! `scale.max`), for the deploy's answer and `fn deploy`'s output.

use serde_json::Value;

/// The paths at which `before` and `after` differ. Objects are compared key by key (a key on
/// one side only is a change), anything else as a whole.
pub fn changed_paths(before: &Value, after: &Value) -> Vec<String> {
    let mut paths = Vec::new();
    walk(before, after, "", &mut paths);
    paths
}

fn walk(before: &Value, after: &Value, at: &str, paths: &mut Vec<String>) {
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let path = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                let null = Value::Null;
                walk(
                    a.get(key).unwrap_or(&null),
                    b.get(key).unwrap_or(&null),
                    &path,
                    paths,
                );
            }
        }
        _ if before != after => paths.push(at.to_string()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_every_changed_leaf() {
        let before =
            json!({"image": "a", "envs": {"A": "1", "B": "2"}, "scale": {"max": 5}, "cmd": ["x"]});
        let after = json!({"image": "a", "envs": {"A": "2", "C": "3"}, "scale": {"max": 5}, "cmd": ["x", "y"], "input": {"k": 1}});
        assert_eq!(
            changed_paths(&before, &after),
            ["cmd", "envs.A", "envs.B", "envs.C", "input"]
        );
        assert!(changed_paths(&before, &before).is_empty());
    }
}
