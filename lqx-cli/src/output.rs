//! The one printer every command writes through. It knows the output format
//! (`-o table|wide|json|yaml|name`), `--columns`, `--no-headers`, whether stdout/stderr are
//! terminals and whether colour is wanted (`NO_COLOR`). Data goes to stdout; messages,
//! warnings and progress go to stderr. A closed stdout pipe ends the process quietly.

use std::io::{IsTerminal, Write};

use serde::Serialize;

use crate::error::{CliError, CliResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns sized to the terminal
    Table,
    /// The table with more columns
    Wide,
    /// JSON (stable snake_case field names; lists are arrays of the objects `get` prints)
    Json,
    /// YAML of the same objects as JSON
    Yaml,
    /// One name (or id) per line, for scripts
    Name,
}

/// A column of a resource's table. `wide` columns show only with `-o wide` (or `--columns`).
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub wide: bool,
}

pub const fn col(name: &'static str) -> Column {
    Column { name, wide: false }
}
pub const fn wide(name: &'static str) -> Column {
    Column { name, wide: true }
}

/// What the printer needs to show a resource in every format.
pub trait View: Serialize {
    /// Every column, in display order.
    fn columns() -> &'static [Column];
    /// The text of one cell; `column` is one of `columns()`' names.
    fn cell(&self, column: &str) -> String;
    /// What `-o name` prints: the name scripts pass back to other commands.
    fn name(&self) -> String;
}

#[derive(Debug, Clone)]
pub struct Printer {
    pub format: Format,
    pub columns: Option<Vec<String>>,
    pub no_headers: bool,
    pub color_stdout: bool,
    pub color_stderr: bool,
    pub stdout_tty: bool,
    pub stderr_tty: bool,
    /// Table width limit: `COLUMNS`, else the terminal's width; `None` (no terminal, or one
    /// that reports 0 columns) means unlimited: columns are never dropped or shortened.
    pub width: Option<usize>,
}

/// Colour only on a terminal and never with NO_COLOR set (to anything non-empty).
pub fn color_wanted(is_tty: bool, no_color: Option<&str>) -> bool {
    is_tty && no_color.is_none_or(|v| v.is_empty())
}

impl Printer {
    pub fn new(format: Format, columns: Option<Vec<String>>, no_headers: bool) -> Self {
        let stdout_tty = std::io::stdout().is_terminal();
        let stderr_tty = std::io::stderr().is_terminal();
        let no_color = std::env::var("NO_COLOR").ok();
        Printer {
            format,
            columns,
            no_headers,
            color_stdout: color_wanted(stdout_tty, no_color.as_deref()),
            color_stderr: color_wanted(stderr_tty, no_color.as_deref()),
            stdout_tty,
            stderr_tty,
            width: table_width(std::env::var("COLUMNS").ok().as_deref(), stdout_tty),
        }
    }

    /// A printer for tests: no colours, no terminal.
    #[cfg(test)]
    pub fn plain(format: Format) -> Self {
        Printer {
            format,
            columns: None,
            no_headers: false,
            color_stdout: false,
            color_stderr: false,
            stdout_tty: false,
            stderr_tty: false,
            width: None,
        }
    }

    pub fn is_structured(&self) -> bool {
        matches!(self.format, Format::Json | Format::Yaml)
    }

    pub fn list<T: View>(&self, items: &[T]) -> CliResult<()> {
        let s = self.render_list(items)?;
        out(&s);
        Ok(())
    }

    pub fn one<T: View>(&self, item: &T) -> CliResult<()> {
        let s = self.render_one(item)?;
        out(&s);
        Ok(())
    }

    pub fn render_list<T: View>(&self, items: &[T]) -> CliResult<String> {
        match self.format {
            Format::Json => Ok(json_pretty(&items)? + "\n"),
            Format::Yaml => yaml(&items),
            Format::Name => Ok(items.iter().map(|i| i.name() + "\n").collect()),
            Format::Table | Format::Wide => self.table(items),
        }
    }

    pub fn render_one<T: View>(&self, item: &T) -> CliResult<String> {
        match self.format {
            Format::Json => Ok(json_pretty(item)? + "\n"),
            Format::Yaml => yaml(item),
            Format::Name => Ok(item.name() + "\n"),
            Format::Table | Format::Wide => self.table(std::slice::from_ref(item)),
        }
    }

