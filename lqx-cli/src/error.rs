//! The CLI's error and the one place that turns errors into exit codes (`lqx help exit-codes`):
//! 0 ok; 1 error; 2 usage; 3 not found; 4 not authenticated / token expired;
//! 5 permission denied; 6 conflict or precondition failed (also no room: resource exhausted);
//! 7 timed out (waiting, or an RPC deadline).

use std::fmt;

/// Exit codes of `lqx`, documented in `lqx help exit-codes` and the man page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    Ok = 0,
    Error = 1,
    Usage = 2,
    NotFound = 3,
    Unauthenticated = 4,
    PermissionDenied = 5,
    Conflict = 6,
    Timeout = 7,
}

impl ExitCode {
    pub const ALL: [ExitCode; 8] = [
        ExitCode::Ok,
        ExitCode::Error,
        ExitCode::Usage,
        ExitCode::NotFound,
        ExitCode::Unauthenticated,
        ExitCode::PermissionDenied,
        ExitCode::Conflict,
        ExitCode::Timeout,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn meaning(self) -> &'static str {
        match self {
            ExitCode::Ok => "success",
            ExitCode::Error => "error (server unreachable, internal error, invalid server answer, ...)",
            ExitCode::Usage => {
                "usage error: unknown command or flag, invalid value, ambiguous id prefix, declined confirmation"
            }
            ExitCode::NotFound => "not found: the VM, node, user, alert, ... does not exist",
            ExitCode::Unauthenticated => "not authenticated or token expired: run `lqx login`",
            ExitCode::PermissionDenied => "permission denied: your role may not do this",
            ExitCode::Conflict => {
                "conflict or precondition failed (already exists, wrong state, aborted, no room or quota)"
            }
            ExitCode::Timeout => "timed out (--wait, --timeout, or an RPC deadline)",
        }
    }

    /// The table printed by `lqx help exit-codes` and included in the man page.
    pub fn table() -> String {
        let mut s = String::from("EXIT CODES\n");
        for c in Self::ALL {
            s.push_str(&format!("  {}  {}\n", c.code(), c.meaning()));
        }
        s
    }

    /// The single mapping of gRPC status codes to exit codes.
    pub fn from_grpc(code: tonic::Code) -> ExitCode {
        use tonic::Code as C;
        match code {
            C::Ok => ExitCode::Ok,
            C::InvalidArgument | C::OutOfRange => ExitCode::Usage,
            C::NotFound => ExitCode::NotFound,
            C::Unauthenticated => ExitCode::Unauthenticated,
            C::PermissionDenied => ExitCode::PermissionDenied,
            // No room (capacity, quota, rate): the request is valid, the cluster's state refuses it.
            C::AlreadyExists | C::FailedPrecondition | C::Aborted | C::ResourceExhausted => ExitCode::Conflict,
            C::DeadlineExceeded => ExitCode::Timeout,
            C::Cancelled | C::Unknown | C::Unimplemented | C::Internal | C::Unavailable | C::DataLoss => {
                ExitCode::Error
            }
        }
    }
}

/// An error ready to be shown: a one-line message, an optional hint, an exit code and the
/// cause chain (printed with `--debug`).
#[derive(Debug)]
pub struct CliError {
    pub code: ExitCode,
    pub message: String,
    pub hint: Option<String>,
    pub source: Option<anyhow::Error>,
    /// Printed without the `error:` prefix (a declined confirmation is not a failure).
    pub plain: bool,
}

pub type CliResult<T> = Result<T, CliError>;

