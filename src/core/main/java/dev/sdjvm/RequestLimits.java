package dev.sdjvm;

import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.errors.RequestLimitException;
import java.lang.management.ManagementFactory;

/**
 * What one generation may cost, checked by {@link StableDiffusion#generate(GenerationRequest)} before anything is
 * allocated (set with {@link LoadOptions#withLimits}; the server's {@code --max-*} flags set the same). A value of 0
 * means "derived from the model and the machine" (see {@link #resolve}); a request over a limit gets a
 * {@link RequestLimitException} naming the field and the limit.
 *
 * <p>Why these: a generation's working memory grows with the pixels of the batch (latents, UNet activations,
 * the decoder's full-resolution activations), attention memory grows with the square of one image's pixels, and its
 * time with pixels x images x steps; one UNet step or one VAE decode cannot be interrupted, so a deadline alone does
 * not bound them.
 *
 * <p>Immutable; made by {@link #auto()} or {@link #of} and changed by the {@code with*} methods (there is no public
 * constructor, so limits can be added without breaking callers). Equal when all limits are.
 */
public final class RequestLimits {
    private final long maxImagePixels;
    private final long maxBatchPixels;
    private final long maxWork;
    private final int maxSteps;
    private final int maxImages;

    /**
     * Working memory assumed per pixel of the batch: peak RSS grew by 2.7 KB per pixel for the tiny fp32 fixture
     * from 64x64 to 512x512 and by 3.6 KB per pixel for full-size SD 2.1-base fp32 from 256x256 to 512x512 (CFG on;
     * README performance table); rounded up to 4 KiB.
     */
    public static final long BYTES_PER_PIXEL = 4096;

    private RequestLimits(long maxImagePixels, long maxBatchPixels, long maxWork, int maxSteps, int maxImages) {
        if (maxImagePixels < 0 || maxBatchPixels < 0 || maxWork < 0 || maxSteps < 0 || maxImages < 0) {
            throw new InvalidRequestException("limits", "must be >= 0 (0 = derived), got " + maxImagePixels + ", "
                    + maxBatchPixels + ", " + maxWork + ", " + maxSteps + ", " + maxImages);
        }
        if (maxSteps > GenerationRequest.MAX_STEPS) {
            throw new InvalidRequestException("maxSteps", "must be at most " + GenerationRequest.MAX_STEPS
                    + ", got " + maxSteps);
        }
        if (maxImages > GenerationRequest.MAX_IMAGES) {
            throw new InvalidRequestException("maxImages", "must be at most " + GenerationRequest.MAX_IMAGES
                    + ", got " + maxImages);
        }
        this.maxImagePixels = maxImagePixels;
        this.maxBatchPixels = maxBatchPixels;
        this.maxWork = maxWork;
        this.maxSteps = maxSteps;
        this.maxImages = maxImages;
    }

    /** {@return every limit derived from the model and the machine} */
    public static RequestLimits auto() {
        return new RequestLimits(0, 0, 0, 0, 0);
    }

    /**
     * All five limits at once (0 = derived, as {@link #auto()}).
     *
     * @param maxImagePixels largest height x width of one image; 0 = 4x the model's own size (2x each side)
     * @param maxBatchPixels largest height x width x num_images_per_prompt; 0 = half the machine's memory at
     *                       {@link #BYTES_PER_PIXEL} per pixel, at least the model's own size and at most 16x it
     * @param maxWork        largest height x width x num_images_per_prompt x num_inference_steps; 0 = four images of
     *                       the model's own size at the maximum {@value GenerationRequest#MAX_STEPS} steps
     * @param maxSteps       largest num_inference_steps; 0 = {@value GenerationRequest#MAX_STEPS}
     * @param maxImages      largest num_images_per_prompt; 0 = {@value GenerationRequest#MAX_IMAGES}
     * @return the limits
     * @throws InvalidRequestException for a negative limit or one above what a request may ask
     */
    public static RequestLimits of(long maxImagePixels, long maxBatchPixels, long maxWork, int maxSteps,
                                   int maxImages) {
        return new RequestLimits(maxImagePixels, maxBatchPixels, maxWork, maxSteps, maxImages);
    }

    /** {@return the largest height x width of one image; 0 = 4x the model's own size (2x each side)} */
    public long maxImagePixels() {
        return maxImagePixels;
    }

