package dev.sdjvm.scheduler;

/**
 * One solver step in half-log-SNR time, from the sample's sigma {@code s} to the target sigma {@code t}
 * (k-diffusion sigmas): {@code alpha = 1 / sqrt(sigma^2 + 1)}, {@code sigma_vp = sigma * alpha},
 * {@code lambda = log(alpha) - log(sigma_vp)} and {@code h = lambda_t - lambda_s}, all float32 in diffusers' order
 * ({@code _sigma_to_alpha_sigma_t}). A mutable holder that a scheduler reuses, so stepping does not allocate.
 */
final class LambdaStep {
    /** alpha and variance-preserving sigma of the current sample. */
    float alphaS;
    float sigmaS;
    float lambdaS;
    /** alpha and variance-preserving sigma of the target. */
    float alphaT;
    float sigmaT;
    /** {@code lambda_t - lambda_s}. */
    float h;

    /** Sets the step from k-diffusion sigma {@code sigmaFrom} to {@code sigmaTo}; returns this. */
    LambdaStep set(float sigmaFrom, float sigmaTo) {
        alphaS = alphaOf(sigmaFrom);
        sigmaS = sigmaFrom * alphaS;
        lambdaS = TorchMath.log(alphaS) - TorchMath.log(sigmaS);
        alphaT = alphaOf(sigmaTo);
        sigmaT = sigmaTo * alphaT;
        float lambdaT = TorchMath.log(alphaT) - TorchMath.log(sigmaT);
        h = lambdaT - lambdaS;
        return this;
    }

    /** {@code alpha_t = 1 / sqrt(sigma^2 + 1)} in float32. */
    static float alphaOf(float sigma) {
        return 1f / (float) Math.sqrt(sigma * sigma + 1f);
    }

    /** {@code lambda = log(alpha_t) - log(sigma * alpha_t)} in float32. */
    static float lambdaOf(float sigma) {
        float a = alphaOf(sigma);
        float s = sigma * a;
        return TorchMath.log(a) - TorchMath.log(s);
    }
}
