//! sluice-wire
