//! The stock `microlith` binary: the node with the example components of `examples/`, each
//! enabled by its `[components.NAME]` section of the config.

fn main() -> std::process::ExitCode {
    microlith::cli::main(Vec::new())
}
