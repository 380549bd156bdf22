package dev.sdjvm.scheduler;

/** numpy's {@code linspace}, {@code arange} and {@code interp} in float64. */
final class NumpyMath {
    private NumpyMath() {
    }

    /** {@code np.linspace(start, stop, num)} in float64. */
    static double[] linspace(double start, double stop, int num) {
        double[] y = new double[num];
        if (num == 1) {
            y[0] = start;
            return y;
        }
        double step = (stop - start) / (num - 1);
        for (int i = 0; i < num; i++) {
            y[i] = i * step + start;
        }
        if (num > 0) {
            y[num - 1] = stop;
        }
        return y;
    }

    /** {@code np.arange(start, stop, step)} in float64. */
    static double[] arange(double start, double stop, double step) {
        int len = (int) Math.max(0, Math.ceil((stop - start) / step));
        double[] y = new double[len];
        for (int i = 0; i < len; i++) {
            y[i] = start + i * step;
        }
        return y;
    }

    /** {@code np.interp(x, arange(len(fp)), fp)}. */
    static double interp(double x, float[] fp) {
        int n = fp.length;
        if (x <= 0) {
            return fp[0];
        }
        if (x >= n - 1) {
            return fp[n - 1];
        }
        int j = (int) Math.floor(x);
        double frac = x - j;
        double lo = fp[j];
        double hi = fp[j + 1];
        if (frac == 0) {
            return lo;
        }
        double slope = (hi - lo); // (fp[j+1]-fp[j]) / (xp[j+1]-xp[j]) with unit spacing
        return slope * frac + lo;
    }
}
