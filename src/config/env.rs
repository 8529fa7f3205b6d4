//! `${env:VAR}` expansion as the OpenTelemetry Collector does it: `${env:VAR}`,
//! `${env:VAR:-default}`, `$$` for a literal `$`. Unset variables without a default are
//! reported as problems rather than silently emptied.

/// Expands environment references in configuration text. `lookup` resolves a variable.
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
    fn reports_every_unset_variable() {
        let err = expand("${env:A} ${env:B}", &env).unwrap_err();
        assert_eq!(err.len(), 2);
        assert!(err[0].contains('A') && err[1].contains('B'));
    }
}
