//! String formats: every `ajv-formats` 2.1.1 "full" format, the reference's custom `text` and
//! `date-like`, each matching exactly the language of the reference's regular expression or
//! function (patterns compiled once; the hot ones — email, date-like — written by hand).

mod date_like;
pub(crate) mod js_regex;

use std::sync::LazyLock;

use regex::Regex;

use crate::js;

/// A format the validator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    DateLike,
    Text,
    Password,
    Binary,
    Date,
    Time,
    DateTime,
    Duration,
    Uri,
    UriReference,
    UriTemplate,
    Url,
    Email,
    Hostname,
    Ipv4,
    Ipv6,
    Regex,
    Uuid,
    JsonPointer,
    JsonPointerUriFragment,
    RelativeJsonPointer,
    Byte,
    Int32,
    Int64,
    Float,
    Double,
}

impl Format {
    /// The format called `name`, if the reference's validator defines it.
    pub(crate) fn from_name(name: &str) -> Option<Format> {
        Some(match name {
            "date-like" => Format::DateLike,
            "text" => Format::Text,
            "password" => Format::Password,
            "binary" => Format::Binary,
            "date" => Format::Date,
            "time" => Format::Time,
            "date-time" => Format::DateTime,
            "duration" => Format::Duration,
            "uri" => Format::Uri,
            "uri-reference" => Format::UriReference,
            "uri-template" => Format::UriTemplate,
            "url" => Format::Url,
            "email" => Format::Email,
            "hostname" => Format::Hostname,
            "ipv4" => Format::Ipv4,
            "ipv6" => Format::Ipv6,
            "regex" => Format::Regex,
            "uuid" => Format::Uuid,
            "json-pointer" => Format::JsonPointer,
            "json-pointer-uri-fragment" => Format::JsonPointerUriFragment,
            "relative-json-pointer" => Format::RelativeJsonPointer,
            "byte" => Format::Byte,
            "int32" => Format::Int32,
            "int64" => Format::Int64,
            "float" => Format::Float,
            "double" => Format::Double,
            _ => return None,
        })
    }

    /// Whether the format checks numbers (the OpenAPI numeric formats) rather than strings.
    pub(crate) fn is_numeric(self) -> bool {
        matches!(
            self,
            Format::Int32 | Format::Int64 | Format::Float | Format::Double
        )
    }

    /// Whether a string is valid (numeric formats do not apply to strings).
    pub(crate) fn check_str(self, s: &str) -> bool {
        match self {
            Format::DateLike => date_like::is_date_like(s),
            Format::Text
            | Format::Password
            | Format::Binary
            | Format::Int32
            | Format::Int64
            | Format::Float
            | Format::Double => true,
            Format::Date => is_date(s),
            Format::Time => is_time(s),
            Format::DateTime => is_date_time(s),
            Format::Duration => is_duration(s),
            Format::Uri => is_plain_url(s) || (s.contains(['/', ':']) && matches(&URI, s)),
            Format::UriReference => is_plain_url(s) || matches(&URI_REFERENCE, s),
            Format::UriTemplate => matches(&URI_TEMPLATE, s),
            Format::Url => is_url(s),
            Format::Email => is_email(s),
            Format::Hostname => is_hostname(s),
            Format::Ipv4 => is_ipv4(s),
            Format::Ipv6 => matches(&IPV6, s),
            Format::Regex => is_regex(s),
            Format::Uuid => matches(&UUID, s),
            Format::JsonPointer => matches(&JSON_POINTER, s),
            Format::JsonPointerUriFragment => matches(&JSON_POINTER_URI_FRAGMENT, s),
            Format::RelativeJsonPointer => matches(&RELATIVE_JSON_POINTER, s),
            Format::Byte => is_byte(s),
        }
    }

    /// Whether a number is valid (string formats do not apply to numbers).
    pub(crate) fn check_number(self, x: f64) -> bool {
        match self {
            Format::Int32 => x.fract() == 0.0 && (-2_147_483_648.0..=2_147_483_647.0).contains(&x),
            Format::Int64 => x.fract() == 0.0,
            _ => true,
        }
    }
}

