package dev.sdjvm.tensor;

import java.nio.BufferOverflowException;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import java.util.Objects;

/**
 * float32 &lt;-&gt; bfloat16 conversion exactly as PyTorch does it on the CPU.
 *
 * <p>A bfloat16 is the upper 16 bits of a float32 (1 sign, 8 exponent, 7 mantissa bits); it is carried here as a
 * {@code short} holding those raw bits. float32 to bfloat16 rounds to nearest, ties to even, on the discarded
 * lower 16 bits ({@code (bits + 0x7FFF + lsb) >>> 16}), so ±0, ±Inf and subnormals come out as rounding dictates
 * (finite values just below the overflow threshold round to ±Inf, subnormals may round up to the smallest
 * normal). bfloat16 to float32 is exact: the bits are shifted left by 16.
 *
 * <p><b>NaN.</b> PyTorch itself has two NaN encodings, and both are reproduced:
 * <ul>
 *   <li>the scalar conversion {@code c10::BFloat16(float)} (0-dim tensors, strided copies, CPUs without AVX2)
 *       turns every NaN into the quiet NaN {@code 0x7FC0}: {@link #fromFloat(float)};</li>
 *   <li>the vectorised copy of a contiguous float tensor ({@code t.to(torch.bfloat16)} with the AVX2/AVX-512
 *       kernels, measured with torch 1.13 and libtorch 2.10 on x86_64) turns every NaN, whatever its sign and
 *       payload, into {@code 0xFFFF}: all bulk methods here ({@code float[]}, buffers,
 *       {@link #roundToBf16(float[])}).</li>
 * </ul>
 * bfloat16 to float32 keeps NaN payloads (it is a plain shift in torch too). Non-NaN results are the same on
 * every path.
 *
 * <p>The bulk loops are integer arithmetic on {@link Float#floatToRawIntBits} with one NaN test per element that
 * C2 turns into a well-predicted branch or a conditional move. JDK 17's auto-vectoriser does not vectorise the
 * float/int bit reinterpretation, and a fully branch-free variant (NaN mask by arithmetic) measured slower
 * (docs/tensor.md). All methods are static, thread-safe and allocation-free except the convenience overloads
 * that return a new array.
 */
public final class Bf16 {

    /** The NaN that the scalar conversion {@link #fromFloat(float)} produces ({@code c10::BFloat16}). */
    public static final short NAN = (short) 0x7FC0;

    /** The NaN that the bulk conversions produce (torch's vectorised contiguous copy kernel). */
    public static final short NAN_BULK = (short) 0xFFFF;

    private Bf16() {
    }

    // ------------------------------------------------------------------------------------------------ scalar

    /**
     * Rounds a float to bfloat16 (round to nearest, ties to even), as {@code c10::BFloat16(float)}; every NaN
     * becomes {@link #NAN} ({@code 0x7FC0}).
     *
     * @param value the float
     * @return the bfloat16 bits
     */
    public static short fromFloat(float value) {
        int u = Float.floatToRawIntBits(value);
        if ((u & 0x7FFF_FFFF) > 0x7F80_0000) {
            return NAN;
        }
        return (short) ((u + 0x7FFF + ((u >>> 16) & 1)) >>> 16);
    }

    /**
     * Widens bfloat16 bits to the float32 they denote (exact; NaN payloads are kept).
     *
     * @param bf16 the bfloat16 bits
     * @return the float
     */
    public static float toFloat(short bf16) {
        return Float.intBitsToFloat(bf16 << 16);
    }

    /**
     * Rounds a float through bfloat16 and back, as {@code float(bfloat16(x))} with the scalar NaN rule.
     *
     * @param value the float
     * @return the nearest float that bfloat16 can hold
     */
    public static float round(float value) {
        return toFloat(fromFloat(value));
    }

    // --------------------------------------------------------------------------------------------- arrays

    /**
     * Converts all of {@code src} to bfloat16 bits in a new array (bulk NaN rule: {@link #NAN_BULK}).
     *
     * @param src the floats
     * @return their bfloat16 bits
     */
    public static short[] fromFloat(float[] src) {
        short[] dst = new short[src.length];
        fromFloat(src, 0, dst, 0, src.length);
        return dst;
    }

    /**
     * Converts {@code length} floats from {@code src[srcOffset..]} into bfloat16 bits at {@code dst[dstOffset..]}
     * (round to nearest even; every NaN becomes {@link #NAN_BULK}, as torch's contiguous tensor conversion).
     *
     * @param src       the floats
     * @param srcOffset first float to convert
     * @param dst       where the bfloat16 bits go
     * @param dstOffset first index written
     * @param length    number of values
     * @throws IndexOutOfBoundsException if a range is outside its array
     */
    public static void fromFloat(float[] src, int srcOffset, short[] dst, int dstOffset, int length) {
        Objects.checkFromIndexSize(srcOffset, length, src.length);
        Objects.checkFromIndexSize(dstOffset, length, dst.length);
        for (int i = 0; i < length; i++) {
            dst[dstOffset + i] = bulk(Float.floatToRawIntBits(src[srcOffset + i]));
        }
    }

