//! drs (in progress).