/// The noun ajv-human-errors uses for a format in "must be a valid … string".
pub(crate) fn format_label(name: &str) -> &str {
    match name {
        "date-time" => "date and time",
        "email" => "email address",
        "ipv4" => "IPv4 address",
        "ipv6" => "IPv6 address",
        "uri" => "URI",
        "uri-reference" => "URI Reference",
        "uri-template" => "URI-template",
        "json-pointer" => "JSON Pointer",
        "relative-json-pointer" => "relative JSON Pointer",
        "regex" => "regular expression",
        other => other,
    }
}

/// Whether `value` is valid for `format` as the reference's validator sees a string: unknown
/// formats, `text`, `password` and the numeric formats always pass.
pub fn check_format(format: &str, value: &str) -> bool {
    Format::from_name(format).is_none_or(|f| f.check_str(value))
}

fn matches(re: &LazyLock<Option<Regex>>, s: &str) -> bool {
    re.as_ref().is_some_and(|re| re.is_match(s))
}

fn lazy(pattern: String) -> Option<Regex> {
    Regex::new(&pattern).ok()
}

// Character classes of the URI grammars, with the `i` flag spelled out (ASCII only: without
// the `u` flag JavaScript does not fold non-ASCII letters onto ASCII ones).
const HEX: &str = "[0-9a-fA-F]";
const PCT: &str = "%[0-9a-fA-F]{2}";
const DEC_OCTET: &str = "(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)";

fn ipv4_loose() -> String {
    format!(r"(?:{DEC_OCTET}\.){{3}}{DEC_OCTET}")
}

/// RFC 3986 `IPv6address` as the URI regexes spell it.
fn ipv6_uri() -> String {
    let h16 = format!("{HEX}{{1,4}}");
    let ls32 = format!("(?:{h16}:{h16}|{})", ipv4_loose());
    format!(
        "(?:(?:(?:{h16}:){{6}}|::(?:{h16}:){{5}}|(?:{h16})?::(?:{h16}:){{4}}\
         |(?:(?:{h16}:){{0,1}}{h16})?::(?:{h16}:){{3}}|(?:(?:{h16}:){{0,2}}{h16})?::(?:{h16}:){{2}}\
         |(?:(?:{h16}:){{0,3}}{h16})?::{h16}:|(?:(?:{h16}:){{0,4}}{h16})?::){ls32}\
         |(?:(?:{h16}:){{0,5}}{h16})?::{h16}|(?:(?:{h16}:){{0,6}}{h16})?::)"
    )
}

/// The URI regex (`reference` adds `"` to the host, path, query and fragment characters and
/// makes the scheme and the hierarchical part optional, as `uri-reference` does).
fn uri_pattern(reference: bool) -> String {
    let q = if reference { "\"" } else { "" };
    let userinfo = format!(r"(?:[a-zA-Z0-9\-._~!$&'()*+,;=:]|{PCT})");
    let reg_name = format!(r"(?:[a-zA-Z0-9\-._~!$&'{q}()*+,;=]|{PCT})");
    let pchar = format!(r"(?:[a-zA-Z0-9\-._~!$&'{q}()*+,;=:@]|{PCT})");
    let query = format!(r"(?:[a-zA-Z0-9\-._~!$&'{q}()*+,;=:@/?]|{PCT})");
    let ip_future = format!(r"[Vv]{HEX}+\.[a-zA-Z0-9\-._~!$&'()*+,;=:]+");
    let host = format!(
        r"(?:\[(?:{}|{ip_future})\]|{}|{reg_name}*)",
        ipv6_uri(),
        ipv4_loose()
    );
    let authority_path = format!(r"/?/(?:{userinfo}*@)?{host}(?::[0-9]*)?(?:/{pchar}*)*");
    let absolute_path = format!(r"/(?:{pchar}+(?:/{pchar}*)*)?");
    let rootless_path = format!(r"{pchar}+(?:/{pchar}*)*");
    let scheme = r"[a-zA-Z][a-zA-Z0-9+\-.]*:";
    let (scheme_opt, hier_opt) = if reference { ("?", "?") } else { ("", "") };
    format!(
        r"^(?:{scheme}){scheme_opt}(?:{authority_path}|{absolute_path}|{rootless_path}){hier_opt}(?:\?{query}*)?(?:#{query}*)?$"
    )
}

