package dev.sdjvm;

import dev.sdjvm.image.RgbImage;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The colour/shape measure of tools/default-model/judge_images.py, in Java, for images of the embedded model's shapes world
 * (one flat shape on a flat background):
 * <ol>
 *   <li>background = per-channel median of the 1-px border ring -> nearest palette colour (sRGB Euclidean);</li>
 *   <li>object = the largest 8-connected component (first in row-major order on a tie) of the pixels farther than 60
 *       from that median border colour, so that stray specks (corner artefacts) do not stretch its bounding box;
 *       under 2% of the image -> no object;</li>
 *   <li>object colour = per-channel median of the object pixels -> nearest palette colour;</li>
 *   <li>shape from the fill ratio object / its bounding box: >= 0.89 square, >= 0.67 circle (pi/4), else triangle
 *       (1/2).</li>
 * </ol>
 * Medians follow numpy (mean of the two middle values for even counts).
 */
final class ShapeJudge {
    /** tools/default-model/shapes_world.py PALETTE. */
    static final Map<String, int[]> PALETTE = new LinkedHashMap<>();

    static {
        PALETTE.put("red", new int[] {220, 30, 30});
        PALETTE.put("green", new int[] {30, 170, 40});
        PALETTE.put("blue", new int[] {30, 60, 220});
        PALETTE.put("yellow", new int[] {240, 220, 30});
        PALETTE.put("purple", new int[] {140, 40, 180});
        PALETTE.put("orange", new int[] {245, 140, 20});
        PALETTE.put("white", new int[] {245, 245, 245});
        PALETTE.put("black", new int[] {20, 20, 20});
    }

    static final double OBJECT_THRESHOLD = 60.0;
    static final double MIN_OBJECT_FRACTION = 0.02;
    static final double SQUARE_MIN_FILL = 0.89;
    static final double CIRCLE_MIN_FILL = 0.67;

    record Verdict(String background, String color, String shape, double fill, double objectFraction) {
        boolean colorsRight(String c, String bg) {
            return bg.equals(background) && c.equals(color);
        }
    }

    private ShapeJudge() {
    }

    static String nearest(double[] rgb) {
        String best = null;
        double bd = Double.MAX_VALUE;
        for (var e : PALETTE.entrySet()) {
            double d = 0;
            for (int c = 0; c < 3; c++) {
                double x = e.getValue()[c] - rgb[c];
                d += x * x;
            }
            if (d < bd) {
                bd = d;
                best = e.getKey();
            }
        }
        return best;
    }

    static double median(double[] v, int n) {
        double[] s = Arrays.copyOf(v, n);
        Arrays.sort(s);
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }

    static Verdict judge(RgbImage img) {
        int w = img.width();
        int h = img.height();
        int nb = 2 * w + 2 * (h - 2);
        double[][] border = new double[3][nb];
        int k = 0;
        for (int x = 0; x < w; x++) {
            for (int c = 0; c < 3; c++) {
                border[c][k] = img.get(x, 0, c);
                border[c][k + 1] = img.get(x, h - 1, c);
            }
            k += 2;
        }
        for (int y = 1; y < h - 1; y++) {
            for (int c = 0; c < 3; c++) {
                border[c][k] = img.get(0, y, c);
                border[c][k + 1] = img.get(w - 1, y, c);
            }
            k += 2;
        }
        double[] bg = new double[3];
        for (int c = 0; c < 3; c++) {
            bg[c] = median(border[c], nb);
        }
        boolean[] mask = new boolean[w * h];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                double d = 0;
                for (int c = 0; c < 3; c++) {
                    double t = img.get(x, y, c) - bg[c];
                    d += t * t;
                }
                mask[y * w + x] = Math.sqrt(d) > OBJECT_THRESHOLD;
            }
        }
        boolean[] object = largestComponent(mask, w, h);
        int count = 0;
        int minX = w;
        int minY = h;
        int maxX = -1;
        int maxY = -1;
        double[][] obj = new double[3][w * h];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                if (object[y * w + x]) {
                    for (int c = 0; c < 3; c++) {
                        obj[c][count] = img.get(x, y, c);
                    }
                    count++;
                    minX = Math.min(minX, x);
                    maxX = Math.max(maxX, x);
                    minY = Math.min(minY, y);
                    maxY = Math.max(maxY, y);
                }
            }
        }
        double frac = (double) count / (w * h);
        String background = nearest(bg);
        if (frac < MIN_OBJECT_FRACTION) {
            return new Verdict(background, null, "none", Double.NaN, frac);
        }
        double[] o = new double[3];
        for (int c = 0; c < 3; c++) {
            o[c] = median(obj[c], count);
        }
        double fill = (double) count / ((double) (maxX - minX + 1) * (maxY - minY + 1));
        String shape = fill >= SQUARE_MIN_FILL ? "square" : fill >= CIRCLE_MIN_FILL ? "circle" : "triangle";
        return new Verdict(background, nearest(o), shape, fill, frac);
    }

    /** The largest 8-connected component of {@code mask} (row-major, w x h); the first in scan order on a tie. */
    static boolean[] largestComponent(boolean[] mask, int w, int h) {
        int[] label = new int[w * h];
        int[] queue = new int[w * h];
        int best = 0;
        int bestSize = 0;
        int labels = 0;
        for (int start = 0; start < w * h; start++) {
            if (!mask[start] || label[start] != 0) {
                continue;
            }
            labels++;
            label[start] = labels;
            int head = 0;
            int tail = 0;
            queue[tail++] = start;
            while (head < tail) {
                int p = queue[head++];
                int px = p % w;
                int py = p / w;
                for (int dy = -1; dy <= 1; dy++) {
                    for (int dx = -1; dx <= 1; dx++) {
                        int x = px + dx;
                        int y = py + dy;
                        if (x >= 0 && x < w && y >= 0 && y < h && mask[y * w + x] && label[y * w + x] == 0) {
                            label[y * w + x] = labels;
                            queue[tail++] = y * w + x;
                        }
                    }
                }
            }
            if (tail > bestSize) {
                best = labels;
                bestSize = tail;
            }
        }
        boolean[] out = new boolean[w * h];
        for (int i = 0; i < w * h; i++) {
            out[i] = bestSize > 0 && label[i] == best;
        }
        return out;
    }
}
