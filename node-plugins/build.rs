//! Generates the device plugin, plugin registration and pod-resources gRPC code from our own
//! protos with protox (pure Rust, no protoc).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = protox::compile(
        [
            "proto/deviceplugin/v1beta1/api.proto",
            "proto/pluginregistration/v1/api.proto",
            "proto/podresources/v1/api.proto",
            "proto/podresources/v1alpha1/api.proto",
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