/// ASCII membership table for a set of bytes.
const fn byte_set(extra: &[u8]) -> [bool; 128] {
    let mut set = [false; 128];
    let mut c = 0;
    while c < 128 {
        set[c] = (c as u8).is_ascii_alphanumeric();
        c += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        set[extra[i] as usize] = true;
        i += 1;
    }
    set
}

/// RFC 3986 `reg-name` characters without percent-encoding (unreserved and sub-delims).
const REG_NAME: [bool; 128] = byte_set(b"-._~!$&'()*+,;=");
/// Path segment characters (`pchar` without percent-encoding).
const PCHAR: [bool; 128] = byte_set(b"-._~!$&'()*+,;=:@");
/// Query and fragment characters.
const QUERY: [bool; 128] = byte_set(b"-._~!$&'()*+,;=:@/?");

/// `scheme://host[:port][/path][?query][#fragment]` with a plain host and no percent-encoding:
/// a sub-language of both `uri` and `uri-reference`, checked in one pass instead of by the big
/// regex. `false` means "not this shape"; the regex then decides.
fn is_plain_url(s: &str) -> bool {
    let b = s.as_bytes();
    let at = |i: usize| b.get(i).copied();
    if !at(0).is_some_and(|c| c.is_ascii_alphabetic()) {
        return false;
    }
    let mut i = skip_while(b, 1, |c| {
        c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')
    });
    if b.get(i..i + 3) != Some(b"://") {
        return false;
    }
    i = skip_while(b, i + 3, |c| in_set(&REG_NAME, c));
    if at(i) == Some(b':') {
        i = skip_while(b, i + 1, |c| c.is_ascii_digit());
    }
    if at(i) == Some(b'/') {
        i = skip_while(b, i, |c| c == b'/' || in_set(&PCHAR, c));
    }
    if at(i) == Some(b'?') {
        i = skip_while(b, i + 1, |c| in_set(&QUERY, c));
    }
    if at(i) == Some(b'#') {
        i = skip_while(b, i + 1, |c| in_set(&QUERY, c));
    }
    i == b.len()
}

/// The index of the first byte from `i` on that `accept` refuses (or the length). Generic, so
/// that each character class is inlined into its loop.
fn skip_while(b: &[u8], mut i: usize, accept: impl Fn(u8) -> bool) -> usize {
    while b.get(i).is_some_and(|&c| accept(c)) {
        i += 1;
    }
    i
}

fn in_set(set: &[bool; 128], c: u8) -> bool {
    set.get(usize::from(c)).copied().unwrap_or(false)
}

static URI: LazyLock<Option<Regex>> = LazyLock::new(|| lazy(uri_pattern(false)));
static URI_REFERENCE: LazyLock<Option<Regex>> = LazyLock::new(|| lazy(uri_pattern(true)));

static URI_TEMPLATE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    let var = format!("(?:[a-zA-Z0-9_]|{PCT})+(?::[1-9][0-9]{{0,3}}|\\*)?");
    lazy(format!(
        r#"^(?:(?:[^\x00-\x20"'<>%\\^`{{|}}]|{PCT})|\{{[+#./;?&=,!@|]?{var}(?:,{var})*\}})*$"#
    ))
});

static IPV6: LazyLock<Option<Regex>> = LazyLock::new(|| {
    let h = format!("{HEX}{{1,4}}");
    let o = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
    let v4 = format!(r"{o}(?:\.{o}){{3}}");
    lazy(format!(
        "^(?:(?:(?:{h}:){{7}}(?:{h}|:))\
         |(?:(?:{h}:){{6}}(?::{h}|{v4}|:))\
         |(?:(?:{h}:){{5}}(?:(?::{h}){{1,2}}|:{v4}|:))\
         |(?:(?:{h}:){{4}}(?:(?::{h}){{1,3}}|(?::{h})?:{v4}|:))\
         |(?:(?:{h}:){{3}}(?:(?::{h}){{1,4}}|(?::{h}){{0,2}}:{v4}|:))\
         |(?:(?:{h}:){{2}}(?:(?::{h}){{1,5}}|(?::{h}){{0,3}}:{v4}|:))\
         |(?:(?:{h}:){{1}}(?:(?::{h}){{1,6}}|(?::{h}){{0,4}}:{v4}|:))\
         |(?::(?:(?::{h}){{1,7}}|(?::{h}){{0,5}}:{v4}|:)))$"
    ))
});

