// Asserts what the packaging promises on rendered manifests (helm template / kustomize).
// Usage: KUBE_MODELS_DIR=<dir with node_modules/yaml> node assert-rendered.mjs FILE [OPTIONS]
//   --secret STRING       a credential that must be in a Secret and nowhere in a ConfigMap
//   --no-secret-object    the chart must not create a Secret (existingSecret case)
//   --expect-kind KIND    an object of this kind must be present (repeatable)
//   --forbid-kind KIND    no object of this kind may be present (repeatable)
//   --extract-config OUT  write the ConfigMap's scheduler.yaml to OUT
// Checks every Deployment in FILE: non-root, read-only root filesystem, no privilege
// escalation, ALL capabilities dropped, seccomp RuntimeDefault, probes on /healthz and
// /readyz against a declared port, a checksum/config annotation or a hashed ConfigMap
// name, the config mounted read-only, passwords from Secrets via env, no token, grace
// period above the drain timeout, selectors that match the pod labels.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const modelsDir = process.env.KUBE_MODELS_DIR || process.cwd();
const yamlModule = await import(pathToFileURL(path.join(modelsDir, "node_modules", "yaml", "dist", "index.js")));
const YAML = yamlModule.default ?? yamlModule;

const args = process.argv.slice(2);
const file = args.shift();
const secrets = [], expectKinds = [], forbidKinds = [];
let noSecretObject = false, extractTo = null;
while (args.length) {
  const a = args.shift();
  if (a === "--secret") secrets.push(args.shift());
  else if (a === "--no-secret-object") noSecretObject = true;
  else if (a === "--expect-kind") expectKinds.push(args.shift());
  else if (a === "--forbid-kind") forbidKinds.push(args.shift());
  else if (a === "--extract-config") extractTo = args.shift();
  else { console.error(`unknown option ${a}`); process.exit(2); }
}

const objects = YAML.parseAllDocuments(readFileSync(file, "utf8")).map(d => d.toJS()).filter(Boolean);
const failures = [];
let checks = 0;
function check(cond, msg) {
  checks++;
  if (!cond) failures.push(msg);
}
const byKind = kind => objects.filter(o => o.kind === kind);
const find = (kind, name) => objects.find(o => o.kind === kind && o.metadata?.name === name);
const matches = (selector, labels) =>
  Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v) && Object.keys(selector ?? {}).length > 0;

for (const k of expectKinds) check(byKind(k).length > 0, `expected a ${k}`);
for (const k of forbidKinds) check(byKind(k).length === 0, `expected no ${k}`);

const deployments = byKind("Deployment");
check(deployments.length === 1, `expected exactly one Deployment, found ${deployments.length}`);

