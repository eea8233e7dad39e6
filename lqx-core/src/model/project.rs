//! Projects: the namespace VMs live in. A default project always exists.

use super::ProjectId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
}

impl Project {
    pub const DEFAULT_NAME: &'static str = "default";
}
