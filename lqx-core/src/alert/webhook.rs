//! Webhook delivery (being written).
