package dev.sdjvm.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** {@link Lanczos} against Pillow 9.4's {@code Image.resize(size, Image.LANCZOS)}: every byte equal. */
class LanczosTest {
    static Stream<Arguments> pillowCases() {
        return Fixtures.cases("resize_cases.txt").stream()
                .map(c -> Arguments.of(c[0], Integer.parseInt(c[1]), Integer.parseInt(c[2]), c[3]));
    }

    @ParameterizedTest(name = "{0} -> {1}x{2}")
    @MethodSource("pillowCases")
    void matchesPillowBitForBit(String input, int width, int height, String expected) {
        if (input.startsWith("gray")) {
            GrayImage out = Lanczos.resize(Fixtures.gray(input), width, height);
            GrayImage want = Fixtures.gray(expected);
            assertEquals(width, out.width());
            assertEquals(height, out.height());
            assertNull(Fixtures.firstDifference(want.gray(), out.gray(), width, 1));
        } else {
            RgbImage out = Lanczos.resize(Fixtures.rgb(input), width, height);
            RgbImage want = Fixtures.rgb(expected);
            assertEquals(width, out.width());
            assertEquals(height, out.height());
            assertNull(Fixtures.firstDifference(want.rgb(), out.rgb(), width, 3));
        }
    }

    @Test
    void theFixturesCoverBothPassesAloneAndTogetherUpAndDown() {
        List<String[]> cases = Fixtures.cases("resize_cases.txt");
        assertEquals(11, cases.size());
    }

    @Test
    void sameSizeIsACopy() {
        RgbImage in = Fixtures.rgb("rgb_37x53.png");
        RgbImage out = Lanczos.resize(in, 37, 53);
        assertNotSame(in.rgb(), out.rgb());
        assertArrayEquals(in.rgb(), out.rgb());
    }

    @Test
    void aConstantImageStaysConstant() {
        byte[] g = new byte[31 * 17];
        java.util.Arrays.fill(g, (byte) 200);
        GrayImage out = Lanczos.resize(new GrayImage(31, 17, g), 64, 5);
        for (byte b : out.gray()) {
            assertEquals(200, b & 0xff);
        }
    }

    @Test
    void coefficientsAreNormalisedAndRoundedHalfAwayFromZero() {
        for (int[] sizes : new int[][] {{133, 128}, {37, 128}, {64, 24}, {7, 3}, {1, 5}}) {
            Lanczos.Coefficients c = Lanczos.Coefficients.of(sizes[0], sizes[1]);
            for (int xx = 0; xx < sizes[1]; xx++) {
                double sum = 0;
                for (int x = 0; x < c.bounds[xx * 2 + 1]; x++) {
                    double k = c.exact[xx * c.ksize + x];
                    sum += k;
                    assertEquals((int) Math.signum(k) * (int) (Math.abs(k) * (1 << 22) + 0.5),
                            c.fixed[xx * c.ksize + x]);
                }
                assertEquals(1.0, sum, 1e-12);
            }
        }
    }

    @Test
    void clip8ClampsTheFixedPointSum() {
        assertEquals(0, Lanczos.clip8(-(5 << 22)));
        assertEquals(0, Lanczos.clip8(-1));
        assertEquals(17, Lanczos.clip8(17 << 22 | 0x3FFFFF));
        assertEquals(-1, Lanczos.clip8(300 << 22));
    }

    @Test
    void rejectsEmptySizes() {
        RgbImage in = Fixtures.rgb("rgb_7x1.png");
        assertThrows(IllegalArgumentException.class, () -> Lanczos.resize(in, 0, 4));
        assertThrows(IllegalArgumentException.class, () -> Lanczos.resize(in, 3, -1));
    }
}
