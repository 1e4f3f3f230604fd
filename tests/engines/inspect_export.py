"""Checks an export the way its engine would, beyond a schema, and prints
what it found as `KIND NAME KEY HEX` lines for the Rust tests to compare.

  inspect_export.py k8s FILE        multi-document Kubernetes manifests
  inspect_export.py compose JSON    output of `docker-compose config --format json`
  inspect_export.py plist FILE...   launchd property lists

Exits 1 with a message on stderr when a check fails."""
import json
import plistlib
import sys


def hexed(text):
    return str(text).encode().hex()


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def probes(name, container):
    """The startup and readiness probes of a container, checked against
    its ports."""
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    for kind in ("startupProbe", "readinessProbe"):
        p = container.get(kind)
        if not p:
            continue
        handlers = [h for h in ("tcpSocket", "httpGet", "exec", "grpc") if h in p]
        if len(handlers) != 1:
            fail(f"{name}: {kind} has handlers {handlers}")
        handler = handlers[0]
        print(f"probe {name} {kind} {hexed(handler)}")
        h = p[handler]
        if handler == "exec":
            for i, arg in enumerate(h["command"]):
                print(f"probe {name} {kind}.command{i} {hexed(arg)}")
        else:
            if isinstance(h["port"], str) and h["port"] not in ports:
                fail(f"{name}: {kind} port {h['port']} is not a container port")
            for key in ("port", "path", "host"):
                if key in h:
                    print(f"probe {name} {kind}.{key} {hexed(h[key])}")
        for key in ("periodSeconds", "timeoutSeconds", "failureThreshold"):
            if key in p:
                if not isinstance(p[key], int) or p[key] < 1:
                    fail(f"{name}: {kind}.{key} {p[key]!r} is not a positive count")
                print(f"probe {name} {kind}.{key} {hexed(p[key])}")


