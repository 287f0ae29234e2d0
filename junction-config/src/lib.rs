//! junction-config (being implemented)
