#!/usr/bin/env python3
"""The e2e suite's "kubelet" for the rendered chart (hack/e2e/lib.sh), and its webhook
configurations by URL for a guard outside the cluster.

No kubelet, kube-proxy or endpoints controller runs on the local control
plane, so the guard runs as a process in a network namespace and this script
does what those would have done with the rendered objects:

  chart.py plan RENDER OUT GUARD_IP
      Splits the render into OUT/objects.yaml (everything the API server
      serves, the webhook configurations excepted; the Service made
      selector-less, plus Endpoints pointing at GUARD_IP on the ports the
      Service's targetPorts name in the Deployment), OUT/webhooks.yaml (the
      webhook configurations, applied once the guard is ready),
      OUT/webhook-configs (kind/name per line, for `kubectl delete`) and
      OUT/plan.env (sourceable facts: namespace, Service, ServiceAccount,
      ports). Kinds the server does not serve (ServiceMonitor, PrometheusRule,
      cert-manager, ...) are skipped and listed on stderr.

  chart.py mount RENDER ROOT
      The Deployment's pod as the kubelet would start it: each Secret volume
      is read from the cluster (kubectl, as admin) and written under
      ROOT/<volume>/ with the items the volume selects; emptyDirs become
      empty directories. Writes ROOT/args (the container's args with every
      mountPath replaced by its directory under ROOT) and ROOT/env (the
      container's env, fieldRefs resolved as for a pod <deployment>-e2e), both
      NUL-separated.

  chart.py url RENDER URL CA_FILE OUT
      The render's webhook configurations calling URL (+ each entry's path)
      instead of the Service, with CA_FILE's certificate as caBundle, for a
      guard running outside the cluster: OUT/webhooks.yaml and
      OUT/webhook-configs as plan writes them. Every entry keeps the chart's
      rules, selectors and failure policies.

Needs python3-yaml. KUBECTL (default /usr/bin/kubectl) and KUBECONFIG from the
environment.
"""
import base64
import json
import os
import subprocess
import sys

import yaml

KUBECTL = os.environ.get("KUBECTL", "/usr/bin/kubectl")
WEBHOOK_KINDS = {"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"}


def die(msg):
    print(f"chart.py: {msg}", file=sys.stderr)
    sys.exit(1)


def kubectl(*args):
    r = subprocess.run([KUBECTL, *args], capture_output=True, text=True)
    if r.returncode != 0:
        die(f"kubectl {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def load(render):
    with open(render) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def one(docs, kind):
    found = [d for d in docs if d["kind"] == kind]
    if len(found) != 1:
        die(f"the render holds {len(found)} {kind} objects, expected exactly one")
    return found[0]


def served_kinds():
    """(apiVersion, kind) pairs the server serves."""
    served = set()
    for line in kubectl("api-resources", "--no-headers").splitlines():
        tok = line.split()
        # NAME [SHORTNAMES] APIVERSION NAMESPACED KIND
        if len(tok) >= 4:
            served.add((tok[-3], tok[-1]))
    return served


def container(deploy):
    containers = deploy["spec"]["template"]["spec"]["containers"]
    if len(containers) != 1:
        die(f"the Deployment has {len(containers)} containers, expected one")
    return containers[0]


def plan(render, out, guard_ip):
    docs = load(render)
    served = served_kinds()
    deploy = one(docs, "Deployment")
    svc = one(docs, "Service")
    pod = deploy["spec"]["template"]["spec"]
    c = container(deploy)
    named = {p["name"]: p["containerPort"] for p in c.get("ports", []) if "name" in p}

    objects, webhooks, skipped = [], [], []
    for d in docs:
        if (d["apiVersion"], d["kind"]) not in served:
            skipped.append(f"{d['apiVersion']}/{d['kind']} {d['metadata']['name']}")
        elif d["kind"] in WEBHOOK_KINDS:
            webhooks.append(d)
        else:
            objects.append(d)
    if not webhooks:
        die("the render holds no webhook configurations (command: controller?)")
    for s in skipped:
        print(f"chart.py: skipped (not served by this API server): {s}", file=sys.stderr)

    # Selector-less Service: its Endpoints are ours, nothing would reconcile
    # them anyway (no endpoints controller), and nothing must.
    svc["spec"].pop("selector", None)
    ports, by_name = [], {}
    for p in svc["spec"]["ports"]:
        tp = p.get("targetPort", p["port"])
        if isinstance(tp, str):
            if tp not in named:
                die(f"Service port {p['name']}: targetPort {tp!r} names no port of the Deployment's container")
            tp = named[tp]
        ports.append({"name": p["name"], "port": tp, "protocol": p.get("protocol", "TCP")})
        by_name[p["name"]] = (p["port"], tp)
    ns = svc["metadata"]["namespace"]
    objects.append({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": svc["metadata"]["name"], "namespace": ns},
        "subsets": [{"addresses": [{"ip": guard_ip}], "ports": ports}],
    })

    # Which webhook path goes to which Service port (all of the chart's do).
    for w in webhooks:
        for h in w.get("webhooks", []):
            ref = h["clientConfig"].get("service")
            if not ref or ref["name"] != svc["metadata"]["name"] or ref["namespace"] != ns:
                die(f"webhook {h['name']} does not call Service {ns}/{svc['metadata']['name']}: {h['clientConfig']}")

    write_webhooks(webhooks, out)
    with open(os.path.join(out, "objects.yaml"), "w") as f:
        yaml.safe_dump_all(objects, f, sort_keys=False)
    metrics = [v for k, v in by_name.items() if k != "https"]
    if "https" not in by_name:
        die("the Service has no port named https")
    facts = {
        "CHART_NAMESPACE": ns,
        "CHART_SERVICE": svc["metadata"]["name"],
        "CHART_SERVICE_HOST": f"{svc['metadata']['name']}.{ns}.svc",
        "CHART_SERVICE_ACCOUNT": pod.get("serviceAccountName", "default"),
        "CHART_DEPLOYMENT": deploy["metadata"]["name"],
        "CHART_WEBHOOK_PORT": by_name["https"][1],
        "CHART_METRICS_PORT": named.get("metrics", metrics[0][1] if metrics else ""),
    }
    with open(os.path.join(out, "plan.env"), "w") as f:
        for k, v in facts.items():
            f.write(f"{k}='{v}'\n")


def write_webhooks(webhooks, out):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "webhooks.yaml"), "w") as f:
        yaml.safe_dump_all(webhooks, f, sort_keys=False)
    with open(os.path.join(out, "webhook-configs"), "w") as f:
        for w in webhooks:
            f.write(f"{w['kind'].lower()}/{w['metadata']['name']}\n")


