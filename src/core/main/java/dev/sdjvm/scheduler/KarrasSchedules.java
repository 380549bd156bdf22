package dev.sdjvm.scheduler;

/**
 * The sigma-based (k-diffusion style) schedules shared by the Euler, Euler ancestral, LMS and UniPC schedulers:
 * training sigmas interpolated at the timesteps ({@link Timesteps#spacedTimesteps}), optionally remapped to the
 * Karras / exponential / beta sigma schedules, plus a final sigma.
 */
final class KarrasSchedules {
    private KarrasSchedules() {
    }

    /** Float32-stored timesteps, as {@code torch.from_numpy(timesteps.astype(np.float32))}. */
    static double[] asFloat32(double[] ts) {
        double[] out = new double[ts.length];
        for (int i = 0; i < ts.length; i++) {
            out[i] = (float) ts[i];
        }
        return out;
    }

    static double[] interpSigmas(double[] ts, float[] trainSigmas) {
        double[] s = new double[ts.length];
        for (int i = 0; i < ts.length; i++) {
            s[i] = NumpyMath.interp(ts[i], trainSigmas);
        }
        return s;
    }

    /** The {@code use_*_sigmas} remapping: returns {sigmas, timesteps}; {@code kind} is karras/exponential/beta. */
    static double[][] remap(String kind, double[] inSigmas, Double cfgSigmaMin, Double cfgSigmaMax, int n,
            float[] logTrainSigmas) {
        double sigmaMin = cfgSigmaMin != null ? cfgSigmaMin : inSigmas[inSigmas.length - 1];
        double sigmaMax = cfgSigmaMax != null ? cfgSigmaMax : inSigmas[0];
        double[] sig;
        switch (kind) {
            case "karras":
                sig = SigmaSchedules.karras(sigmaMin, sigmaMax, n);
                break;
            case "exponential":
                sig = SigmaSchedules.exponential(sigmaMin, sigmaMax, n);
                break;
            default:
                sig = SigmaSchedules.betaSigmas(sigmaMin, sigmaMax, n, 0.6, 0.6);
                break;
        }
        double[] ts = new double[n];
        for (int i = 0; i < n; i++) {
            ts[i] = SigmaSchedules.sigmaToT(sig[i], logTrainSigmas);
        }
        return new double[][] {sig, ts};
    }

    /** {@code np.concatenate([sigmas, [last]]).astype(np.float32)}. */
    static float[] withFinal(double[] sig, float last) {
        float[] s = new float[sig.length + 1];
        for (int i = 0; i < sig.length; i++) {
            s[i] = (float) sig[i];
        }
        s[sig.length] = last;
        return s;
    }

    /** {@code self.sigmas.max()} and diffusers' init_noise_sigma rule. */
    static float initNoiseSigma(float[] sigmas, String spacing) {
        float max = Float.NEGATIVE_INFINITY;
        for (float s : sigmas) {
            max = Math.max(max, s);
        }
        if (spacing.equals("linspace") || spacing.equals("trailing")) {
            return max;
        }
        return (float) Math.sqrt(max * max + 1f);
    }

    /** {@code sample / ((sigma**2 + 1) ** 0.5)} in float32. */
    static void scaleInput(float[] sample, float sigma, float[] out) {
        float d = (float) Math.sqrt(sigma * sigma + 1f);
        for (int i = 0; i < sample.length; i++) {
            out[i] = sample[i] / d;
        }
    }

    /** Checks that a {@code use_*_sigmas} flag set is at most one. */
    static String sigmaKind(boolean karras, boolean exponential, boolean beta) {
        int count = (karras ? 1 : 0) + (exponential ? 1 : 0) + (beta ? 1 : 0);
        if (count > 1) {
            throw new SchedulerConfigException("use_karras_sigmas", "Only one of `config.use_beta_sigmas`, "
                    + "`config.use_exponential_sigmas`, `config.use_karras_sigmas` can be used.");
        }
        return karras ? "karras" : exponential ? "exponential" : beta ? "beta" : null;
    }
}
