//! What every command gets: the validated global options, the printer, the config, and
//! helpers for sessions, prompts, confirmations and waiting with a spinner.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::time::Instant;

use crate::args::{GlobalArgs, WaitArgs, YesArgs};
use crate::client::{Session, TokenSource};
use crate::config::{self, Config, Context, DEFAULT_SERVER};
use crate::creds::{Credentials, TokenKind, TokenStore};
use crate::error::{CliError, CliResult};
use crate::output::{Format, Printer};

pub struct App {
    pub global: GlobalArgs,
    pub printer: Printer,
    pub config_dir: PathBuf,
    pub config: Config,
    pub started: Instant,
}

/// The server and context a command talks to.
#[derive(Debug, Clone)]
pub struct Target {
    pub server: String,
    pub context_name: Option<String>,
    pub context: Option<Context>,
}

impl App {
    pub fn new(global: GlobalArgs) -> CliResult<App> {
        let printer = Printer::new(
            global.output.unwrap_or(Format::Table),
            global.columns.clone(),
            global.no_headers,
        );
        let config_dir = config::config_dir()?;
        let config = Config::load(&config_dir)?;
        Ok(App {
            global,
            printer,
            config_dir,
            config,
            started: Instant::now(),
        })
    }

    /// Server: `--server`/`LQX_SERVER`, else the selected context's, else the default.
    pub fn target(&self) -> CliResult<Target> {
        let selected = self.config.selected(self.global.context.as_deref())?;
        let (context_name, context) = match selected {
            Some((n, c)) => (Some(n), Some(c)),
            None => (None, None),
        };
        let server = match (&self.global.server, &context) {
            (Some(s), _) => config::normalize_server(s)?,
            (None, Some(c)) => c.server.clone(),
            (None, None) => DEFAULT_SERVER.to_string(),
        };
        // A context only applies to its own server.
        let same = context.as_ref().is_some_and(|c| c.server == server);
        if same {
            Ok(Target {
                server,
                context_name,
                context,
            })
        } else {
            let by_server = self.config.contexts.iter().find(|(_, c)| c.server == server);
            Ok(Target {
                server,
                context_name: by_server.map(|(n, _)| n.clone()),
                context: by_server.map(|(_, c)| c.clone()),
            })
        }
    }

    pub fn ca_cert(&self, t: &Target) -> Option<PathBuf> {
        self.global
            .ca_cert
            .clone()
            .or_else(|| t.context.as_ref().and_then(|c| c.ca_cert.clone()))
    }

    /// The token store of a context, if it has a user to key it by.
    pub fn store_for(&self, t: &Target) -> Option<TokenStore> {
        let ctx = t.context.as_ref()?;
        let name = t.context_name.as_deref()?;
        let account = ctx.username.clone().unwrap_or_else(|| name.to_string());
        Some(TokenStore::new(
            ctx.token_storage,
            &ctx.server,
            &account,
            name,
            &self.config_dir,
        ))
    }

    /// A session with credentials: `LQX_TOKEN` first, else the context's stored token.
    /// Without any, commands fail with exit code 4 and a hint to log in.
    pub fn session(&self) -> CliResult<Session> {
        let t = self.target()?;
        let (creds, source) = self.credentials(&t)?;
        if creds.is_none() {
            return Err(CliError::not_logged_in(&t.server));
        }
        let mut s = Session::new(t.server.clone(), self.ca_cert(&t), creds, source, self.global.timeout)?;
        s.project = self.project(&t);
        Ok(s)
    }

    /// The project to act in: `--project`/`LQX_PROJECT`, else the context's default.
    pub fn project(&self, t: &Target) -> Option<String> {
        self.global
            .project
            .clone()
            .filter(|p| !p.trim().is_empty())
            .or_else(|| t.context.as_ref().and_then(|c| c.project.clone()))
    }

    /// A session without credentials (login).
    pub fn anonymous_session(&self, server: &str, ca_cert: Option<PathBuf>) -> CliResult<Session> {
        let mut s = Session::new(
            server.to_string(),
            ca_cert,
            None,
            TokenSource::None,
            self.global.timeout,
        )?;
        s.logging_in = true;
        Ok(s)
    }

    pub fn credentials(&self, t: &Target) -> CliResult<(Option<Credentials>, TokenSource)> {
        if let Some(tok) = std::env::var("LQX_TOKEN").ok().filter(|s| !s.trim().is_empty()) {
            let creds = Credentials {
                access_token: tok.trim().to_string(),
                refresh_token: None,
                access_expires_at: None,
                refresh_expires_at: None,
                username: None,
                role: None,
                kind: TokenKind::ApiKey,
            };
            return Ok((Some(creds), TokenSource::Env));
        }
        match self.store_for(t) {
            Some(store) => {
                let creds = store.load()?;
                Ok((creds, TokenSource::Store(store)))
            }
            None => Ok((None, TokenSource::None)),
        }
    }

