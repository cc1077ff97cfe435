import assert from "node:assert/strict";
import { downloadFile, md5Hex } from "../../src/data/download.ts";

const enc = new TextEncoder();

Deno.test("md5Hex matches the RFC 1321 test suite", () => {
  // RFC 1321, appendix A.5.
  const suite: [string, string][] = [
    ["", "d41d8cd98f00b204e9800998ecf8427e"],
    ["a", "0cc175b9c0f1b6a831c399e269772661"],
    ["abc", "900150983cd24fb0d6963f7d28e17f72"],
    ["message digest", "f96b697d7cb7938d525a2f31aaf161d0"],
    ["abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"],
    [
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
      "d174ab98d277d9f5a5611c2c9f419d9f",
    ],
    ["1234567890".repeat(8), "57edf4a22be3c955ac49da2e2107b67a"],
  ];
  for (const [msg, want] of suite) assert.equal(md5Hex(enc.encode(msg)), want, JSON.stringify(msg));
});

/** A loopback server for one test; `handler` gets the request path. */
function serve(handler: (path: string) => Response) {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => handler(new URL(req.url).pathname),
  );
  return { server, url: `http://127.0.0.1:${server.addr.port}` };
}

/**
 * A raw TCP server that announces `announce` bytes and sends only `body`, then closes:
 * a connection that breaks off mid-download.
 */
function serveTruncated(body: Uint8Array, announce: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const done = (async () => {
    for await (const conn of listener) {
      const buf = new Uint8Array(4096);
      await conn.read(buf); // the request; its content does not matter
      const head = `HTTP/1.1 200 OK\r\nContent-Length: ${announce}\r\nConnection: close\r\n\r\n`;
      await conn.write(enc.encode(head));
      await conn.write(body);
      conn.close();
    }
  })();
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    close: async () => {
      listener.close();
      await done.catch(() => {});
    },
  };
}

async function files(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

Deno.test("downloadFile writes the file after checking its MD5 and reports progress", async () => {
  const body = new Uint8Array(100_000).map((_, i) => (i * 7) & 0xff);
  const { server, url } = serve(() => new Response(body));
  const dir = await Deno.makeTempDir();
  try {
    const seen: [number, number][] = [];
    await downloadFile(`${url}/x.bin`, `${dir}/x.bin`, {
      md5: md5Hex(body).toUpperCase(), // case does not matter
      onProgress: (r, t) => seen.push([r, t]),
    });
    assert.deepEqual(await Deno.readFile(`${dir}/x.bin`), body);
    assert.deepEqual(await files(dir), ["x.bin"]);
    assert.ok(seen.length >= 1);
    assert.deepEqual(seen.at(-1), [body.length, body.length]);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i][0] > seen[i - 1][0]);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("downloadFile rejects a checksum mismatch and leaves nothing behind", async () => {
  const body = enc.encode("not the file you wanted");
  const { server, url } = serve(() => new Response(body));
  const dir = await Deno.makeTempDir();
  try {
    const want = md5Hex(enc.encode("the file you wanted"));
    await assert.rejects(
      () => downloadFile(`${url}/f.gz`, `${dir}/f.gz`, { md5: want }),
      new RegExp(
        `Download of ${url}/f\\.gz to ${dir}/f\\.gz failed: MD5 checksum mismatch: ` +
          `got ${md5Hex(body)}, expected ${want}`,
      ),
    );
    assert.deepEqual(await files(dir), []);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("downloadFile rejects a connection that breaks off and leaves nothing behind", async () => {
  const srv = serveTruncated(new Uint8Array(1000).fill(7), 5000);
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      () => downloadFile(`${srv.url}/big.gz`, `${dir}/big.gz`),
      new RegExp(
        `Download of ${srv.url}/big\\.gz to ${dir}/big\\.gz failed: ` +
          `(the connection broke off after \\d+ bytes|received 1000 bytes but the server announced 5000)`,
      ),
    );
    assert.deepEqual(await files(dir), []);
  } finally {
    await srv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("downloadFile reports HTTP errors and keeps an existing file untouched", async () => {
  const { server, url } = serve(() => new Response("no", { status: 404 }));
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/keep`, "old");
    await assert.rejects(
      () => downloadFile(`${url}/keep`, `${dir}/keep`),
      /failed: HTTP 404 Not Found/,
    );
    assert.equal(await Deno.readTextFile(`${dir}/keep`), "old");
    assert.deepEqual(await files(dir), ["keep"]);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("downloadFile never writes through a symlink planted at its temporary name (#25.1)", async () => {
  const dir = await Deno.makeTempDir();
  const body = new TextEncoder().encode("downloaded");
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(body),
  );
  try {
    await Deno.writeTextFile(`${dir}/victim.txt`, "precious");
    // 0d6f957's fixed temporary name, planted as a symlink to a file the user can write.
    await Deno.symlink(`${dir}/victim.txt`, `${dir}/f.gz.part`);
    await downloadFile(`http://127.0.0.1:${server.addr.port}/f.gz`, `${dir}/f.gz`);
    assert.equal(await Deno.readTextFile(`${dir}/victim.txt`), "precious");
    assert.equal(await Deno.readTextFile(`${dir}/f.gz`), "downloaded");
    assert.ok(!(await Deno.lstat(`${dir}/f.gz`)).isSymlink);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
