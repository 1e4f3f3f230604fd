//! Completion scripts: the Procfile's entries are offered after `start`
//! and `run`, through the hidden `procrun __entries`.

mod support;

use support::{Project, Test};

fn entries(p: &Project, args: &[&str]) -> (i32, String) {
    let out = p.test().arg("__entries").args(args).run();
    (out.code().expect("exited"), out.stdout)
}

#[test]
fn the_hidden_command_prints_the_entries() {
    let p = Project::with_procfile("web: a\nworker: b\n")
        .file("dev/Procfile.dev", "vite: c\nbackend: d\n")
        .file("other/Procfile", "clock: e\n");
    assert_eq!(entries(&p, &[]), (0, "web\nworker\n".into()));
    assert_eq!(
        entries(&p, &["-f", "dev/Procfile.dev"]),
        (0, "vite\nbackend\n".into())
    );
    assert_eq!(entries(&p, &["--root=other"]), (0, "clock\n".into()));
    let p = p.file(".foreman", "procfile: dev/Procfile.dev\n");
    assert_eq!(entries(&p, &[]), (0, "vite\nbackend\n".into()));
    // Broken or missing: nothing on stdout, the usual error on stderr.
    let out = Project::new().test().arg("__entries").code(2).run();
    assert_eq!(out.stdout, "");
    // Hidden from the help and the manual.
    let help = p.test().arg("--help").code(0).run().stdout;
    assert!(!help.contains("__entries"), "{help}");
}

/// Runs `script` in bash with the binary's directory first on PATH.
fn bash(p: &Project, script: &str) -> String {
    let dir = support::procrun_path().parent().expect("dir").to_owned();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Test::in_dir(p.path())
        .program("bash")
        .args(["--norc", "-c", script])
        .env("PATH", path)
        .code(0)
        .run()
        .stdout
}

#[test]
fn the_bash_script_completes_entries_after_start_and_run() {
    if std::process::Command::new("bash")
        .arg("-c")
        .arg("true")
        .status()
        .is_err()
    {
        eprintln!("skipped: no bash");
        return;
    }
    let p = Project::with_procfile("web: a\nworker: b\nclock: c\n")
        .file("dev/Procfile", "vite: d\nweb2: e\n");
    let script = p.test().args(["completions", "bash"]).code(0).run().stdout;
    assert!(script.contains("procrun __entries"), "{script}");
    assert!(
        script.contains("complete -F _procrun_with_entries"),
        "{script}"
    );
    let complete = |words: &str| {
        let out = bash(
            &p,
            &format!(
                "source <(procrun completions bash)\n\
                 COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))\n\
                 _procrun_with_entries procrun \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
                 printf '%s\\n' \"${{COMPREPLY[@]}}\" | grep -v '^-' | sort"
            ),
        );
        out.lines().map(str::to_owned).collect::<Vec<_>>()
    };
    assert_eq!(complete("procrun start w"), ["web", "worker"]);
    assert_eq!(complete("procrun start web ''"), ["clock", "web", "worker"]);
    assert_eq!(
        complete("procrun -f dev/Procfile start ''"),
        ["vite", "web2"]
    );
    assert_eq!(complete("procrun run c"), ["clock"]);
    // After the command's first word, run's arguments are not entries.
    assert!(!complete("procrun run python3 w").contains(&"web".to_owned()));
}

#[test]
fn the_zsh_and_fish_scripts_call_it_too() {
    let p = Project::new();
    for shell in ["zsh", "fish"] {
        let script = p.test().args(["completions", shell]).code(0).run().stdout;
        assert!(script.contains("procrun __entries"), "{shell}");
    }
    let zsh = p.test().args(["completions", "zsh"]).code(0).run().stdout;
    assert!(
        zsh.contains("Only start these process types:_procrun_entries'"),
        "{zsh}"
    );
    assert!(
        zsh.contains("name of a Procfile entry:_procrun_run_words'"),
        "{zsh}"
    );
    assert!(zsh.starts_with("#compdef procrun\n"), "{zsh}");
}
