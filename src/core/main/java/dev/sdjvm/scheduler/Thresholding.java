package dev.sdjvm.scheduler;

/** diffusers' dynamic thresholding ({@code _threshold_sample}). */
final class Thresholding {
    private Thresholding() {
    }

    /**
     * diffusers' {@code _threshold_sample}, in place: per sample, s = clamp(quantile(|x|, ratio), 1, maxValue)
     * (torch.quantile's linear interpolation in float32), then x = clamp(x, -s, s) / s. {@code sortBuf} holds at
     * least one sample.
     */
    static void threshold(float[] x, int batchSize, float ratio, float maxValue, float[] sortBuf) {
        int len = x.length;
        if (len % batchSize != 0) {
            throw new IllegalArgumentException("sample length " + len + " is not a multiple of batch size " + batchSize);
        }
        int per = len / batchSize;
        for (int b = 0; b < batchSize; b++) {
            int off = b * per;
            for (int i = 0; i < per; i++) {
                sortBuf[i] = Math.abs(x[off + i]);
            }
            java.util.Arrays.sort(sortBuf, 0, per);
            float rank = ratio * (float) (per - 1);
            int below = (int) rank;
            int above = (int) Math.ceil(rank);
            float w = rank - below;
            float lo = sortBuf[below];
            float hi = sortBuf[above];
            float s = w < 0.5f ? lo + w * (hi - lo) : hi - (hi - lo) * (1f - w);
            s = Math.min(Math.max(s, 1f), maxValue);
            for (int i = 0; i < per; i++) {
                float v = x[off + i];
                v = Math.min(Math.max(v, -s), s);
                x[off + i] = v / s;
            }
        }
    }
}