    /// Prompts are possible: stdin and stderr are terminals and `--no-input` is not set.
    pub fn interactive(&self) -> bool {
        !self.global.no_input && std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
    }

    /// Refuses a destructive command that could never be confirmed (no `--yes`, no
    /// terminal) before any lookup is made.
    pub fn can_confirm(&self, what: &str, yes: YesArgs) -> CliResult<()> {
        if yes.yes || self.interactive() {
            return Ok(());
        }
        Err(
            CliError::usage(format!("{what}: refusing without --yes when not interactive"))
                .hint("add --yes to confirm"),
        )
    }

    /// Destructive commands: `--yes`, or a y/N prompt on a terminal; otherwise refuse.
    pub fn confirm(&self, question: &str, yes: YesArgs) -> CliResult<()> {
        if yes.yes {
            return Ok(());
        }
        if !self.interactive() {
            return Err(
                CliError::usage(format!("{question} Refusing without --yes when not interactive"))
                    .hint("add --yes to confirm"),
            );
        }
        let answer = self.prompt_line(&format!("{question} [y/N] "))?;
        if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            Ok(())
        } else {
            Err(CliError::cancelled())
        }
    }

    pub fn prompt_line(&self, prompt: &str) -> CliResult<String> {
        if !self.interactive() {
            return Err(CliError::usage(format!(
                "{} is needed, but there is no terminal to ask",
                prompt.trim_end_matches([':', ' '])
            )));
        }
        let mut err = std::io::stderr();
        let _ = write!(err, "{prompt}");
        let _ = err.flush();
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::general("Cannot read from the terminal").with_source(e))?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }

    /// A secret from a hidden prompt on a terminal; never from a flag value.
    pub fn prompt_secret(&self, prompt: &str, stdin_flag: &str) -> CliResult<String> {
        if !self.interactive() {
            return Err(CliError::usage("A password is needed, but there is no terminal to ask")
                .hint(format!("pass it on stdin with {stdin_flag}")));
        }
        let s = rpassword::prompt_password(prompt)
            .map_err(|e| CliError::general("Cannot read the password").with_source(e))?;
        Ok(s)
    }

    /// Should a long operation wait? Yes unless `--no-wait` (or `LQX_WAIT=0`): the same in a
    /// script as at a terminal, so a cron job sees the operation finished (or exit 7).
    pub fn wants_wait(&self, w: WaitArgs) -> bool {
        w.waits()
    }

    /// Time left of `--timeout`, counted from the start of the command.
    pub fn remaining(&self) -> Duration {
        self.global.timeout.saturating_sub(self.started.elapsed())
    }

    pub fn waiter(&self, what: impl Into<String>) -> Waiter {
        let what = what.into();
        let bar = if self.printer.stderr_tty {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.set_message(what.clone());
            b.enable_steady_tick(Duration::from_millis(120));
            Some(b)
        } else {
            None
        };
        Waiter {
            what,
            bar,
            deadline: self.started + self.global.timeout,
            timeout: self.global.timeout,
            interval: Duration::from_millis(500),
        }
    }
}

/// Polls until done, showing a spinner on a terminal; past `--timeout` it fails with exit
/// code 7.
pub struct Waiter {
    what: String,
    bar: Option<ProgressBar>,
    deadline: Instant,
    timeout: Duration,
    interval: Duration,
}

impl Waiter {
    /// Not done yet: show `status`, sleep, and fail once the deadline has passed.
    pub async fn pending(&mut self, status: &str) -> CliResult<()> {
        if let Some(b) = &self.bar {
            b.set_message(format!("{} ({status})", self.what));
        }
        let now = Instant::now();
        if now >= self.deadline {
            self.finish();
            return Err(CliError::timeout(format!(
                "Timed out after {} {} (last: {status})",
                humantime::format_duration(self.timeout),
                self.what
            )));
        }
        tokio::time::sleep(self.interval.min(self.deadline - now)).await;
        // Back off gently up to 2 s between polls.
        self.interval = (self.interval * 3 / 2).min(Duration::from_secs(2));
        Ok(())
    }

    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Reads one line from stdin (for `--password-stdin`, `--with-token`, `--secret-stdin`).
pub fn read_stdin_line(what: &str) -> CliResult<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::general(format!("Cannot read the {what} from stdin")).with_source(e))?;
    let s = line.trim_end_matches(['\r', '\n']).to_string();
    if s.is_empty() {
        return Err(CliError::usage(format!("No {what} on stdin")));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waiter_times_out_with_exit_7() {
        let mut w = Waiter {
            what: "waiting for web to be running".into(),
            bar: None,
            deadline: Instant::now() + Duration::from_secs(3),
            timeout: Duration::from_secs(3),
            interval: Duration::from_millis(500),
        };
        let mut polls = 0;
        let err = loop {
            match w.pending("starting").await {
                Ok(()) => polls += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(err.code.code(), 7);
        assert!(
            err.message.contains("3s") && err.message.contains("starting"),
            "{}",
            err.message
        );
        assert!((3..10).contains(&polls), "{polls}");
    }
}
