//! Form bodies (`application/x-www-form-urlencoded`) as a browser sends them: names may repeat
//! (checkboxes), order matters (the trigger builder's rows), so they stay a list of pairs.

/// A form's fields in the order sent.
#[derive(Debug, Default, Clone)]
pub(crate) struct FormData {
    pairs: Vec<(String, String)>,
}

impl FormData {
    /// Reads a body; what does not decode is replaced (a browser always sends UTF-8).
    pub(crate) fn parse(body: &[u8]) -> Self {
        Self {
            pairs: url::form_urlencoded::parse(body).into_owned().collect(),
        }
    }

    /// The first value of `name`, if sent.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The first value of `name`, or `""`.
    pub(crate) fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or_default()
    }

    /// Every value of `name`, in order.
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// Whether a checkbox `name` was ticked.
    pub(crate) fn checked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_names_keep_their_order() {
        let form = FormData::parse(b"s=web&s=app&name=A+b%21&on=1");
        assert_eq!(form.all("s"), ["web", "app"]);
        assert_eq!(form.text("name"), "A b!");
        assert!(form.checked("on"));
        assert!(!form.checked("off"));
        assert_eq!(form.text("missing"), "");
    }
}
