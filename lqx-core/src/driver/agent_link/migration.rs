//! Live migration between two agent hosts, driven from the control plane.
//!
//! The rule, in plain words:
//! - The target's desired state gets the domain as *incoming* (its agent neither defines nor
//!   starts it), then the source's gets a migration order (its agent runs the hypervisor's
//!   peer-to-peer migration to the URI the target's agent reports, `--migration-uri`).
//! - The source's heartbeats carry the migration's phase and progress. The VM belongs to the
//!   target only once the source reports success (or, when the outcome could not be reported,
//!   once the target runs the domain and the source no longer has it); then the target's entry
//!   becomes an ordinary one and the source's is dropped.
//! - Anything else (the source reports a failure, an agent goes silent, the timeout, a cancel)
//!   withdraws the order; the source's agent aborts the migration and the domain keeps running
//!   there. The target's entry is dropped only after the source has reported the migration
//!   ended, so a migration that completed at the last moment is never destroyed on arrival.

use super::*;

/// Extra time past the migration's own timeout for the agent to report the outcome.
const SLACK: Duration = Duration::from_secs(30);
/// Without a migration timeout, the control plane gives up after this long.
const NO_TIMEOUT_LIMIT: Duration = Duration::from_secs(6 * 3600);

enum Verdict {
    Succeeded,
    Failed(DriverError),
}

impl AgentLink {
    pub(crate) fn migration_blocker(&self) -> Option<String> {
        lock(&self.state).migration_uri.is_empty().then(|| {
            format!(
                "the agent of {} reports no migration URI (start it with --migration-uri)",
                self.uri
            )
        })
    }

    fn peer(&self, uri: &str) -> Option<Arc<AgentLink>> {
        let links = self.peers.upgrade()?;
        read(&links).values().find(|l| l.uri == uri).cloned()
    }

    /// Cancels the migration of `id` this link is waiting for (it ends failed; the VM stays).
    pub(crate) fn withdraw_migration(&self, id: VmId) -> DriverResult<()> {
        let mut st = lock(&self.state);
        match st.desired.get(&id) {
            Some(w) if w.d.migrate.is_some() => {
                st.cancelled.insert(id);
                drop(st);
                self.report_tx.send_modify(|n| *n += 1);
                Ok(())
            }
            _ => Err(DriverError::NotFound(format!(
                "no migration of domain {id} runs from {}",
                self.uri
            ))),
        }
    }

    /// An agent silent for a whole lease during a migration counts as gone. Shorter silences
    /// are waited out: a heartbeat may be slow while the hypervisor is busy migrating, and
    /// giving up early would abort a migration that is about to succeed.
    fn gone(&self, st: &LinkState, now: Instant) -> Option<DriverError> {
        let silent = st.last_heartbeat.map_or(Duration::MAX, |t| now.duration_since(t));
        (silent > self.timing.lease_ttl).then(|| {
            DriverError::Unavailable(format!(
                "the agent of {} has not sent a heartbeat for {}",
                self.uri,
                humantime::format_duration(Duration::from_secs(silent.as_secs()))
            ))
        })
    }

    pub(crate) fn bump(&self, st: &mut LinkState) -> u64 {
        st.generation += 1;
        st.generation
    }