static UUID: LazyLock<Option<Regex>> = LazyLock::new(|| {
    lazy(format!(
        "^(?:[uU][rR][nN]:[uU][uU][iI][dD]:)?{HEX}{{8}}-(?:{HEX}{{4}}-){{3}}{HEX}{{12}}$"
    ))
});

static JSON_POINTER: LazyLock<Option<Regex>> =
    LazyLock::new(|| lazy("^(?:/(?:[^~/]|~0|~1)*)*$".to_owned()));

static JSON_POINTER_URI_FRAGMENT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    lazy(format!(
        r"^#(?:/(?:[a-zA-Z0-9_\-.!$&'()*+,;:=@]|{PCT}|~0|~1)*)*$"
    ))
});

static RELATIVE_JSON_POINTER: LazyLock<Option<Regex>> =
    LazyLock::new(|| lazy("^(?:0|[1-9][0-9]*)(?:#|(?:/(?:[^~/]|~0|~1)*)*)$".to_owned()));

static DURATION: LazyLock<Option<Regex>> = LazyLock::new(|| {
    lazy(
        "^P(?:(?:[0-9]+Y)?(?:[0-9]+M)?(?:[0-9]+D)?(?:T(?:[0-9]+H)?(?:[0-9]+M)?(?:[0-9]+S)?)?|(?:[0-9]+W)?)$"
            .to_owned(),
    )
});

/// JavaScript's `\s` as a class body (for the `u`-flag `url` pattern).
const JS_SPACE: &str = r"\t\n\x0B\x0C\r \u{A0}\u{1680}\u{2000}-\u{200A}\u{2028}\u{2029}\u{202F}\u{205F}\u{3000}\u{FEFF}";

/// The `url` host alternatives after the host starts (the IP alternative's private-range
/// look-aheads are checked separately, the `regex` crate has no look-around).
static URL_HOST_NAME: LazyLock<Option<Regex>> = LazyLock::new(|| {
    let c = r"[a-zA-Z0-9\u{A1}-\u{FFFF}]";
    lazy(format!(
        r"^(?:(?:{c}+-)*{c}+)(?:\.(?:{c}+-)*{c}+)*(?:\.(?:[a-zA-Z\u{{A1}}-\u{{FFFF}}]{{2,}}))(?::[0-9]{{2,5}})?(?:/[^{JS_SPACE}]*)?$"
    ))
});

static URL_HOST_IP: LazyLock<Option<Regex>> = LazyLock::new(|| {
    lazy(format!(
        r"^(?:[1-9][0-9]?|1[0-9][0-9]|2[01][0-9]|22[0-3])(?:\.(?:1?[0-9]{{1,2}}|2[0-4][0-9]|25[0-5])){{2}}(?:\.(?:[1-9][0-9]?|1[0-9][0-9]|2[0-4][0-9]|25[0-4]))(?::[0-9]{{2,5}})?(?:/[^{JS_SPACE}]*)?$"
    ))
});

static URL_PRIVATE_IP: LazyLock<Option<Regex>> = LazyLock::new(|| {
    lazy(
        r"^(?:(?:10|127)(?:\.[0-9]{1,3}){3}|(?:169\.254|192\.168)(?:\.[0-9]{1,3}){2}|172\.(?:1[6-9]|2[0-9]|3[0-1])(?:\.[0-9]{1,3}){2})"
            .to_owned(),
    )
});

fn is_url(s: &str) -> bool {
    let lower_prefix = |p: &str| {
        s.get(..p.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(p))
            .then(|| s.get(p.len()..).unwrap_or(""))
    };
    let Some(rest) = lower_prefix("http://")
        .or_else(|| lower_prefix("https://"))
        .or_else(|| lower_prefix("ftp://"))
    else {
        return false;
    };
    let host_ok = |host: &str| {
        matches(&URL_HOST_NAME, host)
            || (matches(&URL_HOST_IP, host) && !matches(&URL_PRIVATE_IP, host))
    };
    if host_ok(rest) {
        return true;
    }
    // `(?:\S+(?::\S*)?@)?`: any non-empty run of non-space characters before an `@`.
    rest.char_indices()
        .filter(|&(_, c)| c == '@')
        .any(|(at, _)| {
            let user = rest.get(..at).unwrap_or("");
            !user.is_empty()
                && !user.chars().any(junction_js::is_js_whitespace)
                && host_ok(rest.get(at + 1..).unwrap_or(""))
        })
}

