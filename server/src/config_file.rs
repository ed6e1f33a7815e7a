//! `--config FILE`: the server's flags from a TOML file.
//!
//! Every flag of `tickforge --help` is a key, named as the flag without its
//! dashes (`tick-hz = 60`; `tick_hz` is accepted too). A switch takes
//! `true`/`false`, a repeatable flag an array (`allowed-origin = ["a", "b"]`),
//! any other flag one string or number. Flags given on the command line
//! win over the file. The mapping is read from clap's own description of
//! the flags, so a flag added to `Cli` is a key with no change here.
//!
//! The file becomes arguments placed before the command line's, each value
//! checked by its flag's own parser first, so that a bad key or value is
//! an error naming the file and the key (exit 2), never a silent default.

use clap::error::{ContextKind, ContextValue};
use clap::{ArgAction, Command};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The flag that names the file.
const FLAG: &str = "config";

/// Why the configuration file was refused.
#[derive(Debug, Error)]
pub(crate) enum ConfigFileError {
    /// `--config` without a file name, or given twice.
    #[error("--config: {0}")]
    Flag(String),
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// Not TOML.
    #[error("{path} is not valid TOML: {message}")]
    Parse { path: PathBuf, message: String },
    /// A key that is not a flag.
    #[error("{path}: unknown key `{key}` (the keys are the flags of tickforge --help, without the dashes)")]
    UnknownKey { path: PathBuf, key: String },
    /// A value that its flag refuses.
    #[error("{path}: key `{key}`: {problem}")]
    BadValue { path: PathBuf, key: String, problem: String },
}

/// The file's arguments and which keys it set.
#[derive(Debug, Default)]
pub(crate) struct Expanded {
    /// The arguments to parse: the program name, the file's flags, then
    /// the command line's.
    pub(crate) args: Vec<OsString>,
    /// The file, when one was given.
    pub(crate) path: Option<PathBuf>,
    /// The flags (long names) whose value came from the file.
    pub(crate) from_file: Vec<String>,
}

/// Finds `--config FILE` in `args` and puts the file's flags before the
/// command line's (those the command line also gives are left out).
///
/// # Errors
/// A [`ConfigFileError`] naming the file and the key.
pub(crate) fn expand(args: Vec<OsString>, cmd: &Command) -> Result<Expanded, ConfigFileError> {
    let Some(path) = find_path(&args)? else {
        return Ok(Expanded { args, ..Expanded::default() });
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigFileError::Read { path: path.clone(), source })?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigFileError::Parse { path: path.clone(), message: e.to_string() })?;
    let given = command_line_flags(&args);
    let mut file_args = Vec::new();
    let mut from_file = Vec::new();
    for (raw_key, value) in &table {
        let key = raw_key.replace('_', "-");
        let bad = |problem: String| ConfigFileError::BadValue { path: path.clone(), key: raw_key.clone(), problem };
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()))
            .filter(|_| !matches!(key.as_str(), FLAG | "help" | "version"))
            .ok_or_else(|| ConfigFileError::UnknownKey { path: path.clone(), key: raw_key.clone() })?;
        if given.contains(&key) {
            continue; // the command line wins
        }
        let values: Vec<String> = match (arg.get_action(), value) {
            (ArgAction::SetTrue, toml::Value::Boolean(on)) => {
                if *on {
                    file_args.push(OsString::from(format!("--{key}")));
                    from_file.push(key.clone());
                }
                continue;
            }
            (ArgAction::SetTrue, other) => {
                return Err(bad(format!("expected true or false, found {}", other.type_str())));
            }
            (ArgAction::Append, toml::Value::Array(items)) => {
                items.iter().map(|v| scalar(v).map_err(&bad)).collect::<Result<_, _>>()?
            }
            (_, v) => vec![scalar(v).map_err(&bad)?],
        };
        for v in values {
            file_args.push(OsString::from(format!("--{key}={v}")));
        }
        from_file.push(key);
    }
    let mut out = Vec::with_capacity(args.len() + file_args.len());
    let mut rest = args.into_iter();
    out.extend(rest.next());
    out.extend(file_args);
    out.extend(rest);
    Ok(Expanded { args: out, path: Some(path), from_file })
}

/// The text of a TOML scalar as a flag value.
fn scalar(v: &toml::Value) -> Result<String, String> {
    match v {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        other => Err(format!("expected a single string or number, found {}", other.type_str())),
    }
}

