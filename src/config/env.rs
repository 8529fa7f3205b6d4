//! `${env:VAR}` expansion as the OpenTelemetry Collector does it: in the parsed values
//! (not keys or comments), `${env:VAR}`, `${env:VAR:-default}`, `$$` for a literal `$`.
//! Unset variables without a default are reported as problems rather than silently
//! emptied.

/// Expands environment references in one text. `lookup` resolves a variable.
pub fn expand(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix("{env:") {
            let Some(end) = body.find('}') else {
                problems.push("unterminated ${env:...} reference".to_string());
                out.push('$');
                rest = after;
                continue;
            };
            let spec = &body[..end];
            let (name, default) = match spec.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (spec, None),
            };
            if !valid_name(name) {
                problems.push(format!("invalid environment variable name {name:?}"));
            } else {
                match (lookup(name), default) {
                    (Some(v), _) => out.push_str(&v),
                    (None, Some(d)) => out.push_str(d),
                    (None, None) => problems.push(format!(
                        "environment variable {name} is not set (use ${{env:{name}:-default}} for a default)"
                    )),
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Expands references in every string value of a parsed configuration, as the Collector
/// does: keys and comments are left alone, and a variable's text can never change the
/// document's structure (a `#`, `: ` or newline in it stays part of the value). A value
/// that is exactly one reference takes a number's or boolean's type when the variable
/// holds one (`max_edges: ${env:MAX_EDGES}`); text that only looks numeric but would lose
/// something as a number (`007`, 20 digits) stays a string. Problems are prefixed with the
/// value's path.
pub fn expand_values(
    v: &mut serde_json::Value,
    lookup: &dyn Fn(&str) -> Option<String>,
    path: &str,
    problems: &mut Vec<String>,
) {
    use serde_json::Value;
    match v {
        Value::String(s) if s.contains('$') => match expand(s, lookup) {
            Ok(text) => *v = typed(s, text),
            Err(ps) => problems.extend(ps.into_iter().map(|p| format!("{path}: {p}"))),
        },
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_values(item, lookup, &format!("{path}[{i}]"), problems);
            }
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                expand_values(item, lookup, &p, problems);
            }
        }
        _ => {}
    }
}

/// The expanded value: typed when the original was exactly one reference and the text is
/// a plain boolean or number that round-trips, else the text.
fn typed(original: &str, text: String) -> serde_json::Value {
    use serde_json::Value;
    let whole = original.starts_with("${env:")
        && original.ends_with('}')
        && original.matches('$').count() == 1;
    if whole {
        match text.as_str() {
            "true" => return Value::Bool(true),
            "false" => return Value::Bool(false),
            _ => {}
        }
        if let Some(n) = plain_number(&text) {
            return Value::Number(n);
        }
    }
    Value::String(text)
}

/// `text` as a JSON number when it is written the way that number prints (no leading
/// zeros, no exponent, no precision lost).
fn plain_number(text: &str) -> Option<serde_json::Number> {
    let n: serde_json::Number = text.parse().ok()?;
    (n.to_string() == text).then_some(n)
}

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "HOST").then(|| "10.0.0.1".to_string())
    }

    #[test]
    fn expands_values_defaults_and_escapes() {
        let got = expand("a: ${env:HOST}:9\nb: ${env:NOPE:-x}\nc: $$5 $x", &env).unwrap();
        assert_eq!(got, "a: 10.0.0.1:9\nb: x\nc: $5 $x");
    }

    #[test]
    fn a_whole_reference_takes_a_plain_number_or_boolean_type() {
        use serde_json::json;
        let lookup = |n: &str| {
            let v = match n {
                "N" => "42",
                "F" => "0.5",
                "B" => "true",
                "Z" => "007",
                "BIG" => "123456789012345678901234",
                _ => return None,
            };
            Some(v.to_string())
        };
        let mut v = json!({"n": "${env:N}", "f": "${env:F}", "b": "${env:B}", "z": "${env:Z}",
            "big": "${env:BIG}", "s": "x${env:N}", "list": ["${env:N}"]});
        let mut problems = Vec::new();
        expand_values(&mut v, &lookup, "", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            v,
            json!({"n": 42, "f": 0.5, "b": true, "z": "007",
                "big": "123456789012345678901234", "s": "x42", "list": [42]})
        );
    }

    #[test]
    fn reports_every_unset_variable() {
        let err = expand("${env:A} ${env:B}", &env).unwrap_err();
        assert_eq!(err.len(), 2);
        assert!(err[0].contains('A') && err[1].contains('B'));
    }
}
