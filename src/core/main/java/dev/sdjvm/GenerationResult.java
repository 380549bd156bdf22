package dev.sdjvm;

import dev.sdjvm.image.PngFiles;
import dev.sdjvm.image.RgbImage;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * What a generation produced, and the request that made it. Immutable: the images list is unmodifiable (the images
 * themselves are), and {@link #latents()} returns a copy. {@link StableDiffusion#generate(GenerationRequest)} makes
 * it; {@link #builder()} is for code that stands in for the library (fakes in tests).
 */
public final class GenerationResult {
    private final List<RgbImage> images;
    private final long seed;
    private final float[] latents;
    private final Timings timings;
    private final boolean promptTruncated;
    private final String scheduler;
    private final GenerationRequest request;

    private GenerationResult(Builder b) {
        this.images = List.copyOf(Objects.requireNonNull(b.images, "images"));
        if (images.isEmpty()) {
            throw new IllegalArgumentException("a result has at least one image");
        }
        this.seed = b.seed;
        this.latents = b.latents == null ? new float[0] : b.latents.clone();
        this.timings = Objects.requireNonNull(b.timings, "timings");
        this.promptTruncated = b.promptTruncated;
        this.scheduler = Objects.requireNonNull(b.scheduler, "scheduler");
        this.request = Objects.requireNonNull(b.request, "request");
    }

    /** {@return the images, as 8-bit RGB (exact pixel values; {@link RgbImage#toBufferedImage()} for AWT)} */
    public List<RgbImage> images() {
        return images;
    }

    /** {@return the seed of the initial latents (the request's, or the random one drawn)} */
    public long seed() {
        return seed;
    }

    /**
     * {@return a copy of the final latents [n,4,h,w] flat, before the VAE scaling (as diffusers'
     * {@code output_type="latent"})}
     */
    public float[] latents() {
        return latents.clone();
    }

    /** {@return where the time went} */
    public Timings timings() {
        return timings;
    }

    /** {@return true when the prompt was longer than the text encoder's 77 tokens and was cut} */
    public boolean promptTruncated() {
        return promptTruncated;
    }

    /** {@return the scheduler that ran (its diffusers class name, e.g. {@code DPMSolverMultistepScheduler})} */
    public String scheduler() {
        return scheduler;
    }

    /**
     * {@return the request that made this result, as it ran: with the model's defaults filled in
     * ({@link StableDiffusion#withModelDefaults}), so its steps and guidance scale are present}
     */
    public GenerationRequest request() {
        return request;
    }

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
     * {@return the generation parameters of one image in AUTOMATIC1111's text format ({@link GenerationParameters}),
     * without a model name or hash}
     *
     * @param index the image's 0-based index
     * @throws IndexOutOfBoundsException if there is no such image
     */
    public String parameters(int index) {
        return GenerationParameters.of(this, index, null, null);
    }

    /**
     * Writes the first image as a PNG file with its generation parameters in a {@code parameters} tEXt chunk
     * (AUTOMATIC1111's format, {@link #parameters(int)}), as the CLI does.
     *
     * @param file the file (created, or replaced)
     * @throws IOException if it cannot be written
     */
    public void writePng(Path file) throws IOException {
        writePng(0, file);
    }

    /**
     * Writes one image as a PNG file with its generation parameters (its position in the batch included).
     *
     * @param index the image's 0-based index
     * @param file  the file (created, or replaced)
     * @throws IOException if it cannot be written
     * @throws IndexOutOfBoundsException if there is no such image
     */
    public void writePng(int index, Path file) throws IOException {
        PngFiles.write(images.get(index), Map.of(GenerationParameters.PNG_KEYWORD, parameters(index)), file);
    }

    @Override
    public String toString() {
        return "GenerationResult[" + images.size() + " image(s), seed=" + seed + ", scheduler=" + scheduler + "]";
    }

    /** {@return a builder, for code that stands in for the library} */
    public static Builder builder() {
        return new Builder();
    }

    /** Builds a result; images, timings, scheduler and request are required, latents default to none. */
    public static final class Builder {
        private List<RgbImage> images;
        private long seed;
        private float[] latents;
        private Timings timings;
        private boolean promptTruncated;
        private String scheduler;
        private GenerationRequest request;

        private Builder() {
        }

        /**
         * The images (copied), at least one.
         *
         * @param v the images
         * @return this builder
         */
        public Builder images(List<RgbImage> v) {
            this.images = v;
            return this;
        }

        /**
         * The seed that ran.
         *
         * @param v the seed
         * @return this builder
         */
        public Builder seed(long v) {
            this.seed = v;
            return this;
        }

        /**
         * The final latents (copied when built).
         *
         * @param v the latents
         * @return this builder
         */
        public Builder latents(float[] v) {
            this.latents = v;
            return this;
        }

        /**
         * Where the time went.
         *
         * @param v the timings
         * @return this builder
         */
        public Builder timings(Timings v) {
            this.timings = v;
            return this;
        }

        /**
         * Whether the prompt was cut.
         *
         * @param v true when cut
         * @return this builder
         */
        public Builder promptTruncated(boolean v) {
            this.promptTruncated = v;
            return this;
        }

        /**
         * The diffusers class name of the scheduler that ran.
         *
         * @param v the class name
         * @return this builder
         */
        public Builder scheduler(String v) {
            this.scheduler = v;
            return this;
        }

        /**
         * The request that made the result.
         *
         * @param v the request
         * @return this builder
         */
        public Builder request(GenerationRequest v) {
            this.request = v;
            return this;
        }

        /**
         * {@return the result}
         *
         * @throws NullPointerException     if images, timings, scheduler or request is missing
         * @throws IllegalArgumentException if there is no image
         */
        public GenerationResult build() {
            return new GenerationResult(this);
        }
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