/// The `--config` value, if any (`--config FILE` or `--config=FILE`).
fn find_path(args: &[OsString]) -> Result<Option<PathBuf>, ConfigFileError> {
    let mut found = None;
    let mut iter = args.iter().skip(1);
    while let Some(a) = iter.next() {
        let Some(text) = a.to_str() else { continue };
        if text == "--" {
            break;
        }
        let path = if text == "--config" {
            let v = iter.next().ok_or_else(|| ConfigFileError::Flag("a value is required: --config FILE".into()))?;
            PathBuf::from(v)
        } else if let Some(v) = text.strip_prefix("--config=") {
            PathBuf::from(v)
        } else {
            continue;
        };
        if found.is_some() {
            return Err(ConfigFileError::Flag("given more than once".into()));
        }
        found = Some(path);
    }
    Ok(found)
}

/// The long flags the command line gives (`--name` and `--name=value`).
fn command_line_flags(args: &[OsString]) -> Vec<String> {
    args.iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .take_while(|a| *a != "--")
        .filter_map(|a| a.strip_prefix("--"))
        .map(|a| a.split('=').next().unwrap_or(a).to_string())
        .collect()
}

/// The text of a clap error about a flag whose value came from the file,
/// naming the file and the key (`None`: the error is not about the file).
pub(crate) fn name_key(expanded: &Expanded, e: &clap::Error) -> Option<String> {
    let path = expanded.path.as_ref()?;
    let ContextValue::String(arg) = e.get(ContextKind::InvalidArg)? else { return None };
    let long = arg.strip_prefix("--")?.split([' ', '=']).next()?;
    if !expanded.from_file.iter().any(|k| k == long) {
        return None;
    }
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or("invalid value").trim_start_matches("error: ");
    Some(format!("{}: {first}", origin(path, long)))
}

