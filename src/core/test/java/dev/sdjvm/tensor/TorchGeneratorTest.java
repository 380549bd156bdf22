package dev.sdjvm.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.zip.GZIPInputStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link TorchGenerator} against {@code torch.Generator().manual_seed(seed)} + {@code torch.randn} from torch 1.13
 * ({@code randn_torch.bin.gz}, made by {@code tools/reference/make_tensor_fixtures.py}): every float bit for bit.
 */
class TorchGeneratorTest {

    record Draw(int[] shape, int[] bits) {
    }

    record Case(long seed, List<Draw> draws) {
        @Override
        public String toString() {
            StringBuilder sb = new StringBuilder("seed=" + Long.toUnsignedString(seed) + " draws=");
            for (Draw d : draws) {
                sb.append(Arrays.toString(d.shape()));
            }
            return sb.toString();
        }
    }

    static List<Case> cases;

    @BeforeAll
    static void load() throws IOException {
        try (InputStream raw = TorchGeneratorTest.class.getResourceAsStream("/tensor/randn_torch.bin.gz")) {
            if (raw == null) {
                fail("missing test resource /tensor/randn_torch.bin.gz");
            }
            ByteBuffer b = ByteBuffer.wrap(new GZIPInputStream(raw).readAllBytes()).order(ByteOrder.LITTLE_ENDIAN);
            byte[] magic = new byte[8];
            b.get(magic);
            assertEquals("SDJVRNDN", new String(magic, StandardCharsets.US_ASCII));
            assertEquals(1, b.getInt());
            int nc = b.getInt();
            List<Case> list = new ArrayList<>();
            for (int c = 0; c < nc; c++) {
                long seed = b.getLong();
                int nd = b.getInt();
                List<Draw> draws = new ArrayList<>();
                for (int d = 0; d < nd; d++) {
                    int[] shape = new int[b.getInt()];
                    int numel = 1;
                    for (int k = 0; k < shape.length; k++) {
                        shape[k] = b.getInt();
                        numel *= shape[k];
                    }
                    int[] bits = new int[numel];
                    b.asIntBuffer().get(bits);
                    b.position(b.position() + 4 * numel);
                    draws.add(new Draw(shape, bits));
                }
                list.add(new Case(seed, draws));
            }
            assertEquals(0, b.remaining(), "trailing bytes in fixture");
            cases = list;
        }
    }

    @Test
    void everyFixtureCaseIsBitExact() {
        int checked = 0;
        List<String> failures = new ArrayList<>();
        for (Case c : cases) {
            TorchGenerator g = new TorchGenerator(c.seed());
            for (int d = 0; d < c.draws().size(); d++) {
                Draw draw = c.draws().get(d);
                float[] got = g.randn(draw.shape());
                assertEquals(draw.bits().length, got.length);
                int bad = 0;
                int first = -1;
                for (int i = 0; i < got.length; i++) {
                    if (Float.floatToRawIntBits(got[i]) != draw.bits()[i]) {
                        bad++;
                        if (first < 0) {
                            first = i;
                        }
                    }
                }
                checked += got.length;
                if (bad > 0) {
                    failures.add(String.format("%s draw %d: %d/%d differ, first [%d] got %s (0x%08x) torch %s (0x%08x)",
                            c, d, bad, got.length, first, got[first], Float.floatToRawIntBits(got[first]),
                            Float.intBitsToFloat(draw.bits()[first]), draw.bits()[first]));
                }
            }
        }
        assertTrue(failures.isEmpty(), failures.size() + " draws differ:\n" + String.join("\n", failures));
        assertTrue(checked > 90_000, "checked " + checked);
    }

    @Test
    void fixtureCoversTheRequiredSeedsSizesAndConsecutiveDraws() {
        List<Long> seeds = cases.stream().map(Case::seed).distinct().toList();
        for (long s : new long[] {0, 7, 42, (1L << 32) + 5, Long.MIN_VALUE + 12345, -1L}) {
            assertTrue(seeds.contains(s), "seed " + Long.toUnsignedString(s));
        }
        List<Integer> sizes = cases.stream().flatMap(c -> c.draws().stream()).map(d -> d.bits().length).distinct()
                .toList();
        for (int n : new int[] {1, 3, 15, 16, 17, 100, 1024, 16384}) {
            assertTrue(sizes.contains(n), "size " + n);
        }
        assertTrue(cases.stream().anyMatch(c -> c.draws().size() == 2 && c.draws().get(0).bits().length == 16384));
    }

    @Test
    void seedUsesOnlyTheLow32BitsAndReseedResets() {
        float[] a = new TorchGenerator(5).randn(1, 4, 8, 8);
        float[] b = new TorchGenerator((1L << 32) + 5).randn(1, 4, 8, 8);
        assertArrayEquals(a, b);
        TorchGenerator g = new TorchGenerator(5);
        g.randn(3); // leaves a cached normal
        g.manualSeed(5);
        assertArrayEquals(new TorchGenerator(5).randn(3), g.randn(3));
        assertEquals(5, g.initialSeed());
    }

    @Test
    void flatFillEqualsShapedDrawAndContinuesTheStream() {
        TorchGenerator g1 = new TorchGenerator(42);
        TorchGenerator g2 = new TorchGenerator(42);
        float[] flat = new float[16384];
        g1.randn(flat);
        assertArrayEquals(g2.randn(1, 4, 64, 64), flat);
        g1.randn(flat);
        assertArrayEquals(g2.randn(16384), flat);
        assertEquals(0, g1.randn(0, 4).length);
    }

    @Test
    void copyContinuesIdenticallyIncludingTheCachedNormal() {
        TorchGenerator g = new TorchGenerator(123);
        g.randn(700); // engine partly through a state block
        g.randn(3); // leaves a cached normal
        TorchGenerator c = g.copy();
        assertArrayEquals(g.randn(5), c.randn(5));
        assertArrayEquals(g.randn(1, 4, 16, 16), c.randn(1, 4, 16, 16));
        c.randn(1);
        assertTrue(!Arrays.equals(g.randn(16), c.randn(16)), "copies are independent");
    }

    @Test
    void engineIsTheStandardMersenneTwister() {
        // The 10000th output of mt19937 seeded with 5489 is 4123659995 (C++11 [rand.predef]).
        TorchGenerator g = new TorchGenerator(5489);
        int v = 0;
        for (int i = 0; i < 10000; i++) {
            v = g.random();
        }
        assertEquals(4123659995L, v & 0xFFFF_FFFFL);
    }

    @Test
    void rejectsNegativeDimensions() {
        TorchGenerator g = new TorchGenerator(0);
        assertThrows(IllegalArgumentException.class, () -> g.randn(2, -1));
        assertThrows(IllegalArgumentException.class, () -> g.randn(65536, 65536));
    }
}
