#!/usr/bin/python3
"""Offline checks of a rendered chart against what the contract and the
install issue promise (names, flags, webhook paths and failure policies,
hardening, RBAC without wildcards, certificates).

    check_render.py FILE [--command run|webhook|controller] [--certs MODE]
                    [--pdb API_VERSION|none] [--namespace NS] [--fullname NAME]
                    [--signing-key create|external] [--failure-policy G/R/OP=POLICY]...

Exits 1 with one line per problem."""
import argparse
import base64
import os
import subprocess
import sys
import tempfile

import yaml

# (apiGroup, resource, operation) -> failurePolicy the defaults must give,
# for the validating webhook: the contract's "What is guarded".
VALIDATING = {
    ("velero.io", "backups", "DELETE"): "Fail",
    ("velero.io", "backups", "UPDATE"): "Fail",
    ("velero.io", "backups", "CREATE"): "Ignore",
    ("velero.io", "deletebackuprequests", "CREATE"): "Fail",
    ("velero.io", "deletebackuprequests", "UPDATE"): "Fail",
    ("", "namespaces", "DELETE"): "Fail",
    ("apiextensions.k8s.io", "customresourcedefinitions", "DELETE"): "Fail",
    ("apiextensions.k8s.io", "customresourcedefinitions", "UPDATE"): "Ignore",
    ("velero.io", "backupstoragelocations", "DELETE"): "Fail",
    ("velero.io", "backupstoragelocations", "UPDATE"): "Fail",
    ("snapshot.storage.k8s.io", "volumesnapshots", "DELETE"): "Fail",
    ("snapshot.storage.k8s.io", "volumesnapshots", "UPDATE"): "Fail",
    ("snapshot.storage.k8s.io", "volumesnapshotcontents", "DELETE"): "Fail",
    ("snapshot.storage.k8s.io", "volumesnapshotcontents", "UPDATE"): "Fail",
}
MUTATING = {
    ("velero.io", "backups", "UPDATE"): "Fail",
    ("velero.io", "backups", "CREATE"): "Ignore",
    ("velero.io", "backupstoragelocations", "CREATE"): "Ignore",
    ("velero.io", "backupstoragelocations", "UPDATE"): "Ignore",
    ("apiextensions.k8s.io", "customresourcedefinitions", "CREATE"): "Ignore",
    ("apiextensions.k8s.io", "customresourcedefinitions", "UPDATE"): "Ignore",
    ("snapshot.storage.k8s.io", "volumesnapshots", "CREATE"): "Fail",
    ("snapshot.storage.k8s.io", "volumesnapshots", "UPDATE"): "Fail",
    ("snapshot.storage.k8s.io", "volumesnapshotcontents", "CREATE"): "Fail",
    ("snapshot.storage.k8s.io", "volumesnapshotcontents", "UPDATE"): "Fail",
}
CLUSTER_SCOPED = {
    "Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "CustomResourceDefinition",
}

problems = []


def need(cond, msg):
    if not cond:
        problems.append(msg)


