package dev.sdjvm.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.InputStream;
import java.nio.BufferOverflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import java.util.zip.GZIPInputStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Bit-exact checks of {@link Bf16} against documented IEEE/bfloat16 rounding (edge cases written out below) and
 * against what torch 1.13 produced ({@code bf16_torch.bin.gz}, made by {@code tools/reference/make_tensor_fixtures.py}).
 */
class Bf16Test {

    /** The torch fixture, see src/core/test/resources/tensor/README.md. */
    static final class Fixture {
        int[] edgeBits;
        short[] edgeBulk;
        short[] edgeScalar;
        int[] edgeRoundTrip;
        int[] randBits;
        short[] randBulk;
        short[] randScalar;
        int[] widened; // torch bf16 -> float32 for all 65536 bf16 patterns
    }

    static Fixture fx;

    @BeforeAll
    static void load() throws IOException {
        try (InputStream raw = Bf16Test.class.getResourceAsStream("/tensor/bf16_torch.bin.gz")) {
            if (raw == null) {
                fail("missing test resource /tensor/bf16_torch.bin.gz");
            }
            ByteBuffer b = ByteBuffer.wrap(new GZIPInputStream(raw).readAllBytes()).order(ByteOrder.LITTLE_ENDIAN);
            byte[] magic = new byte[8];
            b.get(magic);
            assertEquals("SDJVBF16", new String(magic, java.nio.charset.StandardCharsets.US_ASCII));
            assertEquals(1, b.getInt());
            Fixture f = new Fixture();
            int ne = b.getInt();
            f.edgeBits = ints(b, ne);
            f.edgeBulk = shorts(b, ne);
            f.edgeScalar = shorts(b, ne);
            f.edgeRoundTrip = ints(b, ne);
            int nr = b.getInt();
            f.randBits = ints(b, nr);
            f.randBulk = shorts(b, nr);
            f.randScalar = shorts(b, nr);
            f.widened = ints(b, 65536);
            assertEquals(0, b.remaining(), "trailing bytes in fixture");
            fx = f;
        }
    }

    private static int[] ints(ByteBuffer b, int n) {
        int[] a = new int[n];
        b.asIntBuffer().get(a);
        b.position(b.position() + 4 * n);
        return a;
    }

    private static short[] shorts(ByteBuffer b, int n) {
        short[] a = new short[n];
        b.asShortBuffer().get(a);
        b.position(b.position() + 2 * n);
        return a;
    }

    private static short bf(float f) {
        return Bf16.fromFloat(f);
    }

    private static short bfBits(int floatBits) {
        return Bf16.fromFloat(Float.intBitsToFloat(floatBits));
    }

    private static void assertBits(int expectedBf16, short actual, String what) {
        assertEquals(String.format("0x%04x", expectedBf16 & 0xFFFF), String.format("0x%04x", actual & 0xFFFF), what);
    }

    // ------------------------------------------------------------------------------------------- edge cases