    /// The columns to show: `--columns` if given (validated), else by format.
    pub fn selected_columns<T: View>(&self) -> CliResult<Vec<&'static str>> {
        let all = T::columns();
        if let Some(wanted) = &self.columns {
            let mut out = Vec::new();
            for w in wanted
                .iter()
                .flat_map(|s| s.split(','))
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                let norm = w.to_ascii_uppercase().replace('_', "-");
                match all.iter().find(|c| c.name == norm) {
                    Some(c) => out.push(c.name),
                    None => {
                        return Err(CliError::usage(format!("Unknown column {w:?}")).hint(format!(
                            "columns: {}",
                            all.iter()
                                .map(|c| c.name.to_ascii_lowercase())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    }
                }
            }
            if out.is_empty() {
                return Err(CliError::usage("--columns names no column"));
            }
            return Ok(out);
        }
        let wide = self.format == Format::Wide;
        Ok(all.iter().filter(|c| wide || !c.wide).map(|c| c.name).collect())
    }

    fn table<T: View>(&self, items: &[T]) -> CliResult<String> {
        let cols = self.selected_columns::<T>()?;
        if items.is_empty() && self.no_headers {
            return Ok(String::new());
        }
        // Short ids only in the narrow table; `-o wide` and `--columns` print them whole.
        let short = self.format == Format::Table && self.columns.is_none();
        let rows: Vec<Vec<String>> = items
            .iter()
            .map(|item| {
                cols.iter()
                    .map(|c| {
                        let v = item.cell(c);
                        if short && is_id_column(c) { short_id(&v) } else { v }
                    })
                    .map(|v| one_line(&v))
                    .collect()
            })
            .collect();
        let header: Vec<String> = cols.iter().map(|c| c.to_string()).collect();
        let kept = fit_columns(&header, &rows, self.width, !self.no_headers);
        let mut s = String::new();
        let line = |cells: Vec<(usize, String)>, bold: bool| {
            let mut l = String::new();
            for (i, (w, text)) in cells.iter().enumerate() {
                let pad = w.saturating_sub(width_of(text));
                let last = i + 1 == cells.len();
                if bold {
                    l.push_str(&paint(true, "1", text));
                } else {
                    l.push_str(text);
                }
                if !last {
                    l.push_str(&" ".repeat(pad + GAP));
                }
            }
            l.trim_end().to_string() + "\n"
        };
        if !self.no_headers {
            s.push_str(&line(
                kept.iter().map(|k| (k.width, header[k.index].clone())).collect(),
                self.color_stdout,
            ));
        }
        for r in &rows {
            s.push_str(&line(
                kept.iter().map(|k| (k.width, truncate(&r[k.index], k.width))).collect(),
                false,
            ));
        }
        Ok(s)
    }

    /// One row of a table printed as a stream (`lqx watch`): the header before the first
    /// row, then each row in the widths of `t`, cut to the terminal width.
    pub fn stream_row<T: View>(&self, t: &mut StreamTable, item: &T) -> CliResult<()> {
        let cols = self.selected_columns::<T>()?;
        let short = self.format == Format::Table && self.columns.is_none();
        let cells: Vec<String> = cols
            .iter()
            .map(|c| {
                let v = item.cell(c);
                one_line(&if short && is_id_column(c) { short_id(&v) } else { v })
            })
            .collect();
        if t.widths.is_empty() {
            t.widths = cols.iter().map(|c| width_of(c).max(stream_min_width(c))).collect();
            if !self.no_headers {
                let header: Vec<String> = cols.iter().map(|c| c.to_string()).collect();
                let line = t.line(&header, self.width);
                out(&(if self.color_stdout {
                    paint(true, "1", &line)
                } else {
                    line
                } + "\n"));
            }
        }
        for (w, c) in t.widths.iter_mut().zip(&cells) {
            *w = (*w).max(width_of(c));
        }
        out(&(t.line(&cells, self.width) + "\n"));
        Ok(())
    }

    /// One line of data (a token, a secret shown once, a JSON event) to stdout.
    pub fn line(&self, s: &str) {
        out(&format!("{s}\n"));
    }

    /// A message for the person at the terminal, on stderr.
    pub fn info(&self, s: &str) {
        err_line(s);
    }

    pub fn warn(&self, s: &str) {
        let prefix = paint(self.color_stderr, "33;1", "warning:");
        err_line(&format!("{prefix} {s}"));
    }

    pub fn error(&self, e: &CliError, debug: bool) {
        if e.plain {
            err_line(&e.message);
        } else {
            let prefix = paint(self.color_stderr, "31;1", "error:");
            err_line(&format!("{prefix} {}", e.message));
        }
        if let Some(h) = &e.hint {
            let p = paint(self.color_stderr, "36;1", "hint:");
            err_line(&format!("{p} {h}"));
        }
        if debug {
            if let Some(src) = &e.source {
                for (i, cause) in src.chain().enumerate() {
                    err_line(&format!("  caused by ({i}): {cause}"));
                }
            }
            err_line(&format!("  exit code: {}", e.code.code()));
        }
    }
}

/// Spaces between table columns.
const GAP: usize = 3;
/// A long-text column is never squeezed below this (or its header).
const SQUEEZE_MIN: usize = 12;

/// The table width: `COLUMNS` when set to a positive number (scripts and tests pin it), else
/// the terminal's width on a terminal; a terminal that reports 0 columns, and no terminal,
/// give `None`: unlimited.
pub fn table_width(columns_env: Option<&str>, stdout_tty: bool) -> Option<usize> {
    if let Some(n) = columns_env
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return Some(n);
    }
    if stdout_tty {
        terminal_columns().filter(|n| *n > 0)
    } else {
        None
    }
}

