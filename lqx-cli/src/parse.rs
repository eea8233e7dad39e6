//! Second stage of argument parsing: raw strings from clap into validated values
//! (sizes, durations, labels, enum filters), each with an error that says what was expected.

use std::collections::BTreeMap;
use std::time::Duration;

/// Why a flag value was rejected. Shown as `error: invalid value for --flag: <this>`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("Empty value")]
    Empty,
    #[error("{0:?} is not a size; use a number with a unit, e.g. 512MiB, 4GiB, 20G, 1TiB")]
    Size(String),
    #[error("{0:?} is not a whole number of MiB; sizes are rounded to MiB only when exact")]
    SizeFraction(String),
    #[error("{0:?} is too large")]
    SizeOverflow(String),
    #[error("{0:?} is not a duration; use e.g. 30s, 5m, 1h30m, 2d")]
    Duration(String),
    #[error("{0:?} is not a label; use key=value")]
    Label(String),
}

/// Parses a human size into MiB. Units: B, K/KB/KiB, M/MB/MiB, G/GB/GiB, T/TB/TiB (case
/// insensitive). Binary and decimal spellings both mean powers of 1024, as operators who
/// type `20G` for a disk mean GiB (qemu-img and virsh read them the same way). A bare number
/// is MiB. The result must be a whole number of MiB.
pub fn size_mib(raw: &str) -> Result<u64, ParseError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(ParseError::Empty);
    }
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let unit = unit.trim();
    if num.is_empty() || num.chars().filter(|c| *c == '.').count() > 1 {
        return Err(ParseError::Size(raw.to_string()));
    }
    // Bytes per unit as a power of 1024.
    let exp: u32 = match unit.to_ascii_lowercase().as_str() {
        "b" => 0,
        "k" | "kb" | "kib" => 1,
        "" | "m" | "mb" | "mib" => 2,
        "g" | "gb" | "gib" => 3,
        "t" | "tb" | "tib" => 4,
        _ => return Err(ParseError::Size(raw.to_string())),
    };
    // Exact arithmetic: value = int_part.frac_part, scaled by 1024^exp bytes.
    let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
    let int: u128 = if int_part.is_empty() {
        0
    } else {
        int_part
            .parse()
            .map_err(|_| ParseError::SizeOverflow(raw.to_string()))?
    };
    let frac_digits = frac_part.len() as u32;
    if frac_digits > 12 {
        return Err(ParseError::Size(raw.to_string()));
    }
    let frac: u128 = if frac_part.is_empty() {
        0
    } else {
        frac_part.parse().map_err(|_| ParseError::Size(raw.to_string()))?
    };
    let scale = 10u128.pow(frac_digits);
    let unit_bytes = 1024u128.pow(exp);
    let bytes_times_scale = int
        .checked_mul(scale)
        .and_then(|v| v.checked_add(frac))
        .and_then(|v| v.checked_mul(unit_bytes))
        .ok_or_else(|| ParseError::SizeOverflow(raw.to_string()))?;
    let mib_times_scale = 1024u128 * 1024 * scale;
    if bytes_times_scale % mib_times_scale != 0 {
        return Err(ParseError::SizeFraction(raw.to_string()));
    }
    let mib = bytes_times_scale / mib_times_scale;
    u64::try_from(mib).map_err(|_| ParseError::SizeOverflow(raw.to_string()))
}

/// Formats MiB the way people read it: `512MiB`, `4GiB`, `1.5GiB`.
pub fn format_mib(mib: u64) -> String {
    if mib >= 1024 * 1024 && mib.is_multiple_of(1024 * 1024) {
        format!("{}TiB", mib / (1024 * 1024))
    } else if mib >= 1024 && mib.is_multiple_of(1024) {
        format!("{}GiB", mib / 1024)
    } else if mib >= 1024 {
        format!("{:.1}GiB", mib as f64 / 1024.0)
    } else {
        format!("{mib}MiB")
    }
}

/// Parses a duration such as `30s`, `5m`, `1h30m`, `2d` (humantime syntax). A bare number is
/// seconds.
pub fn duration(raw: &str) -> Result<Duration, ParseError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(ParseError::Empty);
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(s).map_err(|_| ParseError::Duration(raw.to_string()))
}

