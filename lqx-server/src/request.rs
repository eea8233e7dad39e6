//! What the edge knows about one request and its answer, shared by the listener
//! (`server`), the auth layer (`authn`) and the services: the client's address, error
//! answers made before a service runs, and the result code of an answer.

use crate::gateway;
use axum::body::Body;
use http::{Response, StatusCode, header};
use std::net::SocketAddr;
use tonic::Code;

/// The client's address, for audit and throttling.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// A trailers-only gRPC error response.
pub fn grpc_error(code: Code, message: &str) -> Response<Body> {
    let status = tonic::Status::new(code, message);
    let mut r = Response::new(Body::empty());
    r.headers_mut()
        .insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/grpc"));
    let _ = status.add_header(r.headers_mut());
    r
}

/// The answer to a request that ran out of time.
pub fn timed_out(grpc: bool) -> Response<Body> {
    let msg = "request timed out";
    if grpc {
        grpc_error(Code::DeadlineExceeded, msg)
    } else {
        gateway::error(Code::DeadlineExceeded, msg)
    }
}

/// The result code of an answer, as metrics and the audit log name it.
pub fn result_code(resp: &Response<Body>, grpc: bool) -> &'static str {
    if grpc {
        // Errors are trailers-only (grpc-status in the headers); success sends it later.
        match resp
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i32>().ok())
        {
            Some(c) => crate::status::connect_code(Code::from_i32(c)),
            None => "ok",
        }
    } else if let Some(gateway::ConnectCode(c)) = resp.extensions().get() {
        crate::status::connect_code(*c)
    } else {
        match resp.status() {
            StatusCode::OK => "ok",
            StatusCode::BAD_REQUEST => "invalid_argument",
            StatusCode::UNAUTHORIZED => "unauthenticated",
            StatusCode::FORBIDDEN => "permission_denied",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::CONFLICT => "conflict",
            StatusCode::PRECONDITION_FAILED => "failed_precondition",
            StatusCode::TOO_MANY_REQUESTS => "resource_exhausted",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            StatusCode::GATEWAY_TIMEOUT => "deadline_exceeded",
            _ => "internal",
        }
    }
}