#[cfg(unix)]
fn terminal_columns() -> Option<usize> {
    rustix::termios::tcgetwinsize(std::io::stdout())
        .ok()
        .map(|w| usize::from(w.ws_col))
}

#[cfg(not(unix))]
fn terminal_columns() -> Option<usize> {
    None
}

/// Columns that carry identity stay whole and are never dropped: the first one (the id or
/// name the rows are known by) and a NAME column.
fn is_key_column(index: usize, name: &str) -> bool {
    index == 0 || matches!(name, "NAME" | "USERNAME")
}

/// Free text that may be cut (with `…`) before any column is dropped.
fn is_squeezable(name: &str) -> bool {
    matches!(
        name,
        "REASON" | "MESSAGE" | "DESCRIPTION" | "NOTE" | "LABELS" | "TITLE" | "DETAIL" | "ERROR" | "URL" | "CONDITION"
    )
}

fn is_id_column(name: &str) -> bool {
    name == "ID" || name.ends_with("-ID") || matches!(name, "RESOURCE" | "OWNER")
}

/// The short form of a UUID for tables: the first 8 hex digits of its last group. Ids are
/// UUIDv7, whose leading digits are a timestamp shared by ids made close together; the last
/// group is random. Every command that takes an id accepts this (see `resolve`). Anything
/// that is not a UUID is returned as is.
pub fn short_id(s: &str) -> String {
    // `vm/<uuid>` (audit resources) keeps its type.
    if let Some((kind, id)) = s.rsplit_once('/') {
        return format!("{kind}/{}", short_id(id));
    }
    match uuid::Uuid::parse_str(s) {
        Ok(u) if s.len() == 36 => u.hyphenated().to_string()[24..32].to_string(),
        _ => s.to_string(),
    }
}

fn one_line(s: &str) -> String {
    if s.contains(['\n', '\r', '\t']) {
        s.split(['\n', '\r', '\t'])
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        s.to_string()
    }
}

fn width_of(s: &str) -> usize {
    s.chars().count()
}

