//! Keys (`audiences.md` §4): the default key derived from a name, and what makes a key valid.
//! Uniqueness is a property of a set of definitions; [`crate::Definitions::compile`] checks it.

/// The key a definition named `name` gets by default: lowercased, every run of characters other
/// than `a-z0-9` replaced by one `_`, leading and trailing `_` removed
/// (`"Order completed, last 30 days!"` → `order_completed_last_30_days`).
pub fn key_from_name(name: &str) -> String {
    let mut key = String::with_capacity(name.len());
    let mut pending_separator = false;
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            if pending_separator && !key.is_empty() {
                key.push('_');
            }
            pending_separator = false;
            key.push(c);
        } else {
            pending_separator = true;
        }
    }
    key
}

/// Whether `key` matches `^[a-z0-9][a-z0-9_]*$`.
pub fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_keys() {
        for (name, key) in [
            (
                "Order completed, last 30 days!",
                "order_completed_last_30_days",
            ),
            ("* Vip Users?", "vip_users"),
            ("Vip/Users ✓", "vip_users"),
            (
                "order - completed - last - 30 - days - 64",
                "order_completed_last_30_days_64",
            ),
            ("9Lives!", "9lives"),
            ("Ünï", "n"),
            ("!!!", ""),
        ] {
            assert_eq!(key_from_name(name), key, "{name}");
        }
    }

    #[test]
    fn valid_keys() {
        for key in ["a", "9lives", "a_b_", "order_count_31"] {
            assert!(is_valid_key(key), "{key}");
        }
        for key in [
            "",
            "_hidden",
            "Big Spender",
            "big-spender",
            "ünï",
            "UPPER",
            "trailing_ ",
        ] {
            assert!(!is_valid_key(key), "{key}");
        }
    }
}