/// How a setting from the file is named in an error: the file and key.
pub(crate) fn origin(path: &Path, key: &str) -> String {
    format!("{}: key `{key}`", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cli;
    use clap::{CommandFactory as _, Parser as _};
    use std::io::Write as _;

    /// A throw-away file in the temp directory, removed on drop.
    struct TempFile(PathBuf);

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn file(text: &str) -> TempFile {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("tickforge-config-{}-{n}.toml", std::process::id()));
        std::fs::File::create(&path).unwrap().write_all(text.as_bytes()).unwrap();
        TempFile(path)
    }

    fn args(line: &[&str]) -> Vec<OsString> {
        std::iter::once("tickforge").chain(line.iter().copied()).map(OsString::from).collect()
    }

    fn parse(line: &[&str]) -> Result<Cli, String> {
        let e = expand(args(line), &Cli::command()).map_err(|e| e.to_string())?;
        Cli::try_parse_from(&e.args).map_err(|err| name_key(&e, &err).unwrap_or_else(|| err.to_string()))
    }

    /// A value for every flag that has no default, for the test below.
    fn sample(long: &str) -> Option<&'static str> {
        Some(match long {
            "shards" => "2",
            "token" => "\"s3cret\"",
            "admin-token" => "\"0p3rator\"",
            "allowed-origin" => "[\"https://a.example\", \"https://b.example\"]",
            "cluster" => "\"redis://127.0.0.1:6379/1\"",
            "public-url" => "\"ws://10.0.0.5:7700/ws\"",
            "node-id" => "\"node-a\"",
            "auth-secret" => "\"0123456789abcdef\"",
            "auth-secret-file" => "\"/etc/tickforge/secret\"",
            "tls-cert" => "\"/etc/tickforge/cert.pem\"",
            "tls-key" => "\"/etc/tickforge/key.pem\"",
            _ => return None,
        })
    }

    #[test]
    fn every_flag_of_help_is_a_key() {
        // Each flag of `tickforge --help`, written in the file, parses to
        // the same settings as on the command line.
        let mut toml = String::new();
        let mut line: Vec<String> = Vec::new();
        for arg in Cli::command().get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "config" | "help" | "version") {
                continue;
            }
            match arg.get_action() {
                ArgAction::SetTrue => {
                    toml.push_str(&format!("{long} = true\n"));
                    line.push(format!("--{long}"));
                }
                _ => {
                    let value = match sample(long) {
                        Some(v) => v.to_string(),
                        None => {
                            let d = arg.get_default_values();
                            assert!(!d.is_empty(), "flag --{long} has no default: add a sample value to this test");
                            format!("{:?}", d[0].to_str().unwrap())
                        }
                    };
                    toml.push_str(&format!("{long} = {value}\n"));
                    let parsed: toml::Value =
                        toml::from_str::<toml::Table>(&format!("v = {value}")).unwrap()["v"].clone();
                    match parsed {
                        toml::Value::Array(items) => {
                            for i in items {
                                line.push(format!("--{long}={}", scalar(&i).unwrap()));
                            }
                        }
                        v => line.push(format!("--{long}={}", scalar(&v).unwrap())),
                    }
                }
            }
        }
        let f = file(&toml);
        let from_file = parse(&["--config", f.0.to_str().unwrap()]).unwrap();
        let refs: Vec<&str> = line.iter().map(String::as_str).collect();
        let from_flags = parse(&refs).unwrap();
        assert_eq!(format!("{:?}", from_file.into_config()), format!("{:?}", from_flags.into_config()));
    }

    #[test]
    fn flags_win_over_the_file_and_lists_are_arrays() {
        let f = file("tick-hz = 20\nmax_rooms = 7\nallowed-origin = [\"https://a\", \"https://b\"]\nno-pin = true\n");
        let path = f.0.to_str().unwrap();
        let cli = parse(&["--tick-hz", "40", &format!("--config={path}"), "--allowed-origin", "https://c"]).unwrap();
        let c = cli.into_config();
        assert_eq!(c.tick_hz, 40, "the command line wins");
        assert_eq!(c.limits.rooms_per_shard, 7, "snake_case keys work too");
        assert_eq!(c.allowed_origins, ["https://c"], "a repeatable flag on the command line replaces the file's");
        assert!(!c.pin);
        let c = parse(&["--config", path]).unwrap().into_config();
        assert_eq!(c.allowed_origins, ["https://a", "https://b"]);
        assert_eq!(c.tick_hz, 20);
    }

    #[test]
    fn bad_keys_and_values_name_the_key() {
        let err = |text: &str| {
            let f = file(text);
            let e = parse(&["--config", f.0.to_str().unwrap()]).unwrap_err();
            (e, f.0.display().to_string())
        };
        let (e, path) = err("tick-hz = 30\nspeed = 9\n");
        assert_eq!(
            e,
            format!("{path}: unknown key `speed` (the keys are the flags of tickforge --help, without the dashes)")
        );
        let (e, _) = err("tick-hz = \"fast\"\n");
        assert!(e.contains("key `tick-hz`: invalid value 'fast'"), "{e}");
        let (e, _) = err("handshake-timeout = \"soon\"\n");
        assert!(e.contains("key `handshake-timeout`") && e.contains("soon"), "{e}");
        let (e, _) = err("no-pin = \"yes\"\n");
        assert!(e.contains("key `no-pin`: expected true or false, found string"), "{e}");
        let (e, _) = err("shards = [1, 2]\n");
        assert!(e.contains("key `shards`: expected a single string or number, found array"), "{e}");
        let (e, _) = err("[limits]\nx = 1\n");
        assert!(e.contains("unknown key `limits`"), "{e}");
        let (e, _) = err("config = \"other.toml\"\n");
        assert!(e.contains("unknown key `config`"), "{e}");
        let (e, path) = err("tick-hz = = 3\n");
        assert!(e.starts_with(&format!("{path} is not valid TOML")), "{e}");
        let e = parse(&["--config", "/nonexistent/tickforge.toml"]).unwrap_err();
        assert!(e.starts_with("cannot read /nonexistent/tickforge.toml"), "{e}");
        let e = parse(&["--config"]).unwrap_err();
        assert_eq!(e, "--config: a value is required: --config FILE");
    }

    #[test]
    fn without_config_the_arguments_are_untouched() {
        let e = expand(args(&["--tick-hz", "40"]), &Cli::command()).unwrap();
        assert_eq!(e.args, args(&["--tick-hz", "40"]));
        assert!(e.path.is_none() && e.from_file.is_empty());
        assert_eq!(origin(Path::new("a.toml"), "tick-hz"), "a.toml: key `tick-hz`");
    }

    #[test]
    fn the_shipped_deploy_configs_are_valid() {
        // deploy/tickforge.toml (compose) and the ConfigMap's file
        // (Kubernetes), with the public URL each node adds.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let compose = std::fs::read_to_string(root.join("deploy/tickforge.toml")).unwrap();
        let manifest = std::fs::read_to_string(root.join("deploy/kubernetes/tickforge.yaml")).unwrap();
        let configmap: String = manifest
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("tickforge.toml: |"))
            .skip(1)
            .take_while(|l| l.starts_with("    "))
            .map(|l| format!("{}\n", &l[4..]))
            .collect();
        assert!(configmap.contains("cluster ="), "the ConfigMap's tickforge.toml was found");
        for text in [compose, configmap] {
            let f = file(&text);
            let cli = parse(&["--config", f.0.to_str().unwrap(), "--public-url", "ws://10.0.0.5:7700/ws"]).unwrap();
            let config = cli.into_config();
            assert_eq!(config.validate(), Ok(()));
            assert!(config.cluster.is_some());
        }
    }
}
