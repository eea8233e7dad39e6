//! The one mapping from lqx errors to gRPC status codes and Connect error JSON.

use http::StatusCode;
use lqx_core::{Error, ErrorKind};
use tonic::{Code, Status};

pub fn code(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::AlreadyExists => Code::AlreadyExists,
        ErrorKind::InvalidArgument => Code::InvalidArgument,
        ErrorKind::FailedPrecondition => Code::FailedPrecondition,
        ErrorKind::Aborted => Code::Aborted,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
        ErrorKind::Unauthenticated => Code::Unauthenticated,
        ErrorKind::ResourceExhausted => Code::ResourceExhausted,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::DeadlineExceeded => Code::DeadlineExceeded,
        ErrorKind::Internal => Code::Internal,
    }
}

/// Converts an lqx error to a gRPC status, logging internal causes (never sent).
pub fn to_status(e: Error) -> Status {
    if let Some(src) = &e.source {
        if e.kind == ErrorKind::Internal {
            tracing::error!(error = format!("{src:#}"), "internal error");
        } else {
            tracing::debug!(error = format!("{src:#}"), kind = e.kind.as_str(), "request failed");
        }
    }
    let mut s = Status::new(code(e.kind), e.message);
    if let Some(secs) = e.retry_after
        && let Ok(v) = secs.to_string().parse()
    {
        s.metadata_mut().insert("retry-after", v);
    }
    s
}

/// Connect protocol code name for a gRPC code.
pub fn connect_code(c: Code) -> &'static str {
    match c {
        Code::Ok => "ok",
        Code::Cancelled => "canceled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// HTTP status of a Connect error, per the Connect protocol's table.
pub fn connect_http_status(c: Code) -> StatusCode {
    match c {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound | Code::Unimplemented => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The Connect error body: `{"code":"not_found","message":"..."}`.
pub fn connect_error_body(c: Code, message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "code": connect_code(c), "message": message })).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_messages_hide_their_cause() {
        let s = to_status(Error::internal(anyhow::anyhow!("SELECT secret FROM t")));
        assert_eq!(s.code(), Code::Internal);
        assert!(!s.message().contains("secret"));
    }

    #[test]
    fn connect_statuses() {
        assert_eq!(connect_http_status(Code::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(connect_http_status(Code::Unauthenticated), StatusCode::UNAUTHORIZED);
        assert_eq!(
            connect_http_status(Code::FailedPrecondition),
            StatusCode::PRECONDITION_FAILED
        );
        assert_eq!(connect_code(Code::ResourceExhausted), "resource_exhausted");
        let retry = to_status(Error::exhausted("slow down").with_retry_after(7));
        assert_eq!(retry.metadata().get("retry-after").unwrap(), "7");
    }
}
