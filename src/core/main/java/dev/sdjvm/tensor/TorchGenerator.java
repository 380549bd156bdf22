package dev.sdjvm.tensor;

/**
 * A pure-Java copy of PyTorch's CPU random generator for {@code torch.Generator("cpu").manual_seed(seed)} followed
 * by {@code torch.randn(shape, generator=g, dtype=torch.float32)}: the same floats, bit for bit, as torch on an
 * x86_64 CPU using its AVX2 or AVX-512 kernels (checked against torch 1.13 and libtorch 2.10). torch's
 * {@code DEFAULT} kernels (no AVX2, e.g. aarch64 builds or {@code ATEN_CPU_CAPABILITY=default}) compute
 * {@code numel >= 16} draws with libm and differ; see {@code docs/tensor.md}.
 *
 * <p>What it reproduces:
 * <ul>
 *   <li>the engine {@code at::mt19937} (the standard 32-bit Mersenne Twister seeded with the low 32 bits of the
 *       seed, as {@code CPUGeneratorImpl::set_current_seed}); {@code random()} is one 32-bit draw,
 *       {@code random64()} is two draws, the first one the high word;</li>
 *   <li>{@code normal_kernel} for a contiguous float tensor with {@code numel >= 16}: {@code numel} float uniforms
 *       {@code (random() & 0xFFFFFF) * 2^-24}, then Box-Muller over each block of 16 (u1 = 1 - data[j],
 *       u2 = data[j + 8]), and when {@code numel % 16 != 0} sixteen fresh uniforms written over the last 16
 *       elements and transformed again. The block transform is the AVX2 kernel {@code normal_fill_16_AVX2}:
 *       {@code log256_ps} / {@code sincos256_ps} (cephes polynomials from {@code avx_mathfun.h}) evaluated in float
 *       with the multiply-adds fused as GCC contracts them;</li>
 *   <li>{@code numel < 16}: one {@code at::normal_distribution<double>} draw per element (two double uniforms from
 *       {@code random64()}, {@code r = sqrt(-2 log(1 - u2))}, {@code theta = 2 pi u1}, returns {@code r cos theta}
 *       and caches {@code r sin theta} in the generator for the next such draw). The cache survives between calls,
 *       as in torch, and is cleared by re-seeding.</li>
 * </ul>
 * Successive calls continue the stream, as diffusers does when it passes one generator to the pipeline and to
 * {@code scheduler.step}: give a stochastic scheduler this stream with {@code scheduler.setNoiseSource(generator::randn)}.
 *
 * <p>Not thread-safe (torch locks the generator; give each thread its own instance). {@link #randn(float[])} does
 * not allocate.
 */
public final class TorchGenerator {

    private static final int N = 624;
    private static final int M = 397;
    private static final int MATRIX_A = 0x9908B0DF;
    private static final int UMASK = 0x80000000;
    private static final int LMASK = 0x7FFFFFFF;

    private final int[] state = new int[N];
    private int left;
    private int next;
    private long seed;
    private boolean hasCachedNormal;
    private double cachedNormal;

    /**
     * A generator in the state {@code torch.Generator().manual_seed(seed)} leaves.
     *
     * @param seed the seed, read as unsigned 64-bit
     */
    public TorchGenerator(long seed) {
        manualSeed(seed);
    }

    /**
     * Re-seeds, as {@code generator.manual_seed(seed)}: new engine state, cached normal dropped.
     *
     * @param seed the seed, read as unsigned 64-bit
     */
    public void manualSeed(long seed) {
        this.seed = seed;
        int s = (int) seed; // at::mt19937 keeps seed & 0xffffffff
        state[0] = s;
        for (int j = 1; j < N; j++) {
            s = 1812433253 * (s ^ (s >>> 30)) + j;
            state[j] = s;
        }
        left = 1;
        next = 0;
        hasCachedNormal = false;
    }

    /**
     * An independent generator in the same state (engine and cached normal), like
     * {@code g2.set_state(g.get_state())}: both then produce the same stream.
     *
     * @return the copy
     */
    public TorchGenerator copy() {
        TorchGenerator c = new TorchGenerator(seed);
        System.arraycopy(state, 0, c.state, 0, N);
        c.left = left;
        c.next = next;
        c.hasCachedNormal = hasCachedNormal;
        c.cachedNormal = cachedNormal;
        return c;
    }

    /** {@return the seed last set (as {@code generator.initial_seed()}, read as unsigned 64-bit)} */
    public long initialSeed() {
        return seed;
    }

    // ------------------------------------------------------------------------------------------------- engine

