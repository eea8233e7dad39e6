//! limiquantix.auth.v1.AuthService: decode, call `lqx_core::auth::AuthService`, encode.
//! The caller was verified and authorized by the auth layer (`crate::authn`), which put the
//! `Principal` and the request's `AuditNote` into the request extensions.

use super::st;
use crate::request::ClientAddr;
use lqx_core::api::auth::v1::{self as pb, auth_service_server::AuthService as AuthRpc};
use lqx_core::api::convert::auth::{audit_entry_out, audit_filter_in, key_out, login_out, user_out};
use lqx_core::api::convert::timestamp;
use lqx_core::auth::oidc::SsoLogin;
use lqx_core::auth::service::{NewUser, UserChange};
use lqx_core::auth::{AuditNote, AuthError, AuthService, Principal, Secret};
use std::net::IpAddr;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct AuthApi {
    pub auth: Arc<AuthService>,
    /// The configured OpenID provider, if any.
    pub sso: Option<Arc<SsoLogin>>,
}

fn principal<T>(req: &Request<T>) -> Result<Principal, Status> {
    req.extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| st(AuthError::MissingCredentials.into()))
}

/// The request's audit note (for services to name the resource they acted on).
pub fn note<T>(req: &Request<T>) -> AuditNote {
    req.extensions().get::<AuditNote>().cloned().unwrap_or_default()
}

fn client_ip<T>(req: &Request<T>) -> Option<IpAddr> {
    req.extensions().get::<ClientAddr>().map(|c| c.0.ip())
}

