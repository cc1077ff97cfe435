/**
 * Uniform parameters packed by name, against the WGSL struct they fill.
 *
 * A kernel's small parameters (sizes, strides, scalars) travel in a uniform struct, e.g.
 *
 * ```wgsl
 * struct Params { m: u32, d: u32, eps: f32 }
 * @group(0) @binding(0) var<uniform> p: Params;
 * ```
 *
 * and the host fills it with `uniforms({ m, d, eps })`. The struct's layout is read from the
 * kernel's own source (WGSL's alignment and size rules for the uniform address space), so
 * each value lands at its field's offset whatever order the host names them in, and a
 * field the host forgets, one it names that the struct lacks, a vector of the wrong length,
 * or an integer field given a fraction, a negative or an out-of-range value, is an error at
 * the launch that would have used it, naming the kernel, the struct and the field, instead
 * of wrong numbers.
 *
 * @module
 */

/** A value of a field: a number for a scalar, numbers for a vector or an array (flattened). */
export type UniformValue = number | readonly number[];

/** The values of a uniform struct's fields, by field name. */
export type UniformValues = Readonly<Record<string, UniformValue>>;

/**
 * Values for a uniform struct of the kernel that a launch binds them to (by default the
 * struct named `Params`). Made by {@link uniforms}.
 */
export class Uniforms {
  /** The values by field name. */
  readonly values: UniformValues;
  /** The WGSL struct they fill. */
  readonly struct: string;
  constructor(values: UniformValues, struct = "Params") {
    this.values = values;
    this.struct = struct;
  }
}

/**
 * Values for a kernel's uniform struct, by field name: a binding of a launch.
 */
export function uniforms(values: UniformValues, struct = "Params"): Uniforms {
  return new Uniforms(values, struct);
}

/** One scalar, vector or array field of a uniform struct, as the host writes it. */
export interface UniformField {
  readonly name: string;
  /** Byte offset in the struct. */
  readonly offset: number;
  /** The scalar type of every component. */
  readonly scalar: "u32" | "i32" | "f32";
  /** Components per element: 1 for a scalar, N for vecN. */
  readonly width: number;
  /** Elements: 1, or an array's length. */
  readonly length: number;
  /** Bytes from one element to the next (arrays). */
  readonly stride: number;
}

/** A uniform struct's fields in declaration order, and its size in bytes. */
export interface StructLayout {
  readonly name: string;
  readonly fields: readonly UniformField[];
  /** The struct's size: the end of its last field, rounded up to its alignment. */
  readonly size: number;
}

interface TypeInfo {
  scalar: "u32" | "i32" | "f32";
  width: number;
  length: number;
  stride: number;
  align: number;
  size: number;
}

const roundUp = (k: number, v: number) => Math.ceil(v / k) * k;
const SCALARS = new Set(["u32", "i32", "f32"]);
const SHORT: Record<string, string> = { u: "u32", i: "i32", f: "f32" };

/** Size and alignment of a type in the uniform address space (WGSL's layout rules). */
function typeInfo(type: string, where: string): TypeInfo {
  const t = type.replace(/\s+/g, "");
  if (SCALARS.has(t)) {
    return { scalar: t as TypeInfo["scalar"], width: 1, length: 1, stride: 4, align: 4, size: 4 };
  }
  const vec = /^vec([234])(?:<(u32|i32|f32)>|([uif]))$/.exec(t);
  if (vec) {
    const width = Number(vec[1]);
    const scalar = (vec[2] ?? SHORT[vec[3]]) as TypeInfo["scalar"];
    const align = width === 2 ? 8 : 16;
    return { scalar, width, length: 1, stride: align, align, size: 4 * width };
  }
  const arr = /^array<(.+),(\d+)u?>$/.exec(t);
  if (arr) {
    const e = typeInfo(arr[1], where);
    if (e.length !== 1) throw new Error(`${where}: nested arrays are not supported (${type})`);
    const stride = roundUp(e.align, e.size);
    if (stride % 16 !== 0) {
      // WGSL requires an array in the uniform address space to have a stride of 16k.
      throw new Error(`${where}: an array in a uniform struct needs a 16-byte stride (${type})`);
    }
    const length = Number(arr[2]);
    return {
      scalar: e.scalar,
      width: e.width,
      length,
      stride,
      align: roundUp(16, e.align),
      size: stride * length,
    };
  }
  throw new Error(`${where}: unsupported uniform field type '${type}'`);
}

/** Strips WGSL comments (line and block), keeping the text's shape. */
function stripComments(code: string): string {
  return code.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/\/\/[^\n]*/g, "");
}

const layouts = new Map<string, Map<string, StructLayout>>();

/**
 * The layout of struct `name` of WGSL `code`, as the uniform address space lays it out:
 * each field at the next offset that its alignment allows (4 for scalars, 8 for vec2, 16
 * for vec3, vec4 and arrays), the size rounded up to the largest alignment. Cached per source
 * and name.
 */
