"""Offline checks of the OpenFaaS stack file against what OpenFaaS CE, of-watchdog and the
template accept, and of the kind/ files that must agree with it.

Usage: python3 scripts/check_stack.py STACK_FILE   (needs PyYAML; run by scripts/check-deploy)

Each problem is printed as `FILE: message`; the exit status is 1 if there was any.
"""

import os
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# OpenFaaS CE refuses these (Pro-only autoscaling and scale to zero).
PRO_ONLY_LABELS = re.compile(r"^com\.openfaas\.scale\.(target|type|target-proportion|zero.*)$")
CE_MAX_REPLICAS = 5

problems = []


def problem(path, message):
    problems.append(f"{path}: {message}")


def substitute(text):
    """faas-cli's ${VAR:-default} / ${VAR} substitution, from the environment."""

    def value(match):
        name, default = match.group(1), match.group(3)
        return os.environ.get(name, default if default is not None else "")

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}", value, text)


def seconds(text):
    """A Go duration (5s, 1m30s, 500ms) or plain seconds, as float seconds."""
    text = str(text).strip()
    try:
        return float(text)
    except ValueError:
        pass
    units = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|ns)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * units[u] for n, u in parts)


def versions_env():
    values = {}
    for line in (ROOT / "kind/versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


def check_function(stack_path, name, fn, gateway):
    where = f"{stack_path} functions.{name}"
    lang = fn.get("lang")
    template = ROOT / "template" / str(lang)
    if not (template / "template.yml").is_file() or not (template / "Dockerfile").is_file():
        problem(where, f"lang {lang!r} has no template/{lang}/template.yml and Dockerfile")
        template_options = set()
    else:
        spec = yaml.safe_load((template / "template.yml").read_text()) or {}
        template_options = {o.get("name") for o in spec.get("build_options") or []}
    for option in fn.get("build_options") or []:
        if option not in template_options:
            problem(where, f"build option {option!r} is not in template/{lang}/template.yml")
    handler = ROOT / str(fn.get("handler", ""))
    if not (handler / "Cargo.toml").is_file():
        problem(where, f"handler {fn.get('handler')!r} is not a Cargo package folder")
    if not fn.get("image"):
        problem(where, "no image")

    labels = fn.get("labels") or {}
    for label in labels:
        if PRO_ONLY_LABELS.match(label):
            problem(where, f"label {label} is OpenFaaS Pro only; CE refuses the deployment")
    bounds = {}
    for key in ("min", "max"):
        raw = labels.get(f"com.openfaas.scale.{key}")
        if raw is None:
            continue
        try:
            bounds[key] = int(str(raw))
        except ValueError:
            problem(where, f"com.openfaas.scale.{key} must be a whole number, got {raw!r}")
            continue
        if not 1 <= bounds[key] <= CE_MAX_REPLICAS:
            problem(where, f"com.openfaas.scale.{key}={raw}: CE accepts 1 to {CE_MAX_REPLICAS}")
    if bounds.get("min", 1) > bounds.get("max", CE_MAX_REPLICAS):
        problem(where, "com.openfaas.scale.min is above com.openfaas.scale.max")

    env = {k: str(v) for k, v in (fn.get("environment") or {}).items()}
    prefix = name.upper().replace("-", "_")
    try:
        exec_timeout = seconds(env.get("exec_timeout", "30s"))
        write_timeout = seconds(env.get("write_timeout", "30s"))
        deadline = seconds(env[f"{prefix}_TIMEOUT"]) if f"{prefix}_TIMEOUT" in env else exec_timeout - 1
        body = seconds(env.get(f"{prefix}_BODY_TIMEOUT", "10"))
        upstream = seconds(gateway["GATEWAY_UPSTREAM_TIMEOUT"])
        read = seconds(gateway["GATEWAY_READ_TIMEOUT"])
        write = seconds(gateway["GATEWAY_WRITE_TIMEOUT"])
        ack = seconds(gateway["QUEUE_WORKER_ACK_WAIT"])
    except (ValueError, KeyError) as e:
        problem(where, f"timeouts: {e}")
        return env
    chain = [
        (body <= deadline, f"{prefix}_BODY_TIMEOUT ({body} s) must not exceed {prefix}_TIMEOUT ({deadline} s): the deadline covers the upload"),
        (deadline < exec_timeout, f"{prefix}_TIMEOUT ({deadline} s) must be below exec_timeout ({exec_timeout} s)"),
        (exec_timeout < write_timeout, f"exec_timeout ({exec_timeout} s) must be below write_timeout ({write_timeout} s)"),
        (exec_timeout <= upstream, f"exec_timeout ({exec_timeout} s) must not exceed the gateway upstream timeout ({upstream} s)"),
        (upstream < min(read, write), f"the gateway upstream timeout ({upstream} s) must be below its read/write timeouts"),
        (ack > upstream, f"the queue-worker ack wait ({ack} s) must be above the gateway upstream timeout"),
    ]
    for ok, message in chain:
        if not ok:
            problem(where, message)
    if "max_inflight" in env:
        capacity = int(env.get(f"{prefix}_WORKERS", "1")) + int(env.get(f"{prefix}_QUEUE", "16"))
        if int(env["max_inflight"]) < capacity:
            problem(where, f"max_inflight {env['max_inflight']} is below workers + queue ({capacity})")
    grace, interval = env.get(f"{prefix}_GRACE"), env.get("healthcheck_interval")
    if grace is not None and interval is not None and seconds(grace) != seconds(interval):
        problem(where, f"{prefix}_GRACE ({grace}) must equal healthcheck_interval ({interval})")
    return env


def check_twin(stack_env, gateway):
    """The serverful twin runs the same image with the same settings, and kind's port
    mappings publish what versions.env says."""
    path = ROOT / "kind/serverful.yaml"
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    deployment = next((d for d in docs if d.get("kind") == "Deployment"), None)
    if deployment is None:
        problem(path, "no Deployment")
        return
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    twin_env = {e["name"]: str(e.get("value")) for e in container.get("env", [])}
    for key, value in stack_env.items():
        if key in twin_env and twin_env[key] != value:
            problem(path, f"{key}={twin_env[key]!r} differs from the stack file's {value!r}")
    for key in stack_env:
        # The arithmetic too: a comparison of fp32 with int8 would measure the precision.
        must_match = key.endswith(("_timeout", "_TIMEOUT", "_GRACE", "_PRECISION"))
        if key not in twin_env and must_match:
            problem(path, f"{key} is set in the stack file but not for the twin")
    drain = seconds(twin_env.get("healthcheck_interval", "0")) + seconds(twin_env.get("write_timeout", "30s"))
    grace = deployment["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
    if grace < drain:
        problem(path, f"terminationGracePeriodSeconds {grace} is shorter than the drain ({drain} s)")

    cluster = yaml.safe_load((ROOT / "kind/cluster.yaml").read_text())
    host_ports = {m["containerPort"]: m["hostPort"] for n in cluster["nodes"] for m in n.get("extraPortMappings", [])}
    for node_port, key in ((31112, "GATEWAY_HOST_PORT"), (31113, "SERVERFUL_HOST_PORT")):
        if str(host_ports.get(node_port)) != gateway.get(key):
            problem("kind/cluster.yaml", f"NodePort {node_port} must map to {key}={gateway.get(key)}")


# Every timeout a request meets on its way in, as docs/deploy.md's "Timeouts, inner to outer" names it.
TIMEOUT_CHAIN = ["SLBLUR_BODY_TIMEOUT", "SLBLUR_TIMEOUT", "exec_timeout", "read_timeout", "write_timeout",
                 "gateway.upstreamTimeout", "gateway.readTimeout", "queueWorker.ackWait"]


def check_readme_timeouts():
    """docs/deploy.md's timeout table names every link of the chain (a slow upload's 408 once had none)."""
    text = (ROOT / "docs/deploy.md").read_text()
    start = text.find("**Timeouts, inner to outer**")
    table = text[start:text.find("\n\n", text.find("| layer |", start))] if start >= 0 else ""
    for name in TIMEOUT_CHAIN:
        if f"`{name}`" not in table:
            problem("docs/deploy.md", f"the table 'Timeouts, inner to outer' does not name `{name}`")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: check_stack.py STACK_FILE")
    stack_path = Path(sys.argv[1])
    stack = yaml.safe_load(substitute(stack_path.read_text())) or {}
    provider = stack.get("provider") or {}
    if provider.get("name") != "openfaas":
        problem(stack_path, "provider.name must be openfaas")
    if not provider.get("gateway"):
        problem(stack_path, "provider.gateway is empty")
    functions = stack.get("functions") or {}
    if not functions:
        problem(stack_path, "no functions")
    gateway = versions_env()
    for name, fn in functions.items():
        env = check_function(stack_path, name, fn or {}, gateway)
        if name == "slblur":
            check_twin(env, gateway)
            check_readme_timeouts()
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"check_stack: {stack_path}: {len(functions)} function(s) OK")


if __name__ == "__main__":
    main()
