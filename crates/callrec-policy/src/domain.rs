//! The small values the policy speaks in: phone numbers, languages, queue
//! ids, who changed the settings, DTMF digits.
//!
//! Each is a newtype whose parsing constructor is the only way in, so a value
//! of one of these types is always well formed and already normalized (two
//! spellings of the same phone number compare equal). Nothing here does I/O.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a text could not be read as one of the values of this module.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// The phone number has something other than digits and separators.
    #[error(
        "`{0}` is not a phone number: use digits, an optional leading +, and spaces, dashes, dots or parentheses as separators"
    )]
    PhoneNumber(String),
    /// The language is not a BCP 47 tag.
    #[error("`{0}` is not a BCP 47 language tag: write it like `en`, `es-MX` or `pt-BR`")]
    Language(String),
    /// The queue id is empty, too long or has unexpected characters.
    #[error(
        "`{0}` is not a queue id: use 1 to 64 letters, digits, `-`, `_`, `.` or `:` as the contact center names the queue"
    )]
    QueueId(String),
    /// The name of who made a change is empty or too long.
    #[error(
        "`{0}` does not name who made the change: give a user name of 1 to 128 printable characters"
    )]
    Actor(String),
    /// Not a DTMF key.
    #[error("`{0}` is not a DTMF key: use one of 0-9, *, # or A-D")]
    DtmfDigit(String),
}

/// A phone number, normalized: spaces, dashes, dots and parentheses are
/// removed, a leading `+` is kept, and what remains is 1 to 20 digits.
///
/// Normalization does not add or remove country codes: `+1 911` and `911`
/// are different numbers. Emergency numbers are compared on this normalized
/// form, so `9-1-1` and `(911)` are the emergency number 911.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Reads and normalizes a phone number.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let trimmed = text.trim();
        let (plus, rest) = match trimmed.strip_prefix('+') {
            Some(rest) => ("+", rest),
            None => ("", trimmed),
        };
        let mut digits = String::with_capacity(rest.len() + 1);
        digits.push_str(plus);
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(ParseError::PhoneNumber(text.to_owned())),
            }
        }
        let count = digits.len() - plus.len();
        if !(1..=20).contains(&count) {
            return Err(ParseError::PhoneNumber(text.to_owned()));
        }
        Ok(Self(digits))
    }

    /// The normalized number, e.g. `+525512345678` or `911`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for PhoneNumber {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<PhoneNumber> for String {
    fn from(n: PhoneNumber) -> Self {
        n.0
    }
}

/// A language as a BCP 47 tag, in its canonical case: `es-MX`, `pt-BR`,
/// `zh-Hant-TW`, `en`.
///
/// Accepted: a primary language of 2 to 3 letters (or 5 to 8), then subtags
/// of 1 to 8 letters or digits separated by `-` (an `_`, as in `es_MX`, is
/// read as `-` because admins type locale names that way). Case is
/// normalized: language lowercase, a 4-letter script in title case, a
/// 2-letter region uppercase. Whether the tag is registered with IANA is not
/// checked: the admin may need a tag the registry has not caught up with.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Language(String);

