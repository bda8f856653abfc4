//! Format detection (placeholder: being written).
