//! The extern "C" layer (filled in by the C ABI work).
