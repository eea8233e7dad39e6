//! Serving: one listener for gRPC (HTTP/2) and Connect JSON (HTTP/1.1 or 2), with TLS when
//! configured, limits on message size, concurrency and request time, `/metrics`, and
//! graceful shutdown.

use crate::body_deadline::DeadlineBody;
use crate::config::Config;
use crate::gateway;
use crate::metrics::Metrics;
use crate::request::{ClientAddr, grpc_error, result_code};
use crate::services::auth::AuthApi;
use crate::services::{drs::DrsApi, node::NodeApi, vm::VmApi};
use axum::body::Body;
use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use lqx_core::api::auth::v1::auth_service_server::AuthServiceServer;
use lqx_core::api::compute::v1::{node_service_server::NodeServiceServer, vm_service_server::VmServiceServer};
use lqx_core::api::drs::v1::drs_service_server::DrsServiceServer;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tonic::Code;
use tower::ServiceExt;

/// Everything a request needs, shared by all connections.
pub struct Api {
    pub config: Config,
    /// Credential checks, sessions, users, keys, audit (used by `crate::authn` on every request).
    pub auth: Arc<lqx_core::auth::AuthService>,
    pub auth_api: Arc<AuthApi>,
    pub vm: Arc<VmApi>,
    pub node: Arc<NodeApi>,
    pub drs: Arc<DrsApi>,
    pub ha: Arc<crate::services::ha::HaApi>,
    pub alert: Arc<crate::services::alert::AlertApi>,
    pub project: Arc<crate::services::project::ProjectApi>,
    pub grpc: axum::Router,
    pub metrics: Metrics,
    unary_permits: Arc<Semaphore>,
    stream_permits: Arc<Semaphore>,
    /// Ends open streams when the server shuts down (`crate::drain`).
    pub shutdown: crate::drain::Shutdown,
}

impl Api {
    /// `/metrics`: the request series and the background tasks'.
    fn metrics_text(&self) -> String {
        self.metrics.render() + &crate::metrics::render_tasks(&self.alert.tasks.list())
    }

