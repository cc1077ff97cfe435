/**
 * Uniform structs packed by name: the layout read from the WGSL source must be the one the
 * GPU reads (checked for every uniform struct of every kernel in src/, by a probe kernel
 * that copies each field out), and a missing, extra or malformed field must be refused at
 * the launch, naming the kernel, the struct and the field.
 */
import { match, ok, throws } from "node:assert/strict";
import { gpuTest } from "../gpu_test.ts";
import { launch, uniforms } from "../../src/gpu/queue.ts";
import {
  packUniforms,
  structLayout,
  type UniformField,
  type UniformValues,
} from "../../src/gpu/uniforms.ts";
import { Tensor } from "../../src/tensor/tensor.ts";

const SRC = new URL("../../src/", import.meta.url);

/** Every .wgsl file under src/, with its text. */
async function kernels(): Promise<{ path: string; code: string }[]> {
  const out: { path: string; code: string }[] = [];
  const walk = async (dir: URL, rel: string) => {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory) await walk(new URL(`${e.name}/`, dir), `${rel}${e.name}/`);
      else if (e.name.endsWith(".wgsl")) {
        out.push({
          path: rel + e.name,
          code: await Deno.readTextFile(new URL(e.name, dir)),
        });
      }
    }
  };
  await walk(SRC, "");
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

/** The struct types that a kernel binds as `var<uniform>` (arrays of vec4 excluded). */
function uniformStructs(code: string): string[] {
  const text = code.replace(/\/\/[^\n]*/g, "");
  const names = [...text.matchAll(/var<uniform>\s*\w+\s*:\s*(\w+)\s*;/g)].map((m) => m[1]);
  return [...new Set(names)];
}

/** The text of struct `name` in `code`. */
function structText(code: string, name: string): string {
  const m = new RegExp(`struct\\s+${name}\\s*\\{[^}]*\\}`).exec(code);
  if (!m) throw new Error(`no struct ${name}`);
  return m[0];
}

/** WGSL that reads component j of element e of field f as u32 bits. */
function component(f: UniformField, e: number, j: number): string {
  let x = `p.${f.name}`;
  if (f.length > 1) x += `[${e}]`;
  if (f.width > 1) x += `[${j}]`;
  return f.scalar === "u32" ? x : `bitcast<u32>(${x})`;
}

/**
 * Packs distinct values into every component of `struct` by name, runs a kernel that copies
 * each component out as the GPU reads it, and compares.
 */
async function probe(where: string, code: string, struct: string): Promise<void> {
  const layout = structLayout(code, struct);
  const lines: string[] = [];
  const want: number[] = [];
  const values: Record<string, number | number[]> = {};
  let k = 0;
  for (const f of layout.fields) {
    const vs: number[] = [];
    for (let e = 0; e < f.length; e++) {
      for (let j = 0; j < f.width; j++) {
        k++;
        // a distinct value per component, whose bits identify it
        const v = f.scalar === "f32" ? k + 0.25 : f.scalar === "i32" ? -k : 1000 + k;
        vs.push(v);
        const bits = new DataView(new ArrayBuffer(4));
        if (f.scalar === "f32") bits.setFloat32(0, v, true);
        else if (f.scalar === "i32") bits.setInt32(0, v, true);
        else bits.setUint32(0, v, true);
        want.push(bits.getUint32(0, true));
        lines.push(`  out[${want.length - 1}] = ${component(f, e, j)};`);
      }
    }
    values[f.name] = f.width * f.length === 1 ? vs[0] : vs;
  }
  const kernel = `${structText(code, struct)}
@group(0) @binding(0) var<uniform> p: ${struct};
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(1)
fn main() {
${lines.join("\n")}
}`;
  const out = Tensor.zeros([want.length]);
  launch({
    label: `test.uniform_probe ${where}`,
    code: kernel,
    bindings: [uniforms(values, struct), out.buffer],
    workgroups: [1],
  });
  const got = new Uint32Array((await out.toArray()).buffer);
  out.dispose();
  const bad = want.findIndex((w, i) => got[i] !== w);
  ok(bad < 0, `${where}: component ${bad} read as ${got[bad]}, packed as ${want[bad]}`);
}

gpuTest("every kernel's uniform struct is read by the GPU as packed by name", async () => {
  let structs = 0;
  for (const { path, code } of await kernels()) {
    for (const struct of uniformStructs(code)) {
      await probe(`${path} ${struct}`, code, struct);
      structs++;
    }
  }
  ok(structs >= 16, `only ${structs} uniform structs found under src/`);
});

