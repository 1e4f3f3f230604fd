//! Regression tests: each reproduces one bug that was fixed, through the
//! real binary, and is named after what it reproduces.

mod support;

use support::Test;

/// An unquoted `${U:-x #y}`: the ` #` starts a comment, so the reference
/// has no `}` and is kept as written. The parser kept its expansion too,
/// giving `x #y${U:-x`.
#[test]
fn unquoted_reference_cut_by_a_comment_is_kept_once() {
    Test::new()
        .procfile("web: true\n")
        .dotenv("B=set\nA=${U:-x #y}\nC=${B:-x #y}\n")
        .env_remove("U")
        .args(["run", "sh", "-c", "printf '%s|%s\\n' \"$A\" \"$C\""])
        .code(0)
        .stdout("${U:-x|${B:-x\n")
        .run();
}

/// A NUL byte in a Procfile command: `check` said the Procfile was valid and
/// `start` failed with 127 (no command can hold a NUL).
#[test]
fn nul_in_a_procfile_command_is_rejected_by_check() {
    Test::new()
        .procfile("web: echo a\0b\n")
        .args(["check"])
        .code(2)
        .stderr_has("NUL character")
        .stderr_has("Procfile:1:12")
        .run();
}

/// A lone carriage return inside a Procfile line (old Mac line ends): the
/// shell would take it as part of a word.
#[test]
fn lone_carriage_return_in_a_procfile_line_is_rejected() {
    Test::new()
        .procfile("web: echo a\rworker: b\n")
        .args(["check"])
        .code(2)
        .stderr_has("carriage return")
        .stderr_has("Procfile:1:12")
        .run();
}

/// A NUL in an env-file value: no environment variable can hold one.
#[test]
fn nul_in_an_env_value_is_rejected_by_check() {
    Test::new()
        .procfile("web: true\n")
        .dotenv("A=\"x\0y\"\n")
        .args(["check"])
        .code(2)
        .stderr_has("the value of `A` contains a NUL")
        .stderr_has(".env:1:5")
        .run();
}

/// A doubling `${A}${A}` chain in 40 lines of `.env` grew to gigabytes
/// before anything was reported. Each value is capped at 1 MiB after
/// expansion; the error names the variable and its line.
#[test]
fn doubling_env_chain_stops_at_the_value_cap() {
    let mut env = String::from("A0=xxxxxxxxxxxxxxxx\n");
    for i in 1..40 {
        env.push_str(&format!("A{i}=${{A{}}}${{A{}}}\n", i - 1, i - 1));
    }
    Test::new()
        .procfile("web: true\n")
        .dotenv(&env)
        .args(["check"])
        .code(2)
        .stderr_has("the value of `A17` is larger than 1 MiB")
        .stderr_has(".env:18:")
        .run();
}

/// `-f /dev/zero` read gigabytes: only regular files are read (and
/// `/dev/null`, as empty).
#[test]
fn dev_zero_as_procfile_is_refused() {
    Test::new()
        .args(["-f", "/dev/zero", "check"])
        .code(2)
        .stderr_has("cannot read Procfile `/dev/zero`: it is a device, not a regular file")
        .run();
}