    /**
     * {@return the largest height x width x num_images_per_prompt; 0 = half the machine's memory at
     * {@link #BYTES_PER_PIXEL} per pixel, at least the model's own size and at most 16x it}
     */
    public long maxBatchPixels() {
        return maxBatchPixels;
    }

    /**
     * {@return the largest height x width x num_images_per_prompt x num_inference_steps; 0 = four images of the
     * model's own size at the maximum {@value GenerationRequest#MAX_STEPS} steps}
     */
    public long maxWork() {
        return maxWork;
    }

    /** {@return the largest num_inference_steps; 0 = {@value GenerationRequest#MAX_STEPS}} */
    public int maxSteps() {
        return maxSteps;
    }

    /** {@return the largest num_images_per_prompt; 0 = {@value GenerationRequest#MAX_IMAGES}} */
    public int maxImages() {
        return maxImages;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RequestLimits l && l.maxImagePixels == maxImagePixels && l.maxBatchPixels == maxBatchPixels
                && l.maxWork == maxWork && l.maxSteps == maxSteps && l.maxImages == maxImages;
    }

    @Override
    public int hashCode() {
        return java.util.Objects.hash(maxImagePixels, maxBatchPixels, maxWork, maxSteps, maxImages);
    }

    @Override
    public String toString() {
        return "RequestLimits[maxImagePixels=" + maxImagePixels + ", maxBatchPixels=" + maxBatchPixels + ", maxWork="
                + maxWork + ", maxSteps=" + maxSteps + ", maxImages=" + maxImages + "]";
    }

    /**
     * These limits with another largest height x width of one image.
     *
     * @param v the largest height x width of one image (0 = derived)
     * @return the new limits
     */
    public RequestLimits withMaxImagePixels(long v) {
        return new RequestLimits(v, maxBatchPixels, maxWork, maxSteps, maxImages);
    }

    /**
     * These limits with another largest height x width x images.
     *
     * @param v the largest height x width x images (0 = derived)
     * @return the new limits
     */
    public RequestLimits withMaxBatchPixels(long v) {
        return new RequestLimits(maxImagePixels, v, maxWork, maxSteps, maxImages);
    }

    /**
     * These limits with another largest height x width x images x steps.
     *
     * @param v the largest height x width x images x steps (0 = derived)
     * @return the new limits
     */
    public RequestLimits withMaxWork(long v) {
        return new RequestLimits(maxImagePixels, maxBatchPixels, v, maxSteps, maxImages);
    }

    /**
     * These limits with another largest step count.
     *
     * @param v the largest step count (0 = derived)
     * @return the new limits
     */
    public RequestLimits withMaxSteps(int v) {
        return new RequestLimits(maxImagePixels, maxBatchPixels, maxWork, v, maxImages);
    }

    /**
     * These limits with another largest image count.
     *
     * @param v the largest image count (0 = derived)
     * @return the new limits
     */
    public RequestLimits withMaxImages(int v) {
        return new RequestLimits(maxImagePixels, maxBatchPixels, maxWork, maxSteps, v);
    }

    /**
     * These limits with every 0 replaced by its value for a model making {@code height x width} images.
     *
     * @param height the model's image height
     * @param width  the model's image width
     * @return the resolved limits (no 0 left)
     */
    public RequestLimits resolve(int height, int width) {
        long own = (long) height * width;
        long image = maxImagePixels > 0 ? maxImagePixels : 4 * own;
        long batch = maxBatchPixels;
        if (batch == 0) {
            long byMemory = Memory.TOTAL / 2 / BYTES_PER_PIXEL;
            batch = Math.max(own, Math.min(16 * own, byMemory));
        }
        long work = maxWork > 0 ? maxWork : 4 * own * GenerationRequest.MAX_STEPS;
        return new RequestLimits(image, batch, work, maxSteps > 0 ? maxSteps : GenerationRequest.MAX_STEPS,
                maxImages > 0 ? maxImages : GenerationRequest.MAX_IMAGES);
    }

