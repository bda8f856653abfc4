//! gzip/zip containers (placeholder: being written).
