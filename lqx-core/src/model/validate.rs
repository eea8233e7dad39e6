//! Field validation shared by the model types. Every error names the field.

use crate::{Error, Result};
use std::collections::BTreeMap;

pub const MAX_LABELS: usize = 64;
pub const MAX_LABEL_KEY: usize = 63;
pub const MAX_LABEL_VALUE: usize = 253;
pub const MAX_DESCRIPTION: usize = 1024;

/// VM and node names: 1-63 characters of lowercase letters, digits and '-', starting and
/// ending with a letter or digit (a DNS label, so a name is also a valid hostname).
pub fn name(field: &str, s: &str) -> Result<()> {
    if s.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if s.len() > 63 {
        return Err(Error::invalid(
            field,
            format!("must be at most 63 characters, got {}", s.len()),
        ));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(Error::invalid(
            field,
            format!("{s:?} may hold only lowercase letters, digits and '-'"),
        ));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err(Error::invalid(
            field,
            format!("{s:?} must start and end with a letter or digit"),
        ));
    }
    Ok(())
}

pub fn labels(field: &str, labels: &BTreeMap<String, String>) -> Result<()> {
    if labels.len() > MAX_LABELS {
        return Err(Error::invalid(
            field,
            format!("at most {MAX_LABELS} labels, got {}", labels.len()),
        ));
    }
    for (k, v) in labels {
        if k.is_empty() || k.len() > MAX_LABEL_KEY {
            return Err(Error::invalid(
                field,
                format!("label key {k:?} must be 1-{MAX_LABEL_KEY} characters"),
            ));
        }
        if !k
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
        {
            return Err(Error::invalid(
                field,
                format!("label key {k:?} may hold only letters, digits, '-', '_', '.', '/'"),
            ));
        }
        if v.len() > MAX_LABEL_VALUE || v.chars().any(char::is_control) {
            return Err(Error::invalid(
                field,
                format!("label {k:?}: value must be at most {MAX_LABEL_VALUE} printable characters"),
            ));
        }
    }
    Ok(())
}

pub fn range<T: PartialOrd + std::fmt::Display>(field: &str, v: T, min: T, max: T, unit: &str) -> Result<()> {
    if v < min || v > max {
        return Err(Error::invalid(
            field,
            format!("must be between {min} and {max}{unit}, got {v}{unit}"),
        ));
    }
    Ok(())
}

pub fn description(field: &str, s: &str) -> Result<()> {
    if s.len() > MAX_DESCRIPTION {
        return Err(Error::invalid(
            field,
            format!("must be at most {MAX_DESCRIPTION} bytes"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "web-1", "0", &"a".repeat(63)] {
            name("name", ok).unwrap();
        }
        for bad in ["", "Web", "a_b", "-a", "a-", "a b", "ä", &"a".repeat(64), "a<b&\"c'"] {
            let e = name("name", bad).unwrap_err();
            assert_eq!(e.kind, crate::ErrorKind::InvalidArgument, "{bad}");
            assert!(e.message.starts_with("name:"), "{}", e.message);
        }
    }

    #[test]
    fn label_bounds() {
        let mut l = BTreeMap::new();
        l.insert("env".to_string(), "prod".to_string());
        labels("labels", &l).unwrap();
        l.insert("bad key".into(), "x".into());
        assert!(labels("labels", &l).unwrap_err().message.contains("bad key"));
        let many: BTreeMap<_, _> = (0..65).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(labels("labels", &many).is_err());
    }
}
