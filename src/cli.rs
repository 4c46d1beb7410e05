//! The command line of a node: `serve`, `check-config`, `default-config`, `version`,
//! `user` / `role` on a stopped node's data directory (`accounts`), and `backup` / `restore`
//! (`backup`), for the stock binary and for every deployment that lists its own components
//! (`app::main`).

mod accounts;
mod backup;

use crate::app::Component;
use crate::config::{Config, DEFAULT_TOML};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "microlith",
    version,
    about = "A thread-per-core database, REST API, real-time streams and MQTT broker in one process",
    long_about = "microlith runs one shard per CPU core, each owning a partition of the data, and serves a \
Harper-compatible REST API on it.\n\nStart it on the embedded default (one shard per core, data in ./data, \
HTTP on port 9926):\n    microlith serve\n\nOr on your own configuration (see `microlith default-config` for every key):\n    microlith serve --config microlith.toml"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server until SIGTERM or SIGINT (exit 0 after a clean stop, 2 if it cannot start).
    Serve {
        /// TOML configuration file; without it the embedded default is used.
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Check a configuration file and that this machine can serve it (cores, io_uring, locked
    /// memory, free ports, a writable data directory), creating nothing: exit 0 if so, else 2
    /// with the key at fault.
    CheckConfig {
        /// The TOML file to check.
        file: PathBuf,
    },
    /// Print the embedded default configuration, every key commented.
    DefaultConfig,
    /// Print the version.
    Version,
    /// Users of a stopped node's data directory (add, delete, list). Replicated to the peers.
    #[command(subcommand)]
    User(UserCommand),
    /// Roles of a stopped node's data directory (add, list). Replicated to the peers.
    #[command(subcommand)]
    Role(RoleCommand),
    /// Ask the running node for a consistent backup into DIR, a new or empty directory under
    /// its `storage.backup_dir` (absolute, or relative to it). Prints its size and duration.
    Backup {
        /// The directory to write the backup into.
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
        /// The node's configuration (its HTTP address); without it, the embedded default.
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The node's base URL, e.g. http://10.0.0.5:9926 (default: `http.listen` on loopback).
        #[arg(long)]
        url: Option<String>,
        /// A super-user to authenticate as (needed once the node has users).
        #[arg(long)]
        user: Option<String>,
        /// Read the user's password as the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Restore a backup into the empty data directory of a stopped node.
    Restore {
        /// The backup directory (`microlith backup --to`).
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// The data directory to fill (new or empty); default: the config's `storage.data_dir`.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user, or replace the password and roles of an existing one. The password is
    /// read from the terminal, or as one line from standard input with --password-stdin.
    Add {
        name: String,
        /// A role the user holds (repeat or separate with commas); `super_user` is built in.
        #[arg(long = "role", value_delimiter = ',', required = true)]
        roles: Vec<String>,
        /// Read the password as the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Delete a user.
    Delete {
        name: String,
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// List the users and their roles.
    List {
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum RoleCommand {
    /// Create or replace a role. Tables are names or `*` (every table without an entry of
    /// its own); topics are MQTT topic filters.
    Add {
        name: String,
        /// The role may do everything, including /admin and /cluster.
        #[arg(long)]
        super_user: bool,
        /// Tables the role may read (repeat or separate with commas).
        #[arg(long, value_delimiter = ',', value_name = "TABLE")]
        read: Vec<String>,
        #[arg(long, value_delimiter = ',', value_name = "TABLE")]
        insert: Vec<String>,
        #[arg(long, value_delimiter = ',', value_name = "TABLE")]
        update: Vec<String>,
        #[arg(long, value_delimiter = ',', value_name = "TABLE")]
        delete: Vec<String>,
        /// MQTT topic filters the role may publish to (repeat).
        #[arg(long, value_name = "FILTER")]
        publish: Vec<String>,
        /// MQTT topic filters the role may subscribe to (repeat).
        #[arg(long, value_name = "FILTER")]
        subscribe: Vec<String>,
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// List the roles as JSON.
    List {
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

/// Runs the command line with these components (each runs when its `[components.NAME]`
/// section is in the config).
pub fn main(components: Vec<Arc<dyn Component>>) -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!("microlith {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::DefaultConfig => {
            print!("{DEFAULT_TOML}");
            ExitCode::SUCCESS
        }
        Command::CheckConfig { file } => match check(&file, &components) {
            Ok(_) => {
                println!("{}: valid", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::User(cmd) => finish(accounts::user(cmd, &components)),
        Command::Role(cmd) => finish(accounts::role(cmd, &components)),
        Command::Backup {
            to,
            config,
            url,
            user,
            password_stdin,
        } => finish(config_of(config, &components).and_then(|c| {
            let target = backup::Target {
                url,
                user,
                password_stdin,
            };
            backup::backup(&to, &c, target)
        })),
        Command::Restore {
            from,
            data_dir,
            config,
        } => finish(
            config_of(config, &components).and_then(|c| backup::restore(&from, data_dir, &c)),
        ),
        Command::Serve { config } => {
            let config = match config_or_default(config, &components) {
                Ok(c) => c,
                Err(code) => return code,
            };
            init_logging(&config.log.level);
            match crate::node::serve(config, &components) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("start failed: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

/// The config file given, or the embedded default; exit code 2 (said) for a bad file.
fn config_or_default(
    path: Option<PathBuf>,
    components: &[Arc<dyn Component>],
) -> Result<Config, ExitCode> {
    match path {
        Some(path) => load(&path, components).map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }),
        None => Ok(Config::embedded_default()),
    }
}

/// The config file given (checked), or the embedded default.
fn config_of(path: Option<PathBuf>, components: &[Arc<dyn Component>]) -> Result<Config, String> {
    match path {
        Some(p) => load(&p, components),
        None => Ok(Config::embedded_default()),
    }
}

/// Exit 0, or print the error and exit 1.
fn finish(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A config file, checked, with every enabled component's section.
fn load(path: &std::path::Path, components: &[Arc<dyn Component>]) -> Result<Config, String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    crate::app::Registry::build(components, &config.components)?;
    Ok(config)
}

/// `load`, the files the config names (TLS certificates) are readable and valid, and this
/// machine can run it (`preflight::check_machine`: cores, io_uring, locked memory, free
/// ports, a writable data directory). Creates nothing.
fn check(path: &std::path::Path, components: &[Arc<dyn Component>]) -> Result<Config, String> {
    let config = load(path, components)?;
    crate::net::tls::check(&config.tls, config.cluster.enabled()).map_err(|e| e.to_string())?;
    crate::runtime::preflight::check_machine(&config)?;
    Ok(config)
}

fn init_logging(level: &str) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| {
            // The storage engine's own progress messages are noise at info level.
            let quiet = if level.contains("fjall") {
                String::new()
            } else {
                ",fjall=warn,lsm_tree=warn".to_string()
            };
            tracing_subscriber::EnvFilter::new(format!("{level}{quiet}"))
        });
    // Colour only for a person at a terminal, and never when NO_COLOR is set (no-color.org).
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
