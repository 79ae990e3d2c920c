//! Fills `{{name}}` placeholders in the generated files' templates (xtask/templates/*.in).

use anyhow::{bail, Result};

/// Replaces every `{{key}}` with its value; a placeholder left over is an error, so a template
/// and its caller cannot drift apart unnoticed.
pub fn render(template: &str, values: &[(&str, String)]) -> Result<String> {
    let mut out = template.to_string();
    for (key, value) in values {
        out = out.replace(&format!("{{{{{key}}}}}"), value);
    }
    if let Some(at) = out.find("{{") {
        let rest: String = out[at..].chars().take(30).collect();
        bail!("template placeholder left unfilled: {rest}");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_every_placeholder_and_names_one_left_over() {
        assert_eq!(render("a {{x}} {{x}} b", &[("x", "1".into())]).unwrap(), "a 1 1 b");
        let err = render("a {{x}} {{why}}", &[("x", "1".into())]).unwrap_err().to_string();
        assert_eq!(err, "template placeholder left unfilled: {{why}}");
    }
}