def k8s(path):
    import yaml

    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    for j in (d for d in docs if d["kind"] == "Job"):
        name = j["metadata"]["name"]
        pod = j["spec"]["template"]["spec"]
        print(f"policy {name} kind {hexed('Job')}")
        for key in ("parallelism", "completions", "backoffLimit"):
            print(f"policy {name} {key} {hexed(j['spec'][key])}")
        print(f"policy {name} restartPolicy {hexed(pod['restartPolicy'])}")
        print(f"policy {name} grace {hexed(pod['terminationGracePeriodSeconds'])}")
        for e in pod["containers"][0].get("env", []):
            print(f"env {name} {e['name']} {hexed(e['value'])}")
        probes(name, pod["containers"][0])
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    for d in deployments:
        name = d["metadata"]["name"]
        spec = d["spec"]
        replicas = spec["replicas"]
        if not isinstance(replicas, int) or replicas < 0:
            fail(f"{name}: replicas {replicas!r} is not a count")
        selector = spec["selector"]["matchLabels"]
        labels = spec["template"]["metadata"]["labels"]
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            fail(f"{name}: selector {selector} does not match the pod labels {labels}")
        others = [o for o in deployments if o is not d
                  and all(o["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in selector.items())]
        if others:
            fail(f"{name}: selector also matches {others[0]['metadata']['name']}'s pods")
        container = spec["template"]["spec"]["containers"][0]
        print(f"deployment {name} replicas {replicas}")
        print(f"policy {name} grace {hexed(spec['template']['spec']['terminationGracePeriodSeconds'])}")
        for i, arg in enumerate(container["command"]):
            print(f"command {name} {i} {hexed(arg)}")
        for e in container.get("env", []):
            print(f"env {name} {e['name']} {hexed(e['value'])}")
        probes(name, container)
        ports = [p["containerPort"] for p in container.get("ports", [])]
        for p in ports:
            print(f"port {name} - {hexed(p)}")
    for s in (d for d in docs if d["kind"] == "Service"):
        sel = s["spec"]["selector"]
        matched = [d for d in deployments
                   if all(d["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in sel.items())]
        if len(matched) != 1:
            fail(f"service {s['metadata']['name']}: selector {sel} matches {len(matched)} deployments")
        names = {p.get("name") for p in matched[0]["spec"]["template"]["spec"]["containers"][0].get("ports", [])}
        for p in s["spec"]["ports"]:
            if isinstance(p["targetPort"], str) and p["targetPort"] not in names:
                fail(f"service {s['metadata']['name']}: targetPort {p['targetPort']} is not a container port")
        print(f"service {s['metadata']['name']} - {matched[0]['metadata']['name']}")
    for c in (d for d in docs if d["kind"] == "ConfigMap"):
        for k, v in (c.get("data") or {}).items():
            if not isinstance(v, str):
                fail(f"configmap {k} is not a string")
            print(f"config {c['metadata']['name']} {k} {hexed(v)}")


def compose(path):
    with open(path) as f:
        doc = json.load(f)
    for name, svc in doc["services"].items():
        print(f"service {name} replicas {svc.get('deploy', {}).get('replicas', 1)}")
        for i, arg in enumerate(svc["command"]):
            print(f"command {name} {i} {hexed(arg)}")
        for k, v in (svc.get("environment") or {}).items():
            print(f"env {name} {k} {hexed(v)}")
        for p in svc.get("ports", []):
            print(f"port {name} - {hexed(p['target'])}")
        for key in ("restart", "stop_signal", "stop_grace_period"):
            if key in svc:
                print(f"policy {name} {key} {hexed(svc[key])}")
        health = svc.get("healthcheck")
        if health:
            for i, arg in enumerate(health["test"]):
                print(f"health {name} test{i} {hexed(arg)}")
            for key in ("interval", "timeout", "start_period", "start_interval", "retries"):
                if key in health:
                    print(f"health {name} {key} {hexed(health[key])}")
        for dep, d in (svc.get("depends_on") or {}).items():
            if dep not in doc["services"]:
                fail(f"{name} depends on {dep}, which is no service")
            print(f"depends {name} {dep} {hexed(d.get('condition'))}")


TYPES = {"Label": str, "ProgramArguments": list, "EnvironmentVariables": dict, "WorkingDirectory": str,
         "KeepAlive": (bool, dict), "RunAtLoad": bool, "StandardOutPath": str, "StandardErrorPath": str,
         "UserName": str, "ExitTimeOut": int, "ThrottleInterval": int}


def plist(paths):
    for path in paths:
        try:
            with open(path, "rb") as f:
                d = plistlib.load(f)
        except Exception as e:
            fail(f"{path}: not a plist: {e}")
        errs = [f"missing {k}" for k in ("Label", "ProgramArguments") if k not in d]
        errs += [f"unknown key {k}" for k in d if k not in TYPES]
        errs += [f"{k} has type {type(v).__name__}" for k, v in d.items() if k in TYPES and not isinstance(v, TYPES[k])]
        errs += [f"EnvironmentVariables.{k} is not a string" for k, v in d.get("EnvironmentVariables", {}).items() if not isinstance(v, str)]
        errs += ["ProgramArguments must be strings"] if not all(isinstance(a, str) for a in d.get("ProgramArguments", [])) else []
        if errs:
            fail(f"{path}: " + "; ".join(errs))
        label = d["Label"]
        for i, arg in enumerate(d["ProgramArguments"]):
            print(f"command {label} {i} {hexed(arg)}")
        for k, v in d.get("EnvironmentVariables", {}).items():
            print(f"env {label} {k} {hexed(v)}")
        print(f"cwd {label} - {hexed(d.get('WorkingDirectory', ''))}")
        keep = d.get("KeepAlive")
        if isinstance(keep, dict):
            keep = ",".join(f"{k}={v}" for k, v in sorted(keep.items()))
        print(f"policy {label} KeepAlive {hexed(keep)}")
        for key in ("ExitTimeOut", "ThrottleInterval"):
            if key in d:
                print(f"policy {label} {key} {hexed(d[key])}")


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "k8s":
        k8s(sys.argv[2])
    elif kind == "compose":
        compose(sys.argv[2])
    elif kind == "plist":
        plist(sys.argv[2:])
    else:
        fail(f"unknown kind {kind}")
