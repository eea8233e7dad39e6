//! driver (in progress).
