//! `procrun run` through the real binary: environment, entries, arguments,
//! stdio and exit codes. Signals: `tests/run_signals.rs`; the terminal:
//! `tests/run_pty.rs`.

mod support;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;

use support::Project;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn run(p: &Project, args: &[&str]) -> std::process::Output {
    p.procrun().arg("run").args(args).output().expect("runs")
}

const PRINT_FOO_BAR: &[&str] = &["sh", "-c", "printf '%s,%s' \"$FOO\" \"$BAR\""];

#[test]
fn env_from_dotenv_reaches_the_command() {
    let p = Project::new().file(".env", "FOO=from-dotenv\n");
    let out = p
        .procrun()
        .env("BAR", "inherited")
        .arg("run")
        .args(PRINT_FOO_BAR)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "from-dotenv,inherited");
}

#[test]
fn env_files_win_over_the_inherited_environment_and_later_files_win() {
    let p = Project::new()
        .file(".env", "FOO=dotenv\nBAR=dotenv\n")
        .file("a.env", "FOO=a\nBAR=a\n")
        .file("b.env", "FOO=b\n");
    // .env over the inherited environment.
    let out = p
        .procrun()
        .env("FOO", "inherited")
        .arg("run")
        .args(PRINT_FOO_BAR)
        .output()
        .expect("runs");
    assert_eq!(stdout(&out), "dotenv,dotenv");
    // -e replaces .env; the later file wins; comma-separated or repeated.
    for files in [
        &["-e", "a.env,b.env"][..],
        &["-e", "a.env", "-e", "b.env"][..],
    ] {
        let out = p
            .procrun()
            .env("FOO", "inherited")
            .args(files)
            .arg("run")
            .args(PRINT_FOO_BAR)
            .output()
            .expect("runs");
        assert_eq!(stdout(&out), "b,a", "{files:?}");
    }
}

#[test]
fn a_bad_env_file_is_an_error_and_runs_nothing() {
    let p = Project::new().file("bad.env", "FOO='never closed\n");
    for files in ["missing.env", "bad.env"] {
        let out = run(&p, &["-e", files, "touch", "ran"]);
        assert_eq!(out.status.code(), Some(2), "{files}");
        assert!(stderr(&out).contains(files), "{files}: {}", stderr(&out));
        assert!(!p.join("ran").exists(), "{files}: the command ran");
    }
}

#[test]
fn arguments_are_passed_byte_for_byte_without_a_shell() {
    // A file in the directory: a shell would expand `*` to it.
    let p = Project::new().file("some-file", "");
    let non_utf8 = OsStr::from_bytes(b"caf\xe9 \xff");
    let out = p
        .procrun()
        .env("HOME", "/home/somebody")
        .args(["run", "printf", "[%s]"])
        .args([
            "a b",
            "",
            "'single'",
            "\"double\"",
            "*",
            "$HOME",
            "`id`",
            "a\\nb",
            " ",
        ])
        .arg(non_utf8)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut want = b"[a b][]['single'][\"double\"][*][$HOME][`id`][a\\nb][ ]".to_vec();
    want.extend_from_slice(b"[caf\xe9 \xff]");
    assert_eq!(out.stdout, want, "{}", stdout(&out));
}

#[test]
fn arguments_after_the_command_belong_to_it_even_with_dashes() {
    let p = Project::new().file("other.env", "FOO=other\n");
    let dashed = [
        "-la",
        "-e",
        "x.env",
        "-f",
        "-d",
        "--help",
        "--version",
        "-v",
        "--color=always",
        "--",
        "-",
    ];
    let out = p
        .procrun()
        .args(["run", "printf", "%s|"])
        .args(dashed)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{}|", dashed.join("|")));

    // `--` before the command is accepted; options before COMMAND are
    // procrun's own.
    let out = p
        .procrun()
        .args([
            "run",
            "-e",
            "other.env",
            "--",
            "sh",
            "-c",
            "printf %s \"$FOO\"",
        ])
        .output()
        .expect("runs");
    assert_eq!(stdout(&out), "other", "{}", stderr(&out));

    // `procrun run ls -la` works.
    let out = run(&p, &["ls", "-la"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("other.env"));
}

#[test]
fn stdin_is_the_commands() {
    let p = Project::new();
    let input = b"line one\n\0binary\xff\nno newline at the end".to_vec();
    let out = p
        .procrun()
        .args(["run", "cat"])
        .write_stdin(input.clone())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, input);
}