    @Test
    void edgeCasesFollowRoundToNearestEven() {
        assertBits(0x0000, bf(0.0f), "+0");
        assertBits(0x8000, bf(-0.0f), "-0");
        assertBits(0x0000, bfBits(0x0000_0001), "min subnormal rounds to +0");
        assertBits(0x8000, bfBits(0x8000_0001), "-min subnormal rounds to -0");
        assertBits(0x0001, bfBits(0x0001_0000), "min bf16 subnormal is exact");
        assertBits(0x0000, bfBits(0x0000_8000), "subnormal tie, even lsb: down");
        assertBits(0x0001, bfBits(0x0000_8001), "just above a tie: up");
        assertBits(0x0002, bfBits(0x0001_8000), "subnormal tie, odd lsb: up to even");
        assertBits(0x0080, bfBits(0x007F_FFFF), "max subnormal rounds up to min normal");
        assertBits(0x8080, bfBits(0x807F_FFFF), "-max subnormal rounds to -min normal");
        assertBits(0x0080, bfBits(0x0080_0000), "min normal exact");
        assertBits(0x7F80, bfBits(0x7F7F_FFFF), "max finite float rounds up to +Inf");
        assertBits(0xFF80, bfBits(0xFF7F_FFFF), "-max finite float rounds to -Inf");
        assertBits(0x7F7F, bfBits(0x7F7F_7FFF), "just below the overflow tie stays max bf16");
        assertBits(0x7F80, bfBits(0x7F7F_8000), "overflow tie (odd lsb) rounds to +Inf");
        assertBits(0x7F7E, bfBits(0x7F7E_8000), "tie with even lsb stays");
        assertBits(0x3F80, bf(1.0f), "1");
        assertBits(0x3F80, bfBits(0x3F80_8000), "1 + half ulp: tie to even (down)");
        assertBits(0x3F82, bfBits(0x3F81_8000), "odd lsb tie: up to even");
        assertBits(0xBF80, bfBits(0xBF80_8000), "negative tie to even (down in magnitude)");
        assertBits(0xBF82, bfBits(0xBF81_8000), "negative odd tie: up in magnitude");
        assertBits(0x3F80, bfBits(0x3F80_7FFF), "below tie: down");
        assertBits(0x3F81, bfBits(0x3F80_8001), "above tie: up");
        assertBits(0x3F81, bfBits(0x3F80_FFFF), "mantissa carry");
        assertBits(0x4000, bfBits(0x3FFF_FFFF), "carry into the exponent");
        assertBits(0x4049, bf((float) Math.PI), "pi");
        assertBits(0x7F80, bf(Float.POSITIVE_INFINITY), "+Inf");
        assertBits(0xFF80, bf(Float.NEGATIVE_INFINITY), "-Inf");
        for (int nan : new int[] {0x7FC0_0000, 0xFFC0_0000, 0x7F80_0001, 0xFF80_0001, 0x7FBF_FFFF, 0x7FFF_FFFF,
                0xFFFF_FFFF, 0x7F81_0000, 0x7F80_8000, 0x7F80_7FFF}) {
            short s = bfBits(nan);
            assertBits(0x7FC0, s, "scalar NaN " + Integer.toHexString(nan));
            assertTrue(Float.isNaN(Bf16.toFloat(s)));
            short[] b = Bf16.fromFloat(new float[] {Float.intBitsToFloat(nan)});
            assertBits(0xFFFF, b[0], "bulk NaN " + Integer.toHexString(nan));
        }
        assertEquals(Float.MIN_NORMAL, Bf16.toFloat((short) 0x0080));
        assertEquals(Float.floatToRawIntBits(-0.0f), Float.floatToRawIntBits(Bf16.toFloat((short) 0x8000)));
        assertEquals(0x7FC1_0000, Float.floatToRawIntBits(Bf16.toFloat((short) 0x7FC1)), "payload kept");
        assertEquals(0x7FC0_0000, Float.floatToRawIntBits(Bf16.round(Float.intBitsToFloat(0xFF81_2345))),
                "scalar round trip of a NaN gives the canonical quiet NaN");
    }

    // ----------------------------------------------------------------------------------------- vs torch

    @Test
    void edgeCasesMatchTorch() {
        short[] bulk = new short[fx.edgeBits.length];
        float[] src = new float[fx.edgeBits.length];
        for (int i = 0; i < src.length; i++) {
            src[i] = Float.intBitsToFloat(fx.edgeBits[i]);
            String w = String.format("float bits 0x%08x", fx.edgeBits[i]);
            assertBits(fx.edgeScalar[i], Bf16.fromFloat(src[i]), "scalar " + w);
        }
        Bf16.fromFloat(src, 0, bulk, 0, src.length);
        for (int i = 0; i < src.length; i++) {
            assertBits(fx.edgeBulk[i], bulk[i], String.format("bulk float bits 0x%08x", fx.edgeBits[i]));
        }
        float[] rt = src.clone();
        Bf16.roundToBf16(rt);
        for (int i = 0; i < src.length; i++) {
            assertEquals(Integer.toHexString(fx.edgeRoundTrip[i]), Integer.toHexString(Float.floatToRawIntBits(rt[i])),
                    String.format("round trip of 0x%08x", fx.edgeBits[i]));
        }
    }

    @Test
    void randomPatternsMatchTorchScalarAndBulk() {
        int n = fx.randBits.length;
        assertEquals(100_000, n);
        float[] src = new float[n];
        int nans = 0;
        for (int i = 0; i < n; i++) {
            src[i] = Float.intBitsToFloat(fx.randBits[i]);
            nans += Float.isNaN(src[i]) ? 1 : 0;
            if (Bf16.fromFloat(src[i]) != fx.randScalar[i]) {
                fail(String.format("scalar: 0x%08x -> 0x%04x, torch 0x%04x", fx.randBits[i],
                        Bf16.fromFloat(src[i]) & 0xFFFF, fx.randScalar[i] & 0xFFFF));
            }
        }
        assertTrue(nans > 100, "fixture should contain NaNs, has " + nans);
        short[] bulk = Bf16.fromFloat(src);
        assertBulkEquals(fx.randBulk, bulk, 0, "float[]");

        // offsets: convert the middle part into the middle of a larger array
        short[] off = new short[n + 10];
        Bf16.fromFloat(src, 3, off, 7, n - 5);
        for (int i = 0; i < n - 5; i++) {
            assertEquals(fx.randBulk[3 + i], off[7 + i]);
        }
        assertEquals(0, off[6]);
        assertEquals(0, off[n + 2]);

        float[] rt = src.clone();
        Bf16.roundToBf16(rt);
        for (int i = 0; i < n; i++) {
            assertEquals(fx.randBulk[i] << 16, Float.floatToRawIntBits(rt[i]));
        }
    }

