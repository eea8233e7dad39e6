//! ha (in progress).