impl Language {
    /// Reads a BCP 47 tag and puts it in canonical case.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let bad = || ParseError::Language(text.to_owned());
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.len() > 64 {
            return Err(bad());
        }
        let mut out = String::with_capacity(trimmed.len());
        for (i, subtag) in trimmed.split(['-', '_']).enumerate() {
            if subtag.is_empty()
                || subtag.len() > 8
                || !subtag.chars().all(|c| c.is_ascii_alphanumeric())
            {
                return Err(bad());
            }
            if i == 0 {
                let len_ok = (2..=3).contains(&subtag.len()) || (5..=8).contains(&subtag.len());
                if !len_ok || !subtag.chars().all(|c| c.is_ascii_alphabetic()) {
                    return Err(bad());
                }
                out.push_str(&subtag.to_ascii_lowercase());
                continue;
            }
            out.push('-');
            let alpha = subtag.chars().all(|c| c.is_ascii_alphabetic());
            if alpha && subtag.len() == 4 {
                let (first, rest) = subtag.split_at(1);
                out.push_str(&first.to_ascii_uppercase());
                out.push_str(&rest.to_ascii_lowercase());
            } else if alpha && subtag.len() == 2 {
                out.push_str(&subtag.to_ascii_uppercase());
            } else {
                out.push_str(&subtag.to_ascii_lowercase());
            }
        }
        Ok(Self(out))
    }

    /// The tag, e.g. `es-MX`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This tag and then each shorter prefix of it, most specific first:
    /// `zh-Hant-TW`, `zh-Hant`, `zh`. Used to fall back from a caller's
    /// language to a configured one.
    pub fn fallbacks(&self) -> impl Iterator<Item = Language> + '_ {
        let positions = self
            .0
            .match_indices('-')
            .map(|(i, _)| i)
            .chain(std::iter::once(self.0.len()))
            .collect::<Vec<_>>();
        positions
            .into_iter()
            .rev()
            .map(|end| Language(self.0[..end].to_owned()))
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Language {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Language {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Language> for String {
    fn from(l: Language) -> Self {
        l.0
    }
}

/// The id of a contact-center queue, as the contact center names it:
/// 1 to 64 letters, digits, `-`, `_`, `.` or `:`. Case is kept and matters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct QueueId(String);

impl QueueId {
    /// Reads a queue id; surrounding spaces are removed.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let trimmed = text.trim();
        let ok = (1..=64).contains(&trimmed.len())
            && trimmed
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
        if ok {
            Ok(Self(trimmed.to_owned()))
        } else {
            Err(ParseError::QueueId(text.to_owned()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for QueueId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for QueueId {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<QueueId> for String {
    fn from(q: QueueId) -> Self {
        q.0
    }
}

/// Who made a settings change: a user name, or `system` for changes callrec
/// makes itself (the first version of the settings).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Actor(String);

impl Actor {
    /// Reads a user name: 1 to 128 characters after trimming, none of them
    /// control characters.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let trimmed = text.trim();
        let ok = !trimmed.is_empty()
            && trimmed.chars().count() <= 128
            && !trimmed.chars().any(char::is_control);
        if ok {
            Ok(Self(trimmed.to_owned()))
        } else {
            Err(ParseError::Actor(text.to_owned()))
        }
    }

    /// callrec itself, for the versions nobody saved by hand.
    pub fn system() -> Self {
        Self("system".to_owned())
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Actor {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Actor> for String {
    fn from(a: Actor) -> Self {
        a.0
    }
}

/// One DTMF key as RFC 4733 events or SIP INFO carry it: 0-9, `*`, `#`, A-D.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DtmfDigit(char);

impl DtmfDigit {
    /// The key that declines recording in the permission prompt (opt-out).
    pub const DECLINE: DtmfDigit = DtmfDigit('1');

    /// Reads one key; letters are uppercased.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut chars = text.trim().chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if c.is_ascii_digit() || matches!(c, '*' | '#') => Ok(Self(c)),
            (Some(c), None) if matches!(c.to_ascii_uppercase(), 'A'..='D') => {
                Ok(Self(c.to_ascii_uppercase()))
            }
            _ => Err(ParseError::DtmfDigit(text.to_owned())),
        }
    }

    /// The key from an RFC 4733 telephone-event code (0-9, 10 = `*`,
    /// 11 = `#`, 12-15 = A-D).
    pub fn from_event(code: u8) -> Result<Self, ParseError> {
        let c = match code {
            0..=9 => char::from(b'0' + code),
            10 => '*',
            11 => '#',
            12..=15 => char::from(b'A' + code - 12),
            _ => return Err(ParseError::DtmfDigit(format!("event {code}"))),
        };
        Ok(Self(c))
    }

    /// The key as a character.
    pub fn as_char(self) -> char {
        self.0
    }
}

impl fmt::Display for DtmfDigit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl TryFrom<String> for DtmfDigit {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<DtmfDigit> for String {
    fn from(d: DtmfDigit) -> Self {
        d.0.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_phone(input: &str, expected: Option<&str>) {
        let got = PhoneNumber::parse(input).ok();
        assert_eq!(got.as_ref().map(PhoneNumber::as_str), expected, "{input:?}");
    }

    #[test]
    fn phone_numbers_are_normalized_or_refused() {
        check_phone("911", Some("911"));
        check_phone(" 9-1-1 ", Some("911"));
        check_phone("(55) 1234.5678", Some("5512345678"));
        check_phone("+52 55 1234 5678", Some("+525512345678"));
        check_phone("+1 (800) 555-0100", Some("+18005550100"));
        check_phone("", None);
        check_phone("+", None);
        check_phone("91+1", None);
        check_phone("++911", None);
        check_phone("911a", None);
        check_phone("123456789012345678901", None);
    }

    fn check_language(input: &str, expected: Option<&str>) {
        let got = Language::parse(input).ok();
        assert_eq!(got.as_ref().map(Language::as_str), expected, "{input:?}");
    }

    #[test]
    fn languages_are_bcp47_tags_in_canonical_case() {
        check_language("en", Some("en"));
        check_language("ES-mx", Some("es-MX"));
        check_language("es_MX", Some("es-MX"));
        check_language("zh-hant-tw", Some("zh-Hant-TW"));
        check_language("es-419", Some("es-419"));
        check_language("", None);
        check_language("e", None);
        check_language("english-", None);
        check_language("en--US", None);
        check_language("12-US", None);
        check_language("en-toolongsubtag", None);
        check_language("en US", None);
    }

    #[test]
    fn language_fallbacks_go_from_specific_to_general() {
        let tags: Vec<String> = Language::parse("zh-Hant-TW")
            .unwrap()
            .fallbacks()
            .map(String::from)
            .collect();
        assert_eq!(tags, ["zh-Hant-TW", "zh-Hant", "zh"]);
    }

    #[test]
    fn queue_ids_refuse_empty_and_odd_characters() {
        assert_eq!(QueueId::parse(" sales-mx ").unwrap().as_str(), "sales-mx");
        assert!(QueueId::parse("").is_err());
        assert!(QueueId::parse("sales mx").is_err());
        assert!(QueueId::parse(&"q".repeat(65)).is_err());
    }

    #[test]
    fn dtmf_digits_from_text_and_events_agree() {
        for (code, text) in [
            (0, "0"),
            (1, "1"),
            (9, "9"),
            (10, "*"),
            (11, "#"),
            (12, "a"),
        ] {
            assert_eq!(
                DtmfDigit::from_event(code).unwrap(),
                DtmfDigit::parse(text).unwrap()
            );
        }
        assert!(DtmfDigit::from_event(16).is_err());
        assert!(DtmfDigit::parse("12").is_err());
        assert!(DtmfDigit::parse("E").is_err());
        assert_eq!(DtmfDigit::parse("1").unwrap(), DtmfDigit::DECLINE);
    }

    #[test]
    fn actor_refuses_empty_names() {
        assert!(Actor::parse("  ").is_err());
        assert!(Actor::parse("ana\n").is_ok());
        assert!(Actor::parse("a\u{7}b").is_err());
        assert_eq!(Actor::parse(" ana ").unwrap().as_str(), "ana");
    }
}