gpuTest("a struct's fields land at WGSL's offsets whatever order they are named in", async () => {
  // vec2 aligns to 8, vec3/vec4/arrays to 16, an array stride of 16; fields in an odd order
  const code = `struct Odd {
    a: u32, b: vec2<f32>, c: i32, d: vec3<u32>, e: f32, f: array<vec4<i32>, 2>, g: u32,
  }`;
  const l = structLayout(code, "Odd");
  ok(
    l.fields.map((f) => `${f.name}@${f.offset}`).join(" ") === "a@0 b@8 c@16 d@32 e@44 f@48 g@80",
    l.fields.map((f) => `${f.name}@${f.offset}`).join(" "),
  );
  ok(l.size === 96, `size ${l.size}`);
  await probe("struct Odd", code, "Odd");
});

const KERNEL = `struct Params { n: u32, eps: f32, shape: array<vec4<u32>, 2>, shift: i32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(1)
fn main() { out[0] = p.eps * f32(p.n + p.shape[1][3]) + f32(p.shift); }`;

const GOOD: UniformValues = { n: 3, eps: 0.5, shape: [1, 2, 3, 4, 5, 6, 7, 8], shift: -1 };

function launchWith(values: UniformValues, struct = "Params", binding = 0): void {
  const out = Tensor.zeros([1]);
  try {
    const bindings: (GPUBuffer | ReturnType<typeof uniforms>)[] = [out.buffer, out.buffer];
    bindings[binding] = uniforms(values, struct);
    if (binding !== 0) bindings[0] = out.buffer;
    launch({ label: "test.params", code: KERNEL, bindings, workgroups: [1] });
  } finally {
    out.dispose();
  }
}

gpuTest("a missing, extra or malformed field is refused at the launch, by name", async () => {
  const out = Tensor.zeros([1]);
  launch({
    label: "test.params",
    code: KERNEL,
    bindings: [uniforms(GOOD), out.buffer],
    workgroups: [1],
  });
  ok((await out.toArray())[0] === 0.5 * (3 + 8) - 1, "the good values compute 4.5");
  out.dispose();
  const { n: _n, ...missing } = GOOD;
  throws(
    () => launchWith(missing),
    (e: Error) => {
      match(e.message, /test\.params \(entry point main\)/);
      match(e.message, /uniform struct Params is missing field 'n'/);
      return true;
    },
  );
  throws(() => launchWith({ ...GOOD, epsilon: 1e-5 }), /has no field 'epsilon'/);
  throws(() => launchWith({ ...GOOD, shape: [1, 2, 3] }), /field 'shape' takes 8 numbers, got 3/);
  throws(() => launchWith({ ...GOOD, shape: 4 }), /field 'shape' takes 8 numbers, got one/);
  throws(
    () => launchWith({ ...GOOD, eps: [0.5] }),
    /field 'eps' takes a number, got 1 in an array/,
  );
  throws(() => launchWith({ ...GOOD, n: 2.5 }), /field 'n' is u32, got 2\.5/);
  throws(() => launchWith({ ...GOOD, n: -1 }), /field 'n' is u32, got -1/);
  throws(() => launchWith({ ...GOOD, n: 2 ** 32 }), /field 'n' is u32, got 4294967296/);
  throws(() => launchWith({ ...GOOD, shift: 2 ** 31 }), /field 'shift' is i32/);
  throws(() => launchWith({ ...GOOD, n: NaN }), /field 'n' is u32, got NaN/);
  throws(
    () => launchWith(GOOD, "Other"),
    /declares no var<uniform> of struct Other at @binding\(0\)/,
  );
  throws(() => launchWith(GOOD, "Params", 1), /no var<uniform> of struct Params at @binding\(1\)/);
});

Deno.test("packUniforms: 16 bytes at least, a multiple of 16, zeros between fields", () => {
  const l = structLayout("struct S { a: u32, v: vec4<f32> }", "S");
  const bytes = packUniforms(l, { a: 7, v: [1, 2, 3, 4] });
  ok(bytes.byteLength === 32, `length ${bytes.byteLength}`);
  ok(bytes.slice(4, 16).every((b) => b === 0), "the alignment gap is zeros");
  const small = packUniforms(structLayout("struct T { a: u32 }", "T"), { a: 1 });
  ok(small.byteLength === 16, `a one-field struct packs ${small.byteLength} bytes, not 16`);
  throws(() => structLayout("struct U { m: mat4x4<f32> }", "U"), /unsupported uniform field/);
  throws(() => structLayout("struct V { a: array<u32, 4> }", "V"), /16-byte stride/);
  throws(() => structLayout("struct W { a: u32 }", "X"), /no struct X/);
});
