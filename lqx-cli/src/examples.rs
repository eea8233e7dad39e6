//! The Examples sections of `--help` for the main commands. Every `lqx` line is parsed by
//! a test (`cli::tests::help_examples_parse`), and all of them run against the development
//! server (`lqx-server --dev`: nodes node-1..node-3, user admin, password lqx-dev-password).

pub const LOGIN: &str = "\
Examples:
  # The development server (lqx-server --dev), password on stdin
  echo lqx-dev-password | lqx login http://127.0.0.1:8080 --username admin --password-stdin
  # No OS keyring (a server, a container, CI): the token in a 0600 file instead
  echo lqx-dev-password | lqx login http://127.0.0.1:8080 -u admin --password-stdin --insecure-storage
  # An API key instead of a password
  echo \"$LQX_KEY\" | lqx login http://127.0.0.1:8080 --with-token";

pub const VM_CREATE: &str = "\
Examples:
  lqx vm create web-1 --cpu 2 --memory 4GiB --start
  # HA, a disk, placed on node-3 at creation, started, waiting until it runs
  lqx vm create db-1 --cpu 4 --memory 8GiB --disk 40GiB --ha --node node-3 --start --wait
  # Labels, and kept apart from the other VMs of group app
  lqx vm create app-1 --memory 2GiB --label tier=app --anti-affinity app";

pub const VM_LIST: &str = "\
Examples:
  lqx vm list
  lqx vm list --state running --node node-1
  lqx vm list --label tier=app -o json
  # Chosen columns; names only, for scripts
  lqx vm list --columns name,state,node
  lqx vm list -o name";

pub const VM_MIGRATE: &str = "\
Examples:
  # Live, with progress; the scheduler picks the node without --to
  lqx vm migrate db-1 --to node-2 --wait
  # Stop, move, start (the guest is down meanwhile)
  lqx vm migrate db-1 --to node-3 --cold --wait
  # Abort a live migration in flight (the VM keeps running where it was)
  lqx vm migrate db-1 --cancel";

pub const NODE_MAINTENANCE: &str = "\
Examples:
  # Migrate its VMs away, then keep new ones off (exit 6 names a VM that cannot move)
  lqx node maintenance enter node-3
  # Keep new VMs off, leave the running ones where they are
  lqx node maintenance enter node-3 --no-evacuate
  lqx node maintenance exit node-3";

pub const DRS_LIST: &str = "\
Examples:
  lqx drs list --status pending
  # Ids only, to apply one
  lqx drs list --status pending -o name";

pub const DRS_APPLY: &str = "\
Examples:
  # An id or a short id (the ID column of `lqx drs list`), waiting until done
  lqx drs apply \"$(lqx drs list --status pending -o name | head -n 1)\" --wait
  # Start it and return at once (`lqx drs get ID` shows how it went)
  lqx drs apply \"$(lqx drs list --status pending -o name | head -n 1)\" --no-wait";

pub const ALERT_LIST: &str = "\
Examples:
  lqx alert list --unresolved
  lqx alert list --severity critical --unacknowledged
  lqx alert list --source-type host -o wide";

pub const WATCH: &str = "\
Examples:
  # Everything you may see: a table on a terminal, one JSON object per line when piped
  lqx watch
  lqx watch --type vm,node --event started,stopped,migrated
  lqx watch --type alert -o json
  # Go on after the last sequence you saw (the SEQ column, or `sequence` in JSON)
  lqx watch --resume-from 1";

pub const HA_STATUS: &str = "\
Examples:
  # Per-node health, lease age and the HA VMs on each node
  lqx ha status
  lqx ha status -o json";
