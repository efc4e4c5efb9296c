//! Skipping a configuration the previous line wrote byte for byte. Lines of one export mostly
//! carry the same `"settings":…,"subscriptions":…` text; reading it again (serde_json scans and
//! checks every byte of a raw value) and comparing it with the cache's key cost ≈ 5,000
//! instructions per line, 7% of a line of the stock configuration.
//!
//! [`Elider`] remembers those two members as the previous line wrote them, side by side. A line
//! that holds the same bytes at its top level is read with them cut out: that they are a whole
//! top-level member pair follows from where they sit (outside every string, one object deep,
//! between `{` or `,` and `,` or `}`) and from the rest of the line reading as one object, since
//! JSON values end where their own text says. Whatever fails these checks is read in full.

use memchr::memmem::Finder;
use serde_json::value::RawValue;

/// The key that opens the settings member.
const SETTINGS_KEY: &str = "\"settings\"";

/// What JSON counts as white space (not all that `char::is_whitespace` or
/// `u8::is_ascii_whitespace` do: a form feed makes a line invalid).
const JSON_SPACE: [char; 4] = [' ', '\t', '\n', '\r'];

/// The key that opens the subscriptions member.
const SUBSCRIPTIONS_KEY: &str = "\"subscriptions\"";

/// The previous line's configuration members, as its text wrote them.
#[derive(Debug)]
pub struct Elider {
    /// `"settings":S,"subscriptions":U` byte for byte, with the destination it went with.
    remembered: Option<(String, String)>,
    /// Finds `SETTINGS_KEY`. Only its first place in a line is compared with the remembered
    /// text: a search for the whole ≈ 400-byte text would cost as much as reading it.
    settings_key: Finder<'static>,
    /// The last line with the members cut out (reused, so eliding allocates nothing).
    elided: String,
}

impl Default for Elider {
    fn default() -> Self {
        Self {
            remembered: None,
            settings_key: Finder::new(SETTINGS_KEY),
            elided: String::new(),
        }
    }
}

impl Elider {
    /// Remembers `line`'s settings and subscriptions (slices of it) and its destination, when the
    /// two members are written side by side with nothing between them; otherwise forgets.
    pub fn remember(
        &mut self,
        line: &str,
        destination: &str,
        settings: Option<&RawValue>,
        subscriptions: Option<&RawValue>,
    ) {
        let Some(span) = members_span(line, settings, subscriptions) else {
            self.remembered = None;
            return;
        };
        let Some(members) = line.get(span.0..span.1) else {
            self.remembered = None;
            return;
        };
        if let Some((remembered, remembered_destination)) = &self.remembered
            && remembered == members
            && remembered_destination == destination
        {
            return;
        }
        self.remembered = Some((members.to_owned(), destination.to_owned()));
    }

    /// Forgets the remembered members (the line that set the configuration in force had none).
    pub fn forget(&mut self) {
        self.remembered = None;
    }

    /// `line` with the remembered members cut out, and the destination they went with, when it
    /// holds them as a member pair of its top-level object; `None` when it does not, or nothing
    /// is remembered.
    pub fn elide(&mut self, line: &str) -> Option<Elided<'_>> {
        let (members, _) = self.remembered.as_ref()?;
        let bytes = line.as_bytes();
        let start = self.settings_key.find(bytes)?;
        if !bytes.get(start..)?.starts_with(members.as_bytes()) {
            return None;
        }
        let end = start + members.len();
        if !one_object_deep(bytes.get(..start)?) {
            return None;
        }
        let space = |byte: &u8| JSON_SPACE.contains(&char::from(*byte));
        let before = bytes[..start].iter().rposition(|byte| !space(byte))?;
        let after = end + bytes.get(end..)?.iter().position(|byte| !space(byte))?;
        // Cut one of the commas around the pair with it, so that what is left is still a list
        // of members.
        let (cut_start, cut_end) = match (bytes[before], bytes[after]) {
            (b',', b',' | b'}') => (before, end),
            (b'{', b',') => (start, after + 1),
            (b'{', b'}') => (start, end),
            _ => return None,
        };
        self.elided.clear();
        self.elided.push_str(line.get(..cut_start)?);
        self.elided.push_str(line.get(cut_end..)?);
        Some(Elided {
            line: &self.elided,
            destination: self.remembered.as_ref()?.1.as_str(),
        })
    }
}