    @Test
    void wideningMatchesTorchForAllPatterns() {
        short[] all = new short[65536];
        for (int i = 0; i < all.length; i++) {
            all[i] = (short) i;
            assertEquals(fx.widened[i], Float.floatToRawIntBits(Bf16.toFloat((short) i)), "scalar " + i);
        }
        float[] w = Bf16.toFloat(all);
        for (int i = 0; i < all.length; i++) {
            assertEquals(fx.widened[i], Float.floatToRawIntBits(w[i]), "bulk " + i);
        }
    }

    @Test
    void directBuffersInNativeOrderMatchArrays() {
        int n = fx.randBits.length;
        FloatBuffer fb = ByteBuffer.allocateDirect(4 * n).order(ByteOrder.nativeOrder()).asFloatBuffer();
        ShortBuffer sb = ByteBuffer.allocateDirect(2 * n).order(ByteOrder.nativeOrder()).asShortBuffer();
        for (int bits : fx.randBits) {
            fb.put(Float.intBitsToFloat(bits));
        }
        fb.flip();
        Bf16.fromFloat(fb, sb);
        assertEquals(n, fb.position());
        assertEquals(n, sb.position());
        short[] got = new short[n];
        sb.flip();
        sb.get(got);
        assertBulkEquals(fx.randBulk, got, 0, "direct");

        sb.rewind();
        FloatBuffer back = ByteBuffer.allocateDirect(4 * n).order(ByteOrder.nativeOrder()).asFloatBuffer();
        Bf16.toFloat(sb, back);
        assertEquals(n, back.position());
        for (int i = 0; i < n; i++) {
            assertEquals(fx.widened[fx.randBulk[i] & 0xFFFF], Float.floatToRawIntBits(back.get(i)));
        }
    }

    @Test
    void heapAndNonNativeBuffersWithPositions() {
        float[] src = new float[100];
        for (int i = 0; i < src.length; i++) {
            src[i] = Float.intBitsToFloat(fx.randBits[i]);
        }
        FloatBuffer heap = FloatBuffer.wrap(src, 10, 50).slice(); // arrayOffset 10
        ShortBuffer out = ShortBuffer.allocate(60);
        out.position(5);
        Bf16.fromFloat(heap, out);
        assertEquals(55, out.position());
        for (int i = 0; i < 50; i++) {
            assertEquals(fx.randBulk[10 + i], out.get(5 + i));
        }
        // big-endian direct buffers (non-native on x86) and read-only sources take the element path
        FloatBuffer be = ByteBuffer.allocateDirect(400).order(ByteOrder.BIG_ENDIAN).asFloatBuffer();
        be.put(src).flip();
        ShortBuffer sbe = ByteBuffer.allocateDirect(200).order(ByteOrder.BIG_ENDIAN).asShortBuffer();
        Bf16.fromFloat(be.asReadOnlyBuffer(), sbe);
        for (int i = 0; i < 100; i++) {
            assertEquals(fx.randBulk[i], sbe.get(i));
        }
        sbe.flip();
        FloatBuffer fl = FloatBuffer.allocate(100);
        Bf16.toFloat(sbe.asReadOnlyBuffer(), fl);
        for (int i = 0; i < 100; i++) {
            assertEquals(fx.widened[fx.randBulk[i] & 0xFFFF], Float.floatToRawIntBits(fl.get(i)));
        }
    }

    @Test
    void rejectsBadRangesAndShortDestinations() {
        assertThrows(IndexOutOfBoundsException.class, () -> Bf16.fromFloat(new float[4], 2, new short[4], 0, 3));
        assertThrows(IndexOutOfBoundsException.class, () -> Bf16.toFloat(new short[4], 0, new float[2], 0, 3));
        assertThrows(IndexOutOfBoundsException.class, () -> Bf16.roundToBf16(new float[4], -1, 2));
        FloatBuffer src = FloatBuffer.wrap(new float[] {1f, 2f, 3f});
        ShortBuffer small = ShortBuffer.allocate(2);
        assertThrows(BufferOverflowException.class, () -> Bf16.fromFloat(src, small));
        assertEquals(0, src.position(), "nothing consumed on overflow");
        assertEquals(0, small.position());
        assertThrows(java.nio.ReadOnlyBufferException.class,
                () -> Bf16.fromFloat(src, ShortBuffer.allocate(3).asReadOnlyBuffer()));
        assertThrows(java.nio.ReadOnlyBufferException.class,
                () -> Bf16.toFloat(ShortBuffer.allocate(3), FloatBuffer.allocate(3).asReadOnlyBuffer()));
    }

    private static void assertBulkEquals(short[] expected, short[] actual, int from, String what) {
        for (int i = from; i < expected.length; i++) {
            if (expected[i] != actual[i]) {
                fail(String.format("%s[%d]: float bits 0x%08x -> 0x%04x, torch 0x%04x", what, i, fx.randBits[i],
                        actual[i] & 0xFFFF, expected[i] & 0xFFFF));
            }
        }
    }
}
