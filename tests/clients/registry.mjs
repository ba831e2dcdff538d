// Debian's docker-registry for the pull and push tests: started on a free loopback port with its
// storage in a temp folder; stop() ends it and removes the folder. pushBlob() uploads bytes with
// plain HTTP calls (monolithic upload) and returns {digest, size}.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

const registryBinary = "/usr/bin/docker-registry";

export const sha256 = (bytes) => "sha256:" + createHash("sha256").update(bytes).digest("hex");

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export async function startRegistry() {
  assert.ok(fs.existsSync(registryBinary), `${registryBinary} is missing (scripts/setup.sh)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "corral-registry-"));
  const host = `127.0.0.1:${await freePort()}`;
  const config = path.join(dir, "config.yml");
  fs.writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: ${host}\n`,
  );
  const child = spawn(registryBinary, ["serve", config], { stdio: "ignore" });
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`http://${host}/v2/`)).ok) break;
    } catch {}
    if (i > 500) throw new Error(`docker-registry does not answer at ${host}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    host,
    async pushBlob(repo, bytes) {
      const digest = sha256(bytes);
      const start = await fetch(`http://${host}/v2/${repo}/blobs/uploads/`, { method: "POST" });
      assert.equal(start.status, 202);
      const location = new URL(start.headers.get("location"), `http://${host}`);
      location.searchParams.set("digest", digest);
      const put = await fetch(location, { method: "PUT", body: bytes });
      assert.equal(put.status, 201, await put.text());
      return { digest, size: bytes.length };
    },
    stop() {
      child.kill("SIGTERM");
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