#[test]
fn stdout_and_stderr_are_the_commands_unprefixed() {
    let p = Project::with_procfile("web: true\n");
    let out = run(
        &p,
        &[
            "sh",
            "-c",
            "printf 'out 1\\nout 2'; printf 'err 1\\nerr 2' >&2",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "out 1\nout 2");
    assert_eq!(stderr(&out), "err 1\nerr 2");
}

#[test]
fn no_procfile_is_needed() {
    let p = Project::new();
    let out = run(&p, &["echo", "hello"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hello\n");
    assert_eq!(stderr(&out), "");
}

const PROCFILE: &str =
    "web: echo \"web $PORT $PS $FOO\"\nworker: echo \"worker $PORT $PS $FOO\" && pwd\n";

#[test]
fn a_procfile_entry_by_name_runs_with_its_port_and_ps() {
    let p = Project::with_procfile(PROCFILE).file(".env", "FOO=bar\n");
    let root = std::fs::canonicalize(p.path()).expect("canonical");
    let out = run(&p, &["web"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "web 5000 web.1 bar\n");
    // The second type gets the next port block; the entry runs in the root.
    let out = run(&p, &["worker"]);
    assert_eq!(
        stdout(&out),
        format!("worker 5100 worker.1 bar\n{}\n", root.display())
    );
    // From another directory with -d, and a base port from the env file.
    let p = p.file(".env", "FOO=baz\nPORT=6000\n");
    let out = procrun_in_tmp()
        .arg("-d")
        .arg(p.path())
        .args(["run", "worker"])
        .output()
        .expect("runs");
    assert_eq!(
        stdout(&out),
        format!("worker 6100 worker.1 baz\n{}\n", root.display()),
        "{}",
        stderr(&out)
    );
    // -p sets the base port, as in `start`.
    let out = run(&p, &["-p", "7000", "worker"]);
    assert_eq!(
        stdout(&out),
        format!("worker 7100 worker.1 baz\n{}\n", root.display()),
        "{}",
        stderr(&out)
    );
}

fn procrun_in_tmp() -> assert_cmd::Command {
    let mut cmd = support::procrun();
    cmd.current_dir(std::env::temp_dir());
    cmd
}

#[test]
fn a_plain_command_gets_no_port_or_ps() {
    let p = Project::with_procfile(PROCFILE);
    let out = p
        .procrun()
        .env_remove("PS")
        .args([
            "run",
            "sh",
            "-c",
            "printf '%s,%s' \"${PORT-unset}\" \"${PS-unset}\"",
        ])
        .output()
        .expect("runs");
    assert_eq!(stdout(&out), "unset,unset");
}

#[test]
fn an_entry_name_with_arguments_is_a_command() {
    let p = Project::with_procfile(PROCFILE);
    let out = run(&p, &["web", "--flag"]);
    assert_eq!(out.status.code(), Some(127));
    let err = stderr(&out);
    assert!(err.contains("command not found: `web`"), "{err}");
    // What the user probably meant.
    assert!(
        err.contains("`web` is not on PATH but is an entry of `Procfile`, which `run` runs only by its name alone"),
        "{err}"
    );
    assert!(
        err.contains("`procrun run web`, or `procrun start web`"),
        "{err}"
    );
    // A name close to an entry, with or without arguments.
    for args in [&["wbe", "--verbose"][..], &["wbe"]] {
        let out = run(&p, args);
        assert_eq!(out.status.code(), Some(127));
        let err = stderr(&out);
        assert!(
            err.contains("not an entry of `Procfile` (entries: "),
            "{err}"
        );
        assert!(err.contains("did you mean `web`?"), "{err}");
    }
}

#[test]
fn commands_run_in_the_app_root() {
    let p = Project::new().file("sub/.keep", "");
    let sub = std::fs::canonicalize(p.join("sub")).expect("canonical");
    let out = run(&p, &["-d", "sub", "pwd"]);
    assert_eq!(stdout(&out), format!("{}\n", sub.display()));
}

#[test]
fn a_malformed_procfile_matters_only_if_it_could_declare_the_command() {
    let broken = "web: echo web\nthis line is not an entry\nworker: echo worker\n";
    let p = Project::with_procfile(broken);
    // `web` may be meant as the entry: the Procfile's errors are shown and
    // nothing runs.
    let out = run(&p, &["web"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).is_empty());
    assert!(stderr(&out).contains("Procfile:2"), "{}", stderr(&out));
    // Commands the Procfile cannot be about run as usual.
    let out = run(&p, &["pwd"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(&p, &["echo", "web"]);
    assert_eq!(stdout(&out), "web\n");
}

#[test]
fn exit_codes_are_the_commands() {
    let p = Project::new();
    for code in [0, 1, 42, 255] {
        let out = run(&p, &["sh", "-c", &format!("exit {code}")]);
        assert_eq!(out.status.code(), Some(code));
        assert_eq!(stderr(&out), "", "procrun adds nothing for a normal exit");
    }
    assert_eq!(run(&p, &["false"]).status.code(), Some(1));
}

#[test]
fn a_death_by_signal_is_128_plus_n_with_a_message() {
    let p = Project::new();
    for (signal, code) in [("TERM", 143), ("KILL", 137), ("USR1", 138)] {
        let out = run(&p, &["sh", "-c", &format!("kill -{signal} $$")]);
        assert_eq!(out.status.code(), Some(code), "{signal}");
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "`sh` was terminated by SIG{signal}: exit code {code}"
            )),
            "{signal}: {err}"
        );
    }
    // SIGINT: the user pressed Ctrl-C and knows; 130 without a message.
    let out = run(&p, &["sh", "-c", "kill -INT $$"]);
    assert_eq!(out.status.code(), Some(130));
    assert_eq!(stderr(&out), "");
}

#[test]
fn a_command_not_found_is_127_naming_it() {
    let p = Project::new();
    let out = run(&p, &["no-such-command-xyz", "arg"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(
        stderr(&out).contains("command not found: `no-such-command-xyz`"),
        "{}",
        stderr(&out)
    );
    let out = run(&p, &["./missing-script"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(
        stderr(&out).contains("`./missing-script`: no such file"),
        "{}",
        stderr(&out)
    );
    // A name that could have been an entry lists the entries.
    let p = Project::with_procfile(PROCFILE);
    let out = run(&p, &["wrker"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(
        stderr(&out).contains("(entries: web, worker)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_file_that_is_not_executable_is_126() {
    let p = Project::new()
        .file("script.sh", "#!/bin/sh\necho hi\n")
        .file("dir/.keep", "")
        .file("broken.sh", "#!/no/such/interpreter\n");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(p.join("broken.sh"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let out = run(&p, &["./script.sh"]);
    assert_eq!(out.status.code(), Some(126));
    assert!(
        stderr(&out).contains("`./script.sh`: it is not executable"),
        "{}",
        stderr(&out)
    );
    let out = run(&p, &["./dir"]);
    assert_eq!(out.status.code(), Some(126));
    assert!(
        stderr(&out).contains("`./dir`: it is a directory"),
        "{}",
        stderr(&out)
    );
    // A missing interpreter is "not found", but says what is missing.
    let out = run(&p, &["./broken.sh"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(stderr(&out).contains("interpreter"), "{}", stderr(&out));
}
