package dev.sdjvm.image;

import dev.sdjvm.errors.InvalidRequestException;

/**
 * diffusers' {@code VaeImageProcessor.preprocess} for one PIL image, as Stable Diffusion's image-to-image and
 * inpainting pipelines call it ({@code resize_mode="default"}, no {@code crops_coords}), with the same numbers:
 *
 * <ul>
 *   <li>{@code get_default_height_width}: the requested (or, if none, the image's) height and width, each floored to
 *       a multiple of {@value #VAE_SCALE_FACTOR};</li>
 *   <li>{@code resize}: Pillow's LANCZOS resize ({@link Lanczos}) to that size ({@code reducing_gap=None}); an image
 *       already of that size is used as is (Pillow returns a copy);</li>
 *   <li>the image ({@code VaeImageProcessor(vae_scale_factor=8)}): {@code np.array(image).astype(np.float32) / 255.0},
 *       then {@code 2.0 * x - 1.0}, each step rounded to float32 as numpy and torch do, as CHW planes;</li>
 *   <li>the mask ({@code VaeImageProcessor(do_normalize=False, do_binarize=True, do_convert_grayscale=True)}): resized
 *       first, in the mask's own mode, then {@code convert("L")} ({@link GrayImage#fromRgb}), {@code / 255.0},
 *       then binarized: below 0.5 becomes 0, the rest 1 (so grey values 0..127 give 0 and 128..255 give 1).</li>
 * </ul>
 *
 * <p>The images are what diffusers' {@code load_image} gives ({@code convert("RGB")}); {@link ImageInputs#decode}
 * does that conversion. A grey mask may be passed as a {@link GrayImage}: resizing an {@code L} image and resizing its
 * RGB copy then converting back give the same bytes, so both paths agree with diffusers.
 */
public final class VaeImageProcessor {
    /** The VAE's downscaling factor for Stable Diffusion ({@code 2 ** (len(block_out_channels) - 1)}). */
    public static final int VAE_SCALE_FACTOR = 8;

    private VaeImageProcessor() {
    }

    /**
     * Preprocesses an image-to-image input at its own size floored to multiples of 8 (diffusers'
     * {@code image_processor.preprocess(image)}, as {@code StableDiffusionImg2ImgPipeline} calls it).
     *
     * @param image the image
     * @return {@code [3, H, W]} float32 in [-1, 1], {@code H = height - height % 8}, {@code W = width - width % 8}
     * @throws InvalidRequestException (field {@code image}) if a side is below 8 pixels
     */
    public static FloatImage preprocess(RgbImage image) {
        int h = floor(image.height(), "image", "height");
        int w = floor(image.width(), "image", "width");
        return normalize(resizeIfNeeded(image, h, w));
    }

    /**
     * Preprocesses an image at a requested size (diffusers' {@code image_processor.preprocess(image, height=...,
     * width=...)}, as {@code StableDiffusionInpaintPipeline} calls it).
     *
     * @param image  the image
     * @param height requested height; floored to a multiple of 8
     * @param width  requested width; floored to a multiple of 8
     * @return {@code [3, H, W]} float32 in [-1, 1]
     * @throws InvalidRequestException (field {@code height} or {@code width}) if a floored size is below 8
     */
    public static FloatImage preprocess(RgbImage image, int height, int width) {
        int h = floor(height, "height", "value");
        int w = floor(width, "width", "value");
        return normalize(resizeIfNeeded(image, h, w));
    }

    /**
     * Preprocesses an inpainting mask given as RGB (diffusers' {@code mask_processor.preprocess(mask_image,
     * height=..., width=...)}): resized in RGB, then converted to grey, scaled to [0, 1] and binarized.
     *
     * @param mask   the mask; white (&gt;= 128 in grey) marks the pixels to repaint
     * @param height requested height; floored to a multiple of 8
     * @param width  requested width; floored to a multiple of 8
     * @return {@code [1, H, W]} of 0.0 and 1.0
     * @throws InvalidRequestException (field {@code height} or {@code width}) if a floored size is below 8
     */
    public static FloatImage preprocessMask(RgbImage mask, int height, int width) {
        int h = floor(height, "height", "value");
        int w = floor(width, "width", "value");
        return binarize(GrayImage.fromRgb(resizeIfNeeded(mask, h, w)));
    }

    /**
     * Preprocesses an inpainting mask given as grey ({@code L}): resized, scaled to [0, 1] and binarized.
     *
     * @param mask   the mask; values &gt;= 128 mark the pixels to repaint
     * @param height requested height; floored to a multiple of 8
     * @param width  requested width; floored to a multiple of 8
     * @return {@code [1, H, W]} of 0.0 and 1.0
     * @throws InvalidRequestException (field {@code height} or {@code width}) if a floored size is below 8
     */
    public static FloatImage preprocessMask(GrayImage mask, int height, int width) {
        int h = floor(height, "height", "value");
        int w = floor(width, "width", "value");
        GrayImage m = mask.height() == h && mask.width() == w ? mask : Lanczos.resize(mask, w, h);
        return binarize(m);
    }

    /** {@code x - x % 8}, rejected below 8 (diffusers would hand Pillow or the VAE a zero or negative size). */
    private static int floor(int size, String field, String what) {
        if (size < VAE_SCALE_FACTOR) {
            throw new InvalidRequestException(field, what + " " + size + " is below " + VAE_SCALE_FACTOR
                    + ": the size is floored to a multiple of " + VAE_SCALE_FACTOR + " and must stay positive");
        }
        return size - size % VAE_SCALE_FACTOR;
    }

    private static RgbImage resizeIfNeeded(RgbImage image, int h, int w) {
        return image.height() == h && image.width() == w ? image : Lanczos.resize(image, w, h);
    }

    /** HWC bytes to CHW {@code 2 * (v / 255) - 1}, in float32. */
    static FloatImage normalize(RgbImage image) {
        int plane = image.width() * image.height();
        byte[] rgb = image.data();
        float[] out = new float[3 * plane];
        for (int c = 0; c < 3; c++) {
            for (int i = 0; i < plane; i++) {
                float x = (rgb[i * 3 + c] & 0xff) / 255f;
                out[c * plane + i] = 2f * x - 1f;
            }
        }
        return FloatImage.wrap(3, image.height(), image.width(), out);
    }

    /** {@code v / 255 < 0.5 ? 0 : 1} in float32, i.e. {@code v < 128 ? 0 : 1}. */
    static FloatImage binarize(GrayImage mask) {
        byte[] g = mask.data();
        float[] out = new float[g.length];
        for (int i = 0; i < g.length; i++) {
            float x = (g[i] & 0xff) / 255f;
            out[i] = x < 0.5f ? 0f : 1f;
        }
        return FloatImage.wrap(1, mask.height(), mask.width(), out);
    }
}
