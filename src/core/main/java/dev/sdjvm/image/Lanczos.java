package dev.sdjvm.image;

/**
 * Pillow's {@code Image.resize(size, Image.LANCZOS)} for 8-bit RGB and 8-bit grey ({@code L}) images, bit for bit:
 * a port of libImaging/Resample.c's 8-bit path (Pillow 9.4, which the tests compare against; later releases only
 * restructured that code), with {@code reducing_gap=None} and the whole image as the box, as diffusers'
 * {@code VaeImageProcessor.resize} calls it.
 *
 * <p>The filter is the truncated sinc {@code sinc(x)*sinc(x/3)} on {@code [-3, 3)}, widened by the scale factor when
 * downscaling. Per output column (and row) the coefficients are computed in double, divided by their sum, then
 * rounded half away from zero to fixed point with 22 fractional bits; each output sample is
 * {@code clamp((2^21 + sum(in*k)) >> 22, 0, 255)} in 32-bit integers. The horizontal pass runs first (over the
 * source rows the vertical pass needs), then the vertical one; a pass whose size does not change is skipped, and an
 * unchanged size returns a copy.
 */
public final class Lanczos {
    /** Pillow's {@code PRECISION_BITS}: 8 bits of result, 2 bits of headroom for the filter's negative lobes. */
    static final int PRECISION_BITS = 32 - 8 - 2;
    private static final double SUPPORT = 3.0;

    private Lanczos() {
    }

    /**
     * Resizes an RGB image as Pillow's {@code image.resize((width, height), Image.LANCZOS)}.
     *
     * @param image  the source
     * @param width  the new width, &gt;= 1
     * @param height the new height, &gt;= 1
     * @return a new image of {@code width x height} (a copy when the size is unchanged)
     * @throws IllegalArgumentException if a size is below 1
     */
    public static RgbImage resize(RgbImage image, int width, int height) {
        return RgbImage.wrap(width, height, resample(image.data(), image.width(), image.height(), 3, width, height));
    }

    /**
     * Resizes a grey image as Pillow's {@code image.resize((width, height), Image.LANCZOS)} on an {@code L} image.
     *
     * @param image  the source
     * @param width  the new width, &gt;= 1
     * @param height the new height, &gt;= 1
     * @return a new image of {@code width x height} (a copy when the size is unchanged)
     * @throws IllegalArgumentException if a size is below 1
     */
    public static GrayImage resize(GrayImage image, int width, int height) {
        return GrayImage.wrap(width, height, resample(image.data(), image.width(), image.height(), 1, width, height));
    }

    /** Interleaved 8-bit samples ({@code channels} per pixel, row-major) to a new size. */
    static byte[] resample(byte[] in, int inW, int inH, int channels, int outW, int outH) {
        if (outW < 1 || outH < 1) {
            throw new IllegalArgumentException("the new size must be at least 1x1, got " + outW + "x" + outH);
        }
        boolean horizontal = outW != inW;
        boolean vertical = outH != inH;
        if (!horizontal && !vertical) {
            return in.clone();
        }
        Coefficients vert = Coefficients.of(inH, outH);
        byte[] src = in;
        int srcW = inW;
        int rowShift = 0;
        if (horizontal) {
            // only the source rows the vertical pass reads: [first, last)
            int first = vert.bounds[0];
            int last = vert.bounds[outH * 2 - 2] + vert.bounds[outH * 2 - 1];
            if (!vertical) {
                first = 0;
                last = inH;
            }
            src = horizontalPass(in, inW, channels, first, last - first, outW, Coefficients.of(inW, outW));
            srcW = outW;
            rowShift = first;
        }
        if (!vertical) {
            return src;
        }
        return verticalPass(src, srcW, channels, rowShift, outH, vert);
    }

    private static byte[] horizontalPass(byte[] in, int inW, int channels, int firstRow, int rows, int outW,
            Coefficients c) {
        byte[] out = new byte[rows * outW * channels];
        int[] k = c.fixed;
        for (int yy = 0; yy < rows; yy++) {
            int rowIn = (yy + firstRow) * inW * channels;
            int rowOut = yy * outW * channels;
            for (int xx = 0; xx < outW; xx++) {
                int xmin = c.bounds[xx * 2];
                int n = c.bounds[xx * 2 + 1];
                int kb = xx * c.ksize;
                for (int ch = 0; ch < channels; ch++) {
                    int ss = 1 << (PRECISION_BITS - 1);
                    int p = rowIn + xmin * channels + ch;
                    for (int x = 0; x < n; x++, p += channels) {
                        ss += (in[p] & 0xff) * k[kb + x];
                    }
                    out[rowOut + xx * channels + ch] = clip8(ss);
                }
            }
        }
        return out;
    }