    /** {@return one 32-bit draw of the engine ({@code CPUGeneratorImpl::random()}), as an unsigned value in an int} */
    public int random() {
        if (--left == 0) {
            nextState();
        }
        int y = state[next++];
        y ^= y >>> 11;
        y ^= (y << 7) & 0x9D2C5680;
        y ^= (y << 15) & 0xEFC60000;
        y ^= y >>> 18;
        return y;
    }

    /** {@return two draws combined, the first one high ({@code CPUGeneratorImpl::random64()})} */
    public long random64() {
        long hi = random() & 0xFFFF_FFFFL;
        long lo = random() & 0xFFFF_FFFFL;
        return (hi << 32) | lo;
    }

    private static int twist(int u, int v) {
        int mixed = (u & UMASK) | (v & LMASK);
        return (mixed >>> 1) ^ ((v & 1) != 0 ? MATRIX_A : 0);
    }

    private void nextState() {
        int[] st = state;
        left = N;
        next = 0;
        int p = 0;
        for (; p < N - M; p++) {
            st[p] = st[p + M] ^ twist(st[p], st[p + 1]);
        }
        for (; p < N - 1; p++) {
            st[p] = st[p + M - N] ^ twist(st[p], st[p + 1]);
        }
        st[N - 1] = st[M - 1] ^ twist(st[N - 1], st[0]);
    }

    private float uniformFloat() {
        return (random() & 0xFFFFFF) * 0x1.0p-24f;
    }

    private double uniformDouble() {
        return (random64() & ((1L << 53) - 1)) * 0x1.0p-53;
    }

    // ------------------------------------------------------------------------------------------------- normal

    /**
     * Fills {@code out} as {@code torch.randn(out.length, generator=this)} would (any shape with that many
     * elements gives the same flat values), continuing the generator state.
     *
     * @param out the array to fill
     */
    public void randn(float[] out) {
        int n = out.length;
        if (n >= 16) {
            normalFill(out, n);
        } else {
            for (int i = 0; i < n; i++) {
                out[i] = (float) normalDouble();
            }
        }
    }