export function structLayout(code: string, name: string): StructLayout {
  let perCode = layouts.get(code);
  if (!perCode) layouts.set(code, perCode = new Map());
  let layout = perCode.get(name);
  if (layout) return layout;
  const text = stripComments(code);
  const m = new RegExp(`\\bstruct\\s+${name}\\s*\\{([^}]*)\\}`).exec(text);
  if (!m) throw new Error(`no struct ${name} in the kernel's WGSL`);
  const fields: UniformField[] = [];
  let offset = 0;
  let align = 4;
  // Fields are `name: type` separated by commas; a type's own commas sit inside <...>.
  const members = m[1].split(/,(?![^<]*>)/).map((s) => s.trim()).filter((s) => s.length);
  for (const member of members) {
    const f = /^(?:@[^\s]+\s+)*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.+)$/.exec(member);
    if (!f) throw new Error(`struct ${name}: cannot read the member '${member}'`);
    const t = typeInfo(f[2], `struct ${name}, field ${f[1]}`);
    offset = roundUp(t.align, offset);
    fields.push({
      name: f[1],
      offset,
      scalar: t.scalar,
      width: t.width,
      length: t.length,
      stride: t.stride,
    });
    offset += t.size;
    align = Math.max(align, t.align);
  }
  layout = { name, fields, size: roundUp(align, offset) };
  perCode.set(name, layout);
  return layout;
}

function writeScalar(
  view: DataView,
  at: number,
  f: UniformField,
  v: number,
  where: () => string,
): void {
  if (f.scalar === "f32") {
    view.setFloat32(at, v, true);
    return;
  }
  const [lo, hi] = f.scalar === "u32" ? [0, 2 ** 32 - 1] : [-(2 ** 31), 2 ** 31 - 1];
  if (!Number.isInteger(v) || v < lo || v > hi) {
    throw new Error(`${where()}: field '${f.name}' is ${f.scalar}, got ${v}`);
  }
  if (f.scalar === "u32") view.setUint32(at, v, true);
  else view.setInt32(at, v, true);
}

/**
 * The bytes of `values` laid out as `layout` (at least 16, a multiple of 16). Every field
 * must be given exactly once, with one number per component (a vector or an array
 * flattened, e.g. `array<vec4<u32>, 2>` takes 8), and nothing else; `kernel` names the
 * launch in the error.
 */
export function packUniforms(
  layout: StructLayout,
  values: UniformValues,
  kernel = "kernel",
): Uint8Array<ArrayBuffer> {
  const where = () => `${kernel}: uniform struct ${layout.name}`;
  const bytes = new Uint8Array(Math.max(16, roundUp(16, layout.size)));
  const view = new DataView(bytes.buffer);
  let given = 0;
  for (const f of layout.fields) {
    const v = values[f.name];
    if (v === undefined) {
      throw new Error(
        `${where()} is missing field '${f.name}' (its fields: ${
          layout.fields.map((x) => x.name).join(", ")
        })`,
      );
    }
    given++;
    const n = f.width * f.length;
    if (typeof v === "number") {
      if (n !== 1) {
        throw new Error(`${where()}: field '${f.name}' takes ${n} numbers, got one`);
      }
      writeScalar(view, f.offset, f, v, where);
      continue;
    }
    if (n === 1 && f.length === 1) {
      throw new Error(`${where()}: field '${f.name}' takes a number, got ${v.length} in an array`);
    }
    if (v.length !== n) {
      throw new Error(`${where()}: field '${f.name}' takes ${n} numbers, got ${v.length}`);
    }
    for (let e = 0; e < f.length; e++) {
      for (let j = 0; j < f.width; j++) {
        writeScalar(view, f.offset + e * f.stride + 4 * j, f, v[e * f.width + j], where);
      }
    }
  }
  if (Object.keys(values).length !== given) {
    const extra = Object.keys(values).filter((k) => !layout.fields.some((f) => f.name === k));
    throw new Error(
      `${where()} has no field ${extra.map((k) => `'${k}'`).join(", ")} (its fields: ${
        layout.fields.map((x) => x.name).join(", ")
      })`,
    );
  }
  return bytes;
}

const bound = new Map<string, Map<string, string>>();

/**
 * Checks that `code` declares a `var<uniform>` of struct `struct` at `@group(0)
 * @binding(binding)` (one of possibly several variables at that binding, for different entry
 * points), so that values packed for a struct go where the kernel reads that struct.
 */
export function checkUniformBinding(code: string, binding: number, struct: string): void {
  let perCode = bound.get(code);
  if (!perCode) {
    perCode = new Map();
    const re = /@group\(\s*0\s*\)\s*@binding\(\s*(\d+)\s*\)\s*var<uniform>\s*\w+\s*:\s*(\w+)/g;
    for (const m of stripComments(code).matchAll(re)) {
      perCode.set(`${m[1]}:${m[2]}`, m[2]);
    }
    bound.set(code, perCode);
  }
  if (!perCode.has(`${binding}:${struct}`)) {
    throw new Error(
      `the kernel declares no var<uniform> of struct ${struct} at @binding(${binding})`,
    );
  }
}
