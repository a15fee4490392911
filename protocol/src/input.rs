//! Parsed user input. Each newtype can only hold a value that passed its rules, so the portal can
//! check a form before sending it and the server applies the very same rules at its edge.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a value was refused, in words a person understands, naming the field it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct InputError {
    pub field: &'static str,
    pub message: String,
}

impl InputError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Characters that change how the text around them reads without showing themselves: control
/// characters (NUL among them), bidirectional marks, overrides and isolates, and zero-width
/// spaces. A name carrying them can pass for another (`admin\u{200b}`), or reverse what follows
/// it. The zero-width (non-)joiners stay allowed: Persian and Indic writing and emoji need them.
pub fn is_hidden_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200b}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
        )
}

fn has_control_chars(s: &str) -> bool {
    s.chars().any(is_hidden_char)
}

/// One line of visible text, trimmed, of a length (in characters) within `len`; otherwise
/// `message`, about `field`. The one rule behind every short text field that has no type of
/// its own (host names, references, feature names…).
pub fn text_line(
    field: &'static str,
    raw: &str,
    len: std::ops::RangeInclusive<usize>,
    message: &str,
) -> Result<String, InputError> {
    let value = raw.trim();
    if !len.contains(&value.chars().count()) || has_control_chars(value) {
        return Err(InputError::new(field, message));
    }
    Ok(value.to_owned())
}

/// Trims a single-line text field and checks its length (in characters) and content.
fn single_line(
    field: &'static str,
    label: &str,
    raw: &str,
    max: usize,
) -> Result<String, InputError> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(InputError::new(field, format!("{label} is required.")));
    }
    if value.chars().count() > max {
        return Err(InputError::new(
            field,
            format!("{label} must be at most {max} characters."),
        ));
    }
    if has_control_chars(value) {
        return Err(InputError::new(
            field,
            format!("{label} must be a single line of text."),
        ));
    }
    Ok(value.to_owned())
}

macro_rules! text_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

text_newtype!(
    /// A sign-in name: an e-mail address, kept in lower case so that look-ups ignore case.
    Email
);
text_newtype!(
    /// The name a person is shown by.
    PersonName
);
text_newtype!(
    /// The name of a client organisation.
    ClientName
);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, InputError> {
        const FIELD: &str = "email";
        let value = raw.trim();
        if value.is_empty() {
            return Err(InputError::new(FIELD, "E-mail address is required."));
        }
        if value.chars().count() > Self::MAX_LEN {
            return Err(InputError::new(
                FIELD,
                format!(
                    "E-mail address must be at most {} characters.",
                    Self::MAX_LEN
                ),
            ));
        }
        let shape_ok = match value.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
        if !shape_ok || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(InputError::new(
                FIELD,
                "Enter an e-mail address such as name@example.com.",
            ));
        }
        Ok(Self(value.to_lowercase()))
    }
}

impl PersonName {
    pub const MAX_LEN: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, InputError> {
        single_line("name", "Name", raw, Self::MAX_LEN).map(Self)
    }
}

impl ClientName {
    pub const MAX_LEN: usize = 120;

    pub fn parse(raw: &str) -> Result<Self, InputError> {
        single_line("name", "Client name", raw, Self::MAX_LEN).map(Self)
    }

    /// The form two names are compared in for uniqueness: case and inner spacing do not count.
    pub fn key(&self) -> String {
        self.0
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    }
}

