//! Loading a kubeadm-style base config plus 100 drop-ins, against a reference measured in the
//! same run: reading the same 101 files and parsing each into a JSON value (the floor for any
//! YAML loader, before merging, typing, defaulting and validating).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use node_config::{Loader, list_drop_ins};

fn fixture() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("kubelet.yaml");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/configs/kubelet.yaml");
    fs::copy(sample, &base).unwrap();
    let dropins = dir.path().join("kubelet.conf.d");
    fs::create_dir(&dropins).unwrap();
    for i in 0..100 {
        let body = format!(
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: {}\nclusterDNS:\n- 10.96.0.{}\nsystemReserved:\n  cpu: {}m\n  memory: {}Mi\nfeatureGates:\n  MemoryQoS: {}\nevictionHard:\n  memory.available: {}Mi\nauthorization:\n  webhook:\n    cacheAuthorizedTTL: {}s\n",
            50 + i,
            i % 250,
            100 + i,
            256 + i,
            i % 2 == 0,
            100 + i,
            60 + i
        );
        fs::write(dropins.join(format!("{i:03}-dropin.conf")), body).unwrap();
    }
    (dir, base, dropins)
}

fn bench(c: &mut Criterion) {
    let (_dir, base, dropins) = fixture();
    let mut group = c.benchmark_group("load_base_plus_100_dropins");
    group.bench_function("node_config_loader", |b| {
        b.iter(|| {
            Loader::new()
                .config_file(&base)
                .config_dir(&dropins)
                .load()
                .unwrap()
        })
    });
    group.bench_function("reference_read_and_parse_only", |b| {
        b.iter(|| {
            let mut files = vec![base.clone()];
            files.extend(list_drop_ins(&dropins).unwrap());
            for f in files {
                let text = fs::read_to_string(&f).unwrap();
                let v: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
                std::hint::black_box(v);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
