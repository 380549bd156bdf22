package dev.sdjvm.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.sdjvm.image.RgbImage;
import org.junit.jupiter.api.Test;

/** The measure itself, on shapes drawn here: it must tell the three shapes and the palette colours apart. */
class ShapeJudgeTest {
    static RgbImage draw(String shape, String color, String bg, int px, double cx, double cy, double r) {
        byte[] rgb = new byte[px * px * 3];
        int[] fg = ShapeJudge.PALETTE.get(color);
        int[] bk = ShapeJudge.PALETTE.get(bg);
        for (int y = 0; y < px; y++) {
            for (int x = 0; x < px; x++) {
                double u = (x + 0.5) / px - cx;
                double v = (y + 0.5) / px - cy;
                boolean in;
                switch (shape) {
                    case "circle": in = u * u + v * v <= r * r; break;
                    case "square": in = Math.abs(u) <= r && Math.abs(v) <= r; break;
                    default: in = v <= r && v >= -r && Math.abs(u) <= (v + r) / 2; break;  // apex up
                }
                int[] c = in ? fg : bk;
                for (int k = 0; k < 3; k++) {
                    rgb[(y * px + x) * 3 + k] = (byte) c[k];
                }
            }
        }
        return new RgbImage(px, px, rgb);
    }

    @Test
    void tellsShapesAndColoursApart() {
        String[] shapes = {"circle", "square", "triangle"};
        String[][] pairs = {{"red", "blue"}, {"yellow", "purple"}, {"white", "black"}, {"orange", "green"}};
        for (String s : shapes) {
            for (String[] p : pairs) {
                for (double r : new double[] {0.17, 0.30}) {
                    ShapeJudge.Verdict v = ShapeJudge.judge(draw(s, p[0], p[1], 32, 0.5, 0.45, r));
                    String what = s + " " + p[0] + " on " + p[1] + " r=" + r + ": " + v;
                    assertEquals(s, v.shape(), what);
                    assertEquals(p[0], v.color(), what);
                    assertEquals(p[1], v.background(), what);
                }
            }
        }
    }

    @Test
    void flatImageHasNoObject() {
        ShapeJudge.Verdict v = ShapeJudge.judge(draw("circle", "red", "red", 32, 0.5, 0.5, 0.3));
        assertEquals("none", v.shape());
        assertEquals("red", v.background());
    }
}