/// A FIFO as Procfile (or env file) blocked forever in open(2).
#[test]
fn fifo_as_procfile_or_env_file_is_refused_without_blocking() {
    let project = support::Project::with_procfile("web: true\n");
    for name in ["Procfile.fifo", "env.fifo"] {
        nix::unistd::mkfifo(&project.join(name), nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    }
    project
        .test()
        .args(["-f", "Procfile.fifo", "check"])
        .code(2)
        .stderr_has("it is a FIFO (named pipe), not a regular file")
        .run();
    project
        .test()
        .args(["-e", "env.fifo", "check"])
        .code(2)
        .stderr_has("cannot read env file `env.fifo`: it is a FIFO")
        .run();
    // `-e /dev/null` still means "no variables".
    project
        .test()
        .args(["-e", "/dev/null", "check"])
        .code(0)
        .run();
}

/// A Procfile or env file over 16 MiB is refused before it is parsed.
#[test]
fn oversized_input_file_is_refused() {
    let t = Test::new().procfile("web: true\n");
    let big = std::fs::File::create(t.path().join("big.env")).expect("create");
    big.set_len(16 * 1024 * 1024 + 1).expect("grow");
    t.args(["-e", "big.env", "check"])
        .code(2)
        .stderr_has("larger than 16 MiB")
        .run();
}

/// A process name of 65,536 characters panicked `check` and `start` in
/// `{:width$}` formatting. Names are capped at 63 characters, with a
/// located error.
#[test]
fn huge_process_name_is_a_located_error_not_a_panic() {
    let procfile = format!("{}: true\n", "n".repeat(65_536));
    for args in [&["check"][..], &["start"]] {
        let out = Test::new()
            .procfile(&procfile)
            .args(args)
            .code(2)
            .stderr_has("65536 characters long: at most 63 are allowed")
            .stderr_has("Procfile:1:1")
            .run();
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        assert!(out.stderr.len() < 2000, "{}", out.stderr);
    }
}

/// An error far into a long line printed the whole line, and its caret
/// padding went through `{:width$}`, which panics past 65,535.
#[test]
fn error_far_into_a_long_line_is_shown_around_the_caret() {
    let procfile = format!("web: echo {}\0\n", "a".repeat(100_000));
    let out = Test::new()
        .procfile(&procfile)
        .args(["check"])
        .code(2)
        .stderr_has("Procfile:1:100011")
        .run();
    assert!(out.stderr.len() < 2000, "{}", out.stderr);
}

/// `procrun run ''` said that the first folder on PATH "exists but its
/// interpreter was not found": an empty command is a usage error.
#[test]
fn empty_command_for_run_is_a_usage_error() {
    for args in [&["run", ""][..], &["run", "", "arg"]] {
        Test::new()
            .args(args)
            .code(2)
            .stderr_has("the command is empty")
            .run();
    }
}

/// A command found on PATH only as a directory is not "a file whose
/// interpreter was not found".
#[test]
fn a_directory_on_path_is_not_blamed_for_a_missing_interpreter() {
    let t = Test::new().file("bin/tool/inside", "");
    let path = t.path().join("bin");
    let out = t.env("PATH", &path).args(["run", "tool"]).run();
    assert!(!out.stderr.contains("interpreter"), "{}", out.stderr);
}

/// `--config` naming a FIFO blocked `check` forever, like a FIFO Procfile
/// did: the config file is read through the same reader now.
#[test]
fn a_fifo_as_the_config_file_is_refused_not_waited_on() {
    let t = Test::new().procfile("web: true\n");
    let fifo = t.path().join("cfg");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    t.args(["check", "--config", "cfg"])
        .code(2)
        .stderr_has("cannot read config file `cfg`: it is a FIFO")
        .run();
}

/// A 200 KB value passed `check`, then every instance failed to start with
/// E2BIG: `check` (and `start`) warn about it now.
#[test]
fn an_environment_value_the_kernel_refuses_is_a_warning_in_check() {
    Test::new()
        .procfile("web: true\n")
        .dotenv(&format!("BIG={}\n", "x".repeat(200_000)))
        .args(["check"])
        .code(0)
        .stderr_has("`BIG` is 196 KiB long")
        .run();
}

/// Ten million instances (`-m all=10000` over 1000 types) were built, each
/// with its own copy of the environment, before anything checked them:
/// `check` aborted when the memory ran out. The total is capped now, and
/// refused before any instance exists.
#[test]
fn ten_million_instances_are_refused_before_any_is_built() {
    let procfile: String = (0..1000).map(|i| format!("p{i}: sleep 1\n")).collect();
    let out = Test::new()
        .procfile(&procfile)
        .args(["check", "-m", "all=10000"])
        .code(2)
        .stderr_has("the formation asks for 10000000 instances in all: procrun runs at most 10000")
        .stderr_has("--formation:1:1")
        .run();
    assert_eq!(out.stderr.matches("error:").count(), 1, "{}", out.stderr);
    // The same cap for an export.
    Test::new()
        .procfile(&procfile)
        .args(["export", "systemd", "out", "-m", "all=11"])
        .code(2)
        .stderr_has("11000 instances in all")
        .run();
}

/// `-m all=100000` (a typo for 10): refused with the per-type cap.
#[test]
fn a_hundred_thousand_instances_of_a_type_are_refused() {
    Test::new()
        .procfile("web: sleep 1\n")
        .args(["check", "-m", "all=100000"])
        .code(2)
        .stderr_has("expected a whole number from 0 to 10000")
        .run();
}

/// A Procfile of 200,000 entries gave 199,394 errors (one per type whose
/// ports passed 65535). The number of types is capped now: one error, at
/// the first entry over the cap.
#[test]
fn a_procfile_of_200000_entries_is_one_error_at_the_first_over_the_cap() {
    let procfile: String = (0..200_000).map(|i| format!("p{i}: sleep 1\n")).collect();
    let out = Test::new()
        .procfile(&procfile)
        .args(["check"])
        .code(2)
        .stderr_has("`p1000` is process type number 1001: a Procfile may have at most 1000")
        .stderr_has("Procfile:1001:1")
        .run();
    assert_eq!(out.stderr.matches("error:").count(), 1, "{}", out.stderr);
}

/// Types past the 605th get ports past 65535 from the default base port:
/// each was its own error.
#[test]
fn ports_past_65535_are_one_error_with_a_count() {
    let procfile: String = (0..700).map(|i| format!("p{i}: sleep 1\n")).collect();
    let out = Test::new()
        .procfile(&procfile)
        .args(["check"])
        .code(2)
        .stderr_has("`p606.1` would get PORT=65600, above the highest port 65535")
        .stderr_has("(and 93 more instances)")
        .run();
    assert_eq!(out.stderr.matches("error:").count(), 1, "{}", out.stderr);
}

/// A Procfile (or env file) of four million bad lines kept four million
/// errors (1.9 GB) and printed them all. A parser stops after 40 errors in
/// a file now, and at most 50 messages are shown.
#[test]
fn millions_of_bad_lines_stop_after_40_errors() {
    let garbage = "!!!\n".repeat(4_000_000);
    for (procfile, env) in [(garbage.as_str(), ""), ("web: true\n", garbage.as_str())] {
        let out = Test::new()
            .procfile(procfile)
            .file("bad.env", env)
            .args(["check", "-e", "bad.env"])
            .code(2)
            .stderr_has("after 40 errors")
            .stderr_has("error: aborting due to 41 errors")
            .run();
        assert!(out.stderr.len() < 100_000, "{} bytes", out.stderr.len());
    }
}

/// `.foreman` was read with a plain `read`: a FIFO of that name blocked
/// `check` forever, a link to `/dev/zero` filled the memory. It goes
/// through the Procfile's reader now, which refuses both at once.
#[test]
fn a_fifo_or_dev_zero_as_foreman_is_refused_not_waited_on() {
    let t = Test::new().procfile("web: true\n");
    nix::unistd::mkfifo(
        &t.path().join(".foreman"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .expect("mkfifo");
    t.args(["check"])
        .code(2)
        .stderr_has("cannot read `.foreman`: it is a FIFO")
        .run();
    let t = Test::new().procfile("web: true\n");
    std::os::unix::fs::symlink("/dev/zero", t.path().join(".foreman")).expect("link");
    t.args(["check"])
        .code(2)
        .stderr_has("cannot read `.foreman`: it is a device")
        .run();
}

/// `procfile: ''` in `.foreman` gave "cannot read Procfile ``" with an
/// empty location, and a Procfile, env file or root named there that could
/// not be read was reported without saying who named it.
#[test]
fn paths_from_foreman_that_cannot_be_used_point_at_its_line() {
    Test::new()
        .procfile("web: true\n")
        .file(".foreman", "procfile: ''\n")
        .args(["check"])
        .code(2)
        .stderr_has("`procfile` in `.foreman` is empty")
        .stderr_has(".foreman:1:")
        .run();
    for (line, message) in [
        ("procfile: /dev/zero", "cannot read Procfile `/dev/zero`"),
        ("env: nope.env", "cannot read env file `nope.env`"),
        (
            "root: /nonexistent",
            "app root `/nonexistent` is not usable",
        ),
    ] {
        Test::new()
            .procfile("web: true\n")
            .file(".foreman", format!("{line}\n"))
            .args(["check"])
            .code(2)
            .stderr_has(message)
            .stderr_has("named by")
            .stderr_has(".foreman:1:")
            .run();
    }
}

/// Every location in `procrun.toml` counted the lines from the start of the
/// file again (and one was made for every key, valid or not): 100,000
/// sections took minutes. The count is indexed now, and sections beyond
/// the most process types a Procfile can have are one error.
#[test]
fn a_config_of_100000_sections_is_one_error_not_minutes() {
    let config: String = (0..100_000)
        .map(|i| format!("[process.p{i}]\ncan_die = true\n"))
        .collect();
    let out = Test::new()
        .procfile("web: true\n")
        .file("procrun.toml", config)
        .args(["check"])
        .code(2)
        .stderr_has("`[process.p1000]` is section number 1001 under [process]")
        .stderr_has("procrun.toml:2001:10")
        .run();
    assert_eq!(out.stderr.matches("error:").count(), 1, "{}", out.stderr);
}

/// `after` with 100,000 names on one line: each name's location counted
/// the chars of the line from its start, and `check` ran for minutes. A
/// location costs a short count now.
#[test]
fn an_after_list_of_100000_names_on_one_line_is_checked_at_once() {
    let names = vec!["\"worker\""; 100_000].join(",");
    Test::new()
        .procfile("web: true\nworker: true\n")
        .file(
            "procrun.toml",
            format!("[process.web]\nafter = [{names}]\n"),
        )
        .args(["check"])
        .code(0)
        .run();
}

/// 10,000 items in `--stop-signal` naming no process type: every error
/// kept a copy of the whole flag (80 KB), and procrun aborted when the
/// memory ran out. A location keeps only the part of a long line a snippet
/// shows.
#[test]
fn ten_thousand_bad_items_in_a_flag_do_not_exhaust_the_memory() {
    let items: Vec<String> = (0..10_000).map(|i| format!("w{i}=INT")).collect();
    let out = Test::new()
        .procfile("web: true\n")
        .args(["check", "--stop-signal", &items.join(",")])
        .code(2)
        .stderr_has("unknown process type `w0` in --stop-signal")
        .stderr_has("more messages not shown")
        .run();
    assert!(out.stderr.len() < 100_000, "{} bytes", out.stderr.len());
}

/// A key of a megabyte: the message quoted it whole (twice, 1 MB of
/// stderr), and the did-you-mean compared it with every known key, which
/// took seconds.
#[test]
fn a_megabyte_key_is_reported_shortened() {
    let out = Test::new()
        .procfile("web: true\n")
        .file(
            "procrun.toml",
            format!("[process.web]\n{} = 1\n", "k".repeat(1_000_000)),
        )
        .args(["check"])
        .code(2)
        .stderr_has("unknown key `kkkk")
        .stderr_has("procrun.toml:2:1")
        .run();
    assert!(out.stderr.len() < 10_000, "{} bytes", out.stderr.len());
}

/// 200,000 unknown keys: 199,999 errors were built and kept. The checker
/// stops after 40, as the other parsers do.
#[test]
fn a_config_of_200000_bad_keys_stops_after_40_errors() {
    let keys: String = (0..200_000).map(|i| format!("k{i} = 1\n")).collect();
    Test::new()
        .procfile("web: true\n")
        .file("procrun.toml", format!("[process.web]\n{keys}"))
        .args(["check"])
        .code(2)
        .stderr_has("stopped reading `procrun.toml` at line 41 after 40 errors")
        .stderr_has("error: aborting due to 41 errors")
        .run();
}

/// Tables, lists or dotted keys nested 50,000 deep: the TOML parser's
/// recursion limit came out as "recursion limit" with no line.
#[test]
fn toml_nested_too_deeply_is_a_located_error() {
    for nested in [
        format!("after = {}{}", "[".repeat(50_000), "]".repeat(50_000)),
        format!("{} = 1", vec!["a"; 50_000].join(".")),
        format!("ready = {}1{}", "{a=".repeat(50_000), "}".repeat(50_000)),
    ] {
        Test::new()
            .procfile("web: true\n")
            .file("procrun.toml", format!("[process.web]\n{nested}\n"))
            .args(["check"])
            .code(2)
            .stderr_has("nests tables, lists or dotted keys too deeply")
            .stderr_has("procrun.toml:2:")
            .run();
    }
}

/// `ready = { http = … }` took any text after `http://` or `/`: a port
/// past 65535, no host, an unclosed IPv6 address, a space, or a CR LF
/// (which went into the request as a header of its own). The probe could
/// never ask such a URL, so the instance failed only when `ready_timeout`
/// ran out. Each is a located error now, with the probe's own parser.
#[test]
fn ready_http_urls_the_probe_cannot_ask_are_located_errors() {
    for (url, why) in [
        (r#"http://127.0.0.1:99999/"#, "`99999` is not a port number"),
        (r#"http://"#, "the URL names no host"),
        (r#"http://[::1"#, "lacks the closing `]`"),
        (r#"http://user:pw@h:1/"#, "user name or password"),
        (r#"/a b"#, "a space"),
        (r#"/health\r\nX-Injected: 1"#, "U+000D"),
        (r#"/\u0000"#, "U+0000"),
    ] {
        Test::new()
            .procfile("web: true\n")
            .file(
                "procrun.toml",
                format!("[process.web]\nready = {{ http = \"{url}\" }}\n"),
            )
            .args(["check"])
            .code(2)
            .stderr_has("`ready.http` cannot be used")
            .stderr_has(why)
            .stderr_has("procrun.toml:2:")
            .run();
    }
    // An IPv6 address in brackets is one it can ask.
    Test::new()
        .procfile("web: true\n")
        .file(
            "procrun.toml",
            "[process.web]\nready = { http = \"http://[::1]:8080/up\" }\n",
        )
        .args(["check"])
        .code(0)
        .run();
}

/// A NUL in `ready = { exec = … }` passed `check`; `sh -c` cannot be given
/// it, so every probe failed.
#[test]
fn a_nul_in_ready_exec_is_a_located_error() {
    Test::new()
        .procfile("web: true\n")
        .file(
            "procrun.toml",
            "[process.web]\nready = { exec = \"true\\u0000\" }\n",
        )
        .args(["check"])
        .code(2)
        .stderr_has("`ready.exec` contains a NUL byte")
        .stderr_has("procrun.toml:2:18")
        .run();
}

/// `-m all=1,all=2` took the last `all` silently, while a name given twice
/// is an error.
#[test]
fn all_twice_in_the_formation_is_an_error() {
    Test::new()
        .procfile("web: true\n")
        .args(["check", "-m", "all=1,all=2"])
        .code(2)
        .stderr_has("`all` appears twice in the formation")
        .stderr_has("--formation:1:7")
        .run();
}
