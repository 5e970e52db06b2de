//! Wire formats (being written; see the brief).