def check_webhooks(cfg, expected, path, ns, fullname, certs, ca_pem):
    seen = {}
    names = set()
    for w in cfg["webhooks"]:
        n = w["name"]
        need(n not in names, f"{cfg['kind']}: duplicate webhook name {n}")
        names.add(n)
        need(len(n.split(".")) >= 3, f"{n}: webhook names need three or more dot-separated segments")
        need("matchConditions" not in w, f"{n}: matchConditions are not available on Kubernetes 1.20")
        need(w.get("admissionReviewVersions") == ["v1"], f"{n}: admissionReviewVersions must be [v1]")
        need(w.get("sideEffects") == "NoneOnDryRun", f"{n}: sideEffects must be NoneOnDryRun")
        need(w.get("matchPolicy") == "Equivalent", f"{n}: matchPolicy must be Equivalent")
        need(isinstance(w.get("timeoutSeconds"), int) and 1 <= w["timeoutSeconds"] <= 10,
             f"{n}: timeoutSeconds should be small (1-10), got {w.get('timeoutSeconds')}")
        svc = w["clientConfig"].get("service", {})
        need(svc.get("name") == fullname and svc.get("namespace") == ns and svc.get("path") == path
             and svc.get("port") == 443, f"{n}: clientConfig.service should be {ns}/{fullname}:443{path}, got {svc}")
        need("url" not in w["clientConfig"], f"{n}: clientConfig.url is not used by the chart")
        bundle = w["clientConfig"].get("caBundle")
        if certs == "certManager":
            need(bundle is None, f"{n}: caBundle must be left to cert-manager's injector")
        else:
            need(bool(bundle), f"{n}: caBundle missing")
            if bundle and ca_pem:
                need(base64.b64decode(bundle).strip() == ca_pem.strip(),
                     f"{n}: caBundle is not the CA in the TLS Secret")
        for r in w["rules"]:
            for g in r["apiGroups"]:
                for res in r["resources"]:
                    for op in r["operations"]:
                        need(op != "*" and res != "*" and g != "*", f"{n}: wildcard in rules")
                        seen[(g, res, op)] = w["failurePolicy"]
                        if res == "namespaces":
                            sel = w.get("namespaceSelector", {}).get("matchExpressions", [])
                            excluded = [v for e in sel if e["key"] == "kubernetes.io/metadata.name"
                                        and e["operator"] == "NotIn" for v in e["values"]]
                            for must in ("kube-system", ns):
                                need(must in excluded, f"{n}: namespace deletions of {must} must be excluded")
                        if g == "snapshot.storage.k8s.io":
                            need("objectSelector" in w, f"{n}: snapshot webhooks must select Velero's snapshots only")
    need(set(seen) == set(expected),
         f"{cfg['kind']}: guarded paths differ from the contract: "
         f"missing {sorted(set(expected) - set(seen))}, extra {sorted(set(seen) - set(expected))}")
    for k, fp in expected.items():
        if k in seen:
            need(seen[k] == fp, f"{cfg['kind']}: {k} failurePolicy {seen[k]}, want {fp}")


