//! The error reply: configured status, `content-type: application/json`, and the body template
//! with the message JSON-escaped into its `%s` slot (the Go original filled it in unescaped).

/// A local reply the filter sends instead of forwarding the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    /// Headers of every error reply.
    pub const HEADERS: [(&'static str, &'static str); 1] = [("content-type", "application/json")];
}

/// The `responseErrorBody` template, split at its `%s` once at configure time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    before: String,
    after: Option<String>,
}

/// The template has more than one `%s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManySlots;

impl ErrorBody {
    /// Compiles a template with at most one `%s`. Any other `%` is literal.
    pub fn parse(template: &str) -> Result<ErrorBody, TooManySlots> {
        match template.split_once("%s") {
            None => Ok(ErrorBody {
                before: template.to_string(),
                after: None,
            }),
            Some((_, after)) if after.contains("%s") => Err(TooManySlots),
            Some((before, after)) => Ok(ErrorBody {
                before: before.to_string(),
                after: Some(after.to_string()),
            }),
        }
    }

    /// The body for `message`, escaped as the contents of a JSON string.
    pub fn render(&self, message: &str) -> Vec<u8> {
        let Some(after) = &self.after else {
            return self.before.clone().into_bytes();
        };
        // serde_json writes the message as a JSON string; its contents, without the quotes, go
        // into the slot. Serialising a string cannot fail; the fallback is never taken.
        let quoted = serde_json::to_string(message).unwrap_or_default();
        let escaped = quoted
            .strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .unwrap_or_default();
        let mut body = String::with_capacity(self.before.len() + escaped.len() + after.len());
        body.push_str(&self.before);
        body.push_str(escaped);
        body.push_str(after);
        body.into_bytes()
    }
}

impl Default for ErrorBody {
    fn default() -> Self {
        ErrorBody {
            before: "{\"message\":\"".to_string(),
            after: Some("\"}".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_template_is_the_go_one() {
        assert_eq!(
            ErrorBody::default(),
            ErrorBody::parse("{\"message\":\"%s\"}").unwrap()
        );
    }

    #[test]
    fn message_is_json_escaped() {
        let body = ErrorBody::default().render("bad \"token\"\n\\ \u{1}");
        let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed["message"], "bad \"token\"\n\\ \u{1}");
    }

    #[test]
    fn escapes_are_serde_jsons() {
        let body = ErrorBody::default().render("q\"b\\n\n\r\t\u{0}\u{1f}\u{7f}é€😀");
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "{\"message\":\"q\\\"b\\\\n\\n\\r\\t\\u0000\\u001f\u{7f}é€😀\"}"
        );
        let fixed = ErrorBody::parse("<p>%s</p>").unwrap();
        assert_eq!(fixed.render("a\"b"), b"<p>a\\\"b</p>");
    }

    #[test]
    fn injection_cannot_add_fields() {
        let body = ErrorBody::default().render("x\",\"admin\":true,\"y\":\"");
        let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed.as_object().unwrap().len(), 1);
    }

    #[test]
    fn templates_without_or_with_two_slots() {
        let fixed = ErrorBody::parse("{\"error\":\"denied\"}").unwrap();
        assert_eq!(fixed.render("ignored"), b"{\"error\":\"denied\"}");
        assert_eq!(ErrorBody::parse("%s and %s"), Err(TooManySlots));
        let percent = ErrorBody::parse("100% %d: %s").unwrap();
        assert_eq!(percent.render("m"), b"100% %d: m");
    }
}
