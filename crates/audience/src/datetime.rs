//! Times: RFC 3339 date-times (with `Z` or an offset, and a real calendar date) to Unix
//! milliseconds, digits past the millisecond dropped (`audiences.md` §3).

/// Milliseconds in an hour.
pub const HOUR_MS: i64 = 3_600_000;
/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// The Unix time in milliseconds of an RFC 3339 date-time such as `2026-03-01T00:00:00Z` or
/// `2026-03-01T05:30:00.123456+05:30`; `None` for anything else (a date alone, no offset, a
/// day that does not exist, hour 24, minute 60, an offset of 24 hours).
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let mut cursor = Cursor {
        bytes: text.as_bytes(),
        pos: 0,
    };
    let year = cursor.number(4)?;
    cursor.expect(b'-')?;
    let month = cursor.number(2)?;
    cursor.expect(b'-')?;
    let day = cursor.number(2)?;
    cursor.expect(b'T')?;
    let hour = cursor.number(2)?;
    cursor.expect(b':')?;
    let minute = cursor.number(2)?;
    cursor.expect(b':')?;
    let second = cursor.number(2)?;
    let mut millis = 0;
    if cursor.peek() == Some(b'.') {
        cursor.pos += 1;
        let start = cursor.pos;
        while cursor.peek().is_some_and(|b| b.is_ascii_digit()) {
            let digit = i64::from(cursor.peek()? - b'0');
            if cursor.pos - start < 3 {
                millis = millis * 10 + digit;
            }
            cursor.pos += 1;
        }
        let written = cursor.pos - start;
        if written == 0 {
            return None;
        }
        for _ in written..3 {
            millis *= 10;
        }
    }
    let offset_minutes = match cursor.peek()? {
        b'Z' => {
            cursor.pos += 1;
            0
        }
        sign @ (b'+' | b'-') => {
            cursor.pos += 1;
            let hours = cursor.number(2)?;
            cursor.expect(b':')?;
            let minutes = cursor.number(2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let total = hours * 60 + minutes;
            if sign == b'-' { -total } else { total }
        }
        _ => return None,
    };
    if cursor.pos != cursor.bytes.len() {
        return None;
    }
    let valid = (1..=12).contains(&month)
        && day >= 1
        && day <= days_in_month(year, month)
        && hour <= 23
        && minute <= 59
        && second <= 59;
    if !valid {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    /// Exactly `len` ASCII digits.
    fn number(&mut self, len: usize) -> Option<i64> {
        let mut value = 0;
        for _ in 0..len {
            let byte = self.peek().filter(u8::is_ascii_digit)?;
            value = value * 10 + i64::from(byte - b'0');
            self.pos += 1;
        }
        Some(value)
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utc_and_offsets_to_milliseconds() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2026-03-01T00:00:00Z"),
            Some(1_772_323_200_000)
        );
        assert_eq!(
            parse_rfc3339("2026-03-01T05:30:00+05:30"),
            parse_rfc3339("2026-03-01T00:00:00Z")
        );
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.0019Z"), Some(1));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.5Z"), Some(500));
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59.999Z"), Some(-1));
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00-01:00"),
            Some(1_709_168_400_000)
        );
    }

    #[test]
    fn refuses_what_is_not_a_date_time() {
        for text in [
            "2026-03-01",
            "2026-03-01T00:00:00",
            "2026-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-07-14T24:00:00Z",
            "2026-07-14T23:60:00Z",
            "2026-07-14T23:00:00+24:00",
            "2026-07-14T23:00:00+0100",
            "2026-07-14T23:00:00.Z",
            "2026-07-14T23:00Z",
            "yesterday",
            "",
        ] {
            assert_eq!(parse_rfc3339(text), None, "{text}");
        }
    }
}