    #[allow(clippy::too_many_arguments)] // one handle per service
    pub fn new(
        config: Config,
        vm: Arc<VmApi>,
        node: Arc<NodeApi>,
        drs: Arc<DrsApi>,
        auth: Arc<lqx_core::auth::AuthService>,
        agent: Arc<crate::services::agent::AgentApi>,
        ha: Arc<crate::services::ha::HaApi>,
        alert: Arc<crate::services::alert::AlertApi>,
        events: Arc<crate::services::events::EventApi>,
    ) -> anyhow::Result<Arc<Api>> {
        let sso = match &config.auth.oidc {
            Some(o) => Some(Arc::new(
                lqx_core::auth::oidc::SsoLogin::new(o.clone(), config.auth.settings().throttle)
                    .map_err(|e| anyhow::anyhow!("auth.oidc: {}", e.message))?,
            )),
            None => None,
        };
        let auth_api = Arc::new(AuthApi {
            auth: auth.clone(),
            sso,
        });
        let project = Arc::new(crate::services::project::ProjectApi { auth: auth.clone() });
        let max = config.limits.max_message_bytes;
        let (health_reporter, health) = tonic_health::server::health_reporter();
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(lqx_core::api::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let routes = tonic::service::Routes::new(health)
            .add_service(reflection)
            .add_service(
                AuthServiceServer::from_arc(auth_api.clone())
                    .max_decoding_message_size(max)
                    .max_encoding_message_size(max),
            )
            .add_service(
                VmServiceServer::from_arc(vm.clone())
                    .max_decoding_message_size(max)
                    .max_encoding_message_size(max),
            )
            .add_service(
                NodeServiceServer::from_arc(node.clone())
                    .max_decoding_message_size(max)
                    .max_encoding_message_size(max),
            )
            .add_service(
                DrsServiceServer::from_arc(drs.clone())
                    .max_decoding_message_size(max)
                    .max_encoding_message_size(max),
            )
            .add_service(
                lqx_core::api::node::v1::agent_service_server::AgentServiceServer::from_arc(agent)
                    .max_decoding_message_size(max)
                    .max_encoding_message_size(max),
            )
            .add_service(
                lqx_core::api::ha::v1::ha_service_server::HaServiceServer::from_arc(ha.clone())
                    .max_decoding_message_size(max)
                    .max_encoding_message_size(max),
            )
            .add_service(
                lqx_core::api::alert::v1::alert_service_server::AlertServiceServer::from_arc(alert.clone())
                    .max_decoding_message_size(max)
                    .max_encoding_message_size(max),
            )
            .add_service(
                lqx_core::api::events::v1::event_service_server::EventServiceServer::from_arc(events)
                    .max_decoding_message_size(max)
                    .max_encoding_message_size(max),
            )
            .add_service(
                lqx_core::api::project::v1::project_service_server::ProjectServiceServer::from_arc(project.clone())
                    .max_decoding_message_size(max)
                    .max_encoding_message_size(max),
            );
        tokio::spawn(async move {
            health_reporter.set_serving::<AuthServiceServer<AuthApi>>().await;
            health_reporter.set_serving::<VmServiceServer<VmApi>>().await;
            health_reporter.set_serving::<NodeServiceServer<NodeApi>>().await;
            health_reporter.set_serving::<DrsServiceServer<DrsApi>>().await;
            health_reporter
                .set_serving::<lqx_core::api::ha::v1::ha_service_server::HaServiceServer<crate::services::ha::HaApi>>()
                .await;
            health_reporter
                .set_serving::<lqx_core::api::alert::v1::alert_service_server::AlertServiceServer<crate::services::alert::AlertApi>>()
                .await;
            health_reporter
                .set_serving::<lqx_core::api::events::v1::event_service_server::EventServiceServer<crate::services::events::EventApi>>()
                .await;
            health_reporter
                .set_serving::<lqx_core::api::project::v1::project_service_server::ProjectServiceServer<
                    crate::services::project::ProjectApi,
                >>()
                .await;
        });
        Ok(Arc::new(Api {
            auth,
            auth_api,
            unary_permits: Arc::new(Semaphore::new(config.limits.max_concurrent_requests)),
            stream_permits: Arc::new(Semaphore::new(config.limits.max_streams)),
            config,
            vm,
            node,
            drs,
            ha,
            alert,
            project,
            grpc: routes.prepare().into_axum_router(),
            metrics: Metrics::new(known_methods()),
            shutdown: crate::drain::Shutdown::default(),
        }))
    }

    /// Handles one HTTP request of either protocol.
    ///
    /// A unary request runs to its end in a task of its own: when the client goes away
    /// (TCP reset, HTTP/2 RST_STREAM) hyper drops this future, but the handler, and with it
    /// the change and its audit entry, is not cut off half-way. The concurrency permit and
    /// the in-flight count are guards held by that task, given back however it ends.
    pub async fn handle(self: Arc<Self>, req: Request<hyper::body::Incoming>) -> Result<Response<Body>, Infallible> {
        let path = req.uri().path().to_string();
        if req.method() == http::Method::GET {
            return Ok(match path.as_str() {
                "/metrics" if self.config.metrics_listen.is_none() => text(StatusCode::OK, self.metrics_text()),
                "/healthz" => text(StatusCode::OK, "ok\n".into()),
                _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
            });
        }
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let grpc = content_type.starts_with("application/grpc");
        let streaming = is_streaming(&path);
        let started = Instant::now();
        let in_flight = self.metrics.in_flight();

        // Concurrency limits: refuse rather than queue without bound.
        let permits = if streaming {
            &self.stream_permits
        } else {
            &self.unary_permits
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            let msg = "server is at its concurrency limit, retry shortly";
            let resp = if grpc {
                grpc_error(Code::Unavailable, msg)
            } else {
                gateway::error(Code::Unavailable, msg)
            };
            self.metrics.record(&path, result_code(&resp, grpc), started.elapsed());
            return Ok(resp);
        };
        let req = req.map(|b| Body::new(DeadlineBody::new(b, self.config.limits.body_read_timeout)));
        let api = self.clone();
        let work = async move {
            let _held = (permit, in_flight);
            // The time limit applies inside the guard, so a request that runs out of time
            // is still audited.
            let limit = (!streaming).then_some(api.config.limits.request_timeout);
            let (p, ct) = (&path, &content_type);
            let route = |req| api.clone().dispatch(req, p, ct, grpc);
            let resp = crate::authn::guard(api.auth.clone(), req, &path, grpc, limit, route).await;
            api.metrics.record(&path, result_code(&resp, grpc), started.elapsed());
            resp
        };
        if streaming {
            let resp = work.await;
            return Ok(if grpc {
                resp.map(|b| Body::new(self.shutdown.body(b)))
            } else {
                resp
            });
        }
        Ok(match tokio::spawn(work).await {
            Ok(resp) => resp,
            Err(e) => {
                tracing::error!(error = %e, "a request handler panicked");
                let msg = "internal error";
                if grpc {
                    grpc_error(Code::Internal, msg)
                } else {
                    gateway::error(Code::Internal, msg)
                }
            }
        })
    }

    pub(crate) async fn dispatch(
        self: Arc<Self>,
        req: Request<Body>,
        path: &str,
        content_type: &str,
        grpc: bool,
    ) -> Response<Body> {
        if grpc {
            return match self.grpc.clone().oneshot(req).await {
                Ok(r) => r,
                Err(e) => match e {},
            };
        }
        let json = content_type.is_empty()
            || content_type.starts_with("application/json")
            || content_type.starts_with("application/proto+json");
        if !json {
            return gateway::unsupported_media_type(content_type);
        }
        if req.method() != http::Method::POST {
            return gateway::error(Code::Unimplemented, "Connect unary calls use POST");
        }
        let (parts, body) = req.into_parts();
        let body = match read_limited(body, self.config.limits.max_message_bytes).await {
            Ok(b) => b,
            Err((code, msg)) => return gateway::error(code, &msg),
        };
        let resp = self.connect(path, body, parts.extensions).await;
        resp.unwrap_or_else(|| gateway::error(Code::Unimplemented, &format!("no such method {path}")))
    }

    async fn connect(&self, path: &str, body: Bytes, ext: http::Extensions) -> Option<Response<Body>> {
        use lqx_core::api::compute::v1::{node_service_server::NodeService, vm_service_server::VmService};
        use lqx_core::api::drs::v1::drs_service_server::DrsService;
        let (service, method) = path.trim_start_matches('/').split_once('/')?;
        match service {
            "limiquantix.auth.v1.AuthService" => {
                use lqx_core::api::auth::v1::auth_service_server::AuthService;
                crate::connect_routes!(method, body, ext, self.auth_api, AuthService, {
                    "Login" => login, "RefreshToken" => refresh_token, "Logout" => logout, "WhoAmI" => who_am_i,
                    "ChangePassword" => change_password, "CreateUser" => create_user, "ListUsers" => list_users,
                    "UpdateUser" => update_user, "DeleteUser" => delete_user, "CreateAPIKey" => create_api_key,
                    "ListAPIKeys" => list_api_keys, "RevokeAPIKey" => revoke_api_key,
                    "ListAuditEntries" => list_audit_entries, "GetSSOConfig" => get_sso_config,
                    "SSOLogin" => sso_login, "GetServerInfo" => get_server_info,
                })
            }
            "limiquantix.compute.v1.VMService" => crate::connect_routes!(method, body, ext, self.vm, VmService, {
                "CreateVM" => create_vm, "GetVM" => get_vm, "ListVMs" => list_v_ms, "UpdateVM" => update_vm,
                "DeleteVM" => delete_vm, "StartVM" => start_vm, "StopVM" => stop_vm, "RebootVM" => reboot_vm,
                "MigrateVM" => migrate_vm,
            }),
            "limiquantix.compute.v1.NodeService" => crate::connect_routes!(method, body, ext, self.node, NodeService, {
                "GetNode" => get_node, "ListNodes" => list_nodes, "EnableNode" => enable_node,
                "DisableNode" => disable_node, "EnterMaintenance" => enter_maintenance,
                "ExitMaintenance" => exit_maintenance, "CreateJoinToken" => create_join_token,
                "DeleteNode" => delete_node, "PowerOnNode" => power_on_node, "PowerOffNode" => power_off_node,
                "GetNodePower" => get_node_power,
            }),
            "limiquantix.drs.v1.DRSService" => crate::connect_routes!(method, body, ext, self.drs, DrsService, {
                "ListRecommendations" => list_recommendations, "GetRecommendation" => get_recommendation,
                "ApproveRecommendation" => approve_recommendation, "ApplyRecommendation" => apply_recommendation,
                "RejectRecommendation" => reject_recommendation, "RunAnalysis" => run_analysis,
                "GetDRSStatus" => get_drs_status, "UpdateDRSConfig" => update_drs_config,
            }),
            "limiquantix.ha.v1.HAService" => {
                use lqx_core::api::ha::v1::ha_service_server::HaService;
                crate::connect_routes!(method, body, ext, self.ha, HaService, {
                    "GetHAStatus" => get_ha_status, "ManualFailover" => manual_failover,
                })
            }
            "limiquantix.alert.v1.AlertService" => {
                use lqx_core::api::alert::v1::alert_service_server::AlertService;
                crate::connect_routes!(method, body, ext, self.alert, AlertService, {
                    "ListAlerts" => list_alerts, "GetAlert" => get_alert, "AcknowledgeAlert" => acknowledge_alert,
                    "ResolveAlert" => resolve_alert, "GetAlertSummary" => get_alert_summary,
                    "CreateWebhook" => create_webhook, "ListWebhooks" => list_webhooks,
                    "DeleteWebhook" => delete_webhook, "TestWebhook" => test_webhook,
                    "ListBackgroundTasks" => list_background_tasks,
                })
            }
            "limiquantix.project.v1.ProjectService" => {
                use lqx_core::api::project::v1::project_service_server::ProjectService;
                crate::connect_routes!(method, body, ext, self.project, ProjectService, {
                    "CreateProject" => create_project, "ListProjects" => list_projects, "GetProject" => get_project,
                    "UpdateProject" => update_project, "DeleteProject" => delete_project,
                    "SetProjectMember" => set_project_member, "RemoveProjectMember" => remove_project_member,
                    "ListProjectMembers" => list_project_members,
                })
            }
            _ => None,
        }
    }
}

/// Reads a request body of at most `limit` bytes. A larger one is read on (and discarded,
/// up to a bound) so the client gets the error response instead of a reset connection.
async fn read_limited(mut body: Body, limit: usize) -> Result<Bytes, (Code, String)> {
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(f) => f,
            Err(e) if crate::body_deadline::is_timeout(&e) => {
                return Err((Code::DeadlineExceeded, e.into_inner().to_string()));
            }
            Err(_) => return Err((Code::InvalidArgument, "request body could not be read".into())),
        };
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen <= limit {
                buf.extend_from_slice(&data);
            } else if seen > limit.saturating_mul(16) {
                break;
            }
        }
    }
    if seen > limit {
        return Err((
            Code::ResourceExhausted,
            format!("request body is larger than the limit of {limit} bytes"),
        ));
    }
    Ok(buf.freeze())
}

