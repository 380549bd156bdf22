package dev.sdjvm.scheduler;

/**
 * Conversions of a model output to the denoised sample x0 or to the noise epsilon, for the variance-preserving
 * parameterisation {@code x_t = alpha_t * x0 + sigma_t * epsilon} (diffusers' {@code prediction_type} epsilon,
 * sample and v_prediction, where {@code v = alpha_t * epsilon - sigma_t * x0}). Element-wise in float32 in diffusers'
 * evaluation order; {@code dst} may be the model output array (each element is read before it is written).
 */
final class Predictions {
    private Predictions() {
    }

    /** x0 from {@code m} under {@code predictionType} (anything but epsilon and sample is v_prediction). */
    static void toX0(String predictionType, float[] m, float[] sample, float alpha, float sigma, float[] dst,
            int len) {
        if (predictionType.equals("epsilon")) {
            x0FromEpsilon(m, sample, alpha, sigma, dst, len);
        } else if (predictionType.equals("sample")) {
            copy(m, dst, len);
        } else {
            for (int i = 0; i < len; i++) {
                dst[i] = alpha * sample[i] - sigma * m[i];
            }
        }
    }

    /** epsilon from {@code m} under {@code predictionType} (anything but epsilon and sample is v_prediction). */
    static void toEpsilon(String predictionType, float[] m, float[] sample, float alpha, float sigma, float[] dst,
            int len) {
        if (predictionType.equals("epsilon")) {
            copy(m, dst, len);
        } else if (predictionType.equals("sample")) {
            epsilonFromX0(m, sample, alpha, sigma, dst, len);
        } else {
            for (int i = 0; i < len; i++) {
                dst[i] = alpha * m[i] + sigma * sample[i];
            }
        }
    }

    /** {@code x0 = (sample - sigma * eps) / alpha}. */
    static void x0FromEpsilon(float[] eps, float[] sample, float alpha, float sigma, float[] dst, int len) {
        for (int i = 0; i < len; i++) {
            dst[i] = (sample[i] - sigma * eps[i]) / alpha;
        }
    }

    /** {@code eps = (sample - alpha * x0) / sigma}. */
    static void epsilonFromX0(float[] x0, float[] sample, float alpha, float sigma, float[] dst, int len) {
        for (int i = 0; i < len; i++) {
            dst[i] = (sample[i] - alpha * x0[i]) / sigma;
        }
    }

    private static void copy(float[] m, float[] dst, int len) {
        if (m != dst) {
            System.arraycopy(m, 0, dst, 0, len);
        }
    }
}