/// Characters of an e-mail local-part atom.
const ATOM: [bool; 128] = byte_set(b"!#$%&'*+/=?^_`{|}~-");

/// `^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[…]+)*@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$`
/// (case-insensitive), in one pass.
fn is_email(s: &str) -> bool {
    let b = s.as_bytes();
    let Some(at) = b.iter().position(|&c| c == b'@') else {
        return false;
    };
    let (Some(local), Some(domain)) = (b.get(..at), b.get(at + 1..)) else {
        return false;
    };
    // Atoms separated by single dots.
    let mut after_dot = true;
    for &c in local {
        if c == b'.' {
            if after_dot {
                return false;
            }
            after_dot = true;
        } else if in_set(&ATOM, c) {
            after_dot = false;
        } else {
            return false;
        }
    }
    if after_dot {
        return false;
    }
    // At least two labels of letters, digits and inner hyphens.
    let mut labels = 1;
    let mut label_len = 0;
    let mut last = 0u8;
    for &c in domain {
        if c == b'.' {
            if label_len == 0 || last == b'-' {
                return false;
            }
            labels += 1;
            label_len = 0;
        } else if c.is_ascii_alphanumeric() || (c == b'-' && label_len > 0) {
            label_len += 1;
        } else {
            return false;
        }
        last = c;
    }
    label_len > 0 && last != b'-' && labels >= 2
}

/// ajv-formats `hostname`: total length checked by a look-ahead, labels of 1–63 characters.
fn is_hostname(s: &str) -> bool {
    let len = s.len();
    if !(len <= 253 || (len == 254 && s.ends_with('.'))) {
        return false;
    }
    let body = s.strip_suffix('.').unwrap_or(s);
    !body.is_empty()
        && body.split('.').all(|label| {
            let bytes = label.as_bytes();
            (1..=63).contains(&bytes.len())
                && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
                && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
                && bytes
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// `(?:(?:25[0-5]|2[0-4]\d|[01]?\d\d?)\.){3}…`: four 1–3 digit parts up to 255.
fn is_ipv4(s: &str) -> bool {
    let mut parts = 0;
    for part in s.split('.') {
        let ok = (1..=3).contains(&part.len())
            && part.bytes().all(|b| b.is_ascii_digit())
            && part.parse::<u16>().is_ok_and(|n| n <= 255);
        if !ok {
            return false;
        }
        parts += 1;
    }
    parts == 4
}

fn digits(bytes: &[u8]) -> Option<u32> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    bytes.iter().try_fold(0u32, |n, &b| {
        n.checked_mul(10)?.checked_add(u32::from(b - b'0'))
    })
}

fn is_leap_year(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

/// `^(\d\d\d\d)-(\d\d)-(\d\d)$` with a real day-of-month check.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return false;
    }
    let (Some(year), Some(month), Some(day)) = (
        b.get(0..4).and_then(digits),
        b.get(5..7).and_then(digits),
        b.get(8..10).and_then(digits),
    ) else {
        return false;
    };
    let max_day = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => return false,
    };
    (1..=max_day).contains(&day)
}

