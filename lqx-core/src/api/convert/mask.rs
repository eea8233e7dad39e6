//! The one update-mask rule, used by every Update RPC (UpdateVM, UpdateProject,
//! UpdateDRSConfig):
//! - a path is spelled in snake_case or lowerCamelCase (`spec.cpu_cores` or
//!   `spec.cpuCores`): proto3 JSON clients send the latter;
//! - a path that is not an updatable field of the message is `invalid_argument` naming it;
//! - `*` names every updatable field (full replacement, AIP-134);
//! - an empty mask names the fields the request populated, i.e. gave a non-default value
//!   (AIP-134), so a value can be reset to its default only by naming it;
//! - a mask that names no field (empty, and nothing populated) is `invalid_argument`.
//!
//! Each message's updatable paths are spelled once, in snake_case, in a table of
//! `(path, field)` next to its conversion; code matches on the field, never on the text.

use crate::{Error, Result};

/// The fields `mask` names, in table order, without repeats. `what` names the message in
/// errors; `populated` says whether the request gave a field a non-default value.
pub fn resolve<F: Copy + PartialEq>(
    what: &str,
    mask: &[String],
    fields: &[(&'static str, F)],
    populated: impl Fn(F) -> bool,
) -> Result<Vec<F>> {
    let named: Vec<F> = if mask.is_empty() {
        fields.iter().map(|(_, f)| *f).filter(|f| populated(*f)).collect()
    } else {
        let mut named = Vec::new();
        for m in mask {
            let path = m.trim();
            if path == "*" {
                named.extend(fields.iter().map(|(_, f)| *f));
                continue;
            }
            let snake = to_snake(path);
            let (_, f) = fields.iter().find(|(p, _)| *p == snake).ok_or_else(|| {
                let all: Vec<&str> = fields.iter().map(|(p, _)| *p).collect();
                Error::invalid(
                    "update_mask",
                    format!("{m:?} is not an updatable {what} field (one of: {})", all.join(", ")),
                )
            })?;
            named.push(*f);
        }
        named
    };
    let out: Vec<F> = fields.iter().map(|(_, f)| *f).filter(|f| named.contains(f)).collect();
    if out.is_empty() {
        return Err(Error::invalid(
            "update_mask",
            "name at least one field to change (or give it a value in the request)",
        ));
    }
    Ok(out)
}

/// `spec.cpuCores` -> `spec.cpu_cores`; snake_case is left as it is.
fn to_snake(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for ch in s.chars() {
        if ch.is_ascii_uppercase() {
            out.push('_');
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum F {
        Name,
        CpuCores,
        MemoryMib,
    }
    const FIELDS: [(&str, F); 3] = [
        ("name", F::Name),
        ("spec.cpu_cores", F::CpuCores),
        ("spec.memory_mib", F::MemoryMib),
    ];

    fn mask(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn paths_are_taken_in_either_spelling_in_table_order_once() {
        let got = resolve(
            "test",
            &mask(&["spec.memoryMib", "spec.cpu_cores", "spec.cpuCores"]),
            &FIELDS,
            |_| false,
        );
        assert_eq!(got.unwrap(), vec![F::CpuCores, F::MemoryMib]);
    }

    #[test]
    fn an_unknown_path_is_invalid_and_named() {
        let e = resolve("test", &mask(&["name", "spec.gpu"]), &FIELDS, |_| true).unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::InvalidArgument);
        assert!(e.message.starts_with("update_mask:"), "{}", e.message);
        assert!(
            e.message.contains("\"spec.gpu\"") && e.message.contains("spec.cpu_cores"),
            "{}",
            e.message
        );
        // Nothing but snake_case and lowerCamelCase: an upper-case first letter is unknown.
        assert!(resolve("test", &mask(&["Name"]), &FIELDS, |_| true).is_err());
    }

    #[test]
    fn an_empty_mask_takes_the_populated_fields_and_a_star_takes_all() {
        let got = resolve("test", &[], &FIELDS, |f| f == F::MemoryMib).unwrap();
        assert_eq!(got, vec![F::MemoryMib]);
        let got = resolve("test", &mask(&["*"]), &FIELDS, |_| false).unwrap();
        assert_eq!(got, vec![F::Name, F::CpuCores, F::MemoryMib]);
    }

    #[test]
    fn a_mask_naming_nothing_is_invalid() {
        let e = resolve("test", &[], &FIELDS, |_| false).unwrap_err();
        assert!(e.message.starts_with("update_mask:"), "{}", e.message);
    }
}
