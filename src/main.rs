//! The stock `microlith` binary: the node with the example components of `examples/`, each
//! enabled by its `[components.NAME]` section of the config. The example crates depend on
//! this library, so the binary compiles their sources in as modules (a deployment of one's
//! own simply depends on its component crates and calls `microlith::app::main`).

#[path = "../examples/catalog/src/lib.rs"]
mod catalog;
#[path = "../examples/shop/src/lib.rs"]
mod shop;
#[path = "../examples/telemetry/src/lib.rs"]
mod telemetry;

use std::sync::Arc;

fn main() -> std::process::ExitCode {
    microlith::app::main(vec![
        Arc::new(catalog::Catalog),
        Arc::new(shop::Shop),
        Arc::new(telemetry::Telemetry),
    ])
}
