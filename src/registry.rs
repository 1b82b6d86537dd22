//! Application registry (being written).