/// The paths that get their own metrics label: every declared RPC, health and reflection.
fn known_methods() -> Vec<String> {
    let mut known = lqx_core::auth::rbac::declared_method_paths();
    known.extend(
        [
            "/grpc.health.v1.Health/Check",
            "/grpc.health.v1.Health/Watch",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        ]
        .map(String::from),
    );
    known
}

fn is_streaming(path: &str) -> bool {
    let method = path.rsplit('/').next().unwrap_or("");
    method.starts_with("Watch")
        || method == "Subscribe"
        || path.starts_with("/grpc.reflection.")
        || path == "/grpc.health.v1.Health/Watch"
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

/// Accepts connections until `shutdown` resolves, then lets open requests finish.
pub async fn serve(
    api: Arc<Api>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let limits = api.config.limits.clone();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let max_connections = match limits.max_connections {
        0 => crate::conn::default_max_connections(),
        n => n,
    };
    tracing::debug!(max_connections, "connection limit");
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut accept_log = crate::conn::LogEvery::new(std::time::Duration::from_secs(10));
    let mut failures = 0u32;
    tokio::pin!(shutdown);
    loop {
        // At the limit, wait for a connection to close; new ones wait in the backlog.
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => s?,
            _ = &mut shutdown => break,
        };
        let (stream, peer): (tokio::net::TcpStream, SocketAddr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => {
                    failures = 0;
                    s
                }
                Err(e) => {
                    if let Some(held_back) = accept_log.check(tokio::time::Instant::now()) {
                        tracing::warn!(error = %e, held_back, "accepting a connection failed");
                    }
                    if crate::conn::is_resource_error(&e) {
                        // Out of descriptors: retrying at once only spins.
                        tokio::time::sleep(crate::conn::backoff(failures)).await;
                        failures = failures.saturating_add(1);
                    }
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let active = crate::conn::Active::default();
        let stream = crate::conn::IdleIo::new(stream, limits.idle_timeout, active.clone());
        let open = (slot, api.metrics.connection());
        let api = api.clone();
        let svc = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ClientAddr(peer));
            let busy = active.begin();
            let api = api.clone();
            async move {
                let resp = api.handle(req).await?;
                Ok::<_, Infallible>(resp.map(|b| Body::new(crate::conn::Tracked::new(b, busy))))
            }
        });
        match &tls {
            None => {
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    let _open = open;
                    let _ = conn.await;
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let builder = builder.clone();
                let watcher = graceful.watcher();
                let handshake = limits.header_read_timeout;
                tokio::spawn(async move {
                    let _open = open;
                    match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), svc);
                            let _ = watcher.watch(conn.into_owned()).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
    // New connections are refused at once (not left in the backlog), and open streams end
    // with `unavailable: server shutting down`; then open unary requests may finish.
    drop(listener);
    api.shutdown.begin();
    tracing::info!("shutting down: waiting for open requests");
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(std::time::Duration::from_secs(30)) => tracing::warn!("open requests did not finish in 30 s"),
    }
    Ok(())
}

/// Serves `/metrics` and `/healthz` on their own listener (`metrics_listen`): plaintext
/// HTTP/1, same connection hygiene as the API port.
pub async fn serve_metrics(api: Arc<Api>, listener: TcpListener) {
    let limits = api.config.limits.clone();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let slots = Arc::new(Semaphore::new(64));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::debug!(error = %e, "accepting a metrics connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let api = api.clone();
        let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let api = api.clone();
            async move {
                Ok::<_, Infallible>(match (req.method(), req.uri().path()) {
                    (&http::Method::GET, "/metrics") => text(StatusCode::OK, api.metrics_text()),
                    (&http::Method::GET, "/healthz") => text(StatusCode::OK, "ok\n".into()),
                    _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
                })
            }
        });
        let io = TokioIo::new(crate::conn::IdleIo::new(
            stream,
            limits.idle_timeout,
            Default::default(),
        ));
        let conn = builder.serve_connection(io, svc);
        tokio::spawn(async move {
            let _slot = slot;
            let _ = conn.await;
        });
    }
}

/// A TLS acceptor from PEM files, offering HTTP/2 (gRPC) and HTTP/1.1 (Connect).
pub fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use anyhow::Context;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("opening {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading certificates from {}", cert.display()))?;
    anyhow::ensure!(!certs.is_empty(), "no certificate in {}", cert.display());
    let key =
        PrivateKeyDer::from_pem_file(key).with_context(|| format!("no usable private key in {}", key.display()))?;
    let mut cfg = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}
