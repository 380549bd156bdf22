package dev.sdjvm;

import dev.sdjvm.image.RgbImage;
import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.List;

/**
 * What a generation produced.
 *
 * @param images       the images, as 8-bit RGB (exact pixel values; {@link RgbImage#toBufferedImage()} for AWT)
 * @param seed         the seed of the initial latents (the request's, or the random one drawn)
 * @param latents      the final latents [n,4,h,w] flat, before the VAE scaling (as diffusers' {@code output_type="latent"})
 * @param timings      where the time went
 * @param promptTruncated true when the prompt was longer than the text encoder's 77 tokens and was cut
 * @param scheduler    the scheduler that ran (its diffusers class name, e.g. {@code DPMSolverMultistepScheduler})
 */
public record GenerationResult(List<RgbImage> images, long seed, float[] latents, Timings timings,
                               boolean promptTruncated, String scheduler) {

    /** {@return the first image as a {@link BufferedImage}} */
    public BufferedImage image() {
        return images.get(0).toBufferedImage();
    }

    /** {@return all images as {@link BufferedImage}s} */
    public List<BufferedImage> bufferedImages() {
        List<BufferedImage> out = new ArrayList<>(images.size());
        for (RgbImage i : images) {
            out.add(i.toBufferedImage());
        }
        return out;
    }

    /**
     * Stage timings in nanoseconds.
     *
     * @param tokenizeNanos  tokenizing prompt and negative prompt
     * @param encodeNanos    text encoder calls
     * @param denoiseNanos   the whole denoising loop
     * @param unetNanos      inside UNet {@code forward} calls during the loop (wall time of the UNet sections)
     * @param decodeNanos    VAE post_quant_conv + decoder + conversion to RGB
     * @param totalNanos     the whole call
     * @param steps          number of denoising steps
     */
    public record Timings(long tokenizeNanos, long encodeNanos, long denoiseNanos, long unetNanos, long decodeNanos,
                          long totalNanos, int steps) {
        /** {@return seconds per denoising step} */
        public double secondsPerStep() {
            return steps == 0 ? 0 : denoiseNanos / 1e9 / steps;
        }

        /** {@return milliseconds per step spent outside UNet forward calls: the Java side of the loop} */
        public double overheadMillisPerStep() {
            return steps == 0 ? 0 : (denoiseNanos - unetNanos) / 1e6 / steps;
        }
    }
}
