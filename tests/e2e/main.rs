//! End-to-end tests: the real `lqx-server` (and `lqx`) binaries, over real sockets, on
//! SQLite and PostgreSQL. One test binary keeps links fast; each area is a module.

mod agent;
mod auth;
mod background;
mod cli;
mod compute;
mod drs;
mod events;
mod fence;
mod follow;
mod ha;
mod hostile;
mod migrate_cancel;
mod power;
mod projects;
mod sso;
mod tour;