/// A new password. Never `Serialize`d back out and redacted from `Debug`.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    pub const MIN_LEN: usize = 12;
    pub const MAX_LEN: usize = 128;

    /// Checks a password someone is choosing (not one they are signing in with).
    pub fn parse_new(raw: &str) -> Result<Self, InputError> {
        const FIELD: &str = "password";
        let len = raw.chars().count();
        if len < Self::MIN_LEN {
            return Err(InputError::new(
                FIELD,
                format!("Password must be at least {} characters.", Self::MIN_LEN),
            ));
        }
        if len > Self::MAX_LEN {
            return Err(InputError::new(
                FIELD,
                format!("Password must be at most {} characters.", Self::MAX_LEN),
            ));
        }
        if raw.trim().is_empty() {
            return Err(InputError::new(FIELD, "Password cannot be only spaces."));
        }
        Ok(Self(raw.to_owned()))
    }

    /// Wraps a password someone is signing in with; only its length is bounded, so that an
    /// oversized value is refused before any hashing work.
    pub fn for_sign_in(raw: &str) -> Result<Self, InputError> {
        if raw.is_empty() {
            return Err(InputError::new("password", "Password is required."));
        }
        if raw.chars().count() > Self::MAX_LEN {
            return Err(InputError::new(
                "password",
                format!("Password must be at most {} characters.", Self::MAX_LEN),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A whole number typed into a form field; empty: `default`. `label` names the field in the error.
pub fn form_number<T: std::str::FromStr>(
    field: &'static str,
    label: &str,
    raw: &str,
    default: T,
) -> Result<T, InputError> {
    Ok(optional_form_number(field, label, raw)?.unwrap_or(default))
}

/// A whole number typed into a form field, or `None` when it is left empty.
pub fn optional_form_number<T: std::str::FromStr>(
    field: &'static str,
    label: &str,
    raw: &str,
) -> Result<Option<T>, InputError> {
    match raw.trim() {
        "" => Ok(None),
        v => v
            .parse()
            .map(Some)
            .map_err(|_| InputError::new(field, format!("{label} must be a whole number."))),
    }
}

/// A form field's text, trimmed, or `None` when it is left empty.
pub fn optional_form_text(raw: &str) -> Option<String> {
    Some(raw.trim().to_owned()).filter(|s| !s.is_empty())
}

/// Free text such as notes: may span lines, bounded in size.
pub fn notes(raw: &str) -> Result<String, InputError> {
    const MAX: usize = 2000;
    let value = raw.trim();
    if value.chars().count() > MAX {
        return Err(InputError::new(
            "notes",
            format!("Notes must be at most {MAX} characters."),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(InputError::new(
            "notes",
            "Notes may not contain control characters.",
        ));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_characters_are_refused_and_joiners_are_not() {
        for bad in [
            "admin\u{200b}",
            "a\u{202e}b",
            "\u{feff}x",
            "x\u{2066}y",
            "n\u{0}ul",
        ] {
            assert!(text_line("name", bad, 1..=50, "no").is_err(), "{bad:?}");
        }
        // Persian with a zero-width non-joiner, an emoji with a zero-width joiner.
        for good in [
            "\u{0645}\u{06cc}\u{200c}\u{062e}\u{0648}\u{0627}\u{0647}\u{0645}",
            "\u{1f469}\u{200d}\u{1f4bb}",
        ] {
            assert!(text_line("name", good, 1..=50, "no").is_ok(), "{good:?}");
        }
    }

    #[test]
    fn email_is_lowercased_and_trimmed() {
        let email = Email::parse("  Ada@Example.COM ").expect("valid");
        assert_eq!(email.as_str(), "ada@example.com");
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "   ",
            "ada",
            "@example.com",
            "ada@",
            "a b@example.com",
            "ada@@x.com",
            "ada@.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn names_are_single_bounded_lines() {
        assert_eq!(
            PersonName::parse("  Ada Lovelace ")
                .expect("valid")
                .as_str(),
            "Ada Lovelace"
        );
        assert!(PersonName::parse("").is_err());
        assert!(PersonName::parse("two\nlines").is_err());
        assert!(PersonName::parse(&"x".repeat(101)).is_err());
        assert!(PersonName::parse(&"é".repeat(100)).is_ok());
    }

    #[test]
    fn sql_metacharacters_are_ordinary_text() {
        let name = ClientName::parse("O'Brien \"; DROP TABLE users; --").expect("valid");
        assert_eq!(name.as_str(), "O'Brien \"; DROP TABLE users; --");
    }

    #[test]
    fn client_name_key_ignores_case_and_spacing() {
        let a = ClientName::parse("Acme   Tools").expect("valid");
        let b = ClientName::parse("acme tools").expect("valid");
        assert_eq!(a.key(), b.key());
    }

    #[test]
    fn password_rules() {
        assert!(Password::parse_new("short").is_err());
        assert!(Password::parse_new(&" ".repeat(20)).is_err());
        assert!(Password::parse_new(&"x".repeat(129)).is_err());
        assert!(Password::parse_new("correct horse battery").is_ok());
        assert!(Password::for_sign_in("").is_err());
        assert!(Password::for_sign_in("x").is_ok());
        let shown = format!("{:?}", Password::for_sign_in("secret").expect("ok"));
        assert!(!shown.contains("secret"));
    }
}
