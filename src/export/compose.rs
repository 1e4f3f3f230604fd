//! Docker Compose: `compose.yaml` with one service per process type (also
//! those scaled to 0), `deploy.replicas` from the formation, the env files'
//! values inline in `environment:`, and the `web` type's `PORT` published.
//!
//! Every string is a YAML double-quoted scalar ([`super::yaml_quote`]) with
//! `$` written `$$`, because Compose interpolates `$VAR` in every value.
//! Inside a container each replica gets its type's first port, and `PS` is
//! the type's name (replicas have no instance number).

use std::fmt::Write as _;

use super::{ExportFile, ExportOptions, GENERATED, relative_path, shell_script, yaml_quote};
use crate::diagnostic::Diagnostic;
use crate::plan::Plan;

/// Compose needs nothing beyond the shared checks.
pub fn check(_plan: &Plan) -> Vec<Diagnostic> {
    Vec::new()
}

/// A YAML string that Compose will not interpolate.
pub fn quote(value: &str) -> String {
    yaml_quote(&value.replace('$', "$$"))
}

/// Renders `compose.yaml`.
pub fn render(plan: &Plan, options: &ExportOptions) -> Vec<ExportFile> {
    let mut y = String::new();
    let _ = writeln!(y, "# {GENERATED}");
    let _ = writeln!(y, "name: {}", quote(&options.app.to_ascii_lowercase()));
    let _ = writeln!(y, "services:");
    for t in &plan.types {
        let _ = writeln!(y, "  {}:", quote(&t.name));
        match &options.image {
            Some(image) => {
                let _ = writeln!(y, "    image: {}", quote(image));
            }
            None => {
                let context = relative_path(&options.output_dir, &plan.root);
                let _ = writeln!(y, "    build: {}", quote(&context.display().to_string()));
            }
        }
        let script = shell_script(&t.command);
        let _ = writeln!(
            y,
            "    command: [{}, {}, {}]",
            quote("/bin/sh"),
            quote("-c"),
            quote(&script)
        );
        let _ = writeln!(y, "    environment:");
        for (key, value) in plan.env.pairs() {
            if key == "PORT" || key == "PS" {
                continue;
            }
            let _ = writeln!(y, "      {}: {}", quote(key), quote(value));
        }
        let _ = writeln!(y, "      PORT: {}", quote(&t.port.to_string()));
        let _ = writeln!(y, "      PS: {}", quote(&t.name));
        if t.name == "web" {
            let _ = writeln!(y, "    ports:");
            let _ = writeln!(y, "      - {}", quote(&t.port.to_string()));
        }
        if let Some(user) = &options.user {
            let _ = writeln!(y, "    user: {}", quote(user));
        }
        let _ = writeln!(y, "    restart: \"unless-stopped\"");
        let _ = writeln!(
            y,
            "    stop_grace_period: {}",
            quote(&format!("{}ms", options.timeout.as_millis()))
        );
        let _ = writeln!(y, "    deploy:");
        let _ = writeln!(y, "      replicas: {}", t.count);
    }
    vec![ExportFile::file("compose.yaml", y)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_are_doubled() {
        assert_eq!(quote("$HOME ${X}"), "\"$$HOME $${X}\"");
    }
}
