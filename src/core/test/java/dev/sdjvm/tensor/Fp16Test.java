package dev.sdjvm.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** float16 conversion checked against IEEE 754 binary16 facts (the values torch's .half() gives). */
class Fp16Test {
    @Test
    void exactValuesRoundTrip() {
        for (int h = 0; h < 0x10000; h++) {
            short s = (short) h;
            float f = Fp16.toFloat(s);
            if (Float.isNaN(f)) {
                assertTrue(Float.isNaN(Fp16.toFloat(Fp16.fromFloat(f))));
                continue;
            }
            assertEquals(h, Fp16.fromFloat(f) & 0xffff, "0x" + Integer.toHexString(h));
        }
    }

    @Test
    void knownValuesAndRoundingToNearestEven() {
        assertEquals(0x3c00, Fp16.fromFloat(1f) & 0xffff);
        assertEquals(0x7bff, Fp16.fromFloat(65504f) & 0xffff);          // max normal
        assertEquals(0x7c00, Fp16.fromFloat(65520f) & 0xffff);          // rounds up to +inf
        assertEquals(0x7bff, Fp16.fromFloat(65519.99f) & 0xffff);
        assertEquals(0x0001, Fp16.fromFloat(0x1p-24f) & 0xffff);        // smallest subnormal
        assertEquals(0x0000, Fp16.fromFloat(0x1p-25f) & 0xffff);        // half of it: ties to even (0)
        assertEquals(0x0002, Fp16.fromFloat(0x1.8p-24f * 1.0f + 0x1p-24f) & 0xffff);
        assertEquals(0x3c00, Fp16.fromFloat(1f + 0x1p-11f) & 0xffff);   // tie between 1 and 1+2^-10: even (1)
        assertEquals(0x3c02, Fp16.fromFloat(1f + 3 * 0x1p-11f) & 0xffff); // tie: even (1+2*2^-10)
        assertEquals(0xc000, Fp16.fromFloat(-2f) & 0xffff);
        assertEquals(0.33325195f, Fp16.toFloat(Fp16.fromFloat(1f / 3)));
    }
}
