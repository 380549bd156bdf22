package dev.sdjvm.image;

/**
 * An 8-bit grey image (Pillow's mode {@code L}), row-major bytes.
 *
 * @param width  width in pixels
 * @param height height in pixels
 * @param gray   {@code height*width} bytes, one per pixel (held, not copied: treat them as read-only)
 */
public record GrayImage(int width, int height, byte[] gray) {
    /**
     * Checks the size.
     *
     * @param width  width in pixels, &gt;= 1
     * @param height height in pixels, &gt;= 1
     * @param gray   exactly {@code height*width} bytes
     * @throws IllegalArgumentException if the sizes do not match
     */
    public GrayImage {
        if (width < 1 || height < 1 || gray == null || (long) width * height != gray.length) {
            throw new IllegalArgumentException("need " + width + "x" + height + " bytes, got "
                    + (gray == null ? "null" : gray.length));
        }
    }

    /**
     * {@return the value 0..255 at (x, y)}
     *
     * @param x column, 0..width-1
     * @param y row, 0..height-1
     */
    public int get(int x, int y) {
        return gray[y * width + x] & 0xff;
    }

    /**
     * Converts as Pillow's {@code image.convert("L")} on an RGB image (ITU-R 601-2 luma in its 16-bit fixed point):
     * {@code L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16}.
     *
     * @param image an RGB image
     * @return its grey version
     */
    public static GrayImage fromRgb(RgbImage image) {
        byte[] rgb = image.rgb();
        byte[] out = new byte[image.width() * image.height()];
        for (int i = 0; i < out.length; i++) {
            out[i] = (byte) luma(rgb[i * 3] & 0xff, rgb[i * 3 + 1] & 0xff, rgb[i * 3 + 2] & 0xff);
        }
        return new GrayImage(image.width(), image.height(), out);
    }

    /**
     * {@return this image as RGB, each grey value in the three channels (Pillow's {@code convert("RGB")} on an
     * {@code L} image; {@link #fromRgb} gives the same bytes back)}
     */
    public RgbImage toRgb() {
        byte[] out = new byte[gray.length * 3];
        for (int i = 0; i < gray.length; i++) {
            out[i * 3] = gray[i];
            out[i * 3 + 1] = gray[i];
            out[i * 3 + 2] = gray[i];
        }
        return new RgbImage(width, height, out);
    }

    /** Pillow's {@code L24(rgb) >> 16} (Convert.c's {@code rgb2l}). */
    static int luma(int r, int g, int b) {
        return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
    }
}
