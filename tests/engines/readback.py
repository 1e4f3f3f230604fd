"""Reads exports back with each engine's own parser, for the export
property tests: one process for a whole batch of cases.

  readback.py FORMAT DIR...

Each DIR is one case's export of app `p` with one process type `t`
(one instance). compose_ready and kubernetes_ready read its `ready`
check's command instead. For each case, prints one JSON line: {"dir": DIR, "argv":
[...], "env": {...}} as the engine would start the process, or {"dir": DIR,
"error": "..."} when the engine refuses the files."""
import json
import os
import plistlib
import shlex
import sys


def supervisord(d):
    from supervisor.options import ServerOptions

    o = ServerOptions()
    # realize() prints usage and exits on a bad config.
    o.stderr = o.stdout = open(os.devnull, "w")
    o.realize(args=["-c", os.path.join(d, "supervisord.conf")])
    programs = [p for g in o.process_group_configs for p in g.process_configs]
    if len(programs) != 1:
        raise ValueError(f"{len(programs)} programs: {[p.name for p in programs]}")
    # supervisord splits command= with shlex (POSIX) before it execs.
    argv = shlex.split(programs[0].command)
    # The program's shell sources p.env: POSIX `export KEY='value'` lines.
    with open(os.path.join(d, "p.env"), encoding="utf-8", newline="") as f:
        words = shlex.split(f.read(), comments=True)
    env = {}
    for i in range(0, len(words), 2):
        if words[i] != "export":
            raise ValueError(f"p.env: {words[i]!r} where `export` should be")
        k, _, v = words[i + 1].partition("=")
        env[k] = v
    return {"argv": argv, "env": env}


def runit(d):
    svc = os.path.join(d, "p-t-1")
    with open(os.path.join(svc, "run"), encoding="utf-8", newline="") as f:
        (line,) = [l for l in f.read().split("\n") if l.startswith("exec chpst ")]
    words = shlex.split(line)
    # exec chpst -e "$env_dir" /bin/sh -c SCRIPT
    if words[:4] != ["exec", "chpst", "-e", "$env_dir"]:
        raise ValueError(f"run: {words[:4]}")
    env = {}
    # What chpst -e does with each file (runit's chpst.c): the first line,
    # trailing blanks stripped, NUL bytes as newlines; an empty file unsets.
    for name in os.listdir(os.path.join(svc, "env")):
        with open(os.path.join(svc, "env", name), "rb") as f:
            data = f.read()
        if data:
            value = data.split(b"\n")[0].rstrip(b" \t").replace(b"\0", b"\n")
            env[name] = value.decode("utf-8")
    return {"argv": words[4:], "env": env}


def launchd(d):
    with open(os.path.join(d, "p-t-1.plist"), "rb") as f:
        p = plistlib.load(f)
    return {"argv": p["ProgramArguments"], "env": p["EnvironmentVariables"]}


def yaml_load_all(path):
    from ruamel.yaml import YAML

    with open(path, encoding="utf-8", newline="") as f:
        return [doc for doc in YAML(typ="safe", pure=True).load_all(f) if doc is not None]


def compose(d):
    (doc,) = yaml_load_all(os.path.join(d, "compose.yaml"))
    (svc,) = doc["services"].values()
    return {"argv": svc["command"], "env": svc["environment"]}


def kubernetes(d):
    docs = yaml_load_all(os.path.join(d, "p.yaml"))
    (config,) = [x for x in docs if x["kind"] == "ConfigMap"]
    (deploy,) = [x for x in docs if x["kind"] == "Deployment"]
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    env = dict(config.get("data") or {})
    env.update({e["name"]: e["value"] for e in container.get("env", [])})
    return {"argv": container["command"], "env": env}


def compose_ready(d):
    """The healthcheck test, as argv."""
    (doc,) = yaml_load_all(os.path.join(d, "compose.yaml"))
    (svc,) = doc["services"].values()
    return {"argv": svc["healthcheck"]["test"], "env": {}}


def kubernetes_ready(d):
    """The startup probe's command, then the readiness probe's, as argv."""
    docs = yaml_load_all(os.path.join(d, "p.yaml"))
    (deploy,) = [x for x in docs if x["kind"] == "Deployment"]
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    argv = container["startupProbe"]["exec"]["command"] + container["readinessProbe"]["exec"]["command"]
    return {"argv": argv, "env": {}}


if __name__ == "__main__":
    read = globals()[sys.argv[1]]
    for d in sys.argv[2:]:
        try:
            found = read(d)
        except BaseException as e:  # SystemExit from supervisor too
            found = {"error": f"{type(e).__name__}: {e}"}
        found["dir"] = d
        print(json.dumps(found))
