/**
 * `deno task web`: builds the lab (web/build.ts) and serves it on 127.0.0.1 with
 * Fashion-MNIST's four `.gz` files under `data/`, found where the CLI finds them
 * (`$FASHION_MNIST_DIR`, `./data/fashion-mnist`, Debian's `/usr/share/datasets/fashion-mnist`).
 *
 *     deno task web [--port=8000]
 *
 * @module
 */
import { buildLab } from "./build.ts";
import { FILES } from "./data.ts";
import { FASHION_MNIST_SYSTEM_DIR } from "../src/data/fashion_mnist.ts";

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  css: "text/css",
  js: "text/javascript",
  gz: "application/gzip",
};

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** The first folder holding all four `.gz` files, or an error naming every place tried. */
export function findData(): string {
  const dirs = [
    Deno.env.get("FASHION_MNIST_DIR"),
    "./data/fashion-mnist",
    FASHION_MNIST_SYSTEM_DIR,
  ].filter((d): d is string => !!d);
  const names = Object.values(FILES).flatMap((f) => Object.values(f));
  for (const d of dirs) {
    if (names.every((n) => isFile(`${d}/${n}`))) return d;
  }
  throw new Error(
    `Fashion-MNIST's .gz files (${names.join(", ")}) are in none of ${dirs.join(", ")}: ` +
      "apt-get install dataset-fashion-mnist, or set FASHION_MNIST_DIR",
  );
}

/** Serves `site` and, under `/data/`, the four files of `dataDir`, on 127.0.0.1:`port`. */
export function serveLab(site: string, dataDir: string, port = 0): Deno.HttpServer<Deno.NetAddr> {
  const allowed = new Set<string>(Object.values(FILES).flatMap((f) => Object.values(f)));
  return Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, async (req) => {
    let path = new URL(req.url).pathname;
    if (path === "/") path = "/index.html";
    const file = path.startsWith("/data/") && allowed.has(path.slice(6))
      ? `${dataDir}/${path.slice(6)}`
      : /^\/[\w.-]+$/.test(path)
      ? site + path
      : undefined;
    try {
      if (!file) throw new Deno.errors.NotFound();
      const f = await Deno.open(file);
      const { size } = await f.stat();
      return new Response(f.readable, {
        headers: {
          "content-type": TYPES[file.split(".").pop()!] ?? "application/octet-stream",
          "content-length": String(size),
        },
      });
    } catch {
      return new Response(`${path}: not found`, { status: 404 });
    }
  });
}

if (import.meta.main) {
  const port = Number(Deno.args.find((a) => a.startsWith("--port="))?.slice(7) ?? 8000);
  const data = findData();
  const site = await buildLab();
  const server = serveLab(site, data, port);
  console.log(`bnlab lab: http://127.0.0.1:${server.addr.port}/ (data from ${data})`);
  console.log("Open it in a browser with WebGPU (Chromium on Linux: --enable-unsafe-webgpu).");
}
