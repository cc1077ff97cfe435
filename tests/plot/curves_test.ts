import { deepEqual, equal, ok } from "node:assert/strict";
import { createCanvas, Image } from "npm:@napi-rs/canvas@0.1.100";
import { curvesChart, curvesPng, curvesSvg, LiveCurves } from "../../src/plot/curves.ts";
import { JUPYTER_DISPLAY } from "../../src/plot/display.ts";

// Three epochs, four readings each, as fit() reports them.
const history = {
  updates: [1, 2, 3].flatMap((epoch) =>
    [0.25, 0.5, 0.75, 1].map((fraction) => ({
      epoch,
      fraction,
      loss: 2 / (epoch + fraction),
      trainAcc: 0.9 - 0.4 / (epoch + fraction),
    }))
  ),
  epochs: [1, 2, 3].map((epoch) => ({ epoch, testAcc: 0.7 + 0.05 * epoch })),
};

/** The x coordinates of the polyline drawn in `stroke`. */
function pathXs(svg: string, stroke: string): number[] {
  const m = svg.match(new RegExp(`<path[^>]*stroke="${stroke}"[^>]*d="([^"]+)"`)) ??
    svg.match(new RegExp(`<g[^>]*stroke="${stroke}"[^>]*><path[^>]*d="([^"]+)"`));
  ok(m, `a path stroked ${stroke}`);
  return [...m[1].matchAll(/[ML]([-\d.]+),([-\d.]+)/g)].map((p) => +p[1]);
}

Deno.test("curvesSvg draws the three series at fractional epochs, with a legend", () => {
  const svg = curvesSvg(history, { epochs: 10, title: "LeNet" });
  ok(svg.startsWith("<svg") && svg.includes('xmlns="http://www.w3.org/2000/svg"'));
  for (const label of ["train loss", "train acc", "test acc", "LeNet", "epoch"]) {
    ok(svg.includes(`>${label}`), `label ${label}`);
  }
  const loss = pathXs(svg, "#1f77b4");
  const train = pathXs(svg, "#bf3fbf");
  const test = pathXs(svg, "#2ca02c");
  deepEqual([loss.length, train.length, test.length], [12, 12, 3]);
  ok(loss.every((x, i) => i === 0 || x > loss[i - 1]), "x increases along the curve");
  deepEqual(train, loss, "loss and train accuracy share their x positions");
  // Test accuracy at epoch e sits where the reading with fraction 1 of epoch e sits.
  deepEqual(test, [loss[3], loss[7], loss[11]]);
  // Equal steps in fractional epochs are equal steps on the axis.
  const step = loss[1] - loss[0];
  ok(loss.every((x, i) => i === 0 || Math.abs(x - loss[i - 1] - step) < 0.02), "linear x axis");
});

Deno.test("curvesSvg handles an empty and a single-point history", () => {
  ok(curvesSvg({ updates: [], epochs: [] }).startsWith("<svg"));
  const one = curvesSvg({ updates: [], epochs: [{ epoch: 1, testAcc: 0.5 }] });
  ok(one.includes("<circle"), "a lone point is drawn as a dot");
});

Deno.test("curvesPng rasterises the chart at twice the size, with the curves visible", async () => {
  const png = await curvesPng(history, { width: 300, height: 200 });
  deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]);
  const view = new DataView(png.buffer, png.byteOffset);
  deepEqual([view.getUint32(16), view.getUint32(20)], [600, 400], "IHDR width and height");
  const img = new Image();
  const loaded = new Promise<void>((resolve) => img.onload = () => resolve());
  img.src = png as unknown as Image["src"];
  await loaded;
  const canvas = createCanvas(600, 400);
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const px = ctx.getImageData(0, 0, 600, 400).data;
  const count = (r: number, g: number, b: number) => {
    let n = 0;
    for (let i = 0; i < px.length; i += 4) {
      if (Math.abs(px[i] - r) + Math.abs(px[i + 1] - g) + Math.abs(px[i + 2] - b) < 40) n++;
    }
    return n;
  };
  ok(count(255, 255, 255) > 600 * 400 / 2, "white background");
  for (const [r, g, b] of [[0x1f, 0x77, 0xb4], [0xbf, 0x3f, 0xbf], [0x2c, 0xa0, 0x2c]]) {
    ok(count(r, g, b) > 100, `pixels of rgb(${r}, ${g}, ${b})`);
  }
});

Deno.test("curvesChart and LiveCurves give Jupyter a PNG bundle, the title in its text", async () => {
  const bundle = await curvesChart(history, { title: "Loss & accuracy" })[JUPYTER_DISPLAY]();
  ok(atob(bundle["image/png"]).startsWith("\x89PNG"));
  ok(bundle["text/html"].startsWith('<img src="data:image/png;base64,'));
  ok(bundle["text/html"].includes('alt="Chart &quot;Loss &amp; accuracy&quot; (420 x 280 px)"'));
  const live = new LiveCurves({ epochs: 3 });
  for (const u of history.updates) live.onUpdate({ ...u });
  for (const e of history.epochs) live.onEpoch({ ...e, loss: 1 } as typeof e);
  deepEqual(live.history, history);
  await live.finish();
  ok(live.chart!.svg.includes("test acc"));
});

Deno.test("curvesSvg draws the finite parts of a diverging history and marks it (#8)", () => {
  const h = {
    updates: [0.25, 0.5, 0.75, 1].map((fraction, i) => ({
      epoch: 1,
      fraction,
      loss: [2, 1.5, NaN, Infinity][i],
      trainAcc: [0.2, 0.4, NaN, NaN][i],
    })),
    epochs: [{ epoch: 1, testAcc: NaN }],
  };
  const svg = curvesSvg(h, { epochs: 2 });
  const loss = pathXs(svg, "#1f77b4");
  equal(loss.length, 2, "the two finite loss readings form a segment");
  ok(svg.includes(">diverged</text>"), "marked");
  ok(!/NaN|Infinity/.test(svg.replace(/>diverged</, "")), "no NaN or Infinity in coordinates");
  // The y axis comes from the finite values (2 at most), not from Infinity.
  ok(svg.includes(">2.0</text>") || svg.includes(">2</text>"), "a finite y axis");
});
