//! `lqx completion`, `lqx help [TOPIC]`, and the hidden `lqx __generate-docs DIR` that
//! writes the committed completions/ and man/ files.

use std::path::Path;

use clap::CommandFactory;

use crate::cli::{Cli, Shell};
use crate::error::{CliError, CliResult, ExitCode};
use crate::output::out;

fn shell_name(s: Shell) -> &'static str {
    match s {
        Shell::Bash => "bash",
        Shell::Zsh => "zsh",
        Shell::Fish => "fish",
        Shell::Powershell => "powershell",
        Shell::Elvish => "elvish",
    }
}

/// The shell's registration script: it asks `lqx` itself for candidates at each TAB
/// (`crate::complete`), so VM, node and API-key names complete too.
pub fn completion_script(shell: Shell) -> String {
    crate::complete::registration(shell_name(shell))
}

pub fn completion(shell: Shell) -> CliResult<()> {
    out(&completion_script(shell));
    Ok(())
}

pub fn help(topic: &[String]) -> CliResult<()> {
    if topic.len() == 1 && topic[0] == "exit-codes" {
        out(&ExitCode::table());
        return Ok(());
    }
    let mut cmd = Cli::command();
    cmd.build();
    let mut cur = &mut cmd;
    for t in topic {
        match cur.find_subcommand_mut(t) {
            Some(c) => cur = c,
            None => {
                return Err(CliError::usage(format!("No help topic {:?}", topic.join(" ")))
                    .hint("`lqx --help` lists the commands; `lqx help exit-codes` the exit codes"));
            }
        }
    }
    out(&cur.render_long_help().to_string());
    Ok(())
}

/// Files of completions/ by shell.
pub const COMPLETION_FILES: [(Shell, &str); 5] = [
    (Shell::Bash, "lqx.bash"),
    (Shell::Zsh, "_lqx"),
    (Shell::Fish, "lqx.fish"),
    (Shell::Powershell, "_lqx.ps1"),
    (Shell::Elvish, "lqx.elv"),
];

pub fn generate(root: &Path) -> CliResult<()> {
    let fail =
        |e: std::io::Error| CliError::general(format!("Cannot write docs under {}", root.display())).with_source(e);
    let comp = root.join("completions");
    let man = root.join("man");
    std::fs::create_dir_all(&comp).map_err(fail)?;
    std::fs::create_dir_all(&man).map_err(fail)?;
    for (shell, file) in COMPLETION_FILES {
        std::fs::write(comp.join(file), completion_script(shell)).map_err(fail)?;
    }
    let mut cmd = Cli::command();
    cmd.build();
    write_man(&cmd, "lqx", &man).map_err(fail)?;
    crate::output::err_line(&format!("wrote {} and {}", comp.display(), man.display()));
    Ok(())
}

/// One page per command: lqx.1, lqx-vm.1, lqx-vm-create.1, ... (hidden commands skipped).
fn write_man(cmd: &clap::Command, name: &str, dir: &Path) -> std::io::Result<()> {
    let page_cmd = cmd.clone().name(name.to_string()).bin_name(name.replace('-', " "));
    let mut buf = Vec::new();
    if name == "lqx" {
        root_man(page_cmd, &mut buf)?;
    } else {
        clap_mangen::Man::new(page_cmd).render(&mut buf)?;
    }
    std::fs::write(dir.join(format!("{name}.1")), buf)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_man(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}

/// lqx.1 with proper ENVIRONMENT and EXIT STATUS sections instead of the help epilogue.
fn root_man(cmd: clap::Command, w: &mut Vec<u8>) -> std::io::Result<()> {
    use clap_mangen::roff::{Roff, bold, roman};
    let man = clap_mangen::Man::new(cmd.after_long_help(None::<&str>));
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    man.render_options_section(w)?;
    man.render_subcommands_section(w)?;
    let mut r = Roff::new();
    r.control("SH", ["ENVIRONMENT"]);
    for (var, what) in crate::cli::ENVIRONMENT {
        r.control("TP", []).text([bold(*var)]).text([roman(*what)]);
    }
    r.control("SH", ["EXIT STATUS"]);
    for c in ExitCode::ALL {
        r.control("TP", [])
            .text([bold(c.code().to_string())])
            .text([roman(c.meaning())]);
    }
    r.control("SH", ["FILES"]);
    r.control("TP", [])
        .text([bold("$LQX_CONFIG_DIR/config.toml")])
        .text([roman(
            "contexts: server URL, username, token storage, CA certificate (default dir: ~/.config/lqx)",
        )]);
    r.control("TP", []).text([bold("$LQX_CONFIG_DIR/credentials/CONTEXT.json")]).text([roman(
        "tokens stored with --insecure-storage (mode 0600); otherwise tokens are in the OS keyring, service lqx:SERVER",
    )]);
    r.to_writer(w)?;
    man.render_version_section(w)
}
