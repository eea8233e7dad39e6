//! Cluster files: nodes and VMs for simulation and what-if planning (DESIGN.md §5).
