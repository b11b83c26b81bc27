//! Paths built from pod data, kept under their base directory: every component is checked to
//! be one safe path component, directories are created and removed without following a
//! symlink a container may have planted, and removal never crosses into another filesystem.
//!
//! (Being written: see the hardening issue.)