def by_url(render, url, ca_file, out):
    with open(ca_file, "rb") as f:
        ca = base64.b64encode(f.read()).decode()
    webhooks = [d for d in load(render) if d["kind"] in WEBHOOK_KINDS]
    if not webhooks:
        die("the render holds no webhook configurations (command: controller?)")
    for w in webhooks:
        # The caBundle is ours; nothing may inject the in-cluster CA over it.
        annotations = w["metadata"].get("annotations") or {}
        annotations.pop("cert-manager.io/inject-ca-from", None)
        if not annotations:
            w["metadata"].pop("annotations", None)
        for h in w.get("webhooks", []):
            ref = h["clientConfig"].get("service")
            if not ref:
                die(f"webhook {h['name']} does not call a Service: {h['clientConfig']}")
            h["clientConfig"] = {"url": url.rstrip("/") + ref.get("path", "/"), "caBundle": ca}
    write_webhooks(webhooks, out)


def mount(render, root):
    docs = load(render)
    deploy = one(docs, "Deployment")
    ns = deploy["metadata"]["namespace"]
    pod = deploy["spec"]["template"]["spec"]
    c = container(deploy)
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    paths = {}
    for m in c.get("volumeMounts", []):
        v = volumes.get(m["name"]) or die(f"volumeMount {m['name']} has no volume")
        if "subPath" in m:
            die(f"volumeMount {m['name']}: subPath is not supported here")
        d = os.path.join(root, m["name"])
        os.makedirs(d, mode=0o700, exist_ok=True)
        if "secret" in v:
            sec = json.loads(kubectl("-n", ns, "get", "secret", v["secret"]["secretName"], "-o", "json"))
            data = sec.get("data") or {}
            items = v["secret"].get("items") or [{"key": k, "path": k} for k in data]
            for it in items:
                if it["key"] not in data:
                    die(f"Secret {ns}/{v['secret']['secretName']} has no key {it['key']!r} (volume {m['name']})")
                p = os.path.join(d, it["path"])
                os.makedirs(os.path.dirname(p), exist_ok=True)
                with open(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
                    f.write(base64.b64decode(data[it["key"]]))
        elif "emptyDir" not in v:
            die(f"volume {m['name']}: only secret and emptyDir volumes are supported here")
        paths[m["mountPath"]] = d

    def remap(s):
        for mp in sorted(paths, key=len, reverse=True):
            i = s.find(mp)
            if i >= 0 and (i + len(mp) == len(s) or s[i + len(mp)] == "/"):
                return s[:i] + paths[mp] + s[i + len(mp):]
        return s

    if c.get("command"):
        die("the container sets command; only args are supported here")
    args = [remap(str(a)) for a in c.get("args", [])]
    field = {
        "metadata.name": f"{deploy['metadata']['name']}-e2e",
        "metadata.namespace": ns,
        "spec.serviceAccountName": pod.get("serviceAccountName", "default"),
    }
    env = []
    for e in c.get("env", []):
        if "value" in e:
            env.append(f"{e['name']}={e['value']}")
        elif "valueFrom" in e and "fieldRef" in e["valueFrom"]:
            fp = e["valueFrom"]["fieldRef"]["fieldPath"]
            if fp not in field:
                die(f"env {e['name']}: fieldRef {fp} is not supported here")
            env.append(f"{e['name']}={field[fp]}")
        else:
            die(f"env {e['name']}: only value and fieldRef are supported here")
    with open(os.path.join(root, "args"), "w") as f:
        f.write("".join(a + "\0" for a in args))
    with open(os.path.join(root, "env"), "w") as f:
        f.write("".join(e + "\0" for e in env))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "plan":
        plan(*sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == "mount":
        mount(*sys.argv[2:])
    elif len(sys.argv) == 6 and sys.argv[1] == "url":
        by_url(*sys.argv[2:])
    else:
        die("usage:\n" + __doc__[__doc__.index("  chart.py plan"):].split("\nNeeds")[0])