    private static byte[] verticalPass(byte[] in, int w, int channels, int rowShift, int outH, Coefficients c) {
        int stride = w * channels;
        byte[] out = new byte[outH * stride];
        int[] k = c.fixed;
        for (int yy = 0; yy < outH; yy++) {
            int ymin = c.bounds[yy * 2] - rowShift;
            int n = c.bounds[yy * 2 + 1];
            int kb = yy * c.ksize;
            for (int i = 0; i < stride; i++) {
                int ss = 1 << (PRECISION_BITS - 1);
                int p = ymin * stride + i;
                for (int y = 0; y < n; y++, p += stride) {
                    ss += (in[p] & 0xff) * k[kb + y];
                }
                out[yy * stride + i] = clip8(ss);
            }
        }
        return out;
    }

    /** Pillow's {@code clip8}: the 22-bit fixed-point sum to 0..255 (its lookup table is this clamp). */
    static byte clip8(int ss) {
        int v = ss >> PRECISION_BITS;
        return (byte) (v < 0 ? 0 : (v > 255 ? 255 : v));
    }

    /** {@code sinc(x) * sinc(x/3)} on [-3, 3), else 0 (Pillow's {@code lanczos_filter}). */
    static double lanczos(double x) {
        if (-3.0 <= x && x < 3.0) {
            return sinc(x) * sinc(x / 3);
        }
        return 0.0;
    }

    /**
     * Pillow's {@code sinc_filter}. {@code StrictMath.sin} (fdlibm) and glibc's {@code sin} agree to within an ulp and
     * almost always exactly; a last-bit difference could only matter if a coefficient times 2^22 fell within ~1e-9
     * of a rounding boundary.
     */
    private static double sinc(double x) {
        if (x == 0.0) {
            return 1.0;
        }
        x = x * Math.PI;
        return StrictMath.sin(x) / x;
    }

    /** One axis' coefficients: Pillow's {@code precompute_coeffs} followed by {@code normalize_coeffs_8bpc}. */
    static final class Coefficients {
        final int ksize;
        /** Per output index: first input index, number of taps. */
        final int[] bounds;
        /** {@code ksize} fixed-point coefficients per output index. */
        final int[] fixed;
        /** The same coefficients in double, before the fixed-point rounding (for tests). */
        final double[] exact;

        private Coefficients(int ksize, int[] bounds, int[] fixed, double[] exact) {
            this.ksize = ksize;
            this.bounds = bounds;
            this.fixed = fixed;
            this.exact = exact;
        }

        static Coefficients of(int inSize, int outSize) {
            float in0 = 0f;
            float in1 = inSize;  // the box (0, 0, width, height) is passed to C as floats
            double scale = (double) (in1 - in0) / outSize;
            double filterscale = scale < 1.0 ? 1.0 : scale;
            double support = SUPPORT * filterscale;
            int ksize = (int) Math.ceil(support) * 2 + 1;
            if ((long) outSize * ksize > Integer.MAX_VALUE / 8) {
                throw new IllegalArgumentException("resize from " + inSize + " to " + outSize + " is too large");
            }
            double[] kk = new double[outSize * ksize];
            int[] bounds = new int[outSize * 2];
            double invFilterscale = 1.0 / filterscale;
            for (int xx = 0; xx < outSize; xx++) {
                double center = in0 + (xx + 0.5) * scale;
                double ww = 0.0;
                int xmin = (int) (center - support + 0.5);
                if (xmin < 0) {
                    xmin = 0;
                }
                int xmax = (int) (center + support + 0.5);
                if (xmax > inSize) {
                    xmax = inSize;
                }
                xmax -= xmin;
                int kb = xx * ksize;
                for (int x = 0; x < xmax; x++) {
                    double w = lanczos((x + xmin - center + 0.5) * invFilterscale);
                    kk[kb + x] = w;
                    ww += w;
                }
                if (ww != 0.0) {
                    for (int x = 0; x < xmax; x++) {
                        kk[kb + x] /= ww;
                    }
                }
                bounds[xx * 2] = xmin;
                bounds[xx * 2 + 1] = xmax;
            }
            int[] fixed = new int[kk.length];
            for (int i = 0; i < kk.length; i++) {
                fixed[i] = kk[i] < 0 ? (int) (-0.5 + kk[i] * (1 << PRECISION_BITS))
                        : (int) (0.5 + kk[i] * (1 << PRECISION_BITS));
            }
            return new Coefficients(ksize, bounds, fixed, kk);
        }
    }
}
