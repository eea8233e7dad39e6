//! placement (in progress).