    /**
     * Checks a request for a model making {@code height x width} images by default. Pure arithmetic: call it before
     * any allocation. A start image counts with its own pixels (against {@code max_image_pixels}, field
     * {@code image}); image-to-image then runs at its size floored to a multiple of 8 unless the request gives
     * height/width, inpainting at the request's or the model's size.
     *
     * @param r      the request ({@link StableDiffusion#withModelDefaults}: without steps it counts as
     *               {@value GenerationRequest#DEFAULT_STEPS}, the most any model defaults to)
     * @param height the model's image height
     * @param width  the model's image width
     * @throws RequestLimitException naming the field and the limit
     */
    public void check(GenerationRequest r, int height, int width) {
        RequestLimits l = resolve(height, width);
        int steps = r.steps().orElse(GenerationRequest.DEFAULT_STEPS);
        if (steps > l.maxSteps) {
            throw new RequestLimitException("num_inference_steps", "max_steps", steps
                    + " steps is over the limit max_steps = " + l.maxSteps);
        }
        if (r.numImages() > l.maxImages) {
            throw new RequestLimitException("num_images_per_prompt", "max_images", r.numImages()
                    + " images is over the limit max_images = " + l.maxImages);
        }
        long h = r.height() != null ? r.height() : height;
        long w = r.width() != null ? r.width() : width;
        String sideField = r.height() != null && (r.width() == null || h >= w) ? "height"
                : r.width() != null ? "width" : "height";
        if (r.initImage() != null) {
            // the start image (and a mask of its size) is decoded, resized and encoded at its own size first
            long in = (long) r.initImage().width() * r.initImage().height();
            if (in > l.maxImagePixels) {
                throw new RequestLimitException("image", "max_image_pixels", "the image's " + r.initImage().width()
                        + "x" + r.initImage().height() + " = " + in + " pixels are over the limit max_image_pixels = "
                        + l.maxImagePixels + (maxImagePixels == 0 ? " (4x the model's " + height + "x" + width + ")"
                        : ""));
            }
            if (r.mask() == null) {
                // image-to-image runs at the image's size floored to a multiple of 8, unless height/width are given
                if (r.height() == null) {
                    h = r.initImage().height() - r.initImage().height() % 8;
                }
                if (r.width() == null) {
                    w = r.initImage().width() - r.initImage().width() % 8;
                }
                if (r.height() == null || r.width() == null) {
                    sideField = "image";
                }
            }
        }
        long image = h * w;  // each side < 2^31: no overflow
        if (image > l.maxImagePixels) {
            throw new RequestLimitException(sideField, "max_image_pixels", h + "x" + w + " = " + image
                    + " pixels per image is over the limit max_image_pixels = " + l.maxImagePixels
                    + (maxImagePixels == 0 ? " (4x the model's " + height + "x" + width + ")" : ""));
        }
        long batch = image * r.numImages();
        if (batch > l.maxBatchPixels) {
            throw new RequestLimitException(r.numImages() > 1 ? "num_images_per_prompt" : sideField,
                    "max_batch_pixels", r.numImages() + " x " + h + "x" + w + " = " + batch
                    + " pixels is over the limit max_batch_pixels = " + l.maxBatchPixels
                    + (maxBatchPixels == 0 ? " (derived from " + (Memory.TOTAL >> 20) + " MiB of memory at "
                    + BYTES_PER_PIXEL + " bytes per pixel, and the model's size)" : ""));
        }
        long work = batch * steps;  // < 2^62 * 16 * 1000 would overflow only past the pixel limits above
        if (work > l.maxWork || work < 0) {
            throw new RequestLimitException("num_inference_steps", "max_work", r.numImages() + " x " + h + "x" + w
                    + " x " + steps + " steps = " + work + " pixel-steps is over the limit max_work = "
                    + l.maxWork + (maxWork == 0 ? " (4 images of the model's size at "
                    + GenerationRequest.MAX_STEPS + " steps)" : ""));
        }
    }

    /** The machine's (or container's) memory, read once. */
    static final class Memory {
        static final long TOTAL = total();

        private static long total() {
            try {
                var os = ManagementFactory.getOperatingSystemMXBean();
                if (os instanceof com.sun.management.OperatingSystemMXBean sun && sun.getTotalMemorySize() > 0) {
                    return sun.getTotalMemorySize();
                }
            } catch (RuntimeException | LinkageError e) {
                // not a HotSpot JVM
            }
            return 8L << 30;
        }

        private Memory() {
        }
    }
}
