package dev.sdjvm.scheduler;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * {@link Predictions} against the variance-preserving algebra it implements: with {@code x_t = a x0 + s eps},
 * {@code a^2 + s^2 = 1} and {@code v = a eps - s x0}, each prediction type converts back to the same x0 and eps.
 */
class PredictionsTest {
    private static final int LEN = 257;

    @Test
    void everyPredictionTypeRecoversX0AndEpsilon() {
        Random r = new Random(7);
        float[] x0 = new float[LEN];
        float[] eps = new float[LEN];
        for (int i = 0; i < LEN; i++) {
            x0[i] = (float) r.nextGaussian();
            eps[i] = (float) r.nextGaussian();
        }
        for (double sigmaK : new double[] {0.03, 1.0, 14.6}) { // k-diffusion sigmas across SD's range
            float a = (float) (1 / Math.sqrt(sigmaK * sigmaK + 1));
            float s = (float) (sigmaK * a);
            float[] sample = new float[LEN];
            float[] v = new float[LEN];
            for (int i = 0; i < LEN; i++) {
                sample[i] = a * x0[i] + s * eps[i];
                v[i] = a * eps[i] - s * x0[i];
            }
            // the division by a (or s) amplifies float32 rounding by at most 1/min(a, s)
            double tol = 1e-5 / Math.min(a, s);
            String[] types = {"epsilon", "sample", "v_prediction"};
            float[][] outputs = {eps, x0, v};
            for (int t = 0; t < types.length; t++) {
                float[] gotX0 = new float[LEN];
                float[] gotEps = new float[LEN];
                Predictions.toX0(types[t], outputs[t], sample, a, s, gotX0, LEN);
                Predictions.toEpsilon(types[t], outputs[t], sample, a, s, gotEps, LEN);
                for (int i = 0; i < LEN; i++) {
                    assertEquals(x0[i], gotX0[i], tol, types[t] + " x0 sigma=" + sigmaK + " i=" + i);
                    assertEquals(eps[i], gotEps[i], tol, types[t] + " eps sigma=" + sigmaK + " i=" + i);
                }
                // in place (dst = model output) gives the same values
                float[] inPlace = outputs[t].clone();
                Predictions.toX0(types[t], inPlace, sample, a, s, inPlace, LEN);
                assertArrayEquals(gotX0, inPlace, types[t] + " in place");
            }
        }
    }

    @Test
    void x0AndEpsilonConversionsAreInverse() {
        float a = 0.6f;
        float s = 0.8f;
        float[] sample = {0.5f, -1.25f, 2f};
        float[] x0 = {0.1f, -0.3f, 1.7f};
        float[] eps = new float[3];
        Predictions.epsilonFromX0(x0, sample, a, s, eps, 3);
        float[] back = new float[3];
        Predictions.x0FromEpsilon(eps, sample, a, s, back, 3);
        assertArrayEquals(x0, back, 1e-6f);
    }
}
