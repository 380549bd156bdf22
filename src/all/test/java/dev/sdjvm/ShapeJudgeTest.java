package dev.sdjvm;

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
                    for (int px : new int[] {32, 64}) {
                        ShapeJudge.Verdict v = ShapeJudge.judge(draw(s, p[0], p[1], px, 0.5, 0.45, r));
                        String what = s + " " + p[0] + " on " + p[1] + " r=" + r + " " + px + "px: " + v;
                        assertEquals(s, v.shape(), what);
                        assertEquals(p[0], v.color(), what);
                        assertEquals(p[1], v.background(), what);
                    }
                }
            }
        }
    }

    @Test
    void straySpecksDoNotStretchTheObject() {
        // an autoencoder's typical corner artefacts: small off-colour specks in two corners, away from the shape
        for (String s : new String[] {"circle", "square", "triangle"}) {
            RgbImage img = draw(s, "green", "white", 64, 0.5, 0.5, 0.25);
            byte[] rgb = img.rgb().clone();
            for (int[] at : new int[][] {{0, 0}, {1, 0}, {0, 1}, {63, 63}, {62, 63}}) {
                int i = (at[1] * 64 + at[0]) * 3;
                rgb[i] = (byte) 150;
                rgb[i + 1] = (byte) 150;
                rgb[i + 2] = (byte) 150;
            }
            ShapeJudge.Verdict v = ShapeJudge.judge(new RgbImage(64, 64, rgb));
            String what = s + " with corner specks: " + v;
            assertEquals(s, v.shape(), what);
            assertEquals("green", v.color(), what);
            assertEquals("white", v.background(), what);
        }
    }

    @Test
    void flatImageHasNoObject() {
        ShapeJudge.Verdict v = ShapeJudge.judge(draw("circle", "red", "red", 32, 0.5, 0.5, 0.3));
        assertEquals("none", v.shape());
        assertEquals("red", v.background());
    }
}
