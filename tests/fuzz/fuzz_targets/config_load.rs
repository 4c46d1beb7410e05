//! Fuzz target of the config loader (`microlith::config::Config::from_toml`): TOML text as
//! `serve --config` and `check-config` read it, parsed and validated.
//!
//! Properties: no panic; an accepted config, written out as TOML, loads again and writes
//! out the same.

#![no_main]

use libfuzzer_sys::fuzz_target;
use microlith::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::from_toml(text, "fuzz input") else {
        return;
    };
    let written = toml::to_string(&config).expect("an accepted config serializes");
    let again = Config::from_toml(&written, "written config")
        .unwrap_or_else(|e| panic!("{written}\ndoes not load again: {e}"));
    assert_eq!(
        toml::to_string(&again).ok().as_deref(),
        Some(written.as_str())
    );
});
