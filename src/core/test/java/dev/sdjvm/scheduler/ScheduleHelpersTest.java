package dev.sdjvm.scheduler;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** Closed-form checks of the numpy/scipy helpers (documented math, no reference data needed). */
class ScheduleHelpersTest {

    @Test
    void betaPpfMatchesClosedForms() {
        for (double p = 0; p <= 1.0; p += 0.05) {
            // Beta(1/2, 1/2) is the arcsine distribution: ppf(p) = sin^2(pi p / 2)
            double s = Math.sin(Math.PI * p / 2);
            assertEquals(s * s, BetaDistribution.betaPpf(p, 0.5, 0.5), 1e-12, "arcsine p=" + p);
            assertEquals(p, BetaDistribution.betaPpf(p, 1, 1), 1e-12, "uniform p=" + p);
            assertEquals(Math.sqrt(p), BetaDistribution.betaPpf(p, 2, 1), 1e-12, "Beta(2,1) p=" + p);
        }
        // Beta(0.6, 0.6) is symmetric about 1/2
        assertEquals(0.5, BetaDistribution.betaPpf(0.5, 0.6, 0.6), 1e-12);
        assertEquals(1.0, BetaDistribution.betaPpf(0.2, 0.6, 0.6) + BetaDistribution.betaPpf(0.8, 0.6, 0.6), 1e-12);
    }

    @Test
    void numpyLinspaceArangeRound() {
        assertArrayEquals(new double[] {0, 0.25, 0.5, 0.75, 1}, NumpyMath.linspace(0, 1, 5));
        assertArrayEquals(new double[] {1000, 950, 900}, java.util.Arrays.copyOf(
                NumpyMath.arange(1000, 0, -50), 3));
        assertEquals(20, NumpyMath.arange(1000, 0, -50).length);
        assertEquals(500.0, Math.rint(499.5)); // numpy rounds half to even, as Math.rint
        assertEquals(498.0, Math.rint(498.5));
    }

    @Test
    void sigmaToTInvertsTheTrainingSigmasAtIntegers() {
        float[] betas = BetaSchedules.betas("scaled_linear", 0.00085, 0.012, 1000, null, "x");
        float[] sig = BetaSchedules.sigmasFromAlphasCumprod(BetaSchedules.alphasCumprod(betas));
        float[] logs = SigmaSchedules.logF32(sig);
        for (int t : new int[] {0, 1, 250, 500, 998, 999}) {
            assertEquals(t, SigmaSchedules.sigmaToT(sig[t], logs), 1e-3, "t=" + t);
        }
    }

    @Test
    void thresholdClampsPerSampleAtTheQuantile() {
        // two samples of 5: |x| quantile 0.5 -> 3 and 1 (clamped up to 1); sample_max_value 10
        float[] x = {1, -2, 3, 4, -5, 0.1f, 0.2f, -0.3f, 0.4f, 0.5f};
        Thresholding.threshold(x, 2, 0.5f, 10f, new float[5]);
        assertArrayEquals(new float[] {1 / 3f, -2 / 3f, 1, 1, -1, 0.1f, 0.2f, -0.3f, 0.4f, 0.5f}, x, 1e-7f);
    }
}
