// Validates every object in the given multi-document YAML files against the Kubernetes
// OpenAPI schemas (npm kubernetes-models) and the prometheus-operator CRD schemas
// (@kubernetes-models/prometheus-operator). Checks types, enums and required fields;
// misspelt keys are not caught by these schemas (check-packaging.sh asserts the keys that
// matter). Prints one line per object; exits 1 if any object is invalid or of an unknown kind.
// Usage: KUBE_MODELS_DIR=<dir holding node_modules/> node validate-manifests.mjs FILE...
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const modelsDir = process.env.KUBE_MODELS_DIR || process.cwd();
const nodeModules = path.join(modelsDir, "node_modules");
const yamlModule = await import(pathToFileURL(path.join(nodeModules, "yaml", "dist", "index.js")));
const YAML = yamlModule.default ?? yamlModule;

// The model packages are ESM with an "exports" map and live outside this script's tree:
// import the file by path.
async function importModel(spec) {
  const [pkg, ...rest] = spec.startsWith("@") ? [spec.split("/").slice(0, 2).join("/"), ...spec.split("/").slice(2)]
                                               : [spec.split("/")[0], ...spec.split("/").slice(1)];
  const file = path.join(nodeModules, pkg, ...rest) + ".js";
  return import(pathToFileURL(file));
}

function modulePath(apiVersion, kind) {
  if (!apiVersion || !kind) return null;
  if (apiVersion === "monitoring.coreos.com/v1") {
    return `@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/${kind}`;
  }
  return `kubernetes-models/${apiVersion}/${kind}`;
}

let ok = 0, bad = 0;
for (const file of process.argv.slice(2)) {
  const docs = YAML.parseAllDocuments(readFileSync(file, "utf8"));
  for (const doc of docs) {
    if (doc.errors.length) {
      console.log(`FAIL ${file}: YAML: ${doc.errors.map(e => e.message).join("; ")}`);
      bad++;
      continue;
    }
    const obj = doc.toJS();
    if (obj === null || obj === undefined) continue;  // empty document
    const what = `${obj.apiVersion}/${obj.kind} ${obj.metadata?.name ?? "<no name>"}`;
    const spec = modulePath(obj.apiVersion, obj.kind);
    let Model;
    try {
      Model = spec && (await importModel(spec))[obj.kind];
    } catch {
      Model = undefined;
    }
    if (!Model) {
      console.log(`FAIL ${file}: ${what}: no schema for this apiVersion/kind`);
      bad++;
      continue;
    }
    if (!obj.metadata?.name) {
      console.log(`FAIL ${file}: ${what}: metadata.name missing`);
      bad++;
      continue;
    }
    try {
      new Model(obj).validate();
      console.log(`ok   ${file}: ${what}`);
      ok++;
    } catch (e) {
      console.log(`FAIL ${file}: ${what}: ${e.message}`);
      bad++;
    }
  }
}
console.log(`validated ${ok + bad} objects: ${ok} valid, ${bad} invalid`);
process.exit(bad === 0 && ok > 0 ? 0 : 1);
