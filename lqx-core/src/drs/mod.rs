//! DRS: the distributed resource scheduler (and, in [`dpm`], power management: hosts put in
//! standby when the cluster can run on fewer and woken when it needs them). `plan` is pure (a snapshot, the config, the
//! hysteresis state, the recent migrations and `now` in; a plan out); the engine that runs
//! it every `interval`, persists recommendations and applies them is [`engine`].
//!
//! The rule, in plain words:
//! - **Load.** A node's load is the smoothed measured use of its running VMs (CPU in cores,
//!   memory in MiB), plus whatever else the node itself reports using. Utilization is load
//!   over the node's allocatable capacity. Allocation (vCPUs and memory of the VMs assigned
//!   to a node, with its overcommit ratios) is the hard limit: no move may break it.
//! - **Hot.** A Ready node above `threshold_cpu` or `threshold_memory` is hot. Relief brings
//!   it down to `threshold - hysteresis_margin`, and no move may take its target above that
//!   line, so nothing is made hot and small fluctuations do not trigger again.
//! - **Imbalance** is the capacity-weighted standard deviation of node utilization across
//!   Ready nodes, CPU and memory pooled (the root mean square of the two), in percentage
//!   points. Balancing minimises the capacity-weighted sum of squared utilizations, which
//!   lowers that deviation and pulls the hottest nodes towards the cluster mean.
//! - **Migration threshold** (1-5, as in vSphere): 1 makes mandatory moves only; 2 also
//!   relieves hot nodes; 3, 4 and 5 also balance when the imbalance is above 10, 5 and 2
//!   points, until it is `hysteresis_margin` lower, with moves worth at least 50, 20 and 5
//!   units of gain (one unit: one squared percentage point on a node of average size).
//!   Level 5 also balances while the fullest node is more than 8 points above the cluster
//!   mean of that resource, until it is 3 points above (one hot node among many barely
//!   moves the deviation). When a level-5 round finds no balancing move worth it and the
//!   fullest node is still more than 3 points above the mean, it makes peak moves: off
//!   the nodes furthest above the mean, the move with the most drop per unit of cost in
//!   the larger excess of its source and target (at least a quarter point), whatever it does
//!   to the squared sum (which may keep a node high because it trades one resource against
//!   the other, or favours filling small nodes); targets are the coolest of each node size
//!   that have allocation left, and, when none has room for the VM, the nodes furthest below
//!   the mean that do. When no single VM can go (memory fully allocated on every
//!   cool node), a peak swap trades a VM for a lighter one of about the same size from a
//!   cool node; failing that, a chain: a light VM leaves a cool full node for a node with
//!   room, then the VM takes its place. A fullest node nothing lowers gives way to the next
//!   fullest. At level 5 a
//!   balancing move may not take a node more than 3 points above the mean (or further above
//!   it than it is), so peak moves never undo balancing moves: balancing lowers the squared
//!   sum without raising the sorted excesses, peak moves lower the sorted excesses, and so
//!   rounds end even once the no-ping-pong history has aged out.
//! - **Peak moves at levels 3 and 4** (cost-gated). Relief stops at the relief line and
//!   balancing at the tolerance, which can leave the busiest host 20-30 points above where
//!   single moves take it. While the busiest host's fuller resource is more than 2 points
//!   above the cluster mean of that resource (held like an imbalance), the move off it with
//!   the most drop per unit of cost (cost + 16 GiB, so one big drop beats several small
//!   ones) is made, if the drop of the pair's fuller utilization (at least half a point)
//!   pays for it: 0.1 point per GiB-equivalent of cost at level 3, 0.05 at level 4 (the
//!   cost as for balancing, below). When no single move pays, a peak swap may: a VM of the
//!   busiest host for a VM of another node, when the trade lowers both nodes' fuller
//!   utilization (typically a CPU-heavy VM for a memory-heavy one), both end below the
//!   busiest host's level, the drop pays for both moves, and each step keeps allocation and
//!   the relief line (as balancing swaps). It stops at the first busiest host nothing
//!   lowers enough. At these levels a balancing move or swap must lower the larger fuller
//!   utilization of its two nodes too, so balancing and peak moves both lower the sorted
//!   fuller utilizations and cannot undo each other.
//! - **Mandatory moves** come first and ignore thresholds and the hold count: every VM of a
//!   node in maintenance or draining is evacuated, and a VM that breaks its placement policy
//!   (on an excluded node, off its required nodes, sharing a node with a member of its
//!   anti-affinity group) is moved. Their target is the node left least hot, preferring one
//!   that stays below the relief line.
//! - **Relief** takes the hottest node first. Each move must relieve it; the fewest moves
//!   win: if one VM clears the remaining excess, the cheapest such VM (least memory to copy)
//!   moves, otherwise the VM that clears the most of it. Its target is the node left least
//!   hot among the coolest that can take it. When no single VM fits anywhere, a pair makes
//!   room first; failing that, in a cluster of more than 8 nodes, room is made in the round
//!   on any node under its line, not only the coolest (light VMs leave it for nodes with
//!   room, each staying under its line, then a VM of the hot node takes their place),
//!   within a work budget spent on the hottest nodes first. On small clusters (at most 8 nodes and 64 movable VMs) an exact search
//!   then looks for fewer moves (up to 5 when greedy leaves a node hot): the fewest moves,
//!   of any VM, after which every hot node is under its line and every node that received
//!   a VM is too, in an order where each step keeps allocation and anti-affinity and leaves
//!   its target under the line unless a later step takes load off it. A budget of expanded
//!   states bounds it; past it, the greedy plan stands. When a node stays hot because its
//!   relief needs more migrations on some host than one round allows, a staged relief is
//!   planned without the per-host budget, every step leaving its target under the line:
//!   the exact search on small clusters, else room made with several VMs (light VMs of a
//!   cool, fully allocated node leave it for nodes with room, then a VM of the hot node
//!   takes their place). The first steps that fit are made; the rest is carried in the
//!   state to the next rounds, checked again each round, and dropped when a step no
//!   longer holds or the node has cooled. In a cluster of at most 8 nodes where a hot node
//!   gets no move at all in a round, the relief greedy and room relief find without the
//!   per-host budget is carried the same way when it leaves less heat, and only if it can
//!   be made round after round to its end: it may trade VMs through the hot node (light
//!   VMs come in to make room elsewhere before its heavy one leaves), the hot node never
//!   fuller than when the relief began.
//! - **Cost-benefit.** A balancing move (or swap) is made only when its gain pays for its
//!   cost: the gain in units must reach 12, 6 or 1.5 (levels 3, 4, 5) per GiB-equivalent of
//!   cost, where the cost is the memory in use to copy, inflated by pre-copy for the dirty
//!   rate estimated from the VM's measured CPU use (1 / (1 - dirty / bandwidth), a fully busy
//!   guest rewriting 1 % of its memory a second), plus 256 MiB of fixed overhead, times 1 +
//!   0.05 per migration per slot already planned on its two hosts this round.
//! - **Balancing** moves the VM with the best gain per unit of cost (memory to copy) from
//!   one of the hottest nodes to one of the coolest; when allocation keeps every VM off the
//!   coolest, to a warmer node with room; failing that it swaps two VMs between a hot and
//!   a cool node (two moves, ordered so each alone keeps allocation limits; a node may go
//!   above its line only in a resource already above it that the swap lowers). Sources
//!   with nothing worthwhile are skipped for the next hottest, within a work budget.
//! - **Limits and stability.** Each round at most the round budget of moves (the config's
//!   `migrations_per_host_per_round`, or, at 0, derived from migration capacity:
//!   `max_concurrent_migrations_per_host` x `interval` / the expected migration time of the
//!   average running VM, between the concurrency and 64) start or end on a host (mandatory moves are all listed but use that budget first); a
//!   VM moves at most once per plan; a VM migrated within `recent_migration_window` is only
//!   moved again by a mandatory move (no ping-pong), or at levels 3-4 by a peak move when
//!   nothing else lowers the busiest host, and then never to a node it has been on within
//!   the window; a hot node or an imbalance must be seen
//!   in `hysteresis_hold_count` consecutive runs before it triggers non-mandatory moves.
//! - **Priority**: CRITICAL/HIGH/MEDIUM/LOW as the source's fuller resource is ≥95/≥90/≥85/
//!   below; a mandatory move is at least HIGH. A move that takes load off a node a later
//!   move lands on (making room, first half of a swap or chain) gets at least that move's
//!   priority, so working down the list by priority keeps every step feasible. Estimated duration: memory in use over
//!   `migration_bandwidth_mib_per_second`, plus a second for the switch-over.

#[cfg(feature = "server")]
pub mod alerts;
pub mod dpm;
#[cfg(feature = "server")]
pub mod engine;
mod history;
#[cfg(feature = "server")]
pub mod live;
mod planner;
pub mod reconcile;
mod smooth;
pub mod why;

pub use history::{DrsState, MigrationHistory, MigrationRecord};
pub use planner::{ClusterMetrics, DrsPlan, MoveKind, NodeMetrics, PlannedMove, UnmovableVm, measure, plan};
pub use planner::{StagedRelief, StagedStep};
pub use smooth::{Smoother, UsageSmoother};

#[cfg(test)]
mod tests;
