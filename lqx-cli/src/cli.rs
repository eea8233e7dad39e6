//! First stage of argument parsing: the clap command tree. Values that need more than a
//! type (sizes, durations, labels) are checked by value parsers from `parse`, so a bad
//! value is a usage error (exit 2) that names the flag.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use crate::args::{GlobalArgs, WaitArgs, YesArgs};
use crate::config::StorageKind;
use crate::parse::{clap_duration, clap_label, clap_size};

/// Environment variables, for the man page (the help text below says the same).
pub const ENVIRONMENT: &[(&str, &str)] = &[
    ("LQX_SERVER", "server URL (like --server)"),
    ("LQX_TOKEN", "access token or API key; wins over stored credentials"),
    ("LQX_CONTEXT", "context to use (like --context)"),
    ("LQX_PROJECT", "project to act in (like --project)"),
    (
        "LQX_CONFIG_DIR",
        "config dir (config.toml, credentials/); default ~/.config/lqx",
    ),
    (
        "LQX_TOKEN_STORAGE",
        "keyring (default) or file, where `lqx login` stores tokens",
    ),
    ("LQX_CA_CERT", "CA certificate (PEM) for a private CA (like --ca-cert)"),
    ("LQX_LOG", "log filter for stderr, e.g. debug"),
    ("NO_COLOR", "no colours"),
];

const AFTER_HELP: &str = "\
ENVIRONMENT:
  LQX_SERVER         server URL (like --server)
  LQX_TOKEN          access token or API key; wins over stored credentials
  LQX_CONTEXT        context to use (like --context)
  LQX_PROJECT        project to act in (like --project)
  LQX_CONFIG_DIR     config dir (config.toml, credentials/); default ~/.config/lqx
  LQX_TOKEN_STORAGE  keyring (default) or file, where `lqx login` stores tokens
  LQX_CA_CERT        CA certificate (PEM) for a private CA (like --ca-cert)
  LQX_LOG            log filter for stderr, e.g. debug
  NO_COLOR           no colours

EXIT CODES:
  0  success
  1  error
  2  usage error (unknown flag, invalid value, ambiguous id prefix, declined)
  3  not found
  4  not authenticated or token expired (run `lqx login`)
  5  permission denied
  6  conflict or precondition failed (already exists, wrong state, no room)
  7  timed out (waiting, or an RPC deadline)

Run `lqx help exit-codes` for details.";

