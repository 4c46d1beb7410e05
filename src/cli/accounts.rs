//! `microlith user …` and `microlith role …`: users and roles written on a stopped node's data
//! directory (`security::offline`), so that a fresh install can be given its first user before
//! it serves anyone. The password comes from the terminal (not echoed, asked twice) or from
//! the first line of standard input (`--password-stdin`), never from the command line.

use super::{Component, RoleCommand, UserCommand};
use crate::security::{offline, Role, TablePerms, TopicRule};
use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use super::config_of;

pub(super) fn user(cmd: UserCommand, components: &[Arc<dyn Component>]) -> Result<(), String> {
    let load = |c| config_of(c, components);
    match cmd {
        UserCommand::Add {
            name,
            roles,
            password_stdin,
            config,
        } => {
            let config = load(config)?;
            let password = || read_password(password_stdin, true);
            let created = offline::add_user(&config, &name, &roles, password)?;
            let verb = if created { "created" } else { "updated" };
            println!(
                "user {name:?} {verb} with roles {roles:?} in {}",
                config.storage.data_dir.display()
            );
            Ok(())
        }
        UserCommand::Delete { name, config } => {
            offline::delete_user(&load(config)?, &name)?;
            println!("user {name:?} deleted");
            Ok(())
        }
        UserCommand::List { config } => {
            let (users, _) = offline::list(&load(config)?)?;
            let mut out = std::io::stdout().lock();
            for (name, roles) in users {
                // A closed pipe (`| head`) ends the listing quietly.
                if writeln!(out, "{name}\t{}", roles.join(",")).is_err() {
                    break;
                }
            }
            Ok(())
        }
    }
}

pub(super) fn role(cmd: RoleCommand, components: &[Arc<dyn Component>]) -> Result<(), String> {
    let load = |c| config_of(c, components);
    match cmd {
        RoleCommand::Add {
            name,
            super_user,
            read,
            insert,
            update,
            delete,
            publish,
            subscribe,
            config,
        } => {
            let mut role = Role {
                name: name.clone(),
                super_user,
                ..Role::default()
            };
            let grants = [(&read, 0), (&insert, 1), (&update, 2), (&delete, 3)];
            for (tables, op) in grants {
                for t in tables {
                    let p: &mut TablePerms = role.tables.entry(t.clone()).or_default();
                    *[&mut p.read, &mut p.insert, &mut p.update, &mut p.delete][op] = true;
                }
            }
            role.topics = topic_rules(&publish, &subscribe);
            let created = offline::add_role(&load(config)?, &role)?;
            let verb = if created { "created" } else { "replaced" };
            println!("role {name:?} {verb}");
            Ok(())
        }
        RoleCommand::List { config } => {
            let (_, roles) = offline::list(&load(config)?)?;
            let mut all = vec![Role::super_user()];
            all.extend(roles);
            let json = serde_json::to_string_pretty(&all).unwrap_or_default();
            let _ = writeln!(std::io::stdout(), "{json}");
            Ok(())
        }
    }
}

/// One rule per filter, allowing what the filter was listed for.
fn topic_rules(publish: &[String], subscribe: &[String]) -> Vec<TopicRule> {
    let mut rules: Vec<TopicRule> = Vec::new();
    for (filters, is_publish) in [(publish, true), (subscribe, false)] {
        for f in filters {
            let i = match rules.iter().position(|r| &r.filter == f) {
                Some(i) => i,
                None => {
                    rules.push(TopicRule {
                        filter: f.clone(),
                        publish: false,
                        subscribe: false,
                    });
                    rules.len() - 1
                }
            };
            if is_publish {
                rules[i].publish = true;
            } else {
                rules[i].subscribe = true;
            }
        }
    }
    rules
}

/// The password: one line of standard input, or typed at the terminal (twice to `confirm`).
pub(super) fn read_password(from_stdin: bool, confirm: bool) -> Result<String, String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    if !std::io::stdin().is_terminal() {
        return Err(
            "no terminal to ask the password on: pass it on standard input with --password-stdin"
                .into(),
        );
    }
    let first = prompt("Password: ")?;
    if !confirm {
        return Ok(first);
    }
    let again = prompt("Password again: ")?;
    if first != again {
        return Err("the passwords differ".into());
    }
    Ok(first)
}

/// Reads a line from the terminal with echo off.
fn prompt(text: &str) -> Result<String, String> {
    eprint!("{text}");
    let _ = std::io::stderr().flush();
    let echo = Echo::off();
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    drop(echo);
    eprintln!();
    read.map_err(|e| format!("cannot read the password: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// The terminal's echo, turned off until dropped.
struct Echo(Option<libc::termios>);

impl Echo {
    fn off() -> Echo {
        // SAFETY: termios is plain data that tcgetattr fills; fd 0 is a terminal (checked).
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return Echo(None);
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            libc::tcsetattr(0, libc::TCSANOW, &t);
            Echo(Some(saved))
        }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            // SAFETY: restores the attributes read in `off`.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, t);
            }
        }
    }
}
