//! A strict reader of the OpenMetrics text format `/metrics` serves, for tests: every line is
//! a `# HELP`/`# TYPE`/`# UNIT` of a family, a sample of a declared family (with the suffixes
//! its type allows), or the final `# EOF`; anything else fails the test with the line.

use std::collections::{BTreeMap, HashMap};

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed exposition.
#[derive(Debug)]
pub struct Exposition {
    /// Family name → its type (counter, gauge, histogram, …).
    pub types: HashMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// Parses `text`, panicking with the offending line when it is not valid.
    pub fn parse(text: &str) -> Exposition {
        let mut types = HashMap::new();
        let mut samples = Vec::new();
        let mut ended = false;
        for (number, line) in text.lines().enumerate() {
            let at = || format!("line {}: {line:?}", number + 1);
            assert!(!ended, "text after # EOF at {}", at());
            if line == "# EOF" {
                ended = true;
                continue;
            }
            if let Some(meta) = line.strip_prefix("# ") {
                let mut parts = meta.splitn(3, ' ');
                let (kind, family) = (parts.next(), parts.next());
                let rest = parts.next().unwrap_or_default();
                let family =
                    family.unwrap_or_else(|| panic!("metadata without a name at {}", at()));
                assert!(valid_name(family), "bad metric name at {}", at());
                match kind {
                    Some("TYPE") => {
                        assert!(
                            [
                                "counter",
                                "gauge",
                                "histogram",
                                "info",
                                "summary",
                                "stateset",
                                "unknown"
                            ]
                            .contains(&rest),
                            "unknown type at {}",
                            at()
                        );
                        let before = types.insert(family.to_string(), rest.to_string());
                        assert!(before.is_none(), "family declared twice at {}", at());
                    }
                    Some("HELP") | Some("UNIT") => {}
                    _ => panic!("unknown comment at {}", at()),
                }
                continue;
            }
            let sample = parse_sample(line).unwrap_or_else(|why| panic!("{why} at {}", at()));
            let family = family_of(&sample.name, &types)
                .unwrap_or_else(|| panic!("sample of an undeclared family at {}", at()));
            assert!(!family.is_empty());
            samples.push(sample);
        }
        assert!(ended, "the exposition does not end with # EOF");
        Exposition { types, samples }
    }

    /// The value of the sample `name` whose labels include all of `labels` (exactly one).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<&Sample> = self.matching(name, labels);
        assert_eq!(
            found.len(),
            1,
            "expected one sample {name} {labels:?}, found {found:?}"
        );
        found[0].value
    }

    /// Every sample `name` whose labels include all of `labels`.
    pub fn matching(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }
}

/// The declared family a sample name belongs to, given the suffixes its type allows.
fn family_of<'a>(name: &str, types: &'a HashMap<String, String>) -> Option<&'a str> {
    types.iter().find_map(|(family, kind)| {
        let suffixes: &[&str] = match kind.as_str() {
            "counter" => &["_total", "_created"],
            "histogram" => &["_bucket", "_count", "_sum", "_created"],
            "info" => &["_info"],
            _ => &[""],
        };
        suffixes
            .iter()
            .any(|s| name == format!("{family}{s}"))
            .then_some(family.as_str())
    })
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| "a sample needs a value".to_string())?;
    let name = &line[..name_end];
    if !valid_name(name) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, remaining) = parse_labels(after)?;
        labels = parsed;
        rest = remaining;
    }
    let value_text = rest
        .strip_prefix(' ')
        .ok_or_else(|| "a space must separate the value".to_string())?;
    // An optional timestamp may follow; faasbox sends none.
    if value_text.contains(' ') {
        return Err("unexpected text after the value".into());
    }
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other
            .parse::<f64>()
            .map_err(|e| format!("bad value {other:?}: {e}"))?,
    };
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Reads `key="value",…}`; returns the labels and what follows the `}`.
fn parse_labels(mut text: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    loop {
        if let Some(rest) = text.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let eq = text.find('=').ok_or("a label needs =")?;
        let key = &text[..eq];
        if !valid_name(key) || key.contains(':') {
            return Err(format!("bad label name {key:?}"));
        }
        let mut chars = text[eq + 1..].char_indices();
        if chars.next().map(|(_, c)| c) != Some('"') {
            return Err("a label value must be quoted".into());
        }
        let mut value = String::new();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some('n') => value.push('\n'),
                    other => return Err(format!("bad escape \\{other:?}")),
                },
                '"' => {
                    end = Some(eq + 1 + i + 1);
                    break;
                }
                '\n' => return Err("raw newline in a label value".into()),
                c => value.push(c),
            }
        }
        let end = end.ok_or("unterminated label value")?;
        if labels.insert(key.to_string(), value).is_some() {
            return Err(format!("label {key} given twice"));
        }
        text = &text[end..];
        text = text.strip_prefix(',').unwrap_or(text);
    }
}
