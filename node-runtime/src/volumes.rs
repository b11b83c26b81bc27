//! Volume set-up on the node: emptyDir directories (mode 0777 like the kubelet's, so a
//! container running as any user can write them) and hostPath `type` checks with the kubelet's
//! errors.
//!
//! (Being written: see the hardening issue.)