/// Parses `key=value` labels; the key must be non-empty. Later repeats of a key win.
pub fn labels(raw: &[String]) -> Result<BTreeMap<String, String>, ParseError> {
    let mut out = BTreeMap::new();
    for item in raw.iter().flat_map(|s| s.split(',')) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| ParseError::Label(item.to_string()))?;
        let k = k.trim();
        if k.is_empty() || k.contains(char::is_whitespace) {
            return Err(ParseError::Label(item.to_string()));
        }
        out.insert(k.to_string(), v.trim().to_string());
    }
    Ok(out)
}

/// Splits comma-separated lists given once or repeated (`--type vm,node --type alert`).
pub fn list(raw: &[String]) -> Vec<String> {
    raw.iter()
        .flat_map(|s| s.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// clap value parser adaptors, so clap reports these as usage errors (exit 2).
pub fn clap_size(s: &str) -> Result<u64, String> {
    size_mib(s).map_err(|e| e.to_string())
}
pub fn clap_duration(s: &str) -> Result<Duration, String> {
    duration(s).map_err(|e| e.to_string())
}
pub fn clap_label(s: &str) -> Result<(String, String), String> {
    let m = labels(&[s.to_string()]).map_err(|e| e.to_string())?;
    if m.len() != 1 {
        return Err(ParseError::Label(s.to_string()).to_string());
    }
    Ok(m.into_iter().next().expect("one label"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_binary_units() {
        assert_eq!(size_mib("4GiB"), Ok(4096));
        assert_eq!(size_mib("512MiB"), Ok(512));
        assert_eq!(size_mib("20G"), Ok(20480));
        assert_eq!(size_mib("20gb"), Ok(20480));
        assert_eq!(size_mib("1TiB"), Ok(1024 * 1024));
        assert_eq!(size_mib("1.5GiB"), Ok(1536));
        assert_eq!(size_mib("2048"), Ok(2048));
        assert_eq!(size_mib(" 8 GiB "), Ok(8192));
        assert_eq!(size_mib("1048576K"), Ok(1024));
        assert_eq!(size_mib("1048576b"), Ok(1));
    }

    #[test]
    fn sizes_rejected_with_reason() {
        assert_eq!(size_mib(""), Err(ParseError::Empty));
        assert_eq!(size_mib("4 parsecs"), Err(ParseError::Size("4 parsecs".into())));
        assert_eq!(size_mib("GiB"), Err(ParseError::Size("GiB".into())));
        assert_eq!(size_mib("1.2.3G"), Err(ParseError::Size("1.2.3G".into())));
        assert_eq!(size_mib("-4GiB"), Err(ParseError::Size("-4GiB".into())));
        assert_eq!(size_mib("1K"), Err(ParseError::SizeFraction("1K".into())));
        assert_eq!(size_mib("0.3M"), Err(ParseError::SizeFraction("0.3M".into())));
        assert!(matches!(
            size_mib("99999999999999999999999999999999999T"),
            Err(ParseError::SizeOverflow(_))
        ));
        let msg = size_mib("4 parsecs").unwrap_err().to_string();
        assert!(msg.contains("4GiB"), "{msg}");
    }

    #[test]
    fn sizes_format_round_trip() {
        for mib in [1, 512, 1024, 1536, 4096, 1024 * 1024] {
            let s = format_mib(mib);
            assert_eq!(size_mib(&s), Ok(mib), "{s}");
        }
        assert_eq!(format_mib(4096), "4GiB");
        assert_eq!(format_mib(100), "100MiB");
    }

    #[test]
    fn durations() {
        assert_eq!(duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(duration("soon"), Err(ParseError::Duration("soon".into())));
        assert_eq!(duration(" "), Err(ParseError::Empty));
    }

    #[test]
    fn label_pairs() {
        let l = labels(&["env=prod,tier=web".into(), "team = core".into()]).unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l["team"], "core");
        assert_eq!(labels(&["a=".into()]).unwrap()["a"], "");
        assert_eq!(labels(&["nokey".into()]), Err(ParseError::Label("nokey".into())));
        assert_eq!(labels(&["=v".into()]), Err(ParseError::Label("=v".into())));
        assert!(clap_label("a=b,c=d").is_err());
        assert_eq!(clap_label("a=b"), Ok(("a".into(), "b".into())));
    }

    #[test]
    fn lists() {
        assert_eq!(list(&["vm, node".into(), "alert".into()]), vec!["vm", "node", "alert"]);
    }
}
