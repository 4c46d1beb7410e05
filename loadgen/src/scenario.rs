//! Scenario files: a TOML file with `mode = "http"|"mqtt"`, an optional `name` and
//! `description`, and any flag of that mode as a key (`rate = 5000`, `mix = "get=90,put=10"`).
//! It is expanded into the equivalent command line; flags given after the file override
//! its keys. Unknown keys and bad values are reported with the file's name.

use crate::cli::Cli;
use anyhow::{anyhow, bail, Context, Result};
use clap::CommandFactory;
use std::path::Path;

/// Returns the argv (`loadgen MODE --flag value ... OVERRIDES`) the scenario stands for.
pub fn expand(file: &Path, overrides: &[String]) -> Result<Vec<String>> {
    let shown = file.display();
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("scenario file {shown}: cannot read it"))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        anyhow!("scenario file {shown}: invalid TOML: {}", e.message())
    })?;
    let mode = match table.get("mode") {
        Some(toml::Value::String(m)) if m == "http" || m == "mqtt" => m.clone(),
        Some(other) => bail!("scenario file {shown}: mode = {other} is not \"http\" or \"mqtt\""),
        None => bail!("scenario file {shown}: missing key `mode` (\"http\" or \"mqtt\")"),
    };
    let cmd = Cli::command();
    let sub = cmd
        .find_subcommand(&mode)
        .expect("http and mqtt subcommands exist");
    let known: Vec<(String, bool)> = sub
        .get_arguments()
        .filter_map(|a| {
            a.get_long()
                .map(|l| (l.to_string(), !a.get_action().takes_values()))
        })
        .collect();
    let mut argv = vec!["loadgen".to_string(), mode.clone()];
    for (key, value) in &table {
        if key == "mode" || key == "description" {
            continue;
        }
        let flag = key.replace('_', "-");
        let Some((_, is_switch)) = known.iter().find(|(l, _)| *l == flag) else {
            let names: Vec<&str> = known
                .iter()
                .map(|(l, _)| l.as_str())
                .filter(|l| *l != "help")
                .collect();
            bail!("scenario file {shown}: unknown key '{key}' for mode {mode} (known keys: mode, description, {})", names.join(", "));
        };
        let values: Vec<&toml::Value> = match value {
            toml::Value::Array(items) => items.iter().collect(),
            v => vec![v],
        };
        for v in values {
            let text = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) if *is_switch => {
                    if *b {
                        argv.push(format!("--{flag}"));
                    }
                    continue;
                }
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    bail!("scenario file {shown}: key '{key}' has an unsupported value {other}")
                }
            };
            if *is_switch {
                bail!("scenario file {shown}: key '{key}' is a switch: write {key} = true");
            }
            argv.push(format!("--{flag}"));
            argv.push(text);
        }
    }
    argv.extend(overrides.iter().cloned());
    Ok(argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!(
            "loadgen-scn-{}-{}.toml",
            std::process::id(),
            text.len()
        ));
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn expands_keys_to_flags_and_appends_overrides() {
        let p = write("mode = \"http\"\nname = \"x\"\nurl = \"http://a:1\"\ntable = \"T\"\nrate = 100\nquiet = true\n");
        let argv = expand(&p, &["--url".into(), "http://b:2".into()]).unwrap();
        assert_eq!(argv[..2], ["loadgen", "http"]);
        assert!(argv.windows(2).any(|w| w == ["--rate", "100"]));
        assert!(argv.contains(&"--quiet".to_string()));
        assert_eq!(argv[argv.len() - 2..], ["--url", "http://b:2"]);
    }

    #[test]
    fn unknown_keys_and_modes_name_the_file() {
        let p = write("mode = \"http\"\nurl = \"http://a:1\"\nconnectoins = 5\n");
        let e = expand(&p, &[]).unwrap_err().to_string();
        assert!(
            e.contains("connectoins") && e.contains(&p.display().to_string()),
            "{e}"
        );
        let p = write("mode = \"ftp\"\n");
        assert!(expand(&p, &[]).unwrap_err().to_string().contains("ftp"));
    }
}
