//! Safe `subPath` mounts, the kubelet's way (`pkg/volume/util/subpath/subpath_linux.go`): the
//! subpath is opened component by component below the volume root without following symlinks,
//! and the opened file is bind-mounted (through `/proc/self/fd/N`) onto a directory the agent
//! owns, `<podDir>/volume-subpaths/<volume>/<container>/<index>`, which is what the runtime
//! mounts. A symlink swapped in between the check and the mount cannot escape the volume.
//!
//! (Being written: see the hardening issue.)
