//! Generates the CRI client from our own `runtime.v1` proto, and the containerd events client
//! from our own `containerd.services.events.v1` subset, with protox (pure Rust, no protoc).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = protox::compile(
        [
            "proto/runtime/v1/api.proto",
            "proto/containerd/services/events/v1/events.proto",
        ],
        ["proto"],
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(files)?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
