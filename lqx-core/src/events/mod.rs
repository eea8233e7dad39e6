//! events (in progress).
