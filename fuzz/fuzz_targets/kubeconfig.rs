//! node-heartbeat: `--kubeconfig` files through `read_kubeconfig` (the size and file-type
//! check, then kube's parser: multi-document merge, relative paths made absolute).
//!
//! Invariant: a kubeconfig that loads serializes to YAML that loads to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_fuzz::{fresh_dir, write};
use node_heartbeat::read_kubeconfig;

fuzz_target!(|data: &[u8]| {
    let dir = fresh_dir("kubeconfig");
    write(&dir, "kubeconfig", data);
    let Ok(kc) = read_kubeconfig(&dir.join("kubeconfig")) else {
        return;
    };
    let before = serde_json::to_value(&kc).expect("a kubeconfig serializes");
    let Ok(yaml) = serde_saphyr::to_string(&kc) else {
        return;
    };
    write(&dir, "printed", yaml.as_bytes());
    let again = read_kubeconfig(&dir.join("printed"))
        .unwrap_or_else(|e| panic!("printed kubeconfig does not load: {e:?}\n{yaml}"));
    assert_eq!(
        serde_json::to_value(&again).expect("serializes"),
        before,
        "round trip changed the kubeconfig\n{yaml}"
    );
});
