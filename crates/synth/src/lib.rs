//! sluice-synth
