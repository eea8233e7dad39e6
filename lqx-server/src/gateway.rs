//! The Connect protocol's unary JSON on the gRPC port: `POST /package.Service/Method` with
//! `Content-Type: application/json` and a canonical proto3 JSON body. Each route decodes the
//! body into the same prost type gRPC uses (pbjson serde), calls the same service
//! implementation, and encodes the answer; errors become Connect error JSON. Streaming RPCs
//! are gRPC-only.

use crate::status::{connect_error_body, connect_http_status};
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde::{Serialize, de::DeserializeOwned};
use std::future::Future;
use tonic::{Code, Status};

pub type HttpResponse = Response<axum::body::Body>;

/// Decodes, calls and encodes one unary RPC.
pub async fn unary<Req, Resp, F, Fut>(body: Bytes, ext: http::Extensions, call: F) -> HttpResponse
where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: FnOnce(tonic::Request<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
{
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        Bytes::from_static(b"{}")
    } else {
        body
    };
    let msg: Req = match serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&body)) {
        Ok(m) => m,
        Err(e) => {
            // Name the field: the inner message alone can be as vague as "data did not
            // match any variant of untagged enum".
            let field = e.path().to_string();
            let msg = if field == "." {
                format!("invalid JSON body: {}", e.inner())
            } else {
                format!("invalid JSON body: field {field}: {}", e.inner())
            };
            return error(Code::InvalidArgument, &msg);
        }
    };
    let mut req = tonic::Request::new(msg);
    *req.extensions_mut() = ext;
    match call(req).await {
        Ok(resp) => match serde_json::to_vec(resp.get_ref()) {
            Ok(json) => {
                let mut r = Response::new(axum::body::Body::from(json));
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                r
            }
            Err(e) => {
                tracing::error!(error = %e, "encoding a response as JSON failed");
                error(Code::Internal, "internal error")
            }
        },
        Err(s) => status_response(&s),
    }
}

/// A Connect error response for a gRPC status (with Retry-After when the status has one).
pub fn status_response(s: &Status) -> HttpResponse {
    let mut r = error(s.code(), s.message());
    if let Some(v) = s.metadata().get("retry-after")
        && let Ok(v) = HeaderValue::from_bytes(v.as_bytes())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// The Connect code of an error response (several codes share an HTTP status).
#[derive(Debug, Clone, Copy)]
pub struct ConnectCode(pub Code);

pub fn error(code: Code, message: &str) -> HttpResponse {
    let mut r = Response::new(axum::body::Body::from(connect_error_body(code, message)));
    *r.status_mut() = connect_http_status(code);
    r.extensions_mut().insert(ConnectCode(code));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

pub fn unsupported_media_type(got: &str) -> HttpResponse {
    let mut r = error(
        Code::InvalidArgument,
        &format!("unsupported content type {got:?}: use application/json (Connect) or application/grpc"),
    );
    *r.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
    r
}

/// Routes a Connect call to `$svc.$method` for every listed RPC of one service; `None` when
/// the method is not one of them.
#[macro_export]
macro_rules! connect_routes {
    ($method:expr, $body:expr, $ext:expr, $svc:expr, $Trait:path, { $($name:literal => $fn:ident),* $(,)? }) => {
        match $method {
            $($name => {
                let svc = $svc.clone();
                Some($crate::gateway::unary($body, $ext, move |r| async move { <_ as $Trait>::$fn(&*svc, r).await }).await)
            })*
            _ => None,
        }
    };
}
