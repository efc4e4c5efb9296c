//! The reference's lenient `date-like` format (dayjs 1.10.7 over V8's `Date`): canonical number
//! text is a Unix time in seconds, dayjs's own pattern is a local date, and everything else is
//! whatever V8's date parser accepts — which is reimplemented here, legacy forms included.

use std::sync::LazyLock;

use regex::Regex;

use crate::js;

/// Milliseconds of the largest representable JavaScript date (ECMAScript `TimeClip`).
const MAX_TIME_MS: f64 = 8.64e15;
/// V8 lets local times go this much beyond the range before converting them to UTC.
const MAX_TIME_BEFORE_UTC_MS: f64 = 8.64e15 + 864e6;
const MS_PER_DAY: f64 = 86_400_000.0;

/// dayjs's `REGEX_PARSE` with JavaScript's `\d` (ASCII) and `\s` (Unicode spaces).
static DAYJS_PARSE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        "^([0-9]{4})[-/]?([0-9]{1,2})?[-/]?([0-9]{0,2})\
         [Tt\\t\\n\\x0B\\x0C\\r \\u{A0}\\u{1680}\\u{2000}-\\u{200A}\\u{2028}\\u{2029}\\u{202F}\\u{205F}\\u{3000}\\u{FEFF}]*\
         ([0-9]{1,2})?:?([0-9]{1,2})?:?([0-9]{1,2})?[.:]?([0-9]+)?$",
    )
    .ok()
});

/// Whether the reference's `date-like` format accepts `s`.
pub(crate) fn is_date_like(s: &str) -> bool {
    // The usual ISO timestamp first: with its `-` at index 4 it is never number text, and
    // every branch below accepts it.
    if is_plain_iso(s.as_bytes()) {
        return true;
    }
    // `String(Number(s)) === s`: the text is a Unix timestamp in seconds (the 13-digit
    // millisecond branch upstream is dead code, its result is always overwritten).
    if let Some(seconds) = canonical_number(s) {
        let ms = seconds * 1e3;
        return ms.is_finite() && ms.abs() <= MAX_TIME_MS;
    }
    // dayjs parses its own pattern as a local date unless the text ends in `Z`; every
    // component is bounded, so any match is a valid date.
    if !s.ends_with(['Z', 'z']) && DAYJS_PARSE.as_ref().is_some_and(|re| re.is_match(s)) {
        return true;
    }
    v8_parse(s).is_some()
}

