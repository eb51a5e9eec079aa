//! Rules every free-text field obeys, whichever request it arrives in: a length, and no NUL or
//! other control characters. PostgreSQL refuses U+0000 in text while SQLite stores it, so the
//! rule lives here, before either sees the value, and both dialects answer alike.

/// One broken rule, named by the request field it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub rule: String,
}

impl Violation {
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            rule: rule.into(),
        }
    }
}

/// The broken rule of a free-text value, if any: at most `max_chars` characters, and no control
/// characters but tab, line feed and carriage return.
pub fn text_rule(value: &str, max_chars: usize) -> Option<String> {
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Some(if c == '\0' {
            "must not contain NUL (U+0000)".to_owned()
        } else {
            format!("must not contain the control character U+{:04X}", c as u32)
        });
    }
    let n = value.chars().count();
    (n > max_chars).then(|| format!("at most {max_chars} characters, got {n}"))
}

/// Pushes a violation for `field` when `value` breaks the text rule.
pub fn check_text(v: &mut Vec<Violation>, field: &str, value: &str, max_chars: usize) {
    if let Some(rule) = text_rule(value, max_chars) {
        v.push(Violation::new(field, rule));
    }
}

/// A value quoted in an error message: short enough that a 100,000-character field does not
/// come back whole.
pub fn shown(value: &str) -> String {
    const MAX: usize = 40;
    if value.chars().count() <= MAX {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(MAX).collect();
        format!("{head:?}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_controls_and_length() {
        assert_eq!(text_rule("信访\n内容\t", 10), None);
        assert_eq!(
            text_rule("a\0b", 10).as_deref(),
            Some("must not contain NUL (U+0000)")
        );
        assert!(text_rule("a\u{7}b", 10).unwrap().contains("U+0007"));
        // Characters, not bytes: ten Chinese characters fit a limit of ten.
        assert_eq!(text_rule("一二三四五六七八九十", 10), None);
        assert!(
            text_rule("一二三四五六七八九十一", 10)
                .unwrap()
                .contains("got 11")
        );
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let long = "x".repeat(100_000);
        assert!(shown(&long).len() < 50);
        assert_eq!(shown("ab"), "\"ab\"");
    }
}