fn opt(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

#[tonic::async_trait]
impl AuthRpc for AuthApi {
    async fn login(&self, req: Request<pb::LoginRequest>) -> Result<Response<pb::LoginResponse>, Status> {
        let (note, ip) = (note(&req), client_ip(&req));
        let r = req.into_inner();
        let out = self
            .auth
            .login(&r.username, Secret::new(r.password), ip, &note)
            .await
            .map_err(st)?;
        Ok(Response::new(login_out(out)))
    }

    async fn refresh_token(
        &self,
        req: Request<pb::RefreshTokenRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let note = note(&req);
        let token = Secret::new(req.into_inner().refresh_token);
        let out = self.auth.refresh(token.expose(), &note).await.map_err(st)?;
        Ok(Response::new(login_out(out)))
    }

    async fn logout(&self, req: Request<pb::LogoutRequest>) -> Result<Response<pb::LogoutResponse>, Status> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let token = Secret::new(r.refresh_token);
        self.auth.logout(&p, token.expose(), r.all).await.map_err(st)?;
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn who_am_i(&self, req: Request<pb::WhoAmIRequest>) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let p = principal(&req)?;
        let w = self.auth.whoami(&p).await.map_err(st)?;
        Ok(Response::new(pb::WhoAmIResponse {
            user: Some(user_out(&w.user)),
            permissions: w.permissions.iter().map(|p| p.as_str().to_string()).collect(),
            auth_method: w.method.as_str().into(),
            api_key_id: w.api_key_id.map(|k| k.to_string()).unwrap_or_default(),
            expires_at: Some(timestamp(w.expires_at)),
        }))
    }

    async fn change_password(
        &self,
        req: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        let (p, note, ip) = (principal(&req)?, note(&req), client_ip(&req));
        let r = req.into_inner();
        let (old, new) = (Secret::new(r.old_password), Secret::new(r.new_password));
        self.auth
            .change_password(&p, &r.user_id, old, new, ip, &note)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::ChangePasswordResponse {}))
    }

    async fn create_user(&self, req: Request<pb::CreateUserRequest>) -> Result<Response<pb::User>, Status> {
        let (p, note) = (principal(&req)?, note(&req));
        let r = req.into_inner();
        let new = NewUser {
            username: r.username,
            email: r.email,
            password: Secret::new(r.password),
            role: r.role,
            request_id: super::request_id(&r.request_id)?,
        };
        let u = self.auth.create_user(&p, new, &note).await.map_err(st)?;
        Ok(Response::new(user_out(&u)))
    }

    async fn list_users(&self, req: Request<pb::ListUsersRequest>) -> Result<Response<pb::ListUsersResponse>, Status> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let page = self.auth.list_users(&p, r.page_size, &r.page_token).await.map_err(st)?;
        Ok(Response::new(pb::ListUsersResponse {
            users: page.users.iter().map(user_out).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn update_user(&self, req: Request<pb::UpdateUserRequest>) -> Result<Response<pb::User>, Status> {
        let (p, note) = (principal(&req)?, note(&req));
        let r = req.into_inner();
        let change = UserChange {
            email: r.email,
            role: r.role,
            disabled: r.disabled,
        };
        let u = self.auth.update_user(&p, &r.id, change, &note).await.map_err(st)?;
        Ok(Response::new(user_out(&u)))
    }

    async fn delete_user(
        &self,
        req: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        let (p, note) = (principal(&req)?, note(&req));
        let id = req.into_inner().id;
        self.auth.delete_user(&p, &id, &note).await.map_err(st)?;
        Ok(Response::new(pb::DeleteUserResponse {}))
    }

    async fn create_api_key(
        &self,
        req: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        let (p, note) = (principal(&req)?, note(&req));
        let project = super::named_project(&req, "");
        let r = req.into_inner();
        let (key, secret) = self
            .auth
            .create_api_key(&p, &r.name, &r.role, &project, r.ttl_seconds, &note)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::CreateApiKeyResponse {
            key: Some(key_out(&key)),
            secret: secret.into_inner(),
        }))
    }

    async fn list_api_keys(
        &self,
        req: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let p = principal(&req)?;
        let keys = self.auth.list_api_keys(&p, req.into_inner().all).await.map_err(st)?;
        Ok(Response::new(pb::ListApiKeysResponse {
            keys: keys.iter().map(key_out).collect(),
        }))
    }

    async fn revoke_api_key(
        &self,
        req: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyResponse>, Status> {
        let (p, note) = (principal(&req)?, note(&req));
        let id = req.into_inner().id;
        self.auth.revoke_api_key(&p, &id, &note).await.map_err(st)?;
        Ok(Response::new(pb::RevokeApiKeyResponse {}))
    }

    async fn list_audit_entries(
        &self,
        req: Request<pb::ListAuditEntriesRequest>,
    ) -> Result<Response<pb::ListAuditEntriesResponse>, Status> {
        let p = principal(&req)?;
        let projects = match super::names_project(&req) {
            true => {
                let named = super::named_project(&req, "");
                let project = self
                    .auth
                    .project_for(&p, &named, lqx_core::model::Permission::AuditRead, &note(&req))
                    .await
                    .map_err(st)?;
                Some(vec![project.id])
            }
            false => None,
        };
        let r = req.into_inner();
        let filter = audit_filter_in(&r, projects).map_err(st)?;
        let page = self
            .auth
            .list_audit(&p, filter, r.page_size, &r.page_token)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::ListAuditEntriesResponse {
            entries: page.entries.iter().map(audit_entry_out).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn get_server_info(&self, _: Request<pb::GetServerInfoRequest>) -> Result<Response<pb::ServerInfo>, Status> {
        Ok(Response::new(pb::ServerInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            // From build.rs: the packaging build's LQX_GIT_COMMIT, else the checkout's HEAD.
            commit: option_env!("LQX_GIT_COMMIT").unwrap_or_default().into(),
        }))
    }

    async fn get_sso_config(&self, _: Request<pb::GetSsoConfigRequest>) -> Result<Response<pb::SsoConfig>, Status> {
        let out = match &self.sso {
            None => pb::SsoConfig::default(),
            Some(s) => {
                let p = s.public_settings();
                pb::SsoConfig {
                    enabled: true,
                    issuer: p.issuer,
                    client_id: p.client_id,
                    scopes: p.scopes,
                }
            }
        };
        Ok(Response::new(out))
    }

    async fn sso_login(&self, req: Request<pb::SsoLoginRequest>) -> Result<Response<pb::LoginResponse>, Status> {
        let (note, ip) = (note(&req), client_ip(&req));
        let sso = self.sso.as_ref().ok_or_else(|| {
            st(lqx_core::Error::precondition(
                "single sign-on is not configured on this server (auth.oidc)",
            ))
        })?;
        let r = req.into_inner();
        let token = Secret::new(r.id_token);
        let out = sso
            .login(&self.auth, &token, opt(r.nonce).as_deref(), ip, &note)
            .await
            .map_err(st)?;
        Ok(Response::new(login_out(out)))
    }
}