    pub(crate) async fn migrate_to_peer(
        &self,
        id: VmId,
        dest_uri: String,
        opts: crate::driver::LiveOptions,
        progress: Option<ProgressFn>,
    ) -> DriverResult<()> {
        let target = self.peer(&dest_uri).ok_or_else(|| {
            DriverError::Unsupported(format!(
                "live migration from {} to {dest_uri}: the target is not an agent host",
                self.uri
            ))
        })?;
        if target.node == self.node {
            return Err(DriverError::InvalidState(format!(
                "domain {id} is already on {dest_uri}"
            )));
        }
        let now = Instant::now();
        // The source's entry, checked.
        let mut incoming = {
            let st = lock(&self.state);
            self.check_live(&st, now)?;
            let w = st
                .desired
                .get(&id)
                .ok_or_else(|| DriverError::NotFound(format!("domain {id}")))?;
            if w.d.migrate.is_some() {
                return Err(DriverError::InvalidState(format!("domain {id} is already migrating")));
            }
            match Self::seen_state(&st, id) {
                Some(DomainState::Running | DomainState::Paused) => {}
                s => {
                    let s = s.map_or("not defined".to_string(), |s| s.to_string());
                    return Err(DriverError::InvalidState(format!(
                        "domain {id} is {s}, cannot live-migrate"
                    )));
                }
            }
            w.clone()
        };
        incoming.d.running = true;
        incoming.d.force_off = false;
        incoming.d.incoming = true;
        // The target expects it.
        let destination_uri = {
            let mut tst = lock(&target.state);
            target.check_live(&tst, now)?;
            if tst.migration_uri.is_empty() {
                return Err(DriverError::Unsupported(target.migration_blocker().unwrap_or_default()));
            }
            if tst.desired.contains_key(&id) || tst.seen.contains_key(&id) {
                return Err(DriverError::AlreadyExists(format!("domain {id} on {}", target.uri)));
            }
            tst.desired.insert(id, incoming);
            let g = target.bump(&mut tst);
            let uri = tst.migration_uri.clone();
            drop(tst);
            target.desired_tx.send_replace(g);
            uri
        };
        let mut reports = self.report_tx.subscribe();
        let mut target_reports = target.report_tx.subscribe();
        let migration_id = uuid::Uuid::now_v7().to_string();
        {
            let mut st = lock(&self.state);
            st.cancelled.remove(&id);
            if let Some(w) = st.desired.get_mut(&id) {
                w.d.migrate = Some(crate::agent::reconcile::MigrationOrder {
                    id: migration_id.clone(),
                    destination_uri,
                    options: opts,
                });
            }
            *st.busy.entry(id).or_default() += 1;
            let g = self.bump(&mut st);
            drop(st);
            self.desired_tx.send_replace(g);
        }
        info!(vm = %id, from = %self.uri, to = %target.uri, migration = %migration_id, "live migration ordered");

        let limit = opts.timeout.map_or(NO_TIMEOUT_LIMIT, |t| t + SLACK);
        let deadline = now + limit;
        let outcome = loop {
            {
                let st = lock(&self.state);
                if st.cancelled.contains(&id) {
                    break Err(DriverError::InvalidState(format!(
                        "the migration of domain {id} was cancelled"
                    )));
                }
                if let Some(m) = st.migrations.get(&id).filter(|m| m.migration_id == migration_id) {
                    match m.phase.as_str() {
                        "succeeded" => break Ok(()),
                        "failed" => break Err(driver_error(&m.error_kind, m.error.clone())),
                        _ => {
                            if let Some(p) = &progress {
                                p(crate::driver::MigrationProgress {
                                    processed_bytes: m.processed_bytes,
                                    total_bytes: m.total_bytes,
                                    remaining_bytes: m.remaining_bytes,
                                });
                            }
                        }
                    }
                }
                if let Some(e) = self.gone(&st, Instant::now()) {
                    break Err(e);
                }
            }
            if let Some(e) = target.gone(&lock(&target.state), Instant::now()) {
                break Err(DriverError::Unavailable(format!("the migration target is gone: {e}")));
            }
            let now = Instant::now();
            if now >= deadline {
                break Err(DriverError::Timeout(format!(
                    "the agent of {} did not report the migration's end within {}",
                    self.uri,
                    humantime::format_duration(limit)
                )));
            }
            let wake = deadline.min(now + Duration::from_secs(1));
            tokio::select! {
                _ = tokio::time::timeout_at(wake, reports.changed()) => {}
                _ = target_reports.changed() => {}
            }
        };
        let verdict = match outcome {
            Ok(()) => Verdict::Succeeded,
            Err(e) => self.settle_failure(id, &migration_id, &target, e).await,
        };

        // Apply the verdict to both desired states.
        let ok = matches!(verdict, Verdict::Succeeded);
        {
            let mut tst = lock(&target.state);
            if ok {
                if let Some(w) = tst.desired.get_mut(&id) {
                    w.d.incoming = false;
                }
                // The heartbeats write this VM's state again once the compute layer has moved it.
                tst.recorded.remove(&id);
            } else {
                tst.desired.remove(&id);
            }
            let g = target.bump(&mut tst);
            drop(tst);
            target.desired_tx.send_replace(g);
        }
        {
            let mut st = lock(&self.state);
            if ok {
                st.desired.remove(&id);
                st.recorded.remove(&id);
            } else if let Some(w) = st.desired.get_mut(&id) {
                w.d.migrate = None;
            }
            st.cancelled.remove(&id);
            if let Some(n) = st.busy.get_mut(&id) {
                *n -= 1;
                if *n == 0 {
                    st.busy.remove(&id);
                }
            }
            let quiet = Instant::now() + st.agent_interval * 2;
            st.quiet_until.insert(id, quiet);
            let g = self.bump(&mut st);
            drop(st);
            self.desired_tx.send_replace(g);
        }
        match verdict {
            Verdict::Succeeded => {
                info!(vm = %id, to = %target.uri, "live migration succeeded");
                Ok(())
            }
            Verdict::Failed(e) => {
                info!(vm = %id, error = %e, "live migration failed; the domain stays on the source");
                Err(e)
            }
        }
    }