/// Cuts `s` to `w` characters, the last one `…`.
fn truncate(s: &str, w: usize) -> String {
    if width_of(s) <= w {
        return s.to_string();
    }
    let mut t: String = s.chars().take(w.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// The column widths of a table printed row by row, whose rows cannot be measured first:
/// each column starts wide enough for most values and only grows, so rows stay aligned
/// (a value wider than any before moves the columns after it from that row on).
#[derive(Debug, Default)]
pub struct StreamTable {
    widths: Vec<usize>,
}

impl StreamTable {
    fn line(&self, cells: &[String], max: Option<usize>) -> String {
        let mut l = String::new();
        for (i, (w, text)) in self.widths.iter().zip(cells).enumerate() {
            l.push_str(text);
            if i + 1 < cells.len() {
                l.push_str(&" ".repeat(w.saturating_sub(width_of(text)) + GAP));
            }
        }
        let l = l.trim_end();
        match max {
            Some(m) => truncate(l, m),
            None => l.to_string(),
        }
    }
}

/// The starting width of a streamed column: a time, a sequence number, a name, an id.
fn stream_min_width(name: &str) -> usize {
    match name {
        "TIME" => 20,
        "SEQ" => 6,
        "NAME" => 20,
        _ => 10,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Kept {
    index: usize,
    width: usize,
}

/// Which columns to show and how wide, so a row never wraps: within `max`, long-text
/// columns are cut first (to `SQUEEZE_MIN`), then columns are dropped from the right,
/// never a key column (first, ID, NAME). Ids and names are never cut; if the key columns
/// alone are wider than `max` the line is simply long (the terminal may wrap it, the table
/// does not).
fn fit_columns(header: &[String], rows: &[Vec<String>], max: Option<usize>, with_header: bool) -> Vec<Kept> {
    let natural: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| width_of(&r[i]))
                .chain(with_header.then(|| width_of(&header[i])))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let all: Vec<Kept> = natural
        .iter()
        .enumerate()
        .map(|(index, &width)| Kept { index, width })
        .collect();
    let Some(max) = max else { return all };
    let min_of = |k: &Kept| {
        if is_squeezable(&header[k.index]) {
            k.width.min(SQUEEZE_MIN.max(width_of(&header[k.index])))
        } else {
            k.width
        }
    };
    let total =
        |ks: &[Kept], f: &dyn Fn(&Kept) -> usize| ks.iter().map(f).sum::<usize>() + GAP * ks.len().saturating_sub(1);
    let mut kept = all;
    while total(&kept, &min_of) > max {
        let Some(pos) = kept.iter().rposition(|k| !is_key_column(k.index, &header[k.index])) else {
            break;
        };
        kept.remove(pos);
    }
    let natural_total = total(&kept, &|k: &Kept| k.width);
    if natural_total <= max {
        return kept;
    }
    // Share what is left among the long-text columns, left to right.
    let mut slack = max.saturating_sub(total(&kept, &min_of));
    for k in &mut kept {
        let min = min_of(k);
        let grow = (k.width - min).min(slack);
        slack -= grow;
        k.width = min + grow;
    }
    kept
}

pub fn paint(on: bool, sgr: &str, text: &str) -> String {
    if on {
        format!("\x1b[{sgr}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

pub fn json_pretty<T: Serialize + ?Sized>(v: &T) -> CliResult<String> {
    serde_json::to_string_pretty(v).map_err(|e| CliError::general("Cannot encode JSON").with_source(e))
}

pub fn json_line<T: Serialize + ?Sized>(v: &T) -> CliResult<String> {
    serde_json::to_string(v).map_err(|e| CliError::general("Cannot encode JSON").with_source(e))
}

fn yaml<T: Serialize + ?Sized>(v: &T) -> CliResult<String> {
    serde_norway::to_string(v).map_err(|e| CliError::general("Cannot encode YAML").with_source(e))
}

/// Writes to stdout; a closed pipe (`lqx vm list | head -1`) ends the process quietly with
/// exit code 0 instead of a panic or an error message.
pub fn out(s: &str) {
    let mut o = std::io::stdout().lock();
    let r = o.write_all(s.as_bytes()).and_then(|_| o.flush());
    if let Err(e) = r {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        let _ = writeln!(std::io::stderr(), "error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// Writes a line to stderr, ignoring a closed stderr.
pub fn err_line(s: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{s}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Thing {
        name: String,
        size_mib: u64,
        note: String,
    }

    impl View for Thing {
        fn columns() -> &'static [Column] {
            const C: &[Column] = &[col("NAME"), col("SIZE"), wide("NOTE")];
            C
        }
        fn cell(&self, column: &str) -> String {
            match column {
                "NAME" => self.name.clone(),
                "SIZE" => crate::parse::format_mib(self.size_mib),
                "NOTE" => self.note.clone(),
                _ => String::new(),
            }
        }
        fn name(&self) -> String {
            self.name.clone()
        }
    }

    fn things() -> Vec<Thing> {
        vec![
            Thing {
                name: "web-1".into(),
                size_mib: 4096,
                note: "a".into(),
            },
            Thing {
                name: "db".into(),
                size_mib: 512,
                note: "longer note".into(),
            },
        ]
    }

    #[test]
    fn table_aligns_columns_and_hides_wide() {
        let s = Printer::plain(Format::Table).render_list(&things()).unwrap();
        assert_eq!(s, "NAME    SIZE\nweb-1   4GiB\ndb      512MiB\n");
        let s = Printer::plain(Format::Wide).render_list(&things()).unwrap();
        assert_eq!(s.lines().next().unwrap(), "NAME    SIZE     NOTE");
    }

    #[test]
    fn columns_and_no_headers() {
        let mut p = Printer::plain(Format::Table);
        p.columns = Some(vec!["note,name".into()]);
        p.no_headers = true;
        let s = p.render_list(&things()).unwrap();
        assert_eq!(s, "a             web-1\nlonger note   db\n");
        p.columns = Some(vec!["colour".into()]);
        let e = p.render_list(&things()).unwrap_err();
        assert_eq!(e.code.code(), 2);
        assert!(e.hint.unwrap().contains("name, size, note"));
    }

    #[test]
    fn json_list_is_array_of_get_objects() {
        let p = Printer::plain(Format::Json);
        let list: serde_json::Value = serde_json::from_str(&p.render_list(&things()).unwrap()).unwrap();
        let one: serde_json::Value = serde_json::from_str(&p.render_one(&things()[0]).unwrap()).unwrap();
        assert_eq!(list[0], one);
        assert_eq!(one["size_mib"], 4096);
        assert_eq!(one["name"], "web-1");
    }

    #[test]
    fn yaml_and_name_output() {
        let y = Printer::plain(Format::Yaml).render_list(&things()).unwrap();
        assert!(y.starts_with("- name: web-1\n"), "{y}");
        let n = Printer::plain(Format::Name).render_list(&things()).unwrap();
        assert_eq!(n, "web-1\ndb\n");
    }

    fn long_things() -> Vec<Thing> {
        vec![Thing {
            name: "web-frontend-production-eu-west-01".into(),
            size_mib: 4096,
            note: "a note long enough that it must be cut somewhere to fit the width".into(),
        }]
    }

    #[test]
    fn tables_fit_the_width_without_wrapping_or_splitting_names() {
        let mut p = Printer::plain(Format::Wide);
        p.width = Some(60);
        let s = p.render_list(&long_things()).unwrap();
        assert_eq!(s.lines().count(), 2, "one line per row:\n{s}");
        assert!(s.lines().all(|l| l.chars().count() <= 60), "{s}");
        assert!(s.contains("web-frontend-production-eu-west-01"), "{s}");
        assert!(s.contains('…'), "long text is cut:\n{s}");
        // Narrower than the name and size: the note goes, the name stays whole.
        p.width = Some(30);
        let s = p.render_list(&long_things()).unwrap();
        assert_eq!(s.lines().next().unwrap(), "NAME", "{s}");
        assert!(s.contains("web-frontend-production-eu-west-01"), "{s}");
        // No limit (no terminal, or a terminal that says 0 columns): everything as is.
        p.width = None;
        let s = p.render_list(&long_things()).unwrap();
        assert!(s.contains("cut somewhere to fit the width"), "{s}");
    }

    #[test]
    fn width_comes_from_columns_or_a_terminal_that_knows_it() {
        assert_eq!(table_width(Some("80"), false), Some(80));
        assert_eq!(table_width(Some("0"), false), None);
        assert_eq!(table_width(Some("junk"), false), None);
        assert_eq!(table_width(None, false), None);
    }

    #[test]
    fn short_ids_are_the_random_tail() {
        assert_eq!(short_id("019ae4b2-7c1d-7a10-8f00-3b9c01d2e4f5"), "3b9c01d2");
        assert_eq!(short_id("vm/019ae4b2-7c1d-7a10-8f00-3b9c01d2e4f5"), "vm/3b9c01d2");
        assert_eq!(short_id("node-1"), "node-1");
        assert_eq!(one_line("a\nb\tc"), "a b c");
    }

    #[test]
    fn colour_rules() {
        assert!(color_wanted(true, None));
        assert!(!color_wanted(false, None));
        assert!(!color_wanted(true, Some("1")));
        assert!(color_wanted(true, Some("")));
    }
}