/// A line read without its configuration members.
pub struct Elided<'e> {
    /// The line with its settings and subscriptions cut out.
    pub line: &'e str,
    /// The destination those members were remembered with.
    pub destination: &'e str,
}

/// Where `"settings":S,"subscriptions":U` (spaced in any way) lies in `line`, when `settings`
/// and `subscriptions` are slices of it written that way.
fn members_span(
    line: &str,
    settings: Option<&RawValue>,
    subscriptions: Option<&RawValue>,
) -> Option<(usize, usize)> {
    let (settings, subscriptions) = (settings?.get(), subscriptions?.get());
    let offset = |part: &str| (part.as_ptr() as usize).checked_sub(line.as_ptr() as usize);
    let settings_at = offset(settings)?;
    let subscriptions_at = offset(subscriptions)?;
    let end = subscriptions_at.checked_add(subscriptions.len())?;
    line.get(..end)?;
    // Between the key and its value: spaces, a colon, spaces.
    let key_end = line
        .get(..settings_at)?
        .trim_end_matches(JSON_SPACE)
        .strip_suffix(':')?
        .trim_end_matches(JSON_SPACE);
    let start = key_end.strip_suffix(SETTINGS_KEY)?.len();
    // Between the two values: a comma and the second key, spaced.
    let between = line.get(settings_at.checked_add(settings.len())?..subscriptions_at)?;
    let between = between
        .trim_start_matches(JSON_SPACE)
        .strip_prefix(',')?
        .trim_start_matches(JSON_SPACE);
    let between = between
        .strip_prefix(SUBSCRIPTIONS_KEY)?
        .trim_start_matches(JSON_SPACE);
    let between = between.strip_prefix(':')?.trim_start_matches(JSON_SPACE);
    between.is_empty().then_some((start, end))
}

/// Whether the end of `prefix` lies outside every string and inside exactly one object or array.
fn one_object_deep(prefix: &[u8]) -> bool {
    let mut depth = 0_usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in prefix {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => match depth.checked_sub(1) {
                Some(less) => depth = less,
                None => return false,
            },
            _ => {}
        }
    }
    !in_string && depth == 1
}

#[cfg(test)]
mod tests {
    // Test code: a failed unwrap is a failed test.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const SETTINGS: &str = r#"{"url":"https://x.test/a"}"#;
    const SUBSCRIPTIONS: &str = r#"[{"name":"A","subscribe":"type = \"identify\""}]"#;

    /// An elider that remembers `SETTINGS` and `SUBSCRIPTIONS` from a line written as the
    /// generator writes them.
    fn remembering() -> Elider {
        let line = format!(
            r#"{{"id":1,"settings":{SETTINGS},"subscriptions":{SUBSCRIPTIONS},"event":{{}}}}"#
        );
        let start = line.find(SETTINGS).unwrap();
        let settings: &RawValue =
            serde_json::from_str(&line[start..start + SETTINGS.len()]).unwrap();
        let start = line.find(SUBSCRIPTIONS).unwrap();
        let subscriptions: &RawValue =
            serde_json::from_str(&line[start..start + SUBSCRIPTIONS.len()]).unwrap();
        // The raw values must be slices of the line itself, as the line reader hands them over.
        let mut elider = Elider::default();
        elider.remember(&line, "d", Some(settings), Some(subscriptions));
        assert!(elider.remembered.is_some());
        elider
    }