/// `^(\d\d):(\d\d):(\d\d)(\.\d+)?(z|[+-]\d\d(?::?\d\d)?)?$` (case-insensitive) with range
/// checks; the zone is optional even for `date-time` (ajv-formats 2.1.1 compares the missing
/// group with `""`).
fn is_time(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 8 || b.get(2) != Some(&b':') || b.get(5) != Some(&b':') {
        return false;
    }
    let (Some(hour), Some(minute), Some(second)) = (
        b.get(0..2).and_then(digits),
        b.get(3..5).and_then(digits),
        b.get(6..8).and_then(digits),
    ) else {
        return false;
    };
    let mut rest = b.get(8..).unwrap_or_default();
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = frac.get(n..).unwrap_or_default();
    }
    let zone_ok = match rest {
        [] | [b'z' | b'Z'] => true,
        [b'+' | b'-', zone @ ..] => {
            let two = |z: &[u8]| z.len() == 2 && z.iter().all(u8::is_ascii_digit);
            match zone {
                [h1, h2] => two(&[*h1, *h2]),
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => two(&[*h1, *h2]) && two(&[*m1, *m2]),
                _ => false,
            }
        }
        _ => false,
    };
    zone_ok
        && ((hour <= 23 && minute <= 59 && second <= 59)
            || (hour == 23 && minute == 59 && second == 60))
}

/// `str.split(/t|\s/i)` must give exactly a date and a time.
fn is_date_time(s: &str) -> bool {
    let mut parts = s.split(|c: char| c == 't' || c == 'T' || junction_js::is_js_whitespace(c));
    match (parts.next(), parts.next(), parts.next()) {
        (Some(date), Some(time), None) => is_date(date) && is_time(time),
        _ => false,
    }
}

/// `^P(?!$)(…|(\d+W)?)$` with `T(?=\d)`; the look-aheads are checked by hand.
fn is_duration(s: &str) -> bool {
    if s == "P" || !matches(&DURATION, s) {
        return false;
    }
    match s.find('T') {
        Some(t) => s.as_bytes().get(t + 1).is_some_and(u8::is_ascii_digit),
        None => true,
    }
}

/// `^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$` with the `m` flag: valid
/// when any line is base64.
fn is_byte(s: &str) -> bool {
    s.split(js::is_line_terminator).any(|line| {
        let b = line.as_bytes();
        if b.len() % 4 != 0 {
            return false;
        }
        let body = b
            .strip_suffix(b"==")
            .or_else(|| b.strip_suffix(b"="))
            .unwrap_or(b);
        body.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
    })
}