    /// After a failure: withdraws the order, waits (bounded) until the source's agent reports
    /// the migration ended, and looks where the domain is. A migration that completed after
    /// all (the target runs it, the source no longer has it) counts as a success.
    async fn settle_failure(&self, id: VmId, migration_id: &str, target: &AgentLink, e: DriverError) -> Verdict {
        let mut reports = self.report_tx.subscribe();
        let generation = {
            let mut st = lock(&self.state);
            let reported_final = st
                .migrations
                .get(&id)
                .is_some_and(|m| m.migration_id == migration_id && m.phase == "failed");
            if let Some(w) = st.desired.get_mut(&id) {
                w.d.migrate = None;
            }
            let g = self.bump(&mut st);
            drop(st);
            self.desired_tx.send_replace(g);
            if reported_final {
                // The hypervisor said so: the domain is on the source.
                return Verdict::Failed(e);
            }
            g
        };
        let deadline = Instant::now() + self.timing.op_timeout;
        loop {
            {
                let st = lock(&self.state);
                match st.migrations.get(&id).filter(|m| m.migration_id == migration_id) {
                    Some(m) if m.phase == "succeeded" => return Verdict::Succeeded,
                    Some(m) if m.phase == "failed" => break,
                    Some(_) => {}
                    // Withdrawn and no job left (never started, or already cleaned up).
                    None if st.observed >= generation => break,
                    None => {}
                }
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let _ = tokio::time::timeout_at(deadline.min(now + Duration::from_secs(1)), reports.changed()).await;
        }
        // One more report from the target, so its view is current.
        let mut target_reports = target.report_tx.subscribe();
        target_reports.borrow_and_update();
        let wait = lock(&target.state).agent_interval * 2 + Duration::from_secs(1);
        let _ = tokio::time::timeout(wait, target_reports.changed()).await;
        let on_target = Self::seen_state(&lock(&target.state), id).is_some_and(|s| s.is_active());
        let on_source = lock(&self.state).seen.contains_key(&id);
        if on_target && !on_source {
            tracing::warn!(vm = %id, "the migration completed after all: the domain runs on the target");
            return Verdict::Succeeded;
        }
        Verdict::Failed(e)
    }
}
