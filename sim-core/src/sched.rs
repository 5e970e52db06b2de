//! The event scheduler (being written; see the brief).