for (const d of deployments) {
  const where = `Deployment ${d.metadata.name}`;
  const pod = d.spec.template;
  const ps = pod.spec;
  const psc = ps.securityContext ?? {};
  check(matches(d.spec.selector?.matchLabels, pod.metadata?.labels), `${where}: selector does not match the pod labels`);
  check(d.spec.strategy?.type === "RollingUpdate", `${where}: strategy is not RollingUpdate`);
  check(ps.automountServiceAccountToken === false, `${where}: the pod automounts a service account token`);
  check(ps.containers.length === 1, `${where}: expected one container`);
  const c = ps.containers[0];
  const sc = c.securityContext ?? {};
  const eff = key => (sc[key] !== undefined ? sc[key] : psc[key]);
  check(eff("runAsNonRoot") === true, `${where}: runAsNonRoot is not true`);
  check(Number.isInteger(eff("runAsUser")) && eff("runAsUser") > 0, `${where}: no numeric non-root runAsUser`);
  check(sc.readOnlyRootFilesystem === true, `${where}: readOnlyRootFilesystem is not true`);
  check(sc.allowPrivilegeEscalation === false, `${where}: allowPrivilegeEscalation is not false`);
  check(sc.privileged !== true, `${where}: privileged`);
  check((sc.capabilities?.drop ?? []).includes("ALL"), `${where}: capabilities do not drop ALL`);
  check((sc.capabilities?.add ?? []).length === 0, `${where}: capabilities added`);
  check((sc.seccompProfile ?? psc.seccompProfile)?.type === "RuntimeDefault", `${where}: seccomp is not RuntimeDefault`);

  const ports = (c.ports ?? []).map(p => p.name);
  const probe = (name, p, wantPath) => {
    check(p?.httpGet?.path === wantPath, `${where}: ${name} does not GET ${wantPath}`);
    const port = p?.httpGet?.port;
    check(ports.includes(port) || (c.ports ?? []).some(x => x.containerPort === port),
          `${where}: ${name} port ${port} is not a container port`);
  };
  probe("livenessProbe", c.livenessProbe, "/healthz");
  probe("readinessProbe", c.readinessProbe, "/readyz");
  if (c.startupProbe) probe("startupProbe", c.startupProbe, "/healthz");

  // The config: a ConfigMap mounted read-only, rolled on change.
  const cmVolumes = (ps.volumes ?? []).filter(v => v.configMap);
  check(cmVolumes.length === 1, `${where}: expected one ConfigMap volume`);
  const cmVol = cmVolumes[0];
  const mount = (c.volumeMounts ?? []).find(m => m.name === cmVol?.name);
  check(mount?.readOnly === true, `${where}: the config volume is not mounted read-only`);
  const argv = c.args ?? [];
  const ci = argv.findIndex(a => a === "-config" || a === "--config");
  const configPath = ci >= 0 ? argv[ci + 1] : "/etc/djinn/scheduler.yaml";
  check(mount && configPath.startsWith(mount.mountPath + "/"), `${where}: -config ${configPath} is not in the config mount`);
  const cm = find("ConfigMap", cmVol?.configMap?.name);
  check(cm, `${where}: ConfigMap ${cmVol?.configMap?.name} is not rendered`);
  const checksum = pod.metadata?.annotations?.["checksum/config"];
  const hashedName = /-[a-z0-9]{10}$/.test(cm?.metadata?.name ?? "");  // kustomize configMapGenerator
  check((checksum && /^[0-9a-f]{64}$/.test(checksum)) || hashedName,
        `${where}: no checksum/config annotation (nor a hashed ConfigMap name): config changes would not roll the pods`);

  // Credentials: env vars from Secrets, referenced by the config as ${VAR}.
  const configText = cm ? Object.values(cm.data ?? {}).join("\n") : "";
  const configKey = path.basename(configPath);
  const config = cm?.data?.[configKey] ? YAML.parse(cm.data[configKey]) : null;
  check(config, `${where}: ConfigMap has no ${configKey}`);
  if (config) {
    const pw = config.database?.password ?? "";
    const m = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(pw);
    check(m, `${where}: database.password in the ConfigMap is not a \${VAR} reference: it would hold the secret`);
    if (m) {
      const env = (c.env ?? []).find(e => e.name === m[1]);
      const ref = env?.valueFrom?.secretKeyRef;
      check(ref?.name && ref?.key, `${where}: env ${m[1]} is not taken from a Secret`);
      const sec = ref && find("Secret", ref.name);
      if (noSecretObject) {
        check(!sec, `${where}: a Secret ${ref?.name} is rendered although an existing one was asked for`);
      } else {
        check(sec, `${where}: Secret ${ref?.name} referenced by env ${m[1]} is not rendered`);
        const has = sec && ((sec.data ?? {})[ref.key] !== undefined || (sec.stringData ?? {})[ref.key] !== undefined);
        check(has, `${where}: Secret ${ref?.name} has no key ${ref?.key}`);
      }
    }
    for (const [k, v] of [["redis.password", config.redis?.password], ["crypto.salt", config.crypto?.salt]]) {
      if (v !== undefined && v !== "") {
        const mm = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(v);
        check(mm && (c.env ?? []).some(e => e.name === mm[1] && e.valueFrom?.secretKeyRef),
              `${where}: ${k} is neither empty nor a \${VAR} fed from a Secret`);
      }
    }
    const drain = /^([0-9]+)s$/.exec(config.drain_timeout ?? "20s");
    const grace = ps.terminationGracePeriodSeconds ?? 30;
    check(drain && grace > Number(drain[1]), `${where}: terminationGracePeriodSeconds ${grace} is not above drain_timeout ${config.drain_timeout}`);
    check(config.http?.addr && ports.length > 0 &&
          (c.ports ?? []).some(p => config.http.addr.endsWith(`:${p.containerPort}`)),
          `${where}: http.addr ${config.http?.addr} does not match the container port`);
    if (extractTo) writeFileSync(extractTo, cm.data[configKey]);
  }
  for (const s of secrets) {
    check(!configText.includes(s), `${where}: the credential "${s}" appears in the ConfigMap`);
    const inSecret = byKind("Secret").some(sec =>
      Object.values(sec.data ?? {}).some(v => Buffer.from(v, "base64").toString() === s) ||
      Object.values(sec.stringData ?? {}).includes(s));
    check(inSecret, `${where}: the credential "${s}" is not in any Secret`);
    const elsewhere = objects.filter(o => o.kind !== "Secret").some(o => JSON.stringify(o).includes(s));
    check(!elsewhere, `${where}: the credential "${s}" appears outside the Secret`);
  }

  const saName = ps.serviceAccountName;
  const sa = saName && find("ServiceAccount", saName);
  if (sa) check(sa.automountServiceAccountToken === false, `ServiceAccount ${saName} automounts its token`);
}