impl CliError {
    pub fn new(code: ExitCode, message: impl Into<String>) -> Self {
        CliError {
            code,
            message: message.into(),
            hint: None,
            source: None,
            plain: false,
        }
    }
    /// A declined confirmation: nothing was done. Exit 2 like gh's cancel (and like the
    /// refusal without `--yes`), so a script never reads it as success; no `error:` prefix.
    pub fn cancelled() -> Self {
        let mut e = Self::new(ExitCode::Usage, "Cancelled; nothing was changed");
        e.plain = true;
        e
    }
    pub fn general(message: impl Into<String>) -> Self {
        Self::new(ExitCode::Error, message)
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ExitCode::Usage, message)
    }
    pub fn not_logged_in(server: &str) -> Self {
        Self::new(ExitCode::Unauthenticated, format!("Not logged in to {server}"))
            .hint("run `lqx login`, or set LQX_TOKEN to an API key")
    }
    pub fn timeout(what: impl Into<String>) -> Self {
        Self::new(ExitCode::Timeout, what).hint("raise --timeout, or use --no-wait and check later")
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    pub fn with_source(mut self, source: impl Into<anyhow::Error>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Builds the error for a failed RPC, with a hint by code.
    pub fn from_status(status: tonic::Status, server: &str) -> Self {
        // tonic's client-side deadline (Endpoint::timeout) ends a call as `cancelled`
        // "Timeout expired": that is a timeout, exit 7.
        if status.code() == tonic::Code::Cancelled && is_client_timeout(&status) {
            return CliError::new(
                ExitCode::Timeout,
                format!("No answer from {server} within the RPC deadline"),
            )
            .hint("raise --timeout (LQX_TIMEOUT), or check the server's load")
            .with_source(anyhow::Error::msg(format!("{status:?}")));
        }
        let code = ExitCode::from_grpc(status.code());
        let mut msg = if status.message().is_empty() {
            format!("{:?}", status.code())
        } else {
            status.message().to_string()
        };
        if status.code() == tonic::Code::Unavailable {
            msg = format!("Cannot reach {server}: {msg}");
        }
        let hint = match status.code() {
            tonic::Code::Unauthenticated => Some("run `lqx login` (or set LQX_TOKEN)".to_string()),
            // A disabled account (the server's "Account NAME is disabled; ..."): no role helps.
            tonic::Code::PermissionDenied if status.message().contains(" is disabled;") => {
                Some("logging in again does not help: an administrator must enable the account".to_string())
            }
            tonic::Code::PermissionDenied => {
                Some("ask an admin for a role that allows this (`lqx auth status` shows yours)".to_string())
            }
            tonic::Code::Unavailable => Some(format!("is lqx-server running at {server}? set --server or LQX_SERVER")),
            tonic::Code::Unimplemented => {
                Some(format!("the server at {server} does not offer this; is it up to date?"))
            }
            _ => None,
        };
        let mut e = CliError::new(code, msg);
        e.hint = hint;
        e.with_source(anyhow::Error::msg(format!("{status:?}")))
    }
}

fn is_client_timeout(status: &tonic::Status) -> bool {
    use std::error::Error;
    let mut src: Option<&(dyn Error + 'static)> = status.source();
    while let Some(e) = src {
        if e.is::<tonic::TimeoutExpired>() {
            return true;
        }
        src = e.source();
    }
    status.message() == "Timeout expired"
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<crate::parse::ParseError> for CliError {
    fn from(e: crate::parse::ParseError) -> Self {
        CliError::usage(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn grpc_codes_map_to_cli_exit_codes() {
        let cases = [
            (Code::Ok, 0),
            (Code::Unknown, 1),
            (Code::Internal, 1),
            (Code::Unavailable, 1),
            (Code::ResourceExhausted, 6),
            (Code::InvalidArgument, 2),
            (Code::NotFound, 3),
            (Code::Unauthenticated, 4),
            (Code::PermissionDenied, 5),
            (Code::FailedPrecondition, 6),
            (Code::AlreadyExists, 6),
            (Code::Aborted, 6),
            (Code::DeadlineExceeded, 7),
        ];
        for (grpc, exit) in cases {
            assert_eq!(ExitCode::from_grpc(grpc).code(), exit, "{grpc:?}");
        }
    }

    #[test]
    fn status_errors_carry_message_and_hint() {
        let e = CliError::from_status(tonic::Status::not_found("VM \"web\" not found"), "http://x");
        assert_eq!(e.code, ExitCode::NotFound);
        assert_eq!(e.message, "VM \"web\" not found");
        let e = CliError::from_status(tonic::Status::unauthenticated(""), "http://x");
        assert_eq!(e.code.code(), 4);
        assert!(e.hint.unwrap().contains("lqx login"));
        let e = CliError::from_status(tonic::Status::unavailable("connect"), "http://x:1");
        assert!(e.hint.unwrap().contains("http://x:1"));
    }

    #[test]
    fn client_deadline_is_a_timeout_and_declining_is_not_an_error() {
        let e = CliError::from_status(tonic::Status::cancelled("Timeout expired"), "http://x");
        assert_eq!(e.code.code(), 7, "{}", e.message);
        let e = CliError::from_status(tonic::Status::cancelled("client went away"), "http://x");
        assert_eq!(e.code.code(), 1);
        let e = CliError::from_status(tonic::Status::resource_exhausted("no room for web"), "http://x");
        assert_eq!(e.code.code(), 6);
        let c = CliError::cancelled();
        assert!(c.plain && c.code == ExitCode::Usage);
    }

    #[test]
    fn exit_code_table_lists_every_code() {
        let t = ExitCode::table();
        for c in 0..=7 {
            assert!(t.contains(&format!("  {c}  ")), "{t}");
        }
    }
}
