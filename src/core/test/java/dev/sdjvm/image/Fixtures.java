package dev.sdjvm.image;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** Reads src/core/test/resources/image/ (made by tools/reference/make_image_fixtures.py). */
final class Fixtures {
    private Fixtures() {
    }

    static byte[] bytes(String name) {
        try (InputStream in = Fixtures.class.getResourceAsStream("/image/" + name)) {
            if (in == null) {
                throw new IllegalStateException("missing fixture /image/" + name
                        + " (run /usr/bin/python3 tools/reference/make_image_fixtures.py)");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The manifest's rows, split on spaces, without comments. */
    static List<String[]> cases(String manifest) {
        List<String[]> rows = new ArrayList<>();
        for (String line : new String(bytes(manifest), StandardCharsets.UTF_8).split("\n")) {
            if (!line.isBlank() && !line.startsWith("#")) {
                rows.add(line.strip().split(" "));
            }
        }
        return rows;
    }

    static RgbImage rgb(String png) {
        return ImageInputs.decode(bytes(png));
    }

    /** A grey PNG: decoded to RGB (grey replicated, checked) and back to one channel. */
    static GrayImage gray(String png) {
        RgbImage rgb = rgb(png);
        byte[] g = new byte[rgb.width() * rgb.height()];
        for (int i = 0; i < g.length; i++) {
            g[i] = rgb.rgb()[i * 3];
            assertEquals(g[i], rgb.rgb()[i * 3 + 1], png + " is not grey");
            assertEquals(g[i], rgb.rgb()[i * 3 + 2], png + " is not grey");
        }
        return new GrayImage(rgb.width(), rgb.height(), g);
    }

    /** Index and values of the first difference, for failure messages; null if equal. */
    static String firstDifference(byte[] expected, byte[] actual, int width, int channels) {
        if (expected.length != actual.length) {
            return "lengths " + expected.length + " vs " + actual.length;
        }
        int count = 0;
        int first = -1;
        int max = 0;
        for (int i = 0; i < expected.length; i++) {
            int d = Math.abs((expected[i] & 0xff) - (actual[i] & 0xff));
            if (d != 0) {
                count++;
                max = Math.max(max, d);
                if (first < 0) {
                    first = i;
                }
            }
        }
        if (first < 0) {
            return null;
        }
        int px = first / channels;
        return count + " samples differ (max " + max + "), first at x=" + px % width + " y=" + px / width + " channel "
                + first % channels + ": expected " + (expected[first] & 0xff) + ", got " + (actual[first] & 0xff);
    }
}
