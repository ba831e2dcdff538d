// Starts `corral serve` for the client tests: a fresh model store in a temp folder holding
// `stories` (tinystories260k, a GGUF) and `qwen` (the tiny-qwen2 safetensors checkpoint converted
// with `corral create -q F32`) — with opts.vision also the vision models `qwen2vl` and `mllama`
// (tiny-qwen2vl and tiny-mllama, F32) — the server on a free loopback port, and a stop() that ends the
// server and removes the folder.
//
// CORRAL_BINARY names the corral executable (default build/corral of this checkout);
// CORRAL_TESTDATA the fixtures (default ../shared/testdata beside the checkout). A missing binary
// or fixture fails the test with a message saying which.
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, "..", "..");

export const corralBinary = path.resolve(
  repoRoot,
  process.env.CORRAL_BINARY || path.join("build", "corral"),
);
export const testdataRoot = path.resolve(
  repoRoot,
  process.env.CORRAL_TESTDATA || path.join("..", "shared", "testdata"),
);

export function testdataPath(relative) {
  const p = path.join(testdataRoot, relative);
  if (!fs.existsSync(p)) {
    throw new Error(
      `test fixture ${p} is missing (set CORRAL_TESTDATA to the shared testdata folder)`,
    );
  }
  return p;
}

function runCorral(args, env) {
  try {
    return execFileSync(corralBinary, args, {
      env: { ...process.env, ...env },
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (e) {
    throw new Error(
      `corral ${args.join(" ")} failed (exit ${e.status}):\n${e.stdout ?? ""}${e.stderr ?? ""}`,
    );
  }
}

// The models are made once per process into a seed store; each server gets a copy of it, so that
// tests that delete or replace models do not see each other.
const seedStores = new Map();

function makeSeedStore(vision) {
  if (seedStores.has(vision)) return seedStores.get(vision);
  if (!fs.existsSync(corralBinary)) {
    throw new Error(
      `corral binary ${corralBinary} not found (build it, or set CORRAL_BINARY to its path)`,
    );
  }
  const stories = testdataPath("tinystories260k/stories260K-f32.gguf");
  const qwen = testdataPath("reference/tiny-qwen2");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "corral-seed-"));
  process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  const store = path.join(dir, "models");
  const env = { CORRAL_MODELS: store };
  fs.writeFileSync(path.join(dir, "Modelfile.stories"), `FROM ${stories}\n`);
  fs.writeFileSync(path.join(dir, "Modelfile.qwen"), `FROM ${qwen}\n`);
  runCorral(["create", "stories", "-f", path.join(dir, "Modelfile.stories")], env);
  runCorral(["create", "qwen", "-q", "F32", "-f", path.join(dir, "Modelfile.qwen")], env);
  for (const name of vision ? ["qwen2vl", "mllama"] : []) {
    const file = path.join(dir, `Modelfile.${name}`);
    fs.writeFileSync(file, `FROM ${testdataPath(`reference/tiny-${name}`)}\n`);
    runCorral(["create", name, "-q", "F32", "-f", file], env);
  }
  seedStores.set(vision, store);
  return store;
}

// Starts a server. opts.env adds environment variables (CORRAL_API_KEY, CORRAL_NUM_PARALLEL, ...);
// opts.timeoutMs bounds the start (default 30 s); opts.vision adds the vision models to the store.
export async function startServer(opts = {}) {
  const seed = makeSeedStore(Boolean(opts.vision));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "corral-serve-"));
  const modelsDir = path.join(dir, "models");
  fs.cpSync(seed, modelsDir, { recursive: true });
  const env = {
    ...process.env,
    CORRAL_MODELS: modelsDir,
    CORRAL_HOST: "127.0.0.1:0",
    // A model the store lacks is pulled: from loopback port 1, where nothing listens, never from
    // registry.ollama.ai.
    CORRAL_REGISTRY_MIRROR: "http://127.0.0.1:1",
    ...(opts.env || {}),
  };
  const child = spawn(corralBinary, ["serve"], { env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  let exited = null;
  const exit = new Promise((resolve) =>
    child.on("exit", (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    }),
  );
  // Both streams are read to the end, so that the server never blocks on a full pipe.
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d) => (output += d));
  child.stdout.setEncoding("utf8");

  const cleanup = () => fs.rmSync(dir, { recursive: true, force: true });
  const timeoutMs = opts.timeoutMs ?? 30000;
  let host;
  try {
    host = await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`corral serve did not start in ${timeoutMs} ms:\n${output}`)),
        timeoutMs,
      );
      child.stdout.on("data", (d) => {
        output += d;
        const m = /corral is listening on (\S+)/.exec(output);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      exit.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`corral serve exited (${code ?? signal}) before listening:\n${output}`));
      });
    });
    const url = `http://${host}`;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (exited) throw new Error(`corral serve exited (${exited.code ?? exited.signal}):\n${output}`);
      try {
        const r = await fetch(`${url}/`);
        await r.arrayBuffer();
        break;
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`corral serve does not answer at ${url}:\n${output}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  } catch (e) {
    child.kill("SIGKILL");
    await exit;
    cleanup();
    throw e;
  }

  const port = Number(host.slice(host.lastIndexOf(":") + 1));
  return {
    url: `http://${host}`,
    host,
    port,
    modelsDir,
    env,
    pid: child.pid,
    output: () => output,
    exited: () => exited,
    stop: async () => {
      if (!exited) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 10000);
        await exit;
        clearTimeout(timer);
      }
      cleanup();
      return exited;
    },
  };
}
