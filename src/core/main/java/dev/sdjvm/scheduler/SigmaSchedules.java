package dev.sdjvm.scheduler;

/**
 * Sigma schedules: diffusers' {@code _sigma_to_t} with numpy's value-based casting (float32 arrays stay float32),
 * and the Karras, exponential, beta-distribution and Lu remappings.
 */
final class SigmaSchedules {
    private SigmaSchedules() {
    }

    /** {@code np.log} of a float32 array (float32 result). */
    static float[] logF32(float[] x) {
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = (float) Math.log(x[i]);
        }
        return out;
    }

    /**
     * diffusers' {@code _sigma_to_t(sigma, log_sigmas)} with numpy 1.24 casting: the float64 scalar meets the
     * float32 table in float32, the interpolation weight is float32, the result float64.
     */
    static double sigmaToT(double sigma, float[] logSigmas) {
        float ls = (float) Math.log(Math.max(sigma, 1e-10));
        int n = logSigmas.length;
        int lastNonNeg = 0; // argmax of cumsum(dists >= 0): the last index with dists >= 0 (0 if none)
        for (int i = 0; i < n; i++) {
            if (ls - logSigmas[i] >= 0f) {
                lastNonNeg = i;
            }
        }
        int lowIdx = Math.min(lastNonNeg, n - 2);
        int highIdx = lowIdx + 1;
        float low = logSigmas[lowIdx];
        float high = logSigmas[highIdx];
        float w = (low - ls) / (low - high);
        w = Math.max(0f, Math.min(1f, w));
        return (double) (1f - w) * lowIdx + (double) w * highIdx;
    }

    /** Karras et al. (2022) sigmas, rho = 7, float64. */
    static double[] karras(double sigmaMin, double sigmaMax, int n) {
        double rho = 7.0;
        double[] ramp = NumpyMath.linspace(0, 1, n);
        double minInv = Math.pow(sigmaMin, 1 / rho);
        double maxInv = Math.pow(sigmaMax, 1 / rho);
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            out[i] = Math.pow(maxInv + ramp[i] * (minInv - maxInv), rho);
        }
        return out;
    }

    /** Exponential sigmas: {@code exp(linspace(log(sigma_max), log(sigma_min), n))}. */
    static double[] exponential(double sigmaMin, double sigmaMax, int n) {
        double[] l = NumpyMath.linspace(Math.log(sigmaMax), Math.log(sigmaMin), n);
        for (int i = 0; i < n; i++) {
            l[i] = Math.exp(l[i]);
        }
        return l;
    }

    /** Beta-distribution sigmas (arXiv 2407.12173): {@code sigma_min + ppf(1 - linspace(0,1,n), a, b) * (max - min)}. */
    static double[] betaSigmas(double sigmaMin, double sigmaMax, int n, double alpha, double beta) {
        double[] ts = NumpyMath.linspace(0, 1, n);
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            double p = 1 - ts[i];
            out[i] = sigmaMin + BetaDistribution.betaPpf(p, alpha, beta) * (sigmaMax - sigmaMin);
        }
        return out;
    }

    /** Lu et al. uniform-logSNR lambdas (rho = 1) between {@code lambdaMax} and {@code lambdaMin}. */
    static double[] lu(double lambdaMin, double lambdaMax, int n) {
        double[] ramp = NumpyMath.linspace(0, 1, n);
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            out[i] = lambdaMax + ramp[i] * (lambdaMin - lambdaMax);
        }
        return out;
    }
}
