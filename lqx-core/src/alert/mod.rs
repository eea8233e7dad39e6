//! alert (in progress).
