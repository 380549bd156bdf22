package dev.sdjvm.scheduler;

/**
 * float32 {@code exp}, {@code log} and {@code expm1} exactly as torch computes them on x86-64 CPUs (ATen's vectorized math:
 * SLEEF's {@code expf}/{@code logf} u10 kernels with FMA). These are not always correctly rounded
 * ({@code (float) Math.exp(x)} differs in about 9% of inputs by one ulp); the scheduler step coefficients use
 * them so that they match diffusers bit for bit. Verified bit-exact against torch 1.13 (Debian build) on 300,000
 * inputs each (exp on [-60, 60], log on (0, 150]) and 200,000 for expm1.
 */
final class TorchMath {
    private TorchMath() {
    }

    /** {@code torch.exp} on a float32 tensor. */
    static float exp(float d) {
        int q = (int) Math.rint(d * 1.442695040888963407359924681001892137426645954152985934135449406931f);
        float s = Math.fma((float) q, -0.693145751953125f, d);
        s = Math.fma((float) q, -1.428606765330187045e-06f, s);
        float u = 0.000198527617612853646278381f;
        u = Math.fma(u, s, 0.00139304355252534151077271f);
        u = Math.fma(u, s, 0.00833336077630519866943359f);
        u = Math.fma(u, s, 0.0416664853692054748535156f);
        u = Math.fma(u, s, 0.166666671633720397949219f);
        u = Math.fma(u, s, 0.5f);
        u = 1.0f + Math.fma(s * s, u, s);
        u = u * Math.scalb(1f, q >> 1) * Math.scalb(1f, q - (q >> 1));
        if (d < -104) {
            u = 0;
        }
        if (d > 104) {
            u = Float.POSITIVE_INFINITY;
        }
        if (Float.isNaN(d)) {
            u = Float.NaN;
        }
        return u;
    }

    /** {@code torch.log} on a float32 tensor (double-float arithmetic, as SLEEF's {@code logf_u1}). */
    static float log(float d) {
        boolean o = d < Float.MIN_NORMAL;
        if (o) {
            d = d * ((float) (1L << 32) * (float) (1L << 32));
        }
        int e = ((Float.floatToRawIntBits(d * (1.0f / 0.75f)) >> 23) & 0xff) - 0x7f;
        float m = Float.intBitsToFloat(Float.floatToRawIntBits(d) + ((-e) << 23));
        if (o) {
            e -= 64;
        }
        float ef = (float) e;
        float sx = 0.69314718246459960938f * ef;
        float sy = Math.fma(-1.904654323148236017e-09f, ef, Math.fma(0.69314718246459960938f, ef, -sx));
        float nx = -1f + m;
        float nv = nx - (-1f);
        float ny = ((-1f) - (nx - nv)) + (m - nv);
        float dx = 1f + m;
        float dv = dx - 1f;
        float dy = (1f - (dx - dv)) + (m - dv);
        float t = 1f / dx;
        float qs = nx * t;
        float u = Math.fma(t, nx, -qs);
        float v = Math.fma(-dy, t, Math.fma(-dx, t, 1f));
        float xx = qs;
        float xy = Math.fma(qs, v, Math.fma(ny, t, u));
        float x2 = xx * xx;
        float tt = 0.3027294874e+0f;
        tt = Math.fma(tt, x2, 0.3996108174e+0f);
        tt = Math.fma(tt, x2, 0.6666694880e+0f);
        float ax = xx * 2f;
        float ay = xy * 2f;
        float s2x = sx + ax;
        float s2y = (((sx - s2x) + ax) + sy) + ay;
        float w = (x2 * xx) * tt;
        float s3x = s2x + w;
        float s3y = ((s2x - s3x) + w) + s2y;
        float r = s3x + s3y;
        if (d == Float.POSITIVE_INFINITY) {
            r = Float.POSITIVE_INFINITY;
        }
        if (d < 0 || Float.isNaN(d)) {
            r = Float.NaN;
        }
        if (d == 0) {
            r = Float.NEGATIVE_INFINITY;
        }
        return r;
    }

    private static float ldexp2(float d, int e) {
        return d * Math.scalb(1f, e >> 1) * Math.scalb(1f, e - (e >> 1));
    }

    /** {@code torch.expm1} on a float32 tensor (SLEEF's {@code expm1f} u10: {@code expk2f} in double-float, minus 1). */
    static float expm1(float a) {
        float dx = a;
        float u = dx * 1.442695040888963407359924681001892137426645954152985934135449406931f;
        int q = (int) Math.rint(u);
        // s = (a, 0) + q * -L2U + q * -L2L, in double-float
        float y = (float) q * -0.693145751953125f;
        float s = dx + y;
        float v = s - dx;
        float s1x = s;
        float s1y = (dx - (s - v)) + (y - v);
        y = (float) q * -1.428606765330187045e-06f;
        s = s1x + y;
        v = s - s1x;
        float s2x = s;
        float s2y = ((s1x - (s - v)) + (y - v)) + s1y;
        u = 0.1980960224e-3f;
        u = Math.fma(u, s2x, 0.1394256484e-2f);
        u = Math.fma(u, s2x, 0.8333456703e-2f);
        u = Math.fma(u, s2x, 0.4166637361e-1f);
        float mx = s2x * u;
        float my = Math.fma(s2y, u, Math.fma(s2x, u, -mx));
        y = 0.166666659414234244790680580464e+0f;
        s = mx + y;
        v = s - mx;
        float t1x = s;
        float t1y = ((mx - (s - v)) + (y - v)) + my;
        mx = s2x * t1x;
        my = Math.fma(s2x, t1y, Math.fma(s2y, t1x, Math.fma(s2x, t1x, -mx)));
        y = 0.5f;
        s = mx + y;
        v = s - mx;
        float t2x = s;
        float t2y = ((mx - (s - v)) + (y - v)) + my;
        float qx = s2x * s2x;
        float qy = Math.fma(s2x + s2x, s2y, Math.fma(s2x, s2x, -qx));
        float px = qx * t2x;
        float py = Math.fma(qx, t2y, Math.fma(qy, t2x, Math.fma(qx, t2x, -px)));
        s = s2x + px;
        v = s - s2x;
        float t3x = s;
        float t3y = ((s2x - (s - v)) + (px - v)) + (s2y + py);
        s = 1f + t3x;
        float t4x = s;
        float t4y = ((1f - s) + t3x) + t3y;
        float rx = ldexp2(t4x, q);
        float ry = ldexp2(t4y, q);
        if (dx < -104) {
            rx = 0;
            ry = 0;
        }
        y = -1f;
        s = rx + y;
        v = s - rx;
        float fx = s;
        float fy = ((rx - (s - v)) + (y - v)) + ry;
        float x = fx + fy;
        if (a > 88.72283172607421875f) {
            x = Float.POSITIVE_INFINITY;
        }
        if (a < -16.635532333438687426013570f) {
            x = -1f;
        }
        if (Float.floatToRawIntBits(a) == 0x80000000) {
            x = -0.0f;
        }
        if (Float.isNaN(a)) {
            x = Float.NaN;
        }
        return x;
    }
}
