package dev.sdjvm;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

/** Measures for comparing the pipeline's output with reference images and latents (the reference README's section 5). */
final class Parity {
    private Parity() {
    }

    /** Differences between two uint8 images of the same size. */
    record ImageDiff(int max, double mean, double psnr, double fractionOver16) {
        @Override
        public String toString() {
            return String.format("image max|d| %d mean|d| %.5f PSNR %.2f dB, |d|>16: %.4f%%", max, mean, psnr,
                    100 * fractionOver16);
        }
    }

    /** Differences between two float arrays: max |d| and max |ref|. */
    record LatentDiff(float maxAbs, float maxRef) {
        float relative() {
            return maxAbs / maxRef;
        }
    }

    static ImageDiff images(byte[] ref, byte[] got) {
        if (ref.length != got.length) {
            throw new IllegalArgumentException("sizes differ: " + ref.length + " vs " + got.length);
        }
        int max = 0;
        long sum = 0;
        double sq = 0;
        int over16 = 0;
        for (int i = 0; i < got.length; i++) {
            int d = Math.abs((ref[i] & 0xff) - (got[i] & 0xff));
            max = Math.max(max, d);
            sum += d;
            sq += (double) d * d;
            if (d > 16) {
                over16++;
            }
        }
        double mse = sq / got.length;
        double psnr = mse == 0 ? Double.POSITIVE_INFINITY : 10 * Math.log10(255.0 * 255.0 / mse);
        return new ImageDiff(max, (double) sum / got.length, psnr, (double) over16 / got.length);
    }

    static LatentDiff latents(float[] ref, float[] got) {
        if (ref.length != got.length) {
            throw new IllegalArgumentException("sizes differ: " + ref.length + " vs " + got.length);
        }
        float maxRef = 0;
        float maxD = 0;
        for (int i = 0; i < ref.length; i++) {
            maxRef = Math.max(maxRef, Math.abs(ref[i]));
            maxD = Math.max(maxD, Math.abs(ref[i] - got[i]));
        }
        return new LatentDiff(maxD, maxRef);
    }

    /** Raw little-endian float32. */
    static float[] readF32(Path p) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(p)).order(ByteOrder.LITTLE_ENDIAN);
        float[] f = new float[b.remaining() / 4];
        b.asFloatBuffer().get(f);
        return f;
    }
}