#[derive(Debug, Parser)]
#[command(
    name = "lqx",
    version,
    about = "Command line for the lqx virtualization control plane",
    long_about = "Command line for the lqx virtualization control plane: VMs, nodes, users, \
                  API keys, audit, alerts, DRS, HA and live events. Data goes to stdout, \
                  messages to stderr; see EXIT CODES below.",
    disable_help_subcommand = true,
    propagate_version = true,
    after_long_help = AFTER_HELP,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in to a server and store the token
    #[command(after_help = crate::examples::LOGIN)]
    Login(LoginArgs),
    /// End the session on the server and delete the stored token
    Logout {
        /// End every session of your user, on every device
        #[arg(long)]
        all: bool,
    },
    /// Show or print the current credentials
    #[command(subcommand)]
    Auth(AuthCmd),
    /// Manage contexts (servers and accounts)
    #[command(subcommand)]
    Context(ContextCmd),
    /// Manage virtual machines
    #[command(subcommand)]
    Vm(VmCmd),
    /// Manage hypervisor nodes
    #[command(subcommand)]
    Node(NodeCmd),
    /// Manage users (admins)
    #[command(subcommand)]
    User(UserCmd),
    /// Projects: their members, roles and quotas
    #[command(subcommand)]
    Project(ProjectCmd),
    /// Manage API keys (service-account tokens for CI)
    #[command(subcommand)]
    Apikey(ApikeyCmd),
    /// Read the audit log
    #[command(subcommand)]
    Audit(AuditCmd),
    /// List, acknowledge and resolve alerts; manage webhooks
    #[command(subcommand)]
    Alert(AlertCmd),
    /// Distributed resource scheduler: status, recommendations, runs
    #[command(subcommand)]
    Drs(DrsCmd),
    /// High availability: status, manual failover, offline simulation
    #[command(subcommand)]
    Ha(HaCmd),
    /// Stream live events (JSON lines when stdout is not a terminal)
    #[command(after_help = crate::examples::WATCH)]
    Watch(WatchArgs),
    /// Print a shell completion script
    Completion {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Help on a command or topic (`lqx help exit-codes`)
    Help {
        /// A command path (e.g. `vm create`) or `exit-codes`
        topic: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
    Elvish,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Server URL; default: --server, the current context, or http://127.0.0.1:8080
    pub server: Option<String>,
    /// Username (prompted for on a terminal)
    #[arg(short, long, env = "LQX_USERNAME")]
    pub username: Option<String>,
    /// Read the password from stdin (one line)
    #[arg(long, conflicts_with = "with_token")]
    pub password_stdin: bool,
    /// Read an API key from stdin instead of logging in with a password
    #[arg(long)]
    pub with_token: bool,
    /// Log in through the server's OpenID provider (single sign-on): in the browser when one
    /// can be opened, else with a code to enter on another device
    #[arg(long, conflicts_with_all = ["with_token", "password_stdin"])]
    pub sso: bool,
    /// With --sso: log in in the browser (loopback redirect with PKCE)
    #[arg(long, requires = "sso", conflicts_with = "device")]
    pub browser: bool,
    /// With --sso: the device flow (a URL and a code to enter anywhere), for SSH sessions and
    /// machines without a browser
    #[arg(long, requires = "sso")]
    pub device: bool,
    /// With --sso: a PEM file of CA certificates to trust for the OpenID provider, besides
    /// the web roots (a provider behind a company CA)
    #[arg(long, env = "LQX_SSO_CA_CERT", value_name = "FILE", requires = "sso")]
    pub sso_ca_cert: Option<PathBuf>,
    /// Store the token in a 0600 file under the config dir instead of the OS keyring
    #[arg(long)]
    pub insecure_storage: bool,
    /// Where to store the token
    #[arg(long, env = "LQX_TOKEN_STORAGE", value_enum, conflicts_with = "insecure_storage")]
    pub token_storage: Option<StorageKind>,
}

#[derive(Debug, Subcommand)]
pub enum AuthCmd {
    /// Server, user, role, expiry and where the token is stored
    Status {
        /// Also print the access token
        #[arg(long)]
        show_token: bool,
    },
    /// Print the access token (refreshed if needed), e.g. for curl
    Token,
}

#[derive(Debug, Subcommand)]
pub enum ContextCmd {
    /// List contexts
    #[command(visible_alias = "ls")]
    List,
    /// Make a context the current one
    Use { name: String },
    /// Show a context (default: the current one)
    Show { name: Option<String> },
    /// Delete a context and its stored token
    #[command(visible_alias = "rm")]
    Delete {
        name: String,
        #[command(flatten)]
        yes: YesArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum VmCmd {
    /// Create a VM
    #[command(after_help = crate::examples::VM_CREATE)]
    Create(VmCreateArgs),
    /// List VMs
    #[command(visible_alias = "ls", after_help = crate::examples::VM_LIST)]
    List(VmListArgs),
    /// Show a VM
    Get {
        /// The VM (name or id)
        #[arg(add = crate::complete::vm_names())]
        vm: String,
    },
    /// Change a VM's CPU, memory, description or labels
    Update(VmUpdateArgs),
    /// Start a VM
    Start {
        /// The VM (name or id)
        #[arg(add = crate::complete::vm_names())]
        vm: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Stop a VM (graceful shutdown; --force powers it off)
    Stop {
        /// The VM (name or id)
        #[arg(add = crate::complete::vm_names())]
        vm: String,
        /// Power off instead of a graceful shutdown
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Reboot a VM
    Reboot {
        /// The VM (name or id)
        #[arg(add = crate::complete::vm_names())]
        vm: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Delete a VM
    #[command(visible_alias = "rm")]
    Delete {
        /// The VM (name or id)
        #[arg(add = crate::complete::vm_names())]
        vm: String,
        /// Stop it first if it runs
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        yes: YesArgs,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Migrate a VM to another node (live unless --cold)
    #[command(after_help = crate::examples::VM_MIGRATE)]
    Migrate {
        /// The VM (name or id)
        #[arg(add = crate::complete::vm_names())]
        vm: String,
        /// Target node (name or id); default: the scheduler picks
        #[arg(long, add = crate::complete::node_names())]
        to: Option<String>,
        /// Stop, move and start instead of a live migration (the guest is down meanwhile;
        /// without it a running VM moves live or not at all)
        #[arg(long, conflicts_with = "cancel")]
        cold: bool,
        /// Abort the live migration of this VM in flight; it keeps running on its source
        #[arg(long)]
        cancel: bool,
        /// Live: bandwidth cap in MiB/s
        #[arg(long, value_name = "MIB_PER_SEC")]
        bandwidth: Option<u64>,
        /// Live: abort after this long (e.g. 10m), or switch to post-copy with --post-copy
        #[arg(long, value_parser = humantime::parse_duration)]
        timeout: Option<std::time::Duration>,
        /// Live: throttle a guest that dirties memory faster than it is copied
        #[arg(long)]
        auto_converge: bool,
        /// Live: at the timeout, switch to post-copy (finishes, but a network failure then
        /// loses the guest) instead of aborting
        #[arg(long, requires = "timeout")]
        post_copy: bool,
        /// Live: carry the migration stream inside the libvirtd connection (its TLS or SSH)
        #[arg(long)]
        tunnelled: bool,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Follow changes of one VM or all VMs
    Watch {
        #[arg(add = crate::complete::vm_names())]
        vm: Option<String>,
        /// Resume after this event sequence number
        #[arg(long, value_name = "SEQ")]
        resume_from: Option<u64>,
    },
}

#[derive(Debug, Args)]
pub struct VmCreateArgs {
    pub name: String,
    /// Virtual CPUs
    #[arg(long, default_value_t = 1)]
    pub cpu: u32,
    /// Memory, e.g. 512MiB, 4GiB
    #[arg(long, value_parser = clap_size, value_name = "SIZE", default_value = "1GiB")]
    pub memory: u64,
    /// Disk size, e.g. 20GiB (repeat for more disks)
    #[arg(long, value_parser = clap_size, value_name = "SIZE")]
    pub disk: Vec<u64>,
    /// Storage pool for the disks
    #[arg(long)]
    pub pool: Option<String>,
    /// Network or bridge (repeat for more NICs)
    #[arg(long)]
    pub network: Vec<String>,
    /// Place it on this node (name or id) at creation; not a pin: maintenance, DRS and HA
    /// may move it later (use --anti-affinity or labels to constrain). Default: the
    /// scheduler picks
    #[arg(long, add = crate::complete::node_names())]
    pub node: Option<String>,
    /// Restart it elsewhere when its node fails
    #[arg(long)]
    pub ha: bool,
    /// HA restart priority
    #[arg(long, value_enum, requires = "ha")]
    pub ha_priority: Option<HaPriorityArg>,
    /// Keep apart from other VMs of this group
    #[arg(long, value_name = "GROUP")]
    pub anti_affinity: Option<String>,
    /// Label key=value (repeatable)
    #[arg(short, long, value_parser = clap_label, value_name = "K=V")]
    pub label: Vec<(String, String)>,
    /// Free text shown by `vm get`
    #[arg(long)]
    pub description: Option<String>,
    /// Start it once created
    #[arg(long)]
    pub start: bool,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum HaPriorityArg {
    Low,
    Medium,
    High,
    Highest,
}

#[derive(Debug, Args)]
pub struct VmUpdateArgs {
    /// The VM (name or id)
    #[arg(add = crate::complete::vm_names())]
    pub vm: String,
    /// Virtual CPUs
    #[arg(long)]
    pub cpu: Option<u32>,
    /// Memory, e.g. 512MiB, 4GiB
    #[arg(long, value_parser = clap_size, value_name = "SIZE")]
    pub memory: Option<u64>,
    /// Free text shown by `vm get`
    #[arg(long)]
    pub description: Option<String>,
    /// Replace the labels with these key=value pairs (repeatable)
    #[arg(short, long, value_parser = clap_label, value_name = "K=V")]
    pub label: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct VmListArgs {
    /// Only VMs on this node (name or id)
    #[arg(long, add = crate::complete::node_names())]
    pub node: Option<String>,
    /// Only VMs in this state
    #[arg(long, value_enum)]
    pub state: Option<VmStateArg>,
    /// Only VMs with this label key=value (repeatable; all must match)
    #[arg(short, long, value_parser = clap_label, value_name = "K=V")]
    pub label: Vec<(String, String)>,
    /// Only VMs whose name starts with this
    #[arg(long)]
    pub name_prefix: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum VmStateArg {
    Pending,
    Stopped,
    Starting,
    Running,
    Stopping,
    Migrating,
    Paused,
    Failed,
    Unknown,
}

#[derive(Debug, Subcommand)]
pub enum NodeCmd {
    /// List nodes
    #[command(visible_alias = "ls")]
    List {
        #[arg(long, value_enum)]
        phase: Option<NodePhaseArg>,
        #[arg(short, long, value_parser = clap_label, value_name = "K=V")]
        label: Vec<(String, String)>,
    },
    /// Show a node
    Get {
        /// The node (name or id)
        #[arg(add = crate::complete::node_names())]
        node: String,
    },
    /// Let the scheduler place VMs on a node again
    Enable {
        /// The node (name or id)
        #[arg(add = crate::complete::node_names())]
        node: String,
    },
    /// Stop placing new VMs on a node (cordon)
    Disable {
        /// The node (name or id)
        #[arg(add = crate::complete::node_names())]
        node: String,
    },
    /// Enter or exit maintenance
    #[command(subcommand, after_help = crate::examples::NODE_MAINTENANCE)]
    Maintenance(MaintenanceCmd),
    /// Create a token a new node's agent joins with
    JoinToken {
        /// Lifetime of the token
        #[arg(long, value_parser = clap_duration, default_value = "1h")]
        ttl: Duration,
        /// Only admit a node of this name
        #[arg(long)]
        node_name: Option<String>,
    },
    /// Delete a node
    #[command(visible_alias = "rm")]
    Delete {
        /// The node (name or id)
        #[arg(add = crate::complete::node_names())]
        node: String,
        /// Delete even with VMs assigned (they become pending)
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        yes: YesArgs,
    },
    /// Power a host on or off through its BMC, or show its power state
    #[command(subcommand)]
    Power(PowerCmd),
    /// Follow changes of one node or all nodes
    Watch {
        #[arg(add = crate::complete::node_names())]
        node: Option<String>,
        #[arg(long, value_name = "SEQ")]
        resume_from: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MaintenanceCmd {
    /// Put a node into maintenance, migrating its VMs away
    #[command(after_help = crate::examples::NODE_MAINTENANCE)]
    Enter {
        /// The node (name or id)
        #[arg(add = crate::complete::node_names())]
        node: String,
        /// Leave the VMs where they are
        #[arg(long)]
        no_evacuate: bool,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Take a node out of maintenance
    Exit {
        /// The node (name or id)
        #[arg(add = crate::complete::node_names())]
        node: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PowerCmd {
    /// Power a host on (from standby) through its BMC or Wake-on-LAN
    On { node: String },
    /// Power a host off (standby) through its BMC; refused while VMs run there
    Off {
        node: String,
        /// Cut the power instead of asking the OS to shut down
        #[arg(long)]
        force: bool,
    },
    /// Show the power state lqx records and what the BMC reports now
    Status { node: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum NodePhaseArg {
    Ready,
    NotReady,
    Maintenance,
    Draining,
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create a user (password from a prompt or --password-stdin)
    Create {
        username: String,
        #[arg(long, value_enum, default_value = "viewer")]
        role: RoleArg,
        #[arg(long)]
        email: Option<String>,
        /// Read the password from stdin
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users
    #[command(visible_alias = "ls")]
    List,
    /// Change a user's email, role or whether it is disabled
    Update {
        user: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long, value_enum)]
        role: Option<RoleArg>,
        /// Disable the account
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        /// Enable the account
        #[arg(long)]
        enable: bool,
    },
    /// Delete a user
    #[command(visible_alias = "rm")]
    Delete {
        user: String,
        #[command(flatten)]
        yes: YesArgs,
    },
    /// Change your password, or (admins) reset another user's
    Passwd {
        /// The user whose password an admin resets; default: yourself
        user: Option<String>,
        /// Read from stdin: the old then the new password on two lines (only the new
        /// one for an admin reset)
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    Operator,
    Viewer,
    /// No global role: works only in the projects it is a member of
    None,
}

impl RoleArg {
    pub fn as_str(self) -> &'static str {
        match self {
            RoleArg::Admin => "admin",
            RoleArg::Operator => "operator",
            RoleArg::Viewer => "viewer",
            RoleArg::None => "none",
        }
    }
}

/// A role in a project.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProjectRoleArg {
    Admin,
    Operator,
    Viewer,
}

impl ProjectRoleArg {
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectRoleArg::Admin => "admin",
            ProjectRoleArg::Operator => "operator",
            ProjectRoleArg::Viewer => "viewer",
        }
    }
}

/// A project's limits (0 lifts a limit).
#[derive(Debug, Args, Clone, Copy, Default)]
pub struct QuotaArgs {
    /// Most vCPUs the project's VMs may hold together (0: no limit)
    #[arg(long, value_name = "N")]
    pub vcpus: Option<u64>,
    /// Most memory the project's VMs may hold together, e.g. 64GiB (0: no limit)
    #[arg(long, value_parser = clap_size_or_zero, value_name = "SIZE")]
    pub memory: Option<u64>,
    /// Most VMs the project may hold (0: no limit)
    #[arg(long, value_name = "N")]
    pub max_vms: Option<u64>,
}

fn clap_size_or_zero(s: &str) -> Result<u64, String> {
    if s.trim() == "0" { Ok(0) } else { clap_size(s) }
}

#[derive(Debug, Subcommand)]
pub enum ProjectCmd {
    /// Create a project (cluster admins)
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        quota: QuotaArgs,
    },
    /// List the projects you are a member of, with usage and quota
    List,
    /// Show a project: quota, usage and your role (default: --project or the context's)
    Get { project: Option<String> },
    /// Change a project's name, description or quota (cluster admins)
    Update {
        project: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        quota: QuotaArgs,
    },
    /// Delete an empty project (cluster admins; refused while it holds VMs)
    Delete {
        project: String,
        #[command(flatten)]
        yes: YesArgs,
    },
    /// Make a project the current context's default
    Use { project: String },
    /// Members of the project (--project or the context's): add, remove, list
    #[command(subcommand)]
    Member(MemberCmd),
}

#[derive(Debug, Subcommand)]
pub enum MemberCmd {
    /// Give a user a role in the project (replaces its role there)
    Add {
        user: String,
        #[arg(long, value_enum, default_value = "viewer")]
        role: ProjectRoleArg,
    },
    /// Take a user out of the project
    Remove { user: String },
    /// List the project's members
    List,
}

#[derive(Debug, Subcommand)]
pub enum ApikeyCmd {
    /// Create an API key; its secret is printed once
    Create {
        name: String,
        /// Role of the key (no higher than yours); default: viewer, the least
        #[arg(long, value_enum, default_value = "viewer")]
        role: RoleArg,
        /// Lifetime, e.g. 30d
        #[arg(long, value_parser = clap_duration, default_value = "90d")]
        ttl: Duration,
    },
    /// List API keys
    #[command(visible_alias = "ls")]
    List {
        /// Every user's keys (admins)
        #[arg(long)]
        all: bool,
    },
    /// Revoke an API key
    #[command(visible_alias = "rm")]
    Revoke {
        /// The key: its name, id, or an unambiguous id prefix (the short id `apikey list` shows)
        #[arg(value_name = "KEY", add = crate::complete::api_key_names())]
        id: String,
        #[command(flatten)]
        yes: YesArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// List audit entries, newest first
    #[command(visible_alias = "ls")]
    List {
        /// Only this user's actions
        #[arg(long)]
        user: Option<String>,
        /// Only this action, e.g. vm.create (as the ACTION column shows it) or its RPC,
        /// compute.VMService/CreateVM
        #[arg(long)]
        action: Option<String>,
        /// Only this resource id
        #[arg(long)]
        resource: Option<String>,
        /// Only this result: ok, denied or error
        #[arg(long)]
        result: Option<String>,
        /// Only entries newer than this, e.g. 1h
        #[arg(long, value_parser = clap_duration)]
        since: Option<Duration>,
        /// At most this many entries, newest first (0: all); a note says when there are more
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum AlertCmd {
    /// List alerts
    #[command(visible_alias = "ls", after_help = crate::examples::ALERT_LIST)]
    List {
        #[arg(long, value_enum)]
        severity: Option<SeverityArg>,
        /// Only open (unresolved) alerts
        #[arg(long)]
        unresolved: bool,
        /// Only unacknowledged alerts
        #[arg(long)]
        unacknowledged: bool,
        /// Only alerts of this source type
        #[arg(long, value_enum)]
        source_type: Option<SourceTypeArg>,
        /// Only alerts of this source id
        #[arg(long)]
        source: Option<String>,
    },
    /// Show an alert
    Get { id: String },
    /// Acknowledge an alert
    Ack { id: String },
    /// Resolve an alert
    Resolve { id: String },
    /// Counts of open alerts by severity
    Summary,
    /// Manage alert webhooks
    #[command(subcommand)]
    Webhook(WebhookCmd),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SeverityArg {
    Critical,
    Warning,
    Info,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SourceTypeArg {
    Vm,
    Host,
    Storage,
    Network,
    Cluster,
    System,
}

#[derive(Debug, Subcommand)]
pub enum WebhookCmd {
    /// Add a webhook
    Add {
        url: String,
        /// Only these severities (comma-separated); default: all
        #[arg(long, value_enum, value_delimiter = ',')]
        severity: Vec<SeverityArg>,
        /// Read the HMAC-SHA256 signing secret from stdin
        #[arg(long)]
        secret_stdin: bool,
    },
    /// List webhooks
    #[command(visible_alias = "ls")]
    List,
    /// Delete a webhook
    #[command(visible_alias = "rm")]
    Delete {
        id: String,
        #[command(flatten)]
        yes: YesArgs,
    },
    /// Send a test alert to a webhook
    Test { id: String },
}

#[derive(Debug, Subcommand)]
pub enum DrsCmd {
    /// Configuration, last run, imbalance and pending recommendations
    Status,
    /// List recommendations
    #[command(visible_alias = "ls", after_help = crate::examples::DRS_LIST)]
    List {
        #[arg(long, value_enum)]
        status: Option<RecStatusArg>,
    },
    /// Show a recommendation
    Get { id: String },
    /// Approve a recommendation
    Approve { id: String },
    /// Apply a recommendation (performs the migration, or the power on/off)
    #[command(after_help = crate::examples::DRS_APPLY)]
    Apply {
        id: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Reject a recommendation
    Reject {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Run an analysis now
    Run,
    /// Change the DRS configuration
    Configure(DrsConfigureArgs),
    /// Plan offline over a cluster file (no server): what DRS would recommend
    Simulate(DrsSimulateArgs),
}

#[derive(Debug, Args)]
pub struct DrsSimulateArgs {
    /// Cluster file (YAML: nodes and VMs; see docs/architecture.md, cluster files)
    #[arg(long, value_name = "FILE")]
    pub cluster: PathBuf,
    /// Apply each round's moves and plan again, up to this many rounds
    #[arg(long, default_value_t = 1)]
    pub rounds: u32,
    /// CPU threshold, percent [default: the DRS default]
    #[arg(long)]
    pub threshold_cpu: Option<f64>,
    /// Memory threshold, percent [default: the DRS default]
    #[arg(long)]
    pub threshold_memory: Option<f64>,
    /// 1 (mandatory moves only) .. 5 (aggressive) [default: the DRS default]
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub migration_threshold: Option<u8>,
}

#[derive(Debug, Args)]
pub struct DrsConfigureArgs {
    /// Turn DRS on or off (true/false)
    #[arg(long)]
    pub enabled: Option<bool>,
    /// manual: recommend only; partial: apply mandatory moves; full: apply all
    #[arg(long, value_enum)]
    pub automation: Option<AutomationArg>,
    /// How often DRS analyses the cluster, e.g. 5m
    #[arg(long, value_parser = clap_duration)]
    pub interval: Option<Duration>,
    /// CPU threshold, percent
    #[arg(long)]
    pub threshold_cpu: Option<f64>,
    /// Memory threshold, percent
    #[arg(long)]
    pub threshold_memory: Option<f64>,
    /// 1 (mandatory moves only) .. 5 (aggressive)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=5))]
    pub migration_threshold: Option<u32>,
    /// Migrations at once per host
    #[arg(long)]
    pub max_migrations_per_host: Option<u32>,
    /// Moves per host per round; 0: derived from migration capacity
    #[arg(long)]
    pub migrations_per_round: Option<u32>,
    /// DPM: put hosts in standby when the cluster can run on fewer
    #[arg(long)]
    pub dpm: Option<bool>,
    /// DPM automation (manual: recommend only; partial: power on; full: power on and off)
    #[arg(long, value_enum)]
    pub dpm_automation: Option<AutomationArg>,
    /// DPM: consolidate while the hosts on are used less than this on average, percent
    #[arg(long)]
    pub dpm_power_off_below: Option<f64>,
    /// DPM: wake a host when the hosts on are used more than this on average, percent
    #[arg(long)]
    pub dpm_power_on_above: Option<f64>,
    /// DPM: never fewer hosts on than this
    #[arg(long)]
    pub dpm_min_hosts_on: Option<u32>,
    /// DPM: hosts never powered off (comma-separated names; "" for none)
    #[arg(long, value_delimiter = ',')]
    pub dpm_opt_out: Option<Vec<String>>,
    /// DPM: estimated watts per host, for the energy estimate
    #[arg(long)]
    pub dpm_watts_per_host: Option<f64>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AutomationArg {
    Manual,
    Partial,
    Full,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RecStatusArg {
    Pending,
    Approved,
    Applying,
    Applied,
    Rejected,
    Failed,
    Expired,
}

#[derive(Debug, Subcommand)]
pub enum HaCmd {
    /// Per-node health, lease age, protected VMs
    #[command(after_help = crate::examples::HA_STATUS)]
    Status,
    /// Declare a node down and restart its HA VMs elsewhere
    Failover {
        /// The node (name or id)
        #[arg(add = crate::complete::node_names())]
        node: String,
        /// Confirm the host is powered off (required when not interactive)
        #[command(flatten)]
        yes: YesArgs,
    },
    /// Plan offline where a node's HA VMs would restart if it failed (no server needed)
    Simulate(HaSimulateArgs),
}

#[derive(Debug, Args)]
pub struct HaSimulateArgs {
    /// Cluster file (YAML: nodes and VMs; see docs/architecture.md, cluster files)
    #[arg(long, value_name = "FILE")]
    pub cluster: PathBuf,
    /// The node that fails
    #[arg(long, value_name = "NODE")]
    pub fail: String,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Resource types: vm, node, alert, drs, ha (comma-separated)
    #[arg(long = "type", value_name = "TYPES", value_delimiter = ',')]
    pub types: Vec<String>,
    /// Event types: created, updated, deleted, started, stopped, migrated, ...
    #[arg(long = "event", value_name = "EVENTS", value_delimiter = ',')]
    pub events: Vec<String>,
    /// Only these resource ids
    #[arg(long = "id", value_name = "IDS", value_delimiter = ',')]
    pub ids: Vec<String>,
    /// Resume after this sequence number
    #[arg(long, value_name = "SEQ")]
    pub resume_from: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every `lqx` line of an Examples section parses (a `$(...)` argument stands for an id).
    #[test]
    fn help_examples_parse() {
        use crate::examples::*;
        let all = [
            LOGIN,
            VM_CREATE,
            VM_LIST,
            VM_MIGRATE,
            NODE_MAINTENANCE,
            DRS_LIST,
            DRS_APPLY,
            ALERT_LIST,
            WATCH,
            HA_STATUS,
        ];
        let mut n = 0;
        for text in all {
            assert!(text.starts_with("Examples:\n"), "{text}");
            for line in text.lines().skip(1) {
                let line = line.trim();
                if line.starts_with('#') {
                    continue;
                }
                let line = match line.split_once("\"$(") {
                    Some((before, after)) => format!("{before}ID{}", after.rsplit_once(")\"").unwrap().1),
                    None => line.to_string(),
                };
                // The `lqx ...` command of the line (after `echo ... |`).
                let cmd = line.rsplit("| ").next().unwrap();
                let words: Vec<&str> = cmd.split_whitespace().collect();
                assert_eq!(words[0], "lqx", "{line}");
                if let Err(e) = Cli::try_parse_from(&words) {
                    panic!("{line}: {e}");
                }
                n += 1;
            }
        }
        assert!(n >= 25, "{n} examples");
        let help = Cli::command()
            .find_subcommand_mut("vm")
            .unwrap()
            .find_subcommand_mut("create")
            .unwrap()
            .render_help()
            .to_string();
        assert!(help.contains("Examples:\n  lqx vm create web-1"), "{help}");
    }

    #[test]
    fn command_tree_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes_are_parsed_in_the_first_stage() {
        let cli = Cli::try_parse_from([
            "lqx", "vm", "create", "web", "--cpu", "2", "--memory", "4GiB", "--disk", "20G",
        ])
        .unwrap();
        let Command::Vm(VmCmd::Create(a)) = cli.command else {
            panic!("vm create")
        };
        assert_eq!((a.cpu, a.memory, a.disk.clone()), (2, 4096, vec![20480]));
        let err = Cli::try_parse_from(["lqx", "vm", "create", "web", "--memory", "lots"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--memory"), "{err}");
    }

    #[test]
    fn global_flags_anywhere() {
        let cli =
            Cli::try_parse_from(["lqx", "vm", "list", "-o", "json", "--timeout", "30s", "--label", "a=b"]).unwrap();
        assert_eq!(cli.global.output, Some(crate::output::Format::Json));
        assert_eq!(cli.global.timeout, Duration::from_secs(30));
    }

    #[test]
    fn help_epilogue_matches_exit_codes_and_environment() {
        use crate::error::ExitCode;
        for c in ExitCode::ALL {
            assert!(
                AFTER_HELP.contains(&format!("\n  {}  ", c.code())),
                "exit code {} missing",
                c.code()
            );
        }
        for (var, what) in ENVIRONMENT {
            let line = AFTER_HELP
                .lines()
                .find(|l| l.trim_start().starts_with(var))
                .unwrap_or_default();
            assert!(line.ends_with(what), "{var}: {line:?}");
        }
    }

    #[test]
    fn every_env_flag_names_its_variable_in_help() {
        let mut cmd = Cli::command();
        let help = cmd.render_long_help().to_string();
        for var in [
            "LQX_SERVER",
            "LQX_CONTEXT",
            "LQX_OUTPUT",
            "LQX_COLUMNS",
            "LQX_TIMEOUT",
            "LQX_CA_CERT",
            "LQX_NO_INPUT",
            "LQX_DEBUG",
        ] {
            assert!(help.contains(&format!("[env: {var}")), "{var} missing in help");
        }
    }
}
