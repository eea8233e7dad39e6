//! Names and short ids for commands that take an id (git/docker style): a full id is used
//! as is (no extra call); anything else is matched against the resource's list, as a name
//! where the resource has one, else as a prefix of the id or of its short form (the random
//! last group tables print, see `output::short_id`). One match is used; several are a
//! usage error (exit 2) that lists them; none is "not found" (exit 3).

use crate::error::{CliError, CliResult, ExitCode};

/// One resource a query can match.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: String,
    /// Empty for resources without a name (alerts, recommendations, webhooks).
    pub name: String,
}

/// A full UUID needs no lookup.
pub fn is_full_id(q: &str) -> bool {
    q.len() == 36 && uuid::Uuid::parse_str(q).is_ok()
}

/// Picks the one candidate `query` names; `what` is the resource ("API key").
pub fn pick(what: &str, query: &str, items: &[Candidate]) -> CliResult<String> {
    let q = query.trim();
    if q.is_empty() {
        return Err(CliError::usage(format!("An empty {what} id")));
    }
    if let Some(c) = items.iter().find(|c| c.id == q) {
        return Ok(c.id.clone());
    }
    let by_name: Vec<&Candidate> = items.iter().filter(|c| !c.name.is_empty() && c.name == q).collect();
    if by_name.len() == 1 {
        return Ok(by_name[0].id.clone());
    }
    let matches: Vec<&Candidate> = if by_name.len() > 1 {
        by_name
    } else {
        let lower = q.to_ascii_lowercase();
        items
            .iter()
            .filter(|c| {
                let id = c.id.to_ascii_lowercase();
                id.starts_with(&lower) || id.get(24..).is_some_and(|tail| tail.starts_with(&lower))
            })
            .collect()
    };
    match matches.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => Err(CliError::new(ExitCode::NotFound, format!("No {what} matches {q:?}"))
            .hint("give a name, a full id, or an id prefix from the list (`-o wide` shows full ids)")),
        many => {
            let shown: Vec<String> = many
                .iter()
                .take(10)
                .map(|c| {
                    if c.name.is_empty() {
                        c.id.clone()
                    } else {
                        format!("{} ({})", c.id, c.name)
                    }
                })
                .collect();
            let more = many.len().saturating_sub(shown.len());
            Err(CliError::usage(format!(
                "{q:?} matches {} {what}s: {}{}",
                many.len(),
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ))
            .hint("give more characters of the id, or the full id"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, name: &str) -> Candidate {
        Candidate {
            id: id.into(),
            name: name.into(),
        }
    }

    fn items() -> Vec<Candidate> {
        vec![
            c("019ae4b2-7c1d-7a10-8f00-3b9c01d2e4f5", "ci"),
            c("019ae4b2-7c1d-7a10-8f00-a1b2c3d4e5f6", "deploy"),
            c("019ae4b2-7c1d-7a10-8f00-a1b9c3d4e5f6", ""),
        ]
    }

    #[test]
    fn names_full_ids_and_unique_prefixes_resolve() {
        let i = items();
        assert_eq!(pick("API key", "ci", &i).unwrap(), i[0].id);
        assert_eq!(pick("API key", &i[1].id, &i).unwrap(), i[1].id);
        // The short id tables print (first 8 of the last group) and a prefix of it.
        assert_eq!(pick("API key", "3b9c01d2", &i).unwrap(), i[0].id);
        assert_eq!(pick("API key", "A1B2", &i).unwrap(), i[1].id);
    }

    #[test]
    fn ambiguous_prefix_lists_candidates_and_unknown_is_not_found() {
        let i = items();
        let e = pick("API key", "019ae4b2", &i).unwrap_err();
        assert_eq!(e.code, ExitCode::Usage);
        assert!(
            e.message.contains("matches 3 API keys") && e.message.contains("(deploy)"),
            "{}",
            e.message
        );
        let e = pick("API key", "a1b", &i).unwrap_err();
        assert!(e.message.contains("matches 2"), "{}", e.message);
        let e = pick("API key", "nope", &i).unwrap_err();
        assert_eq!(e.code, ExitCode::NotFound);
    }
}