    /**
     * {@code torch.randn(*shape, generator=this)} flattened in row-major order.
     *
     * @param shape the tensor shape
     * @return the values, row-major
     * @throws IllegalArgumentException if a dimension is negative or the element count exceeds an array's capacity
     */
    public float[] randn(int... shape) {
        long numel = 1;
        for (int d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("shape: negative dimension " + d);
            }
            numel *= d;
            if (numel > Integer.MAX_VALUE - 8) {
                throw new IllegalArgumentException("shape: more than " + (Integer.MAX_VALUE - 8) + " elements");
            }
        }
        float[] out = new float[(int) numel];
        randn(out);
        return out;
    }

    /** {@code at::normal_distribution<double>(0, 1)} with the generator's cached second value. */
    private double normalDouble() {
        if (hasCachedNormal) {
            hasCachedNormal = false;
            return cachedNormal * 1.0 + 0.0;
        }
        double u1 = uniformDouble();
        double u2 = uniformDouble();
        double r = Math.sqrt(-2.0 * StrictMath.log(1.0 - u2));
        double theta = 2.0 * Math.PI * u1;
        cachedNormal = r * StrictMath.sin(theta);
        hasCachedNormal = true;
        return r * StrictMath.cos(theta) * 1.0 + 0.0;
    }

    private void normalFill(float[] data, int size) {
        for (int i = 0; i < size; i++) {
            data[i] = uniformFloat();
        }
        for (int i = 0; i + 16 <= size; i += 16) {
            normalFill16(data, i);
        }
        if (size % 16 != 0) {
            int base = size - 16;
            for (int i = 0; i < 16; i++) {
                data[base + i] = uniformFloat();
            }
            normalFill16(data, base);
        }
    }

    // -------------------------------------------------------------------- AVX2 kernel (avx_mathfun.h), in float

    private static final float TWO_PI = (float) (2.0 * Math.PI);
    private static final float SQRTHF = (float) 0.707106781186547524;
    private static final float LOG_P0 = (float) 7.0376836292E-2;
    private static final float LOG_P1 = (float) -1.1514610310E-1;
    private static final float LOG_P2 = (float) 1.1676998740E-1;
    private static final float LOG_P3 = (float) -1.2420140846E-1;
    private static final float LOG_P4 = (float) 1.4249322787E-1;
    private static final float LOG_P5 = (float) -1.6668057665E-1;
    private static final float LOG_P6 = (float) 2.0000714765E-1;
    private static final float LOG_P7 = (float) -2.4999993993E-1;
    private static final float LOG_P8 = (float) 3.3333331174E-1;
    private static final float LOG_Q1 = (float) -2.12194440e-4;
    private static final float LOG_Q2 = (float) 0.693359375;
    private static final float DP1 = (float) -0.78515625;
    private static final float DP2 = (float) -2.4187564849853515625e-4;
    private static final float DP3 = (float) -3.77489497744594108e-8;
    private static final float SIN_P0 = (float) -1.9515295891E-4;
    private static final float SIN_P1 = (float) 8.3321608736E-3;
    private static final float SIN_P2 = (float) -1.6666654611E-1;
    private static final float COS_P0 = (float) 2.443315711809948E-005;
    private static final float COS_P1 = (float) -1.388731625493765E-003;
    private static final float COS_P2 = (float) 4.166664568298827E-002;
    private static final float FOPI = (float) 1.27323954473516;

    /** Box-Muller over data[base .. base+16), lanes j and j+8, as normal_fill_16_AVX2 with mean 0, std 1. */
    private static void normalFill16(float[] data, int base) {
        for (int j = 0; j < 8; j++) {
            float u1 = 1.0f - data[base + j];
            float u2 = data[base + j + 8];
            float radius = (float) Math.sqrt(-2.0f * log(u1));
            float theta = TWO_PI * u2;
            // sincos
            int sinSign = Float.floatToRawIntBits(theta) & 0x8000_0000;
            float x = Math.abs(theta);
            float y = x * FOPI;
            int j2 = ((int) y + 1) & ~1;
            y = j2;
            int swapSignSin = (j2 & 4) << 29;
            boolean polyMask = (j2 & 2) == 0;
            x = mla(y, DP1, x);
            x = mla(y, DP2, x);
            x = mla(y, DP3, x);
            int cosSign = (~(j2 - 2) & 4) << 29;
            sinSign ^= swapSignSin;
            float z = x * x;
            float yc = mla(COS_P0, z, COS_P1);
            yc = mla(yc, z, COS_P2);
            yc = yc * z;
            yc = mla(yc, z, -(z * 0.5f));
            yc = yc + 1.0f;
            float ys = mla(SIN_P0, z, SIN_P1);
            ys = mla(ys, z, SIN_P2);
            ys = ys * z;
            ys = mla(ys, x, x);
            // select with and/andnot + add/sub exactly as the kernel does (keeps its signed-zero behaviour)
            float ysin2 = polyMask ? ys : 0.0f;
            float ysin1 = polyMask ? 0.0f : yc;
            ys = ys - ysin2;
            yc = yc - ysin1;
            float s = ysin1 + ysin2;
            float c = yc + ys;
            s = Float.intBitsToFloat(Float.floatToRawIntBits(s) ^ sinSign);
            c = Float.intBitsToFloat(Float.floatToRawIntBits(c) ^ cosSign);
            float n1 = radius * c;
            float n2 = radius * s;
            data[base + j] = Math.fma(n1, 1.0f, 0.0f);
            data[base + j + 8] = Math.fma(n2, 1.0f, 0.0f);
        }
    }

    /** log256_ps for one lane (argument in (0, 1] here). */
    private static float log(float v) {
        boolean invalid = v <= 0.0f;
        float x = Math.max(v, Float.MIN_NORMAL);
        int bits = Float.floatToRawIntBits(x);
        int imm0 = bits >>> 23;
        x = Float.intBitsToFloat((bits & ~0x7F80_0000) | 0x3F00_0000);
        imm0 -= 0x7F;
        float e = (float) imm0;
        e = e + 1.0f;
        boolean mask = x < SQRTHF;
        float tmp = mask ? x : 0.0f;
        x = x - 1.0f;
        e = e - (mask ? 1.0f : 0.0f);
        x = x + tmp;
        float z = x * x;
        float y = mla(LOG_P0, x, LOG_P1);
        y = mla(y, x, LOG_P2);
        y = mla(y, x, LOG_P3);
        y = mla(y, x, LOG_P4);
        y = mla(y, x, LOG_P5);
        y = mla(y, x, LOG_P6);
        y = mla(y, x, LOG_P7);
        y = mla(y, x, LOG_P8);
        y = y * x;
        y = mla(y, z, e * LOG_Q1);
        y = mla(z, -0.5f, y);
        x = x + y;
        x = mla(e, LOG_Q2, x);
        return invalid ? Float.NaN : x;
    }

    /**
     * {@code a * b + c} with one rounding. torch's AVX2 kernel is compiled with FMA enabled and GCC contracts each
     * {@code _mm256_add_ps(_mm256_mul_ps(..), ..)} whose product has no other use into {@code vfmadd}; computing
     * those steps unfused changes about 1 value in 200 by one ulp (checked against the fixtures).
     */
    private static float mla(float a, float b, float c) {
        return Math.fma(a, b, c);
    }
}