/// The common ISO 8601 shapes (`2024-03-01`, `2024-03-01T12:00:00.000Z`, `…+01:00`) that V8's
/// ES5 path accepts, recognised without tokenising. `false` means "not this shape", not
/// "invalid": the full parser then decides.
fn is_plain_iso(b: &[u8]) -> bool {
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let at = |i: usize| b.get(i).copied();
    let date_ok = num(0..4).is_some()
        && at(4) == Some(b'-')
        && num(5..7).is_some_and(|m| (1..=12).contains(&m))
        && at(7) == Some(b'-')
        && num(8..10).is_some_and(|d| (1..=31).contains(&d));
    if !date_ok {
        return false;
    }
    if b.len() == 10 {
        return true;
    }
    // Hour 24 has extra rules: leave it to the full parser.
    let time_ok = matches!(at(10), Some(b'T' | b't'))
        && num(11..13).is_some_and(|h| h <= 23)
        && at(13) == Some(b':')
        && num(14..16).is_some_and(|m| m <= 59);
    if !time_ok {
        return false;
    }
    let mut i = 16;
    if at(i) == Some(b':') {
        if num(i + 1..i + 3).is_none_or(|s| s > 59) {
            return false;
        }
        i += 3;
        if at(i) == Some(b'.') {
            let digits = b.get(i + 1..).map_or(0, |rest| {
                rest.iter().take_while(|d| d.is_ascii_digit()).count()
            });
            if digits == 0 {
                return false;
            }
            i += 1 + digits;
        }
    }
    match b.get(i..) {
        Some([] | [b'Z' | b'z']) => true,
        Some([b'+' | b'-', zone @ ..]) => {
            let two = |z: &[u8]| z.iter().all(u8::is_ascii_digit);
            match zone {
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => {
                    two(&[*h1, *h2, *m1, *m2])
                        && (u32::from(*h1 - b'0') * 10 + u32::from(*h2 - b'0')) <= 23
                        && (u32::from(*m1 - b'0') * 10 + u32::from(*m2 - b'0')) <= 59
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// The number `s` denotes when `String(Number(s)) === s`.
fn canonical_number(s: &str) -> Option<f64> {
    match s {
        "NaN" => return Some(f64::NAN),
        "Infinity" => return Some(f64::INFINITY),
        "-Infinity" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    let first = s.bytes().next()?;
    if !(first.is_ascii_digit() || first == b'-') {
        return None;
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'))
    {
        return None;
    }
    let x = s.parse::<f64>().ok()?;
    (junction_js::number_to_string(x) == s).then_some(x)
}

/// V8's `Date.parse` (ES5 ISO strings first, then the legacy parser), returning the time value
/// in milliseconds, or `None` where V8 yields `NaN`. Local times are taken as UTC (the
/// reference ran in UTC; the zone only matters within a day of the representable range).
pub(crate) fn v8_parse(s: &str) -> Option<f64> {
    let fields = parse_fields(s)?;
    let day = make_day(fields.year, fields.month, fields.day)?;
    let time = f64::from(fields.hour) * 3_600_000.0
        + f64::from(fields.minute) * 60_000.0
        + f64::from(fields.second) * 1_000.0
        + f64::from(fields.millisecond);
    let mut date = day * MS_PER_DAY + time;
    match fields.utc_offset_seconds {
        None => {
            if date.abs() > MAX_TIME_BEFORE_UTC_MS {
                return None;
            }
        }
        Some(offset) => {
            date -= f64::from(offset) * 1000.0;
            if date.abs() > MAX_TIME_MS {
                return None;
            }
        }
    }
    (date.abs() <= MAX_TIME_MS).then_some(date)
}

/// Days since the epoch of `year-(month0+1)-day` (V8's `MakeDay`, day may overflow the month).
fn make_day(year: i64, month0: i64, day: i64) -> Option<f64> {
    if !(-1_000_000..=1_000_000).contains(&year) {
        return None;
    }
    let y = year + month0.div_euclid(12);
    let m = month0.rem_euclid(12);
    Some(days_from_civil(y, m + 1, 1) as f64 + (day - 1) as f64)
}

/// Days from 1970-01-01 to the given proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// What V8's parser hands to the `Date` constructor.
#[derive(Debug)]
struct DateFields {
    year: i64,
    month: i64,
    day: i64,
    hour: i32,
    minute: i32,
    second: i32,
    millisecond: i32,
    utc_offset_seconds: Option<i32>,
}

/// "No value" in V8's composers (`kMaxInt`).
const NONE: i32 = i32::MAX;
/// Digits beyond this many are read but ignored (`kMaxSignificantDigits`).
const MAX_SIGNIFICANT_DIGITS: usize = 9;

fn between(x: i32, lo: i32, hi: i32) -> bool {
    (lo..=hi).contains(&x)
}

fn is_month(x: i32) -> bool {
    between(x, 1, 12)
}

fn is_day(x: i32) -> bool {
    between(x, 1, 31)
}

fn is_hour(x: i32) -> bool {
    between(x, 0, 23)
}

fn is_minute(x: i32) -> bool {
    between(x, 0, 59)
}

fn is_second(x: i32) -> bool {
    between(x, 0, 59)
}

fn is_millisecond(x: i32) -> bool {
    between(x, 0, 999)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeywordType {
    Invalid,
    MonthName,
    TimeZoneName,
    TimeSeparator,
    AmPm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Invalid,
    Unknown,
    Number {
        value: i32,
        length: usize,
    },
    Symbol(char),
    WhiteSpace,
    EndOfInput,
    Keyword {
        kind: KeywordType,
        value: i32,
        length: usize,
    },
}

impl Token {
    fn is_number(self) -> bool {
        matches!(self, Token::Number { .. })
    }

    fn is_fixed_length_number(self, len: usize) -> bool {
        matches!(self, Token::Number { length, .. } if length == len)
    }

    fn number(self) -> i32 {
        match self {
            Token::Number { value, .. } => value,
            _ => 0,
        }
    }

    fn is_symbol(self, c: char) -> bool {
        self == Token::Symbol(c)
    }

    fn ascii_sign(self) -> Option<i32> {
        match self {
            Token::Symbol('+') => Some(1),
            Token::Symbol('-') => Some(-1),
            _ => None,
        }
    }

    fn is_keyword_type(self, kind: KeywordType) -> bool {
        matches!(self, Token::Keyword { kind: k, .. } if k == kind)
    }

    fn is_keyword_z(self) -> bool {
        matches!(
            self,
            Token::Keyword {
                kind: KeywordType::TimeZoneName,
                value: 0,
                length: 1
            }
        )
    }
}

/// Month names, time zones, AM/PM and `T`, matched on a lower-cased three-character prefix.
const KEYWORDS: [([u8; 3], KeywordType, i32); 27] = [
    (*b"jan", KeywordType::MonthName, 1),
    (*b"feb", KeywordType::MonthName, 2),
    (*b"mar", KeywordType::MonthName, 3),
    (*b"apr", KeywordType::MonthName, 4),
    (*b"may", KeywordType::MonthName, 5),
    (*b"jun", KeywordType::MonthName, 6),
    (*b"jul", KeywordType::MonthName, 7),
    (*b"aug", KeywordType::MonthName, 8),
    (*b"sep", KeywordType::MonthName, 9),
    (*b"oct", KeywordType::MonthName, 10),
    (*b"nov", KeywordType::MonthName, 11),
    (*b"dec", KeywordType::MonthName, 12),
    (*b"am\0", KeywordType::AmPm, 0),
    (*b"pm\0", KeywordType::AmPm, 12),
    (*b"ut\0", KeywordType::TimeZoneName, 0),
    (*b"utc", KeywordType::TimeZoneName, 0),
    (*b"z\0\0", KeywordType::TimeZoneName, 0),
    (*b"gmt", KeywordType::TimeZoneName, 0),
    (*b"cdt", KeywordType::TimeZoneName, -5),
    (*b"cst", KeywordType::TimeZoneName, -6),
    (*b"edt", KeywordType::TimeZoneName, -4),
    (*b"est", KeywordType::TimeZoneName, -5),
    (*b"mdt", KeywordType::TimeZoneName, -6),
    (*b"mst", KeywordType::TimeZoneName, -7),
    (*b"pdt", KeywordType::TimeZoneName, -7),
    (*b"pst", KeywordType::TimeZoneName, -8),
    (*b"t\0\0", KeywordType::TimeSeparator, 0),
];

fn lookup_keyword(prefix: [u32; 3], length: usize) -> (KeywordType, i32) {
    for (word, kind, value) in KEYWORDS {
        let matches = word.iter().zip(prefix).all(|(&w, p)| u32::from(w) == p);
        // Words longer than the keyword only match month names ("January").
        if matches && (length <= 3 || kind == KeywordType::MonthName) {
            return (kind, value);
        }
    }
    (KeywordType::Invalid, 0)
}

/// V8 reads every character from `A` up as part of a word, except white space (the line
/// separators U+2028/U+2029 do count as word characters there).
fn is_word_char(c: char) -> bool {
    c >= 'A' && (!junction_js::is_js_whitespace(c) || js::is_line_terminator(c))
}

/// Character source with V8's conventions: a NUL character ends the input.
struct Reader<'a> {
    chars: std::str::Chars<'a>,
    ch: Option<char>,
}

impl<'a> Reader<'a> {
    fn new(s: &'a str) -> Self {
        let mut reader = Reader {
            chars: s.chars(),
            ch: None,
        };
        reader.next();
        reader
    }

    fn next(&mut self) {
        self.ch = self.chars.next().filter(|&c| c != '\0');
        if self.ch.is_none() {
            // Stay at the end once reached (NUL or the real end).
            self.chars = "".chars();
        }
    }

    fn is_end(&self) -> bool {
        self.ch.is_none()
    }

    fn is_digit(&self) -> bool {
        self.ch.is_some_and(|c| c.is_ascii_digit())
    }

    fn is_word_char(&self) -> bool {
        self.ch.is_some_and(is_word_char)
    }

    fn skip(&mut self, c: char) -> bool {
        if self.ch == Some(c) {
            self.next();
            return true;
        }
        false
    }

    /// A numeral's value from its first nine significant digits (leading zeros are skipped, as
    /// current V8 does: "0000000170" is 170) and its length in characters.
    fn read_unsigned_numeral(&mut self) -> (i32, usize) {
        let mut n: i32 = 0;
        let mut length = 0;
        while self.ch == Some('0') {
            length += 1;
            self.next();
        }
        let zeros = length;
        while let Some(d) = self.ch.and_then(|c| c.to_digit(10)) {
            if length - zeros < MAX_SIGNIFICANT_DIGITS {
                // At most nine digits: fits in i32.
                n = n * 10 + d as i32;
            }
            length += 1;
            self.next();
        }
        (n, length)
    }

    fn read_word(&mut self) -> ([u32; 3], usize) {
        let mut prefix = [0u32; 3];
        let mut length = 0;
        while let Some(c) = self.ch.filter(|&c| is_word_char(c)) {
            if let Some(slot) = prefix.get_mut(length) {
                // V8 lower-cases with `| 0x20` on UTF-16 code units.
                *slot = (c as u32) | 0x20;
            }
            length += c.len_utf16();
            self.next();
        }
        (prefix, length)
    }

    fn skip_whitespace(&mut self) -> bool {
        if self.ch.is_some_and(junction_js::is_js_whitespace) {
            self.next();
            return true;
        }
        false
    }

    fn skip_parentheses(&mut self) -> bool {
        if self.ch != Some('(') {
            return false;
        }
        let mut balance = 0;
        loop {
            match self.ch {
                Some(')') => balance -= 1,
                Some('(') => balance += 1,
                _ => {}
            }
            self.next();
            if balance <= 0 || self.is_end() {
                break;
            }
        }
        true
    }
}

struct Tokenizer<'a> {
    reader: Reader<'a>,
    next: Token,
}

impl<'a> Tokenizer<'a> {
    fn new(s: &'a str) -> Self {
        let mut reader = Reader::new(s);
        let next = scan(&mut reader);
        Tokenizer { reader, next }
    }

    fn next(&mut self) -> Token {
        let result = self.next;
        self.next = scan(&mut self.reader);
        result
    }

    fn peek(&self) -> Token {
        self.next
    }

    fn skip_symbol(&mut self, c: char) -> bool {
        if self.next.is_symbol(c) {
            self.next = scan(&mut self.reader);
            return true;
        }
        false
    }
}

fn scan(reader: &mut Reader<'_>) -> Token {
    if reader.is_end() {
        return Token::EndOfInput;
    }
    if reader.is_digit() {
        let (value, length) = reader.read_unsigned_numeral();
        return Token::Number { value, length };
    }
    for symbol in [':', '-', '+', '.', ')'] {
        if reader.skip(symbol) {
            return Token::Symbol(symbol);
        }
    }
    if reader.is_word_char() {
        let (prefix, length) = reader.read_word();
        let (kind, value) = lookup_keyword(prefix, length);
        return Token::Keyword {
            kind,
            value,
            length,
        };
    }
    if reader.skip_whitespace() {
        return Token::WhiteSpace;
    }
    if reader.skip_parentheses() {
        return Token::Unknown;
    }
    reader.next();
    Token::Unknown
}

#[derive(Debug)]
struct DayComposer {
    comp: [i32; 3],
    index: usize,
    named_month: i32,
    is_iso_date: bool,
}

impl DayComposer {
    fn new() -> Self {
        DayComposer {
            comp: [0; 3],
            index: 0,
            named_month: NONE,
            is_iso_date: false,
        }
    }

    fn is_empty(&self) -> bool {
        self.index == 0
    }

    fn add(&mut self, n: i32) -> bool {
        match self.comp.get_mut(self.index) {
            Some(slot) => {
                *slot = n;
                self.index += 1;
                true
            }
            None => false,
        }
    }

    /// Year, zero-based month and day; `None` where V8's `DayComposer::Write` fails.
    fn write(&mut self) -> Option<(i64, i64, i64)> {
        if self.index < 1 {
            return None;
        }
        // Day and month default to 1.
        for slot in self.comp.iter_mut().skip(self.index) {
            *slot = 1;
        }
        self.index = self.comp.len();
        let [c0, c1, c2] = self.comp;
        // Without a year KJS compatibility gives year 0, i.e. 2000.
        let (mut year, month, day) = if self.named_month == NONE {
            // `index == 3` always holds after the defaults were filled in (as in V8).
            if self.is_iso_date || !is_day(c0) {
                (c0, c1, c2)
            } else {
                (c2, c0, c1)
            }
        } else if !is_day(c0) {
            (c0, self.named_month, c1)
        } else {
            (c1, self.named_month, c0)
        };
        if !self.is_iso_date {
            if between(year, 0, 49) {
                year += 2000;
            } else if between(year, 50, 99) {
                year += 1900;
            }
        }
        if !is_month(month) || !is_day(day) {
            return None;
        }
        Some((i64::from(year), i64::from(month - 1), i64::from(day)))
    }
}

#[derive(Debug)]
struct TimeComposer {
    comp: [i32; 4],
    index: usize,
    hour_offset: i32,
}

impl TimeComposer {
    fn new() -> Self {
        TimeComposer {
            comp: [0; 4],
            index: 0,
            hour_offset: NONE,
        }
    }

    fn is_empty(&self) -> bool {
        self.index == 0
    }

    fn is_expecting(&self, n: i32) -> bool {
        (self.index == 1 && is_minute(n))
            || (self.index == 2 && is_second(n))
            || (self.index == 3 && is_millisecond(n))
    }

    fn add(&mut self, n: i32) -> bool {
        match self.comp.get_mut(self.index) {
            Some(slot) => {
                *slot = n;
                self.index += 1;
                true
            }
            None => false,
        }
    }

    fn add_final(&mut self, n: i32) -> bool {
        if !self.add(n) {
            return false;
        }
        self.fill_zeros();
        true
    }

    fn fill_zeros(&mut self) {
        for slot in self.comp.iter_mut().skip(self.index) {
            *slot = 0;
        }
        self.index = self.comp.len();
    }

    fn write(&mut self) -> Option<[i32; 4]> {
        self.fill_zeros();
        let [mut hour, minute, second, millisecond] = self.comp;
        if self.hour_offset != NONE {
            if !between(hour, 0, 12) {
                return None;
            }
            hour %= 12;
            hour += self.hour_offset;
        }
        let in_range =
            is_hour(hour) && is_minute(minute) && is_second(second) && is_millisecond(millisecond);
        // 24:00:00.000 is the end of the day.
        if !in_range && (hour != 24 || minute != 0 || second != 0 || millisecond != 0) {
            return None;
        }
        Some([hour, minute, second, millisecond])
    }
}

#[derive(Debug)]
struct TimeZoneComposer {
    sign: i32,
    hour: i32,
    minute: i32,
}

impl TimeZoneComposer {
    fn new() -> Self {
        TimeZoneComposer {
            sign: NONE,
            hour: NONE,
            minute: NONE,
        }
    }

    fn set(&mut self, offset_in_hours: i32) {
        self.sign = if offset_in_hours < 0 { -1 } else { 1 };
        self.hour = offset_in_hours * self.sign;
        self.minute = 0;
    }

    fn set_sign(&mut self, sign: i32) {
        self.sign = if sign < 0 { -1 } else { 1 };
    }

    fn is_expecting(&self, n: i32) -> bool {
        self.hour != NONE && self.minute == NONE && is_minute(n)
    }

    fn is_utc(&self) -> bool {
        self.hour == 0 && self.minute == 0
    }

    fn is_empty(&self) -> bool {
        self.hour == NONE
    }

    /// The offset in seconds (`Ok(None)` = no zone given); `Err` where V8 fails.
    fn write(&self) -> Result<Option<i32>, ()> {
        if self.sign == NONE {
            return Ok(None);
        }
        let hour = if self.hour == NONE { 0 } else { self.hour };
        let minute = if self.minute == NONE { 0 } else { self.minute };
        // Unsigned 32-bit arithmetic as in V8 (it wraps), then the Smi range check.
        let total = (hour as u32)
            .wrapping_mul(3600)
            .wrapping_add((minute as u32).wrapping_mul(60));
        if total > i32::MAX as u32 {
            return Err(());
        }
        let total = total as i32;
        Ok(Some(if self.sign < 0 { -total } else { total }))
    }
}

/// V8's `ReadMilliseconds`: the first three significant digits of a numeral.
fn read_milliseconds(token: Token) -> i32 {
    let Token::Number { value, length } = token else {
        return 0;
    };
    match length {
        1 => value * 100,
        2 => value * 10,
        3 => value,
        _ => {
            let mut length = length.min(MAX_SIGNIFICANT_DIGITS);
            let mut factor = 1;
            while length > 3 {
                factor *= 10;
                length -= 1;
            }
            value / factor
        }
    }
}

fn parse_fields(s: &str) -> Option<DateFields> {
    let mut scanner = Tokenizer::new(s);
    let mut tz = TimeZoneComposer::new();
    let mut time = TimeComposer::new();
    let mut day = DayComposer::new();

    let next_unhandled = parse_es5_date_time(&mut scanner, &mut day, &mut time, &mut tz);
    if next_unhandled == Token::Invalid {
        return None;
    }
    let mut has_read_number = !day.is_empty();
    let mut token = next_unhandled;
    while token != Token::EndOfInput {
        if let Token::Number { value: n, .. } = token {
            has_read_number = true;
            if scanner.skip_symbol(':') {
                if scanner.skip_symbol(':') {
                    // n + "::"
                    if !time.is_empty() {
                        return None;
                    }
                    time.add(n);
                    time.add(0);
                } else {
                    // n + ":"
                    if !time.add(n) {
                        return None;
                    }
                    if scanner.peek().is_symbol('.') {
                        scanner.next();
                    }
                }
            } else if scanner.skip_symbol('.') && time.is_expecting(n) {
                time.add(n);
                if !scanner.peek().is_number() {
                    return None;
                }
                let ms = read_milliseconds(scanner.next());
                if ms < 0 {
                    return None;
                }
                time.add_final(ms);
            } else if tz.is_expecting(n) {
                tz.minute = n;
            } else if time.is_expecting(n) {
                time.add_final(n);
                // The time must be followed by the end, white space, `Z` or a sign.
                let peek = scanner.peek();
                if peek != Token::EndOfInput
                    && peek != Token::WhiteSpace
                    && !peek.is_keyword_z()
                    && peek.ascii_sign().is_none()
                {
                    return None;
                }
            } else {
                if !day.add(n) {
                    return None;
                }
                scanner.skip_symbol('-');
            }
        } else if let Token::Keyword { kind, value, .. } = token {
            if kind == KeywordType::AmPm && !time.is_empty() {
                time.hour_offset = value;
            } else if kind == KeywordType::MonthName {
                day.named_month = value;
                scanner.skip_symbol('-');
            } else if kind == KeywordType::TimeZoneName && has_read_number {
                tz.set(value);
            } else {
                // Garbage words are only allowed before the first number, and must be
                // separated from it.
                if has_read_number || scanner.peek().is_number() {
                    return None;
                }
            }
        } else if let Some(sign) = token
            .ascii_sign()
            .filter(|_| tz.is_utc() || !time.is_empty())
        {
            // A UTC offset, only after a time or "UTC".
            tz.set_sign(sign);
            let mut n = 0;
            let mut length = 0;
            if let Token::Number { value, length: len } = scanner.peek() {
                scanner.next();
                n = value;
                length = len;
            }
            has_read_number = true;
            if scanner.peek().is_symbol(':') {
                tz.hour = n;
                tz.minute = NONE;
            } else if length == 1 || length == 2 {
                tz.hour = n;
                tz.minute = 0;
            } else if length == 3 || length == 4 {
                tz.hour = n / 100;
                tz.minute = n % 100;
            } else {
                return None;
            }
        } else if (token.ascii_sign().is_some() || token.is_symbol(')')) && has_read_number {
            return None;
        }
        // Anything else (white space, unknown characters) is ignored.
        token = scanner.next();
    }

    let (year, month, day_of_month) = day.write()?;
    let [hour, minute, second, millisecond] = time.write()?;
    let utc_offset_seconds = tz.write().ok()?;
    Some(DateFields {
        year,
        month,
        day: day_of_month,
        hour,
        minute,
        second,
        millisecond,
        utc_offset_seconds,
    })
}

/// V8's `ParseES5DateTime`: consumes as much of an ISO 8601 string as it can and returns the
/// first token it did not handle (`EndOfInput` when complete, `Invalid` when hopeless).
fn parse_es5_date_time(
    scanner: &mut Tokenizer<'_>,
    day: &mut DayComposer,
    time: &mut TimeComposer,
    tz: &mut TimeZoneComposer,
) -> Token {
    // Mandatory date: [('-'|'+')yy]yyyy[-MM[-DD]]
    if let Some(sign) = scanner.peek().ascii_sign() {
        let sign_token = scanner.next();
        if !scanner.peek().is_fixed_length_number(6) {
            return sign_token;
        }
        let year = scanner.next().number();
        if sign < 0 && year == 0 {
            return sign_token;
        }
        day.add(sign * year);
    } else if scanner.peek().is_fixed_length_number(4) {
        day.add(scanner.next().number());
    } else {
        return scanner.next();
    }
    if scanner.skip_symbol('-') {
        if !scanner.peek().is_fixed_length_number(2) || !is_month(scanner.peek().number()) {
            return scanner.next();
        }
        day.add(scanner.next().number());
        if scanner.skip_symbol('-') {
            if !scanner.peek().is_fixed_length_number(2) || !is_day(scanner.peek().number()) {
                return scanner.next();
            }
            day.add(scanner.next().number());
        }
    }
    // Optional time: 'T'HH':'mm[':'ss['.'sss]][Z|(+|-)hh:mm]
    if !scanner.peek().is_keyword_type(KeywordType::TimeSeparator) {
        if scanner.peek() != Token::EndOfInput {
            return scanner.next();
        }
    } else {
        scanner.next();
        if !scanner.peek().is_fixed_length_number(2) || !between(scanner.peek().number(), 0, 24) {
            return Token::Invalid;
        }
        // 24:00[:00[.000]] is allowed, no other time in hour 24.
        let hour_is_24 = scanner.peek().number() == 24;
        time.add(scanner.next().number());
        if !scanner.skip_symbol(':') {
            return Token::Invalid;
        }
        if !scanner.peek().is_fixed_length_number(2)
            || !is_minute(scanner.peek().number())
            || (hour_is_24 && scanner.peek().number() > 0)
        {
            return Token::Invalid;
        }
        time.add(scanner.next().number());
        if scanner.skip_symbol(':') {
            if !scanner.peek().is_fixed_length_number(2)
                || !is_second(scanner.peek().number())
                || (hour_is_24 && scanner.peek().number() > 0)
            {
                return Token::Invalid;
            }
            time.add(scanner.next().number());
            if scanner.skip_symbol('.') {
                if !scanner.peek().is_number() || (hour_is_24 && scanner.peek().number() > 0) {
                    return Token::Invalid;
                }
                time.add(read_milliseconds(scanner.next()));
            }
        }
        if scanner.peek().is_keyword_z() {
            scanner.next();
            tz.set(0);
        } else if let Some(sign) = scanner.peek().ascii_sign() {
            scanner.next();
            tz.set_sign(sign);
            if scanner.peek().is_fixed_length_number(4) {
                // hhmm extension.
                let hourmin = scanner.next().number();
                let (hour, min) = (hourmin / 100, hourmin % 100);
                if !is_hour(hour) || !is_minute(min) {
                    return Token::Invalid;
                }
                tz.hour = hour;
                tz.minute = min;
            } else {
                if !scanner.peek().is_fixed_length_number(2) || !is_hour(scanner.peek().number()) {
                    return Token::Invalid;
                }
                tz.hour = scanner.next().number();
                if !scanner.skip_symbol(':') {
                    return Token::Invalid;
                }
                if !scanner.peek().is_fixed_length_number(2) || !is_minute(scanner.peek().number())
                {
                    return Token::Invalid;
                }
                tz.minute = scanner.next().number();
            }
        }
        if scanner.peek() != Token::EndOfInput {
            return Token::Invalid;
        }
    }
    // Date-only forms are UTC, date-time forms local.
    if tz.is_empty() && time.is_empty() {
        tz.set(0);
    }
    day.is_iso_date = true;
    Token::EndOfInput
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> Option<f64> {
        v8_parse(s)
    }

    #[test]
    fn spec_examples_are_accepted() {
        for s in [
            "2024-01-01T10:00:00Z",
            "2021-02-01T00:00:00.000Z",
            "2024-01-01",
            "2024-01-01 10:00",
            "2024/01/01",
            "20240101",
            "2024-13-01",
            "2024-02-30",
            "Tue, 01 Jan 2024 10:00:00 GMT",
            "January 1, 2024",
            "Jan 2 2024",
            "1/2/2024",
            "1704103200",
            "1704103200000",
            "0",
            "-1",
            "12.5",
            "2024",
            " 2024-01-01",
            "2024-01-01T10:00:00+01:00",
            "2024-01-01T10:00:00.123456-0530",
            "Mon Jan 01 2024 10:00:00 GMT+0100 (Central European Standard Time)",
            "2024-03-01T12:00:00.000Z",
            "1 January 2024 10:00 pm",
            "+002024-01-01T00:00:00Z",
        ] {
            assert!(is_date_like(s), "{s:?} should be date-like");
        }
    }

    #[test]
    fn spec_examples_are_rejected() {
        for s in [
            "not a date",
            "T10:00",
            "abc2024",
            "null",
            "true",
            "1e3",
            "2024-01-01T25:00:00Z",
            "",
            "NaN",
            "Infinity",
            "2024-01-01T10:00:00ZZ",
            "2024-01-32T00:00:00Z",
            "1e+21",
        ] {
            assert!(!is_date_like(s), "{s:?} should not be date-like");
        }
    }

    #[test]
    fn v8_time_values() {
        assert_eq!(utc("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(utc("2024-01-01T10:00:00Z"), Some(1_704_103_200_000.0));
        assert_eq!(
            utc("Tue, 01 Jan 2024 10:00:00 GMT"),
            Some(1_704_103_200_000.0)
        );
        assert_eq!(utc("2024-01-01T11:00:00+01:00"), Some(1_704_103_200_000.0));
        assert_eq!(utc("January 1, 2024"), Some(1_704_067_200_000.0));
        // Legacy two-digit years and the KJS default year 2001 for "Jan 5".
        assert_eq!(utc("1/2/24"), utc("2024-01-02T00:00:00Z"));
        assert_eq!(utc("Jan 5"), utc("2001-01-05T00:00:00Z"));
        assert_eq!(utc("2024-01-01T24:00:00Z"), utc("2024-01-02T00:00:00Z"));
        assert_eq!(utc("2024-01-01T24:01:00Z"), None);
        assert_eq!(utc("+275760-09-13T00:00:00Z"), Some(8.64e15));
        assert_eq!(utc("+275760-09-13T00:00:01Z"), None);
        assert_eq!(utc("12:00 pm Jan 1 2024"), utc("2024-01-01T12:00:00Z"));
        assert_eq!(
            utc("2024-01-01 (comment) 10:00"),
            utc("2024-01-01T10:00:00Z")
        );
    }

    #[test]
    fn plain_iso_agrees_with_the_full_parser() {
        for s in [
            "2024-03-01T12:00:00.000Z",
            "2024-03-01",
            "2024-03-01T12:00",
            "2024-03-01T12:00:00",
            "2024-03-01t12:00:00.1z",
            "2024-03-01T12:00:00.123456789+01:00",
            "2024-03-01T12:00:00-0530",
            "2024-02-31T00:00:00Z",
            "0000-01-01T00:00:00Z",
        ] {
            assert!(is_plain_iso(s.as_bytes()), "{s}");
            assert!(v8_parse(s).is_some(), "{s}");
        }
        for s in [
            "2024-03-01T24:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-03-01T12:00:00+24:00",
            "2024-03-01T12:00:00.Z",
            "2024-03-01T12:00:00ZZ",
            "2024-03-01 12:00:00Z",
        ] {
            assert!(!is_plain_iso(s.as_bytes()), "{s}");
        }
    }

    #[test]
    fn canonical_numbers_are_seconds() {
        assert!(is_date_like("8640000000000"));
        assert!(!is_date_like("8640000000001"));
        // Not canonical ("-0" prints as "0"), so V8's legacy parser reads it: 2000-01-01.
        assert!(is_date_like("-0"));
        assert!(is_date_like("1.5"));
    }
}