for (const s of byKind("Service")) {
  const pod = deployments[0]?.spec.template;
  check(matches(s.spec.selector, pod?.metadata?.labels), `Service ${s.metadata.name}: selector does not match the pods`);
  const names = (pod?.spec.containers[0].ports ?? []).map(p => p.name);
  check(s.spec.ports.every(p => names.includes(p.targetPort) || typeof p.targetPort === "number"),
        `Service ${s.metadata.name}: targetPort is not a container port`);
}
for (const kind of ["ServiceMonitor", "PodMonitor"]) {
  for (const m of byKind(kind)) {
    const labels = kind === "ServiceMonitor" ? byKind("Service")[0]?.metadata.labels
                                             : deployments[0]?.spec.template.metadata.labels;
    check(matches(m.spec.selector?.matchLabels, labels), `${kind} ${m.metadata.name}: selector matches nothing`);
    const eps = m.spec.endpoints ?? m.spec.podMetricsEndpoints ?? [];
    check(eps.some(e => e.path === "/metrics"), `${kind} ${m.metadata.name}: no /metrics endpoint`);
  }
}
for (const r of byKind("PrometheusRule")) {
  const alerts = r.spec.groups.flatMap(g => g.rules).map(x => x.alert).filter(Boolean);
  for (const a of ["DjinnSchedulerNoLeader", "DjinnSchedulerPassesStale", "DjinnSchedulerEnqueueErrors",
                   "DjinnSchedulerCronsSkipped"]) {
    check(alerts.includes(a), `PrometheusRule ${r.metadata.name}: alert ${a} missing`);
  }
  const noLeader = r.spec.groups.flatMap(g => g.rules).find(x => x.alert === "DjinnSchedulerNoLeader");
  check(noLeader?.for === "5m" || noLeader?.for, `PrometheusRule: DjinnSchedulerNoLeader has no "for"`);
  for (const rule of r.spec.groups.flatMap(g => g.rules)) {
    check(/djinn_scheduler_/.test(rule.expr) || rule.record, `PrometheusRule: ${rule.alert} does not use the scheduler's metrics`);
  }
}
for (const p of byKind("PodDisruptionBudget")) {
  check(matches(p.spec.selector?.matchLabels, deployments[0]?.spec.template.metadata.labels),
        `PodDisruptionBudget ${p.metadata.name}: selector matches nothing`);
}
for (const np of byKind("NetworkPolicy")) {
  const d = deployments[0];
  check(matches(np.spec.podSelector?.matchLabels, d?.spec.template.metadata.labels),
        `NetworkPolicy ${np.metadata.name}: podSelector matches nothing`);
  check((np.spec.policyTypes ?? []).includes("Egress"), `NetworkPolicy ${np.metadata.name}: egress is not restricted`);
  const egressPorts = (np.spec.egress ?? []).flatMap(e => e.ports ?? []);
  check((np.spec.egress ?? []).every(e => (e.ports ?? []).length > 0),
        `NetworkPolicy ${np.metadata.name}: an egress rule is open on every port`);
  check(egressPorts.some(p => p.port === 53 && p.protocol === "UDP"), `NetworkPolicy ${np.metadata.name}: no DNS egress`);
  const cm = objects.find(o => o.kind === "ConfigMap" && o.data?.["scheduler.yaml"]);
  const cfg = cm ? YAML.parse(cm.data["scheduler.yaml"]) : null;
  for (const [what, addr] of [["database", cfg?.database?.addr], ["redis", cfg?.redis?.addr]]) {
    const port = Number(/:([0-9]+)$/.exec(addr ?? "")?.[1]);
    check(egressPorts.some(p => p.port === port), `NetworkPolicy ${np.metadata.name}: no egress to the ${what} port ${port}`);
  }
}

if (failures.length) {
  for (const f of failures) console.log(`FAIL ${file}: ${f}`);
  console.log(`${file}: ${failures.length} of ${checks} assertions FAILED`);
  process.exit(1);
}
console.log(`${file}: ${checks} assertions passed`);
