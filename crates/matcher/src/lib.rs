//! sluice-matcher
