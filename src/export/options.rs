//! The options every format shares, resolved from the command line, and the
//! checks on them that do not depend on the format.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::ExportArgs;
use crate::diagnostic::Diagnostic;

/// The stop timeout when neither `-t` nor the type's policy sets one.
pub const DEFAULT_TIMEOUT: Duration = crate::policy::DEFAULT_STOP_TIMEOUT;

/// Options shared by every format, resolved from the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportOptions {
    /// The app's name: the prefix of every unit, program and service.
    pub app: String,
    /// `--user`.
    pub user: Option<String>,
    /// `--log`, absolute.
    pub log_dir: Option<PathBuf>,
    /// `--image`.
    pub image: Option<String>,
    /// `--user-units` (systemd).
    pub user_units: bool,
    /// The absolute output directory.
    pub output_dir: PathBuf,
}

impl ExportOptions {
    /// Resolves `args` for an app in `root`, with relative paths taken from
    /// `cwd`; `output_dir` is the output directory as the user named it.
    pub fn resolve(args: &ExportArgs, root: &Path, cwd: &Path, output_dir: &Path) -> Self {
        ExportOptions {
            app: match &args.app {
                Some(app) => app.clone(),
                None => default_app_name(root),
            },
            user: args.user.clone(),
            log_dir: args.log.as_ref().map(|l| absolute(cwd, l)),
            image: args.image.clone(),
            user_units: args.user_units,
            output_dir: absolute(cwd, output_dir),
        }
    }

    /// The app name, the user and every path (with the app `root`) checked
    /// against what all formats can hold; `format` names the format in
    /// messages.
    pub fn check(&self, root: &Path, format: &str) -> Vec<Diagnostic> {
        let mut found = Vec::new();
        if !valid_app_name(&self.app) {
            found.push(
                Diagnostic::error(format!("`{}` is not usable as an app name", self.app)).help(
                    "use a letter, then letters, digits, `-` or `_` (at most 40), e.g. --app myapp",
                ),
            );
        }
        if let Some(user) = self.user.as_ref().filter(|u| !valid_user(u)) {
            found.push(
                Diagnostic::error(format!("`{user}` is not usable as a user name"))
                    .help("use letters, digits, `_`, `-` and `.`, or a numeric id"),
            );
        }
        for (what, path) in [
            ("the app root", Some(root)),
            ("the output directory", Some(self.output_dir.as_path())),
            ("the log directory", self.log_dir.as_deref()),
        ] {
            let Some(path) = path else { continue };
            let text = path.to_string_lossy();
            if path.to_str().is_none() || text.chars().any(char::is_control) {
                found.push(Diagnostic::error(format!(
                    "{what} `{}` contains a control character or invalid UTF-8, which {format} configuration cannot hold",
                    text.escape_debug()
                )));
            }
        }
        found
    }
}

impl ExportOptions {
    /// Whether the output directory is `folder` (a leading `~/` is `$HOME`),
    /// typically where the engine reads its configuration: then the files
    /// are in place already, and the next step must not copy them.
    pub fn writes_into(&self, folder: &str) -> bool {
        let folder = match folder.strip_prefix("~/") {
            Some(rest) => match std::env::var_os("HOME") {
                Some(home) if !home.is_empty() => PathBuf::from(home).join(rest),
                _ => return false,
            },
            None => PathBuf::from(folder),
        };
        let folder = absolute(Path::new("/"), &folder);
        match (
            std::fs::canonicalize(&self.output_dir),
            std::fs::canonicalize(&folder),
        ) {
            (Ok(out), Ok(folder)) => out == folder,
            _ => self.output_dir == folder,
        }
    }
}

/// `path` from `cwd`, with `.` and `..` removed lexically so that paths
/// written into the configuration read well; the directory may not exist
/// yet.
fn absolute(cwd: &Path, path: &Path) -> PathBuf {
    let joined = cwd.join(path);
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The default app name: the app root's directory name, lower-cased, with
/// every run of characters other than letters and digits turned into `-`.
pub fn default_app_name(root: &Path) -> String {
    let base = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut name = String::new();
    for c in base.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    let name = name.trim_matches('-');
    let name = name.trim_start_matches(|c: char| c.is_ascii_digit());
    let name = name.trim_matches('-');
    if name.is_empty() {
        "app".to_owned()
    } else {
        name.chars()
            .take(40)
            .collect::<String>()
            .trim_end_matches('-')
            .to_owned()
    }
}

/// Whether `name` is usable as an app name in every format: a letter, then
/// letters, digits, `-` and `_`.
fn valid_app_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.len() <= 40
}

/// Whether `user` is a plausible user name or numeric id.
fn valid_user(user: &str) -> bool {
    let mut chars = user.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        && user.len() <= 32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_app_names() {
        assert_eq!(default_app_name(Path::new("/srv/My App_2")), "my-app-2");
        assert_eq!(default_app_name(Path::new("/srv/2048")), "app");
        assert_eq!(default_app_name(Path::new("/")), "app");
        assert_eq!(default_app_name(Path::new("/x/--shop--")), "shop");
        assert!(valid_app_name("my-app_2"));
        assert!(!valid_app_name("2app"));
        assert!(!valid_app_name("a b"));
        assert!(!valid_app_name("a%b"));
    }

    #[test]
    fn absolute_paths_are_normalised() {
        assert_eq!(
            absolute(Path::new("/a/b"), Path::new("./c/../d")),
            Path::new("/a/b/d")
        );
        assert_eq!(absolute(Path::new("/a"), Path::new("/x")), Path::new("/x"));
    }
}

#[cfg(test)]
mod writes_into_tests {
    use super::*;

    fn into(dir: &Path) -> ExportOptions {
        ExportOptions {
            app: "shop".into(),
            user: None,
            log_dir: None,
            image: None,
            user_units: false,
            output_dir: dir.to_path_buf(),
        }
    }

    #[test]
    fn the_output_folder_is_compared_after_resolving_links_and_dots() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("units");
        std::fs::create_dir(&real).expect("mkdir");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).expect("link");
        let options = into(&link);
        assert!(options.writes_into(&real.display().to_string()));
        assert!(options.writes_into(&format!("{}/../units/.", real.display())));
        assert!(!options.writes_into(&dir.path().display().to_string()));
        // Neither exists: compared as written.
        assert!(into(Path::new("/nonexistent/a")).writes_into("/nonexistent/b/../a"));
        assert!(!into(Path::new("/nonexistent/a")).writes_into("/nonexistent/b"));
    }
}