def check_certs(secret, host):
    data = secret["data"]
    for k in ("ca.crt", "tls.crt", "tls.key"):
        need(k in data, f"TLS Secret lacks {k}")
    if problems:
        return None
    ca = base64.b64decode(data["ca.crt"])
    with tempfile.TemporaryDirectory() as d:
        for k in ("ca.crt", "tls.crt", "tls.key"):
            with open(os.path.join(d, k), "wb") as f:
                f.write(base64.b64decode(data[k]))
        v = subprocess.run(["openssl", "verify", "-CAfile", f"{d}/ca.crt", f"{d}/tls.crt"],
                           capture_output=True, text=True)
        need(v.returncode == 0, f"generated tls.crt does not verify against ca.crt: {v.stdout}{v.stderr}")
        san = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", f"{d}/tls.crt"],
                             capture_output=True, text=True).stdout
        need(f"DNS:{host}" in san, f"generated tls.crt has no subjectAltName DNS:{host} ({san.strip()})")
        mod_c = subprocess.run(["openssl", "x509", "-noout", "-pubkey", "-in", f"{d}/tls.crt"],
                               capture_output=True, text=True).stdout
        mod_k = subprocess.run(["openssl", "pkey", "-pubout", "-in", f"{d}/tls.key"],
                               capture_output=True, text=True).stdout
        need(mod_c and mod_c == mod_k, "generated tls.key does not match tls.crt")
    return ca


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--command", default="run")
    ap.add_argument("--certs", default="generate")
    ap.add_argument("--pdb", default="policy/v1")
    ap.add_argument("--namespace", default="backup-guard")
    ap.add_argument("--fullname", default="backup-guard")
    ap.add_argument("--signing-key", default="create", choices=["create", "external"])
    ap.add_argument("--ambient-credentials", action="store_true",
                    help="expect the controller's --ambient-credentials flag (else its absence)")
    ap.add_argument("--failure-policy", action="append", default=[], metavar="GROUP/RESOURCE/OP=POLICY",
                    help="expect a non-default validating failure policy (values overrides)")
    a = ap.parse_args()
    for o in a.failure_policy:
        key, fp = o.split("=")
        g, res, op = key.split("/")
        VALIDATING[(g, res, op)] = fp

    docs = [d for d in yaml.safe_load_all(open(a.file)) if d]
    by_kind = {}
    for d in docs:
        need("apiVersion" in d and "kind" in d and d.get("metadata", {}).get("name"),
             f"object without apiVersion/kind/name: {str(d)[:80]}")
        by_kind.setdefault(d["kind"], []).append(d)
        if d["kind"] not in CLUSTER_SCOPED:
            need(d["metadata"].get("namespace"), f"{d['kind']} {d['metadata']['name']}: no namespace")
        labels = d["metadata"].get("labels", {})
        need(labels.get("app.kubernetes.io/part-of") == "backup-guard",
             f"{d['kind']} {d['metadata']['name']}: missing the common labels")

    def one(kind, name=None):
        objs = [d for d in by_kind.get(kind, []) if name is None or d["metadata"]["name"] == name]
        need(len(objs) == 1, f"want exactly one {kind} {name or ''}, got {len(objs)}")
        return objs[0] if objs else None

    # --- Deployment
    dep = one("Deployment")
    if dep:
        spec = dep["spec"]["template"]["spec"]
        c = spec["containers"][0]
        args = c["args"]
        need(args[0] == a.command, f"container runs {args[0]}, want {a.command}")
        for flag in ("--listen=", "--metrics-listen=", "--tls-dir=/etc/backup-guard/tls",
                     "--signing-key=/etc/backup-guard/signing/key",
                     f"--policy-configmap={a.namespace}/backup-guard-policy", "--log-format="):
            need(any(x.startswith(flag) for x in args), f"container args lack {flag}")
        need(("--ambient-credentials" in args) == a.ambient_credentials,
             f"--ambient-credentials {'missing from' if a.ambient_credentials else 'in'} the args {args}")
        for p, probe in (("/livez", "livenessProbe"), ("/readyz", "readinessProbe")):
            pr = c.get(probe, {}).get("httpGet", {})
            need(pr.get("path") == p and pr.get("port") == "metrics", f"{probe} must GET {p} on the metrics port")
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        need(ports == {"https": 8443, "metrics": 9090}, f"container ports {ports}")
        sc = c["securityContext"]
        need(sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem must be true")
        need(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation must be false")
        need("ALL" in sc.get("capabilities", {}).get("drop", []), "capabilities must drop ALL")
        need(spec["securityContext"].get("runAsNonRoot") is True, "runAsNonRoot must be true")
        need(c.get("resources", {}).get("requests") and c["resources"].get("limits"), "resources must be set")
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        need(mounts.get("tls") == "/etc/backup-guard/tls", "tls volume must be mounted at /etc/backup-guard/tls")
        need(mounts.get("signing-key") == "/etc/backup-guard/signing", "signing key must be mounted at /etc/backup-guard/signing")
        need(not any("policy" in m for m in mounts), "the policy is watched through the API, not mounted")
        vols = {v["name"]: v for v in spec["volumes"]}
        need(vols.get("signing-key", {}).get("secret", {}).get("secretName") == "backup-guard-signing-key",
             "signing key volume must come from Secret backup-guard-signing-key")
        need(spec.get("priorityClassName") or a.command != "run", "priorityClassName should be set")
        need(spec.get("serviceAccountName") == a.fullname or a.fullname != "backup-guard", "serviceAccountName")
        if a.command == "run" and dep["spec"]["replicas"] > 1:
            need("podAntiAffinity" in spec.get("affinity", {}), "replicas should be spread (podAntiAffinity)")
        need(dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, "rolling updates must keep every replica")

    # --- Service
    svc = one("Service")
    if svc:
        ports = {p["name"]: (p["port"], p["targetPort"]) for p in svc["spec"]["ports"]}
        need(ports.get("https") == (443, "https"), f"Service must map 443 -> https, got {ports}")
        need(ports.get("metrics") == (9090, "metrics"), f"Service must expose metrics 9090, got {ports}")

    # --- PDB
    pdbs = by_kind.get("PodDisruptionBudget", [])
    if a.pdb == "none":
        need(not pdbs, "no PodDisruptionBudget expected")
    else:
        need(len(pdbs) == 1 and pdbs[0]["apiVersion"] == a.pdb,
             f"want one PodDisruptionBudget {a.pdb}, got {[p['apiVersion'] for p in pdbs]}")

    # --- policy ConfigMap
    cm = one("ConfigMap", "backup-guard-policy")
    if cm:
        need(cm["metadata"]["namespace"] == a.namespace, "policy ConfigMap must live in the release namespace")
        pol = yaml.safe_load(cm["data"]["policy.yaml"]) or {}
        need(isinstance(pol, dict), "policy.yaml must be a map")

    # --- signing key
    sk = [d for d in by_kind.get("Secret", []) if d["metadata"]["name"] == "backup-guard-signing-key"]
    if a.signing_key == "create":
        need(len(sk) == 1, "the signing key Secret must be rendered")
        if sk:
            need(sk[0]["metadata"].get("annotations", {}).get("helm.sh/resource-policy") == "keep",
                 "the signing key must survive uninstall (helm.sh/resource-policy: keep)")
            key = base64.b64decode(sk[0]["data"]["key"])
            need(len(key) >= 32, f"signing key too short ({len(key)} bytes)")
    else:
        need(not sk, "the signing key must not be rendered (created out of band)")

    # --- certificates
    ca_pem = None
    host = f"{a.fullname}.{a.namespace}.svc"
    tls = [d for d in by_kind.get("Secret", []) if d.get("type") == "kubernetes.io/tls"]
    if a.certs == "generate":
        need(len(tls) == 1, "certs.mode generate renders one TLS Secret")
        if tls:
            ca_pem = check_certs(tls[0], host)
    else:
        need(not tls, f"certs.mode {a.certs} renders no TLS Secret")
    certs = by_kind.get("Certificate", [])
    if a.certs == "certManager":
        serving = [c for c in certs if not c["spec"].get("isCA")]
        need(len(serving) == 1 and host in serving[0]["spec"]["dnsNames"], f"a serving Certificate for {host}")
    else:
        need(not certs and not by_kind.get("Issuer"), "cert-manager objects only in certManager mode")

    # --- webhooks
    vw, mw = by_kind.get("ValidatingWebhookConfiguration", []), by_kind.get("MutatingWebhookConfiguration", [])
    if a.command == "controller":
        need(not vw and not mw, "a controller-only install has no webhook configurations")
    else:
        need(len(vw) == 1 and len(mw) == 1, "one validating and one mutating webhook configuration")
        if vw:
            check_webhooks(vw[0], VALIDATING, "/validate", a.namespace, a.fullname, a.certs, ca_pem)
        if mw:
            check_webhooks(mw[0], MUTATING, "/mutate", a.namespace, a.fullname, a.certs, ca_pem)
        if a.certs == "certManager":
            for cfg in vw + mw:
                need(cfg["metadata"].get("annotations", {}).get("cert-manager.io/inject-ca-from")
                     == f"{a.namespace}/{a.fullname}-serving", f"{cfg['kind']}: inject-ca-from annotation")

    # --- RBAC
    for kind in ("ClusterRole", "Role"):
        for r in by_kind.get(kind, []):
            for rule in r["rules"]:
                for k in ("apiGroups", "resources", "verbs", "resourceNames"):
                    need("*" not in rule.get(k, []), f"{kind} {r['metadata']['name']}: wildcard in {k}")
    controller_roles = [r for r in by_kind.get("ClusterRole", []) if r["metadata"]["name"].endswith("-controller")]
    need(bool(controller_roles) == (a.command != "webhook"), "controller RBAC exactly when the controller runs")
    lease_rules = [rule for r in by_kind.get("Role", []) for rule in r["rules"]
                   if "leases" in rule.get("resources", [])]
    need(bool(lease_rules) == (a.command != "webhook"), "Lease RBAC exactly when the controller runs")

    for p in problems:
        print(f"{a.file}: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
