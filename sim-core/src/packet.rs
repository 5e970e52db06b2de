//! The packet model (being written; see the brief).
