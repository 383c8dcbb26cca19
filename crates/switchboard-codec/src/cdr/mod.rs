//! CDR
