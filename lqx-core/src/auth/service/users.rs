//! User administration: passwords, users and roles (never locking the installation out).

use super::*;

impl AuthService {
    /// ChangePassword: one's own (with the old password), or, with `user:manage`, another
    /// user's (`target` = id or username). Ends every session of the user.
    pub async fn change_password(
        &self,
        p: &Principal,
        target: &str,
        old: Secret,
        new: Secret,
        client: Option<IpAddr>,
        note: &AuditNote,
    ) -> Result<()> {
        let _forget = self.changing_sessions();
        let own = target.is_empty() || target == p.username || target == p.user_id.to_string();
        // Someone else's password needs user:manage; refused before the lookup, so the
        // answer does not tell whether such a user exists.
        if !own {
            p.require(Permission::UserManage)?;
        }
        let target = if target.is_empty() {
            self.store.get_user(p.user_id).await?.ok_or(AuthError::SessionRevoked)?
        } else {
            self.store.resolve_user(target).await?
        };
        note.resource("user", target.id);
        if target.id == p.user_id {
            if old.expose().is_empty() {
                return Err(Error::invalid(
                    "old_password",
                    "is required to change your own password",
                ));
            }
            // A stolen access token must not become a password oracle.
            lock(&self.throttle).begin(&target.username, client, self.now_ms())?;
            let ok = password::verify_password_async(old, Some(target.password_hash.clone())).await?;
            if !ok {
                return Err(Error::invalid("old_password", "is wrong"));
            }
            lock(&self.throttle).succeeded(&target.username, client, self.now_ms());
        } else {
            p.require(Permission::UserManage)?;
        }
        password::check_policy(&target.username, new.expose())?;
        let hash = password::hash_password_async(new).await?;
        let now = self.now();
        self.store
            .modify_user(target.id, |u| {
                u.password_hash = hash.clone();
                u.password_changed_at = now;
                u.updated_at = now;
                u.invalidate_tokens();
                Ok(())
            })
            .await?;
        self.store
            .revoke_user_sessions(target.id, RevokeReason::PasswordChanged, now)
            .await?;
        tracing::info!(user = %target.username, by = %p.username, "password changed");
        Ok(())
    }

    pub(super) fn idempotency_key(p: &Principal, request_id: &str) -> String {
        format!("auth.CreateUser:{}:{request_id}", p.user_id)
    }

    pub async fn create_user(&self, p: &Principal, req: NewUser, note: &AuditNote) -> Result<User> {
        p.require(Permission::UserManage)?;
        if let Some(rid) = &req.request_id
            && let Some(id) = self.store.idempotent_get(&Self::idempotency_key(p, rid)).await?
            && let Some(u) = self.store.get_user(UserId::parse("request_id", &id)?).await?
        {
            note.resource("user", u.id);
            return Ok(u);
        }
        let username = normalize_username(&req.username);
        validate_username("username", &username)?;
        let email = req.email.trim().to_string();
        validate_email("email", &email)?;
        let role = if req.role.is_empty() {
            Role::Viewer
        } else {
            Role::parse("role", &req.role)?
        };
        password::check_policy(&username, req.password.expose())?;
        let hash = password::hash_password_async(req.password).await?;
        let now = self.now();
        let user = User::new(username, email, role, hash, now);
        self.store.create_user(&user).await?;
        // As before projects existed, a user with a global role works in the default
        // project with that role; `none` makes a member of no project until added to one.
        if role != Role::None {
            self.store.set_project_member(ProjectId::DEFAULT, user.id, role).await?;
        }
        if let Some(rid) = &req.request_id {
            self.store
                .idempotent_put(&Self::idempotency_key(p, rid), &user.id.to_string())
                .await?;
        }
        note.resource("user", user.id);
        tracing::info!(user = %user.username, role = %user.role, by = %p.username, "user created");
        Ok(user)
    }

    pub async fn list_users(&self, p: &Principal, page_size: u32, token: &str) -> Result<UserPage> {
        p.require(Permission::UserManage)?;
        self.store.list_users(page_size, token).await
    }

    /// Refuses to take away the last enabled admin.
    pub(super) async fn keep_an_admin(&self, target: &User, what: &str) -> Result<()> {
        if target.role == Role::Admin && !target.disabled && self.store.count_enabled_with_role(Role::Admin).await? <= 1
        {
            return Err(Error::precondition(format!(
                "cannot {what} {}: it is the last enabled admin",
                target.username
            )));
        }
        Ok(())
    }

    pub async fn update_user(
        &self,
        p: &Principal,
        id_or_name: &str,
        change: UserChange,
        note: &AuditNote,
    ) -> Result<User> {
        let _forget = self.changing_sessions();
        p.require(Permission::UserManage)?;
        let target = self.store.resolve_user(id_or_name).await?;
        note.resource("user", target.id);
        let role = change.role.as_deref().map(|r| Role::parse("role", r)).transpose()?;
        let email = change.email.map(|e| e.trim().to_string());
        if let Some(e) = &email {
            validate_email("email", e)?;
        }
        let demoted = role.is_some_and(|r| r != Role::Admin);
        let disabling = change.disabled == Some(true);
        if demoted || disabling {
            self.keep_an_admin(&target, if disabling { "disable" } else { "demote" })
                .await?;
        }
        let now = self.now();
        let (before, after) = self
            .store
            .modify_user(target.id, |u| {
                let old_role = u.role;
                let was_disabled = u.disabled;
                if let Some(r) = role {
                    u.role = r;
                }
                if let Some(e) = &email {
                    u.email = e.clone();
                }
                if let Some(d) = change.disabled {
                    u.disabled = d;
                }
                if u.role != old_role || (u.disabled && !was_disabled) {
                    u.invalidate_tokens();
                }
                if *u != target {
                    u.updated_at = now;
                }
                Ok(())
            })
            .await?;
        let reason = if after.disabled && !before.disabled {
            Some(RevokeReason::UserDisabled)
        } else if after.role != before.role {
            Some(RevokeReason::RoleChanged)
        } else {
            None
        };
        if let Some(r) = reason {
            self.store.revoke_user_sessions(after.id, r, now).await?;
            tracing::info!(user = %after.username, reason = r.as_str(), by = %p.username, "sessions revoked");
        }
        Ok(after)
    }

    pub async fn delete_user(&self, p: &Principal, id_or_name: &str, note: &AuditNote) -> Result<()> {
        let _forget = self.changing_sessions();
        p.require(Permission::UserManage)?;
        let target = self.store.resolve_user(id_or_name).await?;
        note.resource("user", target.id);
        if target.id == p.user_id {
            return Err(Error::precondition("cannot delete your own account"));
        }
        self.keep_an_admin(&target, "delete").await?;
        self.store
            .revoke_user_sessions(target.id, RevokeReason::UserDeleted, self.now())
            .await?;
        if !self.store.delete_user(target.id).await? {
            return Err(Error::not_found("user", id_or_name));
        }
        tracing::info!(user = %target.username, by = %p.username, "user deleted");
        Ok(())
    }
}