/// ajv-formats `regex`: no `\Z` anchor and `new RegExp(str)` must not throw.
fn is_regex(s: &str) -> bool {
    let mut prev: Option<char> = None;
    let mut chars = s.chars().peekable();
    // `/[^\\]\\Z/`: a backslash-Z preceded by anything but a backslash.
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek() == Some(&'Z') && prev.is_some_and(|p| p != '\\') {
            return false;
        }
        prev = Some(c);
    }
    js_regex::is_valid_pattern(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email() {
        for ok in [
            "a@b.co",
            "peter@example.com",
            "A.B+c@sub.example.org",
            "x@1.2",
        ] {
            assert!(check_format("email", ok), "{ok}");
        }
        for bad in [
            "no-at-sign",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "\"quoted\"@example.com",
            "user@[127.0.0.1]",
            "ünicode@example.com",
            ".a@b.co",
            "a.@b.co",
            "a@-b.co",
            "a@b-.co",
            "a@b..co",
            "",
        ] {
            assert!(!check_format("email", bad), "{bad}");
        }
    }

    #[test]
    fn uri() {
        for ok in [
            "https://www.linkedin.com/in/x",
            "http://cona.ir/tenromco",
            "mailto:a@b.com",
            "urn:isbn:123",
            "ftp://x.y/z?q=1#f",
            "http://[::1]:80/",
            "http://[v1.fe]/",
            "http://user:pw@host:8080/p?q#f",
            "http:/path",
            "x:y",
        ] {
            assert!(check_format("uri", ok), "{ok}");
        }
        for bad in [
            "linkedin.com/in/x",
            "/relative/path",
            "https://exa mple.com",
            "https://例子.测试",
            "mailto:",
            "http://[::1:80/",
            "http://a\"b",
            "1http://x",
            "",
        ] {
            assert!(!check_format("uri", bad), "{bad}");
        }
    }

    #[test]
    fn plain_urls_are_a_sub_language_of_the_uri_regexes() {
        for s in [
            "https://www.linkedin.com/in/jane",
            "http://cona.ir/tenromco",
            "ftp://x.y/z?q=1#f",
            "http://host:8080",
            "http://",
            "a+b.c://h//x/?/?#/?",
        ] {
            assert!(is_plain_url(s), "{s}");
            assert!(matches(&URI, s) && matches(&URI_REFERENCE, s), "{s}");
        }
        for s in [
            "http://a b",
            "http://[::1]/",
            "http://a%20b",
            "mailto:x",
            "http://u@h",
            "1a://x",
        ] {
            assert!(!is_plain_url(s), "{s}");
        }
    }

    #[test]
    fn uri_reference() {
        for ok in [
            "https://example.com",
            "example.com",
            "jbl@p6u",
            "nX10Ilka9K6F",
            "/path?x=1",
            "#frag",
            "",
            "a\"b",
            "//host/x",
        ] {
            assert!(check_format("uri-reference", ok), "{ok}");
        }
        for bad in ["has space", "a\\b", "a#b#c", "%zz"] {
            assert!(!check_format("uri-reference", bad), "{bad}");
        }
    }

    #[test]
    fn date_and_time() {
        assert!(check_format("date", "2024-02-29"));
        assert!(!check_format("date", "2023-02-29"));
        assert!(!check_format("date", "2024-13-01"));
        assert!(!check_format("date", ""));
        assert!(check_format("time", "23:59:60"));
        assert!(check_format("time", "10:00:00.5+01:00"));
        assert!(check_format("time", "10:00:00z"));
        assert!(!check_format("time", "24:00:00"));
        assert!(!check_format("time", ""));
        assert!(check_format("date-time", "2024-01-01T10:00:00Z"));
        assert!(check_format("date-time", "2024-01-01 10:00:00"));
        assert!(!check_format("date-time", "2024-01-01T10:00"));
        assert!(!check_format("date-time", ""));
    }

    #[test]
    fn network_formats() {
        assert!(check_format("hostname", "example.com"));
        assert!(check_format("hostname", "example.com."));
        assert!(!check_format("hostname", ""));
        assert!(!check_format("hostname", "-a.com"));
        assert!(!check_format("hostname", &"a".repeat(64)));
        assert!(check_format("ipv4", "192.168.0.1"));
        assert!(check_format("ipv4", "01.02.003.4"));
        assert!(!check_format("ipv4", "256.1.1.1"));
        assert!(!check_format("ipv4", ""));
        assert!(check_format("ipv6", "::1"));
        assert!(check_format("ipv6", "1:2:3:4:5:6:7:8"));
        assert!(check_format("ipv6", "::ffff:192.168.0.1"));
        assert!(!check_format("ipv6", "::ffff:192.168.0.01"));
        assert!(!check_format("ipv6", "1:2:3:4:5:6:7:8:9"));
        assert!(!check_format("ipv6", ""));
        assert!(check_format("url", "https://example.com/x"));
        assert!(check_format("url", "http://user@8.8.8.8:80/"));
        assert!(!check_format("url", "http://10.0.0.1"));
        assert!(!check_format("url", "http://localhost"));
    }

    #[test]
    fn other_formats() {
        assert!(check_format("uuid", "123e4567-e89b-12d3-a456-426614174000"));
        assert!(check_format(
            "uuid",
            "URN:UUID:123e4567-e89b-12d3-a456-426614174000"
        ));
        assert!(!check_format("uuid", "123e4567"));
        assert!(check_format("json-pointer", "/a~0b/c~1"));
        assert!(!check_format("json-pointer", "a"));
        assert!(check_format("relative-json-pointer", "0#"));
        assert!(check_format("duration", "P1Y2M3DT4H5M6S"));
        assert!(check_format("duration", "P2W"));
        assert!(!check_format("duration", "P"));
        assert!(!check_format("duration", "PT"));
        assert!(check_format("byte", "aGVsbG8="));
        assert!(!check_format("byte", "aGVsbG8"));
        assert!(check_format("uri-template", "http://x/{id}"));
        assert!(!check_format("uri-template", "http://x/{id"));
        assert!(check_format("regex", "^\\d+$"));
        assert!(!check_format("regex", "["));
        assert!(!check_format("regex", "a\\Z"));
        assert!(check_format("text", "anything"));
        assert!(check_format("password", ""));
        assert!(check_format("no-such-format", ""));
        assert!(check_format("int32", "x"));
    }
}