    fn pair() -> String {
        format!(r#""settings":{SETTINGS},"subscriptions":{SUBSCRIPTIONS}"#)
    }

    #[test]
    fn a_pair_at_the_top_level_is_cut_with_one_comma() {
        let mut elider = remembering();
        let pair = pair();
        for (line, left) in [
            (
                format!(r#"{{"id":2,{pair},"event":{{}}}}"#),
                r#"{"id":2,"event":{}}"#,
            ),
            (format!(r#"{{{pair},"event":{{}}}}"#), r#"{"event":{}}"#),
            (format!(r#"{{"event":{{}},{pair}}}"#), r#"{"event":{}}"#),
            (format!(r#"{{ {pair} }}"#), r#"{  }"#),
            (
                format!("{{\"id\":2 ,\n{pair}\t, \"event\":1}}"),
                "{\"id\":2 \t, \"event\":1}",
            ),
        ] {
            assert_eq!(elider.elide(&line).map(|e| e.line), Some(left), "{line}");
        }
    }

    #[test]
    fn the_same_bytes_anywhere_else_are_not_cut() {
        let mut elider = remembering();
        let pair = pair();
        for line in [
            // Nested one level down.
            format!(r#"{{"id":2,"event":{{{pair}}}}}"#),
            format!(r#"[{{{pair}}}]"#),
            // Inside a string (its quotes escaped there, so the bytes differ: not even found).
            format!(r#"{{"id":"{}","event":{{}}}}"#, pair.replace('"', "\\\"")),
            // A longer subscriptions list starting with the same one.
            format!(
                r#"{{"id":2,{},{{"name":"B"}}],"event":{{}}}}"#,
                pair.strip_suffix(']').unwrap()
            ),
            // Not between separators.
            format!(r#"{{"id":2 {pair},"event":{{}}}}"#),
            // Closed more than opened.
            format!(r#"}}{{{pair}}}"#),
        ] {
            assert!(elider.elide(&line).is_none(), "{line}");
        }
        // After a string holding an escaped quote and brackets, still at the top level: cut.
        let line = format!(r#"{{"id":"a \" {{ [","event":1,{pair}}}"#);
        let elided = elider.elide(&line).unwrap();
        assert_eq!(elided.line, r#"{"id":"a \" { [","event":1}"#);
        assert_eq!(elided.destination, "d");
    }

    /// An elider that has seen `line`, whose settings and subscriptions are `SETTINGS` and
    /// `SUBSCRIPTIONS`.
    fn seen(line: &str) -> Elider {
        let raw = |text: &str| -> &RawValue {
            let start = line.find(text).unwrap();
            serde_json::from_str(&line[start..start + text.len()]).unwrap()
        };
        let mut elider = Elider::default();
        elider.remember(line, "d", Some(raw(SETTINGS)), Some(raw(SUBSCRIPTIONS)));
        elider
    }

    #[test]
    fn members_spaced_otherwise_are_remembered_as_written() {
        let spaced = format!("\"settings\" :\t{SETTINGS} ,\r\n \"subscriptions\": {SUBSCRIPTIONS}");
        let mut elider = seen(&format!("{{\"id\": 1, {spaced}}}"));
        let elided = elider.elide(&format!("{{{spaced}, \"id\": 2}}")).unwrap();
        assert_eq!(elided.line, r#"{ "id": 2}"#);
        // The same members written compactly are other text.
        assert!(elider.elide(&format!("{{{}}}", pair())).is_none());
    }

    #[test]
    fn members_not_side_by_side_or_not_json_spaced_are_not_remembered() {
        for line in [
            format!(r#"{{"settings":{SETTINGS},"id":1,"subscriptions":{SUBSCRIPTIONS}}}"#),
            format!(r#"{{"subscriptions":{SUBSCRIPTIONS},"settings":{SETTINGS}}}"#),
            format!("{{\"settings\":{SETTINGS},\u{c}\"subscriptions\":{SUBSCRIPTIONS}}}"),
        ] {
            assert!(seen(&line).remembered.is_none(), "{line}");
        }
        // A form feed beside remembered members is not white space: the line is not cut.
        let mut elider = remembering();
        assert!(
            elider
                .elide(&format!("{{\"id\":1,\u{c}{}}}", pair()))
                .is_none()
        );
    }

    #[test]
    fn depth_is_counted_outside_strings_only() {
        assert!(one_object_deep(
            br#"{"a":"}]\"\\","b":["#.split_last().unwrap().1
        ));
        assert!(one_object_deep(br#"{"a":"[{","#));
        assert!(!one_object_deep(br#"{"a":"x"#));
        assert!(!one_object_deep(br#"{"a":{"#));
        assert!(!one_object_deep(br#"]{"#));
    }
}