    /**
     * Widens all of {@code src} to floats in a new array.
     *
     * @param src the bfloat16 bits
     * @return the floats
     */
    public static float[] toFloat(short[] src) {
        float[] dst = new float[src.length];
        toFloat(src, 0, dst, 0, src.length);
        return dst;
    }

    /**
     * Widens {@code length} bfloat16 values from {@code src[srcOffset..]} into {@code dst[dstOffset..]} (exact).
     *
     * @param src       the bfloat16 bits
     * @param srcOffset first value to widen
     * @param dst       where the floats go
     * @param dstOffset first index written
     * @param length    number of values
     * @throws IndexOutOfBoundsException if a range is outside its array
     */
    public static void toFloat(short[] src, int srcOffset, float[] dst, int dstOffset, int length) {
        Objects.checkFromIndexSize(srcOffset, length, src.length);
        Objects.checkFromIndexSize(dstOffset, length, dst.length);
        for (int i = 0; i < length; i++) {
            dst[dstOffset + i] = Float.intBitsToFloat(src[srcOffset + i] << 16);
        }
    }

    /**
     * Rounds every element through bfloat16 in place: what {@code x.to(torch.bfloat16).to(torch.float32)} does
     * to a contiguous tensor (NaN becomes the float with bits {@code 0xFFFF0000}).
     *
     * @param values the floats, rounded in place
     */
    public static void roundToBf16(float[] values) {
        roundToBf16(values, 0, values.length);
    }

    /**
     * Rounds {@code values[offset..offset+length)} through bfloat16 in place; see {@link #roundToBf16(float[])}.
     *
     * @param values the floats
     * @param offset first index rounded
     * @param length number of values
     */
    public static void roundToBf16(float[] values, int offset, int length) {
        Objects.checkFromIndexSize(offset, length, values.length);
        for (int i = offset, end = offset + length; i < end; i++) {
            values[i] = Float.intBitsToFloat(bulk(Float.floatToRawIntBits(values[i])) << 16);
        }
    }

    // -------------------------------------------------------------------------------------------- buffers

    /**
     * Converts the remaining floats of {@code src} to bfloat16 bits into {@code dst}, like
     * {@code dst.put(src)}: both positions advance by {@code src.remaining()}. Heap or direct buffers of any byte
     * order (e.g. {@code ByteBuffer.allocateDirect(n).order(ByteOrder.nativeOrder()).asFloatBuffer()}) are
     * accepted; array-backed buffers take the array path. Bulk NaN rule ({@link #NAN_BULK}).
     *
     * @param src the floats
     * @param dst where the bfloat16 bits go
     * @throws BufferOverflowException if {@code dst} has fewer remaining elements than {@code src}; nothing is
     *         written then
     * @throws java.nio.ReadOnlyBufferException if {@code dst} is read-only
     */
    public static void fromFloat(FloatBuffer src, ShortBuffer dst) {
        int n = src.remaining();
        if (dst.isReadOnly()) {
            throw new java.nio.ReadOnlyBufferException();
        }
        if (dst.remaining() < n) {
            throw new BufferOverflowException();
        }
        int sp = src.position();
        int dp = dst.position();
        if (src.hasArray() && dst.hasArray()) {
            fromFloat(src.array(), src.arrayOffset() + sp, dst.array(), dst.arrayOffset() + dp, n);
        } else {
            for (int i = 0; i < n; i++) {
                dst.put(dp + i, bulk(Float.floatToRawIntBits(src.get(sp + i))));
            }
        }
        src.position(sp + n);
        dst.position(dp + n);
    }

    /**
     * Widens the remaining bfloat16 values of {@code src} into {@code dst}, like {@code dst.put(src)}: both
     * positions advance by {@code src.remaining()}. Heap or direct buffers of any byte order are accepted.
     *
     * @param src the bfloat16 bits
     * @param dst where the floats go
     * @throws BufferOverflowException if {@code dst} has fewer remaining elements than {@code src}; nothing is
     *         written then
     * @throws java.nio.ReadOnlyBufferException if {@code dst} is read-only
     */
    public static void toFloat(ShortBuffer src, FloatBuffer dst) {
        int n = src.remaining();
        if (dst.isReadOnly()) {
            throw new java.nio.ReadOnlyBufferException();
        }
        if (dst.remaining() < n) {
            throw new BufferOverflowException();
        }
        int sp = src.position();
        int dp = dst.position();
        if (src.hasArray() && dst.hasArray()) {
            toFloat(src.array(), src.arrayOffset() + sp, dst.array(), dst.arrayOffset() + dp, n);
        } else {
            for (int i = 0; i < n; i++) {
                dst.put(dp + i, Float.intBitsToFloat(src.get(sp + i) << 16));
            }
        }
        src.position(sp + n);
        dst.position(dp + n);
    }

    // ------------------------------------------------------------------------------------------- internals

    /** Round-to-nearest-even of float bits {@code u} to bfloat16 bits; every NaN gives {@code 0xFFFF}. */
    private static short bulk(int u) {
        return (u & 0x7FFF_FFFF) > 0x7F80_0000 ? NAN_BULK : (short) ((u + 0x7FFF + ((u >>> 16) & 1)) >>> 16);
    }
}
