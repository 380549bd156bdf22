package dev.sdjvm.scheduler;

/**
 * The weight-free fixtures of diffusers' scheduler tests, tests/schedulers/test_schedulers.py
 * ({@code SchedulerCommonTest}), reproduced exactly (huggingface/diffusers, same definitions from 0.x to 0.40):
 *
 * <pre>
 * dummy_sample_deter: num_elems = 4*3*8*8; sample = torch.arange(num_elems)
 *     .reshape(num_channels=3, height=8, width=8, batch_size=4) / num_elems; sample.permute(3, 0, 1, 2)
 * dummy_noise_deter:  the same with torch.arange(num_elems).flip(-1)
 * dummy_model:        model(sample, t) = sample * t / (t + 1)   (t cast to the sample dtype, float32)
 * </pre>
 */
final class DiffusersDummy {
    static final int B = 4;
    static final int C = 3;
    static final int H = 8;
    static final int W = 8;
    static final int N = B * C * H * W;

    private DiffusersDummy() {
    }

    /** {@code dummy_sample_deter} flattened row-major in its [4,3,8,8] (permuted) shape. */
    static float[] sampleDeter() {
        return deter(false);
    }

    /** {@code dummy_noise_deter}. */
    static float[] noiseDeter() {
        return deter(true);
    }

    private static float[] deter(boolean flip) {
        float[] out = new float[N];
        for (int b = 0; b < B; b++) {
            for (int c = 0; c < C; c++) {
                for (int h = 0; h < H; h++) {
                    for (int w = 0; w < W; w++) {
                        int src = ((c * H + h) * W + w) * B + b; // index in the (C,H,W,B) arange
                        long v = flip ? N - 1 - src : src;
                        out[((b * C + c) * H + h) * W + w] = (float) v / (float) N;
                    }
                }
            }
        }
        return out;
    }

    /** {@code dummy_model}: out = sample * t / (t + 1) in float32. */
    static void model(float[] sample, double t, float[] out) {
        float tf = (float) t;
        for (int i = 0; i < sample.length; i++) {
            out[i] = sample[i] * tf / (tf + 1f);
        }
    }

    /** diffusers' full_loop: set_timesteps(steps); for t: residual = model(sample, t); sample = step(...). */
    static float[] fullLoop(Scheduler s, int steps) {
        s.setBatchSize(B);
        s.setTimesteps(steps);
        float[] sample = sampleDeter();
        float[] residual = new float[N];
        for (double t : s.timesteps()) {
            model(sample, t, residual);
            s.step(residual, t, sample, sample);
        }
        return sample;
    }

    static double meanAbs(float[] x) {
        double s = 0;
        for (float v : x) {
            s += Math.abs(v);
        }
        return s / x.length;
    }

    static double sumAbs(float[] x) {
        double s = 0;
        for (float v : x) {
            s += Math.abs(v);
        }
        return s;
    }
}
