package dev.sdjvm.tensor;

/**
 * IEEE 754 binary16 (float16) &lt;-&gt; float32, as torch's {@code .to(torch.float16)} / {@code .float()}: round to
 * nearest even, subnormals kept, overflow to infinity, NaN kept (as a quiet NaN). (JDK 20 has
 * {@code Float.floatToFloat16}; this library runs on JDK 17.)
 */
public final class Fp16 {
    private Fp16() {
    }

    /**
     * float32 to float16, round to nearest even.
     *
     * @param value the float
     * @return the float16 bits
     */
    public static short fromFloat(float value) {
        int f = Float.floatToRawIntBits(value);
        int sign = (f >>> 16) & 0x8000;
        int exp = (f >>> 23) & 0xff;
        int mant = f & 0x7fffff;
        if (exp == 0xff) {
            return (short) (sign | 0x7c00 | (mant != 0 ? 0x200 | (mant >>> 13) : 0));
        }
        int e = exp - 127 + 15;
        if (e >= 0x1f) {
            return (short) (sign | 0x7c00);
        }
        if (e <= 0) {
            if (e < -10) {
                return (short) sign;  // below half the smallest subnormal: +-0
            }
            mant |= 0x800000;
            int shift = 14 - e;
            int half = mant >>> shift;
            int rem = mant & ((1 << shift) - 1);
            int mid = 1 << (shift - 1);
            if (rem > mid || rem == mid && (half & 1) != 0) {
                half++;
            }
            return (short) (sign | half);
        }
        int half = (e << 10) | (mant >>> 13);
        int rem = mant & 0x1fff;
        if (rem > 0x1000 || rem == 0x1000 && (half & 1) != 0) {
            half++;  // may carry into the exponent, up to infinity: correct
        }
        return (short) (sign | half);
    }

    /**
     * float16 to float32 (exact).
     *
     * @param bits the float16 bits
     * @return the float
     */
    public static float toFloat(short bits) {
        int h = bits & 0xffff;
        int sign = (h & 0x8000) << 16;
        int exp = (h >>> 10) & 0x1f;
        int mant = h & 0x3ff;
        if (exp == 0x1f) {
            return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
        }
        if (exp == 0) {
            float v = mant * 0x1p-24f;  // subnormal: exact
            return sign != 0 ? -v : v;
        }
        return Float.intBitsToFloat(sign | ((exp - 15 + 127) << 23) | (mant << 13));
    }
}
